//! The published catalogue (`freepublish/batchget`, SPEC section 8): per
//! appid a deterministic list of a few hundred published items, newest
//! first, drawn from the generator's real broadcasts, and its oracle rows.
//!
//! - Every broadcast from a per-appid start day (in the first half of 2024)
//!   up to yesterday is "published" with probability 0.6; its item lists all
//!   the broadcast's articles in idx order, so some items have several.
//! - Each article's `url` is the datacube `content_url` (`data::Article::url`)
//!   with `&chksm=..&scene=..` added, often `https`, sometimes without `#rd`:
//!   the same `url_key`.
//! - About 6% of the articles are `is_deleted: true`; about 15% of the items
//!   are updated on a later day: once "today" is past that day, their
//!   `update_time`, the first article's title and digest (and sometimes the
//!   deletion of an article) change.
//! - Times sit in three places: the documented shape (item `update_time`,
//!   `content.create_time` and `content.update_time`, the latter stale on an
//!   updated item), inside `content` only (the WxJava sample) or on the item
//!   only. The oracle takes the item's, else the content's.
//! - A few fields are sometimes absent (`digest`, `content_source_url`,
//!   `thumb_url`): stored as NULL.
//!
//! `batchget` validation: `offset` must be >= 0 and `count` 1..=20, else
//! errcode 40097 "invalid args" (WeChat's generic invalid-argument code); an
//! offset past the end answers an empty page. The daily quota (100 calls per
//! appid and China day, then 45009) is kept by the HTTP handler in `sim`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{Days, NaiveDate};
use serde_json::{Map, Value, json};

use super::data::{self, Article, Gen};
use crate::clock::days;
use crate::url_key::url_key;

/// Calls per appid and China day before 45009.
pub const DAILY_QUOTA: u64 = 100;

/// The largest `count` batchget accepts.
pub const MAX_COUNT: i64 = 20;

/// errcode answered for a bad `offset` or `count`.
pub const INVALID_ARGS: i64 = 40097;

const AUTHORS: [&str; 8] = [
    "小编",
    "王小明",
    "李雷",
    "韩梅梅",
    "Alice Chen",
    "Bob Li",
    "编辑部",
    "dragon",
];

const DIGESTS: [&str; 6] = [
    "本周要点一览",
    "三分钟看完这篇",
    "A short summary of this week's news.",
    "点击阅读全文 👉",
    "关于\"数据\"的一些思考",
    "",
];

/// Where an item's create_time and update_time sit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Item `update_time`; `content.create_time` and `content.update_time`.
    Documented,
    /// Only inside `content` (the WxJava sample).
    ContentOnly,
    /// Only on the item.
    ItemOnly,
}

/// One `news_item` entry.
#[derive(Clone, Debug)]
pub struct NewsItem {
    /// The datacube msgid of the same article.
    pub msgid: String,
    /// Title (may differ from the datacube's after an update).
    pub title: String,
    /// Author.
    pub author: String,
    /// Digest; None when absent from the answer.
    pub digest: Option<String>,
    /// "Read more" link; None when absent.
    pub content_source_url: Option<String>,
    /// Cover image media id.
    pub thumb_media_id: String,
    /// Cover image URL; None when absent.
    pub thumb_url: Option<String>,
    /// 0/1.
    pub show_cover_pic: i64,
    /// 0/1.
    pub need_open_comment: i64,
    /// 0/1.
    pub only_fans_can_comment: i64,
    /// The article URL (the datacube URL plus chksm/scene).
    pub url: String,
    /// Deleted after publishing.
    pub is_deleted: bool,
}

/// One published item as of some "today".
#[derive(Clone, Debug)]
pub struct PublishedItem {
    /// The catalogue id (not the datacube msgid).
    pub article_id: String,
    /// The day of the broadcast it was drawn from.
    pub publish_date: NaiveDate,
    /// Unix seconds.
    pub create_time: i64,
    /// Unix seconds (the latest update as of "today").
    pub update_time: i64,
    /// `content.update_time` (stale for an updated Documented item).
    pub content_update_time: i64,
    /// The day after which the item shows its update, if it is ever updated.
    pub updated_after: Option<NaiveDate>,
    /// Where the times sit.
    pub placement: Placement,
    /// The articles, in idx order.
    pub news_item: Vec<NewsItem>,
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// The first day whose broadcasts can be in `appid`'s catalogue.
pub fn catalogue_start(appid: &str) -> NaiveDate {
    let offset = Gen::new(&["catalogue-start", appid]).range(0, 180) as u64;
    ymd(2024, 1, 1) + Days::new(offset)
}

/// Unix seconds of `date` (China time) at `secs` after midnight.
fn china_ts(date: NaiveDate, secs: i64) -> i64 {
    let midnight_utc = date
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp();
    midnight_utc - 8 * 3600 + secs
}

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn token(g: &mut Gen, len: usize) -> String {
    (0..len)
        .map(|_| char::from(ID_CHARS[g.range(0, ID_CHARS.len() as i64 - 1) as usize]))
        .collect()
}

/// The catalogue URL of a datacube article URL.
fn catalogue_url(g: &mut Gen, datacube_url: &str) -> String {
    let base = datacube_url.strip_suffix("#rd").unwrap_or(datacube_url);
    let base = if g.chance(0.7) {
        base.replacen("http://", "https://", 1)
    } else {
        base.to_string()
    };
    let chksm = format!("{:016x}{:08x}", g.next_u64(), g.next_u64() as u32);
    let scene = g.pick(&[0, 21, 27, 126]);
    let fragment = if g.chance(0.5) { "#rd" } else { "" };
    format!("{base}&chksm={chksm}&scene={scene}{fragment}")
}

fn news_item(appid: &str, a: &Article, single: bool) -> NewsItem {
    let mut g = Gen::new(&["catalogue-news", appid, &a.msgid]);
    let digest = if g.chance(0.05) {
        None
    } else if single {
        Some(g.pick(&DIGESTS).to_string())
    } else {
        Some(String::new())
    };
    let content_source_url = {
        let r = g.unit();
        if r < 0.7 {
            Some(String::new())
        } else if r < 0.9 {
            Some(format!("https://example.com/read/{}", g.range(1, 99_999)))
        } else {
            None
        }
    };
    let thumb_media_id = token(&mut g, 43);
    let thumb_url = (!g.chance(0.05)).then(|| {
        format!(
            "http://mmbiz.qpic.cn/mmbiz_jpg/{}/0?wx_fmt=jpeg",
            token(&mut g, 22)
        )
    });
    let need_open_comment = i64::from(g.chance(0.7));
    NewsItem {
        msgid: a.msgid.clone(),
        title: a.title.clone(),
        author: g.pick(&AUTHORS).to_string(),
        digest,
        content_source_url,
        thumb_media_id,
        thumb_url,
        show_cover_pic: i64::from(g.chance(0.5)),
        need_open_comment,
        only_fans_can_comment: if need_open_comment == 1 {
            i64::from(g.chance(0.3))
        } else {
            0
        },
        url: catalogue_url(&mut g, &a.url),
        is_deleted: g.chance(0.06),
    }
}

/// The published item drawn from the broadcast `articles` of `date`, as it
/// looks on `today`; None when that broadcast was mass-sent only.
fn published(
    appid: &str,
    date: NaiveDate,
    articles: &[Article],
    today: NaiveDate,
) -> Option<PublishedItem> {
    let first = articles.first()?;
    let mut g = Gen::new(&["catalogue-item", appid, &first.msg_data_id]);
    if !g.chance(0.6) {
        return None;
    }
    let article_id = token(&mut g, 43);
    let create_time = china_ts(date, g.range(7 * 3600, 22 * 3600));
    let original_update = create_time + g.range(3, 60);
    let placement = g.pick(&[
        Placement::Documented,
        Placement::Documented,
        Placement::ContentOnly,
        Placement::ItemOnly,
    ]);
    let updated_after = g
        .chance(0.15)
        .then(|| date + Days::new(g.range(2, 150) as u64));
    let single = articles.len() == 1;
    let mut news: Vec<NewsItem> = articles
        .iter()
        .map(|a| news_item(appid, a, single))
        .collect();
    let mut update_time = original_update;
    let mut content_update_time = original_update;
    if let Some(day) = updated_after.filter(|d| today > *d) {
        update_time = china_ts(day, g.range(8 * 3600, 23 * 3600));
        if placement != Placement::Documented {
            content_update_time = update_time;
        }
        let lead = &mut news[0];
        if g.chance(0.6) {
            lead.title.push_str("（已更新）");
        }
        if let Some(d) = lead.digest.as_mut() {
            d.insert_str(0, "更新：");
        }
        if news.len() > 1 && g.chance(0.3) {
            let last = news.len() - 1;
            news[last].is_deleted = true;
        }
    }
    Some(PublishedItem {
        article_id,
        publish_date: date,
        create_time,
        update_time,
        content_update_time,
        updated_after,
        placement,
        news_item: news,
    })
}

/// Broadcasts of `appid` that are published, oldest first, from the
/// catalogue's start up to at least `through`, cached per appid: a sync
/// pages the catalogue many times and broadcasts are pure in (appid, day).
type Published = Arc<Vec<(NaiveDate, Vec<Article>)>>;

fn published_broadcasts(appid: &str, through: NaiveDate) -> Published {
    static CACHE: OnceLock<Mutex<HashMap<String, (NaiveDate, Published)>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let hit = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(appid)
        .filter(|(until, _)| *until >= through)
        .map(|(_, list)| list.clone());
    if let Some(list) = hit {
        return list;
    }
    let until = through.max(ymd(2026, 12, 31));
    let list: Vec<(NaiveDate, Vec<Article>)> = days(catalogue_start(appid), until)
        .map(|day| (day, data::broadcast(appid, day)))
        .filter(|(day, b)| published(appid, *day, b, *day).is_some())
        .collect();
    let list = Arc::new(list);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(appid.to_string(), (until, list.clone()));
    list
}

/// `appid`'s catalogue as of `today` (broadcasts up to yesterday), newest first.
pub fn catalogue(appid: &str, today: NaiveDate) -> Vec<PublishedItem> {
    let Some(yesterday) = today.pred_opt() else {
        return Vec::new();
    };
    let mut items: Vec<PublishedItem> = published_broadcasts(appid, yesterday)
        .iter()
        .rev()
        .filter(|(day, _)| *day <= yesterday)
        .filter_map(|(day, b)| published(appid, *day, b, today))
        .collect();
    // Newest first by the latest update: an edited item comes back to the
    // top, which is what lets a sync stop at the first page with nothing new.
    items.sort_by(|a, b| {
        b.update_time
            .cmp(&a.update_time)
            .then(b.create_time.cmp(&a.create_time))
    });
    items
}

fn news_json(n: &NewsItem) -> Value {
    let mut m = Map::new();
    m.insert("title".into(), json!(n.title));
    m.insert("author".into(), json!(n.author));
    if let Some(d) = &n.digest {
        m.insert("digest".into(), json!(d));
    }
    if let Some(u) = &n.content_source_url {
        m.insert("content_source_url".into(), json!(u));
    }
    m.insert("thumb_media_id".into(), json!(n.thumb_media_id));
    if let Some(u) = &n.thumb_url {
        m.insert("thumb_url".into(), json!(u));
    }
    m.insert("show_cover_pic".into(), json!(n.show_cover_pic));
    m.insert("need_open_comment".into(), json!(n.need_open_comment));
    m.insert(
        "only_fans_can_comment".into(),
        json!(n.only_fans_can_comment),
    );
    m.insert("url".into(), json!(n.url));
    m.insert("is_deleted".into(), json!(n.is_deleted));
    Value::Object(m)
}

/// The wire JSON of one item.
pub fn item_json(item: &PublishedItem) -> Value {
    let news: Vec<Value> = item.news_item.iter().map(news_json).collect();
    let mut content = Map::new();
    content.insert("news_item".into(), Value::Array(news));
    let mut m = Map::new();
    m.insert("article_id".into(), json!(item.article_id));
    match item.placement {
        Placement::Documented => {
            content.insert("create_time".into(), json!(item.create_time));
            content.insert("update_time".into(), json!(item.content_update_time));
            m.insert("update_time".into(), json!(item.update_time));
        }
        Placement::ContentOnly => {
            content.insert("create_time".into(), json!(item.create_time));
            content.insert("update_time".into(), json!(item.content_update_time));
        }
        Placement::ItemOnly => {
            m.insert("create_time".into(), json!(item.create_time));
            m.insert("update_time".into(), json!(item.update_time));
        }
    }
    m.insert("content".into(), Value::Object(content));
    Value::Object(m)
}

/// The answer of `freepublish/batchget` with `offset` and `count` on
/// `today`: `{total_count, item_count, item}`, newest first; Err((errcode,
/// errmsg)) 40097 for offset < 0 or count outside 1..=20.
pub fn batchget(
    appid: &str,
    offset: i64,
    count: i64,
    today: NaiveDate,
) -> Result<Value, (i64, String)> {
    if offset < 0 {
        return Err((INVALID_ARGS, "invalid args hint: offset < 0".into()));
    }
    if !(1..=MAX_COUNT).contains(&count) {
        return Err((
            INVALID_ARGS,
            format!("invalid args hint: count must be 1..={MAX_COUNT}"),
        ));
    }
    // The whole list is a few hundred items: built for each page, so that
    // the order follows the latest updates as of `today`.
    let listed = catalogue(appid, today);
    let total = listed.len();
    let from = usize::try_from(offset).unwrap_or(usize::MAX).min(total);
    let to = from.saturating_add(count as usize).min(total);
    let items: Vec<Value> = listed[from..to].iter().map(item_json).collect();
    Ok(json!({
        "total_count": total,
        "item_count": items.len(),
        "item": items,
    }))
}

/// Rows of table `published_articles` after a complete sweep on `today`:
/// one per item and news_item position (idx 1-based), newest item first.
/// Absent fields are null; is_deleted is 0/1; create_time and update_time
/// are the item's (item-level, else content-level); url_key from `url`.
pub fn expected_published_articles(appid: &str, today: NaiveDate) -> Vec<Value> {
    let mut rows = Vec::new();
    for item in catalogue(appid, today) {
        for (i, n) in item.news_item.iter().enumerate() {
            rows.push(json!({
                "appid": appid,
                "article_id": item.article_id,
                "idx": i as i64 + 1,
                "title": n.title,
                "author": n.author,
                "digest": n.digest,
                "url": n.url,
                "content_source_url": n.content_source_url,
                "thumb_url": n.thumb_url,
                "thumb_media_id": n.thumb_media_id,
                "show_cover_pic": n.show_cover_pic,
                "need_open_comment": n.need_open_comment,
                "only_fans_can_comment": n.only_fans_can_comment,
                "is_deleted": i64::from(n.is_deleted),
                "update_time": item.update_time,
                "create_time": item.create_time,
                "url_key": url_key(&n.url),
            }));
        }
    }
    rows
}
