//! Property tests of response parsing and normalisation.
//!
//! Two properties:
//! - any JSON at all (nulls, bools, huge and negative numbers, floats, CJK and
//!   numeric strings, nested arrays and objects that mix the real field names
//!   with junk) never panics the normaliser of any of the ten endpoints, and
//!   whatever it accepts has a non-NULL key in every row;
//! - a well-formed response, built item by item with random counters (some
//!   absent, some null, some numeric strings or whole floats), random
//!   `user_source`/`share_scene`, `ref_hour` multiples of 100 and msgids with or
//!   without `_idx`, yields exactly the rows its content implies: the same tables
//!   in the same order, every key column, and every counter or NULL.
//!
//! 256 cases per property keeps the module at a few seconds in a debug build.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Number, Value, json};
use wxcube::clock::fmt_date;
use wxcube::endpoint::Endpoint;
use wxcube::endpoint::{ALL_SOURCES, normalize};
use wxcube::store::SqlValue;
use wxcube::store::tables;

const APPID: &str = "wxprop0000000001";
const CASES: u32 = 256;

/// The requested range of the "any JSON" property: three days, so that both
/// in-range and out-of-range `ref_date`s are likely.
fn any_begin() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()
}

fn any_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 12).unwrap()
}

fn plus(date: NaiveDate, days: u64) -> NaiveDate {
    date + Days::new(days)
}

fn minus(date: NaiveDate, days: u64) -> NaiveDate {
    date - Days::new(days)
}

// ---------------------------------------------------------------------------
// Any JSON

/// Every field name the normaliser reads, plus a few it must ignore.
const FIELD_NAMES: &[&str] = &[
    "list",
    "is_delay",
    "errcode",
    "errmsg",
    "ref_date",
    "stat_date",
    "msgid",
    "title",
    "url",
    "content_url",
    "publish_type",
    "details",
    "detail",
    "detail_list",
    "target_user",
    "user_source",
    "ref_hour",
    "share_scene",
    "share_count",
    "share_user",
    "int_page_read_user",
    "int_page_read_count",
    "ori_page_read_user",
    "add_to_fav_count",
    "int_page_from_kanyikan_read_user",
    "feed_share_from_other_cnt",
    "read_user",
    "read_user_source",
    "scene_desc",
    "user_count",
    "zaikan_user",
    "praise_money",
    "read_finish_rate",
    "read_avg_activetime",
    "read_jump_position",
    "position",
    "rate",
    "unknown_field",
    "",
];

/// Strings that probe the lenient parsers: dates in and around the range,
/// broken dates, numeric strings of every kind, CJK, msgids, empty.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u64..7).prop_map(|d| fmt_date(minus(any_begin(), 2) + Days::new(d))),
        3 => prop::sample::select(vec![
            "", " ", "2026-02-30", "2026-3-1", " 2026-03-11 ", "2026-03-11T00:00:00",
            "+2026-03-11", "99999999", "-1", "0", "1e3", "12.0", " 42 ", "NaN", "inf",
            "-inf", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
            "1.5e300", "0x10", "１２", "全部", "搜一搜", "公众号消息", "10000050_1", "_", "_1",
            "abc_", "2247483720_x", "2300", "2400", "true", "null", "\u{0}", "🙂",
        ])
        .prop_map(str::to_string),
        2 => "[0-9]{1,22}",
        1 => "-?[0-9]{1,6}\\.[0-9]{1,4}",
        1 => "[\u{4e00}-\u{9fa5}]{1,6}",
        2 => any::<String>(),
    ]
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Scalars, including numbers serde_json keeps as u64, i64 or f64.
fn any_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        2 => (-3000i64..3000).prop_map(Value::from),
        1 => any::<f64>().prop_map(float),
        1 => prop::sample::select(vec![
            1e300, -1e300, 9.0e15, 9.1e15, -0.0, 0.5, 2300.0, 1.5e19, f64::MAX, f64::MIN_POSITIVE,
        ])
        .prop_map(float),
        4 => any_text().prop_map(Value::String),
    ]
}

/// Objects whose keys are mostly the real field names (so that the normaliser
/// gets past its first checks), and arrays, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    any_scalar().prop_recursive(4, 96, 8, |inner| {
        let key = prop_oneof![
            4 => prop::sample::select(FIELD_NAMES).prop_map(str::to_string),
            1 => any_text(),
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key, inner), 0..10)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A list item: an object that usually has a usable `ref_date` (so that the
/// per-endpoint code runs) and otherwise anything.
fn any_item() -> impl Strategy<Value = Value> {
    let date = prop_oneof![
        4 => (0u64..3).prop_map(|d| Value::String(fmt_date(plus(any_begin(), d)))),
        1 => any_scalar(),
    ];
    prop_oneof![
        4 => (date, any_json(), any_json()).prop_map(|(date, a, b)| {
            let mut item = Map::new();
            for extra in [a, b] {
                if let Value::Object(map) = extra {
                    item.extend(map);
                }
            }
            item.insert("ref_date".into(), date);
            Value::Object(item)
        }),
        1 => any_json(),
    ]
}

/// A whole body: usually `{"list": [...], ...}`, sometimes anything at all.
fn any_body() -> impl Strategy<Value = Value> {
    let list = prop_oneof![
        6 => prop::collection::vec(any_item(), 0..6).prop_map(Value::Array),
        1 => any_json(),
    ];
    prop_oneof![
        5 => (list, any_scalar(), any_json()).prop_map(|(list, is_delay, extra)| {
            let mut body = match extra {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            body.insert("list".into(), list);
            body.insert("is_delay".into(), is_delay);
            Value::Object(body)
        }),
        1 => any_json(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_json_never_panics_the_normaliser_of_any_endpoint(body in any_body()) {
        let items = body.get("list").and_then(Value::as_array).map_or(0, Vec::len);
        for endpoint in Endpoint::ALL {
            if !endpoint.is_dated() {
                // The catalogue is never normalised as a datacube answer.
                prop_assert!(normalize(endpoint, APPID, any_begin(), any_end(), &body).is_err());
                continue;
            }
            let Ok(n) = normalize(endpoint, APPID, any_begin(), any_end(), &body) else {
                continue;
            };
            prop_assert!(n.dropped_outside <= items);
            prop_assert_eq!(n.is_delay.is_some(), endpoint.family() == wxcube::endpoint::Family::Current);
            for row in &n.rows {
                prop_assert_eq!(row.values.len(), row.table.width());
                prop_assert_eq!(row.get("appid"), Some(&SqlValue::Text(APPID.into())));
                for key in row.table.keys {
                    prop_assert_ne!(
                        row.get(key),
                        Some(&SqlValue::Null),
                        "{} of {} is NULL ({}): {}",
                        key, row.table.name, endpoint, body
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Well-formed responses

/// One counter as the response gives it, and what must be stored.
#[derive(Debug, Clone)]
struct Counter {
    json: Option<Value>,
    stored: Option<i64>,
}

/// Absent, null, a number, a whole float, or a numeric string (padded or `.0`).
fn counter() -> impl Strategy<Value = Counter> {
    prop_oneof![
        2 => Just(Counter { json: None, stored: None }),
        1 => Just(Counter { json: Some(Value::Null), stored: None }),
        4 => prop_oneof![-5i64..100_000, 0i64..=i64::MAX].prop_map(|n| Counter {
            json: Some(json!(n)),
            stored: Some(n),
        }),
        1 => (0i64..8_000_000_000_000_000).prop_map(|n| Counter {
            json: Some(json!(n as f64)),
            stored: Some(n as f64 as i64),
        }),
        2 => (0i64..10_000_000, 0usize..3).prop_map(|(n, form)| Counter {
            json: Some(Value::String(match form {
                0 => n.to_string(),
                1 => format!(" {n} "),
                _ => format!("{n}.0"),
            })),
            stored: Some(n),
        }),
    ]
}

fn counters<const N: usize>() -> impl Strategy<Value = [Counter; N]> {
    prop::collection::vec(counter(), N).prop_map(|v| v.try_into().expect("N counters"))
}

/// An integer key given as a number or a numeric string.
fn int_as_json(n: i64, as_string: bool) -> Value {
    if as_string {
        Value::String(n.to_string())
    } else {
        json!(n)
    }
}

/// A msgid: `"<msg_data_id>_<idx>"` or, as in old data, the bare id (then
/// sometimes a JSON number).
#[derive(Debug, Clone)]
struct Msgid {
    json: Value,
    text: String,
    data_id: String,
    idx: Option<i64>,
}

fn msgid() -> impl Strategy<Value = Msgid> {
    (
        1u64..10_000_000_000,
        prop::option::of(1i64..9),
        any::<bool>(),
    )
        .prop_map(|(id, idx, as_number)| match idx {
            Some(i) => {
                let text = format!("{id}_{i}");
                Msgid {
                    json: Value::String(text.clone()),
                    text,
                    data_id: id.to_string(),
                    idx: Some(i),
                }
            }
            None => Msgid {
                json: if as_number {
                    json!(id)
                } else {
                    Value::String(id.to_string())
                },
                text: id.to_string(),
                data_id: id.to_string(),
                idx: None,
            },
        })
}

fn title() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        "[\u{4e00}-\u{9fa5}a-zA-Z0-9 ]{0,12}",
        Just("标题 \"quoted\" \\ back\nslash 🙂".to_string()),
    ])
}

/// A row normalize must produce: its table and the non-NULL columns
/// (every other column must be NULL).
#[derive(Debug, Clone)]
struct Expected {
    table: &'static str,
    values: Vec<(&'static str, SqlValue)>,
}

impl Expected {
    fn new(table: &'static tables::TableDef) -> Expected {
        Expected {
            table: table.name,
            values: vec![("appid", SqlValue::Text(APPID.into()))],
        }
    }

    fn set(mut self, column: &'static str, value: SqlValue) -> Expected {
        self.values.retain(|(c, _)| *c != column);
        self.values.push((column, value));
        self
    }

    fn text(self, column: &'static str, value: &str) -> Expected {
        self.set(column, SqlValue::Text(value.to_string()))
    }

    fn int(self, column: &'static str, value: Option<i64>) -> Expected {
        self.set(column, SqlValue::from(value))
    }

    fn counters(mut self, columns: &[&'static str], values: &[Counter]) -> Expected {
        for (column, c) in columns.iter().zip(values) {
            self = self.int(column, c.stored);
        }
        self
    }
}

/// A response and what normalising it must give.
#[derive(Debug, Clone)]
struct Case {
    endpoint: Endpoint,
    begin: NaiveDate,
    end: NaiveDate,
    body: Value,
    rows: Vec<Expected>,
    dropped: usize,
    is_delay: Option<bool>,
}

impl Case {
    fn new(endpoint: Endpoint, begin: NaiveDate, end: NaiveDate) -> Case {
        Case {
            endpoint,
            begin,
            end,
            body: json!({ "list": [] }),
            rows: Vec::new(),
            dropped: 0,
            is_delay: None,
        }
    }

    fn push_item(&mut self, item: Map<String, Value>) {
        self.body["list"]
            .as_array_mut()
            .expect("list")
            .push(Value::Object(item));
    }
}

fn put_counters(item: &mut Map<String, Value>, columns: &[&str], values: &[Counter]) {
    for (column, c) in columns.iter().zip(values) {
        if let Some(v) = &c.json {
            item.insert((*column).to_string(), v.clone());
        }
    }
}

/// Where an item's `ref_date` falls: inside the range (an offset from begin),
/// or outside it (dropped).
#[derive(Debug, Clone, Copy)]
enum Day {
    Inside(u64),
    Before(u64),
    After(u64),
}

fn day(span: u64) -> impl Strategy<Value = Day> {
    prop_oneof![
        8 => (0..span).prop_map(Day::Inside),
        1 => (1u64..40).prop_map(Day::Before),
        1 => (1u64..40).prop_map(Day::After),
    ]
}

/// A requested range of `span` days (or fewer) within the API's years
/// (normalize does not check them, but keep them plausible).
fn range(span: u64) -> impl Strategy<Value = (NaiveDate, NaiveDate)> {
    (0u64..4300, 0..span).prop_map(|(offset, len)| {
        let begin = plus(NaiveDate::from_ymd_opt(2014, 12, 1).unwrap(), offset);
        (begin, plus(begin, len))
    })
}

impl Case {
    /// The item's ref_date, or None (after counting the drop) when outside.
    fn ref_date(&mut self, day: Day) -> (String, bool) {
        match day {
            Day::Inside(d) => {
                let date = plus(self.begin, d).min(self.end);
                (fmt_date(date), true)
            }
            Day::Before(d) => {
                self.dropped += 1;
                (fmt_date(minus(self.begin, d)), false)
            }
            Day::After(d) => {
                self.dropped += 1;
                (fmt_date(plus(self.end, d)), false)
            }
        }
    }
}

/// getuserread / getuserreadhour.
fn user_read_case(hourly: bool) -> impl Strategy<Value = Case> {
    let (endpoint, span) = if hourly {
        (Endpoint::UserReadHour, 1)
    } else {
        (Endpoint::UserRead, 3)
    };
    let item = (
        day(span),
        0i64..24,
        any::<bool>(),
        prop::option::of((
            prop::sample::select(&[99_999_999i64, 0, 1, 2, 3, 4, 5, 6, 7][..]),
            any::<bool>(),
        )),
        counters::<8>(),
    );
    (range(span), prop::collection::vec(item, 0..30)).prop_map(move |((begin, end), items)| {
        let mut case = Case::new(endpoint, begin, end);
        for (day, hour, hour_as_string, source, counters) in items {
            let (ref_date, inside) = case.ref_date(day);
            let mut item = Map::new();
            item.insert("ref_date".into(), json!(ref_date));
            if hourly {
                item.insert("ref_hour".into(), int_as_json(hour * 100, hour_as_string));
            }
            if let Some((code, as_string)) = source {
                item.insert("user_source".into(), int_as_json(code, as_string));
            }
            put_counters(&mut item, &tables::READ_COUNTERS, &counters);
            item.insert("unknown_field".into(), json!({"nested": [1, "x"]}));
            case.push_item(item);
            if inside {
                let table = if hourly {
                    &tables::USER_READ_HOURLY
                } else {
                    &tables::USER_READ_DAILY
                };
                let mut row = Expected::new(table)
                    .text("ref_date", &ref_date)
                    .int("user_source", Some(source.map_or(ALL_SOURCES, |(c, _)| c)))
                    .counters(&tables::READ_COUNTERS, &counters);
                if hourly {
                    row = row.int("hour", Some(hour));
                }
                case.rows.push(row);
            }
        }
        case
    })
}

/// getusershare / getusersharehour.
fn user_share_case(hourly: bool) -> impl Strategy<Value = Case> {
    let (endpoint, span) = if hourly {
        (Endpoint::UserShareHour, 1)
    } else {
        (Endpoint::UserShare, 7)
    };
    let scene = prop_oneof![
        4 => prop::sample::select(&[1i64, 2, 3, 5, 255][..]),
        1 => 0i64..100_000,
    ];
    let item = (
        day(span),
        0i64..24,
        any::<bool>(),
        scene,
        any::<bool>(),
        counters::<2>(),
    );
    (range(span), prop::collection::vec(item, 0..30)).prop_map(move |((begin, end), items)| {
        let mut case = Case::new(endpoint, begin, end);
        for (day, hour, hour_as_string, scene, scene_as_string, counters) in items {
            let (ref_date, inside) = case.ref_date(day);
            let mut item = Map::new();
            item.insert("ref_date".into(), json!(ref_date));
            if hourly {
                item.insert("ref_hour".into(), int_as_json(hour * 100, hour_as_string));
            }
            item.insert("share_scene".into(), int_as_json(scene, scene_as_string));
            put_counters(&mut item, &["share_count", "share_user"], &counters);
            case.push_item(item);
            if inside {
                let table = if hourly {
                    &tables::USER_SHARE_HOURLY
                } else {
                    &tables::USER_SHARE_DAILY
                };
                let mut row = Expected::new(table)
                    .text("ref_date", &ref_date)
                    .int("share_scene", Some(scene))
                    .counters(&["share_count", "share_user"], &counters);
                if hourly {
                    row = row.int("hour", Some(hour));
                }
                case.rows.push(row);
            }
        }
        case
    })
}

/// The `articles` row of an item: msgid split, the rest NULL unless given.
fn article_row(msgid: &Msgid) -> Expected {
    Expected::new(&tables::ARTICLES)
        .text("msgid", &msgid.text)
        .text("msg_data_id", &msgid.data_id)
        .int("idx", msgid.idx)
}

fn with_title(row: Expected, title: &Option<String>) -> Expected {
    match title {
        Some(t) => row.text("title", t),
        None => row,
    }
}

/// getarticlesummary: one `articles` row and one `article_daily` row per item.
fn article_summary_case() -> impl Strategy<Value = Case> {
    let item = (day(1), msgid(), title(), counters::<8>());
    (range(1), prop::collection::vec(item, 0..20)).prop_map(|((begin, end), items)| {
        let mut case = Case::new(Endpoint::ArticleSummary, begin, end);
        for (day, msgid, title, counters) in items {
            let (ref_date, inside) = case.ref_date(day);
            let mut item = Map::new();
            item.insert("ref_date".into(), json!(ref_date));
            item.insert("msgid".into(), msgid.json.clone());
            if let Some(t) = &title {
                item.insert("title".into(), json!(t));
            }
            put_counters(&mut item, &tables::READ_COUNTERS, &counters);
            case.push_item(item);
            if inside {
                case.rows.push(with_title(article_row(&msgid), &title));
                case.rows.push(
                    Expected::new(&tables::ARTICLE_DAILY)
                        .text("ref_date", &ref_date)
                        .text("msgid", &msgid.text)
                        .counters(&tables::READ_COUNTERS, &counters),
                );
            }
        }
        case
    })
}

/// getarticletotal: one `articles` row per item (with url and publish_date),
/// one `article_total` row per `details` entry.
fn article_total_case() -> impl Strategy<Value = Case> {
    let detail = (0u64..8, counter(), counters::<8>(), counters::<20>());
    let url = prop::option::of(prop_oneof![
        Just(String::new()),
        "https://mp\\.weixin\\.qq\\.com/s\\?__biz=[A-Za-z0-9]{4}&mid=[0-9]{3}",
    ]);
    let item = (
        day(1),
        msgid(),
        title(),
        url,
        prop::option::of(0i64..10),
        prop::collection::vec(detail, 0..8),
    );
    (range(1), prop::collection::vec(item, 0..10)).prop_map(|((begin, end), items)| {
        let mut case = Case::new(Endpoint::ArticleTotal, begin, end);
        for (day, msgid, title, url, user_source, details) in items {
            let (ref_date, inside) = case.ref_date(day);
            let sent = wxcube::clock::parse_date(&ref_date).unwrap();
            let mut item = Map::new();
            item.insert("ref_date".into(), json!(ref_date));
            item.insert("msgid".into(), msgid.json.clone());
            if let Some(t) = &title {
                item.insert("title".into(), json!(t));
            }
            if let Some(u) = &url {
                item.insert("url".into(), json!(u));
            }
            if let Some(s) = user_source {
                item.insert("user_source".into(), json!(s));
            }
            let mut list = Vec::new();
            let mut rows = Vec::new();
            for (after, target, reads, sources) in &details {
                let stat_date = fmt_date(plus(sent, *after));
                let mut entry = Map::new();
                entry.insert("stat_date".into(), json!(stat_date));
                put_counters(&mut entry, &["target_user"], std::slice::from_ref(target));
                put_counters(&mut entry, &tables::READ_COUNTERS, reads);
                put_counters(&mut entry, &tables::TOTAL_SOURCE_COUNTERS, sources);
                list.push(Value::Object(entry));
                rows.push(
                    Expected::new(&tables::ARTICLE_TOTAL)
                        .text("msgid", &msgid.text)
                        .text("stat_date", &stat_date)
                        .text("ref_date", &ref_date)
                        .int("target_user", target.stored)
                        .counters(&tables::READ_COUNTERS, reads)
                        .counters(&tables::TOTAL_SOURCE_COUNTERS, sources),
                );
            }
            item.insert("details".into(), Value::Array(list));
            case.push_item(item);
            if inside {
                let mut article =
                    with_title(article_row(&msgid), &title).text("publish_date", &ref_date);
                if let Some(u) = url.as_deref().filter(|u| !u.is_empty()) {
                    article = article
                        .text("url", u)
                        .text("url_key", &wxcube::url_key::url_key(u));
                }
                case.rows.push(article);
                case.rows.extend(rows);
            }
        }
        case
    })
}

/// `read_user_source` entries: (scene_desc, user_count).
fn scenes() -> impl Strategy<Value = Vec<(String, Counter)>> {
    let scene = prop_oneof![
        4 => prop::sample::select(&wxcube::sim::data::SCENES[..]).prop_map(str::to_string),
        1 => "[\u{4e00}-\u{9fa5}]{1,5}",
    ];
    prop::collection::vec((scene, counter()), 0..9)
}

fn put_scenes(detail: &mut Map<String, Value>, scenes: &[(String, Counter)]) {
    let list = scenes
        .iter()
        .map(|(scene, count)| {
            let mut entry = Map::new();
            entry.insert("scene_desc".into(), json!(scene));
            put_counters(&mut entry, &["user_count"], std::slice::from_ref(count));
            Value::Object(entry)
        })
        .collect();
    detail.insert("read_user_source".into(), Value::Array(list));
}

/// `is_delay` as the current endpoints give it: absent (false), or a bool.
fn is_delay() -> impl Strategy<Value = Option<bool>> {
    prop::option::of(any::<bool>())
}

fn set_is_delay(case: &mut Case, flag: Option<bool>) {
    if let Some(b) = flag {
        case.body["is_delay"] = json!(b);
    }
    case.is_delay = Some(flag.unwrap_or(false));
}

/// getbizsummary: a `biz_daily` row per item and a `biz_read_sources` row per scene.
fn biz_summary_case() -> impl Strategy<Value = Case> {
    let item = (day(30), prop::option::of((counters::<8>(), scenes())));
    (range(30), is_delay(), prop::collection::vec(item, 0..30)).prop_map(
        |((begin, end), delay, items)| {
            let mut case = Case::new(Endpoint::BizSummary, begin, end);
            set_is_delay(&mut case, delay);
            for (day, detail) in items {
                let (ref_date, inside) = case.ref_date(day);
                let mut item = Map::new();
                item.insert("ref_date".into(), json!(ref_date));
                let mut daily = Expected::new(&tables::BIZ_DAILY).text("ref_date", &ref_date);
                let mut sources = Vec::new();
                if let Some((counters, scenes)) = &detail {
                    let mut d = Map::new();
                    put_counters(&mut d, &tables::BIZ_COUNTERS, counters);
                    put_scenes(&mut d, scenes);
                    item.insert("detail".into(), Value::Object(d));
                    daily = daily.counters(&tables::BIZ_COUNTERS, counters);
                    for (scene, count) in scenes {
                        sources.push(
                            Expected::new(&tables::BIZ_READ_SOURCES)
                                .text("ref_date", &ref_date)
                                .text("scene_desc", scene)
                                .int("user_count", count.stored),
                        );
                    }
                }
                case.push_item(item);
                if inside {
                    case.rows.push(daily);
                    case.rows.extend(sources);
                }
            }
            case
        },
    )
}

/// getarticleread: an `articles` row (msgid only), an `article_read_daily`
/// row and an `article_read_sources` row per scene.
fn article_read_case() -> impl Strategy<Value = Case> {
    let item = (day(1), msgid(), counter(), scenes());
    (range(1), is_delay(), prop::collection::vec(item, 0..15)).prop_map(
        |((begin, end), delay, items)| {
            let mut case = Case::new(Endpoint::ArticleRead, begin, end);
            set_is_delay(&mut case, delay);
            for (day, msgid, read_user, scenes) in items {
                let (ref_date, inside) = case.ref_date(day);
                let mut item = Map::new();
                item.insert("ref_date".into(), json!(ref_date));
                item.insert("msgid".into(), msgid.json.clone());
                let mut d = Map::new();
                put_counters(&mut d, &["read_user"], std::slice::from_ref(&read_user));
                put_scenes(&mut d, &scenes);
                item.insert("detail".into(), Value::Object(d));
                case.push_item(item);
                if inside {
                    case.rows.push(article_row(&msgid));
                    case.rows.push(
                        Expected::new(&tables::ARTICLE_READ_DAILY)
                            .text("ref_date", &ref_date)
                            .text("msgid", &msgid.text)
                            .int("read_user", read_user.stored),
                    );
                    for (scene, count) in &scenes {
                        case.rows.push(
                            Expected::new(&tables::ARTICLE_READ_SOURCES)
                                .text("ref_date", &ref_date)
                                .text("msgid", &msgid.text)
                                .text("scene_desc", scene)
                                .int("user_count", count.stored),
                        );
                    }
                }
            }
            case
        },
    )
}

/// Normalises the case's body and compares every row, column by column.
fn check(case: &Case) -> Result<(), TestCaseError> {
    let n = normalize(case.endpoint, APPID, case.begin, case.end, &case.body)
        .map_err(|e| TestCaseError::fail(format!("{e} for {}", case.body)))?;
    prop_assert_eq!(n.dropped_outside, case.dropped);
    prop_assert_eq!(n.is_delay, case.is_delay);
    let mut want_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &case.rows {
        *want_counts.entry(row.table).or_default() += 1;
    }
    let mut got_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &n.rows {
        *got_counts.entry(row.table.name).or_default() += 1;
    }
    prop_assert_eq!(got_counts, want_counts, "rows per table");
    for (i, (got, want)) in n.rows.iter().zip(&case.rows).enumerate() {
        prop_assert_eq!(got.table.name, want.table, "row {}", i);
        for (column, _) in &want.values {
            prop_assert!(
                got.table.position(column).is_some(),
                "the test expects a column {} that {} lacks",
                column,
                want.table
            );
        }
        for column in got.table.all_columns() {
            let expected = want
                .values
                .iter()
                .find(|(c, _)| *c == column)
                .map_or(SqlValue::Null, |(_, v)| v.clone());
            prop_assert_eq!(
                got.get(column),
                Some(&expected),
                "row {} of {}, column {}",
                i,
                want.table,
                column
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn well_formed_userread_yields_exactly_its_rows(case in user_read_case(false)) {
        check(&case)?;
    }

    #[test]
    fn well_formed_userreadhour_yields_exactly_its_rows(case in user_read_case(true)) {
        check(&case)?;
    }

    #[test]
    fn well_formed_usershare_yields_exactly_its_rows(case in user_share_case(false)) {
        check(&case)?;
    }

    #[test]
    fn well_formed_usersharehour_yields_exactly_its_rows(case in user_share_case(true)) {
        check(&case)?;
    }

    #[test]
    fn well_formed_articlesummary_yields_exactly_its_rows(case in article_summary_case()) {
        check(&case)?;
    }

    #[test]
    fn well_formed_articletotal_yields_exactly_its_rows(case in article_total_case()) {
        check(&case)?;
    }

    #[test]
    fn well_formed_bizsummary_yields_exactly_its_rows(case in biz_summary_case()) {
        check(&case)?;
    }

    #[test]
    fn well_formed_articleread_yields_exactly_its_rows(case in article_read_case()) {
        check(&case)?;
    }
}
