//! [`GitHub`] over REST with reqwest (rustls). The base URL comes from the config, so
//! GitHub Enterprise Server (`https://HOST/api/v3`) works the same as GitHub.com.
//!
//! Rate limits are honoured globally: once GitHub says "not before T" (403/429 with
//! `retry-after` or `x-ratelimit-remaining: 0`), every request until T fails fast
//! without reaching GitHub, so a busy channel cannot dig the hole deeper.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use super::graphql::{self as gql, Answer as GqlAnswer, Connection, Data};
use super::token::TokenSource;
use super::{
    rest, Comparison, Conditional, ContextState, CreateOutcome, Deployment, DeploymentFilter,
    DeploymentStatus, Entry, ErrorBody, GitHub, GitHubError, NewDeployment, Preflight,
    PreflightQuery, ReadPath, RefChecks, Repository, LIVE_SCAN,
};
use crate::metrics::{Metrics, Status};
use crate::model::{DeploymentId, DeploymentState, RepoName, Sha};

pub const USER_AGENT: &str = concat!("deploybot/", env!("CARGO_PKG_VERSION"));
pub const API_VERSION: &str = "2022-11-28";

pub struct HttpGitHub {
    http: reqwest::Client,
    base: String,
    /// `{api}/graphql` on GitHub.com, `https://HOST/api/graphql` on Enterprise Server.
    graphql_url: String,
    tokens: Arc<dyn TokenSource>,
    blocked_until: Mutex<Option<(DateTime<Utc>, String)>>,
    metrics: OnceLock<Arc<Metrics>>,
    graphql: Mutex<GraphQlUse>,
    /// Per (repository, environment): the commits last seen live or deployed there,
    /// newest first, which the next pre-flight compares the ref with (see
    /// [`gql::preflight_query`]).
    recently_live: Mutex<std::collections::HashMap<(String, String), Vec<String>>>,
}

/// How many recently live commits a pre-flight compares with.
const GUESSES: usize = 3;

/// What this client learnt about GraphQL: once refused, it is not asked again (for
/// that repository, or at all), and the refusal is logged once.
#[derive(Debug, Default)]
struct GraphQlUse {
    /// GraphQL is not there for these credentials at all, and why.
    off: Option<String>,
    /// Repositories (lowercase `owner/name`) GraphQL will not show, and why.
    refused: std::collections::BTreeMap<String, String>,
}

/// The GraphQL endpoint beside a REST base URL.
pub fn graphql_url(base: &str) -> String {
    match base.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{base}/graphql"),
    }
}

/// A raw answer: status, headers, body bytes.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: bytes::Bytes,
}

impl HttpGitHub {
    /// The check runs on a commit by name, as `required_contexts` sees them:
    /// completed with success, neutral or skipped is `success`, completed otherwise is
    /// `failure`, anything else `pending`.
    async fn check_runs(
        &self,
        repo: &RepoName,
        git_ref: &str,
    ) -> Result<Vec<ContextState>, GitHubError> {
        #[derive(serde::Deserialize)]
        struct Runs {
            #[serde(default)]
            check_runs: Vec<Run>,
        }
        #[derive(serde::Deserialize)]
        struct Run {
            name: String,
            status: String,
            conclusion: Option<String>,
        }
        let path = format!(
            "{}/commits/{}/check-runs",
            Self::repo_path(repo),
            segment(git_ref)
        );
        let runs: Runs = self.get_json(&path, &[("per_page", "100".into())]).await?;
        Ok(runs
            .check_runs
            .into_iter()
            .map(|run| {
                let state = match (run.status.as_str(), run.conclusion.as_deref()) {
                    ("completed", Some("success" | "neutral" | "skipped")) => "success",
                    ("completed", _) => "failure",
                    _ => "pending",
                };
                ContextState {
                    context: run.name,
                    state: state.to_string(),
                }
            })
            .collect())
    }

    pub fn new(api_url: &str, tokens: Arc<dyn TokenSource>) -> Result<Self, GitHubError> {
        Self::with_timeout(api_url, tokens, Duration::from_secs(20))
    }

    /// `timeout` bounds each whole request; chat users are waiting.
    pub fn with_timeout(
        api_url: &str,
        tokens: Arc<dyn TokenSource>,
        timeout: Duration,
    ) -> Result<Self, GitHubError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| GitHubError::Transport {
                message: format!("cannot build the HTTP client: {e}"),
                maybe_sent: false,
            })?;
        let base = api_url.trim_end_matches('/').to_string();
        Ok(HttpGitHub {
            http,
            graphql_url: graphql_url(&base),
            base,
            tokens,
            blocked_until: Mutex::new(None),
            metrics: OnceLock::new(),
            graphql: Mutex::new(GraphQlUse::default()),
            recently_live: Mutex::new(Default::default()),
        })
    }

    fn repo_path(repo: &RepoName) -> String {
        format!("/repos/{}/{}", repo.owner, repo.name)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, GitHubError> {
        self.send_with(method, path, query, body, None).await
    }

    async fn send_with(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        if_none_match: Option<&str>,
    ) -> Result<Answer, GitHubError> {
        let url = format!("{}{}", self.base, path);
        self.send_to(method, &url, &endpoint(path), query, body, if_none_match)
            .await
    }

    /// One request to `url`, counted in the metrics as `endpoint`.
    async fn send_to(
        &self,
        method: Method,
        url: &str,
        endpoint: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        if_none_match: Option<&str>,
    ) -> Result<Answer, GitHubError> {
        if let Some((until, message)) = self.blocked_until.lock().expect("lock").clone() {
            if until > Utc::now() {
                return Err(GitHubError::RateLimited {
                    message,
                    retry_at: Some(until),
                });
            }
        }
        let token = match self.tokens.token().await {
            Ok(token) => token,
            Err(e) => {
                if let (
                    Some(m),
                    GitHubError::Unauthorized { .. } | GitHubError::Credentials { .. },
                ) = (self.metrics.get(), &e)
                {
                    m.health.set_github(Status::not_ready(e.to_string()));
                }
                return Err(e);
            }
        };
        let method_name = method.to_string();
        let mut request = self
            .http
            .request(method, url)
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .bearer_auth(token.expose_secret());
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(etag) = if_none_match {
            request = request.header("if-none-match", etag);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                if let Some(m) = self.metrics.get() {
                    m.github_request(&method_name, endpoint, None);
                }
                return Err(transport_error(e));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(m) = self.metrics.get() {
            self.observe_answer(m, &method_name, endpoint, status, &headers);
        }
        let body = response.bytes().await.map_err(transport_error)?;
        let answer = Answer {
            status,
            headers,
            body,
        };
        if let Some(err) = rate_limit(&answer, Utc::now()) {
            if let GitHubError::RateLimited {
                retry_at: Some(at),
                message,
            } = &err
            {
                *self.blocked_until.lock().expect("lock") = Some((*at, message.clone()));
            }
            return Err(err);
        }
        Ok(answer)
    }

    /// Counts the answer, keeps the rate-limit gauge, and tells readiness whether the
    /// credentials are accepted: a 401 says they are not, any other answer from GitHub
    /// proves they are.
    fn observe_answer(
        &self,
        metrics: &Metrics,
        method: &str,
        endpoint: &str,
        status: StatusCode,
        headers: &HeaderMap,
    ) {
        metrics.github_request(method, endpoint, Some(status.as_u16()));
        // The gauge follows REST's budget; GraphQL's points are a bucket of their own.
        let graphql_budget = header(headers, "x-ratelimit-resource") == Some("graphql");
        if let Some(remaining) = header(headers, "x-ratelimit-remaining")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|_| !graphql_budget)
        {
            metrics.github_rate_limit_remaining(remaining);
        }
        if status == StatusCode::UNAUTHORIZED {
            metrics.health.set_github(Status::not_ready(
                "GitHub answers 401: the token or GitHub App credentials in [github] are refused",
            ));
        } else if status.is_success() || status == StatusCode::NOT_MODIFIED {
            metrics.health.set_github(Status::ready());
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, GitHubError> {
        let answer = self.send(Method::GET, path, query, None).await?;
        if !answer.status.is_success() {
            return Err(error_for(&answer));
        }
        decode(&answer)
    }

    fn remember_live(&self, repo: &RepoName, environment: &str, sha: &str) {
        let mut seen = self.recently_live.lock().expect("lock");
        let list = seen
            .entry((repo_key(repo), environment.to_string()))
            .or_default();
        list.retain(|s| s != sha);
        list.insert(0, sha.to_string());
        list.truncate(GUESSES);
    }

    fn recently_live(&self, repo: &RepoName, environment: &str) -> Vec<String> {
        self.recently_live
            .lock()
            .expect("lock")
            .get(&(repo_key(repo), environment.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Why GraphQL is not used for `repo`, if it is not.
    fn graphql_unusable(&self, repo: &RepoName) -> Option<&'static str> {
        let state = self.graphql.lock().expect("lock");
        if state.off.is_some() {
            Some("unavailable")
        } else if state.refused.contains_key(&repo_key(repo)) {
            Some("refused")
        } else {
            None
        }
    }

    fn count_fallback(&self, why: &'static str) {
        if let Some(m) = self.metrics.get() {
            m.github_rest_fallback(why);
        }
    }

    /// GraphQL is not there (a proxy, an old GitHub Enterprise Server, a query it does
    /// not understand): REST from now on. Logged once.
    fn graphql_off(&self, reason: String) {
        let mut state = self.graphql.lock().expect("lock");
        if state.off.is_none() {
            tracing::warn!(
                endpoint = %self.graphql_url,
                reason = %reason,
                "GitHub's GraphQL API is not available to deploybot; reading deployments over REST \
                 instead, which costs more requests per command (`deploybot doctor` explains)"
            );
            state.off = Some(reason);
        }
        drop(state);
        self.count_fallback("unavailable");
    }

    /// GraphQL will not show `repo` to these credentials (REST may): REST for it from
    /// now on. Logged once per repository.
    fn graphql_refused(&self, repo: &RepoName, reason: String) {
        let mut state = self.graphql.lock().expect("lock");
        if let std::collections::btree_map::Entry::Vacant(entry) =
            state.refused.entry(repo_key(repo))
        {
            tracing::warn!(
                repository = %repo,
                reason = %reason,
                "GitHub's GraphQL API refuses deploybot's credentials for this repository (a classic \
                 token needs the `repo` scope for it); reading its deployments over REST instead, \
                 which costs more requests per command (`deploybot doctor` explains)"
            );
            entry.insert(reason);
        }
        drop(state);
        self.count_fallback("refused");
    }

    /// Asks GraphQL about one repository. `Ok(None)`: GraphQL cannot answer (refused,
    /// unavailable, or a server error this time) and the caller reads over REST;
    /// `Err`: what would stop REST too (credentials, rate limit, the network).
    async fn graphql_repository<T: DeserializeOwned>(
        &self,
        repo: &RepoName,
        request: &serde_json::Value,
    ) -> Result<Option<T>, GitHubError> {
        if let Some(why) = self.graphql_unusable(repo) {
            self.count_fallback(why);
            return Ok(None);
        }
        let answer = self
            .send_to(
                Method::POST,
                &self.graphql_url,
                "/graphql",
                &[],
                Some(request),
                None,
            )
            .await?;
        match answer.status.as_u16() {
            200 => {}
            401 => return Err(error_for(&answer)),
            status @ 500..=599 => {
                // Maybe a bad moment: REST this time, GraphQL again next time.
                tracing::debug!(
                    status,
                    "GitHub's GraphQL API failed; reading over REST this time"
                );
                self.count_fallback("unavailable");
                return Ok(None);
            }
            status => {
                let message = error_body(&answer).message;
                self.graphql_off(format!("{} answers {status} ({message})", self.graphql_url));
                return Ok(None);
            }
        }
        let parsed: GqlAnswer<Data<T>> = match serde_json::from_slice(&answer.body) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.graphql_off(format!("unreadable answer from {}: {e}", self.graphql_url));
                return Ok(None);
            }
        };
        if let Some(refusal) = parsed.errors.iter().find(|e| e.is_refusal()) {
            self.graphql_refused(repo, refusal.message.clone());
            return Ok(None);
        }
        if let Some(error) = parsed.errors.first() {
            self.graphql_off(format!(
                "GitHub did not accept deploybot's query: {}",
                error.message
            ));
            return Ok(None);
        }
        match parsed.data.and_then(|d| d.repository) {
            Some(found) => Ok(Some(found)),
            None => {
                self.graphql_refused(repo, "the answer has no repository".into());
                Ok(None)
            }
        }
    }
}

/// The nodes of a deployments connection as REST's types, newest first.
fn entries(connection: Connection, api: &str, repo: &RepoName) -> Vec<Entry> {
    connection
        .nodes
        .into_iter()
        .filter_map(|n| n.into_rest(api, repo))
        .map(|(deployment, status)| Entry { deployment, status })
        .collect()
}

fn repo_key(repo: &RepoName) -> String {
    format!("{}/{}", repo.owner, repo.name).to_ascii_lowercase()
}

/// Does a deployment match the filters GraphQL cannot apply (GitHub's `GET
/// /deployments` matches them exactly)?
fn matches(filter: &DeploymentFilter, d: &Deployment) -> bool {
    filter.git_ref.as_ref().is_none_or(|r| d.git_ref == *r)
        && filter.task.as_ref().is_none_or(|t| d.task == *t)
        && filter.sha.as_ref().is_none_or(|s| d.sha.as_str() == s)
        && filter
            .environment
            .as_ref()
            .is_none_or(|e| d.environment == *e)
}

/// The endpoint template of a path, for metrics: owner, repository, ids and refs are
/// replaced by placeholders (`:owner`, `:id`; braces trip some Prometheus parsers), so the series stay few whatever the repositories and refs.
fn endpoint(path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["repos", _, _, rest @ ..] => {
            let mut out = String::from("/repos/:owner/:repo");
            let mut i = 0;
            while i < rest.len() {
                let part = rest[i];
                out.push('/');
                match part {
                    "commits" | "compare" | "git" => {
                        out.push_str(part);
                        // A ref may hold slashes: everything up to a known tail is the ref.
                        let tail = rest[i + 1..]
                            .iter()
                            .position(|p| matches!(*p, "status" | "statuses" | "check-runs"));
                        let placeholder = if part == "compare" {
                            ":basehead"
                        } else {
                            ":ref"
                        };
                        if i + 1 < rest.len() {
                            out.push('/');
                            out.push_str(placeholder);
                        }
                        match tail {
                            Some(t) => i += 1 + t,
                            None => break,
                        }
                        continue;
                    }
                    _ if part.bytes().all(|b| b.is_ascii_digit()) && !part.is_empty() => {
                        out.push_str(":id")
                    }
                    _ => out.push_str(part),
                }
                i += 1;
            }
            out
        }
        ["app", "installations", _, rest @ ..] => {
            let mut out = String::from("/app/installations/:id");
            for part in rest {
                out.push('/');
                out.push_str(part);
            }
            out
        }
        _ => {
            // Other paths (`/rate_limit`, `/user`, `/app`) carry no names.
            let mut out = String::new();
            for part in parts.iter().take(4) {
                out.push('/');
                out.push_str(part);
            }
            out
        }
    }
}

/// A ref in a URL path: slashes stay (GitHub reads `feature/login` whole), anything
/// else outside the unreserved set is percent-encoded, so `fix#12` is not cut at `#`.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn transport_error(e: reqwest::Error) -> GitHubError {
    GitHubError::Transport {
        // A refused connection never reached GitHub; anything later (a timeout, a
        // reset while waiting for the answer) may have.
        maybe_sent: !(e.is_connect() || e.is_builder()),
        message: if e.is_timeout() {
            "timed out".to_string()
        } else {
            let mut s = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                source = inner.source();
            }
            s
        },
    }
}

fn decode<T: DeserializeOwned>(answer: &Answer) -> Result<T, GitHubError> {
    serde_json::from_slice(&answer.body).map_err(|e| GitHubError::Unexpected {
        status: answer.status.as_u16(),
        message: format!("unreadable response: {e}"),
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn error_body(answer: &Answer) -> ErrorBody {
    serde_json::from_slice(&answer.body).unwrap_or_else(|_| ErrorBody {
        message: String::from_utf8_lossy(&answer.body)
            .chars()
            .take(200)
            .collect(),
        ..Default::default()
    })
}

/// GitHub signals rate limiting with 403 or 429 and either `retry-after` (secondary
/// limits) or `x-ratelimit-remaining: 0` + `x-ratelimit-reset` (primary).
fn rate_limit(answer: &Answer, now: DateTime<Utc>) -> Option<GitHubError> {
    if !matches!(answer.status.as_u16(), 403 | 429) {
        return None;
    }
    let retry_after =
        header(&answer.headers, "retry-after").and_then(|v| v.trim().parse::<i64>().ok());
    let remaining_zero =
        header(&answer.headers, "x-ratelimit-remaining").map(str::trim) == Some("0");
    let body = error_body(answer);
    let says_so = body.message.to_ascii_lowercase().contains("rate limit");
    if retry_after.is_none() && !remaining_zero && !says_so && answer.status.as_u16() != 429 {
        return None;
    }
    let retry_at = if let Some(secs) = retry_after {
        // A huge header must not panic: saturate.
        Some(crate::clock::later(
            now,
            std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0)),
        ))
    } else if remaining_zero {
        header(&answer.headers, "x-ratelimit-reset")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|epoch| Utc.timestamp_opt(epoch, 0).single())
    } else {
        // GitHub: with neither header, wait at least a minute.
        Some(now + chrono::Duration::seconds(60))
    };
    let message = if body.message.is_empty() {
        "rate limited".to_string()
    } else {
        first_sentence(&body.message)
    };
    Some(GitHubError::RateLimited { message, retry_at })
}

fn first_sentence(s: &str) -> String {
    match s.find(". ") {
        Some(i) => s[..i].to_string(),
        None => s.trim_end_matches('.').to_string(),
    }
}

/// Maps a non-success answer that is not a documented outcome.
fn error_for(answer: &Answer) -> GitHubError {
    let body = error_body(answer);
    match answer.status.as_u16() {
        401 => GitHubError::Unauthorized {
            message: body.message,
        },
        403 => GitHubError::Forbidden {
            message: body.message,
            accepted_permissions: header(&answer.headers, "x-accepted-github-permissions")
                .map(str::to_string),
            accepted_scopes: header(&answer.headers, "x-accepted-oauth-scopes").map(str::to_string),
            token_scopes: header(&answer.headers, "x-oauth-scopes").map(str::to_string),
        },
        404 => GitHubError::NotFound {
            message: body.message,
        },
        status => GitHubError::Unexpected {
            status,
            message: if body.message.is_empty() {
                "no message".to_string()
            } else {
                body.message
            },
        },
    }
}

#[async_trait]
impl GitHub for HttpGitHub {
    async fn repository(&self, repo: &RepoName) -> Result<Repository, GitHubError> {
        self.get_json(&Self::repo_path(repo), &[]).await
    }

    async fn create_deployment(
        &self,
        repo: &RepoName,
        new: &NewDeployment,
    ) -> Result<CreateOutcome, GitHubError> {
        let body = serde_json::to_value(new).map_err(|e| GitHubError::Unexpected {
            status: 0,
            message: e.to_string(),
        })?;
        let path = format!("{}/deployments", Self::repo_path(repo));
        let answer = self.send(Method::POST, &path, &[], Some(&body)).await?;
        match answer.status.as_u16() {
            // A 201 we cannot read still created a deployment: find it by request id.
            201 => decode::<Deployment>(&answer)
                .map(|d| {
                    // Likely what is live there next: the next pre-flight compares with it.
                    self.remember_live(repo, &d.environment, d.sha.as_str());
                    CreateOutcome::Created(Box::new(d))
                })
                .map_err(|e| GitHubError::Transport {
                    message: format!("GitHub answered 201 but {e}"),
                    maybe_sent: true,
                }),
            202 => Ok(CreateOutcome::AutoMerged {
                message: error_body(&answer).message,
            }),
            409 => {
                let body = error_body(&answer);
                Ok(match body.failed_contexts() {
                    Some(contexts) => CreateOutcome::ChecksFailed {
                        message: body.message,
                        contexts,
                    },
                    None => CreateOutcome::MergeConflict {
                        message: body.message,
                    },
                })
            }
            422 => {
                let body = error_body(&answer);
                Ok(CreateOutcome::Invalid {
                    message: body.message,
                    errors: body.errors,
                })
            }
            // GitHub's 5xx often come after the deployment was written.
            status @ 500..=599 => Err(GitHubError::Transport {
                message: format!("GitHub answered {status} ({})", error_body(&answer).message),
                maybe_sent: true,
            }),
            _ => Err(error_for(&answer)),
        }
    }

    async fn deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Deployment>, GitHubError> {
        let mut query = Vec::new();
        for (key, value) in [
            ("sha", &filter.sha),
            ("ref", &filter.git_ref),
            ("task", &filter.task),
            ("environment", &filter.environment),
        ] {
            if let Some(v) = value {
                query.push((key, v.clone()));
            }
        }
        if let Some(n) = filter.per_page {
            query.push(("per_page", n.to_string()));
        }
        self.get_json(&format!("{}/deployments", Self::repo_path(repo)), &query)
            .await
    }

    async fn deployment_statuses(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        per_page: Option<u8>,
    ) -> Result<Vec<DeploymentStatus>, GitHubError> {
        let query: Vec<(&str, String)> = per_page
            .map(|n| vec![("per_page", n.to_string())])
            .unwrap_or_default();
        self.get_json(
            &format!("{}/deployments/{id}/statuses", Self::repo_path(repo)),
            &query,
        )
        .await
    }

    async fn compare(
        &self,
        repo: &RepoName,
        base: &str,
        head: &str,
    ) -> Result<Comparison, GitHubError> {
        self.get_json(
            &format!(
                "{}/compare/{}...{}",
                Self::repo_path(repo),
                segment(base),
                segment(head)
            ),
            &[("per_page", "1".into())],
        )
        .await
    }

    async fn commit_checks(
        &self,
        repo: &RepoName,
        git_ref: &str,
    ) -> Result<Vec<ContextState>, GitHubError> {
        #[derive(serde::Deserialize)]
        struct Combined {
            #[serde(default)]
            statuses: Vec<ContextState>,
        }
        let base = format!("{}/commits/{}", Self::repo_path(repo), segment(git_ref));
        let combined: Combined = self
            .get_json(&format!("{base}/status"), &[("per_page", "100".into())])
            .await?;
        let mut out = combined.statuses;
        out.extend(self.check_runs(repo, git_ref).await?);
        Ok(out)
    }

    async fn ref_checks(&self, repo: &RepoName, git_ref: &str) -> Result<RefChecks, GitHubError> {
        // The combined status names the commit; the check runs are read for that
        // commit, so a push in between cannot mix two commits' checks.
        #[derive(serde::Deserialize)]
        struct Combined {
            sha: String,
            #[serde(default)]
            statuses: Vec<ContextState>,
        }
        let combined: Combined = self
            .get_json(
                &format!(
                    "{}/commits/{}/status",
                    Self::repo_path(repo),
                    segment(git_ref)
                ),
                &[("per_page", "100".into())],
            )
            .await?;
        let runs = self.check_runs(repo, &combined.sha).await?;
        let mut contexts = combined.statuses;
        contexts.extend(runs);
        Ok(RefChecks {
            sha: Sha::new(&combined.sha),
            contexts,
        })
    }

    async fn branches(&self, repo: &RepoName, per_page: u8) -> Result<Vec<String>, GitHubError> {
        #[derive(serde::Deserialize)]
        struct Branch {
            name: String,
        }
        let list: Vec<Branch> = self
            .get_json(
                &format!("{}/branches", Self::repo_path(repo)),
                &[("per_page", per_page.to_string())],
            )
            .await?;
        Ok(list.into_iter().map(|b| b.name).collect())
    }

    async fn latest_status_if_changed(
        &self,
        repo: &RepoName,
        id: DeploymentId,
        etag: Option<&str>,
    ) -> Result<Conditional<Option<DeploymentStatus>>, GitHubError> {
        let path = format!("{}/deployments/{id}/statuses", Self::repo_path(repo));
        let answer = self
            .send_with(Method::GET, &path, &[("per_page", "1".into())], None, etag)
            .await?;
        if answer.status == StatusCode::NOT_MODIFIED {
            return Ok(Conditional::NotModified);
        }
        if !answer.status.is_success() {
            return Err(error_for(&answer));
        }
        let mut list: Vec<DeploymentStatus> = decode(&answer)?;
        Ok(Conditional::Modified {
            value: if list.is_empty() {
                None
            } else {
                Some(list.remove(0))
            },
            etag: header(&answer.headers, "etag").map(str::to_string),
        })
    }

    async fn recent_deployments(
        &self,
        repo: &RepoName,
        filter: &DeploymentFilter,
    ) -> Result<Vec<Entry>, GitHubError> {
        // REST's default page is 30.
        let wanted = usize::from(filter.per_page.unwrap_or(30));
        // GraphQL filters by environment only: the rest is filtered here, from a page
        // as large as GitHub gives.
        let narrowed = filter.git_ref.is_some() || filter.task.is_some() || filter.sha.is_some();
        let first = if narrowed {
            gql::PAGE
        } else {
            wanted.min(usize::from(gql::PAGE)) as u8
        };
        let request = gql::recent_query(repo, filter.environment.as_deref(), first);
        let Some(found) = self
            .graphql_repository::<gql::RecentRepository>(repo, &request)
            .await?
        else {
            return rest::recent(self, repo, filter).await;
        };
        let more = found
            .deployments
            .page_info
            .as_ref()
            .is_some_and(|p| p.has_next_page);
        let entries: Vec<Entry> = entries(found.deployments, &self.base, repo)
            .into_iter()
            .filter(|e| matches(filter, &e.deployment))
            .take(wanted)
            .collect();
        if narrowed && entries.len() < wanted && more {
            // Older matches may exist beyond the page: REST filters exactly.
            return rest::recent(self, repo, filter).await;
        }
        Ok(entries)
    }

    async fn live(
        &self,
        repo: &RepoName,
        environments: &[&str],
    ) -> Vec<Result<Option<Entry>, GitHubError>> {
        if environments.is_empty() {
            return vec![];
        }
        let request = gql::live_query(repo, environments, LIVE_SCAN);
        let mut found = match self
            .graphql_repository::<std::collections::HashMap<String, Connection>>(repo, &request)
            .await
        {
            Ok(Some(found)) => found,
            Ok(None) => return rest::live(self, repo, environments).await,
            Err(e) => return environments.iter().map(|_| Err(e.clone())).collect(),
        };
        (0..environments.len())
            .map(|i| {
                let connection =
                    found
                        .remove(&format!("e{i}"))
                        .ok_or_else(|| GitHubError::Unexpected {
                            status: 200,
                            message: "GraphQL's answer lacks an environment".into(),
                        })?;
                let live = entries(connection, &self.base, repo).into_iter().find(|e| {
                    e.status.as_ref().and_then(|s| s.state()) == Some(DeploymentState::Success)
                });
                if let Some(live) = &live {
                    self.remember_live(repo, environments[i], live.deployment.sha.as_str());
                }
                Ok(live)
            })
            .collect()
    }

    async fn preflight(&self, repo: &RepoName, query: &PreflightQuery<'_>) -> Preflight {
        let guesses = self.recently_live(repo, query.environment);
        let request = gql::preflight_query(
            repo,
            query.environment,
            query.git_ref,
            query.checks,
            LIVE_SCAN,
            &guesses,
        );
        let mut found = match self
            .graphql_repository::<gql::PreflightRepository>(repo, &request)
            .await
        {
            Ok(Some(found)) => found,
            Ok(None) => return rest::preflight(self, repo, query).await,
            Err(e) => return Preflight::failed(e, query.checks),
        };
        let repository = found.repository();
        let checks = query.checks.then(|| {
            found
                .target
                .as_ref()
                .map(gql::Target::checks)
                .ok_or_else(|| GitHubError::NotFound {
                    message: format!("No commit found for {}", query.git_ref),
                })
        });
        let live = std::mem::take(&mut found.deployments.nodes)
            .into_iter()
            .find(|n| {
                n.latest_status
                    .as_ref()
                    .is_some_and(|s| s.state.eq_ignore_ascii_case("success"))
            });
        let (live, comparison) = match live {
            None => (Ok(None), None),
            Some(node) => {
                let comparison = node.comparison(&found.url, query.git_ref).or_else(|| {
                    let i = guesses.iter().position(|g| *g == node.commit_oid)?;
                    found.guessed(i, &node.commit_oid, query.git_ref)
                });
                self.remember_live(repo, query.environment, &node.commit_oid);
                match node.into_rest(&self.base, repo) {
                    None => (Ok(None), None),
                    Some((deployment, status)) => {
                        let comparison = match comparison {
                            Some(c) => Ok(c),
                            // The deployed ref has moved on (or it was a sha): ask
                            // about the deployed commit itself.
                            None => {
                                self.compare(repo, deployment.sha.as_str(), query.git_ref)
                                    .await
                            }
                        };
                        (Ok(Some(Entry { deployment, status })), Some(comparison))
                    }
                }
            }
        };
        Preflight {
            repository,
            live,
            comparison,
            checks,
        }
    }

    fn read_path(&self) -> ReadPath {
        let state = self.graphql.lock().expect("lock");
        if let Some(reason) = &state.off {
            return ReadPath::RestFallback {
                reason: reason.clone(),
            };
        }
        match state.refused.iter().next() {
            Some((repo, reason)) => ReadPath::RestFallback {
                reason: format!("{repo}: {reason}"),
            },
            None => ReadPath::GraphQl,
        }
    }

    fn observe(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    async fn check_credentials(&self) -> Result<(), GitHubError> {
        // `GET /rate_limit` does not count against the rate limit, and answers 401 to
        // credentials GitHub refuses.
        let answer = self.send(Method::GET, "/rate_limit", &[], None).await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(error_for(&answer))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_templates_without_names() {
        for (path, expected) in [
            ("/repos/acme/api", "/repos/:owner/:repo"),
            (
                "/repos/acme/api/deployments",
                "/repos/:owner/:repo/deployments",
            ),
            (
                "/repos/acme/api/deployments/4711/statuses",
                "/repos/:owner/:repo/deployments/:id/statuses",
            ),
            (
                "/repos/acme/api/commits/feature/login/check-runs",
                "/repos/:owner/:repo/commits/:ref/check-runs",
            ),
            (
                "/repos/acme/api/commits/main/status",
                "/repos/:owner/:repo/commits/:ref/status",
            ),
            (
                "/repos/acme/api/compare/abc...feature/x",
                "/repos/:owner/:repo/compare/:basehead",
            ),
            (
                "/app/installations/42/access_tokens",
                "/app/installations/:id/access_tokens",
            ),
            ("/rate_limit", "/rate_limit"),
        ] {
            assert_eq!(endpoint(path), expected, "{path}");
        }
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: map,
            body: bytes::Bytes::from(body.to_string()),
        }
    }

    fn fixture(path: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/fixtures/github/rest/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn primary_rate_limit_waits_for_reset() {
        let exchange: serde_json::Value = serde_json::from_str(&fixture(
            "errors/rate-limit-primary.403.exchange.github-docs.json",
        ))
        .unwrap();
        let headers: Vec<(String, String)> = exchange["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
            .collect();
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let a = answer(403, &headers, &exchange["body"].to_string());
        match rate_limit(&a, Utc::now()) {
            Some(GitHubError::RateLimited { retry_at, message }) => {
                assert_eq!(retry_at.unwrap().timestamp(), 1377013266);
                assert!(message.starts_with("API rate limit exceeded"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn secondary_rate_limit_honours_retry_after() {
        let now = Utc::now();
        let a = answer(
            403,
            &[("retry-after", "30")],
            &fixture("errors/rate-limit-secondary.403.github-docs.json"),
        );
        match rate_limit(&a, now) {
            Some(GitHubError::RateLimited { retry_at, .. }) => {
                assert_eq!(retry_at.unwrap(), now + chrono::Duration::seconds(30))
            }
            other => panic!("{other:?}"),
        }
        // Without any header GitHub says: wait at least a minute.
        let a = answer(429, &[], "{}");
        match rate_limit(&a, now) {
            Some(GitHubError::RateLimited { retry_at, .. }) => {
                assert_eq!(retry_at.unwrap(), now + chrono::Duration::seconds(60))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plain_403_is_a_permission_problem_not_a_rate_limit() {
        let a = answer(
            403,
            &[("x-accepted-github-permissions", "deployments=write")],
            r#"{"message":"Resource not accessible by personal access token"}"#,
        );
        assert!(rate_limit(&a, Utc::now()).is_none());
        match error_for(&a) {
            GitHubError::Forbidden {
                accepted_permissions,
                ..
            } => assert_eq!(accepted_permissions.as_deref(), Some("deployments=write")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn graphql_lives_beside_the_rest_base() {
        assert_eq!(
            graphql_url("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            graphql_url("https://ghe.example.com/api/v3"),
            "https://ghe.example.com/api/graphql"
        );
        assert_eq!(
            graphql_url("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/graphql"
        );
    }

    #[test]
    fn refs_in_paths_keep_slashes_and_escape_the_rest() {
        assert_eq!(segment("feature/login"), "feature/login");
        assert_eq!(segment("fix#12"), "fix%2312");
        assert_eq!(segment("100%"), "100%25");
        assert_eq!(segment("ünï"), "%C3%BCn%C3%AF");
    }

    #[test]
    fn bad_credentials_fixture_is_unauthorized() {
        let a = answer(
            401,
            &[],
            &fixture("errors/bad-credentials.401.hubot-deploy.json"),
        );
        match error_for(&a) {
            GitHubError::Unauthorized { message } => assert_eq!(message, "Bad credentials"),
            other => panic!("{other:?}"),
        }
    }
}
