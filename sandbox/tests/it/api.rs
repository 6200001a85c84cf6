//! Auth, rate budget, conditional requests, repository/branch/commit/compare endpoints,
//! request recording and the web pages.

use sandbox::Access;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn authentication() {
    let (sb, api) = setup().await;
    let none = api.with_token(None).get("/repos/acme/api").await;
    assert_eq!(none.status, 401);
    assert_eq!(none.body["message"], "Requires authentication");
    let bad = api.with_token(Some("wrong")).get("/repos/acme/api").await;
    assert_eq!(bad.status, 401);
    assert_eq!(
        bad.body,
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"})
    );
    assert_eq!(
        bad.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    let token_scheme = api.send("GET", "/repos/acme/api", None, &[]).await;
    assert_eq!(token_scheme.status, 200);
    let classic = api
        .with_token(None)
        .send(
            "GET",
            "/repos/acme/api",
            None,
            &[("authorization", "token sandbox-token")],
        )
        .await;
    assert_eq!(classic.status, 200);

    sb.add_token("reader", Access::ReadOnly);
    let reader = api.with_token(Some("reader"));
    assert_eq!(reader.get("/repos/acme/api/deployments").await.status, 200);
    let write = reader
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert_eq!(write.status, 403);
    assert_eq!(
        write.body["message"],
        "Resource not accessible by personal access token"
    );
    assert_eq!(
        write.header("x-accepted-github-permissions"),
        Some("deployments=write")
    );
    assert!(sb.deployments("acme/api").is_empty());
    let status = reader
        .post(
            &format!(
                "/repos/acme/api/statuses/{}",
                sb.resolve("acme/api", "main").unwrap()
            ),
            json!({"state": "success"}),
        )
        .await;
    assert_eq!(
        (
            status.status,
            status.header("x-accepted-github-permissions")
        ),
        (403, Some("statuses=write"))
    );
    assert_eq!(
        reader.get("/repos/acme/api").await.body["permissions"]["push"],
        false
    );

    sb.add_token("writer", Access::Full);
    assert_eq!(
        api.with_token(Some("writer"))
            .post("/repos/acme/api/deployments", json!({"ref": "main"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn not_found() {
    let (_sb, api) = setup().await;
    let r = api.get("/repos/acme/nope").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["message"], "Not Found");
    assert!(r.body["documentation_url"]
        .as_str()
        .unwrap()
        .starts_with("https://docs.github.com/rest"));
    assert_eq!(
        api.post("/repos/acme/nope/deployments", json!({"ref": "main"}))
            .await
            .status,
        404
    );
    assert_eq!(api.get("/repos/acme/api/nonsense").await.status, 404);
    assert_eq!(
        api.send("DELETE", "/repos/acme/api", None, &[])
            .await
            .status,
        404
    );
    // Owner and name are case-insensitive, as on GitHub.
    assert_eq!(api.get("/repos/ACME/Api").await.status, 200);
}

#[tokio::test]
async fn rate_limit_headers_and_budget() {
    let (sb, api) = setup().await;
    let a = api.get("/repos/acme/api").await;
    for h in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-used",
        "x-ratelimit-reset",
        "x-ratelimit-resource",
        "x-github-request-id",
    ] {
        assert!(a.header(h).is_some(), "missing {h}");
    }
    assert_eq!(a.header("x-ratelimit-limit"), Some("5000"));
    assert_eq!(a.remaining(), 4999);
    let b = api
        .post("/repos/acme/api/deployments", json!({"ref": "nope"}))
        .await;
    assert_eq!(b.remaining(), 4998, "errors cost too");
    assert_ne!(
        a.header("x-github-request-id"),
        b.header("x-github-request-id")
    );

    let rl = api.get("/rate_limit").await;
    assert_eq!(rl.body["resources"]["core"]["remaining"], 4998);
    assert_eq!(rl.body["rate"]["used"], 2);
    assert_eq!(
        api.get("/rate_limit").await.body["rate"]["remaining"],
        4998,
        "/rate_limit is free"
    );

    sb.add_token("other", Access::Full);
    assert_eq!(
        api.with_token(Some("other"))
            .get("/repos/acme/api")
            .await
            .remaining(),
        4999,
        "budgets are per token"
    );
    let reset: i64 = a.header("x-ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(reset > now && reset <= now + 3600);
}

#[tokio::test]
async fn etag_304_costs_nothing() {
    let (sb, api) = setup().await;
    let first = api.get("/repos/acme/api/deployments").await;
    let etag = first.header("etag").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "a strong ETag: {etag}"
    );
    let before = first.remaining();

    let cached = api
        .send(
            "GET",
            "/repos/acme/api/deployments",
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(cached.status, 304);
    assert_eq!(cached.body, serde_json::Value::Null);
    assert_eq!(cached.remaining(), before, "a 304 does not count");
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    let weak = format!("W/{etag}");
    assert_eq!(
        api.send(
            "GET",
            "/repos/acme/api/deployments",
            None,
            &[("if-none-match", &weak)]
        )
        .await
        .status,
        304
    );

    api.post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    let changed = api
        .send(
            "GET",
            "/repos/acme/api/deployments",
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!(changed.status, 200);
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    assert_eq!(changed.remaining(), before - 2, "the POST and this GET");
    assert_eq!(
        sb.requests()
            .iter()
            .filter(|r| r.header("if-none-match").is_some())
            .count(),
        3
    );
}

#[tokio::test]
async fn branches_commits_and_statuses() {
    let (sb, api) = setup().await;
    let root = sb.resolve("acme/api", "main").unwrap();
    for b in ["a", "b", "c"] {
        sb.create_branch("acme/api", b, "main");
    }
    sb.create_branch("acme/api", "feature/x", "main");
    let next = sb.commit("acme/api", "feature/x", "work");

    let all = api.get("/repos/acme/api/branches").await.body;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["a", "b", "c", "feature/x", "main"]);
    assert_eq!(all[0]["commit"]["sha"], root.as_str());
    assert_eq!(all[0]["protected"], false);
    let page = api.get("/repos/acme/api/branches?per_page=2&page=3").await;
    assert_eq!(page.body[0]["name"], "main");

    let one = api.get("/repos/acme/api/branches/feature/x").await;
    assert_eq!(one.body["commit"]["sha"], next.as_str());
    assert_eq!(
        api.get("/repos/acme/api/branches/feature%2Fx").await.body["name"],
        "feature/x"
    );
    let missing = api.get("/repos/acme/api/branches/nope").await;
    assert_eq!(
        (missing.status, missing.body["message"].as_str()),
        (404, Some("Branch not found"))
    );

    let c = api.get("/repos/acme/api/commits/feature/x").await.body;
    assert_eq!(c["sha"], next.as_str());
    assert_eq!(c["commit"]["message"], "work");
    assert_eq!(c["parents"][0]["sha"], root.as_str());
    assert_eq!(
        c["html_url"],
        format!("{}/acme/api/commit/{next}", api.base)
    );
    assert!(c["commit"]["author"]["name"].is_string() && c["commit"]["author"]["date"].is_string());
    let unknown = api.get("/repos/acme/api/commits/nope").await;
    assert_eq!(
        (unknown.status, unknown.body["message"].as_str()),
        (422, Some("No commit found for SHA: nope"))
    );

    let pending = api.get("/repos/acme/api/commits/main/status").await.body;
    assert_eq!(
        (pending["state"].as_str(), pending["total_count"].as_u64()),
        (Some("pending"), Some(0))
    );

    let created = api
        .post(&format!("/repos/acme/api/statuses/{root}"), json!({"state": "success", "context": "ci/build", "target_url": "https://ci.example.test/1", "description": "ok"}))
        .await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    assert_eq!(created.body["context"], "ci/build");
    api.post(
        &format!("/repos/acme/api/statuses/{root}"),
        json!({"state": "pending"}),
    )
    .await;
    let combined = api.get("/repos/acme/api/commits/main/status").await.body;
    assert_eq!(combined["state"], "pending");
    assert_eq!(combined["total_count"], 2);
    assert_eq!(combined["sha"], root.as_str());
    api.post(
        &format!("/repos/acme/api/statuses/{root}"),
        json!({"state": "failure", "context": "default"}),
    )
    .await;
    let combined = api.get("/repos/acme/api/commits/main/status").await.body;
    assert_eq!(
        (combined["state"].as_str(), combined["total_count"].as_u64()),
        (Some("failure"), Some(2))
    );
    let history = api.get("/repos/acme/api/commits/main/statuses").await.body;
    assert_eq!(history.as_array().unwrap().len(), 3);
    assert_eq!(history[0]["state"], "failure", "newest first");

    let bad = api
        .post(
            &format!("/repos/acme/api/statuses/{root}"),
            json!({"state": "green"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    let nowhere = api
        .post(
            "/repos/acme/api/statuses/0000000000000000000000000000000000000000",
            json!({"state": "success"}),
        )
        .await;
    assert_eq!(nowhere.status, 422);

    sb.set_check_run("acme/api", "main", "lint", "completed", Some("failure"));
    sb.set_check_run("acme/api", "main", "lint", "completed", Some("success"));
    sb.set_check_run("acme/api", "main", "e2e", "queued", None);
    let runs = api
        .get("/repos/acme/api/commits/main/check-runs")
        .await
        .body;
    assert_eq!(runs["total_count"], 2, "the latest run per name");
    let all = api
        .get("/repos/acme/api/commits/main/check-runs?filter=all")
        .await
        .body;
    assert_eq!(all["total_count"], 3);
    let lint = api
        .get("/repos/acme/api/commits/main/check-runs?check_name=lint")
        .await
        .body;
    assert_eq!(
        (
            lint["check_runs"][0]["conclusion"].as_str(),
            lint["check_runs"][0]["status"].as_str()
        ),
        (Some("success"), Some("completed"))
    );
    let e2e = api
        .get("/repos/acme/api/commits/main/check-runs?status=queued")
        .await
        .body;
    assert_eq!(e2e["check_runs"][0]["conclusion"], serde_json::Value::Null);
}

#[tokio::test]
async fn compare_ahead_behind_diverged_identical() {
    let (sb, api) = setup().await;
    let root = sb.resolve("acme/api", "main").unwrap();
    let t1 = sb.commit("acme/api", "topic", "t1");
    let t2 = sb.commit("acme/api", "topic", "t2");

    let ahead = api.get("/repos/acme/api/compare/main...topic").await.body;
    assert_eq!(ahead["status"], "ahead");
    assert_eq!(
        (
            ahead["ahead_by"].as_u64(),
            ahead["behind_by"].as_u64(),
            ahead["total_commits"].as_u64()
        ),
        (Some(2), Some(0), Some(2))
    );
    let shas: Vec<&str> = ahead["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["sha"].as_str().unwrap())
        .collect();
    assert_eq!(shas, vec![t1.as_str(), t2.as_str()], "oldest first");
    assert_eq!(ahead["commits"][0]["commit"]["message"], "t1");
    assert_eq!(ahead["base_commit"]["sha"], root.as_str());
    assert_eq!(ahead["merge_base_commit"]["sha"], root.as_str());
    assert_eq!(
        ahead["html_url"],
        format!("{}/acme/api/compare/main...topic", api.base)
    );
    assert!(ahead["permalink_url"]
        .as_str()
        .unwrap()
        .contains(&root[..7]));

    let behind = api.get("/repos/acme/api/compare/topic...main").await.body;
    assert_eq!(
        (
            behind["status"].as_str(),
            behind["behind_by"].as_u64(),
            behind["ahead_by"].as_u64()
        ),
        (Some("behind"), Some(2), Some(0))
    );
    assert_eq!(behind["commits"], json!([]));

    let same = api
        .get(&format!("/repos/acme/api/compare/topic...{t2}"))
        .await
        .body;
    assert_eq!(same["status"], "identical");

    sb.commit("acme/api", "main", "m1");
    let diverged = api.get("/repos/acme/api/compare/main...topic").await.body;
    assert_eq!(
        (
            diverged["status"].as_str(),
            diverged["ahead_by"].as_u64(),
            diverged["behind_by"].as_u64()
        ),
        (Some("diverged"), Some(2), Some(1))
    );
    assert_eq!(diverged["merge_base_commit"]["sha"], root.as_str());

    assert_eq!(
        api.get("/repos/acme/api/compare/main...nope").await.status,
        404
    );
    assert_eq!(api.get("/repos/acme/api/compare/main").await.status, 404);
}

#[tokio::test]
async fn requests_are_recorded_in_order() {
    let (sb, api) = setup().await;
    api.get("/repos/acme/api?x=1").await;
    api.post(
        "/repos/acme/api/deployments",
        json!({"ref": "main", "payload": {"a": 1}}),
    )
    .await;
    let reqs = sb.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        (
            reqs[0].method.as_str(),
            reqs[0].path.as_str(),
            reqs[0].query.as_deref()
        ),
        ("GET", "/repos/acme/api", Some("x=1"))
    );
    assert_eq!(
        reqs[0].header("Authorization"),
        Some("Bearer sandbox-token")
    );
    assert!(reqs[0].headers.iter().all(|(k, _)| *k == k.to_lowercase()));
    assert_eq!(reqs[1].body.as_ref().unwrap()["payload"]["a"], 1);
    assert_eq!(reqs[0].body, None);
    sb.clear_requests();
    assert!(sb.requests().is_empty());
}

#[tokio::test]
async fn seeding_api() {
    let (sb, _api) = setup().await;
    let root = sb.resolve("acme/api", "main").unwrap();
    assert_eq!(root.len(), 40);
    assert!(root.chars().all(|c| c.is_ascii_hexdigit()));
    let b = sb.create_branch("acme/api", "release", &root[..8]);
    assert_eq!(b, root);
    let t = sb.create_tag("acme/api", "v1", "release");
    assert_eq!(t, root);
    assert_eq!(sb.resolve("acme/api", "v1").as_deref(), Some(root.as_str()));
    assert_eq!(sb.resolve("acme/api", "nope"), None);
    assert_eq!(sb.resolve("acme/nope", "main"), None);
    assert!(sb.deployments("acme/nope").is_empty());
    let seeded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sb.commit("acme/nope", "main", "x")
    }));
    assert!(
        seeded.is_err(),
        "seeding an unknown repository is a test bug and panics"
    );
}

#[tokio::test]
async fn web_pages_for_printed_links() {
    let (sb, api) = setup().await;
    sb.set_deployer(sandbox::Deployer::auto(std::time::Duration::from_millis(1)));
    let d = api
        .post(
            "/repos/acme/api/deployments",
            json!({"ref": "main", "environment": "staging"}),
        )
        .await
        .body;
    let id = d["id"].as_u64().unwrap();
    assert!(poll(WAIT, || sb.deployment_statuses("acme/api", id).len() == 3).await);
    let log_url = sb.deployment_statuses("acme/api", id)[0]["log_url"]
        .as_str()
        .unwrap()
        .to_string();

    let page = reqwest::get(format!("{}/acme/api", api.base))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!("#{id}")) && html.contains("staging") && html.contains("success"),
        "{html}"
    );
    assert_eq!(
        reqwest::get(format!("{}/acme/api/deployments", api.base))
            .await
            .unwrap()
            .status(),
        200
    );

    let log = reqwest::get(&log_url).await.unwrap();
    assert_eq!(log.status(), 200);
    let text = log.text().await.unwrap();
    assert!(
        text.contains("in_progress: Deploying main to staging"),
        "{text}"
    );
    let commit = reqwest::get(
        d["sha"]
            .as_str()
            .map(|s| format!("{}/acme/api/commit/{s}", api.base))
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(commit.status(), 200);
    assert_eq!(
        reqwest::get(format!("{}/acme/nope", api.base))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        reqwest::get(format!("{}/acme/api/actions/runs/999", api.base))
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn an_exhausted_budget_is_a_403_until_reset() {
    let (sb, api) = setup().await;
    sb.add_token("busy", Access::Full);
    let busy = api.with_token(Some("busy"));
    sb.set_rate_limit_remaining("busy", 2);
    assert_eq!(busy.get("/repos/acme/api").await.remaining(), 1);
    let last = busy.send("HEAD", "/repos/acme/api", None, &[]).await;
    assert_eq!((last.status, last.remaining()), (200, 0));
    let over = busy.get("/repos/acme/api").await;
    assert_eq!(over.status, 403);
    assert!(over.body["message"]
        .as_str()
        .unwrap()
        .starts_with("API rate limit exceeded"));
    assert_eq!(
        (
            over.header("x-ratelimit-remaining"),
            over.header("x-ratelimit-used")
        ),
        (Some("0"), Some("5000"))
    );
    assert!(over.header("x-ratelimit-reset").is_some());
    assert_eq!(
        busy.get("/rate_limit").await.body["rate"]["remaining"],
        0,
        "/rate_limit still answers"
    );
    assert_eq!(
        api.get("/repos/acme/api").await.status,
        200,
        "other tokens are unaffected"
    );
}
