-- Views for the questions analysts ask first. Each reads only contract tables.

-- Reads per day by channel (getuserread), with the channel's name.
CREATE VIEW v_reads_by_channel AS
SELECT r.appid, r.ref_date, r.user_source, s.name AS channel,
       r.int_page_read_user, r.int_page_read_count, r.share_user, r.add_to_fav_user
FROM user_read_daily r
LEFT JOIN user_sources s ON s.code = r.user_source;

-- Each article's latest cumulative totals (getarticletotal): the row with the
-- greatest stat_date, with where its reads came from.
CREATE VIEW v_article_latest_totals AS
SELECT a.appid, a.msgid, ar.title, a.ref_date AS publish_date, a.stat_date,
       a.target_user, a.int_page_read_user, a.int_page_read_count,
       a.share_user, a.share_count, a.add_to_fav_user, a.add_to_fav_count,
       a.int_page_from_session_read_user, a.int_page_from_hist_msg_read_user,
       a.int_page_from_feed_read_user, a.int_page_from_friends_read_user,
       a.int_page_from_other_read_user, a.int_page_from_kanyikan_read_user,
       a.int_page_from_souyisou_read_user
FROM article_total a
LEFT JOIN articles ar ON ar.appid = a.appid AND ar.msgid = a.msgid
WHERE a.stat_date = (SELECT MAX(b.stat_date) FROM article_total b
                     WHERE b.appid = a.appid AND b.msgid = a.msgid);

-- Shares per day by scene (getusershare), with the scene's name.
CREATE VIEW v_shares_by_scene AS
SELECT u.appid, u.ref_date, u.share_scene, COALESCE(s.name, 'unknown') AS scene,
       u.share_count, u.share_user
FROM user_share_daily u
LEFT JOIN share_scenes s ON s.code = u.share_scene;

-- Account-wide readers per day by scene (getbizsummary), English scene names.
CREATE VIEW v_biz_reads_by_scene AS
SELECT b.appid, b.ref_date, b.scene_desc, COALESCE(s.name, b.scene_desc) AS scene,
       b.user_count
FROM biz_read_sources b
LEFT JOIN read_scenes s ON s.scene_desc = b.scene_desc;

-- Each article's latest cumulative detail (getarticletotaldetail) with completion
-- rate and average reading time.
CREATE VIEW v_article_latest_detail AS
SELECT d.appid, d.msgid, ar.title, ar.publish_type, d.ref_date AS publish_date,
       d.stat_date, d.read_user, d.share_user, d.zaikan_user, d.like_user,
       d.comment_count, d.collection_user, d.praise_money,
       d.read_finish_rate, d.read_avg_activetime, d.read_delivery_rate
FROM article_detail d
LEFT JOIN articles ar ON ar.appid = d.appid AND ar.msgid = d.msgid
WHERE d.stat_date = (SELECT MAX(e.stat_date) FROM article_detail e
                     WHERE e.appid = d.appid AND e.msgid = d.msgid);

-- Articles by publish_type (0 with notification, 1 without, others as seen).
CREATE VIEW v_articles_by_publish_type AS
SELECT appid, publish_type,
       CASE publish_type WHEN 0 THEN 'sent with notification'
                         WHEN 1 THEN 'published without notification'
                         ELSE 'other' END AS kind,
       COUNT(*) AS articles
FROM articles
WHERE publish_type IS NOT NULL
GROUP BY appid, publish_type;
