//! `unlock`: release a lock.

use std::fmt;

use crate::lock::deploy_lock_parts;
use crate::{
    code, invalid, is, is_dash, splice, Command, CommandHelp, Example, Head, Name, ParseError,
};

/// Release the lock on an environment (for every app, or for one).
///
/// ```text
/// unlock[!] ENV [on APP]
/// ```
///
/// `unlock!` is accepted for symmetry with `lock!`; whether someone may release a
/// lock they do not hold is the bot's decision (by role), so the `!` carries nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    /// The environment to unlock.
    pub environment: String,
    /// The app whose lock to release; `None` for the environment-wide lock.
    pub app: Option<String>,
}

pub const HELP: CommandHelp = CommandHelp {
    name: "unlock",
    grammar: "unlock[!] ENV [on APP]",
    summary: "Release the lock on an environment.",
    details: "`on APP` releases the lock held for that app only. \
Releasing someone else's lock needs a role that may.",
    examples: &[
        Example {
            input: "unlock staging",
            canonical: "unlock staging",
        },
        Example {
            input: "unlock production on api",
            canonical: "unlock production on api",
        },
        Example {
            input: "UNLOCK! Production",
            canonical: "unlock Production",
        },
        Example {
            input: "deploy:unlock api to production",
            canonical: "unlock production on api",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    let mut unlock = Unlock {
        environment: String::new(),
        app: None,
    };
    match args.first() {
        Some(&env) if !is(env, "on") && !is_dash(env) => {
            Name::Environment
                .check(env)
                .map_err(|p| invalid(&HELP, p, None))?;
            unlock.environment = env.to_string();
        }
        _ => {
            return Err(invalid(
                &HELP,
                "unlock what? name the environment",
                head.retry(head.first, &splice(args, 0..0, &["ENV"])),
            ));
        }
    }
    let mut extras = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let word = args[i];
        if is(word, "on") && unlock.app.is_none() {
            let Some(&app) = args.get(i + 1).filter(|a| !is_dash(a)) else {
                return Err(invalid(
                    &HELP,
                    "no app after `on`",
                    head.retry(head.first, &splice(args, i + 1..i + 1, &["APP"])),
                ));
            };
            Name::App.check(app).map_err(|p| invalid(&HELP, p, None))?;
            unlock.app = Some(app.to_string());
            i += 2;
            continue;
        }
        if is_dash(word) {
            // A reason belongs to the lock; unlocking needs none.
            return Err(invalid(
                &HELP,
                "`unlock` takes no reason",
                Some(unlock.to_string()),
            ));
        }
        extras.push(word);
        i += 1;
    }
    if !extras.is_empty() {
        return Err(invalid(
            &HELP,
            format!("unexpected {}", code(&extras.join(" "))),
            Some(unlock.to_string()),
        ));
    }
    Ok(Command::Unlock(unlock))
}

/// `deploy:unlock APP to ENV`, hubot-deploy's way to unlock.
pub(crate) fn parse_deploy_unlock(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    let parts = deploy_lock_parts(head, args, &HELP, "unlock")?;
    let (app, environment, reason) = (parts.app, parts.environment, parts.reason);
    let unlock = Unlock {
        environment,
        app: Some(app),
    };
    if reason.is_some() {
        return Err(invalid(
            &HELP,
            "`unlock` takes no reason",
            Some(unlock.to_string()),
        ));
    }
    Ok(Command::Unlock(unlock))
}

impl fmt::Display for Unlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unlock {}", self.environment)?;
        if let Some(app) = &self.app {
            write!(f, " on {app}")?;
        }
        Ok(())
    }
}
