//! `whats on ENV`: what is live in an environment.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{
    code, invalid, is, splice, strip_question, Command, CommandHelp, Example, Head, Name,
    ParseError,
};

/// Show what is deployed in an environment: per app, the ref and sha, who deployed
/// it, when, and the status.
///
/// ```text
/// whats on ENV [for APP]
/// what's on ENV [for APP]
/// what is on ENV [for APP]
/// ```
///
/// `what` and `whats` start plenty of ordinary sentences, so a line is only this
/// command when `on` follows (`whats up` is not a command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsOn {
    /// The environment.
    pub environment: String,
    /// Only this app; `None` for every app deployed there.
    pub app: Option<String>,
}

const PARAMS: &[Param] = &[
    Param::required(
        "environment",
        Kind::Environment,
        "The environment, or an alias (e.g. staging)",
    ),
    Param::optional("app", Kind::App, "Only this app; default: this channel's"),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::WhatsOn(WhatsOn {
        environment: form.needed("environment")?,
        app: form.word("app")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "whats-on",
    params: PARAMS,
    from_options,
    grammar: "whats on ENV [for APP]",
    summary: "Show what is live in an environment: ref, sha, who, when, status.",
    details: "`what's on` and `what is on` work too. `for APP` narrows it to one app.",
    examples: &[
        Example {
            input: "whats on staging",
            canonical: "whats on staging",
        },
        Example {
            input: "what's on production for api",
            canonical: "whats on production for api",
        },
        Example {
            input: "What is on Staging?",
            canonical: "whats on Staging",
        },
        Example {
            input: "what’s on prod",
            canonical: "whats on prod",
        },
    ],
};

/// `args` follow `whats`/`what's` (`what` when `what_is`, which may take `is`).
pub(crate) fn parse(head: &Head<'_>, what_is: bool, args: &[&str]) -> Result<Command, ParseError> {
    let words = strip_question(args);
    let mut rest: &[&str] = &words;
    if what_is {
        if let [is_, tail @ ..] = rest {
            if is(is_, "is") {
                rest = tail;
            }
        }
    }
    let rest = match rest {
        [on, tail @ ..] if is(on, "on") => tail,
        _ => return Err(ParseError::NotACommand),
    };
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let Some(&env) = rest.first().filter(|w| !is(w, "for")) else {
        return Err(invalid(
            &HELP,
            "whats on where? name the environment",
            head.retry("whats", &splice(rest, 0..0, &["on", "ENV"])),
        ));
    };
    Name::Environment
        .check(env)
        .map_err(|p| invalid(&HELP, p, None))?;
    let mut whats_on = WhatsOn {
        environment: env.to_string(),
        app: None,
    };
    match &rest[1..] {
        [] => {}
        [f] if is(f, "for") => {
            return Err(invalid(
                &HELP,
                "no app after `for`",
                Some(format!("{whats_on} for APP")),
            ));
        }
        [f, app, extra @ ..] if is(f, "for") => {
            Name::App.check(app).map_err(|p| invalid(&HELP, p, None))?;
            whats_on.app = Some(app.to_string());
            if !extra.is_empty() {
                return Err(invalid(
                    &HELP,
                    format!("unexpected {}", code(&extra.join(" "))),
                    Some(whats_on.to_string()),
                ));
            }
        }
        extra => {
            return Err(invalid(
                &HELP,
                format!("unexpected {}", code(&extra.join(" "))),
                Some(whats_on.to_string()),
            ));
        }
    }
    Ok(Command::WhatsOn(whats_on))
}

impl fmt::Display for WhatsOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "whats on {}", self.environment)?;
        if let Some(app) = &self.app {
            write!(f, " for {app}")?;
        }
        Ok(())
    }
}
