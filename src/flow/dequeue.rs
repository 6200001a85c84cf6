//! `dequeue [ENV] [on APP]`: leave a queue (or every queue one is in). Leaving in
//! one's turn hands the environment to the next in line at once.

use commands::Dequeue;

use crate::bot::Bot;
use crate::chat::{Message, Request, Tone};
use crate::flow::{answer_stop, Outcome, Stop};

pub async fn run(bot: &Bot, request: &Request, cmd: Dequeue) -> Outcome {
    match dequeue(bot, request, &cmd).await {
        Ok(outcome) => outcome,
        Err(stop) => answer_stop(bot, request, stop).await,
    }
}

async fn dequeue(bot: &Bot, request: &Request, cmd: &Dequeue) -> Result<Outcome, Stop> {
    let now = bot.now();
    let failed = |e: crate::store::StoreError| {
        Stop::failed(Message::new(
            Tone::Failed,
            format!("could not leave the queue: {e}"),
        ))
    };
    // Which queues: the one named, or every one this person is in (of `on APP`).
    let (targets, outcome, what) = match &cmd.environment {
        Some(e) => {
            let (app, env) = super::lock::target(bot, request, e, cmd.app.as_deref(), "dequeue")?;
            (
                vec![(app.name.to_string(), env.name.to_string())],
                Outcome::allowed().on(app, Some(env)),
                format!("{} on {}", env.name, app.name),
            )
        }
        None => {
            let app = match &cmd.app {
                Some(a) => Some(
                    crate::resolve::app(bot.config(), &request.conversation, Some(a), |a| {
                        format!("dequeue on {a}")
                    })
                    .map_err(super::unknown)?,
                ),
                None => None,
            };
            let mine: Vec<(String, String)> = bot
                .store()
                .queue(app.map(|a| a.name.as_str()), None)
                .await
                .map_err(failed)?
                .into_iter()
                .filter(|q| q.user_id == request.user.id)
                .map(|q| (q.app, q.environment))
                .collect();
            let outcome = match app {
                Some(a) => Outcome::allowed().on(a, None),
                None => Outcome::allowed(),
            };
            let what = match app {
                Some(a) => format!("any queue of {}", a.name),
                None => "any queue".to_string(),
            };
            (mine, outcome, what)
        }
    };
    let mut left = Vec::new();
    for (app, env) in &targets {
        if let Some(entry) = bot
            .store()
            .leave_queue(app, env, &request.user.id, now)
            .await
            .map_err(failed)?
        {
            left.push(entry);
        }
    }
    if left.is_empty() {
        let mut stop = Stop::refused(
            "not queued",
            Message::refused(format!("{} is not in line for {what}", request.user.name))
                .line("`queue` lists every queue"),
        );
        stop.app = outcome.app.clone();
        stop.environment = outcome.environment.clone();
        return Err(stop);
    }
    let places: Vec<String> = left
        .iter()
        .map(|q| format!("{} on {}", q.environment, q.app))
        .collect();
    bot.reply(
        request,
        Message::new(
            Tone::Success,
            format!(
                "{} left the queue for {}",
                request.user.name,
                places.join(", ")
            ),
        ),
    )
    .await;
    // A turn given up goes to the next in line now (nothing happens where the
    // environment is still busy, or someone else has the turn).
    for q in &left {
        super::queue::hand_over(bot, &q.app, &q.environment).await;
    }
    Ok(outcome.detail(format!("left {}", places.join(", "))))
}
