//! `deploybot migrate-store --from sqlite://… --to postgres://…`: copies everything a
//! SQLite store holds into a PostgreSQL one, table by table.
//!
//! Both stores are opened (and so migrated to the current schema) first. Each row is
//! inserted with `ON CONFLICT DO NOTHING` on its primary key, so the command is safe to
//! re-run: rows already copied are skipped, and a copy interrupted half-way can simply
//! be started again. Audit entries keep their ids (the identity sequence is moved past
//! them); inbox rows keep their arrival order. Settings (the routing key that proves
//! which deployments deploybot made) are copied too; a target that already had a
//! different value is reported, since deployments made before the move would then be
//! treated as made elsewhere.

use std::fmt;

use sqlx::{PgPool, Row, SqlitePool};

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
    Bool,
    Time,
}

use Kind::{Bool, Int, Text, Time};

/// One table to copy: its columns (shared by both schemas), its primary key, and the
/// order rows are read in.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    key: &'static str,
    order: &'static str,
}

/// Every table of the schema, in an order that keeps references sensible.
const TABLES: &[Table] = &[
    Table {
        name: "settings",
        columns: &[("name", Text), ("value", Text)],
        key: "name",
        order: "name",
    },
    Table {
        name: "tracked",
        columns: &[
            ("repository", Text),
            ("deployment_id", Int),
            ("request_id", Text),
            ("settled", Bool),
            ("data", Text),
            ("updated_at", Time),
        ],
        key: "repository, deployment_id",
        order: "repository, deployment_id",
    },
    Table {
        name: "intents",
        columns: &[
            ("request_id", Text),
            ("data", Text),
            ("created_at", Time),
            ("resolved_at", Time),
            ("resolution", Text),
            ("deployment_id", Int),
        ],
        key: "request_id",
        order: "created_at",
    },
    Table {
        name: "waits",
        columns: &[
            ("id", Text),
            ("data", Text),
            ("app", Text),
            ("environment", Text),
            ("repository", Text),
            ("sha", Text),
            ("created_at", Time),
            ("message_id", Text),
            ("pokes", Int),
            ("closed_at", Time),
            ("resolution", Text),
        ],
        key: "id",
        order: "created_at",
    },
    Table {
        name: "locks",
        columns: &[
            ("app", Text),
            ("environment", Text),
            ("holder_id", Text),
            ("holder_name", Text),
            ("reason", Text),
            ("created_at", Time),
            ("expires_at", Time),
            ("warned", Bool),
            ("conversation", Text),
            ("reminded_at", Time),
            ("deployment", Text),
        ],
        key: "app, environment",
        order: "app, environment",
    },
    Table {
        name: "freezes",
        columns: &[
            ("app", Text),
            ("environment", Text),
            ("holder_id", Text),
            ("holder_name", Text),
            ("reason", Text),
            ("created_at", Time),
            ("expires_at", Time),
            ("conversation", Text),
        ],
        key: "app, environment",
        order: "app, environment",
    },
    Table {
        name: "confirmations",
        columns: &[
            ("id", Text),
            ("requester_id", Text),
            ("requester_name", Text),
            ("channel", Text),
            ("conversation", Text),
            ("command", Text),
            ("summary", Text),
            ("message_id", Text),
            ("created_at", Time),
            ("expires_at", Time),
            ("state", Text),
            ("expected_live", Int),
            ("expected_target", Text),
        ],
        key: "id",
        order: "created_at",
    },
    Table {
        name: "deliveries",
        columns: &[("id", Text), ("received_at", Time)],
        key: "id",
        order: "received_at",
    },
    Table {
        name: "inbox",
        columns: &[("key", Text), ("event", Text), ("received_at", Time)],
        key: "key",
        order: "rowid",
    },
    Table {
        name: "presses",
        columns: &[
            ("message", Text),
            ("user_id", Text),
            ("user_name", Text),
            ("command", Text),
            ("at", Time),
        ],
        key: "message",
        order: "at",
    },
    Table {
        name: "queue",
        columns: &[
            ("app", Text),
            ("environment", Text),
            ("position", Int),
            ("user_id", Text),
            ("user_name", Text),
            ("roles", Text),
            ("command", Text),
            ("conversation", Text),
            ("joined_at", Time),
            ("state", Text),
            ("told_at", Time),
            ("reserved_until", Time),
            ("closed_at", Time),
        ],
        key: "app, environment, position",
        order: "app, environment, position",
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Int),
            ("at", Time),
            ("adapter", Text),
            ("channel", Text),
            ("user_id", Text),
            ("user_name", Text),
            ("text", Text),
            ("command", Text),
            ("app", Text),
            ("environment", Text),
            ("decision", Text),
            ("rule", Text),
            ("deployment_id", Int),
            ("detail", Text),
        ],
        key: "id",
        order: "id",
    },
];

/// Rows per INSERT (PostgreSQL allows 65,535 bound values; the widest table has 14).
const ROWS_PER_INSERT: usize = 500;

/// What a run copied: per table, rows read and rows that were new in the target.
#[derive(Debug, Default)]
pub struct Report {
    pub tables: Vec<(&'static str, u64, u64)>,
    /// Settings the target already had with another value (kept as they were).
    pub differing_settings: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (table, read, copied) in &self.tables {
            let skipped = read - copied;
            writeln!(
                f,
                "{table}: {read} rows, {copied} copied{}",
                if skipped > 0 {
                    format!(", {skipped} already there")
                } else {
                    String::new()
                }
            )?;
        }
        for name in &self.differing_settings {
            writeln!(
                f,
                "! setting `{name}` already had another value in the target and was kept: \
                 deployments made before the move are treated as made elsewhere (announced in notify_channel, not on their messages)"
            )?;
        }
        Ok(())
    }
}

/// One value as read from SQLite.
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Bool(Option<bool>),
}

/// Copies `from` (a SQLite URL) into `to` (a PostgreSQL URL).
pub async fn migrate(from: &str, to: &str, pool_size: u32) -> Result<Report, String> {
    if !from.starts_with("sqlite:") {
        return Err(format!(
            "--from `{from}` is not a SQLite URL: give the file deploybot used, e.g. sqlite://deploybot.db"
        ));
    }
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(format!(
            "--to `{}` is not a PostgreSQL URL: give the server and database, e.g. postgres://deploybot@db.example/deploybot",
            super::postgres::redacted(to)
        ));
    }
    if from.contains(":memory:") {
        return Err("--from is an in-memory database: there is nothing to copy".to_string());
    }
    let path = from
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if !std::path::Path::new(path).exists() {
        return Err(format!(
            "--from: there is no file `{path}` (deploybot's [storage] url is relative to the directory it runs in)"
        ));
    }
    let source = SqliteStore::open(from)
        .await
        .map_err(|e| format!("--from {from}: {e}"))?;
    let target = PostgresStore::open(to, pool_size)
        .await
        .map_err(|e| format!("--to {}: {e}", super::postgres::redacted(to)))?;
    copy(source.pool(), target.pool())
        .await
        .map_err(|e| format!("copying into {}: {e}", super::postgres::redacted(to)))
}

async fn copy(from: &SqlitePool, to: &PgPool) -> Result<Report, StoreError> {
    let mut report = Report::default();
    for table in TABLES {
        let names: Vec<&str> = table.columns.iter().map(|(n, _)| *n).collect();
        let rows = sqlx::query(&format!(
            "SELECT {} FROM {} ORDER BY {}",
            names.join(", "),
            table.name,
            table.order
        ))
        .fetch_all(from)
        .await?;
        let values: Vec<Vec<Value>> = rows
            .iter()
            .map(|row| {
                table
                    .columns
                    .iter()
                    .map(|(name, kind)| match kind {
                        Text | Time => Value::Text(row.get(*name)),
                        Int => Value::Int(row.get(*name)),
                        Bool => Value::Bool(row.get::<Option<i64>, _>(*name).map(|v| v != 0)),
                    })
                    .collect()
            })
            .collect();
        if table.name == "settings" {
            for row in &values {
                if let [Value::Text(Some(name)), Value::Text(Some(value))] = row.as_slice() {
                    let existing: Option<String> =
                        sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                            .bind(name)
                            .fetch_optional(to)
                            .await?;
                    if existing.as_ref().is_some_and(|e| e != value) {
                        report.differing_settings.push(name.clone());
                    }
                }
            }
        }
        let mut copied = 0;
        let mut tx = to.begin().await?;
        for chunk in values.chunks(ROWS_PER_INSERT) {
            let mut n = 0;
            let tuples: Vec<String> = chunk
                .iter()
                .map(|_| {
                    let placeholders: Vec<String> = table
                        .columns
                        .iter()
                        .map(|(_, kind)| {
                            n += 1;
                            match kind {
                                Time => format!("${n}::timestamptz"),
                                _ => format!("${n}"),
                            }
                        })
                        .collect();
                    format!("({})", placeholders.join(", "))
                })
                .collect();
            let overriding = if table.name == "audit" {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            };
            let sql = format!(
                "INSERT INTO {} ({}){overriding} VALUES {} ON CONFLICT ({}) DO NOTHING",
                table.name,
                names.join(", "),
                tuples.join(", "),
                table.key
            );
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for v in row {
                    q = match v {
                        Value::Text(s) => q.bind(s.clone()),
                        Value::Int(i) => q.bind(*i),
                        Value::Bool(b) => q.bind(*b),
                    };
                }
            }
            copied += q.execute(&mut *tx).await?.rows_affected();
        }
        if table.name == "audit" {
            // New entries on PostgreSQL get ids after the copied ones.
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('audit', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM audit",
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        report
            .tables
            .push((table.name, values.len() as u64, copied));
    }
    Ok(report)
}
