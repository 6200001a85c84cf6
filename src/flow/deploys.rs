//! `deploys APP[/REF] [in ENV] [last N]`: recent deployments, from GitHub's history.
//! API calls: 1 GraphQL query (over REST: 1 list + N latest-status reads, concurrent).

use commands::Deploys;

use crate::bot::Bot;
use crate::chat::{Message, Request, Tone};
use crate::flow::{answer_stop, unknown, Outcome, Stop};
use crate::github::DeploymentFilter;
use crate::history;
use crate::resolve;

const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 30;

pub async fn run(bot: &Bot, request: &Request, cmd: Deploys) -> Outcome {
    match answer(bot, request, &cmd).await {
        Ok(m) => {
            bot.reply(request, m).await;
            Outcome::allowed()
        }
        Err(stop) => answer_stop(bot, request, stop).await,
    }
}

async fn answer(bot: &Bot, request: &Request, cmd: &Deploys) -> Result<Message, Stop> {
    let config = bot.config();
    let app = resolve::app(config, &request.conversation, Some(&cmd.app), |a| {
        format!("deploys {a}")
    })
    .map_err(unknown)?;
    let env = match &cmd.environment {
        Some(e) => Some(
            resolve::environment(config, app, Some(e), |e| {
                format!("deploys {} in {e}", app.name)
            })
            .map_err(unknown)?,
        ),
        None => None,
    };
    let limit = cmd.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let filter = DeploymentFilter {
        git_ref: cmd.git_ref.clone(),
        environment: env.map(|e| e.name.to_string()),
        per_page: Some(limit as u8),
        ..Default::default()
    };
    let entries = history::recent(bot.github(), &app.repository, &filter)
        .await
        .map_err(|e| {
            Stop::failed(
                Message::new(
                    Tone::Failed,
                    format!("could not read {}'s deployments", app.name),
                )
                .line(e.explain(&app.repository, bot.now())),
            )
        })?;

    let scope = format!(
        "{}{}{}",
        app.name,
        cmd.git_ref
            .as_deref()
            .map(|r| format!("/{r}"))
            .unwrap_or_default(),
        env.map(|e| format!(" in {}", e.name)).unwrap_or_default()
    );
    if entries.is_empty() {
        let env_name = env.map_or_else(
            || app.environment_names()[0].to_string(),
            |e| e.name.to_string(),
        );
        return Ok(
            Message::info(format!("No deployments of {scope} yet")).line(format!(
                "deploy with e.g. `deploy {} to {env_name}`",
                app.name
            )),
        );
    }
    let now = bot.now();
    let mut message = Message::info(if entries.len() == 1 {
        format!("Latest deployment of {scope}")
    } else {
        format!("Last {} deployments of {scope}", entries.len())
    });
    for e in &entries {
        let d = &e.deployment;
        let state = e.state();
        let task = if d.task == "deploy" {
            String::new()
        } else {
            format!(" [{}]", d.task)
        };
        let mut line = format!(
            "#{} {} ({}) → {}{task} · {} · {} · {} {}",
            d.id,
            d.git_ref,
            d.sha.short(),
            d.environment,
            e.who(),
            history::ago(now, d.created_at),
            state.symbol(),
            state
        );
        if let Some(url) = e.status.as_ref().and_then(|s| s.log_link()) {
            line.push_str(&format!(" · logs: {url}"));
        }
        message = message.line(line);
    }
    Ok(message)
}
