//! The durable inbox: a delivery answered 2xx is never lost (crash, storage error),
//! a delivery id is applied once however it races, and a burst over many deployments
//! ends with every message in its final state exactly once.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deploybot::chat::shell::{self, Identity};
use deploybot::chat::Tone;
use deploybot::github::events::sign;
use deploybot::model::DeploymentState;
use sandbox::{Fault, NewStatus};
use serde_json::Value;
use support::{wait_for, Said, TestBot, SECRET};

const BOUND: Duration = Duration::from_secs(20);

fn success(t: &TestBot, id: u64) -> bool {
    t.message_of(id)
        .is_some_and(|(m, _)| m.tone == Tone::Progress(DeploymentState::Success))
}

/// The answer the bot gave to the sandbox's latest `deployment_status` delivery.
fn last_status_answer(t: &TestBot) -> Option<(String, u16)> {
    t.sandbox
        .deliveries()
        .into_iter()
        .rev()
        .find(|d| d.event == "deployment_status")
        .and_then(|d| d.response_status.map(|s| (d.id, s)))
}

/// After a restart: deployment `id`'s message shows its success, and the requester
/// is told once.
async fn shows_success_and_tells_once(t: &TestBot, id: u64) {
    wait_for(BOUND, "the final state after the restart", || {
        success(t, id).then_some(())
    })
    .await;
    let mentions = || {
        t.said()
            .iter()
            .filter(|s| matches!(s, Said::Sent { .. }) && s.message().mention.is_some())
            .count()
    };
    wait_for(BOUND, "the requester to be told", || {
        (mentions() > 0).then_some(())
    })
    .await;
    t.bot().tracker().flush(BOUND).await;
    assert_eq!(mentions(), 1, "the requester is told once: {:#?}", t.said());
}

#[tokio::test]
async fn an_event_answered_2xx_but_not_applied_before_a_crash_is_applied_after_the_restart() {
    let mut t = support::webhook_bot("10ms").await;
    let out = t.say("deploy api/topic to staging").await;
    assert!(out.contains("Created deployment"), "{out}");
    let id = t.last_deployment();

    // The process dies after answering 202 and before its tracker applied the event.
    t.service.as_ref().unwrap().inbox().unwrap().halt();
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    let (_, answered) = wait_for(BOUND, "the delivery to be answered", || {
        last_status_answer(&t)
    })
    .await;
    assert_eq!(answered, 202);
    assert!(!success(&t, id), "not applied before the crash");
    t.kill().await;

    // GitHub cannot help the restarted bot: only the inbox knows the final state.
    t.sandbox.inject(Fault::status(
        "GET",
        "/statuses",
        500,
        serde_json::json!({"message": "Server Error"}),
    ));
    t.boot().await;
    shows_success_and_tells_once(&t, id).await;
}

/// `deploybot_tracker_applied_on_arrival_total`, read from the bot's metrics.
fn applied_on_arrival(t: &TestBot) -> u64 {
    let text = t.bot().metrics().encode();
    text.lines()
        .find_map(|l| l.strip_prefix("deploybot_tracker_applied_on_arrival_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no on-arrival counter in:\n{text}"))
}

#[tokio::test]
async fn a_status_of_a_deployment_in_memory_is_committed_before_its_answer_without_the_inbox() {
    let mut t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let repo = deploybot::model::RepoName::parse("acme/api").unwrap();
    assert_eq!(applied_on_arrival(&t), 0);

    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    let (delivery, answered) = wait_for(BOUND, "the delivery to be answered", || {
        last_status_answer(&t)
    })
    .await;
    assert_eq!(answered, 202);
    assert_eq!(applied_on_arrival(&t), 1, "applied in its request");
    // Committed before the answer, and nothing was left in the inbox.
    let store = t.bot().store();
    let stored = store
        .tracked(&repo, deploybot::model::DeploymentId(id))
        .await
        .unwrap()
        .expect("tracked");
    assert_eq!(stored.state, DeploymentState::Success);
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!(store.inbox(later, 10).await.unwrap().is_empty());
    // Its id was committed with it: a redelivery is a duplicate, applied nowhere.
    assert_eq!(t.sandbox.redeliver(&delivery).await, Some(200));
    assert_eq!(applied_on_arrival(&t), 1);

    // Killed at once, whether or not the message was edited yet: after the restart it
    // shows the final state, and the requester is told once.
    t.kill().await;
    t.boot().await;
    shows_success_and_tells_once(&t, id).await;
}

#[tokio::test]
async fn storage_down_answers_503_keeps_nothing_and_the_redelivery_is_applied() {
    let t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();

    // Another process holds the database's write lock.
    let lock = t.hold_write_lock().await;
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new("success"));
    let (delivery, answered) = wait_for(BOUND, "the delivery to be answered", || {
        last_status_answer(&t)
    })
    .await;
    assert_eq!(answered, 503, "storage is down");
    assert_eq!(applied_on_arrival(&t), 0, "not committed, so not counted");
    lock.release().await;
    assert!(!success(&t, id));

    // GitHub's "Redeliver" is applied. Nothing of the refused delivery was kept (202),
    // unless the store was merely slow: a commit still waiting when the 503 went out
    // (8 s) may land once the lock is gone, and then the redelivery is its duplicate.
    let redelivered = t.sandbox.redeliver(&delivery).await;
    assert!(matches!(redelivered, Some(202 | 200)), "{redelivered:?}");
    wait_for(BOUND, "the redelivered final state", || {
        success(&t, id).then_some(())
    })
    .await;
    // And a redelivery after that is a duplicate.
    assert_eq!(t.sandbox.redeliver(&delivery).await, Some(200));
}

/// A signed `deployment_status` delivery body for `deployment` (GitHub's JSON of it).
fn status_body(deployment: &Value, status_id: u64, state: &str, description: &str) -> Vec<u8> {
    let mut body: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/github/webhooks/deployment_status/created.success.octokit-webhooks.json"
        ))
        .unwrap(),
    )
    .unwrap();
    body["deployment"] = deployment.clone();
    body["deployment_status"]["id"] = status_id.into();
    body["deployment_status"]["state"] = state.into();
    body["deployment_status"]["description"] = description.into();
    body["repository"]["full_name"] = "acme/api".into();
    serde_json::to_vec(&body).unwrap()
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    delivery: &str,
    body: &[u8],
) -> reqwest::Result<u16> {
    Ok(http
        .post(url)
        .header("x-github-event", "deployment_status")
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), body))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await?
        .status()
        .as_u16())
}

#[tokio::test]
async fn one_delivery_sent_many_times_at_once_is_applied_once() {
    let t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = t.last_deployment();
    let deployment = t.sandbox.deployments("acme/api")[0].clone();
    let body = Arc::new(status_body(&deployment, 9_000_001, "success", "done"));
    let url = t.webhook_url();
    let http = reqwest::Client::new();
    let mut racers = Vec::new();
    for _ in 0..16 {
        let (http, url, body) = (http.clone(), url.clone(), body.clone());
        racers.push(tokio::spawn(async move {
            post(&http, &url, "the-same-delivery", &body).await.unwrap()
        }));
    }
    let mut answers = Vec::new();
    for r in racers {
        answers.push(r.await.unwrap());
    }
    answers.sort();
    assert_eq!(
        answers.iter().filter(|s| **s == 202).count(),
        1,
        "one accepted: {answers:?}"
    );
    assert!(
        answers.iter().all(|s| *s == 202 || *s == 200),
        "{answers:?}"
    );
    wait_for(BOUND, "the final state", || success(&t, id).then_some(())).await;
    wait_for(BOUND, "the requester to be told", || {
        t.said()
            .iter()
            .any(|s| s.message().mention.is_some())
            .then_some(())
    })
    .await;
    t.bot().tracker().flush(BOUND).await;
    let said = t.said();
    let finals = said
        .iter()
        .filter(|s| {
            matches!(s, Said::Edited { .. })
                && s.message().tone == Tone::Progress(DeploymentState::Success)
        })
        .count();
    assert_eq!(finals, 1, "shown once: {said:#?}");
    let mentions = said
        .iter()
        .filter(|s| s.message().mention.is_some())
        .count();
    assert_eq!(mentions, 1, "told once: {said:#?}");
}

/// `DEPLOYBOT_BURST=deployments,statuses_each` scales the burst (default 500 × 20).
fn burst_size() -> (usize, usize) {
    std::env::var("DEPLOYBOT_BURST")
        .ok()
        .and_then(|v| {
            let (a, b) = v.split_once(',')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .unwrap_or((500, 20))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_statuses_over_many_deployments_ends_each_message_final_exactly_once() {
    let (deployments, each) = burst_size();
    let t = support::webhook_bot("10ms").await;
    t.sandbox.set_rate_limit(&t.sandbox.token(), 10_000_000);
    // Created through the bot (so each is routed to its message), 16 at a time.
    let mut creating = Vec::new();
    for n in 0..16 {
        let bot = t.bot().clone();
        let lines = (n..deployments)
            .step_by(16)
            .map(|_| "deploy api/topic to staging\n")
            .collect::<String>();
        creating.push(tokio::spawn(async move {
            let identity = Identity {
                user: "alice".into(),
                roles: vec!["release".into()],
                channel: "deploys".into(),
            };
            shell::run(&bot, &identity, lines.as_bytes(), "!").await;
        }));
    }
    for c in creating {
        c.await.unwrap();
    }
    let all = t.sandbox.deployments("acme/api");
    assert_eq!(all.len(), deployments);

    // For each deployment: queued, in progress (several times), then success — in
    // order per deployment, interleaved across deployments, 16 senders at once.
    let mut per_deployment: Vec<std::collections::VecDeque<(String, Vec<u8>)>> = Vec::new();
    let mut status_id = 1_000_000;
    for (n, d) in all.iter().enumerate() {
        let mut queue = std::collections::VecDeque::new();
        for step in 0..each {
            status_id += 1;
            let state = match step {
                0 => "queued",
                s if s + 1 == each => "success",
                _ => "in_progress",
            };
            let body = status_body(d, status_id, state, &format!("step {step}"));
            queue.push_back((format!("burst-{n}-{step}"), body));
        }
        per_deployment.push(queue);
    }
    // Round-robin: step k of every deployment before step k+1 of any.
    let mut work = Vec::new();
    while per_deployment.iter().any(|q| !q.is_empty()) {
        for q in per_deployment.iter_mut() {
            if let Some(item) = q.pop_front() {
                work.push(item);
            }
        }
    }
    work.reverse();
    let work = Arc::new(std::sync::Mutex::new(work));
    let url = t.webhook_url();
    let http = reqwest::Client::new();
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (http, url, work) = (http.clone(), url.clone(), work.clone());
        senders.push(tokio::spawn(async move {
            let mut refused = 0;
            loop {
                let next = work.lock().unwrap().pop();
                let Some((delivery, body)) = next else {
                    return refused;
                };
                if post(&http, &url, &delivery, &body).await.unwrap() != 202 {
                    refused += 1;
                }
            }
        }));
    }
    for s in senders {
        assert_eq!(s.await.unwrap(), 0, "every delivery is accepted");
    }

    let messages: HashMap<String, u64> = all
        .iter()
        .map(|d| {
            (
                d["payload"]["deploybot"]["chat"]["message"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                d["id"].as_u64().unwrap(),
            )
        })
        .collect();
    wait_for(
        Duration::from_secs(120),
        "every message to be final",
        || {
            let finished: std::collections::HashSet<String> = t
                .said()
                .into_iter()
                .filter_map(|s| match s {
                    Said::Edited { id, message, .. }
                        if message.tone == Tone::Progress(DeploymentState::Success) =>
                    {
                        Some(id)
                    }
                    _ => None,
                })
                .collect();
            messages.keys().all(|m| finished.contains(m)).then_some(())
        },
    )
    .await;
    t.bot().tracker().flush(BOUND).await;
    let mut finals: HashMap<String, usize> = HashMap::new();
    let mut mentions = 0;
    for s in t.said() {
        match &s {
            Said::Edited { id, message, .. }
                if message.tone == Tone::Progress(DeploymentState::Success) =>
            {
                *finals.entry(id.clone()).or_default() += 1;
            }
            Said::Sent { message, .. } if message.mention.is_some() => mentions += 1,
            _ => {}
        }
    }
    assert_eq!(finals.len(), deployments, "every message shows success");
    for (message, n) in &finals {
        assert_eq!(
            *n, 1,
            "deployment {}'s final state was shown {n} times",
            messages[message]
        );
    }
    assert_eq!(mentions, deployments, "each requester is told once");
}

#[tokio::test]
async fn events_deploybot_does_not_follow_are_answered_without_storing_anything() {
    let t = support::webhook_bot("10ms").await;
    let url = t.webhook_url();
    let http = reqwest::Client::new();
    let foreign = |repo: &str, id: u64| {
        let mut d = serde_json::from_str::<Value>(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/github/webhooks/deployment_status/created.success.octokit-webhooks.json"
            ))
            .unwrap(),
        )
        .unwrap()["deployment"]
            .clone();
        d["id"] = id.into();
        d["payload"] = serde_json::json!({});
        let mut body: Value =
            serde_json::from_slice(&status_body(&d, id, "success", "done")).unwrap();
        body["repository"]["full_name"] = repo.into();
        serde_json::to_vec(&body).unwrap()
    };
    let rows = || async {
        let pool = t.other_pool().await;
        let count = |table: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let n = (count("inbox").await, count("deliveries").await);
        pool.close().await;
        n
    };
    let before = rows().await;
    // A repository no app has, and a deployment made elsewhere for an app without a
    // notify_channel (web): 204, and not a row more.
    for (delivery, repo, id) in [("d-1", "acme/other", 71), ("d-2", "acme/web", 72)] {
        let answer = post(&http, &url, delivery, &foreign(repo, id))
            .await
            .unwrap();
        assert_eq!(answer, 204, "{repo}");
    }
    assert_eq!(rows().await, before, "nothing stored");
    // api announces deployments made elsewhere in #ops: that one is kept, once.
    assert_eq!(
        post(&http, &url, "d-3", &foreign("acme/api", 73))
            .await
            .unwrap(),
        202
    );
    assert_eq!(
        post(&http, &url, "d-3", &foreign("acme/api", 73))
            .await
            .unwrap(),
        200
    );
    let text = t.bot().metrics_text().await;
    assert!(
        text.contains(r#"deploybot_webhook_deliveries_total{event="deployment_status",outcome="not_followed"} 2"#),
        "{text}"
    );
}

/// The state stored for deployment `id` of `repo`.
async fn stored(
    t: &TestBot,
    repo: &deploybot::model::RepoName,
    id: deploybot::model::DeploymentId,
) -> DeploymentState {
    t.bot()
        .store()
        .tracked(repo, id)
        .await
        .unwrap()
        .expect("tracked")
        .state
}

/// A success status, as the tracker gets it from an event.
fn success_status() -> deploybot::github::DeploymentStatus {
    serde_json::from_value(serde_json::json!({
        "id": 4242, "state": "success", "description": "Deployed topic"
    }))
    .unwrap()
}

/// Memory can be ahead of the store: a status is in memory (and rendered) as soon as
/// its write is queued, and its event leaves the inbox only once that write commits.
/// When the write fails, the event stays; applying it again writes memory's record,
/// although it no longer moves the deployment forward.
#[tokio::test]
async fn a_status_whose_write_failed_is_written_when_its_event_is_applied_again() {
    let t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = deploybot::model::DeploymentId(t.last_deployment());
    let repo = deploybot::model::RepoName::parse("acme/api").unwrap();

    // The store refuses to record the success (as a full disk would), and only that.
    let other = t.other_pool().await;
    sqlx::query(
        r#"CREATE TRIGGER refuse_success BEFORE UPDATE ON tracked
           WHEN NEW.data LIKE '%"state":"success"%'
           BEGIN SELECT RAISE(ABORT, 'injected: disk full'); END"#,
    )
    .execute(&other)
    .await
    .unwrap();
    let status = success_status();
    let tracker = t.bot().tracker();
    let failed = tracker.status(&repo, id, None, &status).await;
    assert!(failed.is_err(), "the write failed: {failed:?}");
    // The render it scheduled fails to record itself too.
    tracker.flush(BOUND).await;
    assert_ne!(
        stored(&t, &repo, id).await,
        DeploymentState::Success,
        "not in the store"
    );

    // The disk has room again; the redrive applies the event once more.
    sqlx::query("DROP TRIGGER refuse_success")
        .execute(&other)
        .await
        .unwrap();
    let again = tracker.status(&repo, id, None, &status).await.unwrap();
    assert_eq!(
        again,
        deploybot::tracker::Applied::Stale,
        "memory has it already"
    );
    assert_eq!(
        stored(&t, &repo, id).await,
        DeploymentState::Success,
        "and now the store too"
    );
}

/// An instance that becomes the leader forgets what it held in memory, but not while
/// a status's write is in flight: that record is ahead of the store, and a render
/// reading the store in its place would show the older state and leave the newer one
/// unshown (its render slot taken).
#[tokio::test]
async fn memory_is_forgotten_only_once_the_writes_in_flight_are_committed() {
    let t = support::webhook_bot("10ms").await;
    t.say("deploy api/topic to staging").await;
    let id = deploybot::model::DeploymentId(t.last_deployment());
    let repo = deploybot::model::RepoName::parse("acme/api").unwrap();
    let tracker = t.bot().tracker().clone();
    tracker.flush(BOUND).await;

    // Another process holds the database's write lock: the status's commit waits.
    let lock = t.hold_write_lock().await;
    let status = success_status();
    let applying = {
        let (tracker, repo) = (tracker.clone(), repo.clone());
        tokio::spawn(async move { tracker.status(&repo, id, None, &status).await })
    };
    // In memory and rendered while its write waits for the lock.
    wait_for(BOUND, "the success rendered from memory", || {
        success(&t, id.0).then_some(())
    })
    .await;
    assert_ne!(
        stored(&t, &repo, id).await,
        DeploymentState::Success,
        "not committed yet"
    );

    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let forgetting = {
        let (tracker, released) = (tracker.clone(), released.clone());
        tokio::spawn(async move {
            tracker.forget_cached().await;
            released.load(std::sync::atomic::Ordering::SeqCst)
        })
    };
    tokio::task::yield_now().await;
    released.store(true, std::sync::atomic::Ordering::SeqCst);
    lock.release().await;

    assert!(
        forgetting.await.unwrap(),
        "memory was forgotten while a write was in flight"
    );
    assert_eq!(
        applying.await.unwrap().unwrap(),
        deploybot::tracker::Applied::Accepted
    );
    assert_eq!(
        stored(&t, &repo, id).await,
        DeploymentState::Success,
        "committed"
    );
    tracker.flush(BOUND).await;
    assert!(success(&t, id.0), "the final state stays shown");
}
