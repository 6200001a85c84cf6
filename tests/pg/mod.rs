//! A fresh PostgreSQL database per test, on the server `DEPLOYBOT_TEST_POSTGRES`
//! names (as in `tests/store_contract.rs`): unset, the PostgreSQL tests say they are
//! skipped and pass; set and unreachable, they fail saying how to start a server.
#![allow(dead_code)]

use sqlx::Connection;

pub const POSTGRES_ENV: &str = "DEPLOYBOT_TEST_POSTGRES";
pub const HOW_TO_START: &str = "start one with `pg_ctlcluster 15 main start` (Debian/Ubuntu), or `docker run --rm -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15`; or unset DEPLOYBOT_TEST_POSTGRES to skip the PostgreSQL tests";

/// The server to test against, if enabled; says so when skipped.
pub fn server(test: &str) -> Option<String> {
    let url = std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty());
    if url.is_none() {
        eprintln!(
            "{test}: skipped: set {POSTGRES_ENV}=postgres://postgres@127.0.0.1:5432/test to run it"
        );
    }
    url
}

/// `admin` (a server URL) with its database replaced by `name`.
pub fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin, String::new()),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority..].find('/') {
        Some(i) => &base[..authority + i],
        None => base,
    };
    format!("{root}/{name}{query}")
}

pub async fn admin_connection(admin: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!("{POSTGRES_ENV}={admin}, but that PostgreSQL server cannot be reached: {e}; {HOW_TO_START}")
    })
}

/// A database of its own for one test; [`FreshDatabase::drop_it`] drops it (WITH
/// (FORCE): connections still open are closed).
pub struct FreshDatabase {
    admin: String,
    pub name: String,
    pub url: String,
}

impl FreshDatabase {
    pub async fn create(admin: &str) -> FreshDatabase {
        let name = format!("deploybot_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin_connection(admin).await;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating database {name} on {admin}: {e}"));
        let _ = conn.close().await;
        FreshDatabase {
            admin: admin.to_string(),
            url: with_database(admin, &name),
            name,
        }
    }

    pub async fn drop_it(self) {
        let mut conn = admin_connection(&self.admin).await;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("dropping database {}: {e}", self.name));
        let _ = conn.close().await;
    }
}

/// Runs `body` against a fresh database (dropped afterwards, also when it panics).
pub async fn with_fresh<F: std::future::Future<Output = ()>>(
    admin: &str,
    body: impl FnOnce(String) -> F,
) {
    use futures_util::FutureExt;
    let db = FreshDatabase::create(admin).await;
    let outcome = std::panic::AssertUnwindSafe(body(db.url.clone()))
        .catch_unwind()
        .await;
    db.drop_it().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
