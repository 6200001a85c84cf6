//! `where can i deploy APP` / `environments [APP]` / `where is APP`: one row per
//! configured environment — what is live there (from GitHub's history), whether the
//! caller may deploy to it, and whether it is locked or frozen. API calls: per
//! environment, 1 list + 1 status read per deployment inspected until the live one
//! (usually 1).

use commands::Environments;

use crate::bot::Bot;
use crate::chat::{Message, Request};
use crate::config::AppConfig;
use crate::flow::{answer_stop, unknown, Outcome};
use crate::history;
use crate::policy::{self, Need};
use crate::resolve;

pub async fn run(bot: &Bot, request: &Request, cmd: Environments) -> Outcome {
    let config = bot.config();
    let Some(name) = cmd.app.as_deref() else {
        // Every app that may be deployed from here, as `help environments` says.
        let here: Vec<&AppConfig> = config
            .apps
            .iter()
            .filter(|a| policy::check_channel(a, &request.conversation).is_ok())
            .collect();
        if here.is_empty() {
            let elsewhere: Vec<String> = config
                .apps
                .iter()
                .map(|a| format!("{} (from #{})", a.name, a.channels.join(", #")))
                .collect();
            let m = Message::refused(format!(
                "no app may be deployed from {}",
                request.conversation.display()
            ))
            .line(format!("apps: {}", elsewhere.join(", ")))
            .line(format!(
                "e.g. `environments {}` shows one anyway",
                config.apps[0].name
            ));
            return answer_stop(bot, request, unknown(m)).await;
        }
        for app in &here {
            let message = describe(bot, request, app).await;
            bot.reply(request, message).await;
        }
        return match here.as_slice() {
            [only] => Outcome::allowed().on(only, None),
            _ => Outcome::allowed(),
        };
    };
    let app = match resolve::app(config, &request.conversation, Some(name), |a| {
        format!("where is {a}")
    }) {
        Ok(app) => app,
        Err(m) => return answer_stop(bot, request, unknown(m)).await,
    };
    let message = describe(bot, request, app).await;
    bot.reply(request, message).await;
    Outcome::allowed().on(app, None)
}

/// One app's environments: what is live, whether the caller may deploy, locks.
async fn describe(bot: &Bot, request: &Request, app: &AppConfig) -> Message {
    let config = bot.config();
    let now = bot.now();
    let mut message = Message::info(format!("Environments of {} ({})", app.name, app.repository));
    let names: Vec<&str> = app.environments.iter().map(|e| e.name.as_str()).collect();
    let mut lives = history::live_in(bot.github(), &app.repository, &names)
        .await
        .into_iter();
    for env in &app.environments {
        let mut notes = Vec::new();
        if app.default_environment.as_ref() == Some(&env.name) {
            notes.push("default".to_string());
        }
        // `production (production)` says nothing: the flag is noted when the name
        // does not say it already.
        if env.production && !env.name.as_str().eq_ignore_ascii_case("production") {
            notes.push("production".to_string());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        let live = match lives.next().unwrap_or(Ok(None)) {
            Ok(Some(e)) => format!(
                "live: {} ({}) by {}, {}",
                e.deployment.git_ref,
                e.deployment.sha.short(),
                e.who(),
                history::ago(now, e.deployment.created_at)
            ),
            Ok(None) => "never deployed successfully".to_string(),
            Err(e) => format!("live: unknown ({e})"),
        };
        let may = match policy::check(config, app, env, &request.user, Need::Deploy) {
            Ok(()) => "you can deploy".to_string(),
            Err(_) => format!(
                "deploy needs {}",
                policy::who(&config.rules(app, env).deploy)
            ),
        };
        let locked = match bot
            .store()
            .lock(app.name.as_str(), env.name.as_str(), now)
            .await
        {
            Ok(Some(l)) => format!(
                " · 🔒 locked by {} until {}",
                l.holder_name,
                l.expires_at.format("%H:%M UTC")
            ),
            _ => String::new(),
        };
        let frozen = match super::freeze::active(bot, app, env).await {
            Ok(f) if !f.is_empty() => format!(" · 🧊 frozen: {}", f[0].reason),
            _ => String::new(),
        };
        message = message.line(format!(
            "{}{notes} — {live} · {may}{locked}{frozen}",
            env.name
        ));
    }
    if !app.channels.is_empty() {
        message = message.line(format!("deploys from #{}", app.channels.join(", #")));
    }
    message
}
