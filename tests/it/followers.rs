//! Followers (getusersummary, getusercumulate) and the published catalogue
//! (freepublish): exact against the simulator's oracle, the catalogue's daily
//! budget and resumption, and the join between catalogue and datacube.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use wxcube::endpoint::Endpoint;
use wxcube::ingest::Engine;
use wxcube::sim::SimOptions;
use wxcube::store::Store;

use crate::helpers::*;

const FOLLOWERS: [Endpoint; 2] = [Endpoint::UserSummary, Endpoint::UserCumulate];

/// An engine on a clock the test moves, against a simulator on the same clock.
async fn moving_env(extra: &[(&str, &str)]) -> (TestEnv, ManualClock, Engine) {
    let manual = ManualClock::new(fixed_now());
    let env = TestEnv::with(SimOptions {
        clock: manual.clock(),
        ..SimOptions::default()
    })
    .await;
    let settings = env.settings(extra);
    let store = Store::open(&settings.database).await.unwrap();
    let engine = Engine::new(Arc::new(settings), store, manual.clock()).unwrap();
    (env, manual, engine)
}

async fn sync(engine: &Engine) -> wxcube::ingest::RunReport {
    engine.sync(None, &CancellationToken::new()).await.unwrap()
}

async fn backfill_catalogue(engine: &Engine) -> wxcube::ingest::RunReport {
    let latest = engine.latest().to_string();
    backfill(engine, &latest, &latest, &[Endpoint::Freepublish]).await
}

/// The catalogue rows the simulator holds on `today`, keyed for comparison.
fn catalogue_truth(today: chrono::NaiveDate) -> BTreeSet<String> {
    wxcube::sim::catalogue::expected_published_articles(APPID, today)
        .iter()
        .map(|row| canonical(row.as_object().unwrap()))
        .collect()
}

async fn catalogue_stored(store: &Store) -> BTreeSet<String> {
    table_rows_unsorted(store, "published_articles")
        .await
        .iter()
        .map(canonical)
        .collect()
}

/// A row as text with its columns in name order.
fn canonical(row: &serde_json::Map<String, Value>) -> String {
    let sorted: std::collections::BTreeMap<&String, &Value> = row.iter().collect();
    serde_json::to_string(&sorted).unwrap()
}

/// Asserts the stored catalogue equals the simulator's on `today`, showing a
/// few rows of the difference if not.
async fn assert_catalogue_exact(store: &Store, today: chrono::NaiveDate) {
    let stored = catalogue_stored(store).await;
    let truth = catalogue_truth(today);
    let extra: Vec<_> = stored.difference(&truth).take(2).collect();
    let missing: Vec<_> = truth.difference(&stored).take(2).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "catalogue differs ({} stored, {} expected):\nstored only: {extra:#?}\nexpected only: {missing:#?}",
        stored.len(),
        truth.len()
    );
}

async fn scalar(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_40_day_backfill_of_the_follower_endpoints_equals_the_truth() {
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    let report = backfill(&engine, "2026-02-03", "2026-03-14", &FOLLOWERS).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    assert_matches_truth(
        &engine.store,
        &FOLLOWERS,
        "2026-02-03",
        "2026-03-14",
        today(),
    )
    .await;
    assert!(count(&engine.store, "user_daily").await > 40);
    assert_eq!(count(&engine.store, "user_cumulate").await, 40);
}

#[tokio::test]
async fn a_2019_backfill_of_the_follower_endpoints_equals_the_truth() {
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    let report = backfill(&engine, "2019-03-01", "2019-05-31", &FOLLOWERS).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    assert_matches_truth(
        &engine.store,
        &FOLLOWERS,
        "2019-03-01",
        "2019-05-31",
        today(),
    )
    .await;
    // Cumulative totals agree with the daily net growth, day after day.
    let rows: Vec<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT net_user, cumulate_user FROM v_followers WHERE appid = ? ORDER BY ref_date",
    )
    .bind(APPID)
    .fetch_all(engine.store.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 92);
    for pair in rows.windows(2) {
        // A day without any follow or unfollow has no user_daily row: NULL.
        let (Some(before), (net, Some(after))) = (pair[0].1, pair[1]) else {
            panic!("a day without a total: {pair:?}");
        };
        assert_eq!(before + net.unwrap_or(0), after);
    }
}

#[tokio::test]
async fn with_yesterday_missing_repeated_syncs_converge() {
    let (env, _manual, engine) =
        moving_env(&[("WXCUBE_ENDPOINTS", "getusersummary,getusercumulate")]).await;
    env.set_faults("missing_yesterday=1");
    let first = sync(&engine).await;
    assert_eq!(first.exit_code(), 0, "a missing day is not an error");
    let yesterday = engine.latest().to_string();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_cumulate WHERE ref_date = ?")
        .bind(&yesterday)
        .fetch_one(engine.store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 0, "the simulator was to leave yesterday out once");
    let second = sync(&engine).await;
    assert_eq!(second.exit_code(), 0, "{:?}", second.failures);
    let from = (engine.latest() - chrono::Days::new(29)).to_string();
    assert_matches_truth(&engine.store, &FOLLOWERS, &from, &yesterday, today()).await;
    let row: (Option<i64>, Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT new_user, net_user, cumulate_user FROM v_followers WHERE ref_date = ?",
    )
    .bind(&yesterday)
    .fetch_one(engine.store.pool())
    .await
    .unwrap();
    assert!(
        row.2.is_some(),
        "yesterday's total is in after the second sync"
    );
}

#[tokio::test]
async fn a_first_catalogue_sweep_keeps_to_the_daily_budget_and_resumes_the_next_day() {
    let (env, manual, engine) = moving_env(&[
        ("WXCUBE_ENDPOINTS", "freepublish"),
        ("WXCUBE_CATALOGUE_DAILY_CALLS", "4"),
    ])
    .await;
    let total = wxcube::sim::catalogue::catalogue(APPID, manual.today()).len();
    let pages = total.div_ceil(20);
    assert!(
        pages > 4,
        "the catalogue must take several days at 4 calls a day"
    );
    let mut days = 0;
    let mut calls_per_day = Vec::new();
    loop {
        env.sim.stats.reset();
        let report = sync(&engine).await;
        assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
        let calls = env.sim.stats.requests_for(Endpoint::Freepublish);
        assert!(calls <= 4, "{calls} calls on day {days}");
        calls_per_day.push(calls);
        days += 1;
        let complete = scalar(&engine.store, "SELECT sweep_complete FROM catalogue_state").await;
        if complete == 1 {
            break;
        }
        assert!(days < 60, "the sweep never completed");
        manual.advance_days(1);
    }
    // Every day but the last spent the whole budget; nothing was read twice
    // beyond the head page of each later day.
    assert!(days >= pages.div_ceil(4), "{days} days for {pages} pages");
    eprintln!("catalogue: {total} items, {pages} pages, calls per day {calls_per_day:?}");
    assert_catalogue_exact(&engine.store, manual.today()).await;
    let statuses = wxcube::status::collect(&engine.settings, &engine.store, &manual.clock(), None)
        .await
        .unwrap();
    let catalogue = statuses
        .iter()
        .find_map(|s| s.catalogue.as_ref())
        .expect("status shows the catalogue");
    assert!(catalogue.sweep_complete);
    let total_now = wxcube::sim::catalogue::catalogue(APPID, manual.today()).len();
    assert_eq!(catalogue.total_count, Some(total_now as i64));
}

#[tokio::test]
async fn a_second_sync_with_nothing_changed_makes_at_most_one_call_and_updates_arrive() {
    let (env, manual, engine) = moving_env(&[("WXCUBE_ENDPOINTS", "freepublish")]).await;
    let first = sync(&engine).await;
    assert_eq!(first.exit_code(), 0, "{:?}", first.failures);
    assert_catalogue_exact(&engine.store, manual.today()).await;

    env.sim.stats.reset();
    let again = sync(&engine).await;
    assert_eq!(again.exit_code(), 0);
    assert!(env.sim.stats.requests_for(Endpoint::Freepublish) <= 1);

    // Days later some items were edited upstream: the next sync brings them in.
    let before = catalogue_truth(manual.today());
    let mut moved = 0;
    while catalogue_truth(manual.today()) == before {
        manual.advance_days(1);
        moved += 1;
        assert!(
            moved < 400,
            "no item of the simulator's catalogue ever changes"
        );
    }
    let later = sync(&engine).await;
    assert_eq!(later.exit_code(), 0, "{:?}", later.failures);
    assert_catalogue_exact(&engine.store, manual.today()).await;
}

#[tokio::test]
async fn a_daily_quota_mid_sweep_stops_only_the_catalogue_and_the_sweep_resumes_next_day() {
    let (env, manual, engine) = moving_env(&[(
        "WXCUBE_ENDPOINTS",
        "getbizsummary,getusercumulate,freepublish",
    )])
    .await;
    env.set_faults("daily_quota_after=3,daily_quota_endpoint=freepublish");
    let first = sync(&engine).await;
    assert_eq!(first.exit_code(), 1, "a 45009 is a failure of the run");
    assert!(
        first.failures.iter().any(|f| f.contains("45009")),
        "{:?}",
        first.failures
    );
    // The other endpoints are complete.
    let from = (engine.latest() - chrono::Days::new(29)).to_string();
    let latest = engine.latest().to_string();
    assert_matches_truth(
        &engine.store,
        &[Endpoint::BizSummary, Endpoint::UserCumulate],
        &from,
        &latest,
        manual.today(),
    )
    .await;
    assert!(count(&engine.store, "published_articles").await > 0);
    // The same day: no call at all.
    env.sim.stats.reset();
    let again = sync(&engine).await;
    assert_eq!(env.sim.stats.requests_for(Endpoint::Freepublish), 0);
    assert_eq!(again.exit_code(), 0, "{:?}", again.failures);
    // The next day the sweep goes on and finishes.
    env.set_faults("");
    manual.advance_days(1);
    let next = sync(&engine).await;
    assert_eq!(next.exit_code(), 0, "{:?}", next.failures);
    assert_catalogue_exact(&engine.store, manual.today()).await;
}

#[tokio::test]
async fn backfill_with_endpoint_freepublish_sweeps_the_whole_catalogue_again() {
    let (env, manual, engine) = moving_env(&[("WXCUBE_ENDPOINTS", "getbizsummary")]).await;
    // A sync without freepublish in `endpoints` never pages the catalogue.
    sync(&engine).await;
    assert_eq!(env.sim.stats.requests_for(Endpoint::Freepublish), 0);
    let report = backfill_catalogue(&engine).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    assert_catalogue_exact(&engine.store, manual.today()).await;
    let first_calls = env.sim.stats.requests_for(Endpoint::Freepublish);
    let total = wxcube::sim::catalogue::catalogue(APPID, manual.today()).len();
    assert_eq!(first_calls, total.div_ceil(20).max(1));
    // Asked again, it reads every page again (within the budget).
    env.sim.stats.reset();
    backfill_catalogue(&engine).await;
    assert_eq!(
        env.sim.stats.requests_for(Endpoint::Freepublish),
        first_calls
    );
}

#[tokio::test]
async fn the_catalogue_join_finds_every_datacube_article_that_has_an_entry() {
    let (_env, manual, engine) =
        moving_env(&[("WXCUBE_ENDPOINTS", "getarticletotaldetail,freepublish")]).await;
    let report = backfill(
        &engine,
        "2026-01-01",
        "2026-03-14",
        &[Endpoint::ArticleTotalDetail],
    )
    .await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    let sync_report = sync(&engine).await;
    assert_eq!(sync_report.exit_code(), 0, "{:?}", sync_report.failures);
    // Which datacube articles the simulator published, by their URL's identity.
    let published: BTreeSet<String> =
        wxcube::sim::catalogue::expected_published_articles(APPID, manual.today())
            .iter()
            .filter_map(|r| r["url_key"].as_str().map(str::to_string))
            .collect();
    let articles: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT msgid, url FROM articles WHERE url IS NOT NULL")
            .fetch_all(engine.store.pool())
            .await
            .unwrap();
    let expected: BTreeSet<String> = articles
        .iter()
        .filter(|(_, url)| published.contains(&wxcube::url_key::url_key(url.as_deref().unwrap())))
        .map(|(msgid, _)| msgid.clone())
        .collect();
    assert!(
        !expected.is_empty(),
        "some datacube articles must be in the catalogue"
    );
    assert!(
        expected.len() < articles.len(),
        "mass-sent articles are not in the catalogue"
    );
    let joined: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT msgid, author, article_id FROM v_article_catalogue")
            .fetch_all(engine.store.pool())
            .await
            .unwrap();
    let joined_ids: BTreeSet<String> = joined.iter().map(|(m, _, _)| m.clone()).collect();
    assert_eq!(joined_ids, expected);
    assert_eq!(joined.len(), expected.len(), "one row per datacube article");
    assert!(
        joined
            .iter()
            .all(|(_, author, id)| author.is_some() && id.is_some())
    );
}

/// The real binary syncs all thirteen (followers and catalogue included)
/// through token expiry and a catalogue quota running out: nothing it prints,
/// logs or stores holds the appsecret or a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_and_catalogue_never_leak_a_secret() {
    let env = TestEnv::live().await;
    env.set_faults(
        "token_expire=0.1,busy=0.05,daily_quota_after=2,daily_quota_endpoint=freepublish,seed=5",
    );
    let vars = env.env();
    let mut outputs = String::new();
    for args in [
        vec!["-v", "--log-format", "json", "sync"],
        vec!["status"],
        vec!["status", "--json"],
        vec![
            "-v",
            "backfill",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-02",
            "--endpoint",
            "freepublish",
        ],
    ] {
        let out = run_wxcube(&vars, env.dir.path(), &args);
        outputs.push_str(&text(&out));
    }
    assert!(
        outputs.contains("freepublish"),
        "the catalogue ran:\n{outputs}"
    );
    assert!(
        outputs.contains("45009"),
        "the catalogue's quota ran out:\n{outputs}"
    );
    let store = Store::open(&env.db_path().display().to_string())
        .await
        .unwrap();
    assert!(count(&store, "user_daily").await > 0);
    assert!(count(&store, "published_articles").await > 0);
    let mut secrets = vec![SECRET.to_string()];
    secrets.extend(env.sim.stats.issued_tokens());
    assert!(secrets.len() > 1, "tokens were issued");
    assert_no_secrets(&outputs, &secrets, "output");
    assert_no_secrets(&all_database_text(&store).await, &secrets, "the database");
}

/// Articles stored before `url_key` existed get it when the database is next
/// opened, so that the catalogue join finds them without a re-fetch.
#[tokio::test]
async fn articles_stored_before_url_key_existed_get_it_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db").display().to_string();
    let url = "http://mp.weixin.qq.com/s?__biz=MzA==&mid=2247400010&idx=1&sn=abc&chksm=1#rd";
    {
        let store = Store::open(&path).await.unwrap();
        // As a database upgraded from before migration 0003 holds it.
        sqlx::query(
            "INSERT INTO articles (appid, msgid, url, url_key) VALUES (?, '2247400010_1', ?, NULL)",
        )
        .bind(APPID)
        .bind(url)
        .execute(store.pool())
        .await
        .unwrap();
        store.close().await;
    }
    let store = Store::open(&path).await.unwrap();
    let key: Option<String> = sqlx::query_scalar("SELECT url_key FROM articles")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        key.as_deref(),
        Some("mp.weixin.qq.com/s?__biz=MzA==&mid=2247400010&idx=1&sn=abc")
    );
}
