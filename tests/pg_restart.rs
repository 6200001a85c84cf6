//! PostgreSQL restarted mid-run: two instances on one database of a private server
//! (started for this test with the machine's PostgreSQL binaries, never the shared
//! one), GitHub's deliveries spread over both by a balancer. The server is stopped
//! the hard way (`pg_ctl stop -m immediate`, as a crash: recovery from the WAL at the
//! next start) while deployments run. Every delivery answered 2xx is applied; those
//! made while the database was down are answered 503 (nothing kept), and succeed when
//! GitHub's Redeliver sends them again; both instances take deliveries again, and one
//! leads.
//!
//! Runs when `DEPLOYBOT_TEST_POSTGRES` is set (as the other PostgreSQL tests; the
//! server it names is not used here): then it must be able to start a server, and
//! fails saying how to make it possible. Unset, it says it is skipped.
//! `DEPLOYBOT_TEST_PG_BIN` names the directory of `initdb` and `pg_ctl` (default
//! `/usr/lib/postgresql/15/bin`).

mod balancer;
mod pg;
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use deploybot::bot::Parts;
use deploybot::chat::shell::{self, Identity, SharedBuffer};
use deploybot::chat::Tone;
use deploybot::clock::SystemClock;
use deploybot::github::client::HttpGitHub;
use deploybot::github::token::StaticToken;
use deploybot::model::DeploymentState;
use deploybot::service::Service;
use deploybot::store::postgres::PostgresStore;
use sandbox::Sandbox;
use support::{parse_config, seed, wait_for, RecordingChat, Said, SECRET};

const BOUND: Duration = Duration::from_secs(30);
const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";
const HOW_TO_FIX: &str = "install the PostgreSQL server binaries (Debian/Ubuntu: `apt-get install postgresql-15`) or point DEPLOYBOT_TEST_PG_BIN at the directory holding `initdb` and `pg_ctl`; as root, a `postgres` OS user must exist (PostgreSQL refuses to run as root); or unset DEPLOYBOT_TEST_POSTGRES to skip the PostgreSQL tests";

/// A PostgreSQL server of this test's own: a data directory in a temporary directory,
/// trust authentication, a free port on 127.0.0.1. Stopped (immediately) on drop.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Running as root: the server's commands run as the `postgres` OS user.
    as_postgres: bool,
}

impl PrivatePostgres {
    fn start() -> Result<PrivatePostgres, String> {
        let bin = std::env::var("DEPLOYBOT_TEST_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(DEFAULT_BIN));
        if !bin.join("initdb").exists() || !bin.join("pg_ctl").exists() {
            return Err(format!("no initdb and pg_ctl in {}", bin.display()));
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map_err(|e| format!("id -u: {e}"))?;
        let as_postgres = String::from_utf8_lossy(&root.stdout).trim() == "0";
        let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(dir.path()))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let server = PrivatePostgres {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = server.data();
        server.pg("initdb", |c| {
            c.arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "--no-sync"])
        })?;
        server.start_again()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of the server's programs (as `postgres` when we are root).
    fn pg(
        &self,
        program: &str,
        args: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Result<(), String> {
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            Command::new(self.bin.join(program))
        };
        args(&mut c);
        run(&mut c)
    }

    /// Starts the server and waits until it accepts connections.
    fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.pg("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options, "start"])
        })
        .map_err(|e| {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{log}")
        })
    }

    /// Stops the server at once, without a checkpoint (as a crash would).
    fn crash(&self) -> Result<(), String> {
        self.pg("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .args(["-w", "-m", "immediate", "stop"])
        })
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.crash();
    }
}

fn run(c: &mut Command) -> Result<(), String> {
    let shown = format!("{c:?}");
    let out = c.output().map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{shown}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

async fn instance(sb: &Sandbox, url: &str) -> (Service, Arc<RecordingChat>) {
    let text = format!(
        "{}\n[storage]\nurl = \"{url}\"\npool_size = 4\nlease_ttl = \"3s\"\n",
        support::with_webhook("10ms")
    );
    let config = Arc::new(parse_config(&text, sb, &sb.token()));
    let github = HttpGitHub::with_timeout(
        &config.github.api_url,
        Arc::new(StaticToken::new(sb.token().into())),
        Duration::from_secs(10),
    )
    .unwrap();
    let chat = Arc::new(RecordingChat::new(SharedBuffer::default()));
    let service = Service::start(Parts {
        config,
        github: Arc::new(github),
        chat: chat.clone(),
        store: Arc::new(PostgresStore::open(url, 4).await.expect("the store opens")),
        clock: Arc::new(SystemClock),
        adapter: shell::ADAPTER.to_string(),
    })
    .await
    .expect("the service starts");
    (service, chat)
}

/// Final-state renders of deployment `id` (edits showing success) and notices telling
/// the requester, in every chat.
fn finals(chats: &[&RecordingChat], id: u64) -> (usize, usize) {
    let mut renders = 0;
    let mut notices = 0;
    for chat in chats {
        for said in chat.said.lock().unwrap().iter() {
            let m = said.message();
            if m.tone != Tone::Progress(DeploymentState::Success)
                || !m.title.contains(&format!("#{id} "))
            {
                continue;
            }
            match (said, &m.mention) {
                (Said::Edited { .. }, None) => renders += 1,
                (Said::Sent { .. }, Some(_)) => notices += 1,
                _ => {}
            }
        }
    }
    (renders, notices)
}

/// The `deployment_status` deliveries GitHub made, by delivery id: the last answer each
/// got (`None`: no answer).
fn answers(sb: &Sandbox) -> Vec<(String, Option<u16>)> {
    let mut last: Vec<(String, Option<u16>)> = Vec::new();
    for d in sb
        .deliveries()
        .into_iter()
        .filter(|d| d.event == "deployment_status")
    {
        match last.iter_mut().find(|(id, _)| *id == d.id) {
            Some(entry) => entry.1 = d.response_status,
            None => last.push((d.id, d.response_status)),
        }
    }
    last
}

fn ok(status: Option<u16>) -> bool {
    status.is_some_and(|s| (200..300).contains(&s))
}

/// Sends success for each deployment and waits until GitHub has an answer for each.
/// Through the REST API, with `auto_inactive: false`: every deployment's final state
/// stays success (GitHub would otherwise make the earlier ones inactive, without an
/// event, and a restart's catch-up would show that instead).
async fn succeed(sb: &Sandbox, ids: &[u64]) {
    let before = answers(sb).len();
    let client = reqwest::Client::new();
    for &id in ids {
        let r = client
            .post(format!(
                "{}/repos/acme/api/deployments/{id}/statuses",
                sb.url()
            ))
            .header("authorization", format!("token {}", sb.token()))
            .header("user-agent", "pg_restart")
            .json(&serde_json::json!({"state": "success", "auto_inactive": false}))
            .send()
            .await
            .expect("POST a deployment status");
        assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
    }
    let bound = BOUND + Duration::from_secs(10 * ids.len() as u64);
    wait_for(bound, "an answer to each delivery", || {
        let a = answers(sb);
        (a.len() == before + ids.len() && a.iter().all(|(_, s)| s.is_some())).then_some(())
    })
    .await;
}

fn leading(a: &Service, b: &Service) -> usize {
    usize::from(a.lease().is_leader()) + usize::from(b.lease().is_leader())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run_both_instances_recover_and_no_acknowledged_delivery_is_lost() {
    if pg::server("postgres_restarted_mid_run").is_none() {
        return;
    }
    let server = PrivatePostgres::start().unwrap_or_else(|e| {
        panic!("DEPLOYBOT_TEST_POSTGRES is set, but this test cannot start a PostgreSQL server of its own: {e}\nTo fix: {HOW_TO_FIX}")
    });
    let url = server.url();
    let sb = Sandbox::start().await.expect("sandbox");
    seed(&sb);
    let (a, a_chat) = instance(&sb, &url).await;
    tokio::time::timeout(BOUND, a.lease().leading())
        .await
        .expect("the first instance leads");
    let (b, b_chat) = instance(&sb, &url).await;
    let hook = |s: &Service| format!("http://{}/webhook", s.webhook_addr().expect("webhook"));
    let balancer = balancer::Balancer::start(vec![hook(&a), hook(&b)]).await;
    sb.add_webhook(&balancer.url(), SECRET);

    // Six deployments, through the leader's chat.
    let identity = Identity {
        user: "alice".into(),
        roles: vec!["release".into()],
        channel: "deploys".into(),
    };
    for _ in 0..6 {
        shell::run(
            &a.bot,
            &identity,
            "deploy api/topic to staging\n".as_bytes(),
            "!",
        )
        .await;
    }
    let mut ids: Vec<u64> = sb
        .deployments("acme/api")
        .iter()
        .filter_map(|d| d["id"].as_u64())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 6, "six deployments");

    // Two finish while the database is up…
    succeed(&sb, &ids[0..2]).await;
    assert!(
        answers(&sb).iter().all(|(_, s)| ok(*s)),
        "{:?}",
        answers(&sb)
    );
    // …two while it is down (a crash: no checkpoint)…
    server
        .crash()
        .unwrap_or_else(|e| panic!("stopping the private server: {e}"));
    succeed(&sb, &ids[2..4]).await;
    let during = answers(&sb)[2..4].to_vec();
    assert!(
        during.iter().all(|(_, s)| *s == Some(503)),
        "nothing can be committed while the database is down, so nothing is acknowledged: {during:?}"
    );
    // …and two once it is back.
    server
        .start_again()
        .unwrap_or_else(|e| panic!("starting the private server again: {e}"));
    succeed(&sb, &ids[4..6]).await;

    // GitHub's Redeliver for every delivery not acknowledged, until it is.
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let missing: Vec<String> = answers(&sb)
            .into_iter()
            .filter(|(_, s)| !ok(*s))
            .map(|(id, _)| id)
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still not acknowledged after redelivering: {missing:?}"
        );
        for id in missing {
            sb.redeliver(&id).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every deployment's success is shown, once, and alice is told once — by whichever
    // instance leads now (one does).
    wait_for(BOUND, "one leader again", || {
        (leading(&a, &b) == 1).then_some(())
    })
    .await;
    let said = |chat: &RecordingChat| {
        chat.said
            .lock()
            .unwrap()
            .iter()
            .map(|s| format!("{:?} {}", s.message().tone, s.message().title))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Shown only when the test fails (the harness keeps a passing test's output).
    eprintln!(
        "A:\n{}\nB:\n{}\nanswers: {:?}\nbalancer: {:?}",
        said(&a_chat),
        said(&b_chat),
        answers(&sb),
        balancer.log()
    );
    for &id in &ids {
        wait_for(BOUND, &format!("#{id} shown as succeeded"), || {
            (finals(&[&a_chat, &b_chat], id).1 >= 1).then_some(())
        })
        .await;
    }
    a.bot.tracker().flush(BOUND).await;
    b.bot.tracker().flush(BOUND).await;
    for &id in &ids {
        // The final state is shown (at least once: a render whose record could not be
        // written while the database was down is done again, the same edit), and
        // alice is told exactly once.
        let (renders, notices) = finals(&[&a_chat, &b_chat], id);
        assert!(renders >= 1, "#{id} shown");
        assert_eq!(notices, 1, "#{id}: alice told once");
        if renders > 1 {
            eprintln!(
                "#{id}: shown {renders} times (A: {:?}, B: {:?})",
                finals(&[&a_chat], id),
                finals(&[&b_chat], id)
            );
        }
    }
    // Both instances took deliveries after the restart.
    let log = balancer.log();
    let after: Vec<(usize, u16)> = log[log.len().saturating_sub(4)..].to_vec();
    for instance in [0, 1] {
        assert!(
            log.iter()
                .rev()
                .take(6)
                .any(|(i, s)| *i == instance && (200..300).contains(s)),
            "instance {instance} takes deliveries again: {after:?} (all: {log:?})"
        );
    }
    // Both say they are ready again (`/readyz` probes the storage with a write).
    for (name, service) in [("a", &a), ("b", &b)] {
        let url = format!("http://{}/readyz", service.ops_addr().expect("ops"));
        let deadline = tokio::time::Instant::now() + BOUND;
        loop {
            let r = reqwest::get(&url).await.expect("GET /readyz");
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            if status == 200 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} not ready again: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Nothing is left in the inbox: every event committed was applied.
    let store = PostgresStore::open(&url, 1).await.expect("store");
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let left = deploybot::store::Store::inbox(&store, chrono::Utc::now(), 100)
            .await
            .expect("read the inbox");
        if left.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} events never applied",
            left.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.stop(Duration::from_secs(5)).await;
    a.stop(Duration::from_secs(5)).await;
    sb.shutdown();
}
