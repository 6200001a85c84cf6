//! `deploy`: the effect of [`commands::Deploy`].
//!
//! Resolve (app, ref, environment) → check policy → post a "creating…" message →
//! `POST /deployments` (never blindly retried; one retry after a 202 auto-merge, which
//! creates nothing) → edit that message with the outcome. The message id goes into
//! the deployment's payload, so status events can find the message again.

use commands::Deploy;
use serde_json::json;

use crate::bot::Bot;
use crate::chat::{Action, Message, Request, Tone};
use crate::config::{AppConfig, EnvConfig};
use crate::github::{
    create_deployment_once, ContextState, CreateOutcome, CreateResult, DeploybotPayload,
    GitHubError, NewDeployment, PayloadChat, PayloadUser,
};
use crate::model::DeploymentState;
use crate::policy::{self, Need};
use crate::store::Tracked;
use crate::tracker::render;
use crate::{flow, resolve};

/// GitHub's limit for a deployment description.
const DESCRIPTION_MAX: usize = 140;

pub async fn run(bot: &Bot, request: &Request, cmd: Deploy) {
    match plan(bot, request, &cmd).await {
        Ok(plan) => execute(bot, request, &cmd, plan).await,
        Err(refusal) => {
            bot.reply(request, refusal).await;
        }
    }
}

/// Everything decided before talking to GitHub's deployments API.
struct Plan<'a> {
    app: &'a AppConfig,
    env: &'a EnvConfig,
    git_ref: String,
    /// `api/topic`, for messages.
    label: String,
    html_url: Option<String>,
    may_force: bool,
}

/// The same command with other values, for "type this instead" hints.
fn with(cmd: &Deploy, f: impl FnOnce(&mut Deploy)) -> String {
    let mut c = cmd.clone();
    f(&mut c);
    commands::Command::Deploy(c).to_string()
}

async fn plan<'a>(bot: &'a Bot, request: &Request, cmd: &Deploy) -> Result<Plan<'a>, Message> {
    let config = bot.config();
    let target = resolve::target(config, &request.conversation, &cmd.target)?;
    let app = target.app;
    let env = resolve::environment(config, app, cmd.environment.as_deref(), |e| {
        with(cmd, |c| c.environment = Some(e.to_string()))
    })?;
    policy::check_channel(app, &request.conversation).map_err(flow::refusal)?;
    policy::check(config, app, env, &request.user, Need::Deploy).map_err(flow::refusal)?;
    let may_force = policy::check(config, app, env, &request.user, Need::Force).is_ok();
    if cmd.force {
        policy::check(config, app, env, &request.user, Need::Force).map_err(flow::refusal)?;
        if env.production && cmd.reason.is_none() {
            return Err(Message::refused(format!(
                "forcing a deploy to {} (a production environment) needs a reason",
                env.name
            ))
            .line(format!(
                "e.g. `{}`",
                with(cmd, |c| c.reason =
                    Some("hotfix for the login outage".into()))
            )));
        }
    }

    // Both the default branch and the deployments page come from the repository, which
    // is cached; a bare app name is never assumed to mean `main` or `master`.
    let repository = bot.repository(&app.repository).await;
    let (git_ref, html_url) = match (&target.git_ref, repository) {
        (Some(r), Ok(repo)) => (r.to_string(), Some(repo.html_url)),
        (Some(r), Err(_)) => (r.to_string(), None),
        (None, Ok(repo)) => (repo.default_branch, Some(repo.html_url)),
        (None, Err(e)) => {
            return Err(Message::new(
                Tone::Failed,
                format!("could not find {}'s default branch", app.name),
            )
            .line(e.explain(&app.repository, bot.now())))
        }
    };
    Ok(Plan {
        label: format!("{}/{}", app.name, git_ref),
        app,
        env,
        git_ref,
        html_url,
        may_force,
    })
}

async fn execute(bot: &Bot, request: &Request, cmd: &Deploy, plan: Plan<'_>) {
    let where_to = destination(plan.env.name.as_str(), &cmd.hosts);
    let working = Message::new(
        Tone::Working,
        format!("Creating a deployment of {} to {where_to}…", plan.label),
    );
    let message_id = bot.reply(request, working).await;

    let request_id = uuid::Uuid::new_v4().to_string();
    let new = new_deployment(
        request,
        cmd,
        &plan,
        &request_id,
        message_id.as_ref().map(|m| m.0.clone()),
    );
    let repo = &plan.app.repository;

    let mut notes = Vec::new();
    let mut result = create_deployment_once(bot.github(), repo, &new, &request_id).await;
    if let Ok(CreateResult::Answered(CreateOutcome::AutoMerged { message })) = &result {
        // 202: GitHub merged the default branch into the ref and created nothing. The
        // ref now points at the merge commit; asking once more deploys it.
        notes.push(format!(
            "GitHub auto-merged first ({message}), so no deployment existed yet; deploybot asked again"
        ));
        result = create_deployment_once(bot.github(), repo, &new, &request_id).await;
    }

    let outcome = match result {
        Ok(CreateResult::Answered(CreateOutcome::Created(d))) => Ok(d),
        Ok(CreateResult::Recovered(d)) => {
            notes.push("GitHub's answer was lost on the way, but the deployment exists (found by its request id)".into());
            Ok(d)
        }
        Ok(CreateResult::Answered(CreateOutcome::AutoMerged { message })) => Err(Message::new(
            Tone::Failed,
            format!(
                "Not deployed: GitHub auto-merged {} twice and created no deployment",
                plan.label
            ),
        )
        .line(message)
        .line(format!(
            "try again in a minute: `{}`",
            commands::Command::Deploy(cmd.clone())
        ))),
        Ok(CreateResult::Answered(CreateOutcome::ChecksFailed { contexts, .. })) => Err(
            checks_failed(cmd, &plan, &contexts, std::mem::take(&mut notes)),
        ),
        Ok(CreateResult::Answered(CreateOutcome::MergeConflict { message })) => Err(Message::new(
            Tone::Failed,
            format!(
                "Not deployed: {} can't be merged with the default branch",
                plan.label
            ),
        )
        .line(format!("GitHub: {message}"))
        .line(format!(
            "merge or rebase {} onto the default branch and push, then deploy again",
            plan.git_ref
        ))),
        Ok(CreateResult::Answered(CreateOutcome::Invalid { message, errors })) => {
            Err(invalid(&plan, &message, &errors))
        }
        Err(e) => Err(failed(bot, &plan, &e)),
    };
    let deployment = match outcome {
        Ok(d) => d,
        Err(reply) => {
            bot.update(&request.conversation, message_id.as_ref(), &reply)
                .await;
            return;
        }
    };

    // From here on the tracker owns the message: it renders "created" now and every
    // status the deployer reports later.
    let tracked = Tracked {
        deployment_id: deployment.id,
        repository: plan.app.repository.clone(),
        app: Some(plan.app.name.to_string()),
        environment: deployment.environment.clone(),
        git_ref: deployment.git_ref.clone(),
        sha: deployment.sha.to_string(),
        task: deployment.task.clone(),
        conversation: request.conversation.clone(),
        message_id: message_id.as_ref().map(|m| m.0.clone()),
        requester: Some((request.user.id.clone(), request.user.name.clone())),
        creator: None,
        html_url: plan.html_url.clone(),
        hosts: cmd.hosts.clone(),
        reason: cmd.reason.clone(),
        forced: cmd.force,
        notes,
        created_at: deployment.created_at,
        state: DeploymentState::Created,
        status_id: None,
        status_description: None,
        log_url: None,
        environment_url: None,
        finished_at: None,
        announced: false,
        final_rendered: false,
        warned_no_status: false,
        warned_stuck: false,
        etag: None,
    };
    if let Err(e) = bot.tracker().started(tracked.clone()).await {
        // Without storage the deployment still exists: say so, untracked.
        tracing::error!(error = %e, "cannot track a deployment");
        let message = render::progress(&tracked, bot.now()).line(format!(
            "⚠️ deploybot cannot follow this deployment ({e}); watch it on GitHub"
        ));
        bot.update(&request.conversation, message_id.as_ref(), &message)
            .await;
    }
}

fn destination(env: &str, hosts: &[String]) -> String {
    if hosts.is_empty() {
        env.to_string()
    } else {
        format!("{env}/{}", hosts.join(","))
    }
}

fn new_deployment(
    request: &Request,
    cmd: &Deploy,
    plan: &Plan<'_>,
    request_id: &str,
    message_id: Option<String>,
) -> NewDeployment {
    let routing = DeploybotPayload {
        request_id: request_id.to_string(),
        chat: PayloadChat {
            adapter: request.conversation.adapter.clone(),
            channel: request.conversation.channel.clone(),
            thread: request.conversation.thread.clone(),
            message: message_id,
        },
        user: PayloadUser {
            id: request.user.id.clone(),
            name: request.user.name.clone(),
        },
        hosts: cmd.hosts.clone(),
        reason: cmd.reason.clone(),
        app: Some(plan.app.name.to_string()),
    };
    // App extras, then environment extras over them, then deploybot's own key.
    let mut payload = plan.app.payload.clone();
    payload.extend(plan.env.payload.clone());
    payload.insert("deploybot".into(), json!(routing));

    let mut description = format!(
        "{} {} to {} for {} in {} via deploybot",
        cmd.task,
        plan.label,
        destination(plan.env.name.as_str(), &cmd.hosts),
        request.user.name,
        request.conversation.display()
    );
    if cmd.force {
        description.push_str(" (forced)");
    }
    NewDeployment {
        git_ref: plan.git_ref.clone(),
        task: cmd.task.clone(),
        environment: plan.env.name.to_string(),
        // Forcing skips every check and never merges: what is deployed is exactly the ref.
        required_contexts: if cmd.force {
            Some(Vec::new())
        } else {
            plan.env.required_contexts.clone()
        },
        auto_merge: !cmd.force && plan.env.auto_merge,
        production_environment: plan.env.production,
        transient_environment: plan.env.transient,
        description: truncate(&description, DESCRIPTION_MAX),
        payload: serde_json::Value::Object(payload),
    }
}

/// Cuts at a character boundary and marks the cut.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

fn checks_failed(
    cmd: &Deploy,
    plan: &Plan<'_>,
    contexts: &[ContextState],
    notes: Vec<String>,
) -> Message {
    let not_green: Vec<&ContextState> = contexts.iter().filter(|c| c.state != "success").collect();
    let shown = if not_green.is_empty() {
        contexts.iter().collect()
    } else {
        not_green
    };
    let mut m = Message::new(
        Tone::Failed,
        format!("Not deployed: checks on {} are not all green", plan.label),
    );
    for note in notes {
        m = m.line(note);
    }
    for c in &shown {
        m = m.line(format!("{}: {}", c.context, c.state));
    }
    if shown.is_empty() {
        m = m.line("GitHub did not say which checks");
    }
    let forced = commands::Command::Deploy(Deploy {
        force: true,
        reason: cmd
            .reason
            .clone()
            .or_else(|| plan.env.production.then(|| "REASON".to_string())),
        ..cmd.clone()
    })
    .to_string();
    let pending_only = shown.iter().all(|c| c.state == "pending");
    m = m.line(if pending_only {
        "wait for them to finish and deploy again".to_string()
    } else {
        "fix them and deploy again".to_string()
    });
    if plan.may_force {
        m = m.action(Action::Force { command: forced });
    } else {
        m = m.line(format!(
            "forcing past checks to {} needs the right role; ask someone who can force",
            plan.env.name
        ));
    }
    m
}

fn invalid(plan: &Plan<'_>, message: &str, errors: &[crate::github::ValidationItem]) -> Message {
    let lower = message.to_ascii_lowercase();
    if lower.contains("no ref found") || errors.iter().any(|e| e.field.as_deref() == Some("ref")) {
        return Message::new(
            Tone::Failed,
            format!("{} has no ref `{}`", plan.app.name, plan.git_ref),
        )
        .line(format!(
            "check the spelling, or push it to {} first",
            plan.app.repository
        ));
    }
    let mut m = Message::new(
        Tone::Failed,
        format!("GitHub refused the deployment: {message}"),
    );
    for e in errors {
        let detail = [e.field.as_deref(), e.code.as_deref(), e.message.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !detail.is_empty() {
            m = m.line(detail);
        }
    }
    m
}

fn failed(bot: &Bot, plan: &Plan<'_>, e: &GitHubError) -> Message {
    Message::new(Tone::Failed, format!("Not deployed: {}", plan.label))
        .line(e.explain(&plan.app.repository, bot.now()))
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn descriptions_fit_githubs_limit_without_splitting_characters() {
        let long = "ü".repeat(200);
        let t = truncate(&long, 140);
        assert_eq!(t.chars().count(), 140);
        assert!(t.ends_with('…'));
        assert_eq!(truncate("short", 140), "short");
    }
}
