//! Tests of the simulator: the generator and oracle directly, the server over loopback HTTP.

use super::data::{self, Rows};
use super::truth;
use super::*;
use crate::clock::days;

pub(super) fn d(s: &str) -> NaiveDate {
    parse_date(s).unwrap()
}

/// Rows one account's full backfill would store, estimated from every
/// `step`-th day (each day is independent, so the sample is unbiased).
fn estimated_backfill_rows(appid: &str, step: usize) -> usize {
    let today = d("2026-11-25");
    let end = d("2026-11-24");
    let mut total = 0;
    for e in Endpoint::ALL {
        for day in days(e.first_date(), end).step_by(step) {
            let tables = truth::expected_rows(appid, e, day, day, today);
            total += tables.values().map(Vec::len).sum::<usize>() * step;
        }
    }
    total
}

#[test]
fn full_backfill_volume_stays_moderate() {
    // About 0.7M to 0.95M for the accounts tried while tuning the generator.
    for appid in ["wxdemo", "wxb", "wxd"] {
        let n = estimated_backfill_rows(appid, 15);
        eprintln!("{appid}: {n}");
        assert!(n < 1_400_000, "{appid}: about {n} rows");
    }
}

// ---------------------------------------------------------------------------
// Helpers

const TODAY: &str = "2026-03-20";
const APPID: &str = "wxsimtest0000001";

/// A clock at noon China time on `today`.
fn clock_on(today: &str) -> Clock {
    Clock::fixed(format!("{today}T04:00:00Z").parse().unwrap())
}

fn opts(faults: &str) -> SimOptions {
    SimOptions {
        faults: FaultSpec::parse(faults).unwrap(),
        clock: clock_on(TODAY),
        ..SimOptions::default()
    }
}

pub(super) async fn start(o: SimOptions) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), o)
        .await
        .unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub(super) async fn stable_as(
    c: &reqwest::Client,
    sim: &Simulator,
    appid: &str,
    secret: &str,
    force: bool,
) -> Value {
    c.post(format!("{}/cgi-bin/stable_token", sim.base_url()))
        .json(&json!({"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn stable(c: &reqwest::Client, sim: &Simulator, force: bool) -> String {
    let v = stable_as(c, sim, APPID, "s3cret", force).await;
    v["access_token"].as_str().expect("a token").to_string()
}

async fn classic(c: &reqwest::Client, sim: &Simulator, appid: &str, secret: &str) -> Value {
    c.get(format!("{}/cgi-bin/token", sim.base_url()))
        .query(&[
            ("grant_type", "client_credential"),
            ("appid", appid),
            ("secret", secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn send(
    c: &reqwest::Client,
    sim: &Simulator,
    name: &str,
    token: &str,
    body: Value,
) -> reqwest::Result<reqwest::Response> {
    c.post(format!("{}/datacube/{name}", sim.base_url()))
        .query(&[("access_token", token)])
        .json(&body)
        .send()
        .await
}

async fn call(
    c: &reqwest::Client,
    sim: &Simulator,
    name: &str,
    token: &str,
    begin: &str,
    end: &str,
) -> Value {
    let r = send(
        c,
        sim,
        name,
        token,
        json!({"begin_date": begin, "end_date": end}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub(super) fn errcode(v: &Value) -> i64 {
    v.get("errcode").and_then(Value::as_i64).unwrap_or(0)
}

fn list(v: &Value) -> &Vec<Value> {
    v["list"]
        .as_array()
        .unwrap_or_else(|| panic!("no list in {v}"))
}

// ---------------------------------------------------------------------------
// Validation

#[tokio::test]
async fn validation_answers_61500_and_61501_like_wechat() {
    let sim = start(opts("")).await;
    let c = client();
    let t = stable(&c, &sim, false).await;
    let ok = call(&c, &sim, "getuserread", &t, "2026-03-17", "2026-03-19").await;
    assert_eq!(errcode(&ok), 0);
    assert!(ok.get("errcode").is_none() && ok.get("is_delay").is_none());
    assert!(!list(&ok).is_empty());

    for (begin, end) in [
        ("2026-3-19", "2026-03-19"),
        ("abc", "2026-03-19"),
        ("2026-02-30", "2026-02-30"),
    ] {
        assert_eq!(
            errcode(&call(&c, &sim, "getuserread", &t, begin, end).await),
            61500,
            "{begin}"
        );
    }
    let missing = send(
        &c,
        &sim,
        "getuserread",
        &t,
        json!({"begin_date": "2026-03-19"}),
    )
    .await
    .unwrap();
    assert_eq!(errcode(&missing.json().await.unwrap()), 61500);

    let cases = [
        ("getuserread", "2026-03-20", "2026-03-20"), // end == today (China)
        ("getarticlesummary", "2026-03-19", "2026-03-21"),
        ("getuserread", "2026-03-16", "2026-03-19"), // span 3 + 1
        ("getusershare", "2026-03-12", "2026-03-19"), // span 7 + 1
        ("getbizsummary", "2026-02-17", "2026-03-19"), // span 30 + 1
        ("getarticletotal", "2026-03-18", "2026-03-19"),
        ("getuserread", "2026-03-19", "2026-03-18"), // begin > end
        ("getbizsummary", "2025-10-31", "2025-10-31"), // before the current family
        ("getarticletotaldetail", "2025-10-31", "2025-10-31"),
        ("getusershare", "2014-11-30", "2014-12-01"), // before 2014-12-01
    ];
    for (name, begin, end) in cases {
        let v = call(&c, &sim, name, &t, begin, end).await;
        assert_eq!(errcode(&v), 61501, "{name} {begin}..{end}: {v}");
        assert!(v["errmsg"].is_string());
    }
    for (name, begin, end) in [
        ("getbizsummary", "2026-02-18", "2026-03-19"),
        ("getbizsummary", "2025-11-01", "2025-11-01"),
        ("getusershare", "2014-12-01", "2014-12-07"),
    ] {
        assert_eq!(
            errcode(&call(&c, &sim, name, &t, begin, end).await),
            0,
            "{name}"
        );
    }
    // Validation errors are logged with their errcode and no fault.
    let log = sim.stats.log();
    assert_eq!(
        log.iter().filter(|r| r.errcode == 61501).count(),
        cases.len()
    );
    assert!(log.iter().all(|r| r.fault.is_none() && r.appid == APPID));
    sim.stop().await;
}

#[tokio::test]
async fn requests_that_are_not_datacube_calls_get_errcodes() {
    let sim = start(opts("")).await;
    let c = client();
    let t = stable(&c, &sim, false).await;
    let body = json!({"begin_date": "2026-03-19", "end_date": "2026-03-19"});
    let get: Value = c
        .get(format!(
            "{}/datacube/getuserread?access_token={t}",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&get), 43002);
    let v: Value = send(&c, &sim, "getfoo", &t, body.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&v), 40066);
    let v: Value = c
        .post(format!("{}/datacube/getuserread", sim.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&v), 41001);
    let v: Value = send(&c, &sim, "getuserread", "not-a-token", body.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&v), 40001);
    // A token used with another account's appid (optional `appid` query) is refused.
    let v: Value = c
        .post(format!("{}/datacube/getuserread", sim.base_url()))
        .query(&[("access_token", t.as_str()), ("appid", "wxother")])
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&v), 40001);
    // The non-POST call is not a datacube request; the other four are.
    assert_eq!(sim.stats.datacube_requests(), 4);
    sim.stop().await;
}

// ---------------------------------------------------------------------------
// Tokens

#[tokio::test]
async fn stable_tokens_are_reused_until_force_refresh() {
    let sim = start(opts("")).await;
    let c = client();
    let t1 = stable(&c, &sim, false).await;
    assert_eq!(stable(&c, &sim, false).await, t1);
    assert!(t1.len() >= 64 && t1.chars().all(|ch| ch.is_ascii_alphanumeric()));
    let t2 = stable(&c, &sim, true).await;
    assert_ne!(t2, t1);
    // The replaced token stays valid for the grace period (300 s by default).
    assert_eq!(
        errcode(&call(&c, &sim, "getusershare", &t1, "2026-03-19", "2026-03-19").await),
        0
    );
    assert_eq!(
        errcode(&call(&c, &sim, "getusershare", &t2, "2026-03-19", "2026-03-19").await),
        0
    );
    assert_eq!(stable(&c, &sim, false).await, t2);
    assert_eq!(sim.stats.token_requests(), 4);
    assert_eq!(sim.stats.force_refreshes(), 1);
    assert_eq!(sim.stats.issued_tokens(), vec![t1.clone(), t2.clone()]);

    // Tokens are bound to their appid: another appid gets another token and other data.
    let other = stable_as(&c, &sim, "wxanother", "x", false).await;
    let t3 = other["access_token"].as_str().unwrap();
    assert_ne!(t3, t2);
    let mine = call(&c, &sim, "getuserread", &t2, "2026-03-19", "2026-03-19").await;
    let theirs = call(&c, &sim, "getuserread", t3, "2026-03-19", "2026-03-19").await;
    assert_ne!(mine, theirs);
    assert_eq!(sim.stats.log().last().unwrap().appid, "wxanother");

    sim.expire_all_tokens();
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t2, "2026-03-19", "2026-03-19").await),
        42001
    );
    // Stable mode hands out a fresh token once the old one died.
    let t4 = stable(&c, &sim, false).await;
    assert_ne!(t4, t2);
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t4, "2026-03-19", "2026-03-19").await),
        0
    );
    sim.stop().await;
}

#[tokio::test]
async fn stale_stable_needs_force_refresh() {
    let sim = start(opts("stale_stable=1")).await;
    let c = client();
    let t1 = stable(&c, &sim, false).await;
    sim.expire_all_tokens();
    assert_eq!(stable(&c, &sim, false).await, t1);
    let t2 = stable(&c, &sim, true).await;
    assert_ne!(t2, t1);
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t2, "2026-03-19", "2026-03-19").await),
        0
    );
    sim.stop().await;
}

#[tokio::test]
async fn classic_token_rotation_invalidates_the_previous_one_after_grace() {
    let sim = start(SimOptions {
        classic_grace_secs: 0,
        ..opts("")
    })
    .await;
    let c = client();
    let v1 = classic(&c, &sim, APPID, "s").await;
    assert_eq!(v1["expires_in"], 7200);
    let t1 = v1["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t1, "2026-03-19", "2026-03-19").await),
        0
    );
    let t2 = classic(&c, &sim, APPID, "s").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(t1, t2);
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t1, "2026-03-19", "2026-03-19").await),
        40001
    );
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t2, "2026-03-19", "2026-03-19").await),
        0
    );
    sim.stop().await;

    // With the default grace the previous token keeps working.
    let sim = start(opts("")).await;
    let t1 = classic(&c, &sim, APPID, "s").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    classic(&c, &sim, APPID, "s").await;
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t1, "2026-03-19", "2026-03-19").await),
        0
    );
    sim.stop().await;
}

#[tokio::test]
async fn credentials_are_checked() {
    let sim = start(SimOptions {
        secret: Some("right".into()),
        token_ttl_secs: 60,
        ..opts("")
    })
    .await;
    let c = client();
    assert_eq!(errcode(&classic(&c, &sim, APPID, "wrong").await), 40125);
    assert_eq!(
        errcode(&stable_as(&c, &sim, APPID, "wrong", false).await),
        40125
    );
    assert_eq!(errcode(&stable_as(&c, &sim, APPID, "", false).await), 41004);
    assert_eq!(
        errcode(&stable_as(&c, &sim, "", "right", false).await),
        41002
    );
    assert_eq!(errcode(&classic(&c, &sim, "", "right").await), 41002);
    let ok = stable_as(&c, &sim, APPID, "right", false).await;
    assert_eq!(ok["expires_in"], 60);
    assert_eq!(classic(&c, &sim, APPID, "right").await["expires_in"], 60);
    assert_eq!(sim.stats.issued_tokens().len(), 2);
    assert_eq!(sim.stats.token_requests(), 7);
    sim.stop().await;
}

// ---------------------------------------------------------------------------
// Data

#[tokio::test]
async fn answers_are_deterministic_and_independent_of_chunking() {
    let sim = start(opts("")).await;
    let c = client();
    let t = stable(&c, &sim, false).await;
    let a = call(&c, &sim, "getuserread", &t, "2021-05-10", "2021-05-12").await;
    let b = call(&c, &sim, "getuserread", &t, "2021-05-10", "2021-05-12").await;
    assert_eq!(a, b);
    assert_eq!(
        a,
        data::response(
            APPID,
            Endpoint::UserRead,
            d("2021-05-10"),
            d("2021-05-12"),
            d(TODAY)
        )
    );
    let mut joined = Vec::new();
    for day in ["2021-05-10", "2021-05-11", "2021-05-12"] {
        joined.extend(list(&call(&c, &sim, "getuserread", &t, day, day).await).clone());
    }
    assert_eq!(list(&a), &joined);
    sim.stop().await;

    let today = d(TODAY);
    for (e, begin, end) in [
        (Endpoint::UserShare, "2015-03-01", "2015-03-07"),
        (Endpoint::BizSummary, "2026-01-01", "2026-01-30"),
    ] {
        let whole = data::response(APPID, e, d(begin), d(end), today);
        let parts: Vec<Value> = days(d(begin), d(end))
            .flat_map(|day| list(&data::response(APPID, e, day, day, today)).clone())
            .collect();
        assert_eq!(list(&whole), &parts, "{e}");
    }
}

fn broadcast_day_between(from: &str, to: &str) -> NaiveDate {
    days(d(from), d(to))
        .find(|day| !data::broadcast(APPID, *day).is_empty())
        .expect("some broadcast in range")
}

fn assert_cumulative(details: &[Value], date_key: &str) {
    for pair in details.windows(2) {
        for (k, v) in pair[1].as_object().unwrap() {
            if let (Some(now), Some(before)) = (v.as_i64(), pair[0][k].as_i64()) {
                assert!(
                    now >= before,
                    "{k} fell from {before} to {now} at {}",
                    pair[1][date_key]
                );
            }
        }
    }
}

#[test]
fn articletotal_details_are_cumulative_and_cut_at_yesterday() {
    let today = d(TODAY);
    let recent = broadcast_day_between("2026-03-16", "2026-03-18");
    let v = data::response(APPID, Endpoint::ArticleTotal, recent, recent, today);
    for item in list(&v) {
        assert_eq!(item["ref_date"], json!(fmt(recent)));
        let details = item["details"].as_array().unwrap();
        let stats: Vec<&str> = details
            .iter()
            .map(|x| x["stat_date"].as_str().unwrap())
            .collect();
        assert_eq!(stats.first().copied(), Some(fmt(recent).as_str()));
        assert_eq!(stats.last().copied(), Some("2026-03-19"));
        assert_eq!(
            stats.len() as i64,
            (d("2026-03-19") - recent).num_days() + 1
        );
        assert_cumulative(details, "stat_date");
        assert!(details[0]["target_user"].as_i64().unwrap() > 0);
        assert!(details[0].get("int_page_from_session_read_user").is_some());
        assert!(details[0].get("feed_share_from_feed_cnt").is_some());
    }
    let old = broadcast_day_between("2025-06-01", "2025-06-10");
    for item in list(&data::response(
        APPID,
        Endpoint::ArticleTotal,
        old,
        old,
        today,
    )) {
        let details = item["details"].as_array().unwrap();
        assert_eq!(details.len(), 7);
        assert_cumulative(details, "stat_date");
    }
    // getarticletotaldetail: up to 30 days, cut at yesterday, cumulative, all scenes.
    let pub_day = broadcast_day_between("2026-03-01", "2026-03-10");
    for item in list(&data::response(
        APPID,
        Endpoint::ArticleTotalDetail,
        pub_day,
        pub_day,
        today,
    )) {
        let details = item["detail_list"].as_array().unwrap();
        assert_eq!(details.last().unwrap()["stat_date"], "2026-03-19");
        assert_cumulative(details, "stat_date");
        assert!(item["title"].is_string() && item["content_url"].is_string());
        assert!([0, 1, 2].contains(&item["publish_type"].as_i64().unwrap()));
        for e in details {
            let scenes: Vec<&str> = e["read_user_source"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["scene_desc"].as_str().unwrap())
                .collect();
            assert_eq!(scenes.len(), 8);
            for s in data::SCENES {
                assert!(scenes.contains(&s));
            }
        }
    }
    let long_ago = broadcast_day_between("2025-12-01", "2025-12-10");
    for item in list(&data::response(
        APPID,
        Endpoint::ArticleTotalDetail,
        long_ago,
        long_ago,
        today,
    )) {
        assert_eq!(item["detail_list"].as_array().unwrap().len(), 30);
    }
}

fn fmt(day: NaiveDate) -> String {
    crate::clock::fmt_date(day)
}

#[test]
fn user_source_rows_exist_after_2020_and_not_in_2015() {
    let today = d(TODAY);
    let v = data::response(
        APPID,
        Endpoint::UserRead,
        d("2021-05-10"),
        d("2021-05-10"),
        today,
    );
    let sources: Vec<i64> = list(&v)
        .iter()
        .map(|r| r["user_source"].as_i64().unwrap())
        .collect();
    assert_eq!(sources, data::USER_SOURCES.to_vec());
    // Rows for different sources carry different fields.
    let fields: std::collections::HashSet<usize> = list(&v)
        .iter()
        .map(|r| r.as_object().unwrap().len())
        .collect();
    assert!(fields.len() > 1);
    let old = data::response(
        APPID,
        Endpoint::UserRead,
        d("2015-05-10"),
        d("2015-05-10"),
        today,
    );
    assert_eq!(list(&old).len(), 1);
    assert!(list(&old)[0].get("user_source").is_none());
    let hourly = data::response(
        APPID,
        Endpoint::UserReadHour,
        d("2015-05-10"),
        d("2015-05-10"),
        today,
    );
    let hours: Vec<i64> = list(&hourly)
        .iter()
        .map(|r| r["ref_hour"].as_i64().unwrap())
        .collect();
    assert!(hours.len() > 10 && hours.iter().all(|h| h % 100 == 0 && (0..=2300).contains(h)));
    assert!(list(&hourly).iter().all(|r| r.get("user_source").is_none()));
    let hourly = data::response(
        APPID,
        Endpoint::UserReadHour,
        d("2026-03-10"),
        d("2026-03-10"),
        today,
    );
    assert!(list(&hourly).iter().any(|r| r["user_source"] == 99_999_999));
}

#[test]
fn share_scenes_include_the_undocumented_5() {
    let today = d(TODAY);
    let mut scenes = std::collections::BTreeSet::new();
    for e in [Endpoint::UserShare, Endpoint::UserShareHour] {
        for day in days(d("2015-01-01"), d("2015-03-31")) {
            for r in list(&data::response(APPID, e, day, day, today)) {
                scenes.insert(r["share_scene"].as_i64().unwrap());
                assert!(r["share_user"].as_i64().unwrap() <= r["share_count"].as_i64().unwrap());
            }
        }
    }
    for s in [1, 2, 5, 255] {
        assert!(scenes.contains(&s), "{scenes:?}");
    }
}

#[test]
fn articles_have_varied_ids_and_titles() {
    let mut plain = 0;
    let mut titles = String::new();
    for day in days(d("2014-12-01"), d("2015-12-31")) {
        for a in data::broadcast(APPID, day) {
            if !a.msgid.contains('_') {
                plain += 1;
                assert_eq!(a.idx, None);
                assert_eq!(a.msg_data_id, a.msgid);
            }
            titles.push_str(&a.title);
            // Stable per msgid.
            assert_eq!(
                data::broadcast(APPID, day)
                    .iter()
                    .find(|b| b.msgid == a.msgid)
                    .unwrap()
                    .url,
                a.url
            );
        }
    }
    assert!(plain > 0);
    for ch in ['"', '\\', '\n', '🎉', '报'] {
        assert!(titles.contains(ch), "no {ch:?} in any title");
    }
    for day in days(d("2016-01-01"), d("2016-03-31")) {
        for a in data::broadcast(APPID, day) {
            let (id, idx) = a.msgid.split_once('_').expect("msgid with _ after 2015");
            assert_eq!(
                (id, idx.parse::<i64>().ok()),
                (a.msg_data_id.as_str(), a.idx)
            );
        }
    }
    // Quiet days exist, and broadcasts have 1-4 articles.
    let sizes: Vec<usize> = days(d("2024-01-01"), d("2024-03-31"))
        .map(|day| data::broadcast(APPID, day).len())
        .collect();
    assert!(sizes.contains(&0) && sizes.iter().all(|n| *n <= 4) && sizes.iter().any(|n| *n >= 3));
}

#[test]
fn articlesummary_lists_articles_sent_on_earlier_days() {
    let today = d(TODAY);
    let mut earlier = 0;
    for day in days(d("2024-01-01"), d("2024-01-31")) {
        for r in list(&data::response(
            APPID,
            Endpoint::ArticleSummary,
            day,
            day,
            today,
        )) {
            let sent = data::broadcast(APPID, day)
                .iter()
                .any(|a| a.msgid == r["msgid"]);
            if !sent {
                earlier += 1;
            }
            assert!(r["title"].is_string());
        }
    }
    assert!(earlier > 0);
}

// ---------------------------------------------------------------------------
// The oracle

#[test]
fn expected_rows_follow_the_spec_columns() {
    let today = d(TODAY);
    for e in Endpoint::ALL {
        let day = broadcast_day_between("2026-02-01", "2026-02-10");
        let t = truth::expected_rows(APPID, e, day, day, today);
        let names: Vec<&str> = t.keys().copied().collect();
        let mut want = truth::tables_of(e).to_vec();
        want.sort();
        assert_eq!(names, want, "{e}");
        for (table, rows) in &t {
            for row in rows {
                assert_eq!(row["appid"], APPID, "{table}");
            }
        }
    }
    // Hourly rows: hour = ref_hour / 100; old rows are the "all" source.
    let t = truth::expected_rows(
        APPID,
        Endpoint::UserReadHour,
        d("2015-05-10"),
        d("2015-05-10"),
        today,
    );
    let rows = &t["user_read_hourly"];
    assert!(
        rows.iter()
            .all(|r| r["user_source"] == 99_999_999 && r["hour"].as_i64().unwrap() < 24)
    );
    assert!(rows.iter().all(|r| r.len() == 4 + 8));
    // Missing counters are null: kanyikan/souyisou are absent before 2018.
    let day = broadcast_day_between("2016-05-01", "2016-05-10");
    let t = truth::expected_rows(APPID, Endpoint::ArticleTotal, day, day, today);
    let row = &t["article_total"][0];
    assert_eq!(row.len(), 4 + truth::ARTICLE_TOTAL_COUNTERS.len());
    assert!(row["int_page_from_kanyikan_read_user"].is_null());
    assert_eq!(t["articles"][0]["publish_date"], json!(fmt(day)));
    // Plain msgids have a null idx.
    let plain_day = days(d("2014-12-01"), d("2015-12-31"))
        .find(|day| data::broadcast(APPID, *day).iter().any(|a| a.idx.is_none()))
        .unwrap();
    let t = truth::expected_rows(APPID, Endpoint::ArticleTotal, plain_day, plain_day, today);
    assert!(
        t["articles"]
            .iter()
            .all(|r| r["idx"].is_null() && r["msg_data_id"] == r["msgid"])
    );
    // Current detail: floats are floats, jump rows and 8 scene rows per stat_date.
    let day = broadcast_day_between("2026-02-01", "2026-02-10");
    let t = truth::expected_rows(APPID, Endpoint::ArticleTotalDetail, day, day, today);
    let details = &t["article_detail"];
    assert_eq!(t["article_detail_sources"].len(), details.len() * 8);
    assert!(details.iter().all(|r| r["read_finish_rate"].is_f64()));
    assert!(t["article_detail_jumps"].iter().all(|r| r["rate"].is_f64()));
    assert!(
        t["articles"]
            .iter()
            .all(|r| r["url"].is_string() && r["publish_type"].is_i64())
    );
}

#[test]
fn expected_rows_match_the_wire_json() {
    // The oracle and the JSON come from the same typed rows; check that the
    // JSON carries exactly the counters the oracle has non-null.
    let today = d(TODAY);
    let rows = data::generate(
        APPID,
        Endpoint::UserRead,
        d("2021-05-10"),
        d("2021-05-12"),
        today,
    );
    let json = data::to_json(&rows);
    let t = truth::rows_to_tables(APPID, Endpoint::UserRead, &rows);
    let table = &t["user_read_daily"];
    assert_eq!(json.len(), table.len());
    for (j, r) in json.iter().zip(table) {
        for c in data::COUNTERS8 {
            assert_eq!(j.get(c).cloned().unwrap_or(Value::Null), r[c]);
        }
    }
    assert!(matches!(rows, Rows::Read(_)));
}

// ---------------------------------------------------------------------------
// Faults

/// Sets `spec` and makes one request of `name` for yesterday.
async fn with_fault(
    sim: &Simulator,
    c: &reqwest::Client,
    t: &str,
    spec: &str,
    name: &str,
) -> reqwest::Result<reqwest::Response> {
    sim.set_faults(FaultSpec::parse(spec).unwrap());
    send(
        c,
        sim,
        name,
        t,
        json!({"begin_date": "2026-03-19", "end_date": "2026-03-19"}),
    )
    .await
}

fn last_fault(sim: &Simulator) -> (Option<String>, i64) {
    let r = sim.stats.log().pop().unwrap();
    (r.fault, r.errcode)
}

#[tokio::test]
async fn every_fault_fires_at_rate_one_and_is_logged() {
    let sim = start(opts("")).await;
    let c = client();
    let t = stable(&c, &sim, false).await;

    for (spec, name, code) in [
        ("busy=1", "getuserread", -1),
        ("quota_minute=1", "getuserread", 45011),
        ("not_ready=1", "getbizsummary", 61503),
        ("offline_legacy=1", "getusershare", 47009),
    ] {
        let v: Value = with_fault(&sim, &c, &t, spec, name)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(errcode(&v), code, "{spec}");
        let fault = spec.split('=').next().unwrap();
        assert_eq!(last_fault(&sim), (Some(fault.to_string()), code));
    }
    assert_eq!(
        with_fault(&sim, &c, &t, "offline_legacy=1", "getusershare")
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        json!({"errcode": 47009, "errmsg": "this api is offline, please use the new api"})
    );
    // Family-specific faults leave the other family alone.
    let v: Value = with_fault(&sim, &c, &t, "not_ready=1,delay=1", "getuserread")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(errcode(&v) == 0 && v.get("is_delay").is_none());
    let v: Value = with_fault(&sim, &c, &t, "offline_legacy=1", "getbizsummary")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["is_delay"], false);

    let r = with_fault(&sim, &c, &t, "http5xx=1", "getuserread")
        .await
        .unwrap();
    assert!(r.status().is_server_error());
    assert_eq!(
        last_fault(&sim),
        (Some("http5xx".into()), i64::from(r.status().as_u16()))
    );

    let r = with_fault(&sim, &c, &t, "malformed=1", "getuserread")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.is_empty() && serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(last_fault(&sim), (Some("malformed".into()), -3));

    let dropped = match with_fault(&sim, &c, &t, "drop=1", "getuserread").await {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(dropped, "the connection should break");
    assert_eq!(last_fault(&sim), (Some("drop".into()), -2));

    sim.set_faults(FaultSpec::parse("slow=1,slow_ms=600").unwrap());
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let r = send(
        &quick,
        &sim,
        "getuserread",
        &t,
        json!({"begin_date": "2026-03-19", "end_date": "2026-03-19"}),
    )
    .await;
    assert!(r.is_err_and(|e| e.is_timeout()));
    assert_eq!(last_fault(&sim), (Some("slow".into()), 0));

    let v: Value = with_fault(&sim, &c, &t, "outside_rows=1", "getuserread")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list(&v).iter().any(|r| r["ref_date"] != "2026-03-19"));
    assert!(list(&v).iter().any(|r| r["ref_date"] == "2026-03-19"));
    assert_eq!(last_fault(&sim), (Some("outside_rows".into()), 0));
    let day = broadcast_day_between("2026-03-10", "2026-03-18");
    let v = call(&c, &sim, "getarticletotal", &t, &fmt(day), &fmt(day)).await;
    assert!(list(&v).iter().any(|r| r["ref_date"] != json!(fmt(day))));

    sim.set_faults(FaultSpec::default());
    let full = call(&c, &sim, "getbizsummary", &t, "2026-02-18", "2026-03-19").await;
    sim.set_faults(FaultSpec::parse("delay=1").unwrap());
    let partial = call(&c, &sim, "getbizsummary", &t, "2026-02-18", "2026-03-19").await;
    assert_eq!(partial["is_delay"], true);
    assert!(list(&partial).len() < list(&full).len());
    assert_eq!(last_fault(&sim), (Some("delay".into()), 0));

    let v: Value = with_fault(&sim, &c, &t, "token_expire=1", "getuserread")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&v), 42001);
    assert_eq!(last_fault(&sim), (Some("token_expire".into()), 42001));
    // The token stays expired without the fault.
    let v: Value = with_fault(&sim, &c, &t, "", "getuserread")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(errcode(&v), 42001);
    assert_eq!(last_fault(&sim), (None, 42001));
    let t = stable(&c, &sim, false).await;

    sim.set_faults(FaultSpec::parse("latency_ms=250").unwrap());
    let started = Instant::now();
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t, "2026-03-19", "2026-03-19").await),
        0
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    sim.stop().await;
}

#[tokio::test]
async fn daily_quota_stops_an_endpoint_after_n_requests() {
    let sim = start(opts("daily_quota_after=2")).await;
    let c = client();
    let t = stable(&c, &sim, false).await;
    for expected in [0, 0, 45009, 45009] {
        assert_eq!(
            errcode(&call(&c, &sim, "getuserread", &t, "2026-03-19", "2026-03-19").await),
            expected
        );
    }
    assert_eq!(last_fault(&sim), (Some("daily_quota".into()), 45009));
    // Counted per endpoint (and per appid).
    assert_eq!(
        errcode(&call(&c, &sim, "getusershare", &t, "2026-03-19", "2026-03-19").await),
        0
    );
    let other = stable_as(&c, &sim, "wxother", "x", false).await;
    let t2 = other["access_token"].as_str().unwrap();
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", t2, "2026-03-19", "2026-03-19").await),
        0
    );
    // Restricted to one endpoint, the others are unlimited.
    sim.set_faults(
        FaultSpec::parse("daily_quota_after=2,daily_quota_endpoint=getusershare").unwrap(),
    );
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t, "2026-03-19", "2026-03-19").await),
        0
    );
    assert_eq!(
        errcode(&call(&c, &sim, "getusershare", &t, "2026-03-19", "2026-03-19").await),
        0
    );
    assert_eq!(
        errcode(&call(&c, &sim, "getusershare", &t, "2026-03-19", "2026-03-19").await),
        45009
    );
    sim.stop().await;
}

#[tokio::test]
async fn faults_with_a_rate_are_seeded_and_counted() {
    let sim = start(opts("busy=0.5,seed=7")).await;
    let c = client();
    let t = stable(&c, &sim, false).await;
    let mut codes = Vec::new();
    for _ in 0..20 {
        codes.push(errcode(
            &call(&c, &sim, "getuserread", &t, "2026-03-19", "2026-03-19").await,
        ));
    }
    let busy = codes.iter().filter(|c| **c == -1).count();
    assert!((3..=17).contains(&busy), "{codes:?}");
    let log = sim.stats.log();
    assert_eq!(
        log.iter()
            .filter(|r| r.fault.as_deref() == Some("busy"))
            .count(),
        busy
    );
    // Same seed, same sequence.
    sim.set_faults(FaultSpec::parse("busy=0.5,seed=7").unwrap());
    let mut again = Vec::new();
    for _ in 0..20 {
        again.push(errcode(
            &call(&c, &sim, "getuserread", &t, "2026-03-19", "2026-03-19").await,
        ));
    }
    assert_eq!(codes, again);
    sim.stop().await;
}

// ---------------------------------------------------------------------------
// Stats, admin routes, run()

#[tokio::test]
async fn stats_count_requests_and_reset() {
    let sim = start(opts("")).await;
    let c = client();
    let t = stable(&c, &sim, false).await;
    call(&c, &sim, "getuserread", &t, "2026-03-17", "2026-03-19").await;
    call(&c, &sim, "getuserread", &t, "2026-03-19", "2026-03-19").await;
    call(&c, &sim, "getbizsummary", &t, "2026-03-19", "2026-03-19").await;
    assert_eq!(sim.stats.datacube_requests(), 3);
    assert_eq!(sim.stats.requests_for(Endpoint::UserRead), 2);
    assert_eq!(sim.stats.requests_for(Endpoint::BizSummary), 1);
    assert_eq!(sim.stats.requests_for(Endpoint::UserShare), 0);
    let first = &sim.stats.log()[0];
    assert_eq!(
        (
            first.appid.as_str(),
            first.endpoint.as_str(),
            first.begin_date.as_str(),
            first.end_date.as_str(),
            first.errcode
        ),
        (APPID, "getuserread", "2026-03-17", "2026-03-19", 0)
    );
    sim.stats.reset();
    assert_eq!(
        (sim.stats.datacube_requests(), sim.stats.token_requests()),
        (0, 0)
    );
    assert_eq!(sim.stats.issued_tokens(), vec![t]);
    sim.stop().await;
}

#[tokio::test]
async fn admin_routes_report_stats_and_replace_faults() {
    let sim = start(opts("")).await;
    let c = client();
    let t = stable(&c, &sim, false).await;
    let r = c
        .post(format!("{}/_sim/faults", sim.base_url()))
        .body("busy=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        errcode(&call(&c, &sim, "getuserread", &t, "2026-03-19", "2026-03-19").await),
        -1
    );
    let r = c
        .post(format!("{}/_sim/faults", sim.base_url()))
        .body("busy=7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("busy=7"));
    let r = c
        .post(format!("{}/_sim/faults", sim.base_url()))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    call(&c, &sim, "getbizsummary", &t, "2026-03-19", "2026-03-19").await;
    let s: Value = c
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["datacube_requests"], 2);
    assert_eq!(s["per_endpoint"]["getuserread"], 1);
    assert_eq!(s["per_endpoint"]["getbizsummary"], 1);
    assert_eq!(s["token_requests"], 1);
    assert_eq!(s["force_refreshes"], 0);
    assert_eq!(s["log"][0]["fault"], "busy");
    assert_eq!(s["log"][1]["errcode"], 0);
    sim.stop().await;
}

#[tokio::test]
async fn run_serves_until_shutdown() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(run(listener, opts(""), async {
        let _ = rx.await;
    }));
    let v: Value = client()
        .get(format!(
            "http://{addr}/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=s"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["access_token"].is_string());
    tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn counts_never_fall_below_user_counts() {
    let today = d(TODAY);
    for e in [
        Endpoint::UserRead,
        Endpoint::UserReadHour,
        Endpoint::ArticleSummary,
    ] {
        for day in days(d("2026-01-01"), d("2026-01-20")) {
            for r in list(&data::response(APPID, e, day, day, today)) {
                for (u, c) in [
                    ("int_page_read_user", "int_page_read_count"),
                    ("share_user", "share_count"),
                    ("add_to_fav_user", "add_to_fav_count"),
                    ("ori_page_read_user", "ori_page_read_count"),
                ] {
                    if let (Some(u), Some(c)) = (r[u].as_i64(), r[c].as_i64()) {
                        assert!(c >= u, "{e} {r}");
                    }
                }
            }
        }
    }
}
