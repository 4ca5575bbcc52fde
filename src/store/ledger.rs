//! The `fetches` ledger (what was fetched, when, and how it ended) and the
//! `runs` table.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::Store;

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

impl Store {
    /// Every ledger row of one account and endpoint (by name), oldest chunk first.
    pub async fn ledger(&self, appid: &str, endpoint: &str) -> anyhow::Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT appid, endpoint, begin_date, end_date, status, rows, attempts, errcode, error, fetched_at, is_delay
             FROM fetches WHERE appid = ? AND endpoint = ? ORDER BY begin_date, end_date",
        )
        .bind(appid)
        .bind(endpoint)
        .fetch_all(self.pool())
        .await
        .context("cannot read the fetches ledger")?;
        rows.iter().map(parse_row).collect()
    }

    /// Records the start of a run in `runs`; returns its id.
    pub async fn start_run(&self, command: &str, at: DateTime<Utc>) -> anyhow::Result<i64> {
        let row = sqlx::query("INSERT INTO runs (command, started_at) VALUES (?, ?) RETURNING id")
            .bind(command)
            .bind(super::rfc3339(at))
            .fetch_one(self.pool())
            .await
            .context("cannot record the run")?;
        Ok(row.get(0))
    }

    /// Records how a run ended.
    pub async fn finish_run(
        &self,
        id: i64,
        at: DateTime<Utc>,
        outcome: &RunOutcome,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE runs SET finished_at = ?, chunks_ok = ?, chunks_failed = ?, requests = ?, rows = ?, outcome = ? WHERE id = ?",
        )
        .bind(super::rfc3339(at))
        .bind(outcome.chunks_ok as i64)
        .bind(outcome.chunks_failed as i64)
        .bind(outcome.requests as i64)
        .bind(outcome.rows as i64)
        .bind(outcome.outcome)
        .bind(id)
        .execute(self.pool())
        .await
        .context("cannot record the end of the run")?;
        Ok(())
    }

    /// Every appid that appears in the ledger.
    pub async fn ledger_appids(&self) -> anyhow::Result<Vec<String>> {
        let rows = sqlx::query("SELECT DISTINCT appid FROM fetches ORDER BY appid")
            .fetch_all(self.pool())
            .await
            .context("cannot read the fetches ledger")?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }
}

fn parse_row(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<LedgerRow> {
    let date = |name: &str| -> anyhow::Result<NaiveDate> {
        let text: String = row.get(name);
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .with_context(|| format!("bad {name} {text:?} in fetches"))
    };
    let fetched_at: String = row.get("fetched_at");
    Ok(LedgerRow {
        appid: row.get("appid"),
        endpoint: row.get("endpoint"),
        begin: date("begin_date")?,
        end: date("end_date")?,
        ok: row.get::<String, _>("status") == "ok",
        rows: row.get("rows"),
        attempts: row.get("attempts"),
        errcode: row.get("errcode"),
        error: row.get("error"),
        fetched_at: DateTime::parse_from_rfc3339(&fetched_at)
            .with_context(|| format!("bad fetched_at {fetched_at:?} in fetches"))?
            .with_timezone(&Utc),
        is_delay: row.get::<Option<i64>, _>("is_delay").map(|v| v != 0),
    })
}
