//! The reads GraphQL answers in one request, done over REST: the path for a client
//! without GraphQL (a proxy, an old GitHub Enterprise Server, a token GraphQL refuses).
//! They cost more requests, as counted on each function.

use futures_util::future::join_all;

use super::{DeploymentFilter, Entry, GitHub, GitHubError, Preflight, PreflightQuery, LIVE_SCAN};
use crate::model::{DeploymentState, RepoName};

/// 1 list + 1 latest-status read per deployment (`per_page=1`, concurrently).
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

/// Per environment: 1 list + 1 latest-status read per deployment, newest first,
/// stopping at the first success (at most [`LIVE_SCAN`]).
pub async fn live(
    github: &dyn GitHub,
    repo: &RepoName,
    environments: &[&str],
) -> Vec<Result<Option<Entry>, GitHubError>> {
    let mut out = Vec::with_capacity(environments.len());
    for environment in environments {
        out.push(live_in(github, repo, environment).await);
    }
    out
}

async fn live_in(
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

/// [`live`] for the environment, then 1 compare when something is live, and 2 reads
/// (commit statuses, check runs) when the checks are asked for.
pub async fn preflight(
    github: &dyn GitHub,
    repo: &RepoName,
    query: &PreflightQuery<'_>,
) -> Preflight {
    let live = live_in(github, repo, query.environment).await;
    let comparison = match &live {
        Ok(Some(live)) => Some(
            github
                .compare(repo, live.deployment.sha.as_str(), query.git_ref)
                .await,
        ),
        _ => None,
    };
    let checks = if query.checks {
        Some(github.commit_checks(repo, query.git_ref).await)
    } else {
        None
    };
    Preflight {
        repository: None,
        live,
        comparison,
        checks,
    }
}
