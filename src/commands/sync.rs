//! `wxcube sync`: one sync now (the refresh window, the catch-up window and
//! the retries the ledger asks for), then exit; for cron or a systemd timer.

use super::with_engine;
use crate::clock::Clock;
use crate::config::CliOverrides;
use crate::ingest::AccountBusy;

/// Runs the command; returns its exit code.
pub async fn run(
    overrides: &CliOverrides,
    clock: Clock,
    account: Option<String>,
    wait: bool,
) -> u8 {
    with_engine(
        overrides,
        clock,
        "sync",
        wait,
        // On PostgreSQL, an account another process is working on.
        if wait {
            AccountBusy::Wait
        } else {
            AccountBusy::Skip
        },
        |engine, cancel| async move { engine.sync(account.as_deref(), &cancel).await },
    )
    .await
}
