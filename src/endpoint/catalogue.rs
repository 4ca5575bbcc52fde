//! The published-content list (`freepublish/batchget`): pages newest first
//! rather than dates, 100 calls a day, identity by URL rather than msgid.
//! It lists only items *published* (发布), not mass-sent ones (群发).
//! docs/wechat-api.md describes it; `crate::ingest::catalogue` sweeps it.

use serde_json::{Map, Value};

use super::normalize::{ShapeError, objects};
use super::{DEFAULTS, EndpointDef, Family, Mapping};
use crate::json::{as_bool, as_int, as_text};
use crate::store::Row;
use crate::store::tables;
use crate::url_key::url_key;

/// Items per page: the most `count` allows.
pub const PAGE_SIZE: u32 = 20;

/// The catalogue of published articles.
pub static FREEPUBLISH: EndpointDef = EndpointDef {
    name: "freepublish",
    family: Family::Catalogue,
    // No days: nothing becomes final; the sweep keeps it current.
    final_after_days: 0,
    mapping: Mapping::Pages {
        tables: &[&tables::PUBLISHED_ARTICLES],
    },
    ..DEFAULTS
};

/// One published item of a page: its id, its `update_time`, and the rows of
/// its articles.
#[derive(Debug)]
pub struct PublishedItem {
    pub article_id: String,
    pub update_time: Option<i64>,
    pub rows: Vec<Row>,
}

/// One page of the catalogue.
#[derive(Debug)]
pub struct Page {
    /// Items in the whole catalogue, as WeChat counts them now.
    pub total_count: Option<i64>,
    pub items: Vec<PublishedItem>,
}

/// Parses a success body of `freepublish/batchget` for `appid`.
pub fn parse_page(appid: &str, body: &Value) -> Result<Page, ShapeError> {
    let top = body
        .as_object()
        .ok_or_else(|| ShapeError("the body is not a JSON object".into()))?;
    let items = match top.get("item") {
        Some(Value::Array(items)) => items.as_slice(),
        Some(Value::Null) | None => &[],
        Some(_) => return Err(ShapeError("`item` is not an array".into())),
    };
    let mut page = Page {
        total_count: as_int(top.get("total_count")),
        items: Vec::with_capacity(items.len()),
    };
    for (index, item) in items.iter().enumerate() {
        let item = item
            .as_object()
            .ok_or_else(|| ShapeError(format!("item {index} is not an object")))?;
        page.items.push(parse_item(appid, index, item)?);
    }
    Ok(page)
}

fn parse_item(
    appid: &str,
    index: usize,
    item: &Map<String, Value>,
) -> Result<PublishedItem, ShapeError> {
    let article_id = as_text(item.get("article_id"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ShapeError(format!(
                "item {index} has no usable `article_id` (account {appid})"
            ))
        })?;
    let content = item.get("content").and_then(Value::as_object);
    // Seen both on the item and inside `content`: the item's wins.
    let item_time =
        |key: &str| as_int(item.get(key)).or_else(|| content.and_then(|c| as_int(c.get(key))));
    let update_time = item_time("update_time");
    let create_time = item_time("create_time");
    let mut rows = Vec::new();
    let news = content.and_then(|c| c.get("news_item"));
    for (position, article) in objects(news).enumerate() {
        // Stored as given (an empty digest is WeChat's for multi-article items).
        let text = |key: &str| as_text(article.get(key));
        let flag = |key: &str| as_bool(article.get(key)).map(i64::from);
        let url = text("url");
        let mut row = Row::new(&tables::PUBLISHED_ARTICLES, appid);
        row.set("article_id", article_id.as_str())
            .set("idx", position as i64 + 1)
            .set("title", text("title"))
            .set("author", text("author"))
            .set("digest", text("digest"))
            .set("content_source_url", text("content_source_url"))
            .set("thumb_url", text("thumb_url"))
            .set("thumb_media_id", text("thumb_media_id"))
            .set("show_cover_pic", flag("show_cover_pic"))
            .set("need_open_comment", flag("need_open_comment"))
            .set("only_fans_can_comment", flag("only_fans_can_comment"))
            .set("is_deleted", Some(flag("is_deleted").unwrap_or(0)))
            .set("update_time", update_time)
            .set("create_time", create_time)
            .set(
                "url_key",
                url.as_deref().filter(|u| !u.is_empty()).map(url_key),
            )
            .set("url", url);
        rows.push(row);
    }
    Ok(PublishedItem {
        article_id,
        update_time,
        rows,
    })
}
