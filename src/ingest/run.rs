//! Running a plan: per account, up to `concurrency` chunks in flight, each
//! fetched, normalised and stored in one transaction, or recorded as failed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::NaiveDate;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use super::catalogue::{Sweep, SweepMode};
use super::plan::{self, Chunk, SyncWindow};
use crate::clock::Clock;
use crate::config::{Account, Settings};
use crate::endpoint::{Endpoint, Family, normalize};
use crate::store::{
    AccountLock, ChunkFailure, ChunkWrite, Committed, LockAttempt, RunOutcome, Store, rfc3339,
};
use crate::wechat::quota::QuotaPolicy;
use crate::wechat::token_command::TokenCommand;
use crate::wechat::{DatacubeClient, FetchError, FetchErrorKind, RetryPolicy, TokenManager};

/// Everything a run needs: settings, database, clock and one HTTP client.
#[derive(Clone)]
pub struct Engine {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub clock: Clock,
    http: reqwest::Client,
    busy: AccountBusy,
}

/// What a run does with an account that another wxcube process is working
/// on (PostgreSQL, where several processes may share one database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountBusy {
    /// Leave it to the other process, with a log line (sync, daemon).
    Skip,
    /// Refuse the run, naming the holder (backfill: exit 3).
    Fail,
    /// Wait until the other process is done (`--wait`).
    Wait,
}

/// Why a run could not start (exit 2: nothing was fetched).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad input: unknown account, empty range, and the like.
    #[error("{0}")]
    Usage(String),
    /// Another wxcube process holds an account (exit 3).
    #[error("{0}")]
    Locked(String),
    /// The database or something else outside the input failed.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What a backfill was asked to do.
#[derive(Debug, Clone)]
pub struct BackfillRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub account: Option<String>,
    /// Endpoints named with `--endpoint`; empty means the configured ones.
    pub endpoints: Vec<Endpoint>,
    pub refetch: bool,
    /// Show a progress bar (the CLI sets it when stderr is a terminal).
    pub progress: bool,
}

/// How a run ended.
#[derive(Debug, Default, Clone)]
pub struct RunReport {
    pub chunks_planned: usize,
    pub chunks_ok: usize,
    pub chunks_failed: usize,
    /// Chunks not sent because an endpoint's daily quota was spent.
    pub chunks_not_sent: usize,
    pub requests: u64,
    pub rows: u64,
    /// One line per failed chunk (already redacted).
    pub failures: Vec<String>,
    /// Shutdown was requested before the plan was done.
    pub cancelled: bool,
    pub duration: Duration,
}

impl RunReport {
    /// 0 when everything planned was stored, 1 otherwise (`crate::exit`).
    pub fn exit_code(&self) -> i32 {
        if self.chunks_failed > 0 || self.chunks_not_sent > 0 {
            1
        } else {
            0
        }
    }

    fn absorb(&mut self, other: RunReport) {
        self.chunks_planned += other.chunks_planned;
        self.chunks_ok += other.chunks_ok;
        self.chunks_failed += other.chunks_failed;
        self.chunks_not_sent += other.chunks_not_sent;
        self.requests += other.requests;
        self.rows += other.rows;
        self.failures.extend(other.failures);
        self.cancelled |= other.cancelled;
    }
}

impl Engine {
    /// An engine over an open store.
    pub fn new(settings: Arc<Settings>, store: Store, clock: Clock) -> anyhow::Result<Engine> {
        let http = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .connect_timeout(settings.http_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("wxcube/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Engine {
            settings,
            store,
            clock,
            http,
            busy: AccountBusy::Skip,
        })
    }

    /// Sets what the runs of this engine do with an account another process holds.
    pub fn when_busy(mut self, busy: AccountBusy) -> Engine {
        self.busy = busy;
        self
    }

    /// Takes `account` for this process, as `self.busy` says: `None` when it
    /// is skipped (held elsewhere, or shutdown while waiting).
    async fn lock_account(
        &self,
        appid: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<AccountLock>, RunError> {
        let mut waiting = false;
        loop {
            let holder = match self.store.try_lock_account(appid).await? {
                LockAttempt::Acquired(lock) => return Ok(Some(lock)),
                LockAttempt::Held { holder } => holder,
            };
            match self.busy {
                AccountBusy::Skip => {
                    tracing::info!(account = %appid, %holder, "skipping the account: another wxcube is processing it");
                    return Ok(None);
                }
                AccountBusy::Fail => {
                    return Err(RunError::Locked(format!(
                        "account {appid} is being processed by another wxcube ({holder})"
                    )));
                }
                AccountBusy::Wait => {
                    if !waiting {
                        tracing::warn!(account = %appid, %holder, "waiting for another wxcube to finish the account");
                        waiting = true;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(None),
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Yesterday in the configured timezone: the latest day WeChat can answer for.
    pub fn latest(&self) -> NaiveDate {
        self.clock.yesterday(self.settings.timezone)
    }

    fn accounts(&self, only: Option<&str>) -> Result<Vec<&Account>, RunError> {
        match only {
            Some(appid) => self
                .settings
                .account(appid)
                .map(|a| vec![a])
                .ok_or_else(|| RunError::Usage(format!("account {appid} is not configured"))),
            None => Ok(self.settings.accounts.iter().collect()),
        }
    }

    /// One sync (the refresh window, catch-up and retries) for every account, or only `only`.
    pub async fn sync(
        &self,
        only: Option<&str>,
        cancel: &CancellationToken,
    ) -> Result<RunReport, RunError> {
        let accounts = self.accounts(only)?;
        let latest = self.latest();
        let now = self.clock.now();
        let today = self.clock.today(self.settings.timezone);
        let mut plans = Vec::new();
        for account in accounts {
            let Some(lock) = self.lock_account(&account.appid, cancel).await? else {
                continue;
            };
            let window = SyncWindow {
                latest,
                refresh_days: self.settings.refresh_days,
                catch_up_days: self.settings.catch_up_days,
                start_date: account.start_date,
            };
            let mut chunks = Vec::new();
            let mut catalogue = None;
            for &endpoint in &self.settings.endpoints {
                if !endpoint.is_dated() {
                    catalogue = Some(SweepMode::Sync);
                    continue;
                }
                let ledger = self.store.ledger(&account.appid, endpoint.name()).await?;
                if let Some(since) = plan::offline_since(&ledger, now) {
                    tracing::info!(account = %account.appid, %endpoint, since = %rfc3339(since),
                        "skipping: the endpoint answered 47009 (offline) in the last {} days", plan::OFFLINE_DAYS);
                    continue;
                }
                if plan::quota_spent_today(&ledger, today, self.settings.timezone) {
                    tracing::warn!(account = %account.appid, %endpoint,
                        "skipping: the daily quota (45009) of this endpoint is spent until tomorrow (China time)");
                    continue;
                }
                let coverage = plan::coverage(endpoint, &ledger, self.settings.timezone);
                let days = plan::sync_days(endpoint, &window, &coverage);
                chunks.extend(plan::chunk_days(endpoint, &days));
            }
            plans.push(AccountPlan {
                account,
                chunks,
                catalogue,
                lock,
            });
        }
        self.execute("sync", plans, false, cancel).await
    }

    /// A backfill: every day of a range not yet final, per endpoint.
    pub async fn backfill(
        &self,
        request: &BackfillRequest,
        cancel: &CancellationToken,
    ) -> Result<RunReport, RunError> {
        if request.from > request.to {
            return Err(RunError::Usage(format!(
                "--from {} is after --to {}",
                request.from, request.to
            )));
        }
        let accounts = self.accounts(request.account.as_deref())?;
        let latest = self.latest();
        let named = !request.endpoints.is_empty();
        let endpoints: Vec<Endpoint> = if named {
            request.endpoints.clone()
        } else {
            self.settings.endpoints.clone()
        };
        // The catalogue has no dates: a backfill sweeps it only when named.
        let catalogue =
            (named && endpoints.iter().any(|e| !e.is_dated())).then_some(SweepMode::Full);
        let endpoints: Vec<Endpoint> = endpoints.into_iter().filter(|e| e.is_dated()).collect();
        // Clamp each endpoint to its family's dates, warning once per family.
        let mut ranges = Vec::new();
        let mut warned = BTreeSet::new();
        for &endpoint in &endpoints {
            match plan::clamp(endpoint, request.from, request.to, latest) {
                Some((from, to)) => {
                    if (from, to) != (request.from, request.to) && warned.insert(endpoint.family())
                    {
                        tracing::warn!(
                            family = endpoint.family().label(),
                            "range clamped to {from}..{to} for the {} endpoints (data from {} to yesterday, {latest})",
                            endpoint.family().label(),
                            endpoint.first_date()
                        );
                    }
                    ranges.push((endpoint, from, to));
                }
                None => {
                    if warned.insert(endpoint.family()) {
                        tracing::warn!(
                            family = endpoint.family().label(),
                            "skipping the {} endpoints: they have no data in {}..{} (they serve {}..{latest})",
                            endpoint.family().label(),
                            request.from,
                            request.to,
                            endpoint.first_date()
                        );
                    }
                }
            }
        }
        if ranges.is_empty() && catalogue.is_none() {
            return Err(RunError::Usage(format!(
                "nothing to fetch: {}..{} is empty after clamping to the API's dates ({}..{latest} for the legacy endpoints, {}..{latest} for the current ones)",
                request.from,
                request.to,
                Family::Legacy.first_date(),
                Family::Current.first_date()
            )));
        }
        let now = self.clock.now();
        let today = self.clock.today(self.settings.timezone);
        let mut quota_skipped: Vec<(String, usize)> = Vec::new();
        let mut locks = Vec::new();
        for account in &accounts {
            match self.lock_account(&account.appid, cancel).await {
                Ok(Some(lock)) => locks.push((*account, lock)),
                Ok(None) => {}
                Err(e) => {
                    for (_, lock) in locks {
                        lock.release().await;
                    }
                    return Err(e);
                }
            }
        }
        let mut plans = Vec::new();
        for (account, lock) in locks {
            let mut chunks = Vec::new();
            for &(endpoint, from, to) in &ranges {
                let ledger = self.store.ledger(&account.appid, endpoint.name()).await?;
                if !named && let Some(since) = plan::offline_since(&ledger, now) {
                    tracing::warn!(account = %account.appid, %endpoint, since = %rfc3339(since),
                        "skipping: the endpoint answered 47009 (offline); name it with --endpoint to try anyway");
                    continue;
                }
                let coverage = plan::coverage(endpoint, &ledger, self.settings.timezone);
                let days = plan::backfill_days(from, to, request.refetch, &coverage);
                let endpoint_chunks = plan::chunk_days(endpoint, &days);
                if plan::quota_spent_today(&ledger, today, self.settings.timezone) {
                    // 45009 today: no call until the China day changes. The chunks
                    // count as not sent, so the run exits 1 and a later run fetches them.
                    tracing::warn!(account = %account.appid, %endpoint,
                        "skipping: the daily quota (45009) of this endpoint is spent until tomorrow (China time)");
                    quota_skipped.push((account.appid.clone(), endpoint_chunks.len()));
                    continue;
                }
                chunks.extend(endpoint_chunks);
            }
            plans.push(AccountPlan {
                account,
                chunks,
                catalogue,
                lock,
            });
        }
        let mut report = self
            .execute("backfill", plans, request.progress, cancel)
            .await?;
        for (appid, skipped) in quota_skipped.into_iter().filter(|(_, n)| *n > 0) {
            report.chunks_planned += skipped;
            report.chunks_not_sent += skipped;
            report.failures.push(format!(
                "account {appid}: {skipped} chunks not sent because their endpoint's daily quota is spent (45009); a later run fetches them"
            ));
        }
        Ok(report)
    }

    /// Runs the planned chunks of every account (accounts in parallel).
    async fn execute(
        &self,
        command: &str,
        plans: Vec<AccountPlan<'_>>,
        progress: bool,
        cancel: &CancellationToken,
    ) -> Result<RunReport, RunError> {
        let started = Instant::now();
        let run_id = self.start_run(command).await?;
        let total: usize = plans.iter().map(|p| p.chunks.len()).sum();
        let bar = progress_bar(progress, total as u64);
        if progress {
            crate::telemetry::set_progress_bar(Some(bar.clone()));
        }
        tracing::info!(
            command,
            chunks = total,
            accounts = plans.len(),
            "run started"
        );
        // At most `account_concurrency` accounts at once (500 accounts at once
        // would be 2,000 requests in flight). Each account ends on its own (a
        // slow or failing one holds only its own slot), and the next starts as
        // soon as any slot is free.
        let mut runs = futures::stream::iter(plans)
            .map(|plan| self.run_account(plan, &bar, cancel))
            .buffer_unordered(self.settings.account_concurrency.max(1));
        let mut report = RunReport::default();
        while let Some(account_report) = runs.next().await {
            report.absorb(account_report);
        }
        bar.finish_and_clear();
        crate::telemetry::set_progress_bar(None);
        report.duration = started.elapsed();
        self.finish_run(run_id, &report).await;
        self.store.release_memory().await;
        tracing::info!(
            command,
            requests = report.requests,
            rows = report.rows,
            chunks_ok = report.chunks_ok,
            failures = report.chunks_failed + report.chunks_not_sent,
            duration_ms = report.duration.as_millis() as u64,
            cancelled = report.cancelled,
            "run finished"
        );
        Ok(report)
    }

    async fn run_account(
        &self,
        plan: AccountPlan<'_>,
        bar: &ProgressBar,
        cancel: &CancellationToken,
    ) -> RunReport {
        let AccountPlan {
            account,
            mut chunks,
            catalogue,
            lock,
        } = plan;
        // Newest days first: if a quota runs out, the days users look at are in.
        chunks.sort_by(|a, b| b.end.cmp(&a.end).then(a.endpoint.cmp(&b.endpoint)));
        let settings = &self.settings;
        let tokens = Arc::new(match &account.token_command {
            Some(argv) => TokenManager::from_command(
                self.http.clone(),
                &settings.api_base,
                &account.appid,
                TokenCommand {
                    argv: argv.clone(),
                    timeout: settings.token_command_timeout,
                },
            ),
            None => TokenManager::new(
                self.http.clone(),
                &settings.api_base,
                &account.appid,
                account.secret.clone(),
                settings.token_mode,
            ),
        });
        let client = DatacubeClient::new(
            self.http.clone(),
            &settings.api_base,
            &account.appid,
            tokens,
            RetryPolicy {
                max_attempts: settings.max_attempts,
                base_delay: Duration::from_millis(settings.retry_base_ms),
                minute_quota_wait: settings.minute_quota_wait_secs.map(Duration::from_secs),
            },
            self.clock.clone(),
            settings.timezone,
        )
        .with_quota(QuotaPolicy {
            check: settings.quota_check,
            reserve: settings.quota_reserve,
        });
        let mut report = RunReport {
            chunks_planned: chunks.len(),
            ..RunReport::default()
        };
        let client = Arc::new(client);
        let mut outcomes = futures::stream::iter(chunks)
            .map(|chunk| {
                // Each chunk in flight is a task of its own, so that the
                // runtime's workers share the parsing and normalising. A
                // chunk's task ends when its rows are handed to the writer,
                // so the next fetch never waits for a commit. Dropping the
                // run aborts them, as it dropped the futures before.
                let (engine, client, cancel) = (self.clone(), client.clone(), cancel.clone());
                let task = AbortOnDropHandle::new(tokio::spawn(async move {
                    engine.run_chunk(&client, chunk, &cancel).await
                }));
                async move {
                    match task.await {
                        Ok(outcome) => outcome,
                        // A panic stays a panic, as when the chunk ran inline.
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        // Aborted: only when the run itself is dropped.
                        Err(_) => ChunkOutcome::Cancelled { attempts: 0 },
                    }
                }
            })
            .buffer_unordered(settings.concurrency.max(1));
        // Writes handed to the writer, counted when their group commits.
        let mut commits = FuturesUnordered::new();
        let mut fetching = true;
        while fetching || !commits.is_empty() {
            tokio::select! {
                outcome = outcomes.next(), if fetching => match outcome {
                    Some(outcome) => {
                        if let Some((pending, committed)) = report.count(outcome) {
                            commits.push(await_commit(pending, committed));
                        } else {
                            bar.inc(1);
                        }
                    }
                    None => fetching = false,
                },
                Some((pending, result)) = commits.next() => {
                    report.count_commit(&account.appid, pending, result);
                    bar.inc(1);
                }
            }
        }
        if report.chunks_not_sent > 0 {
            let line = format!(
                "account {}: {} chunks not sent because their endpoint's daily quota is spent (45009, or today's share planned from the quota look-up), it is offline (47009) or not authorised (61007, 48001); a later run fetches them",
                account.appid, report.chunks_not_sent
            );
            tracing::warn!("{line}");
            report.failures.push(line);
        }
        if let Some(mode) = catalogue {
            let sweep = Sweep {
                store: &self.store,
                client: &client,
                clock: &self.clock,
                timezone: settings.timezone,
                daily_calls: settings.catalogue_daily_calls,
                mode,
            };
            report.absorb(sweep.run(cancel).await);
        }
        let today = self.clock.today(settings.timezone);
        if let Err(e) = self
            .store
            .record_quota(&account.appid, today, &client.quota_seen())
            .await
        {
            tracing::warn!(account = %account.appid, "could not record the quota seen: {e:#}");
        }
        lock.release().await;
        report
    }

    async fn run_chunk(
        &self,
        client: &DatacubeClient,
        chunk: Chunk,
        cancel: &CancellationToken,
    ) -> ChunkOutcome {
        let appid = client.appid();
        let Chunk {
            endpoint,
            begin,
            end,
        } = chunk;
        if cancel.is_cancelled() {
            return ChunkOutcome::Cancelled { attempts: 0 };
        }
        let started = Instant::now();
        let fetched = client.fetch(endpoint, begin, end, cancel).await;
        let fetched_at = self.clock.now();
        let ok = match fetched {
            Ok(ok) => ok,
            Err(error) => return self.chunk_failed(appid, chunk, error, fetched_at).await,
        };
        let normalized = match normalize(endpoint, appid, begin, end, &ok.json) {
            Ok(n) => n,
            Err(shape) => {
                let error = FetchError {
                    kind: FetchErrorKind::Permanent,
                    errcode: None,
                    message: format!("account {appid}, {chunk}: {shape}"),
                    attempts: ok.attempts,
                };
                return self.chunk_failed(appid, chunk, error, fetched_at).await;
            }
        };
        if normalized.dropped_outside > 0 {
            tracing::warn!(account = %appid, %endpoint, %begin, %end, dropped = normalized.dropped_outside,
                "dropped rows whose ref_date lies outside the requested dates");
        }
        let data_rows = normalized.data_rows();
        let delayed = normalized.is_delay.unwrap_or(false);
        let write = ChunkWrite {
            appid: appid.to_owned(),
            endpoint: endpoint.name(),
            begin,
            end,
            data_rows,
            is_delay: normalized.is_delay,
            rows: normalized.rows,
            body: ok.body,
            attempts: ok.attempts,
            fetched_at,
        };
        let committed = self.store.submit_chunk(write).await;
        ChunkOutcome::Submitted(
            Pending {
                chunk,
                kind: PendingKind::Stored {
                    rows: data_rows,
                    delayed,
                    started,
                },
                attempts: ok.attempts,
            },
            committed,
        )
    }

    async fn chunk_failed(
        &self,
        appid: &str,
        chunk: Chunk,
        error: FetchError,
        at: chrono::DateTime<chrono::Utc>,
    ) -> ChunkOutcome {
        match error.kind {
            FetchErrorKind::Cancelled => {
                return ChunkOutcome::Cancelled {
                    attempts: error.attempts,
                };
            }
            // Chunks never sent after a 45009 need no ledger row: they show as missing.
            FetchErrorKind::NotSent => return ChunkOutcome::NotSent,
            _ => {}
        }
        let Chunk {
            endpoint,
            begin,
            end,
        } = chunk;
        tracing::warn!(account = %appid, %endpoint, %begin, %end, errcode = error.errcode, attempts = error.attempts, "failed: {error}");
        let failure = ChunkFailure {
            appid: appid.to_owned(),
            endpoint: endpoint.name(),
            begin,
            end,
            errcode: error.errcode,
            message: error.message.clone(),
            attempts: error.attempts,
            fetched_at: at,
        };
        let committed = self.store.submit_failure(failure).await;
        ChunkOutcome::Submitted(
            Pending {
                chunk,
                kind: PendingKind::Failed {
                    message: error.to_string(),
                },
                attempts: error.attempts,
            },
            committed,
        )
    }

    async fn start_run(&self, command: &str) -> anyhow::Result<i64> {
        self.store.start_run(command, self.clock.now()).await
    }

    async fn finish_run(&self, id: i64, report: &RunReport) {
        let outcome = RunOutcome {
            outcome: if report.cancelled {
                "cancelled"
            } else if report.exit_code() == 0 {
                "ok"
            } else {
                "failures"
            },
            chunks_ok: report.chunks_ok,
            chunks_failed: report.chunks_failed + report.chunks_not_sent,
            requests: report.requests,
            rows: report.rows,
        };
        if let Err(e) = self.store.finish_run(id, self.clock.now(), &outcome).await {
            tracing::warn!("could not record the end of the run: {e}");
        }
    }
}

/// One account's work in a run: its chunks, and whether to sweep its catalogue.
struct AccountPlan<'a> {
    account: &'a Account,
    chunks: Vec<Chunk>,
    catalogue: Option<SweepMode>,
    /// This process's hold on the account, released when its work is done.
    lock: AccountLock,
}

/// How a chunk's task ended.
enum ChunkOutcome {
    /// Handed to the writer: it counts once its group commits.
    Submitted(Pending, Committed),
    NotSent,
    Cancelled {
        attempts: u32,
    },
}

/// A chunk whose write (its rows, or its failure's ledger row) waits for a commit.
struct Pending {
    chunk: Chunk,
    kind: PendingKind,
    attempts: u32,
}

enum PendingKind {
    Stored {
        rows: usize,
        delayed: bool,
        started: Instant,
    },
    /// The chunk failed; only its ledger row is waiting.
    Failed { message: String },
}

/// Resolves with the commit's result (one function, so that every
/// waiting write has the same future type).
async fn await_commit(pending: Pending, committed: Committed) -> (Pending, anyhow::Result<()>) {
    (pending, committed.wait().await)
}

impl RunReport {
    /// Counts a chunk's task's outcome; a write waiting for its commit is
    /// handed back to be counted by `count_commit`.
    fn count(&mut self, outcome: ChunkOutcome) -> Option<(Pending, Committed)> {
        match outcome {
            ChunkOutcome::Submitted(pending, committed) => {
                self.requests += u64::from(pending.attempts);
                Some((pending, committed))
            }
            ChunkOutcome::NotSent => {
                self.chunks_not_sent += 1;
                None
            }
            ChunkOutcome::Cancelled { attempts } => {
                self.cancelled = true;
                self.requests += u64::from(attempts);
                None
            }
        }
    }

    /// Counts a write once the group holding it has committed (or not): a
    /// chunk is stored, in the report and the logs, only then.
    fn count_commit(&mut self, appid: &str, pending: Pending, result: anyhow::Result<()>) {
        let Pending {
            chunk,
            kind,
            attempts,
            ..
        } = pending;
        let Chunk {
            endpoint,
            begin,
            end,
        } = chunk;
        match (kind, result) {
            (
                PendingKind::Stored {
                    rows,
                    delayed,
                    started,
                },
                Ok(()),
            ) => {
                tracing::info!(
                    account = %appid, %endpoint, %begin, %end, rows, attempts, delayed,
                    ms = started.elapsed().as_millis() as u64, "stored"
                );
                self.chunks_ok += 1;
                self.rows += rows as u64;
            }
            (PendingKind::Stored { .. }, Err(e)) => {
                let message = format!("account {appid}, {chunk}: could not store the chunk: {e:#}");
                tracing::error!("{message}");
                self.chunks_failed += 1;
                self.failures.push(message);
            }
            (PendingKind::Failed { message }, result) => {
                if let Err(e) = result {
                    tracing::error!(account = %appid, %endpoint, %begin, %end, "could not record the failure in the ledger: {e:#}");
                }
                self.chunks_failed += 1;
                self.failures.push(message);
            }
        }
    }
}

fn progress_bar(show: bool, total: u64) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} chunks ({eta} left)",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
