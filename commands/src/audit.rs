//! `audit`: who did what.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{
    code, invalid, is_dash, is_env_prep, splice, Command, CommandHelp, Example, Head, Name,
    ParseError,
};

/// Show the bot's audit log: deploys, rollbacks, locks, forced deploys, refusals, with
/// who asked and when.
///
/// ```text
/// audit [APP] [in ENV]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// Only entries about this app.
    pub app: Option<String>,
    /// Only entries about this environment.
    pub environment: Option<String>,
}

const PARAMS: &[Param] = &[
    Param::optional("app", Kind::App, "Only this app"),
    Param::optional("environment", Kind::Environment, "Only this environment"),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Audit(Audit {
        app: form.word("app")?,
        environment: form.word("environment")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "audit",
    params: PARAMS,
    from_options,
    grammar: "audit [APP] [in ENV]",
    summary: "Show who deployed, rolled back, locked or forced what, and when.",
    details: "The last 20 command attempts: who, where, what, and the decision with its rule. \
Narrow it to an app, an environment, or both. `to` and `on` work like `in`.",
    examples: &[
        Example {
            input: "audit",
            canonical: "audit",
        },
        Example {
            input: "audit api",
            canonical: "audit api",
        },
        Example {
            input: "audit api in production",
            canonical: "audit api in production",
        },
        Example {
            input: "AUDIT in Staging",
            canonical: "audit in Staging",
        },
        Example {
            input: "audit api on production",
            canonical: "audit api in production",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let mut audit = Audit {
        app: None,
        environment: None,
    };
    let mut i = 0;
    if let Some(&app) = args.first().filter(|w| !is_env_prep(w) && !is_dash(w)) {
        Name::App.check(app).map_err(|p| invalid(&HELP, p, None))?;
        audit.app = Some(app.to_string());
        i = 1;
    }
    if let Some(&prep) = args.get(i).filter(|w| is_env_prep(w)) {
        let Some(&env) = args.get(i + 1) else {
            return Err(invalid(
                &HELP,
                format!("no environment after {}", code(prep)),
                head.retry(head.first, &splice(args, i + 1..i + 1, &["ENV"])),
            ));
        };
        Name::Environment
            .check(env)
            .map_err(|p| invalid(&HELP, p, None))?;
        audit.environment = Some(env.to_string());
        i += 2;
    }
    let extra = &args[i..];
    if !extra.is_empty() {
        // `audit api staging`: one word too many, and it reads as an environment.
        let suggestion = match extra {
            [env]
                if audit.environment.is_none()
                    && Name::Environment.is_valid(env)
                    && !is_env_prep(env) =>
            {
                head.retry(head.first, &splice(args, i..i, &["in"]))
            }
            _ => Some(audit.to_string()),
        };
        return Err(invalid(
            &HELP,
            format!("unexpected {}", code(&extra.join(" "))),
            suggestion,
        ));
    }
    Ok(Command::Audit(audit))
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("audit")?;
        if let Some(app) = &self.app {
            write!(f, " {app}")?;
        }
        if let Some(env) = &self.environment {
            write!(f, " in {env}")?;
        }
        Ok(())
    }
}
