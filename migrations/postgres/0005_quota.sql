-- The quota each account's endpoint had when a run last looked it up
-- (/cgi-bin/openapi/quota/get, SPEC section 10), and what that run sent:
-- migrations/sqlite/0005_quota.sql with the types of SPEC section 9.
-- docs/schema.md describes every column.

CREATE TABLE quota_seen (
    appid text NOT NULL,
    endpoint text NOT NULL,
    seen_at timestamptz NOT NULL,
    seen_date date NOT NULL,
    daily_limit bigint NOT NULL,
    used bigint NOT NULL,
    remain bigint NOT NULL,
    reserve bigint NOT NULL,
    sent bigint NOT NULL,
    call_count bigint,
    refresh_second bigint,
    PRIMARY KEY (appid, endpoint)
);
