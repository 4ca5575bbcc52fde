//! Every query of `wxcube report` (SPEC section 11), and nothing else.
//!
//! The SQL here is meant to run unchanged on SQLite and PostgreSQL: `$N`
//! placeholders (sqlx-sqlite accepts them, and one number may repeat), dates
//! bound and decoded as `NaiveDate` (TEXT `YYYY-MM-DD` in SQLite, `date` in
//! PostgreSQL), times decoded as `DateTime<Utc>`, sums cast to BIGINT
//! (PostgreSQL's SUM of bigint is numeric), no SQLite-only functions and no
//! boolean-valued columns. The report module gets plain structs and never
//! touches sqlx.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row as _;

use super::Store;
use super::db::on_pool;

/// Runs `$sql` with `$binds` on either database and builds one value per row
/// with `$build` (which reads the row `$r` with `try_get`).
macro_rules! query_rows {
    ($store:expr, $sql:expr, [$($bind:expr),*], $read:literal, $bad:literal, |$r:ident| $build:expr) => {
        on_pool!(&$store.db, pool => {
            let rows = sqlx::query($sql)
                $(.bind($bind))*
                .fetch_all(pool)
                .await
                .context($read)?;
            rows.iter()
                .map(|$r| Ok($build))
                .collect::<Result<_, sqlx::Error>>()
                .context($bad)
        })
    };
}

/// One day of `v_followers`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FollowerDay {
    pub date: NaiveDate,
    /// Summed over follow sources; `None` when the day has no `user_daily` row.
    pub new_user: Option<i64>,
    pub cancel_user: Option<i64>,
    pub net_user: Option<i64>,
    /// `None` when `user_cumulate` has no row for the day.
    pub cumulate_user: Option<i64>,
}

/// Readers of one day over all channels, from one family.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReadDay {
    pub date: NaiveDate,
    pub read_user: i64,
    /// `getbizsummary` (biz_daily) or `getuserread` (user_read_daily, 99999999).
    pub source: &'static str,
}

/// Readers of one day from one channel (legacy) or scene (current family).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelDay {
    pub date: NaiveDate,
    /// `user_source` as text (legacy) or `scene_desc` (current family).
    pub code: String,
    /// The English name from the lookup table, else the code.
    pub name: String,
    pub read_user: Option<i64>,
}

/// Shares of one day in one scene (`user_share_daily`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ShareDay {
    pub date: NaiveDate,
    pub share_scene: i64,
    pub scene: String,
    pub share_user: Option<i64>,
    pub share_count: Option<i64>,
}

/// Account-wide sharers of one day (`biz_daily.share_user`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BizShareDay {
    pub date: NaiveDate,
    pub share_user: i64,
}

/// Readers in one hour of the day over the period (`user_read_hourly`, all channels).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HourReads {
    /// 0..23.
    pub hour: i64,
    pub read_user: i64,
    /// Days of the period with a row for this hour.
    pub days: i64,
}

/// One of the best articles of the period, by its latest cumulative figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TopArticle {
    pub msgid: String,
    pub title: Option<String>,
    pub url: Option<String>,
    pub publish_date: NaiveDate,
    pub read_user: Option<i64>,
    pub share_user: Option<i64>,
    /// Only getarticletotaldetail knows it (0..1).
    pub read_finish_rate: Option<f64>,
    /// The `stat_date` of the figures.
    pub stat_date: NaiveDate,
    /// `getarticletotaldetail` or `getarticletotal`.
    pub source: &'static str,
}

/// A failed chunk of the `fetches` ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub endpoint: String,
    pub begin_date: NaiveDate,
    pub end_date: NaiveDate,
    pub errcode: Option<i64>,
    /// Redacted when it was written.
    pub error: Option<String>,
    pub fetched_at: DateTime<Utc>,
}

fn source_of(name: &str) -> &'static str {
    match name {
        "getbizsummary" => "getbizsummary",
        "getarticletotaldetail" => "getarticletotaldetail",
        "getarticletotal" => "getarticletotal",
        _ => "getuserread",
    }
}

impl Store {
    /// `v_followers` of `appid` from `from` to `to`, by date.
    pub async fn report_followers(
        &self,
        appid: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<FollowerDay>> {
        query_rows!(
            self,
            "SELECT ref_date, CAST(new_user AS BIGINT) AS new_user,
                    CAST(cancel_user AS BIGINT) AS cancel_user,
                    CAST(net_user AS BIGINT) AS net_user, cumulate_user
             FROM v_followers
             WHERE appid = $1 AND ref_date >= $2 AND ref_date <= $3
             ORDER BY ref_date",
            [appid, from, to],
            "cannot read v_followers",
            "bad row in v_followers",
            |r| FollowerDay {
                date: r.try_get("ref_date")?,
                new_user: r.try_get("new_user")?,
                cancel_user: r.try_get("cancel_user")?,
                net_user: r.try_get("net_user")?,
                cumulate_user: r.try_get("cumulate_user")?,
            }
        )
    }

    /// Readers per day over all channels: `biz_daily.read_user` where the day
    /// has one, else the all-channels (99999999) `int_page_read_user` of
    /// `user_read_daily`. Days with neither are absent.
    pub async fn report_reads(
        &self,
        appid: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<ReadDay>> {
        query_rows!(
            self,
            "WITH days AS (
                 SELECT ref_date FROM biz_daily
                 WHERE appid = $1 AND ref_date >= $2 AND ref_date <= $3 AND read_user IS NOT NULL
                 UNION
                 SELECT ref_date FROM user_read_daily
                 WHERE appid = $1 AND ref_date >= $2 AND ref_date <= $3
                   AND user_source = 99999999 AND int_page_read_user IS NOT NULL
             )
             SELECT d.ref_date,
                    COALESCE(b.read_user, u.int_page_read_user) AS read_user,
                    CASE WHEN b.read_user IS NOT NULL THEN 'getbizsummary' ELSE 'getuserread' END AS source
             FROM days d
             LEFT JOIN biz_daily b ON b.appid = $1 AND b.ref_date = d.ref_date
             LEFT JOIN user_read_daily u
                    ON u.appid = $1 AND u.ref_date = d.ref_date AND u.user_source = 99999999
             ORDER BY d.ref_date",
            [appid, from, to],
            "cannot read the daily readers",
            "bad row of daily readers",
            |r| ReadDay {
                date: r.try_get("ref_date")?,
                read_user: r.try_get("read_user")?,
                source: source_of(&r.try_get::<String, _>("source")?),
            }
        )
    }

    /// Readers per day and scene of the current family (`biz_read_sources`,
    /// without 全部, which is the overall figure), with English scene names.
    pub async fn report_scene_reads(
        &self,
        appid: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<ChannelDay>> {
        query_rows!(
            self,
            "SELECT b.ref_date, b.scene_desc, COALESCE(s.name, b.scene_desc) AS name, b.user_count
             FROM biz_read_sources b
             LEFT JOIN read_scenes s ON s.scene_desc = b.scene_desc
             WHERE b.appid = $1 AND b.ref_date >= $2 AND b.ref_date <= $3 AND b.scene_desc <> '全部'
             ORDER BY b.ref_date, b.scene_desc",
            [appid, from, to],
            "cannot read biz_read_sources",
            "bad row in biz_read_sources",
            |r| ChannelDay {
                date: r.try_get("ref_date")?,
                code: r.try_get("scene_desc")?,
                name: r.try_get("name")?,
                read_user: r.try_get("user_count")?,
            }
        )
    }

    /// Readers per day and channel of the legacy family (`user_read_daily`,
    /// without 99999999, which is the overall figure), with channel names.
    pub async fn report_channel_reads(
        &self,
        appid: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<ChannelDay>> {
        query_rows!(
            self,
            "SELECT r.ref_date, CAST(r.user_source AS TEXT) AS code,
                    COALESCE(s.name, CAST(r.user_source AS TEXT)) AS name, r.int_page_read_user
             FROM user_read_daily r
             LEFT JOIN user_sources s ON s.code = r.user_source
             WHERE r.appid = $1 AND r.ref_date >= $2 AND r.ref_date <= $3
               AND r.user_source <> 99999999
             ORDER BY r.ref_date, r.user_source",
            [appid, from, to],
            "cannot read user_read_daily",
            "bad row in user_read_daily",
            |r| ChannelDay {
                date: r.try_get("ref_date")?,
                code: r.try_get("code")?,
                name: r.try_get("name")?,
                read_user: r.try_get("int_page_read_user")?,
            }
        )
    }

    /// Shares per day and scene (`user_share_daily`), with scene names.
    pub async fn report_shares(
        &self,
        appid: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<ShareDay>> {
        query_rows!(
            self,
            "SELECT u.ref_date, u.share_scene, COALESCE(s.name, CAST(u.share_scene AS TEXT)) AS scene,
                    u.share_user, u.share_count
             FROM user_share_daily u
             LEFT JOIN share_scenes s ON s.code = u.share_scene
             WHERE u.appid = $1 AND u.ref_date >= $2 AND u.ref_date <= $3
             ORDER BY u.ref_date, u.share_scene",
            [appid, from, to],
            "cannot read user_share_daily",
            "bad row in user_share_daily",
            |r| ShareDay {
                date: r.try_get("ref_date")?,
                share_scene: r.try_get("share_scene")?,
                scene: r.try_get("scene")?,
                share_user: r.try_get("share_user")?,
                share_count: r.try_get("share_count")?,
            }
        )
    }

    /// Account-wide sharers per day of the current family (`biz_daily`).
    pub async fn report_biz_shares(
        &self,
        appid: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<BizShareDay>> {
        query_rows!(
            self,
            "SELECT ref_date, share_user FROM biz_daily
             WHERE appid = $1 AND ref_date >= $2 AND ref_date <= $3 AND share_user IS NOT NULL
             ORDER BY ref_date",
            [appid, from, to],
            "cannot read biz_daily",
            "bad row in biz_daily",
            |r| BizShareDay {
                date: r.try_get("ref_date")?,
                share_user: r.try_get("share_user")?,
            }
        )
    }

    /// Readers per hour of the day, all channels, summed over the period's
    /// days that have hourly rows (`user_read_hourly`). Hours without rows are absent.
    pub async fn report_hours(
        &self,
        appid: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<HourReads>> {
        query_rows!(
            self,
            "SELECT CAST(hour AS BIGINT) AS hour,
                    CAST(SUM(int_page_read_user) AS BIGINT) AS read_user,
                    CAST(COUNT(*) AS BIGINT) AS days
             FROM user_read_hourly
             WHERE appid = $1 AND ref_date >= $2 AND ref_date <= $3
               AND user_source = 99999999 AND int_page_read_user IS NOT NULL
             GROUP BY hour
             ORDER BY hour",
            [appid, from, to],
            "cannot read user_read_hourly",
            "bad row in user_read_hourly",
            |r| HourReads {
                hour: r.try_get("hour")?,
                read_user: r.try_get("read_user")?,
                days: r.try_get("days")?,
            }
        )
    }

    /// The ten articles published from `from` to `to` with the most readers
    /// by their latest cumulative figures: getarticletotaldetail's
    /// (`article_detail`) where the article has any, else getarticletotal's
    /// (`article_total`). Ties go by msgid; unknown readers come last.
    pub async fn report_top_articles(
        &self,
        appid: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<Vec<TopArticle>> {
        query_rows!(
            self,
            "WITH latest AS (
                 SELECT d.msgid, d.ref_date AS publish_date, d.stat_date, d.read_user,
                        d.share_user, d.read_finish_rate, 'getarticletotaldetail' AS source
                 FROM article_detail d
                 WHERE d.appid = $1 AND d.ref_date >= $2 AND d.ref_date <= $3
                   AND d.stat_date = (SELECT MAX(e.stat_date) FROM article_detail e
                                      WHERE e.appid = d.appid AND e.msgid = d.msgid)
                 UNION ALL
                 SELECT t.msgid, t.ref_date AS publish_date, t.stat_date, t.int_page_read_user,
                        t.share_user, CAST(NULL AS DOUBLE PRECISION), 'getarticletotal'
                 FROM article_total t
                 WHERE t.appid = $1 AND t.ref_date >= $2 AND t.ref_date <= $3
                   AND t.stat_date = (SELECT MAX(e.stat_date) FROM article_total e
                                      WHERE e.appid = t.appid AND e.msgid = t.msgid)
                   AND NOT EXISTS (SELECT 1 FROM article_detail x
                                   WHERE x.appid = t.appid AND x.msgid = t.msgid)
             )
             SELECT l.msgid, a.title, a.url, l.publish_date, l.stat_date, l.read_user,
                    l.share_user, l.read_finish_rate, l.source
             FROM latest l
             LEFT JOIN articles a ON a.appid = $1 AND a.msgid = l.msgid
             ORDER BY CASE WHEN l.read_user IS NULL THEN 1 ELSE 0 END, l.read_user DESC, l.msgid
             LIMIT 10",
            [appid, from, to],
            "cannot read the articles' latest totals",
            "bad row of article totals",
            |r| TopArticle {
                msgid: r.try_get("msgid")?,
                title: r.try_get("title")?,
                url: r.try_get("url")?,
                publish_date: r.try_get("publish_date")?,
                stat_date: r.try_get("stat_date")?,
                read_user: r.try_get("read_user")?,
                share_user: r.try_get("share_user")?,
                read_finish_rate: r.try_get("read_finish_rate")?,
                source: source_of(&r.try_get::<String, _>("source")?),
            }
        )
    }

    /// The latest `limit` failed chunks of `appid` in the ledger, newest first.
    pub async fn report_failures(&self, appid: &str, limit: i64) -> anyhow::Result<Vec<Failure>> {
        query_rows!(
            self,
            "SELECT endpoint, begin_date, end_date, errcode, error, fetched_at
             FROM fetches
             WHERE appid = $1 AND status = 'error'
             ORDER BY fetched_at DESC, endpoint, begin_date
             LIMIT $2",
            [appid, limit],
            "cannot read the fetches ledger",
            "bad row in fetches",
            |r| Failure {
                endpoint: r.try_get("endpoint")?,
                begin_date: r.try_get("begin_date")?,
                end_date: r.try_get("end_date")?,
                errcode: r.try_get("errcode")?,
                error: r.try_get("error")?,
                fetched_at: r.try_get("fetched_at")?,
            }
        )
    }
}
