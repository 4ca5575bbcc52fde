//! Tests of the follower series (SPEC section 8).

use std::collections::HashSet;

use super::followers::{self, DOCUMENTED_SOURCES};
use super::*;
use crate::clock::{days, fmt_date};

fn d(s: &str) -> NaiveDate {
    parse_date(s).unwrap()
}

const TODAY: &str = "2026-03-20";
const APPID: &str = "wxfollowtest0001";

fn i(v: &Value, k: &str) -> i64 {
    v[k].as_i64()
        .unwrap_or_else(|| panic!("no integer {k} in {v}"))
}

// ---------------------------------------------------------------------------
// Followers

#[test]
fn cumulate_follows_the_daily_net_growth_over_the_full_history() {
    // An appid of its own, so that the cache is cold and the timing honest.
    let appid = "wxfullhistory001";
    let (begin, end) = (followers::first_date(), d("2026-11-30"));
    let started = std::time::Instant::now();
    let cumulate = followers::user_cumulate_items(appid, begin, end);
    let elapsed = started.elapsed();
    eprintln!("full cumulate history: {elapsed:?}");
    // Well under a second on an idle machine; generous for shared CI cores.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(cumulate.len(), days(begin, end).count());
    let summary = followers::user_summary_items(appid, begin, end);
    let mut net = std::collections::HashMap::<String, i64>::new();
    for item in &summary {
        *net.entry(item["ref_date"].as_str().unwrap().to_string())
            .or_default() += i(item, "new_user") - i(item, "cancel_user");
    }
    for pair in cumulate.windows(2) {
        let day = pair[1]["ref_date"].as_str().unwrap();
        let growth = net.get(day).copied().unwrap_or(0);
        assert_eq!(
            i(&pair[1], "cumulate_user"),
            i(&pair[0], "cumulate_user") + growth,
            "{day}"
        );
    }
    assert!(cumulate.iter().all(|v| i(v, "cumulate_user") > 0));
    let first = i(&cumulate[0], "cumulate_user");
    let last = i(cumulate.last().unwrap(), "cumulate_user");
    assert!(last > first, "the account grows: {first} -> {last}");
    // A one-week request agrees with the full history (cache or not).
    let week = followers::user_cumulate_items(appid, d("2021-09-01"), d("2021-09-07"));
    let offset = (d("2021-09-01") - begin).num_days() as usize;
    assert_eq!(week, cumulate[offset..offset + 7].to_vec());
}

#[test]
fn summary_lists_only_sources_with_activity() {
    let items = followers::user_summary_items(APPID, d("2025-01-01"), d("2025-12-31"));
    assert!(!items.is_empty());
    for v in &items {
        assert!(
            i(v, "new_user") != 0 || i(v, "cancel_user") != 0,
            "zero row {v}"
        );
        assert!(i(v, "new_user") >= 0 && i(v, "cancel_user") >= 0);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 4, "{v}");
    }
    // Some day lacks some documented source that exists by then.
    let mut per_day = std::collections::BTreeMap::<String, HashSet<i64>>::new();
    for v in &items {
        per_day
            .entry(v["ref_date"].as_str().unwrap().to_string())
            .or_default()
            .insert(i(v, "user_source"));
    }
    assert!(per_day.values().any(|codes| codes.len() < 8), "{per_day:?}");
    // Days in order, sources ascending within a day.
    let order: Vec<(String, i64)> = items
        .iter()
        .map(|v| {
            (
                v["ref_date"].as_str().unwrap().to_string(),
                i(v, "user_source"),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(order, sorted);
}

#[test]
fn undocumented_source_codes_appear_within_a_year() {
    for appid in [APPID, "wxdemo", "wxb"] {
        let items = followers::user_summary_items(appid, d("2025-03-01"), d("2026-02-28"));
        let codes: HashSet<i64> = items.iter().map(|v| i(v, "user_source")).collect();
        let odd: Vec<i64> = codes
            .iter()
            .copied()
            .filter(|c| !DOCUMENTED_SOURCES.contains(c))
            .collect();
        assert!(!odd.is_empty(), "{appid}: {codes:?}");
        assert!(
            odd.iter()
                .all(|c| followers::UNDOCUMENTED_SOURCES.contains(c))
        );
        // The common documented ones show up too.
        for c in [0, 1, 30] {
            assert!(codes.contains(&c), "{appid}: {c}");
        }
    }
}

#[test]
fn follower_answers_are_deterministic_and_independent_of_chunking() {
    let (b, e) = (d("2026-03-01"), d("2026-03-07"));
    for name in followers::ENDPOINT_NAMES {
        let whole = followers::items(name, APPID, b, e).unwrap();
        assert_eq!(whole, followers::items(name, APPID, b, e).unwrap());
        let by_day: Vec<Value> = days(b, e)
            .flat_map(|day| followers::items(name, APPID, day, day).unwrap())
            .collect();
        assert_eq!(whole, by_day, "{name}");
        assert_ne!(whole, followers::items(name, "wxother", b, e).unwrap());
        assert_eq!(
            followers::response(name, APPID, b, e).unwrap()["list"],
            json!(whole)
        );
    }
    assert!(followers::items("getuserread", APPID, b, e).is_none());
    // Nothing before the first day.
    assert!(followers::user_cumulate_items(APPID, d("2014-11-20"), d("2014-11-30")).is_empty());
    assert!(followers::user_summary_items(APPID, d("2014-11-20"), d("2014-11-30")).is_empty());
}

#[test]
fn cumulate_sometimes_carries_the_undocumented_user_source() {
    let items = followers::user_cumulate_items(APPID, d("2025-01-01"), d("2025-03-31"));
    let with = items
        .iter()
        .filter(|v| v.get("user_source").is_some())
        .count();
    assert!(with > 0 && with < items.len(), "{with} of {}", items.len());
    assert!(
        items
            .iter()
            .filter_map(|v| v.get("user_source"))
            .all(|s| *s == json!(0))
    );
}

#[test]
fn follower_oracle_matches_the_wire() {
    let (b, e) = (d("2026-02-25"), d("2026-03-03"));
    let wire = followers::user_summary_items(APPID, b, e);
    let rows = followers::expected_user_daily(APPID, b, e);
    assert_eq!(wire.len(), rows.len());
    for (w, r) in wire.iter().zip(&rows) {
        let mut w = w.clone();
        w["appid"] = json!(APPID);
        assert_eq!(&w, r);
    }
    let wire = followers::user_cumulate_items(APPID, b, e);
    let rows = followers::expected_user_cumulate(APPID, b, e);
    assert_eq!(rows.len(), 7);
    for (w, r) in wire.iter().zip(&rows) {
        assert_eq!(
            r,
            &json!({"appid": APPID, "ref_date": w["ref_date"], "cumulate_user": w["cumulate_user"]})
        );
    }
}

#[test]
fn missing_yesterday_withholds_the_day_once_per_endpoint() {
    let state = followers::MissingYesterday::default();
    let today = d(TODAY);
    let yesterday = fmt_date(today.pred_opt().unwrap());
    let (b, e) = (d("2026-03-13"), d("2026-03-19"));
    let dates = |v: &Value| -> HashSet<String> {
        v["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["ref_date"].as_str().unwrap().to_string())
            .collect()
    };
    // A range without yesterday is untouched and does not use the miss up.
    let mut early = followers::response("getusercumulate", APPID, b, d("2026-03-18")).unwrap();
    let copy = early.clone();
    assert!(!state.apply(APPID, "getusercumulate", today, &mut early));
    assert_eq!(early, copy);
    for name in followers::ENDPOINT_NAMES {
        let full = followers::response(name, APPID, b, e).unwrap();
        assert!(dates(&full).contains(&yesterday));
        let mut first = full.clone();
        assert!(state.apply(APPID, name, today, &mut first), "{name}");
        assert!(!dates(&first).contains(&yesterday), "{name}");
        assert_eq!(dates(&first).len(), 6, "{name}");
        let mut second = full.clone();
        assert!(!state.apply(APPID, name, today, &mut second));
        assert_eq!(second, full, "{name}");
        // Another account misses its own yesterday.
        let mut other = followers::response(name, "wxother", b, e).unwrap();
        assert!(state.apply("wxother", name, today, &mut other));
    }
    // omit_latest on its own.
    let items = followers::user_summary_items(APPID, b, e);
    let kept = followers::omit_latest(items.clone(), e);
    assert!(kept.len() < items.len());
    assert!(kept.iter().all(|v| v["ref_date"] != json!(yesterday)));
}
