//! `wxcube daemon`: a catch-up sync at start, then one sync per `schedule`
//! tick, never two at once; a clean stop on SIGTERM/SIGINT. With `report_path`
//! set, the HTML report is rewritten (atomically) after each sync.
//!
//! Locks: the daemon holds `<database>.lock.daemon` for its whole life (a
//! second daemon exits 3) and takes the writer lock `<database>.lock` only while
//! a sync runs, so that a manual `sync` or `backfill` can run while it is idle.
//! A tick that finds the writer lock held waits for it.
//!
//! Stopping: the first signal cancels the run (no new requests; the chunk in
//! flight commits or rolls back); a second signal, or `shutdown::STOP_DEADLINE` passing
//! without the process having ended, exits at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Settings;
use crate::ingest::Engine;
use crate::lock::DbLock;
use crate::store::{self, Store};

/// Why the daemon stopped early.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Runs until `cancel` fires. Returns after the sync in flight (if any) has
/// committed or rolled back its chunk and the database is closed.
pub async fn run(
    settings: Arc<Settings>,
    clock: Clock,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    // SQLite: one daemon per database file, and each sync under the file's
    // writer lock. PostgreSQL: any number of daemons; each sync takes the
    // accounts no other process is working on (`AccountBusy::Skip`).
    let writer_lock = store::lock_path(&settings.database)?;
    let _daemon_lock = match &writer_lock {
        Some(path) => {
            let daemon_lock_path = PathBuf::from(format!("{}.daemon", path.display()));
            Some(DbLock::try_acquire(&daemon_lock_path, "daemon")?)
        }
        None => None,
    };
    let target = settings
        .database_target()
        .map_err(|message| anyhow::anyhow!("{message}"))?;
    let store = Store::open_target(&target).await?;
    let engine = Engine::new(settings.clone(), store.clone(), clock)?;

    // The scheduler only signals ticks; the sync itself runs in this task, so
    // runs can never overlap. A tick that arrives mid-run is dropped with a line.
    let busy = Arc::new(AtomicBool::new(true));
    let (tick_tx, mut tick_rx) = mpsc::channel::<()>(1);
    let mut scheduler = JobScheduler::new()
        .await
        .context("cannot start the scheduler")?;
    let job_busy = busy.clone();
    let job = Job::new_async_tz(
        settings.schedule.as_str(),
        settings.timezone,
        move |_, _| {
            let busy = job_busy.clone();
            let tx = tick_tx.clone();
            Box::pin(async move {
                if busy.load(Ordering::SeqCst) || tx.try_send(()).is_err() {
                    tracing::info!("schedule tick skipped: a sync is still running");
                }
            })
        },
    )
    .with_context(|| {
        format!(
            "configuration key `schedule`: cannot schedule {:?}",
            settings.schedule
        )
    })?;
    scheduler
        .add(job)
        .await
        .context("cannot add the scheduled job")?;
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    tracing::info!(schedule = %settings.schedule, timezone = %settings.timezone, database = %store.location(), "daemon started");
    notify(&[sd_notify::NotifyState::Ready]);

    // Catch-up at start: the ledger knows what is missing after downtime.
    let mut reason = "catch-up at start";
    loop {
        busy.store(true, Ordering::SeqCst);
        sync_once(&engine, writer_lock.as_deref(), reason, &cancel).await;
        busy.store(false, Ordering::SeqCst);
        if cancel.is_cancelled() {
            break;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            tick = tick_rx.recv() => {
                if tick.is_none() {
                    break;
                }
                reason = "scheduled";
            }
        }
    }
    tracing::info!("daemon stopping");
    notify(&[sd_notify::NotifyState::Stopping]);
    let _ = scheduler.shutdown().await;
    store.close().await;
    tracing::info!("daemon stopped");
    Ok(())
}

/// One sync under the writer lock. Failures are logged, never fatal: the next
/// tick (or the next start) retries what is missing.
async fn sync_once(
    engine: &Engine,
    lock_path: Option<&std::path::Path>,
    reason: &str,
    cancel: &CancellationToken,
) {
    let _lock = match lock_path {
        Some(path) => {
            let lock = DbLock::acquire_waiting(path, "daemon sync", cancel, |holder| {
                tracing::warn!(%holder, "waiting for the database lock before the {reason} sync");
            })
            .await;
            match lock {
                Ok(Some(lock)) => Some(lock),
                Ok(None) => return,
                Err(e) => {
                    tracing::error!("sync skipped: {e}");
                    return;
                }
            }
        }
        None => None,
    };
    tracing::info!("{reason} sync starting");
    match engine.sync(None, cancel).await {
        Ok(report) if report.exit_code() == 0 => {}
        Ok(report) => {
            for failure in &report.failures {
                tracing::warn!("{failure}");
            }
        }
        Err(e) => tracing::error!("sync failed: {e:#}"),
    }
    // Still under the writer lock, so the report shows this sync's data whole.
    if let Some(path) = &engine.settings.report_path
        && !cancel.is_cancelled()
    {
        match crate::report::write_default(&engine.settings, &engine.store, &engine.clock, path)
            .await
        {
            Ok(path) => tracing::info!(path = %path.display(), "report written"),
            Err(e) => tracing::error!("report not written: {e:#}"),
        }
    }
}

/// Tells systemd about our state when run under `Type=notify`; a no-op elsewhere.
fn notify(state: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!("sd_notify failed: {e}");
    }
}
