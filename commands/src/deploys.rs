//! `deploys`: recent deployments of an app.

use std::fmt;

use crate::options::{Form, Kind, Param};
use crate::{
    code, invalid, is, is_dash, is_env_prep, splice, Command, CommandHelp, Example, Head, Name,
    ParseError, RefName,
};

/// List the recent deployments of an app, newest first; GitHub's deployments are the
/// history, so this reads them rather than a log of the bot's own.
///
/// ```text
/// deploys APP[/REF] [in ENV] [last N]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploys {
    /// The app.
    pub app: String,
    /// Only deployments of this ref (`APP/REF`); a valid [`RefName`].
    pub git_ref: Option<String>,
    /// Only deployments to this environment.
    pub environment: Option<String>,
    /// How many to show, 1 to [`MAX_LAST`]; `None` leaves it to the bot.
    pub limit: Option<u32>,
}

/// The most deployments one `deploys` lists: one page of GitHub's API.
pub const MAX_LAST: u32 = 100;

const PARAMS: &[Param] = &[
    Param::required("app", Kind::App, "The app, as configured (e.g. api)"),
    Param::optional(
        "ref",
        Kind::Ref,
        "Only deployments of this branch, tag or sha",
    ),
    Param::optional(
        "environment",
        Kind::Environment,
        "Only deployments to this environment",
    ),
    Param::optional(
        "last",
        Kind::Count {
            min: 1,
            max: MAX_LAST,
        },
        "How many (1 to 100)",
    ),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Deploys(Deploys {
        app: form.needed("app")?,
        git_ref: form.word("ref")?,
        environment: form.word("environment")?,
        limit: form.count("last")?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "deploys",
    params: PARAMS,
    from_options,
    grammar: "deploys APP[/REF] [in ENV] [last N]",
    summary: "List an app's recent deployments, newest first.",
    details:
        "`APP/REF` shows only that ref, `in ENV` only that environment (`to` and `on` work too), \
`last N` the N newest (10 by default, at most 100). Each row: id, ref and sha, environment, who, when, state, log link.",
    examples: &[
        Example {
            input: "deploys api",
            canonical: "deploys api",
        },
        Example {
            input: "deploys api/topic in staging",
            canonical: "deploys api/topic in staging",
        },
        Example {
            input: "DEPLOYS api ON production LAST 5",
            canonical: "deploys api in production last 5",
        },
        Example {
            input: "deploys api last 3 to staging",
            canonical: "deploys api in staging last 3",
        },
    ],
};

fn is_keyword(word: &str) -> bool {
    is_env_prep(word) || is(word, "last") || is_dash(word)
}

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let Some(&spec) = args.first().filter(|w| !is_keyword(w)) else {
        return Err(invalid(
            &HELP,
            "deploys of which app? name it",
            head.retry(head.first, &splice(args, 0..0, &["APP"])),
        ));
    };
    let (app, git_ref) = match spec.split_once('/') {
        None => (spec, None),
        Some((app, git_ref)) => (app, Some(git_ref)),
    };
    Name::App.check(app).map_err(|p| invalid(&HELP, p, None))?;
    if let Some(git_ref) = git_ref {
        RefName::parse(git_ref).map_err(|e| invalid(&HELP, e.to_string(), None))?;
    }
    let mut deploys = Deploys {
        app: app.to_string(),
        git_ref: git_ref.map(str::to_string),
        environment: None,
        limit: None,
    };
    let mut extras = Vec::new();
    let mut i = 1;
    while i < args.len() {
        let word = args[i];
        if is_env_prep(word) && deploys.environment.is_none() {
            let Some(&env) = args.get(i + 1).filter(|w| !is_keyword(w)) else {
                return Err(invalid(
                    &HELP,
                    format!("no environment after {}", code(word)),
                    head.retry(head.first, &splice(args, i + 1..i + 1, &["ENV"])),
                ));
            };
            Name::Environment
                .check(env)
                .map_err(|p| invalid(&HELP, p, None))?;
            deploys.environment = Some(env.to_string());
            i += 2;
            continue;
        }
        if is(word, "last") && deploys.limit.is_none() {
            let Some(&n) = args.get(i + 1).filter(|w| !is_keyword(w)) else {
                return Err(invalid(
                    &HELP,
                    "no number after `last`",
                    head.retry(head.first, &splice(args, i + 1..i + 1, &["10"])),
                ));
            };
            match n.parse::<u32>() {
                Ok(limit) if (1..=MAX_LAST).contains(&limit) => {
                    deploys.limit = Some(limit);
                    i += 2;
                    continue;
                }
                _ => {
                    // In-range numbers matched above: a positive number left is too big.
                    let positive =
                        n.bytes().all(|b| b.is_ascii_digit()) && n.bytes().any(|b| b != b'0');
                    let fix = if positive {
                        MAX_LAST.to_string()
                    } else {
                        "10".to_string()
                    };
                    return Err(invalid(
                        &HELP,
                        format!(
                            "`last` takes a number from 1 to {MAX_LAST}, not {}",
                            code(n)
                        ),
                        head.retry(head.first, &splice(args, i + 1..i + 2, &[fix.as_str()])),
                    ));
                }
            }
        }
        let alone = i + 1 == args.len();
        if deploys.limit.is_none() && word.parse::<u32>().is_ok() {
            return Err(invalid(
                &HELP,
                "write `last` before the number",
                head.retry(head.first, &splice(args, i..i, &["last"])),
            ));
        }
        if deploys.environment.is_none()
            && alone
            && extras.is_empty()
            && Name::Environment.is_valid(word)
            && !is_keyword(word)
        {
            return Err(invalid(
                &HELP,
                "write `in` before the environment",
                head.retry(head.first, &splice(args, i..i, &["in"])),
            ));
        }
        extras.push(word);
        i += 1;
    }
    if !extras.is_empty() {
        return Err(invalid(
            &HELP,
            format!("unexpected {}", code(&extras.join(" "))),
            Some(deploys.to_string()),
        ));
    }
    Ok(Command::Deploys(deploys))
}

impl fmt::Display for Deploys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deploys {}", self.app)?;
        if let Some(git_ref) = &self.git_ref {
            write!(f, "/{git_ref}")?;
        }
        if let Some(env) = &self.environment {
            write!(f, " in {env}")?;
        }
        if let Some(limit) = self.limit {
            write!(f, " last {limit}")?;
        }
        Ok(())
    }
}
