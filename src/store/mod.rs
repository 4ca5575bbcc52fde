//! The database: SQLite (a file, the default) or PostgreSQL (a server),
//! behind one `Store`. Opening it applies the migrations; chunks are written
//! by the group-commit writer (`writer`); the `fetches` ledger that planning
//! reads is in `ledger`. Nothing outside this module knows which database
//! it writes to.

mod account_lock;
pub mod catalogue;
mod db;
pub mod ledger;
pub mod quota;
pub mod report;
mod rows;
pub mod tables;
mod types;
mod writer;

pub use account_lock::{AccountLock, LockAttempt};
pub use catalogue::CatalogueState;
pub use db::{DatabaseKind, is_postgres_url, redact_url};
pub use ledger::{LedgerRow, RunOutcome};
pub use rows::{Row, SqlValue};
pub use types::{Timestamp, rfc3339};
pub use writer::{ChunkFailure, ChunkWrite, Committed};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;

use db::{Db, on_pool};
use tables::{ALL_TABLES, TableDef};

/// The SQLite migrations in `migrations/sqlite/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The PostgreSQL migrations in `migrations/postgres/`, embedded at build time.
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// An open wxcube database.
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// The upsert statement of each table and batch size, in this database's dialect.
    upserts: Arc<Upserts>,
    /// Where the data is, for messages: a path, or a URL without its password.
    location: Arc<str>,
    writer: writer::Writer,
    /// PostgreSQL: the connection that holds this process's account locks.
    locks: account_lock::SharedLocks,
}

/// How to reach the database: `database` as configured, and the password
/// from `database_password_file`, if any.
#[derive(Clone, Default)]
pub struct DatabaseTarget {
    pub database: String,
    pub password: Option<SecretString>,
}

impl Store {
    /// Opens (creating if missing) the database at a path, a `sqlite:` URL or
    /// a `postgres://` / `postgresql://` URL, and applies the migrations.
    pub async fn open(database: &str) -> anyhow::Result<Store> {
        Store::open_target(&DatabaseTarget {
            database: database.to_owned(),
            password: None,
        })
        .await
    }

    /// Like `open`, with a password from outside the URL.
    pub async fn open_target(target: &DatabaseTarget) -> anyhow::Result<Store> {
        let (db, location) = Db::connect(target).await?;
        let upserts = Arc::new(Upserts::build(&db).await?);
        let store = Store {
            writer: writer::Writer::start(db.clone(), upserts.clone()),
            db,
            upserts,
            location: location.into(),
            locks: Default::default(),
        };
        store.fill_url_keys().await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn kind(&self) -> DatabaseKind {
        self.db.kind()
    }

    /// Where the data is, for messages: the SQLite file, or the PostgreSQL
    /// URL without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The SQLite pool (tests and the demo query the file directly); `None`
    /// on PostgreSQL.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match &self.db {
            Db::Sqlite(pool) => Some(pool),
            Db::Postgres(_) => None,
        }
    }

    /// The PostgreSQL pool; `None` on SQLite.
    pub fn pg_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.db {
            Db::Postgres(pool) => Some(pool),
            Db::Sqlite(_) => None,
        }
    }

    /// Gives `url_key` to articles stored before it existed (migration 0003),
    /// so that `v_article_catalogue` finds them without a re-fetch. The key is
    /// computed by `crate::url_key`, which SQL cannot do. Once done, a no-op.
    async fn fill_url_keys(&self) -> anyhow::Result<()> {
        let sql = "SELECT appid, msgid, url FROM articles WHERE url_key IS NULL AND url IS NOT NULL AND url <> ''";
        let rows: Vec<(String, String, String)> = on_pool!(&self.db, pool => {
            sqlx::query_as(sql).fetch_all(pool).await
        })
        .context("cannot read articles without url_key")?;
        if rows.is_empty() {
            return Ok(());
        }
        let update = "UPDATE articles SET url_key = $1 WHERE appid = $2 AND msgid = $3";
        on_pool!(&self.db, pool => {
            let mut tx = pool.begin().await.context("cannot start a transaction")?;
            for (appid, msgid, url) in &rows {
                sqlx::query(update)
                    .bind(crate::url_key::url_key(url))
                    .bind(appid)
                    .bind(msgid)
                    .execute(&mut *tx)
                    .await
                    .context("cannot fill url_key")?;
            }
            tx.commit().await.context("cannot commit url_key")?;
        });
        tracing::info!(
            articles = rows.len(),
            "url_key filled for articles stored before it existed"
        );
        Ok(())
    }

    /// Gives back the memory a run used: SQLite's page cache of the
    /// connection and, with glibc, the allocator's free pages. A daemon sleeps
    /// most of the day between syncs and should not sit on the last one's peak.
    pub async fn release_memory(&self) {
        if let Db::Sqlite(pool) = &self.db
            && let Err(e) = sqlx::query("PRAGMA shrink_memory").execute(pool).await
        {
            tracing::debug!("could not shrink SQLite's memory: {e}");
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only returns free memory to the OS; it takes no
        // pointers and is thread-safe (it locks each arena).
        unsafe {
            libc::malloc_trim(0);
        }
    }

    /// Commits what the writer holds, then closes the pool.
    pub async fn close(&self) {
        self.writer.flush().await;
        on_pool!(&self.db, pool => pool.close().await);
    }

    /// Queues one successful chunk (its data rows, raw response and ledger
    /// row, stored whole or not at all) for the next group commit. Waits only
    /// while the writer's queue is full; the returned `Committed` resolves
    /// once the group holding the chunk has committed, or failed.
    pub async fn submit_chunk(&self, chunk: ChunkWrite) -> Committed {
        self.writer.submit(writer::Job::Chunk(chunk)).await
    }

    /// Queues a failed chunk's ledger row (no data) for the next group commit.
    pub async fn submit_failure(&self, failure: ChunkFailure) -> Committed {
        self.writer.submit(writer::Job::Failure(failure)).await
    }
}

impl Store {
    /// The number of rows of each of the contract's tables.
    pub async fn table_counts(&self) -> anyhow::Result<Vec<(&'static str, i64)>> {
        let mut counts = Vec::new();
        for table in ALL_TABLES {
            // Table names come from our own static list, never from input.
            let sql = format!("SELECT COUNT(*) FROM {}", table.name);
            let (count,): (i64,) = on_pool!(&self.db, pool => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await
            })
            .with_context(|| format!("cannot count the rows of {}", table.name))?;
            counts.push((table.name, count));
        }
        Ok(counts)
    }

    /// The rows of `query`: a date, then `columns` integers (NULL as `None`).
    pub async fn dated_counters(
        &self,
        query: &'static str,
        columns: usize,
    ) -> anyhow::Result<Vec<(chrono::NaiveDate, Vec<Option<i64>>)>> {
        use sqlx::Row as _;
        on_pool!(&self.db, pool => {
            let rows = sqlx::query(query).fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    let date = row.try_get::<chrono::NaiveDate, _>(0)?;
                    let values = (1..=columns)
                        .map(|i| row.try_get::<Option<i64>, _>(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((date, values))
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
    }
}

/// The lock file that guards a SQLite database (see `crate::lock`); `None`
/// for PostgreSQL, which guards each account with an advisory lock instead.
pub fn lock_path(database: &str) -> anyhow::Result<Option<PathBuf>> {
    db::sqlite_lock_path(database)
}

/// Most rows one upsert statement carries (64 rows of the widest table,
/// `article_total`, bind 2,112 values, far below SQLite's limit of 32,766
/// and PostgreSQL's of 65,535).
const MAX_BATCH: usize = 64;

/// The size of the next batch out of `n` rows: `MAX_BATCH`, else the largest
/// power of two not above `n`. So each table needs at most 7 statement shapes,
/// which all stay in the connection's prepared-statement cache.
fn batch_len(n: usize) -> usize {
    if n >= MAX_BATCH {
        MAX_BATCH
    } else {
        1 << n.ilog2()
    }
}

/// The upsert statements, built once per store in its database's dialect.
enum Upserts {
    /// Multi-row `VALUES` statements, by table and batch size.
    Sqlite(HashMap<(&'static str, usize), Arc<str>>),
    /// One statement per table whose rows arrive as one array per column
    /// (`SELECT * FROM UNNEST($1::text[], $2::bigint[], ...)`): a chunk's
    /// rows of a table are one round trip to the server, whatever their
    /// number, and one prepared statement. With it, each column's kind: a
    /// prepared statement keeps the parameter types of its first execution,
    /// so every value must bind as its column's type.
    Postgres(HashMap<&'static str, (Arc<str>, Vec<ColumnKind>)>),
}

/// How a PostgreSQL column takes its parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    Int,
    Real,
    /// Text, and dates and times given as text (cast by the statement).
    Text,
}

impl Upserts {
    async fn build(db: &Db) -> anyhow::Result<Upserts> {
        let Some(casts) = db.column_casts().await? else {
            let sizes: Vec<usize> = (0..=MAX_BATCH.ilog2()).map(|p| 1 << p).collect();
            let mut statements = HashMap::new();
            for table in ALL_TABLES {
                for &n in &sizes {
                    let sql = tables::upsert_sql_rows(table, n, &|_| "?".to_owned());
                    statements.insert((table.name, n), Arc::from(sql));
                }
            }
            return Ok(Upserts::Sqlite(statements));
        };
        let mut statements = HashMap::new();
        for table in ALL_TABLES {
            let types: Vec<String> = table
                .all_columns()
                .map(|c| {
                    casts
                        .get(&(table.name, c.to_owned()))
                        .cloned()
                        .unwrap_or_else(|| "text".to_owned())
                })
                .collect();
            let kinds = types
                .iter()
                .map(|t| match t.as_str() {
                    "bigint" | "integer" => ColumnKind::Int,
                    "double precision" | "real" => ColumnKind::Real,
                    _ => ColumnKind::Text,
                })
                .collect();
            let arrays: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, t)| format!("${}::{t}[]", i + 1))
                .collect();
            let source = format!("SELECT * FROM UNNEST({})", arrays.join(", "));
            statements.insert(
                table.name,
                (Arc::from(tables::upsert_sql(table, &source)), kinds),
            );
        }
        Ok(Upserts::Postgres(statements))
    }

    /// SQLite: the statement of `rows` rows of `table`.
    fn sqlite(&self, table: &TableDef, rows: usize) -> Arc<str> {
        match self {
            Upserts::Sqlite(statements) => statements.get(&(table.name, rows)).cloned(),
            Upserts::Postgres(_) => None,
        }
        .expect(
            "a SQLite store, every table in ALL_TABLES, every batch a power of two up to MAX_BATCH",
        )
    }

    /// PostgreSQL: the statement of `table` and its columns' kinds.
    fn postgres(&self, table: &TableDef) -> (Arc<str>, &[ColumnKind]) {
        match self {
            Upserts::Postgres(statements) => statements
                .get(table.name)
                .map(|(sql, kinds)| (sql.clone(), kinds.as_slice())),
            Upserts::Sqlite(_) => None,
        }
        .expect("a PostgreSQL store and every table in ALL_TABLES")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_full_then_powers_of_two() {
        let mut sizes = Vec::new();
        let mut n = 64 * 2 + 45;
        while n > 0 {
            let b = batch_len(n);
            sizes.push(b);
            n -= b;
        }
        assert_eq!(sizes, [64, 64, 32, 8, 4, 1]);
        assert_eq!(batch_len(1), 1);
        assert_eq!(batch_len(63), 32);
    }

    #[tokio::test]
    async fn every_batch_shape_has_a_statement() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db").display().to_string())
            .await
            .unwrap();
        for table in ALL_TABLES {
            for n in 1..=MAX_BATCH {
                let sql = store.upserts.sqlite(table, batch_len(n));
                assert_eq!(
                    sql.matches('?').count(),
                    table.width() * batch_len(n),
                    "{}",
                    table.name
                );
            }
        }
    }
}
