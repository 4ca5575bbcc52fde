//! The command line: parsing, and handing each subcommand to its module in
//! `commands`. Every command returns its exit code (`crate::exit`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{ArgAction, Parser, Subcommand};

use crate::clock::{Clock, parse_date};
use crate::commands;
use crate::config::CliOverrides;
use crate::endpoint::{Endpoint, parse_endpoint};
use crate::exit::{EXIT_FAILURES, EXIT_OK, EXIT_USAGE};
use crate::ingest::BackfillRequest;
use crate::telemetry::{self, LogFormat};

/// wxcube copies a WeChat Official Account's article statistics into SQLite.
#[derive(Debug, Parser)]
#[command(name = "wxcube", version, about, max_term_width = 100)]
pub struct Cli {
    /// Configuration file (default: $WXCUBE_CONFIG, ./wxcube.toml, /etc/wxcube/wxcube.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database file path or sqlite: URL (overrides the configuration).
    #[arg(long, global = true, value_name = "PATH_OR_URL")]
    pub database: Option<String>,
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Less log detail (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run resident: a catch-up sync at start, then one sync per `schedule` tick.
    Daemon,
    /// One sync now (the refresh window plus never-fetched days), then exit.
    Sync {
        /// Only this account.
        #[arg(long, value_name = "APPID")]
        account: Option<String>,
        /// Wait for the database lock instead of exiting 3.
        #[arg(long)]
        wait: bool,
    },
    /// Fetch every day of a range, skipping days already stored for good.
    Backfill {
        /// First day, YYYY-MM-DD.
        #[arg(long, value_parser = parse_date, value_name = "DATE")]
        from: NaiveDate,
        /// Last day, YYYY-MM-DD (clamped to yesterday in China).
        #[arg(long, value_parser = parse_date, value_name = "DATE")]
        to: NaiveDate,
        /// Only this account.
        #[arg(long, value_name = "APPID")]
        account: Option<String>,
        /// Only these endpoints (repeatable); also tries endpoints marked offline.
        #[arg(long = "endpoint", value_parser = parse_endpoint, value_name = "NAME")]
        endpoints: Vec<Endpoint>,
        /// Fetch days again even if they are already final.
        #[arg(long)]
        refetch: bool,
        /// Wait for the database lock instead of exiting 3.
        #[arg(long)]
        wait: bool,
    },
    /// Show, per account and endpoint, what is stored, missing and failing.
    Status {
        /// Only this account.
        #[arg(long, value_name = "APPID")]
        account: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the simulator and backfill its data into wxcube-demo.db (no credentials needed).
    Demo {
        /// How many days back from yesterday.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=5000))]
        days: u32,
    },
    /// Run the built-in simulator of the WeChat API (for tests and demos).
    Simulate {
        /// Address to listen on (loopback unless told otherwise).
        #[arg(long, default_value = "127.0.0.1:8089")]
        listen: SocketAddr,
        /// Fault injection, e.g. "busy=0.05,http5xx=0.02,latency_ms=50".
        #[arg(long, default_value = "")]
        faults: String,
        /// Accept only this appsecret (default: any non-empty one).
        #[arg(long)]
        secret: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Write a self-contained HTML report with charts (default: the last 30 days, every account).
    Report {
        /// Only this account.
        #[arg(long, value_name = "APPID")]
        account: Option<String>,
        /// First day, YYYY-MM-DD (default: 29 days before --to).
        #[arg(long, value_parser = parse_date, value_name = "DATE")]
        from: Option<NaiveDate>,
        /// Last day, YYYY-MM-DD (default: yesterday in `timezone`).
        #[arg(long, value_parser = parse_date, value_name = "DATE")]
        to: Option<NaiveDate>,
        /// The HTML file (default: `report_path`, else wxcube-report.html).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// A `token_command` for tests: prints a token from the simulator at
    /// `--api-base` for APPID (see `sim::token_program`).
    #[command(hide = true)]
    SimToken {
        #[arg(long)]
        api_base: String,
        appid: String,
    },
}

/// Parses the command line and runs it; the binary's whole `main`.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    telemetry::init(cli.log_format, cli.verbose as i8 - cli.quiet as i8);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wxcube: error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURES);
        }
    };
    let code = runtime.block_on(run(cli));
    // Do not wait for stray blocking tasks (a hung DNS lookup, say).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(code)
}

/// Runs one parsed command and returns its exit code.
pub async fn run(cli: Cli) -> u8 {
    let overrides = CliOverrides {
        config: cli.config.clone(),
        database: cli.database.clone(),
    };
    let clock = Clock::system();
    match cli.command {
        Command::Daemon => commands::daemon::run(&overrides, clock).await,
        Command::Sync { account, wait } => {
            commands::sync::run(&overrides, clock, account, wait).await
        }
        Command::Backfill {
            from,
            to,
            account,
            endpoints,
            refetch,
            wait,
        } => {
            let request = BackfillRequest {
                from,
                to,
                account,
                endpoints,
                refetch,
                progress: std::io::stderr().is_terminal(),
            };
            commands::backfill::run(&overrides, clock, request, wait).await
        }
        Command::Status { account, json } => {
            commands::status::run(&overrides, clock, account.as_deref(), json).await
        }
        Command::Demo { days } => commands::demo::run(cli.database.as_deref(), days, clock).await,
        Command::Simulate {
            listen,
            faults,
            secret,
        } => commands::simulate::run(listen, &faults, secret).await,
        Command::Migrate => commands::migrate::run(&overrides).await,
        Command::Report {
            account,
            from,
            to,
            out,
        } => {
            let args = commands::report::ReportArgs {
                account,
                from,
                to,
                out,
            };
            commands::report::run(&overrides, clock, args).await
        }
        Command::SimToken { api_base, appid } => {
            crate::sim::token_program::run(&api_base, &appid).await
        }
    }
}
