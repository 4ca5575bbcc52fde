//! The four endpoints that replace the legacy six (data from 2025-11-01, with
//! `is_delay`). docs/wechat-api.md describes each.

use super::normalize::{Item, ShapeError, object, objects, set_floats, set_ints};
use super::{CURRENT_START, DEFAULTS, EndpointDef, Family, Mapping, Refresh};
use crate::clock::fmt_date;
use crate::json::{as_float, as_int};
use crate::store::Row;
use crate::store::tables::{
    self, BIZ_COUNTERS, DETAIL_INT_COUNTERS, DETAIL_REAL_COUNTERS, TableDef,
};

/// The facts every current endpoint shares; each declaration overrides the rest.
const CURRENT: EndpointDef = EndpointDef {
    family: Family::Current,
    first_date: CURRENT_START,
    reports_delay: true,
    ..DEFAULTS
};

/// Per article read that day: readers, and readers by scene.
pub static ARTICLE_READ: EndpointDef = EndpointDef {
    name: "getarticleread",
    mapping: Mapping::Custom {
        tables: &[
            &tables::ARTICLES,
            &tables::ARTICLE_READ_DAILY,
            &tables::ARTICLE_READ_SOURCES,
        ],
        map: article_read,
    },
    ..CURRENT
};

/// Per article shared that day: sharers.
pub static ARTICLE_SHARE: EndpointDef = EndpointDef {
    name: "getarticleshare",
    mapping: Mapping::Custom {
        tables: &[&tables::ARTICLES, &tables::ARTICLE_SHARE_DAILY],
        map: article_share,
    },
    ..CURRENT
};

/// Per day, account-wide: readers, sharers, likes and the rest, readers by scene.
pub static BIZ_SUMMARY: EndpointDef = EndpointDef {
    name: "getbizsummary",
    max_span_days: 30,
    mapping: Mapping::Custom {
        tables: &[&tables::BIZ_DAILY, &tables::BIZ_READ_SOURCES],
        map: biz_summary,
    },
    ..CURRENT
};

/// Per article published that day: cumulative detail for up to 30 days after,
/// so it is refreshed for 30 days and final only after them.
pub static ARTICLE_TOTAL_DETAIL: EndpointDef = EndpointDef {
    name: "getarticletotaldetail",
    final_after_days: 30,
    refresh: Refresh::Days(30),
    mapping: Mapping::Custom {
        tables: &[
            &tables::ARTICLES,
            &tables::ARTICLE_DETAIL,
            &tables::ARTICLE_DETAIL_SOURCES,
            &tables::ARTICLE_DETAIL_JUMPS,
        ],
        map: article_total_detail,
    },
    ..CURRENT
};

/// A row of `table` keyed by the item's ref_date and `msgid`.
fn daily_article_row(item: &Item<'_>, table: &'static TableDef, msgid: &str) -> Row {
    let mut row = item.row(table);
    row.set("ref_date", item.ref_date.as_str())
        .set("msgid", msgid);
    row
}

fn article_read(item: &Item<'_>, rows: &mut Vec<Row>) -> Result<(), ShapeError> {
    let msgid = item.text_key(item.fields, "msgid")?;
    rows.push(item.article(&msgid).build());
    let detail = object(item.fields.get("detail"));
    let mut row = daily_article_row(item, &tables::ARTICLE_READ_DAILY, &msgid);
    row.set("read_user", detail.and_then(|d| as_int(d.get("read_user"))));
    rows.push(row);
    for (scene, count) in item.scenes(detail)? {
        let mut row = daily_article_row(item, &tables::ARTICLE_READ_SOURCES, &msgid);
        row.set("scene_desc", scene.as_str())
            .set("user_count", count);
        rows.push(row);
    }
    Ok(())
}

fn article_share(item: &Item<'_>, rows: &mut Vec<Row>) -> Result<(), ShapeError> {
    let msgid = item.text_key(item.fields, "msgid")?;
    rows.push(item.article(&msgid).build());
    let detail = object(item.fields.get("detail"));
    let mut row = daily_article_row(item, &tables::ARTICLE_SHARE_DAILY, &msgid);
    row.set(
        "share_user",
        detail.and_then(|d| as_int(d.get("share_user"))),
    );
    rows.push(row);
    Ok(())
}

fn biz_summary(item: &Item<'_>, rows: &mut Vec<Row>) -> Result<(), ShapeError> {
    let detail = object(item.fields.get("detail"));
    let mut row = item.row(&tables::BIZ_DAILY);
    row.set("ref_date", item.ref_date.as_str());
    if let Some(detail) = detail {
        set_ints(&mut row, detail, &BIZ_COUNTERS);
    }
    rows.push(row);
    for (scene, count) in item.scenes(detail)? {
        let mut row = item.row(&tables::BIZ_READ_SOURCES);
        row.set("ref_date", item.ref_date.as_str())
            .set("scene_desc", scene.as_str())
            .set("user_count", count);
        rows.push(row);
    }
    Ok(())
}

fn article_total_detail(item: &Item<'_>, rows: &mut Vec<Row>) -> Result<(), ShapeError> {
    let msgid = item.text_key(item.fields, "msgid")?;
    let ref_date = item.ref_date.as_str();
    rows.push(
        item.article(&msgid)
            .title()
            .url("content_url")
            .publish_date(ref_date)
            .publish_type()
            .build(),
    );
    for detail in objects(item.fields.get("detail_list")) {
        let stat_date = fmt_date(item.date(detail, "stat_date")?);
        // The rows of one detail entry, keyed by msgid and stat_date.
        let entry_row = |table: &'static TableDef| {
            let mut row = item.row(table);
            row.set("msgid", msgid.as_str())
                .set("stat_date", stat_date.as_str());
            row
        };
        let mut row = entry_row(&tables::ARTICLE_DETAIL);
        row.set("ref_date", ref_date);
        set_ints(&mut row, detail, &DETAIL_INT_COUNTERS);
        set_floats(&mut row, detail, &DETAIL_REAL_COUNTERS);
        rows.push(row);
        for (scene, count) in item.scenes(Some(detail))? {
            let mut row = entry_row(&tables::ARTICLE_DETAIL_SOURCES);
            row.set("scene_desc", scene.as_str())
                .set("user_count", count);
            rows.push(row);
        }
        for jump in objects(detail.get("read_jump_position")) {
            let position = item.int_key(jump, "position")?;
            let mut row = entry_row(&tables::ARTICLE_DETAIL_JUMPS);
            row.set("position", position)
                .set("rate", as_float(jump.get("rate")));
            rows.push(row);
        }
    }
    Ok(())
}
