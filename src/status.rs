//! `wxcube status`: per account and endpoint, what is stored and what is not.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::clock::{Clock, days};
use crate::config::Settings;
use crate::endpoint::Endpoint;
use crate::ingest::plan::{self, quota_spent_today};
use crate::store::{Store, rfc3339};
use crate::wechat::errors::{DAILY_QUOTA, OFFLINE};

/// The status of one endpoint of one account.
#[derive(Debug, Serialize)]
pub struct EndpointStatus {
    pub appid: String,
    pub endpoint: &'static str,
    /// First and last day with a successful fetch.
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    /// The window checked for missing days: from the sync's catch-up window
    /// start or the first stored day, whichever is earlier, to yesterday.
    pub window_from: Option<NaiveDate>,
    pub window_to: NaiveDate,
    /// Days of the window with no successful fetch.
    pub missing_days: usize,
    /// The missing days as ranges, "2026-01-01..2026-01-03" or "2026-01-05".
    pub missing: Vec<String>,
    /// Days fetched but not final yet (delayed, or within the refresh window).
    pub delayed_days: usize,
    pub last_success: Option<String>,
    pub last_error: Option<LastError>,
    /// 47009 seen in the last 7 days: syncs skip this endpoint.
    pub offline: bool,
    /// 45009 seen today (China time): no more calls until tomorrow.
    pub quota_spent_today: bool,
    /// For the catalogue (`freepublish`) only: where its sweep stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalogue: Option<CatalogueStatus>,
}

/// Where an account's catalogue stands.
#[derive(Debug, Serialize)]
pub struct CatalogueStatus {
    /// Published articles stored.
    pub articles_stored: i64,
    /// `total_count` of the latest page: items in the catalogue.
    pub total_count: Option<i64>,
    /// Whether every item has been read (a first sweep of a long catalogue
    /// takes several days of the daily budget).
    pub sweep_complete: bool,
    /// Where the unfinished sweep goes on.
    pub next_offset: u32,
    /// Calls made today (China time).
    pub calls_today: u32,
}

/// The status line of the catalogue: no days, but a sweep.
async fn catalogue_status(
    store: &Store,
    appid: &str,
    endpoint: Endpoint,
    latest: NaiveDate,
    today: NaiveDate,
) -> anyhow::Result<EndpointStatus> {
    let state = store.catalogue_state(appid).await?;
    let articles_stored = store.catalogue_articles(appid).await?;
    let last_error = state.last_error.as_ref().map(|error| LastError {
        at: state.last_call_at.clone().unwrap_or_default(),
        begin_date: today,
        end_date: today,
        errcode: state.last_errcode,
        error: Some(error.clone()),
    });
    Ok(EndpointStatus {
        appid: appid.to_string(),
        endpoint: endpoint.name(),
        first_day: None,
        last_day: None,
        window_from: None,
        window_to: latest,
        missing_days: 0,
        missing: Vec::new(),
        delayed_days: 0,
        last_success: state
            .last_call_at
            .clone()
            .filter(|_| state.last_error.is_none()),
        last_error,
        offline: false,
        quota_spent_today: state.quota_spent_date == Some(today),
        catalogue: Some(CatalogueStatus {
            articles_stored,
            total_count: state.total_count,
            sweep_complete: state.sweep_complete,
            next_offset: state.next_offset,
            calls_today: state.calls_on(today),
        }),
    })
}

/// The latest failure of an endpoint.
#[derive(Debug, Serialize)]
pub struct LastError {
    pub at: String,
    pub begin_date: NaiveDate,
    pub end_date: NaiveDate,
    pub errcode: Option<i64>,
    /// Redacted when it was written.
    pub error: Option<String>,
}

/// Builds the status of every configured account (and any other account the
/// ledger knows), or only `only`.
pub async fn collect(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
    only: Option<&str>,
) -> anyhow::Result<Vec<EndpointStatus>> {
    let tz = settings.timezone;
    let latest = clock.yesterday(tz);
    let today = clock.today(tz);
    let now = clock.now();
    let mut appids: BTreeSet<String> = settings.accounts.iter().map(|a| a.appid.clone()).collect();
    appids.extend(store.ledger_appids().await?);
    if let Some(only) = only {
        appids.retain(|a| a == only);
        appids.insert(only.to_string());
    }
    let mut out = Vec::new();
    for appid in appids {
        let start_date = settings.account(&appid).and_then(|a| a.start_date);
        let endpoints: Vec<Endpoint> = if settings.endpoints.is_empty() {
            Endpoint::ALL.to_vec()
        } else {
            settings.endpoints.clone()
        };
        for endpoint in endpoints {
            if !endpoint.is_dated() {
                out.push(catalogue_status(store, &appid, endpoint, latest, today).await?);
                continue;
            }
            let ledger = store.ledger(&appid, endpoint.name()).await?;
            let coverage = plan::coverage(endpoint, &ledger, tz);
            let stored: Vec<NaiveDate> = coverage
                .iter()
                .filter(|(_, s)| s.ok)
                .map(|(d, _)| *d)
                .collect();
            // Missing days are counted from the sync's catch-up window start, or
            // from the first stored day if that is earlier: a hole anywhere in
            // the stored history shows.
            let catch_up_from = start_date
                .unwrap_or(latest - Days::new(u64::from(settings.catch_up_days.max(1)) - 1))
                .max(endpoint.first_date());
            let window_from = stored
                .first()
                .map_or(catch_up_from, |first| catch_up_from.min(*first));
            let missing: Vec<NaiveDate> = days(window_from, latest)
                .filter(|d| !coverage.get(d).is_some_and(|s| s.ok))
                .collect();
            let delayed_days = coverage
                .values()
                .filter(|s| s.ok && s.latest_unfinished)
                .count();
            let last_success = ledger.iter().filter(|r| r.ok).map(|r| r.fetched_at).max();
            let last_error = ledger
                .iter()
                .filter(|r| !r.ok)
                .max_by_key(|r| r.fetched_at)
                .map(|r| LastError {
                    at: rfc3339(r.fetched_at),
                    begin_date: r.begin,
                    end_date: r.end,
                    errcode: r.errcode,
                    error: r.error.clone(),
                });
            out.push(EndpointStatus {
                appid: appid.clone(),
                endpoint: endpoint.name(),
                first_day: stored.first().copied(),
                last_day: stored.last().copied(),
                window_from: (window_from <= latest).then_some(window_from),
                window_to: latest,
                missing_days: missing.len(),
                missing: ranges(&missing),
                delayed_days,
                last_success: last_success.map(rfc3339),
                last_error,
                offline: plan::offline_since(&ledger, now).is_some(),
                quota_spent_today: quota_spent_today(&ledger, today, tz),
                catalogue: None,
            });
        }
    }
    Ok(out)
}

/// Renders the status as a plain table for a terminal.
pub fn render_table(statuses: &[EndpointStatus]) -> String {
    let mut out = String::new();
    let header = format!(
        "{:<20} {:<22} {:<10} {:<10} {:>7}  {:<24} {}\n",
        "ACCOUNT", "ENDPOINT", "FIRST", "LAST", "MISSING", "LAST SUCCESS", "STATE / LAST ERROR"
    );
    out.push_str(&header);
    for s in statuses {
        let fmt_day = |d: Option<NaiveDate>| d.map_or("-".to_string(), |d| d.to_string());
        let mut state = Vec::new();
        if s.offline {
            state.push(format!("OFFLINE ({OFFLINE})"));
        }
        if let Some(c) = &s.catalogue {
            let total = c.total_count.map_or("?".to_string(), |t| t.to_string());
            let sweep = if c.sweep_complete {
                "sweep complete".to_string()
            } else {
                format!("sweep incomplete (next offset {})", c.next_offset)
            };
            state.push(format!(
                "{} articles stored, {total} items listed, {sweep}, {} calls today",
                c.articles_stored, c.calls_today
            ));
        }
        if s.quota_spent_today {
            state.push(format!("quota spent today ({DAILY_QUOTA})"));
        }
        if let Some(e) = &s.last_error {
            let code = e.errcode.map_or(String::new(), |c| format!("errcode {c} "));
            state.push(format!(
                "last error {} {}: {code}{}",
                e.at,
                e.begin_date,
                e.error.as_deref().unwrap_or("")
            ));
        }
        if state.is_empty() {
            state.push("ok".into());
        }
        out.push_str(&format!(
            "{:<20} {:<22} {:<10} {:<10} {:>7}  {:<24} {}\n",
            s.appid,
            s.endpoint,
            fmt_day(s.first_day),
            fmt_day(s.last_day),
            s.missing_days,
            s.last_success.as_deref().unwrap_or("-"),
            state.join("; ")
        ));
    }
    out
}

/// Compresses sorted days into ranges.
fn ranges(days: &[NaiveDate]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = days.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek().is_some_and(|d| (*d - end).num_days() == 1) {
            end = iter.next().expect("peeked");
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}..{end}")
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_date;

    #[test]
    fn ranges_compress_consecutive_days() {
        let d = |s| parse_date(s).unwrap();
        let days = [
            d("2026-01-01"),
            d("2026-01-02"),
            d("2026-01-03"),
            d("2026-01-05"),
        ];
        assert_eq!(ranges(&days), ["2026-01-01..2026-01-03", "2026-01-05"]);
    }
}
