//! Turns one datacube response into table rows, using each endpoint's
//! [`Mapping`](super::Mapping).
//!
//! Parsing is lenient where WeChat is loose (numbers given as strings, absent
//! counters, unknown fields) and strict where a row could not be stored
//! faithfully (a missing key such as `msgid` fails the whole chunk, so that it is
//! retried rather than stored incomplete).

use chrono::NaiveDate;
use serde_json::{Map, Value};

use super::{Endpoint, KeyField, Mapping};
use crate::clock::{fmt_date, parse_date};
use crate::json::{as_bool, as_float, as_int, as_text};
use crate::store::tables::{self, TableDef};
use crate::store::{Row, SqlValue};
use crate::url_key::url_key;

/// What one response yields.
#[derive(Debug, Default)]
pub struct Normalized {
    /// Rows to upsert, `articles` rows included.
    pub rows: Vec<Row>,
    /// List items dropped because their `ref_date` lay outside the requested dates.
    pub dropped_outside: usize,
    /// `is_delay`, for the endpoints that report it (None for the others).
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
    if !endpoint.is_dated() {
        return Err(ShapeError(format!(
            "{endpoint} is paged, not a datacube endpoint"
        )));
    }
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
    let def = endpoint.def();
    let mut out = Normalized {
        is_delay: def
            .reports_delay
            .then(|| as_bool(top.get("is_delay")).unwrap_or(false)),
        ..Normalized::default()
    };
    for (index, fields) in list.iter().enumerate() {
        let fields = fields
            .as_object()
            .ok_or_else(|| ShapeError(format!("list item {index} is not an object")))?;
        let mut item = Item {
            fields,
            appid,
            begin,
            end,
            index,
            ref_date: String::new(),
        };
        let ref_date = item.date(fields, "ref_date")?;
        if ref_date < begin || ref_date > end {
            out.dropped_outside += 1;
            continue;
        }
        item.ref_date = fmt_date(ref_date);
        match &def.mapping {
            Mapping::OneRow { table, keys } => out.rows.push(item.one_row(table, keys)?),
            Mapping::Custom { map, .. } => map(&item, &mut out.rows)?,
            Mapping::Pages { .. } => unreachable!("checked before the loop"),
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

/// One list item of a response, with what the mappers need to read it and to
/// say where a bad field sits.
pub struct Item<'a> {
    /// The item's fields.
    pub fields: &'a Map<String, Value>,
    pub appid: &'a str,
    begin: NaiveDate,
    end: NaiveDate,
    index: usize,
    /// The item's `ref_date`, already checked to lie in the requested dates.
    pub ref_date: String,
}

impl Item<'_> {
    /// A new row of `table` for this item's account.
    pub fn row(&self, table: &'static TableDef) -> Row {
        Row::new(table, self.appid)
    }

    /// The generic one-item-one-row mapping.
    fn one_row(&self, table: &'static TableDef, keys: &[KeyField]) -> Result<Row, ShapeError> {
        let mut row = self.row(table);
        row.set("ref_date", self.ref_date.as_str());
        for key in keys {
            match *key {
                KeyField::Int(column) => {
                    row.set(column, self.int_key(self.fields, column)?);
                }
                KeyField::IntOr(column, default) => {
                    row.set(column, as_int(self.fields.get(column)).unwrap_or(default));
                }
                KeyField::Hour => {
                    row.set("hour", self.hour()?);
                }
            }
        }
        set_ints(&mut row, self.fields, table.columns);
        Ok(row)
    }

    /// A date field of `object` (the item or one of its nested objects).
    pub fn date(&self, object: &Map<String, Value>, key: &str) -> Result<NaiveDate, ShapeError> {
        let text = as_text(object.get(key)).ok_or_else(|| self.missing(key))?;
        parse_date(&text).map_err(|e| self.bad(key, &e))
    }

    /// A non-empty text field that a row's key needs.
    pub fn text_key(&self, object: &Map<String, Value>, key: &str) -> Result<String, ShapeError> {
        as_text(object.get(key))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.missing(key))
    }

    /// An integer field that a row's key needs.
    pub fn int_key(&self, object: &Map<String, Value>, key: &str) -> Result<i64, ShapeError> {
        as_int(object.get(key)).ok_or_else(|| self.missing(key))
    }

    /// `ref_hour` is HHMM-style (0, 100, ..., 2300); we store the hour 0..23.
    pub fn hour(&self) -> Result<i64, ShapeError> {
        let ref_hour = self.int_key(self.fields, "ref_hour")?;
        if !(0..=2359).contains(&ref_hour) {
            return Err(self.bad("ref_hour", &format!("{ref_hour} is not HHMM")));
        }
        Ok(ref_hour / 100)
    }

    /// The `read_user_source` array of a detail object: (scene_desc, user_count).
    pub fn scenes(
        &self,
        detail: Option<&Map<String, Value>>,
    ) -> Result<Vec<(String, Option<i64>)>, ShapeError> {
        let Some(detail) = detail else {
            return Ok(Vec::new());
        };
        objects(detail.get("read_user_source"))
            .map(|s| {
                let scene = self.text_key(s, "scene_desc")?;
                Ok((scene, as_int(s.get("user_count"))))
            })
            .collect()
    }

    /// An `articles` row for `msgid`: descriptive columns stay NULL until set,
    /// which the table's KeepNonNull merge turns into "keep what is stored".
    pub fn article(&self, msgid: &str) -> ArticleRow<'_> {
        let (data_id, idx) = split_msgid(msgid);
        let mut row = self.row(&tables::ARTICLES);
        row.set("msgid", msgid)
            .set("msg_data_id", data_id.as_str())
            .set("idx", idx);
        ArticleRow {
            row,
            fields: self.fields,
        }
    }

    fn missing(&self, key: &str) -> ShapeError {
        ShapeError(format!(
            "list item {} has no usable `{key}` (account {}, {}..{})",
            self.index, self.appid, self.begin, self.end
        ))
    }

    fn bad(&self, key: &str, why: &str) -> ShapeError {
        ShapeError(format!(
            "list item {} has a bad `{key}`: {why} (account {}, {}..{})",
            self.index, self.appid, self.begin, self.end
        ))
    }
}

/// Builds an `articles` row from an item's descriptive fields.
pub struct ArticleRow<'a> {
    row: Row,
    fields: &'a Map<String, Value>,
}

impl ArticleRow<'_> {
    /// `title` from the item.
    pub fn title(mut self) -> Self {
        self.row.set("title", as_text(self.fields.get("title")));
        self
    }

    /// `url` from the item field `key` (`url` or `content_url`), and the
    /// article's identity taken from it (`url_key`).
    pub fn url(mut self, key: &str) -> Self {
        let url = as_text(self.fields.get(key)).filter(|u| !u.is_empty());
        self.row.set("url_key", url.as_deref().map(url_key));
        self.row.set("url", url);
        self
    }

    /// `publish_date`: the item's `ref_date`, for endpoints queried by send date.
    pub fn publish_date(mut self, date: &str) -> Self {
        self.row.set("publish_date", date);
        self
    }

    /// `publish_type` from the item.
    pub fn publish_type(mut self) -> Self {
        self.row
            .set("publish_type", as_int(self.fields.get("publish_type")));
        self
    }

    /// The finished row.
    pub fn build(self) -> Row {
        self.row
    }
}

/// Sets each of `columns` from the integer field of the same name.
pub fn set_ints(row: &mut Row, object: &Map<String, Value>, columns: &[&str]) {
    for column in columns {
        row.set(column, as_int(object.get(*column)));
    }
}

/// Sets each of `columns` from the float field of the same name.
pub fn set_floats(row: &mut Row, object: &Map<String, Value>, columns: &[&str]) {
    for column in columns {
        row.set(column, SqlValue::from(as_float(object.get(*column))));
    }
}

/// A nested object field, if it is one.
pub fn object(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

/// The objects of an array field; anything else yields nothing.
pub fn objects(value: Option<&Value>) -> impl Iterator<Item = &Map<String, Value>> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}
