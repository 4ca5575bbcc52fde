//! The command line: parsing, and one function per subcommand. Every command
//! returns its exit code (SPEC section 2): 0 done, 1 some chunks failed,
//! 2 bad usage/configuration/input, 3 the database is locked.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::{Days, NaiveDate};
use clap::{ArgAction, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, parse_date};
use crate::config::{self, CliOverrides, Need, Settings};
use crate::endpoint::{Endpoint, parse_endpoint};
use crate::ingest::{BackfillRequest, Engine, RunError, RunReport};
use crate::lock::{DbLock, LockError};
use crate::store::{self, Store};
use crate::telemetry::{self, LogFormat};
use crate::{daemon, demo, sim, status};

/// Exit code: all requested work done.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run finished but some chunks failed.
pub const EXIT_FAILURES: u8 = 1;
/// Exit code: bad usage, configuration or input; nothing was fetched.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: another wxcube holds the database's lock.
pub const EXIT_LOCKED: u8 = 3;

/// wxcube copies a WeChat Official Account's article statistics into SQLite.
#[derive(Debug, Parser)]
#[command(name = "wxcube", version, about, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (default: $WXCUBE_CONFIG, ./wxcube.toml, /etc/wxcube/wxcube.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database file path or sqlite: URL (overrides the configuration).
    #[arg(long, global = true, value_name = "PATH_OR_URL")]
    pub database: Option<String>,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Less log detail (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run resident: a catch-up sync at start, then one sync per `schedule` tick.
    Daemon,
    /// One sync now (the refresh window plus never-fetched days), then exit.
    Sync {
        /// Only this account.
        #[arg(long, value_name = "APPID")]
        account: Option<String>,
        /// Wait for the database lock instead of exiting 3.
        #[arg(long)]
        wait: bool,
    },
    /// Fetch every day of a range, skipping days already stored for good.
    Backfill {
        /// First day, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "DATE")]
        from: NaiveDate,
        /// Last day, YYYY-MM-DD (clamped to yesterday in China).
        #[arg(long, value_parser = parse_date, value_name = "DATE")]
        to: NaiveDate,
        /// Only this account.
        #[arg(long, value_name = "APPID")]
        account: Option<String>,
        /// Only these endpoints (repeatable); also tries endpoints marked offline.
        #[arg(long = "endpoint", value_parser = parse_endpoint, value_name = "NAME")]
        endpoints: Vec<Endpoint>,
        /// Fetch days again even if they are already final.
        #[arg(long)]
        refetch: bool,
        /// Wait for the database lock instead of exiting 3.
        #[arg(long)]
        wait: bool,
    },
    /// Show, per account and endpoint, what is stored, missing and failing.
    Status {
        /// Only this account.
        #[arg(long, value_name = "APPID")]
        account: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the simulator and backfill its data into wxcube-demo.db (no credentials needed).
    Demo {
        /// How many days back from yesterday.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=5000))]
        days: u32,
    },
    /// Run the built-in simulator of the WeChat API (for tests and demos).
    Simulate {
        /// Address to listen on (loopback unless told otherwise).
        #[arg(long, default_value = "127.0.0.1:8089")]
        listen: SocketAddr,
        /// Fault injection, e.g. "busy=0.05,http5xx=0.02,latency_ms=50".
        #[arg(long, default_value = "")]
        faults: String,
        /// Accept only this appsecret (default: any non-empty one).
        #[arg(long)]
        secret: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
}

/// Parses the command line and runs it; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    telemetry::init(cli.log_format, cli.verbose as i8 - cli.quiet as i8);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wxcube: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURES);
        }
    };
    let code = runtime.block_on(run(cli));
    // Do not wait for stray blocking tasks (a hung DNS lookup, say).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}

/// Runs one parsed command and returns its exit code.
pub async fn run(cli: Cli) -> u8 {
    let overrides = CliOverrides {
        config: cli.config.clone(),
        database: cli.database.clone(),
    };
    let clock = Clock::system();
    match cli.command {
        Command::Daemon => cmd_daemon(&overrides, clock).await,
        Command::Sync { account, wait } => {
            with_engine(
                &overrides,
                clock,
                "sync",
                wait,
                |engine, cancel| async move { engine.sync(account.as_deref(), &cancel).await },
            )
            .await
        }
        Command::Backfill {
            from,
            to,
            account,
            endpoints,
            refetch,
            wait,
        } => {
            let request = BackfillRequest {
                from,
                to,
                account,
                endpoints,
                refetch,
                progress: std::io::stderr().is_terminal(),
            };
            with_engine(
                &overrides,
                clock,
                "backfill",
                wait,
                |engine, cancel| async move { engine.backfill(&request, &cancel).await },
            )
            .await
        }
        Command::Status { account, json } => {
            cmd_status(&overrides, clock, account.as_deref(), json).await
        }
        Command::Demo { days } => demo::run(cli.database.as_deref(), days, clock).await,
        Command::Simulate {
            listen,
            faults,
            secret,
        } => cmd_simulate(listen, &faults, secret).await,
        Command::Migrate => cmd_migrate(&overrides).await,
    }
}

/// Opens the database (applying migrations), or reports why not (exit 1: the
/// configuration was fine, the machine refused).
async fn open_store(database: &str) -> Result<Store, u8> {
    Store::open(database).await.map_err(|e| {
        eprintln!("wxcube: error: {e:#}");
        EXIT_FAILURES
    })
}

/// Loads the configuration, or reports it (exit 2).
fn load_settings(overrides: &CliOverrides, need: Need) -> Result<Settings, u8> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    config::load(overrides, &env, need).map_err(|e| {
        eprintln!("wxcube: configuration error: {e}");
        EXIT_USAGE
    })
}

/// Shared by sync and backfill: configuration, lock, database, signals, run, report.
async fn with_engine<F, Fut>(
    overrides: &CliOverrides,
    clock: Clock,
    command: &str,
    wait: bool,
    body: F,
) -> u8
where
    F: FnOnce(Engine, CancellationToken) -> Fut,
    Fut: Future<Output = Result<RunReport, RunError>>,
{
    let settings = match load_settings(overrides, Need::Credentials) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let cancel = CancellationToken::new();
    daemon::install_shutdown(cancel.clone());
    let _lock = match take_lock(&settings.database, command, wait, &cancel).await {
        Ok(Some(lock)) => lock,
        Ok(None) => return EXIT_OK,
        Err(code) => return code,
    };
    let store = match open_store(&settings.database).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let engine = match Engine::new(settings, store.clone(), clock) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("wxcube: error: {e:#}");
            return EXIT_FAILURES;
        }
    };
    let result = body(engine, cancel).await;
    store.close().await;
    match result {
        Ok(report) => report_outcome(command, &report),
        Err(RunError::Usage(message)) => {
            eprintln!("wxcube: {command}: {message}");
            EXIT_USAGE
        }
        Err(RunError::Other(e)) => {
            eprintln!("wxcube: {command}: error: {e:#}");
            EXIT_FAILURES
        }
    }
}

/// Prints the failures and a one-line summary on stderr; returns the exit code.
pub fn report_outcome(command: &str, report: &RunReport) -> u8 {
    for failure in &report.failures {
        eprintln!("wxcube: {command}: failed: {failure}");
    }
    let cancelled = if report.cancelled {
        " (stopped early by a signal)"
    } else {
        ""
    };
    eprintln!(
        "wxcube: {command}: {} of {} chunks stored, {} failed, {} not sent, {} requests, {} rows in {:.1}s{cancelled}",
        report.chunks_ok,
        report.chunks_planned,
        report.chunks_failed,
        report.chunks_not_sent,
        report.requests,
        report.rows,
        report.duration.as_secs_f64()
    );
    report.exit_code() as u8
}

/// Takes the writer lock: fails with exit 3 when held, or waits with `--wait`.
async fn take_lock(
    database: &str,
    command: &str,
    wait: bool,
    cancel: &CancellationToken,
) -> Result<Option<DbLock>, u8> {
    let path = store::lock_path(database).map_err(|e| {
        eprintln!("wxcube: error: {e:#}");
        EXIT_USAGE
    })?;
    let result = if wait {
        DbLock::acquire_waiting(&path, command, cancel, |holder| {
            eprintln!("wxcube: waiting for the database lock held by {holder}");
        })
        .await
    } else {
        DbLock::try_acquire(&path, command).map(Some)
    };
    result.map_err(|e| match e {
        // Name the database, not only its lock file: that is what the user configured.
        LockError::Io { .. } => {
            eprintln!("wxcube: error: cannot use database {database}: {e}");
            EXIT_FAILURES
        }
        LockError::Held { .. } => lock_error(&e),
    })
}

fn lock_error(e: &LockError) -> u8 {
    eprintln!("wxcube: {e}");
    match e {
        LockError::Held { .. } => {
            eprintln!("wxcube: hint: wait for it to finish, or pass --wait to queue behind it");
            EXIT_LOCKED
        }
        LockError::Io { .. } => EXIT_FAILURES,
    }
}

async fn cmd_daemon(overrides: &CliOverrides, clock: Clock) -> u8 {
    let settings = match load_settings(overrides, Need::Credentials) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let cancel = CancellationToken::new();
    daemon::install_shutdown(cancel.clone());
    match daemon::run(settings, clock, cancel).await {
        Ok(()) => EXIT_OK,
        Err(daemon::DaemonError::Lock(e)) => lock_error(&e),
        Err(daemon::DaemonError::Other(e)) => {
            eprintln!("wxcube: daemon: error: {e:#}");
            EXIT_FAILURES
        }
    }
}

async fn cmd_status(
    overrides: &CliOverrides,
    clock: Clock,
    account: Option<&str>,
    json: bool,
) -> u8 {
    let settings = match load_settings(overrides, Need::NoCredentials) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let store = match open_store(&settings.database).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = status::collect(&settings, &store, &clock, account).await;
    store.close().await;
    match result {
        Ok(statuses) => {
            if json {
                match serde_json::to_string_pretty(&statuses) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("wxcube: status: error: {e}");
                        return EXIT_FAILURES;
                    }
                }
            } else {
                print!("{}", status::render_table(&statuses));
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("wxcube: status: error: {e:#}");
            EXIT_FAILURES
        }
    }
}

async fn cmd_simulate(listen: SocketAddr, faults: &str, secret: Option<String>) -> u8 {
    let faults = match sim::FaultSpec::parse(faults) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("wxcube: simulate: bad --faults: {e}");
            return EXIT_USAGE;
        }
    };
    if secret.as_deref() == Some("") {
        eprintln!("wxcube: simulate: --secret must not be empty");
        return EXIT_USAGE;
    }
    if !listen.ip().is_loopback() {
        tracing::warn!(%listen, "the simulator listens beyond loopback: it is for tests and demos only");
    }
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("wxcube: simulate: cannot listen on {listen}: {e}");
            return EXIT_USAGE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listen.to_string());
    println!("wxcube simulator listening on http://{addr}");
    let options = sim::SimOptions {
        secret,
        faults,
        ..sim::SimOptions::default()
    };
    let cancel = CancellationToken::new();
    daemon::install_shutdown(cancel.clone());
    let shutdown = async move { cancel.cancelled().await };
    match sim::run(listener, options, shutdown).await {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("wxcube: simulate: error: {e}");
            EXIT_FAILURES
        }
    }
}

async fn cmd_migrate(overrides: &CliOverrides) -> u8 {
    let settings = match load_settings(overrides, Need::NoCredentials) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match open_store(&settings.database).await {
        Ok(store) => {
            eprintln!("wxcube: migrations applied to {}", store.path().display());
            store.close().await;
            EXIT_OK
        }
        Err(code) => code,
    }
}

/// The first day of the last `days` days up to `latest`.
pub fn days_back(latest: NaiveDate, days: u32) -> NaiveDate {
    latest - Days::new(u64::from(days.saturating_sub(1)))
}
