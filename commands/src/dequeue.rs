//! `dequeue`: leave a queue.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::queue::{env_on_app, fmt_env_on_app};
use crate::{Command, CommandHelp, Example, Head, ParseError};

/// Leave the queue for an environment (or every queue you are in).
///
/// ```text
/// dequeue [ENV] [on APP]
/// ```
///
/// Leaving in your turn gives the environment to the next in line at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dequeue {
    /// The environment; `None` leaves every queue you are in (of `app`, if given).
    pub environment: Option<String>,
    /// The app; `None` means the channel's app with `ENV`, every app without.
    pub app: Option<String>,
}

const PARAMS: &[Param] = &[
    Param::optional(
        "environment",
        Kind::Environment,
        "The environment, or an alias; default: every queue you are in",
    ),
    Param::optional("app", Kind::App, "The app; default: this channel's"),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Dequeue(Dequeue {
        environment: form.word("environment")?,
        app: form.word("app")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "dequeue",
    params: PARAMS,
    from_options,
    grammar: "dequeue [ENV] [on APP]",
    summary: "Leave the queue for an environment.",
    details: "Without `ENV`, leaves every queue you are in. \
Leaving in your turn hands the environment to the next in line. `queue` lists the queues.",
    examples: &[
        Example {
            input: "dequeue production",
            canonical: "dequeue production",
        },
        Example {
            input: "dequeue production on api",
            canonical: "dequeue production on api",
        },
        Example {
            input: "DEQUEUE",
            canonical: "dequeue",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let (environment, app) = env_on_app(&HELP, args, |environment, app| {
        Dequeue { environment, app }.to_string()
    })?;
    Ok(Command::Dequeue(Dequeue { environment, app }))
}

impl fmt::Display for Dequeue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dequeue")?;
        fmt_env_on_app(f, self.environment.as_deref(), self.app.as_deref())
    }
}
