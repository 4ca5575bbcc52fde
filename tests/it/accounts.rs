//! Many accounts (README "Many accounts"): bounded account parallelism, tokens
//! from a `token_command`, quota planning and pacing, and `status` for many
//! accounts. The binary runs against the in-process simulator on the real
//! clock; the quota tests, which need a day to pass, drive the engine with a
//! clock they move (the simulator shares it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::{Map, Value};
use wxcube::clock::days;
use wxcube::endpoint::Endpoint;
use wxcube::ingest::Engine;
use wxcube::sim::SimOptions;

use crate::checks::assert_database_free_of;
use crate::driver::{BIN, Run, TestCommand};
use crate::helpers::*;

/// The endpoints of the binary tests: one of each span (1, 3, 7), so that a
/// sync of fifty accounts stays quick in a debug build.
const ENDPOINTS: [Endpoint; 3] = [
    Endpoint::ArticleSummary,
    Endpoint::UserRead,
    Endpoint::UserSummary,
];

/// The `n`-th test appid.
fn appid(n: usize) -> String {
    format!("wxacct{n:010}")
}

/// A configuration file of `n` accounts: `account(i)` gives each one's
/// credential lines (`secret = ...` or nothing, for the default token command).
fn write_config(dir: &Path, n: usize, top: &str, account: impl Fn(usize) -> String) -> PathBuf {
    let mut text = format!(
        "endpoints = [{}]\nrefresh_days = 3\ncatch_up_days = 3\n{top}\n",
        ENDPOINTS
            .iter()
            .map(|e| format!("\"{}\"", e.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for i in 0..n {
        text.push_str(&format!(
            "\n[[accounts]]\nappid = \"{}\"\nname = \"Account {i}\"\n{}\n",
            appid(i),
            account(i)
        ));
    }
    let path = dir.join("wxcube.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The binary with `config`, the simulator and quick retries (no account in
/// the environment: the file has them all).
fn wxcube(env: &TestEnv, config: &Path) -> TestCommand {
    TestCommand::new()
        .dir(env.dir.path())
        .env("WXCUBE_CONFIG", config)
        .env("WXCUBE_DATABASE", env.db_path())
        .env("WXCUBE_API_BASE", env.sim.base_url())
        .env("WXCUBE_RETRY_BASE_MS", "5")
        .env("WXCUBE_MINUTE_QUOTA_WAIT_SECS", "0")
        .env("WXCUBE_HTTP_TIMEOUT_SECS", "5")
}

/// `["BIN", "sim-token", "--api-base", URL, "{appid}"]` as TOML.
fn sim_token_command(env: &TestEnv) -> String {
    format!(
        "[\"{BIN}\", \"sim-token\", \"--api-base\", \"{}\", \"{{appid}}\"]",
        env.sim.base_url()
    )
}

async fn open_store(env: &TestEnv) -> wxcube::store::Store {
    wxcube::store::Store::open(&env.db_path().display().to_string())
        .await
        .unwrap()
}

/// The days a first sync of the test configuration covers (3 days to yesterday).
fn synced_days() -> (NaiveDate, NaiveDate) {
    let latest = china_yesterday();
    (latest - chrono::Days::new(2), latest)
}

/// Asserts that `appid`'s rows of every table of `endpoints` are exactly the
/// generator's for `from..=to`: same keys, same values, nothing more.
async fn assert_account_exact(
    store: &wxcube::store::Store,
    appid: &str,
    endpoints: &[Endpoint],
    from: NaiveDate,
    to: NaiveDate,
) {
    let today = china_today();
    let mut expected: BTreeMap<&'static str, Vec<Map<String, Value>>> = BTreeMap::new();
    for &endpoint in endpoints {
        for day in days(from, to) {
            for (table, rows) in wxcube::sim::truth::expected_rows(appid, endpoint, day, day, today)
            {
                expected.entry(table).or_default().extend(rows);
            }
        }
    }
    let mut compared = 0;
    for (table, rows) in expected {
        // Articles are shared by several endpoints: other tests check them.
        if table == "articles" {
            continue;
        }
        let keys = wxcube::store::tables::ALL_TABLES
            .iter()
            .find(|t| t.name == table)
            .unwrap()
            .keys;
        let key = |r: &Map<String, Value>| {
            keys.iter()
                .map(|k| r.get(*k).map(|v| v.to_string()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|")
        };
        let stored: BTreeMap<String, Map<String, Value>> = table_rows_unsorted(store, table)
            .await
            .into_iter()
            .filter(|r| r["appid"] == appid)
            .map(|r| (key(&r), r))
            .collect();
        let want: BTreeMap<String, &Map<String, Value>> =
            rows.iter().map(|r| (key(r), r)).collect();
        assert_eq!(
            stored.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{appid} {table}: stored keys differ from the truth"
        );
        for (k, row) in want {
            for (column, value) in row {
                assert!(
                    same_value(&stored[&k][column], value),
                    "{appid} {table} {k}: {column} stored {} expected {value}",
                    stored[&k][column]
                );
            }
            compared += 1;
        }
    }
    assert!(compared > 0, "{appid}: the truth was empty");
}

fn assert_exit(run: &Run, code: i32) {
    assert_eq!(run.code, Some(code), "exit code; output:\n{}", run.text());
}

#[tokio::test]
async fn fifty_accounts_sync_with_at_most_four_in_flight_and_every_row_exact() {
    let env = TestEnv::live().await;
    // A little latency, so that accounts overlap whenever they are allowed to.
    env.set_faults("latency_ms=5");
    let config = write_config(env.dir.path(), 50, "account_concurrency = 4", |i| {
        format!("secret = \"secret-{i}\"")
    });
    let run = wxcube(&env, &config).args(["sync"]).run().await;
    assert_exit(&run, 0);
    let max = env.sim.stats.max_accounts_in_flight();
    assert!(max <= 4, "{max} accounts were in flight at once");
    assert!(max >= 2, "accounts did not run in parallel ({max})");
    // One token per account, one quota look-up per account and endpoint.
    for i in 0..50 {
        assert_eq!(
            env.sim.stats.token_requests_of(&appid(i)),
            1,
            "{}",
            appid(i)
        );
    }
    assert_eq!(env.sim.stats.quota_lookups(), 50 * ENDPOINTS.len());
    let store = open_store(&env).await;
    let (from, to) = synced_days();
    for i in 0..50 {
        assert_account_exact(&store, &appid(i), &ENDPOINTS, from, to).await;
    }
    // Data differ by appid: two accounts' read series are not the same.
    let reads = |a: String| {
        let store = &store;
        async move {
            table_rows(store, "user_read_daily")
                .await
                .into_iter()
                .filter(|r| r["appid"] == a.as_str())
                .map(|mut r| {
                    r.remove("appid");
                    r.remove("fetched_at");
                    Value::Object(r).to_string()
                })
                .collect::<Vec<_>>()
        }
    };
    assert_ne!(reads(appid(0)).await, reads(appid(1)).await);
}

#[tokio::test]
async fn a_token_command_is_run_once_per_account_and_its_tokens_never_show() {
    let env = TestEnv::live().await;
    let top = format!("token_command = {}", sim_token_command(&env));
    let config = write_config(env.dir.path(), 3, &top, |_| String::new());
    let run = wxcube(&env, &config).args(["sync", "-v"]).run().await;
    assert_exit(&run, 0);
    // The cache: one run of the program per account for every request of the run.
    for i in 0..3 {
        assert_eq!(env.sim.stats.token_requests_of(&appid(i)), 1);
    }
    let requests = env.sim.stats.datacube_requests();
    assert!(requests >= 3 * ENDPOINTS.len(), "{requests} requests");
    let store = open_store(&env).await;
    let (from, to) = synced_days();
    assert_account_exact(&store, &appid(2), &ENDPOINTS, from, to).await;
    let status = wxcube(&env, &config).args(["status", "--json"]).run().await;
    assert_exit(&status, 0);
    let tokens = env.sim.stats.issued_tokens();
    assert_eq!(tokens.len(), 3);
    assert_no_secrets(&run.text(), &tokens, "sync output");
    assert_no_secrets(&status.text(), &tokens, "status output");
    assert_database_free_of(&store, &tokens, "database").await;
}

#[tokio::test]
async fn after_a_40001_the_token_command_runs_again_with_refresh_set_and_the_request_is_retried() {
    let env = TestEnv::live().await;
    // The first datacube request finds its token revoked, as when another
    // service of the appid refreshed it.
    env.set_faults("revoke_token=1");
    let account = format!("token_command = {}", sim_token_command(&env));
    let config = write_config(env.dir.path(), 1, "concurrency = 1", |_| account.clone());
    let run = wxcube(&env, &config).args(["sync", "-v"]).run().await;
    assert_exit(&run, 0);
    // Run twice: once at the start, once after the 40001 with WXCUBE_TOKEN_REFRESH=1
    // (which `sim-token` turns into `force_refresh`).
    assert_eq!(env.sim.stats.token_requests_of(&appid(0)), 2);
    assert_eq!(env.sim.stats.force_refreshes(), 1);
    let log = env.sim.stats.log();
    assert_eq!(log.iter().filter(|r| r.errcode == 40001).count(), 1);
    // The refused request was retried with the new token and stored.
    let first = &log[0];
    assert!(
        log[1..].iter().any(|r| r.endpoint == first.endpoint
            && r.begin_date == first.begin_date
            && r.errcode == 0),
        "the refused chunk was not retried"
    );
    assert!(
        run.stderr.contains("access token rejected"),
        "{}",
        run.stderr
    );
    assert_no_secrets(&run.text(), &env.sim.stats.issued_tokens(), "sync output");
}

#[tokio::test]
async fn a_token_command_that_hangs_is_killed_at_its_timeout_and_fails_only_its_account() {
    let env = TestEnv::live().await;
    let config = write_config(env.dir.path(), 2, "token_command_timeout_secs = 1", |i| {
        if i == 0 {
            "token_command = [\"sleep\", \"30\"]".to_string()
        } else {
            "secret = \"good\"".to_string()
        }
    });
    let started = Instant::now();
    let run = wxcube(&env, &config).args(["sync"]).run().await;
    assert_exit(&run, 1);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains(&format!("account {}", appid(0)))
            && run.stderr.contains("timed out after 1 s"),
        "{}",
        run.stderr
    );
    let store = open_store(&env).await;
    let (from, to) = synced_days();
    assert_account_exact(&store, &appid(1), &ENDPOINTS, from, to).await;
}

#[tokio::test]
async fn a_failing_token_command_is_named_by_account_and_exit_status_never_by_its_output() {
    let env = TestEnv::live().await;
    let leak = "LEAKED-TOKEN-4f9a8b7c6d5e";
    let account = format!(
        "token_command = [\"sh\", \"-c\", \"echo '{{\\\"access_token\\\": \\\"{leak}\\\"}}'; echo {leak} >&2; exit 7\"]"
    );
    let config = write_config(env.dir.path(), 1, "", |_| account.clone());
    let run = wxcube(&env, &config).args(["sync", "-vv"]).run().await;
    assert_exit(&run, 1);
    assert!(
        run.stderr.contains(&format!("account {}", appid(0))),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("exit status 7"), "{}", run.stderr);
    let status = wxcube(&env, &config).args(["status"]).run().await;
    let json = wxcube(&env, &config).args(["status", "--json"]).run().await;
    assert!(status.stdout.contains("exit status 7"), "{}", status.stdout);
    let secrets = vec![leak.to_string()];
    for (what, text) in [
        ("sync", run.text()),
        ("status", status.text()),
        ("json", json.text()),
    ] {
        assert_no_secrets(&text, &secrets, what);
    }
    assert_database_free_of(&open_store(&env).await, &secrets, "database").await;
}

#[tokio::test]
async fn an_account_with_a_secret_and_a_token_command_is_refused_naming_it() {
    let env = TestEnv::live().await;
    let config = write_config(env.dir.path(), 2, "", |i| {
        if i == 1 {
            "secret = \"s\"\ntoken_command = [\"true\"]".to_string()
        } else {
            "secret = \"s\"".to_string()
        }
    });
    let run = wxcube(&env, &config).args(["sync"]).run().await;
    assert_exit(&run, 2);
    assert!(
        run.stderr.contains(&appid(1)) && run.stderr.contains("token_command"),
        "{}",
        run.stderr
    );
    assert_eq!(env.sim.stats.token_requests(), 0);
}

#[tokio::test]
async fn two_broken_accounts_among_fifty_leave_the_others_exact_and_lead_the_status() {
    let env = TestEnv::live().await;
    let (broken_token, unauthorised) = (appid(7), appid(31));
    env.set_faults(&format!(
        "token_fail={broken_token},unauthorised={unauthorised}:getuserread"
    ));
    let top = format!("token_command = {}", sim_token_command(&env));
    let config = write_config(env.dir.path(), 50, &top, |_| String::new());
    let run = wxcube(&env, &config).args(["sync"]).run().await;
    assert_exit(&run, 1);
    assert!(
        run.stderr.contains(&format!("account {broken_token}")),
        "{}",
        run.stderr
    );
    // 61007 stops that endpoint after one request; the others of the account go on.
    let refused: Vec<_> = env
        .sim
        .stats
        .log()
        .into_iter()
        .filter(|r| r.appid == unauthorised && r.endpoint == "getuserread")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    let store = open_store(&env).await;
    let (from, to) = synced_days();
    for i in (0..50).filter(|i| ![7, 31].contains(i)) {
        assert_account_exact(&store, &appid(i), &ENDPOINTS, from, to).await;
    }
    assert_account_exact(
        &store,
        &unauthorised,
        &[Endpoint::ArticleSummary, Endpoint::UserSummary],
        from,
        to,
    )
    .await;
    let status = wxcube(&env, &config).args(["status"]).run().await;
    assert_exit(&status, 0);
    let lines: Vec<&str> = status.stdout.lines().collect();
    // A count line, a header, then one line per account, the broken first.
    assert_eq!(lines.len(), 2 + 50, "{}", status.stdout);
    assert!(
        lines[0].contains("50 accounts: 1 failing, 1 unauthorised, 48 ok"),
        "{}",
        lines[0]
    );
    assert!(
        lines[2].starts_with(&broken_token) && lines[2].contains("FAILING"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].starts_with(&unauthorised) && lines[3].contains("UNAUTHORISED"),
        "{}",
        lines[3]
    );
    assert!(lines[3].contains("getuserread (61007)"), "{}", lines[3]);
    assert!(
        lines[4..].iter().all(|l| l.contains(" ok ")),
        "{}",
        status.stdout
    );
    // The detail of one account, and everything as JSON.
    let detail = wxcube(&env, &config)
        .args(["status", "--account", &unauthorised])
        .run()
        .await;
    assert!(
        detail.stdout.contains("UNAUTHORISED (61007)"),
        "{}",
        detail.stdout
    );
    let json = wxcube(&env, &config).args(["status", "--json"]).run().await;
    let all: Vec<Value> = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(all.len(), 50 * ENDPOINTS.len());
    let entry = all
        .iter()
        .find(|s| s["appid"] == unauthorised.as_str() && s["endpoint"] == "getuserread")
        .unwrap();
    assert_eq!(entry["unauthorised"], 61007);
    assert_no_secrets(&run.text(), &env.sim.stats.issued_tokens(), "sync output");
}

/// A simulator with `faults` on a clock the test moves (the engines of
/// `env.engine` run on the fixed clock of the same day).
async fn quota_env(faults: &str) -> (TestEnv, ManualClock) {
    // Early in a China day, so that the backfill's days are all final.
    let clock = ManualClock::new(fixed_now());
    let env = TestEnv::with(SimOptions {
        clock: clock.clock(),
        faults: wxcube::sim::FaultSpec::parse(faults).unwrap(),
        ..SimOptions::default()
    })
    .await;
    (env, clock)
}

#[tokio::test]
async fn a_quota_smaller_than_the_plan_sends_remain_minus_reserve_newest_first_and_the_next_day_completes()
 {
    // 20 calls a day, 10 % (2) kept for other systems: 18 of the 30 days today.
    let (env, clock) = quota_env(&format!("quota_limit={APPID}:20")).await;
    let engine = env.engine(&[]).await;
    let endpoint = [Endpoint::ArticleSummary];
    let report = backfill(&engine, "2026-01-01", "2026-01-30", &endpoint).await;
    assert_eq!(report.exit_code(), 1, "{:?}", report.failures);
    assert_eq!((report.chunks_ok, report.chunks_not_sent), (18, 12));
    let log = env.sim.stats.log();
    assert_eq!(log.len(), 18);
    assert!(log.iter().all(|r| r.errcode == 0));
    let sent: std::collections::BTreeSet<String> =
        log.iter().map(|r| r.begin_date.clone()).collect();
    let newest: std::collections::BTreeSet<String> = days(d("2026-01-13"), d("2026-01-30"))
        .map(|d| d.to_string())
        .collect();
    assert_eq!(sent, newest, "not the newest 18 days");
    let quota = engine.store.quota_seen(APPID).await.unwrap();
    assert_eq!(quota.len(), 1);
    let q = &quota[0];
    assert_eq!(
        (q.daily_limit, q.remain, q.reserve, q.sent),
        (20, 20, 2, 18)
    );
    assert!(q.spent_on(today()));

    // The next China day the quota is whole again: the rest comes in.
    clock.advance_days(1);
    env.sim.stats.reset();
    let engine = Engine::new(engine.settings.clone(), engine.store.clone(), clock.clock()).unwrap();
    let report = backfill(&engine, "2026-01-01", "2026-01-30", &endpoint).await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    assert_eq!(env.sim.stats.log().len(), 12);
    assert_matches_truth(
        &engine.store,
        &endpoint,
        "2026-01-01",
        "2026-01-30",
        clock.today(),
    )
    .await;
}

#[tokio::test]
async fn without_a_quota_look_up_the_client_falls_back_to_45009() {
    let (env, _clock) = quota_env(&format!("quota_unknown,quota_limit={APPID}:20")).await;
    let engine = env.engine(&[]).await;
    let report = backfill(
        &engine,
        "2026-01-01",
        "2026-01-30",
        &[Endpoint::ArticleSummary],
    )
    .await;
    assert_eq!(report.exit_code(), 1);
    // All 20 of the day were spent, then 45009 stopped the endpoint (only
    // the requests already in flight, at most `concurrency`, met it).
    assert_eq!(report.chunks_ok, 20);
    let log = env.sim.stats.log();
    let refused = log.iter().filter(|r| r.errcode == 45009).count();
    assert!((1..=4).contains(&refused), "{refused} answers 45009");
    assert_eq!(log.len(), 20 + refused);
    assert!(engine.store.quota_seen(APPID).await.unwrap().is_empty());
}

#[tokio::test]
async fn requests_are_paced_within_the_rate_limit() {
    let (env, _clock) = quota_env("rate_limit=4/1").await;
    let engine = env.engine(&[("WXCUBE_CONCURRENCY", "4")]).await;
    let started = Instant::now();
    let report = backfill(
        &engine,
        "2026-01-01",
        "2026-01-12",
        &[Endpoint::ArticleSummary],
    )
    .await;
    assert_eq!(report.exit_code(), 0, "{:?}", report.failures);
    let log = env.sim.stats.log();
    assert_eq!(log.len(), 12);
    assert!(log.iter().all(|r| r.errcode != 45011), "45011 answered");
    // 12 requests at 4 a second need at least two full windows.
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Without the look-up (hence without pacing) the same run meets 45011.
    env.sim.stats.reset();
    let engine = env
        .engine(&[("WXCUBE_CONCURRENCY", "4"), ("WXCUBE_QUOTA_CHECK", "false")])
        .await;
    let request = wxcube::ingest::BackfillRequest {
        from: d("2026-02-01"),
        to: d("2026-02-12"),
        account: None,
        endpoints: vec![Endpoint::ArticleSummary],
        refetch: false,
        progress: false,
    };
    let _ = engine
        .backfill(&request, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert!(env.sim.stats.log().iter().any(|r| r.errcode == 45011));
}
