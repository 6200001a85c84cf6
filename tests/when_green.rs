//! `deploy … when green`: the bot (shell adapter) against the sandbox, whose commit
//! statuses change over time and send `status` webhooks, with an injected clock for
//! the poll and the timeout.

mod support;

use std::sync::Arc;
use std::time::Duration;

use deploybot::chat::{Action, Addressing, ChatUser, Conversation, Message, Pressed, Request};
use deploybot::clock::ManualClock;
use support::{wait_for, Options, Said, TestBot};

const BOUND: Duration = Duration::from_secs(10);
const API: &str = "acme/api";

/// [`support::CONFIG`], with or without the webhook.
fn config(webhook: bool) -> String {
    let mut text = support::CONFIG.to_string();
    if webhook {
        text.push_str(&format!(
            "\n[webhook]\nlisten = \"127.0.0.1:0\"\npath = \"/webhook\"\nsecret = \"{}\"\n",
            support::SECRET
        ));
    }
    text + "\n[defaults]\nedit_interval = \"10ms\"\n"
}

/// A bot on an injected clock, and a branch `wip` whose `ci/build` is pending.
async fn start(webhook: bool) -> (TestBot, Arc<ManualClock>, String) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let t = TestBot::with(Options {
        config: config(webhook),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    t.sandbox.create_branch(API, "wip", "main");
    let sha = t.sandbox.commit(API, "wip", "Work in progress");
    t.sandbox.set_status(API, "wip", "ci/build", "pending");
    (t, clock, sha)
}

/// The id of the wait's live message (the first message that said it waits).
fn wait_message(t: &TestBot) -> String {
    t.said()
        .into_iter()
        .find_map(|s| match s {
            Said::Sent { id, message, .. }
                if message.title.starts_with("Waiting for the checks") =>
            {
                Some(id)
            }
            _ => None,
        })
        .expect("a wait message")
}

/// The latest content of message `id`.
fn latest(t: &TestBot, id: &str) -> Message {
    t.said()
        .into_iter()
        .rev()
        .find_map(|s| match s {
            Said::Sent { id: i, message, .. } | Said::Edited { id: i, message, .. } if i == id => {
                Some(message)
            }
            _ => None,
        })
        .expect("that message")
}

fn text(m: &Message) -> String {
    format!("{}\n{}", m.title, m.lines.join("\n"))
}

/// Waits until message `id` shows `wanted`.
async fn shows(t: &TestBot, id: &str, wanted: &str) -> Message {
    wait_for(BOUND, wanted, || {
        let m = latest(t, id);
        text(&m).contains(wanted).then_some(m)
    })
    .await
}

/// Starts waiting for `wip` as alice; returns the wait's message id.
async fn wait_for_wip(t: &TestBot) -> String {
    let out = t.say("deploy api/wip to staging when green").await;
    assert!(out.contains("Waiting for the checks on api/wip"), "{out}");
    assert!(out.contains("ci/build: pending"), "{out}");
    assert!(out.contains("cancel"), "{out}");
    assert!(t.deployment_posts().is_empty(), "nothing deployed yet");
    wait_message(t)
}

async fn settle(t: &TestBot, clock: &ManualClock) {
    // Past the poll interval, and a few housekeeping rounds: whatever could deploy again.
    for _ in 0..3 {
        clock.advance(Duration::from_secs(31));
        t.bot().tick().await;
    }
}

#[tokio::test]
async fn deploys_exactly_once_when_the_checks_turn_green_by_webhook() {
    let (t, clock, sha) = start(true).await;
    let mid = wait_for_wip(&t).await;

    // The clock does not move: only the `status` webhook can end the wait.
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    wait_for(BOUND, "the deployment", || {
        (t.deployment_posts().len() == 1).then_some(())
    })
    .await;
    let deployment = &t.sandbox.deployments(API)[0];
    assert_eq!(deployment["sha"], sha.as_str());
    assert_eq!(deployment["environment"], "staging");
    // The same message follows the deployment, and the deploy ran as alice.
    assert_eq!(
        deployment["payload"]["deploybot"]["chat"]["message"],
        mid.as_str()
    );
    assert_eq!(deployment["payload"]["deploybot"]["user"]["name"], "alice");
    let shown = shows(&t, &mid, "went green").await;
    assert!(shown.title.contains("api/wip"), "{shown:?}");

    // More green statuses, more polls: still one deployment.
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    settle(&t, &clock).await;
    assert_eq!(t.deployment_posts().len(), 1);
}

#[tokio::test]
async fn deploys_by_the_poll_alone_when_no_webhook_comes() {
    let (t, clock, _) = start(false).await;
    let mid = wait_for_wip(&t).await;
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    t.bot().tick().await;
    assert!(
        t.deployment_posts().is_empty(),
        "read again only once the poll interval passed"
    );
    clock.advance(Duration::from_secs(31));
    t.bot().tick().await;
    wait_for(BOUND, "the deployment", || {
        (t.deployment_posts().len() == 1).then_some(())
    })
    .await;
    shows(&t, &mid, "went green").await;
    settle(&t, &clock).await;
    assert_eq!(t.deployment_posts().len(), 1);
}

#[tokio::test]
async fn a_failing_check_ends_the_wait_and_says_which() {
    let (t, clock, sha) = start(true).await;
    let mid = wait_for_wip(&t).await;
    t.sandbox.set_status(API, "wip", "ci/build", "failure");
    let m = shows(&t, &mid, "Not deployed: ci/build failed").await;
    assert!(text(&m).contains(&sha[..7]), "{m:?}");
    assert!(text(&m).contains("ci/build: failure"), "{m:?}");
    assert!(
        text(&m).contains("deploy api/wip to staging when green"),
        "{m:?}"
    );
    // Green afterwards changes nothing: the wait is over.
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    settle(&t, &clock).await;
    assert!(t.deployment_posts().is_empty());
}

#[tokio::test]
async fn a_push_to_the_ref_ends_the_wait_naming_the_commit_asked_for() {
    let (t, clock, asked) = start(true).await;
    let mid = wait_for_wip(&t).await;
    let pushed = t.sandbox.commit(API, "wip", "One more thing");
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    // The green status is the new commit's: only the poll sees the ref has moved.
    clock.advance(Duration::from_secs(31));
    t.bot().tick().await;
    let m = shows(&t, &mid, "is no longer its head").await;
    assert!(text(&m).contains(&asked[..7]), "{m:?}");
    assert!(text(&m).contains(&pushed[..7]), "{m:?}");
    settle(&t, &clock).await;
    assert!(t.deployment_posts().is_empty());
}

#[tokio::test]
async fn the_wait_times_out_after_when_green_timeout() {
    let (t, clock, _) = start(true).await;
    let mid = wait_for_wip(&t).await;
    clock.advance(Duration::from_secs(59 * 60));
    t.bot().tick().await;
    assert!(text(&latest(&t, &mid)).contains("Waiting"), "not yet");
    clock.advance(Duration::from_secs(2 * 60));
    t.bot().tick().await;
    let m = shows(&t, &mid, "were not all green after 1h").await;
    assert!(text(&m).contains("ci/build: pending"), "{m:?}");
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    settle(&t, &clock).await;
    assert!(t.deployment_posts().is_empty());
}

#[tokio::test]
async fn cancel_ends_your_own_wait_only() {
    let (t, clock, _) = start(true).await;
    let mid = wait_for_wip(&t).await;
    let out = t.say_as("bob", &["dev"], "deploys", "cancel").await;
    assert!(out.contains("nothing to cancel"), "{out}");
    let id = latest(&t, &mid).fields[0].value.clone();
    let out = t
        .say_as("bob", &["dev"], "deploys", &format!("cancel {id}"))
        .await;
    assert!(out.contains("only alice can cancel"), "{out}");

    t.say("cancel").await;
    let m = shows(&t, &mid, "cancelled by alice").await;
    assert!(text(&m).contains("nothing was deployed"), "{m:?}");
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    settle(&t, &clock).await;
    assert!(t.deployment_posts().is_empty());
}

#[tokio::test]
async fn a_racing_webhook_and_poll_deploy_once() {
    let (t, clock, _) = start(true).await;
    wait_for_wip(&t).await;
    clock.advance(Duration::from_secs(31));
    // The webhook (its loop) and several housekeeping rounds, all at once.
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    let bot = t.bot();
    tokio::join!(bot.tick(), bot.tick(), bot.tick(), bot.tick());
    wait_for(BOUND, "the deployment", || {
        (t.deployment_posts().len() == 1).then_some(())
    })
    .await;
    settle(&t, &clock).await;
    assert_eq!(t.deployment_posts().len(), 1);
}

#[tokio::test]
async fn a_lock_taken_meanwhile_ends_the_wait_with_its_refusal() {
    let (t, clock, _) = start(true).await;
    let mid = wait_for_wip(&t).await;
    let out = t
        .say_as(
            "bob",
            &["dev"],
            "deploys",
            "lock staging on api -- release check",
        )
        .await;
    assert!(out.contains("locked"), "{out}");
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    let m = shows(&t, &mid, "bob").await;
    assert!(text(&m).contains("lock"), "{m:?}");
    settle(&t, &clock).await;
    assert!(t.deployment_posts().is_empty());
}

#[tokio::test]
async fn refuses_to_wait_for_checks_that_failed_already_and_deploys_at_once_when_green() {
    let (t, _clock, _) = start(true).await;
    let out = t.say("deploy api/broken to staging when green").await;
    assert!(out.contains("not waiting"), "{out}");
    assert!(out.contains("ci/build: failure"), "{out}");
    assert!(t.deployment_posts().is_empty());
    // Green already: nothing to wait for.
    t.say("deploy api/topic to staging when green").await;
    assert_eq!(t.deployment_posts().len(), 1);
}

#[tokio::test]
async fn the_wait_survives_a_restart_and_is_caught_up() {
    let (mut t, clock, _) = start(true).await;
    let mid = wait_for_wip(&t).await;
    t.kill().await;
    // Green while the bot is down: no webhook reaches it.
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    t.boot().await;
    t.bot().tick().await;
    wait_for(BOUND, "the deployment", || {
        (t.deployment_posts().len() == 1).then_some(())
    })
    .await;
    shows(&t, &mid, "went green").await;
    settle(&t, &clock).await;
    assert_eq!(t.deployment_posts().len(), 1);
}

#[tokio::test]
async fn the_deploy_when_green_button_does_what_the_typed_command_does() {
    let (t, clock, _) = start(true).await;
    let out = t.say("deploy api/wip to staging").await;
    assert!(out.contains("checks on api/wip are not all green"), "{out}");
    assert!(
        out.contains(
            "to deploy it the moment they pass, type `deploy api/wip to staging when green`"
        ),
        "{out}"
    );
    let (refusal, action) = t
        .said()
        .into_iter()
        .find_map(|s| {
            let (id, message) = match s {
                Said::Sent { id, message, .. } | Said::Edited { id, message, .. } => (id, message),
            };
            message
                .actions
                .iter()
                .find(|a| matches!(a, Action::WhenGreen { .. }))
                .cloned()
                .map(|a| (id, a))
        })
        .expect("a Deploy when green button");
    assert_eq!(action.command(), "deploy api/wip to staging when green");
    let press = |user: &str| Request {
        conversation: Conversation {
            adapter: "shell".into(),
            channel: "deploys".into(),
            channel_name: Some("deploys".into()),
            thread: None,
            interaction: None,
        },
        message_id: None,
        user: ChatUser {
            id: user.to_string(),
            name: user.to_string(),
            roles: vec!["dev".into(), "release".into()],
        },
        text: action.command(),
        addressing: Addressing::Direct,
        pressed: Some(Pressed {
            message: refusal.clone(),
            replacing: None,
        }),
    };
    t.bot().handle(press("alice")).await;
    let mid = wait_message(&t);
    assert!(text(&latest(&t, &mid)).contains("ci/build: pending"));
    // Pressed again: used already, nothing more.
    t.bot().handle(press("alice")).await;
    assert!(t.take_output().contains("this button was already used"));
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    // The refused deploy was one POST (409); the wait's deploy is the second, and the
    // only deployment.
    wait_for(BOUND, "the deployment", || {
        (t.sandbox.deployments(API).len() == 1).then_some(())
    })
    .await;
    let deployment = &t.sandbox.deployments(API)[0];
    assert_eq!(
        deployment["payload"]["deploybot"]["chat"]["message"],
        mid.as_str()
    );
    settle(&t, &clock).await;
    assert_eq!(t.deployment_posts().len(), 2);
    assert_eq!(t.sandbox.deployments(API).len(), 1);
}

#[tokio::test]
async fn one_wait_per_environment() {
    let (t, clock, _) = start(true).await;
    let mid = wait_for_wip(&t).await;
    let id = latest(&t, &mid).fields[0].value.clone();
    t.sandbox.create_branch(API, "wip2", "main");
    t.sandbox.commit(API, "wip2", "Other work");
    t.sandbox.set_status(API, "wip2", "ci/build", "pending");
    let out = t
        .say_as(
            "bob",
            &["dev"],
            "deploys",
            "deploy api/wip2 to staging when green",
        )
        .await;
    assert!(
        out.contains("alice already waits to deploy api/wip"),
        "{out}"
    );
    assert!(out.contains(&format!("`cancel {id}`")), "{out}");
    // Both go green: only alice's wait deploys.
    t.sandbox.set_status(API, "wip2", "ci/build", "success");
    t.sandbox.set_status(API, "wip", "ci/build", "success");
    wait_for(BOUND, "the deployment", || {
        (t.deployment_posts().len() == 1).then_some(())
    })
    .await;
    settle(&t, &clock).await;
    assert_eq!(t.deployment_posts().len(), 1);
    assert_eq!(t.sandbox.deployments(API)[0]["ref"], "wip");
}
