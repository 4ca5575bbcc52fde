//! The catalogue sweep (`freepublish/batchget`): pages newest first, within a
//! daily budget of calls, resumable across runs and days.
//!
//! Each sync first reads from offset 0 until a page brings nothing new or
//! changed (every item stored with the same `update_time`) or the list ends.
//! While a sweep of the whole list is unfinished (the first one, or one a
//! backfill asked for), it then goes on where the last run stopped, until
//! the list ends or the day's budget (`catalogue_daily_calls`) is spent. The
//! state lives in the database, so a restart on the same day keeps to the
//! budget. A 45009 stops the catalogue for the China day; nothing else.

use chrono::NaiveDate;
use tokio_util::sync::CancellationToken;

use super::RunReport;
use crate::clock::Clock;
use crate::endpoint::Endpoint;
use crate::endpoint::catalogue::{PAGE_SIZE, Page, parse_page};
use crate::store::{CatalogueState, Store};
use crate::wechat::errors::DAILY_QUOTA;
use crate::wechat::{DatacubeClient, FetchErrorKind};

/// What a run asks of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepMode {
    /// New and changed items, and the rest of an unfinished sweep.
    Sync,
    /// All of it (`backfill --endpoint freepublish`), within the same budget.
    Full,
}

/// Everything one sweep needs.
pub struct Sweep<'a> {
    pub store: &'a Store,
    pub client: &'a DatacubeClient,
    pub clock: &'a Clock,
    pub timezone: chrono_tz::Tz,
    /// Calls allowed per China day.
    pub daily_calls: u32,
    pub mode: SweepMode,
}

/// Why a sweep stopped early.
enum Stop {
    Budget,
    Failed(String),
    Cancelled,
}

impl Sweep<'_> {
    /// Runs the sweep; its pages count as chunks in the report.
    pub async fn run(&self, cancel: &CancellationToken) -> RunReport {
        let mut report = RunReport::default();
        let appid = self.client.appid();
        let today = self.clock.today(self.timezone);
        let mut state = match self.store.catalogue_state(appid).await {
            Ok(state) => state,
            Err(e) => return failed(report, format!("account {appid}, freepublish: {e:#}")),
        };
        if state.quota_spent_date == Some(today) {
            tracing::warn!(account = %appid, endpoint = "freepublish",
                "skipping: the daily quota ({DAILY_QUOTA}) of the catalogue is spent until tomorrow (China time)");
            if self.mode == SweepMode::Full {
                report.chunks_planned += 1;
                report.chunks_not_sent += 1;
                report.failures.push(format!(
                    "account {appid}: the catalogue was not swept because its daily quota is spent ({DAILY_QUOTA}); a later run sweeps it"
                ));
            }
            return report;
        }
        if self.mode == SweepMode::Full && state.sweep_complete {
            state.sweep_complete = false;
            state.next_offset = 0;
        }
        let outcome = self.pages(&mut state, today, &mut report, cancel).await;
        match outcome {
            Ok(()) => {}
            Err(Stop::Budget) => tracing::info!(account = %appid, endpoint = "freepublish",
                calls = state.calls_on(today), next_offset = state.next_offset,
                "the catalogue's daily budget is spent; the sweep goes on tomorrow"),
            Err(Stop::Cancelled) => report.cancelled = true,
            Err(Stop::Failed(message)) => return failed(report, message),
        }
        report
    }

    /// Reads the head, then the rest of an unfinished sweep.
    async fn pages(
        &self,
        state: &mut CatalogueState,
        today: NaiveDate,
        report: &mut RunReport,
        cancel: &CancellationToken,
    ) -> Result<(), Stop> {
        // Items new since the last run push the unfinished sweep's position.
        let mut shift = 0;
        let mut offset = 0;
        if state.sweep_complete || state.next_offset > 0 {
            loop {
                let read = self
                    .page(state, offset, Advance::Head, today, report, cancel)
                    .await?;
                shift += read.new_items;
                offset += read.items;
                if read.at_end {
                    return Ok(());
                }
                if read.new_items + read.changed_items == 0 {
                    break;
                }
            }
        }
        if state.sweep_complete {
            return Ok(());
        }
        let mut offset = (state.next_offset + shift).max(offset);
        loop {
            let read = self
                .page(state, offset, Advance::Sweep, today, report, cancel)
                .await?;
            offset += read.items;
            if read.at_end {
                return Ok(());
            }
        }
    }

    /// Fetches and stores one page, with the state it leaves.
    async fn page(
        &self,
        state: &mut CatalogueState,
        offset: u32,
        advance: Advance,
        today: NaiveDate,
        report: &mut RunReport,
        cancel: &CancellationToken,
    ) -> Result<PageRead, Stop> {
        let appid = self.client.appid();
        if cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        if state.calls_on(today) >= self.daily_calls {
            return Err(Stop::Budget);
        }
        report.chunks_planned += 1;
        let fetched = self
            .client
            .fetch_catalogue_page(Endpoint::Freepublish, offset, PAGE_SIZE, cancel)
            .await;
        let now = self.clock.now();
        let ok = match fetched {
            Ok(ok) => ok,
            Err(error) => {
                report.requests += u64::from(error.attempts);
                state.count_calls(today, error.attempts, now);
                if error.kind == FetchErrorKind::Cancelled {
                    self.save(state).await?;
                    return Err(Stop::Cancelled);
                }
                if error.errcode == Some(DAILY_QUOTA) {
                    state.quota_spent_date = Some(today);
                }
                state.last_errcode = error.errcode;
                state.last_error = Some(error.message.clone());
                self.save(state).await?;
                tracing::warn!(account = %appid, endpoint = "freepublish", offset,
                    errcode = error.errcode, "failed: {error}");
                return Err(Stop::Failed(error.to_string()));
            }
        };
        report.requests += u64::from(ok.attempts);
        state.count_calls(today, ok.attempts, now);
        let page: Page = match parse_page(appid, &ok.json) {
            Ok(page) => page,
            Err(shape) => {
                let message = format!("account {appid}, freepublish offset {offset}: {shape}");
                state.last_errcode = None;
                state.last_error = Some(message.clone());
                self.save(state).await?;
                return Err(Stop::Failed(message));
            }
        };
        let ids: Vec<&str> = page.items.iter().map(|i| i.article_id.as_str()).collect();
        let stored = self
            .store
            .catalogue_update_times(appid, &ids)
            .await
            .map_err(|e| Stop::Failed(format!("account {appid}, freepublish: {e:#}")))?;
        let mut read = PageRead {
            items: page.items.len() as u32,
            ..PageRead::default()
        };
        for item in &page.items {
            match stored.get(&item.article_id) {
                None => read.new_items += 1,
                Some(time) if *time != item.update_time => read.changed_items += 1,
                Some(_) => {}
            }
        }
        // The end: an empty or short page, or `total_count` reached.
        read.at_end = read.items < PAGE_SIZE
            || page
                .total_count
                .is_some_and(|total| i64::from(offset + read.items) >= total);
        state.total_count = page.total_count;
        if read.at_end {
            // The list was read to its end: from the head, or by the sweep.
            state.sweep_complete = true;
            state.next_offset = 0;
        } else if advance == Advance::Sweep {
            state.next_offset = offset + read.items;
        }
        state.last_errcode = None;
        state.last_error = None;
        let rows: Vec<_> = page.items.into_iter().flat_map(|i| i.rows).collect();
        if let Err(e) = self.store.write_catalogue_page(appid, &rows, state).await {
            return Err(Stop::Failed(format!(
                "account {appid}, freepublish offset {offset}: could not store the page: {e:#}"
            )));
        }
        report.chunks_ok += 1;
        report.rows += rows.len() as u64;
        tracing::info!(account = %appid, endpoint = "freepublish", offset, items = read.items,
            new = read.new_items, changed = read.changed_items, rows = rows.len(), "stored");
        Ok(read)
    }

    async fn save(&self, state: &CatalogueState) -> Result<(), Stop> {
        let appid = self.client.appid();
        self.store
            .save_catalogue_state(appid, state)
            .await
            .map_err(|e| Stop::Failed(format!("account {appid}, freepublish: {e:#}")))
    }
}

/// Which read a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Advance {
    /// The head (new and changed items): the sweep's position stays.
    Head,
    /// The sweep of the whole list: its position moves past the page.
    Sweep,
}

/// What one page brought.
#[derive(Debug, Default)]
struct PageRead {
    items: u32,
    new_items: u32,
    changed_items: u32,
    at_end: bool,
}

fn failed(mut report: RunReport, message: String) -> RunReport {
    tracing::warn!("{message}");
    report.chunks_failed += 1;
    report.failures.push(message);
    report
}
