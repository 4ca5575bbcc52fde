//! A resilience scenario: one simulator, one database, every run of the
//! binary (through the shared driver, under a watchdog) kept for the secret
//! scan, and the checks every scenario ends with.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Days;
use serde_json::Value;
use wxcube::endpoint::{Endpoint, Family};
use wxcube::sim::SimOptions;
use wxcube::store::Store;

use crate::checks::*;
use crate::driver::{Killer, RUN_LIMIT, Run, TestCommand};
use crate::helpers::*;

/// Runs of the same command allowed before a scenario must have converged.
pub const MAX_RUNS: usize = 8;

/// The 60-day range of the backfill scenarios: ends 32 days before today in
/// China (every chunk final, even getarticletotaldetail's), all after
/// 2025-11-01 so that both families run.
pub fn range() -> (String, String) {
    let to = china_today() - Days::new(32);
    let from = to - Days::new(59);
    assert!(from >= Family::Current.first_date());
    (from.to_string(), to.to_string())
}

pub struct Scenario {
    pub name: &'static str,
    pub env: TestEnv,
    pub db: PathBuf,
    pub vars: Vec<(String, String)>,
    log_args: Vec<&'static str>,
    /// stdout and stderr of every run, for the secret scan.
    pub transcript: Mutex<String>,
    started: Instant,
}

impl Scenario {
    /// A fresh simulator with `options`, configured for `endpoints`, with
    /// `extra` environment variables (later wins).
    pub async fn new(
        name: &'static str,
        options: SimOptions,
        endpoints: &[Endpoint],
        extra: &[(&str, &str)],
    ) -> Scenario {
        let env = TestEnv::with(options).await;
        let names: Vec<&str> = endpoints.iter().map(|e| e.name()).collect();
        let mut vars = env.env();
        vars.push(("WXCUBE_ENDPOINTS".into(), names.join(",")));
        vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Scenario {
            name,
            db: env.db_path(),
            env,
            vars,
            log_args: Vec::new(),
            transcript: Mutex::new(String::new()),
            started: Instant::now(),
        }
    }

    /// A fault-free simulator on the real clock (see `new`).
    pub async fn plain(name: &'static str, endpoints: &[Endpoint]) -> Scenario {
        Scenario::new(name, SimOptions::default(), endpoints, &[]).await
    }

    /// Log options put before every command (`-v`, `--log-format json`).
    pub fn logs(mut self, args: &[&'static str]) -> Scenario {
        self.log_args = args.to_vec();
        self
    }

    /// Puts the database somewhere else (a mount, an impossible path).
    pub fn set_database(&mut self, path: &Path) {
        self.db = path.to_path_buf();
        self.vars
            .push(("WXCUBE_DATABASE".into(), path.display().to_string()));
    }

    pub fn database(&self) -> String {
        self.db.display().to_string()
    }

    /// `base` (the binary, or the binary behind a shell) in the scenario's
    /// directory, with its variables, log options and `args`.
    pub fn command_from(&self, base: TestCommand, args: &[&str]) -> TestCommand {
        base.dir(self.env.dir.path())
            .vars(&self.vars)
            .args(&self.log_args)
            .args(args)
    }

    pub fn command(&self, args: &[&str]) -> TestCommand {
        self.command_from(TestCommand::new(), args)
    }

    fn record(&self, args: &[&str], run: &Run) {
        let mut t = self.transcript.lock().unwrap();
        t.push_str(&format!("$ wxcube {}\n", args.join(" ")));
        t.push_str(&run.text());
    }

    /// Runs the binary; exit codes other than 0..=3 (a panic, a signal) fail.
    pub fn run_cmd(
        &self,
        cmd: TestCommand,
        args: &[&str],
        kill_after: Option<Duration>,
        on_line: impl FnMut(&str, &mut Killer),
    ) -> Run {
        // The simulator is served by the other runtime worker meanwhile.
        let run = tokio::task::block_in_place(|| cmd.spawn().watch(RUN_LIMIT, kill_after, on_line));
        self.record(args, &run);
        assert!(
            matches!(run.code, Some(0..=3)) || run.signal == Some(libc::SIGKILL),
            "{}: wxcube {args:?} ended with {:?}/{:?}:\n{}",
            self.name,
            run.code,
            run.signal,
            run.text()
        );
        run
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_cmd(self.command(args), args, None, |_, _| {})
    }

    /// Runs the binary and asserts that it exits with `code`.
    pub fn run_exits(&self, code: i32, args: &[&str]) -> Run {
        let run = self.run(args);
        assert_eq!(
            run.code,
            Some(code),
            "{}: wxcube {args:?}: {}",
            self.name,
            run.text()
        );
        run
    }

    pub fn run_watching(&self, args: &[&str], on_line: impl FnMut(&str, &mut Killer)) -> Run {
        self.run_cmd(self.command(args), args, None, on_line)
    }

    /// Runs `args` until it exits 0 with no delayed chunk left, at most
    /// `MAX_RUNS` times; returns the number of runs.
    pub async fn converge(&self, args: &[&str]) -> usize {
        for n in 1..=MAX_RUNS {
            let run = self.run(args);
            assert!(
                matches!(run.code, Some(0 | 1)),
                "{}: run {n} exited {:?}:\n{}",
                self.name,
                run.code,
                run.text()
            );
            if run.code == Some(0) && self.delayed_chunks().await == 0 {
                return n;
            }
        }
        panic!(
            "{}: not converged after {MAX_RUNS} runs of {args:?}",
            self.name
        );
    }

    pub async fn store(&self) -> Store {
        Store::open(&self.database()).await.unwrap()
    }

    async fn delayed_chunks(&self) -> i64 {
        let store = self.store().await;
        let n = scalar(&store, "SELECT COUNT(*) FROM fetches WHERE is_delay = 1").await;
        store.close().await;
        n
    }

    /// The checks every scenario ends with (see the suite's doc).
    pub async fn finish(&self, endpoints: &[Endpoint], from: &str, to: &str) {
        self.run_exits(0, &["status"]);
        let json = self.run_exits(0, &["status", "--json"]);
        let statuses: Value = serde_json::from_str(&json.stdout)
            .unwrap_or_else(|e| panic!("status --json: {e}:\n{}", json.stdout));
        let today = china_today();
        let latest = today.pred_opt().unwrap();
        for &endpoint in endpoints {
            let (first, last) =
                wxcube::ingest::plan::clamp(endpoint, d(from), d(to), latest).unwrap();
            let s = statuses
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["endpoint"] == endpoint.name())
                .unwrap_or_else(|| panic!("status lacks {endpoint}"));
            let day = |k: &str| s[k].as_str().map(d);
            assert!(
                day("first_day").is_some_and(|f| f <= first)
                    && day("last_day").is_some_and(|l| l >= last),
                "{}: status of {endpoint}: {s}",
                self.name
            );
        }
        let store = self.store().await;
        assert_integrity(&store).await;
        assert_matches_truth(&store, endpoints, from, to, today).await;
        assert_no_duplicate_keys(&store).await;
        assert_ledger_consistent(&store, endpoints, today).await;
        assert_ledger_complete(&store, endpoints, from, to).await;
        self.assert_nothing_leaked(&store).await;
        store.close().await;
        eprintln!(
            "resilience: {}: ok in {:.1}s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// The secret scan: the appsecret and every token the simulator issued,
    /// in every output of every run and every text column of the database.
    async fn assert_nothing_leaked(&self, store: &Store) {
        let mut secrets = self.env.sim.stats.issued_tokens();
        assert!(!secrets.is_empty(), "{}: no token was issued", self.name);
        secrets.push(SECRET.to_string());
        let transcript = self.transcript.lock().unwrap().clone();
        assert!(!transcript.is_empty());
        assert_no_secrets(
            &transcript,
            &secrets,
            &format!("{}: stdout, stderr or logs", self.name),
        );
        assert_database_free_of(store, &secrets, self.name).await;
    }

    /// How often the simulator injected `fault`.
    pub fn injected(&self, fault: &str) -> usize {
        self.env
            .sim
            .stats
            .log()
            .iter()
            .filter(|r| r.fault.as_deref() == Some(fault))
            .count()
    }

    /// How many simulator answers carried `errcode`.
    pub fn answers_with(&self, errcode: i64) -> usize {
        self.env
            .sim
            .stats
            .log()
            .iter()
            .filter(|r| r.errcode == errcode)
            .count()
    }
}
