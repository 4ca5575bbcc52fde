//! The SQLite database: opening it (WAL, busy timeout, migrations), writing one
//! chunk per transaction, and the `fetches` ledger that planning reads.

pub mod catalogue;
pub mod ledger;
mod rows;
pub mod tables;

pub use catalogue::CatalogueState;
pub use ledger::{LedgerRow, RunOutcome};
pub use rows::{Row, SqlValue};

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite, Transaction};

use tables::{ALL_TABLES, TableDef};

/// The SQLite migrations in `migrations/sqlite/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// An open wxcube database.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
}

/// What a successful chunk writes.
pub struct ChunkWrite<'a> {
    pub appid: &'a str,
    /// The endpoint's name, as the ledger keeps it.
    pub endpoint: &'a str,
    pub begin: NaiveDate,
    pub end: NaiveDate,
    pub rows: &'a [Row],
    /// Rows counted in the ledger (data rows, without `articles`).
    pub data_rows: usize,
    pub body: &'a str,
    pub attempts: u32,
    pub is_delay: Option<bool>,
    pub fetched_at: DateTime<Utc>,
}

/// What a failed chunk records in the ledger.
pub struct ChunkFailure<'a> {
    pub appid: &'a str,
    /// The endpoint's name, as the ledger keeps it.
    pub endpoint: &'a str,
    pub begin: NaiveDate,
    pub end: NaiveDate,
    pub errcode: Option<i64>,
    /// Already redacted.
    pub message: &'a str,
    pub attempts: u32,
    pub fetched_at: DateTime<Utc>,
}

impl Store {
    /// Opens (creating if missing) the database at a path or `sqlite:` URL and
    /// applies the migrations.
    pub async fn open(database: &str) -> anyhow::Result<Store> {
        let options = connect_options(database)?;
        let path = options.get_filename().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            anyhow::bail!(
                "cannot open database {}: directory {} does not exist",
                path.display(),
                dir.display()
            );
        }
        // One connection: SQLite has one writer anyway, and a single connection
        // makes every chunk's transaction strictly serial.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open database {}", path.display()))?;
        MIGRATOR
            .run(&pool)
            .await
            .with_context(|| format!("cannot apply migrations to {}", path.display()))?;
        let store = Store { pool, path };
        store.fill_url_keys().await?;
        Ok(store)
    }

    /// Gives `url_key` to articles stored before it existed (migration 0003),
    /// so that `v_article_catalogue` finds them without a re-fetch. The key is
    /// computed by `crate::url_key`, which SQL cannot do. Once done, a no-op.
    async fn fill_url_keys(&self) -> anyhow::Result<()> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT appid, msgid, url FROM articles WHERE url_key IS NULL AND url IS NOT NULL AND url <> ''",
        )
        .fetch_all(&self.pool)
        .await
        .context("cannot read articles without url_key")?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin()
            .await
            .context("cannot start a transaction")?;
        for (appid, msgid, url) in &rows {
            sqlx::query("UPDATE articles SET url_key = ? WHERE appid = ? AND msgid = ?")
                .bind(crate::url_key::url_key(url))
                .bind(appid)
                .bind(msgid)
                .execute(&mut *tx)
                .await
                .context("cannot fill url_key")?;
        }
        tx.commit().await.context("cannot commit url_key")?;
        tracing::info!(
            articles = rows.len(),
            "url_key filled for articles stored before it existed"
        );
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The pool, for queries in status and tests.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Gives back the memory a run used: SQLite's page cache of the
    /// connection and, with glibc, the allocator's free pages. A daemon sleeps
    /// most of the day between syncs and should not sit on the last one's peak.
    pub async fn release_memory(&self) {
        if let Err(e) = sqlx::query("PRAGMA shrink_memory")
            .execute(&self.pool)
            .await
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

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The one connection, for a write.
    async fn connection(&self) -> anyhow::Result<sqlx::pool::PoolConnection<Sqlite>> {
        self.pool
            .acquire()
            .await
            .context("cannot get a database connection")
    }

    /// Stores one successful chunk in a single transaction: its data rows,
    /// its raw response and its ledger row. Stored whole or not at all.
    pub async fn write_chunk(&self, chunk: &ChunkWrite<'_>) -> anyhow::Result<()> {
        let mut conn = self.connection().await?;
        let result = write_chunk_on(&mut conn, chunk).await;
        discard_if_failed(&mut conn, &result);
        result
    }

    /// Records a failed chunk: only its ledger row, no data.
    pub async fn record_failure(&self, failure: &ChunkFailure<'_>) -> anyhow::Result<()> {
        let mut conn = self.connection().await?;
        let result = record_failure_on(&mut conn, failure).await;
        discard_if_failed(&mut conn, &result);
        result
    }
}

/// After a failed write, the connection is closed rather than reused: when
/// SQLite rolls a transaction back by itself (disk full, I/O error), sqlx's own
/// ROLLBACK fails too and its transaction depth stays at 1, so every later
/// "transaction" on that connection would be a SAVEPOINT inside one that never
/// commits, and chunks reported stored would be lost.
fn discard_if_failed<T>(conn: &mut sqlx::pool::PoolConnection<Sqlite>, result: &anyhow::Result<T>) {
    if result.is_err() {
        conn.close_on_drop();
    }
}

async fn write_chunk_on(
    conn: &mut sqlx::SqliteConnection,
    chunk: &ChunkWrite<'_>,
) -> anyhow::Result<()> {
    {
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .context("cannot start a transaction")?;
        upsert_rows(&mut tx, chunk.rows).await?;
        let fetched_at = rfc3339(chunk.fetched_at);
        sqlx::query(
            "INSERT INTO raw_responses (appid, endpoint, begin_date, end_date, fetched_at, body)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (appid, endpoint, begin_date, end_date)
             DO UPDATE SET fetched_at = excluded.fetched_at, body = excluded.body",
        )
        .bind(chunk.appid)
        .bind(chunk.endpoint)
        .bind(chunk.begin.to_string())
        .bind(chunk.end.to_string())
        .bind(&fetched_at)
        .bind(chunk.body)
        .execute(&mut *tx)
        .await
        .context("cannot write the raw response")?;
        upsert_ledger(
            &mut tx,
            LedgerWrite {
                appid: chunk.appid,
                endpoint: chunk.endpoint,
                begin: chunk.begin,
                end: chunk.end,
                ok: true,
                rows: chunk.data_rows as i64,
                attempts: chunk.attempts,
                errcode: None,
                error: None,
                fetched_at: &fetched_at,
                is_delay: chunk.is_delay,
            },
        )
        .await?;
        tx.commit().await.context("cannot commit the chunk")?;
    }
    Ok(())
}

/// Upserts `rows` on `conn` (inside the caller's transaction).
async fn upsert_rows(conn: &mut sqlx::SqliteConnection, rows: &[Row]) -> anyhow::Result<()> {
    // Rows go in multi-row upserts, one table at a time, each table's rows
    // in their original order (tables have no foreign keys between them, and
    // within a table SQLite applies the rows of one statement in order).
    // One statement per row cost a round trip to sqlx's database thread
    // each, which dominated a full backfill.
    for (table, rows) in rows_by_table(rows) {
        let mut rest = rows.as_slice();
        while !rest.is_empty() {
            let (batch, after) = rest.split_at(batch_len(rest.len()));
            rest = after;
            let mut query = sqlx::query(AssertSqlSafe(upsert_for(table, batch.len())));
            for value in batch.iter().flat_map(|row| &row.values) {
                query = match value {
                    SqlValue::Null => query.bind(None::<i64>),
                    SqlValue::Int(v) => query.bind(*v),
                    SqlValue::Real(v) => query.bind(*v),
                    SqlValue::Text(v) => query.bind(v.as_str()),
                };
            }
            query
                .execute(&mut *conn)
                .await
                .with_context(|| format!("cannot write rows of {}", table.name))?;
        }
    }
    Ok(())
}

async fn record_failure_on(
    conn: &mut sqlx::SqliteConnection,
    failure: &ChunkFailure<'_>,
) -> anyhow::Result<()> {
    {
        let mut tx = sqlx::Connection::begin(&mut *conn)
            .await
            .context("cannot start a transaction")?;
        upsert_ledger(
            &mut tx,
            LedgerWrite {
                appid: failure.appid,
                endpoint: failure.endpoint,
                begin: failure.begin,
                end: failure.end,
                ok: false,
                rows: 0,
                attempts: failure.attempts,
                errcode: failure.errcode,
                error: Some(failure.message),
                fetched_at: &rfc3339(failure.fetched_at),
                is_delay: None,
            },
        )
        .await?;
        tx.commit().await.context("cannot commit the ledger row")?;
    }
    Ok(())
}

/// The lock file that guards this database (see `crate::lock`).
pub fn lock_path(database: &str) -> anyhow::Result<PathBuf> {
    let options = connect_options(database)?;
    let mut name = options.get_filename().as_os_str().to_owned();
    name.push(".lock");
    Ok(PathBuf::from(name))
}

fn connect_options(database: &str) -> anyhow::Result<SqliteConnectOptions> {
    let options = if database.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(database)
            .with_context(|| format!("bad database URL {database:?}"))?
    } else {
        SqliteConnectOptions::new().filename(database)
    };
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        // Room for every batch shape of every table (tables x 7) and the rest.
        .statement_cache_capacity(ALL_TABLES.len() * 8 + 32))
}

/// Timestamps are UTC RFC 3339 with seconds, so they sort as text.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

struct LedgerWrite<'a> {
    appid: &'a str,
    endpoint: &'a str,
    begin: NaiveDate,
    end: NaiveDate,
    ok: bool,
    rows: i64,
    attempts: u32,
    errcode: Option<i64>,
    error: Option<&'a str>,
    fetched_at: &'a str,
    is_delay: Option<bool>,
}

async fn upsert_ledger(
    tx: &mut Transaction<'_, Sqlite>,
    row: LedgerWrite<'_>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO fetches (appid, endpoint, begin_date, end_date, status, rows, attempts, errcode, error, fetched_at, is_delay)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (appid, endpoint, begin_date, end_date) DO UPDATE SET
           status = excluded.status, rows = excluded.rows, attempts = excluded.attempts,
           errcode = excluded.errcode, error = excluded.error, fetched_at = excluded.fetched_at,
           is_delay = excluded.is_delay",
    )
    .bind(row.appid)
    .bind(row.endpoint)
    .bind(row.begin.to_string())
    .bind(row.end.to_string())
    .bind(if row.ok { "ok" } else { "error" })
    .bind(row.rows)
    .bind(i64::from(row.attempts))
    .bind(row.errcode)
    .bind(row.error)
    .bind(row.fetched_at)
    .bind(row.is_delay.map(i64::from))
    .execute(&mut **tx)
    .await
    .context("cannot write the ledger row")?;
    Ok(())
}

/// Most rows one upsert statement carries (64 rows of the widest table,
/// `article_total`, bind 2,112 values, far below SQLite's limit of 32,766).
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

/// The rows of each table, tables in order of first appearance, rows in
/// their original order.
fn rows_by_table(rows: &[Row]) -> Vec<(&'static TableDef, Vec<&Row>)> {
    let mut groups: Vec<(&'static TableDef, Vec<&Row>)> = Vec::new();
    for row in rows {
        match groups.iter_mut().find(|(t, _)| std::ptr::eq(*t, row.table)) {
            Some((_, group)) => group.push(row),
            None => groups.push((row.table, vec![row])),
        }
    }
    groups
}

/// The upsert statement of `rows` rows (a `batch_len` size) of each table,
/// built once.
fn upsert_for(table: &TableDef, rows: usize) -> Arc<str> {
    static CACHE: OnceLock<HashMap<(&'static str, usize), Arc<str>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        let sizes: Vec<usize> = (0..=MAX_BATCH.ilog2()).map(|p| 1 << p).collect();
        ALL_TABLES
            .iter()
            .flat_map(|t| {
                sizes
                    .iter()
                    .map(|&n| ((t.name, n), Arc::from(tables::upsert_sql_rows(t, n))))
            })
            .collect()
    });
    cache
        .get(&(table.name, rows))
        .cloned()
        .expect("every row's table is in ALL_TABLES, every batch a power of two up to MAX_BATCH")
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

    #[test]
    fn every_batch_shape_has_a_statement() {
        for table in ALL_TABLES {
            for n in 1..=MAX_BATCH {
                let sql = upsert_for(table, batch_len(n));
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
