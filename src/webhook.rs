//! The webhook server (axum): GitHub's deliveries in, the durable inbox behind it.
//!
//! A thin edge. [`Verified`] is an extractor that reads the raw body (bounded) and
//! checks `X-Hub-Signature-256` before any handler sees it; the handler parses the
//! event and offers it to the [`Inbox`], which answers once the event and its
//! delivery id are committed (a redelivery is a duplicate; storage down is a 503 and
//! nothing is kept). No chat or GitHub I/O happens inside a request, so GitHub's
//! 10-second deadline is met; the inbox's workers apply events to the tracker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

use crate::github::events::{verify_signature, Event};
use crate::inbox::{Admission, Inbox, Work, REDRIVE_AFTER};
use crate::metrics::{Delivery, Metrics};
use crate::server;
use crate::waits::Follow;

/// GitHub caps payloads at 25 MB; deployment events are a few KB.
pub const MAX_BODY: usize = 1024 * 1024;
/// How often the inbox is checked for events left unapplied.
const REDRIVE_EVERY: Duration = Duration::from_secs(5);
/// With a shared store: how often the leader looks for events other instances admitted.
const SHARED_REDRIVE_EVERY: Duration = Duration::from_millis(250);

#[derive(Clone)]
struct AppState {
    secret: Arc<SecretString>,
    inbox: Inbox,
    /// `status` / `check_run` / `check_suite` go to the waits of `deploy … when green`.
    waits: Follow,
    metrics: Arc<Metrics>,
}

/// A delivery whose signature matched: its event name, delivery id and raw body.
pub struct Verified {
    pub event: String,
    pub delivery: Option<String>,
    pub body: Bytes,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl FromRequest<AppState> for Verified {
    type Rejection = (StatusCode, String);

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        // Taken, not cloned: the body's extractor needs only the extensions (its limit).
        let mut req = req;
        let headers = std::mem::take(req.headers_mut());
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| (e.status(), e.body_text()))?;
        if let Err(why) = verify_signature(
            state.secret.expose_secret().as_bytes(),
            &body,
            headers
                .get("x-hub-signature-256")
                .and_then(|v| v.to_str().ok()),
        ) {
            tracing::warn!(why, "rejected a webhook delivery");
            // The event name of an unsigned request is anyone's word: not a label.
            state
                .metrics
                .webhook_delivery("unverified", Delivery::BadSignature);
            return Err((StatusCode::UNAUTHORIZED, format!("{why}\n")));
        }
        let event = header(&headers, "x-github-event").ok_or((
            StatusCode::BAD_REQUEST,
            "missing X-GitHub-Event\n".to_string(),
        ))?;
        Ok(Verified {
            event,
            delivery: header(&headers, "x-github-delivery"),
            body,
        })
    }
}

async fn receive(State(state): State<AppState>, delivery: Verified) -> (StatusCode, String) {
    let (answer, outcome) = handle(&state, &delivery).await;
    state.metrics.webhook_delivery(&delivery.event, outcome);
    answer
}

async fn handle(state: &AppState, delivery: &Verified) -> ((StatusCode, String), Delivery) {
    let event = match Event::parse(&delivery.event, &delivery.body) {
        Ok(e) => e,
        Err(why) => {
            return (
                (StatusCode::BAD_REQUEST, format!("{why}\n")),
                Delivery::BadPayload,
            )
        }
    };
    match event {
        Event::Ping(ping) => (
            (
                StatusCode::OK,
                format!(
                    "pong: deploybot is listening{}\n",
                    ping.zen.map(|z| format!(" ({z})")).unwrap_or_default()
                ),
            ),
            Delivery::Ignored,
        ),
        Event::Ignored(name) => {
            tracing::debug!(event = %name, "ignoring an event deploybot does not use");
            ((StatusCode::NO_CONTENT, String::new()), Delivery::Ignored)
        }
        // Counted on the waits for that commit (committed before the 2xx); the leader
        // reads the checks. Nobody waiting for it: nothing kept, 204.
        Event::Checks(checks) => {
            let Some(repository) = checks.repository.name() else {
                return ((StatusCode::NO_CONTENT, String::new()), Delivery::Ignored);
            };
            match state.waits.checks_changed(&repository, &checks.sha).await {
                Ok(0) => (
                    (StatusCode::NO_CONTENT, String::new()),
                    Delivery::NotFollowed,
                ),
                Ok(_) => (
                    (StatusCode::ACCEPTED, "accepted\n".into()),
                    Delivery::Accepted,
                ),
                Err(e) => {
                    tracing::error!(error = %e, "cannot record a check event; answering 503 so that GitHub's Redeliver works");
                    (
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "storage unavailable; redeliver later\n".into(),
                        ),
                        Delivery::Unavailable,
                    )
                }
            }
        }
        event => {
            let Some(work) = Work::of(event) else {
                return ((StatusCode::NO_CONTENT, String::new()), Delivery::Ignored);
            };
            match state.inbox.admit(delivery.delivery.clone(), work).await {
                Ok(Admission::Accepted) => (
                    (StatusCode::ACCEPTED, "accepted\n".into()),
                    Delivery::Accepted,
                ),
                Ok(Admission::NotFollowed) => (
                    (StatusCode::NO_CONTENT, String::new()),
                    Delivery::NotFollowed,
                ),
                Ok(Admission::Duplicate) => (
                    (
                        StatusCode::OK,
                        "duplicate delivery, already processed\n".into(),
                    ),
                    Delivery::Duplicate,
                ),
                Err(e) => {
                    tracing::error!(error = %e, "cannot record a delivery; answering 503 so that GitHub's Redeliver works");
                    (
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "storage unavailable; redeliver later\n".into(),
                        ),
                        Delivery::Unavailable,
                    )
                }
            }
        }
    }
}

pub fn router(
    path: &str,
    secret: SecretString,
    inbox: Inbox,
    waits: Follow,
    metrics: Arc<Metrics>,
) -> Router {
    let state = AppState {
        secret: Arc::new(secret),
        inbox,
        waits,
        metrics,
    };
    Router::new()
        .route(path, post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// A running webhook server.
pub struct Running {
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    redrive: tokio::task::JoinHandle<()>,
    inbox: Inbox,
}

impl Running {
    /// Stops serving at once; what was admitted stays in the inbox for the next start.
    pub fn abort(self) {
        self.server.abort();
        self.redrive.abort();
    }

    /// Waits for the server to stop (after `stop` fired) and, within `bound`, for the
    /// admitted events to be applied. A connection that does not finish within
    /// [`server::CLOSE`] is cut; events not applied in time are applied after the next
    /// start.
    pub async fn finished(self, bound: Duration) {
        server::finish(self.server).await;
        self.redrive.abort();
        if !self.inbox.drained(bound).await {
            tracing::info!(
                events = self.inbox.in_flight(),
                "stopping with webhook events not yet applied; they are applied at the next start"
            );
        }
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }
}

/// Binds `listen` and serves GitHub's deliveries on `path` into `inbox`, plus `extra`
/// routes (the operator's `/healthz`, `/readyz`, `/metrics` when they share this
/// listener), until `stop` becomes true. What a previous process left in the inbox
/// is applied first, then every [`REDRIVE_EVERY`] what a storage error left behind.
pub async fn start(
    config: &crate::config::WebhookConfig,
    inbox: Inbox,
    waits: Follow,
    metrics: Arc<Metrics>,
    extra: Router,
    stop: watch::Receiver<bool>,
) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let app = router(
        &config.path,
        config.secret.clone(),
        inbox.clone(),
        waits,
        metrics.clone(),
    )
    .merge(extra);
    let server = server::serve(listener, app, stop);
    let redriving = inbox.clone();
    let redrive = tokio::spawn(async move {
        let mut older_than = Duration::ZERO; // at start: everything left
        loop {
            loop {
                match redriving.redrive(older_than).await {
                    Ok(0) => break,
                    Ok(n) if redriving.shared() => {
                        tracing::debug!(n, "applying webhook events admitted by other instances")
                    }
                    Ok(n) => tracing::info!(n, "applying webhook events left in the inbox"),
                    Err(e) => {
                        metrics.background_failure("inbox");
                        tracing::warn!(error = %e, "cannot read the inbox; trying again in a few seconds");
                        break;
                    }
                }
                // Let the workers take what was handed before reading more.
                if !redriving.drained(REDRIVE_EVERY).await {
                    break;
                }
            }
            // A shared store (PostgreSQL): what other instances admitted is applied
            // here (when this one leads) within a fraction of a second.
            if redriving.shared() {
                // Past what this instance admitted and is applying right now.
                older_than = SHARED_REDRIVE_EVERY * 2;
                tokio::time::sleep(SHARED_REDRIVE_EVERY).await;
            } else {
                older_than = REDRIVE_AFTER;
                tokio::time::sleep(REDRIVE_EVERY).await;
            }
        }
    });
    Ok(Running {
        addr,
        server,
        redrive,
        inbox,
    })
}
