//! Shared test support: a sandbox GitHub, a bot wired to it (real SQLite file, real
//! webhook server when configured), the shell adapter driven line by line, and a chat
//! recorder. Every integration test builds on this; nothing is copied.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deploybot::bot::{Bot, Parts};
use deploybot::chat::shell::{self, Identity, SharedBuffer, ShellChat};
use deploybot::chat::{Chat, ChatError, Conversation, Message, MessageId};
use deploybot::clock::{Clock, ManualClock, SystemClock};
use deploybot::config::Config;
use deploybot::github::client::HttpGitHub;
use deploybot::github::token::StaticToken;
use deploybot::service::Service;
use deploybot::store::sqlite::SqliteStore;
use sandbox::{RecordedRequest, Sandbox};

/// A config for tests; `${SANDBOX_URL}` / `${SANDBOX_TOKEN}` point at the sandbox.
pub const CONFIG: &str = r#"
[github]
api_url = "${SANDBOX_URL}"
token = "${SANDBOX_TOKEN}"

[aliases]
prod = "production"

[apps.api]
repository = "acme/api"
default_environment = "staging"
channels = ["deploys"]
notify_channel = "ops"
payload = { service = "api", region = "eu" }

[apps.api.environments.staging]
required_contexts = ["ci/build"]

[apps.api.environments.qa]
required_contexts = []
auto_merge = true
transient = true

[apps.api.environments.production]
production = true
# These tests deploy to production back to back without the deployer's statuses
# reaching the bot; tests/queue.rs drops this line to test the default (1).
concurrency = 0
deploy = ["release", "oncall"]
force = ["oncall"]
payload = { region = "us", replicas = 6 }

[apps.web]
repository = "acme/web"

[apps.web.environments.staging]
required_contexts = []

[apps.ghost]
repository = "acme/ghost"
default_environment = "staging"

[apps.ghost.environments.staging]
"#;

/// The webhook secret tests sign with.
pub const SECRET: &str = "test-webhook-secret-0123456789";

/// [`CONFIG`] with a webhook server on a free port and a short edit interval.
pub fn with_webhook(edit_interval: &str) -> String {
    format!(
        "{CONFIG}\n[webhook]\nlisten = \"127.0.0.1:0\"\npath = \"/webhook\"\nsecret = \"{SECRET}\"\n\n[defaults]\nedit_interval = \"{edit_interval}\"\n"
    )
}

/// A bot with [`with_webhook`]'s config: a webhook server on a free port.
pub async fn webhook_bot(edit_interval: &str) -> TestBot {
    TestBot::with(Options {
        config: with_webhook(edit_interval),
        ..Default::default()
    })
    .await
}

/// The repositories most tests use.
///
/// acme/api (default branch `main`): `topic` green, `broken` with ci/build failing and
/// security pending, `stale` behind main, `conflicted` behind main and conflicting.
/// acme/web (default branch `trunk`). acme/ghost does not exist on GitHub.
pub fn seed(sb: &Sandbox) {
    let api = "acme/api";
    sb.create_repo(api, "main");
    sb.set_status(api, "main", "ci/build", "success");
    sb.create_branch(api, "topic", "main");
    sb.commit(api, "topic", "Faster login");
    sb.set_status(api, "topic", "ci/build", "success");
    sb.set_status(api, "topic", "security", "success");
    sb.create_branch(api, "broken", "main");
    sb.commit(api, "broken", "Oops");
    sb.set_status(api, "broken", "ci/build", "failure");
    sb.set_status(api, "broken", "security", "pending");
    sb.create_branch(api, "stale", "main");
    sb.create_branch(api, "conflicted", "main");
    sb.commit(api, "conflicted", "Edit the same line");
    sb.commit(api, "main", "Move on");
    sb.set_status(api, "main", "ci/build", "success");
    sb.set_merge_conflict(api, "conflicted", true);
    sb.create_repo("acme/web", "trunk");
    sb.commit("acme/web", "trunk", "Landing page");
}

/// What the bot did in chat, in order.
#[derive(Debug, Clone)]
pub enum Said {
    Sent {
        id: String,
        channel: String,
        message: Message,
    },
    Edited {
        id: String,
        channel: String,
        message: Message,
    },
}

impl Said {
    pub fn message(&self) -> &Message {
        match self {
            Said::Sent { message, .. } | Said::Edited { message, .. } => message,
        }
    }
}

/// Records every send and edit, then lets the shell print them.
pub struct RecordingChat {
    pub said: Mutex<Vec<Said>>,
    shell: ShellChat,
}

impl RecordingChat {
    /// A chat that records what is said and prints it, as the shell would, into `out`.
    pub fn new(out: SharedBuffer) -> RecordingChat {
        RecordingChat {
            said: Mutex::new(Vec::new()),
            shell: ShellChat::new(Box::new(out)),
        }
    }
}

#[async_trait]
impl Chat for RecordingChat {
    async fn send(&self, to: &Conversation, message: &Message) -> Result<MessageId, ChatError> {
        let id = self.shell.send(to, message).await?;
        self.said.lock().unwrap().push(Said::Sent {
            id: id.0.clone(),
            channel: to.channel.clone(),
            message: message.clone(),
        });
        Ok(id)
    }

    async fn edit(
        &self,
        to: &Conversation,
        id: &MessageId,
        message: &Message,
    ) -> Result<(), ChatError> {
        self.shell.edit(to, id, message).await?;
        self.said.lock().unwrap().push(Said::Edited {
            id: id.0.clone(),
            channel: to.channel.clone(),
            message: message.clone(),
        });
        Ok(())
    }
}

pub struct Options {
    pub config: String,
    pub token: Option<String>,
    pub timeout: Duration,
    pub clock: Option<Arc<ManualClock>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            config: CONFIG.to_string(),
            token: None,
            timeout: Duration::from_secs(10),
            clock: None,
        }
    }
}

/// [`CONFIG`] with `extra` (more apps), a `[discord]` table that talks to a fake
/// Discord at `proxy_url` in server `guild`, the `[storage]` table's lines `storage`,
/// and a webhook on `listen`.
pub fn discord_config(
    proxy_url: &str,
    guild: u64,
    storage: &str,
    listen: &str,
    extra: &str,
) -> String {
    format!(
        r#"{CONFIG}
{extra}
[discord]
token = "fake-token"
prefix = "!"
guild_ids = ["{guild}"]
proxy_url = "{proxy_url}"

[storage]
{storage}

[webhook]
listen = "{listen}"
path = "/webhook"
secret = "{SECRET}"

[defaults]
edit_interval = "10ms"
status_timeout = "1s"
"#
    )
}

pub fn parse_config(text: &str, sb: &Sandbox, token: &str) -> Config {
    let url = sb.url();
    let token = token.to_string();
    Config::parse(text, Path::new("test.toml"), &|name| match name {
        "SANDBOX_URL" => Some(url.clone()),
        "SANDBOX_TOKEN" => Some(token.clone()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("test config: {e}"))
}

pub struct TestBot {
    pub sandbox: Sandbox,
    pub service: Option<Service>,
    pub chat: Arc<RecordingChat>,
    pub out: SharedBuffer,
    pub db: PathBuf,
    pub clock: Option<Arc<ManualClock>>,
    options: Options,
    _dir: tempfile::TempDir,
    printed: Mutex<usize>,
    booted: bool,
}

impl TestBot {
    pub async fn start() -> TestBot {
        Self::with(Options::default()).await
    }

    pub async fn with(options: Options) -> TestBot {
        let sandbox = Sandbox::start().await.expect("sandbox");
        seed(&sandbox);
        let dir = tempfile::tempdir().unwrap();
        let out = SharedBuffer::default();
        let chat = Arc::new(RecordingChat::new(out.clone()));
        let mut t = TestBot {
            sandbox,
            service: None,
            chat,
            out,
            db: dir.path().join("deploybot.db"),
            clock: options.clock.clone(),
            options,
            _dir: dir,
            printed: Mutex::new(0),
            booted: false,
        };
        t.boot().await;
        t
    }

    /// Starts (or restarts) the bot on the same database file, chat and sandbox.
    pub async fn boot(&mut self) {
        let token = self
            .options
            .token
            .clone()
            .unwrap_or_else(|| self.sandbox.token());
        let config = Arc::new(parse_config(&self.options.config, &self.sandbox, &token));
        let github = HttpGitHub::with_timeout(
            &config.github.api_url,
            Arc::new(StaticToken::new(token.into())),
            self.options.timeout,
        )
        .expect("client");
        let store = SqliteStore::open(&self.db_url()).await.expect("store");
        let clock: Arc<dyn Clock> = match &self.clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let service = Service::start(Parts {
            config,
            github: Arc::new(github),
            chat: self.chat.clone(),
            store: Arc::new(store),
            clock,
            adapter: shell::ADAPTER.to_string(),
        })
        .await
        .expect("service");
        // The start-up credentials check (`GET /rate_limit`) is not the test's doing:
        // let it finish, and on the first start forget it, so that tests count only
        // the requests their commands make.
        let health = &service.bot.metrics().health;
        wait_for(Duration::from_secs(10), "the credentials check", || {
            health.github_checked().then_some(())
        })
        .await;
        if !self.booted {
            self.sandbox.clear_requests();
            self.booted = true;
        }
        if let Some(addr) = service.webhook_addr() {
            self.sandbox
                .add_webhook(&format!("http://{addr}/webhook"), SECRET);
        }
        self.service = Some(service);
    }

    /// Stops the bot abruptly: no settling, no flushing; pending edits are lost.
    pub async fn kill(&mut self) {
        if let Some(service) = self.service.take() {
            service.kill().await;
        }
    }

    pub fn bot(&self) -> &Bot {
        &self.service.as_ref().expect("bot running").bot
    }

    pub fn webhook_url(&self) -> String {
        let addr = self
            .service
            .as_ref()
            .and_then(|s| s.webhook_addr())
            .expect("webhook configured");
        format!("http://{addr}/webhook")
    }

    /// Types `line` in the shell as `user` with `roles` in #channel; returns what the
    /// bot printed in answer.
    pub async fn say_as(&self, user: &str, roles: &[&str], channel: &str, line: &str) -> String {
        let identity = Identity {
            user: user.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            channel: channel.to_string(),
        };
        let input = format!("{line}\n");
        shell::run(self.bot(), &identity, input.as_bytes(), "!").await;
        self.take_output()
    }

    /// `alice`, a developer with the release role, in #deploys.
    pub async fn say(&self, line: &str) -> String {
        self.say_as("alice", &["dev", "release"], "deploys", line)
            .await
    }

    /// Everything printed since the last call.
    pub fn take_output(&self) -> String {
        let all = self.out.text();
        let mut seen = self.printed.lock().unwrap();
        let new = all[*seen..].to_string();
        *seen = all.len();
        new
    }

    pub fn said(&self) -> Vec<Said> {
        self.chat.said.lock().unwrap().clone()
    }

    /// The latest content of the message that tracks deployment `id` (from the
    /// deployment's payload), and how many times it was edited.
    pub fn message_of(&self, id: u64) -> Option<(Message, usize)> {
        let d = self
            .sandbox
            .deployments("acme/api")
            .into_iter()
            .chain(self.sandbox.deployments("acme/web"))
            .find(|d| d["id"] == id)?;
        let mid = d["payload"]["deploybot"]["chat"]["message"]
            .as_str()?
            .to_string();
        let edits: Vec<Message> = self
            .said()
            .into_iter()
            .filter_map(|s| match s {
                Said::Edited { id, message, .. } if id == mid => Some(message),
                _ => None,
            })
            .collect();
        let n = edits.len();
        edits.last().cloned().map(|m| (m, n))
    }

    /// Requests that created deployments, in order.
    pub fn deployment_posts(&self) -> Vec<RecordedRequest> {
        self.sandbox
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/deployments"))
            .collect()
    }

    /// The bot's database, as `[storage] url` names it.
    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.db.display())
    }

    /// A connection pool on the bot's database file, as another process would open.
    pub async fn other_pool(&self) -> sqlx::SqlitePool {
        sqlx::SqlitePool::connect(&self.db_url())
            .await
            .expect("another connection to the bot's database")
    }

    /// Takes the database's write lock (`BEGIN EXCLUSIVE`), as another process would,
    /// and keeps it until [`WriteLock::release`]. Reads still go on (WAL).
    pub async fn hold_write_lock(&self) -> WriteLock {
        let pool = self.other_pool().await;
        let mut holder = pool.acquire().await.expect("a connection");
        sqlx::query("BEGIN EXCLUSIVE")
            .execute(&mut *holder)
            .await
            .expect("the write lock");
        WriteLock { holder, pool }
    }

    /// The id of the newest deployment of acme/api.
    pub fn last_deployment(&self) -> u64 {
        self.sandbox.deployments("acme/api")[0]["id"]
            .as_u64()
            .unwrap()
    }
}

/// The database's write lock, held by another process ([`TestBot::hold_write_lock`]).
pub struct WriteLock {
    holder: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    pool: sqlx::SqlitePool,
}

impl WriteLock {
    /// Gives the lock back (its transaction rolled back: nothing was written).
    pub async fn release(mut self) {
        sqlx::query("ROLLBACK")
            .execute(&mut *self.holder)
            .await
            .expect("ROLLBACK");
        drop(self.holder);
        self.pool.close().await;
    }
}

/// Polls `f` until it returns `Some`, for at most `bound`; panics with `what` after.
pub async fn wait_for<T>(bound: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {bound:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
