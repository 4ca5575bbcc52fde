//! The six original article endpoints (data from 2014-12-01), which WeChat is
//! switching off (47009). docs/wechat-api.md describes each.

use super::normalize::{Item, ShapeError, objects, set_ints};
use super::{DEFAULTS, EndpointDef, Family, KeyField, Mapping};
use crate::store::Row;
use crate::store::tables::{self, READ_COUNTERS, TOTAL_SOURCE_COUNTERS};

/// `user_source` of rows that carry none (data from before 2020): all channels.
pub const ALL_SOURCES: i64 = 99_999_999;

/// The facts every legacy endpoint shares; each declaration overrides the rest.
const LEGACY: EndpointDef = EndpointDef {
    family: Family::Legacy,
    ..DEFAULTS
};

/// Per article and day: reads and shares of every article read that day.
pub static ARTICLE_SUMMARY: EndpointDef = EndpointDef {
    name: "getarticlesummary",
    mapping: Mapping::Custom {
        tables: &[&tables::ARTICLES, &tables::ARTICLE_DAILY],
        map: article_summary,
    },
    ..LEGACY
};

/// Per article sent that day: cumulative totals for up to 7 days after.
pub static ARTICLE_TOTAL: EndpointDef = EndpointDef {
    name: "getarticletotal",
    mapping: Mapping::Custom {
        tables: &[&tables::ARTICLES, &tables::ARTICLE_TOTAL],
        map: article_total,
    },
    ..LEGACY
};

/// Per day and channel (`user_source`): account-wide reads.
pub static USER_READ: EndpointDef = EndpointDef {
    name: "getuserread",
    max_span_days: 3,
    mapping: Mapping::OneRow {
        table: &tables::USER_READ_DAILY,
        keys: &[KeyField::IntOr("user_source", ALL_SOURCES)],
    },
    ..LEGACY
};

/// Per day, hour and channel: account-wide reads.
pub static USER_READ_HOUR: EndpointDef = EndpointDef {
    name: "getuserreadhour",
    mapping: Mapping::OneRow {
        table: &tables::USER_READ_HOURLY,
        keys: &[KeyField::Hour, KeyField::IntOr("user_source", ALL_SOURCES)],
    },
    ..LEGACY
};

/// Per day and share scene: account-wide shares.
pub static USER_SHARE: EndpointDef = EndpointDef {
    name: "getusershare",
    max_span_days: 7,
    mapping: Mapping::OneRow {
        table: &tables::USER_SHARE_DAILY,
        keys: &[KeyField::Int("share_scene")],
    },
    ..LEGACY
};

/// Per day, hour and share scene: account-wide shares.
pub static USER_SHARE_HOUR: EndpointDef = EndpointDef {
    name: "getusersharehour",
    mapping: Mapping::OneRow {
        table: &tables::USER_SHARE_HOURLY,
        keys: &[KeyField::Hour, KeyField::Int("share_scene")],
    },
    ..LEGACY
};

fn article_summary(item: &Item<'_>, rows: &mut Vec<Row>) -> Result<(), ShapeError> {
    let msgid = item.text_key(item.fields, "msgid")?;
    rows.push(item.article(&msgid).title().build());
    let mut row = item.row(&tables::ARTICLE_DAILY);
    row.set("ref_date", item.ref_date.as_str())
        .set("msgid", msgid.as_str());
    set_ints(&mut row, item.fields, &READ_COUNTERS);
    rows.push(row);
    Ok(())
}

fn article_total(item: &Item<'_>, rows: &mut Vec<Row>) -> Result<(), ShapeError> {
    let msgid = item.text_key(item.fields, "msgid")?;
    let ref_date = item.ref_date.as_str();
    rows.push(
        item.article(&msgid)
            .title()
            .url("url")
            .publish_date(ref_date)
            .build(),
    );
    for detail in objects(item.fields.get("details")) {
        let stat_date = crate::clock::fmt_date(item.date(detail, "stat_date")?);
        let mut row = item.row(&tables::ARTICLE_TOTAL);
        row.set("msgid", msgid.as_str())
            .set("stat_date", stat_date.as_str())
            .set("ref_date", ref_date)
            .set(
                "target_user",
                crate::json::as_int(detail.get("target_user")),
            );
        set_ints(&mut row, detail, &READ_COUNTERS);
        set_ints(&mut row, detail, &TOTAL_SOURCE_COUNTERS);
        rows.push(row);
    }
    Ok(())
}
