//! `freeze`: stop every deploy (the global lock), or those to one environment or app.

use std::fmt;
use std::time::Duration;

use crate::duration::duration_at;
use crate::options::{Form, Kind, Param};
use crate::{
    code, format_duration, invalid, is, is_dash, splice, Command, CommandHelp, Example, Head, Name,
    ParseError,
};

/// Freeze deploys: everywhere, to one environment (of every app), or to one app.
///
/// ```text
/// freeze [ENV] [on APP] [for DURATION] -- REASON
/// ```
///
/// Without `ENV` every environment is frozen (the global lock); without `on APP`, every
/// app. The reason is required, after `--` (the environment is optional, so a word
/// before `--` is read as one). Without `for` the freeze lasts until `unfreeze`;
/// with it, from [`MIN_FREEZE`] to [`MAX_FREEZE`]. Unlike a lock, nobody may deploy
/// through it, not even whoever froze it, except by break-glass: `deploy!` with a
/// reason, by someone with the force permission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    /// The environment to freeze; `None` freezes every environment.
    pub environment: Option<String>,
    /// The app to freeze; `None` freezes every app.
    pub app: Option<String>,
    /// How long; `None` until `unfreeze`. Whole seconds, [`MIN_FREEZE`] to [`MAX_FREEZE`].
    pub duration: Option<Duration>,
    /// Why, shown to whoever runs into the freeze: whitespace runs made single spaces.
    pub reason: String,
}

/// The shortest freeze.
pub const MIN_FREEZE: Duration = Duration::from_secs(60);

/// The longest freeze with `for`; without `for` it lasts until `unfreeze`.
pub const MAX_FREEZE: Duration = Duration::from_secs(30 * 86_400);

/// The one rule for how long a freeze lasts.
pub const FREEZE_RULE: &str = "a freeze lasts until `unfreeze`, or `for DURATION` (1m to 30d)";

const PARAMS: &[Param] = &[
    Param::required(
        "reason",
        Kind::Text,
        "Why, shown to whoever runs into the freeze",
    ),
    Param::optional(
        "environment",
        Kind::Environment,
        "The environment; default: every environment",
    ),
    Param::optional("app", Kind::App, "The app; default: every app"),
    Param::optional(
        "for",
        Kind::Duration,
        "How long, 1m to 30d (e.g. 2h); default: until unfreeze",
    ),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Freeze(Freeze {
        environment: form.word("environment")?,
        app: form.word("app")?,
        duration: form.duration("for")?,
        reason: form
            .line("reason")
            .ok_or_else(|| "`/freeze` needs `reason`".to_string())?,
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "freeze",
    params: PARAMS,
    from_options,
    grammar: "freeze [ENV] [on APP] [for DURATION] -- REASON",
    summary: "Freeze deploys: everywhere, to one environment, or of one app.",
    details: "Without `ENV` every environment is frozen (the global lock); without `on APP`, every app. \
The reason after `--` is required. It lasts until `unfreeze`, or `for 2h` (1m to 30d). \
Nobody deploys through a freeze, not even who froze it, except by break-glass: `deploy! … -- REASON` \
by someone who may force there, which is announced. \
Freezing what is frozen replaces it. Who may: the `freeze` rule, else whoever may lock. \
Recurring and dated windows go in the config (`[[freeze]]`); `why ENV` shows them.",
    examples: &[
        Example {
            input: "freeze -- release day",
            canonical: "freeze -- release day",
        },
        Example {
            input: "freeze production -- incident 4711",
            canonical: "freeze production -- incident 4711",
        },
        Example {
            input: "FREEZE production on api for 2h — db migration",
            canonical: "freeze production on api for 2h -- db migration",
        },
        Example {
            input: "freeze for 90m on api -- load test",
            canonical: "freeze on api for 1h30m -- load test",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    head.no_bang(&HELP, args)?;
    let mut freeze = Freeze {
        environment: None,
        app: None,
        duration: None,
        reason: String::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let word = args[i];
        if is_dash(word) {
            let reason = &args[i + 1..];
            if reason.is_empty() {
                break;
            }
            freeze.reason = reason.join(" ");
            return Ok(Command::Freeze(freeze));
        }
        if is(word, "on") && freeze.app.is_none() {
            freeze.app = Some(head.app_after_on(&HELP, args, i)?.to_string());
            i += 2;
            continue;
        }
        if is(word, "for") && freeze.duration.is_none() {
            let Some((duration, used)) = duration_at(&args[i + 1..]) else {
                let shown = args.get(i + 1).copied().unwrap_or("");
                return Err(invalid(
                    &HELP,
                    if shown.is_empty() || is_dash(shown) {
                        format!(
                            "no duration after `for`; write one like `2h` or `1d`; {FREEZE_RULE}"
                        )
                    } else {
                        format!(
                            "{} is not a duration: use s, m, h, d or w, as in `2h` or `1d`; {FREEZE_RULE}",
                            code(shown)
                        )
                    },
                    None,
                ));
            };
            if duration < MIN_FREEZE || duration > MAX_FREEZE {
                let bound = format_duration(if duration < MIN_FREEZE {
                    MIN_FREEZE
                } else {
                    MAX_FREEZE
                });
                let fixed = splice(args, i + 1..i + 1 + used, &[bound.as_str()]);
                return Err(invalid(
                    &HELP,
                    format!(
                        "`for {}` is out of range: {FREEZE_RULE}",
                        format_duration(duration)
                    ),
                    head.retry(head.first, &fixed),
                ));
            }
            freeze.duration = Some(duration);
            i += 1 + used;
            continue;
        }
        if i == 0 {
            Name::Environment
                .check(word)
                .map_err(|p| invalid(&HELP, p, None))?;
            freeze.environment = Some(word.to_string());
            i += 1;
            continue;
        }
        // Words that are not part of the command: the reason, missing its `--`.
        return Err(invalid(
            &HELP,
            format!(
                "the reason goes after `--`; {} is not part of `freeze`",
                code(word)
            ),
            head.retry(head.first, &splice(args, i..i, &["--"])),
        ));
    }
    let mut shown = freeze.clone();
    shown.reason = "REASON".into();
    Err(invalid(
        &HELP,
        "say why after `--`: whoever runs into the freeze is told",
        Some(shown.to_string()),
    ))
}

impl fmt::Display for Freeze {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("freeze")?;
        if let Some(env) = &self.environment {
            write!(f, " {env}")?;
        }
        if let Some(app) = &self.app {
            write!(f, " on {app}")?;
        }
        if let Some(duration) = self.duration {
            write!(f, " for {}", format_duration(duration))?;
        }
        write!(f, " -- {}", self.reason)
    }
}
