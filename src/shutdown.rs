//! Signals: the first SIGTERM or SIGINT asks every run to stop (no new
//! requests; the chunk in flight commits or rolls back), a second one exits.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long a stop may take after the first signal before the process exits
/// anyway: the README promises an exit within 10 s, but a write blocked on
/// SQLite's busy timeout (30 s, when another program holds the database's
/// write lock) cannot be cancelled. Exiting then loses nothing: the blocked
/// chunk was never committed, so SQLite rolls it back.
pub const STOP_DEADLINE: Duration = Duration::from_secs(8);

/// Cancels `cancel` on the first SIGTERM or SIGINT; exits at once on the
/// second (code 130), or with code 0 if the process is still running
/// `STOP_DEADLINE` after the first.
pub fn install(cancel: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        tracing::info!(
            "shutdown requested: finishing the chunk in flight (a second signal exits at once)"
        );
        cancel.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = tokio::time::sleep(STOP_DEADLINE) => {
                tracing::error!(
                    "still not stopped {} s after the signal (is another program holding the database?): exiting now; SQLite rolls back whatever was not committed",
                    STOP_DEADLINE.as_secs()
                );
                std::process::exit(0);
            }
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
}
