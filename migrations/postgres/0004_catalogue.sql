-- The published catalogue (freepublish/batchget) and where each sweep stands.
-- docs/schema.md describes every column (PostgreSQL types as in 0001_schema.sql).

CREATE TABLE published_articles (
    appid text NOT NULL,
    article_id text NOT NULL,
    idx bigint NOT NULL,
    title text,
    author text,
    digest text,
    url text,
    content_source_url text,
    thumb_url text,
    thumb_media_id text,
    show_cover_pic bigint,
    need_open_comment bigint,
    only_fans_can_comment bigint,
    is_deleted bigint,
    -- Unix seconds as the API sends them, kept bigint (not timestamptz) so the
    -- value is the one WeChat gave and SQLite queries on it port unchanged.
    update_time bigint,
    create_time bigint,
    url_key text,
    PRIMARY KEY (appid, article_id, idx)
);
CREATE INDEX published_articles_by_url_key ON published_articles (appid, url_key);

-- Where each account's catalogue sweep stands, and the calls of the current
-- China day, so that a restart keeps to the daily budget and resumes.
CREATE TABLE catalogue_state (
    appid text PRIMARY KEY,
    calls_date date,
    calls bigint NOT NULL DEFAULT 0,
    next_offset bigint NOT NULL DEFAULT 0,
    sweep_complete bigint NOT NULL DEFAULT 0,
    total_count bigint,
    last_call_at timestamptz,
    last_errcode bigint,
    last_error text,
    quota_spent_date date
);

-- Datacube articles with their catalogue entry (author, digest), joined on
-- the article's identity taken from its URL.
CREATE VIEW v_article_catalogue AS
SELECT a.appid, a.msgid, p.article_id, p.idx, COALESCE(p.title, a.title) AS title,
       p.author, p.digest, a.publish_date, a.publish_type, p.is_deleted,
       COALESCE(p.url, a.url) AS url
FROM articles a
JOIN published_articles p ON p.appid = a.appid AND p.url_key = a.url_key;
