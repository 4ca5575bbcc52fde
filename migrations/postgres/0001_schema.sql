-- wxcube schema for PostgreSQL: the tables of SPEC sections 5 and 6, column for
-- column and key for key as migrations/sqlite/0001_schema.sql, with the types of
-- SPEC section 9. Where SQLite has TEXT 'YYYY-MM-DD' (every *_date column) this has
-- date; where it has TEXT RFC 3339 UTC (every *_at column) timestamptz; INTEGER is
-- bigint (0/1 flags too: no boolean, so queries port unchanged); REAL is double
-- precision. Counters are named as the API's JSON fields; a field absent from a
-- response is NULL. tests/it/postgres.rs holds the two schemas equal.

CREATE TABLE user_sources (
    code bigint PRIMARY KEY,
    name text NOT NULL
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
    code bigint PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO share_scenes (code, name) VALUES
    (1, 'friends'),
    (2, 'Moments'),
    (3, 'Tencent Weibo'),
    (5, 'unknown (5, seen live)'),
    (255, 'other');

CREATE TABLE read_scenes (
    scene_desc text PRIMARY KEY,
    name text NOT NULL
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
    appid text NOT NULL,
    msgid text NOT NULL,
    msg_data_id text,
    idx bigint,
    title text,
    url text,
    publish_date date,
    publish_type bigint,
    PRIMARY KEY (appid, msgid)
);

CREATE TABLE article_daily (
    appid text NOT NULL,
    ref_date date NOT NULL,
    msgid text NOT NULL,
    int_page_read_user bigint,
    int_page_read_count bigint,
    ori_page_read_user bigint,
    ori_page_read_count bigint,
    share_user bigint,
    share_count bigint,
    add_to_fav_user bigint,
    add_to_fav_count bigint,
    PRIMARY KEY (appid, ref_date, msgid)
);

CREATE TABLE article_total (
    appid text NOT NULL,
    msgid text NOT NULL,
    stat_date date NOT NULL,
    ref_date date NOT NULL,
    target_user bigint,
    int_page_read_user bigint,
    int_page_read_count bigint,
    ori_page_read_user bigint,
    ori_page_read_count bigint,
    share_user bigint,
    share_count bigint,
    add_to_fav_user bigint,
    add_to_fav_count bigint,
    int_page_from_session_read_user bigint,
    int_page_from_session_read_count bigint,
    int_page_from_hist_msg_read_user bigint,
    int_page_from_hist_msg_read_count bigint,
    int_page_from_feed_read_user bigint,
    int_page_from_feed_read_count bigint,
    int_page_from_friends_read_user bigint,
    int_page_from_friends_read_count bigint,
    int_page_from_other_read_user bigint,
    int_page_from_other_read_count bigint,
    int_page_from_kanyikan_read_user bigint,
    int_page_from_kanyikan_read_count bigint,
    int_page_from_souyisou_read_user bigint,
    int_page_from_souyisou_read_count bigint,
    feed_share_from_session_user bigint,
    feed_share_from_session_cnt bigint,
    feed_share_from_feed_user bigint,
    feed_share_from_feed_cnt bigint,
    feed_share_from_other_user bigint,
    feed_share_from_other_cnt bigint,
    PRIMARY KEY (appid, msgid, stat_date)
);

CREATE TABLE user_read_daily (
    appid text NOT NULL,
    ref_date date NOT NULL,
    user_source bigint NOT NULL,
    int_page_read_user bigint,
    int_page_read_count bigint,
    ori_page_read_user bigint,
    ori_page_read_count bigint,
    share_user bigint,
    share_count bigint,
    add_to_fav_user bigint,
    add_to_fav_count bigint,
    PRIMARY KEY (appid, ref_date, user_source)
);

CREATE TABLE user_read_hourly (
    appid text NOT NULL,
    ref_date date NOT NULL,
    hour bigint NOT NULL,
    user_source bigint NOT NULL,
    int_page_read_user bigint,
    int_page_read_count bigint,
    ori_page_read_user bigint,
    ori_page_read_count bigint,
    share_user bigint,
    share_count bigint,
    add_to_fav_user bigint,
    add_to_fav_count bigint,
    PRIMARY KEY (appid, ref_date, hour, user_source)
);

CREATE TABLE user_share_daily (
    appid text NOT NULL,
    ref_date date NOT NULL,
    share_scene bigint NOT NULL,
    share_count bigint,
    share_user bigint,
    PRIMARY KEY (appid, ref_date, share_scene)
);

CREATE TABLE user_share_hourly (
    appid text NOT NULL,
    ref_date date NOT NULL,
    hour bigint NOT NULL,
    share_scene bigint NOT NULL,
    share_count bigint,
    share_user bigint,
    PRIMARY KEY (appid, ref_date, hour, share_scene)
);

CREATE TABLE article_read_daily (
    appid text NOT NULL,
    ref_date date NOT NULL,
    msgid text NOT NULL,
    read_user bigint,
    PRIMARY KEY (appid, ref_date, msgid)
);

CREATE TABLE article_read_sources (
    appid text NOT NULL,
    ref_date date NOT NULL,
    msgid text NOT NULL,
    scene_desc text NOT NULL,
    user_count bigint,
    PRIMARY KEY (appid, ref_date, msgid, scene_desc)
);

CREATE TABLE article_share_daily (
    appid text NOT NULL,
    ref_date date NOT NULL,
    msgid text NOT NULL,
    share_user bigint,
    PRIMARY KEY (appid, ref_date, msgid)
);

CREATE TABLE biz_daily (
    appid text NOT NULL,
    ref_date date NOT NULL,
    read_user bigint,
    share_user bigint,
    zaikan_user bigint,
    like_user bigint,
    comment_count bigint,
    collection_user bigint,
    redirect_ori_page_user bigint,
    send_page_count bigint,
    PRIMARY KEY (appid, ref_date)
);

CREATE TABLE biz_read_sources (
    appid text NOT NULL,
    ref_date date NOT NULL,
    scene_desc text NOT NULL,
    user_count bigint,
    PRIMARY KEY (appid, ref_date, scene_desc)
);

CREATE TABLE article_detail (
    appid text NOT NULL,
    msgid text NOT NULL,
    stat_date date NOT NULL,
    ref_date date NOT NULL,
    read_user bigint,
    share_user bigint,
    zaikan_user bigint,
    like_user bigint,
    comment_count bigint,
    collection_user bigint,
    praise_money bigint,
    read_subscribe_user bigint,
    read_delivery_rate double precision,
    read_finish_rate double precision,
    read_avg_activetime double precision,
    PRIMARY KEY (appid, msgid, stat_date)
);

CREATE TABLE article_detail_sources (
    appid text NOT NULL,
    msgid text NOT NULL,
    stat_date date NOT NULL,
    scene_desc text NOT NULL,
    user_count bigint,
    PRIMARY KEY (appid, msgid, stat_date, scene_desc)
);

CREATE TABLE article_detail_jumps (
    appid text NOT NULL,
    msgid text NOT NULL,
    stat_date date NOT NULL,
    position bigint NOT NULL,
    rate double precision,
    PRIMARY KEY (appid, msgid, stat_date, position)
);

-- The ledger: one row per chunk tried, holding its latest try.
CREATE TABLE fetches (
    appid text NOT NULL,
    endpoint text NOT NULL,
    begin_date date NOT NULL,
    end_date date NOT NULL,
    status text NOT NULL CHECK (status IN ('ok', 'error')),
    rows bigint NOT NULL DEFAULT 0,
    attempts bigint NOT NULL DEFAULT 0,
    errcode bigint,
    error text,
    fetched_at timestamptz NOT NULL,
    is_delay bigint,
    PRIMARY KEY (appid, endpoint, begin_date, end_date)
);

-- Every successful response, as received.
CREATE TABLE raw_responses (
    appid text NOT NULL,
    endpoint text NOT NULL,
    begin_date date NOT NULL,
    end_date date NOT NULL,
    fetched_at timestamptz NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (appid, endpoint, begin_date, end_date)
);

-- One row per sync, backfill or daemon run: what was asked and how it ended.
CREATE TABLE runs (
    -- AUTOINCREMENT in SQLite: ids never reused. An identity's sequence never
    -- reuses either; BY DEFAULT (not ALWAYS) still accepts an explicit id, as
    -- SQLite does.
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    command text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    chunks_ok bigint,
    chunks_failed bigint,
    requests bigint,
    rows bigint,
    outcome text
);
