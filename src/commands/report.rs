//! `wxcube report`: the self-contained HTML report (SPEC section 11), written
//! atomically; prints the file's path on stdout.

use std::path::PathBuf;

use chrono::NaiveDate;

use super::{load_settings, open_store};
use crate::clock::Clock;
use crate::config::{CliOverrides, Need};
use crate::exit::{EXIT_FAILURES, EXIT_OK, EXIT_USAGE};
use crate::report::{self, Pending, WriteError};

/// What `wxcube report` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ReportArgs {
    /// Only this account.
    pub account: Option<String>,
    /// First day (default: 30 days before `to`).
    pub from: Option<NaiveDate>,
    /// Last day (default: yesterday in `timezone`).
    pub to: Option<NaiveDate>,
    /// The file (default: `report_path`, else `wxcube-report.html`).
    pub out: Option<PathBuf>,
}

/// Runs the command; returns its exit code.
pub async fn run(overrides: &CliOverrides, clock: Clock, args: ReportArgs) -> u8 {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        eprintln!("wxcube: report: --from {from} is after --to {to}");
        return EXIT_USAGE;
    }
    let settings = match load_settings(overrides, Need::NoCredentials) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let path = args
        .out
        .clone()
        .or_else(|| settings.report_path.clone())
        .unwrap_or_else(|| PathBuf::from(report::DEFAULT_PATH));
    // Before any work: an unwritable destination is bad input.
    let pending = match Pending::create(&path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("wxcube: report: {e}");
            return EXIT_USAGE;
        }
    };
    let store = match open_store(&settings).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = async {
        let request = match report::plan_request(
            &settings,
            &store,
            &clock,
            args.account.as_deref(),
            args.from,
            args.to,
        )
        .await?
        {
            Ok(request) => request,
            Err(e) => return Ok(Err(e)),
        };
        let data = report::collect(&settings, &store, &clock, &request).await?;
        let page = report::html::render(&data)?;
        anyhow::Ok(Ok((data, page)))
    }
    .await;
    store.close().await;
    let (data, page) = match result {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => {
            eprintln!("wxcube: report: {e}");
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("wxcube: report: error: {e:#}");
            return EXIT_FAILURES;
        }
    };
    match pending.commit(page.as_bytes()) {
        Ok(path) => {
            let empty = data.accounts.iter().all(|a| a.is_empty());
            eprintln!(
                "wxcube: report: {} to {} for {} account(s){}, written to {}",
                data.from,
                data.to,
                data.accounts.len(),
                if empty {
                    " (no data in the period)"
                } else {
                    ""
                },
                path.display()
            );
            println!("{}", path.display());
            EXIT_OK
        }
        Err(e @ WriteError::Destination { .. }) => {
            eprintln!("wxcube: report: {e}");
            EXIT_USAGE
        }
        Err(e) => {
            eprintln!("wxcube: report: error: {e}");
            EXIT_FAILURES
        }
    }
}
