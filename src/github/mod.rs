//! The GitHub port: what the core asks of GitHub, in GitHub's own terms.
//!
//! [`GitHub`] is the trait the core depends on; [`client::HttpGitHub`] implements it
//! over REST (GitHub.com or Enterprise, any base URL). Types parse every example under
//! `fixtures/github/rest/`. Outcomes GitHub documents for creating a
//! deployment (202, the two kinds of 409, 422) are values of [`CreateOutcome`], not
//! errors: the deploy flow answers each differently. [`GitHubError`] is for
//! everything that stops a request (credentials, rate limits, the network).

pub mod client;
pub mod events;
mod graphql;
pub mod rest;
pub mod token;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{DeploymentId, DeploymentState, RepoName, Sha};

#[async_trait]
pub trait GitHub: Send + Sync {
    /// `GET /repos/{o}/{r}`.
    async fn repository(&self, repo: &RepoName) -> Result<Repository, GitHubError>;

    /// `POST /repos/{o}/{r}/deployments`. Not idempotent: never retry blindly (see
    /// [`create_deployment_once`]).
    async fn create_deployment(
        &self,
        repo: &RepoName,
        new: &NewDeployment,
    ) -> Result<CreateOutcome, GitHubError>;

    /// `GET /repos/{o}/{r}/deployments` with filters, newest first.
    async fn deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, GitHubError>;

    /// `GET /repos/{o}/{r}/deployments/{id}/statuses`, newest first. With
    /// `per_page = Some(1)` this is the latest status only.
    async fn deployment_statuses(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        per_page: Option<u8>,
    ) -> Result<Vec<DeploymentStatus>, GitHubError>;

    /// `GET /repos/{o}/{r}/compare/{base}...{head}`.
    async fn compare(
        &self,
        repo: &RepoName,
        base: &str,
        head: &str,
    ) -> Result<Comparison, GitHubError>;

    /// The checks on a commit, as `required_contexts` sees them: the latest commit
    /// status per context and the check runs by name.
    async fn commit_checks(
        &self,
        repo: &RepoName,
        git_ref: &str,
    ) -> Result<Vec<ContextState>, GitHubError>;

    /// The commit a ref points to now, and its checks as [`GitHub::commit_checks`]
    /// reads them (both read for that commit, so they agree): what `deploy … when
    /// green` follows.
    async fn ref_checks(&self, repo: &RepoName, git_ref: &str) -> Result<RefChecks, GitHubError>;

    /// `GET /repos/{o}/{r}/branches`: branch names, first page (for autocompletion).
    async fn branches(&self, repo: &RepoName, per_page: u8) -> Result<Vec<String>, GitHubError>;

    /// The latest status, asked conditionally: with the ETag of the previous answer,
    /// an unchanged list is a 304, which costs no rate limit.
    async fn latest_status_if_changed(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        etag: Option<&str>,
    ) -> Result<Conditional<Option<DeploymentStatus>>, GitHubError>;

    /// Recent deployments matching `filter`, newest first, each with its latest status.
    /// REST: 1 list + 1 latest-status read per deployment; GraphQL: 1 query.
    async fn recent_deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Entry>, GitHubError>;

    /// What is live in each of `environments` (in that order): the newest of its last
    /// [`LIVE_SCAN`] deployments whose latest status is `success`. REST: per environment
    /// 1 list + 1 status read per deployment until the live one; GraphQL: 1 query for
    /// all of them.
    async fn live(
        &self,
        repo: &RepoName,
        environments: &[&str],
    ) -> Vec<Result<Option<Entry>, GitHubError>>;

    /// Everything the deploy flow reads before creating a deployment: what is live in
    /// the environment, how the ref relates to it and (when asked) the checks on the
    /// ref. REST: see [`rest::preflight`]; GraphQL: 1 query, plus 1 compare when the live
    /// deployment's branch has moved on since it was deployed and this client has not
    /// seen that commit live or deployed it.
    async fn preflight(&self, repo: &RepoName, query: &PreflightQuery<'_>) -> Preflight;

    /// How this client reads what GraphQL could answer, as far as it knows yet.
    fn read_path(&self) -> ReadPath {
        ReadPath::Rest
    }

    /// Hands the client the bot's metrics: it counts its requests there and reports
    /// whether GitHub accepts its credentials. (Nothing to count by default.)
    fn observe(&self, _metrics: std::sync::Arc<crate::metrics::Metrics>) {}

    /// Proves the credentials work, at no rate-limit cost where GitHub allows it.
    async fn check_credentials(&self) -> Result<(), GitHubError>;
}

/// How many recent deployments of an environment are inspected to find what is live.
pub const LIVE_SCAN: u8 = 10;

/// A deployment with its latest status (`None`: no status yet, or it could not be read).
#[derive(Debug, Clone)]
pub struct Entry {
    pub deployment: Deployment,
    pub status: Option<DeploymentStatus>,
}

/// What the deploy flow's pre-flight asks about.
#[derive(Debug, Clone)]
pub struct PreflightQuery<'a> {
    pub environment: &'a str,
    /// The ref to deploy (a branch, a tag or a sha).
    pub git_ref: &'a str,
    /// Also read the checks on the ref (to name what a forced deploy bypasses).
    pub checks: bool,
}

/// The pre-flight's answers, each on its own: a failure only loses that piece.
#[derive(Debug, Clone)]
pub struct Preflight {
    /// The repository, when the answer carried it for free (GraphQL).
    pub repository: Option<Repository>,
    pub live: Result<Option<Entry>, GitHubError>,
    /// `None` when nothing is live (nothing to compare with).
    pub comparison: Option<Result<Comparison, GitHubError>>,
    /// `None` unless asked for.
    pub checks: Option<Result<Vec<ContextState>, GitHubError>>,
}

impl Preflight {
    /// Every piece failed the same way (e.g. no answer in time).
    pub fn failed(error: GitHubError, checks: bool) -> Preflight {
        Preflight {
            repository: None,
            live: Err(error.clone()),
            comparison: None,
            checks: checks.then_some(Err(error)),
        }
    }
}

/// How the client reads deployments, statuses and comparisons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadPath {
    /// REST only (this client knows nothing else).
    Rest,
    /// GraphQL where it answers in one request; REST for the rest.
    GraphQl,
    /// GraphQL was tried and is not available: REST for everything, which costs more
    /// requests. The reason is GitHub's (or the proxy's) answer.
    RestFallback { reason: String },
}

/// How `head` relates to `base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// `ahead`, `behind`, `diverged` or `identical`.
    pub status: String,
    pub ahead_by: u32,
    pub behind_by: u32,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// The answer to a conditional request.
#[derive(Debug, Clone, PartialEq)]
pub enum Conditional<T> {
    NotModified,
    Modified { value: T, etag: Option<String> },
}

/// The repository fields the bot uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repository {
    pub full_name: String,
    pub default_branch: String,
    pub html_url: String,
}

/// A GitHub user, as the creator of a deployment or status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub login: String,
    pub id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployment {
    pub id: DeploymentId,
    pub url: String,
    pub sha: Sha,
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// GitHub's default; 2014-era payloads carried the task inside `payload`.
    #[serde(default = "default_task")]
    pub task: String,
    /// An object, or (from older clients) a string that may hold JSON.
    #[serde(default)]
    pub payload: serde_json::Value,
    pub environment: String,
    #[serde(default)]
    pub original_environment: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub creator: Option<User>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub statuses_url: String,
    /// Absent from 2014-era webhook payloads.
    #[serde(default)]
    pub repository_url: String,
    #[serde(default)]
    pub transient_environment: Option<bool>,
    #[serde(default)]
    pub production_environment: Option<bool>,
}

fn default_task() -> String {
    "deploy".to_string()
}

impl Deployment {
    /// The routing data deploybot put in the payload, if this deployment is one of its own.
    pub fn deploybot(&self) -> Option<DeploybotPayload> {
        let object = match &self.payload {
            serde_json::Value::String(s) => serde_json::from_str::<serde_json::Value>(s).ok()?,
            other => other.clone(),
        };
        serde_json::from_value(object.get("deploybot")?.clone()).ok()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeploymentStatus {
    pub id: u64,
    pub state: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub target_url: Option<String>,
    #[serde(default)]
    pub log_url: Option<String>,
    #[serde(default)]
    pub environment_url: Option<String>,
    #[serde(default)]
    pub creator: Option<User>,
    /// Absent from 2014-era webhook payloads.
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

impl DeploymentStatus {
    pub fn state(&self) -> Option<DeploymentState> {
        DeploymentState::from_github(&self.state)
    }

    /// The log link: `log_url`, else the legacy `target_url`. Empty strings (which
    /// GitHub returns for "not set") count as absent.
    pub fn log_link(&self) -> Option<&str> {
        non_empty(&self.log_url).or_else(|| non_empty(&self.target_url))
    }

    pub fn environment_link(&self) -> Option<&str> {
        non_empty(&self.environment_url)
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.trim().is_empty())
}

/// `payload.deploybot`: everything a restarted bot, or another instance, needs to find
/// the chat message that tracks a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploybotPayload {
    pub request_id: String,
    pub chat: PayloadChat,
    pub user: PayloadUser,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// The configured app (not in the original design's list; an addition deployers
    /// may ignore).
    #[serde(default)]
    pub app: Option<String>,
    /// Set on a rollback: the deployment it replaced (so a later rollback skips it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
    /// Proof that deploybot wrote this payload (see [`crate::routing`]): without a
    /// valid one, the deployment is treated as made elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadChat {
    pub adapter: String,
    pub channel: String,
    #[serde(default)]
    pub thread: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadUser {
    pub id: String,
    pub name: String,
}

/// The body of `POST /deployments`. Every field the bot decides is sent explicitly,
/// except `required_contexts`, whose absence means "GitHub checks every context".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDeployment {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub task: String,
    pub environment: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub required_contexts: Option<Vec<String>>,
    pub auto_merge: bool,
    pub production_environment: bool,
    pub transient_environment: bool,
    pub description: String,
    pub payload: serde_json::Value,
}

/// Filters of `GET /deployments`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFilter {
    pub sha: Option<String>,
    pub git_ref: Option<String>,
    pub task: Option<String>,
    pub environment: Option<String>,
    pub per_page: Option<u8>,
}

/// A context GitHub verified when creating a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextState {
    pub context: String,
    pub state: String,
}

/// A ref's commit and the checks on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefChecks {
    pub sha: Sha,
    pub contexts: Vec<ContextState>,
}

/// What `POST /deployments` answered, when GitHub answered.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// 201.
    Created(Box<Deployment>),
    /// 202: the default branch was merged into the ref; **no deployment exists**.
    AutoMerged { message: String },
    /// 409 for `required_contexts`: every verified context with its state.
    ChecksFailed {
        message: String,
        contexts: Vec<ContextState>,
    },
    /// 409 for a merge conflict (auto_merge could not merge).
    MergeConflict { message: String },
    /// 422: validation failed (e.g. no such ref).
    Invalid {
        message: String,
        errors: Vec<ValidationItem>,
    },
}

/// GitHub's error body: `{message, errors[], documentation_url}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub errors: Vec<ValidationItem>,
    #[serde(default)]
    pub documentation_url: Option<String>,
}

/// One entry of `errors[]`. GitHub uses several shapes; keep what the bot reads and
/// tolerate the rest (a bare string entry becomes its `message`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ValidationItem {
    pub resource: Option<String>,
    pub field: Option<String>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub contexts: Vec<ContextState>,
}

impl<'de> Deserialize<'de> for ValidationItem {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Object {
            resource: Option<String>,
            field: Option<String>,
            code: Option<String>,
            message: Option<String>,
            #[serde(default)]
            contexts: Vec<ContextState>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Object(Object),
            Text(String),
        }
        Ok(match Either::deserialize(d)? {
            Either::Object(o) => ValidationItem {
                resource: o.resource,
                field: o.field,
                code: o.code,
                message: o.message,
                contexts: o.contexts,
            },
            Either::Text(t) => ValidationItem {
                message: Some(t),
                ..Default::default()
            },
        })
    }
}

impl ErrorBody {
    /// The contexts of a failed-checks 409. GitHub marks them with
    /// `field: "required_contexts"`; older bodies (and GitHub's own mock in
    /// hubot-deploy) only carry `contexts`, so either is enough.
    pub fn failed_contexts(&self) -> Option<Vec<ContextState>> {
        let items: Vec<&ValidationItem> = self
            .errors
            .iter()
            .filter(|e| e.field.as_deref() == Some("required_contexts") || !e.contexts.is_empty())
            .collect();
        if items.is_empty() {
            return None;
        }
        Some(items.iter().flat_map(|e| e.contexts.clone()).collect())
    }
}

/// Why a request to GitHub did not get an answer the bot can use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GitHubError {
    #[error("GitHub rejected the credentials (401: {message})")]
    Unauthorized { message: String },
    #[error("GitHub refused (403: {message})")]
    Forbidden {
        message: String,
        /// `x-accepted-github-permissions`, e.g. `deployments=write`.
        accepted_permissions: Option<String>,
        /// `x-accepted-oauth-scopes` and `x-oauth-scopes` of a classic token.
        accepted_scopes: Option<String>,
        token_scopes: Option<String>,
    },
    #[error("GitHub says not found (404: {message})")]
    NotFound { message: String },
    #[error("GitHub rate limit: {message}")]
    RateLimited {
        message: String,
        /// When to try again, from `retry-after` or `x-ratelimit-reset`.
        retry_at: Option<DateTime<Utc>>,
    },
    #[error("could not reach GitHub: {message}")]
    Transport {
        message: String,
        /// The request may have reached GitHub (a timeout or a broken connection after
        /// sending), so a POST may have taken effect.
        maybe_sent: bool,
    },
    #[error("GitHub answered {status}: {message}")]
    Unexpected { status: u16, message: String },
    /// A deployment may or may not have been created: the POST got no usable answer and
    /// the deployment was not found by its request id.
    #[error("unknown outcome: {message}")]
    Unknown { message: String },
    #[error("credentials: {message}")]
    Credentials { message: String },
}

impl GitHubError {
    /// What to tell a person: what went wrong and what to do about it.
    pub fn explain(&self, repo: &RepoName, now: DateTime<Utc>) -> String {
        match self {
            GitHubError::Unauthorized { message } => format!(
                "GitHub rejected deploybot's credentials ({message}). The token in bot.toml is wrong, expired or revoked: \
                 create a new one with the `repo_deployment` scope (or a GitHub App with Deployments: write) and restart the bot."
            ),
            GitHubError::Forbidden {
                message,
                accepted_permissions,
                accepted_scopes,
                token_scopes,
            } => {
                let mut s = format!(
                    "GitHub refused deploybot's token on {repo} ({message}). It needs the `repo_deployment` scope \
                     (classic token) or Deployments: write on {repo} (fine-grained token or GitHub App)"
                );
                if let Some(p) = accepted_permissions.as_deref().filter(|p| !p.is_empty()) {
                    s.push_str(&format!("; GitHub asks for `{p}`"));
                }
                if let Some(sc) = accepted_scopes.as_deref().filter(|p| !p.is_empty()) {
                    s.push_str(&format!("; accepted scopes: `{sc}`"));
                }
                if let Some(t) = token_scopes {
                    let t = if t.is_empty() { "none" } else { t.as_str() };
                    s.push_str(&format!("; the token has: `{t}`"));
                }
                s.push('.');
                s
            }
            GitHubError::NotFound { .. } => format!(
                "GitHub cannot find {repo}: check `repository` for this app in bot.toml, and that deploybot's token can see it \
                 (a private repository needs the `repo` scope, or the GitHub App installed on it)."
            ),
            GitHubError::RateLimited { message, retry_at } => match retry_at {
                Some(at) => {
                    let wait = (*at - now).num_seconds().max(0);
                    format!(
                        "GitHub's rate limit is used up ({message}). Try again at {} UTC (in {}).",
                        at.format("%H:%M:%S"),
                        human_duration(Duration::from_secs(wait as u64))
                    )
                }
                None => format!("GitHub's rate limit is used up ({message}). Try again in a minute."),
            },
            GitHubError::Transport { message, .. } => {
                format!("deploybot could not reach GitHub ({message}). Check the network and `[github] api_url`, then try again.")
            }
            GitHubError::Unexpected { status, message } => {
                format!("GitHub answered {status} ({message}). Try again; if it persists, check https://www.githubstatus.com.")
            }
            GitHubError::Credentials { message } => {
                format!("deploybot could not get GitHub credentials: {message}")
            }
            GitHubError::Unknown { message } => format!(
                "deploybot cannot tell whether GitHub created the deployment ({message}). \
                 Check the recent deployments before trying again: deploying blindly could deploy twice."
            ),
        }
    }
}

/// "42s", "3m 5s", "2h 10m", "3d 4h": short, for chat.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => {
            let (m, r) = (s / 60, s % 60);
            if r == 0 {
                format!("{m}m")
            } else {
                format!("{m}m {r}s")
            }
        }
        3600..=86399 => {
            let (h, m) = (s / 3600, (s % 3600) / 60);
            if m == 0 {
                format!("{h}h")
            } else {
                format!("{h}h {m}m")
            }
        }
        _ => {
            let (d, h) = (s / 86400, (s % 86400) / 3600);
            if h == 0 {
                format!("{d}d")
            } else {
                format!("{d}d {h}h")
            }
        }
    }
}

/// The answer to "did the deployment get created?" when the POST's fate is unknown.
#[derive(Debug, Clone)]
pub enum CreateResult {
    Answered(CreateOutcome),
    /// The POST timed out or broke after sending, and the bot then found its own
    /// deployment by `request_id`.
    Recovered(Box<Deployment>),
}

/// How long to keep looking for a deployment whose POST got no usable answer: GitHub
/// may still be writing it, or serving the list from a replica that lags.
const LOOKUPS: [std::time::Duration; 3] = [
    std::time::Duration::ZERO,
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
];

/// Creates a deployment without ever blindly retrying the POST: if the request may
/// have reached GitHub but no usable answer came back (a timeout, a broken connection,
/// a 5xx), the bot looks — a few times, with backoff — for a deployment of that ref
/// and environment whose payload carries this `request_id`. When none shows up, the
/// outcome is *unknown*, never "safe to retry".
pub async fn create_deployment_once(
    github: &dyn GitHub,
    repo: &RepoName,
    new: &NewDeployment,
    request_id: &str,
) -> Result<CreateResult, GitHubError> {
    let message = match github.create_deployment(repo, new).await {
        Ok(outcome) => return Ok(CreateResult::Answered(outcome)),
        Err(GitHubError::Transport {
            maybe_sent: true,
            message,
        }) => message,
        Err(e) => return Err(e),
    };
    match find_deployment(
        github,
        repo,
        &new.git_ref,
        &new.environment,
        &new.task,
        request_id,
    )
    .await
    {
        Ok(Some(d)) => Ok(CreateResult::Recovered(Box::new(d))),
        Ok(None) => Err(GitHubError::Unknown {
            message: format!("{message}; it has not appeared in GitHub's list (yet)"),
        }),
        Err(e) => Err(GitHubError::Unknown {
            message: format!("{message}; looking for it failed too ({e})"),
        }),
    }
}

/// Looks — a few times, with backoff — for the deployment of `git_ref` to `environment`
/// whose payload carries `request_id`. `Ok(None)`: every lookup answered and none found
/// it; `Err`: some lookup failed (the last error) and none found it.
pub async fn find_deployment(
    github: &dyn GitHub,
    repo: &RepoName,
    git_ref: &str,
    environment: &str,
    task: &str,
    request_id: &str,
) -> Result<Option<Deployment>, GitHubError> {
    let filter = DeploymentFilter {
        git_ref: Some(git_ref.to_string()),
        environment: Some(environment.to_string()),
        task: Some(task.to_string()),
        per_page: Some(30),
        ..Default::default()
    };
    let mut last_error = None;
    for wait in LOOKUPS {
        tokio::time::sleep(wait).await;
        match github.deployments(repo, &filter).await {
            Ok(found) => {
                if let Some(d) = found
                    .into_iter()
                    .find(|d| d.deploybot().is_some_and(|p| p.request_id == request_id))
                {
                    return Ok(Some(d));
                }
            }
            Err(e) => last_error = Some(e),
        }
    }
    match last_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests;
