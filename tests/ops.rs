//! What an operator sees: `/healthz`, `/readyz` (flipping to 503 when a dependency is
//! down, and back), and `/metrics`, read with a Prometheus text parser while a deploy
//! runs and webhooks come in.

mod support;

use std::time::Duration;

use deploybot::github::events::sign;
use sandbox::Deployer;
use support::{wait_for, Options, TestBot, SECRET};

const BOUND: Duration = Duration::from_secs(10);

fn ops_url(t: &TestBot, path: &str) -> String {
    let addr = t
        .service
        .as_ref()
        .unwrap()
        .ops_addr()
        .expect("ops endpoints");
    format!("http://{addr}{path}")
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// Polls `url` until it answers `status`, for at most [`BOUND`]; returns the body.
async fn wait_status(url: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let (got, body) = get(url).await;
        if got == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} still answers {got} (not {status}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn scrape(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text format")
}

/// The value of the sample `name` whose labels include all of `labels`; 0 if absent.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name} is not a plain value: {other:?}"),
        })
        .sum()
}

async fn metrics(t: &TestBot) -> prometheus_parse::Scrape {
    let r = reqwest::get(ops_url(t, "/metrics")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    scrape(&r.text().await.unwrap())
}

#[tokio::test]
async fn healthz_answers_while_the_process_lives() {
    let t = support::webhook_bot("10ms").await;
    assert_eq!(get(&ops_url(&t, "/healthz")).await, (200, "ok\n".into()));
}

#[tokio::test]
async fn readyz_is_200_when_storage_chat_and_github_are_ready() {
    let t = support::webhook_bot("10ms").await;
    let body = wait_status(&ops_url(&t, "/readyz"), 200).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["ready"], true);
    for part in ["storage", "chat", "github"] {
        assert_eq!(json[part]["ready"], true, "{part}: {json}");
    }
}

#[tokio::test]
async fn readyz_turns_503_while_the_database_is_locked_and_recovers() {
    let t = support::webhook_bot("10ms").await;
    let url = ops_url(&t, "/readyz");
    wait_status(&url, 200).await;

    // Another process takes the database's write lock and keeps it.
    let lock = t.hold_write_lock().await;
    let body = wait_status(&url, 503).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["storage"]["ready"], false, "{json}");
    assert!(
        json["storage"]["reason"]
            .as_str()
            .unwrap()
            .contains("locked"),
        "{json}"
    );
    assert_eq!(json["chat"]["ready"], true, "only storage is down: {json}");
    let m = metrics(&t).await;
    assert_eq!(
        value(&m, "deploybot_ready", &[("component", "storage")]),
        0.0
    );

    lock.release().await;
    wait_status(&url, 200).await;
    let m = metrics(&t).await;
    assert_eq!(
        value(&m, "deploybot_ready", &[("component", "storage")]),
        1.0
    );
}

#[tokio::test]
async fn readyz_names_github_when_the_token_is_refused() {
    let t = TestBot::with(Options {
        config: support::with_webhook("10ms"),
        token: Some("ghp_not-a-token-the-sandbox-knows".into()),
        ..Default::default()
    })
    .await;
    let body = wait_status(&ops_url(&t, "/readyz"), 503).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["github"]["ready"], false, "{json}");
    assert!(
        json["github"]["reason"].as_str().unwrap().contains("401"),
        "{json}"
    );
    assert_eq!(json["storage"]["ready"], true, "{json}");
}

#[tokio::test]
async fn metrics_move_as_a_deploy_runs_and_webhooks_arrive() {
    let t = support::webhook_bot("10ms").await;
    t.sandbox
        .set_deployer(Deployer::auto(Duration::from_millis(20)));
    let before = metrics(&t).await;
    assert_eq!(
        value(&before, "deploybot_deployments_created_total", &[]),
        0.0
    );

    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    wait_for(BOUND, "the final state", || {
        t.message_of(id).filter(|(m, _)| {
            m.tone == deploybot::chat::Tone::Progress(deploybot::model::DeploymentState::Success)
        })
    })
    .await;
    // A refusal, by its rule: nobody may deploy production without a role.
    let refused = t
        .say_as("bob", &["dev"], "deploys", "deploy api/topic to production")
        .await;
    assert!(refused.contains("production"), "{refused}");
    let locked = t.say("lock qa -- testing the metrics").await;
    assert!(locked.contains("locked qa on api"), "{locked}");
    // A forged delivery.
    let forged = reqwest::Client::new()
        .post(t.webhook_url())
        .header("x-github-event", "deployment_status")
        .header("x-github-delivery", "forged-1")
        .header("x-hub-signature-256", sign(b"not-the-secret", b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);
    // A signed delivery that is not an event deploybot can read.
    let garbage = b"{\"deployment\": 7}".to_vec();
    let bad = reqwest::Client::new()
        .post(t.webhook_url())
        .header("x-github-event", "deployment_status")
        .header("x-github-delivery", "garbage-1")
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), &garbage))
        .body(garbage)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    let m = metrics(&t).await;
    let accepted = value(
        &m,
        "deploybot_webhook_deliveries_total",
        &[("event", "deployment_status"), ("outcome", "accepted")],
    );
    // The deployer reported queued, in_progress and success (and the deployment event).
    assert!(accepted >= 3.0, "accepted {accepted}");
    assert_eq!(
        value(
            &m,
            "deploybot_webhook_deliveries_total",
            &[("outcome", "bad_signature")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "deploybot_webhook_deliveries_total",
            &[("event", "deployment_status"), ("outcome", "bad_payload")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "deploybot_deployments_created_total",
            &[("app", "api"), ("environment", "staging")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "deploybot_deployments_refused_total",
            &[("reason", "deploy role")]
        ),
        1.0,
        "{:?}",
        m.samples
            .iter()
            .filter(|s| s.metric.contains("refused"))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        value(
            &m,
            "deploybot_commands_total",
            &[("command", "deploy"), ("decision", "allowed")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "deploybot_github_requests_total",
            &[
                ("method", "POST"),
                ("endpoint", "/repos/:owner/:repo/deployments"),
                ("status", "201")
            ]
        ),
        1.0
    );
    assert!(value(&m, "deploybot_github_rate_limit_remaining", &[]) > 0.0);
    assert!(
        value(
            &m,
            "deploybot_chat_requests_total",
            &[("operation", "edit"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert_eq!(
        value(&m, "deploybot_locks_active", &[]),
        1.0,
        "{:?}",
        m.samples
            .iter()
            .filter(|s| s.metric.contains("lock"))
            .collect::<Vec<_>>()
    );
    assert_eq!(value(&m, "deploybot_tracker_queue_depth", &[]), 0.0);
    let applied = m
        .samples
        .iter()
        .find(|s| s.metric == "deploybot_tracker_apply_seconds")
        .expect("the apply latency histogram");
    match &applied.value {
        prometheus_parse::Value::Histogram(buckets) => {
            let all = buckets.last().expect("buckets").count;
            assert!(all >= accepted, "{all} applied of {accepted}");
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert_eq!(value(&m, "deploybot_ready", &[("component", "chat")]), 1.0);
}

#[tokio::test]
async fn sqlite_checkpoints_are_counted_and_the_wal_catches_up() {
    let t = support::webhook_bot("10ms").await;
    t.sandbox
        .set_deployer(Deployer::auto(Duration::from_millis(20)));
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    wait_for(BOUND, "the final state", || {
        t.message_of(id).filter(|(m, _)| {
            m.tone == deploybot::chat::Tone::Progress(deploybot::model::DeploymentState::Success)
        })
    })
    .await;
    // The webhook path's commits are checkpointed in the background, ~100 ms later.
    let caught_up = |m: &prometheus_parse::Scrape| {
        value(
            m,
            "deploybot_sqlite_checkpoints_total",
            &[("outcome", "caught_up")],
        )
    };
    let deadline = tokio::time::Instant::now() + BOUND;
    let m = loop {
        let m = metrics(&t).await;
        if caught_up(&m) >= 1.0 && value(&m, "deploybot_sqlite_wal_pages_behind", &[]) == 0.0 {
            break m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint caught up: {:?}",
            m.samples
                .iter()
                .filter(|s| s.metric.contains("sqlite"))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        value(
            &m,
            "deploybot_sqlite_checkpoints_total",
            &[("outcome", "failed")]
        ),
        0.0
    );
}

#[tokio::test]
async fn pending_confirmations_are_counted() {
    let config = support::with_webhook("10ms").replace(
        "[apps.api.environments.production]\nproduction = true",
        "[apps.api.environments.production]\nproduction = true\nconfirm = true",
    );
    let t = TestBot::with(Options {
        config,
        ..Default::default()
    })
    .await;
    let asked = t.say("deploy api/topic to production").await;
    assert!(asked.to_lowercase().contains("confirm"), "{asked}");
    let m = metrics(&t).await;
    assert_eq!(value(&m, "deploybot_confirmations_pending", &[]), 1.0);
    assert_eq!(
        value(
            &m,
            "deploybot_commands_total",
            &[("command", "deploy"), ("decision", "pending")]
        ),
        1.0
    );
}

#[tokio::test]
async fn the_operators_endpoints_can_have_their_own_listener() {
    let config = format!(
        "{}\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        support::with_webhook("10ms")
    );
    let t = TestBot::with(Options {
        config,
        ..Default::default()
    })
    .await;
    let service = t.service.as_ref().unwrap();
    let ops = service.ops_addr().unwrap();
    assert_ne!(Some(ops), service.webhook_addr());
    assert_eq!(get(&format!("http://{ops}/healthz")).await.0, 200);
    // …and then they are not on the webhook's address.
    let webhook = service.webhook_addr().unwrap();
    assert_eq!(get(&format!("http://{webhook}/metrics")).await.0, 404);
}
