-- The quota each account's endpoint had when a run last looked it up
-- (/cgi-bin/openapi/quota/get, SPEC section 10), and what that run sent.
-- docs/schema.md describes every column.

CREATE TABLE quota_seen (
    appid TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    seen_date TEXT NOT NULL,
    daily_limit INTEGER NOT NULL,
    used INTEGER NOT NULL,
    remain INTEGER NOT NULL,
    reserve INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    call_count INTEGER,
    refresh_second INTEGER,
    PRIMARY KEY (appid, endpoint)
);
