//! POST/GET deployments and deployment statuses with GitHub's rules.

use serde_json::{json, Value};

use crate::common::*;

const DOC: &str = "https://docs.github.com/rest/deployments/deployments#create-a-deployment";

async fn deploy(api: &Api, body: Value) -> Resp {
    api.post("/repos/acme/api/deployments", body).await
}

#[tokio::test]
async fn defaults_payload_echo_and_location() {
    let (sb, api) = setup().await;
    let head = sb.resolve("acme/api", "main").unwrap();
    let r = deploy(&api, json!({"ref": "main"})).await;
    assert_eq!(r.status, 201);
    let d = &r.body;
    assert_eq!(d["sha"], head.as_str());
    assert_eq!(
        (d["ref"].as_str(), d["task"].as_str()),
        (Some("main"), Some("deploy"))
    );
    assert_eq!(
        (
            d["environment"].as_str(),
            d["original_environment"].as_str()
        ),
        (Some("production"), Some("production"))
    );
    assert_eq!(d["payload"], json!({}));
    assert_eq!(d["description"], Value::Null);
    assert_eq!(
        (
            d["production_environment"].as_bool(),
            d["transient_environment"].as_bool()
        ),
        (Some(true), Some(false))
    );
    assert_eq!(d["performed_via_github_app"], Value::Null);
    assert_eq!(d["creator"]["login"], "sandbox-user");
    assert_eq!(r.header("location"), d["url"].as_str());
    assert_eq!(
        d["url"],
        format!("{}/repos/acme/api/deployments/{}", api.base, d["id"])
    );

    let s = deploy(&api, json!({"ref": "main", "environment": "staging", "payload": "{ \"deploy\": \"migrate\" }", "task": "deploy:migrate", "transient_environment": true, "description": "hi"})).await;
    assert_eq!(s.status, 201);
    assert_eq!(
        s.body["payload"], "{ \"deploy\": \"migrate\" }",
        "a string payload is echoed as given"
    );
    assert_eq!(s.body["production_environment"], false);
    assert_eq!(s.body["transient_environment"], true);
    assert_eq!(s.body["task"], "deploy:migrate");
    assert!(s.body["id"].as_u64() > d["id"].as_u64());

    let o = deploy(&api, json!({"ref": "main", "payload": {"deploybot": {"request_id": "r1"}}, "environment": "staging", "production_environment": true})).await;
    assert_eq!(o.body["payload"]["deploybot"]["request_id"], "r1");
    assert_eq!(o.body["production_environment"], true);
    assert_eq!(sb.deployments("acme/api")[0], o.body);
}

#[tokio::test]
async fn ids_increase_across_repositories() {
    let (sb, api) = setup().await;
    sb.create_repo("acme/web", "trunk");
    let a = deploy(&api, json!({"ref": "main"})).await.body["id"]
        .as_u64()
        .unwrap();
    let b = api
        .post("/repos/acme/web/deployments", json!({"ref": "trunk"}))
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    let c = deploy(&api, json!({"ref": "main"})).await.body["id"]
        .as_u64()
        .unwrap();
    assert!(a < b && b < c);
}

#[tokio::test]
async fn required_contexts_absent_means_every_context() {
    let (sb, api) = setup().await;
    sb.set_status("acme/api", "main", "ci/build", "failure");
    sb.set_status("acme/api", "main", "security", "success");
    sb.set_check_run("acme/api", "main", "e2e", "in_progress", None);
    sb.set_check_run("acme/api", "main", "lint", "completed", Some("skipped"));
    let r = deploy(&api, json!({"ref": "main"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body,
        json!({
            "message": "Conflict: Commit status checks failed for main.",
            "errors": [{
                "contexts": [
                    {"context": "ci/build", "state": "failure"},
                    {"context": "e2e", "state": "pending"},
                    {"context": "lint", "state": "success"},
                    {"context": "security", "state": "success"},
                ],
                "resource": "Deployment",
                "field": "required_contexts",
                "code": "invalid",
            }],
            "documentation_url": DOC,
            "status": "409",
        })
    );
    assert!(sb.deployments("acme/api").is_empty());

    // The latest status per context counts.
    sb.set_status("acme/api", "main", "ci/build", "success");
    sb.set_check_run("acme/api", "main", "e2e", "completed", Some("success"));
    assert_eq!(deploy(&api, json!({"ref": "main"})).await.status, 201);
}

#[tokio::test]
async fn required_contexts_list_and_empty() {
    let (sb, api) = setup().await;
    sb.set_status("acme/api", "main", "ci/build", "success");
    sb.set_status("acme/api", "main", "flaky", "error");
    sb.set_check_run("acme/api", "main", "lint", "completed", Some("failure"));

    let listed = deploy(
        &api,
        json!({"ref": "main", "required_contexts": ["ci/build"]}),
    )
    .await;
    assert_eq!(listed.status, 201, "{:#}", listed.body);

    let failing = deploy(
        &api,
        json!({"ref": "main", "required_contexts": ["ci/build", "lint", "ci/deploy"]}),
    )
    .await;
    assert_eq!(failing.status, 409);
    assert_eq!(
        failing.body["errors"][0]["contexts"],
        json!([
            {"context": "ci/build", "state": "success"},
            {"context": "lint", "state": "failure"},
            {"context": "ci/deploy", "state": "pending"},
        ]),
        "only the listed contexts are verified; one with no status at all is pending"
    );

    let forced = deploy(&api, json!({"ref": "main", "required_contexts": []})).await;
    assert_eq!(forced.status, 201);
}

#[tokio::test]
async fn statuses_follow_the_ref_to_its_sha() {
    let (sb, api) = setup().await;
    sb.set_status("acme/api", "main", "ci/build", "failure");
    sb.commit("acme/api", "main", "fix");
    // The failure was on the previous commit; the new head has no context at all.
    assert_eq!(deploy(&api, json!({"ref": "main"})).await.status, 201);
    let r = deploy(
        &api,
        json!({"ref": "main", "required_contexts": ["ci/build"]}),
    )
    .await;
    assert_eq!(r.body["errors"][0]["contexts"][0]["state"], "pending");
}

#[tokio::test]
async fn auto_merge_answers_202_then_201() {
    let (sb, api) = setup().await;
    let topic = sb.commit("acme/api", "topic", "feature");
    let main = sb.commit("acme/api", "main", "hotfix");
    let r = deploy(&api, json!({"ref": "topic", "environment": "staging"})).await;
    assert_eq!(r.status, 202);
    assert_eq!(
        r.body,
        json!({"message": "Auto-merged main into topic on deployment."})
    );
    assert!(
        sb.deployments("acme/api").is_empty(),
        "a 202 creates no deployment"
    );

    let head = api.get("/repos/acme/api/commits/topic").await;
    let parents: Vec<&str> = head.body["parents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["sha"].as_str().unwrap())
        .collect();
    assert_eq!(parents, vec![topic.as_str(), main.as_str()]);
    assert_eq!(
        head.body["commit"]["message"],
        "Auto-merged main into topic on deployment."
    );

    let again = deploy(&api, json!({"ref": "topic", "environment": "staging"})).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["sha"], head.body["sha"]);
}

#[tokio::test]
async fn auto_merge_false_deploys_a_branch_that_is_behind() {
    let (sb, api) = setup().await;
    let topic = sb.commit("acme/api", "topic", "feature");
    sb.commit("acme/api", "main", "hotfix");
    let r = deploy(&api, json!({"ref": "topic", "auto_merge": false})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["sha"], topic.as_str());
}

#[tokio::test]
async fn merge_conflict_is_a_409() {
    let (sb, api) = setup().await;
    sb.commit("acme/api", "topic", "feature");
    sb.commit("acme/api", "main", "hotfix");
    sb.set_merge_conflict("acme/api", "topic", true);
    let r = deploy(&api, json!({"ref": "topic"})).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["message"], "Conflict merging main into topic.");
    assert!(r.body.get("errors").is_none());
    sb.set_merge_conflict("acme/api", "topic", false);
    assert_eq!(deploy(&api, json!({"ref": "topic"})).await.status, 202);
}

#[tokio::test]
async fn unknown_ref_and_validation_errors() {
    let (_sb, api) = setup().await;
    let r = deploy(&api, json!({"ref": "nope"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.body,
        json!({"message": "No ref found for: nope", "documentation_url": DOC, "status": "422"})
    );

    let missing = deploy(&api, json!({"environment": "staging"})).await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.body["message"],
        "Invalid request.\n\n\"ref\" wasn't supplied."
    );

    let bad = deploy(&api, json!({"ref": "main", "auto_merge": "yes"})).await;
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.body["message"],
        "Invalid request.\n\nFor 'properties/auto_merge', \"yes\" is not a boolean."
    );

    let null_contexts = deploy(&api, json!({"ref": "main", "required_contexts": null})).await;
    assert_eq!(null_contexts.status, 422);
    assert!(null_contexts.body["message"]
        .as_str()
        .unwrap()
        .contains("nil is not an array"));

    let payload = deploy(&api, json!({"ref": "main", "payload": 5})).await;
    assert_eq!(payload.status, 422);

    let not_json = api
        .send(
            "POST",
            "/repos/acme/api/deployments",
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(not_json.status, 422, "an empty body has no ref");
    let garbage = api
        .client
        .post(format!("{}/repos/acme/api/deployments", api.base))
        .bearer_auth(api.token.as_deref().unwrap())
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);
    let body: Value = garbage.json().await.unwrap();
    assert_eq!(body["message"], "Problems parsing JSON");
}

#[tokio::test]
async fn tags_and_short_shas_deploy() {
    let (sb, api) = setup().await;
    let sha = sb.commit("acme/api", "main", "release");
    sb.create_tag("acme/api", "v1.0.0", "main");
    let t = deploy(&api, json!({"ref": "v1.0.0"})).await;
    assert_eq!(
        (t.status, t.body["sha"].as_str()),
        (201, Some(sha.as_str()))
    );
    let s = deploy(&api, json!({"ref": &sha[..7]})).await;
    assert_eq!(
        (s.status, s.body["sha"].as_str(), s.body["ref"].as_str()),
        (201, Some(sha.as_str()), Some(&sha[..7]))
    );
}

#[tokio::test]
async fn list_filters_and_pagination() {
    let (sb, api) = setup().await;
    let first = sb.resolve("acme/api", "main").unwrap();
    for (env, task) in [
        ("staging", "deploy"),
        ("production", "deploy"),
        ("staging", "deploy:migrate"),
        ("staging", "deploy"),
    ] {
        assert_eq!(
            deploy(
                &api,
                json!({"ref": "main", "environment": env, "task": task})
            )
            .await
            .status,
            201
        );
    }
    let second = sb.commit("acme/api", "main", "next");
    deploy(&api, json!({"ref": "main", "environment": "staging"})).await;

    let all = api.get("/repos/acme/api/deployments").await;
    let ids: Vec<u64> = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![5, 4, 3, 2, 1], "newest first");
    assert!(all.header("link").is_none());

    let staging = api
        .get("/repos/acme/api/deployments?environment=staging")
        .await;
    assert_eq!(staging.body.as_array().unwrap().len(), 4);
    let migrate = api
        .get("/repos/acme/api/deployments?task=deploy:migrate")
        .await;
    assert_eq!(migrate.body.as_array().unwrap().len(), 1);
    let by_sha = api
        .get(&format!("/repos/acme/api/deployments?sha={second}"))
        .await;
    assert_eq!(by_sha.body.as_array().unwrap().len(), 1);
    let by_first = api
        .get(&format!(
            "/repos/acme/api/deployments?sha={first}&environment=staging"
        ))
        .await;
    assert_eq!(by_first.body.as_array().unwrap().len(), 3);
    let by_ref = api.get("/repos/acme/api/deployments?ref=nope").await;
    assert_eq!(by_ref.body, json!([]));

    let p1 = api
        .get("/repos/acme/api/deployments?environment=staging&per_page=3")
        .await;
    assert_eq!(p1.body.as_array().unwrap().len(), 3);
    let link = p1.header("link").unwrap().to_string();
    let next = format!(
        "<{}/repos/acme/api/deployments?environment=staging&per_page=3&page=2>; rel=\"next\"",
        api.base
    );
    assert!(link.contains(&next), "{link}");
    assert!(link.contains("page=2>; rel=\"last\""), "{link}");
    let p2 = api
        .get("/repos/acme/api/deployments?environment=staging&per_page=3&page=2")
        .await;
    let p2_ids: Vec<u64> = p2
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(p2_ids, vec![1]);
    let link2 = p2.header("link").unwrap();
    assert!(
        link2.contains("rel=\"prev\"")
            && link2.contains("rel=\"first\"")
            && !link2.contains("rel=\"next\""),
        "{link2}"
    );
    let capped = api.get("/repos/acme/api/deployments?per_page=1000").await;
    assert_eq!(capped.body.as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn get_one_and_404s() {
    let (_sb, api) = setup().await;
    let d = deploy(&api, json!({"ref": "main"})).await.body;
    let id = d["id"].as_u64().unwrap();
    assert_eq!(
        api.get(&format!("/repos/acme/api/deployments/{id}"))
            .await
            .body,
        d
    );
    let missing = api.get("/repos/acme/api/deployments/999999").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["message"], "Not Found");
    assert_eq!(api.get("/repos/acme/api/deployments/abc").await.status, 404);
    assert_eq!(
        api.get(&format!("/repos/acme/api/deployments/{id}/statuses/77"))
            .await
            .status,
        404
    );
    assert_eq!(
        api.post(
            "/repos/acme/api/deployments/999999/statuses",
            json!({"state": "success"})
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn deployment_statuses_create_list_and_validate() {
    let (sb, api) = setup().await;
    let d = deploy(&api, json!({"ref": "main", "environment": "staging"}))
        .await
        .body;
    let id = d["id"].as_u64().unwrap();
    let path = format!("/repos/acme/api/deployments/{id}/statuses");

    let q = api.post(&path, json!({"state": "queued"})).await;
    assert_eq!(q.status, 201);
    assert_eq!(
        (
            q.body["description"].as_str(),
            q.body["log_url"].as_str(),
            q.body["target_url"].as_str()
        ),
        (Some(""), Some(""), Some(""))
    );
    assert_eq!(q.body["environment"], "staging");
    assert_eq!(q.body["deployment_url"], d["url"]);

    let legacy = api
        .post(
            &path,
            json!({"state": "in_progress", "target_url": "https://ci.example.test/1"}),
        )
        .await;
    assert_eq!(
        legacy.body["log_url"], "https://ci.example.test/1",
        "target_url sets log_url too"
    );
    let s = api
        .post(&path, json!({"state": "success", "log_url": "https://ci.example.test/2", "environment_url": "https://stg.example.test", "description": "done"}))
        .await;
    assert_eq!(
        (
            s.body["target_url"].as_str(),
            s.body["environment_url"].as_str()
        ),
        (
            Some("https://ci.example.test/2"),
            Some("https://stg.example.test")
        )
    );

    let list = api.get(&path).await.body;
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["success", "in_progress", "queued"]);
    assert_eq!(
        sb.deployment_statuses("acme/api", id),
        list.as_array().unwrap().clone()
    );
    let sid = s.body["id"].as_u64().unwrap();
    assert_eq!(api.get(&format!("{path}/{sid}")).await.body, s.body);
    let page = api.get(&format!("{path}?per_page=1&page=3")).await.body;
    assert_eq!(page[0]["state"], "queued");

    let long = api
        .post(
            &path,
            json!({"state": "success", "description": "x".repeat(141)}),
        )
        .await;
    assert_eq!(long.status, 422);
    assert_eq!(long.body["message"], "Validation Failed");
    assert_eq!(long.body["errors"][0]["field"], "description");
    let just_fits = api
        .post(
            &path,
            json!({"state": "success", "description": "é".repeat(140)}),
        )
        .await;
    assert_eq!(just_fits.status, 201);
    let bad_state = api.post(&path, json!({"state": "done"})).await;
    assert_eq!(bad_state.status, 422);
    let no_state = api.post(&path, json!({})).await;
    assert_eq!(
        no_state.body["message"],
        "Invalid request.\n\n\"state\" wasn't supplied."
    );

    // A status may move the deployment to another environment.
    let moved = api
        .post(&path, json!({"state": "success", "environment": "qa"}))
        .await;
    assert_eq!(moved.body["environment"], "qa");
    let after = api
        .get(&format!("/repos/acme/api/deployments/{id}"))
        .await
        .body;
    assert_eq!(
        (
            after["environment"].as_str(),
            after["original_environment"].as_str()
        ),
        (Some("qa"), Some("staging"))
    );
}

#[tokio::test]
async fn auto_inactive_over_http() {
    let (_sb, api) = setup().await;
    let mut ids = vec![];
    for env in ["staging", "staging", "production"] {
        ids.push(
            deploy(&api, json!({"ref": "main", "environment": env}))
                .await
                .body["id"]
                .as_u64()
                .unwrap(),
        );
    }
    let status = |id: u64, body: Value| {
        let api = api.clone();
        async move {
            api.post(&format!("/repos/acme/api/deployments/{id}/statuses"), body)
                .await
        }
    };
    status(ids[0], json!({"state": "success"})).await;
    status(ids[2], json!({"state": "success"})).await;
    let latest = |id: u64| {
        let api = api.clone();
        async move {
            api.get(&format!("/repos/acme/api/deployments/{id}/statuses"))
                .await
                .body[0]["state"]
                .clone()
        }
    };
    assert_eq!(latest(ids[0]).await, "success");
    status(ids[1], json!({"state": "success"})).await;
    assert_eq!(
        latest(ids[0]).await,
        "inactive",
        "the previous staging deployment is inactive now"
    );
    assert_eq!(latest(ids[2]).await, "success", "production is left alone");

    let newest = deploy(&api, json!({"ref": "main", "environment": "staging"}))
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    status(newest, json!({"state": "success", "auto_inactive": false})).await;
    assert_eq!(
        latest(ids[1]).await,
        "success",
        "auto_inactive: false leaves it"
    );
}
