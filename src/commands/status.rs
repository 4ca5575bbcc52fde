//! `wxcube status`: what is stored, missing and failing, as a table or JSON.

use super::{load_settings, open_store};
use crate::clock::Clock;
use crate::config::{CliOverrides, Need};
use crate::exit::{EXIT_FAILURES, EXIT_OK};
use crate::status;

/// Runs the command; returns its exit code.
pub async fn run(overrides: &CliOverrides, clock: Clock, account: Option<&str>, json: bool) -> u8 {
    let settings = match load_settings(overrides, Need::NoCredentials) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let store = match open_store(&settings).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let result = status::collect(&settings, &store, &clock, account).await;
    store.close().await;
    match result {
        Ok(statuses) => {
            if json {
                match serde_json::to_string_pretty(&statuses) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("wxcube: status: error: {e}");
                        return EXIT_FAILURES;
                    }
                }
            } else {
                // Many accounts: one line each, the troubled ones first.
                let accounts: std::collections::BTreeSet<&str> =
                    statuses.iter().map(|s| s.appid.as_str()).collect();
                if account.is_none() && accounts.len() > status::SUMMARY_ABOVE {
                    let names = |appid: &str| settings.account(appid).and_then(|a| a.name.clone());
                    print!("{}", status::render_summary(&statuses, &names));
                } else {
                    print!("{}", status::render_table(&statuses));
                }
            }
            EXIT_OK
        }
        Err(e) => {
            eprintln!("wxcube: status: error: {e:#}");
            EXIT_FAILURES
        }
    }
}
