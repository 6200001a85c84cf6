//! The GitHub half of `deploybot doctor`: the credentials (who, which scopes or App
//! permissions), every configured repository (visible? writable? deployments
//! readable?) and the webhook that feeds the bot (URL, events, content type, secret).
//!
//! Credentials come from [`crate::github::token`], like every other GitHub request.

use std::collections::BTreeMap;

use reqwest::header::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::{Check, Report, Verdict};
use crate::config::Config;
use crate::github::client::{API_VERSION, USER_AGENT};
use crate::github::token::{credential_from_config, AppInstallation, Credential, TokenSource};

/// What a GitHub App installation needs, and the least level of each.
const APP_NEEDS: [(&str, &str, &str); 5] = [
    ("deployments", "write", "Deployments: Read and write"),
    ("statuses", "read", "Commit statuses: Read-only"),
    ("checks", "read", "Checks: Read-only"),
    ("contents", "read", "Contents: Read-only"),
    ("metadata", "read", "Metadata: Read-only"),
];

/// Which kind of credential answered, for the advice.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A classic personal token and its scopes.
    Classic(Vec<String>),
    FineGrained,
    App,
}

struct Http {
    client: reqwest::Client,
    base: String,
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn message(&self) -> String {
        self.body["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {}", self.status), str::to_string)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Http {
    fn new(api_url: &str) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(std::time::Duration::from_secs(20))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Http {
            client,
            base: api_url.trim_end_matches('/').to_string(),
        })
    }

    async fn get(&self, path: &str, auth: &SecretString) -> Result<Answer, String> {
        let url = format!("{}{path}", self.base);
        self.send(self.client.get(&url), &url, auth).await
    }

    /// A GraphQL query, at the endpoint the bot uses beside the REST base.
    async fn graphql(&self, query: &Value, auth: &SecretString) -> Result<Answer, String> {
        let url = crate::github::client::graphql_url(&self.base);
        self.send(self.client.post(&url).json(query), &url, auth)
            .await
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        auth: &SecretString,
    ) -> Result<Answer, String> {
        let response = request
            .bearer_auth(auth.expose_secret())
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", API_VERSION)
            .send()
            .await
            .map_err(|e| format!("could not reach {url} ({e})"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// github.com for api.github.com, `https://HOST` for GitHub Enterprise's
/// `https://HOST/api/v3`, else the API URL itself (a sandbox serves both).
fn web_base(api_url: &str) -> String {
    let api = api_url.trim_end_matches('/');
    if let Some(rest) = api.strip_prefix("https://api.") {
        return format!("https://{rest}");
    }
    api.strip_suffix("/api/v3").unwrap_or(api).to_string()
}

fn unreachable(api_url: &str, e: &str) -> Check {
    Check::fail(
        format!("cannot talk to GitHub: {e}"),
        format!("check the network, and [github] api_url ({api_url}; GitHub Enterprise: https://HOST/api/v3)"),
    )
}

/// A message that already says what to do (from the token source).
fn failed(text: impl Into<String>) -> Check {
    Check {
        verdict: Verdict::Fail,
        text: text.into(),
    }
}

pub(super) async fn check(config: &Config, report: &mut Report) {
    let api_url = &config.github.api_url;
    let web = web_base(api_url);
    let http = match Http::new(api_url) {
        Ok(h) => h,
        Err(e) => return report.push(failed(e)),
    };
    let credential = match credential_from_config(api_url, &config.github.auth) {
        Ok(c) => c,
        Err(e) => return report.push(failed(e.to_string())),
    };
    let (token, kind, who) = match &credential {
        Credential::Token(t) => {
            let Ok(token) = t.token().await else {
                return;
            };
            match personal(&http, &token, &web, api_url, report).await {
                Some((kind, login)) => (token, kind, login),
                None => return,
            }
        }
        Credential::App(app) => match app_checks(&http, app, &web, api_url, report).await {
            Some((token, name)) => (token, Kind::App, name),
            None => return,
        },
    };

    // Each repository once, with the apps that use it.
    let mut repos: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for app in &config.apps {
        repos
            .entry(app.repository.to_string())
            .or_default()
            .push(app.name.as_str());
    }
    let app_hook_ok = match (&credential, &config.webhook) {
        (Credential::App(app), Some(w)) => app_hook(&http, app, &web, &w.path, report).await,
        _ => false,
    };
    for (repo, apps) in &repos {
        let visible = repository(&http, &token, &kind, &who, &web, repo, apps, report).await;
        let Some(html) = visible else {
            continue;
        };
        if let (Some(w), false) = (&config.webhook, app_hook_ok) {
            repo_hooks(&http, &token, repo, &html, &w.path, config, report).await;
        }
    }
}

/// `GET /user` and the token's scopes; `None` when nothing more can be checked.
async fn personal(
    http: &Http,
    token: &SecretString,
    web: &str,
    api_url: &str,
    report: &mut Report,
) -> Option<(Kind, String)> {
    let tokens_page = format!("{web}/settings/tokens");
    let me = match http.get("/user", token).await {
        Ok(a) => a,
        Err(e) => {
            report.push(unreachable(api_url, &e));
            return None;
        }
    };
    match me.status {
        200 => {}
        401 => {
            report.push(Check::fail(
                format!("GitHub refused the token in [github] token ({})", me.message()),
                format!(
                    "create a new one at {tokens_page} with the scope repo_deployment (and repo for private repositories), and put it in [github] token"
                ),
            ));
            return None;
        }
        status => {
            report.push(Check::fail(
                format!("GET /user answered {status}: {}", me.message()),
                format!("check that [github] api_url ({api_url}) is GitHub's REST API (GitHub Enterprise: https://HOST/api/v3)"),
            ));
            return None;
        }
    }
    let login = me.body["login"].as_str().unwrap_or("?").to_string();
    report.push(Check::pass(format!(
        "GitHub accepts the token: it acts as {login}"
    )));

    let Some(header) = me.header("x-oauth-scopes") else {
        report.push(Check::pass(
            "the token is fine-grained: GitHub does not list its permissions, so each repository is checked below (it needs Deployments: Read and write, Commit statuses, Contents and Metadata: Read)",
        ));
        return Some((Kind::FineGrained, login));
    };
    let scopes: Vec<String> = header
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let repo = has("repo");
    let listed = if scopes.is_empty() {
        "no scopes".to_string()
    } else {
        scopes.join(", ")
    };
    let mut missing = vec![];
    let mut needs = vec![];
    if !repo && !has("repo_deployment") {
        missing.push("repo_deployment");
        needs.push("create deployments and post their statuses");
    }
    if !repo && !has("repo:status") {
        missing.push("repo:status");
        needs.push("read the commit statuses that required contexts are checked against");
    }
    if missing.is_empty() {
        report.push(Check::pass(format!(
            "classic token scopes: {listed} (deployments and commit statuses covered)"
        )));
    } else {
        let (s, them) = if missing.len() > 1 {
            ("s", "them")
        } else {
            ("", "it")
        };
        report.push(Check::fail(
            format!(
                "the token lacks the scope{s} {}, which deploybot needs to {} (it has: {listed})",
                missing.join(" and "),
                needs.join(" and to ")
            ),
            format!(
                "edit it at {tokens_page} and tick {} (or repo, which includes {them})",
                missing.join(" and ")
            ),
        ));
    }
    if !repo {
        report.push(Check::warn(format!(
            "the token has no repo scope, so it reads public repositories only: a private one also needs repo (branches, compare, contents, and GraphQL, without which commands cost more GitHub requests) — add it at {tokens_page} if yours are private"
        )));
    }
    Some((Kind::Classic(scopes), login))
}

/// The App's JWT, `GET /app`, the installation's permissions, and an installation
/// token; `None` when nothing more can be checked.
async fn app_checks(
    http: &Http,
    app: &AppInstallation,
    web: &str,
    api_url: &str,
    report: &mut Report,
) -> Option<(SecretString, String)> {
    let jwt = match app.app_jwt() {
        Ok(j) => j,
        Err(e) => {
            report.push(failed(e.to_string()));
            return None;
        }
    };
    let me = match http.get("/app", &jwt).await {
        Ok(a) => a,
        Err(e) => {
            report.push(unreachable(api_url, &e));
            return None;
        }
    };
    if me.status != 200 {
        report.push(failed(app.refusal(
            reqwest::StatusCode::from_u16(me.status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY),
            &me.message(),
        )));
        return None;
    }
    let name = me.body["name"].as_str().unwrap_or("?").to_string();
    let slug = me.body["slug"].as_str().unwrap_or("").to_string();
    report.push(Check::pass(format!(
        "GitHub App {name} (id {}) accepts the private key",
        app.app_id()
    )));

    let iid = app.installation_id();
    let inst = match http.get(&format!("/app/installations/{iid}"), &jwt).await {
        Ok(a) => a,
        Err(e) => {
            report.push(unreachable(api_url, &e));
            return None;
        }
    };
    if inst.status != 200 {
        report.push(failed(app.refusal(
            reqwest::StatusCode::from_u16(inst.status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY),
            &inst.message(),
        )));
        return None;
    }
    let granted = &inst.body["permissions"];
    let asked = &me.body["permissions"];
    let mut missing = vec![];
    let mut settings = vec![];
    let mut app_asks_all = true;
    for (perm, level, label) in APP_NEEDS {
        let have = granted[perm].as_str().unwrap_or("none");
        if rank(have) < rank(level) {
            missing.push(format!("{perm}: {level} (has {have})"));
            settings.push(label);
            app_asks_all &= rank(asked[perm].as_str().unwrap_or("none")) >= rank(level);
        }
    }
    let accept_at = inst.body["html_url"]
        .as_str()
        .unwrap_or("the installation's settings");
    if missing.is_empty() {
        report.push(Check::pass(format!(
            "installation {iid} has {}",
            APP_NEEDS
                .iter()
                .map(|(p, _, _)| format!("{p}: {}", granted[*p].as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    } else if app_asks_all {
        report.push(Check::fail(
            format!("installation {iid} lacks {}", missing.join(", ")),
            format!("the App asks for them but the installation has not accepted them yet: review and accept the new permissions at {accept_at}"),
        ));
    } else {
        report.push(Check::fail(
            format!("installation {iid} lacks {}", missing.join(", ")),
            format!(
                "in the App's settings ({web}/settings/apps/{slug}/permissions) set Repository permissions › {}, save, then accept the new permissions at {accept_at}",
                settings.join(", ")
            ),
        ));
    }
    match app.token().await {
        Ok(token) => Some((token, name)),
        Err(e) => {
            report.push(failed(e.to_string()));
            None
        }
    }
}

fn rank(level: &str) -> u8 {
    match level {
        "admin" => 3,
        "write" => 2,
        "read" => 1,
        _ => 0,
    }
}

/// `GET /repos/{o}/{r}` and a cheap read of its deployments; the repository's web
/// URL when it is visible.
#[allow(clippy::too_many_arguments)]
async fn repository(
    http: &Http,
    token: &SecretString,
    kind: &Kind,
    who: &str,
    web: &str,
    repo: &str,
    apps: &[&str],
    report: &mut Report,
) -> Option<String> {
    let config_keys = apps
        .iter()
        .map(|a| format!("[apps.{a}] repository"))
        .collect::<Vec<_>>()
        .join(", ");
    let got = match http.get(&format!("/repos/{repo}"), token).await {
        Ok(a) => a,
        Err(e) => {
            report.push(Check::fail(
                format!("{repo}: {e}"),
                "check the network and [github] api_url",
            ));
            return None;
        }
    };
    if got.status == 404 || got.status == 403 {
        let fix = match kind {
            Kind::Classic(scopes) if !scopes.iter().any(|s| s == "repo") => format!(
                "grant {who} access to it; a private repository also needs the repo scope ({web}/settings/tokens); or fix {config_keys}"
            ),
            Kind::Classic(_) => format!("grant {who} access to it, or fix {config_keys}"),
            Kind::FineGrained => format!(
                "grant access: add it under Repository access in the token's settings ({web}/settings/personal-access-tokens), or fix {config_keys}"
            ),
            Kind::App => format!(
                "install the App on it (the installation's settings › Repository access: All repositories, or select {repo}), or fix {config_keys}"
            ),
        };
        report.push(Check::fail(
            format!(
                "{repo}: the token cannot see this repository ({})",
                got.status
            ),
            fix,
        ));
        return None;
    }
    if got.status != 200 {
        report.push(Check::fail(
            format!("{repo}: GitHub answered {}: {}", got.status, got.message()),
            "try again; if it persists, check the credentials and [github] api_url",
        ));
        return None;
    }
    let html = got.body["html_url"]
        .as_str()
        .map_or_else(|| format!("{web}/{repo}"), str::to_string);
    let push = got.body["permissions"]["push"].as_bool();
    match (kind, push) {
        (Kind::App, _) | (_, None) => {
            report.push(Check::pass(format!("{repo}: visible")));
        }
        (_, Some(true)) => {
            report.push(Check::pass(format!(
                "{repo}: visible, {who} can write to it"
            )));
        }
        (_, Some(false)) => {
            report.push(Check::fail(
                format!("{repo}: {who} can only read this repository, and deployments need write access"),
                format!("give {who} the Write role in {html}/settings/access"),
            ));
        }
    }

    let deployments = http
        .get(&format!("/repos/{repo}/deployments?per_page=1"), token)
        .await;
    match deployments {
        Ok(a) if a.status == 200 => {
            report.push(Check::pass(format!("{repo}: deployments can be read")));
        }
        Ok(a) => {
            let fix = match kind {
                Kind::Classic(_) => {
                    format!("add the repo_deployment scope (or repo) at {web}/settings/tokens")
                }
                Kind::FineGrained => format!(
                    "give the token Deployments: Read and write on {repo} ({web}/settings/personal-access-tokens)"
                ),
                Kind::App => "give the App Deployments: Read and write (App settings › Permissions & events) and accept it on the installation".to_string(),
            };
            report.push(Check::fail(
                format!(
                    "{repo}: cannot read deployments ({}: {})",
                    a.status,
                    a.message()
                ),
                fix,
            ));
        }
        Err(e) => report.push(Check::fail(
            format!("{repo}: {e}"),
            "check the network and [github] api_url",
        )),
    }
    graphql(http, token, kind, repo, report).await;
    Some(html)
}

/// Whether GitHub's GraphQL API answers for `repo`: with it `deploy` costs the POST
/// and one query, `deploys` and `where is` one query; without it deploybot reads
/// over REST, which is correct but costs a request per deployment shown or inspected.
async fn graphql(http: &Http, token: &SecretString, kind: &Kind, repo: &str, report: &mut Report) {
    let Some((owner, name)) = repo.split_once('/') else {
        return;
    };
    let query = serde_json::json!({
        "query": "query($owner: String!, $name: String!) { repository(owner: $owner, name: $name) { deployments(first: 1) { totalCount } } }",
        "variables": {"owner": owner, "name": name},
    });
    let costlier = "deploybot reads over REST instead: the same answers, at more GitHub requests per command \
                    (deploy: 4 or more instead of 2, deploys: 1 + one per deployment listed instead of 1, \
                    where is: per environment 1 + one per deployment until the live one, instead of 1)";
    let why = match http.graphql(&query, token).await {
        Err(e) => e,
        Ok(a) if a.status == 200 && a.body["errors"].is_null() => {
            return report.push(Check::pass(format!(
                "{repo}: GraphQL answers (deploy: the POST + 1 query; deploys, where is: 1 query)"
            )));
        }
        Ok(a) if a.status == 200 => {
            let message = a.body["errors"][0]["message"].as_str().unwrap_or("an error");
            match kind {
                Kind::Classic(scopes) if !scopes.iter().any(|s| s == "repo") => format!(
                    "GitHub's GraphQL API refuses the token for it ({message}); a classic token needs the repo scope for GraphQL on a private repository"
                ),
                _ => format!("GitHub's GraphQL API refuses it ({message})"),
            }
        }
        Ok(a) => format!(
            "GitHub's GraphQL API is not there ({} at {}: a proxy that passes REST only, or an old GitHub Enterprise Server)",
            a.status,
            crate::github::client::graphql_url(&http.base)
        ),
    };
    report.push(Check::warn(format!("{repo}: {why}; {costlier}")));
}

/// What deploybot needs of a webhook, found in a repository's hooks or the App's.
struct Hook {
    label: String,
    url: String,
    active: bool,
    /// `None` when GitHub does not say (an App's events are checked on the App).
    events: Option<Vec<String>>,
    content_type: String,
    secret: bool,
    insecure_ssl: bool,
    settings: String,
}

/// Whether a hook URL points at deploybot's `[webhook] path`.
fn points_at(url: &str, path: &str) -> bool {
    let url = url
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    let path = path.trim_end_matches('/');
    !url.is_empty() && url.ends_with(path) && (path.is_empty() || url.len() > path.len())
}

fn judge(hook: &Hook, report: &mut Report) {
    let Hook {
        label, settings, ..
    } = hook;
    let before = report.lines.len();
    if !hook.active {
        report.push(Check::fail(
            format!("{label} is inactive"),
            format!("tick Active in {settings}"),
        ));
    }
    if let Some(events) = &hook.events {
        let all = events.iter().any(|e| e == "*");
        if !all && !events.iter().any(|e| e == "deployment_status") {
            report.push(Check::fail(
                format!(
                    "{label} does not send deployment_status events (it sends: {})",
                    if events.is_empty() { "nothing".to_string() } else { events.join(", ") }
                ),
                format!("in {settings} choose \"Let me select individual events\" and tick Deployment statuses and Deployments"),
            ));
        }
        if !all && !events.iter().any(|e| e == "deployment") {
            report.push(Check::warn(format!(
                "{label} does not send deployment events: deployments made elsewhere are announced only once their first status arrives (tick Deployments in {settings})"
            )));
        }
    }
    if hook.content_type != "json" {
        let shown = match hook.content_type.as_str() {
            "form" => "application/x-www-form-urlencoded (form)".to_string(),
            other => other.to_string(),
        };
        report.push(Check::fail(
            format!("{label} sends content type {shown}, which deploybot cannot read"),
            format!("set Content type to application/json in {settings}"),
        ));
    }
    if !hook.secret {
        report.push(Check::fail(
            format!("{label} has no secret, so its deliveries are unsigned and deploybot refuses them (401)"),
            format!("set Secret in {settings} to the value of [webhook] secret"),
        ));
    }
    if hook.insecure_ssl {
        report.push(Check::warn(format!(
            "{label} does not verify TLS certificates (SSL verification disabled): enable it in {settings}"
        )));
    }
    let failed = report.lines[before..]
        .iter()
        .any(|c| c.verdict == Verdict::Fail);
    if !failed {
        report.push(Check::pass(format!(
            "{label} posts deployment_status events to {} as JSON, with a secret",
            hook.url
        )));
    }
}

/// `GET /repos/{o}/{r}/hooks`: is there a webhook for deploybot, and is it right?
async fn repo_hooks(
    http: &Http,
    token: &SecretString,
    repo: &str,
    html: &str,
    path: &str,
    config: &Config,
    report: &mut Report,
) {
    let by_hand = format!(
        "check by hand in {html}/settings/hooks that a webhook posts to …{path} with content type application/json, the [webhook] secret, and the events Deployments and Deployment statuses"
    );
    let hooks = match http
        .get(&format!("/repos/{repo}/hooks?per_page=100"), token)
        .await
    {
        Ok(a) if a.status == 200 => a.body.as_array().cloned().unwrap_or_default(),
        Ok(a) => {
            report.push(Check::warn(format!(
                "{repo}: cannot read the webhook settings ({}; they need admin rights on the repository and, for a classic token, the admin:repo_hook or repo scope); {by_hand}",
                a.status
            )));
            return;
        }
        Err(e) => {
            report.push(Check::warn(format!("{repo}: {e}; {by_hand}")));
            return;
        }
    };
    let ours: Vec<&Value> = hooks
        .iter()
        .filter(|h| points_at(h["config"]["url"].as_str().unwrap_or(""), path))
        .collect();
    if ours.is_empty() {
        let found: Vec<&str> = hooks
            .iter()
            .filter_map(|h| h["config"]["url"].as_str())
            .collect();
        let found = if found.is_empty() {
            "no webhooks".to_string()
        } else {
            format!("only {}", found.join(", "))
        };
        let what = format!("{repo}: no webhook posts to …{path} ({found})");
        let add = format!(
            "add one at {html}/settings/hooks/new: Payload URL https://YOUR-HOST{path}, Content type application/json, Secret = [webhook] secret, events Deployments and Deployment statuses (an organization webhook works too; this check cannot see those)"
        );
        if config.github.poll_interval.is_some() {
            report.push(Check::warn(format!(
                "{what}: status updates come from polling (poll_interval) only — to get them at once, {add}"
            )));
        } else {
            report.push(Check::fail(what, add));
        }
        return;
    }
    for h in ours {
        let id = h["id"].as_u64().unwrap_or(0);
        let config = &h["config"];
        let hook = Hook {
            label: format!("{repo}: webhook {id}"),
            url: config["url"].as_str().unwrap_or("").to_string(),
            active: h["active"].as_bool().unwrap_or(true),
            events: Some(
                h["events"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            content_type: config["content_type"]
                .as_str()
                .unwrap_or("form")
                .to_string(),
            secret: config["secret"].as_str().is_some_and(|s| !s.is_empty()),
            insecure_ssl: config["insecure_ssl"].as_str() == Some("1")
                || config["insecure_ssl"].as_u64() == Some(1),
            settings: format!("{html}/settings/hooks/{id}"),
        };
        judge(&hook, report);
    }
}

/// `GET /app/hook/config` (and the App's events from `GET /app`): true when the App's
/// own webhook points at deploybot (then the repositories' hooks are not needed).
async fn app_hook(
    http: &Http,
    app: &AppInstallation,
    web: &str,
    path: &str,
    report: &mut Report,
) -> bool {
    let Ok(jwt) = app.app_jwt() else {
        return false;
    };
    let (Ok(hook), Ok(me)) = (
        http.get("/app/hook/config", &jwt).await,
        http.get("/app", &jwt).await,
    ) else {
        return false;
    };
    if hook.status != 200 {
        report.push(Check::warn(format!(
            "cannot read the App's webhook settings ({}); the repositories' webhooks are checked instead",
            hook.message()
        )));
        return false;
    }
    let url = hook.body["url"].as_str().unwrap_or("");
    let slug = me.body["slug"].as_str().unwrap_or("");
    let settings = format!("{web}/settings/apps/{slug}");
    if !points_at(url, path) {
        let what = if url.is_empty() {
            "the App has no webhook URL".to_string()
        } else {
            format!("the App's webhook posts to {url}, not to …{path}")
        };
        report.push(Check::warn(format!(
            "{what}; the repositories' webhooks are checked instead (to use the App's: set Webhook URL to https://YOUR-HOST{path} in {settings})"
        )));
        return false;
    }
    let events = me.body["events"].as_array().map(|a| {
        a.iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect()
    });
    let c = &hook.body;
    judge(
        &Hook {
            label: "the App's webhook".to_string(),
            url: url.to_string(),
            active: true,
            events,
            content_type: c["content_type"].as_str().unwrap_or("form").to_string(),
            secret: c["secret"].as_str().is_some_and(|s| !s.is_empty()),
            insecure_ssl: c["insecure_ssl"].as_str() == Some("1"),
            settings,
        },
        report,
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls() {
        assert_eq!(web_base("https://api.github.com"), "https://github.com");
        assert_eq!(
            web_base("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com"
        );
        assert_eq!(web_base("http://127.0.0.1:9"), "http://127.0.0.1:9");
    }

    #[test]
    fn hook_urls() {
        assert!(points_at("https://bot.example.com/webhook", "/webhook"));
        assert!(points_at(
            "https://bot.example.com/webhook/?x=1",
            "/webhook"
        ));
        assert!(!points_at("https://bot.example.com/other", "/webhook"));
        assert!(!points_at("", "/webhook"));
        assert!(!points_at("https://bot.example.com/webhooks", "/webhook"));
    }

    #[test]
    fn levels() {
        assert!(rank("write") > rank("read"));
        assert!(rank("admin") > rank("write"));
        assert_eq!(rank("none"), 0);
    }
}
