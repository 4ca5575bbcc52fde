//! Layered settings (SPEC section 3): built-in defaults, then one TOML file, then
//! `WXCUBE_*` environment variables, then command-line options; then validation.
//!
//! The file is walked by hand over `toml`'s low-level parse tree instead of being
//! deserialized into a struct, for two reasons: every error can name the exact key
//! (`accounts[1].secret_file`) and the line it is on, and no error ever quotes the
//! file's text. A serde or `config` error would render a snippet of the offending
//! line, and on the `secret = ...` line that snippet is the appsecret.
//!
//! The environment is a parameter rather than read from the process, so tests can
//! give each case its own environment (`std::env::set_var` is unsafe in edition 2024
//! and racy between test threads anyway).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use toml::de::{DeTable, DeValue};

use crate::clock::parse_date;
use crate::endpoint::{Endpoint, parse_endpoint};

/// The files tried, in order, when neither `--config` nor `WXCUBE_CONFIG` names one.
pub const DEFAULT_PATHS: [&str; 2] = ["wxcube.toml", "/etc/wxcube/wxcube.toml"];

/// How the access token is obtained (SPEC section 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    /// `POST /cgi-bin/stable_token`: shares one token with other services of the
    /// same appid instead of invalidating theirs.
    Stable,
    /// `GET /cgi-bin/token`: invalidates the previous token, 2000 calls a day.
    Classic,
}

impl TokenMode {
    /// The configuration spelling (`stable` or `classic`).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenMode::Stable => "stable",
            TokenMode::Classic => "classic",
        }
    }

    fn parse(text: &str) -> Result<TokenMode, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "stable" => Ok(TokenMode::Stable),
            "classic" => Ok(TokenMode::Classic),
            _ => Err(format!(
                "unknown token mode {:?} (use \"stable\" or \"classic\")",
                text.trim()
            )),
        }
    }
}

impl fmt::Display for TokenMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Official Account to copy statistics from.
#[derive(Clone)]
pub struct Account {
    /// The account's appid (not secret: it names the account in logs and the database).
    pub appid: String,
    /// The appsecret. Empty only when loaded with [`Need::NoCredentials`] and none
    /// was given (or its file was not read).
    pub secret: SecretString,
    /// Optional human label for messages and `status`.
    pub name: Option<String>,
    /// Optional first day syncs keep filling gaps back to (instead of `catch_up_days`).
    pub start_date: Option<NaiveDate>,
}

impl Account {
    /// An account with just an appid and a secret (handy for tests and the demo).
    pub fn new(appid: impl Into<String>, secret: impl Into<String>) -> Account {
        Account {
            appid: appid.into(),
            secret: SecretString::from(secret.into()),
            name: None,
            start_date: None,
        }
    }
}

// Written by hand so that no `{:?}` of an account, of `Settings`, or of anything
// holding them can ever print the appsecret.
impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("appid", &self.appid)
            .field("secret", &format_args!("[redacted]"))
            .field("name", &self.name)
            .field("start_date", &self.start_date)
            .finish()
    }
}

/// The validated configuration every command runs with.
///
/// `Debug` is safe to log: accounts print their secret as `[redacted]`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// SQLite database: a file path or a `sqlite:` URL.
    pub database: String,
    /// Base URL of the WeChat API, without a trailing `/` (the simulator's in tests).
    pub api_base: String,
    /// The API's calendar: "yesterday" and the daily quota reset are computed here.
    pub timezone: Tz,
    /// When the daemon syncs: cron with seconds, in `timezone`, as
    /// `tokio_cron_scheduler::Job::new_async_tz` accepts it.
    pub schedule: String,
    /// Each sync re-fetches the last N days (getarticletotaldetail always 30).
    pub refresh_days: u32,
    /// Each sync fills never-fetched days this far back (unless an account's `start_date`).
    pub catch_up_days: u32,
    /// Requests in flight per account.
    pub concurrency: usize,
    /// Timeout of one HTTP request (`http_timeout_secs`).
    pub http_timeout: Duration,
    /// Tries per request for transient errors, 45011 waits included.
    pub max_attempts: u32,
    /// How access tokens are obtained.
    pub token_mode: TokenMode,
    /// What syncs fetch, in configuration order, without duplicates.
    pub endpoints: Vec<Endpoint>,
    /// First backoff delay after a transient error, in milliseconds; later ones grow
    /// exponentially (with jitter). Not in the SPEC: an advanced knob.
    pub retry_base_ms: u64,
    /// How long to wait after errcode 45011 (per-minute quota); `None` waits until
    /// the next full minute. Not in the SPEC: an advanced knob (tests use 0).
    pub minute_quota_wait_secs: Option<u64>,
    /// The accounts to sync, in configuration order, appids unique.
    pub accounts: Vec<Account>,
}

impl Default for Settings {
    /// The built-in defaults (SPEC section 3), with no account.
    fn default() -> Settings {
        Settings {
            database: "wxcube.db".to_owned(),
            api_base: "https://api.weixin.qq.com".to_owned(),
            timezone: chrono_tz::Asia::Shanghai,
            schedule: "0 30 8 * * *".to_owned(),
            refresh_days: 7,
            catch_up_days: 30,
            concurrency: 4,
            http_timeout: Duration::from_secs(30),
            max_attempts: 5,
            token_mode: TokenMode::Stable,
            endpoints: Endpoint::ALL.to_vec(),
            retry_base_ms: 500,
            minute_quota_wait_secs: None,
            accounts: Vec::new(),
        }
    }
}

impl Settings {
    /// The configured account with this appid, if any.
    pub fn account(&self, appid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.appid == appid)
    }
}

/// What the command line contributes (highest layer) — built by the CLI from global options.
#[derive(Default, Clone, Debug)]
pub struct CliOverrides {
    /// `--config PATH`: the file to load (it must be readable).
    pub config: Option<PathBuf>,
    /// `--database PATH_OR_URL`: replaces `database` from every other layer.
    pub database: Option<String>,
}

/// Whether the command needs credentials (sync, backfill, daemon) or not (status, migrate, demo, simulate).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    /// Every account must have a usable secret; secret files are read.
    Credentials,
    /// Accounts are shape-checked only; secrets may be missing and files are not read.
    NoCredentials,
}

/// Where a configuration value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A key in this configuration file, on this line (1-based) when known.
    File {
        /// The file as it was named or found.
        path: PathBuf,
        /// The line of the key, when known.
        line: Option<usize>,
    },
    /// This environment variable.
    Env(String),
    /// This command-line option.
    Cli(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File {
                path,
                line: Some(line),
            } => write!(f, "in {} (line {line})", path.display()),
            Origin::File { path, line: None } => write!(f, "in {}", path.display()),
            Origin::Env(var) => write!(f, "from environment variable `{var}`"),
            Origin::Cli(option) => write!(f, "from command-line option `{option}`"),
        }
    }
}

/// Why the configuration could not be loaded (the CLI exits 2).
///
/// Every message names the key or the file; none ever contains a secret value
/// (nor any text of the file: syntax errors give a line and column only).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A configuration file that was named (or found) could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error(
        "configuration file {} is not valid TOML (line {line}, column {column}): {message}",
        path.display()
    )]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description (never the offending text).
        message: String,
    },
    /// A key has a bad value, a wrong type, or is unknown.
    #[error("configuration key `{key}` {origin}: {message}")]
    Invalid {
        /// The key, e.g. `schedule` or `accounts[1].start_date`.
        key: String,
        /// Where the value came from.
        origin: Origin,
        /// What is wrong with it.
        message: String,
    },
    /// An account's credentials are missing, empty, duplicated or unreadable.
    #[error("configuration key `{key}` of account `{appid}` {origin}: {message}")]
    Account {
        /// The account's appid.
        appid: String,
        /// The key, e.g. `accounts[0].secret_file` or `secret_file`.
        key: String,
        /// Where the value came from.
        origin: Origin,
        /// What is wrong with it.
        message: String,
    },
    /// The command needs credentials and no account is configured.
    #[error(
        "configuration key `accounts`: no account configured; add an [[accounts]] table \
         (appid and secret_file) to the configuration file, or set WXCUBE_APPID with \
         WXCUBE_SECRET_FILE or WXCUBE_SECRET"
    )]
    NoAccount,
}

/// Loads defaults → file → environment → CLI overrides, then validates.
/// `env` is the process environment as (name, value) pairs (the CLI passes `std::env::vars()`; tests pass their own).
/// File choice: overrides.config, else WXCUBE_CONFIG, else ./wxcube.toml if it exists (relative to the current dir), else /etc/wxcube/wxcube.toml if it exists; a file that was named (by --config or WXCUBE_CONFIG) but cannot be read is an error.
pub fn load(
    overrides: &CliOverrides,
    env: &[(String, String)],
    need: Need,
) -> Result<Settings, ConfigError> {
    let defaults: Vec<PathBuf> = DEFAULT_PATHS.iter().map(PathBuf::from).collect();
    load_from(overrides, env, need, &defaults)
}

/// Same, but with explicit candidate default paths (for tests), i.e. load() = load_from(.., &["wxcube.toml", "/etc/wxcube/wxcube.toml"]).
pub fn load_from(
    overrides: &CliOverrides,
    env: &[(String, String)],
    need: Need,
    default_paths: &[PathBuf],
) -> Result<Settings, ConfigError> {
    let env = Env(env);
    let mut settings = Settings::default();
    let mut accounts: Vec<Pending> = Vec::new();

    if let Some(path) = choose_file(overrides, &env, default_paths) {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        apply_file(&mut settings, &mut accounts, &path, &text)?;
    }

    apply_env(&mut settings, &env)?;
    apply_env_account(&mut accounts, &env)?;

    if let Some(database) = &overrides.database {
        apply_key(&mut settings, "database", Input::Text(database)).map_err(|message| {
            ConfigError::Invalid {
                key: "database".to_owned(),
                origin: Origin::Cli("--database".to_owned()),
                message,
            }
        })?;
    }

    let credentials_dir = env.get("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    settings.accounts = resolve_accounts(accounts, need, credentials_dir.as_deref())?;
    Ok(settings)
}

/// The environment, looked up by name; the last of duplicate names wins, as when
/// a shell exports a variable twice.
struct Env<'a>(&'a [(String, String)]);

impl Env<'_> {
    /// The value, if set at all (possibly empty).
    fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value if set and not blank: `WXCUBE_X=` means "not set", so that a
    /// systemd `Environment=` line or a shell prefix can clear a variable.
    fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.trim().is_empty())
    }
}

fn choose_file(
    overrides: &CliOverrides,
    env: &Env<'_>,
    default_paths: &[PathBuf],
) -> Option<PathBuf> {
    if let Some(path) = &overrides.config {
        return Some(path.clone());
    }
    if let Some(path) = env.get("WXCUBE_CONFIG") {
        return Some(PathBuf::from(path));
    }
    // A default path is only a candidate: absent is normal, so only an existing
    // file is chosen (and then failing to read it is an error, not a silent skip).
    default_paths.iter().find(|p| p.exists()).cloned()
}

/// The top-level keys of the file other than `accounts`, in the example's order.
const KEYS: [&str; 13] = [
    "database",
    "api_base",
    "timezone",
    "schedule",
    "refresh_days",
    "catch_up_days",
    "concurrency",
    "http_timeout_secs",
    "max_attempts",
    "token_mode",
    "endpoints",
    "retry_base_ms",
    "minute_quota_wait_secs",
];

/// The keys of one `[[accounts]]` table.
const ACCOUNT_KEYS: [&str; 5] = ["appid", "secret", "secret_file", "name", "start_date"];

/// Environment variables for the top-level keys (the account ones are handled apart).
const ENV_KEYS: [(&str, &str); 13] = [
    ("WXCUBE_DATABASE", "database"),
    ("WXCUBE_API_BASE", "api_base"),
    ("WXCUBE_TIMEZONE", "timezone"),
    ("WXCUBE_SCHEDULE", "schedule"),
    ("WXCUBE_REFRESH_DAYS", "refresh_days"),
    ("WXCUBE_CATCH_UP_DAYS", "catch_up_days"),
    ("WXCUBE_CONCURRENCY", "concurrency"),
    ("WXCUBE_HTTP_TIMEOUT_SECS", "http_timeout_secs"),
    ("WXCUBE_MAX_ATTEMPTS", "max_attempts"),
    ("WXCUBE_TOKEN_MODE", "token_mode"),
    ("WXCUBE_ENDPOINTS", "endpoints"),
    ("WXCUBE_RETRY_BASE_MS", "retry_base_ms"),
    ("WXCUBE_MINUTE_QUOTA_WAIT_SECS", "minute_quota_wait_secs"),
];

/// Upper bounds that keep date arithmetic and sleeps sane; far beyond any real use
/// (a century of days, a day-long timeout).
const MAX_DAYS: u64 = 36_500;
const MAX_CONCURRENCY: u64 = 64;
const MAX_TIMEOUT_SECS: u64 = 86_400;
const MAX_ATTEMPTS: u64 = 100;
const MAX_RETRY_BASE_MS: u64 = 3_600_000;
const MAX_MINUTE_WAIT_SECS: u64 = 3_600;

/// A value from the file (typed by TOML) or from the environment / command line (text).
#[derive(Clone, Copy)]
enum Input<'a> {
    Toml(&'a DeValue<'a>),
    Text(&'a str),
}

impl Input<'_> {
    fn string(&self) -> Result<&str, String> {
        match self {
            Input::Toml(DeValue::String(s)) => Ok(s.as_ref()),
            Input::Toml(other) => Err(wrong_type("a string", other)),
            Input::Text(text) => Ok(text),
        }
    }

    /// A non-negative integer within `min..=max`.
    fn number(&self, min: u64, max: u64) -> Result<u64, String> {
        let n: i128 = match self {
            Input::Toml(DeValue::Integer(i)) => {
                i128::from_str_radix(i.as_str(), i.radix()).map_err(|e| e.to_string())?
            }
            Input::Toml(other) => return Err(wrong_type("an integer", other)),
            Input::Text(text) => text
                .trim()
                .parse::<i128>()
                .map_err(|_| format!("expected a whole number, found {:?}", text.trim()))?,
        };
        if n < i128::from(min) || n > i128::from(max) {
            return Err(format!("must be between {min} and {max}, found {n}"));
        }
        Ok(u64::try_from(n).expect("checked against the bounds"))
    }

    /// A list of names: a TOML array of strings, or comma-separated text.
    fn names(&self) -> Result<Vec<String>, String> {
        match self {
            Input::Toml(DeValue::Array(items)) => items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(s) => Ok(s.to_string()),
                    other => Err(wrong_type("a list of strings", other)),
                })
                .collect(),
            Input::Toml(other) => Err(wrong_type("a list of strings", other)),
            Input::Text(text) => Ok(text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()),
        }
    }
}

/// Names the expected and the found type, never the value: the value might be a
/// secret put on the wrong line.
fn wrong_type(expected: &str, found: &DeValue<'_>) -> String {
    format!("expected {expected}, found {}", found.type_str())
}

/// Applies one top-level key; the error is the message for [`ConfigError::Invalid`].
fn apply_key(settings: &mut Settings, key: &str, value: Input<'_>) -> Result<(), String> {
    match key {
        "database" => {
            let database = value.string()?.trim();
            if database.is_empty() {
                return Err("must not be empty".to_owned());
            }
            settings.database = database.to_owned();
        }
        "api_base" => settings.api_base = parse_api_base(value.string()?)?,
        "timezone" => {
            let name = value.string()?.trim();
            settings.timezone = name.parse::<Tz>().map_err(|_| {
                format!("unknown timezone {name:?} (use an IANA name such as \"Asia/Shanghai\")")
            })?;
        }
        "schedule" => {
            let expr = value.string()?.trim();
            validate_schedule(expr)?;
            settings.schedule = expr.to_owned();
        }
        "refresh_days" => settings.refresh_days = to_u32(value.number(1, MAX_DAYS)?),
        "catch_up_days" => settings.catch_up_days = to_u32(value.number(1, MAX_DAYS)?),
        "concurrency" => settings.concurrency = to_usize(value.number(1, MAX_CONCURRENCY)?),
        "http_timeout_secs" => {
            settings.http_timeout = Duration::from_secs(value.number(1, MAX_TIMEOUT_SECS)?)
        }
        "max_attempts" => settings.max_attempts = to_u32(value.number(1, MAX_ATTEMPTS)?),
        "token_mode" => settings.token_mode = TokenMode::parse(value.string()?)?,
        "endpoints" => settings.endpoints = parse_endpoints(&value.names()?)?,
        // Zero is allowed for both: tests and the demo want no waiting.
        "retry_base_ms" => settings.retry_base_ms = value.number(0, MAX_RETRY_BASE_MS)?,
        "minute_quota_wait_secs" => {
            settings.minute_quota_wait_secs = Some(value.number(0, MAX_MINUTE_WAIT_SECS)?)
        }
        _ => {
            return Err(format!(
                "unknown key (known keys: {}, accounts)",
                KEYS.join(", ")
            ));
        }
    }
    Ok(())
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).expect("bounded by the caller")
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("bounded by the caller")
}

fn parse_api_base(text: &str) -> Result<String, String> {
    let base = text.trim().trim_end_matches('/');
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() => Ok(base.to_owned()),
        _ => Err(format!(
            "must be an http:// or https:// URL such as \"https://api.weixin.qq.com\", found {:?}",
            text.trim()
        )),
    }
}

fn parse_endpoints(names: &[String]) -> Result<Vec<Endpoint>, String> {
    let mut endpoints = Vec::new();
    for name in names {
        let endpoint = parse_endpoint(name)?;
        // A name listed twice is harmless; fetching it twice per sync would not be.
        if !endpoints.contains(&endpoint) {
            endpoints.push(endpoint);
        }
    }
    if endpoints.is_empty() {
        return Err("must name at least one endpoint".to_owned());
    }
    Ok(endpoints)
}

/// Accepts exactly what `tokio_cron_scheduler::Job::new_async_tz` accepts (without
/// its `english` feature, which we do not enable): croner with seconds required and
/// day-of-month AND day-of-week. Also rejects a pattern that never fires (30
/// February), which the scheduler would accept and then silently never run.
fn validate_schedule(expr: &str) -> Result<(), String> {
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!(
                "invalid cron expression {expr:?} ({e}); it needs six fields with seconds \
                 first, e.g. \"0 30 8 * * *\" for 08:30:00 every day"
            )
        })?;
    cron.find_next_occurrence(&Utc::now(), false)
        .map_err(|_| format!("cron expression {expr:?} never fires"))?;
    Ok(())
}

/// An account as configured, before its secret is resolved according to [`Need`].
struct Pending {
    appid: String,
    /// `accounts[N].` for file accounts, empty for the environment's account.
    key_prefix: String,
    /// Where the appid came from.
    origin: Origin,
    secret: Option<(SecretString, Origin)>,
    secret_file: Option<(PathBuf, Origin)>,
    name: Option<String>,
    start_date: Option<NaiveDate>,
}

impl Pending {
    fn error(&self, field: &str, origin: &Origin, message: impl Into<String>) -> ConfigError {
        ConfigError::Account {
            appid: self.appid.clone(),
            key: format!("{}{field}", self.key_prefix),
            origin: origin.clone(),
            message: message.into(),
        }
    }
}

fn apply_file(
    settings: &mut Settings,
    accounts: &mut Vec<Pending>,
    path: &Path,
    text: &str,
) -> Result<(), ConfigError> {
    let table = DeTable::parse(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|span| line_col(text, span.start))
            .unwrap_or((1, 1));
        ConfigError::Syntax {
            path: path.to_owned(),
            line,
            column,
            message: e.message().replace('\n', " "),
        }
    })?;
    let at = |offset: usize| Origin::File {
        path: path.to_owned(),
        line: Some(line_col(text, offset).0),
    };

    for (key, value) in table.get_ref() {
        let name = key.get_ref().as_ref();
        let origin = at(key.span().start);
        if name == "accounts" {
            parse_accounts(accounts, value.get_ref(), &origin, &at)?;
            continue;
        }
        apply_key(settings, name, Input::Toml(value.get_ref())).map_err(|message| {
            ConfigError::Invalid {
                key: name.to_owned(),
                origin,
                message,
            }
        })?;
    }
    Ok(())
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

fn parse_accounts(
    accounts: &mut Vec<Pending>,
    value: &DeValue<'_>,
    origin: &Origin,
    at: &dyn Fn(usize) -> Origin,
) -> Result<(), ConfigError> {
    let invalid = |key: String, origin: Origin, message: String| ConfigError::Invalid {
        key,
        origin,
        message,
    };
    let DeValue::Array(items) = value else {
        return Err(invalid(
            "accounts".to_owned(),
            origin.clone(),
            format!(
                "{}; write each account as an [[accounts]] table",
                wrong_type("an array of tables", value)
            ),
        ));
    };
    for (index, item) in items.iter().enumerate() {
        let prefix = format!("accounts[{index}].");
        let item_origin = at(item.span().start);
        let DeValue::Table(table) = item.get_ref() else {
            return Err(invalid(
                format!("accounts[{index}]"),
                item_origin,
                wrong_type("a table", item.get_ref()),
            ));
        };

        // The appid first, so that every later message can name the account.
        let appid_value = table.iter().find(|(k, _)| k.get_ref().as_ref() == "appid");
        let Some((appid_key, appid_value)) = appid_value else {
            return Err(invalid(
                format!("{prefix}appid"),
                item_origin,
                "missing: every account needs an appid".to_owned(),
            ));
        };
        let appid_origin = at(appid_key.span().start);
        let appid = Input::Toml(appid_value.get_ref())
            .string()
            .and_then(parse_appid)
            .map_err(|message| invalid(format!("{prefix}appid"), appid_origin.clone(), message))?;
        if let Some(other) = accounts.iter().find(|a| a.appid == appid) {
            return Err(invalid(
                format!("{prefix}appid"),
                appid_origin,
                format!(
                    "duplicate appid `{appid}` (already used by `{}appid`)",
                    other.key_prefix
                ),
            ));
        }

        let mut account = Pending {
            appid,
            key_prefix: prefix.clone(),
            origin: appid_origin,
            secret: None,
            secret_file: None,
            name: None,
            start_date: None,
        };
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            let origin = at(key.span().start);
            let input = Input::Toml(value.get_ref());
            let result = match name {
                "appid" => Ok(()),
                "secret" => input.string().map(|s| {
                    account.secret = Some((SecretString::from(s.to_owned()), origin.clone()));
                }),
                "secret_file" => input.string().and_then(|s| {
                    let s = s.trim();
                    if s.is_empty() {
                        return Err("must not be empty".to_owned());
                    }
                    account.secret_file = Some((PathBuf::from(s), origin.clone()));
                    Ok(())
                }),
                "name" => input.string().map(|s| {
                    let s = s.trim();
                    account.name = (!s.is_empty()).then(|| s.to_owned());
                }),
                "start_date" => parse_start_date(value.get_ref()).map(|d| {
                    account.start_date = Some(d);
                }),
                _ => Err(format!(
                    "unknown key (known keys of an account: {})",
                    ACCOUNT_KEYS.join(", ")
                )),
            };
            result.map_err(|message| account.error(name, &origin, message))?;
        }
        if let (Some(_), Some((_, origin))) = (&account.secret, &account.secret_file) {
            return Err(account.error(
                "secret_file",
                origin,
                "both `secret` and `secret_file` are set; keep only `secret_file`",
            ));
        }
        accounts.push(account);
    }
    Ok(())
}

fn parse_appid(text: &str) -> Result<String, String> {
    let appid = text.trim();
    if appid.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if appid.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{appid:?} contains whitespace"));
    }
    Ok(appid.to_owned())
}

/// A quoted `"2023-01-01"` or a bare TOML date `2023-01-01`; a date-time is refused.
fn parse_start_date(value: &DeValue<'_>) -> Result<NaiveDate, String> {
    match value {
        DeValue::String(s) => parse_date(s),
        DeValue::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => {
            parse_date(&dt.to_string())
        }
        DeValue::Datetime(dt) => Err(format!(
            "{:?} is not a date of the form YYYY-MM-DD",
            dt.to_string()
        )),
        other => Err(wrong_type("a date \"YYYY-MM-DD\"", other)),
    }
}

fn apply_env(settings: &mut Settings, env: &Env<'_>) -> Result<(), ConfigError> {
    for (var, key) in ENV_KEYS {
        if let Some(value) = env.get(var) {
            apply_key(settings, key, Input::Text(value)).map_err(|message| {
                ConfigError::Invalid {
                    key: key.to_owned(),
                    origin: Origin::Env(var.to_owned()),
                    message,
                }
            })?;
        }
    }
    Ok(())
}

/// The one account the environment can give: `WXCUBE_APPID` with `WXCUBE_SECRET` or
/// `WXCUBE_SECRET_FILE`. Its secret replaces the file's for the same appid, so a
/// systemd credential can override a checked-in file.
fn apply_env_account(accounts: &mut Vec<Pending>, env: &Env<'_>) -> Result<(), ConfigError> {
    // WXCUBE_SECRET is taken even when empty, so that an empty `$(cat missing)` is
    // reported as an empty secret rather than silently ignored.
    let secret = env.raw("WXCUBE_SECRET").map(|s| {
        (
            SecretString::from(s.to_owned()),
            env_origin("WXCUBE_SECRET"),
        )
    });
    let secret_file = env
        .get("WXCUBE_SECRET_FILE")
        .map(|p| (PathBuf::from(p.trim()), env_origin("WXCUBE_SECRET_FILE")));

    let Some(appid) = env.get("WXCUBE_APPID") else {
        let given = match (&secret, &secret_file) {
            (_, Some(_)) => Some("WXCUBE_SECRET_FILE"),
            (Some(_), None) if env.get("WXCUBE_SECRET").is_some() => Some("WXCUBE_SECRET"),
            _ => None,
        };
        return match given {
            Some(var) => Err(ConfigError::Invalid {
                key: "appid".to_owned(),
                origin: env_origin("WXCUBE_APPID"),
                message: format!("not set, but {var} is; set WXCUBE_APPID to the account's appid"),
            }),
            None => Ok(()),
        };
    };
    let appid = parse_appid(appid).map_err(|message| ConfigError::Invalid {
        key: "appid".to_owned(),
        origin: env_origin("WXCUBE_APPID"),
        message,
    })?;

    let index = match accounts.iter().position(|a| a.appid == appid) {
        Some(index) => index,
        None => {
            accounts.push(Pending {
                appid,
                key_prefix: String::new(),
                origin: env_origin("WXCUBE_APPID"),
                secret: None,
                secret_file: None,
                name: None,
                start_date: None,
            });
            accounts.len() - 1
        }
    };
    let account = &mut accounts[index];
    if secret.is_some() && secret_file.is_some() {
        return Err(account.error(
            "secret",
            &env_origin("WXCUBE_SECRET"),
            "both WXCUBE_SECRET and WXCUBE_SECRET_FILE are set; set only WXCUBE_SECRET_FILE",
        ));
    }
    if secret.is_some() || secret_file.is_some() {
        // The environment's secret replaces the file's, whichever form either has.
        account.secret = secret;
        account.secret_file = secret_file;
        // Messages about this secret now point at the environment, so name the keys
        // without the file's `accounts[N].` prefix.
        account.key_prefix = String::new();
    }
    Ok(())
}

fn env_origin(var: &str) -> Origin {
    Origin::Env(var.to_owned())
}

fn resolve_accounts(
    pending: Vec<Pending>,
    need: Need,
    credentials_dir: Option<&Path>,
) -> Result<Vec<Account>, ConfigError> {
    if need == Need::Credentials && pending.is_empty() {
        return Err(ConfigError::NoAccount);
    }
    pending
        .into_iter()
        .map(|p| {
            let secret = match need {
                Need::NoCredentials => p
                    .secret
                    .as_ref()
                    .map(|(s, _)| SecretString::from(s.expose_secret().trim().to_owned()))
                    .unwrap_or_else(|| SecretString::from(String::new())),
                Need::Credentials => resolve_secret(&p, credentials_dir)?,
            };
            Ok(Account {
                appid: p.appid,
                secret,
                name: p.name,
                start_date: p.start_date,
            })
        })
        .collect()
}

fn resolve_secret(
    p: &Pending,
    credentials_dir: Option<&Path>,
) -> Result<SecretString, ConfigError> {
    match (&p.secret, &p.secret_file) {
        (Some((secret, origin)), _) => {
            if secret.expose_secret().trim().is_empty() {
                return Err(p.error("secret", origin, "is empty"));
            }
            // Only surrounding whitespace is trimmed: an appsecret never has any, and a
            // pasted value often does.
            Ok(SecretString::from(secret.expose_secret().trim().to_owned()))
        }
        (None, Some((path, origin))) => {
            // Under systemd, `LoadCredential=` puts the secret in $CREDENTIALS_DIRECTORY,
            // whose path differs per unit: a relative `secret_file` is looked up there, so
            // one configuration file serves both wxcube.service and wxcube-sync.service.
            let resolved;
            let path = match credentials_dir {
                Some(dir) if path.is_relative() => {
                    resolved = dir.join(path);
                    &resolved
                }
                _ => path,
            };
            let text = std::fs::read_to_string(path).map_err(|e| {
                p.error(
                    "secret_file",
                    origin,
                    format!("cannot read secret file {}: {e}", path.display()),
                )
            })?;
            // Files written by `echo` or an editor end with a newline.
            let secret = text.trim();
            if secret.is_empty() {
                return Err(p.error(
                    "secret_file",
                    origin,
                    format!("secret file {} is empty", path.display()),
                ));
            }
            Ok(SecretString::from(secret.to_owned()))
        }
        (None, None) => Err(p.error(
            "secret_file",
            &p.origin,
            "no secret: set `secret_file` (or `secret`) in the account's [[accounts]] table, \
             or WXCUBE_SECRET_FILE (or WXCUBE_SECRET) with WXCUBE_APPID",
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const SECRET: &str = "s3cr3t-appsecret-value";

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn temp_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(text.as_bytes()).expect("write temp file");
        file
    }

    fn with_config(path: &Path) -> CliOverrides {
        CliOverrides {
            config: Some(path.to_owned()),
            database: None,
        }
    }

    /// Loads with no file and no default paths, just this environment.
    fn load_env(pairs: &[(&str, &str)], need: Need) -> Result<Settings, ConfigError> {
        load_from(&CliOverrides::default(), &env(pairs), need, &[])
    }

    /// Loads this file text (named by --config) with this environment.
    fn load_text(text: &str, pairs: &[(&str, &str)], need: Need) -> Result<Settings, ConfigError> {
        let file = temp_file(text);
        load_from(&with_config(file.path()), &env(pairs), need, &[])
    }

    fn error_of(result: Result<Settings, ConfigError>) -> String {
        let message = result
            .expect_err("expected a configuration error")
            .to_string();
        assert!(!message.contains(SECRET), "secret leaked: {message}");
        message
    }

    fn assert_mentions(message: &str, parts: &[&str]) {
        for part in parts {
            assert!(
                message.contains(part),
                "{message:?} should mention {part:?}"
            );
        }
    }

    fn account_toml(appid: &str) -> String {
        format!("[[accounts]]\nappid = \"{appid}\"\nsecret = \"{SECRET}\"\n")
    }

    #[test]
    fn defaults_apply_without_file_or_environment() {
        let s = load_env(&[], Need::NoCredentials).unwrap();
        assert_eq!(s.database, "wxcube.db");
        assert_eq!(s.api_base, "https://api.weixin.qq.com");
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(s.schedule, "0 30 8 * * *");
        assert_eq!(s.refresh_days, 7);
        assert_eq!(s.catch_up_days, 30);
        assert_eq!(s.concurrency, 4);
        assert_eq!(s.http_timeout, Duration::from_secs(30));
        assert_eq!(s.max_attempts, 5);
        assert_eq!(s.token_mode, TokenMode::Stable);
        assert_eq!(s.endpoints, Endpoint::ALL.to_vec());
        assert_eq!(s.retry_base_ms, 500);
        assert_eq!(s.minute_quota_wait_secs, None);
        assert!(s.accounts.is_empty());
    }

    #[test]
    fn every_file_key_overrides_its_default() {
        let text = format!(
            r#"
database = "sqlite:///var/lib/wxcube/wx.db"
api_base = "http://127.0.0.1:9000/"
timezone = "Europe/Berlin"
schedule = "0 0 9 * * Mon-Fri"
refresh_days = 3
catch_up_days = 90
concurrency = 8
http_timeout_secs = 10
max_attempts = 2
token_mode = "classic"
endpoints = ["getbizsummary", "getarticleread", "getbizsummary"]
retry_base_ms = 0
minute_quota_wait_secs = 0

[[accounts]]
appid = "wxaaa"
secret = "{SECRET}"
name = "Main"
start_date = "2023-01-01"

[[accounts]]
appid = "wxbbb"
secret = "other"
start_date = 2024-02-29
"#
        );
        let s = load_text(&text, &[], Need::Credentials).unwrap();
        assert_eq!(s.database, "sqlite:///var/lib/wxcube/wx.db");
        assert_eq!(s.api_base, "http://127.0.0.1:9000");
        assert_eq!(s.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(s.schedule, "0 0 9 * * Mon-Fri");
        assert_eq!(s.refresh_days, 3);
        assert_eq!(s.catch_up_days, 90);
        assert_eq!(s.concurrency, 8);
        assert_eq!(s.http_timeout, Duration::from_secs(10));
        assert_eq!(s.max_attempts, 2);
        assert_eq!(s.token_mode, TokenMode::Classic);
        assert_eq!(
            s.endpoints,
            vec![Endpoint::BizSummary, Endpoint::ArticleRead],
            "duplicates are dropped, order kept"
        );
        assert_eq!(s.retry_base_ms, 0);
        assert_eq!(s.minute_quota_wait_secs, Some(0));
        assert_eq!(s.accounts.len(), 2);
        let a = s.account("wxaaa").unwrap();
        assert_eq!(a.secret.expose_secret(), SECRET);
        assert_eq!(a.name.as_deref(), Some("Main"));
        assert_eq!(a.start_date, NaiveDate::from_ymd_opt(2023, 1, 1));
        let b = s.account("wxbbb").unwrap();
        assert_eq!(b.name, None);
        assert_eq!(b.start_date, NaiveDate::from_ymd_opt(2024, 2, 29));
        assert!(s.account("wxccc").is_none());
    }

    #[test]
    fn every_environment_variable_changes_its_setting() {
        type Check = fn(&Settings) -> bool;
        let cases: [(&str, &str, Check); 13] = [
            ("WXCUBE_DATABASE", "env.db", |s| s.database == "env.db"),
            ("WXCUBE_API_BASE", "http://localhost:1/", |s| {
                s.api_base == "http://localhost:1"
            }),
            ("WXCUBE_TIMEZONE", "UTC", |s| s.timezone == chrono_tz::UTC),
            ("WXCUBE_SCHEDULE", "0 0 */6 * * *", |s| {
                s.schedule == "0 0 */6 * * *"
            }),
            ("WXCUBE_REFRESH_DAYS", "2", |s| s.refresh_days == 2),
            ("WXCUBE_CATCH_UP_DAYS", " 400 ", |s| s.catch_up_days == 400),
            ("WXCUBE_CONCURRENCY", "1", |s| s.concurrency == 1),
            ("WXCUBE_HTTP_TIMEOUT_SECS", "5", |s| {
                s.http_timeout == Duration::from_secs(5)
            }),
            ("WXCUBE_MAX_ATTEMPTS", "9", |s| s.max_attempts == 9),
            ("WXCUBE_TOKEN_MODE", "classic", |s| {
                s.token_mode == TokenMode::Classic
            }),
            ("WXCUBE_ENDPOINTS", "getusershare, getbizsummary,", |s| {
                s.endpoints == [Endpoint::UserShare, Endpoint::BizSummary]
            }),
            ("WXCUBE_RETRY_BASE_MS", "25", |s| s.retry_base_ms == 25),
            ("WXCUBE_MINUTE_QUOTA_WAIT_SECS", "3", |s| {
                s.minute_quota_wait_secs == Some(3)
            }),
        ];
        // Every documented variable is covered, and every one is actually read.
        assert_eq!(cases.len(), ENV_KEYS.len());
        for (var, value, check) in cases {
            let s = load_env(&[(var, value)], Need::NoCredentials)
                .unwrap_or_else(|e| panic!("{var}={value}: {e}"));
            assert!(check(&s), "{var}={value} did not change its setting: {s:?}");
        }
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let s = load_env(
            &[("WXCUBE_REFRESH_DAYS", ""), ("WXCUBE_DATABASE", " ")],
            Need::NoCredentials,
        )
        .unwrap();
        assert_eq!(s.refresh_days, 7);
        assert_eq!(s.database, "wxcube.db");
    }

    #[test]
    fn other_wxcube_variables_are_ignored() {
        let s = load_env(
            &[("WXCUBE_LOG", "debug"), ("WXCUBE_NONSENSE", "x")],
            Need::NoCredentials,
        )
        .unwrap();
        assert_eq!(s.database, "wxcube.db");
    }

    #[test]
    fn the_last_duplicate_environment_variable_wins() {
        let s = load_env(
            &[("WXCUBE_CONCURRENCY", "2"), ("WXCUBE_CONCURRENCY", "3")],
            Need::NoCredentials,
        )
        .unwrap();
        assert_eq!(s.concurrency, 3);
    }

    #[test]
    fn layers_apply_in_order_file_then_env_then_cli() {
        let file = temp_file("database = \"file.db\"\nrefresh_days = 3\nconcurrency = 2\n");
        let env = env(&[("WXCUBE_DATABASE", "env.db"), ("WXCUBE_REFRESH_DAYS", "5")]);

        // File beats default; env beats file.
        let s = load_from(&with_config(file.path()), &env, Need::NoCredentials, &[]).unwrap();
        assert_eq!(s.concurrency, 2, "file beats default");
        assert_eq!(s.refresh_days, 5, "env beats file");
        assert_eq!(s.database, "env.db", "env beats file");

        // CLI beats env.
        let cli = CliOverrides {
            config: Some(file.path().to_owned()),
            database: Some("cli.db".to_owned()),
        };
        let s = load_from(&cli, &env, Need::NoCredentials, &[]).unwrap();
        assert_eq!(s.database, "cli.db", "--database beats env");
    }

    #[test]
    fn empty_cli_database_is_an_error_naming_the_option() {
        let cli = CliOverrides {
            config: None,
            database: Some(" ".to_owned()),
        };
        let msg = error_of(load_from(&cli, &[], Need::NoCredentials, &[]));
        assert_mentions(&msg, &["`database`", "--database", "empty"]);
    }

    #[test]
    fn wxcube_config_names_the_file_and_config_option_beats_it() {
        let by_env = temp_file("refresh_days = 11\n");
        let by_cli = temp_file("refresh_days = 12\n");
        let env = env(&[("WXCUBE_CONFIG", by_env.path().to_str().unwrap())]);
        let s = load_from(&CliOverrides::default(), &env, Need::NoCredentials, &[]).unwrap();
        assert_eq!(s.refresh_days, 11);
        let s = load_from(&with_config(by_cli.path()), &env, Need::NoCredentials, &[]).unwrap();
        assert_eq!(s.refresh_days, 12);
    }

    #[test]
    fn a_named_file_that_is_missing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let msg = error_of(load_from(
            &with_config(&missing),
            &[],
            Need::NoCredentials,
            &[],
        ));
        assert_mentions(&msg, &["cannot read configuration file", "nope.toml"]);

        let env = env(&[("WXCUBE_CONFIG", missing.to_str().unwrap())]);
        let msg = error_of(load_from(
            &CliOverrides::default(),
            &env,
            Need::NoCredentials,
            &[],
        ));
        assert_mentions(&msg, &["nope.toml"]);
    }

    #[test]
    fn the_first_existing_default_path_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("wxcube.toml");
        let system = dir.path().join("etc-wxcube.toml");
        let defaults = [local.clone(), system.clone()];

        // None exists: built-in defaults, no error.
        let s = load_from(
            &CliOverrides::default(),
            &[],
            Need::NoCredentials,
            &defaults,
        )
        .unwrap();
        assert_eq!(s.refresh_days, 7);

        std::fs::write(&system, "refresh_days = 2\n").unwrap();
        let s = load_from(
            &CliOverrides::default(),
            &[],
            Need::NoCredentials,
            &defaults,
        )
        .unwrap();
        assert_eq!(
            s.refresh_days, 2,
            "second candidate used when the first is absent"
        );

        std::fs::write(&local, "refresh_days = 1\n").unwrap();
        let s = load_from(
            &CliOverrides::default(),
            &[],
            Need::NoCredentials,
            &defaults,
        )
        .unwrap();
        assert_eq!(s.refresh_days, 1, "first candidate wins");

        // A named file replaces the defaults entirely.
        let named = temp_file("catch_up_days = 5\n");
        let s = load_from(
            &with_config(named.path()),
            &[],
            Need::NoCredentials,
            &defaults,
        )
        .unwrap();
        assert_eq!((s.refresh_days, s.catch_up_days), (7, 5));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key_and_line() {
        let msg = error_of(load_text(
            "database = \"x.db\"\nrefresh_dayz = 3\n",
            &[],
            Need::NoCredentials,
        ));
        assert_mentions(
            &msg,
            &["`refresh_dayz`", "unknown key", "line 2", "refresh_days"],
        );

        let text = format!("{}colour = \"blue\"\n", account_toml("wxaaa"));
        let msg = error_of(load_text(&text, &[], Need::NoCredentials));
        assert_mentions(&msg, &["`accounts[0].colour`", "wxaaa", "unknown key"]);
    }

    #[test]
    fn wrong_types_are_errors_naming_the_key() {
        for (text, key) in [
            ("refresh_days = \"x\"", "`refresh_days`"),
            ("concurrency = 1.5", "`concurrency`"),
            ("database = 3", "`database`"),
            ("endpoints = \"getbizsummary\"", "`endpoints`"),
            ("endpoints = [1]", "`endpoints`"),
            ("accounts = { appid = \"wx\" }", "`accounts`"),
            ("[[accounts]]\nappid = 7", "`accounts[0].appid`"),
        ] {
            let msg = error_of(load_text(text, &[], Need::NoCredentials));
            assert_mentions(&msg, &[key, "expected"]);
        }
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_echoed() {
        let text = "[[accounts]]\nappid = \"wxaaa\"\nsecret = 987654321\n";
        let msg = error_of(load_text(text, &[], Need::Credentials));
        assert_mentions(
            &msg,
            &["`accounts[0].secret`", "wxaaa", "expected a string"],
        );
        assert!(!msg.contains("987654321"), "{msg}");
    }

    #[test]
    fn a_syntax_error_gives_the_line_but_not_the_text() {
        let text =
            format!("database = \"x\"\n[[accounts]]\nappid = \"wxa\"\nsecret = \"{SECRET}\n");
        let msg = error_of(load_text(&text, &[], Need::Credentials));
        assert_mentions(&msg, &["not valid TOML", "line 4"]);
    }

    #[test]
    fn out_of_range_numbers_are_errors_naming_the_key() {
        for (text, key) in [
            ("refresh_days = 0", "`refresh_days`"),
            ("catch_up_days = -1", "`catch_up_days`"),
            ("concurrency = 0", "`concurrency`"),
            ("concurrency = 65", "`concurrency`"),
            ("http_timeout_secs = 0", "`http_timeout_secs`"),
            ("max_attempts = 0", "`max_attempts`"),
        ] {
            let msg = error_of(load_text(text, &[], Need::NoCredentials));
            assert_mentions(&msg, &[key, "must be between"]);
        }
    }

    #[test]
    fn bad_environment_values_are_errors_naming_the_variable() {
        for (var, value) in [
            ("WXCUBE_REFRESH_DAYS", "seven"),
            ("WXCUBE_CATCH_UP_DAYS", "0"),
            ("WXCUBE_CONCURRENCY", "100"),
            ("WXCUBE_HTTP_TIMEOUT_SECS", "-3"),
            ("WXCUBE_MAX_ATTEMPTS", "1.5"),
            ("WXCUBE_RETRY_BASE_MS", "soon"),
            ("WXCUBE_MINUTE_QUOTA_WAIT_SECS", "99999"),
            ("WXCUBE_SCHEDULE", "61 * * * * *"),
            ("WXCUBE_TIMEZONE", "Mars/Olympus"),
            ("WXCUBE_ENDPOINTS", "getarticlesummary,getfoo"),
            ("WXCUBE_TOKEN_MODE", "fancy"),
            ("WXCUBE_API_BASE", "ftp://example.com"),
        ] {
            let msg = error_of(load_env(&[(var, value)], Need::NoCredentials));
            assert_mentions(&msg, &[&format!("`{var}`")]);
        }
    }

    #[test]
    fn schedule_accepts_six_field_cron_and_rejects_the_rest() {
        let s = load_text("schedule = \"0 30 8 * * *\"", &[], Need::NoCredentials).unwrap();
        assert_eq!(s.schedule, "0 30 8 * * *");
        for bad in ["61 * * * * *", "not cron", "30 8 * * *", "", "0 0 0 30 2 *"] {
            let text = format!("schedule = {bad:?}");
            let msg = error_of(load_text(&text, &[], Need::NoCredentials));
            assert_mentions(&msg, &["`schedule`", "line 1"]);
        }
    }

    #[test]
    fn schedule_validation_agrees_with_the_scheduler() {
        // The daemon hands `schedule` to Job::new_async_tz: whatever we accept, it must
        // accept too (we additionally refuse patterns that never fire).
        for expr in [
            "0 30 8 * * *",
            "*/10 * * * * *",
            "0 0 9 * * Mon-Fri",
            "0 0 9 1 * *",
            "0 0 9 * * 1#2",
            "0 0 0 L * *",
            "0 30 8 * * * 2030",
            "61 * * * * *",
            "not cron",
            "30 8 * * *",
            "0 0 25 * * *",
        ] {
            let ours = validate_schedule(expr).is_ok();
            let theirs =
                tokio_cron_scheduler::Job::new_async_tz(expr, chrono_tz::Asia::Shanghai, |_, _| {
                    Box::pin(async {})
                })
                .is_ok();
            assert_eq!(ours, theirs, "{expr:?}: ours {ours}, scheduler {theirs}");
        }
    }

    #[test]
    fn unknown_timezone_is_an_error_naming_the_key() {
        let msg = error_of(load_text("timezone = \"China\"", &[], Need::NoCredentials));
        assert_mentions(&msg, &["`timezone`", "unknown timezone", "\"China\""]);
    }

    #[test]
    fn unknown_or_empty_endpoint_list_is_an_error_naming_the_key() {
        let msg = error_of(load_text(
            "endpoints = [\"getbizsummary\", \"getfoo\"]",
            &[],
            Need::NoCredentials,
        ));
        assert_mentions(&msg, &["`endpoints`", "getfoo", "getarticletotaldetail"]);
        let msg = error_of(load_text("endpoints = []", &[], Need::NoCredentials));
        assert_mentions(&msg, &["`endpoints`", "at least one"]);
    }

    #[test]
    fn token_mode_and_api_base_are_checked() {
        let msg = error_of(load_text("token_mode = \"fast\"", &[], Need::NoCredentials));
        assert_mentions(&msg, &["`token_mode`", "stable", "classic"]);
        for bad in ["api.weixin.qq.com", "https://", "ftp://x"] {
            let msg = error_of(load_text(
                &format!("api_base = {bad:?}"),
                &[],
                Need::NoCredentials,
            ));
            assert_mentions(&msg, &["`api_base`", "http://"]);
        }
    }

    #[test]
    fn bad_start_date_is_an_error_naming_the_key_and_account() {
        for value in [
            "\"2023-13-01\"",
            "\"01/02/2023\"",
            "2023-01-01T08:00:00",
            "20230101",
        ] {
            let text = format!("{}start_date = {value}\n", account_toml("wxaaa"));
            let msg = error_of(load_text(&text, &[], Need::NoCredentials));
            assert_mentions(&msg, &["`accounts[0].start_date`", "wxaaa"]);
        }
    }

    #[test]
    fn duplicate_appid_is_an_error() {
        let text = format!("{}{}", account_toml("wxaaa"), account_toml("wxaaa"));
        let msg = error_of(load_text(&text, &[], Need::NoCredentials));
        assert_mentions(
            &msg,
            &[
                "`accounts[1].appid`",
                "duplicate appid `wxaaa`",
                "accounts[0].",
            ],
        );
    }

    #[test]
    fn missing_or_empty_appid_is_an_error() {
        let msg = error_of(load_text(
            "[[accounts]]\nname = \"x\"\n",
            &[],
            Need::NoCredentials,
        ));
        assert_mentions(&msg, &["`accounts[0].appid`", "missing"]);
        let msg = error_of(load_text(
            "[[accounts]]\nappid = \" \"\n",
            &[],
            Need::NoCredentials,
        ));
        assert_mentions(&msg, &["`accounts[0].appid`", "empty"]);
    }

    #[test]
    fn credentials_need_an_account() {
        let msg = error_of(load_env(&[], Need::Credentials));
        assert_mentions(&msg, &["`accounts`", "[[accounts]]", "WXCUBE_APPID"]);
        // Commands without credentials run with none.
        assert!(
            load_env(&[], Need::NoCredentials)
                .unwrap()
                .accounts
                .is_empty()
        );
    }

    #[test]
    fn an_account_without_a_secret_needs_one_only_for_credentials() {
        let text = "[[accounts]]\nappid = \"wxaaa\"\n";
        let msg = error_of(load_text(text, &[], Need::Credentials));
        assert_mentions(&msg, &["`accounts[0].secret_file`", "wxaaa", "no secret"]);

        let s = load_text(text, &[], Need::NoCredentials).unwrap();
        assert_eq!(s.accounts[0].secret.expose_secret(), "");
    }

    #[test]
    fn secret_and_secret_file_together_are_an_error() {
        let text = format!("{}secret_file = \"/nonexistent\"\n", account_toml("wxaaa"));
        for need in [Need::Credentials, Need::NoCredentials] {
            let msg = error_of(load_text(&text, &[], need));
            assert_mentions(&msg, &["`accounts[0].secret_file`", "wxaaa", "both"]);
        }
    }

    #[test]
    fn an_empty_secret_is_an_error() {
        let text = "[[accounts]]\nappid = \"wxaaa\"\nsecret = \"  \"\n";
        let msg = error_of(load_text(text, &[], Need::Credentials));
        assert_mentions(&msg, &["`accounts[0].secret`", "wxaaa", "empty"]);

        let empty = temp_file("\n");
        let text = format!(
            "[[accounts]]\nappid = \"wxaaa\"\nsecret_file = {:?}\n",
            empty.path()
        );
        let msg = error_of(load_text(&text, &[], Need::Credentials));
        assert_mentions(&msg, &["`accounts[0].secret_file`", "wxaaa", "is empty"]);
    }

    #[test]
    fn a_relative_secret_file_is_read_from_the_credentials_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("appsecret"), format!("{SECRET}\n")).expect("write");
        let text = "[[accounts]]\nappid = \"wxaaa\"\nsecret_file = \"appsecret\"\n";
        let credentials = dir.path().display().to_string();
        let settings = load_text(
            text,
            &[("CREDENTIALS_DIRECTORY", credentials.as_str())],
            Need::Credentials,
        )
        .expect("loads");
        assert_eq!(settings.accounts[0].secret.expose_secret(), SECRET);
    }

    #[test]
    fn secret_files_are_read_and_trimmed() {
        let secret = temp_file(&format!("{SECRET}\n"));
        let text = format!(
            "[[accounts]]\nappid = \"wxaaa\"\nsecret_file = {:?}\n",
            secret.path()
        );
        let s = load_text(&text, &[], Need::Credentials).unwrap();
        assert_eq!(s.accounts[0].secret.expose_secret(), SECRET);
    }

    #[test]
    fn an_unreadable_secret_file_names_key_account_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("appsecret");
        let text = format!(
            "[[accounts]]\nappid = \"wxaaa\"\nsecret_file = {:?}\n",
            missing
        );
        let msg = error_of(load_text(&text, &[], Need::Credentials));
        assert_mentions(
            &msg,
            &[
                "`accounts[0].secret_file`",
                "wxaaa",
                missing.to_str().unwrap(),
                "line 3",
            ],
        );
        // Commands without credentials never touch secret files.
        let s = load_text(&text, &[], Need::NoCredentials).unwrap();
        assert_eq!(s.accounts[0].secret.expose_secret(), "");
    }

    #[test]
    fn a_secret_file_that_is_a_directory_is_reported_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[[accounts]]\nappid = \"wxaaa\"\nsecret_file = {:?}\n",
            dir.path()
        );
        let msg = error_of(load_text(&text, &[], Need::Credentials));
        assert_mentions(&msg, &["cannot read secret file"]);
    }

    #[test]
    fn env_only_account_with_secret() {
        let s = load_env(
            &[("WXCUBE_APPID", "wxenv"), ("WXCUBE_SECRET", SECRET)],
            Need::Credentials,
        )
        .unwrap();
        assert_eq!(s.accounts.len(), 1);
        assert_eq!(s.accounts[0].appid, "wxenv");
        assert_eq!(s.accounts[0].secret.expose_secret(), SECRET);
    }

    #[test]
    fn env_only_account_with_secret_file() {
        let secret = temp_file(&format!("{SECRET}\r\n"));
        let s = load_env(
            &[
                ("WXCUBE_APPID", "wxenv"),
                ("WXCUBE_SECRET_FILE", secret.path().to_str().unwrap()),
            ],
            Need::Credentials,
        )
        .unwrap();
        assert_eq!(s.account("wxenv").unwrap().secret.expose_secret(), SECRET);
    }

    #[test]
    fn env_only_account_with_a_missing_secret_file_names_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let msg = error_of(load_env(
            &[
                ("WXCUBE_APPID", "wxenv"),
                ("WXCUBE_SECRET_FILE", missing.to_str().unwrap()),
            ],
            Need::Credentials,
        ));
        assert_mentions(
            &msg,
            &[
                "`secret_file`",
                "wxenv",
                "WXCUBE_SECRET_FILE",
                missing.to_str().unwrap(),
            ],
        );
    }

    #[test]
    fn env_account_problems_name_the_variables() {
        let msg = error_of(load_env(&[("WXCUBE_SECRET", SECRET)], Need::Credentials));
        assert_mentions(&msg, &["WXCUBE_APPID", "WXCUBE_SECRET"]);
        let msg = error_of(load_env(
            &[("WXCUBE_SECRET_FILE", "/x")],
            Need::NoCredentials,
        ));
        assert_mentions(&msg, &["WXCUBE_APPID", "WXCUBE_SECRET_FILE"]);
        let msg = error_of(load_env(
            &[
                ("WXCUBE_APPID", "wxenv"),
                ("WXCUBE_SECRET", SECRET),
                ("WXCUBE_SECRET_FILE", "/x"),
            ],
            Need::Credentials,
        ));
        assert_mentions(&msg, &["wxenv", "WXCUBE_SECRET_FILE", "both"]);
        let msg = error_of(load_env(
            &[("WXCUBE_APPID", "wxenv"), ("WXCUBE_SECRET", "")],
            Need::Credentials,
        ));
        assert_mentions(&msg, &["`secret`", "wxenv", "WXCUBE_SECRET", "empty"]);
        let msg = error_of(load_env(&[("WXCUBE_APPID", "wxenv")], Need::Credentials));
        assert_mentions(&msg, &["wxenv", "no secret"]);
        // Without credentials an appid alone is fine.
        let s = load_env(&[("WXCUBE_APPID", "wxenv")], Need::NoCredentials).unwrap();
        assert_eq!(s.accounts[0].appid, "wxenv");
    }

    #[test]
    fn env_secret_replaces_the_file_secret_for_the_same_appid() {
        let missing_file = "[[accounts]]\nappid = \"wxaaa\"\nsecret_file = \"/nonexistent/secret\"\nname = \"Main\"\n";
        let text = format!("{missing_file}{}", account_toml("wxbbb"));
        let s = load_text(
            &text,
            &[("WXCUBE_APPID", "wxaaa"), ("WXCUBE_SECRET", "from-env")],
            Need::Credentials,
        )
        .unwrap();
        assert_eq!(s.accounts.len(), 2, "replaced, not added");
        let a = s.account("wxaaa").unwrap();
        assert_eq!(a.secret.expose_secret(), "from-env");
        assert_eq!(a.name.as_deref(), Some("Main"), "other fields kept");

        // A different appid is added after the file's accounts.
        let s = load_text(
            &text.replace("/nonexistent/secret", "/dev/null"),
            &[("WXCUBE_APPID", "wxccc"), ("WXCUBE_SECRET", "from-env")],
            Need::NoCredentials,
        )
        .unwrap();
        let appids: Vec<&str> = s.accounts.iter().map(|a| a.appid.as_str()).collect();
        assert_eq!(appids, ["wxaaa", "wxbbb", "wxccc"]);
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let secret = temp_file(SECRET);
        let text = format!(
            "{}[[accounts]]\nappid = \"wxbbb\"\nsecret_file = {:?}\n",
            account_toml("wxaaa"),
            secret.path()
        );
        let s = load_text(&text, &[], Need::Credentials).unwrap();
        assert_eq!(s.accounts[1].secret.expose_secret(), SECRET);
        for debug in [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{:?}", s.accounts[0]),
            format!("{:?}", s.accounts[1]),
        ] {
            assert!(!debug.contains(SECRET), "{debug}");
            assert!(debug.contains("[redacted]"), "{debug}");
            assert!(debug.contains("appid: \"wx"), "{debug}");
        }
    }

    fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/wxcube.example.toml")
    }

    #[test]
    fn the_example_file_loads_and_matches_the_defaults() {
        let s = load_from(&with_config(&example_path()), &[], Need::NoCredentials, &[]).unwrap();
        let d = Settings::default();
        assert_eq!(format!("{s:?}"), format!("{d:?}"));
    }

    #[test]
    fn the_example_file_mentions_every_key_and_variable() {
        let text = std::fs::read_to_string(example_path()).unwrap();
        for key in KEYS.iter().chain(&ACCOUNT_KEYS) {
            assert!(text.contains(&format!("{key} = ")), "example lacks {key}");
        }
        for (var, _) in ENV_KEYS {
            assert!(text.contains(var), "example lacks {var}");
        }
    }

    #[test]
    fn the_example_account_block_is_valid_when_uncommented() {
        let text = std::fs::read_to_string(example_path()).unwrap();
        let start = text.find("# [[accounts]]").expect("example account block");
        let block: String = text[start..]
            .lines()
            .map(|line| line.strip_prefix("# ").unwrap_or(line))
            .collect::<Vec<_>>()
            .join("\n");
        let uncommented = format!("{}{block}\n", &text[..start]);
        let s = load_text(&uncommented, &[], Need::NoCredentials).unwrap();
        let a = s.account("wx0123456789abcdef").unwrap();
        assert_eq!(a.name.as_deref(), Some("Main account"));
        assert_eq!(a.start_date, NaiveDate::from_ymd_opt(2023, 1, 1));
    }
}
