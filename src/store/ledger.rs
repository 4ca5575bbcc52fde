//! The `fetches` ledger (what was fetched, when, and how it ended) and the
//! `runs` table.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};

use super::db::on_pool;
use super::{Store, Timestamp};

/// How a run ended, for the `runs` table.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// `ok`, `failures` or `cancelled`.
    pub outcome: &'static str,
    pub chunks_ok: usize,
    pub chunks_failed: usize,
    pub requests: u64,
    pub rows: u64,
}

/// One row of `fetches`.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub appid: String,
    pub endpoint: String,
    pub begin: NaiveDate,
    pub end: NaiveDate,
    pub ok: bool,
    pub rows: i64,
    pub attempts: i64,
    pub errcode: Option<i64>,
    pub error: Option<String>,
    pub fetched_at: DateTime<Utc>,
    pub is_delay: Option<bool>,
}

/// A `fetches` row as both databases return it.
#[derive(sqlx::FromRow)]
struct FetchRow {
    appid: String,
    endpoint: String,
    begin_date: NaiveDate,
    end_date: NaiveDate,
    status: String,
    rows: i64,
    attempts: i64,
    errcode: Option<i64>,
    error: Option<String>,
    fetched_at: Timestamp,
    is_delay: Option<i64>,
}

impl From<FetchRow> for LedgerRow {
    fn from(row: FetchRow) -> LedgerRow {
        LedgerRow {
            appid: row.appid,
            endpoint: row.endpoint,
            begin: row.begin_date,
            end: row.end_date,
            ok: row.status == "ok",
            rows: row.rows,
            attempts: row.attempts,
            errcode: row.errcode,
            error: row.error,
            fetched_at: row.fetched_at.0,
            is_delay: row.is_delay.map(|v| v != 0),
        }
    }
}

impl Store {
    /// Every ledger row of one account and endpoint (by name), oldest chunk first.
    pub async fn ledger(&self, appid: &str, endpoint: &str) -> anyhow::Result<Vec<LedgerRow>> {
        let sql = "SELECT appid, endpoint, begin_date, end_date, status, rows, attempts, errcode, error, fetched_at, is_delay
             FROM fetches WHERE appid = $1 AND endpoint = $2 ORDER BY begin_date, end_date";
        let rows: Vec<FetchRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(sql).bind(appid).bind(endpoint).fetch_all(pool).await
        })
        .context("cannot read the fetches ledger")?;
        Ok(rows.into_iter().map(LedgerRow::from).collect())
    }

    /// Records the start of a run in `runs`; returns its id.
    pub async fn start_run(&self, command: &str, at: DateTime<Utc>) -> anyhow::Result<i64> {
        let sql = "INSERT INTO runs (command, started_at) VALUES ($1, $2) RETURNING id";
        let (id,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as(sql).bind(command).bind(Timestamp(at)).fetch_one(pool).await
        })
        .context("cannot record the run")?;
        Ok(id)
    }

    /// Records how a run ended.
    pub async fn finish_run(
        &self,
        id: i64,
        at: DateTime<Utc>,
        outcome: &RunOutcome,
    ) -> anyhow::Result<()> {
        let sql = "UPDATE runs SET finished_at = $1, chunks_ok = $2, chunks_failed = $3, requests = $4, rows = $5, outcome = $6 WHERE id = $7";
        on_pool!(&self.db, pool => {
            sqlx::query(sql)
                .bind(Timestamp(at))
                .bind(outcome.chunks_ok as i64)
                .bind(outcome.chunks_failed as i64)
                .bind(outcome.requests as i64)
                .bind(outcome.rows as i64)
                .bind(outcome.outcome)
                .bind(id)
                .execute(pool)
                .await
                .map(drop)
        })
        .context("cannot record the end of the run")?;
        Ok(())
    }

    /// Every appid that appears in the ledger.
    pub async fn ledger_appids(&self) -> anyhow::Result<Vec<String>> {
        let sql = "SELECT DISTINCT appid FROM fetches ORDER BY appid";
        let rows: Vec<(String,)> = on_pool!(&self.db, pool => {
            sqlx::query_as(sql).fetch_all(pool).await
        })
        .context("cannot read the fetches ledger")?;
        Ok(rows.into_iter().map(|(appid,)| appid).collect())
    }
}
