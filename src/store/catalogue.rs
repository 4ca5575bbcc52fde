//! The catalogue's state (`catalogue_state`) and its pages
//! (`published_articles`): each page is written with the state it leaves,
//! in one transaction, so that a restart keeps to the day's budget and
//! resumes the sweep where it stood.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::{Row, Store, rfc3339};

/// Where an account's catalogue sweep stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogueState {
    /// The China day `calls` counts for.
    pub calls_date: Option<NaiveDate>,
    /// Requests sent on `calls_date`.
    pub calls: u32,
    /// Where the unfinished sweep goes on.
    pub next_offset: u32,
    /// Every item has been read at least once since the sweep began.
    pub sweep_complete: bool,
    /// `total_count` of the latest page.
    pub total_count: Option<i64>,
    pub last_call_at: Option<String>,
    pub last_errcode: Option<i64>,
    /// Redacted when written.
    pub last_error: Option<String>,
    /// The China day a 45009 stopped the catalogue.
    pub quota_spent_date: Option<NaiveDate>,
}

impl CatalogueState {
    /// Calls already made on `today`.
    pub fn calls_on(&self, today: NaiveDate) -> u32 {
        if self.calls_date == Some(today) {
            self.calls
        } else {
            0
        }
    }

    /// Counts `attempts` more calls on `today`.
    pub fn count_calls(&mut self, today: NaiveDate, attempts: u32, at: DateTime<Utc>) {
        self.calls = self.calls_on(today) + attempts;
        self.calls_date = Some(today);
        self.last_call_at = Some(rfc3339(at));
    }
}

impl Store {
    /// The catalogue state of `appid` (the default before its first call).
    pub async fn catalogue_state(&self, appid: &str) -> anyhow::Result<CatalogueState> {
        let row = sqlx::query(
            "SELECT calls_date, calls, next_offset, sweep_complete, total_count, last_call_at,
                    last_errcode, last_error, quota_spent_date
             FROM catalogue_state WHERE appid = ?",
        )
        .bind(appid)
        .fetch_optional(self.pool())
        .await
        .context("cannot read the catalogue state")?;
        let Some(row) = row else {
            return Ok(CatalogueState::default());
        };
        let date = |name: &str| -> Option<NaiveDate> {
            row.get::<Option<String>, _>(name)
                .and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok())
        };
        Ok(CatalogueState {
            calls_date: date("calls_date"),
            calls: row.get::<i64, _>("calls").max(0) as u32,
            next_offset: row.get::<i64, _>("next_offset").max(0) as u32,
            sweep_complete: row.get::<i64, _>("sweep_complete") != 0,
            total_count: row.get("total_count"),
            last_call_at: row.get("last_call_at"),
            last_errcode: row.get("last_errcode"),
            last_error: row.get("last_error"),
            quota_spent_date: date("quota_spent_date"),
        })
    }

    /// The stored `update_time` of each of `article_ids` that is stored.
    pub async fn catalogue_update_times(
        &self,
        appid: &str,
        article_ids: &[&str],
    ) -> anyhow::Result<HashMap<String, Option<i64>>> {
        if article_ids.is_empty() {
            return Ok(HashMap::new());
        }
        // One query per page rather than one per item; only placeholders are
        // formatted into the SQL, the ids are bound.
        let sql = format!(
            "SELECT article_id, MAX(update_time) FROM published_articles
             WHERE appid = ? AND article_id IN ({}) GROUP BY article_id",
            vec!["?"; article_ids.len()].join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(appid);
        for id in article_ids {
            query = query.bind(*id);
        }
        let rows = query
            .fetch_all(self.pool())
            .await
            .context("cannot read the stored catalogue")?;
        let out = rows
            .iter()
            .map(|row| (row.get::<String, _>(0), row.get::<Option<i64>, _>(1)))
            .collect();
        Ok(out)
    }

    /// Stores one page's rows and the state it leaves, in one transaction.
    pub async fn write_catalogue_page(
        &self,
        appid: &str,
        rows: &[Row],
        state: &CatalogueState,
    ) -> anyhow::Result<()> {
        let mut conn = self.connection().await?;
        let result = async {
            let mut tx = sqlx::Connection::begin(&mut *conn)
                .await
                .context("cannot start a transaction")?;
            super::upsert_rows(&mut tx, rows).await?;
            save_state(&mut tx, appid, state).await?;
            tx.commit()
                .await
                .context("cannot commit the catalogue page")
        }
        .await;
        super::discard_if_failed(&mut conn, &result);
        result
    }

    /// Stores the state alone (after a failed call).
    pub async fn save_catalogue_state(
        &self,
        appid: &str,
        state: &CatalogueState,
    ) -> anyhow::Result<()> {
        let mut conn = self.connection().await?;
        let result = save_state(&mut conn, appid, state).await;
        super::discard_if_failed(&mut conn, &result);
        result
    }

    /// Published articles stored for `appid`.
    pub async fn catalogue_articles(&self, appid: &str) -> anyhow::Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) FROM published_articles WHERE appid = ?")
            .bind(appid)
            .fetch_one(self.pool())
            .await
            .context("cannot count the stored catalogue")?;
        Ok(row.get(0))
    }
}

async fn save_state(
    tx: &mut sqlx::SqliteConnection,
    appid: &str,
    state: &CatalogueState,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO catalogue_state (appid, calls_date, calls, next_offset, sweep_complete,
             total_count, last_call_at, last_errcode, last_error, quota_spent_date)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (appid) DO UPDATE SET calls_date = excluded.calls_date,
             calls = excluded.calls, next_offset = excluded.next_offset,
             sweep_complete = excluded.sweep_complete, total_count = excluded.total_count,
             last_call_at = excluded.last_call_at, last_errcode = excluded.last_errcode,
             last_error = excluded.last_error, quota_spent_date = excluded.quota_spent_date",
    )
    .bind(appid)
    .bind(state.calls_date.map(|d| d.to_string()))
    .bind(i64::from(state.calls))
    .bind(i64::from(state.next_offset))
    .bind(i64::from(state.sweep_complete))
    .bind(state.total_count)
    .bind(state.last_call_at.as_deref())
    .bind(state.last_errcode)
    .bind(state.last_error.as_deref())
    .bind(state.quota_spent_date.map(|d| d.to_string()))
    .execute(&mut *tx)
    .await
    .context("cannot write the catalogue state")?;
    Ok(())
}
