//! Layered settings (SPEC section 3), merged by the `config` crate: built-in defaults
//! ([`Settings::default`]), then one TOML file, then `WXCUBE_*` environment variables,
//! then command-line options; the result is deserialized into [`Settings`], whose
//! field deserializers validate each value.
//!
//! No error ever quotes the file or a secret. `toml`'s and `config`'s `Display` may
//! (the first prints the offending line, the second carries parser text and values),
//! so neither is ever shown: the file's syntax is checked here first and reported
//! from the parser's message and position only; `config` errors are rebuilt from
//! their key and this module's own messages, which name types, not values; and the
//! appsecret is a [`Secret`], whose deserializer says only "expected a string".
//! The same walk over the file's parse tree rejects unknown keys and records the
//! line of every key, so that messages can point at it.
//!
//! The environment is a parameter rather than read from the process, so tests can
//! give each case its own environment (`std::env::set_var` is unsafe in edition 2024
//! and racy between test threads anyway).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use chrono_tz::Tz;
use config::ValueKind;
use secrecy::{ExposeSecret, SecretString};
use serde::de::{Deserialize, Deserializer, Error as _};
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
    /// The program that prints this account's access token (SPEC section 10): its
    /// own `token_command`, or the top-level default when it has no secret. When
    /// set, `secret` is empty and never used.
    pub token_command: Option<Vec<String>>,
}

impl Account {
    /// An account with just an appid and a secret (handy for tests and the demo).
    pub fn new(appid: impl Into<String>, secret: impl Into<String>) -> Account {
        Account {
            appid: appid.into(),
            secret: SecretString::from(secret.into()),
            name: None,
            start_date: None,
            token_command: None,
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
            .field("token_command", &self.token_command)
            .finish()
    }
}

/// The validated configuration every command runs with.
///
/// Deserialized from the merged layers: each field's deserializer checks its value
/// (the range is in the attribute); a missing key keeps [`Settings::default`].
/// `Debug` is safe to log: accounts print their secret as `[redacted]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The database: a SQLite file path or `sqlite:` URL, or a
    /// `postgres://` / `postgresql://` URL (which may hold a password: never
    /// print it; `Store::location` gives the printable form).
    #[serde(deserialize_with = "database")]
    pub database: String,
    /// A file holding the PostgreSQL password, for URLs without one
    /// (e.g. a systemd credential); its content is never printed.
    #[serde(deserialize_with = "some_path")]
    pub database_password_file: Option<PathBuf>,
    /// Base URL of the WeChat API, without a trailing `/` (the simulator's in tests).
    #[serde(deserialize_with = "api_base")]
    pub api_base: String,
    /// The API's calendar: "yesterday" and the daily quota reset are computed here.
    #[serde(deserialize_with = "timezone")]
    pub timezone: Tz,
    /// When the daemon syncs: cron with seconds, in `timezone`, as
    /// `tokio_cron_scheduler::Job::new_async_tz` accepts it.
    #[serde(deserialize_with = "schedule")]
    pub schedule: String,
    /// Each sync re-fetches the last N days (getarticletotaldetail always 30).
    #[serde(deserialize_with = "ranged::<_, _, 1, MAX_DAYS>")]
    pub refresh_days: u32,
    /// Each sync fills never-fetched days this far back (unless an account's `start_date`).
    #[serde(deserialize_with = "ranged::<_, _, 1, MAX_DAYS>")]
    pub catch_up_days: u32,
    /// Requests in flight per account.
    #[serde(deserialize_with = "ranged::<_, _, 1, 64>")]
    pub concurrency: usize,
    /// Timeout of one HTTP request (`http_timeout_secs`).
    #[serde(rename = "http_timeout_secs", deserialize_with = "http_timeout")]
    pub http_timeout: Duration,
    /// Tries per request for transient errors, 45011 waits included.
    #[serde(deserialize_with = "ranged::<_, _, 1, 100>")]
    pub max_attempts: u32,
    /// How access tokens are obtained.
    #[serde(deserialize_with = "token_mode")]
    pub token_mode: TokenMode,
    /// What syncs fetch, in configuration order, without duplicates.
    #[serde(deserialize_with = "endpoints")]
    pub endpoints: Vec<Endpoint>,
    /// First backoff delay after a transient error, in milliseconds; later ones grow
    /// exponentially (with jitter). Not in the SPEC: an advanced knob.
    // Zero is allowed here and in the next: tests and the demo want no waiting.
    #[serde(deserialize_with = "ranged::<_, _, 0, 3_600_000>")]
    pub retry_base_ms: u64,
    /// How long to wait after errcode 45011 (per-minute quota); `None` waits until
    /// the next full minute. Not in the SPEC: an advanced knob (tests use 0).
    #[serde(deserialize_with = "minute_quota_wait")]
    pub minute_quota_wait_secs: Option<u64>,
    /// Calls to the published catalogue (`freepublish`) per China day, leaving the
    /// rest of the appid's quota to other systems (SPEC section 8).
    #[serde(deserialize_with = "ranged::<_, _, 1, 100>")]
    pub catalogue_daily_calls: u32,
    /// Where the daemon rewrites the HTML report after each sync, and the
    /// default `--out` of `wxcube report` (SPEC section 11). None: the daemon
    /// writes no report.
    #[serde(deserialize_with = "report_path")]
    pub report_path: Option<PathBuf>,
    // Many accounts (SPEC section 10).
    /// Accounts synced at the same time, each with its own `concurrency`.
    #[serde(deserialize_with = "ranged::<_, _, 1, 1024>")]
    pub account_concurrency: usize,
    /// The default `token_command` of accounts that have no secret.
    #[serde(deserialize_with = "token_command")]
    pub token_command: Option<Vec<String>>,
    /// How long a `token_command` may run before it is killed.
    #[serde(
        rename = "token_command_timeout_secs",
        deserialize_with = "http_timeout"
    )]
    pub token_command_timeout: Duration,
    /// Ask `/cgi-bin/openapi/quota/get` before an endpoint's first request in a run.
    #[serde(deserialize_with = "boolean")]
    pub quota_check: bool,
    /// Requests of each endpoint's daily quota left to other systems of the appid.
    #[serde(deserialize_with = "quota_reserve")]
    pub quota_reserve: QuotaReserve,
    /// The accounts to sync, in configuration order, appids unique.
    #[serde(skip)]
    pub accounts: Vec<Account>,
}

impl Default for Settings {
    /// The built-in defaults (SPEC section 3), with no account.
    fn default() -> Settings {
        Settings {
            database: "wxcube.db".to_owned(),
            database_password_file: None,
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
            catalogue_daily_calls: 50,
            report_path: None,
            account_concurrency: 8,
            token_command: None,
            token_command_timeout: Duration::from_secs(30),
            quota_check: true,
            quota_reserve: QuotaReserve::Percent(10),
            accounts: Vec::new(),
        }
    }
}

impl Settings {
    /// How to reach the database: `database`, and the password of
    /// `database_password_file` (read now; a relative path was resolved in
    /// `$CREDENTIALS_DIRECTORY` when loading, as for `secret_file`).
    pub fn database_target(&self) -> Result<crate::store::DatabaseTarget, String> {
        let password = match &self.database_password_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "configuration key `database_password_file`: cannot read {}: {}",
                        path.display(),
                        e.kind()
                    )
                })?;
                Some(SecretString::from(
                    text.trim_end_matches(['\r', '\n']).to_owned(),
                ))
            }
        };
        Ok(crate::store::DatabaseTarget {
            database: self.database.clone(),
            password,
        })
    }

    /// The configured account with this appid, if any.
    pub fn account(&self, appid: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.appid == appid)
    }
}

/// `quota_reserve`: a count of requests, or a percentage of the endpoint's `daily_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaReserve {
    /// This many requests.
    Count(u64),
    /// This percentage of `daily_limit`, rounded up.
    Percent(u32),
}

impl QuotaReserve {
    /// The requests to leave unused out of `daily_limit`.
    pub fn of(self, daily_limit: u64) -> u64 {
        match self {
            QuotaReserve::Count(n) => n,
            QuotaReserve::Percent(p) => (daily_limit * u64::from(p)).div_ceil(100),
        }
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
    use config::{Config, Environment, File, FileFormat};

    let env = Env(env);
    let mut builder = Config::builder();
    let mut file = None;
    if let Some(path) = choose_file(overrides, &env, default_paths) {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        file = Some(FileIndex::parse(path, &text)?);
        builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
    }
    // Only the documented variables reach `config` (others, such as WXCUBE_LOG and
    // the account's, are not top-level keys), trimmed, and blank ones not at all.
    let vars: config::Map<String, String> = KEYS
        .iter()
        .filter_map(|key| {
            let var = env_var(key);
            env.get(&var).map(|value| (var, value.trim().to_owned()))
        })
        .collect();
    let layers = Layers {
        file,
        vars: vars.clone(),
        cli_database: overrides.database.is_some(),
    };
    // WXCUBE_ENDPOINTS is split here: `config`'s list parsing (`try_parsing`) would
    // also turn every other variable that looks like a number or a boolean into one.
    let mut source = vars;
    // WXCUBE_TOKEN_COMMAND is a JSON array of strings (an argv has no safe
    // comma- or space-separated form).
    let token_command = match source.remove("WXCUBE_TOKEN_COMMAND") {
        Some(text) => Some(
            serde_json::from_str::<Vec<String>>(&text)
                .map_err(|_| "expected a JSON array of strings".to_owned())
                .and_then(checked_command)
                .map_err(|message| ConfigError::Invalid {
                    key: "token_command".to_owned(),
                    origin: env_origin("WXCUBE_TOKEN_COMMAND"),
                    message,
                })?,
        ),
        None => None,
    };
    let endpoints: Option<Vec<String>> = source.remove("WXCUBE_ENDPOINTS").map(|list| {
        let names = list.split(',').map(str::trim).filter(|s| !s.is_empty());
        names.map(str::to_owned).collect()
    });
    // Without `prefix_separator`, `separator("__")` would also be expected after the
    // prefix, and WXCUBE_DATABASE would be ignored without a word.
    let environment = Environment::with_prefix("WXCUBE")
        .prefix_separator("_")
        .separator("__")
        .source(Some(source));
    let config = builder
        .add_source(environment)
        .set_override_option("endpoints", endpoints)
        .and_then(|builder| builder.set_override_option("token_command", token_command))
        .and_then(|builder| builder.set_override_option("database", overrides.database.clone()))
        .and_then(|builder| builder.build())
        .map_err(|e| layers.error(e))?;

    let mut settings: Settings = config
        .clone()
        .try_deserialize()
        .map_err(|e| layers.error(e))?;
    let FileAccounts { accounts } = config.try_deserialize().map_err(|e| layers.error(e))?;
    let mut pending = match &layers.file {
        Some(file) => file.accounts(accounts)?,
        None => Vec::new(),
    };
    apply_env_account(&mut pending, &env)?;
    let credentials_dir = env.get("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    settings.accounts = resolve_accounts(
        pending,
        need,
        credentials_dir.as_deref(),
        settings.token_command.as_ref(),
    )?;
    // As for `secret_file`: a relative path is a systemd credential's name.
    if let (Some(dir), Some(path)) = (&credentials_dir, &settings.database_password_file)
        && path.is_relative()
    {
        settings.database_password_file = Some(dir.join(path));
    }
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

/// The top-level keys of the file other than `accounts`, in the example's order;
/// each is also read from `WXCUBE_<KEY>` ([`env_var`]).
const KEYS: [&str; 21] = [
    "database",
    "database_password_file",
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
    "catalogue_daily_calls",
    "report_path",
    "account_concurrency",
    "token_command",
    "token_command_timeout_secs",
    "quota_check",
    "quota_reserve",
];

/// The keys of one `[[accounts]]` table.
const ACCOUNT_KEYS: [&str; 6] = [
    "appid",
    "secret",
    "secret_file",
    "token_command",
    "name",
    "start_date",
];

/// Upper bound of the day counts, far beyond any real use (a century).
const MAX_DAYS: u64 = 36_500;

/// Values `config` would mangle: a date-time becomes text (which a string key would
/// then take); an integer beyond 64 bits fails there without naming its key.
fn unsupported(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::Datetime(_) => Some("expected a string or a number, found datetime".into()),
        DeValue::Integer(i) if i64::from_str_radix(i.as_str(), i.radix()).is_err() => {
            Some("integer out of range".into())
        }
        _ => None,
    }
}

/// The environment variable of a top-level key.
fn env_var(key: &str) -> String {
    format!("WXCUBE_{}", key.to_ascii_uppercase())
}

/// What the file says besides its values: the line of each key, each account's appid.
struct FileIndex {
    path: PathBuf,
    /// `refresh_days`, `accounts[1]`, `accounts[1].secret_file` → 1-based line.
    lines: HashMap<String, usize>,
    /// The appid of each `[[accounts]]` table, when it is a string.
    appids: Vec<Option<String>>,
}

impl FileIndex {
    /// Checks the syntax (the error built from the parser's message and position, never
    /// its `Display`), that `accounts` is an array of tables, and that every key is known.
    fn parse(path: PathBuf, text: &str) -> Result<FileIndex, ConfigError> {
        let table = DeTable::parse(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |span| line_col(text, span.start));
            ConfigError::Syntax {
                path: path.clone(),
                line,
                column,
                message: e.message().replace('\n', " "),
            }
        })?;
        let mut index = FileIndex {
            path,
            lines: HashMap::new(),
            appids: Vec::new(),
        };
        for (key, value) in table.get_ref() {
            let name = key.get_ref().as_ref();
            index
                .lines
                .insert(name.to_owned(), line_col(text, key.span().start).0);
            if name == "accounts" {
                index.scan_accounts(value.get_ref(), text)?;
            } else if !KEYS.contains(&name) {
                let known = KEYS.join(", ");
                return Err(
                    index.error(name, format!("unknown key (known keys: {known}, accounts)"))
                );
            } else if let Some(message) = unsupported(value.get_ref()) {
                return Err(index.error(name, message));
            }
        }
        Ok(index)
    }

    fn scan_accounts(&mut self, value: &DeValue<'_>, text: &str) -> Result<(), ConfigError> {
        let DeValue::Array(items) = value else {
            let found = value.type_str();
            return Err(self.error(
                "accounts",
                format!("expected an array of tables, found {found}; write each account as an [[accounts]] table"),
            ));
        };
        for (index, item) in items.iter().enumerate() {
            let prefix = format!("accounts[{index}]");
            self.lines
                .insert(prefix.clone(), line_col(text, item.span().start).0);
            let DeValue::Table(table) = item.get_ref() else {
                let found = item.get_ref().type_str();
                return Err(self.error(&prefix, format!("expected a table, found {found}")));
            };
            let appid = table.iter().find(|(k, _)| k.get_ref() == "appid");
            let appid = appid.and_then(|(_, v)| v.get_ref().as_str());
            self.appids
                .push(appid.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
            for (key, value) in table {
                let name = format!("{prefix}.{}", key.get_ref());
                self.lines
                    .insert(name.clone(), line_col(text, key.span().start).0);
                if !ACCOUNT_KEYS.contains(&key.get_ref().as_ref()) {
                    let known = ACCOUNT_KEYS.join(", ");
                    return Err(self.error(
                        &name,
                        format!("unknown key (known keys of an account: {known})"),
                    ));
                }
                let date = matches!(value.get_ref(), DeValue::Datetime(_));
                let date = date && key.get_ref() == "start_date";
                if let Some(message) = unsupported(value.get_ref()).filter(|_| !date) {
                    return Err(self.error(&name, message));
                }
            }
        }
        Ok(())
    }

    /// A key's place; a missing key (an account's appid) is placed at its table.
    fn origin(&self, key: &str) -> Origin {
        let parent = key.rsplit_once('.').map_or("", |(parent, _)| parent);
        let line = self.lines.get(key).or_else(|| self.lines.get(parent));
        Origin::File {
            path: self.path.clone(),
            line: line.copied(),
        }
    }

    /// An error about a key of this file, naming the account for an account's key.
    fn error(&self, key: &str, message: String) -> ConfigError {
        let (key, origin) = (key.to_owned(), self.origin(key));
        let account = key
            .strip_prefix("accounts[")
            .and_then(|k| k.split_once("]."));
        let appid = account
            .filter(|(_, field)| *field != "appid")
            .and_then(|(index, _)| self.appids.get(index.parse::<usize>().ok()?)?.clone());
        match appid {
            Some(appid) => ConfigError::Account {
                appid,
                key,
                origin,
                message,
            },
            None => ConfigError::Invalid {
                key,
                origin,
                message,
            },
        }
    }

    /// The file's accounts, with the checks across keys and accounts.
    fn accounts(&self, accounts: Vec<FileAccount>) -> Result<Vec<Pending>, ConfigError> {
        let mut pending: Vec<Pending> = Vec::new();
        for (index, account) in accounts.into_iter().enumerate() {
            let prefix = format!("accounts[{index}].");
            let at = |field: &str| self.origin(&format!("{prefix}{field}"));
            let invalid = |message: String| ConfigError::Invalid {
                key: format!("{prefix}appid"),
                origin: at("appid"),
                message,
            };
            let appid = account
                .appid
                .ok_or("missing: every account needs an appid".to_owned());
            let appid = appid
                .and_then(|appid| parse_appid(&appid))
                .map_err(invalid)?;
            if let Some(other) = pending.iter().find(|a| a.appid == appid) {
                let other = &other.key_prefix;
                return Err(invalid(format!(
                    "duplicate appid `{appid}` (already used by `{other}appid`)"
                )));
            }
            let p = Pending {
                appid,
                key_prefix: prefix.clone(),
                origin: at("appid"),
                secret: account.secret.map(|s| (s.0, at("secret"))),
                secret_file: account
                    .secret_file
                    .map(|f| (PathBuf::from(f.trim()), at("secret_file"))),
                token_command: account.token_command.map(|c| (c, at("token_command"))),
                name: account
                    .name
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty()),
                start_date: account.start_date,
            };
            if let Some((_, origin)) = &p.token_command
                && (p.secret.is_some() || p.secret_file.is_some())
            {
                let message = "is set together with `secret` or `secret_file`; an account has \
                     exactly one of `secret`, `secret_file` and `token_command`";
                return Err(p.error("token_command", origin, message));
            }
            if let Some((file, origin)) = &p.secret_file {
                if file.as_os_str().is_empty() {
                    return Err(p.error("secret_file", origin, "must not be empty"));
                }
                if p.secret.is_some() {
                    let message =
                        "both `secret` and `secret_file` are set; keep only `secret_file`";
                    return Err(p.error("secret_file", origin, message));
                }
            }
            pending.push(p);
        }
        Ok(pending)
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// What `load_from` knows about where values came from, to place `config`'s errors.
struct Layers {
    file: Option<FileIndex>,
    /// The variables handed to `config`.
    vars: config::Map<String, String>,
    cli_database: bool,
}

impl Layers {
    /// Rebuilds a `config` error from its key and the message our deserializers gave,
    /// never from its `Display`, which may carry values or parser text.
    fn error(&self, e: config::ConfigError) -> ConfigError {
        use config::ConfigError as E;
        let (key, message) = match e {
            E::At { error, key, .. } => match *error {
                E::Message(message) => (key, message),
                _ => (key, "has an invalid value".to_owned()),
            },
            E::Type { expected, key, .. } => (key, format!("expected {expected}")),
            E::NotFound(key) => (Some(key), "missing".to_owned()),
            _ => (
                None,
                "cannot be loaded (a value is out of range)".to_owned(),
            ),
        };
        // `config` joins an index and a field without a dot (`accounts[0]secret`).
        let key = key
            .unwrap_or_default()
            .replace(']', "].")
            .replace("].[", "][");
        let key = key.replace("]..", "].").trim_end_matches('.').to_owned();
        let var = env_var(&key);
        let origin = if key == "database" && self.cli_database {
            Origin::Cli("--database".to_owned())
        } else if self.vars.contains_key(&var) {
            Origin::Env(var)
        } else if let Some(file) = &self.file {
            return file.error(&key, message);
        } else {
            Origin::Env(var)
        };
        ConfigError::Invalid {
            key,
            origin,
            message,
        }
    }
}

/// The `[[accounts]]` tables (the rest of the configuration is [`Settings`]).
#[derive(serde::Deserialize)]
struct FileAccounts {
    #[serde(default)]
    accounts: Vec<FileAccount>,
}

/// One `[[accounts]]` table, before the checks across keys ([`FileIndex::accounts`]).
#[derive(serde::Deserialize)]
struct FileAccount {
    /// The account's appid (required, unique).
    #[serde(default, deserialize_with = "some_text")]
    appid: Option<String>,
    /// The appsecret itself (discouraged: prefer `secret_file`).
    secret: Option<Secret>,
    /// A file holding the appsecret; a relative one is looked up in `$CREDENTIALS_DIRECTORY`.
    #[serde(default, deserialize_with = "some_text")]
    secret_file: Option<String>,
    /// The program that prints the account's access token (instead of a secret).
    #[serde(default, deserialize_with = "token_command")]
    token_command: Option<Vec<String>>,
    /// Optional human label.
    #[serde(default, deserialize_with = "some_text")]
    name: Option<String>,
    /// Optional first day syncs keep filling gaps back to: `"2023-01-01"` or a TOML date.
    #[serde(default, deserialize_with = "start_date")]
    start_date: Option<NaiveDate>,
}

/// An appsecret from the file. Its deserializer never repeats its input: a value of
/// another type is reported as "expected a string", whatever it is.
struct Secret(SecretString);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        match config::Value::deserialize(d)?.kind {
            ValueKind::String(s) => Ok(Secret(SecretString::from(s))),
            _ => Err(D::Error::custom("expected a string")),
        }
    }
}

/// The checks' view of a value as `config` holds it: by its actual type, unlike
/// `config`'s own conversions (which would round `1.5` or turn `3` into `"3"`),
/// and naming in messages the type found, never the value (it might be a secret on
/// the wrong line).
trait Checked: Sized {
    fn wrong(&self, expected: &str) -> String;
    fn text(self) -> Result<String, String>;
    /// An integer within `min..=max`; from the environment, its text.
    fn number(self, min: u64, max: u64) -> Result<u64, String>;
}

impl Checked for ValueKind {
    fn wrong(&self, expected: &str) -> String {
        let found = match self {
            ValueKind::String(_) => "string",
            ValueKind::Array(_) => "array",
            ValueKind::Table(_) => "table",
            ValueKind::Boolean(_) => "boolean",
            ValueKind::Float(_) => "float",
            ValueKind::Nil => "nothing",
            _ => "integer",
        };
        format!("expected {expected}, found {found}")
    }

    fn text(self) -> Result<String, String> {
        match self {
            ValueKind::String(s) => Ok(s),
            other => Err(other.wrong("a string")),
        }
    }

    fn number(self, min: u64, max: u64) -> Result<u64, String> {
        let n = match self {
            ValueKind::I64(n) => i128::from(n),
            ValueKind::U64(n) => i128::from(n),
            ValueKind::I128(n) => n,
            ValueKind::U128(n) => i128::try_from(n).unwrap_or(i128::MAX),
            ValueKind::String(s) => (s.trim().parse::<i128>())
                .map_err(|_| format!("expected a whole number, found {:?}", s.trim()))?,
            other => return Err(other.wrong("an integer")),
        };
        if n < i128::from(min) || n > i128::from(max) {
            return Err(format!("must be between {min} and {max}, found {n}"));
        }
        Ok(u64::try_from(n).expect("checked against the bounds"))
    }
}

/// Runs a check on the value; `config` puts the key before its message.
fn check<'de, D: Deserializer<'de>, T>(
    d: D,
    f: impl FnOnce(ValueKind) -> Result<T, String>,
) -> Result<T, D::Error> {
    f(config::Value::deserialize(d)?.kind).map_err(D::Error::custom)
}

fn ranged<'de, D: Deserializer<'de>, T: TryFrom<u64>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<T, D::Error> {
    check(d, |v| {
        Ok(T::try_from(v.number(MIN, MAX)?).ok().expect("bounded"))
    })
}

fn http_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    check(d, |v| v.number(1, 86_400).map(Duration::from_secs))
}

fn minute_quota_wait<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    check(d, |v| v.number(0, 3_600).map(Some))
}

fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    check(d, |v| match v {
        ValueKind::Boolean(b) => Ok(b),
        ValueKind::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".to_owned()),
        },
        other => Err(other.wrong("a boolean")),
    })
}

/// `"10%"` (of `daily_limit`, up to 100 %) or a count such as `50`.
fn quota_reserve<'de, D: Deserializer<'de>>(d: D) -> Result<QuotaReserve, D::Error> {
    check(d, |v| {
        if let ValueKind::String(s) = &v
            && let Some(p) = s.trim().strip_suffix('%')
        {
            return match p.trim().parse::<u32>() {
                Ok(p) if p <= 100 => Ok(QuotaReserve::Percent(p)),
                _ => Err(format!(
                    "expected a percentage from \"0%\" to \"100%\", found {:?}",
                    s.trim()
                )),
            };
        }
        v.number(0, 1_000_000_000).map(QuotaReserve::Count)
    })
}

/// An argv: a non-empty array of strings whose program is not blank.
fn token_command<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    check(d, |v| {
        let argv = match v {
            ValueKind::Array(items) => items
                .into_iter()
                .map(|item| match item.kind {
                    ValueKind::String(s) => Ok(s),
                    other => Err(other.wrong("an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => return Err(other.wrong("an array of strings")),
        };
        checked_command(argv).map(Some)
    })
}

fn checked_command(argv: Vec<String>) -> Result<Vec<String>, String> {
    match argv.first() {
        None => Err("must name a program: [\"/path/to/program\", \"arg\", ...]".to_owned()),
        Some(program) if program.trim().is_empty() => Err("the program is empty".to_owned()),
        Some(_) => Ok(argv),
    }
}

fn some_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    check(d, |v| v.text().map(Some))
}

fn some_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    check(d, |v| match v.text()?.trim() {
        "" => Err("must not be empty".to_owned()),
        path => Ok(Some(PathBuf::from(path))),
    })
}

fn report_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    check(d, |v| match v.text()?.trim() {
        "" => Err("must not be empty (leave the key out for no report)".to_owned()),
        path => Ok(Some(PathBuf::from(path))),
    })
}

fn database<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check(d, |v| match v.text()?.trim() {
        "" => Err("must not be empty".to_owned()),
        database => Ok(database.to_owned()),
    })
}

fn api_base<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check(d, |v| {
        let text = v.text()?;
        let base = text.trim().trim_end_matches('/');
        match base.split_once("://") {
            Some(("http" | "https", host)) if !host.is_empty() => Ok(base.to_owned()),
            _ => Err(format!(
                "must be an http:// or https:// URL such as \"https://api.weixin.qq.com\", found {:?}",
                text.trim()
            )),
        }
    })
}

fn timezone<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
    check(d, |v| {
        let name = v.text()?;
        name.trim().parse::<Tz>().map_err(|_| {
            let name = name.trim();
            format!("unknown timezone {name:?} (use an IANA name such as \"Asia/Shanghai\")")
        })
    })
}

fn schedule<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    check(d, |v| {
        let expr = v.text()?.trim().to_owned();
        validate_schedule(&expr).map(|()| expr)
    })
}

fn token_mode<'de, D: Deserializer<'de>>(d: D) -> Result<TokenMode, D::Error> {
    check(d, |v| TokenMode::parse(&v.text()?))
}

/// A TOML array of names (`load_from` splits the environment's comma list).
fn endpoints<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Endpoint>, D::Error> {
    check(d, |v| {
        let names: Vec<String> = match v {
            ValueKind::Array(items) => items
                .into_iter()
                .map(|item| match item.kind {
                    ValueKind::String(s) => Ok(s),
                    other => Err(other.wrong("a list of strings")),
                })
                .collect::<Result<_, _>>()?,
            other => return Err(other.wrong("a list of strings")),
        };
        let mut endpoints = Vec::new();
        for name in names {
            let endpoint = parse_endpoint(&name)?;
            // A name listed twice is harmless; fetching it twice per sync would not be.
            if !endpoints.contains(&endpoint) {
                endpoints.push(endpoint);
            }
        }
        if endpoints.is_empty() {
            return Err("must name at least one endpoint".to_owned());
        }
        Ok(endpoints)
    })
}

/// A quoted `"2023-01-01"` or a bare TOML date (which `config` turns into that text);
/// a date-time is refused.
fn start_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    check(d, |v| match v {
        ValueKind::String(s) => parse_date(&s).map(Some),
        other => Err(other.wrong("a date \"YYYY-MM-DD\"")),
    })
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

/// An account as configured, before its secret is resolved according to [`Need`].
struct Pending {
    appid: String,
    /// `accounts[N].` for file accounts, empty for the environment's account.
    key_prefix: String,
    /// Where the appid came from.
    origin: Origin,
    secret: Option<(SecretString, Origin)>,
    secret_file: Option<(PathBuf, Origin)>,
    token_command: Option<(Vec<String>, Origin)>,
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
                token_command: None,
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
        account.token_command = None;
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
    default_command: Option<&Vec<String>>,
) -> Result<Vec<Account>, ConfigError> {
    if need == Need::Credentials && pending.is_empty() {
        return Err(ConfigError::NoAccount);
    }
    pending
        .into_iter()
        .map(|p| {
            // The account's own command; else the default, for an account with no secret.
            let own = p.token_command.as_ref().map(|(c, _)| c.clone());
            let secretless = p.secret.is_none() && p.secret_file.is_none();
            if let Some(command) = own.or_else(|| default_command.filter(|_| secretless).cloned()) {
                return Ok(Account {
                    appid: p.appid,
                    secret: SecretString::from(String::new()),
                    name: p.name,
                    start_date: p.start_date,
                    token_command: Some(command),
                });
            }
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
                token_command: None,
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
            "no secret: set `secret_file` (or `secret`, or `token_command`) in the account's \
             [[accounts]] table, or WXCUBE_SECRET_FILE (or WXCUBE_SECRET) with WXCUBE_APPID, \
             or a top-level `token_command`",
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
        let cases: [(&str, &str, Check); 21] = [
            ("WXCUBE_DATABASE", "env.db", |s| s.database == "env.db"),
            (
                "WXCUBE_DATABASE_PASSWORD_FILE",
                "/run/credentials/db",
                |s| s.database_password_file.as_deref() == Some(Path::new("/run/credentials/db")),
            ),
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
            ("WXCUBE_CATALOGUE_DAILY_CALLS", "12", |s| {
                s.catalogue_daily_calls == 12
            }),
            ("WXCUBE_REPORT_PATH", "/srv/www/report.html", |s| {
                s.report_path.as_deref() == Some(Path::new("/srv/www/report.html"))
            }),
            ("WXCUBE_ACCOUNT_CONCURRENCY", "3", |s| {
                s.account_concurrency == 3
            }),
            ("WXCUBE_TOKEN_COMMAND", r#"["/bin/tok", "{appid}"]"#, |s| {
                s.token_command == Some(vec!["/bin/tok".to_string(), "{appid}".to_string()])
            }),
            ("WXCUBE_TOKEN_COMMAND_TIMEOUT_SECS", "4", |s| {
                s.token_command_timeout == Duration::from_secs(4)
            }),
            ("WXCUBE_QUOTA_CHECK", "false", |s| !s.quota_check),
            ("WXCUBE_QUOTA_RESERVE", "25", |s| {
                s.quota_reserve == QuotaReserve::Count(25)
            }),
        ];
        // Every documented variable is covered, and every one is actually read.
        assert_eq!(cases.len(), KEYS.len());
        for ((var, _, _), key) in cases.iter().zip(KEYS) {
            assert_eq!(*var, env_var(key));
        }
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

    #[test]
    fn catalogue_daily_calls_defaults_to_50_and_is_bounded() {
        assert_eq!(
            load_env(&[], Need::NoCredentials)
                .unwrap()
                .catalogue_daily_calls,
            50
        );
        let s = load_text("catalogue_daily_calls = 100", &[], Need::NoCredentials).unwrap();
        assert_eq!(s.catalogue_daily_calls, 100);
        let s = load_text(
            "catalogue_daily_calls = 100",
            &[("WXCUBE_CATALOGUE_DAILY_CALLS", "1")],
            Need::NoCredentials,
        )
        .unwrap();
        assert_eq!(s.catalogue_daily_calls, 1, "env beats file");
        for bad in ["0", "101", "\"many\""] {
            let text = format!("catalogue_daily_calls = {bad}");
            let msg = error_of(load_text(&text, &[], Need::NoCredentials));
            assert_mentions(&msg, &["`catalogue_daily_calls`", "line 1"]);
        }
        let msg = error_of(load_env(
            &[("WXCUBE_CATALOGUE_DAILY_CALLS", "101")],
            Need::NoCredentials,
        ));
        assert_mentions(
            &msg,
            &[
                "`WXCUBE_CATALOGUE_DAILY_CALLS`",
                "must be between 1 and 100",
            ],
        );
    }

    #[test]
    fn unknown_account_keys_list_the_known_ones() {
        let text = format!("{}secretfile = \"/x\"\n", account_toml("wxaaa"));
        let msg = error_of(load_text(&text, &[], Need::NoCredentials));
        assert_mentions(
            &msg,
            &[
                "`accounts[0].secretfile`",
                "line 4",
                "secret_file",
                "start_date",
            ],
        );
    }

    /// Every error below has the secret in the file, in the environment, or both;
    /// neither its `Display` nor its `Debug` may contain it.
    #[test]
    fn no_configuration_error_contains_the_secret() {
        let with_secret = |extra: &str| format!("[[accounts]]\nappid = \"wxa\"\n{extra}\n");
        let files = [
            // Syntax errors on the secret's own line.
            with_secret(&format!("secret = \"{SECRET}")),
            with_secret(&format!("secret = \"{SECRET}\" trailing")),
            with_secret(&format!("secret = {SECRET}")),
            with_secret(&format!("secret = \"{SECRET}\"\nsecret = \"{SECRET}\"")),
            with_secret(&format!("secret = \"\"\"{SECRET}")),
            // A secret of the wrong type.
            with_secret("secret = 987654321"),
            with_secret(&format!("secret = {{ value = \"{SECRET}\" }}")),
            with_secret(&format!("secret = [\"{SECRET}\"]")),
            with_secret("secret = true"),
            with_secret("secret = 1.5"),
            with_secret("secret = 2023-01-01"),
            with_secret(&format!("[accounts.secret]\nvalue = \"{SECRET}\"")),
            // A secret where another value belongs, or beside a bad one.
            format!("database = {{ secret = \"{SECRET}\" }}\n"),
            format!("accounts = [\"{SECRET}\"]\n"),
            format!("accounts = \"{SECRET}\"\n"),
            format!("endpoints = [{{ x = \"{SECRET}\" }}]\n"),
            with_secret(&format!("secret = \"{SECRET}\"\nsecret_file = \"/x\"")),
            with_secret(&format!("secret = \"{SECRET}\"\nstart_date = 1")),
            with_secret(&format!("secret = \"{SECRET}\"\ncolour = \"{SECRET}\"")),
            format!("refresh_days = \"x\"\n{}", account_toml("wxa")),
        ];
        let env_cases: [&[(&str, &str)]; 4] = [
            &[("WXCUBE_REFRESH_DAYS", "seven")],
            &[("WXCUBE_ENDPOINTS", "getfoo")],
            &[("WXCUBE_SECRET_FILE", "/x")],
            &[("WXCUBE_APPID", "wx env")],
        ];
        let mut errors = Vec::new();
        for text in &files {
            let file = temp_file(text);
            for need in [Need::Credentials, Need::NoCredentials] {
                let env = env(&[("WXCUBE_SECRET", SECRET), ("WXCUBE_APPID", "wxa")]);
                errors.push(load_from(&with_config(file.path()), &env, need, &[]));
            }
        }
        for vars in env_cases {
            let mut vars = vars.to_vec();
            vars.push(("WXCUBE_SECRET", SECRET));
            errors.push(load_env(&vars, Need::Credentials));
            let file = temp_file(&account_toml("wxa"));
            let cli = with_config(file.path());
            errors.push(load_from(&cli, &env(&vars), Need::Credentials, &[]));
        }
        for (i, result) in errors.into_iter().enumerate() {
            let error = result.expect_err(&format!("case {i} should fail"));
            for text in [error.to_string(), format!("{error:?}")] {
                assert!(!text.contains(SECRET), "case {i}: secret leaked: {text}");
                assert!(
                    !text.contains("987654321"),
                    "case {i}: value leaked: {text}"
                );
            }
        }
    }

    #[test]
    fn a_syntax_error_names_line_and_column_from_the_span() {
        let text =
            format!("refresh_days = 3\n[[accounts]]\nappid = \"wxa\"\nsecret = \"{SECRET}\" x\n");
        let msg = error_of(load_text(&text, &[], Need::Credentials));
        assert_mentions(&msg, &["not valid TOML", "line 4", "column"]);
        assert!(!msg.contains("secret ="), "{msg}");
    }

    #[test]
    fn values_config_would_mangle_are_errors_naming_the_key() {
        for (text, key, part) in [
            (
                "refresh_days = 99999999999999999999",
                "`refresh_days`",
                "out of range",
            ),
            ("database = 2024-01-01", "`database`", "datetime"),
            (
                "[[accounts]]\nappid = \"wxa\"\nname = 2024-01-01T00:00:00",
                "`accounts[0].name`",
                "datetime",
            ),
        ] {
            let msg = error_of(load_text(text, &[], Need::NoCredentials));
            assert_mentions(&msg, &[key, part, "line"]);
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
        for var in KEYS.map(env_var) {
            assert!(text.contains(&var), "example lacks {var}");
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
        let b = s.account("wx00000000000000a2").unwrap();
        assert!(b.token_command.is_some());
    }

    #[test]
    fn an_account_has_exactly_one_of_secret_secret_file_and_token_command() {
        let both = "[[accounts]]\nappid = \"wxboth\"\nsecret = \"s3cr3t-appsecret-value\"\ntoken_command = [\"/bin/tok\"]\n";
        let message = error_of(load_text(both, &[], Need::Credentials));
        assert_mentions(&message, &["wxboth", "token_command", "exactly one"]);
        // A top-level default serves the accounts without a secret only.
        let text = "token_command = [\"/bin/tok\", \"{appid}\"]\n\
                    [[accounts]]\nappid = \"wxa\"\n\
                    [[accounts]]\nappid = \"wxb\"\nsecret = \"s\"\n";
        let s = load_text(text, &[], Need::Credentials).unwrap();
        assert!(s.account("wxa").unwrap().token_command.is_some());
        assert!(s.account("wxb").unwrap().token_command.is_none());
        for bad in [
            "token_command = []",
            "token_command = \"/bin/tok\"",
            "token_command = [1]",
        ] {
            let text = format!("{bad}\n[[accounts]]\nappid = \"wxa\"\n");
            let message = error_of(load_text(&text, &[], Need::Credentials));
            assert_mentions(&message, &["token_command"]);
        }
        let message = error_of(load_env(
            &[("WXCUBE_TOKEN_COMMAND", "/bin/tok {appid}")],
            Need::NoCredentials,
        ));
        assert_mentions(&message, &["WXCUBE_TOKEN_COMMAND", "JSON array"]);
    }

    #[test]
    fn quota_reserve_is_a_percentage_or_a_count() {
        let s = load_text("quota_reserve = \"25%\"\n", &[], Need::NoCredentials).unwrap();
        assert_eq!(s.quota_reserve, QuotaReserve::Percent(25));
        let s = load_text("quota_reserve = 7\n", &[], Need::NoCredentials).unwrap();
        assert_eq!(s.quota_reserve, QuotaReserve::Count(7));
        assert_eq!(Settings::default().quota_reserve, QuotaReserve::Percent(10));
        for bad in ["\"150%\"", "\"ten\"", "-1"] {
            let message = error_of(load_text(
                &format!("quota_reserve = {bad}\n"),
                &[],
                Need::NoCredentials,
            ));
            assert_mentions(&message, &["quota_reserve"]);
        }
    }
}
