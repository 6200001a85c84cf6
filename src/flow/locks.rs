//! `locks`: every active lock — app, environment, holder, reason, age, expiry.

use crate::bot::Bot;
use crate::chat::{Message, Request, Tone};
use crate::flow::{Decision, Outcome};

pub async fn run(bot: &Bot, request: &Request) -> Outcome {
    let now = bot.now();
    match bot.store().locks(now).await {
        Ok(locks) if locks.is_empty() => {
            bot.reply(request, Message::info("Nothing is locked")).await;
            Outcome::allowed()
        }
        Ok(locks) => {
            let mut m = Message::info(format!(
                "{} lock{}",
                locks.len(),
                if locks.len() == 1 { "" } else { "s" }
            ));
            for l in &locks {
                m = m.line(format!(
                    "🔒 {} on {} — {}, {}",
                    l.environment,
                    l.app,
                    l.holder_name,
                    super::lock::describe(l, now)
                ));
            }
            bot.reply(request, m).await;
            Outcome::allowed()
        }
        Err(e) => {
            bot.reply(
                request,
                Message::new(Tone::Failed, format!("could not read locks: {e}")),
            )
            .await;
            Outcome::new(Decision::Failed)
        }
    }
}
