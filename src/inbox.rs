//! The durable inbox between the webhook server and the tracker.
//!
//! A delivery is answered 2xx only once its event and its delivery id are committed
//! ([`Inbox::admit`], through the group commit of [`GroupWriter`]). Admitted events
//! are applied by [`SHARDS`] workers: sharded by (repository, deployment id), so one
//! deployment's events are applied in arrival order and different deployments in
//! parallel. An applied event's inbox row is removed in a later commit; whatever is
//! left (the process died, or applying failed on a storage error) is applied again by
//! [`Inbox::redrive`], at start and then every few seconds. Applying an event twice
//! changes nothing: the tracker accepts only statuses that move a deployment forward.
//!
//! Most statuses never touch the inbox: one that moves a deployment the tracker holds
//! in memory forward is applied in its request ([`Tracker::status_on_arrival`]), its
//! record committed with its delivery id, and answered 2xx only after that commit.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::{DashMap, DashSet};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Notify};

use crate::clock::Clock;
use crate::github::events::Event;
use crate::github::{Deployment, DeploymentStatus};
use crate::lease::Lease;
use crate::metrics::Metrics;
use crate::model::RepoName;
use crate::store::group::GroupWriter;
use crate::store::{Arrival, Store, StoreError, Write, Written, GENERATED_KEY};
use crate::tracker::{OnArrival, Tracker};

/// Workers applying events; a deployment's events always go to the same one.
pub const SHARDS: usize = 64;
/// The longest a delivery waits for its commit before it is answered 503 (GitHub
/// stops waiting at 10 s).
const ANSWER_WITHIN: Duration = Duration::from_secs(8);
/// Events waiting per worker before admission waits for room.
const SHARD_QUEUE: usize = 1024;
/// How long an admitted delivery waits for room in its worker's queue before it is
/// left to [`Inbox::redrive`] (it is committed: answering 2xx is right either way).
const DISPATCH_WAIT: Duration = Duration::from_secs(1);
/// Inbox rows at least this old that no worker holds are applied again.
pub const REDRIVE_AFTER: Duration = Duration::from_secs(30);
/// Rows read per redrive round.
const REDRIVE_BATCH: u32 = 1000;

/// What the tracker needs of a deployment event: this is what the inbox keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// A `deployment_status` event.
    Status {
        repository: String,
        deployment: Box<Deployment>,
        status: Box<DeploymentStatus>,
    },
    /// A `deployment` event.
    Created {
        repository: String,
        deployment: Box<Deployment>,
    },
}

impl Work {
    /// The work in a parsed delivery; `None` for events the tracker does not apply.
    pub fn of(event: Event) -> Option<Work> {
        match event {
            Event::DeploymentStatus(e) => Some(Work::Status {
                repository: e.repository.full_name,
                deployment: Box::new(e.deployment),
                status: Box::new(e.deployment_status),
            }),
            Event::Deployment(e) => Some(Work::Created {
                repository: e.repository.full_name,
                deployment: Box::new(e.deployment),
            }),
            Event::Ping(_) | Event::Ignored(_) | Event::Checks(_) => None,
        }
    }

    /// Whether applying it could change anything (decided from the config alone).
    fn followed_by(&self, tracker: &Tracker) -> bool {
        let (Work::Status {
            repository,
            deployment,
            ..
        }
        | Work::Created {
            repository,
            deployment,
        }) = self;
        RepoName::parse(repository).is_some_and(|repo| tracker.follows(&repo, deployment))
    }

    fn shard(&self) -> usize {
        let (repo, id) = match self {
            Work::Status {
                repository,
                deployment,
                ..
            }
            | Work::Created {
                repository,
                deployment,
            } => (repository, deployment.id),
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        repo.to_ascii_lowercase().hash(&mut h);
        id.hash(&mut h);
        (h.finish() % SHARDS as u64) as usize
    }

    /// Applies the event to the tracker.
    pub async fn apply(&self, tracker: &Tracker) -> Result<(), StoreError> {
        match self {
            Work::Status {
                repository,
                deployment,
                status,
            } => {
                let Some(repo) = RepoName::parse(repository) else {
                    return Ok(());
                };
                let applied = tracker
                    .status(&repo, deployment.id, Some(deployment), status)
                    .await?;
                tracing::debug!(id = %deployment.id, state = %status.state, ?applied, "status");
                Ok(())
            }
            Work::Created {
                repository,
                deployment,
            } => match RepoName::parse(repository) {
                Some(repo) => tracker.deployment_created(&repo, deployment).await,
                None => Ok(()),
            },
        }
    }
}

/// What became of a delivery offered to the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Committed; it will be applied.
    Accepted,
    /// Its delivery id was seen before: nothing to do.
    Duplicate,
    /// Nothing deploybot follows (see [`Tracker::follows`]): not stored, nothing to do.
    NotFollowed,
}

struct Job {
    key: String,
    work: Work,
}

/// Cheap to clone; clones share the workers.
#[derive(Clone)]
pub struct Inbox {
    inner: Arc<Inner>,
}

struct Inner {
    tracker: Tracker,
    /// Only the leader applies events (one applier keeps the tracker's in-memory
    /// records right); another instance admits them and leaves them for it.
    lease: Lease,
    /// Keys whose apply failed, and when: retried after [`REDRIVE_AFTER`], not at
    /// once by the next round.
    failed: DashMap<String, std::time::Instant>,
    writer: GroupWriter,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    shards: Vec<mpsc::Sender<Job>>,
    /// Keys admitted (or being admitted) and not yet applied by a worker.
    in_flight: DashSet<String>,
    idle: Notify,
    generated: AtomicU64,
    /// Set by [`Inbox::halt`]: workers apply nothing more.
    halted: AtomicBool,
}

impl Inbox {
    /// Starts the workers (inside the runtime).
    pub fn start(
        tracker: Tracker,
        lease: Lease,
        writer: GroupWriter,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Inbox {
        let mut shards = Vec::with_capacity(SHARDS);
        let mut queues = Vec::with_capacity(SHARDS);
        for _ in 0..SHARDS {
            let (tx, rx) = mpsc::channel(SHARD_QUEUE);
            shards.push(tx);
            queues.push(rx);
        }
        let inbox = Inbox {
            inner: Arc::new(Inner {
                tracker: tracker.clone(),
                lease,
                failed: DashMap::new(),
                writer,
                store,
                clock,
                metrics,
                shards,
                in_flight: DashSet::new(),
                idle: Notify::new(),
                generated: AtomicU64::new(0),
                halted: AtomicBool::new(false),
            }),
        };
        for queue in queues {
            tokio::spawn(work(inbox.clone(), tracker.clone(), queue));
        }
        inbox
    }

    /// Commits a delivery's event (unless its id was seen), then hands it to its
    /// worker. An error means the delivery should be sent again: nothing was kept, or
    /// (a store slower than [`ANSWER_WITHIN`]) what it commits late is applied then,
    /// and the redelivery is a duplicate.
    pub async fn admit(
        &self,
        delivery: Option<String>,
        work: Work,
    ) -> Result<Admission, StoreError> {
        // Most of an organisation's deployment events are not deploybot's business:
        // they are answered without storing anything.
        if !work.followed_by(&self.inner.tracker) {
            return Ok(Admission::NotFollowed);
        }
        let key = match &delivery {
            Some(id) => id.clone(),
            None => format!(
                "{GENERATED_KEY}{}-{}",
                self.inner.clock.now().timestamp_micros(),
                self.inner.generated.fetch_add(1, Ordering::Relaxed)
            ),
        };
        // Held before the commit, so a redrive round never takes it at the same time.
        if !self.inner.in_flight.insert(key.clone()) {
            return Ok(Admission::Duplicate); // the same id racing itself
        }
        // Released however this ends, even when the request is dropped half-way (the
        // sender hung up): a row committed meanwhile is then left to the redrive.
        let held = Held {
            inbox: self.clone(),
            key: Some(key.clone()),
        };
        // GitHub gives up on an answer after 10 s. A store that is stuck (locked by
        // another process, each write waiting out the busy timeout) gets an answer in
        // time: 503, so that the delivery shows as failed and can be redelivered. A
        // write already queued goes on by itself, so it still ends one way or the
        // other: committed (and applied once: a redelivery is a duplicate) or not kept.
        let deadline = tokio::time::Instant::now() + ANSWER_WITHIN;
        let late = || {
            StoreError(format!(
                "the store did not commit the delivery within {}s",
                ANSWER_WITHIN.as_secs()
            ))
        };
        // Most statuses move a deployment the tracker holds in memory forward: applied
        // here, committed with the delivery id, with no inbox row to write and remove.
        let work = match self.apply_on_arrival(work, &delivery, deadline).await {
            Ok(answered) => {
                drop(held);
                return answered.map_err(|late_or_failed| late_or_failed.unwrap_or_else(late));
            }
            Err(work) => work,
        };
        let arrival = Arrival {
            key,
            delivery,
            event: serde_json::to_string(&work)?,
            at: self.inner.clock.now(),
        };
        let mut pending =
            tokio::time::timeout_at(deadline, self.inner.writer.submit(Write::Admit(arrival)))
                .await
                .map_err(|_| late())??;
        match tokio::time::timeout_at(deadline, &mut pending).await {
            Ok(written) => Ok(self.hand_over(written?, held, work).await),
            Err(_) => {
                let inbox = self.clone();
                tokio::spawn(async move {
                    if let Ok(written) = pending.await {
                        inbox.hand_over(written, held, work).await;
                    }
                });
                Err(late())
            }
        }
    }

    /// [`Tracker::status_on_arrival`], when this instance applies events. `Err` gives
    /// the work back when it is left to the inbox. Else the answer: an error is `None`
    /// when the commit was not done by `deadline` (it goes on by itself: applied then,
    /// and the redelivery is a duplicate), else the store's.
    async fn apply_on_arrival(
        &self,
        work: Work,
        delivery: &Option<String>,
        deadline: tokio::time::Instant,
    ) -> Result<Result<Admission, Option<StoreError>>, Work> {
        let Work::Status {
            repository,
            deployment,
            status,
        } = work
        else {
            return Err(work);
        };
        let id = deployment.id;
        let repo = RepoName::parse(&repository)
            .filter(|_| self.applies() && !self.inner.halted.load(Ordering::SeqCst));
        let back = move |status| Work::Status {
            repository,
            deployment,
            status,
        };
        let Some(repo) = repo else {
            return Err(back(status));
        };
        let started = std::time::Instant::now();
        let mut applying = Box::pin(self.inner.tracker.clone().status_on_arrival(
            repo,
            id,
            status,
            delivery.clone(),
        ));
        let answer = match tokio::time::timeout_at(deadline, &mut applying).await {
            Ok(OnArrival::Left(status)) => return Err(back(status)),
            Ok(OnArrival::Applied(Ok(Written::Admitted))) => Ok(Admission::Accepted),
            Ok(OnArrival::Applied(Ok(_))) => Ok(Admission::Duplicate),
            Ok(OnArrival::Applied(Err(e))) => Err(Some(e)),
            Err(_) => {
                tokio::spawn(applying);
                Err(None)
            }
        };
        // Counted once committed (what failed or is late was not applied, yet).
        if answer.is_ok() {
            self.inner
                .metrics
                .tracker_applied_on_arrival(started.elapsed());
        }
        Ok(answer)
    }

    /// After the admission's commit: a new event goes to its worker, if this instance
    /// applies events (else the leader applies it).
    async fn hand_over(&self, written: Written, held: Held, work: Work) -> Admission {
        if written != Written::Admitted {
            return Admission::Duplicate;
        }
        if self.applies() {
            self.dispatch(held, work).await;
        }
        Admission::Accepted
    }

    /// Hands a committed event to its worker, which releases its key once applied.
    /// Without room in time (or when the caller is dropped while waiting) the key is
    /// released here: committed, so not lost, the next redrive round applies it.
    async fn dispatch(&self, held: Held, work: Work) {
        let shard = &self.inner.shards[work.shard()];
        if let Ok(Ok(room)) = tokio::time::timeout(DISPATCH_WAIT, shard.reserve()).await {
            self.inner.metrics.tracker_queued();
            room.send(Job {
                key: held.handed_over(),
                work,
            });
        }
    }

    fn release(&self, key: &str) {
        self.inner.in_flight.remove(key);
        if self.inner.in_flight.is_empty() {
            self.inner.idle.notify_waiters();
        }
    }

    /// Whether this instance applies events now (it leads; always, on SQLite).
    pub fn applies(&self) -> bool {
        self.inner.lease.is_leader()
    }

    /// Whether other instances admit events into the same store (PostgreSQL).
    pub fn shared(&self) -> bool {
        self.inner.lease.shared()
    }

    /// Applies again what is in the inbox, received more than `older_than` ago and not
    /// held by a worker: events a crash or a storage error left unapplied, or (with a
    /// shared store) that another instance admitted. Nothing on an instance that does
    /// not apply events; an event whose apply failed waits [`REDRIVE_AFTER`]. Returns
    /// how many were handed to the workers.
    pub async fn redrive(&self, older_than: Duration) -> Result<usize, StoreError> {
        if !self.applies() {
            return Ok(0);
        }
        let before = crate::clock::earlier(self.inner.clock.now(), older_than);
        let mut handed = 0;
        self.inner
            .failed
            .retain(|_, at| at.elapsed() < REDRIVE_AFTER);
        for arrival in self.inner.store.inbox(before, REDRIVE_BATCH).await? {
            if self.inner.failed.contains_key(&arrival.key) {
                continue;
            }
            if !self.inner.in_flight.insert(arrival.key.clone()) {
                continue;
            }
            let held = Held {
                inbox: self.clone(),
                key: Some(arrival.key.clone()),
            };
            match serde_json::from_str::<Work>(&arrival.event) {
                Ok(work) => {
                    self.dispatch(held, work).await;
                    handed += 1;
                }
                Err(e) => {
                    // Written by another version and unreadable here: it would never apply.
                    tracing::error!(key = %arrival.key, error = %e, "dropping an inbox entry this version cannot read");
                    self.inner
                        .writer
                        .write_later(Write::Applied(arrival.key.clone()))
                        .await;
                    drop(held);
                }
            }
        }
        Ok(handed)
    }

    /// Waits (bounded) until no admitted event is waiting to be applied. `true` if so.
    pub async fn drained(&self, bound: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.in_flight.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.inner.in_flight.is_empty();
            }
        }
    }

    /// Stops applying events, as a dying process would (what is admitted stays in the
    /// inbox for the next start). For restart tests.
    pub fn halt(&self) {
        self.inner.halted.store(true, Ordering::SeqCst);
    }

    /// Events admitted and not yet applied by this process.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.len()
    }
}

/// An inbox key held in `in_flight` by an admission: released on drop unless handed
/// to a worker (which releases it once applied).
struct Held {
    inbox: Inbox,
    key: Option<String>,
}

impl Held {
    fn handed_over(mut self) -> String {
        self.key.take().unwrap_or_default()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.inbox.release(&key);
        }
    }
}

/// One worker: applies its shard's events in order. An event that fails (storage
/// trouble) stays in the inbox for the next redrive round.
async fn work(inbox: Inbox, tracker: Tracker, mut queue: mpsc::Receiver<Job>) {
    while let Some(Job { key, work }) = queue.recv().await {
        if inbox.inner.halted.load(Ordering::SeqCst) {
            return;
        }
        // Lost the lead since it was handed over: the new leader applies it.
        if !inbox.applies() {
            inbox.release(&key);
            continue;
        }
        let started = std::time::Instant::now();
        let result = work.apply(&tracker).await;
        inbox.inner.metrics.tracker_applied(started.elapsed());
        match result {
            Ok(()) => {
                inbox.inner.failed.remove(&key);
                inbox
                    .inner
                    .writer
                    .write_later(Write::Applied(key.clone()))
                    .await
            }
            Err(e) => {
                inbox
                    .inner
                    .failed
                    .insert(key.clone(), std::time::Instant::now());
                inbox.inner.metrics.background_failure("tracker");
                tracing::error!(error = %e, delivery = %key, "could not apply a webhook event; it stays in the inbox and is applied again within a minute");
            }
        }
        inbox.release(&key);
    }
}
