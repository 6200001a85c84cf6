//! The leader lease: which of several `deploybot run` instances sharing one PostgreSQL
//! database holds the Discord gateway and runs housekeeping.
//!
//! One row per lease in `leases (name, holder, token, expires_at)`, taken and renewed
//! by one atomic statement (`INSERT … ON CONFLICT (name) DO UPDATE … WHERE the lease
//! expired OR it is already ours RETURNING token`) against the database's clock
//! (`now()`), every `ttl / 3`. The fencing token increases on every change of holder
//! (and whenever an instance takes the lease again after it had lost it), never on a
//! renewal.
//!
//! An instance trusts the lease only until its *local deadline*: the moment it sent
//! its last successful renewal, plus `ttl`, minus a safety margin. Past that it is not
//! the leader, whatever it thinks the database says, and even when the database cannot
//! be reached: the row's `expires_at` (the database's `now()` at the renewal, plus
//! `ttl`) is never earlier than the local deadline, so two instances never both believe
//! they lead (as long as neither clock runs faster than the other by more than the
//! margin over one `ttl`).
//!
//! With SQLite there is one instance, and it is always the leader ([`Lease::single`]).
//!
//! Core: no Discord types. The adapter asks [`Lease::is_leader`] before acting on a
//! gateway event, and follows [`Lease::watch`] to open and close the gateway.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// The lease `deploybot run` takes: the Discord gateway and housekeeping.
pub const GATEWAY: &str = "gateway";

/// What this instance is, as far as the lease goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds the lease, with this fencing token.
    Leader { token: i64 },
    /// Another instance holds it, or nobody could be seen to.
    Standby,
}

impl Role {
    pub fn is_leader(self) -> bool {
        matches!(self, Role::Leader { .. })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader { .. } => "leader",
            Role::Standby => "standby",
        }
    }
}

/// How long a lease lasts and how it is kept.
#[derive(Debug, Clone)]
pub struct Options {
    /// The lease's name (its row).
    pub name: String,
    /// How long a taken or renewed lease lasts; renewed every `ttl / 3`.
    pub ttl: Duration,
    /// Subtracted from the local deadline: clock drift and the renewal's own latency.
    pub margin: Duration,
    /// This instance's id (see [`instance_id`]).
    pub holder: String,
}

impl Default for Options {
    /// `gateway`, 10 s, 2 s margin: a standby takes over within ttl + ttl/3 ≈ 13.3 s
    /// of the leader's death.
    fn default() -> Options {
        Options::with_ttl(Duration::from_secs(10))
    }
}

/// The most the local deadline is moved ahead of the row's expiry.
pub const MAX_MARGIN: Duration = Duration::from_secs(2);

impl Options {
    /// The `gateway` lease lasting `ttl` (`[storage] lease_ttl`): renewed every
    /// `ttl / 3`, trusted until `ttl` minus a margin of 2 s, or a fifth of `ttl` when
    /// that is less (so that a short lease still leaves most of it to lead in). A
    /// standby takes over within `ttl + ttl / 3` of the leader's death.
    pub fn with_ttl(ttl: Duration) -> Options {
        Options {
            name: GATEWAY.to_string(),
            ttl,
            margin: MAX_MARGIN.min(ttl / 5),
            holder: instance_id(),
        }
    }
}

/// An id for this process: hostname, pid and 4 random bytes (a restarted process on
/// the same host with a recycled pid is still another holder).
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string());
    let mut random = [0u8; 4];
    let _ = getrandom::getrandom(&mut random);
    format!("{host}:{}:{}", std::process::id(), hex::encode(random))
}

/// A handle on the lease; clones share it.
#[derive(Clone)]
pub struct Lease {
    inner: Arc<Inner>,
}

struct Inner {
    holder: String,
    /// `None`: always the leader (SQLite).
    postgres: Option<Postgres>,
    role: watch::Sender<Role>,
    metrics: Option<Arc<Metrics>>,
}

struct Postgres {
    pool: PgPool,
    options: Options,
    /// Until when this instance may act as leader; `None` when it does not hold it.
    deadline: Mutex<Option<Instant>>,
    token: AtomicI64,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    released: AtomicBool,
}

const TAKE: &str = "INSERT INTO leases (name, holder, token, expires_at) \
     VALUES ($1, $2, 1, now() + make_interval(secs => $3)) \
     ON CONFLICT (name) DO UPDATE SET \
         holder = EXCLUDED.holder, \
         token = CASE WHEN $4 AND leases.holder = EXCLUDED.holder \
                      THEN leases.token ELSE leases.token + 1 END, \
         expires_at = EXCLUDED.expires_at \
     WHERE leases.expires_at < now() OR leases.holder = EXCLUDED.holder \
     RETURNING token";

const RELEASE: &str =
    "UPDATE leases SET expires_at = now() WHERE name = $1 AND holder = $2 AND expires_at > now()";

impl Lease {
    /// One instance (SQLite): always the leader, token 1.
    pub fn single(metrics: Option<Arc<Metrics>>) -> Lease {
        let (role, _) = watch::channel(Role::Leader { token: 1 });
        if let Some(m) = &metrics {
            m.leader(true);
        }
        Lease {
            inner: Arc::new(Inner {
                holder: instance_id(),
                postgres: None,
                role,
                metrics,
            }),
        }
    }

    /// A lease in the PostgreSQL database at `url` (its `leases` table comes with the
    /// store's migrations), kept by a task of its own on a small pool of its own (so a
    /// busy store never delays a renewal). Starts as standby; the first attempt to
    /// take the lease is made at once. Nothing is connected before that task runs, so
    /// this fails only on a URL that cannot be parsed.
    pub fn postgres(
        url: &str,
        options: Options,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Lease, String> {
        let connect = PgConnectOptions::from_str(url).map_err(|e| {
            format!(
                "storage.url `{}`: {e}",
                crate::store::postgres::redacted(url)
            )
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(options.ttl / 3)
            .connect_lazy_with(connect);
        let (role, _) = watch::channel(Role::Standby);
        if let Some(m) = &metrics {
            m.leader(false);
        }
        let lease = Lease {
            inner: Arc::new(Inner {
                holder: options.holder.clone(),
                postgres: Some(Postgres {
                    pool,
                    options,
                    deadline: Mutex::new(None),
                    token: AtomicI64::new(0),
                    task: Mutex::new(None),
                    released: AtomicBool::new(false),
                }),
                role,
                metrics,
            }),
        };
        let keeping = lease.clone();
        let task = tokio::spawn(async move { keeping.keep().await });
        if let Some(pg) = &lease.inner.postgres {
            *pg.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
        Ok(lease)
    }

    /// Whether other instances may share the store (PostgreSQL): then only the leader
    /// applies webhook events, and it looks for those the others admitted.
    pub fn shared(&self) -> bool {
        self.inner.postgres.is_some()
    }

    /// This instance's id, as written in `leases.holder`.
    pub fn holder(&self) -> &str {
        &self.inner.holder
    }

    /// Whether this instance may act as the leader now: it holds the lease and its
    /// local deadline has not passed. Never waits, never asks the database.
    pub fn is_leader(&self) -> bool {
        match &self.inner.postgres {
            None => true,
            Some(pg) => pg.deadline().is_some_and(|d| Instant::now() < d),
        }
    }

    /// The fencing token while leader.
    pub fn token(&self) -> Option<i64> {
        match &self.inner.postgres {
            None => Some(1),
            Some(pg) => self.is_leader().then(|| pg.token.load(Ordering::SeqCst)),
        }
    }

    /// The role now ([`Lease::is_leader`] decides, so a passed deadline is standby
    /// even before the keeper task says so).
    pub fn role(&self) -> Role {
        match self.token() {
            Some(token) => Role::Leader { token },
            None => Role::Standby,
        }
    }

    /// Follows role changes (each hand-over, as the keeper task sees it).
    pub fn watch(&self) -> watch::Receiver<Role> {
        self.inner.role.subscribe()
    }

    /// Waits until this instance leads.
    pub async fn leading(&self) {
        let mut roles = self.watch();
        let _ = roles.wait_for(|r| r.is_leader()).await;
    }

    /// Stops renewing and gives the lease up at once (`expires_at = now()`), so a
    /// standby takes it on its next attempt: a clean shutdown.
    pub async fn release(&self) {
        let Some(pg) = &self.inner.postgres else {
            return;
        };
        if pg.released.swap(true, Ordering::SeqCst) {
            return;
        }
        pg.abort();
        let held = pg.deadline().is_some();
        pg.set_deadline(None);
        if held {
            let released = tokio::time::timeout(
                pg.options.ttl / 3,
                sqlx::query(RELEASE)
                    .bind(&pg.options.name)
                    .bind(&self.inner.holder)
                    .execute(&pg.pool),
            )
            .await;
            match released {
                Ok(Ok(_)) => tracing::info!("released the lead: a standby takes over"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not release the lead; a standby takes over when it expires")
                }
                Err(_) => tracing::warn!(
                    "could not release the lead in time; a standby takes over when it expires"
                ),
            }
            self.changed(Role::Standby, "released (shutting down)");
        }
        pg.pool.close().await;
    }

    /// Stops renewing without giving the lease up, as if the process died (tests).
    /// [`Lease::is_leader`] still holds until the local deadline.
    pub fn abandon(&self) {
        if let Some(pg) = &self.inner.postgres {
            pg.released.store(true, Ordering::SeqCst);
            pg.abort();
        }
    }

    fn changed(&self, to: Role, why: &str) {
        let was = *self.inner.role.borrow();
        if was == to {
            return;
        }
        match to {
            Role::Leader { token } => tracing::info!(
                token,
                holder = %self.inner.holder,
                "became leader (token {token})"
            ),
            Role::Standby if was.is_leader() => tracing::info!(
                holder = %self.inner.holder,
                why,
                "lost the lead: {why}"
            ),
            Role::Standby => {}
        }
        if let Some(m) = &self.inner.metrics {
            m.leader(to.is_leader());
        }
        self.inner.role.send_replace(to);
    }

    /// The keeper: takes or renews the lease every `ttl / 3`, and gives up the role the
    /// moment the local deadline passes without a renewal.
    async fn keep(&self) {
        let Some(pg) = &self.inner.postgres else {
            return;
        };
        let every = pg.options.ttl / 3;
        let mut warned = false;
        loop {
            let sent = Instant::now();
            let held = pg.deadline().is_some_and(|d| sent < d);
            let attempt = tokio::time::timeout(every, self.take(pg, held));
            let result = tokio::select! {
                r = attempt => Some(r),
                () = pg.expiry() => None,
            };
            match result {
                None => self.expired(pg),
                Some(Ok(Ok(Some(token)))) => {
                    warned = false;
                    pg.token.store(token, Ordering::SeqCst);
                    pg.set_deadline(Some(sent + pg.options.ttl - pg.options.margin));
                    self.changed(Role::Leader { token }, "");
                }
                Some(Ok(Ok(None))) => {
                    warned = false;
                    pg.set_deadline(None);
                    self.changed(Role::Standby, "another instance holds the lease");
                }
                Some(failed) => {
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {}ms", every.as_millis()),
                    };
                    if held {
                        tracing::warn!(error = %why, "cannot renew the lead; still the leader until the lease's local deadline");
                    } else if !warned {
                        warned = true;
                        tracing::warn!(error = %why, "cannot reach PostgreSQL to take the lead; standing by");
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep_until(sent + every) => {}
                () = pg.expiry() => self.expired(pg),
            }
        }
    }

    fn expired(&self, pg: &Postgres) {
        pg.set_deadline(None);
        self.changed(
            Role::Standby,
            "could not renew the lease before its local deadline (PostgreSQL unreachable or slow)",
        );
    }

    async fn take(&self, pg: &Postgres, held: bool) -> Result<Option<i64>, sqlx::Error> {
        sqlx::query_scalar::<_, i64>(TAKE)
            .bind(&pg.options.name)
            .bind(&self.inner.holder)
            .bind(pg.options.ttl.as_secs_f64())
            .bind(held)
            .fetch_optional(&pg.pool)
            .await
    }
}

impl Postgres {
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_deadline(&self, to: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    /// Completes when the local deadline passes (never when none is held).
    async fn expiry(&self) {
        match self.deadline() {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    }

    fn abort(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_margin_is_2s_or_a_fifth_of_a_short_ttl() {
        let secs = Duration::from_secs;
        for (ttl, margin) in [
            (secs(3), Duration::from_millis(600)),
            (secs(5), secs(1)),
            (secs(10), secs(2)),
            (secs(300), secs(2)),
        ] {
            let o = Options::with_ttl(ttl);
            assert_eq!((o.ttl, o.margin), (ttl, margin), "{ttl:?}");
            assert!(o.margin <= o.ttl / 5);
        }
        assert_eq!(Options::default().ttl, secs(10));
    }
}
