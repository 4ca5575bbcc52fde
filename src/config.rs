//! TEMPORARY stub; replaced by the real configuration module.
use crate::endpoint::Endpoint;
use chrono::NaiveDate;
use secrecy::SecretString;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    Stable,
    Classic,
}
pub struct Account {
    pub appid: String,
    pub secret: SecretString,
    pub name: Option<String>,
    pub start_date: Option<NaiveDate>,
}
pub struct Settings {
    pub database: String,
    pub api_base: String,
    pub timezone: chrono_tz::Tz,
    pub schedule: String,
    pub refresh_days: u32,
    pub catch_up_days: u32,
    pub concurrency: usize,
    pub http_timeout: Duration,
    pub max_attempts: u32,
    pub token_mode: TokenMode,
    pub endpoints: Vec<Endpoint>,
    pub retry_base_ms: u64,
    pub minute_quota_wait_secs: Option<u64>,
    pub accounts: Vec<Account>,
}
#[derive(Default, Clone, Debug)]
pub struct CliOverrides {
    pub config: Option<std::path::PathBuf>,
    pub database: Option<String>,
}
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    Credentials,
    NoCredentials,
}
#[derive(Debug, thiserror::Error)]
#[error("config")]
pub struct ConfigError;
pub fn load(
    _o: &CliOverrides,
    _env: &[(String, String)],
    _need: Need,
) -> Result<Settings, ConfigError> {
    Err(ConfigError)
}
impl Settings {
    pub fn account(&self, appid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.appid == appid)
    }
}
pub fn load_from(
    _o: &CliOverrides,
    _env: &[(String, String)],
    _need: Need,
    _p: &[std::path::PathBuf],
) -> Result<Settings, ConfigError> {
    Err(ConfigError)
}
