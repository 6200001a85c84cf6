//! The queue per environment, concurrency, automatic locks and lock reminders: the
//! bot against the sandbox through the shell adapter, with a real SQLite file and an
//! injected clock (housekeeping is `Bot::tick`, run by the tests after moving it).

mod support;

use std::sync::Arc;
use std::time::Duration;

use deploybot::chat::shell::Identity;
use deploybot::chat::{Action, Addressing, ChatUser, Pressed, Request};
use deploybot::clock::ManualClock;
use sandbox::NewStatus;
use support::{wait_for, Options, TestBot, CONFIG};

const RELEASE: &[&str] = &["release"];

/// [`CONFIG`] as production environments are by default: one deployment at a time.
fn base() -> String {
    let config = CONFIG.replace("concurrency = 0\n", "");
    assert_ne!(config, CONFIG);
    config
}

/// [`base`] with `production_extra` added to api's production environment and
/// `staging_extra` to its staging one.
fn config(production_extra: &str, staging_extra: &str) -> String {
    base()
        .replace(
            "[apps.api.environments.production]\nproduction = true\n",
            &format!("[apps.api.environments.production]\nproduction = true\n{production_extra}\n"),
        )
        .replace(
            "[apps.api.environments.staging]\nrequired_contexts = [\"ci/build\"]\n",
            &format!(
                "[apps.api.environments.staging]\nrequired_contexts = [\"ci/build\"]\n{staging_extra}\n"
            ),
        )
        + "\n[defaults]\nedit_interval = \"10ms\"\n"
}

async fn bot(config: String) -> (TestBot, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let t = TestBot::with(Options {
        config,
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    (t, clock)
}

async fn as_(t: &TestBot, user: &str, line: &str) -> String {
    t.say_as(user, RELEASE, "deploys", line).await
}

/// The deployer reports `state` for deployment `id`; the poller brings it in.
async fn report(t: &TestBot, id: u64, state: &str) {
    t.sandbox
        .create_deployment_status("acme/api", id, NewStatus::new(state));
    t.bot().tracker().poll_once().await.unwrap();
}

/// Waits until the whole shell output contains `text`.
async fn printed(t: &TestBot, text: &str) {
    wait_for(Duration::from_secs(10), text, || {
        t.out.text().contains(text).then_some(())
    })
    .await;
}

/// A press of a button whose command is `command`, by `user`, on message `message`.
fn press(user: &str, message: &str, command: &str) -> Request {
    let who = Identity {
        user: user.into(),
        roles: RELEASE.iter().map(|r| r.to_string()).collect(),
        channel: "deploys".into(),
    };
    Request {
        conversation: who.conversation(),
        message_id: None,
        user: ChatUser {
            id: user.into(),
            name: user.into(),
            roles: who.roles.clone(),
        },
        text: command.to_string(),
        addressing: Addressing::Direct,
        pressed: Some(Pressed {
            message: message.into(),
            replacing: None,
        }),
    }
}

/// The last action of kind `pick` the bot offered, as its command.
fn offered(t: &TestBot, pick: fn(&Action) -> bool) -> String {
    t.said()
        .iter()
        .rev()
        .flat_map(|s| s.message().actions.clone())
        .find(pick)
        .map(|a| a.command())
        .expect("the action was offered")
}

#[tokio::test]
async fn a_locked_environment_offers_the_queue_and_deploy_queue_says_the_position() {
    let (t, _) = bot(base()).await;
    as_(&t, "bob", "lock production on api for 1h db migration").await;
    let refused = as_(&t, "alice", "deploy api to production").await;
    assert!(
        refused.contains("production on api is locked by bob"),
        "{refused}"
    );
    assert!(
        refused.contains("to wait in line, type `deploy api to production queue`"),
        "{refused}"
    );
    let alice = as_(&t, "alice", "deploy api to production queue").await;
    assert!(
        alice.contains("alice, you are #1 in line for production on api (behind bob's lock)"),
        "{alice}"
    );
    assert!(alice.contains("dequeue production on api"), "{alice}");
    let carol = as_(
        &t,
        "carol",
        "deploy api/topic to production queue -- the fix",
    )
    .await;
    assert!(
        carol.contains(
            "carol, you are #2 in line for production on api (behind bob's lock, then alice)"
        ),
        "{carol}"
    );
    let again = as_(&t, "alice", "deploy api to production queue").await;
    assert!(
        again.contains("already in line: alice, you are #1"),
        "{again}"
    );
    // Nothing reached GitHub.
    assert!(t.deployment_posts().is_empty());
    // The lock's holder deploys as they please while others wait for the lock.
    as_(&t, "bob", "lock staging on api").await;
    as_(&t, "carol", "deploy api/topic to staging queue").await;
    let bob = as_(&t, "bob", "deploy api/topic to staging").await;
    assert!(bob.contains("Creating a deployment"), "{bob}");
    as_(&t, "carol", "dequeue staging").await;

    let listed = as_(&t, "dave", "queue production on api").await;
    assert!(listed.contains("2 people in line"), "{listed}");
    assert!(
        listed.contains("production on api is locked by bob"),
        "{listed}"
    );
    let alice_at = listed.find("1. alice").expect(&listed);
    let carol_at = listed
        .find("2. carol — waiting since just now (`deploy api/topic to production -- the fix`)")
        .expect(&listed);
    assert!(alice_at < carol_at);
    let everything = as_(&t, "dave", "queue").await;
    assert!(everything.contains("2 people in line"), "{everything}");

    let left = as_(&t, "alice", "dequeue production").await;
    assert!(
        left.contains("alice left the queue for production on api"),
        "{left}"
    );
    let not = as_(&t, "alice", "dequeue production").await;
    assert!(
        not.contains("alice is not in line for production on api"),
        "{not}"
    );
    let listed = as_(&t, "dave", "queue production").await;
    assert!(listed.contains("1 person in line"), "{listed}");
    assert!(listed.contains("1. carol"), "{listed}");
    let empty = as_(&t, "dave", "queue staging").await;
    assert!(
        empty.contains("Nobody is in line for staging on api"),
        "{empty}"
    );
}

#[tokio::test]
async fn the_queue_hands_over_in_order_across_a_restart() {
    let (mut t, _) = bot(base()).await;
    as_(&t, "bob", "lock production on api for 1h").await;
    as_(&t, "alice", "deploy api/topic to production queue").await;
    as_(&t, "carol", "deploy api/topic to production queue").await;
    t.kill().await;
    t.boot().await;
    t.take_output();

    // The lock's release tells the first in line at once.
    let unlocked = as_(&t, "bob", "unlock production on api").await;
    assert!(
        unlocked.contains("bob unlocked production on api"),
        "{unlocked}"
    );
    assert!(
        unlocked.contains("alice, your turn: production on api is free and reserved for you until"),
        "{unlocked}"
    );
    assert!(
        unlocked.contains("deploy now: `deploy api/topic to production`"),
        "{unlocked}"
    );
    // Reserved: carol (next) and dave (not in line) are refused.
    let carol = as_(&t, "carol", "deploy api to production").await;
    assert!(
        carol.contains("production on api is reserved for alice until"),
        "{carol}"
    );
    let dave = as_(&t, "dave", "deploy api to production").await;
    assert!(dave.contains("reserved for alice"), "{dave}");
    assert!(t.deployment_posts().is_empty());

    let deployed = as_(&t, "alice", "deploy api/topic to production").await;
    assert!(
        deployed.contains("Creating a deployment of api/topic"),
        "{deployed}"
    );
    let first = t.last_deployment();
    // Production allows one deployment at a time: carol waits for it to finish.
    t.bot().tick().await;
    assert!(!t.take_output().contains("carol, your turn"));
    let listed = as_(&t, "dave", "queue production").await;
    assert!(listed.contains("still in progress"), "{listed}");
    assert!(listed.contains("1. carol"), "{listed}");

    // Another restart; the finished deployment hands over from housekeeping.
    t.kill().await;
    t.boot().await;
    t.take_output();
    report(&t, first, "success").await;
    t.bot().tick().await;
    printed(&t, "carol, your turn: production on api is free").await;
    let carol = as_(&t, "carol", "deploy api/topic to production").await;
    assert!(
        carol.contains("Creating a deployment of api/topic"),
        "{carol}"
    );
    assert_eq!(t.deployment_posts().len(), 2);
    let empty = as_(&t, "dave", "queue production").await;
    assert!(empty.contains("Nobody is in line"), "{empty}");
}

#[tokio::test]
async fn a_reserved_turn_passes_to_the_next_after_queue_grace() {
    let (t, clock) = bot(config("queue_grace = \"2m\"", "")).await;
    as_(&t, "bob", "lock production on api").await;
    as_(&t, "alice", "deploy api/topic to production queue").await;
    as_(&t, "carol", "deploy api to production queue").await;
    let unlocked = as_(&t, "bob", "unlock production on api").await;
    assert!(unlocked.contains("reserved for you until"), "{unlocked}");
    assert!(unlocked.contains("(2m)"), "{unlocked}");
    clock.advance(Duration::from_secs(119));
    t.bot().tick().await;
    assert!(!t.take_output().contains("passed"));
    clock.advance(Duration::from_secs(1));
    t.bot().tick().await;
    let out = t.take_output();
    assert!(
        out.contains("alice, your turn for production on api passed"),
        "{out}"
    );
    assert!(
        out.contains("`deploy api/topic to production queue`"),
        "{out}"
    );
    assert!(
        out.contains("carol, your turn: production on api is free"),
        "{out}"
    );
    // Alice lost it: deploying now is refused.
    let late = as_(&t, "alice", "deploy api/topic to production").await;
    assert!(late.contains("reserved for carol"), "{late}");
    assert!(t.deployment_posts().is_empty());
    // A turn that passed ends at the next deploy even before housekeeping runs.
    clock.advance(Duration::from_secs(120));
    let dave = as_(&t, "dave", "deploy api/topic to production").await;
    assert!(
        dave.contains("carol, your turn for production on api passed"),
        "{dave}"
    );
    assert!(dave.contains("Creating a deployment"), "{dave}");
}

#[tokio::test]
async fn deploy_mode_runs_each_original_command_in_order_with_every_rule_checked_again() {
    let (t, _) = bot(config("queue = \"deploy\"", "")).await;
    as_(&t, "bob", "lock production on api").await;
    // `broken` has a failing check: GitHub refuses it when its turn comes.
    as_(&t, "alice", "deploy api/broken to production queue").await;
    as_(&t, "carol", "deploy api/topic to production queue").await;
    as_(&t, "bob", "unlock production on api").await;
    printed(&t, "alice, your turn: production on api is free; deploying `deploy api/broken to production` for you").await;
    printed(&t, "Not deployed: checks on api/broken are not all green").await;
    printed(
        &t,
        "alice's turn for production on api ended: the deploy was not made",
    )
    .await;
    printed(&t, "carol, your turn: production on api is free; deploying `deploy api/topic to production` for you").await;
    wait_for(Duration::from_secs(10), "carol's deployment", || {
        (t.deployment_posts().len() == 2).then_some(())
    })
    .await;
    let ours = t.sandbox.deployments("acme/api");
    assert_eq!(ours.len(), 1, "one deployment was created: {ours:?}");
    assert_eq!(ours[0]["ref"], "topic");
    assert_eq!(ours[0]["payload"]["deploybot"]["user"]["name"], "carol");
    // The runs are in the audit log, as the people they were run for.
    let audit = as_(&t, "dave", "audit api in production").await;
    assert!(audit.contains("carol"), "{audit}");
}

#[tokio::test]
async fn concurrency_refuses_naming_the_deployment_in_progress_and_queues() {
    let (t, _) = bot(base()).await;
    as_(&t, "alice", "deploy api/topic to production").await;
    let first = t.last_deployment();
    let refused = as_(&t, "carol", "deploy api to production").await;
    assert!(
        refused.contains(&format!(
            "production on api is busy: #{first} api/topic is still in progress, started just now by alice"
        )),
        "{refused}"
    );
    assert!(
        refused.contains("production allows 1 deployment at a time"),
        "{refused}"
    );
    assert!(refused.contains("rule: concurrency"), "{refused}");
    assert!(
        refused.contains("to wait in line, type `deploy api to production queue`"),
        "{refused}"
    );
    let why = as_(&t, "carol", "why production").await;
    assert!(
        why.contains("carol can't deploy api to production now: concurrency"),
        "{why}"
    );
    assert!(
        why.contains(&format!(
            "🚫 concurrency: production on api is busy: #{first} api/topic"
        )),
        "{why}"
    );
    let queued = as_(&t, "carol", "deploy api to production queue").await;
    assert!(
        queued.contains(&format!(
            "carol, you are #1 in line for production on api (behind #{first} api/topic)"
        )),
        "{queued}"
    );
    assert_eq!(t.deployment_posts().len(), 1);
    // Staging has no limit.
    let staging = as_(&t, "carol", "deploy api/topic to staging").await;
    assert!(staging.contains("Creating a deployment"), "{staging}");
    report(&t, first, "in_progress").await;
    t.bot().tick().await;
    assert!(!t.take_output().contains("carol, your turn"));
    report(&t, first, "failure").await;
    t.bot().tick().await;
    printed(&t, "carol, your turn: production on api is free").await;
}

#[tokio::test]
async fn an_automatic_lock_names_the_deployment_and_ends_its_grace_after_the_final_state() {
    let (t, clock) = bot(config("", "auto_lock = true\nauto_lock_grace = \"5m\"")).await;
    let out = as_(&t, "alice", "deploy api/topic to staging").await;
    let id = t.last_deployment();
    assert!(
        out.contains(&format!(
            "staging on api is locked for alice while #{id} deploys"
        )),
        "{out}"
    );
    let locks = as_(&t, "dave", "locks").await;
    assert!(
        locks.contains(&format!("deploying #{id} api/topic")),
        "{locks}"
    );
    let bob = as_(&t, "bob", "deploy api/topic to staging").await;
    assert!(bob.contains("staging on api is locked by alice"), "{bob}");
    assert!(bob.contains(&format!("deploying #{id} api/topic")), "{bob}");
    let queued = as_(&t, "bob", "deploy api/topic to staging queue").await;
    assert!(queued.contains("behind alice's lock"), "{queued}");

    report(&t, id, "success").await;
    t.bot().tick().await;
    // Still locked for the grace.
    assert!(as_(&t, "dave", "locks").await.contains("deploying"));
    clock.advance(Duration::from_secs(6 * 60));
    t.bot().tick().await;
    t.bot().tick().await;
    let out = t.take_output();
    assert!(
        out.contains("alice's lock on staging on api expired"),
        "{out}"
    );
    assert!(
        out.contains("bob, your turn: staging on api is free"),
        "{out}"
    );
    let deployed = as_(&t, "bob", "deploy api/topic to staging").await;
    assert!(deployed.contains("Creating a deployment"), "{deployed}");
}

#[tokio::test]
async fn a_long_lock_reminds_its_holder_once_per_interval_and_keep_or_unlock_answer_it() {
    let (t, clock) = bot(base()).await;
    as_(&t, "alice", "lock production on api for 1d db migration").await;
    clock.advance(Duration::from_secs(2 * 3600 - 60));
    t.bot().tick().await;
    assert!(!t.take_output().contains("you have held"));
    clock.advance(Duration::from_secs(60));
    t.bot().tick().await;
    t.bot().tick().await;
    let out = t.take_output();
    assert_eq!(out.matches("you have held the lock").count(), 1, "{out}");
    assert!(
        out.contains("alice, you have held the lock on production on api for 2h"),
        "{out}"
    );
    assert!(
        out.contains("to release it, type `unlock production on api`"),
        "{out}"
    );
    assert!(
        out.contains("to keep it, type `lock production on api -- db migration`"),
        "{out}"
    );
    // Once per interval, across a restart of housekeeping too.
    clock.advance(Duration::from_secs(3600));
    t.bot().tick().await;
    assert!(!t.take_output().contains("you have held"));
    clock.advance(Duration::from_secs(3600));
    t.bot().tick().await;
    assert!(t.take_output().contains("for 4h"));

    // Keep renews the lock: the next reminder is an interval away.
    let kept = as_(&t, "alice", "lock production on api -- db migration").await;
    assert!(kept.contains("renewed your lock"), "{kept}");
    clock.advance(Duration::from_secs(2 * 3600 - 60));
    t.bot().tick().await;
    assert!(!t.take_output().contains("you have held"));
    let unlocked = as_(&t, "alice", "unlock production on api").await;
    assert!(
        unlocked.contains("alice unlocked production on api"),
        "{unlocked}"
    );
    clock.advance(Duration::from_secs(3 * 3600));
    t.bot().tick().await;
    assert!(!t.take_output().contains("you have held"));
}

#[tokio::test]
async fn the_queue_and_keep_buttons_do_what_their_typed_commands_do() {
    let (t, clock) = bot(base()).await;
    as_(&t, "bob", "lock production on api for 1d").await;
    as_(&t, "alice", "deploy api to production").await;
    let queue = offered(&t, |a| matches!(a, Action::Queue { .. }));
    assert_eq!(queue, "deploy api to production queue");
    t.bot().handle(press("alice", "m-queue", &queue)).await;
    let pressed = t.take_output();
    assert!(
        pressed.contains("alice, you are #1 in line for production on api (behind bob's lock)"),
        "{pressed}"
    );
    // The same button again is used up; typing it says the same as the press did.
    t.bot().handle(press("alice", "m-queue", &queue)).await;
    assert!(t.take_output().contains("this button was already used"));
    let typed = as_(&t, "alice", &queue).await;
    assert!(
        typed.contains("already in line: alice, you are #1"),
        "{typed}"
    );

    clock.advance(Duration::from_secs(2 * 3600));
    t.bot().tick().await;
    let keep = offered(&t, |a| matches!(a, Action::Keep { .. }));
    assert_eq!(keep, "lock production on api");
    let unlock = offered(&t, |a| matches!(a, Action::Unlock { .. }));
    assert_eq!(unlock, "unlock production on api");
    t.take_output();
    t.bot().handle(press("bob", "m-remind", &keep)).await;
    let kept = t.take_output();
    assert!(kept.contains("renewed your lock"), "{kept}");
    t.bot().handle(press("bob", "m-remind-2", &unlock)).await;
    let released = t.take_output();
    assert!(
        released.contains("bob unlocked production on api"),
        "{released}"
    );
    assert!(released.contains("alice, your turn"), "{released}");
}
