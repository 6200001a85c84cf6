//! The leader lease against a real PostgreSQL server (a fresh database per test):
//! racing holders, renewal, take-over after the ttl with a higher token, a partitioned
//! leader standing down on its own, release on a clean stop.
//!
//! `DEPLOYBOT_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test cargo test -p
//! deploybot --test lease` (`.ci/run` does). Unset, each test says it is skipped.

mod pg;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deploybot::lease::{self, Lease, Role};
use deploybot::metrics::Metrics;
use deploybot::store::postgres::PostgresStore;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

/// Wide enough that a renewal delayed by a loaded machine (the rest of the suite runs
/// beside these tests) does not cost the lead: it is lost only when two renewals in a
/// row (every `ttl / 3` = 1 s) miss the deadline `ttl - margin` = 2.4 s.
const TTL: Duration = Duration::from_millis(3000);
const MARGIN: Duration = Duration::from_millis(600);

fn options(holder: &str) -> lease::Options {
    lease::Options {
        name: lease::GATEWAY.to_string(),
        ttl: TTL,
        margin: MARGIN,
        holder: holder.to_string(),
    }
}

/// Migrates the database (the `leases` table comes with the store's migrations).
async fn migrated(url: &str) {
    PostgresStore::open(url, 2)
        .await
        .unwrap_or_else(|e| panic!("{e}; {}", pg::HOW_TO_START));
}

fn start(url: &str, holder: &str) -> (Lease, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let lease = Lease::postgres(url, options(holder), Some(metrics.clone())).expect("lease");
    (lease, metrics)
}

/// Waits (bounded) until `f` holds.
async fn until(bound: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {bound:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn row(url: &str) -> (String, i64) {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_as("SELECT holder, token FROM leases WHERE name = 'gateway'")
        .fetch_one(&mut c)
        .await
        .expect("the lease row")
}

#[tokio::test]
async fn racing_holders_make_exactly_one_leader_and_renewal_keeps_it() {
    let Some(admin) = pg::server("racing_holders") else {
        return;
    };
    pg::with_fresh(&admin, |url| async move {
        migrated(&url).await;
        let leases: Vec<(Lease, Arc<Metrics>)> =
            (0..8).map(|i| start(&url, &format!("racer-{i}"))).collect();
        until(TTL * 2, "one of them to lead", || {
            leases.iter().any(|(l, _)| l.is_leader())
        })
        .await;
        let leader = leases
            .iter()
            .position(|(l, _)| l.is_leader())
            .expect("a leader");
        let token = leases[leader].0.token().expect("a token");
        // Over three ttls (nine renewals), at every look: exactly that one leads, with
        // the same token, and the row says so.
        let until_then = Instant::now() + TTL * 3;
        while Instant::now() < until_then {
            let leading: Vec<usize> = (0..leases.len())
                .filter(|&i| leases[i].0.is_leader())
                .collect();
            assert_eq!(leading, vec![leader], "exactly one leader");
            assert_eq!(
                leases[leader].0.token(),
                Some(token),
                "renewals keep the token"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(row(&url).await, (format!("racer-{leader}"), token));
        let text = leases[leader].1.encode();
        assert!(text.contains("deploybot_leader 1"), "{text}");
        assert!(text.contains("deploybot_leader_changes_total 1"), "{text}");
        let other = leases[(leader + 1) % leases.len()].1.encode();
        assert!(other.contains("deploybot_leader 0"), "{other}");
        assert!(
            other.contains("deploybot_leader_changes_total 0"),
            "{other}"
        );
        for (l, _) in &leases {
            l.release().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_standby_takes_over_after_the_ttl_with_a_higher_token() {
    let Some(admin) = pg::server("take_over") else {
        return;
    };
    pg::with_fresh(&admin, |url| async move {
        migrated(&url).await;
        let (a, _) = start(&url, "a");
        a.leading().await;
        let first = a.token().expect("a's token");
        let (b, _) = start(&url, "b");
        let mut b_roles = b.watch();
        // b stands by while a renews.
        let until_then = Instant::now() + TTL * 2;
        while Instant::now() < until_then {
            assert!(!b.is_leader() && a.is_leader());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // a stops renewing (a kill -9): b takes over once the lease expired, not before.
        let stopped = Instant::now();
        a.abandon();
        tokio::time::timeout(TTL + TTL / 3 + Duration::from_secs(2), async {
            let _ = b_roles.wait_for(|r| r.is_leader()).await;
        })
        .await
        .expect("b takes over within ttl + ttl/3");
        let took = stopped.elapsed();
        assert!(
            took >= TTL * 2 / 3 - Duration::from_millis(100),
            "b took over after {took:?}, before a's lease could have expired"
        );
        assert!(!a.is_leader(), "a's own deadline passed");
        let second = b.token().expect("b's token");
        assert!(second > first, "token {second} after {first}");
        assert_eq!(row(&url).await, ("b".to_string(), second));
        b.release().await;
    })
    .await;
}

/// A TCP forwarder to `to` that can be cut (live connections closed, new ones
/// refused): PostgreSQL becomes unreachable for whoever connects through it.
async fn cuttable(to: SocketAddr) -> (SocketAddr, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (cut, cutting) = watch::channel(false);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if *cutting.borrow() {
                continue;
            }
            let mut cutting = cutting.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cutting.wait_for(|c| *c) => {}
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test]
async fn a_partitioned_leader_stands_down_by_its_own_deadline() {
    let Some(admin) = pg::server("partitioned") else {
        return;
    };
    pg::with_fresh(&admin, |url| async move {
        migrated(&url).await;
        let parsed = reqwest::Url::parse(&url).expect("url");
        let server: SocketAddr = tokio::net::lookup_host((
            parsed.host_str().expect("host"),
            parsed.port().unwrap_or(5432),
        ))
        .await
        .expect("resolve")
        .next()
        .expect("an address");
        let (proxy, cut) = cuttable(server).await;
        let mut through = parsed.clone();
        through.set_port(Some(proxy.port())).expect("port");
        let _ = through.set_host(Some("127.0.0.1"));
        let (a, a_metrics) = start(through.as_str(), "a");
        a.leading().await;
        let first = a.token().expect("token");
        let (b, _) = start(&url, "b");
        let mut a_roles = a.watch();
        let mut b_roles = b.watch();
        cut.send_replace(true);
        // a cannot reach the database, and gives the lead up by itself.
        tokio::time::timeout(TTL + Duration::from_secs(2), async {
            let _ = a_roles.wait_for(|r| *r == Role::Standby).await;
        })
        .await
        .expect("a stands down within its ttl");
        assert!(!a.is_leader() && a.token().is_none());
        assert!(!b.is_leader(), "b cannot have it yet: the margin");
        tokio::time::timeout(TTL + Duration::from_secs(2), async {
            let _ = b_roles.wait_for(|r| r.is_leader()).await;
        })
        .await
        .expect("b takes over");
        assert!(b.token().expect("b's token") > first);
        // a still cannot reach the database and still says it is not the leader.
        assert!(!a.is_leader());
        let text = a_metrics.encode();
        assert!(text.contains("deploybot_leader 0"), "{text}");
        assert!(text.contains("deploybot_leader_changes_total 2"), "{text}");
        a.abandon();
        b.release().await;
    })
    .await;
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once() {
    let Some(admin) = pg::server("release") else {
        return;
    };
    pg::with_fresh(&admin, |url| async move {
        migrated(&url).await;
        let (a, _) = start(&url, "a");
        a.leading().await;
        let (b, _) = start(&url, "b");
        assert!(!b.is_leader());
        let released = Instant::now();
        a.release().await;
        assert!(!a.is_leader());
        b.leading().await;
        assert!(
            released.elapsed() < TTL / 3 + Duration::from_millis(500),
            "taken on b's next attempt, not after the ttl: {:?}",
            released.elapsed()
        );
        b.release().await;
    })
    .await;
}

#[tokio::test]
async fn with_sqlite_the_process_always_leads() {
    let lease = Lease::single(None);
    assert!(lease.is_leader());
    assert_eq!(lease.role(), Role::Leader { token: 1 });
    lease.release().await;
    assert!(lease.is_leader());
}
