//! One process per account at a time on PostgreSQL, where several wxcube
//! processes (on several machines) may share one database.
//!
//! Each account is a session-level advisory lock, all held on one connection
//! of this process kept for that purpose: the server releases them when the
//! connection ends, so a process that dies (kill -9, lost network) frees its
//! accounts without anyone guessing at a timeout. Who holds a lock is read
//! from `pg_locks` and `pg_stat_activity`, where every wxcube connection
//! names itself `wxcube HOST pid PID`.
//!
//! SQLite has one writer per file, guarded by the lock file (`crate::lock`),
//! so there every account lock is granted at once.

use std::sync::Arc;

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;

use super::Store;
use super::db::Db;

/// The first half of every wxcube advisory lock key ("wxcb"), so that the
/// locks of other applications sharing the database never collide with ours.
const LOCK_NAMESPACE: i32 = 0x7778_6362;

/// The connection that holds this process's account locks.
#[derive(Default)]
pub(super) struct LockConnection(Mutex<Option<PgConnection>>);

/// Shared by the store's clones.
pub(super) type SharedLocks = Arc<LockConnection>;

/// An account held by this process; `release` gives it back (the server
/// does so anyway when the process ends).
#[must_use = "the account stays locked until released"]
pub struct AccountLock {
    held: Option<(Store, i32)>,
}

/// The outcome of asking for an account.
pub enum LockAttempt {
    Acquired(AccountLock),
    /// Another process holds it: how it names itself (`wxcube HOST pid PID`).
    Held {
        holder: String,
    },
}

impl Store {
    /// Takes `appid` for this process if no other process holds it.
    pub async fn try_lock_account(&self, appid: &str) -> anyhow::Result<LockAttempt> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(LockAttempt::Acquired(AccountLock { held: None }));
        };
        let key = account_key(appid);
        let mut slot = self.locks.0.lock().await;
        if slot.is_none() {
            let options: PgConnectOptions = (*pool.connect_options()).clone();
            let conn = options.connect().await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot connect to take an account lock: {}",
                    super::db::pg_error(&e)
                )
            })?;
            super::db::disable_nagle();
            *slot = Some(conn);
        }
        let conn = slot.as_mut().expect("connected above");
        let taken: Result<(bool,), sqlx::Error> =
            sqlx::query_as("SELECT pg_try_advisory_lock($1, $2)")
                .bind(LOCK_NAMESPACE)
                .bind(key)
                .fetch_one(&mut *conn)
                .await;
        let taken = match taken {
            Ok((taken,)) => taken,
            Err(e) => {
                // The locks of a broken connection are gone with it: start
                // over with a new one next time.
                *slot = None;
                return Err(e).context("cannot take the account lock");
            }
        };
        if taken {
            return Ok(LockAttempt::Acquired(AccountLock {
                held: Some((self.clone(), key)),
            }));
        }
        // Advisory locks belong to a database: another database of the same
        // server may have a wxcube holding the same appid's key.
        let holder: Option<(Option<String>,)> = sqlx::query_as(
            "SELECT a.application_name::text FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid::bigint = $1 AND l.objid::bigint = $2
             LIMIT 1",
        )
        .bind(i64::from(LOCK_NAMESPACE as u32))
        .bind(i64::from(key as u32))
        .fetch_optional(&mut *conn)
        .await
        .context("cannot read who holds the account lock")?;
        let holder = holder
            .and_then(|(name,)| name)
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "another process (it did not name itself)".to_owned());
        Ok(LockAttempt::Held { holder })
    }
}

impl AccountLock {
    /// Gives the account back.
    pub async fn release(mut self) {
        let Some((store, key)) = self.held.take() else {
            return;
        };
        let mut slot = store.locks.0.lock().await;
        if let Some(conn) = slot.as_mut() {
            let released = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                .bind(LOCK_NAMESPACE)
                .bind(key)
                .execute(&mut *conn)
                .await;
            if let Err(e) = released {
                tracing::warn!(
                    "could not release an account lock: {e}; closing its connection releases it"
                );
                if let Some(conn) = slot.take() {
                    let _ = conn.close().await;
                }
            }
        }
    }
}

impl Drop for AccountLock {
    fn drop(&mut self) {
        // Released by `release` in the normal course; a lock dropped
        // otherwise (a run aborted) is given back in the background.
        if let Some((store, key)) = self.held.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(
                AccountLock {
                    held: Some((store, key)),
                }
                .release(),
            );
        }
    }
}

/// The second half of an account's lock key: from a hash of the appid, so
/// that it is the same in every process. Two appids sharing a key would only
/// be processed one after the other.
fn account_key(appid: &str) -> i32 {
    let digest = Sha256::digest(appid.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_are_stable_and_differ_by_appid() {
        assert_eq!(account_key("wx1"), account_key("wx1"));
        assert_ne!(account_key("wx1"), account_key("wx2"));
    }
}
