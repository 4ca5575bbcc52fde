//! The current endpoints: the switch-off of the legacy six (47009), delayed
//! answers and 61503 converging over repeated syncs.

use tokio_util::sync::CancellationToken;
use wxcube::endpoint::{Endpoint, Family};
use wxcube::sim::SimOptions;

use crate::helpers::*;

fn family(family: Family) -> Vec<Endpoint> {
    Endpoint::ALL
        .into_iter()
        .filter(|e| e.family() == family)
        .collect()
}

#[tokio::test]
async fn legacy_offline_first_sync_exits_1_then_the_next_skips_them_and_exits_0() {
    let env = TestEnv::new().await;
    env.set_faults("offline_legacy=1");
    let engine = env.engine(&[]).await;
    let report = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(report.exit_code(), 1);
    for endpoint in family(Family::Legacy) {
        assert!(
            report
                .failures
                .iter()
                .any(|f| f.contains(endpoint.name()) && f.contains("47009")),
            "{endpoint} not named among the failures"
        );
    }
    let offline_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT endpoint) FROM fetches WHERE errcode = 47009")
            .fetch_one(engine.store.pool())
            .await
            .unwrap();
    assert_eq!(offline_rows, 6);
    // After its first 47009 an endpoint is not called again in the run (a few
    // requests may already have been in flight).
    for endpoint in family(Family::Legacy) {
        assert!(
            env.sim.stats.requests_for(endpoint) <= 4,
            "{endpoint} kept being called while offline"
        );
    }
    assert_matches_truth(
        &engine.store,
        &family(Family::Current),
        "2026-02-13",
        "2026-03-14",
        today(),
    )
    .await;

    env.sim.stats.reset();
    let report = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    for endpoint in family(Family::Legacy) {
        assert_eq!(
            env.sim.stats.requests_for(endpoint),
            0,
            "{endpoint} was called while offline"
        );
    }
    // status says offline.
    let statuses = wxcube::status::collect(&engine.settings, &engine.store, &env.clock, None)
        .await
        .unwrap();
    for s in &statuses {
        let legacy = family(Family::Legacy)
            .iter()
            .any(|e| e.name() == s.endpoint);
        assert_eq!(s.offline, legacy, "{}", s.endpoint);
    }
}

#[tokio::test]
async fn an_explicit_backfill_endpoint_tries_an_offline_endpoint_anyway() {
    let env = TestEnv::new().await;
    env.set_faults("offline_legacy=1");
    let engine = env.engine(&[]).await;
    engine.sync(None, &CancellationToken::new()).await.unwrap();
    env.sim.stats.reset();
    // Not named: skipped. Named: tried.
    backfill(&engine, "2026-03-10", "2026-03-14", &[]).await;
    assert_eq!(env.sim.stats.requests_for(Endpoint::UserRead), 0);
    env.set_faults("");
    let report = backfill(&engine, "2026-03-10", "2026-03-14", &[Endpoint::UserRead]).await;
    assert_eq!(report.exit_code(), 0);
    assert_eq!(env.sim.stats.requests_for(Endpoint::UserRead), 2);
}

#[tokio::test]
async fn delayed_answers_and_not_ready_converge_over_repeated_syncs() {
    let manual = ManualClock::new(fixed_now());
    let env = TestEnv::with(SimOptions {
        clock: manual.clock(),
        ..SimOptions::default()
    })
    .await;
    env.set_faults("delay=0.4,not_ready=0.2,seed=11");
    let settings = env.settings(&[(
        "WXCUBE_ENDPOINTS",
        "getarticleread,getarticleshare,getbizsummary,getarticletotaldetail",
    )]);
    let store = wxcube::store::Store::open(&settings.database)
        .await
        .unwrap();
    let engine =
        wxcube::ingest::Engine::new(std::sync::Arc::new(settings), store, manual.clock()).unwrap();
    let first = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert!(
        first.chunks_failed > 0,
        "61503 was expected in the first sync"
    );
    let delayed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM fetches WHERE is_delay = 1")
        .fetch_one(engine.store.pool())
        .await
        .unwrap();
    assert!(delayed > 0, "some answers were expected to be delayed");
    // A few more syncs with WeChat still computing, then WeChat catches up.
    for _ in 0..3 {
        engine.sync(None, &CancellationToken::new()).await.unwrap();
    }
    env.set_faults("");
    let last = engine.sync(None, &CancellationToken::new()).await.unwrap();
    assert_eq!(last.exit_code(), 0, "{:?}", last.failures);
    let statuses = wxcube::status::collect(&engine.settings, &engine.store, &manual.clock(), None)
        .await
        .unwrap();
    for s in &statuses {
        assert_eq!(s.delayed_days, 0, "{} still has delayed days", s.endpoint);
        assert_eq!(s.missing_days, 0, "{} still has missing days", s.endpoint);
    }
    assert_matches_truth(
        &engine.store,
        &family(Family::Current),
        "2026-02-13",
        "2026-03-14",
        manual.today(),
    )
    .await;
}
