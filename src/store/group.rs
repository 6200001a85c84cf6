//! Group commit: one task writes the webhook path's rows (admitted deliveries, tracked
//! records, applied inbox entries) for everyone, all that arrived while the previous
//! commit ran in one transaction. Durability then costs one commit per batch, not
//! per delivery, and SQLite's single writer never waits in its busy handler for
//! another pooled connection of the same process.
//!
//! Callers await the answer to their write: when it comes, the write is committed
//! (or the whole batch failed, and every caller of it gets the error).

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, Write, Written};
use crate::metrics::Metrics;

/// The most writes one transaction takes; more wait for the next.
pub const MAX_BATCH: usize = 2048;
/// Writes waiting for the writer before callers wait to queue theirs.
const QUEUE: usize = 16 * 1024;

type Answer = oneshot::Sender<Result<Written, String>>;

/// A handle on the writer task (started on first use, inside the runtime). Cheap to
/// clone.
#[derive(Clone)]
pub struct GroupWriter {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    queue: OnceLock<mpsc::Sender<(Write, Option<Answer>)>>,
}

impl GroupWriter {
    pub fn new(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> GroupWriter {
        GroupWriter {
            inner: Arc::new(Inner {
                store,
                metrics,
                queue: OnceLock::new(),
            }),
        }
    }

    /// The store it writes to (for reads).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    fn queue(&self) -> &mpsc::Sender<(Write, Option<Answer>)> {
        self.inner.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(run(
                self.inner.store.clone(),
                self.inner.metrics.clone(),
                rx,
            ));
            tx
        })
    }

    /// Commits `w` with whatever else is waiting, and says what it did.
    pub async fn write(&self, w: Write) -> Result<Written, StoreError> {
        self.submit(w).await?.await
    }

    /// Queues `w` for the next commit, behind every write queued before it; the
    /// [`Pending`] is ready when it is committed. (What a caller queues in order is
    /// committed in that order.)
    pub async fn submit(&self, w: Write) -> Result<Pending, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.queue()
            .send((w, Some(tx)))
            .await
            .map_err(|_| StoreError("the store writer has stopped".into()))?;
        Ok(Pending(rx))
    }

    /// Queues `w` for the next commit without waiting for it (an applied inbox entry:
    /// losing it in a crash only means applying the event again, which changes nothing).
    pub async fn write_later(&self, w: Write) {
        let _ = self.queue().send((w, None)).await;
    }
}

/// A queued write's answer, from [`GroupWriter::submit`]: a future that is ready when
/// the write is committed (or its batch failed). Dropping it does not withdraw the
/// write.
pub struct Pending(oneshot::Receiver<Result<Written, String>>);

impl std::future::Future for Pending {
    type Output = Result<Written, StoreError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| match answer {
                Ok(Ok(written)) => Ok(written),
                Ok(Err(e)) => Err(StoreError(e)),
                Err(_) => Err(StoreError("the store writer has stopped".into())),
            })
    }
}

async fn run(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    mut queue: mpsc::Receiver<(Write, Option<Answer>)>,
) {
    let mut writes = Vec::new();
    let mut answers = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for one, then take everything that is already there.
        let Some((w, answer)) = queue.recv().await else {
            return;
        };
        writes.push(w);
        answers.push(answer);
        while writes.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok((w, answer)) => {
                    writes.push(w);
                    answers.push(answer);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let size = writes.len();
        let result = store.write(std::mem::take(&mut writes)).await;
        metrics.store_commit(size, started.elapsed());
        match result {
            Ok(written) => {
                for (answer, w) in answers.drain(..).zip(written) {
                    if let Some(answer) = answer {
                        let _ = answer.send(Ok(w));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, writes = size, "a group commit failed");
                let e = e.0;
                for answer in answers.drain(..).flatten() {
                    let _ = answer.send(Err(e.clone()));
                }
            }
        }
    }
}
