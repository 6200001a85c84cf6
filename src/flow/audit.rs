//! `audit [APP] [in ENV]`: who tried what, where, and what the bot decided. Read-only:
//! no command can change or erase the log (entries only age out by retention).

use commands::Audit;

use crate::bot::Bot;
use crate::chat::{Message, Request, Tone};
use crate::flow::{answer_stop, unknown, Decision, Outcome};

const SHOWN: u32 = 20;

pub async fn run(bot: &Bot, request: &Request, cmd: Audit) -> Outcome {
    let config = bot.config();
    let app = match &cmd.app {
        Some(name) => match crate::resolve::app(config, &request.conversation, Some(name), |a| {
            format!("audit {a}")
        }) {
            Ok(app) => Some(app.name.to_string()),
            Err(m) => return answer_stop(bot, request, unknown(m)).await,
        },
        None => None,
    };
    let env = cmd
        .environment
        .as_deref()
        .map(|e| config.unalias(e).to_string());
    let entries = match bot
        .store()
        .audit_entries(app.as_deref(), env.as_deref(), SHOWN)
        .await
    {
        Ok(entries) => entries,
        Err(e) => {
            bot.reply(
                request,
                Message::new(Tone::Failed, format!("could not read the audit log: {e}")),
            )
            .await;
            return Outcome::new(Decision::Failed);
        }
    };
    let scope = match (&app, &env) {
        (Some(a), Some(e)) => format!(" for {a} in {e}"),
        (Some(a), None) => format!(" for {a}"),
        (None, Some(e)) => format!(" in {e}"),
        (None, None) => String::new(),
    };
    let mut m = if entries.is_empty() {
        Message::info(format!("The audit log has nothing{scope} yet"))
    } else {
        Message::info(format!(
            "Last {} audit entries{scope}, newest first",
            entries.len()
        ))
    };
    for e in &entries {
        let verdict = match (&e.rule, e.deployment_id) {
            (Some(rule), _) => format!("{} ({rule})", e.decision),
            (None, Some(id)) => format!("{} (deployment #{id})", e.decision),
            (None, None) => e.decision.clone(),
        };
        m = m.line(format!(
            "{} {} in #{}: `{}` → {verdict}",
            e.at.format("%Y-%m-%d %H:%M UTC"),
            e.user_name,
            e.channel,
            e.text
        ));
    }
    bot.reply(request, m).await;
    Outcome::allowed()
}
