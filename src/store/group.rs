//! Group commit: one writer writes the webhook path's rows (admitted deliveries, tracked
//! records, applied inbox entries) for everyone, all that arrived while the previous
//! commit ran in one transaction. Durability then costs one commit per batch, not
//! per delivery, and SQLite's single writer never waits in its busy handler for
//! another pooled connection of the same process.
//!
//! Callers await the answer to their write: when it comes, the write is committed
//! (or the whole batch failed, and every caller of it gets the error).
//!
//! Who gathers: a backend whose commits run on a thread of its own (SQLite) takes the
//! queue there ([`Store::gathers`]): the thread waits for a write, takes what else is
//! queued, commits and answers each caller, with no task in between ([`serve`]).
//! Otherwise (PostgreSQL) a task does the same around [`Store::write`]. Both gather
//! and answer with the same code ([`gather`], [`answer`]).

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, Write, Written};
use crate::metrics::Metrics;

/// The most writes one transaction takes; more wait for the next.
pub const MAX_BATCH: usize = 2048;
/// Writes waiting for the writer before callers wait to queue theirs.
pub(super) const QUEUE: usize = 16 * 1024;

/// Who awaits a write's answer.
pub type Answer = oneshot::Sender<Result<Written, String>>;

/// What the group commit's queue carries.
pub enum Job {
    /// One write of the group commit, and who awaits its answer (none: nobody waits).
    One(Write, Option<Answer>),
    /// A whole batch, committed on its own and answered together ([`Store::write`], on
    /// a backend that gathers the queue itself).
    Batch(
        Vec<Write>,
        oneshot::Sender<Result<Vec<Written>, StoreError>>,
    ),
}

/// A handle on the writer (the backend's thread, or a task started on first use, inside
/// the runtime). Cheap to clone.
#[derive(Clone)]
pub struct GroupWriter {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    queue: OnceLock<mpsc::Sender<Job>>,
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

    fn queue(&self) -> &mpsc::Sender<Job> {
        self.inner.queue.get_or_init(|| {
            if let Some(tx) = self.inner.store.gathers(self.inner.metrics.clone()) {
                return tx;
            }
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
            .send(Job::One(w, Some(tx)))
            .await
            .map_err(|_| StoreError("the store writer has stopped".into()))?;
        Ok(Pending(rx))
    }

    /// Queues `w` for the next commit without waiting for it (an applied inbox entry:
    /// losing it in a crash only means applying the event again, which changes nothing).
    pub async fn write_later(&self, w: Write) {
        let _ = self.queue().send(Job::One(w, None)).await;
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

/// What one commit serves.
enum Gathered {
    /// Writes of the group commit and who awaits each, and the job that ended the
    /// gathering if it was not one of them (served next).
    Group {
        writes: Vec<Write>,
        answers: Vec<Option<Answer>>,
        next: Option<Job>,
    },
    /// A whole batch, answered together.
    Whole(
        Vec<Write>,
        oneshot::Sender<Result<Vec<Written>, StoreError>>,
    ),
}

/// What `first` starts: with a single write, it and every write already queued
/// (`queued` yields them without waiting), up to [`MAX_BATCH`].
fn gather(first: Job, mut queued: impl FnMut() -> Option<Job>) -> Gathered {
    let (w, answer) = match first {
        Job::One(w, answer) => (w, answer),
        Job::Batch(writes, answered) => return Gathered::Whole(writes, answered),
    };
    let (mut writes, mut answers) = (vec![w], vec![answer]);
    let mut next = None;
    while writes.len() < MAX_BATCH {
        match queued() {
            Some(Job::One(w, answer)) => {
                writes.push(w);
                answers.push(answer);
            }
            other => {
                next = other;
                break;
            }
        }
    }
    Gathered::Group {
        writes,
        answers,
        next,
    }
}

/// Answers each caller of a committed (or failed) batch.
fn answer(answers: Vec<Option<Answer>>, result: Result<Vec<Written>, StoreError>) {
    match result {
        Ok(written) => {
            for (answer, w) in answers.into_iter().zip(written) {
                if let Some(answer) = answer {
                    let _ = answer.send(Ok(w));
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, writes = answers.len(), "a group commit failed");
            let e = e.0;
            for answer in answers.into_iter().flatten() {
                let _ = answer.send(Err(e.clone()));
            }
        }
    }
}

/// The group commit on a backend's own thread ([`Store::gathers`]): serves `queue`
/// until every sender is gone, committing with `commit`. Blocks: not for a runtime's
/// thread.
pub(super) fn serve(
    mut queue: mpsc::Receiver<Job>,
    mut commit: impl FnMut(&[Write]) -> Result<Vec<Written>, StoreError>,
    mut record: impl FnMut(usize, std::time::Duration),
) {
    let mut next = None;
    loop {
        let Some(job) = next.take().or_else(|| queue.blocking_recv()) else {
            return;
        };
        match gather(job, || queue.try_recv().ok()) {
            Gathered::Group {
                writes,
                answers,
                next: after,
            } => {
                next = after;
                let started = std::time::Instant::now();
                let result = commit(&writes);
                record(writes.len(), started.elapsed());
                answer(answers, result);
            }
            Gathered::Whole(writes, answered) => {
                let _ = answered.send(commit(&writes));
            }
        }
    }
}

/// The group commit in a task, for a backend that does not gather itself.
async fn run(store: Arc<dyn Store>, metrics: Arc<Metrics>, mut queue: mpsc::Receiver<Job>) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match queue.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        match gather(job, || queue.try_recv().ok()) {
            Gathered::Group {
                writes,
                answers,
                next: after,
            } => {
                next = after;
                let started = std::time::Instant::now();
                let size = writes.len();
                let result = store.write(writes).await;
                metrics.store_commit(size, started.elapsed());
                answer(answers, result);
            }
            Gathered::Whole(writes, answered) => {
                let _ = answered.send(store.write(writes).await);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(key: &str) -> Write {
        Write::Applied(key.into())
    }

    fn key(w: &Write) -> String {
        match w {
            Write::Applied(k) => k.clone(),
            _ => unreachable!("the tests queue only `Applied`"),
        }
    }

    /// The writer thread's loop, with a commit that records what each batch held:
    /// single writes queued together are one commit, a whole batch between them ends
    /// the group and is committed on its own, in queue order, and each caller gets the
    /// answer of its own write.
    #[tokio::test]
    async fn a_thread_serving_the_queue_groups_single_writes_and_keeps_whole_batches_apart() {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (mut ones, mut answers) = (Vec::new(), Vec::new());
        for k in ["a", "b"] {
            let (answer, answered) = oneshot::channel();
            tx.send(Job::One(applied(k), Some(answer))).await.unwrap();
            ones.push(answered);
        }
        let (whole, whole_answered) = oneshot::channel();
        tx.send(Job::Batch(vec![applied("c"), applied("d")], whole))
            .await
            .unwrap();
        let (answer, answered) = oneshot::channel();
        tx.send(Job::One(applied("e"), Some(answer))).await.unwrap();
        ones.push(answered);
        tx.send(Job::One(applied("f"), None)).await.unwrap();
        drop(tx);
        let commits = std::thread::spawn(move || {
            let mut commits = Vec::new();
            let mut recorded = Vec::new();
            serve(
                rx,
                |batch| {
                    commits.push(batch.iter().map(key).collect::<Vec<_>>());
                    Ok(vec![Written::Done; batch.len()])
                },
                |writes, _| recorded.push(writes),
            );
            (commits, recorded)
        })
        .join()
        .unwrap();
        assert_eq!(
            commits.0,
            vec![vec!["a", "b"], vec!["c", "d"], vec!["e", "f"]],
            "what each commit held"
        );
        assert_eq!(
            commits.1,
            vec![2, 2],
            "the group commits are recorded, not the batch"
        );
        for answered in ones {
            answers.push(answered.await.unwrap());
        }
        assert_eq!(answers, vec![Ok(Written::Done); 3]);
        assert_eq!(
            whole_answered.await.unwrap().unwrap(),
            vec![Written::Done; 2]
        );
    }

    /// A failed commit answers every caller of its batch with the error.
    #[tokio::test]
    async fn a_failed_commit_answers_each_of_its_callers_with_the_error() {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut waiting = Vec::new();
        for k in ["a", "b"] {
            let (answer, answered) = oneshot::channel();
            tx.send(Job::One(applied(k), Some(answer))).await.unwrap();
            waiting.push(answered);
        }
        drop(tx);
        std::thread::spawn(move || {
            serve(rx, |_| Err(StoreError("disk full".into())), |_, _| {});
        })
        .join()
        .unwrap();
        for answered in waiting {
            assert_eq!(answered.await.unwrap(), Err("disk full".to_string()));
        }
    }
}
