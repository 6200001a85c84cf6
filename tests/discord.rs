//! The Discord adapter end to end: the real serenity client against a fake Discord on
//! loopback (REST + gateway), the bot's core against the GitHub sandbox, a real SQLite
//! file and the real webhook server. Every wait is on a condition, with a bound.

mod fake_discord;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use deploybot::chat::discord::{DiscordBot, RunError};
use deploybot::clock::SystemClock;
use fake_discord::{
    FakeDiscord, APP_ID, BOT_ID, DEPLOYS, DEV, GUILD, ONCALL, OPS, RANDOM, RELEASE, THREAD,
};
use sandbox::{Deployer, Sandbox};
use serde_json::{json, Value};
use serenity::all::ConnectionStage;
use support::{parse_config, seed, wait_for, SECRET};
use tokio::sync::oneshot;

const BOUND: Duration = Duration::from_secs(10);

const ALICE: (u64, &str) = (100_000_000_000_000_001, "alice");
const BOB: (u64, &str) = (100_000_000_000_000_002, "bob");
const OLGA: (u64, &str) = (100_000_000_000_000_003, "olga");

struct Harness {
    fake: FakeDiscord,
    sandbox: Sandbox,
    webhook: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), RunError>>>,
    _dir: tempfile::TempDir,
}

fn config_text(fake: &FakeDiscord, dir: &std::path::Path, extra: &str) -> String {
    support::discord_config(
        &fake.url(),
        GUILD,
        &format!("url = \"sqlite://{}\"", dir.join("deploybot.db").display()),
        "127.0.0.1:0",
        extra,
    )
}

impl Harness {
    /// A connected bot: the shard is Connected, the guild announced.
    async fn start() -> Harness {
        Self::start_with("").await
    }

    /// With more config (apps) before the `[discord]` table.
    async fn start_with(extra: &str) -> Harness {
        let fake = FakeDiscord::start().await;
        let sandbox = Sandbox::start().await.expect("sandbox");
        seed(&sandbox);
        let dir = tempfile::tempdir().expect("tempdir");
        let config = parse_config(
            &config_text(&fake, dir.path(), extra),
            &sandbox,
            &sandbox.token(),
        );
        let bot = DiscordBot::new(Arc::new(config), Arc::new(SystemClock))
            .await
            .expect("bot");
        let webhook = format!(
            "http://{}/webhook",
            bot.webhook_addr().expect("webhook server")
        );
        let manager = bot.shard_manager();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bot.run(async {
            let _ = stopped.await;
        }));
        let h = Harness {
            fake,
            sandbox,
            webhook,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        };
        wait_for(BOUND, "the shard to be connected", || {
            manager.runners.try_lock().ok().and_then(|r| {
                r.values()
                    .any(|i| i.stage == ConnectionStage::Connected)
                    .then_some(())
            })
        })
        .await;
        h
    }

    /// Graceful shutdown; returns what `run` returned.
    async fn stop(&mut self) -> Result<(), RunError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("shutdown within the bound")
            .expect("run task")
    }

    /// alice's `deploy api/broken to staging`, refused for its failing checks: the
    /// message (its id, and as it then reads, with the Force button).
    async fn refused_on_checks(&self) -> (u64, Value) {
        self.fake
            .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/broken to staging");
        let refused = self
            .posted(DEPLOYS, "Creating a deployment of api/broken to staging")
            .await;
        let message = wait_for(BOUND, "the failed checks", || {
            self.fake
                .message(refused)
                .filter(|m| title(m).contains("checks on api/broken are not all green"))
        })
        .await;
        (refused, message)
    }

    /// The first private follow-up to the interaction with `token` (a refusal, a
    /// used or outdated button), waited for.
    async fn private_answer(&self, token: &str, what: &str) -> fake_discord::Call {
        wait_for(BOUND, what, || {
            self.fake
                .calls_to("POST", &format!("/webhooks/{APP_ID}/{token}"))
                .into_iter()
                .next()
        })
        .await
    }

    /// Channel messages the bot posted in `channel`, in order.
    fn posts(&self, channel: u64) -> Vec<fake_discord::Call> {
        self.fake
            .calls_to("POST", &format!("/channels/{channel}/messages"))
    }

    /// The id of the first message posted in `channel` whose embed title, as posted,
    /// contains `text` (later edits may change it).
    async fn posted(&self, channel: u64, text: &str) -> u64 {
        wait_for(
            BOUND,
            &format!("a post in {channel} saying `{text}`"),
            || {
                self.posts(channel)
                    .into_iter()
                    .find(|c| title(&c.body).contains(text))
                    .and_then(|c| c.created)
            },
        )
        .await
    }

    fn deployments(&self) -> Vec<Value> {
        self.sandbox.deployments("acme/api")
    }

    fn deployment_posts(&self) -> usize {
        self.sandbox
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/deployments"))
            .count()
    }
}

fn title(m: &Value) -> String {
    m["embeds"][0]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn description(m: &Value) -> String {
    m["embeds"][0]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The custom ids of a message's action buttons.
fn custom_ids(m: &Value) -> Vec<String> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["custom_id"].as_str().map(str::to_string))
        .collect()
}

fn link_urls(m: &Value) -> Vec<String> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["url"].as_str().map(str::to_string))
        .collect()
}

fn member(who: (u64, &'static str), roles: &'static [u64]) -> (u64, &'static str, &'static [u64]) {
    (who.0, who.1, roles)
}

#[tokio::test]
async fn a_prefixed_or_mentioned_command_creates_a_deployment_and_the_answer_is_edited_in_place() {
    let mut h = Harness::start().await;
    h.fake.say(
        DEPLOYS,
        ALICE,
        &[RELEASE, DEV],
        "!deploy api/topic to staging",
    );
    let deployment = wait_for(BOUND, "a deployment", || h.deployments().first().cloned()).await;
    let id = deployment["id"].as_u64().unwrap();
    let routing = &deployment["payload"]["deploybot"];
    assert_eq!(routing["chat"]["adapter"], "discord");
    assert_eq!(routing["chat"]["channel"], DEPLOYS.to_string());
    assert_eq!(routing["chat"]["thread"], Value::Null);
    assert_eq!(
        routing["user"],
        json!({"id": ALICE.0.to_string(), "name": "alice"})
    );
    // The message in the payload is the one the bot posted, then edited with the outcome.
    let message: u64 = routing["chat"]["message"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let created = wait_for(BOUND, "the created message", || {
        h.fake
            .message(message)
            .filter(|m| title(m).contains(&format!("Created deployment #{id} of api/topic")))
    })
    .await;
    assert_eq!(
        h.posts(DEPLOYS).len(),
        1,
        "one message, edited: {:?}",
        h.posts(DEPLOYS)
    );
    assert!(title(&h.posts(DEPLOYS)[0].body).contains("Creating a deployment of api/topic"));
    let fields: Vec<&str> = created["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"requested by"), "{fields:?}");
    assert!(
        link_urls(&created)
            .iter()
            .any(|u| u.ends_with("/acme/api/deployments")),
        "{created:#}"
    );

    // A mention works like the prefix, and the nickname is the name.
    let (_, d) = h.fake.message_from(
        DEPLOYS,
        BOB,
        &[RELEASE],
        Some("Bobby"),
        &format!("<@!{BOT_ID}> deploy api/topic to qa"),
    );
    h.fake.dispatch("MESSAGE_CREATE", d, |e| {
        matches!(e, serenity::all::Event::MessageCreate(_))
    });
    let second = wait_for(BOUND, "a second deployment", || {
        h.deployments()
            .into_iter()
            .find(|d| d["environment"] == "qa")
    })
    .await;
    assert_eq!(second["payload"]["deploybot"]["user"]["name"], "Bobby");
    h.fake
        .say(RANDOM, ALICE, &[], &format!("<@{BOT_ID}> help deploy"));
    h.posted(RANDOM, "deploy").await;
    assert!(h.stop().await.is_ok());
}

#[tokio::test]
async fn a_message_not_addressed_to_the_bot_is_ignored() {
    let mut h = Harness::start().await;
    // The slash commands are registered once the shard is ready: not this test's call.
    wait_for(BOUND, "the slash commands to be registered", || {
        (!h.fake.calls_to("PUT", "/commands").is_empty()).then_some(())
    })
    .await;
    h.fake.clear_calls();
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "deploy api/topic to staging");
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "we should deploy api soon <@1>");
    // A barrier: a command said after them is answered.
    h.fake.say(RANDOM, ALICE, &[RELEASE], "!locks");
    wait_for(BOUND, "the answer to the barrier", || {
        (!h.posts(RANDOM).is_empty()).then_some(())
    })
    .await;
    let calls = h.fake.calls();
    assert_eq!(calls.len(), 1, "only the barrier's answer: {calls:?}");
    assert!(h.posts(DEPLOYS).is_empty());
    assert_eq!(h.deployment_posts(), 0);
    assert!(h
        .sandbox
        .requests()
        .iter()
        .all(|r| !r.path.contains("/deployments")));
    h.stop().await.ok();
}

#[tokio::test]
async fn status_events_edit_the_progress_embed_in_place_until_success() {
    let mut h = Harness::start().await;
    h.sandbox.add_webhook(&h.webhook, SECRET);
    h.sandbox
        .set_deployer(Deployer::auto(Duration::from_millis(30)));
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/topic to staging");
    let deployment = wait_for(BOUND, "a deployment", || h.deployments().first().cloned()).await;
    let message: u64 = deployment["payload"]["deploybot"]["chat"]["message"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let done = wait_for(BOUND, "the message to show success", || {
        h.fake
            .message(message)
            .filter(|m| title(m).contains(": success"))
    })
    .await;
    assert_eq!(done["embeds"][0]["color"], json!(0x57F287), "{done:#}");
    assert!(
        link_urls(&done)
            .iter()
            .any(|u| u.contains("/acme/api/actions/runs/")),
        "log link button: {done:#}"
    );
    // Every update was an edit of that one message.
    let edits = h.fake.calls_to("PATCH", "/messages/");
    assert!(edits.len() >= 2, "{edits:?}");
    assert!(edits
        .iter()
        .all(|c| c.path == format!("/channels/{DEPLOYS}/messages/{message}")));
    // The end is announced once, pinging the requester and nobody else.
    let announced = wait_for(BOUND, "the announcement", || {
        h.posts(DEPLOYS)
            .into_iter()
            .find(|c| c.body["content"] == json!(format!("<@{}>", ALICE.0)))
    })
    .await;
    assert_eq!(
        announced.body["allowed_mentions"]["users"],
        json!([ALICE.0.to_string()])
    );
    assert!(h.stop().await.is_ok());
}

#[tokio::test]
async fn slash_deploy_is_deferred_at_once_then_answered_in_the_channel() {
    let mut h = Harness::start().await;
    let sent = Instant::now();
    let (iid, token) = h.fake.slash(
        2,
        DEPLOYS,
        member(ALICE, &[RELEASE]),
        "deploy",
        json!([
            {"name": "app", "type": 3, "value": "api"},
            {"name": "ref", "type": 3, "value": "topic"},
            {"name": "environment", "type": 3, "value": "staging"},
        ]),
    );
    let callback = wait_for(BOUND, "the deferral", || {
        h.fake
            .calls_to("POST", &format!("/interactions/{iid}/{token}/callback"))
            .into_iter()
            .next()
    })
    .await;
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(callback.body["type"], 5, "deferred: {:?}", callback.body);
    assert_eq!(callback.body["data"]["flags"], 64, "ephemeral 'thinking'");
    // The text twin went through the core: a deployment, tracked by a channel message.
    let deployment = wait_for(BOUND, "a deployment", || h.deployments().first().cloned()).await;
    assert_eq!(deployment["ref"], "topic");
    let message: u64 = deployment["payload"]["deploybot"]["chat"]["message"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    wait_for(BOUND, "the channel message", || {
        h.fake
            .message(message)
            .filter(|m| title(m).contains("Created deployment"))
    })
    .await;
    // Then the follow-up: the "thinking…" becomes a pointer to the channel message.
    let ack = wait_for(BOUND, "the follow-up", || {
        h.fake
            .calls_to(
                "PATCH",
                &format!("/webhooks/{APP_ID}/{token}/messages/@original"),
            )
            .into_iter()
            .next()
    })
    .await;
    let text = ack.body["content"].as_str().unwrap_or_default();
    assert!(
        text.contains(&format!("/channels/{GUILD}/{DEPLOYS}/{message}")),
        "{text}"
    );
    let calls = h.fake.calls();
    let deferred_at = calls
        .iter()
        .position(|c| c.path.ends_with("/callback"))
        .unwrap();
    let posted_at = calls
        .iter()
        .position(|c| c.path == format!("/channels/{DEPLOYS}/messages"))
        .unwrap();
    assert!(deferred_at < posted_at, "defer first: {calls:?}");
    assert!(h.stop().await.is_ok());
}

#[tokio::test]
async fn a_refused_slash_command_is_answered_privately() {
    let mut h = Harness::start().await;
    let (_, token) = h.fake.slash(
        2,
        DEPLOYS,
        member(BOB, &[DEV]),
        "deploy",
        json!([
            {"name": "app", "type": 3, "value": "api"},
            {"name": "environment", "type": 3, "value": "production"},
        ]),
    );
    let answer = wait_for(BOUND, "the private refusal", || {
        h.fake
            .calls_to(
                "PATCH",
                &format!("/webhooks/{APP_ID}/{token}/messages/@original"),
            )
            .into_iter()
            .next()
    })
    .await;
    assert!(title(&answer.body).starts_with("🚫"), "{:?}", answer.body);
    assert!(
        format!("{}{}", title(&answer.body), description(&answer.body)).contains("release"),
        "says who may: {:?}",
        answer.body
    );
    assert!(h.posts(DEPLOYS).is_empty(), "nothing public");
    assert_eq!(h.deployment_posts(), 0);
    h.stop().await.ok();
}

#[tokio::test]
async fn force_deploy_button_runs_as_the_presser_and_is_authorised_again() {
    let mut h = Harness::start().await;
    // staging: everyone may force. alice's deploy fails its checks; bob presses Force.
    let (refused, message) = h.refused_on_checks().await;
    let ids = custom_ids(&message);
    assert_eq!(
        ids,
        vec!["db1:f:deploy! api/broken to staging"],
        "{message:#}"
    );
    assert_eq!(h.deployment_posts(), 1);

    let (iid, token) = h.fake.press(DEPLOYS, member(BOB, &[DEV]), refused, &ids[0]);
    let forced = wait_for(BOUND, "the forced deployment", || {
        h.deployments().into_iter().find(|d| d["ref"] == "broken")
    })
    .await;
    let post = h
        .sandbox
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path.ends_with("/deployments"))
        .unwrap();
    assert_eq!(post.body.unwrap()["required_contexts"], json!([]));
    assert_eq!(
        forced["payload"]["deploybot"]["user"]["id"],
        BOB.0.to_string(),
        "run as the presser"
    );
    let ack = h
        .fake
        .calls_to("POST", &format!("/interactions/{iid}/{token}/callback"));
    assert_eq!(ack[0].body["type"], 6, "acknowledged silently");

    // production: only oncall may force, and a reason is needed. olga's deploy fails.
    h.fake
        .say(DEPLOYS, OLGA, &[ONCALL], "!deploy api/broken to production");
    let second = h
        .posted(DEPLOYS, "Creating a deployment of api/broken to production")
        .await;
    let message = wait_for(BOUND, "the failed checks in production", || {
        h.fake
            .message(second)
            .filter(|m| title(m).contains("not all green"))
    })
    .await;
    let force = custom_ids(&message).remove(0);
    assert!(force.ends_with("-- REASON"), "{force}");
    let before = h.deployment_posts();

    // bob (release) presses: a reason dialog opens; after it, the core refuses him.
    let (iid, token) = h
        .fake
        .press(DEPLOYS, member(BOB, &[RELEASE]), second, &force);
    let modal = wait_for(BOUND, "the reason dialog", || {
        h.fake
            .calls_to("POST", &format!("/interactions/{iid}/{token}/callback"))
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(modal.body["type"], 9, "{:?}", modal.body);
    let modal_id = modal.body["data"]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    let input = modal.body["data"]["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, token) = h.fake.submit_modal(
        DEPLOYS,
        member(BOB, &[RELEASE]),
        second,
        &modal_id,
        &input,
        "hotfix",
    );
    let refusal = h.private_answer(&token, "the private refusal").await;
    assert_eq!(refusal.body["flags"], 64, "ephemeral: {:?}", refusal.body);
    assert!(title(&refusal.body).starts_with("🚫"), "{:?}", refusal.body);
    assert_eq!(h.deployment_posts(), before, "nothing sent to GitHub");

    // olga (oncall) presses and gives a reason: forced, with the reason.
    let (iid, token) = h
        .fake
        .press(DEPLOYS, member(OLGA, &[ONCALL]), second, &force);
    wait_for(BOUND, "the reason dialog", || {
        h.fake
            .calls_to("POST", &format!("/interactions/{iid}/{token}/callback"))
            .into_iter()
            .next()
    })
    .await;
    h.fake.submit_modal(
        DEPLOYS,
        member(OLGA, &[ONCALL]),
        second,
        &modal_id,
        &input,
        "hotfix for the outage",
    );
    let forced = wait_for(BOUND, "the forced production deployment", || {
        h.deployments()
            .into_iter()
            .find(|d| d["environment"] == "production")
    })
    .await;
    assert_eq!(
        forced["payload"]["deploybot"]["reason"],
        "hotfix for the outage"
    );
    h.stop().await.ok();
}

/// Whether each action button of a message is greyed out (link buttons left out).
fn greyed(m: &Value) -> Vec<bool> {
    m["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter(|b| b["custom_id"].is_string())
        .map(|b| b["disabled"].as_bool().unwrap_or(false))
        .collect()
}

/// The channel message that tracks a deployment.
fn tracking_message(deployment: &Value) -> u64 {
    deployment["payload"]["deploybot"]["chat"]["message"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn finished_deployments_offer_retry_and_roll_back_which_run_once_as_the_presser() {
    let mut h = Harness::start().await;
    h.sandbox.add_webhook(&h.webhook, SECRET);
    h.sandbox.set_deployer(Deployer {
        fail_refs: vec!["broken".into()],
        ..Deployer::auto(Duration::from_millis(30))
    });
    let find =
        |h: &Harness, git_ref: &str| h.deployments().into_iter().find(|d| d["ref"] == git_ref);

    // A success offers Roll back, for that deployment.
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/topic to staging");
    let topic = wait_for(BOUND, "topic's deployment", || find(&h, "topic")).await;
    let topic_id = topic["id"].as_u64().unwrap();
    let topic_message = tracking_message(&topic);
    let succeeded = wait_for(BOUND, "the success, with its button", || {
        h.fake
            .message(topic_message)
            .filter(|m| title(m).contains(": success") && !custom_ids(m).is_empty())
    })
    .await;
    let topic_rollback = format!("db1:b:{topic_id}:rollback api in staging");
    assert_eq!(custom_ids(&succeeded), vec![topic_rollback.clone()]);

    // A failure offers Retry (the deploy, not forced) and Roll back.
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy! api/broken to staging");
    let broken = wait_for(BOUND, "broken's deployment", || find(&h, "broken")).await;
    let broken_id = broken["id"].as_u64().unwrap();
    let broken_message = tracking_message(&broken);
    let failed = wait_for(BOUND, "the failure, with its buttons", || {
        h.fake
            .message(broken_message)
            .filter(|m| title(m).contains(": failure") && custom_ids(m).len() == 2)
    })
    .await;
    let ids = custom_ids(&failed);
    assert_eq!(
        ids,
        vec![
            "db1:t:deploy api/broken to staging".to_string(),
            format!("db1:b:{broken_id}:rollback api in staging")
        ]
    );

    // Retry is `deploy api/broken to staging` as the presser: its checks still fail,
    // so GitHub refuses it, the bot offers Force, and the buttons stay usable.
    let before = h.deployments().len();
    let posts = h.posts(DEPLOYS).len();
    h.fake
        .press(DEPLOYS, member(BOB, &[RELEASE]), broken_message, &ids[0]);
    let refusal = wait_for(BOUND, "the refusal", || {
        h.posts(DEPLOYS)
            .into_iter()
            .skip(posts)
            .filter_map(|c| c.created)
            .filter_map(|id| h.fake.message(id))
            .find(|m| title(m).contains("not all green"))
    })
    .await;
    assert!(description(&refusal).contains("bob") || title(&refusal).contains("broken"));
    assert_eq!(
        custom_ids(&refusal),
        vec!["db1:f:deploy! api/broken to staging"]
    );
    wait_for(BOUND, "the buttons usable again", || {
        h.fake
            .message(broken_message)
            .filter(|m| greyed(m) == vec![false, false])
    })
    .await;
    assert_eq!(h.deployments().len(), before, "nothing deployed");

    // Roll back puts back what was live before the failure (topic's sha), as bob;
    // then the failure's buttons are greyed out.
    h.fake
        .press(DEPLOYS, member(BOB, &[RELEASE]), broken_message, &ids[1]);
    let rollback = wait_for(BOUND, "the rollback", || {
        h.deployments()
            .into_iter()
            .find(|d| d["sha"] == topic["sha"] && d["id"] != topic["id"])
    })
    .await;
    assert_eq!(
        rollback["payload"]["deploybot"]["user"]["id"],
        BOB.0.to_string()
    );
    assert_eq!(rollback["payload"]["deploybot"]["rollback_of"], broken_id);
    wait_for(BOUND, "the used buttons greyed out", || {
        h.fake
            .message(broken_message)
            .filter(|m| greyed(m) == vec![true, true])
    })
    .await;
    let rollback_id = rollback["id"].as_u64().unwrap();
    wait_for(BOUND, "the rollback to succeed", || {
        h.sandbox
            .deployment_statuses("acme/api", rollback_id)
            .iter()
            .any(|s| s["state"] == "success")
            .then_some(())
    })
    .await;

    // A second press of a used button: said privately, nothing deployed.
    let deployed = h.deployment_posts();
    let (_, token) = h
        .fake
        .press(DEPLOYS, member(ALICE, &[RELEASE]), broken_message, &ids[0]);
    let used = h.private_answer(&token, "the used answer").await;
    assert_eq!(used.body["flags"], 64);
    let said = title(&used.body);
    assert!(
        said.contains("already used") && said.contains("bob"),
        "{said}"
    );
    assert!(
        description(&used.body).contains("deploy api/broken to staging"),
        "what to type to do it anyway: {:?}",
        used.body
    );

    // topic's Roll back is outdated: a rollback would now replace the rollback.
    let (_, token) = h.fake.press(
        DEPLOYS,
        member(ALICE, &[RELEASE]),
        topic_message,
        &topic_rollback,
    );
    let outdated = h.private_answer(&token, "the outdated answer").await;
    let said = title(&outdated.body);
    assert!(
        said.contains(&format!("was for #{topic_id}")) && said.contains(&format!("#{rollback_id}")),
        "{said}"
    );
    assert_eq!(
        h.deployment_posts(),
        deployed,
        "nothing more sent to GitHub"
    );
    h.stop().await.ok();
}

#[tokio::test]
async fn a_used_force_button_is_greyed_out_and_a_second_press_does_not_deploy_again() {
    let mut h = Harness::start().await;
    let (refused, message) = h.refused_on_checks().await;
    let force = custom_ids(&message).remove(0);
    h.fake.press(DEPLOYS, member(BOB, &[DEV]), refused, &force);
    wait_for(BOUND, "the forced deployment", || {
        (h.deployment_posts() == 2).then_some(())
    })
    .await;
    wait_for(BOUND, "the Force button greyed out", || {
        h.fake.message(refused).filter(|m| greyed(m) == vec![true])
    })
    .await;
    // Pressed again (a second click, or someone else): answered, not deployed.
    let (_, token) = h
        .fake
        .press(DEPLOYS, member(OLGA, &[ONCALL]), refused, &force);
    let answer = h.private_answer(&token, "the used answer").await;
    assert!(
        title(&answer.body).contains("already used: bob pressed it"),
        "{:?}",
        answer.body
    );
    assert_eq!(h.deployment_posts(), 2);
    h.stop().await.ok();
}

#[tokio::test]
async fn a_lock_offers_unlock_which_releases_it_for_its_holder_only() {
    let mut h = Harness::start().await;
    h.fake.say(
        DEPLOYS,
        ALICE,
        &[RELEASE],
        "!lock staging on api -- testing",
    );
    let locked = h.posted(DEPLOYS, "locked staging on api").await;
    let message = wait_for(BOUND, "the Unlock button", || {
        h.fake.message(locked).filter(|m| !custom_ids(m).is_empty())
    })
    .await;
    let unlock = custom_ids(&message).remove(0);
    assert_eq!(unlock, "db1:u:unlock staging on api");
    // bob may not release alice's lock with plain unlock: refused, button still usable.
    let (_, token) = h.fake.press(DEPLOYS, member(BOB, &[DEV]), locked, &unlock);
    let refusal = h.private_answer(&token, "the private refusal").await;
    assert!(
        title(&refusal.body).contains("alice"),
        "names the holder: {:?}",
        refusal.body
    );
    wait_for(BOUND, "the button usable again", || {
        h.fake.message(locked).filter(|m| greyed(m) == vec![false])
    })
    .await;
    // alice's press releases it.
    h.fake
        .press(DEPLOYS, member(ALICE, &[RELEASE]), locked, &unlock);
    wait_for(BOUND, "the unlock", || {
        h.posts(DEPLOYS)
            .into_iter()
            .find(|c| title(&c.body).contains("unlocked staging on api"))
    })
    .await;
    wait_for(BOUND, "the button greyed out", || {
        h.fake.message(locked).filter(|m| greyed(m) == vec![true])
    })
    .await;
    h.stop().await.ok();
}

/// Every call that carries message text (posts, edits, interaction answers and their
/// follow-ups), with the text it carried.
fn message_calls(h: &Harness) -> Vec<fake_discord::Call> {
    h.fake
        .calls()
        .into_iter()
        .filter(|c| {
            let messages = c.path.starts_with("/channels/") && c.path.contains("/messages");
            let webhook = c.path.starts_with("/webhooks/");
            let answer =
                c.path.ends_with("/callback") && matches!(c.body["type"].as_u64(), Some(4 | 7));
            (c.method == "POST" || c.method == "PATCH") && (messages || webhook || answer)
        })
        .collect()
}

#[tokio::test]
async fn nothing_typed_or_reported_can_ping_anyone_only_the_requester_is_mentioned() {
    let mut h = Harness::start().await;
    h.sandbox.add_webhook(&h.webhook, SECRET);
    let pings = format!("@everyone @here <@&{RELEASE}> <@{}> <@!{}>", BOB.0, OLGA.0);
    // In a reason, a lock reason, a GitHub status description, a refusal that echoes
    // the ref, a slash command's reason and a stale button's answer.
    h.fake.say(
        DEPLOYS,
        ALICE,
        &[RELEASE],
        &format!("!deploy api/topic to staging -- {pings}"),
    );
    let deployment = wait_for(BOUND, "a deployment", || h.deployments().first().cloned()).await;
    let id = deployment["id"].as_u64().unwrap();
    h.sandbox.create_deployment_status(
        "acme/api",
        id,
        sandbox::NewStatus {
            description: Some(format!("done {pings}")),
            ..sandbox::NewStatus::new("success")
        },
    );
    wait_for(BOUND, "the announcement", || {
        h.posts(DEPLOYS)
            .into_iter()
            .find(|c| c.body["content"] == json!(format!("<@{}>", ALICE.0)))
    })
    .await;
    h.fake.say(
        DEPLOYS,
        ALICE,
        &[RELEASE],
        &format!("!lock qa on api -- {pings}"),
    );
    h.posted(DEPLOYS, "locked qa on api").await;
    h.fake
        .say(DEPLOYS, BOB, &[DEV], "!deploy api/@everyone to staging");
    h.fake.slash(
        2,
        DEPLOYS,
        member(BOB, &[DEV]),
        "deploy",
        json!([
            {"name": "app", "type": 3, "value": "api"},
            {"name": "environment", "type": 3, "value": "production"},
            {"name": "force", "type": 5, "value": true},
            {"name": "reason", "type": 3, "value": pings},
        ]),
    );
    let (iid, token) = h.fake.press(
        DEPLOYS,
        member(BOB, &[DEV]),
        1,
        "db1:f#0123456789abcdef01234567",
    );
    wait_for(BOUND, "the stale answer", || {
        h.fake
            .calls_to("POST", &format!("/interactions/{iid}/{token}/callback"))
            .into_iter()
            .next()
    })
    .await;
    wait_for(BOUND, "the private refusal of the slash command", || {
        message_calls(&h)
            .into_iter()
            .find(|c| c.path.contains("/messages/@original") && title(&c.body).starts_with("🚫"))
    })
    .await;

    wait_for(BOUND, "the answer to the ref that pings", || {
        message_calls(&h)
            .into_iter()
            .find(|c| c.body.to_string().contains("api/@everyone"))
    })
    .await;

    let calls = message_calls(&h);
    assert!(calls.len() >= 8, "{calls:#?}");
    let echoed = calls
        .iter()
        .filter(|c| c.body.to_string().contains("@everyone"))
        .count();
    assert!(echoed >= 3, "the pings were shown as text: {calls:#?}");
    let mut mentioned = Vec::new();
    for c in &calls {
        let allowed = if c.path.ends_with("/callback") {
            &c.body["data"]["allowed_mentions"]
        } else {
            &c.body["allowed_mentions"]
        };
        assert!(
            allowed.is_object(),
            "no allowed_mentions on {} {}: {}",
            c.method,
            c.path,
            c.body
        );
        let parse = allowed["parse"].as_array().cloned().unwrap_or_default();
        assert!(parse.is_empty(), "{} {} parses {parse:?}", c.method, c.path);
        let roles = allowed["roles"].as_array().cloned().unwrap_or_default();
        assert!(
            roles.is_empty(),
            "{} {} allows roles {roles:?}",
            c.method,
            c.path
        );
        for user in allowed["users"].as_array().into_iter().flatten() {
            mentioned.push(user.as_str().unwrap().to_string());
        }
    }
    // Only the requester, and only where the bot means to (the end of her deployment).
    assert_eq!(mentioned, vec![ALICE.0.to_string()], "{calls:#?}");
    h.stop().await.ok();
}

/// An app whose only environment asks for confirmation.
const CONFIRMING_APP: &str = r#"
[apps.shop]
repository = "acme/web"
default_environment = "live"

[apps.shop.environments.live]
required_contexts = []
confirm = true
"#;

#[tokio::test]
async fn confirm_and_cancel_buttons_answer_for_the_requester_only() {
    let mut h = Harness::start_with(CONFIRMING_APP).await;
    let web_deploys = |h: &Harness| h.sandbox.deployments("acme/web").len();
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy shop to live");
    let question = h.posted(DEPLOYS, "deploy shop").await;
    let asked = wait_for(BOUND, "the Confirm and Cancel buttons", || {
        h.fake
            .message(question)
            .filter(|m| custom_ids(m).len() == 2)
    })
    .await;
    let ids = custom_ids(&asked);
    assert!(
        ids[0].starts_with("db1:c:") && ids[1].starts_with("db1:x:"),
        "{ids:?}"
    );

    // Someone else's press is refused, privately; nothing is deployed.
    let (_, token) = h
        .fake
        .press(DEPLOYS, member(BOB, &[RELEASE]), question, &ids[0]);
    let refusal = h.private_answer(&token, "the private refusal").await;
    assert_eq!(refusal.body["flags"], 64);
    assert!(
        title(&refusal.body).contains("only alice can confirm"),
        "{:?}",
        refusal.body
    );
    assert_eq!(web_deploys(&h), 0);

    // The requester's press deploys, and the question loses its buttons.
    h.fake
        .press(DEPLOYS, member(ALICE, &[RELEASE]), question, &ids[0]);
    wait_for(BOUND, "the confirmed deployment", || {
        (web_deploys(&h) == 1).then_some(())
    })
    .await;
    let answered = wait_for(BOUND, "the question to be answered", || {
        h.fake
            .message(question)
            .filter(|m| title(m).contains("confirmed by alice"))
    })
    .await;
    assert!(custom_ids(&answered).is_empty(), "{answered:#}");

    // Cancel: nothing deployed, said on the question.
    let before = h.posts(DEPLOYS).len();
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy shop to live");
    let question = wait_for(BOUND, "the second question", || {
        h.posts(DEPLOYS)
            .into_iter()
            .skip(before)
            .find(|c| title(&c.body).contains("deploy shop"))
            .and_then(|c| c.created)
    })
    .await;
    let asked = wait_for(BOUND, "the buttons", || {
        h.fake
            .message(question)
            .filter(|m| custom_ids(m).len() == 2)
    })
    .await;
    h.fake.press(
        DEPLOYS,
        member(ALICE, &[RELEASE]),
        question,
        &custom_ids(&asked)[1],
    );
    wait_for(BOUND, "the question to be cancelled", || {
        h.fake
            .message(question)
            .filter(|m| title(m).contains("cancelled by alice"))
    })
    .await;
    assert_eq!(web_deploys(&h), 1);
    h.stop().await.ok();
}

#[tokio::test]
async fn stale_and_foreign_buttons_get_a_clear_private_answer() {
    let mut h = Harness::start().await;
    for (custom_id, says) in [
        ("db1:f#0123456789abcdef01234567", "restarted"),
        ("somebody-elses-button", "does not know this button"),
    ] {
        let (iid, token) = h
            .fake
            .press(DEPLOYS, member(ALICE, &[RELEASE]), 1, custom_id);
        let answer = wait_for(BOUND, "the answer", || {
            h.fake
                .calls_to("POST", &format!("/interactions/{iid}/{token}/callback"))
                .into_iter()
                .next()
        })
        .await;
        assert_eq!(answer.body["type"], 4);
        assert_eq!(answer.body["data"]["flags"], 64);
        let text = answer.body["data"]["content"].as_str().unwrap();
        assert!(text.contains(says), "{text}");
    }
    assert_eq!(h.deployment_posts(), 0);
    h.stop().await.ok();
}

#[tokio::test]
async fn slash_autocomplete_suggests_apps_environments_and_branches() {
    let mut h = Harness::start().await;
    let ask = |options: Value| {
        let (iid, token) = h
            .fake
            .slash(4, DEPLOYS, member(ALICE, &[RELEASE]), "deploy", options);
        (iid, token)
    };
    let answer = |iid: u64, token: String| {
        let fake = h.fake.clone();
        async move {
            let call = wait_for(BOUND, "the suggestions", || {
                fake.calls_to("POST", &format!("/interactions/{iid}/{token}/callback"))
                    .into_iter()
                    .next()
            })
            .await;
            assert_eq!(call.body["type"], 8, "{:?}", call.body);
            call.body["data"]["choices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_string(),
                        c["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };

    let (iid, token) = ask(json!([{"name": "app", "type": 3, "value": "w", "focused": true}]));
    let apps = answer(iid, token).await;
    assert_eq!(
        apps,
        vec![("web (acme/web)".to_string(), "web".to_string())]
    );

    let (iid, token) = ask(json!([
        {"name": "app", "type": 3, "value": "api"},
        {"name": "environment", "type": 3, "value": "pro", "focused": true},
    ]));
    let envs = answer(iid, token).await;
    assert_eq!(
        envs,
        vec![(
            "production (alias: prod)".to_string(),
            "production".to_string()
        )]
    );

    let (iid, token) = ask(json!([
        {"name": "app", "type": 3, "value": "api"},
        {"name": "ref", "type": 3, "value": "TO", "focused": true},
    ]));
    let refs = answer(iid, token).await;
    assert_eq!(refs, vec![("topic".to_string(), "topic".to_string())]);
    h.stop().await.ok();
}

#[tokio::test]
async fn slash_commands_are_registered_in_the_configured_guild_from_the_help() {
    let mut h = Harness::start().await;
    let put = wait_for(BOUND, "the registration", || {
        h.fake
            .calls_to(
                "PUT",
                &format!("/applications/{APP_ID}/guilds/{GUILD}/commands"),
            )
            .into_iter()
            .next()
    })
    .await;
    let names: Vec<&str> = put
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // Every command of the language, in help's order, each with its help summary and
    // the options its help page lists.
    let pages: Vec<&str> = commands::all_help().iter().map(|h| h.name).collect();
    assert_eq!(names, pages);
    for (registered, page) in put
        .body
        .as_array()
        .unwrap()
        .iter()
        .zip(commands::all_help())
    {
        assert_eq!(registered["description"], page.summary, "{}", page.name);
        let options: Vec<&str> = registered["options"]
            .as_array()
            .map(|o| o.iter().map(|o| o["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        let params: Vec<&str> = page.params.iter().map(|p| p.name).collect();
        assert_eq!(options, params, "{}", page.name);
    }
    for wanted in ["rollback", "why", "audit", "whats-on", "confirm", "cancel"] {
        assert!(names.contains(&wanted), "{wanted} missing: {names:?}");
    }
    let deploy = &put.body[0];
    let deploy_options: Vec<&str> = deploy["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert!(deploy_options.contains(&"task") && deploy_options.contains(&"hosts"));
    assert!(
        h.fake.calls_to("PUT", "/applications/").len() == 1,
        "not global too"
    );
    h.stop().await.ok();
}

#[tokio::test]
async fn every_command_works_as_a_slash_command_including_task_hosts_and_whats_on() {
    let mut h = Harness::start().await;
    // `/deploy` with a task and hosts: the deployment GitHub gets has both.
    h.fake.slash(
        2,
        DEPLOYS,
        member(ALICE, &[RELEASE]),
        "deploy",
        json!([
            {"name": "app", "type": 3, "value": "api"},
            {"name": "ref", "type": 3, "value": "topic"},
            {"name": "environment", "type": 3, "value": "staging"},
            {"name": "hosts", "type": 3, "value": "web-1, web-2"},
            {"name": "task", "type": 3, "value": "migrate"},
        ]),
    );
    let deployment = wait_for(BOUND, "a deployment", || h.deployments().first().cloned()).await;
    assert_eq!(deployment["task"], "deploy:migrate");
    assert_eq!(deployment["ref"], "topic");
    assert_eq!(
        deployment["payload"]["deploybot"]["hosts"],
        json!(["web-1", "web-2"]),
        "{deployment}"
    );
    // `/whats-on` and `/why`, which had no slash command before, answer in the channel.
    h.fake.slash(
        2,
        DEPLOYS,
        member(ALICE, &[RELEASE]),
        "whats-on",
        json!([{"name": "environment", "type": 3, "value": "staging"}]),
    );
    wait_for(BOUND, "what is on staging", || {
        h.posts(DEPLOYS)
            .into_iter()
            .map(|c| title(&c.body))
            .find(|t| t.contains("staging") && !t.contains("deployment #"))
    })
    .await;
    let (_, token) = h.fake.slash(
        2,
        DEPLOYS,
        member(BOB, &[DEV]),
        "why",
        json!([{"name": "environment", "type": 3, "value": "production"}]),
    );
    // Answered privately or in the channel, the answer names the rule's role.
    let why = wait_for(BOUND, "why production", || {
        h.fake
            .calls_to(
                "PATCH",
                &format!("/webhooks/{APP_ID}/{token}/messages/@original"),
            )
            .into_iter()
            .chain(h.posts(DEPLOYS))
            .map(|c| format!("{}\n{}", title(&c.body), description(&c.body)))
            .find(|text| text.contains("production"))
    })
    .await;
    assert!(why.contains("release"), "says which role may: {why}");
    h.stop().await.ok();
}

#[tokio::test]
async fn a_command_in_a_thread_is_answered_in_the_thread_under_its_parent_channels_rules() {
    let mut h = Harness::start().await;
    // The thread is not in the cache: its parent comes from a REST lookup, and api may
    // be deployed from #deploys only.
    h.fake
        .say(THREAD, ALICE, &[RELEASE], "!deploy api/topic to staging");
    let deployment = wait_for(BOUND, "a deployment", || h.deployments().first().cloned()).await;
    let chat = &deployment["payload"]["deploybot"]["chat"];
    assert_eq!(chat["channel"], DEPLOYS.to_string());
    assert_eq!(chat["thread"], THREAD.to_string());
    assert!(!h.posts(THREAD).is_empty());
    assert!(h.posts(DEPLOYS).is_empty());
    assert!(!h
        .fake
        .calls_to("GET", &format!("/channels/{THREAD}"))
        .is_empty());
    h.stop().await.ok();
}

#[tokio::test]
async fn the_gateway_reconnects_and_resumes_and_commands_still_work() {
    let mut h = Harness::start().await;
    h.fake.request_reconnect();
    wait_for(BOUND, "a resume after op 7", || {
        (h.fake.resumes() == 1).then_some(())
    })
    .await;
    h.fake.say(RANDOM, ALICE, &[], "!locks");
    wait_for(BOUND, "an answer after the resume", || {
        (h.posts(RANDOM).len() == 1).then_some(())
    })
    .await;

    h.fake.drop_connection();
    wait_for(BOUND, "a resume after a dropped connection", || {
        (h.fake.resumes() == 2).then_some(())
    })
    .await;
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/topic to staging");
    wait_for(BOUND, "a deployment after the second resume", || {
        h.deployments().first().cloned()
    })
    .await;
    assert_eq!(h.fake.identifies(), 1, "resumed, not re-identified");
    assert!(h.stop().await.is_ok(), "clean shutdown");
}

#[tokio::test]
async fn a_bad_token_or_a_missing_intent_is_explained() {
    for (code, says) in [(4004, "Reset Token"), (4014, "Message Content Intent")] {
        let fake = FakeDiscord::start().await;
        fake.refuse_identify(code);
        let sandbox = Sandbox::start().await.expect("sandbox");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = parse_config(
            &config_text(&fake, dir.path(), ""),
            &sandbox,
            &sandbox.token(),
        );
        let bot = DiscordBot::new(Arc::new(config), Arc::new(SystemClock))
            .await
            .expect("bot");
        let result = tokio::time::timeout(BOUND, bot.run(std::future::pending()))
            .await
            .expect("gives up at once");
        let e = result.expect_err("refused");
        let text = e.to_string();
        assert!(text.contains(says), "{code}: {text}");
        assert!(!text.contains("fake-token"), "{text}");
    }
}

/// `deploybot run` as a process against the fake Discord and the sandbox.
async fn spawn_run(
    fake: &FakeDiscord,
    sandbox: &Sandbox,
    dir: &std::path::Path,
) -> tokio::process::Child {
    let path = dir.join("bot.toml");
    std::fs::write(&path, config_text(fake, dir, "")).expect("write config");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_deploybot"))
        .args(["run", "--config"])
        .arg(&path)
        .env("SANDBOX_URL", sandbox.url())
        .env("SANDBOX_TOKEN", sandbox.token())
        .env("DEPLOYBOT_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn deploybot")
}

#[tokio::test]
async fn run_exits_1_with_one_actionable_line_when_discord_refuses_the_intents() {
    let fake = FakeDiscord::start().await;
    fake.refuse_identify(4014);
    let sandbox = Sandbox::start().await.expect("sandbox");
    let dir = tempfile::tempdir().expect("tempdir");
    let child = spawn_run(&fake, &sandbox, dir.path()).await;
    let out = tokio::time::timeout(BOUND, child.wait_with_output())
        .await
        .expect("exits at once")
        .expect("output");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("deploybot: Discord refused the gateway intents")
            && last.contains("Message Content Intent"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("fake-token"),
        "{stderr}"
    );
}

#[tokio::test]
async fn run_shuts_down_cleanly_on_sigterm() {
    let fake = FakeDiscord::start().await;
    let sandbox = Sandbox::start().await.expect("sandbox");
    seed(&sandbox);
    let dir = tempfile::tempdir().expect("tempdir");
    let child = spawn_run(&fake, &sandbox, dir.path()).await;
    wait_for(BOUND, "the process to connect", || {
        (fake.identifies() == 1).then_some(())
    })
    .await;
    // A command still works through the process.
    wait_for(BOUND, "the guild's commands", || {
        (!fake.calls_to("PUT", "/commands").is_empty()).then_some(())
    })
    .await;
    fake.say(RANDOM, ALICE, &[], "!locks");
    wait_for(BOUND, "an answer", || {
        (!fake
            .calls_to("POST", &format!("/channels/{RANDOM}/messages"))
            .is_empty())
        .then_some(())
    })
    .await;
    let pid = child.id().expect("pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits after SIGTERM")
        .expect("output");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `url` until it answers `status`, within `bound`; returns the JSON body.
async fn wait_http(url: &str, status: u16, bound: Duration) -> Value {
    let deadline = Instant::now() + bound;
    loop {
        let r = reqwest::get(url).await.expect("GET");
        let got = r.status().as_u16();
        let body: Value = r.json().await.expect("a JSON body");
        if got == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {got} (not {status}): {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn readyz_follows_the_gateway_connection() {
    let mut h = Harness::start().await;
    let readyz = h.webhook.replace("/webhook", "/readyz");
    let ready = wait_http(&readyz, 200, BOUND).await;
    assert_eq!(ready["chat"]["ready"], true, "{ready}");

    h.fake.go_offline();
    let down = wait_http(&readyz, 503, BOUND).await;
    assert_eq!(down["chat"]["ready"], false, "{down}");
    assert!(
        down["chat"]["reason"]
            .as_str()
            .unwrap()
            .contains("Discord gateway connection lost"),
        "{down}"
    );
    assert_eq!(down["storage"]["ready"], true, "only chat is down: {down}");

    h.fake.come_back();
    // serenity waits a few seconds between reconnection attempts.
    let back = wait_http(&readyz, 200, Duration::from_secs(40)).await;
    assert_eq!(back["ready"], true, "{back}");
    h.stop().await.expect("a clean stop");
}

/// Creates a deployment directly on the sandbox, as a collaborator or a workflow with
/// `deployments: write` could, with `deploybot` as its payload's routing part.
async fn create_foreign(h: &Harness, deploybot: Value) -> u64 {
    let response = reqwest::Client::new()
        .post(format!("{}/repos/acme/api/deployments", h.sandbox.url()))
        .bearer_auth(h.sandbox.token())
        .json(&json!({
            "ref": "main",
            "environment": "staging",
            "required_contexts": [],
            "auto_merge": false,
            "payload": {"deploybot": deploybot},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_deployment_made_elsewhere_cannot_edit_a_message_ping_its_requester_or_post_in_other_channels(
) {
    let mut h = Harness::start().await;
    h.sandbox.add_webhook(&h.webhook, SECRET);
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/topic to staging");
    let deployment = wait_for(BOUND, "a deployment", || h.deployments().first().cloned()).await;
    let route = deployment["payload"]["deploybot"].clone();
    let message: u64 = route["chat"]["message"].as_str().unwrap().parse().unwrap();
    wait_for(BOUND, "alice's message to show the deployment", || {
        h.fake
            .message(message)
            .filter(|m| title(m).contains("Created deployment"))
    })
    .await;
    let edits_before = h
        .fake
        .calls_to("PATCH", &format!("/messages/{message}"))
        .len();

    // mallory copies alice's route (without the bot's mac), and another one to
    // #random, which acme/api does not allow.
    let mut to_alice = route.clone();
    to_alice.as_object_mut().unwrap().remove("mac");
    to_alice["request_id"] = "mallory-1".into();
    let mut to_random = to_alice.clone();
    to_random["request_id"] = "mallory-2".into();
    to_random["chat"]["channel"] = RANDOM.to_string().into();
    to_random["chat"]["message"] = Value::Null;
    let mut ids = Vec::new();
    for route in [to_alice, to_random] {
        let id = create_foreign(&h, route).await;
        h.sandbox.create_deployment_status(
            "acme/api",
            id,
            sandbox::NewStatus {
                description: Some("mallory was here".into()),
                log_url: Some("https://evil.example/run/1".into()),
                ..sandbox::NewStatus::new("failure")
            },
        );
        ids.push(id);
    }
    // Both are announced in #ops, as made elsewhere, and end there. (The first post
    // may already show the failure when both events fall in one render interval.)
    for id in &ids {
        let posted = h.posted(OPS, &format!("#{id} of api/main")).await;
        wait_for(BOUND, "the announcement to show the failure", || {
            h.fake
                .message(posted)
                .filter(|m| title(m).contains(": failure"))
        })
        .await;
    }
    assert_eq!(
        h.fake
            .calls_to("PATCH", &format!("/messages/{message}"))
            .len(),
        edits_before,
        "alice's message was edited"
    );
    assert!(!title(&h.fake.message(message).unwrap()).contains("failure"));
    assert!(h.posts(RANDOM).is_empty(), "{:?}", h.posts(RANDOM));
    for call in h.fake.calls() {
        let mentions = &call.body["allowed_mentions"]["users"];
        assert!(
            mentions.is_null() || mentions.as_array().is_some_and(|m| m.is_empty()),
            "nobody is pinged: {call:?}"
        );
        assert!(
            !call.body["content"]
                .as_str()
                .unwrap_or_default()
                .contains(&ALICE.0.to_string()),
            "{call:?}"
        );
    }
    assert!(h.stop().await.is_ok());
}

#[tokio::test]
async fn a_refused_deploy_offers_queue_which_joins_the_line_as_typing_it_would() {
    let mut h = Harness::start().await;
    h.fake
        .say(DEPLOYS, BOB, &[RELEASE], "!lock staging on api -- testing");
    h.posted(DEPLOYS, "locked staging on api").await;
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/topic to staging");
    let refused = h.posted(DEPLOYS, "staging on api is locked by bob").await;
    let message = wait_for(BOUND, "the Queue button", || {
        h.fake
            .message(refused)
            .filter(|m| !custom_ids(m).is_empty())
    })
    .await;
    let queue = custom_ids(&message).remove(0);
    assert_eq!(queue, "db1:q:deploy api/topic to staging queue");
    h.fake
        .press(DEPLOYS, member(ALICE, &[RELEASE]), refused, &queue);
    wait_for(BOUND, "alice's place in line", || {
        h.posts(DEPLOYS).into_iter().find(|c| {
            title(&c.body)
                .contains("alice, you are #1 in line for staging on api (behind bob's lock)")
        })
    })
    .await;
    assert_eq!(h.deployment_posts(), 0);
    // bob's unlock gives alice her turn, where she joined.
    h.fake
        .say(DEPLOYS, BOB, &[RELEASE], "!unlock staging on api");
    h.posted(DEPLOYS, "alice, your turn: staging on api is free")
        .await;
    h.stop().await.ok();
}

#[tokio::test]
async fn deploy_when_green_button_waits_and_deploys_once_the_checks_pass() {
    let mut h = Harness::start().await;
    h.sandbox.add_webhook(&h.webhook, SECRET);
    h.sandbox.create_branch("acme/api", "wip", "main");
    h.sandbox.commit("acme/api", "wip", "Work in progress");
    h.sandbox
        .set_status("acme/api", "wip", "ci/build", "pending");
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/wip to staging");
    let refused = h
        .posted(DEPLOYS, "Creating a deployment of api/wip to staging")
        .await;
    let message = wait_for(BOUND, "the pending checks", || {
        h.fake
            .message(refused)
            .filter(|m| title(m).contains("checks on api/wip are not all green"))
    })
    .await;
    let ids = custom_ids(&message);
    assert_eq!(
        ids,
        vec![
            "db1:g:deploy api/wip to staging when green",
            "db1:f:deploy! api/wip to staging"
        ],
        "{message:#}"
    );
    // bob presses it: he waits, as if he had typed the command.
    h.fake.press(DEPLOYS, member(BOB, &[DEV]), refused, &ids[0]);
    let waiting = h.posted(DEPLOYS, "Waiting for the checks on api/wip").await;
    assert_eq!(h.deployment_posts(), 1, "only the refused one");
    h.sandbox
        .set_status("acme/api", "wip", "ci/build", "success");
    let deployed = wait_for(BOUND, "the deployment", || {
        h.deployments().into_iter().find(|d| d["ref"] == "wip")
    })
    .await;
    assert_eq!(
        deployed["payload"]["deploybot"]["user"]["id"],
        BOB.0.to_string()
    );
    assert_eq!(
        deployed["payload"]["deploybot"]["chat"]["message"],
        waiting.to_string(),
        "the wait's message follows the deployment"
    );
    assert_eq!(h.deployment_posts(), 2);
    h.stop().await.ok();
}

/// A freeze refusal offers break-glass to whoever may force, as a Force button that
/// asks for the reason: pressing it does what typing `deploy! … -- REASON` does —
/// deployed through the freeze, forced, announced with the freeze it broke.
#[tokio::test]
async fn a_freeze_refusal_offers_break_glass_as_a_button_that_asks_for_the_reason() {
    let mut h = Harness::start().await;
    h.fake.say(
        DEPLOYS,
        OLGA,
        &[ONCALL],
        "!freeze staging on api -- incident 4711",
    );
    h.posted(DEPLOYS, "olga froze staging on api").await;
    h.fake
        .say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/topic to staging");
    let refused = h
        .posted(DEPLOYS, "api to staging is frozen: incident 4711")
        .await;
    let message = h.fake.message(refused).expect("the refusal");
    let ids = custom_ids(&message);
    assert_eq!(
        ids,
        vec!["db1:f:deploy! api/topic to staging -- REASON"],
        "{message:#}"
    );
    assert_eq!(h.deployment_posts(), 0);

    let (iid, token) = h.fake.press(DEPLOYS, member(BOB, &[DEV]), refused, &ids[0]);
    let modal = wait_for(BOUND, "the reason dialog", || {
        h.fake
            .calls_to("POST", &format!("/interactions/{iid}/{token}/callback"))
            .into_iter()
            .next()
    })
    .await;
    assert_eq!(modal.body["type"], 9, "{:?}", modal.body);
    let modal_id = modal.body["data"]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    let input = modal.body["data"]["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    h.fake.submit_modal(
        DEPLOYS,
        member(BOB, &[DEV]),
        refused,
        &modal_id,
        &input,
        "the fix for 4711",
    );
    let forced = wait_for(BOUND, "the break-glass deployment", || {
        h.deployments().into_iter().find(|d| d["ref"] == "topic")
    })
    .await;
    assert_eq!(forced["payload"]["deploybot"]["reason"], "the fix for 4711");
    assert_eq!(
        forced["payload"]["deploybot"]["user"]["id"],
        BOB.0.to_string(),
        "run as the presser"
    );
    // Announced here and in the notify channel, naming the freeze it broke.
    for channel in [DEPLOYS, OPS] {
        let id = h.posted(channel, "bob forced deployment").await;
        let text = description(&h.fake.message(id).unwrap());
        assert!(
            text.contains("break-glass: it went through the freeze incident 4711"),
            "{text}"
        );
    }
    h.stop().await.ok();
}
