//! `wxcube migrate`: apply the migrations and exit.

use super::{load_settings, open_store};
use crate::config::{CliOverrides, Need};
use crate::exit::EXIT_OK;

/// Runs the command; returns its exit code.
pub async fn run(overrides: &CliOverrides) -> u8 {
    let settings = match load_settings(overrides, Need::NoCredentials) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match open_store(&settings).await {
        Ok(store) => {
            eprintln!("wxcube: migrations applied to {}", store.location());
            store.close().await;
            EXIT_OK
        }
        Err(code) => code,
    }
}
