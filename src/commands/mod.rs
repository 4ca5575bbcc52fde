//! One module per subcommand, and what they share: loading the
//! configuration, taking the lock, opening the database, reporting a run.
//! Each returns its exit code (`crate::exit`).

pub mod backfill;
pub mod daemon;
pub mod demo;
pub mod migrate;
pub mod report;
pub mod simulate;
pub mod status;
pub mod sync;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{self, CliOverrides, Need, Settings};
use crate::exit::{EXIT_FAILURES, EXIT_LOCKED, EXIT_OK, EXIT_USAGE};
use crate::ingest::{AccountBusy, Engine, RunError, RunReport};
use crate::lock::{DbLock, LockError};
use crate::shutdown;
use crate::store::{self, Store};

/// Opens the configured database (applying migrations), or reports why not
/// (exit 2 for an unreadable password file; exit 1 when the configuration
/// was fine and the machine or server refused).
pub async fn open_store(settings: &Settings) -> Result<Store, u8> {
    let target = settings.database_target().map_err(|message| {
        eprintln!("wxcube: configuration error: {message}");
        EXIT_USAGE
    })?;
    Store::open_target(&target).await.map_err(|e| {
        eprintln!("wxcube: error: {e:#}");
        EXIT_FAILURES
    })
}

/// Loads the configuration, or reports it (exit 2).
pub fn load_settings(overrides: &CliOverrides, need: Need) -> Result<Settings, u8> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    config::load(overrides, &env, need).map_err(|e| {
        eprintln!("wxcube: configuration error: {e}");
        EXIT_USAGE
    })
}

/// Shared by sync and backfill: configuration, lock, database, signals, run, report.
pub async fn with_engine<F, Fut>(
    overrides: &CliOverrides,
    clock: Clock,
    command: &str,
    wait: bool,
    busy: AccountBusy,
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
    shutdown::install(cancel.clone());
    let _lock = match take_lock(&settings.database, command, wait, &cancel).await {
        Ok(Some(lock)) => lock,
        Ok(None) => return EXIT_OK,
        Err(code) => return code,
    };
    let store = match open_store(&settings).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let engine = match Engine::new(settings, store.clone(), clock) {
        Ok(e) => e.when_busy(busy),
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
        Err(RunError::Locked(message)) => {
            eprintln!("wxcube: {command}: {message}");
            eprintln!("wxcube: hint: wait for it to finish, or pass --wait to queue behind it");
            EXIT_LOCKED
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

/// What `take_lock` holds.
pub enum Held {
    /// The SQLite database's lock file.
    File(DbLock),
    /// Nothing: on PostgreSQL each account is locked by the run itself.
    PerAccount,
}

/// Takes the writer lock of a SQLite database: fails with exit 3 when held,
/// or waits with `--wait` (`Ok(None)`: shutdown while waiting).
pub async fn take_lock(
    database: &str,
    command: &str,
    wait: bool,
    cancel: &CancellationToken,
) -> Result<Option<Held>, u8> {
    let path = store::lock_path(database).map_err(|e| {
        eprintln!("wxcube: error: {e:#}");
        EXIT_USAGE
    })?;
    let Some(path) = path else {
        return Ok(Some(Held::PerAccount));
    };
    let result = if wait {
        DbLock::acquire_waiting(&path, command, cancel, |holder| {
            eprintln!("wxcube: waiting for the database lock held by {holder}");
        })
        .await
    } else {
        DbLock::try_acquire(&path, command).map(Some)
    };
    result
        .map(|lock| lock.map(Held::File))
        .map_err(|e| match e {
            // Name the database, not only its lock file: that is what the user configured.
            LockError::Io { .. } => {
                eprintln!("wxcube: error: cannot use database {database}: {e}");
                EXIT_FAILURES
            }
            LockError::Held { .. } => lock_error(&e),
        })
}

pub fn lock_error(e: &LockError) -> u8 {
    eprintln!("wxcube: {e}");
    match e {
        LockError::Held { .. } => {
            eprintln!("wxcube: hint: wait for it to finish, or pass --wait to queue behind it");
            EXIT_LOCKED
        }
        LockError::Io { .. } => EXIT_FAILURES,
    }
}
