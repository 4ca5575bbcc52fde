//! Shared test scaffolding: an in-process simulator on a loopback port, a
//! temporary database file, settings that point at them, and
//! readers that turn tables into comparable JSON rows.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use sqlx::Row as _;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;
use wxcube::clock::{CHINA, Clock, days};
use wxcube::config::{self, CliOverrides, Need, Settings};
use wxcube::endpoint::Endpoint;
use wxcube::ingest::{BackfillRequest, Engine, RunReport};
use wxcube::sim::{FaultSpec, SimOptions, Simulator};
use wxcube::store::Store;

pub const APPID: &str = "wxtest0000000001";
pub const SECRET: &str = "TEST-APPSECRET-1f2e3d4c5b6a";

/// The endpoints fetched by dates (all but the catalogue, which is paged).
pub fn datacube() -> Vec<Endpoint> {
    Endpoint::dated().collect()
}

/// A fixed "now": 2026-03-15 10:00 in China, so yesterday is 2026-03-14.
pub fn fixed_now() -> DateTime<Utc> {
    "2026-03-15T02:00:00Z".parse().unwrap()
}

pub fn d(s: &str) -> NaiveDate {
    wxcube::clock::parse_date(s).unwrap()
}

/// A simulator and a temporary directory for the database.
pub struct TestEnv {
    pub dir: TempDir,
    pub sim: Simulator,
    pub clock: Clock,
}

impl TestEnv {
    /// A fault-free simulator pinned at `fixed_now()`.
    pub async fn new() -> TestEnv {
        TestEnv::with(SimOptions {
            clock: Clock::fixed(fixed_now()),
            ..SimOptions::default()
        })
        .await
    }

    /// A simulator on the real clock (for tests of the real binary).
    pub async fn live() -> TestEnv {
        TestEnv::with(SimOptions::default()).await
    }

    pub async fn with(options: SimOptions) -> TestEnv {
        let clock = options.clock.clone();
        let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), options)
            .await
            .unwrap();
        TestEnv {
            dir: tempfile::tempdir().unwrap(),
            sim,
            clock,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("wxcube.db")
    }

    /// Environment variables that configure wxcube for this simulator.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("WXCUBE_DATABASE", self.db_path().display().to_string()),
            ("WXCUBE_API_BASE", self.sim.base_url()),
            ("WXCUBE_APPID", APPID.to_string()),
            ("WXCUBE_SECRET", SECRET.to_string()),
            ("WXCUBE_RETRY_BASE_MS", "5".to_string()),
            ("WXCUBE_MINUTE_QUOTA_WAIT_SECS", "0".to_string()),
            ("WXCUBE_HTTP_TIMEOUT_SECS", "2".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Settings from `env()` plus `extra` (later wins).
    pub fn settings(&self, extra: &[(&str, &str)]) -> Settings {
        let mut env = self.env();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        config::load_from(&CliOverrides::default(), &env, Need::Credentials, &[]).unwrap()
    }

    pub async fn engine(&self, extra: &[(&str, &str)]) -> Engine {
        let settings = self.settings(extra);
        let store = Store::open(&settings.database).await.unwrap();
        Engine::new(Arc::new(settings), store, self.clock.clone()).unwrap()
    }

    pub fn set_faults(&self, spec: &str) {
        self.sim.set_faults(FaultSpec::parse(spec).unwrap());
    }
}

/// Backfills `from..=to` for the given endpoints (all configured if empty).
pub async fn backfill(engine: &Engine, from: &str, to: &str, endpoints: &[Endpoint]) -> RunReport {
    let request = BackfillRequest {
        from: d(from),
        to: d(to),
        account: None,
        endpoints: endpoints.to_vec(),
        refetch: false,
        progress: false,
    };
    engine
        .backfill(&request, &CancellationToken::new())
        .await
        .unwrap()
}

/// Every row of `table` as a JSON object, sorted, for comparisons.
pub async fn table_rows(store: &Store, table: &str) -> Vec<Map<String, Value>> {
    let mut rows = table_rows_unsorted(store, table).await;
    rows.sort_by_cached_key(|r| Value::Object(r.clone()).to_string());
    rows
}

/// Counts rows of a table.
pub async fn count(store: &Store, table: &str) -> i64 {
    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0)
}

/// What the simulator's generator says must be stored for `endpoint` over
/// `from..=to`, table by table, fetched one chunk per day.
pub fn truth(
    endpoint: Endpoint,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> BTreeMap<&'static str, Vec<Map<String, Value>>> {
    let mut out: BTreeMap<&'static str, Vec<Map<String, Value>>> = BTreeMap::new();
    for day in days(from.max(endpoint.first_date()), to) {
        for (table, rows) in wxcube::sim::truth::expected_rows(APPID, endpoint, day, day, today) {
            out.entry(table).or_default().extend(rows);
        }
    }
    out
}

/// Two JSON values equal as stored numbers (floats within 1e-9 relative).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        _ => a == b,
    }
}

fn key_of(table: &str, row: &Map<String, Value>) -> String {
    let def = wxcube::store::tables::ALL_TABLES
        .iter()
        .find(|t| t.name == table)
        .unwrap();
    def.keys
        .iter()
        .map(|k| row.get(*k).map(|v| v.to_string()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("|")
}

/// A digest over every contract column of every data table (and the ledger's
/// status columns), to compare database contents between runs.
pub async fn digest(store: &Store) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for table in wxcube::store::tables::ALL_TABLES {
        for row in table_rows(store, table.name).await {
            hasher.update(Value::Object(row).to_string());
        }
    }
    format!("{:x}", hasher.finalize())
}

/// Runs the binary with this environment and the given arguments.
pub fn run_wxcube(env: &[(String, String)], dir: &std::path::Path, args: &[&str]) -> Output {
    crate::driver::wxcube()
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .output()
        .unwrap()
}

pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that none of `secrets` occurs in `haystack`.
pub fn assert_no_secrets(haystack: &str, secrets: &[String], what: &str) {
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !haystack.contains(secret.as_str()),
            "{what} contains a secret ({}...)",
            &secret[..4.min(secret.len())]
        );
    }
}

/// Every text column of every table, concatenated (for secret scans).
pub async fn all_database_text(store: &Store) -> String {
    let tables: Vec<String> = sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table'")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect();
    let mut out = String::new();
    for table in tables {
        for row in table_rows(store, &table).await {
            out.push_str(&Value::Object(row).to_string());
            out.push('\n');
        }
    }
    out
}

pub fn today() -> NaiveDate {
    fixed_now().with_timezone(&CHINA).date_naive()
}

/// Today in China on the real clock (for tests of the real binary).
pub fn china_today() -> NaiveDate {
    Clock::system().today(CHINA)
}

pub fn china_yesterday() -> NaiveDate {
    Clock::system().yesterday(CHINA)
}

/// A clock tests can move: starts at `start`, `advance_days` moves it.
#[derive(Clone)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicI64>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock(Arc::new(std::sync::atomic::AtomicI64::new(
            start.timestamp(),
        )))
    }

    pub fn clock(&self) -> Clock {
        let cell = self.0.clone();
        Clock::from_fn(move || {
            DateTime::from_timestamp(cell.load(std::sync::atomic::Ordering::SeqCst), 0).unwrap()
        })
    }

    pub fn advance_days(&self, days: i64) {
        self.0
            .fetch_add(days * 86_400, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn today(&self) -> NaiveDate {
        self.clock().today(CHINA)
    }
}

/// Asserts that the data tables equal the generator's truth exactly: same key
/// set, every column equal, no duplicate keys. `articles` is checked for the
/// columns the truth gives (exactly only when all ten endpoints ran, since
/// other endpoints may add articles of their own). Rows are matched through
/// maps keyed by the table's key: sorting by JSON text took minutes in debug
/// builds for a 60-day backfill of all ten endpoints.
pub async fn assert_matches_truth(
    store: &Store,
    endpoints: &[Endpoint],
    from: &str,
    to: &str,
    today: NaiveDate,
) {
    let mut expected: BTreeMap<&'static str, Vec<Map<String, Value>>> = BTreeMap::new();
    // The catalogue is paged, not dated: its tests compare it on their own.
    for &endpoint in endpoints.iter().filter(|e| e.is_dated()) {
        for (table, rows) in truth(endpoint, d(from), d(to), today) {
            expected.entry(table).or_default().extend(rows);
        }
    }
    let mut checked_rows = 0;
    for (table, rows) in &expected {
        let stored = table_rows_unsorted(store, table).await;
        if *table == "articles" {
            let by_msgid: BTreeMap<&str, &Map<String, Value>> = stored
                .iter()
                .map(|r| (r["msgid"].as_str().unwrap(), r))
                .collect();
            let expected_ids: BTreeSet<&str> =
                rows.iter().map(|r| r["msgid"].as_str().unwrap()).collect();
            if endpoints.len() == datacube().len() {
                assert_eq!(
                    by_msgid.len(),
                    expected_ids.len(),
                    "articles: stored msgids differ from the truth"
                );
            }
            for row in rows {
                let got = by_msgid
                    .get(row["msgid"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("article {} missing", row["msgid"]));
                for (column, value) in row {
                    if !value.is_null() {
                        assert!(
                            same_value(&got[column], value),
                            "articles {}: {column} stored {} expected {value}",
                            row["msgid"],
                            got[column]
                        );
                    }
                }
            }
            continue;
        }
        let mut want: BTreeMap<String, &Map<String, Value>> = BTreeMap::new();
        for row in rows {
            let key = key_of(table, row);
            if let Some(previous) = want.insert(key.clone(), row) {
                assert!(
                    previous == row,
                    "{table} {key}: the truth has two different rows"
                );
            }
        }
        let stored_by_key: BTreeMap<String, &Map<String, Value>> =
            stored.iter().map(|r| (key_of(table, r), r)).collect();
        assert_eq!(
            stored_by_key.len(),
            stored.len(),
            "{table}: duplicate keys stored"
        );
        assert_eq!(
            stored.len(),
            want.len(),
            "{table}: {} rows stored, truth has {}",
            stored.len(),
            want.len()
        );
        for (key, row) in &want {
            let got = stored_by_key
                .get(key)
                .unwrap_or_else(|| panic!("{table}: row {key} missing"));
            for (column, value) in *row {
                assert!(
                    same_value(&got[column], value),
                    "{table} {key}: {column} stored {} expected {value}",
                    got[column]
                );
            }
            for column in got.keys() {
                assert!(
                    row.contains_key(column),
                    "{table}: truth lacks column {column}"
                );
            }
            checked_rows += 1;
        }
    }
    assert!(
        checked_rows > 0,
        "the truth was empty: nothing was compared"
    );
}

/// Every row of `table` as a JSON object, in no particular order.
pub async fn table_rows_unsorted(store: &Store, table: &str) -> Vec<Map<String, Value>> {
    let columns: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM pragma_table_info('{table}')"
    )))
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    assert!(!columns.is_empty(), "no table {table}");
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| format!("'{c}', CASE typeof({c}) WHEN 'blob' THEN hex({c}) ELSE {c} END"))
        .collect();
    let sql = format!("SELECT json_object({}) FROM {table}", pairs.join(", "));
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(
            |r| match serde_json::from_str::<Value>(&r.get::<String, _>(0)).unwrap() {
                Value::Object(map) => map,
                other => panic!("{table}: not an object: {other}"),
            },
        )
        .collect()
}

/// `store.pool()`: the SQLite pool of a store the tests opened on a file
/// (the PostgreSQL tests use `store.pg_pool()`).
pub trait SqlitePoolOf {
    fn pool(&self) -> &sqlx::SqlitePool;
}

impl SqlitePoolOf for Store {
    fn pool(&self) -> &sqlx::SqlitePool {
        self.sqlite_pool().expect("a SQLite store")
    }
}
