//! `help [COMMAND]`: the command reference, generated from the same descriptions the
//! parser uses, so it cannot drift from what the bot understands.

use commands::Help;

use crate::bot::Bot;
use crate::chat::{Message, Request};
use crate::flow::Outcome;

pub async fn run(bot: &Bot, request: &Request, cmd: Help) -> Outcome {
    let text = commands::help_text(cmd.topic.as_deref());
    let mut lines = text.lines();
    let title = lines.next().unwrap_or("deploybot commands").to_string();
    let mut message = Message::info(title);
    for line in lines {
        message = message.line(line);
    }
    bot.reply(request, message).await;
    Outcome::allowed()
}
