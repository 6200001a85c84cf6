//! `whats on ENV [for APP]`: what is live in one environment, across apps. API calls:
//! per app, 1 list + 1 status read per deployment inspected until the live one.

use commands::WhatsOn;

use crate::bot::Bot;
use crate::chat::{Message, Request};
use crate::flow::{answer_stop, unknown, Outcome};
use crate::history;

pub async fn run(bot: &Bot, request: &Request, cmd: WhatsOn) -> Outcome {
    let config = bot.config();
    let apps: Vec<_> = match &cmd.app {
        Some(name) => match crate::resolve::app(config, &request.conversation, Some(name), |a| {
            format!("whats on {} for {a}", cmd.environment)
        }) {
            Ok(app) => vec![app],
            Err(m) => return answer_stop(bot, request, unknown(m)).await,
        },
        None => config.apps.iter().collect(),
    };
    let wanted = config.unalias(&cmd.environment).to_string();
    let with_env: Vec<_> = apps
        .into_iter()
        .filter_map(|a| a.environment(config, &wanted).map(|e| (a, e)))
        .collect();
    if with_env.is_empty() {
        let mut names: Vec<&str> = config
            .apps
            .iter()
            .flat_map(|a| a.environment_names())
            .collect();
        names.sort();
        names.dedup();
        let m = Message::refused(format!("no app has an environment `{}`", cmd.environment))
            .line(format!("environments: {}", names.join(", ")));
        return answer_stop(bot, request, unknown(m)).await;
    }
    let now = bot.now();
    let env_name = with_env[0].1.name.to_string();
    let mut m = Message::info(format!("What is live in {env_name}"));
    for (app, env) in &with_env {
        let line = match history::live(bot.github(), &app.repository, env.name.as_str()).await {
            Ok(Some(e)) => {
                let mut s = format!(
                    "{}: {} ({}) by {}, {} · #{}",
                    app.name,
                    e.deployment.git_ref,
                    e.deployment.sha.short(),
                    e.who(),
                    history::ago(now, e.deployment.created_at),
                    e.deployment.id
                );
                if let Some(url) = e.status.as_ref().and_then(|s| s.environment_link()) {
                    s.push_str(&format!(" · {url}"));
                }
                s
            }
            Ok(None) => format!("{}: nothing deployed successfully yet", app.name),
            Err(e) => format!(
                "{}: unknown ({})",
                app.name,
                e.explain(&app.repository, now)
            ),
        };
        let locked = match bot
            .store()
            .lock(app.name.as_str(), env.name.as_str(), now)
            .await
        {
            Ok(Some(l)) => format!(" · 🔒 locked by {}", l.holder_name),
            _ => String::new(),
        };
        m = m.line(format!("{line}{locked}"));
    }
    bot.reply(request, m).await;
    Outcome::allowed()
}
