//! `lock[!] ENV [on APP] [for DURATION] [REASON]`: only the holder may deploy there
//! until it is unlocked or expires (`for`, else `lock_ttl`). Locking again what you
//! hold renews it; `lock!` takes over someone else's lock (force permission), telling
//! them. The store's key guarantees one lock per app and
//! environment, whatever the race.

use commands::Lock as LockCmd;

use crate::bot::Bot;
use crate::chat::{Action, ChatUser, Message, Request, Tone};
use crate::config::{AppConfig, EnvConfig};
use crate::flow::{answer_stop, unknown, Outcome, Stop};
use crate::github::human_duration;
use crate::policy::{self, Need};
use crate::resolve;
use crate::store::{Lock, LockTaken};

pub async fn run(bot: &Bot, request: &Request, cmd: LockCmd) -> Outcome {
    match lock(bot, request, &cmd).await {
        Ok(outcome) => outcome,
        Err(stop) => answer_stop(bot, request, stop).await,
    }
}

/// Resolves `ENV [on APP]` for lock commands.
pub fn target<'a>(
    bot: &'a Bot,
    request: &Request,
    environment: &str,
    app: Option<&str>,
    verb: &str,
) -> Result<(&'a AppConfig, &'a EnvConfig), Stop> {
    let config = bot.config();
    let app = resolve::app(config, &request.conversation, app, |a| {
        format!("{verb} {environment} on {a}")
    })
    .map_err(unknown)?;
    let env = resolve::environment(config, app, Some(environment), |e| {
        format!("{verb} {e} on {}", app.name)
    })
    .map_err(|m| unknown(m).on(app, None))?;
    Ok((app, env))
}

async fn lock(bot: &Bot, request: &Request, cmd: &LockCmd) -> Result<Outcome, Stop> {
    let (app, env) = target(bot, request, &cmd.environment, cmd.app.as_deref(), "lock")?;
    let on = |s: Stop| s.on(app, Some(env));
    let config = bot.config();
    policy::check(config, app, env, &request.user, Need::Lock).map_err(|r| on(r.into()))?;
    let now = bot.now();
    // Both are within commands::MIN_LOCK..=MAX_LOCK: the parser and the config check.
    let ttl = cmd.duration.unwrap_or(config.defaults.lock_ttl);
    let new = Lock {
        app: app.name.to_string(),
        environment: env.name.to_string(),
        holder_id: request.user.id.clone(),
        holder_name: request.user.name.clone(),
        reason: cmd.reason.clone(),
        created_at: now,
        expires_at: crate::clock::later(now, ttl),
        warned: false,
        conversation: request.conversation.clone(),
    };
    let store_failed = |e: crate::store::StoreError| {
        on(Stop::failed(Message::new(
            Tone::Failed,
            format!("could not lock: {e}"),
        )))
    };
    let outcome = Outcome::allowed().on(app, Some(env));
    let place = format!("{} on {}", env.name, app.name);
    let how_long = if cmd.duration.is_some() {
        String::new()
    } else {
        " — the default, `lock_ttl`; `for 2h` chooses".to_string()
    };
    let held = bot
        .store()
        .lock(app.name.as_str(), env.name.as_str(), now)
        .await
        .map_err(store_failed)?;
    let theirs = held.as_ref().filter(|l| l.holder_id != request.user.id);

    if let Some(held) = theirs {
        if !cmd.force {
            return Err(on(held_by_someone_else(bot, request, app, env, held)));
        }
        // `lock!`: a take-over, which takes the force permission.
        policy::check(config, app, env, &request.user, Need::TakeOver).map_err(|r| {
            let mut stop: Stop = r.into();
            stop.message = stop.message.line(format!(
                "{place} is locked by {} ({})",
                held.holder_name,
                describe(held, now)
            ));
            on(stop)
        })?;
    }
    if held.is_some() {
        // A take-over, or the holder renewing their own lock: one atomic replace.
        let previous = bot
            .store()
            .replace_lock(&new, now)
            .await
            .map_err(store_failed)?;
        let mut reply = Message::new(
            Tone::Success,
            format!(
                "{} locked {place} until {}{how_long}",
                request.user.name,
                until(&new)
            ),
        );
        match previous {
            Some(prev) if prev.holder_id != request.user.id => {
                reply = reply.line(format!(
                    "took it over from {} (held since {}{})",
                    prev.holder_name,
                    prev.created_at.format("%H:%M UTC"),
                    prev.reason
                        .as_deref()
                        .map(|r| format!(", for: {r}"))
                        .unwrap_or_default()
                ));
                let mut notice = Message::new(
                    Tone::Warning,
                    format!("{} took over your lock on {place}", request.user.name),
                );
                if let Some(r) = &cmd.reason {
                    notice = notice.field("reason", r.clone());
                }
                notice.mention = Some(prev.holder_id.clone());
                bot.say(&prev.conversation, &notice).await;
                bot.reply(request, with_reason(reply, &new).action(unlock(&place)))
                    .await;
                return Ok(outcome.detail("take-over"));
            }
            Some(_) => {
                reply = reply.line("renewed your lock");
            }
            None => {
                reply = reply.line(format!("only {} can deploy there now", request.user.name));
            }
        }
        bot.reply(request, with_reason(reply, &new).action(unlock(&place)))
            .await;
        return Ok(outcome.detail("renewed"));
    }

    match bot
        .store()
        .take_lock(&new, now)
        .await
        .map_err(store_failed)?
    {
        LockTaken::Taken => {
            let reply = Message::new(
                Tone::Success,
                format!(
                    "{} locked {place} until {}{how_long}",
                    request.user.name,
                    until(&new)
                ),
            )
            .line(format!("only {} can deploy there now", request.user.name));
            bot.reply(request, with_reason(reply, &new).action(unlock(&place)))
                .await;
            Ok(outcome)
        }
        // Taken by someone else since it was read.
        LockTaken::HeldBy(held) => Err(on(held_by_someone_else(bot, request, app, env, &held))),
    }
}

/// The next step of a lock: its holder releases it (a button in Discord).
fn unlock(place: &str) -> Action {
    Action::Unlock {
        command: format!("unlock {place}"),
    }
}

/// `lock` on a lock someone else holds: who, since when, and what may be typed.
fn held_by_someone_else(
    bot: &Bot,
    request: &Request,
    app: &AppConfig,
    env: &EnvConfig,
    held: &Lock,
) -> Stop {
    let place = format!("{} on {}", env.name, app.name);
    let may_force = policy::check(bot.config(), app, env, &request.user, Need::TakeOver).is_ok();
    let m = Message::refused(format!("{place} is already locked by {}", held.holder_name))
        .line(describe(held, bot.now()))
        .line(if may_force {
            format!(
                "to take it over, type `lock! {place}` ({} will be told)",
                held.holder_name
            )
        } else {
            ask_holder(held)
        });
    Stop::refused("lock", m.field("rule", "lock"))
}

/// What someone who may not override `held` can do.
pub fn ask_holder(held: &Lock) -> String {
    format!(
        "ask {} to unlock it, or wait until {}",
        held.holder_name,
        held.expires_at.format("%H:%M UTC")
    )
}

fn with_reason(m: Message, lock: &Lock) -> Message {
    match &lock.reason {
        Some(r) => m.field("reason", r.clone()),
        None => m,
    }
}

fn until(lock: &Lock) -> String {
    format!(
        "{} (in {})",
        lock.expires_at.format("%H:%M UTC"),
        human_duration(
            (lock.expires_at - lock.created_at)
                .to_std()
                .unwrap_or_default()
        )
    )
}

/// "since 14:02 (25m ago), until 18:02 (in 3h 35m): db migration".
pub fn describe(lock: &Lock, now: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "since {} ({} ago), until {} (in {}){}",
        lock.created_at.format("%H:%M UTC"),
        human_duration((now - lock.created_at).to_std().unwrap_or_default()),
        lock.expires_at.format("%H:%M UTC"),
        human_duration((lock.expires_at - now).to_std().unwrap_or_default()),
        lock.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    )
}

/// For deploys: the environment must not be locked by someone else.
pub async fn check(
    bot: &Bot,
    app: &AppConfig,
    env: &EnvConfig,
    user: &ChatUser,
) -> Result<(), Stop> {
    let now = bot.now();
    let held = bot
        .store()
        .lock(app.name.as_str(), env.name.as_str(), now)
        .await
        .map_err(|e| {
            Stop::failed(Message::new(
                Tone::Failed,
                format!("could not check locks: {e}"),
            ))
        })?;
    match held {
        Some(lock) if lock.holder_id != user.id => {
            let place = format!("{} on {}", env.name, app.name);
            let may_force = policy::check(bot.config(), app, env, user, Need::TakeOver).is_ok();
            let mut m = Message::refused(format!("{place} is locked by {}", lock.holder_name))
                .line(describe(&lock, now));
            m = m.line(if may_force {
                format!(
                    "ask {}, or take the lock over with `lock! {place}`",
                    lock.holder_name
                )
            } else {
                format!(
                    "ask {} to `unlock {place}`, or wait until it expires",
                    lock.holder_name
                )
            });
            Err(Stop::refused("lock", m.field("rule", "lock")))
        }
        _ => Ok(()),
    }
}

/// Housekeeping: warns holders shortly before their lock expires, and announces locks
/// that expired (expired locks already stop counting the moment they expire).
pub async fn sweep(bot: &Bot) -> Result<(), crate::store::StoreError> {
    let now = bot.now();
    // Warn a tenth of the default lock time ahead, at least 5 and at most 15 minutes.
    let ahead = (bot.config().defaults.lock_ttl / 10).clamp(
        std::time::Duration::from_secs(300),
        std::time::Duration::from_secs(900),
    );
    let before = crate::clock::later(now, ahead);
    for l in bot.store().locks_to_warn(now, before).await? {
        let place = format!("{} on {}", l.environment, l.app);
        let mut m = Message::new(
            Tone::Warning,
            format!(
                "your lock on {place} expires at {} (in {})",
                l.expires_at.format("%H:%M UTC"),
                human_duration((l.expires_at - now).to_std().unwrap_or_default())
            ),
        )
        .line(format!(
            "keep it with `lock {place} for 2h`, or `unlock {place}` if you are done"
        ));
        m.mention = Some(l.holder_id.clone());
        bot.say(&l.conversation, &m).await;
    }
    for l in bot.store().expire_locks(now).await? {
        let mut m = Message::info(format!(
            "🔓 {}'s lock on {} on {} expired",
            l.holder_name, l.environment, l.app
        ));
        m.mention = Some(l.holder_id.clone());
        bot.say(&l.conversation, &m).await;
    }
    Ok(())
}
