-- The published catalogue (freepublish/batchget) and where each sweep stands.
-- docs/schema.md describes every column.

CREATE TABLE published_articles (
    appid TEXT NOT NULL,
    article_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    title TEXT,
    author TEXT,
    digest TEXT,
    url TEXT,
    content_source_url TEXT,
    thumb_url TEXT,
    thumb_media_id TEXT,
    show_cover_pic INTEGER,
    need_open_comment INTEGER,
    only_fans_can_comment INTEGER,
    is_deleted INTEGER,
    update_time INTEGER,
    create_time INTEGER,
    url_key TEXT,
    PRIMARY KEY (appid, article_id, idx)
);
CREATE INDEX published_articles_by_url_key ON published_articles (appid, url_key);

-- Where each account's catalogue sweep stands, and the calls of the current
-- China day, so that a restart keeps to the daily budget and resumes.
CREATE TABLE catalogue_state (
    appid TEXT PRIMARY KEY,
    calls_date TEXT,
    calls INTEGER NOT NULL DEFAULT 0,
    next_offset INTEGER NOT NULL DEFAULT 0,
    sweep_complete INTEGER NOT NULL DEFAULT 0,
    total_count INTEGER,
    last_call_at TEXT,
    last_errcode INTEGER,
    last_error TEXT,
    quota_spent_date TEXT
);

-- Datacube articles with their catalogue entry (author, digest), joined on
-- the article's identity taken from its URL.
CREATE VIEW v_article_catalogue AS
SELECT a.appid, a.msgid, p.article_id, p.idx, COALESCE(p.title, a.title) AS title,
       p.author, p.digest, a.publish_date, a.publish_type, p.is_deleted,
       COALESCE(p.url, a.url) AS url
FROM articles a
JOIN published_articles p ON p.appid = a.appid AND p.url_key = a.url_key;
