//! Turns one datacube response into the table rows the contract defines.
//!
//! Parsing is lenient where WeChat is loose (numbers given as strings, absent
//! counters, unknown fields) and strict where a row could not be stored
//! faithfully (a missing key such as `msgid` fails the whole chunk, so that it is
//! retried rather than stored incomplete).

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::clock::{fmt_date, parse_date};
use crate::endpoint::Endpoint;
use crate::store::tables::{self, TableDef};

/// `user_source` of rows that carry none (data from before 2020): all channels.
pub const ALL_SOURCES: i64 = 99_999_999;

/// One SQLite value.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<Option<i64>> for SqlValue {
    fn from(v: Option<i64>) -> Self {
        v.map_or(SqlValue::Null, SqlValue::Int)
    }
}

impl From<Option<f64>> for SqlValue {
    fn from(v: Option<f64>) -> Self {
        v.map_or(SqlValue::Null, SqlValue::Real)
    }
}

impl From<Option<String>> for SqlValue {
    fn from(v: Option<String>) -> Self {
        v.map_or(SqlValue::Null, SqlValue::Text)
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_string())
    }
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Int(v)
    }
}

/// One row for one table: a value for every column, in `TableDef::all_columns` order.
#[derive(Debug, Clone)]
pub struct Row {
    pub table: &'static TableDef,
    pub values: Vec<SqlValue>,
}

impl Row {
    /// A row of NULLs for `table`, with `appid` set.
    pub fn new(table: &'static TableDef, appid: &str) -> Row {
        let mut row = Row {
            table,
            values: vec![SqlValue::Null; table.width()],
        };
        row.set("appid", appid);
        row
    }

    /// Sets one column. Panics on a column the table does not have: that is a
    /// bug in this file, caught by the tests, never a property of the input.
    pub fn set(&mut self, column: &str, value: impl Into<SqlValue>) -> &mut Row {
        let pos = self
            .table
            .position(column)
            .unwrap_or_else(|| panic!("table {} has no column {column}", self.table.name));
        self.values[pos] = value.into();
        self
    }

    /// Reads one column (for tests and summaries).
    pub fn get(&self, column: &str) -> Option<&SqlValue> {
        self.table.position(column).map(|p| &self.values[p])
    }
}

/// What one response yields.
#[derive(Debug, Default)]
pub struct Normalized {
    /// Rows to upsert, `articles` rows included.
    pub rows: Vec<Row>,
    /// List items dropped because their `ref_date` lay outside the requested dates.
    pub dropped_outside: usize,
    /// The current endpoints' `is_delay` flag (None for the six older ones).
    pub is_delay: Option<bool>,
}

impl Normalized {
    /// Rows stored in data tables (the `articles` rows are bookkeeping).
    pub fn data_rows(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| !std::ptr::eq(r.table, &tables::ARTICLES))
            .count()
    }
}

/// A response that cannot be stored as it is.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unexpected response: {0}")]
pub struct ShapeError(pub String);

/// Normalises a success body of `endpoint` requested for `begin..=end`.
pub fn normalize(
    endpoint: Endpoint,
    appid: &str,
    begin: NaiveDate,
    end: NaiveDate,
    body: &Value,
) -> Result<Normalized, ShapeError> {
    let top = body
        .as_object()
        .ok_or_else(|| ShapeError("the body is not a JSON object".into()))?;
    let list = match top.get("list") {
        Some(Value::Array(items)) => items.as_slice(),
        // An account with no data at all sometimes gets `"list": null`.
        Some(Value::Null) => &[],
        Some(_) => return Err(ShapeError("`list` is not an array".into())),
        None => return Err(ShapeError("the body has no `list`".into())),
    };
    let is_delay = match endpoint.family() {
        crate::endpoint::Family::Current => Some(as_bool(top.get("is_delay")).unwrap_or(false)),
        crate::endpoint::Family::Legacy => None,
    };
    let mut out = Normalized {
        is_delay,
        ..Normalized::default()
    };
    let ctx = Ctx { appid, begin, end };
    for (index, item) in list.iter().enumerate() {
        let item = item
            .as_object()
            .ok_or_else(|| ShapeError(format!("list item {index} is not an object")))?;
        let ref_date = ctx.date(item, "ref_date", index)?;
        if ref_date < begin || ref_date > end {
            out.dropped_outside += 1;
            continue;
        }
        let ref_date = fmt_date(ref_date);
        let rows = &mut out.rows;
        match endpoint {
            Endpoint::ArticleSummary => {
                let msgid = ctx.text_key(item, "msgid", index)?;
                rows.push(article(appid, &msgid).title(item).build());
                let mut row = Row::new(&tables::ARTICLE_DAILY, appid);
                row.set("ref_date", ref_date.as_str())
                    .set("msgid", msgid.as_str());
                set_ints(&mut row, item, &tables::READ_COUNTERS);
                rows.push(row);
            }
            Endpoint::ArticleTotal => {
                let msgid = ctx.text_key(item, "msgid", index)?;
                rows.push(
                    article(appid, &msgid)
                        .title(item)
                        .url(item, "url")
                        .publish_date(&ref_date)
                        .build(),
                );
                for detail in objects(item.get("details")) {
                    let stat_date = fmt_date(ctx.date(detail, "stat_date", index)?);
                    let mut row = Row::new(&tables::ARTICLE_TOTAL, appid);
                    row.set("msgid", msgid.as_str())
                        .set("stat_date", stat_date.as_str())
                        .set("ref_date", ref_date.as_str())
                        .set("target_user", as_int(detail.get("target_user")));
                    set_ints(&mut row, detail, &tables::READ_COUNTERS);
                    set_ints(&mut row, detail, &tables::TOTAL_SOURCE_COUNTERS);
                    rows.push(row);
                }
            }
            Endpoint::UserRead | Endpoint::UserReadHour => {
                let hourly = endpoint == Endpoint::UserReadHour;
                let table = if hourly {
                    &tables::USER_READ_HOURLY
                } else {
                    &tables::USER_READ_DAILY
                };
                let mut row = Row::new(table, appid);
                row.set("ref_date", ref_date.as_str()).set(
                    "user_source",
                    as_int(item.get("user_source")).unwrap_or(ALL_SOURCES),
                );
                if hourly {
                    row.set("hour", ctx.hour(item, index)?);
                }
                set_ints(&mut row, item, &tables::READ_COUNTERS);
                rows.push(row);
            }
            Endpoint::UserShare | Endpoint::UserShareHour => {
                let hourly = endpoint == Endpoint::UserShareHour;
                let table = if hourly {
                    &tables::USER_SHARE_HOURLY
                } else {
                    &tables::USER_SHARE_DAILY
                };
                let mut row = Row::new(table, appid);
                row.set("ref_date", ref_date.as_str())
                    .set("share_scene", ctx.int_key(item, "share_scene", index)?);
                if hourly {
                    row.set("hour", ctx.hour(item, index)?);
                }
                set_ints(&mut row, item, &["share_count", "share_user"]);
                rows.push(row);
            }
            Endpoint::ArticleRead => {
                let msgid = ctx.text_key(item, "msgid", index)?;
                rows.push(article(appid, &msgid).build());
                let detail = object(item.get("detail"));
                let mut row = Row::new(&tables::ARTICLE_READ_DAILY, appid);
                row.set("ref_date", ref_date.as_str())
                    .set("msgid", msgid.as_str())
                    .set("read_user", detail.and_then(|d| as_int(d.get("read_user"))));
                rows.push(row);
                for (scene, count) in ctx.scenes(detail, index)? {
                    let mut row = Row::new(&tables::ARTICLE_READ_SOURCES, appid);
                    row.set("ref_date", ref_date.as_str())
                        .set("msgid", msgid.as_str())
                        .set("scene_desc", scene.as_str())
                        .set("user_count", count);
                    rows.push(row);
                }
            }
            Endpoint::ArticleShare => {
                let msgid = ctx.text_key(item, "msgid", index)?;
                rows.push(article(appid, &msgid).build());
                let detail = object(item.get("detail"));
                let mut row = Row::new(&tables::ARTICLE_SHARE_DAILY, appid);
                row.set("ref_date", ref_date.as_str())
                    .set("msgid", msgid.as_str())
                    .set(
                        "share_user",
                        detail.and_then(|d| as_int(d.get("share_user"))),
                    );
                rows.push(row);
            }
            Endpoint::BizSummary => {
                let detail = object(item.get("detail"));
                let mut row = Row::new(&tables::BIZ_DAILY, appid);
                row.set("ref_date", ref_date.as_str());
                if let Some(detail) = detail {
                    set_ints(&mut row, detail, &tables::BIZ_COUNTERS);
                }
                rows.push(row);
                for (scene, count) in ctx.scenes(detail, index)? {
                    let mut row = Row::new(&tables::BIZ_READ_SOURCES, appid);
                    row.set("ref_date", ref_date.as_str())
                        .set("scene_desc", scene.as_str())
                        .set("user_count", count);
                    rows.push(row);
                }
            }
            Endpoint::ArticleTotalDetail => {
                let msgid = ctx.text_key(item, "msgid", index)?;
                rows.push(
                    article(appid, &msgid)
                        .title(item)
                        .url(item, "content_url")
                        .publish_date(&ref_date)
                        .publish_type(item)
                        .build(),
                );
                for detail in objects(item.get("detail_list")) {
                    let stat_date = fmt_date(ctx.date(detail, "stat_date", index)?);
                    let mut row = Row::new(&tables::ARTICLE_DETAIL, appid);
                    row.set("msgid", msgid.as_str())
                        .set("stat_date", stat_date.as_str())
                        .set("ref_date", ref_date.as_str());
                    set_ints(&mut row, detail, &tables::DETAIL_INT_COUNTERS);
                    for column in tables::DETAIL_REAL_COUNTERS {
                        row.set(column, as_float(detail.get(column)));
                    }
                    rows.push(row);
                    for (scene, count) in ctx.scenes(Some(detail), index)? {
                        let mut row = Row::new(&tables::ARTICLE_DETAIL_SOURCES, appid);
                        row.set("msgid", msgid.as_str())
                            .set("stat_date", stat_date.as_str())
                            .set("scene_desc", scene.as_str())
                            .set("user_count", count);
                        rows.push(row);
                    }
                    for jump in objects(detail.get("read_jump_position")) {
                        let position = ctx.int_key(jump, "position", index)?;
                        let mut row = Row::new(&tables::ARTICLE_DETAIL_JUMPS, appid);
                        row.set("msgid", msgid.as_str())
                            .set("stat_date", stat_date.as_str())
                            .set("position", position)
                            .set("rate", as_float(jump.get("rate")));
                        rows.push(row);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Splits a msgid `"<msg_data_id>_<index>"`; old data has no `_index`.
pub fn split_msgid(msgid: &str) -> (String, Option<i64>) {
    match msgid.rsplit_once('_') {
        Some((data_id, index)) => (data_id.to_string(), index.parse().ok()),
        None => (msgid.to_string(), None),
    }
}

/// Where a failing item sits, for messages.
struct Ctx<'a> {
    appid: &'a str,
    begin: NaiveDate,
    end: NaiveDate,
}

impl Ctx<'_> {
    fn date(
        &self,
        item: &Map<String, Value>,
        key: &str,
        index: usize,
    ) -> Result<NaiveDate, ShapeError> {
        let text = as_text(item.get(key)).ok_or_else(|| self.missing(key, index))?;
        parse_date(&text).map_err(|e| self.bad(key, index, &e))
    }

    fn text_key(
        &self,
        item: &Map<String, Value>,
        key: &str,
        index: usize,
    ) -> Result<String, ShapeError> {
        as_text(item.get(key))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.missing(key, index))
    }

    fn int_key(
        &self,
        item: &Map<String, Value>,
        key: &str,
        index: usize,
    ) -> Result<i64, ShapeError> {
        as_int(item.get(key)).ok_or_else(|| self.missing(key, index))
    }

    /// `ref_hour` is HHMM-style (0, 100, ..., 2300); we store the hour 0..23.
    fn hour(&self, item: &Map<String, Value>, index: usize) -> Result<i64, ShapeError> {
        let ref_hour = self.int_key(item, "ref_hour", index)?;
        if !(0..=2359).contains(&ref_hour) {
            return Err(self.bad("ref_hour", index, &format!("{ref_hour} is not HHMM")));
        }
        Ok(ref_hour / 100)
    }

    /// The `read_user_source` array of a detail object: (scene_desc, user_count).
    fn scenes(
        &self,
        detail: Option<&Map<String, Value>>,
        index: usize,
    ) -> Result<Vec<(String, Option<i64>)>, ShapeError> {
        let Some(detail) = detail else {
            return Ok(Vec::new());
        };
        objects(detail.get("read_user_source"))
            .map(|s| {
                let scene = self.text_key(s, "scene_desc", index)?;
                Ok((scene, as_int(s.get("user_count"))))
            })
            .collect()
    }

    fn missing(&self, key: &str, index: usize) -> ShapeError {
        ShapeError(format!(
            "list item {index} has no usable `{key}` (account {}, {}..{})",
            self.appid, self.begin, self.end
        ))
    }

    fn bad(&self, key: &str, index: usize, why: &str) -> ShapeError {
        ShapeError(format!(
            "list item {index} has a bad `{key}`: {why} (account {}, {}..{})",
            self.appid, self.begin, self.end
        ))
    }
}

/// Builds an `articles` row; unset descriptive columns stay NULL, which the
/// KeepNonNull merge turns into "keep what is stored".
struct ArticleRow(Row);

fn article(appid: &str, msgid: &str) -> ArticleRow {
    let (data_id, idx) = split_msgid(msgid);
    let mut row = Row::new(&tables::ARTICLES, appid);
    row.set("msgid", msgid)
        .set("msg_data_id", data_id.as_str())
        .set("idx", idx);
    ArticleRow(row)
}

impl ArticleRow {
    fn title(mut self, item: &Map<String, Value>) -> Self {
        self.0.set("title", as_text(item.get("title")));
        self
    }

    fn url(mut self, item: &Map<String, Value>, key: &str) -> Self {
        self.0
            .set("url", as_text(item.get(key)).filter(|u| !u.is_empty()));
        self
    }

    fn publish_date(mut self, date: &str) -> Self {
        self.0.set("publish_date", date);
        self
    }

    fn publish_type(mut self, item: &Map<String, Value>) -> Self {
        self.0.set("publish_type", as_int(item.get("publish_type")));
        self
    }

    fn build(self) -> Row {
        self.0
    }
}

fn set_ints(row: &mut Row, item: &Map<String, Value>, columns: &[&str]) {
    for column in columns {
        row.set(column, as_int(item.get(*column)));
    }
}

fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

/// The objects of an array field; anything else yields nothing.
fn objects(value: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}

/// An integer given as a number or a numeric string; anything else is absent.
pub fn as_int(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
        }
        _ => None,
    }
}

/// A float given as a number or a numeric string.
pub fn as_float(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

fn as_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn as_bool(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        Value::String(s) => match s.as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}
