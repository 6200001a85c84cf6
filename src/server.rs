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
