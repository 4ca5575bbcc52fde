//! Tests of the follower series, the published catalogue and the
//! freepublish route (SPEC section 8).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::catalogue::{self, Placement};
use super::followers::{self, DOCUMENTED_SOURCES};
use super::tests::{d, errcode, stable_as, start};
use super::*;
use crate::clock::{days, fmt_date};
use crate::url_key::url_key;

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

// ---------------------------------------------------------------------------
// Catalogue

#[test]
fn catalogue_has_a_few_hundred_varied_items_newest_first() {
    for appid in [APPID, "wxdemo", "wxb", "wxd"] {
        let items = catalogue::catalogue(appid, d(TODAY));
        assert!(
            (150..=400).contains(&items.len()),
            "{appid}: {}",
            items.len()
        );
        // Newest first by the latest update (an edited item comes back up).
        for pair in items.windows(2) {
            assert!(
                (pair[0].update_time, pair[0].create_time)
                    > (pair[1].update_time, pair[1].create_time)
            );
        }
        assert!(items[0].publish_date < d(TODAY));
        let ids: HashSet<&str> = items.iter().map(|x| x.article_id.as_str()).collect();
        assert_eq!(ids.len(), items.len(), "{appid}: unique article_id");
        assert!(items.iter().any(|x| x.news_item.len() > 1), "{appid}");
        assert!(items.iter().any(|x| x.news_item.len() == 1), "{appid}");
        assert!(
            items
                .iter()
                .any(|x| x.news_item.iter().any(|n| n.is_deleted)),
            "{appid}"
        );
        for p in [
            Placement::Documented,
            Placement::ContentOnly,
            Placement::ItemOnly,
        ] {
            assert!(items.iter().any(|x| x.placement == p), "{appid}: {p:?}");
        }
        // Only part of the broadcasts are published.
        let sent = days(catalogue::catalogue_start(appid), d("2026-03-19"))
            .filter(|day| !data::broadcast(appid, *day).is_empty())
            .count();
        assert!(items.len() < sent * 4 / 5 && items.len() > sent * 2 / 5);
        // Each item lists its broadcast's articles in idx order.
        for x in &items {
            let b = data::broadcast(appid, x.publish_date);
            let msgids: Vec<&str> = b.iter().map(|a| a.msgid.as_str()).collect();
            let listed: Vec<&str> = x.news_item.iter().map(|n| n.msgid.as_str()).collect();
            assert_eq!(listed, msgids);
        }
    }
    assert_eq!(
        catalogue::batchget(APPID, 0, 20, d(TODAY)).unwrap(),
        catalogue::batchget(APPID, 0, 20, d(TODAY)).unwrap()
    );
}

#[test]
fn items_change_after_their_update_day() {
    let today = d(TODAY);
    let items = catalogue::catalogue(APPID, today);
    let updated: Vec<_> = items
        .iter()
        .filter(|x| x.updated_after.is_some_and(|u| u < today))
        .collect();
    assert!(updated.len() >= 5, "{}", updated.len());
    for x in updated {
        let u = x.updated_after.unwrap();
        let before = catalogue::catalogue(APPID, u);
        let after = catalogue::catalogue(APPID, u.succ_opt().unwrap());
        let b = before
            .iter()
            .find(|y| y.article_id == x.article_id)
            .unwrap();
        let a = after.iter().find(|y| y.article_id == x.article_id).unwrap();
        assert!(a.update_time > b.update_time, "{}", x.article_id);
        assert!(a.update_time > a.create_time);
        assert_ne!(catalogue::item_json(a), catalogue::item_json(b));
        assert_eq!(a.create_time, b.create_time);
        // The first article's digest (when present) says so.
        if let Some(dg) = &a.news_item[0].digest {
            assert!(dg.starts_with("更新："), "{dg}");
        }
        // Stays changed later on.
        let later = catalogue::catalogue(APPID, today);
        let l = later.iter().find(|y| y.article_id == x.article_id).unwrap();
        assert_eq!(l.update_time, a.update_time);
    }
    // Items never updated keep their update_time a few seconds after creation.
    let never = items.iter().find(|x| x.updated_after.is_none()).unwrap();
    assert!((3..=60).contains(&(never.update_time - never.create_time)));
}

#[test]
fn current_period_catalogue_urls_key_like_their_content_url() {
    let today = d(TODAY);
    let mut checked = 0;
    for x in catalogue::catalogue(APPID, today)
        .iter()
        .filter(|x| x.publish_date >= Endpoint::ArticleTotalDetail.first_date())
    {
        let day = x.publish_date;
        let v = data::response(APPID, Endpoint::ArticleTotalDetail, day, day, today);
        for n in &x.news_item {
            let wire = v["list"]
                .as_array()
                .unwrap()
                .iter()
                .find(|it| it["msgid"] == json!(n.msgid))
                .unwrap_or_else(|| panic!("{} not in getarticletotaldetail", n.msgid));
            let content_url = wire["content_url"].as_str().unwrap();
            assert_ne!(n.url, content_url);
            assert!(n.url.contains("&chksm=") && n.url.contains("&scene="));
            assert_eq!(url_key(&n.url), url_key(content_url));
            assert!(url_key(&n.url).starts_with("mp.weixin.qq.com/s?__biz="));
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked}");
}

#[test]
fn item_json_has_the_section_8_shape() {
    let today = d(TODAY);
    let news_keys: HashSet<&str> = [
        "title",
        "author",
        "digest",
        "content_source_url",
        "thumb_media_id",
        "thumb_url",
        "show_cover_pic",
        "need_open_comment",
        "only_fans_can_comment",
        "url",
        "is_deleted",
    ]
    .into();
    let page = catalogue::batchget("wxdemo", 0, 20, today).unwrap();
    let mut seen_absent = false;
    for offset in (0..200).step_by(20) {
        let page = catalogue::batchget("wxdemo", offset, 20, today).unwrap();
        for item in page["item"].as_array().unwrap() {
            let top: HashSet<&str> = item
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert!(
                top.is_subset(&["article_id", "content", "update_time", "create_time"].into()),
                "{top:?}"
            );
            assert!(item["article_id"].is_string());
            let content = &item["content"];
            assert!(
                item.get("update_time").is_some() || content.get("update_time").is_some(),
                "{item}"
            );
            assert!(
                item.get("create_time").is_some() || content.get("create_time").is_some(),
                "{item}"
            );
            for n in content["news_item"].as_array().unwrap() {
                let keys: HashSet<&str> =
                    n.as_object().unwrap().keys().map(String::as_str).collect();
                assert!(keys.is_subset(&news_keys), "{keys:?}");
                assert!(n["is_deleted"].is_boolean());
                assert!(n["url"].is_string() && n["title"].is_string());
                seen_absent |= keys.len() < news_keys.len();
            }
        }
    }
    assert!(seen_absent, "some field is absent somewhere");
    assert_eq!(page["item_count"], json!(20));
}

#[test]
fn batchget_pages_cover_every_item_exactly_once() {
    let today = d(TODAY);
    let all = catalogue::catalogue(APPID, today);
    for count in [20, 7, 3] {
        let mut ids = Vec::new();
        let mut offset = 0;
        loop {
            let page = catalogue::batchget(APPID, offset, count, today).unwrap();
            assert_eq!(i(&page, "total_count"), all.len() as i64);
            let items = page["item"].as_array().unwrap();
            assert_eq!(i(&page, "item_count"), items.len() as i64);
            assert!(items.len() as i64 <= count);
            if items.is_empty() {
                break;
            }
            ids.extend(
                items
                    .iter()
                    .map(|x| x["article_id"].as_str().unwrap().to_string()),
            );
            offset += count;
        }
        let expected: Vec<String> = all.iter().map(|x| x.article_id.clone()).collect();
        assert_eq!(ids, expected, "count {count}");
    }
    let past = catalogue::batchget(APPID, 100_000, 20, today).unwrap();
    assert_eq!(past["item"], json!([]));
    for (offset, count) in [(0, 0), (0, 21), (-1, 10), (0, -5)] {
        let e = catalogue::batchget(APPID, offset, count, today).unwrap_err();
        assert_eq!(e.0, catalogue::INVALID_ARGS, "{offset} {count}");
    }
}

#[test]
fn published_articles_oracle_follows_the_wire() {
    let today = d(TODAY);
    let rows = catalogue::expected_published_articles(APPID, today);
    let mut wire = Vec::new();
    let mut offset = 0;
    loop {
        let page = catalogue::batchget(APPID, offset, 20, today).unwrap();
        let items = page["item"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        wire.extend(items);
        offset += 20;
    }
    let mut r = rows.iter();
    for item in &wire {
        let content = &item["content"];
        let time = |k: &str| item.get(k).or_else(|| content.get(k)).cloned().unwrap();
        for (pos, n) in content["news_item"].as_array().unwrap().iter().enumerate() {
            let row = r.next().expect("a row per news_item");
            assert_eq!(row["appid"], json!(APPID));
            assert_eq!(row["article_id"], item["article_id"]);
            assert_eq!(row["idx"], json!(pos + 1));
            for col in [
                "title",
                "author",
                "digest",
                "url",
                "content_source_url",
                "thumb_url",
                "thumb_media_id",
                "show_cover_pic",
                "need_open_comment",
                "only_fans_can_comment",
            ] {
                assert_eq!(
                    row[col],
                    n.get(col).cloned().unwrap_or(Value::Null),
                    "{col}"
                );
            }
            let deleted = n["is_deleted"].as_bool().unwrap();
            assert_eq!(row["is_deleted"], json!(i64::from(deleted)));
            assert_eq!(row["update_time"], time("update_time"));
            assert_eq!(row["create_time"], time("create_time"));
            assert_eq!(row["url_key"], json!(url_key(n["url"].as_str().unwrap())));
        }
    }
    assert!(r.next().is_none());
    assert_eq!(rows[0].as_object().unwrap().len(), 17);
    // Item-level update_time wins over a stale content one.
    assert!(wire.iter().any(|x| {
        x.get("update_time").is_some()
            && x["content"].get("update_time").is_some()
            && x["update_time"] != x["content"]["update_time"]
    }));
}

// ---------------------------------------------------------------------------
// Over HTTP

async fn token_for(c: &reqwest::Client, sim: &Simulator, appid: &str) -> String {
    let v = stable_as(c, sim, appid, "s", false).await;
    v["access_token"].as_str().unwrap().to_string()
}

async fn batchget(c: &reqwest::Client, sim: &Simulator, token: &str, body: &str) -> Value {
    let r = c
        .post(format!("{}/cgi-bin/freepublish/batchget", sim.base_url()))
        .query(&[("access_token", token)])
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn freepublish_has_a_daily_quota_of_100_per_appid() {
    // Noon in China on TODAY, plus a number of seconds tests can move.
    let base: chrono::DateTime<chrono::Utc> = format!("{TODAY}T04:00:00Z").parse().unwrap();
    let shift = Arc::new(AtomicI64::new(0));
    let s = shift.clone();
    let sim = start(SimOptions {
        clock: Clock::from_fn(move || base + chrono::Duration::seconds(s.load(Ordering::SeqCst))),
        ..SimOptions::default()
    })
    .await;
    let c = reqwest::Client::new();
    let t = token_for(&c, &sim, APPID).await;
    let page = r#"{"offset":0,"count":20,"no_content":1}"#;
    let first = batchget(&c, &sim, &t, page).await;
    assert_eq!(
        first,
        catalogue::batchget(APPID, 0, 20, d(TODAY)).unwrap(),
        "the route answers what batchget computes"
    );
    // Invalid arguments count against the quota too.
    let bad = batchget(&c, &sim, &t, r#"{"offset":0,"count":50}"#).await;
    assert_eq!(errcode(&bad), catalogue::INVALID_ARGS);
    for n in 3..=100 {
        let body = format!(r#"{{"offset":{},"count":1,"no_content":1}}"#, n);
        let v = batchget(&c, &sim, &t, &body).await;
        assert_eq!(errcode(&v), 0, "call {n}: {v}");
    }
    let over = batchget(&c, &sim, &t, page).await;
    assert_eq!(
        over,
        json!({"errcode": 45009, "errmsg": "reach max api daily quota limit"})
    );
    // Another account has its own quota.
    let t2 = token_for(&c, &sim, "wxother").await;
    assert_eq!(errcode(&batchget(&c, &sim, &t2, page).await), 0);
    // Token errors and bad bodies.
    assert_eq!(errcode(&batchget(&c, &sim, "nope", page).await), 40001);
    assert_eq!(errcode(&batchget(&c, &sim, "", page).await), 41001);
    assert_eq!(errcode(&batchget(&c, &sim, &t2, "{oops").await), 47001);
    // Logged like datacube requests, but not counted as datacube requests.
    let log = sim.stats.log();
    assert_eq!(log.len(), 105);
    assert!(log.iter().all(|r| r.endpoint == FREEPUBLISH));
    assert_eq!(log.iter().filter(|r| r.errcode == 45009).count(), 1);
    assert_eq!(log[100].appid, APPID);
    assert_eq!(sim.stats.datacube_requests(), 0);
    assert_eq!(
        sim.stats.snapshot()["per_endpoint"][FREEPUBLISH],
        json!(105)
    );
    // The next China day (midnight is 12 hours after noon) starts afresh.
    shift.store(12 * 3600, Ordering::SeqCst);
    let next = batchget(&c, &sim, &t, page).await;
    assert_eq!(errcode(&next), 0);
    let tomorrow = d(TODAY).succ_opt().unwrap();
    assert_eq!(next, catalogue::batchget(APPID, 0, 20, tomorrow).unwrap());
    sim.stop().await;
}
