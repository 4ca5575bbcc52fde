//! The test oracle: the rows wxcube must store for one fault-free fetch,
//! computed from the generator's typed rows and the column lists of docs/schema.md
//! sections 5 and 6 (written here again, independently of wxcube's store and
//! normaliser, so that a mistake in either shows up as a difference).

use std::collections::{BTreeMap, HashSet};

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::data::{self, Article, COUNTERS8, Counters, Rows, Scene};
use crate::clock::fmt_date;
use crate::endpoint::Endpoint;

/// One expected row: column name to JSON null / integer / float / string.
pub type Row = Map<String, Value>;

/// Expected rows per table.
pub type Tables = BTreeMap<&'static str, Vec<Row>>;

/// `article_total`'s columns after the keys: target_user, the 8 counters,
/// the per-channel reads and the shares to Moments (docs/schema.md).
pub const ARTICLE_TOTAL_COUNTERS: [&str; 29] = [
    "target_user",
    "int_page_read_user",
    "int_page_read_count",
    "ori_page_read_user",
    "ori_page_read_count",
    "share_user",
    "share_count",
    "add_to_fav_user",
    "add_to_fav_count",
    "int_page_from_session_read_user",
    "int_page_from_session_read_count",
    "int_page_from_hist_msg_read_user",
    "int_page_from_hist_msg_read_count",
    "int_page_from_feed_read_user",
    "int_page_from_feed_read_count",
    "int_page_from_friends_read_user",
    "int_page_from_friends_read_count",
    "int_page_from_other_read_user",
    "int_page_from_other_read_count",
    "int_page_from_kanyikan_read_user",
    "int_page_from_kanyikan_read_count",
    "int_page_from_souyisou_read_user",
    "int_page_from_souyisou_read_count",
    "feed_share_from_session_user",
    "feed_share_from_feed_user",
    "feed_share_from_other_user",
    "feed_share_from_session_cnt",
    "feed_share_from_feed_cnt",
    "feed_share_from_other_cnt",
];

/// `biz_daily`'s counter columns (docs/schema.md).
pub const BIZ_COUNTERS: [&str; 8] = [
    "read_user",
    "share_user",
    "zaikan_user",
    "like_user",
    "comment_count",
    "collection_user",
    "redirect_ori_page_user",
    "send_page_count",
];

/// `article_detail`'s integer columns (docs/schema.md).
pub const DETAIL_COUNTERS: [&str; 8] = [
    "read_user",
    "share_user",
    "zaikan_user",
    "like_user",
    "comment_count",
    "collection_user",
    "praise_money",
    "read_subscribe_user",
];

/// `article_detail`'s REAL columns (docs/schema.md).
pub const DETAIL_FLOATS: [&str; 3] = [
    "read_delivery_rate",
    "read_finish_rate",
    "read_avg_activetime",
];

/// The data tables (and `articles`) each endpoint writes.
pub fn tables_of(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        Endpoint::ArticleSummary => &["article_daily", "articles"],
        Endpoint::ArticleTotal => &["article_total", "articles"],
        Endpoint::UserRead => &["user_read_daily"],
        Endpoint::UserReadHour => &["user_read_hourly"],
        Endpoint::UserShare => &["user_share_daily"],
        Endpoint::UserShareHour => &["user_share_hourly"],
        Endpoint::ArticleRead => &["article_read_daily", "article_read_sources", "articles"],
        Endpoint::ArticleShare => &["article_share_daily", "articles"],
        Endpoint::BizSummary => &["biz_daily", "biz_read_sources"],
        Endpoint::UserSummary => &["user_daily"],
        Endpoint::UserCumulate => &["user_cumulate"],
        Endpoint::Freepublish => &["published_articles"],
        Endpoint::ArticleTotalDetail => &[
            "article_detail",
            "article_detail_sources",
            "article_detail_jumps",
            "articles",
        ],
    }
}

/// Expected rows per table for one fault-free fetch of `endpoint` over
/// begin..=end (values: JSON null/int/float/string, keyed by column name
/// exactly as docs/schema.md names the columns, including `appid`).
///
/// Every table of [`tables_of`] is present, possibly empty. REAL columns
/// (`read_*_rate`, `read_avg_activetime`, jump `rate`) are JSON floats even
/// where the wire carried a whole number. `articles` rows carry only the
/// columns the endpoint supplies (`url` only when that item had one); one row
/// per msgid, in order of first appearance.
pub fn expected_rows(
    appid: &str,
    endpoint: Endpoint,
    begin: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> BTreeMap<&'static str, Vec<Map<String, Value>>> {
    rows_to_tables(
        appid,
        endpoint,
        &data::generate(appid, endpoint, begin, end, today),
    )
}

/// Rows per table from already generated typed rows.
pub fn rows_to_tables(appid: &str, endpoint: Endpoint, rows: &Rows) -> Tables {
    let mut t: Tables = tables_of(endpoint)
        .iter()
        .map(|name| (*name, Vec::new()))
        .collect();
    let mut articles = ArticleRows::default();
    match rows {
        // The oracle reads the follower items as the contract says: one row
        // per item, the undocumented `user_source` of getusercumulate ignored.
        Rows::Json(items) => {
            let (table, columns): (&str, &[&str]) = match endpoint {
                Endpoint::UserSummary => (
                    "user_daily",
                    &["ref_date", "user_source", "new_user", "cancel_user"],
                ),
                _ => ("user_cumulate", &["ref_date", "cumulate_user"]),
            };
            for item in items {
                let mut row = base(appid);
                for column in columns {
                    row.insert((*column).to_string(), item[*column].clone());
                }
                t.entry(table).or_default().push(row);
            }
        }
        Rows::Summary(v) => {
            for r in v {
                let mut row = base(appid);
                put_date(&mut row, "ref_date", r.ref_date);
                row.insert("msgid".into(), json!(r.article.msgid));
                put_columns(&mut row, &COUNTERS8, &r.counters);
                push(&mut t, "article_daily", row);
                articles.add(appid, &r.article, |m| {
                    m.insert("title".into(), json!(r.article.title));
                });
            }
        }
        Rows::Total(v) => {
            for item in v {
                let a = &item.article;
                for (stat, counters) in &item.details {
                    let mut row = base(appid);
                    row.insert("msgid".into(), json!(a.msgid));
                    put_date(&mut row, "stat_date", *stat);
                    put_date(&mut row, "ref_date", a.publish_date);
                    put_columns(&mut row, &ARTICLE_TOTAL_COUNTERS, counters);
                    push(&mut t, "article_total", row);
                }
                articles.add(appid, a, |m| {
                    m.insert("title".into(), json!(a.title));
                    if let Some(url) = &item.url {
                        m.insert("url".into(), json!(url));
                    }
                    put_date(m, "publish_date", a.publish_date);
                });
            }
        }
        Rows::Read(v) => {
            let table = if endpoint == Endpoint::UserReadHour {
                "user_read_hourly"
            } else {
                "user_read_daily"
            };
            for r in v {
                let mut row = base(appid);
                put_date(&mut row, "ref_date", r.ref_date);
                if let Some(h) = r.ref_hour {
                    row.insert("hour".into(), json!(h / 100));
                }
                // Rows from before the per-source split are the "all" row.
                row.insert(
                    "user_source".into(),
                    json!(r.user_source.unwrap_or(99_999_999)),
                );
                put_columns(&mut row, &COUNTERS8, &r.counters);
                push(&mut t, table, row);
            }
        }
        Rows::Share(v) => {
            let table = if endpoint == Endpoint::UserShareHour {
                "user_share_hourly"
            } else {
                "user_share_daily"
            };
            for r in v {
                let mut row = base(appid);
                put_date(&mut row, "ref_date", r.ref_date);
                if let Some(h) = r.ref_hour {
                    row.insert("hour".into(), json!(h / 100));
                }
                row.insert("share_scene".into(), json!(r.share_scene));
                row.insert("share_count".into(), json!(r.share_count));
                row.insert("share_user".into(), json!(r.share_user));
                push(&mut t, table, row);
            }
        }
        Rows::ArticleRead(v) => {
            for r in v {
                let mut row = base(appid);
                put_date(&mut row, "ref_date", r.ref_date);
                row.insert("msgid".into(), json!(r.article.msgid));
                let keys = row.clone();
                row.insert("read_user".into(), json!(r.read_user));
                push(&mut t, "article_read_daily", row);
                push_scenes(&mut t, "article_read_sources", &keys, &r.sources);
                articles.add(appid, &r.article, |_| {});
            }
        }
        Rows::ArticleShare(v) => {
            for r in v {
                let mut row = base(appid);
                put_date(&mut row, "ref_date", r.ref_date);
                row.insert("msgid".into(), json!(r.article.msgid));
                row.insert("share_user".into(), json!(r.share_user));
                push(&mut t, "article_share_daily", row);
                articles.add(appid, &r.article, |_| {});
            }
        }
        Rows::Biz(v) => {
            for r in v {
                let mut row = base(appid);
                put_date(&mut row, "ref_date", r.ref_date);
                let keys = row.clone();
                put_columns(&mut row, &BIZ_COUNTERS, &r.counters);
                push(&mut t, "biz_daily", row);
                push_scenes(&mut t, "biz_read_sources", &keys, &r.sources);
            }
        }
        Rows::Detail(v) => {
            for item in v {
                let a = &item.article;
                for e in &item.details {
                    let mut keys = base(appid);
                    keys.insert("msgid".into(), json!(a.msgid));
                    put_date(&mut keys, "stat_date", e.stat_date);
                    let mut row = keys.clone();
                    put_date(&mut row, "ref_date", a.publish_date);
                    put_columns(&mut row, &DETAIL_COUNTERS, &e.counters);
                    for col in DETAIL_FLOATS {
                        let v = e.floats.iter().find(|(n, _)| *n == col).map(|(_, x)| *x);
                        row.insert(col.into(), v.map_or(Value::Null, |x| json!(x)));
                    }
                    push(&mut t, "article_detail", row);
                    push_scenes(&mut t, "article_detail_sources", &keys, &e.sources);
                    for (position, rate) in e.jumps.iter().flatten() {
                        let mut row = keys.clone();
                        row.insert("position".into(), json!(position));
                        row.insert("rate".into(), json!(*rate));
                        push(&mut t, "article_detail_jumps", row);
                    }
                }
                articles.add(appid, a, |m| {
                    m.insert("title".into(), json!(a.title));
                    m.insert("url".into(), json!(a.url));
                    put_date(m, "publish_date", a.publish_date);
                    m.insert("publish_type".into(), json!(a.publish_type));
                });
            }
        }
    }
    if t.contains_key("articles") {
        t.insert("articles", articles.rows);
    }
    t
}

/// `articles` rows, one per msgid in order of first appearance.
#[derive(Default)]
struct ArticleRows {
    seen: HashSet<String>,
    rows: Vec<Row>,
}

impl ArticleRows {
    fn add(&mut self, appid: &str, a: &Article, extra: impl FnOnce(&mut Row)) {
        if !self.seen.insert(a.msgid.clone()) {
            return;
        }
        let mut row = base(appid);
        row.insert("msgid".into(), json!(a.msgid));
        // Split the msgid independently of Article's own fields, as the
        // normaliser must: "<msg_data_id>_<idx>" or a bare id.
        match a.msgid.split_once('_') {
            Some((id, idx)) => {
                row.insert("msg_data_id".into(), json!(id));
                let idx: i64 = idx.parse().expect("generated idx is numeric");
                row.insert("idx".into(), json!(idx));
            }
            None => {
                row.insert("msg_data_id".into(), json!(a.msgid));
                row.insert("idx".into(), Value::Null);
            }
        }
        extra(&mut row);
        self.rows.push(row);
    }
}

fn base(appid: &str) -> Row {
    let mut m = Map::new();
    m.insert("appid".into(), json!(appid));
    m
}

fn put_date(row: &mut Row, col: &str, d: NaiveDate) {
    row.insert(col.into(), json!(fmt_date(d)));
}

/// Every column of `cols`: the counter's value, or null when the row left it out.
fn put_columns(row: &mut Row, cols: &[&str], counters: &Counters) {
    debug_assert!(
        counters.iter().all(|(n, _)| cols.contains(n)),
        "generator emitted a field with no column: {counters:?}"
    );
    for col in cols {
        let v = counters.iter().find(|(n, _)| n == col).map(|(_, v)| *v);
        row.insert((*col).into(), v.map_or(Value::Null, |v| json!(v)));
    }
}

fn push_scenes(t: &mut Tables, table: &'static str, keys: &Row, sources: &[Scene]) {
    for (desc, count) in sources {
        let mut row = keys.clone();
        row.insert("scene_desc".into(), json!(desc));
        row.insert("user_count".into(), json!(count));
        push(t, table, row);
    }
}

fn push(t: &mut Tables, table: &'static str, row: Row) {
    t.get_mut(table)
        .expect("table listed in tables_of")
        .push(row);
}
