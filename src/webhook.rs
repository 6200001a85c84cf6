//! The webhook server (axum): GitHub's deliveries in, tracker events out.
//!
//! A thin edge. [`Verified`] is an extractor that reads the raw body (bounded) and
//! checks `X-Hub-Signature-256` before any handler sees it; the handler parses the
//! event, drops redeliveries (persisted `X-GitHub-Delivery` ids) and queues the work.
//! No chat or GitHub I/O happens inside a request, so GitHub's 10-second deadline is
//! always met; a worker task feeds the queue to the [`Tracker`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::github::events::{verify_signature, Event};
use crate::metrics::{Delivery, Metrics};
use crate::server;
use crate::store::Store;
use crate::tracker::Tracker;

/// GitHub caps payloads at 25 MB; deployment events are a few KB.
pub const MAX_BODY: usize = 1024 * 1024;
/// Delivery ids remembered for de-duplication.
pub const DELIVERIES_KEPT: u32 = 10_000;
const QUEUE: usize = 1024;

#[derive(Clone)]
struct AppState {
    secret: Arc<SecretString>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queue: mpsc::Sender<Queued>,
    metrics: Arc<Metrics>,
}

/// An event waiting for the tracker, with the delivery id to forget if it fails.
pub struct Queued {
    pub delivery: Option<String>,
    pub event: Event,
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
        let headers = req.headers().clone();
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
        event => {
            if let Some(id) = &delivery.delivery {
                match state
                    .store
                    .first_delivery(id, state.clock.now(), DELIVERIES_KEPT)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        return (
                            (
                                StatusCode::OK,
                                "duplicate delivery, already processed\n".into(),
                            ),
                            Delivery::Duplicate,
                        )
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot record a delivery");
                        return (
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                "storage unavailable; redeliver later\n".into(),
                            ),
                            Delivery::Unavailable,
                        );
                    }
                }
            }
            // Bounded well under GitHub's 10 s deadline. A delivery that is not queued
            // is forgotten, so that redelivering it works.
            let queued = Queued {
                delivery: delivery.delivery.clone(),
                event,
            };
            // Counted before it is sent, so the worker can never take it off first.
            state.metrics.tracker_queued();
            match state
                .queue
                .send_timeout(queued, Duration::from_secs(2))
                .await
            {
                Ok(()) => (
                    (StatusCode::ACCEPTED, "accepted\n".into()),
                    Delivery::Accepted,
                ),
                Err(_) => {
                    state.metrics.tracker_unqueued();
                    if let Some(id) = &delivery.delivery {
                        let _ = state.store.forget_delivery(id).await;
                    }
                    (
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "busy; redeliver later\n".into(),
                        ),
                        Delivery::Unavailable,
                    )
                }
            }
        }
    }
}

/// Feeds queued events to the tracker, one at a time, in arrival order. An event that
/// fails (storage trouble) has its delivery id forgotten: GitHub's "Redeliver" then
/// works, and the restart catch-up covers the rest.
async fn work(
    tracker: Tracker,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    mut queue: mpsc::Receiver<Queued>,
) {
    while let Some(Queued { delivery, event }) = queue.recv().await {
        let started = std::time::Instant::now();
        let result = match &event {
            Event::DeploymentStatus(e) => match e.repository.name() {
                Some(repo) => tracker
                    .status(&repo, e.deployment.id, Some(&e.deployment), &e.deployment_status)
                    .await
                    .map(|applied| {
                        tracing::debug!(id = %e.deployment.id, state = %e.deployment_status.state, ?applied, "status")
                    }),
                None => Ok(()),
            },
            Event::Deployment(e) => match e.repository.name() {
                Some(repo) => tracker.deployment_created(&repo, &e.deployment).await,
                None => Ok(()),
            },
            Event::Ping(_) | Event::Ignored(_) => Ok(()),
        };
        metrics.tracker_applied(started.elapsed());
        if let Err(e) = result {
            tracing::error!(error = %e, ?delivery, "could not apply a webhook event; it can be redelivered");
            if let Some(id) = &delivery {
                let _ = store.forget_delivery(id).await;
            }
        }
    }
}

pub fn router(
    path: &str,
    secret: SecretString,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    queue: mpsc::Sender<Queued>,
    metrics: Arc<Metrics>,
) -> Router {
    let state = AppState {
        secret: Arc::new(secret),
        store,
        clock,
        queue,
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
    worker: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops serving at once, dropping queued events.
    pub fn abort(self) {
        self.server.abort();
        self.worker.abort();
    }

    /// Waits for the server to stop (after `stop` fired) and the queue to drain. A
    /// connection that does not finish within [`server::CLOSE`] is cut.
    pub async fn finished(self) {
        server::finish(self.server).await;
        let _ = self.worker.await;
    }
}

/// Binds `listen` and serves GitHub's deliveries on `path`, plus `extra` routes (the
/// operator's `/healthz`, `/readyz`, `/metrics` when they share this listener), until
/// `stop` becomes true.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    listen: SocketAddr,
    path: &str,
    secret: SecretString,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    tracker: Tracker,
    metrics: Arc<Metrics>,
    extra: Router,
    stop: watch::Receiver<bool>,
) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let app = router(path, secret, store.clone(), clock, tx, metrics.clone()).merge(extra);
    let server = server::serve(listener, app, stop);
    let worker = tokio::spawn(work(tracker, store, metrics, rx));
    Ok(Running {
        addr,
        server,
        worker,
    })
}
