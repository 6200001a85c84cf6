//! What a credential is and reaches: classic scopes (`X-OAuth-Scopes`, and GitHub's
//! 404 on a private repository a scope does not cover), fine-grained tokens, the
//! repositories a token sees, repository webhooks (admin only, secrets masked), and a
//! GitHub App's own settings (`GET /app`, `/app/installations/{id}`, `/app/hook/config`).

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sandbox::{Access, AppHook, RepoHook, TokenSpec};
use serde_json::json;

use crate::common::*;

const APP_KEY: &str = include_str!("keys/test-app.private-key.pem");
const APP_PUBLIC: &str = include_str!("keys/test-app.public.pem");

fn jwt(app_id: u64) -> String {
    let now = Utc::now().timestamp();
    let key = EncodingKey::from_rsa_pem(APP_KEY.as_bytes()).expect("test key");
    jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &json!({"iss": app_id.to_string(), "iat": now - 60, "exp": now + 9 * 60}),
        &key,
    )
    .expect("sign")
}

#[tokio::test]
async fn classic_tokens_name_their_scopes_and_fine_grained_ones_do_not() {
    let (sb, api) = setup().await;
    let me = api.get("/user").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["login"], "sandbox-user");
    assert_eq!(me.header("x-oauth-scopes"), Some("repo"));

    sb.add_token_with(
        "two",
        TokenSpec::classic(&["repo:status", "repo_deployment"]),
    );
    let me = api.with_token(Some("two")).get("/user").await;
    assert_eq!(
        me.header("x-oauth-scopes"),
        Some("repo:status, repo_deployment")
    );

    sb.add_token_with("fine", TokenSpec::fine_grained(Access::Full));
    let me = api.with_token(Some("fine")).get("/user").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.header("x-oauth-scopes"), None);
    // Any token's 401 says nothing about scopes.
    let bad = api.with_token(Some("nope")).get("/user").await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body["message"], "Bad credentials");
}

#[tokio::test]
async fn a_scope_that_does_not_cover_a_private_repository_reads_as_404() {
    let (sb, api) = setup().await;
    sb.add_token_with("deploy-only", TokenSpec::classic(&["repo_deployment"]));
    let t = api.with_token(Some("deploy-only"));
    // The deployments are covered…
    assert_eq!(t.get("/repos/acme/api/deployments").await.status, 200);
    // …the repository itself and its commit statuses are not.
    let repo = t.get("/repos/acme/api").await;
    assert_eq!(repo.status, 404, "{:#}", repo.body);
    assert_eq!(repo.body["message"], "Not Found");
    assert_eq!(repo.header("x-accepted-oauth-scopes"), Some("repo"));
    let status = t.get("/repos/acme/api/commits/main/status").await;
    assert_eq!(status.status, 404);
    assert_eq!(
        status.header("x-accepted-oauth-scopes"),
        Some("repo:status, repo")
    );
    assert_eq!(status.header("x-oauth-scopes"), Some("repo_deployment"));

    sb.add_token_with("status-only", TokenSpec::classic(&["repo:status"]));
    let t = api.with_token(Some("status-only"));
    assert_eq!(
        t.get("/repos/acme/api/commits/main/status").await.status,
        200
    );
    let created = t
        .post(
            "/repos/acme/api/deployments",
            json!({"ref": "main", "required_contexts": []}),
        )
        .await;
    assert_eq!(created.status, 404);
    assert_eq!(
        created.header("x-accepted-oauth-scopes"),
        Some("repo_deployment, repo")
    );
    assert!(sb.deployments("acme/api").is_empty());
}

#[tokio::test]
async fn a_token_sees_only_its_repositories() {
    let (sb, api) = setup().await;
    sb.create_repo("acme/web", "trunk");
    sb.add_token_with(
        "api-only",
        TokenSpec::classic(&["repo"]).repositories(&["ACME/api"]),
    );
    let t = api.with_token(Some("api-only"));
    assert_eq!(t.get("/repos/acme/api").await.status, 200);
    let web = t.get("/repos/acme/web").await;
    assert_eq!(web.status, 404);
    assert_eq!(web.body["message"], "Not Found");
    assert_eq!(t.get("/repos/acme/web/deployments").await.status, 404);
}

#[tokio::test]
async fn repository_permissions_follow_the_token() {
    let (sb, api) = setup().await;
    let full = api.get("/repos/acme/api").await;
    assert_eq!(
        full.body["permissions"],
        json!({"admin": true, "maintain": true, "push": true, "triage": true, "pull": true})
    );
    sb.add_token_with("reader", TokenSpec::fine_grained(Access::ReadOnly));
    let read = api.with_token(Some("reader")).get("/repos/acme/api").await;
    assert_eq!(read.body["permissions"]["push"], false);
    assert_eq!(read.body["permissions"]["admin"], false);
    assert_eq!(read.body["permissions"]["pull"], true);
}

#[tokio::test]
async fn webhooks_are_listed_to_admins_with_the_secret_masked() {
    let (sb, api) = setup().await;
    let id = sb.add_repo_hook(
        "acme/api",
        RepoHook::new("https://bot.example.com/webhook")
            .secret("s3cret")
            .content_type("form")
            .events(&["deployment_status"]),
    );
    sb.add_repo_hook("acme/api", RepoHook::new("https://other.example.com/x"));
    let hooks = api.get("/repos/acme/api/hooks").await;
    assert_eq!(hooks.status, 200, "{:#}", hooks.body);
    let list = hooks.body.as_array().expect("an array");
    assert_eq!(list.len(), 2);
    let h = &list[0];
    assert_eq!(h["id"], id);
    assert_eq!(h["type"], "Repository");
    assert_eq!(h["name"], "web");
    assert_eq!(h["active"], true);
    assert_eq!(h["events"], json!(["deployment_status"]));
    assert_eq!(
        h["config"],
        json!({"url": "https://bot.example.com/webhook", "content_type": "form", "insecure_ssl": "0", "secret": "********"})
    );
    assert_eq!(h["url"], format!("{}/repos/acme/api/hooks/{id}", sb.url()));
    assert!(list[1]["config"].get("secret").is_none());
    assert!(!hooks.body.to_string().contains("s3cret"));

    // Hooks made with add_webhook deliver for every repository, so every one lists them.
    sb.create_repo("acme/web", "trunk");
    sb.add_webhook("http://127.0.0.1:9/never", "k");
    let web = api.get("/repos/acme/web/hooks").await;
    assert_eq!(web.body[0]["config"]["url"], "http://127.0.0.1:9/never");
    assert_eq!(web.body[0]["config"]["secret"], "********");
    assert_eq!(
        web.body[0]["events"],
        json!(["deployment", "deployment_status"])
    );

    // Not an admin: a classic token does not see them (404); a fine-grained one is refused.
    sb.add_token_with("writer", TokenSpec::classic(&["repo"]));
    assert_eq!(
        api.with_token(Some("writer"))
            .get("/repos/acme/api/hooks")
            .await
            .status,
        404
    );
    sb.add_token_with("fine", TokenSpec::fine_grained(Access::Full));
    let fine = api
        .with_token(Some("fine"))
        .get("/repos/acme/api/hooks")
        .await;
    assert_eq!(fine.status, 403);
    assert_eq!(
        fine.body["message"],
        "Resource not accessible by personal access token"
    );
    // An admin without a hook scope: 404 naming the scopes that would do.
    sb.add_token_with(
        "admin-no-hook",
        TokenSpec::classic(&["repo_deployment"]).admin(true),
    );
    let r = api
        .with_token(Some("admin-no-hook"))
        .get("/repos/acme/api/hooks")
        .await;
    assert_eq!(r.status, 404);
    assert!(r
        .header("x-accepted-oauth-scopes")
        .is_some_and(|s| s.contains("read:repo_hook")));
}

#[tokio::test]
async fn an_app_sees_itself_its_installation_and_its_webhook_settings() {
    let (sb, api) = setup().await;
    sb.add_app(7, APP_PUBLIC);
    sb.add_installation(7, 42, Access::ReadOnly);
    let app = api.with_token(Some(&jwt(7)));

    let me = app.get("/app").await;
    assert_eq!(me.status, 200, "{:#}", me.body);
    assert_eq!(me.body["id"], 7);
    assert_eq!(me.body["slug"], "sandbox-app-7");
    assert_eq!(me.body["permissions"]["deployments"], "write");
    assert_eq!(me.body["installations_count"], 1);
    assert_eq!(me.body["owner"]["login"], "acme");

    let inst = app.get("/app/installations/42").await;
    assert_eq!(inst.status, 200, "{:#}", inst.body);
    assert_eq!(inst.body["id"], 42);
    assert_eq!(inst.body["app_id"], 7);
    assert_eq!(inst.body["permissions"]["deployments"], "read");
    assert_eq!(inst.body["permissions"]["metadata"], "read");
    assert_eq!(inst.body["repository_selection"], "all");
    assert_eq!(
        inst.body["access_tokens_url"],
        format!("{}/app/installations/42/access_tokens", sb.url())
    );
    assert_eq!(app.get("/app/installations/43").await.status, 404);

    // No webhook URL yet, then one with a secret (masked).
    let none = app.get("/app/hook/config").await;
    assert_eq!(none.body["url"], "");
    assert!(none.body.get("secret").is_none());
    sb.set_app_hook(
        7,
        AppHook::new("https://bot.example.com/webhook").secret("k"),
    );
    let hook = app.get("/app/hook/config").await;
    assert_eq!(
        hook.body,
        json!({"content_type": "json", "insecure_ssl": "0", "secret": "********", "url": "https://bot.example.com/webhook"})
    );

    // Without a valid JWT: GitHub's 401.
    let refused = api.with_token(Some("not-a-jwt")).get("/app").await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.body["message"],
        "A JSON web token could not be decoded"
    );
}
