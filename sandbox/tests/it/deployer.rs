//! The simulated deployer.

use std::time::Duration;

use sandbox::{Deployer, NewStatus};
use serde_json::json;

use crate::common::*;

fn states(sb: &sandbox::Sandbox, id: u64) -> Vec<String> {
    sb.deployment_statuses("acme/api", id)
        .iter()
        .rev()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn happy_path_queued_in_progress_success_with_webhooks() {
    let (sb, api) = setup().await;
    let rx = Receiver::start().await;
    sb.add_webhook(&rx.url, "s");
    sb.set_deployer(Deployer::auto(Duration::from_millis(20)));
    let d = api
        .post(
            "/repos/acme/api/deployments",
            json!({"ref": "main", "environment": "staging"}),
        )
        .await
        .body;
    let id = d["id"].as_u64().unwrap();
    assert!(
        poll(WAIT, || states(&sb, id).len() == 3).await,
        "{:?}",
        states(&sb, id)
    );
    assert_eq!(states(&sb, id), ["queued", "in_progress", "success"]);

    let all = sb.deployment_statuses("acme/api", id);
    let (success, in_progress) = (&all[0], &all[1]);
    let log_url = format!("{}/acme/api/actions/runs/1", api.base);
    assert_eq!(in_progress["log_url"], log_url.as_str());
    assert_eq!(in_progress["description"], "Deploying main to staging");
    assert_eq!(success["log_url"], log_url.as_str());
    assert_eq!(
        success["environment_url"],
        "https://staging.api.example.test"
    );
    assert_eq!(success["creator"]["type"], "Bot");

    assert!(
        poll(WAIT, || rx.events().len() == 5).await,
        "{:?}",
        rx.events()
    );
    let hook_states: Vec<String> = rx
        .of("deployment_status")
        .iter()
        .map(|r| {
            r.json()["deployment_status"]["state"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(hook_states, ["queued", "in_progress", "success"]);
}

#[tokio::test]
async fn failure_and_error_rules() {
    let (sb, api) = setup().await;
    sb.create_branch("acme/api", "broken", "main");
    sb.create_branch("acme/api", "crash", "main");
    sb.set_deployer(Deployer {
        fail_refs: vec!["broken".into()],
        fail_environments: vec!["qa".into()],
        error_refs: vec!["crash".into()],
        ..Deployer::auto(Duration::from_millis(1))
    });
    let mut cases = vec![];
    for (git_ref, env, expected) in [
        ("broken", "staging", "failure"),
        ("main", "qa", "failure"),
        ("crash", "staging", "error"),
        ("main", "staging", "success"),
    ] {
        let r = api
            .post(
                "/repos/acme/api/deployments",
                json!({"ref": git_ref, "environment": env}),
            )
            .await;
        assert_eq!(r.status, 201, "{:#}", r.body);
        cases.push((r.body["id"].as_u64().unwrap(), expected));
    }
    for (id, expected) in cases {
        assert!(poll(WAIT, || states(&sb, id).len() == 3).await);
        assert_eq!(states(&sb, id)[2], expected, "deployment {id}");
        let last = &sb.deployment_statuses("acme/api", id)[0];
        assert_eq!(last["environment_url"] == "", expected != "success");
    }
}

#[tokio::test]
async fn disabled_by_default_and_manual_statuses_fire_webhooks() {
    let (sb, api) = setup().await;
    let rx = Receiver::start().await;
    sb.add_webhook(&rx.url, "s");
    let id = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    assert!(poll(WAIT, || rx.received().len() == 2).await);
    assert!(
        sb.deployment_statuses("acme/api", id).is_empty(),
        "no deployer unless enabled"
    );

    let s = sb.create_deployment_status(
        "acme/api",
        id,
        NewStatus {
            log_url: Some("https://ci.example.test/9".into()),
            description: Some("by hand".into()),
            ..NewStatus::new("in_progress")
        },
    );
    assert_eq!(s["state"], "in_progress");
    assert_eq!(s["target_url"], "https://ci.example.test/9");
    assert!(poll(WAIT, || rx.of("deployment_status").len() == 1).await);
    assert_eq!(
        rx.of("deployment_status")[0].json()["deployment_status"]["id"],
        s["id"]
    );

    let bad = sb.create_deployment_status("acme/api", id, NewStatus::new("done"));
    assert_eq!(bad["status"], "422");
    let missing = sb.create_deployment_status("acme/api", 424242, NewStatus::new("success"));
    assert_eq!(missing["message"], "Not Found");
}

#[tokio::test]
async fn shutdown_stops_the_server_and_the_deployer() {
    let (sb, api) = setup().await;
    sb.set_deployer(Deployer::auto(Duration::from_millis(300)));
    let id = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await
        .body["id"]
        .as_u64()
        .unwrap();
    sb.shutdown();
    sb.shutdown();
    let fresh = reqwest::Client::new();
    let stopped = tokio::time::timeout(WAIT, async {
        loop {
            if fresh
                .get(format!("{}/repos/acme/api", api.base))
                .send()
                .await
                .is_err()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or(false);
    assert!(stopped, "the server stops accepting connections");
    let quiet = poll(Duration::from_millis(700), || {
        !sb.deployment_statuses("acme/api", id).is_empty()
    })
    .await;
    assert!(!quiet, "the deployer stopped with the server");
}
