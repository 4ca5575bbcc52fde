-- Followers (getusersummary, getusercumulate), and each article's identity
-- taken from its URL (url_key). docs/schema.md describes every column.

-- Follow sources of getusersummary; codes not listed here are stored as they come.
CREATE TABLE follow_sources (
    code INTEGER PRIMARY KEY,
    name TEXT NOT NULL
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
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    user_source INTEGER NOT NULL,
    new_user INTEGER,
    cancel_user INTEGER,
    PRIMARY KEY (appid, ref_date, user_source)
);

CREATE TABLE user_cumulate (
    appid TEXT NOT NULL,
    ref_date TEXT NOT NULL,
    cumulate_user INTEGER,
    PRIMARY KEY (appid, ref_date)
);

ALTER TABLE articles ADD COLUMN url_key TEXT;
CREATE INDEX articles_by_url_key ON articles (appid, url_key);

-- New, cancelled, net and total followers per day.
CREATE VIEW v_followers AS
WITH days AS (
    SELECT appid, ref_date FROM user_daily
    UNION
    SELECT appid, ref_date FROM user_cumulate
),
daily AS (
    SELECT appid, ref_date, SUM(new_user) AS new_user, SUM(cancel_user) AS cancel_user
    FROM user_daily GROUP BY appid, ref_date
)
SELECT d.appid, d.ref_date, s.new_user, s.cancel_user,
       s.new_user - s.cancel_user AS net_user, c.cumulate_user
FROM days d
LEFT JOIN daily s ON s.appid = d.appid AND s.ref_date = d.ref_date
LEFT JOIN user_cumulate c ON c.appid = d.appid AND c.ref_date = d.ref_date;
