//! `unlock`: release a lock.

use std::fmt;

use crate::lock::deploy_lock_parts;
use crate::options::{Form, Kind, Param};
use crate::{
    code, invalid, is, is_dash, splice, Command, CommandHelp, Example, Head, Name, ParseError,
};

/// Release the lock on an environment (for every app, or for one).
///
/// ```text
/// unlock[!] ENV [on APP]
/// ```
///
/// `unlock` releases the user's own lock; `unlock!` releases someone else's, which
/// takes the force permission there (as taking one over with `lock!` does), and the
/// bot tells the holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    /// `unlock!`: release a lock someone else holds.
    pub force: bool,
    /// The environment to unlock.
    pub environment: String,
    /// The app whose lock to release; `None` for the environment-wide lock.
    pub app: Option<String>,
}

const PARAMS: &[Param] = &[
    Param::required(
        "environment",
        Kind::Environment,
        "The environment, or an alias (e.g. production)",
    ),
    Param::optional("app", Kind::App, "The app; default: this channel's"),
    Param::optional(
        "force",
        Kind::Flag,
        "Release a lock someone else holds (if your role may; they are told)",
    ),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Unlock(Unlock {
        force: form.flag("force"),
        environment: form.needed("environment")?,
        app: form.word("app")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "unlock",
    params: PARAMS,
    from_options,
    grammar: "unlock[!] ENV [on APP]",
    summary: "Release the lock on an environment.",
    details: "`on APP` releases the lock held for that app only. \
`unlock` releases your own lock; `unlock!` releases someone else's, if your role may force there (they are told).",
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
            canonical: "unlock! Production",
        },
        Example {
            input: "deploy:unlock api to production",
            canonical: "unlock production on api",
        },
        Example {
            input: "deploy:unlock! api to production",
            canonical: "unlock! production on api",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    let mut unlock = Unlock {
        force: head.bang,
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
            unlock.app = Some(head.app_after_on(&HELP, args, i)?.to_string());
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
        force: parts.force,
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
        let bang = if self.force { "!" } else { "" };
        write!(f, "unlock{bang} {}", self.environment)?;
        if let Some(app) = &self.app {
            write!(f, " on {app}")?;
        }
        Ok(())
    }
}
