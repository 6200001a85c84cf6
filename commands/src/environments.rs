//! `environments`, `where can i deploy APP`, `where is APP`.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{
    code, invalid, is, strip_question, Command, CommandHelp, Example, Head, Name, ParseError,
};

/// List the environments an app can be deployed to, with what is live in each and
/// whether it is locked or frozen; without an app, every app's.
///
/// ```text
/// environments [APP]
/// where can i deploy APP
/// where is APP [deployed]
/// ```
///
/// `where` is an everyday word, so a line starting with it is only a command when it
/// goes on as one of these phrases; `where did everyone go` is not a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environments {
    /// The app; `None` for all apps.
    pub app: Option<String>,
}

const PARAMS: &[Param] = &[Param::optional(
    "app",
    Kind::App,
    "Only this app; default: every app of this channel",
)];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Environments(Environments {
        app: form.word("app")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "environments",
    params: PARAMS,
    from_options,
    grammar: "environments [APP] | where can i deploy APP | where is APP",
    summary: "Show where an app can be deployed, what is live there and what is locked.",
    details: "Without an app, shows every app that may be deployed from this channel. \
Each environment: what is live there (sha, who, when), whether it is locked or frozen, whether you may deploy. \
`envs` is short for `environments`.",
    examples: &[
        Example {
            input: "environments",
            canonical: "environments",
        },
        Example {
            input: "environments api",
            canonical: "environments api",
        },
        Example {
            input: "where can i deploy api",
            canonical: "environments api",
        },
        Example {
            input: "Where can I deploy Api?",
            canonical: "environments Api",
        },
        Example {
            input: "where is api",
            canonical: "environments api",
        },
        Example {
            input: "where is api deployed?",
            canonical: "environments api",
        },
        Example {
            input: "envs for api",
            canonical: "environments api",
        },
    ],
};

/// `environments [for] [APP]`.
pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let mut words = strip_question(args);
    // `envs for api`; only with an app after it, so that an app named `for` survives.
    if words.len() == 2 && (is(words[0], "for") || is(words[0], "of")) {
        words.remove(0);
    }
    match words.as_slice() {
        [] => Ok(Command::Environments(Environments { app: None })),
        [app] => app_only(app),
        [app, extra @ ..] => Err(unexpected(app, extra)),
    }
}

/// `where can i deploy APP`, `where is APP [deployed]`; anything else that starts
/// with `where` is conversation, not a command.
pub(crate) fn parse_where(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    let words = strip_question(args);
    let rest: &[&str] = match words.as_slice() {
        [can, rest @ ..] if is(can, "can") => {
            let rest = match rest {
                [who, rest @ ..] if ["i", "we", "you"].iter().any(|w| is(who, w)) => rest,
                _ => rest,
            };
            match rest {
                [deploy, rest @ ..] if is(deploy, "deploy") => rest,
                _ => return Err(ParseError::NotACommand),
            }
        }
        [is_, rest @ ..] if is(is_, "is") => match rest {
            [] | [_] => rest,
            [_, state] if ["deployed", "running", "live"].iter().any(|w| is(state, w)) => {
                &rest[..1]
            }
            _ => return Err(ParseError::NotACommand),
        },
        _ => return Err(ParseError::NotACommand),
    };
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    match rest {
        [] => Err(invalid(
            &HELP,
            "which app? name it",
            Some("environments APP".to_string()),
        )),
        [app] => app_only(app),
        [app, extra @ ..] => Err(unexpected(app, extra)),
    }
}

fn app_only(app: &str) -> Result<Command, ParseError> {
    Name::App.check(app).map_err(|p| invalid(&HELP, p, None))?;
    Ok(Command::Environments(Environments {
        app: Some(app.to_string()),
    }))
}

fn unexpected(app: &str, extra: &[&str]) -> ParseError {
    let suggestion = Name::App.is_valid(app).then(|| {
        Environments {
            app: Some(app.to_string()),
        }
        .to_string()
    });
    invalid(
        &HELP,
        format!("unexpected {}; name one app", code(&extra.join(" "))),
        suggestion,
    )
}

impl fmt::Display for Environments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("environments")?;
        if let Some(app) = &self.app {
            write!(f, " {app}")?;
        }
        Ok(())
    }
}
