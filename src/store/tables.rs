//! The data tables of the contract, described once, so that one generic upsert
//! serves every endpoint.

/// How a re-fetched row merges with the stored one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The latest response wins, absent fields included (they become NULL):
    /// counters must reflect exactly what WeChat last said.
    Replace,
    /// The latest non-null value wins: a response that omits a title must not
    /// erase the one an earlier response gave (the `articles` table).
    KeepNonNull,
}

/// One table: its key columns, its other columns, and how rows merge.
#[derive(Debug)]
pub struct TableDef {
    pub name: &'static str,
    pub keys: &'static [&'static str],
    pub columns: &'static [&'static str],
    pub merge: Merge,
}

impl TableDef {
    /// Every column, keys first, in the order `Row::values` uses.
    pub fn all_columns(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.keys.iter().chain(self.columns.iter()).copied()
    }

    /// Position of `column` in `all_columns()`.
    pub fn position(&self, column: &str) -> Option<usize> {
        self.all_columns().position(|c| c == column)
    }

    /// Number of columns.
    pub fn width(&self) -> usize {
        self.keys.len() + self.columns.len()
    }
}

/// The eight counters shared by summaries and read statistics.
pub const READ_COUNTERS: [&str; 8] = [
    "int_page_read_user",
    "int_page_read_count",
    "ori_page_read_user",
    "ori_page_read_count",
    "share_user",
    "share_count",
    "add_to_fav_user",
    "add_to_fav_count",
];

/// The extra counters of getarticletotal's `details`.
pub const TOTAL_SOURCE_COUNTERS: [&str; 20] = [
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
    "feed_share_from_session_cnt",
    "feed_share_from_feed_user",
    "feed_share_from_feed_cnt",
    "feed_share_from_other_user",
    "feed_share_from_other_cnt",
];

/// Integer columns of getbizsummary's `detail`.
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

/// Integer columns of getarticletotaldetail's `detail_list` entries.
pub const DETAIL_INT_COUNTERS: [&str; 8] = [
    "read_user",
    "share_user",
    "zaikan_user",
    "like_user",
    "comment_count",
    "collection_user",
    "praise_money",
    "read_subscribe_user",
];

/// Float columns of getarticletotaldetail's `detail_list` entries.
pub const DETAIL_REAL_COUNTERS: [&str; 3] = [
    "read_delivery_rate",
    "read_finish_rate",
    "read_avg_activetime",
];

pub static ARTICLES: TableDef = TableDef {
    name: "articles",
    keys: &["appid", "msgid"],
    columns: &[
        "msg_data_id",
        "idx",
        "title",
        "url",
        "publish_date",
        "publish_type",
        "url_key",
    ],
    merge: Merge::KeepNonNull,
};

pub static ARTICLE_DAILY: TableDef = TableDef {
    name: "article_daily",
    keys: &["appid", "ref_date", "msgid"],
    columns: &READ_COUNTERS,
    merge: Merge::Replace,
};

pub static ARTICLE_TOTAL: TableDef = TableDef {
    name: "article_total",
    keys: &["appid", "msgid", "stat_date"],
    columns: &[
        "ref_date",
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
        "feed_share_from_session_cnt",
        "feed_share_from_feed_user",
        "feed_share_from_feed_cnt",
        "feed_share_from_other_user",
        "feed_share_from_other_cnt",
    ],
    merge: Merge::Replace,
};

pub static USER_READ_DAILY: TableDef = TableDef {
    name: "user_read_daily",
    keys: &["appid", "ref_date", "user_source"],
    columns: &READ_COUNTERS,
    merge: Merge::Replace,
};

pub static USER_READ_HOURLY: TableDef = TableDef {
    name: "user_read_hourly",
    keys: &["appid", "ref_date", "hour", "user_source"],
    columns: &READ_COUNTERS,
    merge: Merge::Replace,
};

pub static USER_SHARE_DAILY: TableDef = TableDef {
    name: "user_share_daily",
    keys: &["appid", "ref_date", "share_scene"],
    columns: &["share_count", "share_user"],
    merge: Merge::Replace,
};

pub static USER_SHARE_HOURLY: TableDef = TableDef {
    name: "user_share_hourly",
    keys: &["appid", "ref_date", "hour", "share_scene"],
    columns: &["share_count", "share_user"],
    merge: Merge::Replace,
};

pub static ARTICLE_READ_DAILY: TableDef = TableDef {
    name: "article_read_daily",
    keys: &["appid", "ref_date", "msgid"],
    columns: &["read_user"],
    merge: Merge::Replace,
};

pub static ARTICLE_READ_SOURCES: TableDef = TableDef {
    name: "article_read_sources",
    keys: &["appid", "ref_date", "msgid", "scene_desc"],
    columns: &["user_count"],
    merge: Merge::Replace,
};

pub static ARTICLE_SHARE_DAILY: TableDef = TableDef {
    name: "article_share_daily",
    keys: &["appid", "ref_date", "msgid"],
    columns: &["share_user"],
    merge: Merge::Replace,
};

pub static BIZ_DAILY: TableDef = TableDef {
    name: "biz_daily",
    keys: &["appid", "ref_date"],
    columns: &BIZ_COUNTERS,
    merge: Merge::Replace,
};

pub static BIZ_READ_SOURCES: TableDef = TableDef {
    name: "biz_read_sources",
    keys: &["appid", "ref_date", "scene_desc"],
    columns: &["user_count"],
    merge: Merge::Replace,
};

pub static ARTICLE_DETAIL: TableDef = TableDef {
    name: "article_detail",
    keys: &["appid", "msgid", "stat_date"],
    columns: &[
        "ref_date",
        "read_user",
        "share_user",
        "zaikan_user",
        "like_user",
        "comment_count",
        "collection_user",
        "praise_money",
        "read_subscribe_user",
        "read_delivery_rate",
        "read_finish_rate",
        "read_avg_activetime",
    ],
    merge: Merge::Replace,
};

pub static ARTICLE_DETAIL_SOURCES: TableDef = TableDef {
    name: "article_detail_sources",
    keys: &["appid", "msgid", "stat_date", "scene_desc"],
    columns: &["user_count"],
    merge: Merge::Replace,
};

pub static ARTICLE_DETAIL_JUMPS: TableDef = TableDef {
    name: "article_detail_jumps",
    keys: &["appid", "msgid", "stat_date", "position"],
    columns: &["rate"],
    merge: Merge::Replace,
};

pub static USER_DAILY: TableDef = TableDef {
    name: "user_daily",
    keys: &["appid", "ref_date", "user_source"],
    columns: &["new_user", "cancel_user"],
    merge: Merge::Replace,
};

pub static USER_CUMULATE: TableDef = TableDef {
    name: "user_cumulate",
    keys: &["appid", "ref_date"],
    columns: &["cumulate_user"],
    merge: Merge::Replace,
};

pub static PUBLISHED_ARTICLES: TableDef = TableDef {
    name: "published_articles",
    keys: &["appid", "article_id", "idx"],
    columns: &[
        "title",
        "author",
        "digest",
        "url",
        "content_source_url",
        "thumb_url",
        "thumb_media_id",
        "show_cover_pic",
        "need_open_comment",
        "only_fans_can_comment",
        "is_deleted",
        "update_time",
        "create_time",
        "url_key",
    ],
    // The catalogue's latest word wins: a deleted or edited article shows so.
    merge: Merge::Replace,
};

/// Every data table, `articles` first.
pub static ALL_TABLES: &[&TableDef] = &[
    &ARTICLES,
    &ARTICLE_DAILY,
    &ARTICLE_TOTAL,
    &USER_READ_DAILY,
    &USER_READ_HOURLY,
    &USER_SHARE_DAILY,
    &USER_SHARE_HOURLY,
    &ARTICLE_READ_DAILY,
    &ARTICLE_READ_SOURCES,
    &ARTICLE_SHARE_DAILY,
    &BIZ_DAILY,
    &BIZ_READ_SOURCES,
    &ARTICLE_DETAIL,
    &ARTICLE_DETAIL_SOURCES,
    &ARTICLE_DETAIL_JUMPS,
    &USER_DAILY,
    &USER_CUMULATE,
    &PUBLISHED_ARTICLES,
];

/// The upsert statement for `rows` rows of `table` at once (`VALUES (..), (..)`):
/// insert, or on a key conflict update the other columns as the table's
/// `Merge` says. `placeholder(n)` writes the n-th (1-based) parameter.
pub fn upsert_sql_rows(
    table: &TableDef,
    rows: usize,
    placeholder: &dyn Fn(usize) -> String,
) -> String {
    assert!(rows > 0, "an upsert needs at least one row");
    let width = table.width();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let row: Vec<String> = (0..width).map(|c| placeholder(r * width + c + 1)).collect();
            format!("({})", row.join(", "))
        })
        .collect();
    upsert_sql(table, &format!("VALUES {}", values.join(", ")))
}

/// The upsert of `table` whose rows come from `source` (a `VALUES` list or a
/// `SELECT`), in `all_columns` order.
///
/// PostgreSQL refuses a statement that updates one row twice, so the rows of
/// one statement must have distinct keys: the writer merges rows with equal
/// keys first (`crate::store::rows::group_by_table`).
pub fn upsert_sql(table: &TableDef, source: &str) -> String {
    let columns: Vec<&str> = table.all_columns().collect();
    let updates: Vec<String> = table
        .columns
        .iter()
        .map(|c| match table.merge {
            Merge::Replace => format!("{c} = excluded.{c}"),
            Merge::KeepNonNull => format!("{c} = COALESCE(excluded.{c}, {t}.{c})", t = table.name),
        })
        .collect();
    format!(
        "INSERT INTO {t} ({cols}) {source} ON CONFLICT ({keys}) DO UPDATE SET {updates}",
        t = table.name,
        cols = columns.join(", "),
        keys = table.keys.join(", "),
        updates = updates.join(", "),
    )
}
