//! `wxcube status`: per account and endpoint, what is stored and what is not.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::clock::{Clock, days};
use crate::config::Settings;
use crate::endpoint::Endpoint;
use crate::ingest::plan::{self, quota_spent_today};
use crate::store::quota::QuotaRow;
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
    /// 61007 or 48001 answered since the last success: the API is not
    /// authorised for this account (SPEC section 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unauthorised: Option<i64>,
    /// The quota last seen by a run (`/cgi-bin/openapi/quota/get`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaRow>,
}

impl EndpointStatus {
    /// The latest fetch failed (nothing succeeded after it).
    fn failing(&self) -> bool {
        self.last_error
            .as_ref()
            .is_some_and(|e| self.last_success.as_ref().is_none_or(|ok| e.at > *ok))
    }
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
        unauthorised: None,
        quota: None,
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
        let mut quotas = store.quota_seen(&appid).await?;
        let first_out = out.len();
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
                unauthorised: None,
                quota: None,
            });
        }
        for status in &mut out[first_out..] {
            if let Some(i) = quotas.iter().position(|q| q.endpoint == status.endpoint) {
                let quota = quotas.swap_remove(i);
                status.quota_spent_today |= quota.spent_on(today);
                status.quota = Some(quota);
            }
            if status.failing() {
                let code = status.last_error.as_ref().and_then(|e| e.errcode);
                status.unauthorised = code.filter(|c| UNAUTHORISED.contains(c));
            }
        }
    }
    Ok(out)
}

/// The errcodes that mean "not authorised for this account" (SPEC section 10).
const UNAUTHORISED: [i64; 2] = [61007, 48001];

/// Above this many accounts, `status` shows one line per account.
pub const SUMMARY_ABOVE: usize = 5;

/// How an account stands, worst first (the summary's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Some endpoint's latest fetch failed (a token command, a permanent error...).
    Failing,
    /// 61007 or 48001 on some endpoint.
    Unauthorised,
    /// 47009 on some endpoint in the last 7 days.
    Offline,
    /// Some endpoint's daily quota (or today's planned share of it) is spent.
    QuotaSpent,
    /// Nothing stored for the last days (no success, or the newest stored day
    /// is more than two days before yesterday).
    Stale,
    Ok,
}

impl AccountState {
    fn label(self) -> &'static str {
        match self {
            AccountState::Failing => "FAILING",
            AccountState::Unauthorised => "UNAUTHORISED",
            AccountState::Offline => "OFFLINE",
            AccountState::QuotaSpent => "QUOTA SPENT",
            AccountState::Stale => "STALE",
            AccountState::Ok => "ok",
        }
    }
}

/// One account of the summary.
#[derive(Debug)]
struct AccountSummary<'a> {
    appid: &'a str,
    state: AccountState,
    endpoints: usize,
    missing_days: usize,
    last_day: Option<NaiveDate>,
    last_success: Option<&'a str>,
    /// The first problem, for the line.
    problem: Option<String>,
}

fn summarize<'a>(appid: &'a str, statuses: &[&'a EndpointStatus]) -> AccountSummary<'a> {
    let dated = || statuses.iter().filter(|s| s.catalogue.is_none());
    let last_day = dated().filter_map(|s| s.last_day).max();
    let window_to = statuses.first().map(|s| s.window_to);
    let stale = match (last_day, window_to) {
        (Some(day), Some(latest)) => day < latest - Days::new(2),
        (None, _) => dated().next().is_some(),
        _ => false,
    };
    let failing: Vec<&&EndpointStatus> = statuses
        .iter()
        .filter(|s| s.failing() && s.unauthorised.is_none())
        .collect();
    let unauthorised: Vec<&&EndpointStatus> = statuses
        .iter()
        .filter(|s| s.unauthorised.is_some())
        .collect();
    let offline: Vec<&&EndpointStatus> = statuses.iter().filter(|s| s.offline).collect();
    let spent: Vec<&&EndpointStatus> = statuses.iter().filter(|s| s.quota_spent_today).collect();
    let error_of = |s: &EndpointStatus| {
        let e = s.last_error.as_ref()?;
        let code = e
            .errcode
            .map_or(String::new(), |c| format!("errcode {c}: "));
        Some(format!(
            "{}: {code}{}",
            s.endpoint,
            e.error.as_deref().unwrap_or("")
        ))
    };
    let (state, problem) = if let Some(s) = failing.first() {
        let more = if failing.len() > 1 {
            format!(" (and {} more endpoints)", failing.len() - 1)
        } else {
            String::new()
        };
        (
            AccountState::Failing,
            error_of(s).map(|e| format!("{e}{more}")),
        )
    } else if !unauthorised.is_empty() {
        let names: Vec<String> = unauthorised
            .iter()
            .map(|s| format!("{} ({})", s.endpoint, s.unauthorised.unwrap_or(0)))
            .collect();
        (
            AccountState::Unauthorised,
            Some(format!("not authorised: {}", names.join(", "))),
        )
    } else if !offline.is_empty() {
        let names: Vec<&str> = offline.iter().map(|s| s.endpoint).collect();
        (
            AccountState::Offline,
            Some(format!("offline ({OFFLINE}): {}", names.join(", "))),
        )
    } else if !spent.is_empty() {
        let names: Vec<&str> = spent.iter().map(|s| s.endpoint).collect();
        (
            AccountState::QuotaSpent,
            Some(format!("quota spent today: {}", names.join(", "))),
        )
    } else if stale {
        let since = last_day.map_or("nothing stored".to_string(), |d| {
            format!("newest day stored {d}")
        });
        (AccountState::Stale, Some(since))
    } else {
        (AccountState::Ok, None)
    };
    AccountSummary {
        appid,
        state,
        endpoints: statuses.len(),
        missing_days: statuses.iter().map(|s| s.missing_days).sum(),
        last_day,
        last_success: statuses
            .iter()
            .filter_map(|s| s.last_success.as_deref())
            .max(),
        problem,
    }
}

/// One line per account, worst first (failing, unauthorised, offline, quota
/// spent, stale, then the rest), after a line of counts. `names` gives the
/// configured labels.
pub fn render_summary(
    statuses: &[EndpointStatus],
    names: &dyn Fn(&str) -> Option<String>,
) -> String {
    let mut by_account: Vec<(&str, Vec<&EndpointStatus>)> = Vec::new();
    for s in statuses {
        match by_account.last_mut() {
            Some((appid, list)) if *appid == s.appid => list.push(s),
            _ => by_account.push((&s.appid, vec![s])),
        }
    }
    let mut summaries: Vec<AccountSummary> = by_account
        .iter()
        .map(|(appid, list)| summarize(appid, list))
        .collect();
    summaries.sort_by(|a, b| a.state.cmp(&b.state).then(a.appid.cmp(b.appid)));
    let mut counts: Vec<(AccountState, usize)> = Vec::new();
    for s in &summaries {
        match counts.last_mut() {
            Some((state, n)) if *state == s.state => *n += 1,
            _ => counts.push((s.state, 1)),
        }
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(state, n)| format!("{n} {}", state.label().to_lowercase()))
        .collect();
    let mut out = format!(
        "{} accounts: {} (`wxcube status --account APPID` for the detail)\n",
        summaries.len(),
        counts.join(", ")
    );
    out.push_str(&format!(
        "{:<20} {:<16} {:<12} {:>9} {:>7}  {:<10} {:<24} {}\n",
        "ACCOUNT", "NAME", "STATE", "ENDPOINTS", "MISSING", "LAST DAY", "LAST SUCCESS", "PROBLEM"
    ));
    for s in &summaries {
        let name: String = names(s.appid)
            .unwrap_or_default()
            .chars()
            .take(16)
            .collect();
        let mut problem = s.problem.clone().unwrap_or_default();
        if problem.chars().count() > 140 {
            problem = problem.chars().take(139).collect::<String>() + "…";
        }
        out.push_str(&format!(
            "{:<20} {:<16} {:<12} {:>9} {:>7}  {:<10} {:<24} {}\n",
            s.appid,
            name,
            s.state.label(),
            s.endpoints,
            s.missing_days,
            s.last_day.map_or("-".to_string(), |d| d.to_string()),
            s.last_success.unwrap_or("-"),
            problem
        ));
    }
    out
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
        if let Some(code) = s.unauthorised {
            state.push(format!("UNAUTHORISED ({code})"));
        }
        if s.quota_spent_today {
            state.push(format!("quota spent today ({DAILY_QUOTA})"));
        }
        if let Some(q) = &s.quota {
            let rate = match (q.call_count, q.refresh_second) {
                (Some(c), Some(r)) => format!(", rate limit {c}/{r} s"),
                _ => String::new(),
            };
            state.push(format!(
                "quota {}: {} of {} left after {} sent ({} reserved{rate})",
                q.seen_date,
                q.left(),
                q.daily_limit,
                q.sent,
                q.reserve
            ));
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
