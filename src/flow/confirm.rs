//! `yes` / `confirm [ID]` and `no` / `cancel [ID]`: answer a deploy that asked for
//! confirmation. Only its requester can answer, only while it is open, and only once
//! (the store closes it atomically), so a confirmation can never be replayed.

use commands::{Cancel, Command, Confirm};

use crate::bot::Bot;
use crate::chat::{Message, MessageId, Request, Tone};
use crate::flow::{answer_stop, Decision, Outcome, Stop};
use crate::store::{Confirmation, ConfirmationState, Unconfirmable};

pub async fn confirm(bot: &Bot, request: &Request, cmd: Confirm) -> Outcome {
    let confirmation = match close(bot, request, cmd.id, ConfirmationState::Confirmed).await {
        Ok(c) => c,
        Err(stop) => return answer_stop(bot, request, stop).await,
    };
    // Run it as the requester, where it was asked, with every check made again; the
    // deploy flow settles the question: confirmed, asked anew, or not deployed.
    let replay = Request {
        conversation: confirmation.conversation.clone(),
        text: confirmation.command.clone(),
        ..request.clone()
    };
    let outcome = match commands::parse(&confirmation.command) {
        Ok(Command::Deploy(d)) => {
            super::deploy::run_confirmed(bot, &replay, d, &confirmation).await
        }
        Ok(Command::Rollback(r)) => {
            super::rollback::run_confirmed(bot, &replay, r, &confirmation).await
        }
        _ => {
            settle_question(
                bot,
                &confirmation,
                Message::new(Tone::Failed, "not deployed: deploybot cannot run it again"),
            )
            .await;
            bot.reply(
                request,
                Message::new(
                    Tone::Failed,
                    format!("cannot run `{}` again", confirmation.command),
                ),
            )
            .await;
            Outcome::new(Decision::Failed)
        }
    };
    Outcome {
        detail: Some(format!("confirmation {}", confirmation.id)),
        ..outcome
    }
}

pub async fn cancel(bot: &Bot, request: &Request, cmd: Cancel) -> Outcome {
    let confirmation = match close(bot, request, cmd.id, ConfirmationState::Cancelled).await {
        Ok(c) => c,
        Err(stop) => return answer_stop(bot, request, stop).await,
    };
    let message = Message::info(format!(
        "cancelled by {}: {}",
        request.user.name, confirmation.summary
    ))
    .line("nothing was deployed");
    if !settle_question(bot, &confirmation, message.clone()).await {
        bot.reply(request, message).await;
    }
    Outcome::allowed().detail(format!("cancelled confirmation {}", confirmation.id))
}

/// Edits the question once it is answered; `false` when there was no message to edit.
pub async fn settle_question(bot: &Bot, c: &Confirmation, message: Message) -> bool {
    match &c.message_id {
        Some(id) => {
            bot.update(&c.conversation, Some(&MessageId(id.clone())), &message)
                .await;
            true
        }
        None => false,
    }
}

async fn close(
    bot: &Bot,
    request: &Request,
    id: Option<String>,
    to: ConfirmationState,
) -> Result<Confirmation, Stop> {
    let now = bot.now();
    let verb = if to == ConfirmationState::Confirmed {
        "confirm"
    } else {
        "cancel"
    };
    let failed = |e: crate::store::StoreError| {
        Stop::failed(Message::new(Tone::Failed, format!("could not {verb}: {e}")))
    };
    let id = match id {
        Some(id) => id,
        None => {
            // `yes` alone: the newest open question of this user in this channel.
            let open = bot
                .store()
                .pending_confirmations(&request.conversation.channel, now)
                .await
                .map_err(failed)?;
            match open.iter().find(|c| c.requester_id == request.user.id) {
                Some(c) => c.id.clone(),
                None => {
                    if let Some(other) = open.first() {
                        return Err(Stop::refused(
                            "confirmation",
                            Message::refused(format!(
                                "only {} can {verb} “{}”",
                                other.requester_name, other.summary
                            ))
                            .line("you have nothing waiting for confirmation here"),
                        ));
                    }
                    // Nothing open: say what became of the last question, if any.
                    let last = bot
                        .store()
                        .latest_confirmation(&request.conversation.channel, &request.user.id, now)
                        .await
                        .map_err(failed)?;
                    return Err(Stop::refused(
                        "confirmation",
                        match last {
                            Some(c) => closed(&c, now),
                            None => Message::refused(format!("there is nothing to {verb} here"))
                                .line("deploys that need confirmation ask for it; answer within the time they give"),
                        },
                    ));
                }
            }
        }
    };
    match bot
        .store()
        .close_confirmation(&id, &request.user.id, to, now)
        .await
        .map_err(failed)?
    {
        Ok(c) => Ok(c),
        Err(Unconfirmable::NotFound) => Err(Stop::refused(
            "confirmation",
            Message::refused(format!("there is no confirmation `{id}`")),
        )),
        Err(Unconfirmable::NotYours(c)) => Err(Stop::refused(
            "confirmation",
            Message::refused(format!(
                "only {} can {verb} “{}”",
                c.requester_name, c.summary
            ))
            .line("confirmations belong to whoever asked for the deploy"),
        )),
        Err(Unconfirmable::Closed(c)) => Err(Stop::refused("confirmation", closed(&c, now))),
    }
}

/// A question that can no longer be answered: what became of it, when, and what to
/// type to ask again.
fn closed(c: &Confirmation, now: chrono::DateTime<chrono::Utc>) -> Message {
    match c.state {
        ConfirmationState::Expired | ConfirmationState::Pending => Message::refused(format!(
            "“{}” expired at {} ({} ago), unanswered: nothing was deployed",
            c.summary,
            c.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
            crate::github::human_duration((now - c.expires_at).to_std().unwrap_or_default())
        ))
        .line(format!("to ask again, type `{}`", c.command)),
        ConfirmationState::Confirmed => {
            Message::refused(format!("“{}” was already confirmed", c.summary)).line(format!(
                "a confirmation works once; to deploy again, type `{}`",
                c.command
            ))
        }
        _ => Message::refused(format!(
            "“{}” was cancelled: nothing was deployed",
            c.summary
        ))
        .line(format!("to ask again, type `{}`", c.command)),
    }
}

/// Housekeeping: tells requesters their open confirmations expired.
pub async fn expire(bot: &Bot) -> Result<(), crate::store::StoreError> {
    for c in bot.store().expire_confirmations(bot.now()).await? {
        let message = Message::new(
            Tone::Warning,
            format!(
                "⌛ “{}” was not confirmed in time: nothing was deployed",
                c.summary
            ),
        )
        .line(format!("ask again: `{}`", c.command));
        if !settle_question(bot, &c, message.clone()).await {
            bot.say(&c.conversation, &message).await;
        }
    }
    Ok(())
}
