//! `freeze [ENV] [on APP] [for DURATION] -- REASON`: nobody deploys in the scope until
//! `unfreeze` (or `for` runs out), except by break-glass. Also the freeze check every
//! deploy meets ([`check`], from `deploy::local_checks`), what `why` says of freezes
//! ([`why_line`]) and what break-glass announces ([`active`]).
//!
//! A deploy meets two kinds of freeze: `[[freeze]]` windows from the config (the maths
//! is in `src/freeze.rs`) and freezes made in chat (the store keeps them, one per
//! scope). Break-glass is `deploy!` with a reason by someone with the force permission
//! there: it passes every freeze, and is announced.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use commands::{Deploy, Freeze as FreezeCmd};

use crate::bot::Bot;
use crate::chat::{Action, ChatUser, Message, Request, Tone};
use crate::config::{AppConfig, Config, EnvConfig};
use crate::flow::{answer_stop, unknown, Outcome, Stop};
use crate::github::human_duration;
use crate::policy::{self, Need};
use crate::resolve;
use crate::store::Freeze;

pub async fn run(bot: &Bot, request: &Request, cmd: FreezeCmd) -> Outcome {
    match freeze(bot, request, &cmd).await {
        Ok(outcome) => outcome,
        Err(stop) => answer_stop(bot, request, stop).await,
    }
}

/// What a `freeze` or `unfreeze` names: an app or every app, an environment (its real
/// name) or every environment, and every (app, environment) pair that covers.
pub struct Scope<'a> {
    pub app: Option<&'a AppConfig>,
    pub environment: Option<String>,
    pub pairs: Vec<(&'a AppConfig, &'a EnvConfig)>,
}

impl Scope<'_> {
    /// "production on api", "every environment of api", "production (every app)",
    /// "everything".
    pub fn describe(&self) -> String {
        describe_scope(
            self.app.map(|a| a.name.as_str()),
            self.environment.as_deref(),
        )
    }

    /// The command's own words for this scope: `production on api`, ``.
    pub fn words(&self) -> String {
        let mut out = String::new();
        if let Some(e) = &self.environment {
            out.push(' ');
            out.push_str(e);
        }
        if let Some(a) = self.app {
            out.push_str(" on ");
            out.push_str(a.name.as_str());
        }
        out
    }
}

fn describe_scope(app: Option<&str>, environment: Option<&str>) -> String {
    match (environment, app) {
        (Some(e), Some(a)) => format!("{e} on {a}"),
        (None, Some(a)) => format!("every environment of {a}"),
        (Some(e), None) => format!("{e} (every app)"),
        (None, None) => "everything (every app, every environment)".to_string(),
    }
}

/// Resolves `[ENV] [on APP]` and checks that the user may freeze every part of it.
/// `tail` ends the suggested commands (`-- REASON` for `freeze`).
pub fn scope<'a>(
    bot: &'a Bot,
    request: &Request,
    environment: Option<&str>,
    app: Option<&str>,
    verb: &str,
    tail: &str,
) -> Result<Scope<'a>, Stop> {
    let config = bot.config();
    let app = match app {
        Some(name) => Some(
            resolve::app(config, &request.conversation, Some(name), |a| {
                let env = environment.map(|e| format!(" {e}")).unwrap_or_default();
                format!("{verb}{env} on {a}{tail}")
            })
            .map_err(unknown)?,
        ),
        None => None,
    };
    let apps: Vec<&AppConfig> = match app {
        Some(a) => vec![a],
        None => config.apps.iter().collect(),
    };
    let environment = match environment {
        None => None,
        Some(wanted) => {
            let real = config.unalias(wanted);
            let found = apps.iter().find_map(|a| {
                a.environments
                    .iter()
                    .find(|e| e.name.as_str().eq_ignore_ascii_case(real))
            });
            match found {
                Some(e) => Some(e.name.to_string()),
                None => {
                    let mut names: Vec<&str> =
                        apps.iter().flat_map(|a| a.environment_names()).collect();
                    names.sort_unstable();
                    names.dedup();
                    let whose = match app {
                        Some(a) => a.name.to_string(),
                        None => "any app".to_string(),
                    };
                    return Err(unknown(
                        Message::refused(format!("{whose} has no environment `{wanted}`"))
                            .line(format!("the environments: {}", names.join(", ")))
                            .line(format!(
                                "e.g. `{verb} {}{}{tail}`",
                                names[0],
                                app.map(|a| format!(" on {}", a.name)).unwrap_or_default()
                            )),
                    ));
                }
            }
        }
    };
    let pairs: Vec<(&AppConfig, &EnvConfig)> = apps
        .iter()
        .flat_map(|a| a.environments.iter().map(move |e| (*a, e)))
        .filter(|(_, e)| {
            environment
                .as_deref()
                .is_none_or(|wanted| e.name.as_str() == wanted)
        })
        .collect();
    for (a, e) in &pairs {
        policy::check(config, a, e, &request.user, Need::Freeze).map_err(Stop::from)?;
    }
    Ok(Scope {
        app,
        environment,
        pairs,
    })
}

async fn freeze(bot: &Bot, request: &Request, cmd: &FreezeCmd) -> Result<Outcome, Stop> {
    let scope = scope(
        bot,
        request,
        cmd.environment.as_deref(),
        cmd.app.as_deref(),
        "freeze",
        &format!(" -- {}", cmd.reason),
    )?;
    let now = bot.now();
    let new = Freeze {
        app: scope.app.map(|a| a.name.to_string()),
        environment: scope.environment.clone(),
        holder_id: request.user.id.clone(),
        holder_name: request.user.name.clone(),
        reason: cmd.reason.clone(),
        created_at: now,
        expires_at: cmd.duration.map(|d| crate::clock::later(now, d)),
        conversation: request.conversation.clone(),
    };
    let previous =
        bot.store().freeze(&new, now).await.map_err(|e| {
            Stop::failed(Message::new(Tone::Failed, format!("could not freeze: {e}")))
        })?;
    let until = match new.expires_at {
        Some(t) => format!(
            "until {} (in {})",
            t.format("%Y-%m-%d %H:%M UTC"),
            human_duration((t - now).to_std().unwrap_or_default())
        ),
        None => "until `unfreeze`".to_string(),
    };
    let mut reply = Message::new(
        Tone::Warning,
        format!(
            "🧊 {} froze {} {until}",
            request.user.name,
            scope.describe()
        ),
    )
    .field("reason", cmd.reason.clone())
    .line("nobody deploys there now; break-glass: `deploy! … -- REASON` by someone who may force, announced")
    .line(format!("to lift it, type `unfreeze{}`", scope.words()));
    if let Some(prev) = &previous {
        reply = reply.line(format!(
            "replaces {}'s freeze ({})",
            prev.holder_name, prev.reason
        ));
    }
    bot.reply(request, reply).await;
    let mut outcome =
        Outcome::allowed().detail(format!("froze {}: {}", scope.describe(), cmd.reason));
    outcome.app = new.app.clone();
    outcome.environment = new.environment.clone();
    Ok(outcome)
}

/// A freeze in force on a deploy: why, where it comes from, and when it ends.
#[derive(Debug, Clone)]
pub struct Active {
    pub reason: String,
    /// "bot.toml:42", "alice in chat".
    pub source: String,
    /// `None`: until `unfreeze`.
    pub ends: Option<DateTime<Utc>>,
    /// How its times are shown.
    pub tz: Tz,
}

impl Active {
    /// "db migration (frozen by alice in chat), until Mon 2026-12-07 08:00
    /// Europe/Berlin (in 2d 15h)".
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        format!("{} ({}), {}", self.reason, self.source, self.until(now))
    }

    pub fn until(&self, now: DateTime<Utc>) -> String {
        match self.ends {
            Some(t) => format!(
                "until {} (in {})",
                crate::freeze::show(t, self.tz),
                human_duration((t - now).to_std().unwrap_or_default())
            ),
            None => "until someone types `unfreeze`".to_string(),
        }
    }
}

/// The config's windows covering `app` in `env` that `now` is inside.
pub fn windows(config: &Config, app: &str, env: &str, now: DateTime<Utc>) -> Vec<Active> {
    config
        .freezes
        .iter()
        .filter(|f| f.covers(app, env))
        .filter_map(|f| {
            f.window.ends(now).map(|ends| Active {
                reason: f.reason.clone(),
                source: format!("{}, {}", f.origin, f.window),
                ends: Some(ends),
                tz: f.window.timezone(),
            })
        })
        .collect()
}

/// Every freeze in force on deploying `app` to `env`: the config's windows, then the
/// chat's.
pub async fn active(
    bot: &Bot,
    app: &AppConfig,
    env: &EnvConfig,
) -> Result<Vec<Active>, crate::store::StoreError> {
    let now = bot.now();
    let mut out = windows(bot.config(), app.name.as_str(), env.name.as_str(), now);
    for f in bot.store().freezes(now).await? {
        if f.covers(app.name.as_str(), env.name.as_str()) {
            let scope = describe_scope(f.app.as_deref(), f.environment.as_deref());
            out.push(Active {
                reason: f.reason.clone(),
                source: format!(
                    "frozen by {} in chat at {}, {scope}",
                    f.holder_name,
                    f.created_at.format("%Y-%m-%d %H:%M UTC")
                ),
                ends: f.expires_at,
                tz: chrono_tz::UTC,
            });
        }
    }
    Ok(out)
}

/// For deploys: refused while a freeze is in force, unless it is break-glass
/// (`deploy!` with a reason; the force permission was checked before).
pub async fn check(
    bot: &Bot,
    request: &Request,
    app: &AppConfig,
    env: &EnvConfig,
    cmd: &Deploy,
) -> Result<(), Stop> {
    let frozen = active(bot, app, env).await.map_err(|e| {
        Stop::failed(Message::new(
            Tone::Failed,
            format!("could not check freezes: {e}"),
        ))
    })?;
    if frozen.is_empty() || (cmd.force && cmd.reason.is_some()) {
        return Ok(());
    }
    Err(refusal(bot, request, app, env, cmd, &frozen))
}

/// What break-glass is for this command: `deploy! … -- REASON`, or for a rollback
/// `rollback! … -- REASON` (typed only: a Force button runs deploys alone), and
/// whether it is a deploy.
fn break_glass(request: &Request, cmd: &Deploy) -> (String, bool) {
    if let Ok(commands::Command::Rollback(mut r)) = commands::parse(&request.text) {
        r.force = true;
        r.reason.get_or_insert_with(|| "REASON".into());
        return (commands::Command::Rollback(r).to_string(), false);
    }
    let mut glass = cmd.clone();
    glass.force = true;
    glass.reason.get_or_insert_with(|| "REASON".into());
    (commands::Command::Deploy(glass).to_string(), true)
}

fn refusal(
    bot: &Bot,
    request: &Request,
    app: &AppConfig,
    env: &EnvConfig,
    cmd: &Deploy,
    frozen: &[Active],
) -> Stop {
    let now = bot.now();
    let first = &frozen[0];
    let mut m = Message::refused(format!(
        "{} to {} is frozen: {}",
        app.name, env.name, first.reason
    ));
    for f in frozen {
        m = m.line(format!("🧊 {}", f.describe(now)));
    }
    let user: &ChatUser = &request.user;
    let may_force = policy::check(bot.config(), app, env, user, Need::Force).is_ok();
    let (glass, is_deploy) = break_glass(request, cmd);
    if may_force {
        if cmd.force {
            m = m.line(format!(
                "break-glass through a freeze needs a reason: type `{glass}`"
            ));
        } else if is_deploy {
            m = m
                .line("break-glass (announced, with a reason) is open to you")
                .action(Action::Force { command: glass });
        } else {
            m = m.line(format!(
                "break-glass (announced, with a reason) is open to you: type `{glass}`"
            ));
        }
    } else {
        let rules = bot.config().rules(app, env);
        m = m.line(format!(
            "wait until it ends, or ask someone with {} (who may force here) to deploy with `deploy! … -- REASON`",
            policy::who(&rules.force)
        ));
    }
    Stop::refused("freeze", m.field("rule", "freeze"))
}

/// What `why` says of freezes, and whether one stops a deploy now.
pub async fn why_line(bot: &Bot, app: &AppConfig, env: &EnvConfig) -> (String, bool) {
    let now = bot.now();
    match active(bot, app, env).await {
        Err(e) => (format!("❔ freeze: unknown ({e})"), false),
        Ok(frozen) if !frozen.is_empty() => {
            let all: Vec<String> = frozen.iter().map(|f| f.describe(now)).collect();
            (
                format!(
                    "🚫 freeze: {}; break-glass: `deploy! … -- REASON` by someone who may force",
                    all.join("; ")
                ),
                true,
            )
        }
        Ok(_) => {
            let next = bot
                .config()
                .freezes
                .iter()
                .filter(|f| f.covers(app.name.as_str(), env.name.as_str()))
                .filter_map(|f| f.window.next(now).map(|(s, e)| (s, e, f)))
                .min_by_key(|(s, _, _)| *s);
            match next {
                Some((start, end, f)) => (
                    format!(
                        "✅ freeze: not frozen now; next: {} from {} to {} (in {}; {}, {})",
                        f.reason,
                        f.window.local(start),
                        f.window.local(end),
                        human_duration((start - now).to_std().unwrap_or_default()),
                        f.origin,
                        f.window
                    ),
                    false,
                ),
                None => ("✅ freeze: not frozen".to_string(), false),
            }
        }
    }
}
