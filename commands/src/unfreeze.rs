//! `unfreeze`: lift a freeze made in chat.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{code, invalid, is, is_dash, Command, CommandHelp, Example, Head, Name, ParseError};

/// Lift a chat freeze: the global one, one environment's, or one app's.
///
/// ```text
/// unfreeze [ENV] [on APP]
/// ```
///
/// It lifts the freeze made with the same `ENV` and `APP` (`unfreeze` alone lifts the
/// global `freeze`). Windows from the config are not lifted: they end on their own,
/// and break-glass (`deploy! … -- REASON`) gets through them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfreeze {
    /// The environment whose freeze to lift; `None` for the one on every environment.
    pub environment: Option<String>,
    /// The app whose freeze to lift; `None` for the one on every app.
    pub app: Option<String>,
}

const PARAMS: &[Param] = &[
    Param::optional(
        "environment",
        Kind::Environment,
        "The environment, as frozen; default: the freeze on every environment",
    ),
    Param::optional(
        "app",
        Kind::App,
        "The app, as frozen; default: the freeze on every app",
    ),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Unfreeze(Unfreeze {
        environment: form.word("environment")?,
        app: form.word("app")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "unfreeze",
    params: PARAMS,
    from_options,
    grammar: "unfreeze [ENV] [on APP]",
    summary: "Lift a freeze made in chat.",
    details: "Name it as it was frozen: `unfreeze` lifts `freeze -- …`, `unfreeze production` lifts `freeze production -- …`. \
Whoever froze it is told. Who may: as for `freeze`. Windows from the config end on their own.",
    examples: &[
        Example {
            input: "unfreeze",
            canonical: "unfreeze",
        },
        Example {
            input: "unfreeze production",
            canonical: "unfreeze production",
        },
        Example {
            input: "UNFREEZE production on api",
            canonical: "unfreeze production on api",
        },
        Example {
            input: "unfreeze on api",
            canonical: "unfreeze on api",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let mut unfreeze = Unfreeze {
        environment: None,
        app: None,
    };
    let mut i = 0;
    while i < args.len() {
        let word = args[i];
        if is(word, "on") && unfreeze.app.is_none() {
            unfreeze.app = Some(head.app_after_on(&HELP, args, i)?.to_string());
            i += 2;
            continue;
        }
        if is_dash(word) {
            return Err(invalid(
                &HELP,
                "`unfreeze` takes no reason",
                Some(unfreeze.to_string()),
            ));
        }
        if i == 0 {
            Name::Environment
                .check(word)
                .map_err(|p| invalid(&HELP, p, None))?;
            unfreeze.environment = Some(word.to_string());
            i += 1;
            continue;
        }
        return Err(invalid(
            &HELP,
            format!("unexpected {}", code(&args[i..].join(" "))),
            Some(unfreeze.to_string()),
        ));
    }
    Ok(Command::Unfreeze(unfreeze))
}

impl fmt::Display for Unfreeze {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unfreeze")?;
        if let Some(env) = &self.environment {
            write!(f, " {env}")?;
        }
        if let Some(app) = &self.app {
            write!(f, " on {app}")?;
        }
        Ok(())
    }
}
