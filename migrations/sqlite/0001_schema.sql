-- wxcube schema: the tables of SPEC sections 5 and 6.
-- Dates are TEXT 'YYYY-MM-DD'; counters are INTEGER named as the API's JSON fields;
-- a field absent from a response is NULL.

CREATE TABLE user_sources (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
INSERT INTO user_sources (code, name) VALUES
    (99999999, 'all channels'),
    (0, 'chat'),
    (1, 'friends'),
    (2, 'Moments'),
    (3, 'Tencent Weibo'),
    (4, 'message history'),
    (5, 'other'),
    (6, 'Top Stories'),
    (7, 'Search');

CREATE TABLE share_scenes (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
INSERT INTO share_scenes (code, name) VALUES
    (1, 'friends'),
    (2, 'Moments'),
    (3, 'Tencent Weibo'),
    (5, 'unknown (5, seen live)'),
    (255, 'other');

CREATE TABLE read_scenes (
    scene_desc TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
INSERT INTO read_scenes (scene_desc, name) VALUES
    ('全部', 'all'),
    ('公众号消息', 'official account message'),
    ('聊天会话', 'chat'),
    ('朋友圈', 'Moments'),
    ('公众号主页', 'account home page'),
    ('其他', 'other'),
    ('推荐', 'recommended'),
    ('搜一搜', 'search');

-- Every article any endpoint has mentioned. Descriptive columns keep the latest
-- non-null value seen.
CREATE TABLE articles (
    appid TEXT NOT NULL,
    msgid TEXT NOT NULL,
    msg_data_id TEXT,
    idx INTEGER,
    title TEXT,
    url TEXT,
    publish_date TEXT,
    publish_type INTEGER,
    PRIMARY KEY (appid, msgid)
);

CREATE TABLE article_daily (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    msgid TEXT NOT NULL,
    int_page_read_user INTEGER,
    int_page_read_count INTEGER,
    ori_page_read_user INTEGER,
    ori_page_read_count INTEGER,
    share_user INTEGER,
    share_count INTEGER,
    add_to_fav_user INTEGER,
    add_to_fav_count INTEGER,
    PRIMARY KEY (appid, ref_date, msgid)
);

CREATE TABLE article_total (
    appid TEXT NOT NULL,
    msgid TEXT NOT NULL,
    stat_date TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    target_user INTEGER,
    int_page_read_user INTEGER,
    int_page_read_count INTEGER,
    ori_page_read_user INTEGER,
    ori_page_read_count INTEGER,
    share_user INTEGER,
    share_count INTEGER,
    add_to_fav_user INTEGER,
    add_to_fav_count INTEGER,
    int_page_from_session_read_user INTEGER,
    int_page_from_session_read_count INTEGER,
    int_page_from_hist_msg_read_user INTEGER,
    int_page_from_hist_msg_read_count INTEGER,
    int_page_from_feed_read_user INTEGER,
    int_page_from_feed_read_count INTEGER,
    int_page_from_friends_read_user INTEGER,
    int_page_from_friends_read_count INTEGER,
    int_page_from_other_read_user INTEGER,
    int_page_from_other_read_count INTEGER,
    int_page_from_kanyikan_read_user INTEGER,
    int_page_from_kanyikan_read_count INTEGER,
    int_page_from_souyisou_read_user INTEGER,
    int_page_from_souyisou_read_count INTEGER,
    feed_share_from_session_user INTEGER,
    feed_share_from_session_cnt INTEGER,
    feed_share_from_feed_user INTEGER,
    feed_share_from_feed_cnt INTEGER,
    feed_share_from_other_user INTEGER,
    feed_share_from_other_cnt INTEGER,
    PRIMARY KEY (appid, msgid, stat_date)
);

CREATE TABLE user_read_daily (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    user_source INTEGER NOT NULL,
    int_page_read_user INTEGER,
    int_page_read_count INTEGER,
    ori_page_read_user INTEGER,
    ori_page_read_count INTEGER,
    share_user INTEGER,
    share_count INTEGER,
    add_to_fav_user INTEGER,
    add_to_fav_count INTEGER,
    PRIMARY KEY (appid, ref_date, user_source)
);

CREATE TABLE user_read_hourly (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    hour INTEGER NOT NULL,
    user_source INTEGER NOT NULL,
    int_page_read_user INTEGER,
    int_page_read_count INTEGER,
    ori_page_read_user INTEGER,
    ori_page_read_count INTEGER,
    share_user INTEGER,
    share_count INTEGER,
    add_to_fav_user INTEGER,
    add_to_fav_count INTEGER,
    PRIMARY KEY (appid, ref_date, hour, user_source)
);

CREATE TABLE user_share_daily (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    share_scene INTEGER NOT NULL,
    share_count INTEGER,
    share_user INTEGER,
    PRIMARY KEY (appid, ref_date, share_scene)
);

CREATE TABLE user_share_hourly (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    hour INTEGER NOT NULL,
    share_scene INTEGER NOT NULL,
    share_count INTEGER,
    share_user INTEGER,
    PRIMARY KEY (appid, ref_date, hour, share_scene)
);

CREATE TABLE article_read_daily (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    msgid TEXT NOT NULL,
    read_user INTEGER,
    PRIMARY KEY (appid, ref_date, msgid)
);

CREATE TABLE article_read_sources (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    msgid TEXT NOT NULL,
    scene_desc TEXT NOT NULL,
    user_count INTEGER,
    PRIMARY KEY (appid, ref_date, msgid, scene_desc)
);

CREATE TABLE article_share_daily (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    msgid TEXT NOT NULL,
    share_user INTEGER,
    PRIMARY KEY (appid, ref_date, msgid)
);

CREATE TABLE biz_daily (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    read_user INTEGER,
    share_user INTEGER,
    zaikan_user INTEGER,
    like_user INTEGER,
    comment_count INTEGER,
    collection_user INTEGER,
    redirect_ori_page_user INTEGER,
    send_page_count INTEGER,
    PRIMARY KEY (appid, ref_date)
);

CREATE TABLE biz_read_sources (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    scene_desc TEXT NOT NULL,
    user_count INTEGER,
    PRIMARY KEY (appid, ref_date, scene_desc)
);

CREATE TABLE article_detail (
    appid TEXT NOT NULL,
    msgid TEXT NOT NULL,
    stat_date TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    read_user INTEGER,
    share_user INTEGER,
    zaikan_user INTEGER,
    like_user INTEGER,
    comment_count INTEGER,
    collection_user INTEGER,
    praise_money INTEGER,
    read_subscribe_user INTEGER,
    read_delivery_rate REAL,
    read_finish_rate REAL,
    read_avg_activetime REAL,
    PRIMARY KEY (appid, msgid, stat_date)
);

CREATE TABLE article_detail_sources (
    appid TEXT NOT NULL,
    msgid TEXT NOT NULL,
    stat_date TEXT NOT NULL,
    scene_desc TEXT NOT NULL,
    user_count INTEGER,
    PRIMARY KEY (appid, msgid, stat_date, scene_desc)
);

CREATE TABLE article_detail_jumps (
    appid TEXT NOT NULL,
    msgid TEXT NOT NULL,
    stat_date TEXT NOT NULL,
    position INTEGER NOT NULL,
    rate REAL,
    PRIMARY KEY (appid, msgid, stat_date, position)
);

-- The ledger: one row per chunk tried, holding its latest try.
CREATE TABLE fetches (
    appid TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    begin_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
    rows INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    errcode INTEGER,
    error TEXT,
    fetched_at TEXT NOT NULL,
    is_delay INTEGER,
    PRIMARY KEY (appid, endpoint, begin_date, end_date)
);

-- Every successful response, as received.
CREATE TABLE raw_responses (
    appid TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    begin_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    fetched_at TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (appid, endpoint, begin_date, end_date)
);

-- One row per sync, backfill or daemon run: what was asked and how it ended.
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    chunks_ok INTEGER,
    chunks_failed INTEGER,
    requests INTEGER,
    rows INTEGER,
    outcome TEXT
);
