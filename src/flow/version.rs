//! `version`.

use crate::bot::Bot;
use crate::chat::{Message, Request};
use crate::flow::Outcome;

pub async fn run(bot: &Bot, request: &Request) -> Outcome {
    bot.reply(
        request,
        Message::info(format!("deploybot {}", env!("CARGO_PKG_VERSION")))
            .line("ChatOps for GitHub Deployments; type `help` for the commands"),
    )
    .await;
    Outcome::allowed()
}
