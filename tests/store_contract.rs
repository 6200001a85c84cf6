//! The store contract: one test per behaviour of `store::Store`, each run against a
//! fresh SQLite file and, when `DEPLOYBOT_TEST_POSTGRES` names a server, a fresh
//! PostgreSQL database created for the test (and dropped after it). Both backends must
//! answer alike; the racing tests check that the rules that must hold under
//! concurrency (one lock, single-use confirmations, one press, one admission, one
//! closer, one setting) are held by the database.
//!
//! `DEPLOYBOT_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo test -p
//! deploybot --test store_contract` runs both halves (`.ci/run` does). Unset, the
//! PostgreSQL half is skipped, and `postgres_suite_is_enabled_or_explicitly_skipped`
//! says so; set and unreachable, every test fails saying how to start a server.

mod pg;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deploybot::chat::Conversation;
use deploybot::model::{DeploymentId, DeploymentState, RepoName};
use deploybot::store::postgres::PostgresStore;
use deploybot::store::sqlite::SqliteStore;
use deploybot::store::{
    Arrival, AuditEntry, Confirmation, ConfirmationState, Freeze, Gauges, Intent, IntentResolution,
    Lock, LockTaken, Press, Store, Tracked, Unconfirmable, Write, Written,
};
use deploybot::store::{Wait, WaitResolution};
use futures_util::FutureExt;
use pg::{admin_connection, with_database, FreshDatabase, POSTGRES_ENV};

/// Tasks in each racing test.
const RACERS: usize = 16;

/// The server the PostgreSQL half runs against, if enabled.
fn postgres_server() -> Option<String> {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// A store to test: how to open it (again).
struct Backend {
    name: &'static str,
    url: String,
}

impl Backend {
    async fn open(&self) -> Arc<dyn Store> {
        let opened: Result<Arc<dyn Store>, _> = if self.name == "sqlite" {
            SqliteStore::open(&self.url)
                .await
                .map(|s| Arc::new(s) as Arc<dyn Store>)
        } else {
            PostgresStore::open(&self.url, 10)
                .await
                .map(|s| Arc::new(s) as Arc<dyn Store>)
        };
        opened.unwrap_or_else(|e| panic!("{}: opening {}: {e}", self.name, self.url))
    }
}

/// Runs `body` against a fresh SQLite file, then, when enabled, against a fresh
/// PostgreSQL database (dropped afterwards, also when `body` panics).
async fn contract(body: impl AsyncFn(&Backend)) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Backend {
        name: "sqlite",
        url: format!("sqlite://{}", dir.path().join("store.db").display()),
    };
    on(&sqlite, &body).await;
    if let Some(admin) = postgres_server() {
        let db = FreshDatabase::create(&admin).await;
        let postgres = Backend {
            name: "postgres",
            url: with_database(&admin, &db.name),
        };
        let outcome = AssertUnwindSafe(on(&postgres, &body)).catch_unwind().await;
        db.drop_it().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

async fn on(backend: &Backend, body: &impl AsyncFn(&Backend)) {
    if let Err(panic) = AssertUnwindSafe(body(backend)).catch_unwind().await {
        eprintln!("store contract failed on {}", backend.name);
        std::panic::resume_unwind(panic);
    }
}

// ---- test data ----

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

/// Now, to the microsecond: what both backends keep of a timestamp.
fn now() -> DateTime<Utc> {
    micros(Utc::now())
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

fn conversation(channel: &str) -> Conversation {
    Conversation {
        adapter: "shell".into(),
        channel: channel.into(),
        channel_name: Some(channel.into()),
        thread: None,
        interaction: None,
    }
}

fn api() -> RepoName {
    RepoName::parse("acme/api").unwrap()
}

fn tracked(id: u64) -> Tracked {
    Tracked {
        deployment_id: DeploymentId(id),
        repository: api(),
        request_id: None,
        app: Some("api".into()),
        environment: "staging".into(),
        git_ref: "topic".into(),
        sha: "a".repeat(40),
        task: "deploy".into(),
        conversation: conversation("deploys"),
        message_id: Some("m1".into()),
        requester: Some(("alice".into(), "alice".into())),
        creator: None,
        html_url: None,
        hosts: vec!["web-1".into()],
        reason: Some("because".into()),
        forced: false,
        notes: vec!["a note".into()],
        compare_url: None,
        created_at: Utc::now(),
        state: DeploymentState::Created,
        status_id: None,
        status_description: None,
        log_url: None,
        environment_url: None,
        finished_at: None,
        announced: false,
        final_rendered: false,
        given_up: false,
        warned_no_status: false,
        warned_stuck: false,
        etag: None,
    }
}

fn settled(id: u64) -> Tracked {
    let mut t = tracked(id);
    t.state = DeploymentState::Success;
    t.final_rendered = true;
    t
}

fn lock(env: &str, holder: &str, created: DateTime<Utc>, ttl: i64) -> Lock {
    Lock {
        app: "api".into(),
        environment: env.into(),
        holder_id: holder.into(),
        holder_name: format!("{holder} name"),
        reason: Some(format!("{holder}'s reason")),
        created_at: created,
        expires_at: created + secs(ttl),
        warned: false,
        conversation: conversation("deploys"),
    }
}

/// A chat freeze of `app` in `env` (`None`: every one), lasting `ttl` seconds or, with
/// `None`, until unfrozen.
fn freeze(
    app: Option<&str>,
    env: Option<&str>,
    holder: &str,
    created: DateTime<Utc>,
    ttl: Option<i64>,
) -> Freeze {
    Freeze {
        app: app.map(str::to_string),
        environment: env.map(str::to_string),
        holder_id: holder.into(),
        holder_name: holder.to_uppercase(),
        reason: format!("{holder}'s reason"),
        created_at: created,
        expires_at: ttl.map(|t| created + secs(t)),
        conversation: conversation("deploys"),
    }
}

fn confirmation(id: &str, requester: &str, created: DateTime<Utc>) -> Confirmation {
    Confirmation {
        id: id.into(),
        requester_id: requester.into(),
        requester_name: format!("{requester} name"),
        conversation: conversation("deploys"),
        command: "deploy api/main to production".into(),
        summary: "api main → production".into(),
        message_id: None,
        created_at: created,
        expires_at: created + secs(60),
        state: ConfirmationState::Pending,
        expected_live: Some(41),
        expected_target: Some("b".repeat(40)),
    }
}

fn intent(request_id: &str, created: DateTime<Utc>) -> Intent {
    let t = tracked(1);
    Intent {
        request_id: request_id.into(),
        app: "api".into(),
        repository: api(),
        environment: "staging".into(),
        git_ref: "topic".into(),
        task: "deploy".into(),
        conversation: t.conversation,
        message_id: Some("m1".into()),
        requester: ("alice".into(), "alice".into()),
        command: "deploy api/topic to staging".into(),
        label: "api/topic".into(),
        created_at: created,
        html_url: None,
        hosts: vec![],
        reason: None,
        forced: false,
        notes: vec![],
        compare_url: None,
    }
}

fn entry(at: DateTime<Utc>, app: Option<&str>, env: Option<&str>, text: &str) -> AuditEntry {
    AuditEntry {
        at,
        adapter: "shell".into(),
        channel: "deploys".into(),
        user_id: "alice".into(),
        user_name: "alice".into(),
        text: text.into(),
        command: "deploy".into(),
        app: app.map(str::to_string),
        environment: env.map(str::to_string),
        decision: "allowed".into(),
        rule: None,
        deployment_id: Some(7),
        detail: Some("detail".into()),
    }
}

fn press(message: &str, user: &str, at: DateTime<Utc>) -> Press {
    Press {
        message: message.into(),
        user_id: user.into(),
        user_name: format!("{user} name"),
        command: "retry".into(),
        at,
    }
}

fn arrival(key: &str, at: DateTime<Utc>) -> Write {
    Write::Admit(Arrival {
        key: key.to_string(),
        delivery: Some(key.to_string()),
        event: format!("{{\"kind\":\"{key}\"}}"),
        at,
    })
}

/// Runs `f(i)` in `RACERS` tasks started together; their answers, in task order.
async fn race<T, F, Fut>(f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let start = start.clone();
            let run = f(i);
            tokio::spawn(async move {
                start.wait().await;
                run.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("racer panicked"));
    }
    out
}

// ---- the suite ----

#[test]
fn postgres_suite_is_enabled_or_explicitly_skipped() {
    match postgres_server() {
        None => eprintln!(
            "store contract: the PostgreSQL half of every test is SKIPPED ({POSTGRES_ENV} is unset); the SQLite half ran. Set {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/test to run it"
        ),
        Some(admin) => {
            // Enabled: the server must answer, or this fails saying how to start one.
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let mut conn = admin_connection(&admin).await;
                let one: i32 = sqlx::query_scalar("SELECT 1")
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(one, 1);
            });
        }
    }
}

#[test]
fn test_databases_are_named_on_the_server_given() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/test", "d"),
        "postgres://postgres@127.0.0.1:5432/d"
    );
    assert_eq!(
        with_database("postgres://u:p@h:5432", "d"),
        "postgres://u:p@h:5432/d"
    );
    assert_eq!(
        with_database("postgresql://h/test?sslmode=disable", "d"),
        "postgresql://h/d?sslmode=disable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_migrating_a_fresh_database_at_once_both_succeed() {
    contract(async |b: &Backend| {
        let (first, second) = tokio::join!(b.open(), b.open());
        // Both migrated the same database: what one writes, the other reads.
        assert_eq!(first.setting_or_insert("k", "one").await.unwrap(), "one");
        assert_eq!(second.setting_or_insert("k", "two").await.unwrap(), "one");
        // And a third start finds nothing left to migrate.
        b.open().await.ping().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_is_held_by_one_holder_per_app_and_environment() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let alice = lock("staging", "alice", t0, 3600);
        assert_eq!(store.take_lock(&alice, t0).await.unwrap(), LockTaken::Taken);
        let bob = lock("staging", "bob", t0 + secs(1), 3600);
        assert_eq!(
            store.take_lock(&bob, t0 + secs(1)).await.unwrap(),
            LockTaken::HeldBy(Box::new(alice.clone()))
        );
        // The holder renews: new reason and expiry, warned again later.
        let mut renewed = alice.clone();
        renewed.reason = Some("longer".into());
        renewed.expires_at = t0 + secs(7200);
        assert_eq!(
            store.take_lock(&renewed, t0 + secs(2)).await.unwrap(),
            LockTaken::Taken
        );
        let held = store.lock("api", "staging", t0 + secs(2)).await.unwrap();
        assert_eq!(
            held.as_ref().map(|l| l.reason.as_deref()),
            Some(Some("longer"))
        );
        assert_eq!(held.unwrap().expires_at, t0 + secs(7200));
        // Another environment is another lock.
        let prod = lock("production", "bob", t0 + secs(3), 60);
        assert_eq!(
            store.take_lock(&prod, t0 + secs(3)).await.unwrap(),
            LockTaken::Taken
        );
        let all = store.locks(t0 + secs(4)).await.unwrap();
        assert_eq!(
            all.iter()
                .map(|l| l.environment.as_str())
                .collect::<Vec<_>>(),
            ["staging", "production"],
            "oldest first"
        );
        // Warned once, when about to expire.
        let warn = store
            .locks_to_warn(t0 + secs(4), t0 + secs(120))
            .await
            .unwrap();
        assert_eq!(warn.len(), 1);
        assert_eq!(warn[0].environment, "production");
        assert!(warn[0].warned);
        assert!(store
            .locks_to_warn(t0 + secs(4), t0 + secs(120))
            .await
            .unwrap()
            .is_empty());
        // Only its holder removes it.
        assert_eq!(
            store
                .remove_lock("api", "staging", "bob", t0 + secs(5))
                .await
                .unwrap(),
            None
        );
        assert!(store
            .lock("api", "staging", t0 + secs(5))
            .await
            .unwrap()
            .is_some());
        // Expired: not shown, and anyone may take it.
        assert_eq!(
            store
                .lock("api", "production", t0 + secs(63))
                .await
                .unwrap(),
            None
        );
        let carol = lock("production", "carol", t0 + secs(64), 60);
        assert_eq!(
            store.take_lock(&carol, t0 + secs(64)).await.unwrap(),
            LockTaken::Taken
        );
        assert!(
            !store
                .lock("api", "production", t0 + secs(64))
                .await
                .unwrap()
                .unwrap()
                .warned
        );
        // A take-over replaces and returns the lock it replaced.
        let dave = lock("production", "dave", t0 + secs(65), 60);
        let replaced = store.replace_lock(&dave, t0 + secs(65)).await.unwrap();
        assert_eq!(replaced.map(|l| l.holder_id), Some("carol".to_string()));
        let on_nothing = lock("qa", "dave", t0 + secs(65), 60);
        assert_eq!(
            store
                .replace_lock(&on_nothing, t0 + secs(65))
                .await
                .unwrap(),
            None
        );
        // Replacing an expired lock replaced nothing that counted.
        let erin = lock("qa", "erin", t0 + secs(200), 60);
        assert_eq!(
            store.replace_lock(&erin, t0 + secs(200)).await.unwrap(),
            None
        );
        let removed = store
            .remove_lock("api", "staging", "alice", t0 + secs(6))
            .await
            .unwrap();
        assert_eq!(removed.map(|l| l.reason), Some(Some("longer".into())));
        // Expiry removes what is past and returns it.
        let expired = store.expire_locks(t0 + secs(230)).await.unwrap();
        let mut holders: Vec<String> = expired.into_iter().map(|l| l.holder_id).collect();
        holders.sort();
        assert_eq!(holders, ["dave"]);
        assert_eq!(
            store.locks(t0).await.unwrap().len(),
            1,
            "erin's, unexpired at t0"
        );
        assert!(store.locks(t0 + secs(300)).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_takers_of_one_lock_one_wins() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                let l = lock("staging", &format!("h{i}"), t0, 600);
                store.take_lock(&l, t0).await.unwrap()
            }
        })
        .await;
        let winners = answers.iter().filter(|a| **a == LockTaken::Taken).count();
        assert_eq!(winners, 1, "{answers:?}");
        let held = store.lock("api", "staging", t0).await.unwrap().unwrap();
        for a in &answers {
            if let LockTaken::HeldBy(l) = a {
                assert_eq!(l.holder_id, held.holder_id);
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_take_overs_each_replace_the_one_before() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        store
            .take_lock(&lock("staging", "first", t0, 600), t0)
            .await
            .unwrap();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                let l = lock("staging", &format!("r{i}"), t0, 600);
                store.replace_lock(&l, t0).await.unwrap()
            }
        })
        .await;
        // Serialised by the database: each replaced exactly one, a chain from `first`
        // to whoever holds it now.
        let mut replaced: Vec<String> = answers
            .into_iter()
            .map(|p| p.expect("each take-over replaced a lock").holder_id)
            .collect();
        replaced.push(
            store
                .lock("api", "staging", t0)
                .await
                .unwrap()
                .unwrap()
                .holder_id,
        );
        replaced.sort();
        let mut everyone: Vec<String> = (0..RACERS).map(|i| format!("r{i}")).collect();
        everyone.push("first".into());
        everyone.sort();
        assert_eq!(replaced, everyone);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_is_one_per_scope_replaced_whole_and_lifted_exactly() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let global = freeze(None, None, "alice", t0, None);
        assert_eq!(store.freeze(&global, t0).await.unwrap(), None);
        let prod = freeze(
            Some("api"),
            Some("production"),
            "bob",
            t0 + secs(1),
            Some(600),
        );
        assert_eq!(store.freeze(&prod, t0).await.unwrap(), None);
        let env_only = freeze(None, Some("production"), "dana", t0 + secs(2), Some(60));
        assert_eq!(store.freeze(&env_only, t0).await.unwrap(), None);
        // Oldest first, every field kept (an empty scope reads back as `None`).
        assert_eq!(
            store.freezes(t0).await.unwrap(),
            vec![global.clone(), prod.clone(), env_only.clone()]
        );
        assert!(prod.covers("api", "production") && !prod.covers("web", "production"));
        assert!(env_only.covers("web", "production") && !env_only.covers("web", "staging"));
        // Freezing a frozen scope replaces that one only, and says whose it was.
        let again = freeze(None, None, "carol", t0 + secs(3), Some(3600));
        assert_eq!(store.freeze(&again, t0).await.unwrap(), Some(global));
        let holders: Vec<String> = store
            .freezes(t0)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.holder_id)
            .collect();
        assert_eq!(holders, ["bob", "dana", "carol"]);
        // Lifted by its exact scope, once.
        let lifted = store.unfreeze(Some("api"), Some("production"), t0).await;
        assert_eq!(lifted.unwrap(), Some(prod));
        let again = store.unfreeze(Some("api"), Some("production"), t0).await;
        assert_eq!(again.unwrap(), None);
        assert_eq!(store.unfreeze(Some("api"), None, t0).await.unwrap(), None);
        // Expired: no longer listed, and nothing in force to lift.
        let later = t0 + secs(120);
        let listed: Vec<String> = store
            .freezes(later)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.holder_id)
            .collect();
        assert_eq!(listed, ["carol"]);
        let expired = store.unfreeze(None, Some("production"), later).await;
        assert_eq!(expired.unwrap(), None);
        // Kept across reopening.
        drop(store);
        let reopened = b.open().await;
        assert_eq!(reopened.freezes(later).await.unwrap()[0].holder_id, "carol");
        let last = reopened.unfreeze(None, None, later).await.unwrap();
        assert_eq!(last.map(|f| f.holder_id), Some("carol".to_string()));
        assert!(reopened.freezes(later).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_freezers_of_one_scope_leave_one_freeze_and_one_unfreezer_lifts_it() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                let f = freeze(None, Some("production"), &format!("r{i}"), t0, None);
                store.freeze(&f, t0).await.map(|_| ())
            }
        })
        .await;
        // Nobody fails: each freeze replaces the one before it.
        for a in &answers {
            assert!(a.is_ok(), "{a:?}");
        }
        let left = store.freezes(t0).await.unwrap();
        assert_eq!(left.len(), 1, "{left:?}");
        let lifted = race(|_| {
            let store = store.clone();
            async move { store.unfreeze(None, Some("production"), t0).await.unwrap() }
        })
        .await;
        let winners: Vec<&Freeze> = lifted.iter().flatten().collect();
        assert_eq!(winners.len(), 1, "{lifted:?}");
        assert_eq!(winners[0], &left[0]);
        assert!(store.freezes(t0).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_is_used_once_and_expires() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let c1 = confirmation("c1", "alice", t0);
        store.add_confirmation(&c1).await.unwrap();
        store.set_confirmation_message("c1", "m9").await.unwrap();
        let mut shown = c1.clone();
        shown.message_id = Some("m9".into());
        assert_eq!(
            store.pending_confirmations("deploys", t0).await.unwrap(),
            [shown.clone()]
        );
        assert!(store
            .pending_confirmations("elsewhere", t0)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .close_confirmation("c1", "bob", ConfirmationState::Confirmed, t0 + secs(1))
                .await
                .unwrap(),
            Err(Unconfirmable::NotYours(shown.clone()))
        );
        let mut confirmed = shown.clone();
        confirmed.state = ConfirmationState::Confirmed;
        assert_eq!(
            store
                .close_confirmation("c1", "alice", ConfirmationState::Confirmed, t0 + secs(1))
                .await
                .unwrap(),
            Ok(confirmed.clone())
        );
        assert_eq!(
            store
                .close_confirmation("c1", "alice", ConfirmationState::Cancelled, t0 + secs(2))
                .await
                .unwrap(),
            Err(Unconfirmable::Closed(confirmed.clone())),
            "single use"
        );
        assert_eq!(
            store
                .close_confirmation("nope", "alice", ConfirmationState::Confirmed, t0)
                .await
                .unwrap(),
            Err(Unconfirmable::NotFound)
        );
        // Expiry: a pending one past its time reads as expired and cannot be used.
        let c2 = confirmation("c2", "alice", t0 + secs(2));
        store.add_confirmation(&c2).await.unwrap();
        let c3 = confirmation("c3", "bob", t0 + secs(3));
        store.add_confirmation(&c3).await.unwrap();
        assert_eq!(
            store
                .pending_confirmations("deploys", t0 + secs(4))
                .await
                .unwrap()
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>(),
            ["c3", "c2"],
            "newest first"
        );
        assert_eq!(
            store
                .latest_confirmation("deploys", "alice", t0 + secs(4))
                .await
                .unwrap(),
            Some(c2.clone())
        );
        let late = t0 + secs(62);
        let mut expired = c2.clone();
        expired.state = ConfirmationState::Expired;
        assert_eq!(
            store
                .latest_confirmation("deploys", "alice", late)
                .await
                .unwrap(),
            Some(expired.clone())
        );
        assert_eq!(
            store
                .close_confirmation("c2", "alice", ConfirmationState::Confirmed, late)
                .await
                .unwrap(),
            Err(Unconfirmable::Closed(expired.clone()))
        );
        assert_eq!(
            store
                .latest_confirmation("deploys", "carol", late)
                .await
                .unwrap(),
            None
        );
        assert_eq!(store.expire_confirmations(late).await.unwrap(), [expired]);
        assert!(store.expire_confirmations(late).await.unwrap().is_empty());
        // Answered and expired ones age out; the pending one stays.
        assert_eq!(store.prune_settled(t0 + secs(86_400)).await.unwrap(), 2);
        assert_eq!(
            store
                .pending_confirmations("deploys", t0 + secs(4))
                .await
                .unwrap(),
            [c3]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_answers_to_one_confirmation_one_closes_it() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        store
            .add_confirmation(&confirmation("c", "alice", t0))
            .await
            .unwrap();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                let to = if i % 2 == 0 {
                    ConfirmationState::Confirmed
                } else {
                    ConfirmationState::Cancelled
                };
                store
                    .close_confirmation("c", "alice", to, t0)
                    .await
                    .unwrap()
            }
        })
        .await;
        let closed: Vec<&Confirmation> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        assert_eq!(closed.len(), 1, "{answers:?}");
        for a in &answers {
            if let Err(e) = a {
                assert_eq!(e, &Unconfirmable::Closed(closed[0].clone()));
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_admitted_once_and_forgotten_by_age_only() {
    contract(async |b: &Backend| {
        let t0 = now();
        {
            let store = b.open().await;
            let answers = store
                .write(vec![arrival("a", t0), arrival("b", t0), arrival("a", t0)])
                .await
                .unwrap();
            assert_eq!(
                answers,
                [Written::Admitted, Written::Admitted, Written::Duplicate]
            );
            assert_eq!(
                store.write(vec![arrival("b", t0)]).await.unwrap(),
                [Written::Duplicate]
            );
            // Applying removes an entry; the id stays remembered.
            store.write(vec![Write::Applied("a".into())]).await.unwrap();
            assert_eq!(
                store.write(vec![arrival("a", t0)]).await.unwrap(),
                [Written::Duplicate]
            );
        }
        // Across a restart.
        let store = b.open().await;
        assert_eq!(
            store.write(vec![arrival("b", t0)]).await.unwrap(),
            [Written::Duplicate]
        );
        let batch: Vec<Write> = (0..1200)
            .map(|i| arrival(&format!("d{i}"), t0 + secs(i)))
            .collect();
        assert!(store
            .write(batch)
            .await
            .unwrap()
            .iter()
            .all(|w| *w == Written::Admitted));
        // However many are remembered, none is dropped for room.
        assert_eq!(
            store.write(vec![arrival("d0", t0)]).await.unwrap(),
            [Written::Duplicate]
        );
        // `a` and `b` were received at t0, as d0 was: 1002 are older than t0 + 1000 s.
        assert_eq!(store.prune_deliveries(t0 + secs(1000)).await.unwrap(), 1002);
        assert_eq!(
            store
                .write(vec![arrival("d0", t0), arrival("d1000", t0)])
                .await
                .unwrap(),
            [Written::Admitted, Written::Duplicate]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_admissions_of_one_delivery_one_is_admitted() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                // Each in a batch of its own, with a delivery of its own beside it.
                store
                    .write(vec![arrival("same", t0), arrival(&format!("own{i}"), t0)])
                    .await
                    .unwrap()
            }
        })
        .await;
        let admitted = answers.iter().filter(|a| a[0] == Written::Admitted).count();
        assert_eq!(admitted, 1, "{answers:?}");
        assert!(answers.iter().all(|a| a[1] == Written::Admitted));
        let inbox = store.inbox(t0 + secs(1), 100).await.unwrap();
        assert_eq!(inbox.iter().filter(|a| a.key == "same").count(), 1);
        assert_eq!(inbox.len(), RACERS + 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_keeps_events_in_arrival_order_until_applied() {
    contract(async |b: &Backend| {
        let t0 = now();
        {
            let store = b.open().await;
            // Arrival order is not time order: the inbox answers in arrival order.
            let generated = Arrival {
                key: "deploybot:1".into(),
                delivery: None,
                event: "{\"kind\":\"generated\"}".into(),
                at: t0 + secs(4),
            };
            let answers = store
                .write(vec![
                    arrival("c", t0 + secs(3)),
                    arrival("a", t0 + secs(1)),
                    Write::Admit(generated.clone()),
                    arrival("b", t0 + secs(2)),
                ])
                .await
                .unwrap();
            assert!(
                answers.iter().all(|a| *a == Written::Admitted),
                "{answers:?}"
            );
            let keys = |v: Vec<Arrival>| v.into_iter().map(|a| a.key).collect::<Vec<_>>();
            assert_eq!(
                keys(store.inbox(t0 + secs(10), 10).await.unwrap()),
                ["c", "a", "deploybot:1", "b"]
            );
            assert_eq!(
                keys(store.inbox(t0 + secs(10), 2).await.unwrap()),
                ["c", "a"]
            );
            assert_eq!(
                keys(store.inbox(t0 + secs(3), 10).await.unwrap()),
                ["a", "b"],
                "received before, not at"
            );
            let all = store.inbox(t0 + secs(10), 10).await.unwrap();
            assert_eq!(all[2], generated, "a generated key has no delivery id");
            assert_eq!(all[0].delivery.as_deref(), Some("c"));
            assert_eq!(all[0].event, "{\"kind\":\"c\"}");
            assert_eq!(all[0].at, t0 + secs(3));
            // One batch of every kind: admitted first, tracked written, applied removed.
            let t = tracked(7);
            let mut done = settled(8);
            done.request_id = Some("r-8".into());
            let answers = store
                .write(vec![
                    Write::Applied("c".into()),
                    Write::Insert(Box::new(t.clone())),
                    arrival("d", t0 + secs(5)),
                    Write::Insert(Box::new(t.clone())),
                    Write::Put(Box::new(done.clone())),
                    Write::Applied("deploybot:1".into()),
                    Write::Applied("never-admitted".into()),
                ])
                .await
                .unwrap();
            assert_eq!(
                answers,
                [
                    Written::Done,
                    Written::Inserted(true),
                    Written::Admitted,
                    Written::Inserted(false),
                    Written::Done,
                    Written::Done,
                    Written::Done,
                ]
            );
            assert_eq!(
                store.tracked(&api(), DeploymentId(8)).await.unwrap(),
                Some(done)
            );
        }
        // What was admitted and not applied survives a restart.
        let store = b.open().await;
        assert_eq!(
            store
                .inbox(t0 + secs(10), 10)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.key)
                .collect::<Vec<_>>(),
            ["a", "b", "d"]
        );
        assert_eq!(
            store
                .unfinished()
                .await
                .unwrap()
                .iter()
                .map(|t| t.deployment_id)
                .collect::<Vec<_>>(),
            [DeploymentId(7)]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_records_are_keyed_by_repository_and_id_and_survive_reopening() {
    contract(async |b: &Backend| {
        {
            let store = b.open().await;
            let mut t = tracked(7);
            t.request_id = Some("r-7".into());
            assert!(store.insert_tracked(&t).await.unwrap());
            let mut changed = t.clone();
            changed.git_ref = "other".into();
            assert!(
                !store.insert_tracked(&changed).await.unwrap(),
                "insert never overwrites"
            );
            assert_eq!(
                store.tracked(&api(), DeploymentId(7)).await.unwrap(),
                Some(t.clone())
            );
            // Case-insensitive repository; both halves of the key must match.
            let upper = RepoName::parse("ACME/API").unwrap();
            assert_eq!(
                store.tracked(&upper, DeploymentId(7)).await.unwrap(),
                Some(t.clone())
            );
            let evil = RepoName::parse("evil/x").unwrap();
            assert_eq!(store.tracked(&evil, DeploymentId(7)).await.unwrap(), None);
            let mut other = tracked(7);
            other.repository = evil.clone();
            assert!(
                store.insert_tracked(&other).await.unwrap(),
                "another repository"
            );
            // The oldest deployment made for a request id.
            let mut again = tracked(5);
            again.request_id = Some("r-7".into());
            store.put_tracked(&again).await.unwrap();
            assert_eq!(
                store
                    .tracked_by_request(&upper, "r-7")
                    .await
                    .unwrap()
                    .map(|t| t.deployment_id),
                Some(DeploymentId(5))
            );
            assert_eq!(store.tracked_by_request(&evil, "r-7").await.unwrap(), None);
            // Put replaces, and settles.
            let mut done = t.clone();
            done.state = DeploymentState::Success;
            done.final_rendered = true;
            done.status_id = Some(99);
            store.put_tracked(&done).await.unwrap();
            assert_eq!(
                store.tracked(&api(), DeploymentId(7)).await.unwrap(),
                Some(done)
            );
            let mut gave_up = tracked(3);
            gave_up.given_up = true;
            store.put_tracked(&gave_up).await.unwrap();
        }
        let store = b.open().await;
        assert_eq!(
            store
                .unfinished()
                .await
                .unwrap()
                .iter()
                .map(|t| (t.repository.to_string(), t.deployment_id))
                .collect::<Vec<_>>(),
            [
                ("acme/api".to_string(), DeploymentId(5)),
                ("evil/x".to_string(), DeploymentId(7))
            ],
            "by deployment id; settled and given-up ones are not unfinished"
        );
        assert_eq!(
            store
                .tracked(&api(), DeploymentId(7))
                .await
                .unwrap()
                .unwrap()
                .status_id,
            Some(99)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_writes_of_a_batch_keep_their_order_and_the_last_put_wins() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t = tracked(7);
        assert_eq!(
            store
                .write(vec![
                    Write::Insert(Box::new(t.clone())),
                    Write::Insert(Box::new(t.clone())),
                ])
                .await
                .unwrap(),
            [Written::Inserted(true), Written::Inserted(false)]
        );
        let (a, other) = (tracked(1), tracked(2));
        let mut a_done = a.clone();
        a_done.state = DeploymentState::Success;
        let mut other_running = other.clone();
        other_running.state = DeploymentState::InProgress;
        let answers = store
            .write(vec![
                Write::Put(Box::new(a.clone())),
                Write::Put(Box::new(other_running.clone())),
                Write::Put(Box::new(a_done.clone())),
                // An insert after the puts sees their rows.
                Write::Insert(Box::new(other.clone())),
            ])
            .await
            .unwrap();
        assert_eq!(answers[3], Written::Inserted(false));
        let got = |t: &Tracked| {
            let (store, t) = (store.clone(), t.clone());
            async move { store.tracked(&t.repository, t.deployment_id).await.unwrap() }
        };
        assert_eq!(
            got(&a).await.map(|t| t.state),
            Some(DeploymentState::Success)
        );
        assert_eq!(
            got(&other).await.map(|t| t.state),
            Some(DeploymentState::InProgress)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_applied_on_arrival_keeps_its_id_and_record_and_nothing_in_the_inbox() {
    contract(async |b: &Backend| {
        let t0 = now();
        let applied = |id: Option<&str>, t: &Tracked| Write::AdmitApplied {
            delivery: id.map(str::to_string),
            at: t0,
            record: Box::new(t.clone()),
        };
        let state = |id: u64, state| Tracked {
            state,
            ..tracked(id)
        };
        let (running, done) = (
            state(9, DeploymentState::InProgress),
            state(9, DeploymentState::Success),
        );
        {
            let store = b.open().await;
            let answers = store
                .write(vec![
                    Write::Put(Box::new(tracked(9))),
                    applied(Some("s1"), &running),
                    arrival("s1", t0),
                    // A seen id is a duplicate, and its record is written all the same.
                    applied(Some("s1"), &done),
                    applied(None, &tracked(10)),
                ])
                .await
                .unwrap();
            assert_eq!(
                answers,
                [
                    Written::Done,
                    Written::Admitted,
                    Written::Duplicate,
                    Written::Duplicate,
                    Written::Admitted
                ]
            );
            assert!(store.inbox(t0 + secs(1), 100).await.unwrap().is_empty());
        }
        // Across a restart: the record is there and the id remembered.
        let store = b.open().await;
        assert_eq!(
            store
                .tracked(&api(), DeploymentId(9))
                .await
                .unwrap()
                .map(|t| t.state),
            Some(DeploymentState::Success)
        );
        assert!(store
            .tracked(&api(), DeploymentId(10))
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            store.write(vec![arrival("s1", t0)]).await.unwrap(),
            [Written::Duplicate]
        );
        assert!(store.inbox(t0 + secs(1), 100).await.unwrap().is_empty());
        // It supersedes an earlier put of its record in the batch: that one is not
        // written (here it would be refused), and it is itself never skipped.
        refuse_in_progress(b).await;
        assert_eq!(
            store
                .write(vec![
                    Write::Put(Box::new(state(11, DeploymentState::InProgress))),
                    applied(Some("s2"), &state(11, DeploymentState::Success)),
                ])
                .await
                .unwrap(),
            [Written::Done, Written::Admitted]
        );
        assert!(store
            .write(vec![
                applied(Some("s3"), &state(12, DeploymentState::InProgress)),
                Write::Put(Box::new(state(12, DeploymentState::Success))),
            ])
            .await
            .is_err());
        // Refused, the batch kept nothing: not even the delivery id.
        assert_eq!(
            store.write(vec![arrival("s3", t0)]).await.unwrap(),
            [Written::Admitted]
        );
    })
    .await;
}

/// Makes the store refuse (as a full disk would) any write of a tracked record whose
/// state is `in_progress`.
async fn refuse_in_progress(b: &Backend) {
    if b.name == "sqlite" {
        let pool = sqlx::SqlitePool::connect(&b.url).await.unwrap();
        for event in ["INSERT", "UPDATE"] {
            sqlx::query(&format!(
                r#"CREATE TRIGGER refuse_{event} BEFORE {event} ON tracked
                   WHEN NEW.data LIKE '%"state":"in_progress"%'
                   BEGIN SELECT RAISE(ABORT, 'injected: disk full'); END"#
            ))
            .execute(&pool)
            .await
            .unwrap();
        }
    } else {
        let pool = sqlx::PgPool::connect(&b.url).await.unwrap();
        sqlx::query(
            r#"CREATE FUNCTION refuse_in_progress() RETURNS trigger AS $$
               BEGIN
                 IF NEW.data LIKE '%"state":"in_progress"%' THEN
                   RAISE EXCEPTION 'injected: disk full';
                 END IF;
                 RETURN NEW;
               END $$ LANGUAGE plpgsql"#,
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_in_progress BEFORE INSERT OR UPDATE ON tracked
             FOR EACH ROW EXECUTE FUNCTION refuse_in_progress()",
        )
        .execute(&pool)
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_followed_by_another_of_the_same_record_in_a_batch_is_not_written() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t = tracked(5);
        store.put_tracked(&t).await.unwrap();
        refuse_in_progress(b).await;
        let state = |t: Tracked, state| Box::new(Tracked { state, ..t });
        // The in-progress record is superseded within the batch: never written, so
        // the refusal never fires.
        assert_eq!(
            store
                .write(vec![
                    Write::Put(state(t.clone(), DeploymentState::InProgress)),
                    Write::Put(state(t.clone(), DeploymentState::Success)),
                ])
                .await
                .unwrap(),
            [Written::Done, Written::Done]
        );
        assert_eq!(
            store
                .tracked(&t.repository, t.deployment_id)
                .await
                .unwrap()
                .map(|t| t.state),
            Some(DeploymentState::Success)
        );
        // An insert between the two puts sees the first one's row: it is written (and
        // here refused, failing the whole batch, which changes nothing).
        let other = tracked(6);
        assert!(store
            .write(vec![
                Write::Put(state(other.clone(), DeploymentState::InProgress)),
                Write::Insert(Box::new(other.clone())),
                Write::Put(state(other.clone(), DeploymentState::Success)),
            ])
            .await
            .is_err());
        assert_eq!(
            store
                .tracked(&other.repository, other.deployment_id)
                .await
                .unwrap(),
            None
        );
        // The last put of a batch is always written.
        assert!(store
            .write(vec![
                Write::Put(state(other.clone(), DeploymentState::Success)),
                Write::Put(state(other.clone(), DeploymentState::InProgress)),
            ])
            .await
            .is_err());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settled_records_age_out_and_unsettled_ones_stay() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        store.put_tracked(&settled(1)).await.unwrap();
        store.put_tracked(&tracked(2)).await.unwrap();
        assert_eq!(store.prune_settled(Utc::now() - secs(60)).await.unwrap(), 0);
        assert_eq!(
            store
                .prune_settled(Utc::now() + secs(86_400))
                .await
                .unwrap(),
            1
        );
        assert_eq!(store.tracked(&api(), DeploymentId(1)).await.unwrap(), None);
        assert!(store
            .tracked(&api(), DeploymentId(2))
            .await
            .unwrap()
            .is_some());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_survives_reopening_and_closes_exactly_once() {
    contract(async |b: &Backend| {
        let t0 = now();
        let first = intent("r-1", t0 + secs(5));
        let older = intent("r-0", t0);
        {
            let store = b.open().await;
            store.add_intent(&first).await.unwrap();
            store.add_intent(&older).await.unwrap();
            assert!(
                store.add_intent(&first).await.is_err(),
                "one intent per request id"
            );
        }
        let store = b.open().await;
        assert_eq!(
            store.open_intents().await.unwrap(),
            [older.clone(), first.clone()]
        );
        let at = t0 + secs(10);
        assert!(store
            .close_intent("r-1", IntentResolution::Created, Some(DeploymentId(7)), at)
            .await
            .unwrap());
        assert!(
            !store
                .close_intent("r-1", IntentResolution::NotCreated, None, at)
                .await
                .unwrap(),
            "a second closer loses"
        );
        assert!(!store
            .close_intent("never", IntentResolution::Failed, None, at)
            .await
            .unwrap());
        assert_eq!(store.open_intents().await.unwrap(), [older]);
        // Closed ones age out; open ones stay.
        assert_eq!(store.prune_settled(at).await.unwrap(), 0, "not before `at`");
        assert_eq!(store.prune_settled(at + secs(1)).await.unwrap(), 1);
        assert_eq!(store.open_intents().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_closers_of_one_intent_one_wins() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        store.add_intent(&intent("r", t0)).await.unwrap();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                let how = if i % 2 == 0 {
                    IntentResolution::Created
                } else {
                    IntentResolution::Abandoned
                };
                store
                    .close_intent("r", how, Some(DeploymentId(i as u64)), t0)
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(answers.iter().filter(|w| **w).count(), 1, "{answers:?}");
        assert!(store.open_intents().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_are_listed_newest_first_and_pruned_by_age() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let entries = [
            entry(t0, Some("api"), Some("staging"), "one"),
            entry(t0 + secs(1), Some("api"), Some("production"), "two"),
            entry(t0 + secs(2), Some("web"), Some("staging"), "three"),
            AuditEntry {
                rule: Some("syntax".into()),
                decision: "refused".into(),
                deployment_id: None,
                detail: None,
                ..entry(t0 + secs(3), None, None, "four")
            },
        ];
        for e in &entries {
            store.audit(e).await.unwrap();
        }
        let texts = |v: Vec<AuditEntry>| v.into_iter().map(|e| e.text).collect::<Vec<_>>();
        let all = store.audit_entries(None, None, 10).await.unwrap();
        assert_eq!(all[0], entries[3], "every field kept");
        assert_eq!(all[3], entries[0]);
        assert_eq!(texts(all), ["four", "three", "two", "one"]);
        assert_eq!(
            texts(store.audit_entries(Some("api"), None, 10).await.unwrap()),
            ["two", "one"]
        );
        assert_eq!(
            texts(
                store
                    .audit_entries(None, Some("staging"), 10)
                    .await
                    .unwrap()
            ),
            ["three", "one"]
        );
        assert_eq!(
            texts(
                store
                    .audit_entries(Some("api"), Some("staging"), 10)
                    .await
                    .unwrap()
            ),
            ["one"]
        );
        assert_eq!(
            texts(store.audit_entries(None, None, 2).await.unwrap()),
            ["four", "three"]
        );
        assert_eq!(store.prune_audit(t0 + secs(2)).await.unwrap(), 2);
        assert_eq!(
            texts(store.audit_entries(None, None, 10).await.unwrap()),
            ["four", "three"]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_is_written_once_even_by_racing_first_starts() {
    contract(async |b: &Backend| {
        {
            let store = b.open().await;
            assert_eq!(
                store.setting_or_insert("k", "first").await.unwrap(),
                "first"
            );
            assert_eq!(
                store.setting_or_insert("k", "second").await.unwrap(),
                "first"
            );
        }
        let store = b.open().await;
        assert_eq!(
            store.setting_or_insert("k", "third").await.unwrap(),
            "first"
        );
        let answers = race(|i| {
            let store = store.clone();
            async move {
                store
                    .setting_or_insert("routing_key", &format!("key-{i}"))
                    .await
                    .unwrap()
            }
        })
        .await;
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
        assert!(answers[0].starts_with("key-"));
        assert_eq!(
            store
                .setting_or_insert("routing_key", "late")
                .await
                .unwrap(),
            answers[0]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_is_claimed_once_and_released_only_as_recorded() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let alice = press("discord:1", "alice", t0);
        let bob = press("discord:1", "bob", t0 + secs(1));
        assert_eq!(store.claim_press(&alice).await.unwrap(), None);
        assert_eq!(store.claim_press(&bob).await.unwrap(), Some(alice.clone()));
        // Another message's buttons are another claim.
        assert_eq!(
            store
                .claim_press(&press("discord:2", "bob", t0))
                .await
                .unwrap(),
            None
        );
        // Releasing a press that is not the one recorded changes nothing.
        store.release_press(&bob).await.unwrap();
        let other_time = press("discord:1", "alice", t0 + secs(5));
        store.release_press(&other_time).await.unwrap();
        assert_eq!(store.claim_press(&bob).await.unwrap(), Some(alice.clone()));
        store.release_press(&alice).await.unwrap();
        assert_eq!(store.claim_press(&bob).await.unwrap(), None, "usable again");
        assert_eq!(store.claim_press(&alice).await.unwrap(), Some(bob.clone()));
        // Presses age out.
        assert_eq!(
            store.prune_settled(t0 + secs(1)).await.unwrap(),
            1,
            "discord:2"
        );
        assert_eq!(
            store.prune_settled(t0 + secs(2)).await.unwrap(),
            1,
            "discord:1"
        );
        assert_eq!(store.claim_press(&alice).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_presses_of_one_message_one_wins() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                let p = press("discord:42", &format!("u{i}"), t0 + secs(i as i64));
                (p.clone(), store.claim_press(&p).await.unwrap())
            }
        })
        .await;
        let winners: Vec<&Press> = answers
            .iter()
            .filter(|(_, earlier)| earlier.is_none())
            .map(|(p, _)| p)
            .collect();
        assert_eq!(winners.len(), 1, "{answers:?}");
        for (_, earlier) in &answers {
            if let Some(earlier) = earlier {
                assert_eq!(earlier, winners[0]);
            }
        }
    })
    .await;
}

/// Locks, confirmations and tracked deployments: the gauges' counts, without SQLite's
/// checkpoints (which go on in the background).
fn counts(g: Gauges) -> (u64, u64, u64) {
    (g.locks, g.confirmations, g.tracked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gauges_count_unexpired_locks_pending_confirmations_and_followed_deployments() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        assert_eq!(counts(store.gauges(t0).await.unwrap()), (0, 0, 0));
        store
            .take_lock(&lock("staging", "a", t0, 60), t0)
            .await
            .unwrap();
        store
            .take_lock(&lock("production", "a", t0, 600), t0)
            .await
            .unwrap();
        store
            .add_confirmation(&confirmation("c1", "a", t0))
            .await
            .unwrap();
        store
            .add_confirmation(&confirmation("c2", "a", t0))
            .await
            .unwrap();
        store
            .close_confirmation("c2", "a", ConfirmationState::Cancelled, t0)
            .await
            .unwrap()
            .unwrap();
        store.put_tracked(&tracked(1)).await.unwrap();
        store.put_tracked(&tracked(2)).await.unwrap();
        store.put_tracked(&settled(3)).await.unwrap();
        assert_eq!(counts(store.gauges(t0).await.unwrap()), (2, 1, 2));
        assert_eq!(
            counts(store.gauges(t0 + secs(61)).await.unwrap()),
            (1, 0, 2)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_proves_a_write_could_be_taken_and_changes_nothing() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        store.setting_or_insert("k", "v").await.unwrap();
        for _ in 0..3 {
            store.ping().await.unwrap();
        }
        assert_eq!(store.setting_or_insert("k", "w").await.unwrap(), "v");
        assert_eq!(counts(store.gauges(now()).await.unwrap()), (0, 0, 0));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_keep_microseconds_and_their_order() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = DateTime::parse_from_rfc3339("2031-02-03T04:05:06.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let kept = DateTime::parse_from_rfc3339("2031-02-03T04:05:06.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let later = lock(
            "production",
            "b",
            t0 + chrono::Duration::microseconds(1),
            60,
        );
        store.take_lock(&later, t0).await.unwrap();
        store
            .take_lock(&lock("staging", "a", t0, 60), t0)
            .await
            .unwrap();
        let locks = store.locks(t0).await.unwrap();
        assert_eq!(
            locks[0].created_at, kept,
            "nanoseconds are cut, not rounded"
        );
        assert_eq!(locks[0].environment, "staging");
        assert_eq!(locks[1].environment, "production", "one microsecond later");
        // An expiry exactly at `now` is expired.
        assert_eq!(
            store.lock("api", "staging", kept + secs(60)).await.unwrap(),
            None
        );
        assert!(store
            .lock(
                "api",
                "staging",
                kept + secs(60) - chrono::Duration::microseconds(1)
            )
            .await
            .unwrap()
            .is_some());
        store.audit(&entry(t0, None, None, "x")).await.unwrap();
        assert_eq!(
            store.audit_entries(None, None, 1).await.unwrap()[0].at,
            kept
        );
    })
    .await;
}

/// `deploybot migrate-store`: a SQLite store, filled through the trait, is read back
/// through the trait from PostgreSQL; a second run copies nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_sqlite_into_postgres_and_can_run_again() {
    use deploybot::store::migrate::migrate;
    let dir = tempfile::tempdir().unwrap();
    // Refused before anything is opened, with what to give instead.
    let e = migrate("postgres://a/b", "postgres://c/d", 1)
        .await
        .unwrap_err();
    assert!(e.contains("not a SQLite URL"), "{e}");
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    let e = migrate(&missing, "postgres://c/d", 1).await.unwrap_err();
    assert!(e.contains("there is no file"), "{e}");
    let e = migrate(&missing, "mysql://c/d", 1).await.unwrap_err();
    assert!(e.contains("not a PostgreSQL URL"), "{e}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deploybot"))
        .args([
            "migrate-store",
            "--from",
            &missing,
            "--to",
            "postgres://c/d",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no file"));
    let Some(admin) = postgres_server() else {
        return;
    };

    let from = format!("sqlite://{}", dir.path().join("old.db").display());
    let t0 = now();
    {
        let old = SqliteStore::open(&from).await.unwrap();
        old.take_lock(&lock("production", "alice", t0, 3600), t0)
            .await
            .unwrap();
        old.add_confirmation(&confirmation("c1", "bob", t0))
            .await
            .unwrap();
        old.write(vec![Write::Insert(Box::new(tracked(5))), arrival("d1", t0)])
            .await
            .unwrap();
        old.add_intent(&intent("r1", t0)).await.unwrap();
        old.audit(&entry(t0, Some("api"), Some("staging"), "first"))
            .await
            .unwrap();
        old.audit(&entry(t0 + secs(1), Some("api"), Some("staging"), "second"))
            .await
            .unwrap();
        old.claim_press(&press("discord:1", "carol", t0))
            .await
            .unwrap();
        old.freeze(&freeze(None, Some("production"), "erin", t0, None), t0)
            .await
            .unwrap();
        old.setting_or_insert("routing_key", "the-old-key")
            .await
            .unwrap();
    }
    let db = FreshDatabase::create(&admin).await;
    let to = with_database(&admin, &db.name);
    let outcome = AssertUnwindSafe(async {
        let report = migrate(&from, &to, 2).await.unwrap();
        let text = report.to_string();
        for line in [
            "settings: 1 rows, 1 copied",
            "tracked: 1 rows, 1 copied",
            "locks: 1 rows, 1 copied",
            "confirmations: 1 rows, 1 copied",
            "inbox: 1 rows, 1 copied",
            "audit: 2 rows, 2 copied",
            "presses: 1 rows, 1 copied",
            "freezes: 1 rows, 1 copied",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        let new = PostgresStore::open(&to, 2).await.unwrap();
        let held = new.lock("api", "production", t0).await.unwrap().unwrap();
        assert_eq!(held.holder_id, "alice");
        assert_eq!(micros(held.expires_at), micros(t0 + secs(3600)));
        assert_eq!(
            new.pending_confirmations("deploys", t0).await.unwrap()[0].id,
            "c1"
        );
        assert!(new
            .tracked(&api(), DeploymentId(5))
            .await
            .unwrap()
            .is_some());
        assert_eq!(new.open_intents().await.unwrap()[0].request_id, "r1");
        assert_eq!(
            new.write(vec![arrival("d1", t0)]).await.unwrap(),
            [Written::Duplicate],
            "delivery ids move too"
        );
        assert_eq!(new.inbox(t0 + secs(1), 10).await.unwrap().len(), 1);
        assert!(new
            .claim_press(&press("discord:1", "dan", t0))
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            new.setting_or_insert("routing_key", "a-new-key")
                .await
                .unwrap(),
            "the-old-key",
            "deployments made before the move still verify"
        );
        // New audit entries get ids after the copied ones.
        new.audit(&entry(t0 + secs(2), Some("api"), Some("staging"), "third"))
            .await
            .unwrap();
        let texts: Vec<String> = new
            .audit_entries(None, None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.text)
            .collect();
        assert_eq!(texts, ["third", "second", "first"]);
        // Again: nothing more is copied.
        let again = migrate(&from, &to, 2).await.unwrap().to_string();
        assert!(
            again.contains("audit: 2 rows, 0 copied, 2 already there"),
            "{again}"
        );
        assert!(
            again.contains("locks: 1 rows, 0 copied, 1 already there"),
            "{again}"
        );
    })
    .catch_unwind()
    .await;
    db.drop_it().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

// ---- the queue, lock reminders and automatic locks (store::queue::QueueStore) ----

mod queue_contract {
    use super::*;
    use deploybot::store::queue::{Joined, QueueEntry, QueueState};

    fn entry(env: &str, user: &str, at: DateTime<Utc>) -> QueueEntry {
        QueueEntry {
            app: "api".into(),
            environment: env.into(),
            position: 0,
            user_id: user.into(),
            user_name: format!("{user} name"),
            roles: vec!["release".into()],
            command: format!("deploy api to {env}"),
            conversation: conversation("deploys"),
            joined_at: at,
            state: QueueState::Waiting,
            told_at: None,
            reserved_until: None,
        }
    }

    fn joined(j: Joined) -> QueueEntry {
        match j {
            Joined::Joined(e) => e,
            Joined::Already(e) => panic!("already queued: {e:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queue_keeps_its_order_one_entry_per_person_and_survives_reopening() {
        contract(async |b: &Backend| {
            let store = b.open().await;
            let t0 = now();
            let bob = joined(
                store
                    .join_queue(&entry("production", "bob", t0))
                    .await
                    .unwrap(),
            );
            let carol = joined(
                store
                    .join_queue(&entry("production", "carol", t0))
                    .await
                    .unwrap(),
            );
            assert!(bob.position < carol.position, "{bob:?} {carol:?}");
            assert_eq!(bob.roles, vec!["release".to_string()]);
            assert_eq!(bob.joined_at, t0);
            // Joining again changes nothing.
            match store
                .join_queue(&entry("production", "bob", t0))
                .await
                .unwrap()
            {
                Joined::Already(e) => assert_eq!(e.position, bob.position),
                other => panic!("{other:?}"),
            }
            // Another environment is another queue.
            joined(
                store
                    .join_queue(&entry("staging", "bob", t0))
                    .await
                    .unwrap(),
            );
            drop(store);
            let store = b.open().await;
            let line = store.queue(Some("api"), Some("production")).await.unwrap();
            let names: Vec<&str> = line.iter().map(|e| e.user_id.as_str()).collect();
            assert_eq!(names, ["bob", "carol"]);
            assert_eq!(store.queue(None, None).await.unwrap().len(), 3);
            // Leaving closes the entry once; the person may join again, at the end.
            let left = store
                .leave_queue("api", "production", "bob", t0)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(left.state, QueueState::Left);
            assert!(store
                .leave_queue("api", "production", "bob", t0)
                .await
                .unwrap()
                .is_none());
            let again = joined(
                store
                    .join_queue(&entry("production", "bob", t0))
                    .await
                    .unwrap(),
            );
            assert!(again.position > carol.position);
            // Closed entries age out; open ones stay, and new ones still line up behind.
            assert_eq!(store.prune_queue(t0).await.unwrap(), 0);
            assert_eq!(store.prune_queue(t0 + secs(1)).await.unwrap(), 1);
            let line = store.queue(Some("api"), Some("production")).await.unwrap();
            assert_eq!(line.len(), 2);
            let last = joined(
                store
                    .join_queue(&entry("production", "eve", t0))
                    .await
                    .unwrap(),
            );
            assert!(last.position > again.position);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sixteen_racing_joins_get_sixteen_positions_in_a_strict_order() {
        contract(async |b: &Backend| {
            let store = b.open().await;
            let t0 = now();
            let answers = race(|i| {
                let store = store.clone();
                async move {
                    joined(
                        store
                            .join_queue(&entry("production", &format!("u{i}"), t0))
                            .await
                            .unwrap(),
                    )
                }
            })
            .await;
            let mut positions: Vec<i64> = answers.iter().map(|e| e.position).collect();
            positions.sort();
            positions.dedup();
            assert_eq!(positions.len(), RACERS, "{answers:?}");
            let line = store.queue(Some("api"), Some("production")).await.unwrap();
            assert_eq!(line.len(), RACERS);
            assert!(line.windows(2).all(|w| w[0].position < w[1].position));
            // One person racing themself is queued once.
            let same = race(|_| {
                let store = store.clone();
                async move {
                    store
                        .join_queue(&entry("staging", "dora", t0))
                        .await
                        .unwrap()
                }
            })
            .await;
            let new = same
                .iter()
                .filter(|j| matches!(j, Joined::Joined(_)))
                .count();
            assert_eq!(new, 1, "{same:?}");
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_turn_goes_to_the_first_in_line_once_and_ends_once() {
        contract(async |b: &Backend| {
            let store = b.open().await;
            let t0 = now();
            for user in ["bob", "carol"] {
                joined(
                    store
                        .join_queue(&entry("production", user, t0))
                        .await
                        .unwrap(),
                );
            }
            let turn = store
                .take_turn("api", "production", t0, t0 + secs(300))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                (turn.user_id.as_str(), turn.state),
                ("bob", QueueState::Turn)
            );
            assert_eq!(turn.reserved_until, Some(t0 + secs(300)));
            // One turn at a time.
            assert!(store
                .take_turn("api", "production", t0, t0 + secs(300))
                .await
                .unwrap()
                .is_none());
            // Not yet over; then over, once.
            assert!(store.expire_turns(t0 + secs(299)).await.unwrap().is_empty());
            let lost = store.expire_turns(t0 + secs(300)).await.unwrap();
            assert_eq!(lost.len(), 1);
            assert_eq!(lost[0].user_id, "bob");
            assert!(store.expire_turns(t0 + secs(301)).await.unwrap().is_empty());
            let next = store
                .take_turn("api", "production", t0, t0 + secs(300))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(next.user_id, "carol");
            // Used once: closing again, or someone else's, does nothing.
            assert!(store
                .close_turn("api", "production", "bob", QueueState::Deployed, t0)
                .await
                .unwrap()
                .is_none());
            let used = store
                .close_turn("api", "production", "carol", QueueState::Deployed, t0)
                .await
                .unwrap();
            assert!(used.is_some());
            assert!(store
                .close_turn("api", "production", "carol", QueueState::Deployed, t0)
                .await
                .unwrap()
                .is_none());
            assert!(store.queue(None, None).await.unwrap().is_empty());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sixteen_racing_hand_overs_give_one_turn() {
        contract(async |b: &Backend| {
            let store = b.open().await;
            let t0 = now();
            for user in ["bob", "carol", "dora"] {
                joined(
                    store
                        .join_queue(&entry("production", user, t0))
                        .await
                        .unwrap(),
                );
            }
            let answers = race(|_| {
                let store = store.clone();
                async move {
                    store
                        .take_turn("api", "production", t0, t0 + secs(300))
                        .await
                        .unwrap()
                }
            })
            .await;
            let given: Vec<&QueueEntry> = answers.iter().flatten().collect();
            assert_eq!(given.len(), 1, "{answers:?}");
            assert_eq!(given[0].user_id, "bob");
            let turns = store
                .queue(Some("api"), Some("production"))
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.state == QueueState::Turn)
                .count();
            assert_eq!(turns, 1);
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lock_reminder_is_sent_once_per_interval_even_by_racing_instances() {
        contract(async |b: &Backend| {
            let store = b.open().await;
            let t0 = now();
            let l = lock("production", "alice", t0, 86_400);
            assert_eq!(store.take_lock(&l, t0).await.unwrap(), LockTaken::Taken);
            // Not held for an interval (7200 s) yet.
            let early = t0 + secs(3600);
            assert!(!store
                .remind_lock(&l, early - secs(7200), early)
                .await
                .unwrap());
            let due = t0 + secs(7200);
            let answers = race(|_| {
                let (store, l) = (store.clone(), l.clone());
                async move { store.remind_lock(&l, due - secs(7200), due).await.unwrap() }
            })
            .await;
            assert_eq!(answers.iter().filter(|r| **r).count(), 1, "{answers:?}");
            // The next one an interval after that reminder, not before.
            let later = due + secs(7199);
            assert!(!store
                .remind_lock(&l, later - secs(7200), later)
                .await
                .unwrap());
            let next = due + secs(7200);
            assert!(store
                .remind_lock(&l, next - secs(7200), next)
                .await
                .unwrap());
            // A renewed lock starts counting again.
            let renewed = lock("production", "alice", next, 86_400);
            store.replace_lock(&renewed, next).await.unwrap();
            let soon = next + secs(60);
            assert!(!store
                .remind_lock(&renewed, soon - secs(7200), soon)
                .await
                .unwrap());
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_automatic_lock_never_replaces_a_lock_and_ends_with_its_deployment() {
        contract(async |b: &Backend| {
            let store = b.open().await;
            let t0 = now();
            let auto = lock("production", "alice", t0, 3600);
            assert!(store.take_auto_lock(&auto, "acme/api#5", t0).await.unwrap());
            // Held: a second one (anyone's) is not taken.
            let other = lock("production", "bob", t0, 3600);
            assert!(!store
                .take_auto_lock(&other, "acme/api#6", t0)
                .await
                .unwrap());
            let listed = store.auto_locks(t0).await.unwrap();
            assert_eq!(listed.len(), 1);
            assert_eq!(listed[0].1, "acme/api#5");
            assert_eq!(listed[0].0.holder_id, "alice");
            // A lock someone took is not automatic, and is not replaced.
            let manual = lock("staging", "carol", t0, 3600);
            store.take_lock(&manual, t0).await.unwrap();
            assert!(!store
                .take_auto_lock(&lock("staging", "bob", t0, 3600), "acme/api#7", t0)
                .await
                .unwrap());
            assert_eq!(store.auto_locks(t0).await.unwrap().len(), 1);
            // Its end moves earlier only, and only for its deployment.
            assert!(!store
                .end_auto_lock("api", "production", "acme/api#6", t0 + secs(60))
                .await
                .unwrap());
            assert!(store
                .end_auto_lock("api", "production", "acme/api#5", t0 + secs(60))
                .await
                .unwrap());
            assert!(!store
                .end_auto_lock("api", "production", "acme/api#5", t0 + secs(120))
                .await
                .unwrap());
            let held = store.lock("api", "production", t0).await.unwrap().unwrap();
            assert_eq!(held.expires_at, t0 + secs(60));
            assert!(store
                .lock("api", "production", t0 + secs(60))
                .await
                .unwrap()
                .is_none());
        })
        .await;
    }
}
// ----- waits (`deploy … when green`) -----

fn wait(id: &str, sha: &str, created: DateTime<Utc>) -> Wait {
    Wait {
        id: id.into(),
        command: "deploy api/topic to staging when green".into(),
        requester_id: "alice".into(),
        requester_name: "Alice".into(),
        requester_roles: vec!["release".into()],
        conversation: conversation("deploys"),
        message_id: None,
        app: "api".into(),
        repository: RepoName::parse("Acme/API").unwrap(),
        environment: "staging".into(),
        git_ref: "topic".into(),
        sha: sha.into(),
        created_at: created,
        deadline: created + secs(3600),
        pokes: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_survives_reopening_counts_its_webhooks_and_closes_exactly_once() {
    contract(async |b: &Backend| {
        let t0 = now();
        let (a, b_sha) = ("a".repeat(40), "b".repeat(40));
        let first = wait("w1", &a, t0 + secs(5));
        let older = Wait {
            environment: "production".into(),
            ..wait("w0", &b_sha, t0)
        };
        {
            let store = b.open().await;
            assert_eq!(store.add_wait(&first).await.unwrap(), None);
            assert_eq!(store.add_wait(&older).await.unwrap(), None);
            // Another wait for staging: refused, naming the one that waits.
            let again = wait("w2", &b_sha, t0 + secs(6));
            assert_eq!(store.add_wait(&again).await.unwrap(), Some(first.clone()));
            assert!(
                store
                    .add_wait(&Wait {
                        environment: "qa".into(),
                        ..first.clone()
                    })
                    .await
                    .is_err(),
                "one wait per id"
            );
            store.set_wait_message("w1", "m7").await.unwrap();
        }
        let store = b.open().await;
        let open = store.open_waits().await.unwrap();
        assert_eq!(
            open,
            [
                older.clone(),
                Wait {
                    message_id: Some("m7".into()),
                    ..first.clone()
                }
            ]
        );
        // Webhooks for a commit count on the waits for that commit only, whatever the
        // repository's case.
        let repo = RepoName::parse("acme/api").unwrap();
        assert_eq!(store.poke_waits(&repo, &a).await.unwrap(), 1);
        assert_eq!(store.poke_waits(&repo, &a).await.unwrap(), 1);
        assert_eq!(store.poke_waits(&repo, &"c".repeat(40)).await.unwrap(), 0);
        let other = RepoName::parse("acme/web").unwrap();
        assert_eq!(store.poke_waits(&other, &a).await.unwrap(), 0);
        let pokes: Vec<u64> = store
            .open_waits()
            .await
            .unwrap()
            .iter()
            .map(|w| w.pokes)
            .collect();
        assert_eq!(pokes, [0, 2]);

        let at = t0 + secs(10);
        assert!(store
            .close_wait("w1", WaitResolution::Green, at)
            .await
            .unwrap());
        assert!(
            !store
                .close_wait("w1", WaitResolution::Cancelled, at)
                .await
                .unwrap(),
            "a second closer loses"
        );
        assert!(!store
            .close_wait("never", WaitResolution::Failed, at)
            .await
            .unwrap());
        assert_eq!(store.poke_waits(&repo, &a).await.unwrap(), 0, "closed");
        assert_eq!(store.open_waits().await.unwrap(), [older]);
        // Closed ones age out; open ones stay.
        assert_eq!(store.prune_settled(at).await.unwrap(), 0, "not before `at`");
        assert_eq!(store.prune_settled(at + secs(1)).await.unwrap(), 1);
        assert_eq!(store.open_waits().await.unwrap().len(), 1);
        // Its environment is free again.
        assert_eq!(store.add_wait(&wait("w3", &a, at)).await.unwrap(), None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_waits_for_one_environment_one_is_recorded() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                store
                    .add_wait(&wait(&format!("w{i}"), &"a".repeat(40), t0))
                    .await
                    .unwrap()
            }
        })
        .await;
        assert_eq!(answers.iter().filter(|a| a.is_none()).count(), 1);
        assert_eq!(store.open_waits().await.unwrap().len(), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_racing_closers_of_one_wait_one_wins() {
    contract(async |b: &Backend| {
        let store = b.open().await;
        let t0 = now();
        store
            .add_wait(&wait("w", &"a".repeat(40), t0))
            .await
            .unwrap();
        let answers = race(|i| {
            let store = store.clone();
            async move {
                // The webhook's evaluation, the poll's and a `cancel`, all at once.
                let how = match i % 3 {
                    0 => WaitResolution::Green,
                    1 => WaitResolution::Cancelled,
                    _ => WaitResolution::Failed,
                };
                store.close_wait("w", how, t0).await.unwrap()
            }
        })
        .await;
        assert_eq!(answers.iter().filter(|w| **w).count(), 1, "{answers:?}");
        assert!(store.open_waits().await.unwrap().is_empty());
    })
    .await;
}
