//! The follower series (SPEC section 8): getusersummary (new and cancelled
//! followers per day and follow source) and getusercumulate (total followers
//! per day), their oracle rows, and the `missing_yesterday` fault's state.
//!
//! A day's summary is a pure function of (appid, date), like every other
//! series of the generator. The cumulative total is a per-appid base plus the
//! running sum of the daily net growth from 2014-12-01, so that
//! `cumulate(d) = cumulate(d - 1) + sum(new_user - cancel_user)` holds for
//! every day; the running sums are cached per appid (a full history is about
//! 4400 days).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{Days, NaiveDate};
use serde_json::{Value, json};

use super::data::{self, Gen, Profile};
use crate::clock::{days, fmt_date};

/// The datacube names of the two follower endpoints.
pub const ENDPOINT_NAMES: [&str; 2] = ["getusersummary", "getusercumulate"];

/// Whether `name` is one of [`ENDPOINT_NAMES`].
pub fn is_follower_endpoint(name: &str) -> bool {
    ENDPOINT_NAMES.contains(&name)
}

/// The first day with follower data.
pub fn first_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2014, 12, 1).expect("valid date")
}

/// The documented follow sources (SPEC section 8), ascending.
pub const DOCUMENTED_SOURCES: [i64; 10] = [0, 1, 17, 30, 57, 100, 149, 161, 200, 201];

/// Codes the generator emits now and then that the documentation does not list.
pub const UNDOCUMENTED_SOURCES: [i64; 2] = [43, 1000];

/// (code, share of new followers, share of cancellations, first day as (y, m, d)).
type SourceMix = (i64, f64, f64, (i32, u32, u32));

const SOURCE_MIX: [SourceMix; 10] = [
    (0, 0.12, 0.35, (2014, 12, 1)),
    (1, 0.22, 0.15, (2014, 12, 1)),
    (17, 0.05, 0.05, (2014, 12, 1)),
    (30, 0.28, 0.20, (2014, 12, 1)),
    (57, 0.14, 0.10, (2014, 12, 1)),
    (100, 0.05, 0.04, (2016, 6, 1)),
    (149, 0.03, 0.03, (2017, 6, 1)),
    (161, 0.07, 0.05, (2014, 12, 1)),
    (200, 0.04, 0.03, (2020, 10, 1)),
    (201, 0.02, 0.02, (2021, 1, 1)),
];

/// One getusersummary entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceDay {
    /// The follow source code.
    pub user_source: i64,
    /// Followers gained through it.
    pub new_user: i64,
    /// Followers lost (attributed to it).
    pub cancel_user: i64,
}

/// The sources with activity on `date`, ascending by code (empty before
/// 2014-12-01). Pure in (appid, date).
pub fn summary_day(appid: &str, date: NaiveDate) -> Vec<SourceDay> {
    if date < first_date() {
        return Vec::new();
    }
    let profile = Profile::of(appid);
    let mut pg = Gen::new(&["follower-profile", appid]);
    let gain = pg.between(1.0, 6.0);
    let churn = pg.between(0.25, 0.7);
    let sent = data::broadcast(appid, date).len() as f64;
    let ds = fmt_date(date);
    let mut g = Gen::new(&["user-summary", appid, &ds]);
    // A little growth with the audience, a push on days something was sent.
    let audience = profile.followers(date) as f64 / 2000.0;
    let expected_new = (gain + sent * gain * 0.8) * audience.sqrt() * g.between(0.6, 1.5);
    let expected_cancel = gain * churn * audience.sqrt() * g.between(0.5, 1.6);
    let mut out = Vec::new();
    for (code, w_new, w_cancel, (y, m, d)) in SOURCE_MIX {
        if date < NaiveDate::from_ymd_opt(y, m, d).expect("valid date") {
            continue;
        }
        let new_user = g.scaled(expected_new * w_new, 0.5, 1.5);
        let cancel_user = g.scaled(expected_cancel * w_cancel, 0.5, 1.5);
        if new_user != 0 || cancel_user != 0 {
            out.push(SourceDay {
                user_source: code,
                new_user,
                cancel_user,
            });
        }
    }
    // New codes show up before they are documented.
    if g.chance(0.02) {
        out.push(SourceDay {
            user_source: UNDOCUMENTED_SOURCES[0],
            new_user: g.range(1, 4),
            cancel_user: g.range(0, 1),
        });
    }
    if date >= NaiveDate::from_ymd_opt(2019, 1, 1).expect("valid date") && g.chance(0.01) {
        out.push(SourceDay {
            user_source: UNDOCUMENTED_SOURCES[1],
            new_user: g.range(1, 3),
            cancel_user: 0,
        });
    }
    out.sort_by_key(|s| s.user_source);
    out
}

/// The day's net growth: sum of new_user - cancel_user over its sources.
pub fn net_growth(appid: &str, date: NaiveDate) -> i64 {
    summary_day(appid, date)
        .iter()
        .map(|s| s.new_user - s.cancel_user)
        .sum()
}

/// getusersummary list items over begin..=end, day by day, sources ascending.
pub fn user_summary_items(appid: &str, begin: NaiveDate, end: NaiveDate) -> Vec<Value> {
    days(begin, end)
        .flat_map(|day| {
            let ds = fmt_date(day);
            summary_day(appid, day).into_iter().map(move |s| {
                json!({
                    "ref_date": ds,
                    "user_source": s.user_source,
                    "new_user": s.new_user,
                    "cancel_user": s.cancel_user,
                })
            })
        })
        .collect()
}

/// Running totals per appid: index i is the total at the end of
/// `first_date() + i` days.
type TotalsCache = Mutex<HashMap<String, Arc<Vec<i64>>>>;

fn totals_cache() -> &'static TotalsCache {
    static CACHE: OnceLock<TotalsCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The running totals of `appid` covering at least up to `end`.
fn totals_through(appid: &str, end: NaiveDate) -> Arc<Vec<i64>> {
    let needed = (end - first_date()).num_days().max(0) as usize + 1;
    let cached = totals_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(appid)
        .cloned();
    if let Some(t) = cached.as_ref().filter(|t| t.len() >= needed) {
        return t.clone();
    }
    // Compute outside the lock (two threads may both compute; same result).
    // Extend to at least the end of 2026, so one computation serves a whole
    // backfill.
    let horizon = NaiveDate::from_ymd_opt(2026, 12, 31).expect("valid date");
    let target = needed.max((horizon - first_date()).num_days() as usize + 1);
    let mut totals: Vec<i64> = cached.map(|t| t.as_ref().clone()).unwrap_or_default();
    totals.reserve(target.saturating_sub(totals.len()));
    let mut running = totals
        .last()
        .copied()
        .unwrap_or_else(|| cumulate_base(appid));
    while totals.len() < target {
        let day = first_date() + Days::new(totals.len() as u64);
        running += net_growth(appid, day);
        totals.push(running);
    }
    let totals = Arc::new(totals);
    totals_cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(appid.to_string(), totals.clone());
    totals
}

/// Followers before the first day of data.
fn cumulate_base(appid: &str) -> i64 {
    Profile::of(appid).followers(first_date())
}

/// Total followers at the end of `date` (the base before 2014-12-01).
pub fn cumulate_user(appid: &str, date: NaiveDate) -> i64 {
    if date < first_date() {
        return cumulate_base(appid);
    }
    let i = (date - first_date()).num_days() as usize;
    totals_through(appid, date)[i]
}

/// Whether the getusercumulate item of `date` carries the undocumented
/// `user_source: 0`.
fn cumulate_has_source(appid: &str, date: NaiveDate) -> bool {
    Gen::new(&["cumulate-source", appid, &fmt_date(date)]).chance(0.3)
}

/// getusercumulate list items over begin..=end (days before 2014-12-01 have none).
pub fn user_cumulate_items(appid: &str, begin: NaiveDate, end: NaiveDate) -> Vec<Value> {
    let begin = begin.max(first_date());
    if begin > end {
        return Vec::new();
    }
    let totals = totals_through(appid, end);
    days(begin, end)
        .map(|day| {
            let total = totals[(day - first_date()).num_days() as usize];
            if cumulate_has_source(appid, day) {
                json!({"ref_date": fmt_date(day), "user_source": 0, "cumulate_user": total})
            } else {
                json!({"ref_date": fmt_date(day), "cumulate_user": total})
            }
        })
        .collect()
}

/// The list items of follower endpoint `name` (None for other names).
pub fn items(name: &str, appid: &str, begin: NaiveDate, end: NaiveDate) -> Option<Vec<Value>> {
    match name {
        "getusersummary" => Some(user_summary_items(appid, begin, end)),
        "getusercumulate" => Some(user_cumulate_items(appid, begin, end)),
        _ => None,
    }
}

/// The success body `{"list": [...]}` of follower endpoint `name`.
pub fn response(name: &str, appid: &str, begin: NaiveDate, end: NaiveDate) -> Option<Value> {
    items(name, appid, begin, end).map(|list| json!({ "list": list }))
}

/// `items` without those whose `ref_date` is `latest_day`.
pub fn omit_latest(items: Vec<Value>, latest_day: NaiveDate) -> Vec<Value> {
    let day = fmt_date(latest_day);
    items
        .into_iter()
        .filter(|v| v.get("ref_date").and_then(Value::as_str) != Some(day.as_str()))
        .collect()
}

/// The state of the `missing_yesterday` fault: which (appid, endpoint, day)
/// have already been answered once with that day missing.
#[derive(Default)]
pub struct MissingYesterday {
    answered: Mutex<HashSet<(String, String, NaiveDate)>>,
}

impl MissingYesterday {
    /// Removes yesterday's (`today - 1`) rows from the success body `body`
    /// (`{"list": [...]}`) of `endpoint`, unless this (appid, endpoint,
    /// yesterday) was already answered that way once. Returns whether rows
    /// were withheld. Bodies without rows of yesterday are left alone and do
    /// not count.
    pub fn apply(&self, appid: &str, endpoint: &str, today: NaiveDate, body: &mut Value) -> bool {
        let Some(yesterday) = today.pred_opt() else {
            return false;
        };
        let Some(list) = body.get_mut("list").and_then(Value::as_array_mut) else {
            return false;
        };
        let day = fmt_date(yesterday);
        let has_yesterday = list
            .iter()
            .any(|v| v.get("ref_date").and_then(Value::as_str) == Some(day.as_str()));
        if !has_yesterday {
            return false;
        }
        let key = (appid.to_string(), endpoint.to_string(), yesterday);
        if !self
            .answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key)
        {
            return false;
        }
        let kept = omit_latest(std::mem::take(list), yesterday);
        *list = kept;
        true
    }
}

// ---------------------------------------------------------------------------
// Oracle

/// Rows of table `user_daily` for a fault-free fetch of getusersummary over
/// begin..=end: `{appid, ref_date, user_source, new_user, cancel_user}`, one
/// per day and source with activity.
pub fn expected_user_daily(appid: &str, begin: NaiveDate, end: NaiveDate) -> Vec<Value> {
    days(begin, end)
        .flat_map(|day| {
            summary_day(appid, day).into_iter().map(move |s| {
                json!({
                    "appid": appid,
                    "ref_date": fmt_date(day),
                    "user_source": s.user_source,
                    "new_user": s.new_user,
                    "cancel_user": s.cancel_user,
                })
            })
        })
        .collect()
}

/// Rows of table `user_cumulate` for a fault-free fetch of getusercumulate
/// over begin..=end: `{appid, ref_date, cumulate_user}` (the undocumented
/// `user_source` is not stored).
pub fn expected_user_cumulate(appid: &str, begin: NaiveDate, end: NaiveDate) -> Vec<Value> {
    days(begin.max(first_date()), end)
        .map(|day| {
            json!({
                "appid": appid,
                "ref_date": fmt_date(day),
                "cumulate_user": cumulate_user(appid, day),
            })
        })
        .collect()
}
