//! The catalogue's state (`catalogue_state`) and its pages
//! (`published_articles`): each page is written with the state it leaves,
//! in one transaction, so that a restart keeps to the day's budget and
//! resumes the sweep where it stood.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::AssertSqlSafe;

use super::db::{Conn, on_conn, on_pool};
use super::{Row, Store, Timestamp, rfc3339};

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

/// A `catalogue_state` row as both databases return it.
#[derive(sqlx::FromRow)]
struct StateRow {
    calls_date: Option<NaiveDate>,
    calls: i64,
    next_offset: i64,
    sweep_complete: i64,
    total_count: Option<i64>,
    last_call_at: Option<Timestamp>,
    last_errcode: Option<i64>,
    last_error: Option<String>,
    quota_spent_date: Option<NaiveDate>,
}

impl Store {
    /// The catalogue state of `appid` (the default before its first call).
    pub async fn catalogue_state(&self, appid: &str) -> anyhow::Result<CatalogueState> {
        let sql =
            "SELECT calls_date, calls, next_offset, sweep_complete, total_count, last_call_at,
                    last_errcode, last_error, quota_spent_date
             FROM catalogue_state WHERE appid = $1";
        let row: Option<StateRow> = on_pool!(&self.db, pool => {
            sqlx::query_as(sql).bind(appid).fetch_optional(pool).await
        })
        .context("cannot read the catalogue state")?;
        let Some(row) = row else {
            return Ok(CatalogueState::default());
        };
        Ok(CatalogueState {
            calls_date: row.calls_date,
            calls: row.calls.max(0) as u32,
            next_offset: row.next_offset.max(0) as u32,
            sweep_complete: row.sweep_complete != 0,
            total_count: row.total_count,
            last_call_at: row.last_call_at.map(|t| rfc3339(t.0)),
            last_errcode: row.last_errcode,
            last_error: row.last_error,
            quota_spent_date: row.quota_spent_date,
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
        let placeholders: Vec<String> = (2..article_ids.len() + 2)
            .map(|n| format!("${n}"))
            .collect();
        let sql = format!(
            "SELECT article_id, MAX(update_time) FROM published_articles
             WHERE appid = $1 AND article_id IN ({}) GROUP BY article_id",
            placeholders.join(", ")
        );
        let rows: Vec<(String, Option<i64>)> = on_pool!(&self.db, pool => {
            let mut query = sqlx::query_as(AssertSqlSafe(sql)).bind(appid);
            for id in article_ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await
        })
        .context("cannot read the stored catalogue")?;
        Ok(rows.into_iter().collect())
    }

    /// Stores one page's rows and the state it leaves, in one transaction.
    pub async fn write_catalogue_page(
        &self,
        appid: &str,
        rows: &[Row],
        state: &CatalogueState,
    ) -> anyhow::Result<()> {
        let mut conn = self.db.acquire().await?;
        let result = async {
            conn.run("BEGIN")
                .await
                .context("cannot start a transaction")?;
            super::writer::upsert_rows(&mut conn, &self.upserts, rows).await?;
            save_state(&mut conn, appid, state).await?;
            conn.run("COMMIT")
                .await
                .context("cannot commit the catalogue page")
        }
        .await;
        if result.is_err() {
            conn.discard();
        }
        result
    }

    /// Stores the state alone (after a failed call).
    pub async fn save_catalogue_state(
        &self,
        appid: &str,
        state: &CatalogueState,
    ) -> anyhow::Result<()> {
        let mut conn = self.db.acquire().await?;
        let result = save_state(&mut conn, appid, state).await;
        if result.is_err() {
            conn.discard();
        }
        result
    }

    /// Published articles stored for `appid`.
    pub async fn catalogue_articles(&self, appid: &str) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM published_articles WHERE appid = $1";
        let (count,): (i64,) = on_pool!(&self.db, pool => {
            sqlx::query_as(sql).bind(appid).fetch_one(pool).await
        })
        .context("cannot count the stored catalogue")?;
        Ok(count)
    }
}

async fn save_state(conn: &mut Conn, appid: &str, state: &CatalogueState) -> anyhow::Result<()> {
    let last_call_at = state
        .last_call_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| Timestamp(t.with_timezone(&Utc)));
    on_conn!(conn, c => {
        sqlx::query(
            "INSERT INTO catalogue_state (appid, calls_date, calls, next_offset, sweep_complete,
                 total_count, last_call_at, last_errcode, last_error, quota_spent_date)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (appid) DO UPDATE SET calls_date = excluded.calls_date,
                 calls = excluded.calls, next_offset = excluded.next_offset,
                 sweep_complete = excluded.sweep_complete, total_count = excluded.total_count,
                 last_call_at = excluded.last_call_at, last_errcode = excluded.last_errcode,
                 last_error = excluded.last_error, quota_spent_date = excluded.quota_spent_date",
        )
        .bind(appid)
        .bind(state.calls_date)
        .bind(i64::from(state.calls))
        .bind(i64::from(state.next_offset))
        .bind(i64::from(state.sweep_complete))
        .bind(state.total_count)
        .bind(last_call_at)
        .bind(state.last_errcode)
        .bind(state.last_error.as_deref())
        .bind(state.quota_spent_date)
        .execute(&mut **c)
        .await
        .map(drop)
    })
    .context("cannot write the catalogue state")?;
    Ok(())
}
