//! The Discord adapter: `deploybot run`.
//!
//! A serenity client (gateway + REST) beside the [`Service`] (store, GitHub client,
//! tracker, webhook server). Gateway events become [`crate::chat::Request`]s for the
//! one core entry, [`crate::bot::Bot::handle`] (`handler.rs`); what the core says is
//! posted and edited as embeds with buttons (`chat.rs`, `render.rs`). Slash commands
//! are generated from the `commands` crate's help pages and turned into their text
//! twins (`slash.rs`); buttons carry the command they stand for (`buttons.rs`).
//!
//! serenity stays inside this module: the core never sees a Discord type.

mod buttons;
mod chat;
pub mod doctor;
mod handler;
mod people;
mod render;
mod slash;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use secrecy::ExposeSecret;
use serenity::all::{Client, ClientBuilder};
use serenity::all::{GatewayIntents, HttpBuilder, ShardManager};
use serenity::gateway::{ConnectionStage, GatewayError};

pub use chat::DiscordChat;

use crate::bot::Bot;
use crate::clock::Clock;
use crate::config::Config;
use crate::lease::Lease;
use crate::service::Service;

/// The adapter's name in deployment payloads: status events come back here by it.
pub const ADAPTER: &str = "discord";

/// How long shutdown waits for commands being handled, and for the gateway to close.
const DRAIN: Duration = Duration::from_secs(20);
const CLOSE: Duration = Duration::from_secs(10);
/// How long the first REST call to Discord may take at start.
const PROBE: Duration = Duration::from_secs(10);
/// How often, while the gateway is not connected, deploybot says so at error level.
const NOT_CONNECTED: Duration = Duration::from_secs(30);

/// The gateway's state, from the shard runners: ready when a shard is connected.
/// `None` when the runners are busy (the last known state stands).
fn gateway_status(manager: &ShardManager) -> Option<crate::metrics::Status> {
    let runners = manager.runners.try_lock().ok()?;
    if runners.is_empty() {
        return Some(crate::metrics::Status::not_ready(
            "not connected to the Discord gateway",
        ));
    }
    if runners
        .values()
        .any(|r| r.stage == ConnectionStage::Connected)
    {
        return Some(crate::metrics::Status::ready());
    }
    let stages: Vec<String> = runners.values().map(|r| r.stage.to_string()).collect();
    Some(crate::metrics::Status::not_ready(format!(
        "Discord gateway connection lost ({}); reconnecting",
        stages.join(", ")
    )))
}

fn unreachable_discord(bot: &Bot, why: &str) {
    tracing::error!(
        why,
        "cannot reach Discord; check the network, a firewall or [discord] proxy_url. deploybot keeps trying; /readyz answers 503 until it connects"
    );
    bot.metrics()
        .health
        .set_chat(crate::metrics::Status::not_ready(format!(
            "cannot reach Discord: {why}"
        )));
}

/// What deploybot asks the gateway for. Message Content is privileged: it must be
/// switched on in the Developer Portal.
pub fn intents() -> GatewayIntents {
    GatewayIntents::GUILDS | GatewayIntents::GUILD_MESSAGES | GatewayIntents::MESSAGE_CONTENT
}

/// Discord's REST API base: `https://discord.com/api/v10`, or the same path on
/// `[discord] proxy_url` (which replaces the host, as serenity's proxy does).
pub(crate) fn rest_base(proxy_url: Option<&str>) -> String {
    let host = proxy_url.map_or("https://discord.com", |p| p.trim_end_matches('/'));
    format!("{host}/api/v10")
}

/// Why the bot could not run, said so that the reader knows what to change.
#[derive(Debug)]
pub enum RunError {
    /// No `[discord]` table.
    NotConfigured { config: String },
    /// Discord refused the token (gateway close 4004, or REST 401).
    Token { config: String },
    /// Discord refused the intents (gateway close 4014, or 4013).
    Intents,
    /// The service (GitHub client, store, webhook server) could not start.
    Service(String),
    /// Anything else from Discord.
    Discord(String),
}

const PORTAL: &str = "https://discord.com/developers/applications";

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NotConfigured { config } => write!(
                f,
                "{config}: `deploybot run` needs a [discord] table with the bot token (token = \"${{DISCORD_TOKEN}}\"); for a terminal chat use `deploybot shell`"
            ),
            RunError::Token { config } => write!(
                f,
                "Discord rejected the bot token: in the Developer Portal ({PORTAL} › your app › Bot) press Reset Token, and put the new token in [discord] token in {config} (or in the environment variable it names)"
            ),
            RunError::Intents => write!(
                f,
                "Discord refused the gateway intents deploybot needs: in the Developer Portal ({PORTAL} › your app › Bot › Privileged Gateway Intents) turn on Message Content Intent, save, and start deploybot again"
            ),
            RunError::Service(e) => f.write_str(e),
            RunError::Discord(e) => write!(
                f,
                "Discord: {e} (check the network, and [discord] proxy_url if you set one)"
            ),
        }
    }
}

impl std::error::Error for RunError {}

fn explain(e: serenity::Error, config: &str) -> RunError {
    match &e {
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => RunError::Token {
            config: config.to_string(),
        },
        serenity::Error::Gateway(
            GatewayError::DisallowedGatewayIntents | GatewayError::InvalidGatewayIntents,
        ) => RunError::Intents,
        serenity::Error::Http(h) if h.status_code().map(|s| s.as_u16()) == Some(401) => {
            RunError::Token {
                config: config.to_string(),
            }
        }
        _ => RunError::Discord(e.to_string()),
    }
}

/// A connected-to-be bot: the serenity client and the service, not yet running.
pub struct DiscordBot {
    /// The gateway client made at start (the first one `run` uses).
    client: Option<Client>,
    gateway: Gateway,
    chat: Arc<DiscordChat>,
    /// The shards of the gateway client running now, if any.
    current: Arc<Mutex<Option<Arc<ShardManager>>>>,
    service: Service,
    settle: Duration,
    config_path: String,
}

/// What it takes to make a gateway client: one per stint as the leader (serenity's
/// shard manager does not start again once shut down).
struct Gateway {
    token: String,
    proxy_url: Option<String>,
    prefix: String,
    guild_ids: Vec<u64>,
    shared: Arc<chat::Shared>,
    bot: Arc<OnceLock<Bot>>,
    inflight: Arc<handler::Inflight>,
}

impl Gateway {
    fn http(&self) -> serenity::http::Http {
        let mut http = HttpBuilder::new(&self.token);
        if let Some(proxy) = &self.proxy_url {
            // A proxy (twilight-http-proxy, or the tests' fake Discord) does the rate
            // limiting; serenity's own limiter would bypass the proxy.
            http = http
                .proxy(proxy.trim_end_matches('/'))
                .ratelimiter_disabled(true);
        }
        http.build()
    }

    async fn client(
        &self,
        lease: &Lease,
        chat_http: Arc<serenity::http::Http>,
        config: &str,
    ) -> Result<Client, RunError> {
        let handler = handler::Handler {
            bot: self.bot.clone(),
            shared: self.shared.clone(),
            prefix: self.prefix.clone(),
            guild_ids: self.guild_ids.clone(),
            inflight: self.inflight.clone(),
            registered: AtomicBool::new(false),
            lease: lease.clone(),
            chat_http,
        };
        ClientBuilder::new_with_http(self.http(), intents())
            .event_handler(handler)
            .await
            .map_err(|e| explain(e, config))
    }
}

impl DiscordBot {
    /// Builds the client and starts the service (store, tracker, webhook server).
    /// Nothing is sent to Discord until [`DiscordBot::run`].
    pub async fn new(config: Arc<Config>, clock: Arc<dyn Clock>) -> Result<DiscordBot, RunError> {
        let config_path = config.source.display().to_string();
        let Some(discord) = &config.discord else {
            return Err(RunError::NotConfigured {
                config: config_path,
            });
        };
        let gateway = Gateway {
            token: discord.token.expose_secret().to_string(),
            proxy_url: discord.proxy_url.clone(),
            prefix: discord.prefix.clone(),
            guild_ids: discord.guild_ids.clone(),
            shared: Arc::new(chat::Shared::default()),
            bot: Arc::new(OnceLock::new()),
            inflight: Arc::new(handler::Inflight::default()),
        };
        // The REST client for posts and edits exists on every instance, leader or not;
        // the cache is the running gateway client's (set when one starts).
        let chat = Arc::new(DiscordChat::new(
            Arc::new(gateway.http()),
            Arc::new(serenity::cache::Cache::new()),
            gateway.shared.clone(),
        ));
        let settle = config.defaults.status_timeout;
        let service = Service::from_config(config, chat.clone(), ADAPTER, clock)
            .await
            .map_err(RunError::Service)?;
        // Events flow only once a client starts, so no event finds the cell empty.
        let _ = gateway.bot.set(service.bot.clone());
        let client = gateway
            .client(service.lease(), chat.http_arc(), &config_path)
            .await?;
        chat.set_cache(client.cache.clone());
        let current = Arc::new(Mutex::new(Some(client.shard_manager.clone())));
        let probing = current.clone();
        let lease = service.lease().clone();
        service
            .bot
            .metrics()
            .health
            .set_chat_probe(Box::new(move || {
                if !lease.is_leader() {
                    // A standby has no gateway, by design: it serves webhooks and edits
                    // messages over REST.
                    return Some(crate::metrics::Status::ready());
                }
                let manager = probing.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match manager {
                    Some(m) => gateway_status(&m),
                    None => Some(crate::metrics::Status::not_ready(
                        "became the leader; connecting to the Discord gateway",
                    )),
                }
            }));
        Ok(DiscordBot {
            client: Some(client),
            gateway,
            chat,
            current,
            service,
            settle,
            config_path,
        })
    }

    pub fn bot(&self) -> &Bot {
        &self.service.bot
    }

    /// Where the webhook server listens, when `[webhook]` is set.
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.service.webhook_addr()
    }

    /// The gateway's shards (to see whether they are connected): the running gateway
    /// client's, else the next one's.
    pub fn shard_manager(&self) -> Arc<ShardManager> {
        match &self.client {
            Some(c) => c.shard_manager.clone(),
            None => self
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
                .expect("a gateway client was made"),
        }
    }

    /// The leader lease: whether this instance holds the gateway.
    pub fn lease(&self) -> &Lease {
        self.service.lease()
    }

    /// Serves until `shutdown` completes (or the gateway fails for good): the service
    /// at once, the gateway while this instance holds the leader lease (always, with
    /// SQLite) — connected when it becomes the leader, closed the moment it stops
    /// being it. Then: closes the gateway (no new commands), lets the commands being
    /// handled finish, gives the lease up (a standby takes over), lets deployments
    /// started by this process settle, flushes their messages.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let health_bot = self.service.bot.clone();
        // Ask Discord's REST API who we are first: a refused token is fatal and said
        // plainly; an unreachable Discord is said at error level, and retried.
        match tokio::time::timeout(PROBE, self.chat.http().get_current_user()).await {
            Ok(Ok(me)) => {
                tracing::info!(user = %me.name, id = %me.id, "Discord accepted the bot token")
            }
            Ok(Err(e)) => match explain(e, &self.config_path) {
                token @ RunError::Token { .. } => {
                    self.service.stop(Duration::ZERO).await;
                    return Err(token);
                }
                other => unreachable_discord(&health_bot, &other.to_string()),
            },
            Err(_) => unreachable_discord(
                &health_bot,
                &format!("Discord's API did not answer within {}s", PROBE.as_secs()),
            ),
        }
        let watchdog = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut every = tokio::time::interval_at(started + NOT_CONNECTED, NOT_CONNECTED);
            loop {
                every.tick().await;
                let chat = health_bot.metrics().health.chat();
                if !chat.ready {
                    tracing::error!(
                        for_s = started.elapsed().as_secs(),
                        why = chat.reason.as_deref().unwrap_or("unknown"),
                        "still not connected to Discord; check the network (and [discord] proxy_url), the token and the bot's intents (`deploybot doctor` checks them); /readyz answers 503 until then"
                    );
                }
            }
        });
        let lease = self.service.lease().clone();
        let mut roles = lease.watch();
        tokio::pin!(shutdown);
        let ended = loop {
            if !lease.is_leader() {
                tracing::info!(
                    holder = %lease.holder(),
                    "standing by: another instance holds the Discord gateway; serving webhooks"
                );
                tokio::select! {
                    r = roles.wait_for(|r| r.is_leader()) => {
                        if r.is_err() { break None }
                    }
                    () = &mut shutdown => break None,
                }
            }
            let mut client = match self.client.take() {
                Some(c) => c,
                None => match self
                    .gateway
                    .client(&lease, self.chat.http_arc(), &self.config_path)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => break Some(Err(e)),
                },
            };
            self.chat.set_cache(client.cache.clone());
            let manager = client.shard_manager.clone();
            *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(manager.clone());
            let start = client.start();
            tokio::pin!(start);
            tokio::select! {
                result = &mut start => break Some(result.map_err(|e| explain(e, &self.config_path))),
                () = lost(&mut roles) => {
                    tracing::warn!(
                        commands = self.gateway.inflight.count(),
                        "not the leader any more: closing the Discord gateway; serving webhooks"
                    );
                    manager.shutdown_all().await;
                    if tokio::time::timeout(CLOSE, &mut start).await.is_err() {
                        tracing::warn!("the Discord gateway did not close in time");
                    }
                }
                () = &mut shutdown => {
                    tracing::info!(
                        commands = self.gateway.inflight.count(),
                        "shutting down: closing the Discord gateway, then finishing the work in flight"
                    );
                    manager.shutdown_all().await;
                    if tokio::time::timeout(CLOSE, &mut start).await.is_err() {
                        tracing::warn!("the Discord gateway did not close in time");
                    }
                    break None;
                }
            }
        };
        if !self.gateway.inflight.wait_idle(DRAIN).await {
            tracing::warn!(
                commands = self.gateway.inflight.count(),
                "gave up waiting for commands in flight"
            );
        }
        // The gateway is closed and no command is being handled: a standby may take
        // over at once.
        lease.release().await;
        watchdog.abort();
        let result = match ended {
            Some(Err(e)) => Err(e),
            Some(Ok(())) | None => Ok(()),
        };
        // After a failure to connect there is nothing in flight to wait for.
        let settle = if result.is_ok() {
            self.settle
        } else {
            Duration::ZERO
        };
        self.service.stop(settle).await;
        tracing::info!("deploybot stopped");
        result
    }
}

/// Completes when this instance stops being the leader.
async fn lost(roles: &mut tokio::sync::watch::Receiver<crate::lease::Role>) {
    if roles.wait_for(|r| !r.is_leader()).await.is_err() {
        std::future::pending::<()>().await;
    }
}
