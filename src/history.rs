//! GitHub's deployments are the deploy history: these queries answer "what happened"
//! and "what is live" from them, with as few API calls as possible.
//!
//! Call counts (documented in the README): with GraphQL, [`recent`] is 1 query and
//! [`live`] 1 query for every environment asked about; over REST (the fallback)
//! [`recent`] = 1 list + 1 latest-status read per deployment, [`live`] = per environment
//! 1 list + 1 read per deployment inspected until the newest successful one (at most
//! [`LIVE_SCAN`]). See [`crate::github::rest`].

use chrono::{DateTime, Utc};

use crate::github::{Deployment, DeploymentFilter, GitHub, GitHubError};
pub use crate::github::{Entry, LIVE_SCAN};
use crate::model::{DeploymentState, RepoName};

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
    github.recent_deployments(repo, filter).await
}

/// What is live in an environment: the newest deployment whose latest status is
/// `success` (among the last [`LIVE_SCAN`]).
pub async fn live(
    github: &dyn GitHub,
    repo: &RepoName,
    environment: &str,
) -> Result<Option<Entry>, GitHubError> {
    live_in(github, repo, &[environment])
        .await
        .pop()
        .unwrap_or(Ok(None))
}

/// [`live`] for several environments of one repository, in one request where GitHub
/// allows; the answers are in the order asked.
pub async fn live_in(
    github: &dyn GitHub,
    repo: &RepoName,
    environments: &[&str],
) -> Vec<Result<Option<Entry>, GitHubError>> {
    github.live(repo, environments).await
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
