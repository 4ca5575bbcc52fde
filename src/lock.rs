//! One writer per database: a lock file beside it, held with an OS file lock,
//! so the kernel releases it when the process dies (kill -9 included).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A held lock; released on drop.
#[derive(Debug)]
pub struct DbLock {
    file: File,
    path: PathBuf,
}

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it (exit 3).
    #[error("another wxcube holds the lock {path}: {holder}")]
    Held { path: PathBuf, holder: String },
    /// The lock file could not be opened (a permission or disk problem).
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DbLock {
    /// Takes the lock at `path` now, or says who holds it. `what` describes the
    /// holder ("backfill", "daemon (idle)") for whoever is refused.
    pub fn try_acquire(path: &Path, what: &str) -> Result<DbLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    path: path.to_path_buf(),
                    holder: if holder.is_empty() {
                        "unknown holder".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut lock = DbLock {
            file,
            path: path.to_path_buf(),
        };
        lock.describe(what).map_err(io)?;
        Ok(lock)
    }

    /// Waits until the lock is free (polling), unless `cancel` fires first.
    /// `on_wait` is called once, with the holder, when the first try fails.
    pub async fn acquire_waiting(
        path: &Path,
        what: &str,
        cancel: &CancellationToken,
        on_wait: impl FnOnce(&str),
    ) -> Result<Option<DbLock>, LockError> {
        let mut on_wait = Some(on_wait);
        loop {
            match DbLock::try_acquire(path, what) {
                Ok(lock) => return Ok(Some(lock)),
                Err(LockError::Held { holder, .. }) => {
                    if let Some(f) = on_wait.take() {
                        f(&holder);
                    }
                }
                Err(e) => return Err(e),
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok(None),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Rewrites what the lock file says about its holder.
    pub fn describe(&mut self, what: &str) -> std::io::Result<()> {
        let text = format!(
            "pid {} ({what}, since {})\n",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(text.as_bytes())?;
        self.file.flush()
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DbLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.lock");
        let first = DbLock::try_acquire(&path, "backfill").unwrap();
        match DbLock::try_acquire(&path, "sync") {
            Err(LockError::Held { holder, .. }) => {
                assert!(holder.contains(&std::process::id().to_string()), "{holder}");
                assert!(holder.contains("backfill"), "{holder}");
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        DbLock::try_acquire(&path, "sync").unwrap();
    }
}
