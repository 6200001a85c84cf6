//! One gateway, many workers: two real `deploybot run` processes (the built binary)
//! sharing one PostgreSQL database (fresh per test), one fake Discord and one GitHub
//! sandbox. Exactly one holds the gateway; when it is frozen (SIGSTOP) or killed
//! (SIGKILL) the other takes over within 15 s; an old leader that comes back answers
//! nothing; every command is answered once. Killed mid-deployment, the leader's
//! deployment message is finished by the other instance, once.
//! `cargo test --test failover kill_9 -- --nocapture` prints both instances' logs
//! around the hand-over.
//!
//! Needs `DEPLOYBOT_TEST_POSTGRES` (as `tests/store_contract.rs`): unset, it says it is
//! skipped; set and unreachable, it fails saying how to start a server.

mod balancer;
mod fake_discord;
mod pg;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fake_discord::{FakeDiscord, GUILD, RANDOM};
use sandbox::Sandbox;
use serde_json::Value;
use support::seed;
use tokio::time::Instant;

const ALICE: (u64, &str) = (100_000_000_000_000_001, "alice");
/// How long a standby may take to hold the gateway after the leader died.
const TAKE_OVER: Duration = Duration::from_secs(15);
const BOUND: Duration = Duration::from_secs(30);

struct Instance {
    name: &'static str,
    child: Option<tokio::process::Child>,
    pid: String,
    ops: String,
    log: PathBuf,
}

impl Instance {
    async fn spawn(
        name: &'static str,
        fake: &FakeDiscord,
        sandbox: &Sandbox,
        db: &str,
        dir: &Path,
        storage: &str,
    ) -> Instance {
        // A free port, for the ops endpoints to be found at.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = support::discord_config(
            &fake.url(),
            GUILD,
            &format!("url = \"{db}\"\npool_size = 4\n{storage}"),
            &format!("127.0.0.1:{port}"),
            "[log]\nformat = \"human\"\n",
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).expect("write config");
        let log = dir.join(format!("{name}.log"));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_deploybot"))
            .args(["run", "--config"])
            .arg(&path)
            .env("SANDBOX_URL", sandbox.url())
            .env("SANDBOX_TOKEN", sandbox.token())
            .env("DEPLOYBOT_LOG", "info,serenity=warn,sqlx=warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn deploybot");
        Instance {
            name,
            pid: child.id().expect("pid").to_string(),
            child: Some(child),
            ops: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- {} ---\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// `/readyz`: its status and JSON body, if it answers.
    async fn readyz(&self) -> Option<(u16, Value)> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .ok()?;
        let r = client
            .get(format!("{}/readyz", self.ops))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.ok()?))
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.ops))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {}", self.pid);
    }
}

/// The line of `/metrics` for `name` (without labels), as a number.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The counter of `locks` commands answered.
const LOCKS_ANSWERED: &str = "deploybot_commands_total{command=\"locks\",decision=\"allowed\"}";

/// The `locks` commands an instance answered. A command is counted when its audit
/// entry is written, just after its answer is posted: wait for both.
async fn answered(instance: &Instance) -> f64 {
    metric(&instance.metrics().await, LOCKS_ANSWERED).unwrap_or(0.0)
}

/// Waits (bounded) for an async condition; panics with `what` and the logs.
async fn until<F, Fut>(bound: Duration, what: &str, instances: &[&Instance], mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + bound;
    while !f().await {
        if Instant::now() > deadline {
            let logs: Vec<String> = instances.iter().map(|i| i.logs()).collect();
            panic!(
                "timed out after {bound:?} waiting for {what}\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Both answer `/readyz` 200; returns (leader, standby) indices.
async fn roles(instances: &[&Instance]) -> Option<(usize, usize)> {
    let mut leader = None;
    let mut standby = None;
    for (i, inst) in instances.iter().enumerate() {
        let (status, body) = inst.readyz().await?;
        if status != 200 {
            return None;
        }
        match body["role"].as_str() {
            Some("leader") => leader = Some(i),
            Some("standby") => standby = Some(i),
            _ => return None,
        }
    }
    Some((leader?, standby?))
}

fn answers(fake: &FakeDiscord) -> usize {
    fake.calls_to("POST", &format!("/channels/{RANDOM}/messages"))
        .len()
}

#[tokio::test]
async fn one_instance_holds_the_gateway_and_the_other_takes_over_within_15s() {
    let Some(admin) = pg::server("failover") else {
        return;
    };
    let db = pg::FreshDatabase::create(&admin).await;
    let url = db.url.clone();
    let outcome =
        futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(failover(url))).await;
    db.drop_it().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn failover(db: String) {
    let fake = FakeDiscord::start().await;
    let sandbox = Sandbox::start().await.expect("sandbox");
    seed(&sandbox);
    let dir = tempfile::tempdir().expect("tempdir");
    // Migrations first, so that the two processes do not race to create the database's
    // tables (they would be safe, but slower to start).
    deploybot::store::postgres::PostgresStore::open(&db, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}; {}", pg::HOW_TO_START));
    // The default lease (10 s): the README's "within 15 s" is about it.
    let a = Instance::spawn("a", &fake, &sandbox, &db, dir.path(), "").await;
    let b = Instance::spawn("b", &fake, &sandbox, &db, dir.path(), "").await;
    let all = [&a, &b];

    // Exactly one identifies; both are ready, one the leader, the other standing by.
    let deadline = Instant::now() + BOUND;
    let (l, s) = loop {
        if let Some(found) = roles(&all).await {
            if fake.identifies() == 1 {
                break found;
            }
        }
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for one leader and one standby, both ready ({} identifies)\n{}\n{}",
                fake.identifies(),
                a.logs(),
                b.logs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (leader, standby) = (all[l], all[s]);
    assert_eq!(fake.identifies(), 1, "only the leader opens the gateway");
    let m = leader.metrics().await;
    assert_eq!(metric(&m, "deploybot_leader"), Some(1.0), "{m}");
    let m = standby.metrics().await;
    assert_eq!(metric(&m, "deploybot_leader"), Some(0.0), "{m}");
    // Slash commands: registered by the leader (once).
    until(BOUND, "the leader's slash commands", &all, || async {
        !fake.calls_to("PUT", "/commands").is_empty()
    })
    .await;
    assert_eq!(fake.calls_to("PUT", "/commands").len(), 1);

    // A command is answered once.
    fake.say(RANDOM, ALICE, &[], "!locks");
    until(BOUND, "the leader's answer", &all, || async {
        answers(&fake) == 1
    })
    .await;

    // The leader freezes (a partition, a stuck VM): the standby takes over within 15 s.
    leader.signal("-STOP");
    let frozen = Instant::now();
    until(
        TAKE_OVER + Duration::from_secs(5),
        "the standby to identify",
        &all,
        || async { fake.identifies() == 2 },
    )
    .await;
    let took = frozen.elapsed();
    assert!(took <= TAKE_OVER, "took over after {took:?}");
    until(BOUND, "the new leader to say so", &all, || async {
        standby
            .readyz()
            .await
            .is_some_and(|(status, b)| status == 200 && b["role"] == "leader")
    })
    .await;
    // A command reaches both gateway sessions: the new leader's, and the frozen old
    // leader's (still open). The new leader answers it.
    fake.say_everywhere(RANDOM, ALICE, &[], "!locks");
    until(BOUND, "the new leader's answer", &all, || async {
        answers(&fake) == 2
    })
    .await;
    // The old leader comes back: past its lease's deadline it answers nothing, and
    // stands by.
    leader.signal("-CONT");
    until(BOUND, "the old leader to stand by", &all, || async {
        leader
            .readyz()
            .await
            .is_some_and(|(status, b)| status == 200 && b["role"] == "standby")
    })
    .await;
    let m = leader.metrics().await;
    assert_eq!(metric(&m, "deploybot_leader"), Some(0.0), "{m}");
    assert_eq!(
        metric(&m, "deploybot_leader_changes_total"),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, LOCKS_ANSWERED),
        Some(1.0),
        "the old leader handled only the first command: {m}"
    );
    assert_eq!(answers(&fake), 2, "the old leader answered nothing more");

    // Now kill -9 the new leader: the old one takes over again (a new gateway client
    // in the same process) and answers.
    standby.signal("-KILL");
    let killed = Instant::now();
    until(
        TAKE_OVER + Duration::from_secs(5),
        "the first instance to identify again",
        &all,
        || async { fake.identifies() == 3 },
    )
    .await;
    let took = killed.elapsed();
    assert!(took <= TAKE_OVER, "took over after {took:?}");
    until(BOUND, "it to lead and be ready", &[leader], || async {
        leader
            .readyz()
            .await
            .is_some_and(|(status, b)| status == 200 && b["role"] == "leader")
    })
    .await;
    fake.say(RANDOM, ALICE, &[], "!locks");
    until(
        BOUND,
        "the answer after the kill, counted",
        &[leader],
        || async { answers(&fake) == 3 && answered(leader).await >= 2.0 },
    )
    .await;
    // And once: the answer count stays at 3 while it handles nothing else.
    let m = leader.metrics().await;
    assert_eq!(metric(&m, LOCKS_ANSWERED), Some(2.0), "{m}");
    assert_eq!(answers(&fake), 3);
    let logs = leader.logs();
    assert!(logs.contains("became leader (token"), "{logs}");
    assert!(logs.contains("lost the lead"), "{logs}");

    // A clean stop releases the lease.
    leader.signal("-TERM");
    let mut child = {
        let mut a = a;
        let mut b = b;
        if l == 0 {
            drop(b.child.take());
            a.child.take().expect("child")
        } else {
            drop(a.child.take());
            b.child.take().expect("child")
        }
    };
    let status = tokio::time::timeout(BOUND, child.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("status");
    assert_eq!(status.code(), Some(0));
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&db).await.expect("connect");
    let expired: bool =
        sqlx::query_scalar("SELECT expires_at <= now() FROM leases WHERE name = 'gateway'")
            .fetch_one(&mut c)
            .await
            .expect("lease row");
    assert!(expired, "released on SIGTERM");
    let _ = c.close().await;
}

/// The channel message that tracks deployment `id` (from its payload).
fn message_of(sandbox: &Sandbox, id: u64) -> u64 {
    sandbox
        .deployments("acme/api")
        .into_iter()
        .find(|d| d["id"] == id)
        .and_then(|d| {
            d["payload"]["deploybot"]["chat"]["message"]
                .as_str()?
                .parse()
                .ok()
        })
        .expect("the deployment's payload names its message")
}

fn title(m: &Value) -> String {
    m["embeds"][0]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn kill_9_of_the_gateway_holder_mid_deployment_the_other_takes_over_and_finishes_its_message()
{
    let Some(admin) = pg::server("kill_9_mid_deployment") else {
        return;
    };
    pg::with_fresh(&admin, mid_deployment).await;
}

async fn mid_deployment(db: String) {
    use fake_discord::{DEPLOYS, RELEASE};
    let fake = FakeDiscord::start().await;
    let sandbox = Sandbox::start().await.expect("sandbox");
    seed(&sandbox);
    let dir = tempfile::tempdir().expect("tempdir");
    deploybot::store::postgres::PostgresStore::open(&db, 1)
        .await
        .unwrap_or_else(|e| panic!("{e}; {}", pg::HOW_TO_START));
    // A short lease (take-over within about 4 s) keeps the test fast.
    let short = "lease_ttl = \"3s\"";
    let a = Instance::spawn("a", &fake, &sandbox, &db, dir.path(), short).await;
    let b = Instance::spawn("b", &fake, &sandbox, &db, dir.path(), short).await;
    let all = [&a, &b];
    until(
        BOUND,
        "one leader and one standby, both ready",
        &all,
        || async { roles(&all).await.is_some() && fake.identifies() == 1 },
    )
    .await;
    let (l, s) = roles(&all).await.expect("roles");
    let (leader, standby) = (all[l], all[s]);
    until(BOUND, "the leader's slash commands", &all, || async {
        !fake.calls_to("PUT", "/commands").is_empty()
    })
    .await;
    // GitHub's deliveries go through a balancer to both (skipping a dead one).
    let balancer = balancer::Balancer::start(vec![
        format!("{}/webhook", a.ops),
        format!("{}/webhook", b.ops),
    ])
    .await;
    sandbox.add_webhook(&balancer.url(), support::SECRET);

    // alice deploys; the deployment is created and starts.
    fake.say(DEPLOYS, ALICE, &[RELEASE], "!deploy api/topic to staging");
    let id = {
        let mut found = None;
        until(BOUND, "the deployment", &all, || {
            found = sandbox
                .deployments("acme/api")
                .first()
                .and_then(|d| d["id"].as_u64());
            std::future::ready(found.is_some())
        })
        .await;
        found.expect("deployment")
    };
    let message = message_of(&sandbox, id);
    sandbox.create_deployment_status("acme/api", id, sandbox::NewStatus::new("in_progress"));
    until(BOUND, "the message to show it in progress", &all, || {
        std::future::ready(
            fake.message(message)
                .is_some_and(|m| title(&m).ends_with(": in progress")),
        )
    })
    .await;

    // kill -9 the gateway holder while the deployment runs; GitHub goes on reporting.
    leader.signal("-KILL");
    let killed = Instant::now();
    let killed_at = chrono::Utc::now();
    for step in 0..5 {
        sandbox.create_deployment_status(
            "acme/api",
            id,
            sandbox::NewStatus {
                description: Some(format!("step {step}")),
                ..sandbox::NewStatus::new("in_progress")
            },
        );
    }
    sandbox.create_deployment_status("acme/api", id, sandbox::NewStatus::new("success"));
    until(
        TAKE_OVER + Duration::from_secs(5),
        "the standby to identify",
        &all,
        || async { fake.identifies() == 2 },
    )
    .await;
    let took = killed.elapsed();
    assert!(took <= TAKE_OVER, "took over after {took:?}");
    // The message reaches its final state, shown once; alice is told once.
    until(BOUND, "the message to show success", &[standby], || {
        std::future::ready(
            fake.message(message)
                .is_some_and(|m| title(&m).ends_with(": success")),
        )
    })
    .await;
    let notice = format!("#{id} ");
    until(BOUND, "alice's notice", &[standby], || {
        std::future::ready(fake.mentions_titled(DEPLOYS, ALICE.0, &[&notice, " succeeded "]) > 0)
    })
    .await;
    // A command after the take-over is answered, once.
    fake.say(RANDOM, ALICE, &[], "!locks");
    until(
        BOUND,
        "the new leader's answer, counted",
        &[standby],
        || async { answers(&fake) == 1 && answered(standby).await >= 1.0 },
    )
    .await;
    let m = standby.metrics().await;
    assert_eq!(metric(&m, LOCKS_ANSWERED), Some(1.0), "{m}");
    let deployment = format!("Deployment #{id} of api/topic ");
    assert_eq!(
        fake.edits_titled(DEPLOYS, message, &[&deployment, ": success"]),
        1,
        "the final state shown once"
    );
    assert_eq!(
        fake.mentions_titled(DEPLOYS, ALICE.0, &[&notice]),
        1,
        "alice told once"
    );
    let creates = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/deployments"))
        .count();
    assert_eq!(creates, 1, "one deployment");
    let replies = fake
        .calls_to("POST", &format!("/channels/{DEPLOYS}/messages"))
        .iter()
        .filter(|c| title(&c.body).contains("Creating a deployment of api/topic"))
        .count();
    assert_eq!(replies, 1, "the deploy was answered once");
    let log = balancer.log();
    assert!(
        log.iter().all(|(_, status)| (200..300).contains(status)),
        "every delivery taken in: {log:?}"
    );
    assert!(
        standby.logs().contains("became leader (token 2)"),
        "{}",
        standby.logs()
    );
    // What the two instances logged around the hand-over (`--nocapture` shows it).
    println!(
        "kill -9 of {} at {killed_at:?}; {} identified after {took:?}\n{}\n{}",
        leader.name,
        standby.name,
        leader.logs(),
        standby.logs()
    );
}
