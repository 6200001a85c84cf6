//! GitHub's deployments are the deploy history: these queries answer "what happened"
//! and "what is live" from them, with as few API calls as possible.
//!
//! Call counts (documented in the README): [`recent`] = 1 list + 1 per deployment
//! (latest status only, `per_page=1`, fetched concurrently); [`live`] = 1 list + 1 per
//! deployment inspected until the newest successful one (at most [`LIVE_SCAN`]).

use chrono::{DateTime, Utc};
use futures_util::future::join_all;

use crate::github::{Deployment, DeploymentFilter, DeploymentStatus, GitHub, GitHubError};
use crate::model::{DeploymentState, RepoName};

/// How many recent deployments of an environment are inspected to find what is live.
pub const LIVE_SCAN: u8 = 10;

/// A deployment with its latest status (`None`: no status yet, or it could not be read).
#[derive(Debug, Clone)]
pub struct Entry {
    pub deployment: Deployment,
    pub status: Option<DeploymentStatus>,
}

impl Entry {
    pub fn state(&self) -> DeploymentState {
        self.status
            .as_ref()
            .and_then(|s| s.state())
            .unwrap_or(DeploymentState::Created)
    }

    /// Who asked: the chat user in deploybot's payload, else the GitHub creator.
    pub fn who(&self) -> String {
        who(&self.deployment)
    }
}

pub fn who(d: &Deployment) -> String {
    d.deploybot()
        .map(|p| p.user.name)
        .or_else(|| d.creator.as_ref().map(|c| c.login.clone()))
        .unwrap_or_else(|| "someone".to_string())
}

/// Recent deployments matching `filter`, newest first, each with its latest status.
pub async fn recent(
    github: &dyn GitHub,
    repo: &RepoName,
    filter: &DeploymentFilter,
) -> Result<Vec<Entry>, GitHubError> {
    let deployments = github.deployments(repo, filter).await?;
    let statuses = join_all(
        deployments
            .iter()
            .map(|d| github.deployment_statuses(repo, d.id, Some(1))),
    )
    .await;
    Ok(deployments
        .into_iter()
        .zip(statuses)
        .map(|(deployment, status)| Entry {
            deployment,
            status: status.ok().and_then(|mut s| {
                if s.is_empty() {
                    None
                } else {
                    Some(s.remove(0))
                }
            }),
        })
        .collect())
}

/// What is live in an environment: the newest deployment whose latest status is
/// `success`. Deployments are inspected newest first, stopping at the first success.
pub async fn live(
    github: &dyn GitHub,
    repo: &RepoName,
    environment: &str,
) -> Result<Option<Entry>, GitHubError> {
    let filter = DeploymentFilter {
        environment: Some(environment.to_string()),
        per_page: Some(LIVE_SCAN),
        ..Default::default()
    };
    for deployment in github.deployments(repo, &filter).await? {
        let mut statuses = github
            .deployment_statuses(repo, deployment.id, Some(1))
            .await?;
        if statuses.first().and_then(|s| s.state()) == Some(DeploymentState::Success) {
            return Ok(Some(Entry {
                deployment,
                status: Some(statuses.remove(0)),
            }));
        }
    }
    Ok(None)
}

/// "5m ago", "just now".
pub fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    if secs < 5 {
        return "just now".to_string();
    }
    format!(
        "{} ago",
        crate::github::human_duration(std::time::Duration::from_secs(secs as u64))
    )
}
