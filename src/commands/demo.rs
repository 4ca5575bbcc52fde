//! `wxcube demo`: the main job end to end with no credentials: the built-in
//! simulator on a loopback port, a backfill of the last N days of all ten
//! endpoints into `wxcube-demo.db`, a summary and an example query, and the
//! HTML report `wxcube-report.html` beside the database.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;

use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::report_outcome;
use crate::clock::Clock;
use crate::clock::days_back;
use crate::config::{self, Account, CliOverrides, Need};
use crate::endpoint::Endpoint;
use crate::exit::{EXIT_FAILURES, EXIT_LOCKED, EXIT_USAGE};
use crate::ingest::{BackfillRequest, Engine};
use crate::lock::DbLock;
use crate::sim::{SimOptions, Simulator};
use crate::store::{self, Store};

/// The demo database when `--database` is not given.
pub const DEMO_DATABASE: &str = "wxcube-demo.db";
/// The demo's made-up account.
pub const DEMO_APPID: &str = "wxdemo0000000001";

/// Runs the demo; returns the exit code.
pub async fn run(database: Option<&str>, days: u32, clock: Clock) -> u8 {
    match run_inner(database.unwrap_or(DEMO_DATABASE), days, clock).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wxcube: demo: error: {e:#}");
            EXIT_FAILURES
        }
    }
}

async fn run_inner(database: &str, days: u32, clock: Clock) -> anyhow::Result<u8> {
    let simulator = Simulator::start(
        "127.0.0.1:0".parse().expect("valid address"),
        SimOptions {
            clock: clock.clone(),
            ..SimOptions::default()
        },
    )
    .await?;
    // Built-in defaults only: the demo must not pick up a real configuration.
    let overrides = CliOverrides {
        config: None,
        database: Some(database.to_string()),
    };
    let mut settings = match config::load_from(&overrides, &[], Need::NoCredentials, &[]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wxcube: demo: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    settings.api_base = simulator.base_url();
    settings.endpoints = Endpoint::ALL.to_vec();
    settings.retry_base_ms = 50;
    settings.accounts = vec![Account {
        appid: DEMO_APPID.to_string(),
        secret: SecretString::from("demo-appsecret"),
        name: Some("Demo account".to_string()),
        start_date: None,
        token_command: None,
    }];
    let _lock = match store::lock_path(database)? {
        Some(path) => match DbLock::try_acquire(&path, "demo") {
            Ok(lock) => Some(lock),
            Err(e) => {
                eprintln!("wxcube: demo: {e}");
                return Ok(EXIT_LOCKED);
            }
        },
        None => None,
    };
    let store = Store::open(database).await?;
    let engine = Engine::new(Arc::new(settings), store.clone(), clock)?;
    let latest = engine.latest();
    let from = days_back(latest, days);
    let request = BackfillRequest {
        from,
        to: latest,
        account: None,
        // Named, so that the catalogue is swept too.
        endpoints: Endpoint::ALL.to_vec(),
        refetch: false,
        progress: std::io::stderr().is_terminal(),
    };
    let cancel = CancellationToken::new();
    crate::shutdown::install(cancel.clone());
    let report = engine
        .backfill(&request, &cancel)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let code = report_outcome("demo", &report);
    let summary = summary(
        &store,
        database,
        from,
        latest,
        days,
        simulator.stats.log().len(),
    )
    .await?;
    print!("{summary}");
    // The report goes beside the database, so that the demo's two files stay together.
    let report_path = std::path::Path::new(database).with_file_name(crate::report::DEFAULT_PATH);
    let written = crate::report::write_default(
        engine.settings.as_ref(),
        &store,
        &engine.clock,
        &report_path,
    )
    .await?;
    println!(
        "\nReport (open it in a browser, it works offline): {}",
        written.display()
    );
    store.close().await;
    simulator.stop().await;
    Ok(code)
}

async fn summary(
    store: &Store,
    database: &str,
    from: chrono::NaiveDate,
    latest: chrono::NaiveDate,
    days: u32,
    requests: usize,
) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "wxcube demo: {days} days ({from}..{latest}) of all {} endpoints and the published catalogue, from the built-in simulator ({requests} requests), are in {database}\n",
        Endpoint::dated().count()
    )?;
    writeln!(out, "Rows per table:")?;
    for (table, count) in store.table_counts().await? {
        writeln!(out, "  {table:<24} {count:>8}")?;
    }
    let query = "SELECT ref_date, int_page_read_user, int_page_read_count, share_user \
                 FROM v_reads_by_channel WHERE user_source = 99999999 ORDER BY ref_date DESC LIMIT 7";
    writeln!(
        out,
        "\nExample query, reads per day over all channels (the last 7 days):\n  {query};\n"
    )?;
    write_rows(store, &mut out, query, &["readers", "reads", "sharers"]).await?;
    let query = "SELECT ref_date, new_user, cancel_user, net_user, cumulate_user \
                 FROM v_followers ORDER BY ref_date DESC LIMIT 7";
    writeln!(out, "\nFollowers per day (the last 7 days):\n  {query};\n")?;
    write_rows(store, &mut out, query, &["new", "cancel", "net", "total"]).await?;
    writeln!(
        out,
        "\nMore: sqlite3 {database} 'SELECT * FROM v_biz_reads_by_scene ORDER BY ref_date DESC LIMIT 8'"
    )?;
    Ok(out)
}

/// Writes the rows of `query` (a date, then integers) under `headers`.
async fn write_rows(
    store: &Store,
    out: &mut String,
    query: &'static str,
    headers: &[&str],
) -> anyhow::Result<()> {
    write!(out, "  {:<12}", "ref_date")?;
    for header in headers {
        write!(out, " {header:>8}")?;
    }
    writeln!(out)?;
    for (date, values) in store.dated_counters(query, headers.len()).await? {
        write!(out, "  {date:<12}")?;
        for value in values {
            let cell = value.map_or("-".to_string(), |v| v.to_string());
            write!(out, " {cell:>8}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}
