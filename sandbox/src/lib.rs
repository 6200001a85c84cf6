//! A GitHub-compatible HTTP server on loopback, for `deploybot demo` and for tests.
//!
//! It has GitHub's *semantics*, not canned answers: a real commit graph (so auto-merge,
//! compare and "behind the default branch" mean what they mean on GitHub), commit
//! statuses and check runs that `required_contexts` is checked against, deployments and
//! deployment statuses with `auto_inactive`, signed webhook deliveries, a per-token rate
//! budget, ETags with free 304s, a simulated deployer and fault injection.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let gh = sandbox::Sandbox::start().await?;
//! gh.create_repo("acme/api", "main");
//! gh.set_deployer(sandbox::Deployer::auto(std::time::Duration::from_millis(50)));
//! // point the bot at gh.url() (its api_url) with gh.token()
//! # Ok(()) }
//! ```
//!
//! REST endpoints (JSON shaped like `fixtures/github/`; `Authorization: token X`
//! or `Bearer X`; every response has `x-ratelimit-*` and `x-github-request-id`; every
//! 200 GET has a strong `ETag`, and a matching `If-None-Match` gets a free 304):
//!
//! | endpoint | notes |
//! | --- | --- |
//! | `GET /repos/{o}/{r}` | `permissions` follow the token ([`TokenSpec`]) |
//! | `GET /repos/{o}/{r}/hooks` | admins only; [`Sandbox::add_repo_hook`]'s and [`Sandbox::add_webhook`]'s hooks, secrets as `********` |
//! | `GET /repos/{o}/{r}/branches[/{branch}]` | `per_page`/`page`, `Link` |
//! | `GET /repos/{o}/{r}/commits/{ref}` | `/status` (combined), `/statuses`, `/check-runs` |
//! | `POST /repos/{o}/{r}/statuses/{sha}` | commit status |
//! | `GET/POST /repos/{o}/{r}/deployments` | filters `sha` `ref` `task` `environment`; 201 / 202 auto-merged / 409 / 422 |
//! | `GET /repos/{o}/{r}/deployments/{id}` | |
//! | `GET/POST /repos/{o}/{r}/deployments/{id}/statuses[/{status_id}]` | `auto_inactive`; no webhook for `inactive` |
//! | `GET /repos/{o}/{r}/compare/{base}...{head}` | ahead / behind / diverged / identical |
//! | `GET /rate_limit`, `GET /user` | `/rate_limit` is free |
//! | `POST /app/installations/{id}/access_tokens` | with a GitHub App's JWT (see [`Sandbox::add_app`]) |
//! | `GET /app`, `GET /app/installations/{id}`, `GET /app/hook/config` | with the JWT; permissions, and [`Sandbox::set_app_hook`] |
//!
//! GraphQL (`POST /graphql`, see `graphql.rs`): GitHub's schema for what a deploy tool
//! reads — `repository(owner:, name:)` with `nameWithOwner`, `url`, `defaultBranchRef`,
//! `ref(qualifiedName:)` (a `Ref`: `name`, `prefix`, `target { oid }`,
//! `compare(headRef:) { aheadBy behindBy status }`), `object(expression:)` (a commit's
//! `statusCheckRollup { state contexts(first:) }` of `StatusContext` and `CheckRun`), and
//! `deployments(environments:, first:, after:, orderBy:)` with `nodes`, `totalCount`,
//! `pageInfo` (each `Deployment`: `databaseId`, `commitOid`, `ref`, `environment`,
//! `state`, `task`, `payload` as a JSON string, `creator { login }`, `createdAt`,
//! `latestStatus { state description logUrl environmentUrl createdAt }`). Answered from
//! the same state as REST, with the same tokens, in a `graphql` rate bucket; a classic
//! token without `repo` gets `NOT_FOUND` for the repository (every sandbox repository
//! is private), and [`Sandbox::set_graphql`] turns the endpoint into a 404.
//!
//! Tokens: [`Sandbox::add_token_with`] makes a classic token with OAuth scopes (named
//! in `X-OAuth-Scopes` on every response, and enforced as GitHub does on private
//! repositories — every sandbox repository is private — with a 404 and
//! `X-Accepted-OAuth-Scopes`) or a fine-grained one (no header), limited to some
//! repositories (others are 404) and with or without admin rights.
//!
//! GitHub Apps: [`Sandbox::add_app`] registers an App's public key and
//! [`Sandbox::add_installation`] installs it (on every repository). A JWT signed RS256
//! with the App's private key (`iss` = App id, `iat` no more than a minute ahead, `exp`
//! in the future and at most 10 minutes after `iat`) gets an installation token
//! (`ghs_…`, 201, shaped like GitHub's) that every endpoint accepts, with the
//! installation's [`Access`], until it expires ([`Sandbox::set_installation_token_ttl`],
//! 1 hour by default); then it is "Bad credentials". A bad JWT gets GitHub's 401
//! ("A JSON web token could not be decoded", or its message for the failing claim), an
//! installation of another App or none a 404. Requests to pick repositories or
//! permissions in the body are not modelled.
//!
//! Web pages (no auth): `/{o}/{r}` and `/{o}/{r}/deployments` (the deployments),
//! `/{o}/{r}/commit/{sha}`, `/{o}/{r}/compare/{spec}`, `/{o}/{r}/actions/runs/{n}` (a
//! simulated deployer run's log).

#![recursion_limit = "256"]

mod apps;
mod deployer;
mod graphql;
mod http;
mod json;
mod pages;
mod service;
mod state;
mod webhooks;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::watch;

use crate::state::{NewCommitStatus, State, StatusRequest, User};

pub use crate::webhooks::signature_256;

/// The token every sandbox accepts with full access.
pub const DEFAULT_TOKEN: &str = "sandbox-token";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    Full,
    /// Reads only: writes get 403 "Resource not accessible by personal access token".
    ReadOnly,
}

/// A personal access token as [`Sandbox::add_token_with`] registers it: what it may do,
/// its kind (classic, with OAuth scopes, or fine-grained) and which repositories it
/// reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub access: Access,
    /// A classic token's scopes, sent back in `X-OAuth-Scopes` on every response and
    /// enforced the way GitHub does on private repositories (a missing scope is a 404
    /// with `X-Accepted-OAuth-Scopes`): `repo` covers everything; `repo_deployment`
    /// the deployments and their statuses; `repo:status` commit statuses;
    /// `read:repo_hook` (or `write:`/`admin:repo_hook`) webhooks. `None` is a
    /// fine-grained token: no `X-OAuth-Scopes` header, no scope checks.
    pub scopes: Option<Vec<String>>,
    /// The repositories (`owner/name`) it can see; others are 404. `None` = every one.
    pub repositories: Option<Vec<String>>,
    /// Whether it acts as an admin of the repositories (`permissions.admin`; needed to
    /// list webhooks).
    pub admin: bool,
}

impl TokenSpec {
    /// A classic personal access token with these scopes, full access, not an admin.
    pub fn classic(scopes: &[&str]) -> TokenSpec {
        TokenSpec {
            access: Access::Full,
            scopes: Some(scopes.iter().map(|s| s.to_string()).collect()),
            repositories: None,
            admin: false,
        }
    }

    /// A fine-grained personal access token (no `X-OAuth-Scopes`).
    pub fn fine_grained(access: Access) -> TokenSpec {
        TokenSpec {
            access,
            scopes: None,
            repositories: None,
            admin: false,
        }
    }

    /// Only these repositories are visible to it.
    pub fn repositories(mut self, repos: &[&str]) -> TokenSpec {
        self.repositories = Some(repos.iter().map(|r| r.to_string()).collect());
        self
    }

    pub fn admin(mut self, admin: bool) -> TokenSpec {
        self.admin = admin;
        self
    }
}

/// A repository webhook as `GET /repos/{o}/{r}/hooks` lists it (see
/// [`Sandbox::add_repo_hook`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoHook {
    pub url: String,
    /// `X-GitHub-Event` names it subscribes to.
    pub events: Vec<String>,
    /// GitHub's API values: `json` (application/json) or `form`
    /// (application/x-www-form-urlencoded).
    pub content_type: String,
    /// Listed as `"********"` when set, absent when not.
    pub secret: Option<String>,
    pub active: bool,
    pub insecure_ssl: bool,
}

impl RepoHook {
    /// Active, JSON, `deployment` and `deployment_status`, no secret.
    pub fn new(url: &str) -> RepoHook {
        RepoHook {
            url: url.to_string(),
            events: vec!["deployment".into(), "deployment_status".into()],
            content_type: "json".into(),
            secret: None,
            active: true,
            insecure_ssl: false,
        }
    }

    pub fn secret(mut self, secret: &str) -> RepoHook {
        self.secret = Some(secret.to_string());
        self
    }

    pub fn content_type(mut self, content_type: &str) -> RepoHook {
        self.content_type = content_type.to_string();
        self
    }

    pub fn events(mut self, events: &[&str]) -> RepoHook {
        self.events = events.iter().map(|e| e.to_string()).collect();
        self
    }
}

/// A GitHub App's own webhook configuration (`GET /app/hook/config`, see
/// [`Sandbox::set_app_hook`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHook {
    pub url: String,
    pub content_type: String,
    pub secret: Option<String>,
    pub insecure_ssl: bool,
}

impl AppHook {
    /// JSON, TLS checked, no secret.
    pub fn new(url: &str) -> AppHook {
        AppHook {
            url: url.to_string(),
            content_type: "json".into(),
            secret: None,
            insecure_ssl: false,
        }
    }

    pub fn secret(mut self, secret: &str) -> AppHook {
        self.secret = Some(secret.to_string());
        self
    }

    pub fn content_type(mut self, content_type: &str) -> AppHook {
        self.content_type = content_type.to_string();
        self
    }
}

/// A credential the REST API accepts: a token added with [`Sandbox::add_token`], or an
/// installation token the sandbox issued.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub access: Access,
    /// `Some((app_id, installation_id))` for an installation token.
    pub installation: Option<(u64, u64)>,
    /// Installation tokens expire; personal tokens do not.
    pub expires_at: Option<DateTime<Utc>>,
    /// A classic token's scopes (`None`: fine-grained, or an installation token).
    pub scopes: Option<Vec<String>>,
    /// The repositories it can see (`None`: every one).
    pub repositories: Option<Vec<String>>,
    pub admin: bool,
}

impl Grant {
    fn personal(spec: TokenSpec) -> Grant {
        Grant {
            access: spec.access,
            installation: None,
            expires_at: None,
            scopes: spec.scopes,
            repositories: spec.repositories,
            admin: spec.admin,
        }
    }

    /// Whether a classic token's scopes include `needed` (`repo` includes every
    /// `repo…` scope; `admin:repo_hook` ⊃ `write:repo_hook` ⊃ `read:repo_hook`, and
    /// `repo` covers hooks too). Fine-grained and installation tokens have no scopes
    /// to check.
    pub fn has_scope(&self, needed: &str) -> bool {
        let Some(scopes) = &self.scopes else {
            return true;
        };
        scopes.iter().any(|s| {
            s == needed
                || (s == "repo" && (needed.starts_with("repo") || needed.ends_with(":repo_hook")))
                || (s == "admin:repo_hook" && needed.ends_with(":repo_hook"))
                || (s == "write:repo_hook" && needed == "read:repo_hook")
        })
    }

    /// Whether it reaches `repo` (`owner/name`, case-insensitive like GitHub).
    pub fn sees(&self, repo: &str) -> bool {
        self.repositories
            .as_ref()
            .is_none_or(|rs| rs.iter().any(|r| r.eq_ignore_ascii_case(repo)))
    }

    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

/// One HTTP request the sandbox received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, percent-encoded as sent.
    pub path: String,
    pub query: Option<String>,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; a body that is not JSON is kept as a JSON string.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// The first value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A deployment status as a deployer would post it (see [`Sandbox::create_deployment_status`]).
#[derive(Debug, Clone, Default)]
pub struct NewStatus {
    pub state: String,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
    pub description: Option<String>,
}

impl NewStatus {
    pub fn new(state: &str) -> NewStatus {
        NewStatus {
            state: state.to_string(),
            ..NewStatus::default()
        }
    }
}

/// A canned answer for matching requests, `times` times.
///
/// A request matches when `method` is `None` or equal (case-insensitive) and the path
/// (with `?query` when there is one) contains `path_contains`. Matching faults are
/// used in the order they were injected. The request is still recorded.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<String>,
    pub path_contains: String,
    pub times: usize,
    pub status: u16,
    /// Added to (and overriding) the usual headers.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `Value::Null` sends no body.
    pub body: Value,
    /// Sleep this long before answering.
    pub delay: Option<Duration>,
    /// Process the request normally (create the deployment, fire webhooks...), then
    /// sleep `delay`, then send the real answer; `status`, `headers` and `body` are unused.
    pub after_processing: bool,
}

impl Fault {
    /// Answer `method` requests whose path contains `path_contains` with `status` and `body`, once.
    pub fn status(method: &str, path_contains: &str, status: u16, body: Value) -> Fault {
        Fault {
            method: Some(method.to_string()),
            path_contains: path_contains.to_string(),
            times: 1,
            status,
            headers: vec![],
            body,
            delay: None,
            after_processing: false,
        }
    }

    /// GitHub's primary rate limit: 403, `x-ratelimit-remaining: 0`, `x-ratelimit-reset`.
    pub fn rate_limited(path_contains: &str, reset_epoch: i64) -> Fault {
        Fault {
            method: None,
            headers: vec![
                ("x-ratelimit-limit".into(), "5000".into()),
                ("x-ratelimit-remaining".into(), "0".into()),
                ("x-ratelimit-used".into(), "5000".into()),
                ("x-ratelimit-reset".into(), reset_epoch.to_string()),
                ("x-ratelimit-resource".into(), "core".into()),
            ],
            ..Fault::status(
                "",
                path_contains,
                403,
                serde_json::json!({
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": json::DOC_RATE_LIMIT,
                    "status": "403",
                }),
            )
        }
    }

    /// GitHub's secondary rate limit: 403 with `retry-after` (use [`Fault::with_status`]
    /// for the 429 variant).
    pub fn secondary_rate_limit(path_contains: &str, retry_after_secs: u64) -> Fault {
        Fault {
            method: None,
            headers: vec![("retry-after".into(), retry_after_secs.to_string())],
            ..Fault::status(
                "",
                path_contains,
                403,
                serde_json::json!({
                    "message": "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.",
                    "documentation_url": json::DOC_SECONDARY_RATE_LIMIT,
                    "status": "403",
                }),
            )
        }
    }

    /// Process the request for real, then wait `delay` before answering (a client that
    /// times out has still had its effect, e.g. a deployment was created).
    pub fn slow_after_processing(method: &str, path_contains: &str, delay: Duration) -> Fault {
        Fault {
            delay: Some(delay),
            after_processing: true,
            ..Fault::status(method, path_contains, 200, Value::Null)
        }
    }

    /// Fire `n` times instead of once.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }

    pub fn with_status(mut self, status: u16) -> Fault {
        self.status = status;
        if let Some(s) = self.body.get_mut("status") {
            *s = Value::String(status.to_string());
        }
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Fault {
        self.delay = Some(delay);
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn matches(&self, method: &str, path_and_query: &str) -> bool {
        self.times > 0
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.is_empty() || m.eq_ignore_ascii_case(method))
            && path_and_query.contains(&self.path_contains)
    }
}

/// One webhook delivery (attempted, or held).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The `X-GitHub-Delivery` GUID.
    pub id: String,
    /// The `X-GitHub-Event` value.
    pub event: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What the receiver answered; `None` if held, or if it could not be reached in 10 s.
    pub response_status: Option<u16>,
}

impl Delivery {
    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The simulated deployer: for each deployment created through the REST API it posts
/// `queued`, `in_progress` and then `success` (or `failure`/`error`), `step_delay` apart.
#[derive(Debug, Clone, Default)]
pub struct Deployer {
    pub enabled: bool,
    pub step_delay: Duration,
    /// Refs whose deployments end in `failure`.
    pub fail_refs: Vec<String>,
    /// Environments whose deployments end in `failure`.
    pub fail_environments: Vec<String>,
    /// Refs whose deployments end in `error` (checked first).
    pub error_refs: Vec<String>,
}

impl Deployer {
    /// Enabled, everything succeeds.
    pub fn auto(step_delay: Duration) -> Deployer {
        Deployer {
            enabled: true,
            step_delay,
            ..Deployer::default()
        }
    }
}

/// Per-token rate budget (a fixed one-hour window).
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub limit: u64,
    pub remaining: u64,
    pub reset: i64,
}

/// A deployer run, whose log is served at `/{o}/{r}/actions/runs/{n}`.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    pub number: u64,
    pub repo: String,
    pub deployment_id: u64,
    pub lines: Vec<String>,
}

/// A repository hook as listed: its id, settings and creation time.
pub(crate) type ListedHook = (u64, RepoHook, DateTime<Utc>);

pub(crate) struct Inner {
    pub base: String,
    pub state: Mutex<State>,
    pub tokens: Mutex<HashMap<String, Grant>>,
    /// Webhooks listed per repository (lowercase `owner/name`), with id and creation time.
    pub repo_hooks: Mutex<HashMap<String, Vec<ListedHook>>>,
    pub apps: Mutex<apps::Apps>,
    pub buckets: Mutex<HashMap<String, Bucket>>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    pub faults: Mutex<Vec<Fault>>,
    pub hub: webhooks::Hub,
    pub deployer: Mutex<Deployer>,
    pub runs: Mutex<Vec<Run>>,
    pub shutdown: watch::Sender<bool>,
    pub runtime: tokio::runtime::Handle,
    pub request_seq: AtomicU64,
    /// Whether `POST /graphql` is served ([`Sandbox::set_graphql`]).
    pub graphql: AtomicBool,
}

/// Locks a mutex, ignoring poisoning (a panicking test must not wedge the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whom REST calls act as.
pub(crate) fn api_user() -> User {
    User {
        login: "sandbox-user".into(),
        id: 1,
        kind: "User",
    }
}

/// Whom the simulated deployer (and [`Sandbox::create_deployment_status`]) acts as.
pub(crate) fn deployer_user() -> User {
    User {
        login: "sandbox-deployer[bot]".into(),
        id: 2,
        kind: "Bot",
    }
}

impl Inner {
    pub fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!(
            "5B0X:{:04X}:{:06X}:{:06X}:{:08X}",
            std::process::id() & 0xFFFF,
            n,
            n * 7,
            n * 13
        )
    }
}

/// A running sandbox. Cheap to clone; all clones talk to the same server.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

impl Sandbox {
    /// Binds 127.0.0.1 on a free port and serves from a tokio task.
    pub async fn start() -> std::io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            base: format!("http://127.0.0.1:{port}"),
            state: Mutex::new(State::new()),
            tokens: Mutex::new(HashMap::from([(
                DEFAULT_TOKEN.to_string(),
                Grant::personal(TokenSpec::classic(&["repo"]).admin(true)),
            )])),
            repo_hooks: Mutex::new(HashMap::new()),
            apps: Mutex::new(apps::Apps::new()),
            buckets: Mutex::new(HashMap::new()),
            requests: Mutex::new(vec![]),
            faults: Mutex::new(vec![]),
            hub: webhooks::Hub::new(shutdown.subscribe()),
            deployer: Mutex::new(Deployer::default()),
            runs: Mutex::new(vec![]),
            shutdown,
            runtime: tokio::runtime::Handle::current(),
            request_seq: AtomicU64::new(0),
            graphql: AtomicBool::new(true),
        });
        let app = http::router(inner.clone());
        let mut stop = inner.shutdown.subscribe();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "sandbox server stopped");
            }
        });
        Ok(Sandbox { inner })
    }

    /// The API base, like `https://api.github.com`: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.inner.base.clone()
    }

    /// A token with full access: a classic token with the `repo` scope, admin of every
    /// repository.
    pub fn token(&self) -> String {
        DEFAULT_TOKEN.to_string()
    }

    /// A token that sees every repository: with [`Access::Full`] a classic token with
    /// the `repo` scope, with [`Access::ReadOnly`] a fine-grained one.
    pub fn add_token(&self, token: &str, access: Access) {
        let spec = match access {
            Access::Full => TokenSpec::classic(&["repo"]),
            Access::ReadOnly => TokenSpec::fine_grained(Access::ReadOnly),
        };
        self.add_token_with(token, spec);
    }

    /// Serves GraphQL (`POST /graphql`, the default) or not: switched off, the endpoint
    /// is a 404, as behind a proxy that passes REST only or on an old GitHub Enterprise
    /// Server. REST is unaffected.
    pub fn set_graphql(&self, on: bool) {
        self.inner.graphql.store(on, Ordering::SeqCst);
    }

    /// A token with these scopes, reach and rights (see [`TokenSpec`]).
    pub fn add_token_with(&self, token: &str, spec: TokenSpec) {
        lock(&self.inner.tokens).insert(token.to_string(), Grant::personal(spec));
    }

    /// Adds a webhook to `repo`'s settings, as `GET /repos/{o}/{r}/hooks` lists it;
    /// returns its id. (Listing only: deliveries come from [`Sandbox::add_webhook`]'s
    /// hooks, which are listed in every repository too.)
    pub fn add_repo_hook(&self, repo: &str, hook: RepoHook) -> u64 {
        let mut hooks = lock(&self.inner.repo_hooks);
        let id = 100_000_000 + hooks.values().map(Vec::len).sum::<usize>() as u64 + 1;
        hooks
            .entry(repo.to_ascii_lowercase())
            .or_default()
            .push((id, hook, Utc::now()));
        id
    }

    /// The GitHub App's webhook settings (`GET /app/hook/config`).
    ///
    /// # Panics
    /// If the App is not registered.
    pub fn set_app_hook(&self, app_id: u64, hook: AppHook) {
        if let Err(e) = lock(&self.inner.apps).set_hook(app_id, hook) {
            panic!("sandbox: {e}");
        }
    }

    /// Registers a GitHub App: JWTs with `iss` = `app_id` must be signed (RS256) with the
    /// private key whose public half is `public_key_pem` (`-----BEGIN PUBLIC KEY-----`,
    /// as `openssl rsa -pubout` writes it).
    ///
    /// # Panics
    /// If the key is not an RSA public key in PEM form, or the App is registered already.
    pub fn add_app(&self, app_id: u64, public_key_pem: &str) {
        if let Err(e) = lock(&self.inner.apps).add_app(app_id, public_key_pem) {
            panic!("sandbox: {e}");
        }
    }

    /// Installs App `app_id` on every repository: its JWT then gets tokens for
    /// `installation_id` that may do what `access` allows (a read-only installation's
    /// writes get 403 "Resource not accessible by integration").
    ///
    /// # Panics
    /// If the App is not registered, or the installation id is taken.
    pub fn add_installation(&self, app_id: u64, installation_id: u64, access: Access) {
        if let Err(e) = lock(&self.inner.apps).add_installation(app_id, installation_id, access) {
            panic!("sandbox: {e}");
        }
    }

    /// How long installation tokens issued from now on are valid (GitHub: 1 hour).
    /// `Duration::ZERO` issues tokens that are already expired.
    pub fn set_installation_token_ttl(&self, ttl: Duration) {
        lock(&self.inner.apps).ttl = ttl;
    }

    /// Sets how much of `token`'s hourly budget of 5000 is left (to test what a client
    /// does near or at the limit without sending thousands of requests).
    pub fn set_rate_limit_remaining(&self, token: &str, remaining: u64) {
        http::set_remaining(&self.inner, token, remaining);
    }

    /// Sets a token's hourly budget (and refills it): for load scripts that make far
    /// more calls than GitHub's 5000 an hour.
    pub fn set_rate_limit(&self, token: &str, limit: u64) {
        http::set_limit(&self.inner, token, limit);
    }

    /// Stops serving (graceful), the deployer and webhook workers. Idempotent.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    // ----- seeding -----

    /// Creates `owner/name` with an initial commit on `default_branch`; returns its sha.
    ///
    /// # Panics
    /// If the name is not `owner/name` or the repository exists.
    pub fn create_repo(&self, full_name: &str, default_branch: &str) -> String {
        self.seed(|s| s.create_repo(full_name, default_branch))
    }

    /// A new commit on top of `branch` (created from the default branch if missing).
    ///
    /// # Panics
    /// If the repository does not exist.
    pub fn commit(&self, repo: &str, branch: &str, message: &str) -> String {
        self.seed(|s| s.commit(repo, branch, message))
    }

    /// # Panics
    /// If the repository or `from` (a branch, tag or sha) does not exist, or the branch does.
    pub fn create_branch(&self, repo: &str, branch: &str, from: &str) -> String {
        self.seed(|s| s.create_branch(repo, branch, from))
    }

    /// # Panics
    /// If the repository or `from` does not exist, or the tag does.
    pub fn create_tag(&self, repo: &str, tag: &str, from: &str) -> String {
        self.seed(|s| s.create_tag(repo, tag, from))
    }

    /// A branch, tag, full sha or unambiguous ≥7-char sha → the full sha.
    pub fn resolve(&self, repo: &str, git_ref: &str) -> Option<String> {
        lock(&self.inner.state)
            .repo(repo)?
            .resolve(git_ref)
            .map(|r| r.sha)
    }

    /// A commit status (error|failure|pending|success) on the sha `git_ref` points to now.
    ///
    /// # Panics
    /// If the repository or ref does not exist, or the state is not a commit status state.
    /// Fires a `status` webhook, as GitHub does.
    pub fn set_status(&self, repo: &str, git_ref: &str, context: &str, state: &str) {
        let id = self.seed(|s| {
            let sha = Self::resolve_in(s, repo, git_ref)?;
            s.add_commit_status(repo, &sha, NewCommitStatus::new(state, context), api_user())
        });
        service::emit_commit_status(&self.inner, &lock(&self.inner.state), repo, id);
    }

    /// A check run on the sha `git_ref` points to now; the latest run per name counts.
    /// Fires `check_run` (and `check_suite` once completed) webhooks, as GitHub does.
    ///
    /// # Panics
    /// If the repository or ref does not exist, or status/conclusion are not GitHub's values.
    pub fn set_check_run(
        &self,
        repo: &str,
        git_ref: &str,
        name: &str,
        status: &str,
        conclusion: Option<&str>,
    ) {
        let id = self.seed(|s| {
            let sha = Self::resolve_in(s, repo, git_ref)?;
            s.add_check_run(repo, &sha, name, status, conclusion)
        });
        service::emit_check_run(&self.inner, &lock(&self.inner.state), repo, id);
    }

    /// Makes auto-merging the default branch into `branch` conflict (409) or not.
    ///
    /// # Panics
    /// If the repository does not exist.
    pub fn set_merge_conflict(&self, repo: &str, branch: &str, conflicting: bool) {
        self.seed(|s| s.set_merge_conflict(repo, branch, conflicting));
    }

    fn resolve_in(s: &State, repo: &str, git_ref: &str) -> Result<String, state::StateError> {
        let r = s
            .repo(repo)
            .ok_or_else(|| state::StateError::NoRepo(repo.to_string()))?;
        r.resolve(git_ref)
            .map(|r| r.sha)
            .ok_or_else(|| state::StateError::NoRef(git_ref.to_string()))
    }

    fn seed<T>(&self, f: impl FnOnce(&mut State) -> Result<T, state::StateError>) -> T {
        match f(&mut lock(&self.inner.state)) {
            Ok(v) => v,
            Err(e) => panic!("sandbox seeding: {e}"),
        }
    }

    // ----- inspection -----

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.inner.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner.requests).clear();
    }

    /// The repository's deployments, newest first, as the API renders them.
    pub fn deployments(&self, repo: &str) -> Vec<Value> {
        let st = lock(&self.inner.state);
        let Some(r) = st.repo(repo) else {
            return vec![];
        };
        r.list_deployments(None, None, None, None)
            .into_iter()
            .map(|d| json::deployment(&self.inner.base, r, d))
            .collect()
    }

    /// A deployment's statuses, newest first, as the API renders them.
    pub fn deployment_statuses(&self, repo: &str, id: u64) -> Vec<Value> {
        let st = lock(&self.inner.state);
        let Some(r) = st.repo(repo) else {
            return vec![];
        };
        let Some(d) = r.deployment(id) else {
            return vec![];
        };
        d.statuses
            .iter()
            .rev()
            .map(|s| json::deployment_status(&self.inner.base, r, d, s))
            .collect()
    }

    // ----- acting as a deployer -----

    /// Posts a deployment status as the deployer would (same code path as the REST POST,
    /// so webhooks fire and `auto_inactive` applies). Returns the created status JSON, or
    /// GitHub's error body (404 unknown repository/deployment, 422 invalid state...).
    pub fn create_deployment_status(&self, repo: &str, id: u64, status: NewStatus) -> Value {
        let req = StatusRequest {
            state: status.state,
            log_url: status.log_url,
            environment_url: status.environment_url,
            description: status.description,
            ..StatusRequest::default()
        };
        service::create_deployment_status(&self.inner, repo, id, &req, &deployer_user()).body
    }

    // ----- fault injection -----

    pub fn inject(&self, fault: Fault) {
        lock(&self.inner.faults).push(fault);
    }

    // ----- webhooks -----

    /// Subscribes `url` to the events of every repository (`deployment`,
    /// `deployment_status`, `status`, `check_run`, `check_suite`), signed with
    /// `secret`; sends it a `ping` first.
    pub fn add_webhook(&self, url: &str, secret: &str) {
        let hook_id = self.inner.hub.add(&self.inner.runtime, url, secret);
        let ping = json::ping_event(
            &self.inner.base,
            hook_id,
            url,
            &chrono::Utc::now(),
            &api_user(),
        );
        self.inner.hub.emit(
            "ping",
            &serde_json::to_vec(&ping).unwrap_or_default(),
            Some(hook_id),
        );
    }

    /// While held, new deliveries queue instead of being sent. Un-holding does not send
    /// what is queued: [`Sandbox::release`] does.
    pub fn hold_deliveries(&self, hold: bool) {
        self.inner.hub.hold(hold);
    }

    pub fn held_deliveries(&self) -> Vec<Delivery> {
        self.inner.hub.held()
    }

    /// Sends the held deliveries with these ids, in this order, each after the previous
    /// one was answered, and removes them from the queue.
    pub async fn release(&self, delivery_ids: &[String]) {
        self.inner.hub.release(delivery_ids).await;
    }

    /// Every delivery attempted (in the order the attempts finished), with the status the
    /// receiver answered.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.hub.attempts()
    }

    /// Sends a delivery again with the same `X-GitHub-Delivery` and body, like GitHub's
    /// "Redeliver" button; `None` for an unknown id or an unreachable receiver.
    pub async fn redeliver(&self, delivery_id: &str) -> Option<u16> {
        self.inner.hub.redeliver(delivery_id).await
    }

    // ----- simulated deployer -----

    pub fn set_deployer(&self, deployer: Deployer) {
        *lock(&self.inner.deployer) = deployer;
    }
}
