//! The sandbox's JSON has every key of GitHub's own examples (fixtures/github).

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn fixtures_parse_and_the_comparator_finds_missing_keys() {
    let f = fixture("rest/deployments/create-deployment.201.openapi.json");
    assert!(missing_keys(&f, &f).is_empty());
    let mut partial = f.clone();
    partial.as_object_mut().unwrap().remove("sha");
    partial["creator"].as_object_mut().unwrap().remove("login");
    let mut missing = missing_keys(&f, &partial);
    missing.sort();
    assert_eq!(
        missing,
        vec!["/creator/login".to_string(), "/sha".to_string()]
    );
}

#[tokio::test]
async fn deployment_json_has_every_key_of_githubs() {
    let (_sb, api) = setup().await;
    let created = api
        .post(
            "/repos/acme/api/deployments",
            json!({"ref": "main", "description": "d"}),
        )
        .await;
    assert_eq!(created.status, 201);
    assert_has_keys_of(
        "rest/deployments/create-deployment.201.openapi.json",
        &created.body,
    );
    let id = created.body["id"].as_u64().unwrap();
    let got = api.get(&format!("/repos/acme/api/deployments/{id}")).await;
    assert_has_keys_of(
        "rest/deployments/get-deployment.200.openapi.json",
        &got.body,
    );
    let list = api.get("/repos/acme/api/deployments").await;
    assert_has_keys_of(
        "rest/deployments/list-deployments.200.openapi.json",
        &list.body,
    );
    assert_eq!(list.body[0], got.body);
}

#[tokio::test]
async fn deployment_status_json_has_every_key_of_githubs() {
    let (_sb, api) = setup().await;
    let d = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    let id = d.body["id"].as_u64().unwrap();
    let request = fixture("rest/deployment-statuses/create-deployment-status.request.openapi.json");
    let s = api
        .post(
            &format!("/repos/acme/api/deployments/{id}/statuses"),
            request,
        )
        .await;
    assert_eq!(s.status, 201, "{:#}", s.body);
    assert_has_keys_of(
        "rest/deployment-statuses/create-deployment-status.201.openapi.json",
        &s.body,
    );
    assert_has_keys_of(
        "rest/deployment-statuses/create-deployment-status.201.recorded.github3py.json",
        &s.body,
    );
    let list = api
        .get(&format!("/repos/acme/api/deployments/{id}/statuses"))
        .await;
    assert_has_keys_of(
        "rest/deployment-statuses/list-deployment-statuses.200.openapi.json",
        &list.body,
    );
}

#[tokio::test]
async fn repository_json_has_every_key_of_githubs() {
    let (_sb, api) = setup().await;
    let repo = api.get("/repos/acme/api").await;
    assert_eq!(repo.status, 200);
    // The repository objects GitHub embeds in a combined status and in webhooks.
    let combined = fixture("rest/statuses/get-combined-status.200.openapi.json");
    assert!(missing_keys(&combined["repository"], &repo.body).is_empty());
    let hook = fixture("webhooks/deployment/created.octokit-webhooks.json");
    assert_eq!(
        missing_keys(&hook["repository"], &repo.body),
        Vec::<String>::new()
    );
    assert_eq!(repo.body["full_name"], "acme/api");
    assert_eq!(repo.body["default_branch"], "main");
    assert_eq!(repo.body["html_url"], format!("{}/acme/api", api.base));
    assert_eq!(
        repo.body["deployments_url"],
        format!("{}/repos/acme/api/deployments", api.base)
    );
}

#[tokio::test]
async fn combined_status_and_check_runs_have_every_key_of_githubs() {
    let (sb, api) = setup().await;
    sb.set_status("acme/api", "main", "ci/build", "success");
    sb.set_check_run("acme/api", "main", "lint", "completed", Some("success"));
    let combined = api.get("/repos/acme/api/commits/main/status").await;
    assert_has_keys_of(
        "rest/statuses/get-combined-status.200.openapi.json",
        &combined.body,
    );
    assert_has_keys_of(
        "rest/statuses/get-combined-status.200-failure.recorded.octokit-fixtures.json",
        &combined.body,
    );
    let runs = api.get("/repos/acme/api/commits/main/check-runs").await;
    assert_has_keys_of(
        "rest/checks/list-check-runs-for-ref.200.openapi.json",
        &runs.body,
    );
    assert_has_keys_of(
        "rest/checks/list-check-runs-for-ref.200-queued.recorded.github3py.json",
        &runs.body,
    );
}

#[tokio::test]
async fn rate_limit_and_errors_have_githubs_keys() {
    let (_sb, api) = setup().await;
    let rl = api.get("/rate_limit").await;
    assert_has_keys_of("rest/rate-limit/get-rate-limit.200.openapi.json", &rl.body);
    let bad = api.with_token(Some("nope")).get("/repos/acme/api").await;
    assert_has_keys_of(
        "rest/errors/bad-credentials.401.hubot-deploy.json",
        &bad.body,
    );
    let invalid = api
        .post("/repos/acme/api/deployments", json!({"ref": "nope"}))
        .await;
    for key in fixture("rest/errors/validation-error.schema.openapi.json")["required"]
        .as_array()
        .unwrap()
    {
        assert!(
            invalid.body.get(key.as_str().unwrap()).is_some(),
            "422 lacks {key}"
        );
    }
    assert_has_keys_of(
        "rest/deployments/create-deployment.202-auto-merged.openapi.json",
        &json!({"message": ""}),
    );
}

#[tokio::test]
async fn webhook_bodies_have_every_key_of_githubs() {
    let (sb, api) = setup().await;
    let rx = Receiver::start().await;
    sb.add_webhook(&rx.url, "s3cret");
    let d = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    let id = d.body["id"].as_u64().unwrap();
    api.post(
        &format!("/repos/acme/api/deployments/{id}/statuses"),
        json!({"state": "success"}),
    )
    .await;
    assert!(
        poll(WAIT, || rx.events().len() == 3).await,
        "got {:?}",
        rx.events()
    );

    let deployment = rx.of("deployment")[0].json();
    assert_has_keys_of(
        "webhooks/deployment/created.octokit-webhooks.json",
        &deployment,
    );
    assert_eq!(deployment["deployment"], d.body);
    let status = rx.of("deployment_status")[0].json();
    assert_has_keys_of(
        "webhooks/deployment_status/created.success.octokit-webhooks.json",
        &status,
    );
    assert_eq!(status["deployment_status"]["state"], "success");

    let ping = rx.of("ping")[0].json();
    let fixture_ping = fixture("webhooks/ping/repository.octokit-webhooks.json");
    assert!(missing_keys(&fixture_ping["hook"], &ping["hook"]).is_empty());
    assert!(ping["zen"].is_string() && ping["hook_id"].is_u64());
}

#[tokio::test]
async fn check_webhooks_have_every_key_of_githubs() {
    let (sb, api) = setup().await;
    let rx = Receiver::start().await;
    sb.add_webhook(&rx.url, "s3cret");
    let sha = sb.resolve("acme/api", "main").unwrap();
    // Over REST and through the seeding API alike.
    api.post(
        &format!("/repos/acme/api/statuses/{sha}"),
        json!({"state": "pending", "context": "ci/build"}),
    )
    .await;
    sb.set_check_run("acme/api", "main", "e2e", "in_progress", None);
    sb.set_check_run("acme/api", "main", "e2e", "completed", Some("success"));
    assert!(
        poll(WAIT, || rx.events().len() == 5).await,
        "got {:?}",
        rx.events()
    );
    assert_eq!(
        rx.events(),
        ["ping", "status", "check_run", "check_run", "check_suite"]
    );

    let status = rx.of("status")[0].json();
    assert_has_keys_of("webhooks/status/success.octokit-webhooks.json", &status);
    assert_eq!(status["sha"], sha.as_str());
    assert_eq!(status["state"], "pending");
    assert_eq!(status["branches"][0]["name"], "main");

    let runs = rx.of("check_run");
    let created = runs[0].json();
    assert_eq!(created["action"], "created");
    let completed = runs[1].json();
    assert_has_keys_of(
        "webhooks/check_run/completed.success.octokit-webhooks.json",
        &completed,
    );
    assert_eq!(completed["check_run"]["head_sha"], sha.as_str());
    assert_eq!(completed["check_run"]["conclusion"], "success");

    let suite = rx.of("check_suite")[0].json();
    assert_has_keys_of(
        "webhooks/check_suite/completed.success.octokit-webhooks.json",
        &suite,
    );
    assert_eq!(suite["check_suite"]["head_sha"], sha.as_str());
}
