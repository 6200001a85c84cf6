//! `unlock[!] ENV [on APP]`: the holder releases their lock with `unlock`; releasing
//! someone else's takes `unlock!` and the force permission there, and the holder is told.

use commands::Unlock;

use crate::bot::Bot;
use crate::chat::{Message, Request, Tone};
use crate::flow::{answer_stop, Outcome, Stop};
use crate::policy::{self, Need};

pub async fn run(bot: &Bot, request: &Request, cmd: Unlock) -> Outcome {
    match unlock(bot, request, &cmd).await {
        Ok(outcome) => outcome,
        Err(stop) => answer_stop(bot, request, stop).await,
    }
}

async fn unlock(bot: &Bot, request: &Request, cmd: &Unlock) -> Result<Outcome, Stop> {
    let (app, env) =
        super::lock::target(bot, request, &cmd.environment, cmd.app.as_deref(), "unlock")?;
    let on = |s: Stop| s.on(app, Some(env));
    let config = bot.config();
    let now = bot.now();
    let place = format!("{} on {}", env.name, app.name);
    let failed = |e: crate::store::StoreError| {
        on(Stop::failed(Message::new(
            Tone::Failed,
            format!("could not unlock: {e}"),
        )))
    };
    let Some(held) = bot
        .store()
        .lock(app.name.as_str(), env.name.as_str(), now)
        .await
        .map_err(failed)?
    else {
        return Err(on(Stop::refused(
            "not locked",
            Message::refused(format!("{place} is not locked")).line("`locks` lists every lock"),
        )));
    };
    let theirs = held.holder_id != request.user.id;
    if theirs && !cmd.force {
        // Releasing someone else's lock is deliberate: `unlock!`, as `lock!` takes one over.
        let may = policy::check(config, app, env, &request.user, Need::Release).is_ok();
        let m = Message::refused(format!(
            "{place} is locked by {}, not you",
            held.holder_name
        ))
        .line(super::lock::describe(&held, now))
        .line(if may {
            format!(
                "to release {}'s lock, type `unlock! {place}` (they will be told)",
                held.holder_name
            )
        } else {
            super::lock::ask_holder(&held)
        });
        return Err(on(Stop::refused("lock", m.field("rule", "lock"))));
    }
    if theirs {
        policy::check(config, app, env, &request.user, Need::Release).map_err(|r| {
            let mut stop: Stop = r.into();
            stop.message = stop.message.line(format!(
                "{place} is locked by {} ({})",
                held.holder_name,
                super::lock::describe(&held, now)
            ));
            on(stop)
        })?;
    } else {
        policy::check(config, app, env, &request.user, Need::Lock).map_err(|r| on(r.into()))?;
    }
    let removed = bot
        .store()
        .remove_lock(app.name.as_str(), env.name.as_str(), &held.holder_id, now)
        .await
        .map_err(failed)?;
    if removed.is_none() {
        // Taken over (or expired) since it was read: nothing of anyone's was released.
        return Err(on(Stop::refused(
            "lock",
            Message::refused(format!(
                "{place} changed hands while you asked; nothing was unlocked"
            ))
            .line("`locks` shows who holds it now"),
        )));
    }
    let mut reply = Message::new(
        Tone::Success,
        format!("{} unlocked {place}", request.user.name),
    );
    if theirs {
        reply = reply.line(format!(
            "it was {}'s lock; they have been told",
            held.holder_name
        ));
        let mut notice = Message::new(
            Tone::Warning,
            format!("{} released your lock on {place}", request.user.name),
        );
        notice.mention = Some(held.holder_id.clone());
        bot.say(&held.conversation, &notice).await;
    }
    bot.reply(request, reply).await;
    // The first in line is told (src/flow/queue.rs).
    super::queue::hand_over(bot, app.name.as_str(), env.name.as_str()).await;
    Ok(Outcome::allowed().on(app, Some(env)).detail(if theirs {
        format!("released {}'s lock", held.holder_name)
    } else {
        "released own lock".to_string()
    }))
}
