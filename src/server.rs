//! The one place HTTP listeners are served from (the webhook and the operator's
//! endpoints), so that what every listener needs — graceful shutdown, and the limits
//! that keep strangers from tying it up — is written once.

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Serves `app` on `listener` until `stop` becomes true, then finishes the requests
/// in flight.
pub fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "HTTP listener stopped");
        }
    })
}

/// How long a stopping listener waits for its open connections.
pub const CLOSE: std::time::Duration = std::time::Duration::from_secs(5);

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
