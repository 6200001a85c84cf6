//! `unfreeze [ENV] [on APP]`: lifts the chat freeze on exactly that scope (one
//! conditional `DELETE … RETURNING`), telling whoever froze it. The config's windows
//! are not lifted here: they end on their own.

use commands::Unfreeze;

use crate::bot::Bot;
use crate::chat::{Message, Request, Tone};
use crate::flow::{answer_stop, Outcome, Stop};

pub async fn run(bot: &Bot, request: &Request, cmd: Unfreeze) -> Outcome {
    match unfreeze(bot, request, &cmd).await {
        Ok(outcome) => outcome,
        Err(stop) => answer_stop(bot, request, stop).await,
    }
}

async fn unfreeze(bot: &Bot, request: &Request, cmd: &Unfreeze) -> Result<Outcome, Stop> {
    let scope = super::freeze::scope(
        bot,
        request,
        cmd.environment.as_deref(),
        cmd.app.as_deref(),
        "unfreeze",
        "",
    )?;
    let now = bot.now();
    let app = scope.app.map(|a| a.name.to_string());
    let removed = bot
        .store()
        .unfreeze(app.as_deref(), scope.environment.as_deref(), now)
        .await
        .map_err(|e| {
            Stop::failed(Message::new(
                Tone::Failed,
                format!("could not unfreeze: {e}"),
            ))
        })?;
    let Some(lifted) = removed else {
        let others: Vec<String> = bot
            .store()
            .freezes(now)
            .await
            .unwrap_or_default()
            .iter()
            .map(|f| {
                let mut words = String::from("unfreeze");
                if let Some(e) = &f.environment {
                    words.push_str(&format!(" {e}"));
                }
                if let Some(a) = &f.app {
                    words.push_str(&format!(" on {a}"));
                }
                format!("`{words}` ({} by {})", f.reason, f.holder_name)
            })
            .collect();
        let mut m = Message::refused(format!("{} is not frozen in chat", scope.describe()));
        m = m.line(if others.is_empty() {
            "there is no chat freeze at all; the config's windows end on their own (`why ENV` shows them)".to_string()
        } else {
            format!("the chat freezes: {}", others.join(", "))
        });
        return Err(Stop::refused("not frozen", m));
    };
    let mut reply = Message::new(
        Tone::Success,
        format!("{} unfroze {}", request.user.name, scope.describe()),
    )
    .line(format!(
        "it was frozen by {} since {}: {}",
        lifted.holder_name,
        lifted.created_at.format("%Y-%m-%d %H:%M UTC"),
        lifted.reason
    ));
    if lifted.holder_id != request.user.id {
        reply = reply.line(format!("{} has been told", lifted.holder_name));
        let mut notice = Message::new(
            Tone::Warning,
            format!(
                "{} lifted your freeze on {}",
                request.user.name,
                scope.describe()
            ),
        );
        notice.mention = Some(lifted.holder_id.clone());
        bot.say(&lifted.conversation, &notice).await;
    }
    bot.reply(request, reply).await;
    let mut outcome = Outcome::allowed().detail(format!(
        "unfroze {} (frozen by {}: {})",
        scope.describe(),
        lifted.holder_name,
        lifted.reason
    ));
    outcome.app = app;
    outcome.environment = scope.environment.clone();
    Ok(outcome)
}
