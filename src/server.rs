//! The one place HTTP listeners are served from (the webhook and the operator's
//! endpoints), so that what every listener needs is written once: graceful, bounded
//! shutdown, and the limits that keep strangers from tying the process up.
//!
//! - A client has [`HEADER_TIMEOUT`] to send a request's headers (an idle kept-alive
//!   connection too), and [`REQUEST_TIMEOUT`] for the whole request, body included,
//!   so a half-sent request or a slowloris connection is closed, not kept.
//! - One client address holds at most [`PER_CLIENT`] connections; more are closed as
//!   soon as they are accepted, so a single host cannot fill the listener (GitHub's
//!   deliveries come from many addresses, each with few connections).
//! - At most [`max_connections`] connections are served at once; more wait in the
//!   kernel's backlog instead of taking file descriptors. The cap is derived from the
//!   process's descriptor limit (raised to the hard limit at start, see
//!   [`raise_fd_limit`]), leaving room for the store, GitHub and Discord, so a flood on
//!   the webhook side never starves chat commands or the database of descriptors.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_http::timeout::TimeoutLayer;

/// Time to send a request's headers, from the connection's first byte (or the end of
/// the previous request on a kept-alive connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole request, body included. GitHub sends a delivery at once.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a stopping listener waits for its open connections.
pub const CLOSE: Duration = Duration::from_secs(5);
/// Connections served at once, at most (fewer when descriptors are scarce).
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one client address may hold open at once.
pub const PER_CLIENT: usize = 64;
/// Descriptors kept for everything but HTTP clients: the store's pool, GitHub and
/// Discord connections, files.
const RESERVED_FDS: u64 = 128;

/// Raises the soft limit on open files to the hard limit (the common soft limit of
/// 1,024 is easy to exhaust with idle connections). Returns the soft limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        let (soft, hard) = rlimit::getrlimit(Resource::NOFILE).ok()?;
        if soft < hard {
            match rlimit::setrlimit(Resource::NOFILE, hard, hard) {
                Ok(()) => return Some(hard),
                Err(e) => {
                    tracing::warn!(soft, hard, error = %e, "cannot raise the open files limit")
                }
            }
        }
        Some(soft)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap for this process: [`MAX_CONNECTIONS`], or fewer so that the
/// descriptor limit keeps [`RESERVED_FDS`] free. Shared by every listener.
pub fn max_connections() -> usize {
    #[cfg(unix)]
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft);
    #[cfg(not(unix))]
    let limit: Option<u64> = None;
    match limit {
        Some(soft) => {
            let room = soft.saturating_sub(RESERVED_FDS).max(16);
            usize::try_from(room)
                .unwrap_or(MAX_CONNECTIONS)
                .min(MAX_CONNECTIONS)
        }
        None => MAX_CONNECTIONS,
    }
}

/// Serves `app` on `listener` until `stop` becomes true, then finishes the requests
/// in flight (see [`finish`] for the bound).
pub fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let app = app.layer(TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        REQUEST_TIMEOUT,
    ));
    let permits = Arc::new(Semaphore::new(max_connections()));
    tokio::spawn(async move {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        let graceful = GracefulShutdown::new();
        let clients: Arc<DashMap<IpAddr, usize>> = Arc::new(DashMap::new());
        let mut shed: u64 = 0;
        loop {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = stop.wait_for(|s| *s) => break,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|s| *s) => break,
            };
            let (stream, client) = match accepted {
                Ok((stream, peer)) => (stream, peer.ip()),
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(slot) = ClientSlot::take(&clients, client) else {
                shed += 1;
                if shed.is_power_of_two() {
                    tracing::warn!(%client, shed, "closing connections over the per-client limit of {PER_CLIENT}");
                }
                drop(stream);
                continue;
            };
            let service = TowerToHyperService::new(app.clone());
            let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                let _ = connection.await;
                drop(slot);
                drop(permit);
            });
        }
        drop(listener);
        graceful.shutdown().await;
    })
}

/// One of a client address's [`PER_CLIENT`] connections, given back on drop.
struct ClientSlot {
    clients: Arc<DashMap<IpAddr, usize>>,
    client: IpAddr,
}

impl ClientSlot {
    fn take(clients: &Arc<DashMap<IpAddr, usize>>, client: IpAddr) -> Option<ClientSlot> {
        let mut open = clients.entry(client).or_insert(0);
        if *open >= PER_CLIENT {
            return None;
        }
        *open += 1;
        Some(ClientSlot {
            clients: clients.clone(),
            client,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.clients.remove_if_mut(&self.client, |_, open| {
            *open -= 1;
            *open == 0
        });
    }
}

/// Waits for a listener started by [`serve`] to finish after its `stop` fired; cuts the
/// connections still open after [`CLOSE`] (a client that never finishes its request
/// must not keep the process from stopping).
pub async fn finish(mut server: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(CLOSE, &mut server).await.is_err() {
        tracing::warn!(
            "HTTP connections still open {}s after the stop; closing them",
            CLOSE.as_secs()
        );
        server.abort();
    }
}
