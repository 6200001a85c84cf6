//! Webhook benchmark (a load script, not a test): how fast signed GitHub deliveries
//! are taken in, and how fast they become chat updates.
//!
//! ```sh
//! cargo build --release --bin deploybot --example webhook_load
//! target/release/examples/webhook_load              # bot in this process
//! target/release/examples/webhook_load --external   # bot = target/release/deploybot
//! target/release/examples/webhook_load --quick      # a tenth of the sizes
//! target/release/examples/webhook_load --chat-only  # only receipt → chat and one at a time
//! ```
//!
//! To profile the tracked runs alone: `mkfifo /tmp/ctl && PERF_CTL=/tmp/ctl perf record
//! -D -1 --control fifo:/tmp/ctl -- target/release/examples/webhook_load --chat-only`
//! (the example enables perf around them).
//!
//! It starts the sandbox (GitHub) and a bot with a real SQLite file (WAL) and its
//! webhook server, then sends ~10 KB signed `deployment_status` deliveries (GitHub's
//! own example, each with a distinct `X-GitHub-Delivery`) over loopback HTTP and
//! prints, like the table in BENCHMARKS.md:
//!
//! - the floor: a bare HMAC-SHA256 verify + typed parse loop on one core;
//! - ingest of untracked deployments at 16 and 64 concurrent senders (answers/s, p50
//!   and p99 of the answer);
//! - receipt → chat for tracked deployments at 16 and 64 senders (deliveries/s until
//!   the last final state is shown, p50/p99 of send → chat edit), counting final
//!   states shown more than once (must be 0);
//! - one delivery at a time, receipt → chat;
//! - ingest throughput as the delivery table fills from 0 to 10,000;
//! - the bot's RSS idle, after 5,000 deliveries and at the end;
//! - with `--external`, beside each tracked run, the bot's CPU time per delivery (all
//!   its threads, and the SQLite writer's), from `/proc/<pid>/task/*/schedstat`:
//!   what a change to the code moves, where the rate moves with the machine too.
//!
//! With `--external` the bot is the real `deploybot shell` binary in a process of its
//! own (its chat is the shell's stdout, read here), so senders and bot never share a
//! process, and RSS is the bot's alone. There, when `wrk` is installed (`apt-get
//! install wrk`), ingest is also measured the way the issue measured the peers: wrk
//! with a Lua script giving each request its own `X-GitHub-Delivery`, 2 threads, 10 s. In-process, the chat is a recorder and RSS
//! includes the sandbox and the senders.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deploybot::bot::Parts;
use deploybot::chat::{
    Addressing, Chat, ChatError, ChatUser, Conversation, Message, MessageId, Request, Tone,
};
use deploybot::clock::SystemClock;
use deploybot::config::Config;
use deploybot::github::client::HttpGitHub;
use deploybot::github::events::{sign, verify_signature, Event};
use deploybot::github::token::StaticToken;
use deploybot::model::DeploymentState;
use deploybot::service::Service;
use deploybot::store::sqlite::SqliteStore;
use sandbox::Sandbox;
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "load-test-webhook-secret-0123456789";

/// Final states seen, by deployment id: when first shown, and how many times.
type Finals = Arc<Mutex<HashMap<u64, (Instant, usize)>>>;

/// The deployment id in a progress message's title (`… #42 of …`; the shell's lines
/// start with the channel, `[#deploys]`).
fn deployment_of(title: &str) -> Option<u64> {
    title.split('#').skip(1).find_map(|rest| {
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

fn record_final(finals: &Finals, title: &str) {
    if let Some(id) = deployment_of(title) {
        finals
            .lock()
            .unwrap()
            .entry(id)
            .and_modify(|(_, n)| *n += 1)
            .or_insert((Instant::now(), 1));
    }
}

/// The in-process chat: message ids, and when each message first showed success.
#[derive(Default)]
struct TimingChat {
    next: Mutex<u64>,
    finals: Finals,
}

#[async_trait]
impl Chat for TimingChat {
    async fn send(&self, _to: &Conversation, _m: &Message) -> Result<MessageId, ChatError> {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        Ok(MessageId(format!("m{n}")))
    }

    async fn edit(
        &self,
        _to: &Conversation,
        _id: &MessageId,
        m: &Message,
    ) -> Result<(), ChatError> {
        if m.tone == Tone::Progress(DeploymentState::Success) {
            record_final(&self.finals, &m.title);
        }
        Ok(())
    }
}

enum Bot {
    InProcess {
        service: Service,
        finals: Finals,
    },
    External {
        child: Child,
        stdin: ChildStdin,
        finals: Finals,
        created: Arc<Mutex<usize>>,
        url: String,
    },
}

fn config_text(sb: &Sandbox, db: &std::path::Path) -> String {
    format!(
        r#"
[github]
api_url = "{url}"
token = "{token}"
[webhook]
listen = "127.0.0.1:0"
secret = "{SECRET}"
[storage]
url = "sqlite://{db}"
[defaults]
edit_interval = "1s"
[log]
level = "info"
format = "json"
[apps.api]
repository = "acme/api"
[apps.api.environments.staging]
required_contexts = []
"#,
        url = sb.url(),
        token = sb.token(),
        db = db.display()
    )
}

impl Bot {
    async fn start(sb: &Sandbox, dir: &std::path::Path, external: bool) -> Bot {
        let text = config_text(sb, &dir.join("load.db"));
        if external {
            return Bot::spawn(&text, dir);
        }
        let config =
            Arc::new(Config::parse(&text, "load.toml".as_ref(), &|_| None).expect("config"));
        let chat = Arc::new(TimingChat::default());
        let store = SqliteStore::open(&config.storage.url).await.expect("store");
        let github = HttpGitHub::new(
            &config.github.api_url,
            Arc::new(StaticToken::new(sb.token().into())),
        )
        .expect("client");
        let service = Service::start(Parts {
            config: config.clone(),
            github: Arc::new(github),
            chat: chat.clone(),
            store: Arc::new(store),
            clock: Arc::new(SystemClock),
            adapter: "load".into(),
        })
        .await
        .expect("service");
        Bot::InProcess {
            service,
            finals: chat.finals.clone(),
        }
    }

    /// `deploybot shell` from the same target folder as this example.
    fn spawn(text: &str, dir: &std::path::Path) -> Bot {
        let exe = std::env::current_exe().expect("current exe");
        let bin = exe
            .parent()
            .and_then(|examples| examples.parent())
            .map(|release| release.join("deploybot"))
            .filter(|b| b.exists())
            .expect("target/release/deploybot: run `cargo build --release --bin deploybot` first");
        let path = dir.join("load.toml");
        std::fs::write(&path, text).expect("config");
        let mut child = Command::new(bin)
            .args([
                "shell",
                "--user",
                "load",
                "--channel",
                "deploys",
                "--config",
            ])
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn deploybot");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Ok(json) = serde_json::from_str::<Value>(&line) {
                    if json["message"] == "deploybot started" {
                        let _ = tx.send(json["webhook"].as_str().unwrap_or_default().to_string());
                    } else if json["level"] == "ERROR" {
                        eprintln!("bot: {line}");
                    }
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the bot's startup summary");
        let finals: Finals = Arc::default();
        let created = Arc::new(Mutex::new(0));
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (f, c) = (finals.clone(), created.clone());
        std::thread::spawn(move || {
            // A deployment's "created" message may be shown more than once.
            let mut seen = std::collections::HashSet::new();
            for line in stdout.lines().map_while(Result::ok) {
                if line.contains(": success") && line.contains("Deployment #") {
                    record_final(&f, &line);
                } else if line.contains("Created deployment #") {
                    if let Some(id) = deployment_of(&line) {
                        if seen.insert(id) {
                            *c.lock().unwrap() += 1;
                        }
                    }
                }
            }
        });
        let stdin = child.stdin.take().unwrap();
        Bot::External {
            child,
            stdin,
            finals,
            created,
            url,
        }
    }

    fn url(&self) -> String {
        match self {
            Bot::InProcess { service, .. } => {
                format!(
                    "http://{}/webhook",
                    service.webhook_addr().expect("webhook")
                )
            }
            Bot::External { url, .. } => url.clone(),
        }
    }

    fn finals(&self) -> Finals {
        match self {
            Bot::InProcess { finals, .. } | Bot::External { finals, .. } => finals.clone(),
        }
    }

    /// Creates `n` deployments through the bot (each routed to its own message).
    async fn create(&mut self, n: usize) {
        match self {
            Bot::InProcess { service, .. } => {
                let mut tasks = Vec::new();
                for part in 0..8 {
                    let bot = service.bot.clone();
                    tasks.push(tokio::spawn(async move {
                        for _ in (part..n).step_by(8) {
                            bot.handle(deploy_request()).await;
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("create");
                }
            }
            Bot::External { stdin, created, .. } => {
                let goal = *created.lock().unwrap() + n;
                for _ in 0..n {
                    writeln!(stdin, "deploy api/main to staging").expect("stdin");
                }
                stdin.flush().expect("stdin");
                let deadline = Instant::now() + Duration::from_secs(600);
                while *created.lock().unwrap() < goal {
                    assert!(Instant::now() < deadline, "deployments not created");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn rss_kib(&self) -> u64 {
        let path = match self {
            Bot::InProcess { .. } => "/proc/self/status".to_string(),
            Bot::External { child, .. } => format!("/proc/{}/status", child.id()),
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// CPU time the bot's threads have used (ns, from `/proc/<pid>/task/*/schedstat`):
    /// all of them, and the SQLite writer thread's. `None` in-process, where the
    /// senders share the process.
    fn cpu_ns(&self) -> Option<(u64, u64)> {
        let Bot::External { child, .. } = self else {
            return None;
        };
        let (mut all, mut writer) = (0, 0);
        for task in std::fs::read_dir(format!("/proc/{}/task", child.id())).ok()? {
            let dir = task.ok()?.path();
            let ns: u64 = std::fs::read_to_string(dir.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse().ok())
                .unwrap_or(0);
            all += ns;
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if name.trim() == "sqlite-writer" {
                writer += ns;
            }
        }
        Some((all, writer))
    }

    async fn stop(self) {
        match self {
            Bot::InProcess { service, .. } => service.stop(Duration::from_secs(1)).await,
            Bot::External {
                mut child, stdin, ..
            } => {
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn deploy_request() -> Request {
    Request {
        conversation: Conversation {
            adapter: "load".into(),
            channel: "deploys".into(),
            channel_name: Some("deploys".into()),
            thread: None,
            interaction: None,
        },
        message_id: None,
        user: ChatUser {
            id: "u1".into(),
            name: "load".into(),
            roles: vec![],
        },
        text: "deploy api/main to staging".into(),
        addressing: Addressing::Direct,
        pressed: None,
    }
}

/// One prepared delivery: its deployment, delivery id, signature and body.
struct Item {
    deployment: u64,
    delivery: String,
    signature: String,
    body: Vec<u8>,
}

fn template() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/github/webhooks/deployment_status/created.success.octokit-webhooks.json"
        ))
        .expect("fixture"),
    )
    .expect("fixture json")
}

/// A `success` delivery for `deployment` (GitHub's JSON of it).
fn item(template: &Value, deployment: Value, n: u64, tag: &str) -> Item {
    let mut body = template.clone();
    let id = deployment["id"].as_u64().expect("deployment id");
    body["deployment"] = deployment;
    body["deployment_status"]["id"] = (1_000_000_000 + n).into();
    body["repository"]["full_name"] = "acme/api".into();
    let bytes = serde_json::to_vec(&body).expect("body");
    Item {
        deployment: id,
        delivery: format!("{tag}-{n}"),
        signature: sign(SECRET.as_bytes(), &bytes),
        body: bytes,
    }
}

/// Deliveries for deployments the bot does not track but must look at: their payload
/// claims deploybot made them (it did not), so each is stored, then found not to be
/// the bot's.
fn untracked(template: &Value, count: usize, tag: &str, first: u64) -> Vec<Item> {
    with_payload(
        template,
        count,
        tag,
        first,
        serde_json::json!({"deploybot": {}}),
    )
}

/// Deliveries for deployments made elsewhere, of an app without `notify_channel`:
/// nothing deploybot follows, answered without storing anything.
fn not_followed(template: &Value, count: usize, tag: &str, first: u64) -> Vec<Item> {
    with_payload(template, count, tag, first, serde_json::json!({}))
}

fn with_payload(
    template: &Value,
    count: usize,
    tag: &str,
    first: u64,
    payload: Value,
) -> Vec<Item> {
    (0..count as u64)
        .map(|i| {
            let mut d = template["deployment"].clone();
            d["id"] = (first + i).into();
            d["payload"] = payload.clone();
            item(template, d, first + i, tag)
        })
        .collect()
}

/// What sending a set of deliveries measured.
struct Sent {
    /// When each deployment's delivery was sent.
    at: HashMap<u64, Instant>,
    answers: Vec<Duration>,
    took: Duration,
}

async fn send(client: &reqwest::Client, url: &str, items: Vec<Item>, concurrency: usize) -> Sent {
    let queue = Arc::new(Mutex::new(items));
    let at = Arc::new(Mutex::new(HashMap::new()));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (client, url, queue, at, answers) = (
            client.clone(),
            url.to_string(),
            queue.clone(),
            at.clone(),
            answers.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let Some(item) = queue.lock().unwrap().pop() else {
                    break;
                };
                let sent = Instant::now();
                at.lock().unwrap().insert(item.deployment, sent);
                // A connection the bot closed (its per-client cap counts connections
                // still closing) is sent again, as GitHub's Redeliver would.
                let mut tries = 0;
                loop {
                    let status = client
                        .post(&url)
                        .header("x-github-event", "deployment_status")
                        .header("x-github-delivery", &item.delivery)
                        .header("x-hub-signature-256", &item.signature)
                        .header("content-type", "application/json")
                        .body(item.body.clone())
                        .send()
                        .await
                        .map(|r| r.status().as_u16());
                    match status {
                        Ok(202 | 204) => break,
                        Err(_) if tries < 5 => tries += 1,
                        other => panic!("delivery refused: {other:?}"),
                    }
                }
                answers.lock().unwrap().push(sent.elapsed());
            }
        }));
    }
    for s in senders {
        s.await.expect("sender");
    }
    let took = start.elapsed();
    let mut answers = Arc::try_unwrap(answers).unwrap().into_inner().unwrap();
    answers.sort();
    Sent {
        at: Arc::try_unwrap(at).unwrap().into_inner().unwrap(),
        answers,
        took,
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// HMAC-SHA256 verify + typed parse of one body, on this thread, for `for_how_long`.
fn floor(item: &Item, for_how_long: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < for_how_long {
        for _ in 0..100 {
            verify_signature(SECRET.as_bytes(), &item.body, Some(&item.signature)).expect("mac");
            let e = Event::parse("deployment_status", &item.body).expect("parse");
            std::hint::black_box(e);
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `count` deployments created through the bot, and a `success` delivery for each.
async fn prepare(
    bot: &mut Bot,
    sb: &Sandbox,
    template: &Value,
    count: usize,
    tag: &str,
) -> Vec<Item> {
    // Deployment ids grow.
    let before = sb
        .deployments("acme/api")
        .iter()
        .filter_map(|d| d["id"].as_u64())
        .max()
        .unwrap_or(0);
    bot.create(count).await;
    // The shell's lines are counted as they come; the sandbox has the last word.
    let deadline = Instant::now() + Duration::from_secs(600);
    let new = || {
        sb.deployments("acme/api")
            .iter()
            .filter(|d| d["id"].as_u64().unwrap_or(0) > before)
            .count()
    };
    while new() < count {
        assert!(Instant::now() < deadline, "deployments not created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the edit interval of the "created" edits, so each final edit is due at once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let items: Vec<Item> = sb
        .deployments("acme/api")
        .into_iter()
        .filter(|d| d["id"].as_u64().unwrap_or(0) > before)
        .enumerate()
        .map(|(i, d)| item(template, d, i as u64, tag))
        .collect();
    assert_eq!(items.len(), count);
    items
}

/// Waits until every deployment in `ids` showed its final state; returns, per id, when
/// it was first shown and how many times.
async fn shown(finals: &Finals, ids: &[u64]) -> HashMap<u64, (Instant, usize)> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        {
            let f = finals.lock().unwrap();
            if ids.iter().all(|id| f.contains_key(id)) {
                return ids.iter().map(|id| (*id, f[id])).collect();
            }
        }
        assert!(Instant::now() < deadline, "not every delivery reached chat");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Tracked deliveries from `concurrency` senders: throughput until the last is shown,
/// latency send → chat (p50, p99), final states shown more than once.
async fn tracked(
    client: &reqwest::Client,
    bot: &Bot,
    items: Vec<Item>,
    concurrency: usize,
) -> (f64, Duration, Duration, usize) {
    let ids: Vec<u64> = items.iter().map(|i| i.deployment).collect();
    let start = Instant::now();
    let sent = send(client, &bot.url(), items, concurrency).await;
    let f = shown(&bot.finals(), &ids).await;
    summary(&ids, &f, &sent.at, start)
}

/// Receipt → chat of `ids`, shown as `f` says, sent at `sent` from `start` on:
/// deliveries per second until the last was shown, p50 and p99 of send → chat, and
/// how many final states were shown more than once.
fn summary(
    ids: &[u64],
    f: &HashMap<u64, (Instant, usize)>,
    sent: &HashMap<u64, Instant>,
    start: Instant,
) -> (f64, Duration, Duration, usize) {
    let last = ids.iter().map(|id| f[id].0).max().expect("finals");
    let mut latencies: Vec<Duration> = ids
        .iter()
        .map(|id| f[id].0.saturating_duration_since(sent[id]))
        .collect();
    latencies.sort();
    let twice = ids.iter().filter(|id| f[id].1 > 1).count();
    (
        ids.len() as f64 / last.duration_since(start).as_secs_f64(),
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        twice,
    )
}

/// Tells perf (`PERF_CTL`: its control fifo) to `enable` or `disable` recording.
fn perf_ctl(command: &str) {
    if let Some(fifo) = std::env::var_os("PERF_CTL") {
        std::fs::write(fifo, format!("{command}\n")).expect("PERF_CTL: perf's control fifo");
    }
}

/// What wrk measured: requests/s, p50, p99, answers that were not 2xx.
struct Wrk {
    rate: f64,
    p50: String,
    p99: String,
    not_2xx: u64,
}

/// Ingest of untracked deliveries measured by wrk (a separate C process) at
/// `concurrency` connections for `seconds`; `None` when wrk is not installed.
fn wrk(url: &str, item: &Item, concurrency: usize, seconds: u32, tag: &str) -> Option<Wrk> {
    let dir = tempfile::tempdir().ok()?;
    let body = dir.path().join("body.json");
    std::fs::write(&body, &item.body).ok()?;
    let script = dir.path().join("deliveries.lua");
    std::fs::write(
        &script,
        format!(
            r#"local f = io.open("{body}", "rb")
local body = f:read("*a")
f:close()
local n = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
function request()
  n = n + 1
  return wrk.format("POST", nil, {{
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "deployment_status",
    ["X-GitHub-Delivery"] = "{tag}-" .. tid .. "-" .. n,
    ["X-Hub-Signature-256"] = "{signature}",
  }}, body)
end
"#,
            body = body.display(),
            signature = item.signature,
        ),
    )
    .ok()?;
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{concurrency}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if std::env::var_os("WRK_VERBOSE").is_some() {
        eprintln!("{text}");
    }
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_string()))
    };
    Some(Wrk {
        rate: field("Requests/sec:")?.parse().ok()?,
        p50: field("50%")?,
        p99: field("99%")?,
        not_2xx: field("Non-2xx or 3xx responses:")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    })
}

/// The bot's `/metrics` text, read with `client` (empty when it does not answer).
async fn scrape(client: &reqwest::Client, bot: &Bot) -> String {
    let url = bot.url().replace("/webhook", "/metrics");
    match client.get(&url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The value of the sample `name` (no labels) in a `/metrics` text; 0 when absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// The bot's commit counters in a [`scrape`]: commits, writes, seconds.
fn commits(text: &str) -> (f64, f64, f64) {
    (
        sample(text, "deploybot_store_commit_writes_count"),
        sample(text, "deploybot_store_commit_writes_sum"),
        sample(text, "deploybot_store_commit_seconds_sum"),
    )
}

/// Statuses the bot applied in the request that brought them, so far, in a [`scrape`].
const ON_ARRIVAL: &str = "deploybot_tracker_applied_on_arrival_total";

/// What the group commit did between two readings of [`commits`].
fn commit_line(before: (f64, f64, f64), after: (f64, f64, f64)) -> String {
    let n = (after.0 - before.0).max(1.0);
    format!(
        "{:.0} commits, {:.1} writes and {:.0} µs each on average",
        after.0 - before.0,
        (after.1 - before.1) / n,
        (after.2 - before.2) / n * 1e6
    )
}

/// Whether wrk is installed.
/// The bot's CPU time per delivery, from [`Bot::cpu_ns`] around a run: the figure the
/// rate follows when the cores are busy, and far less noisy than the rate.
fn cpu_line(cpu: Option<(u64, u64)>, n: usize) -> String {
    cpu.map(|(all, writer)| {
        format!(
            "; bot CPU {:.0} µs per delivery ({:.0} µs of it the SQLite writer thread)",
            all as f64 / 1000.0 / n as f64,
            writer as f64 / 1000.0 / n as f64
        )
    })
    .unwrap_or_default()
}

fn which_wrk() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// CLOCK_MONOTONIC (what `Instant` reads on Linux, and wrk's Lua below) in ns, and the
/// `Instant` of the same moment: to compare this process's times with wrk's.
fn monotonic_now() -> (Instant, f64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (Instant::now(), ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64)
}

/// Receipt → chat for tracked deliveries sent by wrk (a separate C process, 2 threads,
/// `concurrency` connections): each thread sends its share of `items` once, noting
/// when it sent each (LuaJIT's FFI reads CLOCK_MONOTONIC), then only deliveries of
/// nothing followed until it is stopped. `None` when wrk is not installed.
fn wrk_tracked(
    url: &str,
    items: &[Item],
    concurrency: usize,
    finals: &Finals,
) -> Option<(f64, Duration, Duration, usize)> {
    let dir = tempfile::tempdir().ok()?;
    let addr = url.strip_prefix("http://")?.split('/').next()?.to_string();
    let raw = |item: &Item| {
        let mut r = format!(
            "POST /webhook HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-GitHub-Event: deployment_status\r\nX-GitHub-Delivery: {}\r\nX-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
            item.delivery,
            item.signature,
            item.body.len()
        )
        .into_bytes();
        r.extend_from_slice(&item.body);
        r
    };
    let threads = 2;
    for t in 0..threads {
        let mut file = Vec::new();
        for item in items.iter().skip(t).step_by(threads) {
            let r = raw(item);
            file.extend_from_slice(format!("{} {}\n", item.deployment, r.len()).as_bytes());
            file.extend_from_slice(&r);
        }
        std::fs::write(dir.path().join(format!("requests-{t}")), file).ok()?;
    }
    let filler = not_followed(&template(), 1, "wrk-filler", 70_000_000);
    std::fs::write(dir.path().join("filler"), raw(&filler[0])).ok()?;
    let script = dir.path().join("tracked.lua");
    std::fs::write(
        &script,
        format!(
            r#"local ffi = require("ffi")
ffi.cdef[[
typedef struct {{ long tv_sec; long tv_nsec; }} deploybot_timespec;
int clock_gettime(int clock, deploybot_timespec *tp);
]]
local ts = ffi.new("deploybot_timespec")
local function now_ns()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end
local dir = "{dir}"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local reqs, ids, sent, filler = {{}}, {{}}, {{}}, nil
local next, started = 0, false
function init(args)
  local f = io.open(dir .. "/requests-" .. tid, "rb")
  while true do
    local line = f:read("*l")
    if not line then break end
    local id, len = line:match("(%d+) (%d+)")
    ids[#ids + 1] = id
    reqs[#reqs + 1] = f:read(tonumber(len))
  end
  f:close()
  f = io.open(dir .. "/filler", "rb")
  filler = f:read("*a")
  f:close()
end
function request()
  -- wrk calls this once before the run, to check the request: that one is the filler.
  if not started then
    started = true
    return filler
  end
  next = next + 1
  if next <= #reqs then
    sent[next] = now_ns()
    return reqs[next]
  end
  return filler
end
local complained, written = false, false
function response(status, headers, body)
  if status ~= 202 and status ~= 204 and not complained then
    complained = true
    io.stderr:write("wrk: a delivery was answered ", status, ": ", body, "\n")
  end
  -- Once every delivery of this thread has been sent, not at the #reqs-th answer:
  -- answers count fillers too (wrk may send the one it checked with).
  if not written and next >= #reqs then
    written = true
    local out = io.open(dir .. "/sent-" .. tid .. ".tmp", "w")
    for k = 1, #reqs do
      out:write(ids[k], " ", string.format("%.0f", sent[k] or -1), "\n")
    end
    out:close()
    os.rename(dir .. "/sent-" .. tid .. ".tmp", dir .. "/sent-" .. tid)
  end
end
"#,
            dir = dir.path().display(),
        ),
    )
    .ok()?;
    let mut child = Command::new("wrk")
        .args(["-t2", &format!("-c{concurrency}"), "-d600s", "-s"])
        .arg(&script)
        .arg(url)
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let ids: Vec<u64> = items.iter().map(|i| i.deployment).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let sent_files = (0..threads).map(|t| dir.path().join(format!("sent-{t}")));
    let (f, sent) = loop {
        let done: Option<Vec<String>> = sent_files
            .clone()
            .map(|p| std::fs::read_to_string(p).ok())
            .collect();
        {
            let f = finals.lock().unwrap();
            if let Some(done) = done.filter(|_| ids.iter().all(|id| f.contains_key(id))) {
                break (f.clone(), done);
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!(
                "not every wrk delivery reached chat: {} of {} shown",
                ids.iter()
                    .filter(|id| finals.lock().unwrap().contains_key(id))
                    .count(),
                ids.len()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    // wrk's clock readings as `Instant`s (same clock, read here once).
    let (base, base_ns) = monotonic_now();
    let sent: HashMap<u64, Instant> = sent
        .iter()
        .flat_map(|text| text.lines())
        .filter_map(|l| {
            let (id, ns) = l.split_once(' ')?;
            // -1: not sent (see the script); such a delivery has no latency, and must
            // not move the first send an hour back.
            let ns = ns.parse::<f64>().ok().filter(|ns| *ns >= 0.0)?;
            let before = Duration::from_nanos((base_ns - ns) as u64);
            Some((id.parse().ok()?, base.checked_sub(before)?))
        })
        .collect();
    assert_eq!(
        sent.len(),
        ids.len(),
        "wrk recorded no send time for some deliveries: no figure rather than a wrong one"
    );
    let first = sent.values().min().copied()?;
    Some(summary(&ids, &f, &sent, first))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let external = args.iter().any(|a| a == "--external");
    let chat_only = args.iter().any(|a| a == "--chat-only");
    let scale = if args.iter().any(|a| a == "--quick") {
        10
    } else {
        1
    };

    let sb = Sandbox::start().await.expect("sandbox");
    sb.create_repo("acme/api", "main");
    // Thousands of deployments in a minute is not what this measures: lift the
    // sandbox's hourly API budget (5000, like GitHub's).
    sb.set_rate_limit(&sb.token(), 100_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bot = Bot::start(&sb, dir.path(), external).await;
    let template = template();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "deploybot webhook benchmark: bot {}, {cores} cores, body {} bytes",
        if external {
            "in its own process (target/release/deploybot shell)"
        } else {
            "in this process"
        },
        serde_json::to_vec(&template).unwrap().len()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    let rss_idle = bot.rss_kib();

    let probe = untracked(&template, 1, "floor", 1);
    let floor = floor(&probe[0], Duration::from_secs(2));
    println!("floor: HMAC-SHA256 verify + parse, one core: {floor:.0}/s");
    let of_floor = |rate: f64| format!("{:.0} % of the floor", 100.0 * rate / floor);

    // wrk first, before this process's own connections count against the bot's
    // per-client connection cap.
    if external && !chat_only {
        let kinds = [
            (
                "untracked (stored)",
                untracked(&template, 1, "wrk", 40_000_000),
            ),
            (
                "not followed (not stored)",
                not_followed(&template, 1, "wrkn", 40_000_001),
            ),
        ];
        for (k, (kind, probe)) in kinds.iter().enumerate() {
            for c in [16usize, 64] {
                match wrk(&bot.url(), &probe[0], c, 10, &format!("wrk{k}-{c}")) {
                    Some(w) => println!(
                        "ingest, {kind}, wrk c={c} (2 threads, 10 s): {:.0}/s ({}), p50 {} p99 {}, non-2xx answers: {}",
                        w.rate,
                        of_floor(w.rate),
                        w.p50,
                        w.p99,
                        w.not_2xx
                    ),
                    None => println!(
                        "ingest with wrk: skipped (wrk is not installed: apt-get install wrk)"
                    ),
                }
            }
        }
    }

    // The issue measured the peers with wrk: the same for tracked deliveries (wrk
    // costs the machine far less per request than reqwest does). Before this
    // process's own connections: those over the bot's per-client cap are closed, and
    // a request wrk sent on one is lost.
    if external && which_wrk() {
        for c in [16usize, 64] {
            let n = 1_000 / scale;
            let items = prepare(&mut bot, &sb, &template, n, &format!("wrktracked{c}")).await;
            let (url, finals) = (bot.url(), bot.finals());
            // A connection of its own, not kept: wrk may need all of the per-client cap.
            let own = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .expect("client");
            let before = commits(&scrape(&own, &bot).await);
            let cpu = bot.cpu_ns();
            perf_ctl("enable");
            // It waits on threads, not tasks: the sandbox goes on in this runtime.
            let measured = tokio::task::block_in_place(|| wrk_tracked(&url, &items, c, &finals));
            perf_ctl("disable");
            let cpu = cpu.zip(bot.cpu_ns()).map(|(b, a)| (a.0 - b.0, a.1 - b.1));
            if let Some((rate, p50, p99, twice)) = measured {
                println!(
                    "receipt → chat, tracked, wrk c={c} (2 threads): {n} deliveries, {rate:.0}/s ({}), p50 {} p99 {}, final states shown twice: {twice}; {}{}",
                    of_floor(rate),
                    ms(p50),
                    ms(p99),
                    commit_line(before, commits(&scrape(&own, &bot).await)),
                    cpu_line(cpu, n)
                );
            }
        }
    }

    // The delivery table fills from 0: ingest rate per 2,000 deliveries (full size
    // even with --quick: the effect of the table's size is the point).
    let chunk = 2_000;
    let mut rates = Vec::new();
    if !chat_only {
        // Not measured: a warm-up (connections, caches, the allocator) with deliveries
        // that store nothing, so the table still starts empty and the steps below
        // differ by its size alone, not by which one ran first.
        send(
            &client,
            &bot.url(),
            not_followed(&template, chunk, "warm", 9_000_000),
            16,
        )
        .await;
    }
    for i in 0..if chat_only { 0 } else { 5 } {
        let items = untracked(&template, chunk, "fill", 10_000_000 + (i * chunk) as u64);
        let sent = send(&client, &bot.url(), items, 16).await;
        rates.push(chunk as f64 / sent.took.as_secs_f64());
    }
    let rss_5000 = bot.rss_kib();
    // How far the steps stray from the first (the issue asks for ±10 %).
    let spread = rates.first().map_or(String::new(), |first| {
        let off = |r: f64| (r / first - 1.0) * 100.0;
        let (low, high) = rates.iter().fold((0f64, 0f64), |(lo, hi), r| {
            (lo.min(off(*r)), hi.max(off(*r)))
        });
        format!(" (from {low:+.1} % to {high:+.1} % of the first step)")
    });
    println!(
        "ingest as the delivery table fills 0 → {}: {}{spread}",
        5 * chunk,
        rates
            .iter()
            .map(|r| format!("{r:.0}/s"))
            .collect::<Vec<_>>()
            .join(" → ")
    );

    for (c, first) in [(16usize, 20_000_000u64), (64, 30_000_000)] {
        if chat_only {
            break;
        }
        let n = 20_000 / scale;
        let sent = send(
            &client,
            &bot.url(),
            untracked(&template, n, "ingest", first),
            c,
        )
        .await;
        let rate = n as f64 / sent.took.as_secs_f64();
        println!(
            "ingest, untracked (stored), c={c}: {n} deliveries, {rate:.0}/s ({}), answer p50 {} p99 {}",
            of_floor(rate),
            ms(pct(&sent.answers, 0.5)),
            ms(pct(&sent.answers, 0.99))
        );
        let sent = send(
            &client,
            &bot.url(),
            not_followed(&template, n, "ignored", first + 5_000_000),
            c,
        )
        .await;
        let rate = n as f64 / sent.took.as_secs_f64();
        println!(
            "ingest, not followed (not stored), c={c}: {n} deliveries, {rate:.0}/s ({}), answer p50 {} p99 {}",
            of_floor(rate),
            ms(pct(&sent.answers, 0.5)),
            ms(pct(&sent.answers, 0.99))
        );
    }

    for c in [16usize, 64] {
        let n = 1_000 / scale;
        let items = prepare(&mut bot, &sb, &template, n, &format!("tracked{c}")).await;
        // Read on the senders' kept connections: the bot closes any over its
        // per-client cap.
        let text = scrape(&client, &bot).await;
        let (before, committed) = (sample(&text, ON_ARRIVAL), commits(&text));
        let cpu = bot.cpu_ns();
        perf_ctl("enable");
        let (rate, p50, p99, twice) = tracked(&client, &bot, items, c).await;
        perf_ctl("disable");
        let cpu = cpu.zip(bot.cpu_ns()).map(|(b, a)| (a.0 - b.0, a.1 - b.1));
        let text = scrape(&client, &bot).await;
        let (fast, after) = (sample(&text, ON_ARRIVAL) - before, commits(&text));
        println!(
            "receipt → chat, tracked, c={c}: {n} deliveries, {rate:.0}/s ({}), p50 {} p99 {}, final states shown twice: {twice}; {fast:.0} applied on arrival; {:.1} writes per delivery ({}){}",
            of_floor(rate),
            ms(p50),
            ms(p99),
            (after.1 - committed.1) / n as f64,
            commit_line(committed, after),
            cpu_line(cpu, n)
        );
    }

    let n = 500 / scale;
    let items = prepare(&mut bot, &sb, &template, n, "one").await;
    let finals = bot.finals();
    let mut one = Vec::new();
    let mut answered = Vec::new();
    for item in items {
        let id = item.deployment;
        let sent = send(&client, &bot.url(), vec![item], 1).await;
        let f = shown(&finals, &[id]).await;
        one.push(f[&id].0.saturating_duration_since(sent.at[&id]));
        answered.extend(sent.answers);
    }
    one.sort();
    answered.sort();
    // The same, for deliveries answered without storing anything: what HTTP, HMAC and
    // the parse cost alone.
    let mut bare = Vec::new();
    for item in not_followed(&template, n, "bare", 60_000_000) {
        bare.extend(send(&client, &bot.url(), vec![item], 1).await.answers);
    }
    bare.sort();
    println!(
        "one delivery at a time, not followed (not stored): answered p50 {} p99 {}",
        ms(pct(&bare, 0.5)),
        ms(pct(&bare, 0.99))
    );
    println!(
        "one delivery at a time, receipt → chat: {n} deliveries, p50 {} p99 {} (answered: p50 {} p99 {})",
        ms(pct(&one, 0.5)),
        ms(pct(&one, 0.99)),
        ms(pct(&answered, 0.5)),
        ms(pct(&answered, 0.99))
    );
    println!(
        "RSS: idle {} MiB, after {} deliveries {} MiB, at the end {} MiB{}",
        rss_idle / 1024,
        5 * chunk,
        rss_5000 / 1024,
        bot.rss_kib() / 1024,
        if external {
            " (the bot process alone)"
        } else {
            " (this process: bot, sandbox and senders)"
        }
    );
    bot.stop().await;
    sb.shutdown();
}
