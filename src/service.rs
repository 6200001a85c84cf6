//! Assembles a running bot from a config: store, GitHub client, tracker background
//! work, and the webhook server when `[webhook]` is set. Used by `run`, `shell`,
//! `demo` and the tests, so they all run the same thing.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::bot::{Bot, Parts};
use crate::chat::Chat;
use crate::clock::Clock;
use crate::config::Config;
use crate::github::client::HttpGitHub;
use crate::github::{token, GitHub};
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::webhook;

pub struct Service {
    pub bot: Bot,
    stop: watch::Sender<bool>,
    webhook: Option<webhook::Running>,
    background: tokio::task::JoinHandle<()>,
}

/// The GitHub client the config asks for.
pub fn github_from(config: &Config) -> Result<Arc<dyn GitHub>, String> {
    let tokens = token::from_config(&config.github.api_url, &config.github.auth)
        .map_err(|e| format!("{}: {e}", config.source.display()))?;
    let client = HttpGitHub::new(&config.github.api_url, tokens).map_err(|e| e.to_string())?;
    Ok(Arc::new(client))
}

/// The store the config asks for.
pub async fn store_from(config: &Config) -> Result<Arc<dyn Store>, String> {
    let store = SqliteStore::open(&config.storage.url)
        .await
        .map_err(|e| format!("{}: [storage] {e}", config.source.display()))?;
    Ok(Arc::new(store))
}

impl Service {
    /// Starts the bot's background work: a restart's catch-up, the watchdog (and
    /// poller), and the webhook server if configured.
    pub async fn start(parts: Parts) -> Result<Service, String> {
        let config = parts.config.clone();
        let store = parts.store.clone();
        let clock: Arc<dyn Clock> = parts.clock.clone();
        let bot = Bot::new(parts);
        let (stop, stopped) = watch::channel(false);
        // In the background: a slow GitHub must not keep the bot offline at start.
        let catching_up = bot.tracker().clone();
        tokio::spawn(async move {
            match catching_up.catch_up().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, "caught up on unfinished deployments"),
                Err(e) => tracing::warn!(error = %e, "catch-up failed"),
            }
        });
        let background = spawn_background(bot.clone(), stopped.clone());
        let webhook = match &config.webhook {
            Some(w) => Some(
                webhook::start(
                    w.listen,
                    &w.path,
                    w.secret.clone(),
                    store,
                    clock,
                    bot.tracker().clone(),
                    stopped,
                )
                .await
                .map_err(|e| {
                    format!(
                        "{}: [webhook] cannot listen on {}: {e}",
                        config.source.display(),
                        w.listen
                    )
                })?,
            ),
            None => None,
        };
        Ok(Service {
            bot,
            stop,
            webhook,
            background,
        })
    }

    /// Everything from the config, with `chat` as the adapter.
    pub async fn from_config(
        config: Arc<Config>,
        chat: Arc<dyn Chat>,
        adapter: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Service, String> {
        let github = github_from(&config)?;
        let store = store_from(&config).await?;
        Service::start(Parts {
            config,
            github,
            chat,
            store,
            clock,
            adapter: adapter.to_string(),
        })
        .await
    }

    /// Where the webhook server listens (useful with port 0).
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook.as_ref().map(|w| w.addr)
    }

    /// Stops at once, as if the process died: nothing is settled or flushed, and
    /// pending message edits are dropped. (For restart tests.)
    pub async fn kill(self) {
        self.bot.tracker().halt();
        self.stop.send_replace(true);
        self.background.abort();
        if let Some(w) = self.webhook {
            w.abort();
        }
    }

    /// Finishes in-flight work — deployments this process started get up to
    /// `settle` to reach a final state when statuses can arrive — then stops.
    pub async fn stop(self, settle: Duration) {
        let config = self.bot.config();
        let statuses_can_arrive = self.webhook.is_some() || config.github.poll_interval.is_some();
        let tracker = self.bot.tracker();
        if statuses_can_arrive {
            tracker.settle(&tracker.session_deployments(), settle).await;
        }
        tracker.flush(Duration::from_secs(5)).await;
        self.stop.send_replace(true);
        if let Some(w) = self.webhook {
            w.finished().await;
        }
        let _ = self.background.await;
        tracker.flush(Duration::from_secs(5)).await;
    }
}

/// Housekeeping every few seconds ([`Bot::tick`]), and polling when
/// `[github] poll_interval` is set, until `stop` fires.
fn spawn_background(bot: Bot, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let poll = bot.config().github.poll_interval;
        let tick = poll
            .unwrap_or(Duration::from_secs(5))
            .min(Duration::from_secs(5));
        let mut since_poll = Duration::ZERO;
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(tick) => {}
            }
            since_poll += tick;
            if let Some(every) = poll {
                if since_poll >= every {
                    since_poll = Duration::ZERO;
                    if let Err(e) = bot.tracker().poll_once().await {
                        tracing::warn!(error = %e, "polling round failed");
                    }
                }
            }
            bot.tick().await;
        }
    })
}
