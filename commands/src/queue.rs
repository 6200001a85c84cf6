//! `queue`: who is waiting for an environment.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{code, invalid, is, Command, CommandHelp, Example, Head, Name, ParseError};

/// List who is in line for an environment (or for every environment), in order, and
/// whose turn it is.
///
/// ```text
/// queue [ENV] [on APP]
/// ```
///
/// People join a queue with `deploy … queue` (or the Queue button of a refused
/// deploy) and leave it with [`crate::Dequeue`]. Without `ENV`, every queue of the
/// app (`on APP`) or of every app is listed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Queue {
    /// The environment; `None` lists every environment's queue.
    pub environment: Option<String>,
    /// The app; `None` means the channel's app with `ENV`, every app without.
    pub app: Option<String>,
}

const PARAMS: &[Param] = &[
    Param::optional(
        "environment",
        Kind::Environment,
        "The environment, or an alias (e.g. production); default: every one",
    ),
    Param::optional("app", Kind::App, "The app; default: this channel's"),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Queue(Queue {
        environment: form.word("environment")?,
        app: form.word("app")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "queue",
    params: PARAMS,
    from_options,
    grammar: "queue [ENV] [on APP]",
    summary: "Who is in line for an environment, and whose turn it is.",
    details: "Join a queue with `deploy … queue` (e.g. `deploy api to production queue`), or the Queue button when a deploy is refused because the environment is locked, busy or reserved; leave it with `dequeue ENV`. \
When the environment frees up (unlocked, lock expired, the deployment there finished) the first in line is told, and, as the environment's `queue` setting says, either gets it reserved for `queue_grace` (5m unless configured: deploy within it or lose the turn) or has their command run for them, every rule checked again. \
Busy means: someone else's lock (with `auto_lock`, environments lock themselves for a deployment's requester until it finishes, plus `auto_lock_grace`), someone else's turn, or as many unfinished deployments as `concurrency` allows (1 for production environments unless configured). \
Without `ENV`, every queue is listed.",
    examples: &[
        Example {
            input: "queue",
            canonical: "queue",
        },
        Example {
            input: "queue production",
            canonical: "queue production",
        },
        Example {
            input: "QUEUE production on api",
            canonical: "queue production on api",
        },
        Example {
            input: "queue on api",
            canonical: "queue on api",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let (environment, app) = env_on_app(&HELP, args, |environment, app| {
        Queue { environment, app }.to_string()
    })?;
    Ok(Command::Queue(Queue { environment, app }))
}

/// `[ENV] [on APP]`, shared with `dequeue`; `show` prints a corrected command.
pub(crate) fn env_on_app(
    help: &'static CommandHelp,
    args: &[&str],
    show: impl Fn(Option<String>, Option<String>) -> String,
) -> Result<(Option<String>, Option<String>), ParseError> {
    let mut environment = None;
    let mut app = None;
    let mut i = 0;
    if let Some(&env) = args.first().filter(|w| !is(w, "on")) {
        Name::Environment
            .check(env)
            .map_err(|p| invalid(help, p, None))?;
        environment = Some(env.to_string());
        i = 1;
    }
    match &args[i..] {
        [] => {}
        [on] if is(on, "on") => {
            return Err(invalid(
                help,
                "no app after `on`",
                Some(format!("{} on APP", show(environment, None))),
            ));
        }
        [on, name, extra @ ..] if is(on, "on") => {
            Name::App.check(name).map_err(|p| invalid(help, p, None))?;
            app = Some(name.to_string());
            if !extra.is_empty() {
                return Err(invalid(
                    help,
                    format!("unexpected {}", code(&extra.join(" "))),
                    Some(show(environment, app)),
                ));
            }
        }
        extra => {
            return Err(invalid(
                help,
                format!("unexpected {}", code(&extra.join(" "))),
                Some(show(environment, app)),
            ));
        }
    }
    Ok((environment, app))
}

/// ` ENV on APP`, each part when present.
pub(crate) fn fmt_env_on_app(
    f: &mut fmt::Formatter<'_>,
    environment: Option<&str>,
    app: Option<&str>,
) -> fmt::Result {
    if let Some(env) = environment {
        write!(f, " {env}")?;
    }
    if let Some(app) = app {
        write!(f, " on {app}")?;
    }
    Ok(())
}

impl fmt::Display for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("queue")?;
        fmt_env_on_app(f, self.environment.as_deref(), self.app.as_deref())
    }
}
