//! The group-commit writer: one task that owns the database's writes of a
//! run's chunks and commits the chunks that are ready together.
//!
//! A commit per chunk was the write path's main cost (about 20,800 commits
//! for a full history, each writing its pages to the WAL). A chunk still
//! stands alone: each is written inside its own savepoint of the group's
//! transaction, so a chunk that fails rolls back to its savepoint and the
//! others commit. A chunk's data rows, raw response and ledger row are in
//! that one savepoint. A group closes when it holds `GROUP_CHUNKS` chunks or
//! `GROUP_WINDOW` has passed since its first; whoever submitted a chunk
//! learns that it is stored only from the commit that holds it, so a kill -9
//! loses at most the open group, which the ledger does not list and the
//! next run fetches again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AssertSqlSafe;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::db::{Conn, Db, on_conn};
use super::rows::group_by_table;
use super::types::Timestamp;
use super::{ColumnKind, Row, SqlValue, Upserts, batch_len};

/// Most chunks one group commits. With the window below, a full backfill
/// commits about 200 times instead of 20,800; more per group gained
/// nothing measurable and makes the group a kill -9 can lose larger.
const GROUP_CHUNKS: usize = 128;

/// Longest a group stays open after its first chunk. A daily sync (about 80
/// chunks) closes its last group at most this much later than before.
const GROUP_WINDOW: Duration = Duration::from_millis(100);

/// Chunks waiting for the writer. A full queue makes the fetching side wait,
/// which bounds memory when the database is slower than WeChat.
const QUEUE: usize = 64;

/// What a successful chunk writes.
pub struct ChunkWrite {
    pub appid: String,
    /// The endpoint's name, as the ledger keeps it.
    pub endpoint: &'static str,
    pub begin: NaiveDate,
    pub end: NaiveDate,
    pub rows: Vec<Row>,
    /// Rows counted in the ledger (data rows, without `articles`).
    pub data_rows: usize,
    pub body: String,
    pub attempts: u32,
    pub is_delay: Option<bool>,
    pub fetched_at: DateTime<Utc>,
}

/// What a failed chunk records in the ledger.
pub struct ChunkFailure {
    pub appid: String,
    /// The endpoint's name, as the ledger keeps it.
    pub endpoint: &'static str,
    pub begin: NaiveDate,
    pub end: NaiveDate,
    pub errcode: Option<i64>,
    /// Already redacted.
    pub message: String,
    pub attempts: u32,
    pub fetched_at: DateTime<Utc>,
}

/// One write for the group.
pub(super) enum Job {
    Chunk(ChunkWrite),
    Failure(ChunkFailure),
}

enum Message {
    Job(Job, oneshot::Sender<anyhow::Result<()>>),
    /// Commit what is open now, then answer.
    Flush(oneshot::Sender<()>),
}

/// The handle the store keeps; the task ends when every handle is dropped.
#[derive(Clone)]
pub(super) struct Writer {
    queue: mpsc::Sender<Message>,
}

/// A submitted write: resolves when the group holding it has committed (or
/// failed, or the chunk failed alone).
pub struct Committed(oneshot::Receiver<anyhow::Result<()>>);

impl Committed {
    /// Waits for the commit.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.0
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the database writer stopped")))
    }
}

impl Writer {
    pub(super) fn start(db: Db, upserts: Arc<Upserts>) -> Writer {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, upserts, jobs));
        Writer { queue }
    }

    pub(super) async fn submit(&self, job: Job) -> Committed {
        let (reply, committed) = oneshot::channel();
        // If the task is gone the reply is dropped too, and `wait` says so.
        let _ = self.queue.send(Message::Job(job, reply)).await;
        Committed(committed)
    }

    /// Returns once everything submitted before has been committed or failed.
    pub(super) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

async fn run(db: Db, upserts: Arc<Upserts>, mut queue: mpsc::Receiver<Message>) {
    while let Some(message) = queue.recv().await {
        let (job, reply) = match message {
            Message::Flush(done) => {
                let _ = done.send(());
                continue;
            }
            Message::Job(job, reply) => (job, reply),
        };
        let mut group = match Group::begin(&db).await {
            Ok(group) => group,
            Err(e) => {
                let _ = reply.send(Err(e));
                continue;
            }
        };
        group.add(&upserts, job, reply).await;
        let deadline = Instant::now() + GROUP_WINDOW;
        let mut flushed = None;
        // The window is checked before each wait: `timeout_at` polls the
        // queue first, so a writer slower than its queue (PostgreSQL's round
        // trips) would otherwise keep one group open for the whole run.
        while group.is_open() && group.len() < GROUP_CHUNKS && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, queue.recv()).await {
                Ok(Some(Message::Job(job, reply))) => group.add(&upserts, job, reply).await,
                Ok(Some(Message::Flush(done))) => {
                    flushed = Some(done);
                    break;
                }
                // Every handle dropped, or the window is over.
                Ok(None) | Err(_) => break,
            }
        }
        group.commit().await;
        if let Some(done) = flushed {
            let _ = done.send(());
        }
    }
}

/// One open group transaction and the writes that will learn its outcome.
struct Group {
    /// `None` once the transaction is lost (its writes have been told).
    conn: Option<Conn>,
    waiting: Vec<oneshot::Sender<anyhow::Result<()>>>,
    /// The savepoint of the last job is still open. It is released when the
    /// next job starts, in the same round trip as that job's savepoint.
    savepoint: bool,
}

impl Group {
    async fn begin(db: &Db) -> anyhow::Result<Group> {
        let mut conn = db.acquire().await?;
        if let Err(e) = conn.run("BEGIN").await {
            conn.discard();
            return Err(e).context("cannot start a transaction");
        }
        Ok(Group {
            conn: Some(conn),
            waiting: Vec::new(),
            savepoint: false,
        })
    }

    fn is_open(&self) -> bool {
        self.conn.is_some()
    }

    fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Writes one job inside its own savepoint. A job that fails is told at
    /// once and leaves the group as it was; if even the rollback to its
    /// savepoint fails, the whole transaction is gone and every job of the
    /// group is told.
    async fn add(
        &mut self,
        upserts: &Upserts,
        job: Job,
        reply: oneshot::Sender<anyhow::Result<()>>,
    ) {
        let Some(conn) = self.conn.as_mut() else {
            let _ = reply.send(Err(anyhow::anyhow!("the group transaction was lost")));
            return;
        };
        // One round trip: keep the last job's work (release its savepoint)
        // and mark where this one starts.
        let start = if self.savepoint {
            "RELEASE SAVEPOINT chunk; SAVEPOINT chunk"
        } else {
            "SAVEPOINT chunk"
        };
        if let Err(e) = conn.run(start).await {
            // Which of the two ran is unknown: a rollback to "chunk" could
            // undo the last job, already counted. The group is given up.
            let error = anyhow::Error::new(e).context("cannot start a savepoint");
            let _ = reply.send(Err(anyhow::anyhow!("{error:#}")));
            self.lose(error);
            return;
        }
        self.savepoint = true;
        let written = match &job {
            Job::Chunk(chunk) => write_chunk(conn, upserts, chunk).await,
            Job::Failure(failure) => write_failure(conn, failure).await,
        };
        match written {
            Ok(()) => self.waiting.push(reply),
            Err(e) => {
                // The savepoint stays (empty) and is released by the next job.
                let undone = conn.run("ROLLBACK TO SAVEPOINT chunk").await;
                let _ = reply.send(Err(e));
                if let Err(lost) = undone {
                    self.lose(
                        anyhow::Error::new(lost).context(
                            "the database rolled the group back (disk full or I/O error?)",
                        ),
                    );
                }
            }
        }
    }

    /// Commits, and tells every write of the group how it ended.
    async fn commit(mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        match conn.run("COMMIT").await {
            Ok(()) => {
                for reply in self.waiting.drain(..) {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                self.conn = Some(conn);
                self.lose(anyhow::Error::new(e).context("cannot commit"));
            }
        }
    }

    /// The transaction is gone: every write it held failed, and the
    /// connection is closed rather than reused.
    fn lose(&mut self, error: anyhow::Error) {
        let message = format!("{error:#}");
        for reply in self.waiting.drain(..) {
            let _ = reply.send(Err(anyhow::anyhow!("{message}")));
        }
        if let Some(conn) = self.conn.take() {
            conn.discard();
        }
    }
}

/// A chunk's data rows, raw response and ledger row.
async fn write_chunk(conn: &mut Conn, upserts: &Upserts, chunk: &ChunkWrite) -> anyhow::Result<()> {
    upsert_rows(conn, upserts, &chunk.rows).await?;
    let fetched_at = Timestamp(chunk.fetched_at);
    if let Conn::Postgres(c) = conn {
        // PostgreSQL: the raw response and the ledger row in one statement
        // (one round trip), the raw response's insert as a CTE.
        return sqlx::query(PG_RAW_AND_LEDGER)
            .bind(&chunk.appid)
            .bind(chunk.endpoint)
            .bind(chunk.begin)
            .bind(chunk.end)
            .bind(fetched_at)
            .bind(&chunk.body)
            .bind(chunk.data_rows as i64)
            .bind(i64::from(chunk.attempts))
            .bind(chunk.is_delay.map(i64::from))
            .execute(&mut **c)
            .await
            .map(drop)
            .context("cannot write the raw response and the ledger row");
    }
    on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO raw_responses (appid, endpoint, begin_date, end_date, fetched_at, body)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (appid, endpoint, begin_date, end_date)
             DO UPDATE SET fetched_at = excluded.fetched_at, body = excluded.body",
        )
        .bind(&chunk.appid)
        .bind(chunk.endpoint)
        .bind(chunk.begin)
        .bind(chunk.end)
        .bind(fetched_at)
        .bind(&chunk.body)
        .execute(&mut **c)
        .await
        .map(drop)
    })
    .context("cannot write the raw response")?;
    upsert_ledger(
        conn,
        LedgerWrite {
            appid: &chunk.appid,
            endpoint: chunk.endpoint,
            begin: chunk.begin,
            end: chunk.end,
            ok: true,
            rows: chunk.data_rows as i64,
            attempts: chunk.attempts,
            errcode: None,
            error: None,
            fetched_at,
            is_delay: chunk.is_delay,
        },
    )
    .await
}

/// A stored chunk's raw response and ledger row, for PostgreSQL (which,
/// unlike SQLite, runs an INSERT inside WITH).
const PG_RAW_AND_LEDGER: &str = "WITH raw AS (
        INSERT INTO raw_responses (appid, endpoint, begin_date, end_date, fetched_at, body)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (appid, endpoint, begin_date, end_date)
        DO UPDATE SET fetched_at = excluded.fetched_at, body = excluded.body
    )
    INSERT INTO fetches (appid, endpoint, begin_date, end_date, status, rows, attempts, errcode, error, fetched_at, is_delay)
    VALUES ($1, $2, $3, $4, 'ok', $7, $8, NULL, NULL, $5, $9)
    ON CONFLICT (appid, endpoint, begin_date, end_date) DO UPDATE SET
      status = excluded.status, rows = excluded.rows, attempts = excluded.attempts,
      errcode = excluded.errcode, error = excluded.error, fetched_at = excluded.fetched_at,
      is_delay = excluded.is_delay";

async fn write_failure(conn: &mut Conn, failure: &ChunkFailure) -> anyhow::Result<()> {
    upsert_ledger(
        conn,
        LedgerWrite {
            appid: &failure.appid,
            endpoint: failure.endpoint,
            begin: failure.begin,
            end: failure.end,
            ok: false,
            rows: 0,
            attempts: failure.attempts,
            errcode: failure.errcode,
            error: Some(&failure.message),
            fetched_at: Timestamp(failure.fetched_at),
            is_delay: None,
        },
    )
    .await
}

/// Upserts `rows` (inside the caller's transaction): multi-row statements,
/// one table at a time, rows with equal keys merged first. One statement
/// per row cost a round trip to sqlx's database thread each, which
/// dominated a full backfill.
pub(super) async fn upsert_rows(
    conn: &mut Conn,
    upserts: &Upserts,
    rows: &[Row],
) -> anyhow::Result<()> {
    for (table, rows) in group_by_table(rows) {
        let written = match &mut *conn {
            Conn::Sqlite(c) => {
                let mut rest = rows.as_slice();
                let mut written = Ok(());
                while !rest.is_empty() && written.is_ok() {
                    let (batch, after) = rest.split_at(batch_len(rest.len()));
                    rest = after;
                    let mut query = sqlx::query(AssertSqlSafe(upserts.sqlite(table, batch.len())));
                    for value in batch.iter().flat_map(|row| &row.values) {
                        query = match value {
                            SqlValue::Null => query.bind(None::<i64>),
                            SqlValue::Int(v) => query.bind(*v),
                            SqlValue::Real(v) => query.bind(*v),
                            SqlValue::Text(v) => query.bind(v.as_str()),
                        };
                    }
                    written = query.execute(&mut **c).await.map(drop);
                }
                written
            }
            Conn::Postgres(c) => {
                let (sql, kinds) = upserts.postgres(table);
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for (column, kind) in kinds.iter().enumerate() {
                    let values = rows.iter().map(|row| &row.values[column]);
                    query = match kind {
                        ColumnKind::Int => query.bind(
                            values
                                .map(|v| match v {
                                    SqlValue::Int(i) => Ok(Some(*i)),
                                    SqlValue::Null => Ok(None),
                                    other => Err(misfit(table, column, other)),
                                })
                                .collect::<anyhow::Result<Vec<Option<i64>>>>()?,
                        ),
                        ColumnKind::Real => query.bind(
                            values
                                .map(|v| match v {
                                    SqlValue::Real(r) => Ok(Some(*r)),
                                    SqlValue::Int(i) => Ok(Some(*i as f64)),
                                    SqlValue::Null => Ok(None),
                                    other => Err(misfit(table, column, other)),
                                })
                                .collect::<anyhow::Result<Vec<Option<f64>>>>()?,
                        ),
                        ColumnKind::Text => query.bind(
                            values
                                .map(|v| match v {
                                    SqlValue::Text(t) => Ok(Some(t.as_str())),
                                    SqlValue::Null => Ok(None),
                                    other => Err(misfit(table, column, other)),
                                })
                                .collect::<anyhow::Result<Vec<Option<&str>>>>()?,
                        ),
                    };
                }
                query.execute(&mut **c).await.map(drop)
            }
        };
        written.with_context(|| format!("cannot write rows of {}", table.name))?;
    }
    Ok(())
}

/// A value of the wrong kind for its column: a mapper's bug, reported
/// rather than stored as something else.
fn misfit(
    table: &crate::store::tables::TableDef,
    column: usize,
    value: &SqlValue,
) -> anyhow::Error {
    let name = table.all_columns().nth(column).unwrap_or("?");
    let kind = match value {
        SqlValue::Null => "NULL",
        SqlValue::Int(_) => "an integer",
        SqlValue::Real(_) => "a real",
        SqlValue::Text(_) => "text",
    };
    anyhow::anyhow!("{kind} does not fit column {name} of {}", table.name)
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
    fetched_at: Timestamp,
    is_delay: Option<bool>,
}

async fn upsert_ledger(conn: &mut Conn, row: LedgerWrite<'_>) -> anyhow::Result<()> {
    on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO fetches (appid, endpoint, begin_date, end_date, status, rows, attempts, errcode, error, fetched_at, is_delay)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (appid, endpoint, begin_date, end_date) DO UPDATE SET
               status = excluded.status, rows = excluded.rows, attempts = excluded.attempts,
               errcode = excluded.errcode, error = excluded.error, fetched_at = excluded.fetched_at,
               is_delay = excluded.is_delay",
        )
        .bind(row.appid)
        .bind(row.endpoint)
        .bind(row.begin)
        .bind(row.end)
        .bind(if row.ok { "ok" } else { "error" })
        .bind(row.rows)
        .bind(i64::from(row.attempts))
        .bind(row.errcode)
        .bind(row.error)
        .bind(row.fetched_at)
        .bind(row.is_delay.map(i64::from))
        .execute(&mut **c)
        .await
        .map(drop)
    })
    .context("cannot write the ledger row")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::tables::USER_DAILY;

    fn chunk(day: &str) -> ChunkWrite {
        let date: NaiveDate = day.parse().unwrap();
        let mut row = Row::new(&USER_DAILY, "wx1");
        row.set("ref_date", day)
            .set("user_source", 0)
            .set("new_user", 5);
        ChunkWrite {
            appid: "wx1".to_owned(),
            endpoint: "getusersummary",
            begin: date,
            end: date,
            rows: vec![row],
            data_rows: 1,
            body: format!("{{\"day\":\"{day}\"}}"),
            attempts: 1,
            is_delay: None,
            fetched_at: Utc::now(),
        }
    }

    async fn count(store: &Store, sql: &str) -> i64 {
        sqlx::query_scalar(AssertSqlSafe(sql.to_owned()))
            .fetch_one(store.sqlite_pool().unwrap())
            .await
            .unwrap()
    }

    /// Three chunks in one group; the database refuses the middle one's row.
    /// It fails alone: its data, raw response and ledger row are all absent,
    /// and the other two are stored whole.
    #[tokio::test]
    async fn a_chunk_that_fails_rolls_back_alone_and_the_group_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db").display().to_string())
            .await
            .unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON user_daily WHEN NEW.ref_date = '2026-01-02'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .execute(store.sqlite_pool().unwrap())
        .await
        .unwrap();
        // Submitted back to back, well inside one group's window.
        let mut committed = Vec::new();
        for day in ["2026-01-01", "2026-01-02", "2026-01-03"] {
            committed.push(store.submit_chunk(chunk(day)).await);
        }
        let mut results = Vec::new();
        for c in committed {
            results.push(c.wait().await);
        }
        assert!(results[0].is_ok(), "{:?}", results[0]);
        let refused = results[1].as_ref().unwrap_err().to_string();
        assert!(refused.contains("user_daily"), "{refused}");
        assert!(results[2].is_ok(), "{:?}", results[2]);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM user_daily").await, 2);
        assert_eq!(count(&store, "SELECT COUNT(*) FROM raw_responses").await, 2);
        assert_eq!(
            count(
                &store,
                "SELECT COUNT(*) FROM fetches WHERE begin_date = '2026-01-02'"
            )
            .await,
            0
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM fetches WHERE status = 'ok'").await,
            2
        );
        store.close().await;
    }

    /// A group holds what was submitted together, and no more than
    /// `GROUP_CHUNKS`: every chunk is stored, each exactly once.
    #[tokio::test]
    async fn many_chunks_are_stored_once_each_across_groups() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db").display().to_string())
            .await
            .unwrap();
        let first: NaiveDate = "2025-01-01".parse().unwrap();
        let days: Vec<String> = (0..GROUP_CHUNKS as i64 * 2 + 7)
            .map(|i| (first + chrono::Days::new(i as u64)).to_string())
            .collect();
        let submitter = store.clone();
        let submitted = tokio::spawn(async move {
            let mut committed = Vec::new();
            for day in &days {
                committed.push(submitter.submit_chunk(chunk(day)).await);
            }
            committed
        });
        for c in submitted.await.unwrap() {
            c.wait().await.unwrap();
        }
        let expected = GROUP_CHUNKS as i64 * 2 + 7;
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM user_daily").await,
            expected
        );
        assert_eq!(
            count(&store, "SELECT COUNT(*) FROM fetches").await,
            expected
        );
        store.close().await;
    }
}
