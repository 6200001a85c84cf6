//! `why ENV [on APP]`: could the caller deploy there now, and if not, what would stop
//! them — every rule a deploy would meet, each with its verdict.

use commands::Why;

use crate::bot::Bot;
use crate::chat::{Message, Request, Tone};
use crate::flow::{answer_stop, Outcome};
use crate::policy::{self, Need};

pub async fn run(bot: &Bot, request: &Request, cmd: Why) -> Outcome {
    let (app, env) =
        match super::lock::target(bot, request, &cmd.environment, cmd.app.as_deref(), "why") {
            Ok(t) => t,
            Err(stop) => return answer_stop(bot, request, stop).await,
        };
    let config = bot.config();
    let user = &request.user;
    let rules = config.rules(app, env);
    let now = bot.now();
    let mut blockers = Vec::new();
    let mut lines = Vec::new();

    match policy::check_channel(app, &request.conversation) {
        Ok(()) => lines.push(format!(
            "✅ channel: {} may deploy from {}",
            app.name,
            request.conversation.display()
        )),
        Err(r) => {
            lines.push(format!("🚫 channel: {} — {}", r.reason, r.hint));
            blockers.push("channel");
        }
    }
    match policy::check(config, app, env, user, Need::Deploy) {
        Ok(()) => lines.push(match &rules.deploy {
            None => "✅ role: anyone may deploy here".to_string(),
            list => format!(
                "✅ role: deploying here takes {}, which you have",
                policy::who(list)
            ),
        }),
        Err(r) => {
            lines.push(format!("🚫 role: {}", r.reason));
            blockers.push("deploy role");
        }
    }
    match bot
        .store()
        .lock(app.name.as_str(), env.name.as_str(), now)
        .await
    {
        Ok(None) => lines.push("✅ lock: not locked".to_string()),
        Ok(Some(l)) if l.holder_id == user.id => lines.push(format!(
            "✅ lock: yours, {}",
            super::lock::describe(&l, now)
        )),
        Ok(Some(l)) => {
            lines.push(format!(
                "🚫 lock: held by {}, {}",
                l.holder_name,
                super::lock::describe(&l, now)
            ));
            blockers.push("lock");
        }
        Err(e) => lines.push(format!("❔ lock: unknown ({e})")),
    }
    // Someone else's turn, the deployments in progress, the line (src/flow/queue.rs).
    let (line, blocker) = super::queue::why(bot, app, env, &user.id).await;
    lines.extend(line);
    blockers.extend(blocker);
    let (freeze, frozen) = super::freeze::why_line(bot, app, env).await;
    lines.push(freeze);
    if frozen {
        blockers.push("freeze");
    }
    if env.confirm {
        lines.push(format!(
            "ℹ️ confirmation: you will be asked to confirm, and have {} to answer",
            crate::github::human_duration(config.defaults.confirm_timeout)
        ));
    }
    lines.push(match &env.required_contexts {
        None => "ℹ️ checks: every status check on the commit must be green".to_string(),
        Some(c) if c.is_empty() => "ℹ️ checks: none required".to_string(),
        Some(c) => format!("ℹ️ checks: {} must be green", c.join(", ")),
    });
    lines.push(match policy::check(config, app, env, user, Need::Force) {
        Ok(()) if env.production => {
            "ℹ️ force: you may force past checks here, with a reason (`-- REASON`)".to_string()
        }
        Ok(()) => "ℹ️ force: you may force past checks here".to_string(),
        Err(_) => format!("ℹ️ force: forcing here takes {}", policy::who(&rules.force)),
    });

    let place = format!("{} to {}", app.name, env.name);
    let mut m = if blockers.is_empty() {
        Message::new(
            Tone::Success,
            format!("{} can deploy {place} now", user.name),
        )
    } else {
        Message::refused(format!(
            "{} can't deploy {place} now: {}",
            user.name,
            blockers.join(", ")
        ))
    };
    for line in lines {
        m = m.line(line);
    }
    bot.reply(request, m).await;
    Outcome::allowed().on(app, Some(env))
}
