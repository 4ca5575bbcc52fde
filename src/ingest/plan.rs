//! Planning: which days of which endpoint to fetch, grouped into chunks.
//!
//! Everything here is derived from the ledger and the clock, so that a sync
//! after days of downtime, or a backfill run again after a kill, plans exactly
//! the work that is still missing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use chrono_tz::Tz;

use crate::clock::{date_in, days};
use crate::endpoint::Endpoint;
use crate::store::ledger::LedgerRow;
use crate::wechat::errors::{Verdict, classify_errcode};

/// One request's worth of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Chunk {
    pub endpoint: Endpoint,
    pub begin: NaiveDate,
    pub end: NaiveDate,
}

impl std::fmt::Display for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.begin == self.end {
            write!(f, "{} {}", self.endpoint, self.begin)
        } else {
            write!(f, "{} {}..{}", self.endpoint, self.begin, self.end)
        }
    }
}

/// Whether a ledger row's errcode has this verdict (the errcode table decides).
fn answered(row: &LedgerRow, verdict: Verdict) -> bool {
    row.errcode
        .is_some_and(|code| classify_errcode(code) == verdict)
}
/// How long syncs leave an offline endpoint alone.
pub const OFFLINE_DAYS: i64 = 7;

/// What the ledger says about one day of one endpoint.
#[derive(Debug, Clone, Default)]
pub struct DayState {
    /// Some fetch covering this day succeeded.
    pub ok: bool,
    /// Some successful fetch is final: not delayed, and made on or after its
    /// end date + 7 days (30 for getarticletotaldetail), China time.
    pub final_: bool,
    /// The latest fetch covering this day was delayed or answered 61503.
    pub latest_unfinished: bool,
    latest_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Per-day states of one endpoint, from its ledger rows.
pub fn coverage(endpoint: Endpoint, ledger: &[LedgerRow], tz: Tz) -> BTreeMap<NaiveDate, DayState> {
    let mut map: BTreeMap<NaiveDate, DayState> = BTreeMap::new();
    for row in ledger {
        let fetched_day = date_in(row.fetched_at, tz);
        let delayed = row.is_delay == Some(true);
        let final_ = row.ok
            && !delayed
            && fetched_day >= row.end + Days::new(endpoint.final_after_days() as u64);
        let unfinished = (row.ok && delayed) || answered(row, Verdict::NotReady);
        for day in days(row.begin, row.end) {
            let state = map.entry(day).or_default();
            state.ok |= row.ok;
            state.final_ |= final_;
            if state.latest_at.is_none_or(|at| row.fetched_at >= at) {
                state.latest_at = Some(row.fetched_at);
                state.latest_unfinished = unfinished;
            }
        }
    }
    map
}

/// Whether the latest ledger row of this endpoint says it is offline (47009)
/// and that was less than `OFFLINE_DAYS` ago, with no success since.
pub fn offline_since(
    ledger: &[LedgerRow],
    now: chrono::DateTime<chrono::Utc>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    let latest = ledger.iter().max_by_key(|r| r.fetched_at)?;
    let last_offline = ledger
        .iter()
        .filter(|r| answered(r, Verdict::Offline))
        .map(|r| r.fetched_at)
        .max()?;
    let success_after = ledger.iter().any(|r| r.ok && r.fetched_at > last_offline);
    (!success_after
        && latest.fetched_at >= last_offline
        && now - last_offline < chrono::Duration::days(OFFLINE_DAYS))
    .then_some(last_offline)
}

/// Whether this endpoint answered 45009 earlier on the current day (`today` in `tz`).
pub fn quota_spent_today(ledger: &[LedgerRow], today: NaiveDate, tz: Tz) -> bool {
    ledger
        .iter()
        .any(|r| answered(r, Verdict::DailyQuota) && date_in(r.fetched_at, tz) == today)
}

/// Groups sorted, distinct days into chunks of at most the endpoint's span;
/// a chunk never spans a gap.
pub fn chunk_days(endpoint: Endpoint, days: &BTreeSet<NaiveDate>) -> Vec<Chunk> {
    let span = i64::from(endpoint.max_span_days());
    let mut chunks = Vec::new();
    let mut current: Option<Chunk> = None;
    for &day in days {
        match &mut current {
            Some(c) if (day - c.end).num_days() == 1 && (day - c.begin).num_days() < span => {
                c.end = day
            }
            _ => {
                chunks.extend(current.take());
                current = Some(Chunk {
                    endpoint,
                    begin: day,
                    end: day,
                });
            }
        }
    }
    chunks.extend(current);
    chunks
}

/// The inputs of a sync plan for one account and endpoint.
pub struct SyncWindow {
    /// Yesterday in the configured timezone.
    pub latest: NaiveDate,
    pub refresh_days: u32,
    pub catch_up_days: u32,
    pub start_date: Option<NaiveDate>,
}

/// The days a sync fetches for one endpoint (docs/wechat-api.md explains the windows): the refresh
/// window, the days of the catch-up window whose latest fetch was delayed or
/// not ready, and every day of the catch-up window with no success yet.
pub fn sync_days(
    endpoint: Endpoint,
    window: &SyncWindow,
    coverage: &BTreeMap<NaiveDate, DayState>,
) -> BTreeSet<NaiveDate> {
    let first = endpoint.first_date();
    let latest = window.latest;
    let mut wanted = BTreeSet::new();
    if latest < first {
        return wanted;
    }
    let refresh = u64::from(endpoint.refresh_days(window.refresh_days).max(1));
    let refresh_from = (latest - Days::new(refresh - 1)).max(first);
    wanted.extend(days(refresh_from, latest));
    let catch_up_from = window
        .start_date
        .unwrap_or(latest - Days::new(u64::from(window.catch_up_days.max(1)) - 1))
        .max(first);
    for day in days(catch_up_from, latest) {
        let state = coverage.get(&day);
        if state.is_none_or(|s| !s.ok || s.latest_unfinished) {
            wanted.insert(day);
        }
    }
    wanted
}

/// The days a backfill fetches for one endpoint over `from..=to` (already
/// clamped): all of them with `refetch`, else those not yet final.
pub fn backfill_days(
    from: NaiveDate,
    to: NaiveDate,
    refetch: bool,
    coverage: &BTreeMap<NaiveDate, DayState>,
) -> BTreeSet<NaiveDate> {
    days(from, to)
        .filter(|d| refetch || !coverage.get(d).is_some_and(|s| s.final_))
        .collect()
}

/// Clamps a requested range to what `endpoint` can serve: not before its
/// family's first date, not after `latest`. None if nothing is left.
pub fn clamp(
    endpoint: Endpoint,
    from: NaiveDate,
    to: NaiveDate,
    latest: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    let from = from.max(endpoint.first_date());
    let to = to.min(latest);
    (from <= to).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{CHINA, parse_date};
    use chrono::{DateTime, Utc};

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn row(
        endpoint: Endpoint,
        begin: &str,
        end: &str,
        ok: bool,
        errcode: Option<i64>,
        at: &str,
        delay: Option<bool>,
    ) -> LedgerRow {
        LedgerRow {
            appid: "wx1".into(),
            endpoint: endpoint.name().into(),
            begin: d(begin),
            end: d(end),
            ok,
            rows: 1,
            attempts: 1,
            errcode,
            error: None,
            fetched_at: at.parse::<DateTime<Utc>>().unwrap(),
            is_delay: delay,
        }
    }

    #[test]
    fn chunks_respect_span_and_gaps() {
        let days: BTreeSet<_> = [
            "2026-01-01",
            "2026-01-02",
            "2026-01-03",
            "2026-01-04",
            "2026-01-06",
        ]
        .iter()
        .map(|s| d(s))
        .collect();
        let chunks = chunk_days(Endpoint::UserRead, &days);
        let got: Vec<String> = chunks.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            got,
            [
                "getuserread 2026-01-01..2026-01-03",
                "getuserread 2026-01-04",
                "getuserread 2026-01-06"
            ]
        );
        assert_eq!(chunk_days(Endpoint::ArticleSummary, &days).len(), 5);
        assert_eq!(chunk_days(Endpoint::BizSummary, &days).len(), 2);
    }

    #[test]
    fn a_fetch_is_final_seven_days_after_its_end_in_china() {
        // Fetched 2026-01-08 00:30 China time = 2026-01-07T16:30Z.
        let ledger = [row(
            Endpoint::ArticleTotal,
            "2026-01-01",
            "2026-01-01",
            true,
            None,
            "2026-01-07T16:30:00Z",
            None,
        )];
        assert!(coverage(Endpoint::ArticleTotal, &ledger, CHINA)[&d("2026-01-01")].final_);
        let ledger = [row(
            Endpoint::ArticleTotal,
            "2026-01-01",
            "2026-01-01",
            true,
            None,
            "2026-01-07T15:30:00Z",
            None,
        )];
        assert!(!coverage(Endpoint::ArticleTotal, &ledger, CHINA)[&d("2026-01-01")].final_);
        // getarticletotaldetail needs 30 days, and a delayed answer is never final.
        let ledger = [row(
            Endpoint::ArticleTotalDetail,
            "2026-01-01",
            "2026-01-01",
            true,
            None,
            "2026-01-20T00:00:00Z",
            Some(false),
        )];
        assert!(!coverage(Endpoint::ArticleTotalDetail, &ledger, CHINA)[&d("2026-01-01")].final_);
        let ledger = [row(
            Endpoint::ArticleRead,
            "2026-01-01",
            "2026-01-01",
            true,
            None,
            "2026-03-01T00:00:00Z",
            Some(true),
        )];
        let c = coverage(Endpoint::ArticleRead, &ledger, CHINA);
        assert!(!c[&d("2026-01-01")].final_ && c[&d("2026-01-01")].latest_unfinished);
    }

    #[test]
    fn sync_plans_refresh_window_gaps_and_unfinished_days() {
        let window = SyncWindow {
            latest: d("2026-03-31"),
            refresh_days: 7,
            catch_up_days: 30,
            start_date: None,
        };
        let ledger: Vec<LedgerRow> = days(d("2026-03-02"), d("2026-03-31"))
            .filter(|day| *day != d("2026-03-10"))
            .map(|day| {
                let s = day.to_string();
                let errcode = (s == "2026-03-12").then_some(crate::wechat::errors::NOT_READY);
                row(
                    Endpoint::ArticleRead,
                    &s,
                    &s,
                    errcode.is_none(),
                    errcode,
                    "2026-04-01T00:00:00Z",
                    Some(s == "2026-03-05"),
                )
            })
            .collect();
        let cov = coverage(Endpoint::ArticleRead, &ledger, CHINA);
        let wanted = sync_days(Endpoint::ArticleRead, &window, &cov);
        let expected: BTreeSet<_> = ["2026-03-05", "2026-03-10", "2026-03-12"]
            .iter()
            .map(|s| d(s))
            .chain(days(d("2026-03-25"), d("2026-03-31")))
            .collect();
        assert_eq!(wanted, expected);
        // getarticletotaldetail refreshes 30 days.
        let wanted = sync_days(Endpoint::ArticleTotalDetail, &window, &BTreeMap::new());
        assert_eq!(wanted.len(), 30);
    }

    #[test]
    fn sync_never_goes_before_the_family_start() {
        let window = SyncWindow {
            latest: d("2025-11-03"),
            refresh_days: 7,
            catch_up_days: 30,
            start_date: Some(d("2020-01-01")),
        };
        let wanted = sync_days(Endpoint::BizSummary, &window, &BTreeMap::new());
        assert_eq!(wanted.first(), Some(&d("2025-11-01")));
        assert_eq!(wanted.len(), 3);
    }

    #[test]
    fn offline_lasts_seven_days_unless_a_success_follows() {
        let now: DateTime<Utc> = "2026-05-05T00:00:00Z".parse().unwrap();
        let ledger = [row(
            Endpoint::UserRead,
            "2026-05-01",
            "2026-05-01",
            false,
            Some(crate::wechat::errors::OFFLINE),
            "2026-05-02T00:00:00Z",
            None,
        )];
        assert!(offline_since(&ledger, now).is_some());
        let later: DateTime<Utc> = "2026-05-09T01:00:00Z".parse().unwrap();
        assert!(offline_since(&ledger, later).is_none());
        let mut with_success = ledger.to_vec();
        with_success.push(row(
            Endpoint::UserRead,
            "2026-05-02",
            "2026-05-02",
            true,
            None,
            "2026-05-03T00:00:00Z",
            None,
        ));
        assert!(offline_since(&with_success, now).is_none());
    }

    #[test]
    fn clamp_per_family() {
        let latest = d("2026-11-24");
        assert_eq!(
            clamp(
                Endpoint::ArticleRead,
                d("2019-01-01"),
                d("2019-12-31"),
                latest
            ),
            None
        );
        assert_eq!(
            clamp(
                Endpoint::ArticleRead,
                d("2025-10-01"),
                d("2027-01-01"),
                latest
            ),
            Some((d("2025-11-01"), latest))
        );
        assert_eq!(
            clamp(
                Endpoint::UserShare,
                d("2014-01-01"),
                d("2014-12-03"),
                latest
            ),
            Some((d("2014-12-01"), d("2014-12-03")))
        );
    }
}
