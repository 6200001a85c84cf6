//! The group commit's writes on SQLite ([`super::Store::write`]), on a thread of its
//! own with a connection of its own.
//!
//! sqlx runs each SQLite statement on a worker thread and hands it there and back
//! through channels: about 57 µs per statement on the development VM, so a batch of
//! four statements (begin, two inserts, commit) cost ~350 µs before SQLite did any
//! work. Here the whole batch is one hand-off: the thread runs it with cached prepared
//! statements (rusqlite, over the same `libsqlite3-sys` as sqlx) and answers; a single
//! admitted delivery commits in ~120 µs, hand-offs included (BENCHMARKS.md). Every
//! other statement of the store stays on sqlx.
//!
//! **Invariant:** a batch is one `BEGIN IMMEDIATE … COMMIT`, applied in batch order; on
//! any error nothing of it is kept and every caller of the batch gets the error.
//!
//! Checkpoints (copying the WAL back into the database file, with two `fsync`s) run on
//! a second thread with a connection of its own, never inside a commit: SQLite's
//! automatic checkpoint would run one in the commit that crosses 1,000 WAL pages, and
//! every delivery waiting for that commit would wait for the disk too (the p99 of
//! receipt → chat halved without them, BENCHMARKS.md). After commits, the checkpointer
//! waits [`CHECKPOINT_AFTER`] for more, then copies what is there without blocking the
//! writer (`PASSIVE`). Under load that never pauses, a passive checkpoint never
//! catches up with the writer, and SQLite only starts the WAL over once one has: past
//! [`RESTART_PAGES`] the checkpointer makes the writer wait for it (`RESTART`), so the
//! WAL stays bounded, and that wait copies only what the last passive one left.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use chrono::Utc;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::{Checkpoints, StoreError, Tracked, Write, Written};

/// How long the checkpointer gathers commits before it checkpoints them.
pub(super) const CHECKPOINT_AFTER: Duration = Duration::from_millis(100);
/// WAL pages (4 KiB each) past which a checkpoint waits for the writer so that the WAL
/// starts over: ~64 MiB.
pub(super) const RESTART_PAGES: i64 = 16_384;
/// How long a restarting checkpoint waits for the writer and readers. It blocks new
/// commits while it waits, so it gives up soon (and tries again after the next
/// commits) rather than hold the webhook path for the writer's busy timeout.
const RESTART_WAIT: Duration = Duration::from_millis(100);

type Job = (
    Vec<Write>,
    oneshot::Sender<Result<Vec<Written>, StoreError>>,
);

/// A handle on the writer thread; the thread ends (closing its connection) when the
/// handle is dropped, and the checkpointer's after its last round.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
    /// What the checkpointer has done (for `/metrics`; the tests wait on it).
    counts: Arc<Counts>,
}

/// The checkpointer's rounds so far ([`Checkpoints`]'s fields, and every round).
#[derive(Default)]
struct Counts {
    rounds: AtomicU64,
    caught_up: AtomicU64,
    partial: AtomicU64,
    failed: AtomicU64,
    pages_behind: AtomicU64,
}

impl Writer {
    /// Opens a connection on the database file at `path` (created and migrated by
    /// sqlx before this) and starts its thread, and the checkpointer's (which restarts
    /// the WAL past `restart_pages`: [`RESTART_PAGES`] but in tests).
    pub(super) fn open(
        path: &Path,
        busy_timeout: Duration,
        restart_pages: i64,
    ) -> Result<Writer, StoreError> {
        let failed = |e: rusqlite::Error| {
            StoreError(format!(
                "cannot open {} for the webhook writer: {e}",
                path.display()
            ))
        };
        let connect = || -> Result<Connection, StoreError> {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(failed)?;
            conn.busy_timeout(busy_timeout).map_err(failed)?;
            // As sqlx's connections: WAL (set on the file at open) with synchronous =
            // NORMAL.
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(failed)?;
            conn.pragma_update(None, "foreign_keys", "ON")
                .map_err(failed)?;
            Ok(conn)
        };
        let conn = connect()?;
        // The checkpointer's thread checkpoints, not the commits (module doc).
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(failed)?;
        conn.set_prepared_statement_cache_capacity(16);
        let checkpointer = connect()?;
        checkpointer.busy_timeout(RESTART_WAIT).map_err(failed)?;
        let spawn = |name: &str, run: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(run)
                .map(drop)
                .map_err(|e| StoreError(format!("cannot start the {name} thread: {e}")))
        };
        // One pending nudge is enough: the checkpoint after it covers every commit
        // made before it starts.
        let (nudge, nudges) = mpsc::sync_channel::<()>(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        spawn(
            "sqlite-writer",
            Box::new(move || {
                let mut conn = conn;
                while let Ok((batch, answer)) = queue.recv() {
                    let committed = commit(&mut conn, &batch).map_err(StoreError::from);
                    if committed.is_ok() {
                        let _ = nudge.try_send(());
                    }
                    let _ = answer.send(committed);
                }
                // Dropping `nudge` ends the checkpointer.
            }),
        )?;
        let counts = Arc::new(Counts::default());
        let counted = counts.clone();
        spawn(
            "sqlite-checkpoint",
            Box::new(move || checkpoints(&checkpointer, &nudges, restart_pages, &counted)),
        )?;
        Ok(Writer { jobs, counts })
    }

    /// What the checkpointer has done so far.
    pub(super) fn checkpoints(&self) -> Checkpoints {
        let c = &self.counts;
        Checkpoints {
            caught_up: c.caught_up.load(Ordering::SeqCst),
            partial: c.partial.load(Ordering::SeqCst),
            failed: c.failed.load(Ordering::SeqCst),
            pages_behind: c.pages_behind.load(Ordering::SeqCst),
        }
    }

    /// How many checkpoints have copied the whole WAL so far.
    #[cfg(test)]
    pub(super) fn caught_up(&self) -> u64 {
        self.checkpoints().caught_up
    }

    /// How many checkpoint rounds have ended so far, whatever their outcome.
    #[cfg(test)]
    pub(super) fn rounds(&self) -> u64 {
        self.counts.rounds.load(Ordering::SeqCst)
    }

    /// Commits `batch` in one transaction and says what each write did.
    pub(super) async fn write(&self, batch: Vec<Write>) -> Result<Vec<Written>, StoreError> {
        let stopped = || StoreError("the SQLite writer thread has stopped".into());
        let (answer, answered) = oneshot::channel();
        self.jobs.send((batch, answer)).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

/// The checkpointer's loop: after each nudge (commits were made), a passive checkpoint,
/// and a restarting one when the WAL has grown past `restart_pages`. Ends when the
/// writer thread does.
fn checkpoints(
    conn: &Connection,
    nudges: &mpsc::Receiver<()>,
    restart_pages: i64,
    counts: &Counts,
) {
    while nudges.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_AFTER);
        let _ = nudges.try_recv(); // commits made while it slept: covered now
        let outcome = checkpoint(conn, "PASSIVE").and_then(|passive| {
            if passive.1 >= restart_pages {
                checkpoint(conn, "RESTART")
            } else {
                Ok(passive)
            }
        });
        match outcome {
            Ok((busy, wal_pages, copied)) => {
                let behind = u64::try_from(wal_pages - copied).unwrap_or(0);
                counts.pages_behind.store(behind, Ordering::SeqCst);
                if busy == 0 && behind == 0 {
                    counts.caught_up.fetch_add(1, Ordering::SeqCst);
                } else {
                    // Commits went on, or readers kept it from finishing; the next
                    // round goes on from there.
                    tracing::debug!(wal_pages, copied, "a checkpoint could not finish");
                    counts.partial.fetch_add(1, Ordering::SeqCst);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "a WAL checkpoint failed; the next commit retries it");
                counts.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
        counts.rounds.fetch_add(1, Ordering::SeqCst);
    }
}

/// `PRAGMA wal_checkpoint(mode)`: (busy, pages in the WAL, pages copied).
fn checkpoint(conn: &Connection, mode: &str) -> Result<(i64, i64, i64), rusqlite::Error> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

fn commit(conn: &mut Connection, batch: &[Write]) -> Result<Vec<Written>, rusqlite::Error> {
    // IMMEDIATE: wait for the write lock (busy timeout) at the start, never half-way.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = super::sqlite::ts(Utc::now());
    let mut answers = Vec::with_capacity(batch.len());
    {
        let mut delivery = tx.prepare_cached(
            "INSERT INTO deliveries (id, received_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        )?;
        let mut inbox = tx.prepare_cached(
            "INSERT INTO inbox (key, event, received_at) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
        )?;
        let mut put = tx.prepare_cached(super::sqlite::PUT_TRACKED)?;
        let mut insert = tx.prepare_cached(super::sqlite::INSERT_TRACKED)?;
        let mut applied = tx.prepare_cached("DELETE FROM inbox WHERE key = ?1")?;
        let record = |t: &Tracked| -> Result<_, rusqlite::Error> {
            let data = serde_json::to_string(t)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            Ok((
                t.deployment_id.0 as i64,
                super::repo_key(&t.repository),
                t.request_id.clone(),
                t.is_settled(),
                data,
                now.clone(),
            ))
        };
        // Records a delivery id; `true` when it is new (the unique key de-duplicates,
        // also within the batch). No id: always new.
        let mut first_seen = |id: &Option<String>, at: &str| -> Result<bool, rusqlite::Error> {
            Ok(match id {
                Some(id) => delivery.execute((id, at))? == 1,
                None => true,
            })
        };
        let superseded = Write::superseded(batch);
        for (i, w) in batch.iter().enumerate() {
            answers.push(match w {
                Write::Put(_) if superseded[i] => Written::Done,
                Write::Admit(a) => {
                    let at = super::sqlite::ts(a.at);
                    if first_seen(&a.delivery, &at)? {
                        inbox.execute((&a.key, &a.event, &at))?;
                        Written::Admitted
                    } else {
                        Written::Duplicate
                    }
                }
                Write::AdmitApplied {
                    delivery: id,
                    at,
                    record: t,
                } => {
                    let new = first_seen(id, &super::sqlite::ts(*at))?;
                    put.execute(record(t)?)?;
                    if new {
                        Written::Admitted
                    } else {
                        Written::Duplicate
                    }
                }
                Write::Put(t) => {
                    put.execute(record(t)?)?;
                    Written::Done
                }
                Write::Insert(t) => Written::Inserted(insert.execute(record(t)?)? == 1),
                Write::Applied(key) => {
                    applied.execute([key])?;
                    Written::Done
                }
            });
        }
    }
    tx.commit()?;
    Ok(answers)
}
