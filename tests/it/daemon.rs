//! The real `wxcube daemon` (and `backfill`/`sync` beside it) as separate
//! processes against the in-process simulator on the real clock: scheduled
//! runs after the catch-up, gap filling at start, the schedule in China time
//! whatever `TZ` says, SIGTERM/SIGINT during slow runs (exit 0 within 10 s, no
//! partial chunk, a second signal exits at once), the daemon's lifetime lock
//! against a second daemon while manual syncs still run, `sync --wait`, log
//! formats on a pipe, and sd_notify READY/STOPPING.
//!
//! Processes are synchronised on their stderr lines, their exit and the
//! database, never on sleeps alone; every wait has a deadline, and a process
//! still running when a test ends is killed.
//!
//! The suite opens with its scenarios; processes are run by [`crate::driver`],
//! the database checks are [`crate::checks`], and the suite's own set-up is at
//! the end of this file.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Days, Timelike, Utc};
use serde_json::Value;
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use wxcube::clock::CHINA;
use wxcube::endpoint::Endpoint;
use wxcube::store::Store;

use crate::checks::*;
use crate::driver::{Proc, STOP_LIMIT, TestCommand, secs};
use crate::helpers::*;

/// The line that opens the daemon's first run.
const CATCH_UP: &str = "catch-up at start sync starting";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_firing_after_start_runs_a_sync_that_stores_yesterday() {
    let env = TestEnv::live().await;
    let yesterday = china_yesterday();
    let mut daemon = start_daemon(&env, &[("WXCUBE_SCHEDULE", "*/3 * * * * *")], &[]);
    let catch_up = daemon.wait_for(0, CATCH_UP, secs(10)).await;
    let catch_up_done = daemon.wait_for(catch_up, "run finished", secs(10)).await;
    let scheduled = daemon
        .wait_for(catch_up_done, "scheduled sync starting", secs(10))
        .await;
    let stored = daemon
        .wait_line(scheduled, "a stored chunk", secs(10), |l| {
            l.contains(" stored ") && l.contains("endpoint=getuserread")
        })
        .await;
    daemon.wait_for(stored, "run finished", secs(10)).await;
    daemon.stop_with(libc::SIGTERM).await;
    assert!(daemon.stdout().is_empty());

    // One `runs` row per "sync starting" line, each finished in turn, all ok.
    let store = open(&env).await;
    let runs = runs(&store).await;
    assert_eq!(
        runs.len(),
        daemon.count_lines("sync starting"),
        "{runs:?}\n{}",
        daemon.stderr()
    );
    assert!(runs.len() >= 2, "{runs:?}");
    for pair in runs.windows(2) {
        let finished = pair[0].3.as_deref().expect("a run was left unfinished");
        assert!(finished <= pair[1].2.as_str(), "runs overlapped: {runs:?}");
    }
    for run in &runs[..2] {
        assert_eq!(run.1, "sync");
        assert_eq!(run.5, "ok", "{runs:?}");
        assert!(run.4 >= 1, "the run stored nothing: {runs:?}");
    }
    // The scheduled run fetched yesterday again (the refresh window) after
    // the catch-up run had fetched it as part of its chunk.
    let fetched_at: String = sqlx::query_scalar(
        "SELECT fetched_at FROM fetches WHERE endpoint = 'getuserread' AND status = 'ok' AND begin_date = ? AND end_date = ?",
    )
    .bind(yesterday.to_string())
    .bind(yesterday.to_string())
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(fetched_at >= runs[1].2, "{fetched_at} {runs:?}");
    let from = (yesterday - Days::new(2)).to_string();
    assert_matches_truth(
        &store,
        &[Endpoint::UserRead],
        &from,
        &yesterday.to_string(),
        china_today(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_after_downtime_fills_the_gap_at_start() {
    let env = TestEnv::live().await;
    let y = china_yesterday();
    let day = |n: u64| (y - Days::new(n)).to_string();
    // Days y-9..y-5 were stored before the downtime; then y-7 was lost.
    let out = wxcube_in(&env, &daemon_env(&env, &[]))
        .args(hourly_backfill(&day(9), &day(5)))
        .run()
        .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    {
        let store = open(&env).await;
        for sql in [
            "DELETE FROM fetches WHERE begin_date = ?",
            "DELETE FROM raw_responses WHERE begin_date = ?",
            "DELETE FROM user_read_hourly WHERE ref_date = ?",
        ] {
            sqlx::query(sql)
                .bind(day(7))
                .execute(store.pool())
                .await
                .unwrap();
        }
        assert_eq!(ok_days(&store, Endpoint::UserReadHour).await.len(), 4);
        store.close().await;
    }
    env.sim.stats.reset();

    let mut daemon = start_daemon(
        &env,
        &[
            ("WXCUBE_CATCH_UP_DAYS", "10"),
            ("WXCUBE_ENDPOINTS", "getuserreadhour"),
        ],
        &[],
    );
    let start = daemon.wait_for(0, CATCH_UP, secs(10)).await;
    daemon.wait_for(start, "run finished", secs(20)).await;
    daemon.stop_with(libc::SIGTERM).await;

    // Exactly the missing days were asked for: the hole and the days since.
    let requested: Vec<(String, String, String)> = env
        .sim
        .stats
        .log()
        .into_iter()
        .map(|r| (r.endpoint, r.begin_date, r.end_date))
        .collect();
    let expected: BTreeSet<(String, String, String)> = [7, 4, 3, 2, 1, 0]
        .into_iter()
        .map(|n| ("getuserreadhour".to_string(), day(n), day(n)))
        .collect();
    assert_eq!(requested.len(), expected.len(), "{requested:?}");
    assert_eq!(
        requested.into_iter().collect::<BTreeSet<_>>(),
        expected,
        "the daemon did not fetch exactly the gap"
    );
    let store = open(&env).await;
    assert_eq!(ok_days(&store, Endpoint::UserReadHour).await.len(), 10);
    assert_matches_truth(
        &store,
        &[Endpoint::UserReadHour],
        &day(9),
        &day(0),
        china_today(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_backfill_exits_0_quickly_and_leaves_whole_chunks() {
    let env = TestEnv::live().await;
    env.set_faults("latency_ms=300");
    let y = china_yesterday();
    // Days old enough to be final, so a second backfill asks only for the rest.
    let (from, to) = (
        (y - Days::new(40)).to_string(),
        (y - Days::new(11)).to_string(),
    );
    let vars = daemon_env(&env, &[("WXCUBE_CONCURRENCY", "2")]);
    let mut backfill = wxcube_in(&env, &vars)
        .args(hourly_backfill(&from, &to))
        .spawn();
    let mut at = 0;
    for _ in 0..3 {
        at = backfill
            .wait_line(at, "a stored chunk", secs(15), is_text_stored_line)
            .await
            + 1;
    }
    let took = backfill.stop_with(libc::SIGTERM).await;
    assert!(took < STOP_LIMIT);
    assert!(
        backfill.stderr().contains("stopped early by a signal"),
        "{}",
        backfill.stderr()
    );

    let store = open(&env).await;
    let ok = assert_no_partial_chunk(&store).await;
    assert!(
        ok.len() >= 3 && ok.len() < 30,
        "{} days stored: the backfill was not interrupted mid-way",
        ok.len()
    );
    let run = runs(&store).await;
    assert_eq!(run.len(), 1);
    assert_eq!(run[0].5, "cancelled", "{run:?}");
    store.close().await;

    // Run again: it finishes the rest, and only the rest.
    env.set_faults("");
    env.sim.stats.reset();
    let out = wxcube_in(&env, &vars)
        .args(hourly_backfill(&from, &to))
        .run()
        .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_eq!(env.sim.stats.datacube_requests(), 30 - ok.len());
    let store = open(&env).await;
    assert_matches_truth(&store, &[Endpoint::UserReadHour], &from, &to, china_today()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_catch_up_sync_stops_the_daemon_cleanly() {
    let env = TestEnv::live().await;
    env.set_faults("latency_ms=300");
    let mut daemon = start_daemon(
        &env,
        &[
            ("WXCUBE_CATCH_UP_DAYS", "30"),
            ("WXCUBE_ENDPOINTS", "getuserreadhour"),
            ("WXCUBE_CONCURRENCY", "2"),
        ],
        &[],
    );
    let start = daemon.wait_for(0, CATCH_UP, secs(10)).await;
    daemon
        .wait_line(start, "a stored chunk", secs(15), is_text_stored_line)
        .await;
    let took = daemon.stop_with(libc::SIGTERM).await;
    assert!(took < STOP_LIMIT);
    daemon.wait_for(0, "daemon stopped", secs(1)).await;

    let store = open(&env).await;
    let ok = assert_no_partial_chunk(&store).await;
    assert!(!ok.is_empty() && ok.len() < 30, "{} days stored", ok.len());
    let run = runs(&store).await;
    assert_eq!(run.len(), 1, "{run:?}");
    assert_eq!(run[0].5, "cancelled", "{run:?}");
    assert!(run[0].3.is_some(), "the run was not closed: {run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once_while_the_first_is_still_draining() {
    let env = TestEnv::live().await;
    // Another program holds SQLite's write lock: the daemon's first write
    // (its `runs` row) waits on the busy timeout, so the first signal cannot
    // finish the stop quickly; the second must end the process at once.
    let store = open(&env).await;
    let mut conn = hold_write_lock(&store).await;
    let mut daemon = start_daemon(&env, &[], &[]);
    daemon.wait_for(0, CATCH_UP, secs(10)).await;
    daemon.signal(libc::SIGINT);
    daemon.wait_for(0, "shutdown requested", secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        daemon.exited().is_none(),
        "the daemon stopped although its write was blocked: the test proves nothing"
    );
    daemon.signal(libc::SIGTERM);
    let (status, took) = daemon.wait_exit(secs(2)).await;
    assert_ne!(status.code(), Some(0), "{status}");
    assert!(took < secs(2), "{took:?}");
    assert!(daemon.stderr().contains("second signal"));
    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_another_program_holds_the_database_still_exits_0_within_10_s() {
    let env = TestEnv::live().await;
    // The daemon's first write waits on SQLite's 30 s busy timeout, which no
    // cancellation can interrupt: the stop deadline must end the process.
    let store = open(&env).await;
    let mut conn = hold_write_lock(&store).await;
    let mut daemon = start_daemon(&env, &[], &[]);
    daemon.wait_for(0, CATCH_UP, secs(10)).await;
    let took = daemon.stop_with(libc::SIGTERM).await;
    assert!(took < STOP_LIMIT, "{took:?}");
    assert!(
        daemon.stderr().contains("still not stopped"),
        "{}",
        daemon.stderr()
    );
    sqlx::query("ROLLBACK").execute(&mut *conn).await.unwrap();
    drop(conn);
    // Nothing was written behind the lock holder's back.
    assert_eq!(count(&store, "runs").await, 0);
    assert_eq!(count(&store, "fetches").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_exits_3_but_a_sync_runs_while_the_daemon_is_idle() {
    let env = TestEnv::live().await;
    let mut first = start_daemon(&env, &[], &[]);
    let start = first.wait_for(0, CATCH_UP, secs(10)).await;
    first.wait_for(start, "run finished", secs(10)).await;
    let requests = env.sim.stats.datacube_requests();

    let mut second = start_daemon(&env, &[], &[]);
    let (status, _) = second.wait_exit(secs(10)).await;
    assert_eq!(status.code(), Some(3), "{}", second.stderr());
    let message = second.stderr();
    assert!(
        message.contains(&format!("pid {}", first.pid())) && message.contains("daemon"),
        "the refusal does not name the holder: {message}"
    );
    assert_eq!(env.sim.stats.datacube_requests(), requests);

    // The idle daemon does not hold the writer lock: a manual sync runs.
    let out = wxcube_in(&env, &daemon_env(&env, &[]))
        .args(["sync"])
        .run()
        .await;
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert!(env.sim.stats.datacube_requests() > requests);
    first.stop_with(libc::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_wait_queues_behind_a_running_backfill() {
    let env = TestEnv::live().await;
    env.set_faults("latency_ms=250");
    let y = china_yesterday();
    let vars = daemon_env(
        &env,
        &[
            ("WXCUBE_CONCURRENCY", "1"),
            ("WXCUBE_ENDPOINTS", "getuserreadhour"),
        ],
    );
    let (from, to) = ((y - Days::new(5)).to_string(), y.to_string());
    let mut backfill = wxcube_in(&env, &vars)
        .args(hourly_backfill(&from, &to))
        .spawn();
    backfill
        .wait_line(0, "a stored chunk", secs(10), is_text_stored_line)
        .await;
    let mut sync = wxcube_in(&env, &vars).args(["sync", "--wait"]).spawn();
    let holder = format!(
        "waiting for the database lock held by pid {}",
        backfill.pid()
    );
    sync.wait_for(0, &holder, secs(10)).await;
    assert!(sync.exited().is_none(), "sync --wait did not wait");
    let (status, _) = backfill.wait_exit(secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", backfill.stderr());
    let (status, _) = sync.wait_exit(secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", sync.stderr());

    let store = open(&env).await;
    let runs = runs(&store).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(
        (runs[0].1.as_str(), runs[1].1.as_str()),
        ("backfill", "sync")
    );
    let backfill_end = runs[0].3.as_deref().unwrap();
    assert!(
        backfill_end <= runs[1].2.as_str(),
        "the sync ran before the backfill had finished: {runs:?}"
    );
    assert!(runs[1].4 >= 1, "the queued sync fetched nothing: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schedule_fires_in_china_time_whatever_tz_says() {
    let env = TestEnv::live().await;
    // A second a few seconds ahead, written as China wall-clock time.
    let target = (Utc::now() + chrono::Duration::seconds(6))
        .with_nanosecond(0)
        .unwrap();
    let china = target.with_timezone(&CHINA);
    let cron = format!(
        "{} {} {} * * *",
        china.second(),
        china.minute(),
        china.hour()
    );
    let vars = daemon_env(&env, &[("WXCUBE_SCHEDULE", &cron)]);
    let mut daemon = wxcube_in(&env, &vars)
        .args(["--log-format", "json", "daemon"])
        .env("TZ", "America/New_York")
        .spawn();
    let wait = (target - Utc::now()).to_std().unwrap_or_default() + secs(5);
    let at = daemon.wait_for(0, "scheduled sync starting", wait).await;
    let fired = timestamp(&daemon.lines()[at]);
    assert!(
        fired >= target && fired < target + chrono::Duration::seconds(3),
        "cron {cron:?} (China) for {target} fired at {fired}"
    );
    daemon.wait_for(at, "run finished", secs(10)).await;
    daemon.stop_with(libc::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_stdout_stays_empty() {
    let env = TestEnv::live().await;
    let mut daemon = start_daemon(&env, &[], &["-v", "--log-format", "json"]);
    daemon.wait_for(0, "run finished", secs(10)).await;
    daemon.stop_with(libc::SIGTERM).await;
    let lines = daemon.lines();
    let mut messages = Vec::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"));
        assert!(v.is_object(), "{line}");
        for field in ["timestamp", "level", "message"] {
            assert!(v.get(field).is_some(), "no {field}: {line}");
        }
        messages.push(v["message"].as_str().unwrap().to_string());
    }
    for wanted in ["daemon started", "stored", "run finished", "daemon stopped"] {
        assert!(
            messages.iter().any(|m| m == wanted),
            "no {wanted:?} in {messages:?}"
        );
    }
    assert!(daemon.stdout().is_empty(), "stdout: {:?}", daemon.stdout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_on_a_pipe_have_no_colour_codes_and_stdout_stays_empty() {
    let env = TestEnv::live().await;
    // No NO_COLOR, a colour terminal type: only the pipe says "no colours".
    let mut daemon = wxcube_in(&env, &daemon_env(&env, &[]))
        .args(["daemon"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .spawn();
    daemon.wait_for(0, "run finished", secs(10)).await;
    daemon.stop_with(libc::SIGTERM).await;
    let stderr = daemon.stderr();
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes: {stderr:?}");
    assert!(
        daemon.count_lines(" INFO ") >= 4,
        "expected INFO lines: {stderr}"
    );
    assert!(daemon.stdout().is_empty(), "stdout: {:?}", daemon.stdout());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sd_notify_says_ready_and_stopping() {
    let env = TestEnv::live().await;
    let socket_path = env.dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let mut daemon = wxcube_in(&env, &daemon_env(&env, &[]))
        .args(["daemon"])
        .env("NOTIFY_SOCKET", &socket_path)
        .spawn();
    let mut buf = vec![0u8; 4096];
    let mut recv = async || {
        let n = tokio::time::timeout(secs(10), socket.recv(&mut buf))
            .await
            .expect("no notification within 10 s")
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv().await;
    assert_eq!(first.lines().collect::<Vec<_>>(), ["READY=1"], "{first:?}");
    daemon.wait_for(0, "run finished", secs(10)).await;
    daemon.signal(libc::SIGTERM);
    let second = recv().await;
    assert_eq!(
        second.lines().collect::<Vec<_>>(),
        ["STOPPING=1"],
        "{second:?}"
    );
    let (status, _) = daemon.wait_exit(STOP_LIMIT).await;
    assert_eq!(status.code(), Some(0), "{}", daemon.stderr());
}

// ---------------------------------------------------------------------------
// Set-up

/// A schedule that never fires during a test (midnight on 1 January).
const NEVER: &str = "0 0 0 1 1 *";

/// `env.env()` plus small, fast sync settings, then `extra` (later wins).
fn daemon_env(env: &TestEnv, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut vars = env.env();
    let defaults = [
        ("WXCUBE_SCHEDULE", NEVER),
        ("WXCUBE_CATCH_UP_DAYS", "3"),
        ("WXCUBE_REFRESH_DAYS", "1"),
        ("WXCUBE_ENDPOINTS", "getuserread"),
    ];
    for (k, v) in defaults.iter().chain(extra) {
        vars.retain(|(key, _)| key != k);
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

/// The binary in `env`'s directory with `vars`.
fn wxcube_in(env: &TestEnv, vars: &[(String, String)]) -> TestCommand {
    TestCommand::new().dir(env.dir.path()).vars(vars)
}

/// `wxcube ARGS daemon` with `daemon_env(env, extra)`.
fn start_daemon(env: &TestEnv, extra: &[(&str, &str)], args: &[&str]) -> Proc {
    wxcube_in(env, &daemon_env(env, extra))
        .args(args)
        .args(["daemon"])
        .spawn()
}

/// A backfill of getuserreadhour (one day per chunk) over `from..=to`.
fn hourly_backfill(from: &str, to: &str) -> [String; 7] {
    [
        "backfill",
        "--from",
        from,
        "--to",
        to,
        "--endpoint",
        "getuserreadhour",
    ]
    .map(String::from)
}

/// A "stored" line in the text log format.
fn is_text_stored_line(line: &str) -> bool {
    line.contains(" stored ")
}

async fn open(env: &TestEnv) -> Store {
    Store::open(&env.db_path().display().to_string())
        .await
        .unwrap()
}

/// Plays another program holding SQLite's write lock (until ROLLBACK).
async fn hold_write_lock(store: &Store) -> PoolConnection<Sqlite> {
    let mut conn = store.pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .unwrap();
    conn
}

fn timestamp(line: &str) -> DateTime<Utc> {
    let v: Value = serde_json::from_str(line).unwrap();
    v["timestamp"]
        .as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap()
}
