//! Fault injection.

use std::time::Duration;

use sandbox::Fault;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn primary_rate_limit() {
    let (sb, api) = setup().await;
    sb.inject(Fault::rate_limited("/deployments", 1_900_000_000));
    let r = api.get("/repos/acme/api/deployments").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("1900000000"));
    assert!(r.body["message"]
        .as_str()
        .unwrap()
        .starts_with("API rate limit exceeded"));
    assert_eq!(sb.requests().len(), 1, "the request is still recorded");
    assert_eq!(
        api.get("/repos/acme/api/deployments").await.status,
        200,
        "once by default"
    );
}

#[tokio::test]
async fn secondary_rate_limit_403_and_429() {
    let (sb, api) = setup().await;
    sb.inject(Fault::secondary_rate_limit("/deployments", 7));
    sb.inject(Fault::secondary_rate_limit("/deployments", 3).with_status(429));
    let a = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert_eq!((a.status, a.header("retry-after")), (403, Some("7")));
    assert!(a.body["message"]
        .as_str()
        .unwrap()
        .contains("secondary rate limit"));
    let b = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert_eq!(
        (b.status, b.header("retry-after"), b.body["status"].as_str()),
        (429, Some("3"), Some("429"))
    );
    assert!(
        sb.deployments("acme/api").is_empty(),
        "refused requests have no effect"
    );
    assert_eq!(
        api.post("/repos/acme/api/deployments", json!({"ref": "main"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn status_fault_matches_method_and_times() {
    let (sb, api) = setup().await;
    sb.inject(
        Fault::status(
            "POST",
            "/deployments",
            502,
            json!({"message": "Server Error"}),
        )
        .times(2),
    );
    assert_eq!(
        api.get("/repos/acme/api/deployments").await.status,
        200,
        "GET does not match"
    );
    assert_eq!(
        api.post("/repos/acme/api/deployments", json!({"ref": "main"}))
            .await
            .status,
        502
    );
    let second = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert_eq!(
        (second.status, second.body["message"].as_str()),
        (502, Some("Server Error"))
    );
    assert_eq!(
        api.post("/repos/acme/api/deployments", json!({"ref": "main"}))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn delayed_fault_answers_after_the_delay() {
    let (sb, api) = setup().await;
    sb.inject(
        Fault::status(
            "GET",
            "/repos/acme/api",
            503,
            json!({"message": "unavailable"}),
        )
        .with_delay(Duration::from_millis(400)),
    );
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let r = impatient
        .get(format!("{}/repos/acme/api", api.base))
        .bearer_auth("sandbox-token")
        .send()
        .await;
    assert!(r.expect_err("times out").is_timeout());
    assert!(
        poll(WAIT, || sb.requests().len() == 1).await,
        "the request reached the server"
    );
}

#[tokio::test]
async fn slow_after_processing_creates_the_deployment_before_answering() {
    let (sb, api) = setup().await;
    let rx = Receiver::start().await;
    sb.add_webhook(&rx.url, "s");
    sb.inject(Fault::slow_after_processing(
        "POST",
        "/deployments",
        Duration::from_secs(2),
    ));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let r = impatient
        .post(format!("{}/repos/acme/api/deployments", api.base))
        .bearer_auth("sandbox-token")
        .json(&json!({"ref": "main", "payload": {"deploybot": {"request_id": "req-1"}}}))
        .send()
        .await;
    assert!(r.expect_err("the client gives up").is_timeout());
    assert!(poll(WAIT, || !sb.deployments("acme/api").is_empty()).await);
    let created = sb.deployments("acme/api");
    assert_eq!(
        created.len(),
        1,
        "the deployment exists although the client saw no answer"
    );
    assert_eq!(created[0]["payload"]["deploybot"]["request_id"], "req-1");
    assert!(
        poll(WAIT, || rx.of("deployment").len() == 1).await,
        "and its webhook went out"
    );

    // A patient client gets the real answer after the delay.
    sb.inject(Fault::slow_after_processing(
        "POST",
        "/deployments",
        Duration::from_millis(50),
    ));
    let ok = api
        .post("/repos/acme/api/deployments", json!({"ref": "main"}))
        .await;
    assert_eq!(ok.status, 201);
}
