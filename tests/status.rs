//! Status events end to end: the sandbox's deployer posts statuses, its signed webhooks
//! reach the bot's webhook server, and one chat message follows the deployment —
//! through forged and repeated deliveries, out-of-order events, bursts and restarts.

mod support;

use std::sync::Arc;
use std::time::Duration;

use deploybot::chat::Tone;
use deploybot::clock::ManualClock;
use deploybot::github::events::sign;
use deploybot::model::DeploymentState;
use sandbox::{Deployer, NewStatus};
use support::{wait_for, Options, Said, TestBot, SECRET};

const BOUND: Duration = Duration::from_secs(10);

fn state_of(t: &TestBot, id: u64) -> Option<DeploymentState> {
    t.message_of(id).and_then(|(m, _)| match m.tone {
        Tone::Progress(s) => Some(s),
        _ => None,
    })
}

async fn wait_state(t: &TestBot, id: u64, state: DeploymentState) -> deploybot::chat::Message {
    wait_for(BOUND, &format!("deployment {id} to show {state}"), || {
        t.message_of(id)
            .filter(|(m, _)| m.tone == Tone::Progress(state))
            .map(|(m, _)| m)
    })
    .await
}

#[tokio::test]
async fn a_deployment_is_followed_from_created_to_success_in_one_message() {
    let t = support::webhook_bot("10ms").await;
    t.sandbox
        .set_deployer(Deployer::auto(Duration::from_millis(30)));
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let done = wait_state(&t, id, DeploymentState::Success).await;

    assert!(
        done.title
            .contains(&format!("Deployment #{id} of api/topic")),
        "{done:?}"
    );
    let logs = done
        .links
        .iter()
        .find(|l| l.label == "logs")
        .expect("log link");
    assert!(logs.url.contains("/acme/api/actions/runs/"), "{logs:?}");
    let env = done
        .links
        .iter()
        .find(|l| l.label == "environment")
        .expect("environment link");
    assert_eq!(env.url, "https://staging.api.example.test");
    assert!(done.fields.iter().any(|f| f.name == "took"), "{done:?}");

    // One message, edited: the deploy reply's id is the one every update edits.
    let said = t.said();
    let first_id = match &said[0] {
        Said::Sent { id, .. } => id.clone(),
        other => panic!("{other:?}"),
    };
    let states: Vec<Tone> = said
        .iter()
        .filter_map(|s| match s {
            Said::Edited { id, message, .. } if *id == first_id => Some(message.tone),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![
            Tone::Progress(DeploymentState::Created),
            Tone::Progress(DeploymentState::Queued),
            Tone::Progress(DeploymentState::InProgress),
            Tone::Progress(DeploymentState::Success),
        ]
    );
    // The requester is mentioned exactly once, at the end.
    let mention = wait_for(BOUND, "the mention", || {
        t.said()
            .into_iter()
            .find(|s| matches!(s, Said::Sent { message, .. } if message.mention.is_some()))
    })
    .await;
    assert_eq!(mention.message().mention.as_deref(), Some("alice"));
    assert!(mention.message().title.contains("succeeded"), "{mention:?}");
    let mentions = t
        .said()
        .iter()
        .filter(|s| s.message().mention.is_some())
        .count();
    assert_eq!(mentions, 1);
}

#[tokio::test]
async fn a_failing_deploy_ends_as_failure_with_its_log() {
    let t = support::webhook_bot("10ms").await;
    t.sandbox.set_deployer(Deployer {
        fail_refs: vec!["topic".into()],
        ..Deployer::auto(Duration::from_millis(20))
    });
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let done = wait_state(&t, id, DeploymentState::Failure).await;
    assert!(done.links.iter().any(|l| l.label == "logs"), "{done:?}");
}

async fn post(
    url: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<String>,
) -> u16 {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .body(body.to_vec());
    if let Some(sig) = signature {
        req = req.header("x-hub-signature-256", sig);
    }
    req.send().await.unwrap().status().as_u16()
}

/// A `deployment_status` body for deployment `id`, built from GitHub's own example.
fn status_body(t: &TestBot, id: u64, state: &str, status_id: u64) -> Vec<u8> {
    let mut body: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/github/webhooks/deployment_status/created.success.octokit-webhooks.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let deployment = t
        .sandbox
        .deployments("acme/api")
        .into_iter()
        .find(|d| d["id"] == id)
        .unwrap();
    body["deployment"] = deployment;
    body["deployment_status"]["state"] = state.into();
    body["deployment_status"]["id"] = status_id.into();
    body["repository"]["full_name"] = "acme/api".into();
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test]
async fn forged_tampered_and_replayed_deliveries_change_nothing() {
    let t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let url = t.webhook_url();
    let body = status_body(&t, id, "success", 900);
    let edits_before = t.message_of(id).unwrap().1;

    assert_eq!(
        post(&url, "deployment_status", "d-1", &body, None).await,
        401,
        "unsigned"
    );
    let wrong = sign(b"not the secret at all", &body);
    assert_eq!(
        post(&url, "deployment_status", "d-2", &body, Some(wrong)).await,
        401,
        "wrong secret"
    );
    let mut tampered = body.clone();
    let signature = sign(SECRET.as_bytes(), &body);
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    assert_eq!(
        post(
            &url,
            "deployment_status",
            "d-3",
            &tampered,
            Some(signature.clone())
        )
        .await,
        401,
        "tampered body"
    );
    assert_eq!(
        post(
            &url,
            "deployment_status",
            "d-4",
            &body,
            Some("sha256=zz".into())
        )
        .await,
        401,
        "malformed signature"
    );
    // Nothing moved.
    assert_eq!(t.message_of(id).unwrap().1, edits_before);
    assert_eq!(state_of(&t, id), Some(DeploymentState::Created));

    // The genuine delivery is accepted once; its replay is ignored.
    assert_eq!(
        post(
            &url,
            "deployment_status",
            "d-5",
            &body,
            Some(signature.clone())
        )
        .await,
        202
    );
    wait_state(&t, id, DeploymentState::Success).await;
    t.bot().tracker().flush(BOUND).await;
    let edits = t.message_of(id).unwrap().1;
    assert_eq!(
        post(&url, "deployment_status", "d-5", &body, Some(signature)).await,
        200
    );
    t.bot().tracker().flush(BOUND).await;
    assert_eq!(t.message_of(id).unwrap().1, edits, "a replay edits nothing");
}

#[tokio::test]
async fn ping_is_answered_and_other_events_are_ignored() {
    let t = support::webhook_bot("10ms").await;
    let url = t.webhook_url();
    let ping = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/github/webhooks/ping/repository.octokit-webhooks.json"
    ))
    .unwrap();
    assert_eq!(
        post(
            &url,
            "ping",
            "p-1",
            &ping,
            Some(sign(SECRET.as_bytes(), &ping))
        )
        .await,
        200
    );
    let check_run = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/github/webhooks/check_run/completed.success.octokit-webhooks.json"
    ))
    .unwrap();
    assert_eq!(
        post(
            &url,
            "check_run",
            "c-1",
            &check_run,
            Some(sign(SECRET.as_bytes(), &check_run))
        )
        .await,
        204
    );
    let junk = b"{not json";
    assert_eq!(
        post(
            &url,
            "deployment_status",
            "j-1",
            junk,
            Some(sign(SECRET.as_bytes(), junk))
        )
        .await,
        400
    );
    // The sandbox's own ping (sent when the webhook was added) was answered too.
    let ping = wait_for(BOUND, "the sandbox ping", || {
        t.sandbox
            .deliveries()
            .into_iter()
            .find(|d| d.event == "ping")
    })
    .await;
    assert_eq!(ping.response_status, Some(200));
}

#[tokio::test]
async fn out_of_order_and_repeated_statuses_end_on_the_right_state() {
    let t = support::webhook_bot("10ms").await;
    t.sandbox.hold_deliveries(true);
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    for state in ["queued", "in_progress", "success"] {
        t.sandbox
            .create_deployment_status("acme/api", id, NewStatus::new(state));
    }
    let held = t.sandbox.held_deliveries();
    let statuses: Vec<String> = held
        .iter()
        .filter(|d| d.event == "deployment_status")
        .map(|d| d.id.clone())
        .collect();
    assert_eq!(statuses.len(), 3);
    // success first, then the older ones, then success again (a redelivery).
    let order = vec![
        statuses[2].clone(),
        statuses[0].clone(),
        statuses[1].clone(),
    ];
    t.sandbox.release(&order).await;
    assert_eq!(t.sandbox.redeliver(&statuses[2]).await, Some(200));
    wait_state(&t, id, DeploymentState::Success).await;
    t.bot().tracker().flush(BOUND).await;
    let (last, edits) = t.message_of(id).unwrap();
    assert_eq!(last.tone, Tone::Progress(DeploymentState::Success));
    // created, then success; the late queued / in_progress and the repeat edit nothing.
    assert_eq!(edits, 2, "{:#?}", t.said());
}

#[tokio::test]
async fn a_burst_of_statuses_is_coalesced_and_ends_on_the_final_state() {
    let t = support::webhook_bot("200ms").await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let burst = 40;
    for i in 0..burst {
        t.sandbox.create_deployment_status(
            "acme/api",
            id,
            NewStatus {
                description: Some(format!("step {i}")),
                ..NewStatus::new("in_progress")
            },
        );
    }
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    wait_state(&t, id, DeploymentState::Success).await;
    t.bot().tracker().flush(BOUND).await;
    let (_, edits) = t.message_of(id).unwrap();
    // 42 accepted statuses; at most one edit per 200 ms plus the first and the last.
    assert!(edits < 15, "{edits} edits for {} statuses", burst + 1);
    assert!(edits >= 2);
}

#[tokio::test]
async fn silence_and_stuck_deployments_are_called_out() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let t = TestBot::with(Options {
        config: support::with_webhook("10ms"),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let tracker = t.bot().tracker().clone();

    tracker.check_timeouts().await.unwrap();
    tracker.flush(BOUND).await;
    assert!(!t
        .message_of(id)
        .unwrap()
        .0
        .to_text()
        .contains("no status yet"));

    clock.advance(Duration::from_secs(61));
    tracker.check_timeouts().await.unwrap();
    tracker.flush(BOUND).await;
    let text = t.message_of(id).unwrap().0.to_text();
    assert!(text.contains("no status yet"), "{text}");
    assert!(text.contains("on: deployment"), "{text}");

    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("in_progress"));
    wait_state(&t, id, DeploymentState::InProgress).await;
    clock.advance(Duration::from_secs(31 * 60));
    tracker.check_timeouts().await.unwrap();
    tracker.flush(BOUND).await;
    let text = t.message_of(id).unwrap().0.to_text();
    assert!(text.contains("still in progress after"), "{text}");
}

#[tokio::test]
async fn a_restarted_bot_finishes_the_message_from_missed_webhooks() {
    let mut t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("in_progress"));
    wait_state(&t, id, DeploymentState::InProgress).await;

    t.kill().await;
    // While the bot is down the deployer finishes; GitHub does not redeliver.
    t.sandbox.create_deployment_status(
        "acme/api",
        id,
        NewStatus {
            log_url: Some("https://ci.example.test/run/7".into()),
            ..NewStatus::new("success")
        },
    );
    wait_for(BOUND, "the failed delivery", || {
        t.sandbox
            .deliveries()
            .into_iter()
            .find(|d| d.event == "deployment_status" && d.response_status.is_none())
    })
    .await;

    t.boot().await;
    let done = wait_state(&t, id, DeploymentState::Success).await;
    assert!(done
        .links
        .iter()
        .any(|l| l.url == "https://ci.example.test/run/7"));
}

#[tokio::test]
async fn a_restarted_bot_without_webhooks_finishes_by_polling() {
    let config = format!(
        "{}\n[defaults]\nedit_interval = \"10ms\"\n",
        support::CONFIG.replace(
            "token = \"${SANDBOX_TOKEN}\"",
            "token = \"${SANDBOX_TOKEN}\"\npoll_interval = \"1h\""
        )
    );
    let mut t = TestBot::with(Options {
        config,
        ..Default::default()
    })
    .await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();

    // Polling alone moves the message (no webhook is configured).
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("in_progress"));
    t.bot().tracker().poll_once().await.unwrap();
    wait_state(&t, id, DeploymentState::InProgress).await;

    // An unchanged list is a 304 that costs no rate limit.
    let before = t.sandbox.requests().len();
    t.bot().tracker().poll_once().await.unwrap();
    let polled = &t.sandbox.requests()[before..];
    assert_eq!(polled.len(), 1);
    assert!(
        polled[0].header("if-none-match").is_some(),
        "{:?}",
        polled[0]
    );

    t.kill().await;
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    t.boot().await; // catch-up reads the latest status once
    wait_state(&t, id, DeploymentState::Success).await;

    // Finished deployments are not polled any more.
    t.bot().tracker().flush(BOUND).await;
    let before = t.sandbox.requests().len();
    t.bot().tracker().poll_once().await.unwrap();
    assert_eq!(t.sandbox.requests().len(), before);
}

/// Forgets the store's record of every tracked deployment (as pruning, or a row lost,
/// would), keeping the rest of the database — its routing key among it.
async fn forget_tracked(t: &TestBot) {
    let store =
        deploybot::store::sqlite::SqliteStore::open(&format!("sqlite://{}", t.db.display()))
            .await
            .unwrap();
    sqlx::query("DELETE FROM tracked")
        .execute(store.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_status_for_a_deployment_the_store_forgot_is_routed_by_its_payload() {
    let mut t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    assert!(
        t.sandbox.deployments("acme/api")[0]["payload"]["deploybot"]["mac"]
            .as_str()
            .is_some_and(|m| m.starts_with("v1.")),
        "the bot signs the payload it writes"
    );
    t.kill().await;
    // The bot restarts on the same database, which no longer knows deployment `id`;
    // the routing key survived the restart, so the payload still proves itself.
    forget_tracked(&t).await;
    t.boot().await;
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    let done = wait_state(&t, id, DeploymentState::Success).await;
    assert!(done.fields.iter().any(|f| f.value == "alice"), "{done:?}");
}

#[tokio::test]
async fn a_bot_that_lost_its_database_does_not_trust_old_payloads() {
    let mut t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let edits = t.message_of(id).unwrap().1;
    t.kill().await;
    // A brand-new database: a new key, so the old mac proves nothing any more. The
    // deployment is shown as made elsewhere rather than trusted.
    std::fs::remove_file(&t.db).unwrap();
    t.boot().await;
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    wait_for(BOUND, "an announcement in #ops", || {
        t.said()
            .into_iter()
            .find(|s| matches!(s, Said::Sent { channel, .. } if channel == "ops"))
    })
    .await;
    t.bot().tracker().flush(BOUND).await;
    assert_eq!(t.message_of(id).unwrap().1, edits, "{:#?}", t.said());
}

/// Creates a deployment directly on the sandbox (as a collaborator or a workflow
/// would), with `deploybot` as its payload's routing part; returns its id.
async fn create_foreign(t: &TestBot, git_ref: &str, deploybot: serde_json::Value) -> u64 {
    let response = reqwest::Client::new()
        .post(format!("{}/repos/acme/api/deployments", t.sandbox.url()))
        .bearer_auth(t.sandbox.token())
        .json(&serde_json::json!({
            "ref": git_ref,
            "environment": "staging",
            "required_contexts": [],
            "auto_merge": false,
            "payload": {"deploybot": deploybot},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json::<serde_json::Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap()
}

/// alice's deployment and its payload's routing part, as the bot wrote it.
async fn alices_deployment(t: &TestBot) -> (u64, serde_json::Value) {
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let d = t
        .sandbox
        .deployments("acme/api")
        .into_iter()
        .find(|d| d["id"] == id)
        .unwrap();
    (id, d["payload"]["deploybot"].clone())
}

/// mallory's statuses: a failure with her words and her link.
fn mallory(t: &TestBot, id: u64) {
    t.sandbox.create_deployment_status(
        "acme/api",
        id,
        NewStatus {
            description: Some("mallory was here".into()),
            log_url: Some("https://evil.example/run/1".into()),
            ..NewStatus::new("failure")
        },
    );
}

fn untrusted(t: &TestBot, reason: &str) -> f64 {
    let text = t.bot().metrics().encode();
    let needle = format!("deploybot_untrusted_events_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0.0)
}

/// Nothing of mallory's reached alice: her message was not edited after it showed
/// `created`, nobody was mentioned, nothing was posted outside #deploys and #ops.
fn alice_untouched(t: &TestBot, id: u64, edits: usize) {
    let (last, n) = t.message_of(id).unwrap();
    assert_eq!(n, edits, "alice's message was edited: {:#?}", t.said());
    assert_eq!(last.tone, Tone::Progress(DeploymentState::Created));
    for s in t.said() {
        assert_eq!(s.message().mention, None, "{s:?}");
        match &s {
            Said::Sent { channel, .. } | Said::Edited { channel, .. } => {
                assert!(channel == "deploys" || channel == "ops", "{s:?}")
            }
        }
    }
}

#[tokio::test]
async fn a_deployment_made_elsewhere_with_a_copied_route_is_announced_not_routed() {
    let t = support::webhook_bot("10ms").await;
    let (id, route) = alices_deployment(&t).await;
    let edits = t.message_of(id).unwrap().1;

    // mallory copies alice's chat coordinates, without the bot's mac.
    let mut forged = route.clone();
    forged.as_object_mut().unwrap().remove("mac");
    forged["request_id"] = "mallory-1".into();
    let evil = create_foreign(&t, "main", forged).await;
    // The `deployment` event is announced first; then mallory's statuses come.
    wait_for(BOUND, "the announcement in #ops", || {
        t.said()
            .into_iter()
            .find(|s| matches!(s, Said::Sent { channel, .. } if channel == "ops"))
    })
    .await;
    mallory(&t, evil);
    let shown = wait_for(
        BOUND,
        "the announcement in #ops to show the failure",
        || {
            t.said().into_iter().find(|s| {
                matches!(s, Said::Edited { channel, message, .. }
                if channel == "ops" && message.tone == Tone::Progress(DeploymentState::Failure))
            })
        },
    )
    .await;
    t.bot().tracker().flush(BOUND).await;
    alice_untouched(&t, id, edits);
    let ops: Vec<Said> = t
        .said()
        .into_iter()
        .filter(|s| matches!(s, Said::Sent { channel, .. } if channel == "ops"))
        .collect();
    assert_eq!(ops.len(), 1, "announced once: {ops:#?}");
    let text = ops[0].message().to_text();
    assert!(
        text.contains(&format!("sandbox-user created deployment #{evil}")),
        "{text}"
    );
    assert!(text.contains("deploybot did not"), "{text}");
    assert!(!shown.message().to_text().contains("alice"), "{shown:?}");
    assert!(untrusted(&t, "unverified_payload") >= 1.0);
}

#[tokio::test]
async fn a_copied_route_to_a_channel_the_app_does_not_allow_posts_nothing_there() {
    let t = support::webhook_bot("10ms").await;
    let (id, route) = alices_deployment(&t).await;
    let edits = t.message_of(id).unwrap().1;

    // Without a mac: to #general, which acme/api does not allow.
    let mut forged = route.clone();
    forged.as_object_mut().unwrap().remove("mac");
    forged["request_id"] = "mallory-2".into();
    forged["chat"]["channel"] = "general".into();
    forged["chat"]["message"] = serde_json::Value::Null;
    let evil = create_foreign(&t, "main", forged).await;
    mallory(&t, evil);

    // With a valid mac (as if the bot had written it, or the config changed since):
    // the channel rule still holds.
    let key = t.bot().tracker().routing_key().await.unwrap();
    let mut payload: deploybot::github::DeploybotPayload =
        serde_json::from_value(route.clone()).unwrap();
    payload.request_id = "r-general".into();
    payload.chat.channel = "general".into();
    payload.chat.message = None;
    payload.mac = None;
    let repo = deploybot::model::RepoName::parse("acme/api").unwrap();
    payload.mac = Some(key.sign(
        chrono::Utc::now(),
        &deploybot::routing::Signed {
            repository: &repo,
            environment: "staging",
            git_ref: "main",
            task: "deploy",
            payload: &payload,
        },
    ));
    let signed = create_foreign(&t, "main", serde_json::to_value(&payload).unwrap()).await;
    mallory(&t, signed);

    for d in [evil, signed] {
        wait_for(BOUND, "the announcements in #ops to show the failure", || {
            t.said().into_iter().find(|s| {
                matches!(s, Said::Sent { channel, message, .. } | Said::Edited { channel, message, .. }
                    if channel == "ops"
                        && message.tone == Tone::Progress(DeploymentState::Failure)
                        && message.title.contains(&format!("#{d} ")))
            })
        })
        .await;
    }
    t.bot().tracker().flush(BOUND).await;
    alice_untouched(&t, id, edits);
    assert!(untrusted(&t, "channel_not_allowed") >= 1.0);
}

#[tokio::test]
async fn forged_and_borrowed_macs_are_refused() {
    let t = support::webhook_bot("10ms").await;
    let (id, route) = alices_deployment(&t).await;
    let edits = t.message_of(id).unwrap().1;

    // A mac of the right shape that the bot did not make.
    let mut forged = route.clone();
    forged["request_id"] = "mallory-3".into();
    forged["mac"] = format!("v1.{}.{}", chrono::Utc::now().timestamp(), "ab".repeat(32)).into();
    let a = create_foreign(&t, "main", forged).await;
    // alice's real mac, on a payload with another request id.
    let mut borrowed = route.clone();
    borrowed["request_id"] = "mallory-4".into();
    let b = create_foreign(&t, "topic", borrowed).await;
    // alice's whole payload, mac and all, copied into a new deployment of the same
    // ref and environment: the request id belongs to her deployment.
    let c = create_foreign(&t, "topic", route.clone()).await;
    for evil in [a, b, c] {
        mallory(&t, evil);
    }
    for d in [a, b, c] {
        wait_for(BOUND, "the announcements in #ops to show the failure", || {
            t.said().into_iter().find(|s| {
                matches!(s, Said::Sent { channel, message, .. } | Said::Edited { channel, message, .. }
                    if channel == "ops"
                        && message.tone == Tone::Progress(DeploymentState::Failure)
                        && message.title.contains(&format!("#{d} ")))
            })
        })
        .await;
    }
    t.bot().tracker().flush(BOUND).await;
    alice_untouched(&t, id, edits);
    assert!(untrusted(&t, "unverified_payload") >= 2.0);
    assert!(untrusted(&t, "replayed_payload") >= 1.0);
}

#[tokio::test]
async fn a_status_naming_a_tracked_id_in_another_repository_changes_nothing() {
    let t = support::webhook_bot("10ms").await;
    let (id, _) = alices_deployment(&t).await;
    let edits = t.message_of(id).unwrap().1;
    let url = t.webhook_url();
    let mut body: serde_json::Value =
        serde_json::from_slice(&status_body(&t, id, "failure", 950)).unwrap();
    body["repository"]["full_name"] = "evil/x".into();
    body["deployment_status"]["description"] = "mallory was here".into();
    let body = serde_json::to_vec(&body).unwrap();
    let signature = sign(SECRET.as_bytes(), &body);
    // Answered at once, nothing stored: no app has that repository.
    assert_eq!(
        post(&url, "deployment_status", "evil-1", &body, Some(signature)).await,
        204
    );
    wait_for(BOUND, "the event to be counted", || {
        (untrusted(&t, "unconfigured_repository") >= 1.0).then_some(())
    })
    .await;
    t.bot().tracker().flush(BOUND).await;
    alice_untouched(&t, id, edits);
    let evil = deploybot::model::RepoName::parse("evil/x").unwrap();
    assert_eq!(
        t.bot()
            .store()
            .tracked(&evil, deploybot::model::DeploymentId(id))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn events_for_unconfigured_repositories_are_ignored() {
    let t = support::webhook_bot("10ms").await;
    let (id, route) = alices_deployment(&t).await;
    let said = t.said().len();
    let url = t.webhook_url();
    // GitHub's own example, as is (Codertocat/Hello-World), and with a deploybot
    // route to alice's message.
    let fixture = |name: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/fixtures/github/webhooks/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap()
    };
    let status = fixture("deployment_status/created.success.octokit-webhooks.json");
    let mut routed = status.clone();
    routed["deployment"]["payload"] = serde_json::json!({ "deploybot": route });
    let created = fixture("deployment/created.octokit-webhooks.json");
    for (n, (event, body)) in [
        ("deployment_status", status.clone()),
        ("deployment_status", routed),
        ("deployment", created),
    ]
    .into_iter()
    .enumerate()
    {
        let body = serde_json::to_vec(&body).unwrap();
        let signature = sign(SECRET.as_bytes(), &body);
        assert_eq!(
            post(&url, event, &format!("u-{n}"), &body, Some(signature)).await,
            204,
            "answered without storing anything"
        );
    }
    wait_for(BOUND, "the events to be counted", || {
        (untrusted(&t, "unconfigured_repository") >= 3.0).then_some(())
    })
    .await;
    t.bot().tracker().flush(BOUND).await;
    assert_eq!(t.said().len(), said, "{:#?}", t.said());
    let repo =
        deploybot::model::RepoName::parse(status["repository"]["full_name"].as_str().unwrap())
            .unwrap();
    let other = deploybot::model::DeploymentId(status["deployment"]["id"].as_u64().unwrap());
    assert_eq!(t.bot().store().tracked(&repo, other).await.unwrap(), None);
    assert_eq!(t.bot().store().unfinished().await.unwrap().len(), 1);
    let _ = id;
}

#[tokio::test]
async fn a_deployment_made_elsewhere_is_announced_in_the_notify_channel() {
    let t = support::webhook_bot("10ms").await;
    let response = reqwest::Client::new()
        .post(format!("{}/repos/acme/api/deployments", t.sandbox.url()))
        .bearer_auth(t.sandbox.token())
        .json(&serde_json::json!({"ref": "main", "environment": "production", "required_contexts": [], "auto_merge": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let id = t.last_deployment();
    let announced = wait_for(BOUND, "an announcement in #ops", || {
        t.said()
            .into_iter()
            .find(|s| matches!(s, Said::Sent { channel, .. } if channel == "ops"))
    })
    .await;
    let text = announced.message().to_text();
    assert!(
        text.contains(&format!(
            "sandbox-user created deployment #{id} of api/main"
        )),
        "{text}"
    );

    // Its statuses then update that announcement.
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    wait_for(BOUND, "the announcement to show success", || {
        t.said().into_iter().find(|s| {
            matches!(s, Said::Edited { channel, message, .. }
                if channel == "ops" && message.tone == Tone::Progress(DeploymentState::Success))
        })
    })
    .await;
}
