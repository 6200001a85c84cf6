//! The operator's endpoints (axum): `GET /healthz`, `GET /readyz`, `GET /metrics`.
//! Thin handlers: the core answers ([`Bot::readiness`], [`Bot::metrics_text`]).
//!
//! They live on the webhook listener, or on their own when `[metrics] listen` is set
//! (to keep them off the address GitHub reaches).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::bot::Bot;
use crate::metrics::CONTENT_TYPE;

pub fn router(bot: Bot) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(bot)
}

/// The process is alive and serving HTTP: nothing else is checked, so a slow
/// dependency never gets a healthy process restarted.
async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when storage, chat and GitHub are all ready; 503 with each one's state
/// otherwise, so the body says what is not ready.
async fn readyz(State(bot): State<Bot>) -> Response {
    let readiness = bot.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness)).into_response()
}

async fn metrics(State(bot): State<Bot>) -> Response {
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        bot.metrics_text().await,
    )
        .into_response()
}
