//! What an operator watches: the counters and gauges behind `GET /metrics`
//! (Prometheus text format, with `prometheus-client`), and the readiness of each
//! dependency behind `GET /readyz`.
//!
//! One [`Metrics`] per running bot (not a process-wide global), so that tests running
//! several bots in one process each see their own figures. The core and the adapters
//! record into it through the narrow methods below; label values are bounded sets
//! (event names GitHub sends, endpoint templates, command names, rule names), never
//! user input, so a stranger cannot grow the series without bound.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventOutcome {
    event: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    method: String,
    endpoint: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChatOp {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
    decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppEnv {
    app: String,
    environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Component {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Version {
    version: String,
}

/// What became of one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued for the tracker (202).
    Accepted,
    /// A redelivery of one already processed.
    Duplicate,
    /// Missing or wrong `X-Hub-Signature-256`.
    BadSignature,
    /// Signed, but not an event deploybot can read.
    BadPayload,
    /// An event deploybot does not use (204), or `ping`.
    Ignored,
    /// A deployment event for a repository no app has, or for a deployment made
    /// elsewhere when the app has no `notify_channel` (204, nothing stored).
    NotFollowed,
    /// Storage or the tracker's queue could not take it (503; GitHub can redeliver).
    Unavailable,
}

impl Delivery {
    fn as_str(self) -> &'static str {
        match self {
            Delivery::Accepted => "accepted",
            Delivery::Duplicate => "duplicate",
            Delivery::BadSignature => "bad_signature",
            Delivery::BadPayload => "bad_payload",
            Delivery::Ignored => "ignored",
            Delivery::NotFollowed => "not_followed",
            Delivery::Unavailable => "unavailable",
        }
    }
}

/// Why a deployment event was not acted on as it asked. (A bounded set: the
/// repository, channel or user named in the event are never labels.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    /// No app is configured with the event's repository: ignored.
    UnconfiguredRepository,
    /// `payload.deploybot` without a valid mac: treated as made elsewhere.
    UnverifiedPayload,
    /// A valid payload copied into another deployment: treated as made elsewhere.
    ReplayedPayload,
    /// A route to a channel the app does not allow: not posted there.
    ChannelNotAllowed,
}

impl Untrusted {
    pub fn as_str(self) -> &'static str {
        match self {
            Untrusted::UnconfiguredRepository => "unconfigured_repository",
            Untrusted::UnverifiedPayload => "unverified_payload",
            Untrusted::ReplayedPayload => "replayed_payload",
            Untrusted::ChannelNotAllowed => "channel_not_allowed",
        }
    }
}

/// A chat call's result, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatResult {
    Ok,
    Error,
}

pub struct Metrics {
    registry: Registry,
    webhook_deliveries: Family<EventOutcome, Counter>,
    tracker_queue_depth: Gauge,
    tracker_apply_seconds: Histogram,
    tracker_applied_on_arrival: Counter,
    store_commit_writes: Histogram,
    store_commit_seconds: Histogram,
    github_requests: Family<Request, Counter>,
    github_rate_limit_remaining: Gauge,
    chat_requests: Family<ChatOp, Counter>,
    chat_rate_limited: Counter,
    commands: Family<CommandLabels, Counter>,
    deployments_created: Family<AppEnv, Counter>,
    deployments_refused: Family<Reason, Counter>,
    locks_active: Gauge,
    confirmations_pending: Gauge,
    deployments_tracked: Gauge,
    sqlite_checkpoints: Family<Outcome, Counter>,
    sqlite_wal_pages_behind: Gauge,
    background_failures: Family<Component, Counter>,
    untrusted_events: Family<Reason, Counter>,
    github_rest_fallbacks: Family<Reason, Counter>,
    ready: Family<Component, Gauge>,
    leader: Gauge,
    leader_changes: Counter,
    gateway_events_fenced: Counter,
    /// Readiness of storage, chat and GitHub, for `/readyz`.
    pub health: Health,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("deploybot");
        let webhook_deliveries = Family::<EventOutcome, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "GitHub webhook deliveries received, by event and what became of them",
            webhook_deliveries.clone(),
        );
        let tracker_queue_depth = Gauge::default();
        registry.register(
            "tracker_queue_depth",
            "Webhook events accepted and waiting for the tracker",
            tracker_queue_depth.clone(),
        );
        // 100 µs … ~6.5 s: an apply is a store read and write, plus a render schedule.
        let tracker_apply_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register(
            "tracker_apply_seconds",
            "Time to apply one deployment event to its tracked deployment",
            tracker_apply_seconds.clone(),
        );
        let tracker_applied_on_arrival = Counter::default();
        registry.register(
            "tracker_applied_on_arrival",
            "Deployment statuses applied in the webhook request that brought them (their deployment was in memory), without going through the inbox",
            tracker_applied_on_arrival.clone(),
        );
        // 1 … 4096 writes in one transaction.
        let store_commit_writes = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "store_commit_writes",
            "Writes committed together by the webhook path's group commit (deliveries, tracked records, applied events)",
            store_commit_writes.clone(),
        );
        let store_commit_seconds = Histogram::new(exponential_buckets(0.00005, 2.0, 17));
        registry.register(
            "store_commit_seconds",
            "Time of one group commit",
            store_commit_seconds.clone(),
        );
        let github_requests = Family::<Request, Counter>::default();
        registry.register(
            "github_requests",
            "Requests sent to GitHub's REST API, by endpoint template and HTTP status (`error` when no answer came)",
            github_requests.clone(),
        );
        let github_rate_limit_remaining = Gauge::default();
        registry.register(
            "github_rate_limit_remaining",
            "GitHub's x-ratelimit-remaining on the latest answer (-1 until one is seen)",
            github_rate_limit_remaining.clone(),
        );
        github_rate_limit_remaining.set(-1);
        let chat_requests = Family::<ChatOp, Counter>::default();
        registry.register(
            "chat_requests",
            "Chat messages posted and edited, by outcome",
            chat_requests.clone(),
        );
        let chat_rate_limited = Counter::default();
        registry.register(
            "chat_rate_limited",
            "Times the chat platform made the bot wait (HTTP 429 or a known bucket running out)",
            chat_rate_limited.clone(),
        );
        let commands = Family::<CommandLabels, Counter>::default();
        registry.register(
            "commands",
            "Chat commands handled, by command and decision (allowed, refused, pending, failed)",
            commands.clone(),
        );
        let deployments_created = Family::<AppEnv, Counter>::default();
        registry.register(
            "deployments_created",
            "GitHub deployments created from chat",
            deployments_created.clone(),
        );
        let deployments_refused = Family::<Reason, Counter>::default();
        registry.register(
            "deployments_refused",
            "Deploys and rollbacks refused, by the rule that refused them",
            deployments_refused.clone(),
        );
        let locks_active = Gauge::default();
        registry.register(
            "locks_active",
            "Environment locks currently held",
            locks_active.clone(),
        );
        let confirmations_pending = Gauge::default();
        registry.register(
            "confirmations_pending",
            "Deploys waiting for their requester to confirm",
            confirmations_pending.clone(),
        );
        let deployments_tracked = Gauge::default();
        registry.register(
            "deployments_tracked",
            "Deployments whose message the bot is still keeping up to date",
            deployments_tracked.clone(),
        );
        let sqlite_checkpoints = Family::<Outcome, Counter>::default();
        registry.register(
            "sqlite_checkpoints",
            "SQLite WAL checkpoints (copying the WAL into the database file, in the background), by outcome: caught_up (the WAL starts over), partial (commits went on, or a reader holds the rest), failed",
            sqlite_checkpoints.clone(),
        );
        let sqlite_wal_pages_behind = Gauge::default();
        registry.register(
            "sqlite_wal_pages_behind",
            "WAL pages (4 KiB) the latest SQLite checkpoint could not copy; the WAL file grows while it stays high (0 on PostgreSQL)",
            sqlite_wal_pages_behind.clone(),
        );
        let background_failures = Family::<Component, Counter>::default();
        registry.register(
            "background_failures",
            "Failed rounds of background work (housekeeping, polling, catch-up), by task",
            background_failures.clone(),
        );
        let untrusted_events = Family::<Reason, Counter>::default();
        registry.register(
            "untrusted_events",
            "Deployment events deploybot refused to act on as they asked: an unconfigured repository, a deploybot payload without a valid mac, a replayed payload, a channel the app does not allow",
            untrusted_events.clone(),
        );
        let github_rest_fallbacks = Family::<Reason, Counter>::default();
        registry.register(
            "github_rest_fallbacks",
            "Reads GraphQL would answer in one request that went over REST instead (more requests), by why: GraphQL unavailable (endpoint missing, a proxy, an old GitHub Enterprise Server) or refused for the repository (e.g. a classic token without the repo scope)",
            github_rest_fallbacks.clone(),
        );
        let ready = Family::<Component, Gauge>::default();
        registry.register(
            "ready",
            "1 when the component is ready (storage, chat, github, housekeeping), else 0",
            ready.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this instance holds the leader lease (the Discord gateway and housekeeping), else 0; always 1 with SQLite",
            leader.clone(),
        );
        let leader_changes = Counter::default();
        registry.register(
            "leader_changes",
            "Times this instance became the leader or stopped being it",
            leader_changes.clone(),
        );
        let gateway_events_fenced = Counter::default();
        registry.register(
            "gateway_events_fenced",
            "Chat commands from the gateway dropped unanswered because this instance was no longer the leader",
            gateway_events_fenced.clone(),
        );
        let build_info = Family::<Version, Gauge>::default();
        registry.register(
            "build_info",
            "Always 1; the version label says which deploybot runs",
            build_info.clone(),
        );
        build_info
            .get_or_create(&Version {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        Metrics {
            registry,
            webhook_deliveries,
            tracker_queue_depth,
            tracker_apply_seconds,
            tracker_applied_on_arrival,
            store_commit_writes,
            store_commit_seconds,
            github_requests,
            github_rate_limit_remaining,
            chat_requests,
            chat_rate_limited,
            commands,
            deployments_created,
            deployments_refused,
            locks_active,
            confirmations_pending,
            deployments_tracked,
            sqlite_checkpoints,
            sqlite_wal_pages_behind,
            background_failures,
            untrusted_events,
            github_rest_fallbacks,
            ready,
            leader,
            leader_changes,
            gateway_events_fenced,
            health: Health::default(),
        }
    }

    /// Everything, in Prometheus' text exposition format (version 0.0.4).
    pub fn encode(&self) -> String {
        for (component, status) in self.health.components() {
            self.ready
                .get_or_create(&Component {
                    component: component.to_string(),
                })
                .set(i64::from(status.ready));
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    pub fn webhook_delivery(&self, event: &str, outcome: Delivery) {
        // GitHub's event names are a known, small set; anything else (a forged header
        // on an unsigned request is never counted by name) is folded into `other`.
        let event =
            if event.len() <= 40 && event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                event
            } else {
                "other"
            };
        self.webhook_deliveries
            .get_or_create(&EventOutcome {
                event: event.to_string(),
                outcome: outcome.as_str().to_string(),
            })
            .inc();
    }

    /// A deployment event deploybot did not act on as it asked (see [`Untrusted`]).
    pub fn untrusted_event(&self, why: Untrusted) {
        self.untrusted_events
            .get_or_create(&Reason {
                reason: why.as_str().to_string(),
            })
            .inc();
    }

    /// An event for a repository no app is configured with: ignored.
    pub fn webhook_ignored_repository(&self) {
        self.untrusted_event(Untrusted::UnconfiguredRepository);
    }

    pub fn tracker_queued(&self) {
        self.tracker_queue_depth.inc();
    }

    pub fn tracker_applied(&self, took: Duration) {
        self.tracker_queue_depth.dec();
        self.tracker_apply_seconds.observe(took.as_secs_f64());
    }

    /// A status applied in the request that brought it (it never waited in a queue).
    pub fn tracker_applied_on_arrival(&self, took: Duration) {
        self.tracker_applied_on_arrival.inc();
        self.tracker_apply_seconds.observe(took.as_secs_f64());
    }

    /// One group commit of `writes` writes.
    pub fn store_commit(&self, writes: usize, took: Duration) {
        self.store_commit_writes.observe(writes as f64);
        self.store_commit_seconds.observe(took.as_secs_f64());
    }

    /// `endpoint` is a template (`/repos/:owner/:repo/deployments`), `status` the HTTP
    /// status, or `None` when no answer came.
    pub fn github_request(&self, method: &str, endpoint: &str, status: Option<u16>) {
        self.github_requests
            .get_or_create(&Request {
                method: method.to_string(),
                endpoint: endpoint.to_string(),
                status: status.map_or("error".to_string(), |s| s.to_string()),
            })
            .inc();
    }

    /// A read that GraphQL would answer went over REST; `why` is `unavailable` or
    /// `refused`.
    pub fn github_rest_fallback(&self, why: &'static str) {
        self.github_rest_fallbacks
            .get_or_create(&Reason {
                reason: why.to_string(),
            })
            .inc();
    }

    pub fn github_rate_limit_remaining(&self, remaining: i64) {
        self.github_rate_limit_remaining.set(remaining);
    }

    pub fn chat_request(&self, operation: &'static str, result: ChatResult) {
        self.chat_requests
            .get_or_create(&ChatOp {
                operation: operation.to_string(),
                outcome: match result {
                    ChatResult::Ok => "ok",
                    ChatResult::Error => "error",
                }
                .to_string(),
            })
            .inc();
    }

    pub fn chat_rate_limited(&self) {
        self.chat_rate_limited.inc();
    }

    pub fn command(&self, command: &str, decision: &str) {
        self.commands
            .get_or_create(&CommandLabels {
                command: command.to_string(),
                decision: decision.to_string(),
            })
            .inc();
    }

    pub fn deployment_created(&self, app: &str, environment: &str) {
        self.deployments_created
            .get_or_create(&AppEnv {
                app: app.to_string(),
                environment: environment.to_string(),
            })
            .inc();
    }

    pub fn deployment_refused(&self, reason: &str) {
        self.deployments_refused
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub fn background_failure(&self, task: &'static str) {
        self.background_failures
            .get_or_create(&Component {
                component: task.to_string(),
            })
            .inc();
    }

    /// This instance's role: leader or standby. A change of role is counted.
    pub fn leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
        if self
            .health
            .set_leader(leader)
            .is_some_and(|was| was != leader)
        {
            self.leader_changes.inc();
        }
    }

    /// A gateway event that would have become a command, dropped: not the leader.
    pub fn gateway_event_fenced(&self) {
        self.gateway_events_fenced.inc();
    }

    /// The store's counts, refreshed before each scrape.
    pub fn store_gauges(&self, gauges: &crate::store::Gauges) {
        self.locks_active.set(gauges.locks as i64);
        self.confirmations_pending.set(gauges.confirmations as i64);
        self.deployments_tracked.set(gauges.tracked as i64);
        if let Some(c) = gauges.checkpoints {
            for (outcome, total) in [
                ("caught_up", c.caught_up),
                ("partial", c.partial),
                ("failed", c.failed),
            ] {
                // The store keeps the totals; the counter catches up with them.
                let counter = self.sqlite_checkpoints.get_or_create(&Outcome {
                    outcome: outcome.to_string(),
                });
                counter.inc_by(total.saturating_sub(counter.get()));
            }
            self.sqlite_wal_pages_behind
                .set(i64::try_from(c.pages_behind).unwrap_or(i64::MAX));
        }
    }
}

/// One dependency's readiness.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub ready: bool,
    /// What is wrong, or what is being waited for, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Status {
    pub fn ready() -> Status {
        Status {
            ready: true,
            reason: None,
        }
    }

    pub fn not_ready(reason: impl Into<String>) -> Status {
        Status {
            ready: false,
            reason: Some(reason.into()),
        }
    }
}

/// Readiness of what the bot depends on. Storage is probed when asked
/// ([`crate::bot::Bot::readiness`]); chat and GitHub are set by whoever learns of a
/// change: the chat adapter when it connects or loses its connection, the GitHub client
/// on every answer (401 refuses, any answer after a token was accepted clears it).
pub struct Health {
    storage: Mutex<Status>,
    chat: Mutex<Status>,
    github: Mutex<Status>,
    github_checked: std::sync::atomic::AtomicBool,
    /// Asked on every readiness check when set: the chat adapter's own view of its
    /// connection (Discord: the gateway shards' stage).
    chat_probe: std::sync::OnceLock<ChatProbe>,
    /// When housekeeping last completed a round (or when the bot started).
    heartbeat: Mutex<std::time::Instant>,
    /// Whether this instance holds the leader lease (`/readyz`'s `role`).
    leader: std::sync::atomic::AtomicBool,
    /// Whether the lease was ever set (before: the first state is no change).
    role_known: std::sync::atomic::AtomicBool,
}

/// Housekeeping runs every few seconds; this long without a round means it is stuck.
pub const HOUSEKEEPING_STALE: Duration = Duration::from_secs(60);

/// See [`Health::set_chat_probe`].
pub type ChatProbe = Box<dyn Fn() -> Option<Status> + Send + Sync>;

impl Default for Health {
    fn default() -> Self {
        Health {
            storage: Mutex::new(Status::not_ready("not checked yet")),
            chat: Mutex::new(Status::not_ready("not connected yet")),
            github: Mutex::new(Status::not_ready("credentials not checked yet")),
            github_checked: std::sync::atomic::AtomicBool::new(false),
            chat_probe: std::sync::OnceLock::new(),
            heartbeat: Mutex::new(std::time::Instant::now()),
            leader: std::sync::atomic::AtomicBool::new(true),
            role_known: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Health {
    pub fn set_storage(&self, status: Status) {
        *self.storage.lock().expect("health lock") = status;
    }

    pub fn set_chat(&self, status: Status) {
        *self.chat.lock().expect("health lock") = status;
    }

    pub fn set_github(&self, status: Status) {
        *self.github.lock().expect("health lock") = status;
        self.github_checked
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// GitHub answered (or failed to) at least once: the verdict is no longer a guess.
    pub fn github_checked(&self) -> bool {
        self.github_checked
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Lets the chat adapter answer for itself: `probe` returns the connection's state
    /// now, or `None` when it cannot tell (then the last state set stands).
    pub fn set_chat_probe(&self, probe: ChatProbe) {
        let _ = self.chat_probe.set(probe);
    }

    pub fn chat(&self) -> Status {
        if let Some(status) = self.chat_probe.get().and_then(|probe| probe()) {
            self.set_chat(status.clone());
            return status;
        }
        self.chat.lock().expect("health lock").clone()
    }

    pub fn github(&self) -> Status {
        self.github.lock().expect("health lock").clone()
    }

    pub fn storage(&self) -> Status {
        self.storage.lock().expect("health lock").clone()
    }

    /// Sets the role; returns the previous one (`None` the first time).
    fn set_leader(&self, leader: bool) -> Option<bool> {
        use std::sync::atomic::Ordering::SeqCst;
        let was = self.leader.swap(leader, SeqCst);
        self.role_known.swap(true, SeqCst).then_some(was)
    }

    /// `leader` or `standby`.
    pub fn role(&self) -> &'static str {
        if self.leader.load(std::sync::atomic::Ordering::SeqCst) {
            "leader"
        } else {
            "standby"
        }
    }

    /// Housekeeping completed a round.
    pub fn beat(&self) {
        *self.heartbeat.lock().expect("health lock") = std::time::Instant::now();
    }

    pub fn housekeeping(&self) -> Status {
        let since = self.heartbeat.lock().expect("health lock").elapsed();
        if since < HOUSEKEEPING_STALE {
            Status::ready()
        } else {
            Status::not_ready(format!(
                "housekeeping (watchdog, lock and confirmation expiry, polling) has not completed a round for {}s; see the logs",
                since.as_secs()
            ))
        }
    }

    pub fn components(&self) -> [(&'static str, Status); 4] {
        [
            ("storage", self.storage()),
            ("chat", self.chat()),
            ("github", self.github()),
            ("housekeeping", self.housekeeping()),
        ]
    }
}

/// The answer to `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    /// `leader` (holds the Discord gateway, runs housekeeping) or `standby` (serves
    /// webhooks, edits messages): both are ready.
    pub role: &'static str,
    pub storage: Status,
    pub chat: Status,
    pub github: Status,
    pub housekeeping: Status,
}

impl Readiness {
    pub fn from_health(health: &Health) -> Readiness {
        let (storage, chat, github, housekeeping) = (
            health.storage(),
            health.chat(),
            health.github(),
            health.housekeeping(),
        );
        Readiness {
            ready: storage.ready && chat.ready && github.ready && housekeeping.ready,
            role: health.role(),
            storage,
            chat,
            github,
            housekeeping,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stores_checkpoint_totals_become_counters_and_the_backlog_a_gauge() {
        let m = Metrics::new();
        let line = |text: &str, name: &str| -> Option<String> {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        let checkpoints = |caught_up, partial, pages_behind| crate::store::Gauges {
            checkpoints: Some(crate::store::Checkpoints {
                caught_up,
                partial,
                failed: 0,
                pages_behind,
            }),
            ..Default::default()
        };
        m.store_gauges(&checkpoints(3, 1, 700));
        m.store_gauges(&checkpoints(5, 1, 0));
        let text = m.encode();
        let caught_up = "deploybot_sqlite_checkpoints_total{outcome=\"caught_up\"}";
        assert_eq!(line(&text, caught_up).as_deref(), Some("5"), "{text}");
        let partial = "deploybot_sqlite_checkpoints_total{outcome=\"partial\"}";
        assert_eq!(line(&text, partial).as_deref(), Some("1"));
        let behind = "deploybot_sqlite_wal_pages_behind";
        assert_eq!(line(&text, behind).as_deref(), Some("0"));
        // PostgreSQL has no checkpoints: no series, nothing changed.
        m.store_gauges(&crate::store::Gauges::default());
        let text = m.encode();
        assert_eq!(line(&text, caught_up).as_deref(), Some("5"));
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.webhook_delivery("deployment_status", Delivery::Accepted);
        m.github_request("GET", "/repos/:owner/:repo", Some(200));
        m.tracker_queued();
        m.tracker_applied(Duration::from_millis(3));
        m.tracker_applied_on_arrival(Duration::from_millis(1));
        let text = m.encode();
        assert!(text.contains(
            "deploybot_webhook_deliveries_total{event=\"deployment_status\",outcome=\"accepted\"} 1"
        ));
        assert!(text.contains("# TYPE deploybot_tracker_apply_seconds histogram"));
        assert!(text.contains("deploybot_tracker_apply_seconds_count 2"));
        assert!(text.contains("deploybot_tracker_applied_on_arrival_total 1"));
        assert!(text.contains("deploybot_tracker_queue_depth 0"));
        assert!(text.contains("deploybot_github_rate_limit_remaining -1"));
        assert!(text.contains("deploybot_ready{component=\"chat\"} 0"));
        assert!(text.contains(&format!(
            "deploybot_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn every_metric_is_in_the_readme() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let m = Metrics::new();
        // Families show once they have a sample.
        m.webhook_delivery("deployment", Delivery::Accepted);
        m.github_request("GET", "/rate_limit", Some(200));
        m.chat_request("send", ChatResult::Ok);
        m.command("deploy", "allowed");
        m.deployment_created("api", "staging");
        m.deployment_refused("lock");
        m.background_failure("polling");
        m.untrusted_event(Untrusted::UnconfiguredRepository);
        m.store_gauges(&crate::store::Gauges {
            checkpoints: Some(Default::default()),
            ..Default::default()
        });
        let text = m.encode();
        let mut families = 0;
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            let shown = match kind {
                "counter" => format!("`{}_total`", name.trim_end_matches("_total")),
                _ => format!("{name}`"),
            };
            assert!(readme.contains(&shown), "README › Metrics lacks {shown}");
            families += 1;
        }
        assert!(families >= 15, "{text}");
    }

    #[test]
    fn event_names_that_are_not_githubs_are_folded() {
        let m = Metrics::new();
        m.webhook_delivery("x\"} 1\nevil", Delivery::BadPayload);
        let text = m.encode();
        assert!(text.contains("event=\"other\",outcome=\"bad_payload\"} 1"));
        assert!(!text.contains("evil"));
    }

    #[test]
    fn readiness_needs_all_three() {
        let health = Health::default();
        health.set_storage(Status::ready());
        health.set_chat(Status::ready());
        assert!(!Readiness::from_health(&health).ready);
        health.set_github(Status::ready());
        assert!(Readiness::from_health(&health).ready);
        health.set_chat(Status::not_ready("gateway closed"));
        let r = Readiness::from_health(&health);
        assert!(!r.ready);
        assert_eq!(r.chat.reason.as_deref(), Some("gateway closed"));
    }
}
