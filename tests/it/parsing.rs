//! The peer fixtures (real documentation samples and one live response) parse
//! into the rows the contract defines.

use serde_json::Value;
use wxcube::clock::parse_date;
use wxcube::endpoint::Endpoint;
use wxcube::endpoint::{Normalized, normalize, split_msgid};
use wxcube::store::SqlValue;

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/peer/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn run(endpoint: Endpoint, name: &str, begin: &str, end: &str) -> Normalized {
    normalize(
        endpoint,
        "wxtest",
        parse_date(begin).unwrap(),
        parse_date(end).unwrap(),
        &fixture(name),
    )
    .unwrap()
}

fn rows_of<'a>(n: &'a Normalized, table: &str) -> Vec<&'a wxcube::store::Row> {
    n.rows.iter().filter(|r| r.table.name == table).collect()
}

fn int(row: &wxcube::store::Row, col: &str) -> Option<i64> {
    match row.get(col).unwrap() {
        SqlValue::Int(v) => Some(*v),
        SqlValue::Null => None,
        other => panic!("{col} is {other:?}"),
    }
}

fn text(row: &wxcube::store::Row, col: &str) -> Option<String> {
    match row.get(col).unwrap() {
        SqlValue::Text(v) => Some(v.clone()),
        SqlValue::Null => None,
        other => panic!("{col} is {other:?}"),
    }
}

#[test]
fn articlesummary_fixture_gives_one_daily_row_and_its_article() {
    let n = run(
        Endpoint::ArticleSummary,
        "wechatpy__datacube_getarticlesummary.json",
        "2014-12-08",
        "2014-12-08",
    );
    let daily = rows_of(&n, "article_daily");
    assert_eq!(daily.len(), 1);
    assert_eq!(text(daily[0], "msgid").as_deref(), Some("10000050_1"));
    assert_eq!(int(daily[0], "int_page_read_user"), Some(23676));
    assert_eq!(int(daily[0], "add_to_fav_count"), Some(3));
    let articles = rows_of(&n, "articles");
    assert_eq!(
        text(articles[0], "title").as_deref(),
        Some("12月27日 DiLi日报")
    );
    assert_eq!(
        text(articles[0], "msg_data_id").as_deref(),
        Some("10000050")
    );
    assert_eq!(int(articles[0], "idx"), Some(1));
    assert_eq!(n.is_delay, None);
}

#[test]
fn articletotal_fixture_keeps_absent_counters_null_and_sets_publish_date() {
    let n = run(
        Endpoint::ArticleTotal,
        "wechatpy__datacube_getarticletotal.json",
        "2014-12-08",
        "2014-12-08",
    );
    let totals = rows_of(&n, "article_total");
    assert_eq!(totals.len(), 1);
    assert_eq!(text(totals[0], "stat_date").as_deref(), Some("2014-12-14"));
    assert_eq!(text(totals[0], "ref_date").as_deref(), Some("2014-12-08"));
    assert_eq!(int(totals[0], "target_user"), Some(261917));
    assert_eq!(int(totals[0], "int_page_from_session_read_user"), None);
    let article = rows_of(&n, "articles")[0];
    assert_eq!(text(article, "msgid").as_deref(), Some("23423525"));
    assert_eq!(
        int(article, "idx"),
        None,
        "a msgid without _index has no idx"
    );
    assert_eq!(text(article, "publish_date").as_deref(), Some("2014-12-08"));
}

#[test]
fn userread_fixture_without_user_source_is_all_channels() {
    let n = run(
        Endpoint::UserRead,
        "wechatpy__datacube_getuserread.json",
        "2014-12-07",
        "2014-12-07",
    );
    let rows = rows_of(&n, "user_read_daily");
    assert_eq!(rows.len(), 1);
    assert_eq!(int(rows[0], "user_source"), Some(99_999_999));
    assert_eq!(int(rows[0], "int_page_read_count"), Some(48796));
}

#[test]
fn userreadhour_fixture_stores_the_hour() {
    let n = run(
        Endpoint::UserReadHour,
        "wechatpy__datacube_getuserreadhour.json",
        "2014-12-07",
        "2014-12-07",
    );
    let rows = rows_of(&n, "user_read_hourly");
    assert_eq!(int(rows[0], "hour"), Some(12));
    assert_eq!(int(rows[0], "user_source"), Some(99_999_999));
}

#[test]
fn usershare_fixtures_keep_scene_five() {
    let n = run(
        Endpoint::UserShare,
        "wechatpy__datacube_getusershare.json",
        "2014-12-07",
        "2014-12-07",
    );
    let scenes: Vec<_> = rows_of(&n, "user_share_daily")
        .iter()
        .map(|r| int(r, "share_scene"))
        .collect();
    assert_eq!(scenes, [Some(1), Some(5)]);
    let n = run(
        Endpoint::UserShareHour,
        "wechatpy__datacube_getusersharehour.json",
        "2014-12-07",
        "2014-12-07",
    );
    let row = rows_of(&n, "user_share_hourly")[0];
    assert_eq!(
        (
            int(row, "hour"),
            int(row, "share_scene"),
            int(row, "share_count")
        ),
        (Some(12), Some(1), Some(72))
    );
}

#[test]
fn live_articletotaldetail_sample_parses_into_expected_rows() {
    let n = run(
        Endpoint::ArticleTotalDetail,
        "community__getarticletotaldetail_2026-03.json",
        "2026-03-09",
        "2026-03-09",
    );
    assert_eq!(n.is_delay, Some(false));
    let detail = rows_of(&n, "article_detail");
    assert_eq!(detail.len(), 1);
    let d = detail[0];
    assert_eq!(text(d, "msgid").as_deref(), Some("2247483720_1"));
    assert_eq!(text(d, "stat_date").as_deref(), Some("2026-03-09"));
    assert_eq!(int(d, "read_user"), Some(3));
    assert_eq!(int(d, "praise_money"), Some(0));
    match d.get("read_finish_rate").unwrap() {
        SqlValue::Real(v) => assert!((v - 0.666666686535).abs() < 1e-12),
        other => panic!("read_finish_rate is {other:?}"),
    }
    let sources = rows_of(&n, "article_detail_sources");
    assert_eq!(sources.len(), 8, "all eight scenes, zeros included");
    let all = sources
        .iter()
        .find(|r| text(r, "scene_desc").as_deref() == Some("全部"))
        .unwrap();
    assert_eq!(int(all, "user_count"), Some(3));
    let jumps = rows_of(&n, "article_detail_jumps");
    assert_eq!(jumps.len(), 5);
    let article = rows_of(&n, "articles")[0];
    assert_eq!(int(article, "publish_type"), Some(0));
    assert_eq!(text(article, "publish_date").as_deref(), Some("2026-03-09"));
    assert_eq!(text(article, "title"), None, "the sample has no title");
}

#[test]
fn numbers_as_strings_and_string_errcodes_are_accepted() {
    let body: Value = serde_json::json!({"list": [
        {"ref_date": "2026-01-02", "user_source": "2", "int_page_read_user": "17", "share_user": 3.0, "unknown_field": [1]}
    ]});
    let n = normalize(
        Endpoint::UserRead,
        "wx",
        parse_date("2026-01-01").unwrap(),
        parse_date("2026-01-03").unwrap(),
        &body,
    )
    .unwrap();
    let row = rows_of(&n, "user_read_daily")[0];
    assert_eq!(int(row, "user_source"), Some(2));
    assert_eq!(int(row, "int_page_read_user"), Some(17));
    assert_eq!(int(row, "share_user"), Some(3));
    assert_eq!(int(row, "ori_page_read_user"), None);
}

#[test]
fn rows_outside_the_requested_dates_are_dropped_and_counted() {
    let body: Value = serde_json::json!({"list": [
        {"ref_date": "2026-01-01", "share_scene": 1, "share_count": 1, "share_user": 1},
        {"ref_date": "2025-12-01", "share_scene": 1, "share_count": 9, "share_user": 9}
    ]});
    let n = normalize(
        Endpoint::UserShare,
        "wx",
        parse_date("2026-01-01").unwrap(),
        parse_date("2026-01-01").unwrap(),
        &body,
    )
    .unwrap();
    assert_eq!(n.dropped_outside, 1);
    assert_eq!(rows_of(&n, "user_share_daily").len(), 1);
}

#[test]
fn a_row_without_its_key_fails_the_chunk() {
    let body: Value =
        serde_json::json!({"list": [{"ref_date": "2026-01-01", "title": "no msgid"}]});
    let err = normalize(
        Endpoint::ArticleSummary,
        "wx",
        parse_date("2026-01-01").unwrap(),
        parse_date("2026-01-01").unwrap(),
        &body,
    )
    .unwrap_err();
    assert!(err.to_string().contains("msgid"), "{err}");
    let err = normalize(
        Endpoint::UserRead,
        "wx",
        parse_date("2026-01-01").unwrap(),
        parse_date("2026-01-01").unwrap(),
        &serde_json::json!({"errcode": 0}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("list"), "{err}");
}

#[test]
fn msgid_split_handles_both_forms() {
    assert_eq!(
        split_msgid("2247485082_1"),
        ("2247485082".to_string(), Some(1))
    );
    assert_eq!(split_msgid("23423525"), ("23423525".to_string(), None));
}

#[test]
fn usersummary_sample_gives_one_row_per_day_and_source() {
    let n = run(
        Endpoint::UserSummary,
        "community__getusersummary_2021-09.json",
        "2021-09-01",
        "2021-09-02",
    );
    let rows = rows_of(&n, "user_daily");
    assert_eq!(rows.len(), 8, "four sources on each of two days");
    let first = rows[0];
    assert_eq!(text(first, "ref_date").as_deref(), Some("2021-09-01"));
    assert_eq!(int(first, "user_source"), Some(0));
    assert_eq!(int(first, "new_user"), Some(3));
    assert_eq!(int(first, "cancel_user"), Some(5));
    let qr = rows
        .iter()
        .find(|r| {
            int(r, "user_source") == Some(30)
                && text(r, "ref_date").as_deref() == Some("2021-09-01")
        })
        .unwrap();
    assert_eq!(int(qr, "new_user"), Some(149));
    assert_eq!(n.is_delay, None);
}

#[test]
fn usercumulate_sample_ignores_its_undocumented_user_source() {
    let n = run(
        Endpoint::UserCumulate,
        "wego__getusercumulate_2018-03.json",
        "2018-03-18",
        "2018-03-20",
    );
    let rows = rows_of(&n, "user_cumulate");
    let totals: Vec<_> = rows
        .iter()
        .map(|r| (text(r, "ref_date").unwrap(), int(r, "cumulate_user")))
        .collect();
    assert_eq!(
        totals,
        [
            ("2018-03-18".to_string(), Some(5)),
            ("2018-03-19".to_string(), Some(6)),
            ("2018-03-20".to_string(), Some(6)),
        ]
    );
    assert_eq!(rows[0].table.width(), 3, "appid, ref_date, cumulate_user");
}

#[test]
fn freepublish_sample_gives_its_article_with_times_from_content() {
    let page = wxcube::endpoint::catalogue::parse_page(
        "wxtest",
        &fixture("wxjava__freepublish_batchget_2021-10.json"),
    )
    .unwrap();
    assert_eq!(page.total_count, Some(1));
    assert_eq!(page.items.len(), 1);
    let item = &page.items[0];
    assert_eq!(
        item.article_id,
        "zjMKVd1g66BkEkpetwml4BOSzatuEYNY3TFhCc0kSIE"
    );
    // No item-level update_time: the content's.
    assert_eq!(item.update_time, Some(1634976318));
    assert_eq!(item.rows.len(), 1);
    let row = &item.rows[0];
    assert_eq!(int(row, "idx"), Some(1));
    assert_eq!(text(row, "author").as_deref(), Some("dragon"));
    assert_eq!(int(row, "create_time"), Some(1634976306));
    assert_eq!(int(row, "is_deleted"), Some(0), "false is stored as 0");
    assert_eq!(int(row, "show_cover_pic"), Some(1));
    assert_eq!(int(row, "need_open_comment"), Some(1));
    assert_eq!(int(row, "only_fans_can_comment"), Some(0));
    assert_eq!(
        text(row, "url").as_deref(),
        Some("http://mp.weixin.qq.com/s?__biz=MzAwMTE2MzA1Mg==&mid=26501776710e5adb91#rd"),
        "escaped slashes come back as /"
    );
    assert_eq!(
        text(row, "content_source_url").as_deref(),
        Some("https://github.com/Wechat-Group/WxJava")
    );
    // Without idx and sn the URL keys as itself, less scheme and fragment.
    assert_eq!(
        text(row, "url_key").as_deref(),
        Some("mp.weixin.qq.com/s?__biz=MzAwMTE2MzA1Mg==&mid=26501776710e5adb91")
    );
}
