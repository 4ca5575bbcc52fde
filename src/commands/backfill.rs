//! `wxcube backfill`: every day of a range not yet final, per endpoint, and
//! the whole catalogue when `--endpoint freepublish` is named.

use super::with_engine;
use crate::clock::Clock;
use crate::config::CliOverrides;
use crate::ingest::AccountBusy;
use crate::ingest::BackfillRequest;

/// Runs the command; returns its exit code.
pub async fn run(
    overrides: &CliOverrides,
    clock: Clock,
    request: BackfillRequest,
    wait: bool,
) -> u8 {
    with_engine(
        overrides,
        clock,
        "backfill",
        wait,
        // On PostgreSQL, an account another process is working on.
        if wait {
            AccountBusy::Wait
        } else {
            AccountBusy::Fail
        },
        |engine, cancel| async move { engine.backfill(&request, &cancel).await },
    )
    .await
}
