//! `lock`: keep others from deploying to an environment.

use std::fmt;
use std::time::Duration;

use crate::duration::duration_at;
use crate::options::{Form, Kind, Param};
use crate::{
    code, format_duration, invalid, is, is_dash, is_env_prep, parse_duration, splice, split_reason,
    Command, CommandHelp, Example, Head, Name, ParseError,
};

/// Lock an environment, for every app or for one, so that only the holder deploys.
///
/// ```text
/// lock[!] ENV [on APP] [for DURATION] [REASON]
/// ```
///
/// A lock lasts `for DURATION`, from [`MIN_LOCK`] to [`MAX_LOCK`]; without `for`, the
/// bot's `lock_ttl` (4h unless configured). The reason is the rest of the line, and
/// the `--` before it is optional: `lock production for 2h db migration` has the
/// reason `db migration`. `for` followed by a word that does not start with a digit
/// starts the reason (`lock staging for the demo`); one that does must be a duration
/// (`for 10y` is refused, not kept as a reason). `!` takes the lock over from whoever
/// holds it, if the user's role allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    /// `lock!`: take over a lock someone else holds.
    pub force: bool,
    /// The environment to lock.
    pub environment: String,
    /// Lock for this app only; `None` locks the environment for every app.
    pub app: Option<String>,
    /// How long the lock lasts; `None` for the bot's default (`lock_ttl`). Whole
    /// seconds, from [`MIN_LOCK`] to [`MAX_LOCK`].
    pub duration: Option<Duration>,
    /// Why, shown to whoever runs into the lock: the rest of the line, with
    /// whitespace runs made single spaces.
    pub reason: Option<String>,
}

/// The shortest lock.
pub const MIN_LOCK: Duration = Duration::from_secs(60);

/// The longest lock, with `for` or by default: a forgotten lock must not block a team
/// for weeks. The bot's `lock_ttl` is held to the same bounds.
pub const MAX_LOCK: Duration = Duration::from_secs(7 * 86_400);

/// The one rule for how long a lock lasts, as help, errors and the README say it.
pub const LOCK_RULE: &str =
    "a lock lasts `for DURATION` (1m to 7d), or `lock_ttl` without `for` (4h unless configured); `unlock` ends it sooner";

const PARAMS: &[Param] = &[
    Param::required(
        "environment",
        Kind::Environment,
        "The environment, or an alias (e.g. production)",
    ),
    Param::optional("app", Kind::App, "The app; default: this channel's"),
    Param::optional(
        "for",
        Kind::Duration,
        "How long, 1m to 7d (e.g. 2h); without it, lock_ttl (4h unless configured)",
    ),
    Param::optional(
        "reason",
        Kind::Text,
        "Why, shown to whoever runs into the lock",
    ),
    Param::optional(
        "force",
        Kind::Flag,
        "Take over a lock someone else holds (if your role may)",
    ),
];

fn from_options(form: &Form<'_>) -> Result<Command, String> {
    Ok(Command::Lock(Lock {
        force: form.flag("force"),
        environment: form.needed("environment")?,
        app: form.word("app")?,
        duration: form.duration("for")?,
        reason: form.line("reason"),
    }))
}

pub const HELP: CommandHelp = CommandHelp {
    name: "lock",
    params: PARAMS,
    from_options,
    grammar: "lock[!] ENV [on APP] [for DURATION] [REASON]",
    summary: "Lock an environment so that only you deploy there.",
    details: "`on APP` locks it for one app; without it, for every app. \
`for 2h` (or `90m`, `1d`, `1h30m`, `2 hours`) sets how long it lasts, from 1m to 7d; \
without `for` it lasts `lock_ttl` (4h unless configured); `unlock` ends it sooner. \
Locking again what you hold renews it. \
The rest of the line is the reason; `--` before it is optional. \
`lock!` takes over a lock someone else holds, if your role may force there (they are told). \
A lock held longer than `lock_remind_after` (2h unless configured) reminds its holder once per interval: Keep renews it, Unlock releases it; a released or expired lock gives the environment to the first in `queue`.",
    examples: &[
        Example {
            input: "lock staging",
            canonical: "lock staging",
        },
        Example {
            input: "lock! staging",
            canonical: "lock! staging",
        },
        Example {
            input: "lock production on api for 2h db migration",
            canonical: "lock production on api for 2h -- db migration",
        },
        Example {
            input: "LOCK production FOR 90m -- release freeze",
            canonical: "lock production for 1h30m -- release freeze",
        },
        Example {
            input: "lock production for 2 hours on api",
            canonical: "lock production on api for 2h",
        },
        Example {
            input: "lock staging for the demo",
            canonical: "lock staging -- for the demo",
        },
        Example {
            input: "deploy:lock api to production",
            canonical: "lock production on api",
        },
    ],
};

pub(crate) fn parse(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    head.no_task(&HELP, args)?;
    let mut lock = Lock {
        force: head.bang,
        environment: String::new(),
        app: None,
        duration: None,
        reason: None,
    };
    match args.first() {
        Some(&env) if !is(env, "on") && !is(env, "for") && !is_dash(env) => {
            Name::Environment
                .check(env)
                .map_err(|p| invalid(&HELP, p, None))?;
            lock.environment = env.to_string();
        }
        _ => {
            return Err(invalid(
                &HELP,
                "lock what? name the environment",
                head.retry(head.first, &splice(args, 0..0, &["ENV"])),
            ));
        }
    }
    let mut i = 1;
    while i < args.len() {
        let word = args[i];
        if is_dash(word) {
            let reason = &args[i + 1..];
            if reason.is_empty() {
                return Err(invalid(
                    &HELP,
                    "the reason after `--` is empty; write one, or leave out `--`",
                    Some(lock.to_string()),
                ));
            }
            lock.reason = Some(reason.join(" "));
            break;
        }
        if is(word, "on") && lock.app.is_none() {
            lock.app = Some(head.app_after_on(&HELP, args, i)?.to_string());
            i += 2;
            continue;
        }
        if is(word, "for") && lock.duration.is_none() {
            if let Some((duration, used)) = duration_at(&args[i + 1..]) {
                if duration < MIN_LOCK || duration > MAX_LOCK {
                    let bound = if duration < MIN_LOCK {
                        MIN_LOCK
                    } else {
                        MAX_LOCK
                    };
                    let bound = format_duration(bound);
                    let fixed = splice(args, i + 1..i + 1 + used, &[bound.as_str()]);
                    return Err(invalid(
                        &HELP,
                        format!(
                            "`for {}` is out of range: {LOCK_RULE}",
                            format_duration(duration)
                        ),
                        head.retry(head.first, &fixed),
                    ));
                }
                lock.duration = Some(duration);
                i += 1 + used;
                continue;
            }
            // `for 10y`, `for 2 months`: meant as a duration, not as a reason.
            if let Some(&next) = args
                .get(i + 1)
                .filter(|w| w.starts_with(|c: char| c.is_ascii_digit()))
            {
                return Err(invalid(
                    &HELP,
                    format!(
                        "{} is not a duration: use s, m, h, d or w, as in `2h` or `1d`; {LOCK_RULE}",
                        code(next)
                    ),
                    None,
                ));
            }
            if i + 1 == args.len() {
                return Err(invalid(
                    &HELP,
                    "no duration after `for`; write one like `2h`, `90m` or `1d`",
                    head.retry(head.first, &splice(args, i + 1..i + 1, &["1h"])),
                ));
            }
        }
        // `lock staging 2h`: a duration where the reason would start lacks its `for`.
        if lock.duration.is_none() && parse_duration(word).is_some_and(|d| !d.is_zero()) {
            return Err(invalid(
                &HELP,
                format!("write `for` before the duration {}", code(word)),
                head.retry(head.first, &splice(args, i..i, &["for"])),
            ));
        }
        // Anything else starts the reason, which runs to the end of the line.
        lock.reason = Some(args[i..].join(" "));
        break;
    }
    Ok(Command::Lock(lock))
}

/// `deploy:lock[!] APP to ENV [force] [-- REASON]`, hubot-deploy's way to lock.
pub(crate) fn parse_deploy_lock(head: &Head<'_>, args: &[&str]) -> Result<Command, ParseError> {
    let first = if head.bang { "lock!" } else { "lock" };
    let DeployLockParts {
        app,
        environment,
        force,
        reason,
    } = deploy_lock_parts(head, args, &HELP, first)?;
    let mut lock = Lock {
        force,
        environment,
        app: Some(app),
        duration: None,
        reason: None,
    };
    if let Some(reason) = reason {
        if reason.is_empty() {
            return Err(invalid(
                &HELP,
                "the reason after `--` is empty; write one, or leave out `--`",
                Some(lock.to_string()),
            ));
        }
        lock.reason = Some(reason.join(" "));
    }
    Ok(Command::Lock(lock))
}

/// What `deploy:lock` and `deploy:unlock` lines hold.
pub(crate) struct DeployLockParts<'a> {
    pub app: String,
    pub environment: String,
    pub force: bool,
    /// The words after `--`, if there was one.
    pub reason: Option<Vec<&'a str>>,
}

/// The `APP to ENV [force]` part shared by `deploy:lock` and `deploy:unlock`, with the
/// reason words after `--`. Suggestions are in the modern form, `VERB ENV on APP`.
pub(crate) fn deploy_lock_parts<'a>(
    head: &Head<'_>,
    args: &[&'a str],
    help: &'static CommandHelp,
    verb: &str,
) -> Result<DeployLockParts<'a>, ParseError> {
    // `for` too: `lock for` would read it as a duration, not an environment.
    let keyword = |w: &str| is_env_prep(w) || is(w, "for") || is(w, "force") || is_dash(w);
    let (words, reason) = split_reason(args);
    let reason_tail: Vec<&str> = match reason {
        Some(r) => splice(r, 0..0, &["--"]),
        None => Vec::new(),
    };
    let Some(&app) = words.first().filter(|w| !keyword(w)) else {
        return Err(invalid(
            help,
            format!(
                "{} needs an app and an environment: `{verb} ENV on APP`",
                code(head.first)
            ),
            head.retry(verb, &splice(&reason_tail, 0..0, &["ENV"])),
        ));
    };
    Name::App.check(app).map_err(|p| invalid(help, p, None))?;
    let mut force = head.bang;
    let mut environment = None;
    let mut extras = Vec::new();
    let mut i = 1;
    while i < words.len() {
        let word = words[i];
        if is(word, "force") {
            force = true;
            i += 1;
        } else if is_env_prep(word) && environment.is_none() {
            match words.get(i + 1).filter(|w| !keyword(w)) {
                Some(&env) => {
                    Name::Environment
                        .check(env)
                        .map_err(|p| invalid(help, p, None))?;
                    environment = Some(env);
                    i += 2;
                }
                None => break,
            }
        } else {
            extras.push(word);
            i += 1;
        }
    }
    let bang = if force { "!" } else { "" };
    let verb = format!("{}{bang}", verb.trim_end_matches('!'));
    let Some(environment) = environment else {
        return Err(invalid(
            help,
            format!("{} needs an environment after the app", code(head.first)),
            head.retry(&verb, &splice(&reason_tail, 0..0, &["ENV", "on", app])),
        ));
    };
    if !extras.is_empty() {
        return Err(invalid(
            help,
            format!(
                "{} takes only `APP to ENV`, not {}",
                code(head.first),
                code(&extras.join(" "))
            ),
            // `lock` itself may understand them (`for 2h`); `unlock` will say if not.
            head.retry(
                &verb,
                &[&[environment, "on", app], &extras[..], &reason_tail[..]].concat(),
            ),
        ));
    }
    Ok(DeployLockParts {
        app: app.to_string(),
        environment: environment.to_string(),
        force,
        reason: reason.map(<[&str]>::to_vec),
    })
}

impl fmt::Display for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.force { "lock!" } else { "lock" })?;
        write!(f, " {}", self.environment)?;
        if let Some(app) = &self.app {
            write!(f, " on {app}")?;
        }
        if let Some(duration) = self.duration {
            write!(f, " for {}", format_duration(duration))?;
        }
        if let Some(reason) = &self.reason {
            write!(f, " -- {reason}")?;
        }
        Ok(())
    }
}
