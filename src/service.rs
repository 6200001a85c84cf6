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
use crate::config::{Config, StorageBackend};
use crate::github::client::HttpGitHub;
use crate::github::{token, GitHub};
use crate::inbox::Inbox;
use crate::lease::{self, Lease};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::{ops, server, webhook};

/// The longest a stop waits for deployments to finish, whatever `status_timeout` says,
/// so that a stop always ends within about a minute (CLOSE + DRAIN + this + flushes).
pub const MAX_SETTLE: Duration = Duration::from_secs(20);

pub struct Service {
    pub bot: Bot,
    stop: watch::Sender<bool>,
    webhook: Option<webhook::Running>,
    /// The operator's endpoints on their own listener (`[metrics] listen`).
    ops: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    background: tokio::task::JoinHandle<()>,
    /// Who holds the gateway and runs housekeeping (always this process with SQLite).
    lease: Lease,
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
    let storage = &config.storage;
    let failed =
        |e: crate::store::StoreError| format!("{}: [storage] {e}", config.source.display());
    Ok(match storage.backend() {
        StorageBackend::Sqlite => Arc::new(SqliteStore::open(&storage.url).await.map_err(failed)?),
        StorageBackend::Postgres => Arc::new(
            PostgresStore::open(&storage.url, storage.pool_size)
                .await
                .map_err(failed)?,
        ),
    })
}

impl Service {
    /// Starts the bot's background work: a restart's catch-up, the watchdog (and
    /// poller), and the webhook server if configured.
    pub async fn start(parts: Parts) -> Result<Service, String> {
        let config = parts.config.clone();
        let store = parts.store.clone();
        let clock: Arc<dyn Clock> = parts.clock.clone();
        let parts_adapter = parts.adapter.clone();
        let bot = Bot::new(parts);
        // The routing key is made (or read) now: the first deploy must not wait for it,
        // and a store that cannot keep it is said at start.
        bot.tracker()
            .routing_key()
            .await
            .map_err(|e| format!("{}: [storage] {e}", config.source.display()))?;
        let (stop, stopped) = watch::channel(false);
        // Several instances may share a PostgreSQL database: one of them leads.
        let lease = match config.storage.backend() {
            StorageBackend::Sqlite => Lease::single(Some(bot.metrics().clone())),
            StorageBackend::Postgres => Lease::postgres(
                &config.storage.url,
                lease::Options::with_ttl(config.storage.lease_ttl),
                Some(bot.metrics().clone()),
            )
            .map_err(|e| format!("{}: [storage] {e}", config.source.display()))?,
        };
        spawn_leading(bot.clone(), lease.clone(), stopped.clone());
        // Whether GitHub takes the credentials, for `/readyz`, without waiting for the
        // first command.
        let checking = bot.clone();
        tokio::spawn(async move {
            let health = &checking.metrics().health;
            match checking.github().check_credentials().await {
                Ok(()) => health.set_github(crate::metrics::Status::ready()),
                Err(e) => {
                    tracing::error!(error = %e, "GitHub did not accept the credentials in [github]; check the token or the GitHub App settings (`deploybot doctor` says more)");
                    health.set_github(crate::metrics::Status::not_ready(e.to_string()));
                }
            }
        });
        let background = spawn_background(bot.clone(), lease.clone(), stopped.clone());
        spawn_waits(bot.clone(), lease.clone(), stopped.clone());
        let separate_ops = config.metrics.map(|m| m.listen);
        let ops = match separate_ops {
            Some(listen) => {
                let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
                    format!(
                        "{}: [metrics] cannot listen on {listen}: {e}",
                        config.source.display()
                    )
                })?;
                let addr = listener.local_addr().map_err(|e| e.to_string())?;
                let served = server::serve(listener, ops::router(bot.clone()), stopped.clone());
                Some((addr, served))
            }
            None => None,
        };
        let webhook = match &config.webhook {
            Some(w) => Some(
                webhook::start(
                    w,
                    Inbox::start(
                        bot.tracker().clone(),
                        lease.clone(),
                        bot.writer().clone(),
                        store.clone(),
                        clock,
                        bot.metrics().clone(),
                    ),
                    crate::waits::Follow {
                        store,
                        waits: bot.waits().clone(),
                    },
                    bot.metrics().clone(),
                    if separate_ops.is_some() {
                        axum::Router::new()
                    } else {
                        ops::router(bot.clone())
                    },
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
        let service = Service {
            bot,
            stop,
            webhook,
            ops,
            background,
            lease,
        };
        service.log_summary(&parts_adapter);
        Ok(service)
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

    /// One line at info that says what runs: an operator reads it first.
    fn log_summary(&self, adapter: &str) {
        let config = self.bot.config();
        let environments: usize = config.apps.iter().map(|a| a.environments.len()).sum();
        let webhook = match (&config.webhook, self.webhook_addr()) {
            (Some(w), Some(addr)) => format!("http://{addr}{}", w.path),
            _ => "off (no [webhook])".to_string(),
        };
        let ops = match self.ops_addr() {
            Some(addr) => format!("http://{addr}/metrics, /healthz, /readyz"),
            None => "off (no [webhook] or [metrics] listen)".to_string(),
        };
        let poll = config
            .github
            .poll_interval
            .map_or("off".to_string(), |p| format!("every {}s", p.as_secs()));
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            config = %config.source.display(),
            apps = config.apps.len(),
            environments,
            storage = %crate::store::postgres::redacted(&config.storage.url),
            github = %config.github.api_url,
            %webhook,
            metrics = %ops,
            polling = %poll,
            max_connections = server::max_connections(),
            chat = adapter,
            "deploybot started"
        );
    }

    /// The leader lease: whether this instance holds the gateway and runs housekeeping.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Where the webhook server listens (useful with port 0).
    pub fn webhook_addr(&self) -> Option<SocketAddr> {
        self.webhook.as_ref().map(|w| w.addr)
    }

    /// The webhook path's durable inbox, when a webhook server runs.
    pub fn inbox(&self) -> Option<&Inbox> {
        self.webhook.as_ref().map(|w| w.inbox())
    }

    /// Where `/healthz`, `/readyz` and `/metrics` are served: their own listener, else
    /// the webhook's.
    pub fn ops_addr(&self) -> Option<SocketAddr> {
        self.ops
            .as_ref()
            .map(|(addr, _)| *addr)
            .or_else(|| self.webhook_addr())
    }

    /// Stops at once, as if the process died: nothing is settled or flushed, and
    /// pending message edits are dropped. (For restart tests.)
    pub async fn kill(self) {
        self.bot.tracker().halt();
        self.bot.intents().abort_all();
        self.lease.abandon();
        self.stop.send_replace(true);
        self.background.abort();
        if let Some(w) = self.webhook {
            w.inbox().halt();
            w.abort();
        }
        if let Some((_, ops)) = self.ops {
            ops.abort();
        }
    }

    /// Finishes in-flight work — deployments this process started get up to
    /// `settle` to reach a final state when statuses can arrive — then stops.
    pub async fn stop(self, settle: Duration) {
        let config = self.bot.config();
        let statuses_can_arrive = self.webhook.is_some() || config.github.poll_interval.is_some();
        let tracker = self.bot.tracker();
        // Creates still waiting for GitHub get their answer first (bounded): what is
        // left stays recorded as an intent, which the next start looks up.
        let creating = self.bot.intents().settle(settle.min(MAX_SETTLE)).await;
        if creating > 0 {
            tracing::warn!(
                creating,
                "stopping while GitHub had not answered some deployment requests; deploybot looks them up when it starts again"
            );
        }
        if statuses_can_arrive {
            let unsettled = tracker
                .settle(&tracker.session_deployments(), settle.min(MAX_SETTLE))
                .await;
            if !unsettled.is_empty() {
                let ids: Vec<String> = unsettled
                    .iter()
                    .map(|(repo, id)| format!("{repo}#{id}"))
                    .collect();
                tracing::warn!(
                    deployments = %ids.join(", "),
                    "stopping before these deployments finished; their messages catch up when deploybot starts again"
                );
            }
        }
        tracker.flush(Duration::from_secs(5)).await;
        self.stop.send_replace(true);
        if let Some(w) = self.webhook {
            w.finished(Duration::from_secs(5)).await;
        }
        if let Some((_, ops)) = self.ops {
            server::finish(ops).await;
        }
        let _ = self.background.await;
        self.bot.intents().abort_all();
        tracker.flush(Duration::from_secs(5)).await;
        self.lease.release().await;
    }
}

/// Each time this instance becomes the leader (at start with SQLite): a restart's
/// catch-up (the previous leader may have died with edits pending) and the
/// reconciliation of intents whose creation's outcome is unknown, in the background
/// (a slow GitHub must not keep the bot offline at start).
fn spawn_leading(bot: Bot, lease: Lease, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut roles = lease.watch();
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                r = roles.wait_for(|r| r.is_leader()) => if r.is_err() { break },
            }
            // What this instance remembered of deployments may be stale: while it
            // stood by, the leader applied their events.
            bot.tracker().forget_cached().await;
            let catching_up = bot.clone();
            tokio::spawn(async move {
                match catching_up.tracker().catch_up().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(n, "caught up on unfinished deployments"),
                    Err(e) => {
                        catching_up.metrics().background_failure("catch_up");
                        tracing::warn!(error = %e, "catch-up failed; the watchdog and polling retry later");
                    }
                }
            });
            // Deployments whose creation's outcome is unknown (the last process died
            // while GitHub's answer was in flight): looked up by request id.
            crate::intents::spawn_reconcile(&bot);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                r = roles.wait_for(|r| !r.is_leader()) => if r.is_err() { break },
            }
        }
    });
}

/// `deploy … when green`: a check webhook for a waited-for commit wakes this loop, which
/// (on the leader) evaluates the waits at once; [`Bot::tick`] polls them too.
fn spawn_waits(bot: Bot, lease: Lease, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = bot.waits().notified() => {}
            }
            if !lease.is_leader() {
                continue;
            }
            let sweeping = bot.clone();
            match tokio::spawn(async move { crate::flow::when_green::sweep(&sweeping).await }).await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    bot.metrics().background_failure("when_green");
                    tracing::warn!(error = %e, "cannot evaluate the waits for green checks");
                }
                Err(e) => {
                    bot.metrics().background_failure("when_green");
                    tracing::error!(error = %e, "evaluating the waits panicked");
                }
            }
        }
    });
}

/// Housekeeping every few seconds ([`Bot::tick`]), and polling when
/// `[github] poll_interval` is set, until `stop` fires; on the leader only (a standby's
/// rounds only beat, so `/readyz` still sees the loop alive). Each round runs in a task of
/// its own: a round that fails or panics is logged and counted
/// (`deploybot_background_failures_total`), and the next round runs as usual. Each
/// completed round is a heartbeat that `/readyz` checks, so a loop that stops is seen.
fn spawn_background(
    bot: Bot,
    lease: Lease,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
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
            if !lease.is_leader() {
                bot.metrics().health.beat();
                continue;
            }
            if let Some(every) = poll {
                if since_poll >= every {
                    since_poll = Duration::ZERO;
                    let polling = bot.clone();
                    let round = tokio::spawn(async move { polling.tracker().poll_once().await });
                    match round.await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            bot.metrics().background_failure("polling");
                            tracing::warn!(error = %e, "polling round failed");
                        }
                        Err(e) => {
                            bot.metrics().background_failure("polling");
                            tracing::error!(error = %e, "polling round panicked; the next round runs as usual");
                        }
                    }
                }
            }
            let housekeeping = bot.clone();
            match tokio::spawn(async move { housekeeping.tick().await }).await {
                Ok(()) => bot.metrics().health.beat(),
                Err(e) => {
                    bot.metrics().background_failure("housekeeping");
                    tracing::error!(error = %e, "housekeeping panicked; the next round runs as usual");
                }
            }
            crate::intents::spawn_reconcile(&bot);
        }
    })
}
