//! `quota_seen`: the quota last looked up per account and endpoint, for
//! `status` (SPEC section 10). Portable SQL: `$N` placeholders, dates bound as
//! `NaiveDate`, so that PostgreSQL runs it unchanged.

use anyhow::Context;
use chrono::NaiveDate;
use sqlx::Row as _;

use super::db::on_pool;
use super::{Store, Timestamp, rfc3339};
use crate::wechat::quota::QuotaSeen;

/// One row of `quota_seen`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QuotaRow {
    pub endpoint: String,
    pub seen_at: String,
    /// The China day of the look-up (the day the quota counts for).
    pub seen_date: NaiveDate,
    pub daily_limit: i64,
    pub used: i64,
    pub remain: i64,
    pub reserve: i64,
    /// Requests the run sent after the look-up.
    pub sent: i64,
    pub call_count: Option<i64>,
    pub refresh_second: Option<i64>,
}

impl QuotaRow {
    /// Requests left of the daily limit after the run (an estimate: other
    /// systems of the appid may have called since).
    pub fn left(&self) -> i64 {
        (self.remain - self.sent).max(0)
    }

    /// The run used all it was allowed to send (`remain - reserve`) that day.
    pub fn spent_on(&self, today: NaiveDate) -> bool {
        self.seen_date == today && self.sent >= (self.remain - self.reserve).max(0)
    }
}

impl Store {
    /// Records the look-ups of one account's run (made on China day `day`).
    pub async fn record_quota(
        &self,
        appid: &str,
        day: NaiveDate,
        seen: &[QuotaSeen],
    ) -> anyhow::Result<()> {
        for s in seen {
            on_pool!(&self.db, pool => sqlx::query(
                "INSERT INTO quota_seen (appid, endpoint, seen_at, seen_date, daily_limit, used, remain, reserve, sent, call_count, refresh_second)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (appid, endpoint) DO UPDATE SET
                   seen_at = excluded.seen_at, seen_date = excluded.seen_date,
                   daily_limit = excluded.daily_limit, used = excluded.used,
                   remain = excluded.remain, reserve = excluded.reserve, sent = excluded.sent,
                   call_count = excluded.call_count, refresh_second = excluded.refresh_second",
            )
            .bind(appid)
            .bind(s.endpoint.name())
            .bind(Timestamp(s.seen_at))
            .bind(day)
            .bind(to_i64(s.daily_limit))
            .bind(to_i64(s.used))
            .bind(to_i64(s.remain))
            .bind(to_i64(s.reserve))
            .bind(to_i64(s.sent))
            .bind(s.call_count.map(to_i64))
            .bind(s.refresh_second.map(to_i64))
            .execute(pool)
            .await
            .map(drop))
            .context("cannot record the quota")?;
        }
        Ok(())
    }

    /// The quota last seen for each endpoint of `appid`.
    pub async fn quota_seen(&self, appid: &str) -> anyhow::Result<Vec<QuotaRow>> {
        on_pool!(&self.db, pool => {
            let rows = sqlx::query(
                "SELECT endpoint, seen_at, seen_date, daily_limit, used, remain, reserve, sent, call_count, refresh_second
                 FROM quota_seen WHERE appid = $1 ORDER BY endpoint",
            )
            .bind(appid)
            .fetch_all(pool)
            .await
            .context("cannot read quota_seen")?;
            rows.iter()
                .map(|r| {
                    Ok(QuotaRow {
                        endpoint: r.try_get(0)?,
                        seen_at: rfc3339(r.try_get::<Timestamp, _>(1)?.0),
                        seen_date: r.try_get(2)?,
                        daily_limit: r.try_get(3)?,
                        used: r.try_get(4)?,
                        remain: r.try_get(5)?,
                        reserve: r.try_get(6)?,
                        sent: r.try_get(7)?,
                        call_count: r.try_get(8)?,
                        refresh_second: r.try_get(9)?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .context("cannot read quota_seen")
        })
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
