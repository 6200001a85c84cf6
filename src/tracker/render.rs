//! How a tracked deployment looks in chat: one message, edited as it moves.

use chrono::{DateTime, Utc};

use commands::{Command, Deploy, Rollback};

use crate::chat::{Action, Message, Tone};
use crate::github::human_duration;
use crate::model::DeploymentState;
use crate::store::Tracked;

/// Who asked, for people: the chat name, else the GitHub login.
pub fn requester(t: &Tracked) -> String {
    t.requester
        .as_ref()
        .map(|(_, name)| name.clone())
        .or_else(|| t.creator.clone())
        .unwrap_or_else(|| "someone".to_string())
}

fn label(t: &Tracked) -> String {
    let app = t.app.clone().unwrap_or_else(|| t.repository.to_string());
    let sha7: String = t.sha.chars().take(7).collect();
    let place = if t.hosts.is_empty() {
        t.environment.clone()
    } else {
        format!("{}/{}", t.environment, t.hosts.join(","))
    };
    // A rollback deploys an exact sha: show it once, short.
    if t.git_ref.len() == 40 && t.git_ref.chars().all(|c| c.is_ascii_hexdigit()) {
        return format!("{app}@{sha7} to {place}");
    }
    format!("{app}/{} ({sha7}) to {place}", t.git_ref)
}

/// The progress message for a tracked deployment at `now`.
pub fn progress(t: &Tracked, now: DateTime<Utc>) -> Message {
    let title = match t.state {
        DeploymentState::Created if t.requester.is_some() => {
            format!("Created deployment #{} of {}", t.deployment_id, label(t))
        }
        DeploymentState::Created => format!(
            "{} created deployment #{} of {}",
            requester(t),
            t.deployment_id,
            label(t)
        ),
        state => format!("Deployment #{} of {}: {state}", t.deployment_id, label(t)),
    };
    let mut m = Message::new(Tone::Progress(t.state), title);
    if let Some(d) = t
        .status_description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
    {
        m = m.line(d.to_string());
    }
    if t.forced {
        m = m.line(format!(
            "⚠️ forced: checks skipped{}",
            t.reason
                .as_deref()
                .map(|r| format!(" — reason: {r}"))
                .unwrap_or_default()
        ));
    }
    // Pre-flight notes (how the ref compares, an auto-merge, a recovery) matter when
    // the deployment is created; later updates stay short.
    if t.state == DeploymentState::Created {
        for note in &t.notes {
            m = m.line(note.clone());
        }
    }
    if t.state == DeploymentState::Created && !t.warned_no_status {
        m = m.line("waiting for the deployer to report a status");
    }
    if t.warned_no_status && t.state == DeploymentState::Created {
        m = m.line(
            "⚠️ no status yet: is a deployer listening for the `deployment` event (e.g. a GitHub Actions workflow `on: deployment`), \
             and is GitHub's webhook pointed at deploybot with `deployment_status` selected? See README › Wiring a deployer",
        );
    }
    if t.warned_stuck && !t.state.is_final() {
        m = m.line(format!(
            "⚠️ still {} after {}: the deployer may be stuck; check its logs",
            t.state,
            human_duration(elapsed(t, now))
        ));
    }
    if t.given_up && !t.state.is_final() {
        m = m.line(format!(
            "⚠️ deploybot stopped following this deployment after {} without a final status; see GitHub",
            human_duration(elapsed(t, now))
        ));
    }
    m = m.field("requested by", requester(t));
    if t.task != "deploy" || t.state == DeploymentState::Created {
        m = m.field("task", t.task.clone());
    }
    if !t.forced {
        if let Some(reason) = &t.reason {
            m = m.field("reason", reason.clone());
        }
    }
    if t.state != DeploymentState::Created {
        m = m.field(
            if t.state.is_final() {
                "took"
            } else {
                "elapsed"
            },
            human_duration(elapsed(t, now)),
        );
    }
    if let Some(url) = &t.log_url {
        m = m.link("logs", url.clone());
    }
    if let Some(url) = &t.environment_url {
        m = m.link("environment", url.clone());
    }
    if let Some(url) = &t.compare_url {
        if !t.state.is_final() {
            m = m.link("compare", url.clone());
        }
    }
    if let Some(url) = &t.html_url {
        if t.state == DeploymentState::Created {
            m = m.link("deployments", format!("{url}/deployments"));
        }
    }
    for action in next_steps(t) {
        m = m.action(action);
    }
    m
}

/// What a finished deployment made from chat offers next: a failure, Retry and Roll
/// back; a success, Roll back. Each is the typed command, run as whoever presses it.
fn next_steps(t: &Tracked) -> Vec<Action> {
    let (Some(app), Some(_)) = (&t.app, &t.requester) else {
        return Vec::new();
    };
    let rollback = Action::Rollback {
        command: Command::Rollback(Rollback {
            app: app.clone(),
            environment: Some(t.environment.clone()),
            force: false,
            reason: None,
        })
        .to_string(),
        replacing: t.deployment_id.0,
    };
    match t.state {
        DeploymentState::Success => vec![rollback],
        DeploymentState::Failure | DeploymentState::Error => vec![
            Action::Retry {
                command: Command::Deploy(Deploy {
                    task: t.task.clone(),
                    force: false,
                    target: format!("{app}/{}", t.git_ref),
                    environment: Some(t.environment.clone()),
                    hosts: t.hosts.clone(),
                    reason: None,
                    queue: false,
                    when_green: false,
                })
                .to_string(),
            },
            rollback,
        ],
        _ => Vec::new(),
    }
}

/// The one-off notification when a deployment ends: edits notify nobody, a mention does.
pub fn finished(t: &Tracked, now: DateTime<Utc>) -> Option<Message> {
    let (user_id, _) = t.requester.as_ref()?;
    let verb = match t.state {
        DeploymentState::Success => "succeeded",
        DeploymentState::Failure => "failed",
        DeploymentState::Error => "errored",
        DeploymentState::Inactive => "was replaced",
        _ => return None,
    };
    let mut m = Message::new(
        Tone::Progress(t.state),
        format!(
            "deployment #{} of {} {verb} after {}",
            t.deployment_id,
            label(t),
            human_duration(elapsed(t, now))
        ),
    );
    m.mention = Some(user_id.clone());
    if let Some(url) = &t.log_url {
        m = m.link("logs", url.clone());
    }
    if t.state == DeploymentState::Success {
        if let Some(url) = &t.environment_url {
            m = m.link("environment", url.clone());
        }
    }
    Some(m)
}

fn elapsed(t: &Tracked, now: DateTime<Utc>) -> std::time::Duration {
    let end = t.finished_at.unwrap_or(now);
    (end - t.created_at).to_std().unwrap_or_default()
}
