//! `rollback`: redeploy the previous successful deployment.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{
    code, invalid, is, is_dash, is_env_prep, option_habit, splice, split_reason, Command,
    CommandHelp, Example, Head, Name, ParseError,
};

/// Redeploy the sha of the deployment before the current one that succeeded in an
/// environment.
///
/// ```text
/// rollback[!] APP [in|to|on ENV] [force] [-- REASON]
/// ```
///
/// It takes an app, not a ref: what to go back to comes from GitHub's deployment
/// history. `!` and a trailing `force` mean the same, as for `deploy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The app.
    pub app: String,
    /// The environment; `None` means the app's default.
    pub environment: Option<String>,
    /// `!` or `force`: skip the required status checks.
    pub force: bool,
    /// Everything after `--`, with whitespace runs made single spaces.
    pub reason: Option<String>,
}

const PARAMS: &[Param] = &[
    Param::required("app", Kind::App, "The app to roll back (e.g. api)"),
    Param::optional(
        "environment",
        Kind::Environment,
        "The environment, or an alias; default: the app's",
    ),
    Param::optional(
        "force",
        Kind::Flag,
        "Skip the required checks (if your role may)",
    ),
    Param::optional(
        "reason",
        Kind::Text,
        "Why; needed to force a production rollback",
    ),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Rollback(Rollback {
        app: form.needed("app")?,
        environment: form.word("environment")?,
        force: form.flag("force"),
        reason: form.line("reason"),
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "rollback",
    params: PARAMS,
    from_options,
    grammar: "rollback[!] APP [in|to|on ENV] [force] [-- REASON]",
    summary: "Redeploy the previous successful deployment of an app.",
    details:
        "Without `in ENV` the app's default environment is used; `to` and `on` work like `in`. \
It redeploys the exact sha of the deployment before the live one, and says which sha goes back and what it replaces; \
after a failed or errored deploy, it puts back what was live before that one. \
The same rules as for `deploy` apply: roles, locks, confirmation. \
`!` or a trailing `force` skips the required status checks, if your role may. \
Everything after `--` is the reason.",
    examples: &[
        Example {
            input: "rollback api",
            canonical: "rollback api",
        },
        Example {
            input: "rollback api in production",
            canonical: "rollback api in production",
        },
        Example {
            input: "rollback! api to production -- bad migration",
            canonical: "rollback! api in production -- bad migration",
        },
        Example {
            input: "ROLLBACK Api ON staging FORCE",
            canonical: "rollback! Api in staging",
        },
    ],
};

fn is_keyword(word: &str) -> bool {
    is_env_prep(word) || is(word, "force") || is_dash(word)
}

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    let (words, reason_words) = split_reason(args);
    let Some(&app) = words.first().filter(|w| !is_keyword(w)) else {
        return Err(invalid(
            &HELP,
            "rollback what? name the app",
            head.retry(head.first, &splice(args, 0..0, &["APP"])),
        ));
    };
    if let Some((bare, _)) = app
        .split_once('/')
        .filter(|(bare, _)| Name::App.is_valid(bare))
    {
        return Err(invalid(
            &HELP,
            "rollback takes an app, not a ref: it goes back to the previous successful deployment (to deploy a ref, use `deploy`)",
            head.retry(head.first, &splice(args, 0..1, &[bare])),
        ));
    }
    Name::App.check(app).map_err(|p| invalid(&HELP, p, None))?;
    let mut rollback = Rollback {
        app: app.to_string(),
        environment: None,
        force: head.bang,
        reason: None,
    };
    let mut extras = Vec::new();
    let mut extras_trail = true;
    let mut i = 1;
    while i < words.len() {
        let word = words[i];
        if is(word, "force") {
            rollback.force = true;
            extras_trail = extras.is_empty();
            i += 1;
            continue;
        }
        if let Some((problem, instead)) = option_habit(word, "rollback") {
            let instead: Vec<&str> = instead.iter().map(String::as_str).collect();
            return Err(invalid(
                &HELP,
                problem,
                head.retry(head.first, &splice(args, i..i + 1, &instead)),
            ));
        }
        if let (true, Some(env)) = (is_env_prep(word), &rollback.environment) {
            let end = (i + 2).min(words.len());
            return Err(invalid(
                &HELP,
                format!(
                    "two environments ({} and the one after {}): roll back one at a time",
                    code(env),
                    code(word)
                ),
                head.retry(head.first, &splice(args, i..end, &[])),
            ));
        }
        if is_env_prep(word) {
            let Some(&env) = words.get(i + 1).filter(|w| !is_keyword(w)) else {
                return Err(invalid(
                    &HELP,
                    format!("no environment after {}", code(word)),
                    head.retry(head.first, &splice(args, i + 1..i + 1, &["ENV"])),
                ));
            };
            Name::Environment
                .check(env)
                .map_err(|p| invalid(&HELP, p, None))?;
            rollback.environment = Some(env.to_string());
            extras_trail = extras.is_empty();
            i += 2;
            continue;
        }
        let rest_is_force = words[i + 1..].iter().all(|w| is(w, "force"));
        if rollback.environment.is_none()
            && rest_is_force
            && !is_keyword(word)
            && Name::Environment.is_valid(word)
        {
            return Err(invalid(
                &HELP,
                "rollback needs `in` before the environment",
                head.retry(head.first, &splice(args, i..i, &["in"])),
            ));
        }
        extras.push(word);
        i += 1;
    }
    if let Some(reason) = reason_words {
        if reason.is_empty() {
            return Err(invalid(
                &HELP,
                "the reason after `--` is empty; write one, or leave out `--`",
                Some(rollback.to_string()),
            ));
        }
        rollback.reason = Some(reason.join(" "));
    }
    if !extras.is_empty() {
        let said = extras.join(" ");
        let mut problem = format!("unexpected {}", code(&said));
        let mut fixed = rollback.clone();
        if extras_trail && fixed.reason.is_none() {
            problem.push_str("; a reason goes after `--`");
            fixed.reason = Some(said);
        }
        return Err(invalid(&HELP, problem, Some(fixed.to_string())));
    }
    Ok(Command::Rollback(rollback))
}

impl fmt::Display for Rollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.force { "rollback!" } else { "rollback" })?;
        write!(f, " {}", self.app)?;
        if let Some(env) = &self.environment {
            write!(f, " in {env}")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, " -- {reason}")?;
        }
        Ok(())
    }
}
