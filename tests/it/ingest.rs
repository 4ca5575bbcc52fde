//! The main job against the simulator: exact rows, idempotence, the planned
//! chunks of a sync, daily quota, and readers during ingestion.

use std::collections::BTreeSet;

use tokio_util::sync::CancellationToken;
use wxcube::clock::Clock;
use wxcube::endpoint::Endpoint;
use wxcube::ingest::plan::chunk_days;
use wxcube::sim::SimOptions;

use crate::helpers::*;

#[tokio::test]
async fn backfill_of_forty_days_stores_exactly_what_the_generator_predicts() {
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    let report = backfill(&engine, "2026-02-03", "2026-03-14", &[]).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    assert_matches_truth(
        &engine.store,
        &datacube(),
        "2026-02-03",
        "2026-03-14",
        today(),
    )
    .await;
    // Both families filled their tables.
    for table in [
        "article_daily",
        "article_total",
        "user_read_hourly",
        "user_share_hourly",
        "article_read_sources",
        "biz_read_sources",
        "article_detail_jumps",
    ] {
        assert!(count(&engine.store, table).await > 0, "{table} is empty");
    }
}

#[tokio::test]
async fn the_same_backfill_twice_leaves_identical_contents() {
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    backfill(&engine, "2026-02-20", "2026-03-14", &[]).await;
    let first = digest(&engine.store).await;
    let rows_before = count(&engine.store, "user_read_hourly").await;
    let request = wxcube::ingest::BackfillRequest {
        from: d("2026-02-20"),
        to: d("2026-03-14"),
        account: None,
        endpoints: vec![],
        refetch: true,
        progress: false,
    };
    let again = engine
        .backfill(&request, &CancellationToken::new())
        .await
        .unwrap();
    assert!(again.chunks_ok > 0, "the refetch fetched nothing");
    assert_eq!(digest(&engine.store).await, first);
    assert_eq!(count(&engine.store, "user_read_hourly").await, rows_before);
}

#[tokio::test]
async fn a_backfill_run_again_requests_only_chunks_that_are_not_final() {
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    backfill(
        &engine,
        "2026-01-01",
        "2026-03-14",
        &[Endpoint::ArticleSummary, Endpoint::ArticleTotalDetail],
    )
    .await;
    env.sim.stats.reset();
    let report = backfill(
        &engine,
        "2026-01-01",
        "2026-03-14",
        &[Endpoint::ArticleSummary, Endpoint::ArticleTotalDetail],
    )
    .await;
    assert_eq!(report.exit_code(), 0);
    // Fetched on 2026-03-15: summary days up to 03-08 are final (7 days), detail days up to 02-13 (30 days).
    assert_eq!(env.sim.stats.requests_for(Endpoint::ArticleSummary), 6);
    assert_eq!(env.sim.stats.requests_for(Endpoint::ArticleTotalDetail), 29);
}

#[tokio::test]
async fn sync_on_an_empty_database_requests_exactly_the_planned_chunks() {
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    let report = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    // latest = 2026-03-14; catch_up_days = 30 -> 2026-02-13..2026-03-14 for every endpoint.
    let window: BTreeSet<_> = wxcube::clock::days(d("2026-02-13"), d("2026-03-14")).collect();
    let mut expected = BTreeSet::new();
    for endpoint in datacube() {
        for chunk in chunk_days(endpoint, &window) {
            expected.insert((
                endpoint.name().to_string(),
                chunk.begin.to_string(),
                chunk.end.to_string(),
            ));
        }
    }
    let requested: Vec<_> = env
        .sim
        .stats
        .log()
        .into_iter()
        // The catalogue is paged, not chunked by dates.
        .filter(|r| r.endpoint != Endpoint::Freepublish.name())
        .map(|r| (r.endpoint, r.begin_date, r.end_date))
        .collect();
    assert_eq!(
        requested.len(),
        expected.len(),
        "a chunk was requested twice or not at all"
    );
    assert_eq!(requested.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(env.sim.stats.requests_for(Endpoint::UserRead), 10);
    assert_eq!(env.sim.stats.requests_for(Endpoint::UserShare), 5);
    assert_eq!(env.sim.stats.requests_for(Endpoint::BizSummary), 1);

    // The next sync the same day fetches only the refresh windows.
    env.sim.stats.reset();
    engine.sync(None, &CancellationToken::new()).await.unwrap();
    let per_endpoint: Vec<usize> = Endpoint::ALL
        .iter()
        .map(|e| env.sim.stats.requests_for(*e))
        .collect();
    // summary, total, userread (7 days in 3-day chunks), readhour, share (7 in one), sharehour, read, share, biz, totaldetail (30 days),
    // the two follower series (7 days in one chunk each), and the catalogue (its first page, unchanged).
    assert_eq!(per_endpoint, [7, 7, 3, 7, 1, 7, 7, 7, 1, 30, 1, 1, 1]);
}

#[tokio::test]
async fn sync_after_downtime_fills_the_gap() {
    let manual = ManualClock::new(fixed_now());
    let env = TestEnv::with(SimOptions {
        clock: manual.clock(),
        ..SimOptions::default()
    })
    .await;
    let settings = env.settings(&[("WXCUBE_ENDPOINTS", "getusershare,getbizsummary")]);
    let store = wxcube::store::Store::open(&settings.database)
        .await
        .unwrap();
    let engine =
        wxcube::ingest::Engine::new(std::sync::Arc::new(settings), store, manual.clock()).unwrap();
    engine.sync(None, &CancellationToken::new()).await.unwrap();
    // Twelve days of downtime.
    manual.advance_days(12);
    env.sim.stats.reset();
    let report = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(report.exit_code(), 0);
    let latest = manual.today().pred_opt().unwrap();
    assert_matches_truth(
        &engine.store,
        &[Endpoint::UserShare, Endpoint::BizSummary],
        "2026-02-13",
        &latest.to_string(),
        manual.today(),
    )
    .await;
    assert_eq!(
        env.sim.stats.requests_for(Endpoint::BizSummary),
        1,
        "the 12-day gap and refresh window in one getbizsummary chunk"
    );
}

#[tokio::test]
async fn daily_quota_on_one_endpoint_leaves_the_others_complete_and_the_next_day_finishes() {
    let manual = ManualClock::new(fixed_now());
    let env = TestEnv::with(SimOptions {
        clock: manual.clock(),
        ..SimOptions::default()
    })
    .await;
    env.set_faults("daily_quota_after=3,daily_quota_endpoint=getarticlesummary");
    let settings = env.settings(&[("WXCUBE_CONCURRENCY", "1")]);
    let store = wxcube::store::Store::open(&settings.database)
        .await
        .unwrap();
    let engine =
        wxcube::ingest::Engine::new(std::sync::Arc::new(settings), store, manual.clock()).unwrap();
    let report = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(report.exit_code(), 1);
    assert_eq!(
        env.sim.stats.requests_for(Endpoint::ArticleSummary),
        4,
        "no request after the 45009"
    );
    let quota_rows: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM fetches WHERE errcode = 45009 AND endpoint = 'getarticlesummary'",
    )
    .fetch_one(engine.store.pool())
    .await
    .unwrap();
    assert_eq!(quota_rows, 1);
    // Every other endpoint is complete.
    let others: Vec<Endpoint> = datacube()
        .into_iter()
        .filter(|e| *e != Endpoint::ArticleSummary)
        .collect();
    assert_matches_truth(
        &engine.store,
        &others,
        "2026-02-13",
        "2026-03-14",
        manual.today(),
    )
    .await;

    // Same China day: the endpoint is left alone.
    env.sim.stats.reset();
    engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(env.sim.stats.requests_for(Endpoint::ArticleSummary), 0);

    // Next day: the quota is back and the sync completes the rest.
    manual.advance_days(1);
    env.set_faults("");
    let report = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    let latest = manual.today().pred_opt().unwrap().to_string();
    assert_matches_truth(
        &engine.store,
        &[Endpoint::ArticleSummary],
        "2026-02-14",
        &latest,
        manual.today(),
    )
    .await;
}

#[tokio::test]
async fn a_reader_holding_a_transaction_does_not_make_ingestion_fail() {
    use sqlx::Connection;
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    backfill(&engine, "2026-03-01", "2026-03-03", &[]).await;
    let url = format!("sqlite://{}", env.db_path().display());
    let mut reader = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
    let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_read_hourly")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    let report = backfill(&engine, "2026-03-04", "2026-03-14", &[]).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    // The reader still sees its snapshot; the writer committed beside it.
    let during: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_read_hourly")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(before, during);
    sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM user_read_hourly")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert!(after > before);
}

#[tokio::test]
async fn rows_outside_the_requested_dates_never_overwrite_stored_days() {
    let env = TestEnv::new().await;
    let engine = env
        .engine(&[("WXCUBE_ENDPOINTS", "getuserread,getusershare")])
        .await;
    backfill(&engine, "2026-02-01", "2026-03-14", &[]).await;
    let clean = digest(&engine.store).await;
    env.set_faults("outside_rows=1");
    let request = wxcube::ingest::BackfillRequest {
        from: d("2026-02-10"),
        to: d("2026-03-14"),
        account: None,
        endpoints: vec![],
        refetch: true,
        progress: false,
    };
    let report = engine
        .backfill(&request, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0);
    assert_eq!(digest(&engine.store).await, clean);
}

#[tokio::test]
async fn a_killed_run_leaves_no_partial_chunk_and_the_next_run_finishes() {
    let env = TestEnv::with(SimOptions {
        clock: Clock::fixed(fixed_now()),
        ..SimOptions::default()
    })
    .await;
    env.set_faults("latency_ms=40");
    let engine = env.engine(&[("WXCUBE_ENDPOINTS", "getuserreadhour")]).await;
    let cancel = CancellationToken::new();
    let request = wxcube::ingest::BackfillRequest {
        from: d("2026-01-01"),
        to: d("2026-03-14"),
        account: None,
        endpoints: vec![],
        refetch: false,
        progress: false,
    };
    let stopper = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stopper.cancel();
    });
    let report = engine.backfill(&request, &cancel).await.unwrap();
    assert!(report.cancelled);
    assert!(report.chunks_ok < 73, "the run was not interrupted");
    // Every stored day is complete: as many hourly rows as the truth for the days in the ledger.
    let stored_days: Vec<String> =
        sqlx::query_scalar("SELECT begin_date FROM fetches WHERE status = 'ok'")
            .fetch_all(engine.store.pool())
            .await
            .unwrap();
    let data_days: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT ref_date) FROM user_read_hourly")
            .fetch_one(engine.store.pool())
            .await
            .unwrap();
    assert!(data_days <= stored_days.len() as i64);
    env.set_faults("");
    let report = engine
        .backfill(&request, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.exit_code(), 0);
    assert_matches_truth(
        &engine.store,
        &[Endpoint::UserReadHour],
        "2026-01-01",
        "2026-03-14",
        today(),
    )
    .await;
}

#[tokio::test]
async fn refused_credentials_ask_for_a_token_once_per_run_and_fail_every_chunk() {
    let env = TestEnv::with(SimOptions {
        clock: Clock::fixed(fixed_now()),
        secret: Some("another-secret".into()),
        ..SimOptions::default()
    })
    .await;
    let engine = env
        .engine(&[("WXCUBE_ENDPOINTS", "getusershare,getbizsummary")])
        .await;
    let report = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(report.exit_code(), 1);
    assert_eq!(report.chunks_failed, report.chunks_planned);
    assert_eq!(
        env.sim.stats.token_requests(),
        1,
        "the token endpoint was asked again after refusing"
    );
    assert_eq!(env.sim.stats.datacube_requests(), 0);
    assert!(
        report.failures.iter().all(|f| f.contains("40125")),
        "{:?}",
        report.failures
    );
}

#[tokio::test]
async fn status_names_a_hole_in_the_stored_history() {
    let env = TestEnv::new().await;
    let engine = env.engine(&[("WXCUBE_ENDPOINTS", "getusershare")]).await;
    backfill(&engine, "2026-01-01", "2026-01-10", &[]).await;
    backfill(&engine, "2026-01-20", "2026-03-14", &[]).await;
    let statuses = wxcube::status::collect(&engine.settings, &engine.store, &env.clock, None)
        .await
        .unwrap();
    assert_eq!(statuses.len(), 1);
    let s = &statuses[0];
    assert_eq!(s.first_day, Some(d("2026-01-01")));
    assert_eq!(s.last_day, Some(d("2026-03-14")));
    assert_eq!(s.missing, ["2026-01-11..2026-01-19"]);
    assert_eq!(s.missing_days, 9);
    assert!(s.last_error.is_none() && !s.offline);
}
