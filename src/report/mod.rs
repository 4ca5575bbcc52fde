//! `wxcube report`: an account's period in pictures, offline, in one HTML
//! file (SPEC section 11).
//!
//! This module builds the data model from the store (every query is in
//! `store/report.rs`, so that the report runs on whichever database the store
//! speaks), `charts` draws it with plotters, and `html` writes the page with
//! the model embedded as JSON. [`write_atomically`] puts the file in place.
//!
//! Days without data stay absent (or `null`) in the model, never 0: the
//! charts show them as gaps.

pub mod charts;
pub mod html;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{Days, NaiveDate};
use serde::Serialize;

use crate::clock::{Clock, days, days_back};
use crate::config::Settings;
use crate::endpoint::Endpoint;
use crate::ingest::plan;
use crate::store::Store;
use crate::wechat::errors::DAILY_QUOTA;

/// The report's file when neither `--out` nor `report_path` names one.
pub const DEFAULT_PATH: &str = "wxcube-report.html";

/// Days in the default period (ending yesterday).
pub const DEFAULT_DAYS: u32 = 30;

/// Failures of the ledger listed per account.
const RECENT_FAILURES: i64 = 10;

/// The whole report, as embedded in the page (`wxcube-report-data`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When it was written (UTC, RFC 3339).
    pub generated_at: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub accounts: Vec<AccountReport>,
}

/// One account's period.
#[derive(Debug, Clone, Serialize)]
pub struct AccountReport {
    pub appid: String,
    /// The configured label, if any.
    pub name: Option<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// `v_followers`, one entry per day it has.
    pub followers: Vec<FollowerDay>,
    /// Readers over all channels, one entry per day with data.
    pub reads: Vec<ReadDay>,
    /// Readers per channel (legacy) or scene (current family), for the days
    /// each family holds (the current family wherever it has the day).
    pub reads_by_channel: Vec<ChannelDay>,
    /// The ten articles of the period with the most readers.
    pub top_articles: Vec<TopArticle>,
    /// Shares per day and scene (getusershare).
    pub shares_by_scene: Vec<ShareDay>,
    /// Account-wide sharers per day (getbizsummary).
    pub shares_total: Vec<TotalShareDay>,
    /// Readers per hour of the day over the period (getuserreadhour).
    pub reads_by_hour: Vec<HourReads>,
    pub health: Health,
}

impl AccountReport {
    /// Whether the account has no figure at all for the period.
    pub fn is_empty(&self) -> bool {
        self.followers.is_empty()
            && self.reads.is_empty()
            && self.reads_by_channel.is_empty()
            && self.top_articles.is_empty()
            && self.shares_by_scene.is_empty()
            && self.shares_total.is_empty()
            && self.reads_by_hour.is_empty()
    }
}

// The rows the store returns are the report's own: serialised as they are.
pub use crate::store::report::{
    BizShareDay as TotalShareDay, FollowerDay, HourReads, ReadDay, ShareDay, TopArticle,
};

/// One day of one channel or scene.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelDay {
    pub date: NaiveDate,
    /// `getbizsummary` (scenes, `code` = scene_desc) or `getuserread`
    /// (channels, `code` = user_source).
    pub source: &'static str,
    pub code: String,
    pub name: String,
    pub read_user: Option<i64>,
}

/// What the ledger says about the period's data.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    pub endpoints: Vec<EndpointHealth>,
    /// The latest failed chunks, newest first.
    pub recent_failures: Vec<Failure>,
    /// The quota WeChat last reported (`openapi/quota/get`) per endpoint,
    /// from `quota_seen`; empty before the first look-up.
    pub quota_last_seen: Vec<crate::store::quota::QuotaRow>,
}

/// One configured endpoint over the period.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointHealth {
    pub endpoint: &'static str,
    /// Days of the period the endpoint can serve (its family's first date on).
    pub days_expected: usize,
    /// Days of those without a successful fetch.
    pub days_missing: usize,
    /// The missing days as ranges ("2026-01-01..2026-01-03").
    pub missing: Vec<String>,
    /// 47009 seen lately: syncs skip it.
    pub offline: bool,
    /// The last time a 45009 (daily quota) stopped it, if ever.
    pub daily_quota_hit_at: Option<String>,
}

/// One failed chunk.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub endpoint: String,
    pub begin_date: NaiveDate,
    pub end_date: NaiveDate,
    pub errcode: Option<i64>,
    pub error: Option<String>,
    pub fetched_at: String,
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct Request {
    pub appids: Vec<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Why a report cannot be made as asked (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("unknown account {appid:?} (known: {known})")]
    UnknownAccount { appid: String, known: String },
    #[error("--from {from} is after --to {to}")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("no account is configured and the database has none")]
    NoAccount,
}

/// The accounts and dates a report covers: every configured account (or,
/// with none configured, every account the ledger knows, as `status` does)
/// or the one named; by default the last 30 days to yesterday in `timezone`.
pub async fn plan_request(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
    account: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> anyhow::Result<Result<Request, RequestError>> {
    let mut known: Vec<String> = settings.accounts.iter().map(|a| a.appid.clone()).collect();
    if known.is_empty() {
        known = store.ledger_appids().await?;
    }
    let appids = match account {
        Some(appid) => {
            let in_ledger = store.ledger_appids().await?.iter().any(|a| a == appid);
            if !known.iter().any(|a| a == appid) && !in_ledger {
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                return Ok(Err(RequestError::UnknownAccount {
                    appid: appid.to_string(),
                    known,
                }));
            }
            vec![appid.to_string()]
        }
        None if known.is_empty() => return Ok(Err(RequestError::NoAccount)),
        None => known,
    };
    let to = to.unwrap_or_else(|| clock.yesterday(settings.timezone));
    let from = from.unwrap_or_else(|| days_back(to, DEFAULT_DAYS));
    if from > to {
        return Ok(Err(RequestError::Reversed { from, to }));
    }
    Ok(Ok(Request { appids, from, to }))
}

/// Builds the report's data from the store.
pub async fn collect(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
    request: &Request,
) -> anyhow::Result<Report> {
    let mut accounts = Vec::new();
    for appid in &request.appids {
        accounts
            .push(collect_account(settings, store, clock, appid, request.from, request.to).await?);
    }
    Ok(Report {
        generated_at: crate::store::rfc3339(clock.now()),
        from: request.from,
        to: request.to,
        accounts,
    })
}

async fn collect_account(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
    appid: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<AccountReport> {
    let followers = store.report_followers(appid, from, to).await?;
    let reads = store.report_reads(appid, from, to).await?;
    // By channel: the current family's scenes wherever it has the day, the
    // legacy channels on the other days (their categories differ, so a day
    // never mixes both).
    let scenes = store.report_scene_reads(appid, from, to).await?;
    let scene_days: BTreeSet<NaiveDate> = scenes.iter().map(|s| s.date).collect();
    let channels = store.report_channel_reads(appid, from, to).await?;
    let mut reads_by_channel: Vec<ChannelDay> = scenes
        .into_iter()
        .map(|s| (s, "getbizsummary"))
        .chain(
            channels
                .into_iter()
                .filter(|c| !scene_days.contains(&c.date))
                .map(|c| (c, "getuserread")),
        )
        .map(|(c, source)| ChannelDay {
            date: c.date,
            source,
            code: c.code,
            name: c.name,
            read_user: c.read_user,
        })
        .collect();
    reads_by_channel.sort_by(|a, b| (a.date, a.source, &a.code).cmp(&(b.date, b.source, &b.code)));
    let top_articles = store.report_top_articles(appid, from, to).await?;
    let shares_by_scene = store.report_shares(appid, from, to).await?;
    let shares_total = store.report_biz_shares(appid, from, to).await?;
    let reads_by_hour = store.report_hours(appid, from, to).await?;
    let health = health(settings, store, clock, appid, from, to).await?;
    Ok(AccountReport {
        appid: appid.to_string(),
        name: settings.account(appid).and_then(|a| a.name.clone()),
        from,
        to,
        followers,
        reads,
        reads_by_channel,
        top_articles,
        shares_by_scene,
        shares_total,
        reads_by_hour,
        health,
    })
}

async fn health(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
    appid: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<Health> {
    let mut endpoints = Vec::new();
    for endpoint in settings.endpoints.iter().copied().filter(|e| e.is_dated()) {
        endpoints.push(endpoint_health(settings, store, clock, appid, endpoint, from, to).await?);
    }
    let recent_failures = store
        .report_failures(appid, RECENT_FAILURES)
        .await?
        .into_iter()
        .map(|f| Failure {
            endpoint: f.endpoint,
            begin_date: f.begin_date,
            end_date: f.end_date,
            errcode: f.errcode,
            error: f.error,
            fetched_at: crate::store::rfc3339(f.fetched_at),
        })
        .collect();
    Ok(Health {
        endpoints,
        recent_failures,
        quota_last_seen: store.quota_seen(appid).await?,
    })
}

async fn endpoint_health(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
    appid: &str,
    endpoint: Endpoint,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<EndpointHealth> {
    let ledger = store.ledger(appid, endpoint.name()).await?;
    let coverage = plan::coverage(endpoint, &ledger, settings.timezone);
    let expected: Vec<NaiveDate> = days(from.max(endpoint.first_date()), to).collect();
    let missing: Vec<NaiveDate> = expected
        .iter()
        .copied()
        .filter(|d| !coverage.get(d).is_some_and(|s| s.ok))
        .collect();
    let daily_quota_hit_at = ledger
        .iter()
        .filter(|r| r.errcode == Some(DAILY_QUOTA))
        .map(|r| r.fetched_at)
        .max()
        .map(crate::store::rfc3339);
    Ok(EndpointHealth {
        endpoint: endpoint.name(),
        days_expected: expected.len(),
        days_missing: missing.len(),
        missing: ranges(&missing),
        offline: plan::offline_since(&ledger, clock.now()).is_some(),
        daily_quota_hit_at,
    })
}

/// Compresses sorted days into ranges ("2026-01-01..2026-01-03", "2026-01-05").
pub fn ranges(days: &[NaiveDate]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < days.len() {
        let start = days[i];
        let mut end = start;
        while i + 1 < days.len() && days[i + 1] == end + Days::new(1) {
            i += 1;
            end = days[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}..{end}")
        });
        i += 1;
    }
    out
}

/// Why the report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The destination is unusable (a missing directory, no permission, a
    /// directory in its place): bad input, exit 2.
    #[error("cannot write the report to {}: {reason}", path.display())]
    Destination { path: PathBuf, reason: String },
    /// Writing failed midway (disk full, say): exit 1.
    #[error("cannot write the report to {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A temporary file beside the destination, created before any work so that
/// an unwritable destination is reported at once; [`Pending::commit`] moves
/// it into place, dropping it removes it.
pub struct Pending {
    temp: PathBuf,
    file: Option<std::fs::File>,
    path: PathBuf,
}

impl Pending {
    /// Checks the destination and creates the temporary file in its directory
    /// (so that the final rename stays on one file system and is atomic).
    pub fn create(path: &Path) -> Result<Pending, WriteError> {
        let destination = |reason: String| WriteError::Destination {
            path: path.to_path_buf(),
            reason,
        };
        if path.is_dir() {
            return Err(destination("it is a directory".into()));
        }
        let name = path
            .file_name()
            .ok_or_else(|| destination("no file name".into()))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(destination(format!(
                "directory {} does not exist",
                dir.display()
            )));
        }
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.tmp", std::process::id()));
        let temp = dir.join(temp_name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| destination(e.to_string()))?;
        Ok(Pending {
            temp,
            file: Some(file),
            path: path.to_path_buf(),
        })
    }

    /// Writes `contents`, syncs it and renames it over the destination.
    pub fn commit(mut self, contents: &[u8]) -> Result<PathBuf, WriteError> {
        let io = |source| WriteError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = self.file.take().expect("a pending file is committed once");
        file.write_all(contents).map_err(io)?;
        file.sync_all().map_err(io)?;
        drop(file);
        std::fs::rename(&self.temp, &self.path).map_err(io)?;
        Ok(self.path.clone())
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Not committed (or the rename failed): leave no temporary file behind.
        if self.temp.exists() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `contents` to `path` atomically: readers see the old file or the
/// new one, never a part.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<PathBuf, WriteError> {
    Pending::create(path)?.commit(contents)
}

/// Builds the report of every account over the default period and writes it
/// to `path` (the daemon's job after each sync).
pub async fn write_default(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
    path: &Path,
) -> anyhow::Result<PathBuf> {
    let pending = Pending::create(path)?;
    let request = plan_request(settings, store, clock, None, None, None)
        .await?
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let report = collect(settings, store, clock, &request).await?;
    let page = html::render(&report)?;
    Ok(pending.commit(page.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compress_consecutive_days() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let days = [
            d("2026-01-01"),
            d("2026-01-02"),
            d("2026-01-03"),
            d("2026-01-05"),
        ];
        assert_eq!(ranges(&days), ["2026-01-01..2026-01-03", "2026-01-05"]);
        assert!(ranges(&[]).is_empty());
    }

    #[test]
    fn an_unusable_destination_is_reported_before_any_work() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/r.html");
        assert!(matches!(
            Pending::create(&missing),
            Err(WriteError::Destination { .. })
        ));
        assert!(matches!(
            Pending::create(dir.path()),
            Err(WriteError::Destination { .. })
        ));
        let ok = dir.path().join("r.html");
        write_atomically(&ok, b"one").unwrap();
        write_atomically(&ok, b"two").unwrap();
        assert_eq!(std::fs::read(&ok).unwrap(), b"two");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }
}
