//! `wxcube daemon`: resident, a sync at start and one per schedule tick.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{load_settings, lock_error};
use crate::clock::Clock;
use crate::config::{CliOverrides, Need};
use crate::exit::{EXIT_FAILURES, EXIT_OK};
use crate::{daemon, shutdown};

/// Runs the command; returns its exit code.
pub async fn run(overrides: &CliOverrides, clock: Clock) -> u8 {
    let settings = match load_settings(overrides, Need::Credentials) {
        Ok(s) => Arc::new(s),
        Err(code) => return code,
    };
    let cancel = CancellationToken::new();
    shutdown::install(cancel.clone());
    match daemon::run(settings, clock, cancel).await {
        Ok(()) => EXIT_OK,
        Err(daemon::DaemonError::Lock(e)) => lock_error(&e),
        Err(daemon::DaemonError::Other(e)) => {
            eprintln!("wxcube: daemon: error: {e:#}");
            EXIT_FAILURES
        }
    }
}
