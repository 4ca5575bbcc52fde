//! The simulator's deterministic data generator.
//!
//! Every number is a pure function of (appid, date, article): a small seeded
//! generator is keyed by a hash of those, never by the request, so a range
//! request is exactly the concatenation of its one-day answers and a re-fetch
//! returns the same rows (except the cumulative endpoints, whose detail lists
//! grow with "today", as the real ones do).
//!
//! The module produces typed rows ([`Rows`]); [`response`] turns them into the
//! wire JSON and `truth` turns them into the rows wxcube must store.

use std::collections::HashMap;
use std::rc::Rc;

use chrono::{Days, NaiveDate};
use serde_json::{Map, Value, json};

use crate::clock::{days, fmt_date};
use crate::endpoint::{DATACUBE_START, Endpoint};

/// Counters present in one row, by their JSON field name. A counter the
/// generator leaves out is simply not in the list (the API omits fields).
pub type Counters = Vec<(&'static str, i64)>;

/// One `read_user_source` entry of the current endpoints: (scene_desc, user_count).
pub type Scene = (&'static str, i64);

/// The eight scene strings of the current endpoints, in the order the live
/// sample shows them.
pub const SCENES: [&str; 8] = [
    "公众号消息",
    "公众号主页",
    "全部",
    "聊天会话",
    "朋友圈",
    "其他",
    "推荐",
    "搜一搜",
];

/// The 8 basic counters of the legacy endpoints.
pub const COUNTERS8: [&str; 8] = [
    "int_page_read_user",
    "int_page_read_count",
    "ori_page_read_user",
    "ori_page_read_count",
    "share_user",
    "share_count",
    "add_to_fav_user",
    "add_to_fav_count",
];

/// `user_source` codes of getuserread/getuserreadhour, 99999999 (all) first.
pub const USER_SOURCES: [i64; 9] = [99_999_999, 0, 1, 2, 3, 4, 5, 6, 7];

/// From this day on getuserread/getuserreadhour split rows by `user_source`
/// (SOURCES.md: "Since 2020-02-28 the live API returns one row per user_source").
pub fn user_source_cutover() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 2, 28).expect("valid date")
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

// ---------------------------------------------------------------------------
// Seeded generator

/// SplitMix64 seeded by an FNV-1a hash of the key parts. Chosen over sha2 +
/// rand's StdRng because a full backfill estimate draws millions of numbers in
/// debug builds, and because its output can never change under a rand upgrade.
pub(crate) struct Gen(u64);

impl Gen {
    pub(crate) fn new(parts: &[&str]) -> Gen {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for part in parts {
            for b in part.bytes().chain(std::iter::once(0xff)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let mut g = Gen(h);
        // Discard one output so that keys differing only in the last byte diverge fully.
        g.next_u64();
        g
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform integer in lo..=hi.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }

    /// Rounds with random dithering, so that small expectations (0.3 readers
    /// an hour) still produce the occasional 1 instead of always 0.
    pub(crate) fn round(&mut self, x: f64) -> i64 {
        if x <= 0.0 {
            return 0;
        }
        (x + self.unit()).floor() as i64
    }

    /// `x` times a uniform factor in lo..hi, dither-rounded.
    pub(crate) fn scaled(&mut self, x: f64, lo: f64, hi: f64) -> i64 {
        let f = self.between(lo, hi);
        self.round(x * f)
    }

    pub(crate) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len() as i64 - 1) as usize]
    }
}

/// Rounds through f32 so rates look like the live API's (0.0689655169845...).
fn f32ish(x: f64) -> f64 {
    f64::from(x as f32)
}

// ---------------------------------------------------------------------------
// Account and articles

/// Per-account constants, derived from the appid alone.
pub(crate) struct Profile {
    followers0: f64,
    growth_per_day: f64,
    open_rate: f64,
    broadcast_p: f64,
}

impl Profile {
    pub(crate) fn of(appid: &str) -> Profile {
        let mut g = Gen::new(&["profile", appid]);
        Profile {
            followers0: g.between(500.0, 4000.0),
            growth_per_day: g.between(0.5, 3.5),
            open_rate: g.between(0.03, 0.08),
            broadcast_p: g.between(0.45, 0.7),
        }
    }

    pub(crate) fn followers(&self, date: NaiveDate) -> i64 {
        let age = (date - DATACUBE_START).num_days().max(0) as f64;
        (self.followers0 + self.growth_per_day * age).round() as i64
    }
}

/// One article of one broadcast, with everything about it that does not
/// depend on the day it is read.
#[derive(Clone, Debug)]
pub struct Article {
    /// `"<msg_data_id>_<idx>"`, or a plain number for some 2014-2015 broadcasts.
    pub msgid: String,
    /// The broadcast id (the whole msgid when it has no `_`).
    pub msg_data_id: String,
    /// 1-based position in the broadcast; None when msgid has no `_`.
    pub idx: Option<i64>,
    /// Stable title (CJK, emoji, quotes, backslashes, newlines on purpose).
    pub title: String,
    /// Stable article URL (legacy `url`, current `content_url`).
    pub url: String,
    /// The day it was sent.
    pub publish_date: NaiveDate,
    /// 0 with notification, 1 without, rarely 2.
    pub publish_type: i64,
    /// Followers it was sent to.
    pub target_user: i64,
    /// Whether getarticletotal carries the kanyikan/souyisou counters for it.
    pub has_recommend_fields: bool,
    /// Undocumented `user_source` on the getarticletotal item, when present.
    pub total_user_source: Option<i64>,
    /// Whether the getarticletotal item carries `url`.
    pub total_has_url: bool,
    position_factor: f64,
    appeal: f64,
    has_ori: bool,
    finish_rate: f64,
    activetime: f64,
    jumps: [f64; 5],
}

const TITLE_HEADS: [&str; 12] = [
    "",
    "【周报】",
    "独家｜",
    "\"深度\" ",
    "🔥 ",
    "Re: ",
    "早安☀️ ",
    "「数据」",
    "'引号' ",
    "",
    "",
    "",
];
const TITLE_BODIES: [&str; 16] = [
    "春节出行指南",
    "如何用 Rust 写命令行工具",
    "数据看板上线了",
    "年终总结",
    "路径 C:\\Users\\小编\\稿件",
    "一图读懂新规",
    "关于\"双十一\"的 5 个真相",
    "周末去哪儿",
    "Weekly digest",
    "新品发布会回顾 🎉",
    "读者来信：你好",
    "它\\们 与 \"我们\"",
    "夜读｜慢一点也没关系",
    "招聘：后端工程师",
    "活动预告 🎁🎁",
    "3 分钟看懂账单",
];
const TITLE_TAILS: [&str; 8] = [
    "",
    "",
    "（上）",
    "\n第二行继续",
    " — 必读",
    "！",
    " \\o/",
    " 😂",
];

/// The articles sent on `date` (empty on quiet days). Pure in (appid, date).
pub fn broadcast(appid: &str, date: NaiveDate) -> Vec<Article> {
    let profile = Profile::of(appid);
    let ds = fmt_date(date);
    let mut g = Gen::new(&["broadcast", appid, &ds]);
    if !g.chance(profile.broadcast_p) {
        return Vec::new();
    }
    let roll = g.unit();
    let count = if roll < 0.4 {
        1
    } else if roll < 0.65 {
        2
    } else if roll < 0.85 {
        3
    } else {
        4
    };
    // Old broadcasts sometimes carry a bare id (SOURCES.md: "23423525").
    let plain = date < ymd(2016, 1, 1) && g.chance(0.4);
    let day_index = (date - DATACUBE_START).num_days();
    let base: i64 = if date < ymd(2016, 1, 1) {
        200_000_000
    } else {
        2_247_400_000
    };
    let target_user = profile.followers(date);
    (1..=count)
        .map(|i| {
            let (msgid, msg_data_id, idx) = if plain {
                let id = (base + day_index * 10 + i).to_string();
                (id.clone(), id, None)
            } else {
                let id = (base + day_index * 10).to_string();
                (format!("{id}_{i}"), id, Some(i))
            };
            make_article(appid, date, msgid, msg_data_id, idx, target_user, i)
        })
        .collect()
}

fn make_article(
    appid: &str,
    date: NaiveDate,
    msgid: String,
    msg_data_id: String,
    idx: Option<i64>,
    target_user: i64,
    position: i64,
) -> Article {
    let mut g = Gen::new(&["article", appid, &msgid]);
    let mut title = format!(
        "{}{}{}",
        g.pick(&TITLE_HEADS),
        g.pick(&TITLE_BODIES),
        g.pick(&TITLE_TAILS)
    );
    if g.chance(0.3) {
        title.push_str(&format!(" 第{}期", g.range(1, 400)));
    }
    let biz = Gen::new(&["biz", appid]).next_u64() % 10_000_000_000;
    let sn = g.next_u64();
    let url = format!(
        "http://mp.weixin.qq.com/s?__biz=Mz{biz:010}==&mid={msg_data_id}&idx={}&sn={sn:016x}#rd",
        idx.unwrap_or(1)
    );
    let publish_type = {
        let r = g.unit();
        if r < 0.7 {
            0
        } else if r < 0.97 {
            1
        } else {
            2
        }
    };
    let mut jumps = [0.0; 5];
    for j in &mut jumps {
        *j = g.between(0.05, 1.0);
    }
    // Most readers leave near the end of the page.
    jumps[4] += 1.5;
    Article {
        title,
        url,
        publish_date: date,
        publish_type,
        target_user,
        has_recommend_fields: date >= ymd(2018, 1, 1) && g.chance(0.75),
        total_user_source: (date >= ymd(2019, 1, 1) && g.chance(0.5)).then_some(0),
        total_has_url: date >= ymd(2017, 1, 1) && g.chance(0.6),
        position_factor: if position == 1 {
            1.0
        } else {
            g.between(0.15, 0.45)
        },
        appeal: g.between(0.35, 1.0) * g.between(0.5, 2.5),
        has_ori: g.chance(0.15),
        finish_rate: g.between(0.3, 0.85),
        activetime: g.between(0.3, 3.5),
        jumps,
        msgid,
        msg_data_id,
        idx,
    }
}

// ---------------------------------------------------------------------------
// Daily activity

/// What happened to one article (or the whole account) on one day.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Activity {
    /// Readers of the article page.
    pub read_user: i64,
    /// Reads of the article page.
    pub read_count: i64,
    /// Readers of the original ("read more") page.
    pub ori_user: i64,
    /// Reads of the original page.
    pub ori_count: i64,
    /// People who shared.
    pub share_user: i64,
    /// Shares.
    pub share_count: i64,
    /// People who added it to favourites.
    pub fav_user: i64,
    /// Favourite additions.
    pub fav_count: i64,
    /// Readers by channel: session, hist_msg, feed, friends, other, kanyikan, souyisou.
    pub src_user: [i64; 7],
    /// Reads by channel, same order.
    pub src_count: [i64; 7],
    /// People who shared to Moments, by where they read it: session, feed, other.
    pub feed_share_user: [i64; 3],
    /// Shares to Moments, same order.
    pub feed_share_cnt: [i64; 3],
    /// "在看" (wow) users.
    pub zaikan: i64,
    /// Likes.
    pub like: i64,
    /// Comments.
    pub comment: i64,
    /// Tips, in fen.
    pub praise_money: i64,
    /// Readers who followed after reading.
    pub subscribe: i64,
}

impl Activity {
    fn add(&mut self, o: &Activity) {
        self.read_user += o.read_user;
        self.read_count += o.read_count;
        self.ori_user += o.ori_user;
        self.ori_count += o.ori_count;
        self.share_user += o.share_user;
        self.share_count += o.share_count;
        self.fav_user += o.fav_user;
        self.fav_count += o.fav_count;
        for i in 0..7 {
            self.src_user[i] += o.src_user[i];
            self.src_count[i] += o.src_count[i];
        }
        for i in 0..3 {
            self.feed_share_user[i] += o.feed_share_user[i];
            self.feed_share_cnt[i] += o.feed_share_cnt[i];
        }
        self.zaikan += o.zaikan;
        self.like += o.like;
        self.comment += o.comment;
        self.praise_money += o.praise_money;
        self.subscribe += o.subscribe;
    }

    /// The getarticlesummary threshold: recorded only when activity reaches 3.
    fn summary_activity(&self) -> i64 {
        self.read_user + self.ori_user + self.share_user + self.fav_user
    }

    /// The eight scenes of the current endpoints. They overlap like the live
    /// ones: each is its own count, not a share of 全部.
    fn scenes(&self) -> Vec<Scene> {
        let s = &self.src_user;
        vec![
            (SCENES[0], s[0]),
            (SCENES[1], s[1]),
            (SCENES[2], self.read_user),
            (SCENES[3], s[3]),
            (SCENES[4], s[2]),
            (SCENES[5], s[4]),
            (SCENES[6], s[5]),
            (SCENES[7], s[6]),
        ]
    }
}

fn activity_from(g: &mut Gen, expected_reads: f64, has_ori: bool, weights: [f64; 7]) -> Activity {
    let read_user = g.round(expected_reads);
    let mut a = Activity {
        read_user,
        ..Activity::default()
    };
    if read_user == 0 {
        return a;
    }
    let r = read_user as f64;
    a.read_count = read_user + g.scaled(r, 0.08, 0.35);
    if has_ori {
        a.ori_user = g.scaled(r, 0.01, 0.06);
        a.ori_count = a.ori_user + g.scaled(a.ori_user as f64, 0.0, 0.3);
    }
    a.share_user = g.scaled(r, 0.015, 0.07);
    a.share_count = a.share_user + g.scaled(a.share_user as f64, 0.0, 0.5);
    a.fav_user = g.scaled(r, 0.004, 0.02);
    a.fav_count = a.fav_user + g.scaled(a.fav_user as f64, 0.0, 0.2);
    for (i, w) in weights.iter().enumerate() {
        let u = g.scaled(r * w, 0.7, 1.3);
        a.src_user[i] = u;
        a.src_count[i] = u + g.scaled(u as f64, 0.05, 0.3);
    }
    let to_moments = a.share_user as f64 * g.between(0.3, 0.5);
    for (i, w) in [0.6, 0.3, 0.1].iter().enumerate() {
        let u = g.round(to_moments * w);
        a.feed_share_user[i] = u;
        a.feed_share_cnt[i] = u + g.scaled(u as f64, 0.0, 0.3);
    }
    a.zaikan = g.scaled(r, 0.004, 0.02);
    a.like = g.scaled(r, 0.01, 0.04);
    a.comment = g.scaled(r, 0.001, 0.006);
    if g.chance(0.03) {
        a.praise_money = g.range(100, 6600);
    }
    a.subscribe = g.scaled(r, 0.001, 0.008);
    a
}

/// Share of a day's reads by days since sending (day 0 = the send date).
fn decay(k: i64) -> f64 {
    const FIRST_WEEK: [f64; 7] = [0.55, 0.22, 0.09, 0.045, 0.025, 0.015, 0.01];
    match usize::try_from(k) {
        Ok(i) if i < FIRST_WEEK.len() => FIRST_WEEK[i],
        Ok(_) => 0.06 / (k * k) as f64,
        Err(_) => 0.0,
    }
}

/// How many days after sending an article still gets reads.
const ACTIVE_DAYS: i64 = 30;

const ARTICLE_WEIGHTS: [f64; 7] = [0.55, 0.06, 0.14, 0.16, 0.04, 0.03, 0.02];
const BASELINE_WEIGHTS: [f64; 7] = [0.05, 0.45, 0.05, 0.1, 0.15, 0.05, 0.15];

/// One article's activity on `date` (all zero outside its 30 active days).
pub fn article_activity(appid: &str, article: &Article, date: NaiveDate) -> Activity {
    let k = (date - article.publish_date).num_days();
    if !(0..ACTIVE_DAYS).contains(&k) {
        return Activity::default();
    }
    let profile = Profile::of(appid);
    let mut g = Gen::new(&["activity", appid, &article.msgid, &fmt_date(date)]);
    let expected = article.target_user as f64
        * profile.open_rate
        * article.position_factor
        * article.appeal
        * decay(k)
        * g.between(0.8, 1.2);
    activity_from(&mut g, expected, article.has_ori, ARTICLE_WEIGHTS)
}

/// Memoises broadcasts and day totals within one generation call: a range
/// request looks at the same 30-day window many times.
struct Ctx<'a> {
    appid: &'a str,
    broadcasts: HashMap<NaiveDate, Rc<Vec<Article>>>,
    totals: HashMap<NaiveDate, Activity>,
}

impl<'a> Ctx<'a> {
    fn new(appid: &'a str) -> Ctx<'a> {
        Ctx {
            appid,
            broadcasts: HashMap::new(),
            totals: HashMap::new(),
        }
    }

    fn broadcast(&mut self, date: NaiveDate) -> Rc<Vec<Article>> {
        let appid = self.appid;
        self.broadcasts
            .entry(date)
            .or_insert_with(|| Rc::new(broadcast(appid, date)))
            .clone()
    }

    /// Articles sent in the `window` days up to and including `date`, oldest first.
    fn recent(&mut self, date: NaiveDate, window: i64) -> Vec<Article> {
        let mut out = Vec::new();
        for back in (0..window).rev() {
            let d = date - Days::new(back as u64);
            out.extend(self.broadcast(d).iter().cloned());
        }
        out
    }

    /// The whole account's activity on `date`: every recent article plus
    /// reads of older pages (history, search).
    fn totals(&mut self, date: NaiveDate) -> Activity {
        if let Some(t) = self.totals.get(&date) {
            return *t;
        }
        let mut total = {
            let profile = Profile::of(self.appid);
            let mut g = Gen::new(&["baseline", self.appid, &fmt_date(date)]);
            let expected = profile.followers(date) as f64 * g.between(0.002, 0.01);
            activity_from(&mut g, expected, false, BASELINE_WEIGHTS)
        };
        for article in self.recent(date, ACTIVE_DAYS) {
            total.add(&article_activity(self.appid, &article, date));
        }
        self.totals.insert(date, total);
        total
    }
}

/// Relative reading activity per hour of a China day, with per-day noise.
fn hour_weights(appid: &str, date: NaiveDate) -> [f64; 24] {
    const SHAPE: [f64; 24] = [
        0.020, 0.010, 0.005, 0.003, 0.002, 0.004, 0.015, 0.045, 0.070, 0.060, 0.055, 0.055, 0.065,
        0.050, 0.045, 0.045, 0.045, 0.050, 0.055, 0.060, 0.065, 0.075, 0.070, 0.041,
    ];
    let mut g = Gen::new(&["hours", appid, &fmt_date(date)]);
    let mut w = [0.0; 24];
    for (h, s) in SHAPE.iter().enumerate() {
        w[h] = s * g.between(0.6, 1.4);
    }
    let sum: f64 = w.iter().sum();
    w.map(|x| x / sum)
}

// ---------------------------------------------------------------------------
// Typed rows

/// A getarticlesummary row.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    /// The day read.
    pub ref_date: NaiveDate,
    /// The article.
    pub article: Article,
    /// Counters present.
    pub counters: Counters,
}

/// A getarticletotal item (ref_date = the article's send date).
#[derive(Clone, Debug)]
pub struct TotalItem {
    /// The article.
    pub article: Article,
    /// Undocumented `user_source`, when present.
    pub user_source: Option<i64>,
    /// `url`, when present.
    pub url: Option<String>,
    /// Cumulative details, one per stat_date.
    pub details: Vec<(NaiveDate, Counters)>,
}

/// A getuserread or getuserreadhour row.
#[derive(Clone, Debug)]
pub struct ReadRow {
    /// The day.
    pub ref_date: NaiveDate,
    /// HHMM hour (hourly endpoint only).
    pub ref_hour: Option<i64>,
    /// Absent before 2020-02-28.
    pub user_source: Option<i64>,
    /// Counters present (subsets differ per source).
    pub counters: Counters,
}

/// A getusershare or getusersharehour row.
#[derive(Clone, Debug)]
pub struct ShareRow {
    /// The day.
    pub ref_date: NaiveDate,
    /// HHMM hour (hourly endpoint only).
    pub ref_hour: Option<i64>,
    /// 1, 2, 3, 255 or 5.
    pub share_scene: i64,
    /// Shares.
    pub share_count: i64,
    /// Sharers.
    pub share_user: i64,
}

/// A getarticleread row.
#[derive(Clone, Debug)]
pub struct ArticleReadRow {
    /// The day read.
    pub ref_date: NaiveDate,
    /// The article.
    pub article: Article,
    /// Readers that day.
    pub read_user: i64,
    /// All eight scenes.
    pub sources: Vec<Scene>,
}

/// A getarticleshare row.
#[derive(Clone, Debug)]
pub struct ArticleShareRow {
    /// The day shared.
    pub ref_date: NaiveDate,
    /// The article.
    pub article: Article,
    /// Sharers that day.
    pub share_user: i64,
}

/// A getbizsummary row.
#[derive(Clone, Debug)]
pub struct BizRow {
    /// The day.
    pub ref_date: NaiveDate,
    /// Counters present.
    pub counters: Counters,
    /// All eight scenes.
    pub sources: Vec<Scene>,
}

/// One `detail_list` entry of getarticletotaldetail (cumulative).
#[derive(Clone, Debug)]
pub struct DetailEntry {
    /// Cumulative up to this day.
    pub stat_date: NaiveDate,
    /// Integer fields present.
    pub counters: Counters,
    /// Float fields present (rates, activetime).
    pub floats: Vec<(&'static str, f64)>,
    /// All eight scenes.
    pub sources: Vec<Scene>,
    /// `read_jump_position` (position, rate), when present.
    pub jumps: Option<Vec<(i64, f64)>>,
}

/// A getarticletotaldetail item (ref_date = publish date).
#[derive(Clone, Debug)]
pub struct DetailItem {
    /// The article.
    pub article: Article,
    /// Cumulative entries.
    pub details: Vec<DetailEntry>,
}

/// The typed answer of one endpoint over a date range.
#[derive(Clone, Debug)]
pub enum Rows {
    /// getarticlesummary
    Summary(Vec<SummaryRow>),
    /// getarticletotal
    Total(Vec<TotalItem>),
    /// getuserread / getuserreadhour
    Read(Vec<ReadRow>),
    /// getusershare / getusersharehour
    Share(Vec<ShareRow>),
    /// getarticleread
    ArticleRead(Vec<ArticleReadRow>),
    /// getarticleshare
    ArticleShare(Vec<ArticleShareRow>),
    /// getbizsummary
    Biz(Vec<BizRow>),
    /// getarticletotaldetail
    Detail(Vec<DetailItem>),
    /// getusersummary / getusercumulate: already the wire items (`followers`).
    Json(Vec<Value>),
}

impl Rows {
    /// Number of top-level list items.
    pub fn len(&self) -> usize {
        match self {
            Rows::Summary(v) => v.len(),
            Rows::Total(v) => v.len(),
            Rows::Read(v) => v.len(),
            Rows::Share(v) => v.len(),
            Rows::ArticleRead(v) => v.len(),
            Rows::ArticleShare(v) => v.len(),
            Rows::Biz(v) => v.len(),
            Rows::Detail(v) => v.len(),
            Rows::Json(v) => v.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn empty(endpoint: Endpoint) -> Rows {
        match endpoint {
            Endpoint::ArticleSummary => Rows::Summary(Vec::new()),
            Endpoint::ArticleTotal => Rows::Total(Vec::new()),
            Endpoint::UserRead | Endpoint::UserReadHour => Rows::Read(Vec::new()),
            Endpoint::UserShare | Endpoint::UserShareHour => Rows::Share(Vec::new()),
            Endpoint::ArticleRead => Rows::ArticleRead(Vec::new()),
            Endpoint::ArticleShare => Rows::ArticleShare(Vec::new()),
            Endpoint::BizSummary => Rows::Biz(Vec::new()),
            Endpoint::ArticleTotalDetail => Rows::Detail(Vec::new()),
            // The catalogue is paged (`catalogue`), never generated by dates.
            Endpoint::UserSummary | Endpoint::UserCumulate | Endpoint::Freepublish => {
                Rows::Json(Vec::new())
            }
        }
    }
}

/// The typed rows of `endpoint` over begin..=end (no validation: callers
/// validate; the oracle and the size estimate call it on any range).
pub fn generate(
    appid: &str,
    endpoint: Endpoint,
    begin: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> Rows {
    if let Some(items) = super::followers::items(endpoint.name(), appid, begin, end) {
        return Rows::Json(items);
    }
    let mut ctx = Ctx::new(appid);
    let mut rows = Rows::empty(endpoint);
    for day in days(begin, end) {
        match (&mut rows, endpoint) {
            (Rows::Summary(v), _) => v.extend(summary_day(&mut ctx, day)),
            (Rows::Total(v), _) => v.extend(total_day(&mut ctx, day, today)),
            (Rows::Read(v), Endpoint::UserRead) => v.extend(read_day(&mut ctx, day)),
            (Rows::Read(v), _) => v.extend(read_hour_day(&mut ctx, day)),
            (Rows::Share(v), Endpoint::UserShare) => v.extend(share_day(&mut ctx, day)),
            (Rows::Share(v), _) => v.extend(share_hour_day(&mut ctx, day)),
            (Rows::ArticleRead(v), _) => v.extend(article_read_day(&mut ctx, day)),
            (Rows::ArticleShare(v), _) => v.extend(article_share_day(&mut ctx, day)),
            (Rows::Biz(v), _) => v.push(biz_day(&mut ctx, day)),
            (Rows::Detail(v), _) => v.extend(detail_day(&mut ctx, day, today)),
            (Rows::Json(_), _) => {}
        }
    }
    rows
}

fn counters8(a: &Activity) -> [(&'static str, i64); 8] {
    [
        ("int_page_read_user", a.read_user),
        ("int_page_read_count", a.read_count),
        ("ori_page_read_user", a.ori_user),
        ("ori_page_read_count", a.ori_count),
        ("share_user", a.share_user),
        ("share_count", a.share_count),
        ("add_to_fav_user", a.fav_user),
        ("add_to_fav_count", a.fav_count),
    ]
}

fn summary_day(ctx: &mut Ctx, day: NaiveDate) -> Vec<SummaryRow> {
    // getarticlesummary covers the articles of the last week that reached
    // the activity threshold on `day`.
    let mut rows = Vec::new();
    for article in ctx.recent(day, 7) {
        let a = article_activity(ctx.appid, &article, day);
        if a.summary_activity() < 3 {
            continue;
        }
        let mut g = Gen::new(&["summary-fields", ctx.appid, &article.msgid, &fmt_date(day)]);
        let drop_fav = g.chance(0.05);
        let counters = counters8(&a)
            .into_iter()
            .filter(|(name, _)| !(drop_fav && name.starts_with("add_to_fav")))
            .collect();
        rows.push(SummaryRow {
            ref_date: day,
            article,
            counters,
        });
    }
    rows
}

/// Last stat_date of a cumulative list: `max_days` after sending, never today or later.
fn last_stat_date(publish: NaiveDate, max_days: u64, today: NaiveDate) -> NaiveDate {
    (publish + Days::new(max_days - 1)).min(today - Days::new(1))
}

fn total_day(ctx: &mut Ctx, day: NaiveDate, today: NaiveDate) -> Vec<TotalItem> {
    let articles = ctx.broadcast(day);
    articles
        .iter()
        .map(|article| {
            let mut details = Vec::new();
            let mut running = Activity::default();
            for stat in days(day, last_stat_date(day, 7, today)) {
                running.add(&article_activity(ctx.appid, article, stat));
                let a = &running;
                let mut c: Counters = vec![("target_user", article.target_user)];
                c.extend(counters8(a));
                const SRC: [&str; 7] = [
                    "session", "hist_msg", "feed", "friends", "other", "kanyikan", "souyisou",
                ];
                for (i, name) in SRC.iter().enumerate() {
                    if i >= 5 && !article.has_recommend_fields {
                        continue;
                    }
                    c.push((src_field(name, "user"), a.src_user[i]));
                    c.push((src_field(name, "count"), a.src_count[i]));
                }
                for (i, name) in ["session", "feed", "other"].iter().enumerate() {
                    c.push((feed_field(name, "user"), a.feed_share_user[i]));
                    c.push((feed_field(name, "cnt"), a.feed_share_cnt[i]));
                }
                details.push((stat, c));
            }
            TotalItem {
                article: article.clone(),
                user_source: article.total_user_source,
                url: article.total_has_url.then(|| article.url.clone()),
                details,
            }
        })
        .collect()
}

/// `int_page_from_{src}_read_{kind}` as a static name (the Counters type
/// keeps names static so rows stay cheap to build).
fn src_field(src: &str, kind: &str) -> &'static str {
    match (src, kind) {
        ("session", "user") => "int_page_from_session_read_user",
        ("session", _) => "int_page_from_session_read_count",
        ("hist_msg", "user") => "int_page_from_hist_msg_read_user",
        ("hist_msg", _) => "int_page_from_hist_msg_read_count",
        ("feed", "user") => "int_page_from_feed_read_user",
        ("feed", _) => "int_page_from_feed_read_count",
        ("friends", "user") => "int_page_from_friends_read_user",
        ("friends", _) => "int_page_from_friends_read_count",
        ("other", "user") => "int_page_from_other_read_user",
        ("other", _) => "int_page_from_other_read_count",
        ("kanyikan", "user") => "int_page_from_kanyikan_read_user",
        ("kanyikan", _) => "int_page_from_kanyikan_read_count",
        ("souyisou", "user") => "int_page_from_souyisou_read_user",
        _ => "int_page_from_souyisou_read_count",
    }
}

fn feed_field(src: &str, kind: &str) -> &'static str {
    match (src, kind) {
        ("session", "user") => "feed_share_from_session_user",
        ("session", _) => "feed_share_from_session_cnt",
        ("feed", "user") => "feed_share_from_feed_user",
        ("feed", _) => "feed_share_from_feed_cnt",
        ("other", "user") => "feed_share_from_other_user",
        _ => "feed_share_from_other_cnt",
    }
}

/// The per-source view of a day's (or hour's) totals for getuserread*.
/// Index into Activity::src_* for each user_source 0..7 (3, Tencent Weibo, is dead: None).
const SOURCE_CHANNEL: [Option<usize>; 8] = [
    Some(0),
    Some(3),
    Some(2),
    None,
    Some(1),
    Some(4),
    Some(5),
    Some(6),
];

/// Which of the 8 counters a user_source row carries (live rows differ per source).
fn source_has(source: i64, field: &str) -> bool {
    let ori = field.starts_with("ori_page");
    let fav = field.starts_with("add_to_fav");
    let share = field.starts_with("share");
    match source {
        1 | 2 => !ori,
        3 => !(ori || fav || share),
        4 => !(ori || fav),
        6 | 7 => !(ori || fav),
        _ => true,
    }
}

/// Scaling and rounding each counter on its own can leave a count below its
/// user count (1 sharer, 0 shares); the API never does that.
fn counts_cover_users(c: &mut Counters) {
    for (user, count) in [
        ("int_page_read_user", "int_page_read_count"),
        ("ori_page_read_user", "ori_page_read_count"),
        ("share_user", "share_count"),
        ("add_to_fav_user", "add_to_fav_count"),
    ] {
        let u = c.iter().find(|(n, _)| *n == user).map(|(_, v)| *v);
        if let (Some(u), Some(slot)) = (u, c.iter_mut().find(|(n, _)| *n == count)) {
            slot.1 = slot.1.max(u);
        }
    }
}

/// Rows for getuserread(hour) from a day's or an hour's totals `t` scaled by `scale`.
fn read_rows(
    g: &mut Gen,
    t: &Activity,
    scale: f64,
    ref_date: NaiveDate,
    ref_hour: Option<i64>,
    hourly: bool,
) -> Vec<ReadRow> {
    let mut all: Counters = counters8(t)
        .into_iter()
        .map(|(n, v)| (n, g.round(v as f64 * scale)))
        .collect();
    counts_cover_users(&mut all);
    if hourly && all.iter().all(|(_, v)| *v == 0) {
        return Vec::new();
    }
    if ref_date < user_source_cutover() {
        return vec![ReadRow {
            ref_date,
            ref_hour,
            user_source: None,
            counters: all,
        }];
    }
    let mut rows = vec![ReadRow {
        ref_date,
        ref_hour,
        user_source: Some(99_999_999),
        counters: all,
    }];
    for (code, channel) in SOURCE_CHANNEL.iter().enumerate() {
        let code = code as i64;
        let (users, reads) = match channel {
            Some(c) => (
                g.round(t.src_user[*c] as f64 * scale),
                g.round(t.src_count[*c] as f64 * scale),
            ),
            None => (0, 0),
        };
        // Hourly rows list only the sources with readers that hour.
        if hourly && users == 0 {
            continue;
        }
        // Other counters follow the source's share of the day's readers.
        let frac = match channel {
            Some(c) if t.read_user > 0 => t.src_user[*c] as f64 / t.read_user as f64,
            _ => 0.0,
        };
        let mut counters: Counters = counters8(t)
            .into_iter()
            .filter(|(n, _)| source_has(code, n))
            .map(|(n, v)| match n {
                "int_page_read_user" => (n, users),
                "int_page_read_count" => (n, reads.max(users)),
                _ => (n, g.round(v as f64 * scale * frac)),
            })
            .collect();
        counts_cover_users(&mut counters);
        rows.push(ReadRow {
            ref_date,
            ref_hour,
            user_source: Some(code),
            counters,
        });
    }
    rows
}

fn read_day(ctx: &mut Ctx, day: NaiveDate) -> Vec<ReadRow> {
    let t = ctx.totals(day);
    let mut g = Gen::new(&["read-day", ctx.appid, &fmt_date(day)]);
    read_rows(&mut g, &t, 1.0, day, None, false)
}

fn read_hour_day(ctx: &mut Ctx, day: NaiveDate) -> Vec<ReadRow> {
    let t = ctx.totals(day);
    let w = hour_weights(ctx.appid, day);
    let mut g = Gen::new(&["read-hour", ctx.appid, &fmt_date(day)]);
    (0..24)
        .flat_map(|h| read_rows(&mut g, &t, w[h], day, Some(h as i64 * 100), true))
        .collect()
}

/// (scene, share_count) totals of a day.
fn share_scenes(ctx: &mut Ctx, day: NaiveDate) -> Vec<(i64, i64)> {
    let t = ctx.totals(day);
    let mut g = Gen::new(&["share-scenes", ctx.appid, &fmt_date(day)]);
    let total = t.share_count as f64;
    let mut out = Vec::new();
    let mut push = |g: &mut Gen, scene: i64, w: f64| {
        let c = g.scaled(total * w, 0.7, 1.3);
        if c > 0 {
            out.push((scene, c));
        }
    };
    push(&mut g, 1, 0.55);
    push(&mut g, 2, 0.30);
    if day < user_source_cutover() && g.chance(0.2) {
        push(&mut g, 3, 0.03);
    }
    // Scene 5 is undocumented but seen live.
    if g.chance(0.15) {
        push(&mut g, 5, 0.08);
    }
    push(&mut g, 255, 0.08);
    out
}

fn sharers(g: &mut Gen, count: i64) -> i64 {
    g.scaled(count as f64, 0.6, 0.95).clamp(1, count)
}

fn share_day(ctx: &mut Ctx, day: NaiveDate) -> Vec<ShareRow> {
    let mut g = Gen::new(&["share-day", ctx.appid, &fmt_date(day)]);
    share_scenes(ctx, day)
        .into_iter()
        .map(|(scene, count)| ShareRow {
            ref_date: day,
            ref_hour: None,
            share_scene: scene,
            share_count: count,
            share_user: sharers(&mut g, count),
        })
        .collect()
}

fn share_hour_day(ctx: &mut Ctx, day: NaiveDate) -> Vec<ShareRow> {
    let scenes = share_scenes(ctx, day);
    let w = hour_weights(ctx.appid, day);
    let mut g = Gen::new(&["share-hour", ctx.appid, &fmt_date(day)]);
    let mut rows = Vec::new();
    for (h, wh) in w.iter().enumerate() {
        for (scene, count) in &scenes {
            let c = g.round(*count as f64 * wh);
            if c > 0 {
                rows.push(ShareRow {
                    ref_date: day,
                    ref_hour: Some(h as i64 * 100),
                    share_scene: *scene,
                    share_count: c,
                    share_user: sharers(&mut g, c),
                });
            }
        }
    }
    rows
}

fn article_read_day(ctx: &mut Ctx, day: NaiveDate) -> Vec<ArticleReadRow> {
    ctx.recent(day, ACTIVE_DAYS)
        .into_iter()
        .filter_map(|article| {
            let a = article_activity(ctx.appid, &article, day);
            (a.read_user > 0).then(|| ArticleReadRow {
                ref_date: day,
                read_user: a.read_user,
                sources: a.scenes(),
                article,
            })
        })
        .collect()
}

fn article_share_day(ctx: &mut Ctx, day: NaiveDate) -> Vec<ArticleShareRow> {
    ctx.recent(day, ACTIVE_DAYS)
        .into_iter()
        .filter_map(|article| {
            let a = article_activity(ctx.appid, &article, day);
            (a.share_user > 0).then_some(ArticleShareRow {
                ref_date: day,
                share_user: a.share_user,
                article,
            })
        })
        .collect()
}

fn biz_day(ctx: &mut Ctx, day: NaiveDate) -> BizRow {
    let t = ctx.totals(day);
    let sent = ctx.broadcast(day).len() as i64;
    let mut g = Gen::new(&["biz-fields", ctx.appid, &fmt_date(day)]);
    let mut counters: Counters = vec![
        ("read_user", t.read_user),
        ("share_user", t.share_user),
        ("zaikan_user", t.zaikan),
        ("like_user", t.like),
    ];
    if !g.chance(0.05) {
        counters.push(("comment_count", t.comment));
    }
    counters.push(("collection_user", t.fav_user));
    if !g.chance(0.2) {
        counters.push(("redirect_ori_page_user", t.ori_user));
    }
    counters.push(("send_page_count", sent));
    BizRow {
        ref_date: day,
        counters,
        sources: t.scenes(),
    }
}

fn detail_day(ctx: &mut Ctx, day: NaiveDate, today: NaiveDate) -> Vec<DetailItem> {
    let articles = ctx.broadcast(day);
    articles
        .iter()
        .map(|article| {
            let mut details = Vec::new();
            let mut running = Activity::default();
            for stat in days(day, last_stat_date(day, ACTIVE_DAYS as u64, today)) {
                running.add(&article_activity(ctx.appid, article, stat));
                details.push(detail_entry(ctx.appid, article, stat, &running));
            }
            DetailItem {
                article: article.clone(),
                details,
            }
        })
        .collect()
}

fn detail_entry(appid: &str, article: &Article, stat: NaiveDate, a: &Activity) -> DetailEntry {
    let mut g = Gen::new(&["detail", appid, &article.msgid, &fmt_date(stat)]);
    let mut counters: Counters = vec![("read_user", a.read_user), ("share_user", a.share_user)];
    if !g.chance(0.05) {
        counters.push(("zaikan_user", a.zaikan));
    }
    counters.push(("like_user", a.like));
    counters.push(("comment_count", a.comment));
    counters.push(("collection_user", a.fav_user));
    if !g.chance(0.15) {
        counters.push(("praise_money", a.praise_money));
    }
    if !g.chance(0.05) {
        counters.push(("read_subscribe_user", a.subscribe));
    }
    let read = a.read_user > 0;
    let delivery = a.read_user as f64 / article.target_user.max(1) as f64;
    let finish = if read {
        (article.finish_rate + g.between(-0.03, 0.03)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let activetime = if read {
        article.activetime * g.between(0.95, 1.05)
    } else {
        0.0
    };
    let floats = vec![
        ("read_delivery_rate", f32ish(delivery)),
        ("read_finish_rate", f32ish(finish)),
        ("read_avg_activetime", f32ish(activetime)),
    ];
    let jumps = (!g.chance(0.08)).then(|| {
        let sum: f64 = article.jumps.iter().sum();
        (1..=5)
            .map(|p| {
                let rate = if read {
                    f32ish(article.jumps[p - 1] / sum)
                } else {
                    0.0
                };
                (p as i64, rate)
            })
            .collect()
    });
    DetailEntry {
        stat_date: stat,
        counters,
        floats,
        sources: a.scenes(),
        jumps,
    }
}

// ---------------------------------------------------------------------------
// Wire JSON

fn put_counters(m: &mut Map<String, Value>, counters: &Counters) {
    for (name, v) in counters {
        m.insert((*name).to_string(), json!(v));
    }
}

fn scenes_json(sources: &[Scene]) -> Value {
    Value::Array(
        sources
            .iter()
            .map(|(desc, n)| json!({"user_count": n, "scene_desc": desc}))
            .collect(),
    )
}

/// A float as the live API writes it: whole numbers without a fraction (the
/// live sample has `"rate":0` and `"rate":1`), anything else as a float.
fn float_json(x: f64) -> Value {
    if x == x.trunc() && x.abs() < 1e15 {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The JSON list items of `rows`.
pub fn to_json(rows: &Rows) -> Vec<Value> {
    match rows {
        Rows::Json(v) => v.clone(),
        Rows::Summary(v) => v
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("ref_date".into(), json!(fmt_date(r.ref_date)));
                m.insert("msgid".into(), json!(r.article.msgid));
                m.insert("title".into(), json!(r.article.title));
                put_counters(&mut m, &r.counters);
                Value::Object(m)
            })
            .collect(),
        Rows::Total(v) => v
            .iter()
            .map(|item| {
                let mut m = Map::new();
                m.insert(
                    "ref_date".into(),
                    json!(fmt_date(item.article.publish_date)),
                );
                m.insert("msgid".into(), json!(item.article.msgid));
                m.insert("title".into(), json!(item.article.title));
                if let Some(s) = item.user_source {
                    m.insert("user_source".into(), json!(s));
                }
                if let Some(u) = &item.url {
                    m.insert("url".into(), json!(u));
                }
                let details: Vec<Value> = item
                    .details
                    .iter()
                    .map(|(stat, c)| {
                        let mut d = Map::new();
                        d.insert("stat_date".into(), json!(fmt_date(*stat)));
                        put_counters(&mut d, c);
                        Value::Object(d)
                    })
                    .collect();
                m.insert("details".into(), Value::Array(details));
                Value::Object(m)
            })
            .collect(),
        Rows::Read(v) => v
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("ref_date".into(), json!(fmt_date(r.ref_date)));
                if let Some(h) = r.ref_hour {
                    m.insert("ref_hour".into(), json!(h));
                }
                if let Some(s) = r.user_source {
                    m.insert("user_source".into(), json!(s));
                }
                put_counters(&mut m, &r.counters);
                Value::Object(m)
            })
            .collect(),
        Rows::Share(v) => v
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("ref_date".into(), json!(fmt_date(r.ref_date)));
                if let Some(h) = r.ref_hour {
                    m.insert("ref_hour".into(), json!(h));
                }
                m.insert("share_scene".into(), json!(r.share_scene));
                m.insert("share_count".into(), json!(r.share_count));
                m.insert("share_user".into(), json!(r.share_user));
                Value::Object(m)
            })
            .collect(),
        Rows::ArticleRead(v) => v
            .iter()
            .map(|r| {
                json!({
                    "ref_date": fmt_date(r.ref_date),
                    "msgid": r.article.msgid,
                    "detail": {
                        "read_user": r.read_user,
                        "read_user_source": scenes_json(&r.sources),
                    }
                })
            })
            .collect(),
        Rows::ArticleShare(v) => v
            .iter()
            .map(|r| {
                json!({
                    "ref_date": fmt_date(r.ref_date),
                    "msgid": r.article.msgid,
                    "detail": {"share_user": r.share_user}
                })
            })
            .collect(),
        Rows::Biz(v) => v
            .iter()
            .map(|r| {
                let mut d = Map::new();
                put_counters(&mut d, &r.counters);
                d.insert("read_user_source".into(), scenes_json(&r.sources));
                json!({"ref_date": fmt_date(r.ref_date), "detail": Value::Object(d)})
            })
            .collect(),
        Rows::Detail(v) => v
            .iter()
            .map(|item| {
                let details: Vec<Value> = item
                    .details
                    .iter()
                    .map(|e| {
                        let mut d = Map::new();
                        d.insert("stat_date".into(), json!(fmt_date(e.stat_date)));
                        put_counters(&mut d, &e.counters);
                        for (name, x) in &e.floats {
                            d.insert((*name).to_string(), json!(x));
                        }
                        d.insert("read_user_source".into(), scenes_json(&e.sources));
                        if let Some(jumps) = &e.jumps {
                            let arr: Vec<Value> = jumps
                                .iter()
                                .map(|(p, r)| json!({"position": p, "rate": float_json(*r)}))
                                .collect();
                            d.insert("read_jump_position".into(), Value::Array(arr));
                        }
                        Value::Object(d)
                    })
                    .collect();
                json!({
                    "ref_date": fmt_date(item.article.publish_date),
                    "msgid": item.article.msgid,
                    "publish_type": item.article.publish_type,
                    "title": item.article.title,
                    "content_url": item.article.url,
                    "detail_list": details,
                })
            })
            .collect(),
    }
}

/// The success body (a serde_json::Value with "list", plus "is_delay": false
/// for the current four) that the simulator returns for a valid request,
/// fault-free, given "today" in China.
pub fn response(
    appid: &str,
    endpoint: Endpoint,
    begin: NaiveDate,
    end: NaiveDate,
    today: NaiveDate,
) -> Value {
    let list = to_json(&generate(appid, endpoint, begin, end, today));
    if endpoint.reports_delay() {
        json!({ "list": list, "is_delay": false })
    } else {
        json!({ "list": list })
    }
}
