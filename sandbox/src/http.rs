//! The HTTP face: one axum fallback handler that records the request, applies faults,
//! authenticates, charges the rate budget, routes on GitHub's paths and adds GitHub's
//! headers (rate limit, request id, ETag / 304, Link pagination).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::json::{self, *};
use crate::service::{self, Reply};
use crate::state::User;
use crate::{api_user, apps, lock, pages, Access, Bucket, Fault, Grant, Inner, RecordedRequest};

const MAX_BODY: usize = 8 * 1024 * 1024;
const TOKEN_LIMIT: u64 = 5000;
const ANONYMOUS_LIMIT: u64 = 60;
const ANONYMOUS: &str = "\0anonymous";

pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new().fallback(handle).with_state(inner)
}

async fn handle(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await;
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = body.as_ref().map(Bytes::clone).unwrap_or_default();
    let recorded_body = if bytes.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        )
    };
    lock(&inner.requests).push(RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        headers,
        body: recorded_body,
    });

    if !is_api_path(&path) {
        return pages::serve(&inner, &method, &path);
    }
    if body.is_err() {
        let reply = Reply::error(413, "Payload too large", DOCS);
        return finish(&inner, &method, &parts.headers, ANONYMOUS, true, reply);
    }

    let path_and_query = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let fault = take_fault(&inner, &method, &path_and_query);
    if let Some(f) = fault.as_ref().filter(|f| !f.after_processing) {
        if let Some(d) = f.delay {
            tokio::time::sleep(d).await;
        }
        return fault_response(&inner, &parts.headers, f);
    }

    if path == "/graphql" {
        let response = graphql_api(&inner, &method, &parts.headers, &bytes).await;
        if let Some(d) = fault.and_then(|f| f.delay) {
            tokio::time::sleep(d).await;
        }
        return response;
    }
    let response = api(
        &inner,
        &method,
        &path,
        query.as_deref(),
        &parts.headers,
        &bytes,
    );
    if let Some(d) = fault.and_then(|f| f.delay) {
        tokio::time::sleep(d).await;
    }
    response
}

impl crate::Sandbox {
    /// Answers one request in memory through the server's own handler, without a
    /// socket: the entry point of `fuzz/fuzz_targets/sandbox_request.rs`.
    #[doc(hidden)]
    pub async fn answer(&self, req: Request) -> Response {
        handle(State(self.inner.clone()), req).await
    }
}

/// The REST API lives under `/repos/` and `/app/`, plus `/rate_limit` and `/user`;
/// everything else is a web page (`/{o}/{r}`, a run's log...).
fn is_api_path(path: &str) -> bool {
    path.starts_with("/repos/")
        || path == "/graphql"
        || path == "/rate_limit"
        || path == "/user"
        || path.starts_with("/users/")
        || is_app_path(path)
}

/// Endpoints that authenticate as a GitHub App (with a JWT), not with a token.
fn is_app_path(path: &str) -> bool {
    path == "/app" || path.starts_with("/app/")
}

fn take_fault(inner: &Inner, method: &str, path_and_query: &str) -> Option<Fault> {
    let mut faults = lock(&inner.faults);
    let i = faults
        .iter()
        .position(|f| f.matches(method, path_and_query))?;
    faults[i].times -= 1;
    let fault = faults[i].clone();
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(fault)
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer"))
        .then(|| token.trim().to_string())
}

/// Which bucket a request is charged to: its token if known (and not expired), else
/// the anonymous one.
fn bucket_key(inner: &Inner, headers: &HeaderMap) -> (String, Option<Grant>) {
    let now = chrono::Utc::now();
    match bearer(headers) {
        Some(t) => match lock(&inner.tokens).get(&t).filter(|g| g.valid_at(now)) {
            Some(grant) => (t, Some(grant.clone())),
            None => (ANONYMOUS.into(), None),
        },
        None => (ANONYMOUS.into(), None),
    }
}

/// Reads (and, when `charge`, decrements) a bucket, resetting it when its hour is over.
fn touch_bucket(inner: &Inner, key: &str, charge: bool) -> Bucket {
    let now = chrono::Utc::now().timestamp();
    let mut buckets = lock(&inner.buckets);
    let limit = if key == ANONYMOUS {
        ANONYMOUS_LIMIT
    } else {
        TOKEN_LIMIT
    };
    let b = buckets.entry(key.to_string()).or_insert(Bucket {
        limit,
        remaining: limit,
        reset: now + 3600,
    });
    if now >= b.reset {
        *b = Bucket {
            limit,
            remaining: limit,
            reset: now + 3600,
        };
    }
    if charge {
        b.remaining = b.remaining.saturating_sub(1);
    }
    b.clone()
}

pub(crate) fn set_limit(inner: &Inner, token: &str, limit: u64) {
    touch_bucket(inner, token, false);
    if let Some(b) = lock(&inner.buckets).get_mut(token) {
        b.limit = limit;
        b.remaining = limit;
    }
}

pub(crate) fn set_remaining(inner: &Inner, token: &str, remaining: u64) {
    touch_bucket(inner, token, false);
    if let Some(b) = lock(&inner.buckets).get_mut(token) {
        b.remaining = remaining.min(b.limit);
    }
}

fn fault_response(inner: &Inner, headers: &HeaderMap, f: &Fault) -> Response {
    let (key, _) = bucket_key(inner, headers);
    let bucket = touch_bucket(inner, &key, true);
    let body = if f.body.is_null() {
        None
    } else {
        serde_json::to_vec(&f.body).ok()
    };
    let mut resp = response(inner, f.status, body, &bucket);
    for (k, v) in &f.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

/// A response with GitHub's common headers.
fn response(inner: &Inner, status: u16, body: Option<Vec<u8>>, bucket: &Bucket) -> Response {
    let has_body = body.is_some();
    let mut resp = Response::new(body.map(Body::from).unwrap_or_else(Body::empty));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::try_from(v) {
            h.insert(k, v);
        }
    };
    if has_body {
        set("content-type", "application/json; charset=utf-8".into());
    }
    set("x-ratelimit-limit", bucket.limit.to_string());
    set("x-ratelimit-remaining", bucket.remaining.to_string());
    set(
        "x-ratelimit-used",
        (bucket.limit - bucket.remaining).to_string(),
    );
    set("x-ratelimit-reset", bucket.reset.to_string());
    set("x-ratelimit-resource", "core".into());
    set("x-github-request-id", inner.next_request_id());
    set("x-github-api-version-selected", "2022-11-28".into());
    set("x-github-media-type", "github.v3; format=json".into());
    set(
        "access-control-expose-headers",
        "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, \
         X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, \
         X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset"
            .into(),
    );
    resp
}

/// Adds the reply's own headers, handles conditional GETs, charges the budget.
fn finish(
    inner: &Inner,
    method: &str,
    headers: &HeaderMap,
    key: &str,
    charge: bool,
    reply: Reply,
) -> Response {
    let body = serde_json::to_vec(&reply.body).unwrap_or_default();
    let mut etag = None;
    if method == "GET" && reply.status == 200 {
        let tag = format!("\"{}\"", hex::encode(Sha256::digest(&body)));
        let matched = headers
            .get_all("if-none-match")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().trim_start_matches("W/"))
            .any(|v| v == tag || v == "*");
        if matched {
            // A 304 costs nothing.
            let bucket = touch_bucket(inner, key, false);
            let mut resp = response(inner, 304, None, &bucket);
            if let Ok(v) = HeaderValue::try_from(tag) {
                resp.headers_mut().insert("etag", v);
            }
            return resp;
        }
        etag = Some(tag);
    }
    let bucket = touch_bucket(inner, key, charge);
    let mut resp = response(inner, reply.status, Some(body), &bucket);
    let h = resp.headers_mut();
    if let Some(tag) = etag {
        if let Ok(v) = HeaderValue::try_from(tag) {
            h.insert("etag", v);
        }
        h.insert(
            "cache-control",
            HeaderValue::from_static("private, max-age=60, s-maxage=60"),
        );
        h.insert(
            "vary",
            HeaderValue::from_static("Accept, Authorization, Cookie, X-GitHub-OTP"),
        );
    }
    for (k, v) in &reply.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.insert(k, v);
        }
    }
    resp
}

/// Authentication, the rate budget, then routing.
fn api(
    inner: &Arc<Inner>,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    // HEAD is a GET without a body (hyper leaves the body out).
    let method = if method == "HEAD" { "GET" } else { method };
    if is_app_path(path) {
        return app_api(inner, method, path, headers, body);
    }
    let (key, grant) = bucket_key(inner, headers);
    let Some(grant) = grant else {
        let message = if bearer(headers).is_some() || headers.contains_key("authorization") {
            "Bad credentials"
        } else {
            "Requires authentication"
        };
        let reply = Reply::error(401, message, DOCS);
        return finish(inner, method, headers, ANONYMOUS, true, reply);
    };
    let user = match grant.installation {
        Some((app_id, _)) => apps::bot_user(app_id),
        None => api_user(),
    };
    if path != "/rate_limit" && touch_bucket(inner, &key, false).remaining == 0 {
        let who = match grant.installation {
            Some((_, installation_id)) => format!("installation ID {installation_id}"),
            None => format!("user ID {}", user.id),
        };
        let reply = Reply::error(
            403,
            &format!("API rate limit exceeded for {who}."),
            DOC_RATE_LIMIT,
        );
        return finish(inner, method, headers, &key, false, reply);
    }
    let scopes = grant.scopes.as_ref().map(|s| s.join(", "));
    let ctx = Ctx {
        inner,
        method,
        path,
        query,
        body,
        grant,
        user,
        key: &key,
    };
    let mut reply = route(&ctx);
    // Classic tokens: GitHub names their scopes on every response.
    if let Some(scopes) = scopes {
        reply = reply.header("x-oauth-scopes", &scopes);
    }
    finish(inner, method, headers, &key, path != "/rate_limit", reply)
}

/// `POST /graphql`: the same credentials and rate budget rules as REST (in a bucket of
/// its own, as on GitHub), unless GraphQL is switched off ([`crate::Sandbox::set_graphql`]),
/// when it is a 404 like any path a proxy or an old GitHub Enterprise Server does not know.
async fn graphql_api(
    inner: &Arc<Inner>,
    method: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if method != "POST" || !inner.graphql.load(std::sync::atomic::Ordering::SeqCst) {
        let reply = Reply::error(404, "Not Found", DOCS);
        return finish(inner, method, headers, ANONYMOUS, false, reply);
    }
    let (key, grant) = bucket_key(inner, headers);
    let Some(grant) = grant else {
        let message = if headers.contains_key("authorization") {
            "Bad credentials"
        } else {
            "This endpoint requires you to be authenticated."
        };
        let reply = Reply::error(401, message, DOC_GRAPHQL);
        return finish(inner, method, headers, ANONYMOUS, false, reply);
    };
    let key = format!("{key}\0graphql");
    if touch_bucket(inner, &key, false).remaining == 0 {
        let reply = Reply::error(403, "API rate limit exceeded for GraphQL.", DOC_RATE_LIMIT);
        return finish(inner, method, headers, &key, false, reply).with_resource("graphql");
    }
    let scopes = grant.scopes.as_ref().map(|s| s.join(", "));
    let caller = crate::graphql::Caller {
        inner: inner.clone(),
        grant,
    };
    let mut reply = Reply::ok(crate::graphql::execute(caller, body).await);
    if let Some(scopes) = scopes {
        reply = reply.header("x-oauth-scopes", &scopes);
    }
    // GraphQL answers are POSTs: no ETag, charged one point.
    finish(inner, method, headers, &key, true, reply).with_resource("graphql")
}

trait WithResource {
    fn with_resource(self, resource: &'static str) -> Self;
}

impl WithResource for Response {
    /// Names the rate-limit bucket in `x-ratelimit-resource`.
    fn with_resource(mut self, resource: &'static str) -> Response {
        self.headers_mut()
            .insert("x-ratelimit-resource", HeaderValue::from_static(resource));
        self
    }
}

/// `/app/...`: authenticated by a GitHub App's JWT (not by a token), charged to the App.
fn app_api(
    inner: &Arc<Inner>,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let now = chrono::Utc::now();
    let verified = match bearer(headers) {
        Some(jwt) => lock(&inner.apps).verify(&jwt, now),
        None => Err(apps::UNDECODABLE),
    };
    let app_id = match verified {
        Ok(id) => id,
        Err(message) => {
            let reply = Reply::error(401, message, DOCS);
            return finish(inner, method, headers, ANONYMOUS, true, reply);
        }
    };
    let key = format!("\0app:{app_id}");
    if touch_bucket(inner, &key, false).remaining == 0 {
        let reply = Reply::error(
            403,
            &format!("API rate limit exceeded for app ID {app_id}."),
            DOC_RATE_LIMIT,
        );
        return finish(inner, method, headers, &key, false, reply);
    }
    let segs = segments(path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let reply = match (method, segs.as_slice()) {
        ("POST", ["app", "installations", id, "access_tokens"]) => {
            create_installation_token(inner, app_id, id, body, now)
        }
        ("GET", ["app"]) => get_app(inner, app_id),
        ("GET", ["app", "installations", id]) => get_installation(inner, app_id, id),
        ("GET", ["app", "hook", "config"]) => {
            let apps = lock(&inner.apps);
            Reply::ok(match apps.hook(app_id) {
                Some(h) => json::hook_config(
                    &h.url,
                    &h.content_type,
                    h.secret.as_deref().is_some_and(|s| !s.is_empty()),
                    h.insecure_ssl,
                ),
                // An App without a webhook URL.
                None => json::hook_config("", "form", false, false),
            })
        }
        _ => Reply::not_found(DOCS),
    };
    finish(inner, method, headers, &key, true, reply)
}

/// The account Apps and their installations belong to: the owner of the first
/// repository, else the API user.
fn account(inner: &Inner) -> User {
    lock(&inner.state)
        .repos()
        .next()
        .map(|r| r.owner.clone())
        .unwrap_or_else(api_user)
}

fn get_app(inner: &Inner, app_id: u64) -> Reply {
    let owner = account(inner);
    let apps = lock(&inner.apps);
    Reply::ok(json::app(
        &inner.base,
        app_id,
        &apps::slug(app_id),
        &owner,
        apps::permissions(Access::Full),
        apps.installation_count(app_id),
        &apps.registered_at(app_id),
    ))
}

fn get_installation(inner: &Inner, app_id: u64, installation_id: &str) -> Reply {
    let owner = account(inner);
    let apps = lock(&inner.apps);
    let found = parse_id(installation_id)
        .and_then(|id| Some((id, apps.installation(id)?)))
        .filter(|(_, i)| i.app_id == app_id);
    match found {
        Some((id, i)) => Reply::ok(json::installation(
            &inner.base,
            id,
            app_id,
            &apps::slug(app_id),
            &owner,
            apps::permissions(i.access),
            &apps.registered_at(app_id),
        )),
        None => Reply::not_found(DOC_GET_INSTALLATION),
    }
}

fn create_installation_token(
    inner: &Inner,
    app_id: u64,
    installation_id: &str,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Reply {
    let doc = DOC_CREATE_INSTALLATION_TOKEN;
    let (installation_id, installation, expires_at) = {
        let apps = lock(&inner.apps);
        let found = parse_id(installation_id)
            .and_then(|id| Some((id, apps.installation(id)?)))
            .filter(|(_, i)| i.app_id == app_id);
        match found {
            Some((id, i)) => (id, i, apps.expiry(now)),
            None => return Reply::not_found(doc),
        }
    };
    if let Err(reply) = service::parse_object(body, doc) {
        return reply;
    }
    let token = apps::new_token();
    lock(&inner.tokens).insert(
        token.clone(),
        Grant {
            access: installation.access,
            installation: Some((app_id, installation_id)),
            expires_at: Some(expires_at),
            scopes: None,
            repositories: None,
            admin: false,
        },
    );
    let st = lock(&inner.state);
    let repos: Vec<_> = st.repos().collect();
    let body = json::installation_token(
        &inner.base,
        &token,
        &expires_at,
        apps::permissions(installation.access),
        installation.access == Access::Full,
        &repos,
    );
    Reply::new(201, body)
}

struct Ctx<'a> {
    inner: &'a Arc<Inner>,
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    body: &'a [u8],
    grant: Grant,
    user: User,
    key: &'a str,
}

impl Ctx<'_> {
    fn param(&self, name: &str) -> Option<String> {
        query_pairs(self.query)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// 403 for a read-only token on a write.
    fn require_write(&self, permission: &str, doc: &str) -> Result<(), Reply> {
        match self.grant.access {
            Access::Full => Ok(()),
            Access::ReadOnly => Err(Reply::error(403, self.not_accessible(), doc)
                .header("x-accepted-github-permissions", permission)),
        }
    }

    /// GitHub's 403 message names the kind of credential.
    fn not_accessible(&self) -> &'static str {
        match self.grant.installation {
            Some(_) => "Resource not accessible by integration",
            None => "Resource not accessible by personal access token",
        }
    }

    /// A page of `items` with GitHub's `Link` header.
    fn paginate(&self, items: Vec<Value>) -> Reply {
        let per_page = self
            .param("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0);
        let per_page = per_page.unwrap_or(30).min(100);
        let page = self
            .param("page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        let last = items.len().div_ceil(per_page).max(1);
        let start = (page - 1).saturating_mul(per_page);
        let body: Vec<Value> = items.into_iter().skip(start).take(per_page).collect();
        let mut reply = Reply::ok(Value::Array(body));
        if last > 1 {
            let link_to = |p: usize| {
                let mut parts: Vec<&str> = self
                    .query
                    .unwrap_or("")
                    .split('&')
                    .filter(|kv| !kv.is_empty() && !kv.starts_with("page="))
                    .collect();
                let page_part = format!("page={p}");
                parts.push(&page_part);
                format!("<{}{}?{}>", self.inner.base, self.path, parts.join("&"))
            };
            let mut links = vec![];
            if page > 1 {
                links.push(format!("{}; rel=\"prev\"", link_to((page - 1).min(last))));
            }
            if page < last {
                links.push(format!("{}; rel=\"next\"", link_to(page + 1)));
                links.push(format!("{}; rel=\"last\"", link_to(last)));
            }
            if page > 1 {
                links.push(format!("{}; rel=\"first\"", link_to(1)));
            }
            reply = reply.header("link", &links.join(", "));
        }
        reply
    }
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                // Two hex digits exactly (`from_str_radix` alone would take `+1`).
                let pair = &bytes[i + 1..i + 3];
                let hex = pair
                    .iter()
                    .all(u8::is_ascii_hexdigit)
                    .then(|| std::str::from_utf8(pair).ok())
                    .flatten()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

pub(crate) fn segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect()
}

fn route(ctx: &Ctx) -> Reply {
    let segs = segments(ctx.path);
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (ctx.method, segs.as_slice()) {
        ("GET", ["rate_limit"]) => {
            let b = touch_bucket(ctx.inner, ctx.key, false);
            Reply::ok(json::rate_limit(b.limit, b.remaining, b.reset))
        }
        ("GET", ["user"]) if ctx.grant.installation.is_some() => {
            Reply::error(403, ctx.not_accessible(), DOC_GET_AUTHENTICATED_USER)
        }
        ("GET", ["user"]) => Reply::ok(json::user(&ctx.inner.base, &ctx.user)),
        (_, ["repos", owner, name, rest @ ..]) => repo_route(ctx, &format!("{owner}/{name}"), rest),
        _ => Reply::not_found(DOCS),
    }
}

/// The classic-token scope a repository endpoint needs on a private repository.
fn needed_scope(rest: &[&str]) -> &'static str {
    match rest {
        ["deployments", ..] => "repo_deployment",
        ["statuses", ..] => "repo:status",
        ["commits", .., "status" | "statuses"] => "repo:status",
        ["hooks", ..] => "read:repo_hook",
        _ => "repo",
    }
}

fn repo_route(ctx: &Ctx, repo: &str, rest: &[&str]) -> Reply {
    // GitHub answers 404 for a repository the credential cannot reach, and for a
    // private one its scopes do not cover (naming the scopes it would accept).
    if !ctx.grant.sees(repo) {
        return Reply::not_found(DOCS);
    }
    let scope = needed_scope(rest);
    if !ctx.grant.has_scope(scope) {
        let accepted = match scope {
            "repo" => "repo".to_string(),
            "read:repo_hook" => "admin:repo_hook, read:repo_hook, repo, write:repo_hook".into(),
            other => format!("{other}, repo"),
        };
        return Reply::not_found(DOCS).header("x-accepted-oauth-scopes", &accepted);
    }
    match (ctx.method, rest) {
        ("GET", []) => get_repo(ctx, repo),
        ("GET", ["hooks"]) => list_hooks(ctx, repo),
        ("GET", ["branches"]) => list_branches(ctx, repo),
        ("GET", ["branches", branch @ ..]) if !branch.is_empty() => {
            get_branch(ctx, repo, &branch.join("/"))
        }
        ("GET", ["commits", r @ .., "status"]) if !r.is_empty() => {
            combined_status(ctx, repo, &r.join("/"))
        }
        ("GET", ["commits", r @ .., "statuses"]) if !r.is_empty() => {
            list_commit_statuses(ctx, repo, &r.join("/"))
        }
        ("GET", ["commits", r @ .., "check-runs"]) if !r.is_empty() => {
            check_runs(ctx, repo, &r.join("/"))
        }
        ("GET", ["commits", r @ ..]) if !r.is_empty() => get_commit(ctx, repo, &r.join("/")),
        ("POST", ["statuses", sha @ ..]) if !sha.is_empty() => {
            create_commit_status(ctx, repo, &sha.join("/"))
        }
        ("GET", ["deployments"]) => list_deployments(ctx, repo),
        ("POST", ["deployments"]) => create_deployment(ctx, repo),
        ("GET", ["deployments", id]) => get_deployment(ctx, repo, id),
        ("GET", ["deployments", id, "statuses"]) => list_deployment_statuses(ctx, repo, id),
        ("POST", ["deployments", id, "statuses"]) => create_deployment_status(ctx, repo, id),
        ("GET", ["deployments", id, "statuses", status_id]) => {
            get_deployment_status(ctx, repo, id, status_id)
        }
        ("GET", ["compare", spec @ ..]) if !spec.is_empty() => compare(ctx, repo, &spec.join("/")),
        _ => Reply::not_found(DOCS),
    }
}

fn get_repo(ctx: &Ctx, repo: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_GET_REPO);
    };
    let mut body = json::repository(&ctx.inner.base, r);
    let write = ctx.grant.access == Access::Full;
    let admin = ctx.grant.admin;
    body["permissions"] = json!({
        "admin": admin, "maintain": write || admin, "push": write || admin,
        "triage": write || admin, "pull": true,
    });
    Reply::ok(body)
}

/// `GET /repos/{o}/{r}/hooks`: needs admin on the repository. The hooks of
/// [`crate::Sandbox::add_webhook`] (every repository) first, then the repository's own.
fn list_hooks(ctx: &Ctx, repo: &str) -> Reply {
    if !ctx.grant.admin {
        return match (ctx.grant.installation, &ctx.grant.scopes) {
            // A classic token without admin rights: the hooks do not exist for it.
            (None, Some(_)) => Reply::not_found(DOC_LIST_HOOKS),
            _ => Reply::error(403, ctx.not_accessible(), DOC_LIST_HOOKS)
                .header("x-accepted-github-permissions", "repository_hooks=read"),
        };
    }
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_LIST_HOOKS);
    };
    let base = &ctx.inner.base;
    let now = chrono::Utc::now();
    let standard = vec!["deployment".to_string(), "deployment_status".to_string()];
    let mut items: Vec<Value> = ctx
        .inner
        .hub
        .hooks()
        .into_iter()
        .map(|(id, url, secret)| {
            let config = json::hook_config(&url, "json", secret, false);
            json::repo_hook(base, r, id, true, &standard, config, &now)
        })
        .collect();
    if let Some(hooks) = lock(&ctx.inner.repo_hooks).get(&repo.to_ascii_lowercase()) {
        items.extend(hooks.iter().map(|(id, h, created)| {
            let secret = h.secret.as_deref().is_some_and(|s| !s.is_empty());
            let config = json::hook_config(&h.url, &h.content_type, secret, h.insecure_ssl);
            json::repo_hook(base, r, *id, h.active, &h.events, config, created)
        }));
    }
    ctx.paginate(items)
}

fn list_branches(ctx: &Ctx, repo: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_BRANCHES);
    };
    let items = r
        .branches
        .iter()
        .map(|(name, sha)| json::branch_short(&ctx.inner.base, r, name, sha))
        .collect();
    ctx.paginate(items)
}

fn get_branch(ctx: &Ctx, repo: &str, branch: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_BRANCH);
    };
    match r.branches.get(branch).and_then(|sha| r.commit(sha)) {
        Some(c) => Reply::ok(json::branch_full(&ctx.inner.base, r, branch, c)),
        None => Reply::error(404, "Branch not found", DOC_BRANCH),
    }
}

fn no_commit(git_ref: &str, doc: &str) -> Reply {
    Reply::error(422, &format!("No commit found for SHA: {git_ref}"), doc)
}

fn get_commit(ctx: &Ctx, repo: &str, git_ref: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_COMMIT);
    };
    match r.resolve(git_ref).and_then(|x| r.commit(&x.sha)) {
        Some(c) => Reply::ok(json::commit(&ctx.inner.base, r, c)),
        None => no_commit(git_ref, DOC_COMMIT),
    }
}

fn combined_status(ctx: &Ctx, repo: &str, git_ref: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_COMBINED_STATUS);
    };
    match r.resolve(git_ref) {
        Some(x) => Reply::ok(json::combined_status(&ctx.inner.base, r, &x.sha)),
        None => no_commit(git_ref, DOC_COMBINED_STATUS),
    }
}

fn list_commit_statuses(ctx: &Ctx, repo: &str, git_ref: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_LIST_STATUSES);
    };
    let Some(x) = r.resolve(git_ref) else {
        return no_commit(git_ref, DOC_LIST_STATUSES);
    };
    let items = r
        .statuses
        .iter()
        .rev()
        .filter(|s| s.sha == x.sha)
        .map(|s| json::commit_status(&ctx.inner.base, r, s))
        .collect();
    ctx.paginate(items)
}

fn check_runs(ctx: &Ctx, repo: &str, git_ref: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_CHECK_RUNS);
    };
    let Some(x) = r.resolve(git_ref) else {
        return no_commit(git_ref, DOC_CHECK_RUNS);
    };
    let mut runs = if ctx.param("filter").as_deref() == Some("all") {
        r.check_runs
            .iter()
            .rev()
            .filter(|c| c.sha == x.sha)
            .collect()
    } else {
        r.latest_check_runs(&x.sha)
    };
    if let Some(name) = ctx.param("check_name") {
        runs.retain(|c| c.name == name);
    }
    if let Some(status) = ctx.param("status") {
        runs.retain(|c| c.status == status);
    }
    let per_page = ctx
        .param("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(30)
        .min(100);
    let page = ctx
        .param("page")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let total = runs.len();
    let shown: Vec<_> = runs
        .into_iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .collect();
    let mut body = json::check_runs(&ctx.inner.base, r, &shown);
    body["total_count"] = json!(total);
    Reply::ok(body)
}

fn create_commit_status(ctx: &Ctx, repo: &str, sha: &str) -> Reply {
    if lock(&ctx.inner.state).repo(repo).is_none() {
        return Reply::not_found(DOC_CREATE_STATUS);
    }
    if let Err(reply) = ctx.require_write("statuses=write", DOC_CREATE_STATUS) {
        return reply;
    }
    match service::parse_object(ctx.body, DOC_CREATE_STATUS) {
        Ok(body) => service::create_commit_status(ctx.inner, repo, sha, &body, &ctx.user),
        Err(reply) => reply,
    }
}

fn list_deployments(ctx: &Ctx, repo: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_LIST_DEPLOYMENTS);
    };
    let (sha, git_ref, task, env) = (
        ctx.param("sha"),
        ctx.param("ref"),
        ctx.param("task"),
        ctx.param("environment"),
    );
    let items = r
        .list_deployments(
            sha.as_deref(),
            git_ref.as_deref(),
            task.as_deref(),
            env.as_deref(),
        )
        .into_iter()
        .map(|d| json::deployment(&ctx.inner.base, r, d))
        .collect();
    ctx.paginate(items)
}

fn create_deployment(ctx: &Ctx, repo: &str) -> Reply {
    if lock(&ctx.inner.state).repo(repo).is_none() {
        return Reply::not_found(DOC_CREATE_DEPLOYMENT);
    }
    if let Err(reply) = ctx.require_write("deployments=write", DOC_CREATE_DEPLOYMENT) {
        return reply;
    }
    let parsed = service::parse_object(ctx.body, DOC_CREATE_DEPLOYMENT)
        .and_then(|b| service::parse_deployment_request(&b));
    match parsed {
        Ok(req) => service::create_deployment(ctx.inner, repo, &req, &ctx.user),
        Err(reply) => reply,
    }
}

fn parse_id(id: &str) -> Option<u64> {
    id.parse().ok()
}

fn get_deployment(ctx: &Ctx, repo: &str, id: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let found = st
        .repo(repo)
        .and_then(|r| Some((r, r.deployment(parse_id(id)?)?)));
    match found {
        Some((r, d)) => Reply::ok(json::deployment(&ctx.inner.base, r, d)),
        None => Reply::not_found(DOC_GET_DEPLOYMENT),
    }
}

fn list_deployment_statuses(ctx: &Ctx, repo: &str, id: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let found = st
        .repo(repo)
        .and_then(|r| Some((r, r.deployment(parse_id(id)?)?)));
    let Some((r, d)) = found else {
        return Reply::not_found(DOC_LIST_DEPLOYMENT_STATUSES);
    };
    let items = d
        .statuses
        .iter()
        .rev()
        .map(|s| json::deployment_status(&ctx.inner.base, r, d, s))
        .collect();
    ctx.paginate(items)
}

fn get_deployment_status(ctx: &Ctx, repo: &str, id: &str, status_id: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let found = st.repo(repo).and_then(|r| {
        let d = r.deployment(parse_id(id)?)?;
        let sid = parse_id(status_id)?;
        Some((r, d, d.statuses.iter().find(|s| s.id == sid)?))
    });
    match found {
        Some((r, d, s)) => Reply::ok(json::deployment_status(&ctx.inner.base, r, d, s)),
        None => Reply::not_found(DOC_GET_DEPLOYMENT_STATUS),
    }
}

fn create_deployment_status(ctx: &Ctx, repo: &str, id: &str) -> Reply {
    let doc = DOC_CREATE_DEPLOYMENT_STATUS;
    let exists = lock(&ctx.inner.state)
        .repo(repo)
        .is_some_and(|r| parse_id(id).and_then(|i| r.deployment(i)).is_some());
    let Some(id) = parse_id(id).filter(|_| exists) else {
        return Reply::not_found(doc);
    };
    if let Err(reply) = ctx.require_write("deployments=write", doc) {
        return reply;
    }
    let parsed =
        service::parse_object(ctx.body, doc).and_then(|b| service::parse_status_request(&b));
    match parsed {
        Ok(req) => service::create_deployment_status(ctx.inner, repo, id, &req, &ctx.user),
        Err(reply) => reply,
    }
}

fn compare(ctx: &Ctx, repo: &str, spec: &str) -> Reply {
    let st = lock(&ctx.inner.state);
    let Some(r) = st.repo(repo) else {
        return Reply::not_found(DOC_COMPARE);
    };
    let Some((base, head)) = spec.split_once("...").or_else(|| spec.split_once("..")) else {
        return Reply::not_found(DOC_COMPARE);
    };
    let (Some(b), Some(h)) = (r.resolve(base), r.resolve(head)) else {
        return Reply::not_found(DOC_COMPARE);
    };
    let (Some(bc), Some(hc)) = (r.commit(&b.sha), r.commit(&h.sha)) else {
        return Reply::not_found(DOC_COMPARE);
    };
    match r.compare(&b.sha, &h.sha) {
        Some(c) => Reply::ok(json::comparison(&ctx.inner.base, r, spec, bc, hc, &c)),
        None => Reply::error(
            404,
            &format!("No common ancestor between {base} and {head}."),
            DOC_COMPARE,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("feature%2Fx", false), "feature/x");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("a+b", false), "a+b");
        assert_eq!(percent_decode("bad%zz%", false), "bad%zz%");
        assert_eq!(percent_decode("%41", false), "A");
        // A sign is not a hex digit (found by fuzzing: `%+1` decoded to \x01).
        assert_eq!(percent_decode("%+1", false), "%+1");
        assert_eq!(percent_decode("%-1x", false), "%-1x");
        assert_eq!(
            query_pairs(Some("ref=main&environment=qa%20eu&x")),
            vec![
                ("ref".into(), "main".into()),
                ("environment".into(), "qa eu".into()),
                ("x".into(), "".into())
            ]
        );
        assert_eq!(
            segments("/repos/acme/api/branches/feature%2Fx"),
            vec!["repos", "acme", "api", "branches", "feature/x"]
        );
    }

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("token abc"));
        assert_eq!(bearer(&h).as_deref(), Some("abc"));
        h.insert("authorization", HeaderValue::from_static("Bearer xyz"));
        assert_eq!(bearer(&h).as_deref(), Some("xyz"));
        h.insert("authorization", HeaderValue::from_static("Basic xyz"));
        assert_eq!(bearer(&h), None);
    }
}
