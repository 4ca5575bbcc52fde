-- Followers (getusersummary, getusercumulate), and each article's identity
-- taken from its URL (url_key). docs/schema.md describes every column.

-- Follow sources of getusersummary; codes not listed here are stored as they come.
CREATE TABLE follow_sources (
    code bigint PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO follow_sources (code, name) VALUES
    (0, 'other'),
    (1, 'search'),
    (17, 'business card shared'),
    (30, 'QR code'),
    (57, 'account name in an article'),
    (100, 'WeChat ads'),
    (149, 'mini program'),
    (161, 'reposted by others'),
    (200, 'Channels'),
    (201, 'live stream');

CREATE TABLE user_daily (
    appid text NOT NULL,
    ref_date date NOT NULL,
    user_source bigint NOT NULL,
    new_user bigint,
    cancel_user bigint,
    PRIMARY KEY (appid, ref_date, user_source)
);

CREATE TABLE user_cumulate (
    appid text NOT NULL,
    ref_date date NOT NULL,
    cumulate_user bigint,
    PRIMARY KEY (appid, ref_date)
);

-- Added by ALTER as in SQLite, so the column stays last in articles and the
-- column order of both databases is the same.
ALTER TABLE articles ADD COLUMN url_key text;
CREATE INDEX articles_by_url_key ON articles (appid, url_key);

-- New, cancelled, net and total followers per day.
CREATE VIEW v_followers AS
WITH days AS (
    SELECT appid, ref_date FROM user_daily
    UNION
    SELECT appid, ref_date FROM user_cumulate
),
daily AS (
    -- SUM(bigint) is numeric in PostgreSQL: cast back so the view's columns are
    -- bigint like every other counter (SQLite's SUM of integers is an integer).
    SELECT appid, ref_date, SUM(new_user)::bigint AS new_user,
           SUM(cancel_user)::bigint AS cancel_user
    FROM user_daily GROUP BY appid, ref_date
)
SELECT d.appid, d.ref_date, s.new_user, s.cancel_user,
       s.new_user - s.cancel_user AS net_user, c.cumulate_user
FROM days d
LEFT JOIN daily s ON s.appid = d.appid AND s.ref_date = d.ref_date
LEFT JOIN user_cumulate c ON c.appid = d.appid AND c.ref_date = d.ref_date;
