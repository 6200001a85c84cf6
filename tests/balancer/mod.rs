//! A load balancer on loopback in front of several instances' webhook servers: each
//! request goes to the next instance in turn (round robin), as GitHub's deliveries
//! would through a real one. A request that an instance does not answer (killed) is
//! sent to the next, as a balancer's retry would; when none answers, 502.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

struct Inner {
    backends: Mutex<Vec<String>>,
    next: AtomicUsize,
    client: reqwest::Client,
    /// (backend index, status) of every forwarded request, in order.
    log: Mutex<Vec<(usize, u16)>>,
}

#[derive(Clone)]
pub struct Balancer {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
}

impl Balancer {
    /// Starts one in front of these webhook URLs (`http://…/webhook`).
    pub async fn start(backends: Vec<String>) -> Balancer {
        let inner = Arc::new(Inner {
            backends: Mutex::new(backends),
            next: AtomicUsize::new(0),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("client"),
            log: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the balancer");
        let addr = listener.local_addr().expect("balancer addr");
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Balancer { inner, addr }
    }

    /// What GitHub's webhook points at.
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    /// (backend index, status) of every request forwarded, in order.
    pub fn log(&self) -> Vec<(usize, u16)> {
        self.inner.log.lock().unwrap().clone()
    }
}

async fn forward(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let backends = inner.backends.lock().unwrap().clone();
    let first = inner.next.fetch_add(1, Ordering::SeqCst);
    for i in 0..backends.len() {
        let index = (first + i) % backends.len();
        let mut req = inner.client.post(&backends[index]).body(body.clone());
        for (k, v) in &headers {
            if k != "host" && k != "content-length" {
                req = req.header(k, v);
            }
        }
        // A request that got no answer at all (the connection refused, or reset by
        // an instance killed while it had it) goes to the next instance, like nginx's
        // `proxy_next_upstream error non_idempotent`: a webhook delivery is safe to
        // send twice (its delivery id makes the repeat a duplicate). An instance that
        // answered (even 503) answered.
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let bytes = r.bytes().await.unwrap_or_default();
                inner.log.lock().unwrap().push((index, status));
                return (
                    StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                    bytes,
                )
                    .into_response();
            }
            Err(e) if !e.is_timeout() => continue,
            Err(_) => {
                inner.log.lock().unwrap().push((index, 504));
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}
