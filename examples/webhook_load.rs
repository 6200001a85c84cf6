//! Load script (not a test): how fast do signed `deployment_status` deliveries become
//! chat updates?
//!
//! ```sh
//! cargo run --release --example webhook_load -- 2000 64
//! ```
//! Arguments: deliveries (= tracked deployments, one final status each; default 1000)
//! and concurrent senders (default 32). It starts the sandbox (GitHub), a bot with a
//! real SQLite file and its webhook server, creates the deployments through the bot,
//! then POSTs one signed `success` delivery per deployment and measures, per delivery,
//! the time from sending it to the chat edit that shows it. Prints throughput and
//! p50/p90/p99.

use std::collections::HashMap;
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
use deploybot::github::events::sign;
use deploybot::github::token::StaticToken;
use deploybot::model::DeploymentState;
use deploybot::service::Service;
use deploybot::store::sqlite::SqliteStore;
use sandbox::Sandbox;

const SECRET: &str = "load-test-webhook-secret-0123456789";

/// Records when each message first showed a final state.
#[derive(Default)]
struct TimingChat {
    next: Mutex<u64>,
    finished: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl Chat for TimingChat {
    async fn send(&self, _to: &Conversation, _m: &Message) -> Result<MessageId, ChatError> {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        Ok(MessageId(format!("m{n}")))
    }

    async fn edit(&self, _to: &Conversation, id: &MessageId, m: &Message) -> Result<(), ChatError> {
        if std::env::var_os("LOAD_DEBUG").is_some()
            && matches!(m.tone, Tone::Failed | Tone::Refused)
        {
            eprintln!("{}", m.to_text());
        }
        if m.tone == Tone::Progress(DeploymentState::Success) {
            self.finished
                .lock()
                .unwrap()
                .entry(id.0.clone())
                .or_insert_with(Instant::now);
        }
        Ok(())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);

    let sb = Sandbox::start().await.expect("sandbox");
    sb.create_repo("acme/api", "main");
    // Creating thousands of deployments in a minute is not what this measures: lift
    // the sandbox's hourly API budget (5000, like GitHub's).
    sb.set_rate_limit(&sb.token(), 10_000_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
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
[apps.api]
repository = "acme/api"
[apps.api.environments.staging]
required_contexts = []
"#,
        url = sb.url(),
        token = sb.token(),
        db = dir.path().join("load.db").display()
    );
    let config = Arc::new(Config::parse(&text, "load.toml".as_ref(), &|_| None).expect("config"));
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
    let url = format!(
        "http://{}/webhook",
        service.webhook_addr().expect("webhook")
    );

    eprintln!("creating {n} deployments through the bot…");
    let conversation = Conversation {
        adapter: "load".into(),
        channel: "deploys".into(),
        channel_name: Some("deploys".into()),
        thread: None,
        interaction: None,
    };
    for _ in 0..n {
        service
            .bot
            .handle(Request {
                conversation: conversation.clone(),
                message_id: None,
                user: ChatUser {
                    id: "u1".into(),
                    name: "load".into(),
                    roles: vec![],
                },
                text: "deploy api/main to staging".into(),
                addressing: Addressing::Direct,
            })
            .await;
    }
    // Past the edit interval of the "created" edits, so each delivery's edit is due at once.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // One signed `success` delivery per deployment, shaped like GitHub's example.
    let template: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/github/webhooks/deployment_status/created.success.octokit-webhooks.json"
        ))
        .expect("fixture"),
    )
    .expect("fixture json");
    let mut work = Vec::new();
    for (i, d) in sb.deployments("acme/api").into_iter().enumerate() {
        let message = d["payload"]["deploybot"]["chat"]["message"]
            .as_str()
            .expect("routed deployment")
            .to_string();
        let mut body = template.clone();
        body["deployment"] = d;
        body["deployment_status"]["id"] = (1_000_000 + i as u64).into();
        body["repository"]["full_name"] = "acme/api".into();
        let bytes = serde_json::to_vec(&body).expect("body");
        work.push((
            message,
            format!("load-{i}"),
            sign(SECRET.as_bytes(), &bytes),
            bytes,
        ));
    }

    eprintln!("sending {n} signed deliveries, {concurrency} at a time…");
    let client = reqwest::Client::new();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let queue = Arc::new(Mutex::new(work));
    let start = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (client, url, queue, sent) = (client.clone(), url.clone(), queue.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some((message, delivery, signature, body)) = queue.lock().unwrap().pop() else {
                    break;
                };
                sent.lock().unwrap().insert(message, Instant::now());
                let status = client
                    .post(&url)
                    .header("x-github-event", "deployment_status")
                    .header("x-github-delivery", delivery)
                    .header("x-hub-signature-256", signature)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                assert_eq!(status.ok(), Some(202), "delivery refused");
            }
        }));
    }
    for s in senders {
        s.await.expect("sender");
    }
    let accepted = start.elapsed();

    let deadline = Instant::now() + Duration::from_secs(120);
    while chat.finished.lock().unwrap().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let total = start.elapsed();
    let finished = chat.finished.lock().unwrap().clone();
    let sent = sent.lock().unwrap().clone();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(m, at)| finished.get(m).map(|done| done.duration_since(*at)))
        .collect();
    latencies.sort();
    assert_eq!(
        latencies.len(),
        n,
        "every delivery must reach chat ({} finished of {} sent)",
        finished.len(),
        sent.len()
    );

    println!("deliveries:            {n} ({concurrency} concurrent senders)");
    println!("all accepted (2xx) in: {accepted:.2?}");
    println!("all in chat in:        {total:.2?}");
    println!(
        "throughput:            {:.0} deliveries/s (receipt to chat update)",
        n as f64 / total.as_secs_f64()
    );
    println!(
        "latency receipt→chat:  p50 {:.2?}  p90 {:.2?}  p99 {:.2?}  max {:.2?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    service.stop(Duration::from_secs(1)).await;
    sb.shutdown();
}
