//! PostgreSQL: the harness every PostgreSQL test uses, and the tests that hold
//! `migrations/postgres/` to `migrations/sqlite/` (SPEC section 9).
//!
//! # The harness
//!
//! `TestPostgres::new()` gives each test a database of its own, dropped when
//! the value is dropped, so tests never share state. The server is:
//!
//! 1. the one at `WXCUBE_TEST_POSTGRES_URL` (CI sets it), an admin URL such as
//!    `postgres://postgres@127.0.0.1:5432/postgres`; when it is set and cannot
//!    be used, the test fails: the URL was given on purpose;
//! 2. otherwise one this test binary starts itself from the machine's
//!    PostgreSQL binaries (`initdb`, `pg_ctl`) in a temporary directory, on a
//!    free loopback port, shared by every test of the binary and stopped when
//!    the binary exits. As root it runs as the `postgres` (else `nobody`) user,
//!    because `initdb` refuses to run as root;
//! 3. when neither is possible, one line on stderr says why and
//!    `TestPostgres::new()` returns `None`: the test passes, except under CI
//!    (`CI` set), where it panics, so that CI never passes without them.
//!
//! ```ignore
//! let Some(pg) = TestPostgres::new().await else { return };
//! let pool = pg.migrated_pool().await;
//! ```
//!
//! # The type rule (SQLite → PostgreSQL)
//!
//! Derived from what SQLite holds (docs/schema.md, and checked against a
//! simulated backfill by `the_type_rule_matches_what_sqlite_holds_after_a_backfill`):
//! - INTEGER → `bigint` (counters, codes, 0/1 flags, Unix-second times such as
//!   `published_articles.update_time`: they stay the API's integers);
//! - REAL → `double precision`;
//! - TEXT named `*_date` → `date` (SQLite holds `YYYY-MM-DD` in exactly those);
//! - TEXT named `*_at` → `timestamptz` (SQLite holds RFC 3339 UTC in exactly those);
//! - any other TEXT → `text`. Never `boolean`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection, Row as _};

use crate::helpers::{TestEnv, backfill};

/// The variable naming the server the PostgreSQL tests use.
pub const URL_VAR: &str = "WXCUBE_TEST_POSTGRES_URL";

/// The PostgreSQL migrations, embedded as the store will embed them.
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

/// A database of its own for one test, on the shared server; dropped (with
/// `WITH (FORCE)`, so connections still open do not keep it) when this is.
pub struct TestPostgres {
    /// The URL of this test's database.
    url: String,
    /// The URL of the server's maintenance database, to drop ours from.
    admin_url: String,
    /// The database's name (`wxcube_t_...`).
    name: String,
}

impl TestPostgres {
    /// A fresh, empty database, or `None` (after one line on stderr for the
    /// whole binary) when no server can be had outside CI.
    pub async fn new() -> Option<TestPostgres> {
        let admin_url = match server() {
            Ok(url) => url.clone(),
            Err(reason) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL tests cannot run under CI: {reason}")
            }
            Err(_) => return None,
        };
        // Unique across this binary (counter), concurrent binaries (pid) and
        // databases left by a binary that was killed (random part).
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "wxcube_t_{}_{}_{:08x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", redact(&admin_url)));
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        admin.close().await.ok();
        Some(TestPostgres {
            url: with_database(&admin_url, &name),
            admin_url,
            name,
        })
    }

    /// The URL of this test's database (`postgres://user@host:port/wxcube_t_...`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of the server's maintenance database (an admin connection).
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A small pool on this test's database.
    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", redact(&self.url)))
    }

    /// A pool on this test's database with the PostgreSQL migrations applied.
    pub async fn migrated_pool(&self) -> PgPool {
        let pool = self.pool().await;
        PG_MIGRATOR.run(&pool).await.expect("PostgreSQL migrations");
        pool
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, where blocking on a future is not
        // allowed: a thread with a runtime of its own does the dropping.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
                admin.close().await.ok();
                Ok::<(), String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: the thread panicked",
                self.name
            ),
        }
    }
}

/// `url` with its password (if any) replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_string(),
    }
}

/// `url` naming database `name` instead of its own, keeping its query
/// (`?sslmode=...`).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The admin URL of the server the tests use, found or started once per
/// binary; `Err` says why there is none (already printed, once).
fn server() -> &'static Result<String, String> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Some(url) = std::env::var(URL_VAR).ok().filter(|u| !u.is_empty()) {
            return Ok(url);
        }
        let started = OwnServer::start();
        if let Err(reason) = &started {
            // Straight to stderr: eprintln! inside a test is captured, and
            // this line must be seen even when every test passes.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "PostgreSQL tests skipped: {URL_VAR} is unset and {reason}"
            );
        }
        started
    })
}

/// A server this binary started, stopped at exit.
struct OwnServer {
    /// The temporary directory holding the data directory and the log.
    dir: PathBuf,
    /// `pg_ctl` of the binaries that started it.
    pg_ctl: PathBuf,
    /// The user the server runs as, when we are root.
    user: Option<String>,
}

/// The server started by this binary, for the exit handler.
static OWN_SERVER: OnceLock<OwnServer> = OnceLock::new();

impl OwnServer {
    /// Starts a server from the machine's binaries; its admin URL, or why not.
    fn start() -> Result<String, String> {
        let bindir =
            postgres_bindir().ok_or("no PostgreSQL binaries (initdb, pg_ctl) were found")?;
        let user = if is_root() {
            // initdb refuses root: run the server as an unprivileged user.
            let user = ["postgres", "nobody"]
                .into_iter()
                .find(|u| user_ids(u).is_some())
                .ok_or(
                    "running as root and there is no postgres or nobody user to run initdb as",
                )?;
            if which("runuser").is_none() && which("su").is_none() {
                return Err("running as root and neither runuser nor su is there".into());
            }
            Some(user.to_string())
        } else {
            None
        };
        // Not a TempDir: statics are never dropped, the exit handler removes it.
        let dir = tempfile::Builder::new()
            .prefix("wxcube-pg-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?
            .keep();
        if let Some(user) = &user {
            let (uid, gid) = user_ids(user).expect("checked above");
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| format!("cannot give {} to {user}: {e}", dir.display()))?;
        }
        let server = OwnServer {
            dir,
            pg_ctl: bindir.join("pg_ctl"),
            user,
        };
        let data = server.dir.join("data");
        let initdb = bindir.join("initdb");
        server
            .run(
                &initdb,
                &[
                    "-D",
                    path_str(&data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            )
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&server.dir);
                format!("initdb failed: {e}")
            })?;
        // A free port can be taken between our probe and the server's bind:
        // try a few.
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| format!("no free port: {e}"))?;
            // Durability is of no use to a throwaway server, and fsync on 2
            // shared cores is slow. The socket sits in our own directory, so it
            // never collides with the machine's server.
            let options = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off",
                path_str(&server.dir)
            );
            let log = server.dir.join("server.log");
            match server.run(
                &server.pg_ctl,
                &[
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    path_str(&data),
                    "-l",
                    path_str(&log),
                    "-o",
                    &options,
                ],
            ) {
                Ok(()) => {
                    let _ = OWN_SERVER.set(server);
                    // SAFETY: registers a plain extern "C" function with no
                    // captured state; libc calls it once at process exit.
                    unsafe { libc::atexit(stop_own_server) };
                    return Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
                }
                Err(e) => last = e,
            }
        }
        let _ = std::fs::remove_dir_all(&server.dir);
        Err(format!("the self-started server did not start: {last}"))
    }

    /// Runs `program` with `args`, as `self.user` when set; `Err` carries its
    /// output.
    fn run(&self, program: &Path, args: &[&str]) -> Result<(), String> {
        let mut command = match &self.user {
            None => Command::new(program),
            Some(user) if which("runuser").is_some() => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            Some(user) => {
                // su takes one shell command: quote each word.
                let mut line = shell_quote(path_str(program));
                for arg in args {
                    line.push(' ');
                    line.push_str(&shell_quote(arg));
                }
                let mut c = Command::new("su");
                c.args([user.as_str(), "-s", "/bin/sh", "-c", &line]);
                return output_ok(c);
            }
        };
        command.args(args);
        // Its working directory must be readable by the server's user.
        command.current_dir(&self.dir);
        output_ok(command)
    }
}

/// Runs a command and gives its output as the error when it fails.
fn output_ok(mut command: Command) -> Result<(), String> {
    // pg_ctl redirects the server's own output to the log, so our pipes
    // close when pg_ctl exits.
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(())
    } else {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Err(format!(
            "{:?} exited with {}: {}",
            command.get_program(),
            output.status,
            text.trim().replace('\n', " | ")
        ))
    }
}

/// Stops the self-started server and removes its directory, at exit.
extern "C" fn stop_own_server() {
    if let Some(server) = OWN_SERVER.get() {
        let data = server.dir.join("data");
        // immediate: the data is thrown away, nothing to flush.
        let _ = server.run(
            &server.pg_ctl,
            &["stop", "-D", path_str(&data), "-m", "immediate", "-w"],
        );
        let _ = std::fs::remove_dir_all(&server.dir);
    }
}

/// The directory of the newest `initdb` and `pg_ctl` on this machine: Debian's
/// `/usr/lib/postgresql/<major>/bin`, then `pg_config --bindir`, then `PATH`.
fn postgres_bindir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if has_both(&bin) {
            return Some(bin);
        }
    }
    which("initdb")
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .filter(|bin| has_both(bin))
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid of a user, if it exists.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam gets a valid C string; the result, when not null,
    // points to a static record we read at once (tests start the server from
    // one thread only, inside a OnceLock).
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        (!pw.is_null()).then(|| ((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------
// Reading both schemas
// ---------------------------------------------------------------------------

/// A table or a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Table,
    View,
}

/// One column as a database describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// SQLite's declared type (empty for a view's computed column), or
    /// PostgreSQL's type (`timestamptz` for `timestamp with time zone`).
    pub ty: String,
    /// NOT NULL, or part of the primary key (PostgreSQL's primary keys are
    /// always NOT NULL; SQLite's are too for INTEGER PRIMARY KEY, and
    /// wxcube never stores a NULL in a TEXT one).
    pub not_null: bool,
    pub default: Option<String>,
}

/// A table or a view: its columns in order, and its primary key in key order.
#[derive(Debug, Clone)]
pub struct Object {
    pub kind: Kind,
    pub columns: Vec<Column>,
    pub key: Vec<String>,
}

/// A secondary index: its table, its columns in order, and whether it is
/// unique.
pub type Index = (String, Vec<String>, bool);

/// Every table, view and secondary index of wxcube's own (bookkeeping left out).
#[derive(Debug, Default)]
pub struct Schema {
    pub objects: BTreeMap<String, Object>,
    pub indexes: BTreeMap<String, Index>,
}

/// A SQLite database in `dir` with the SQLite migrations applied.
async fn sqlite_pool(dir: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("wxcube.db"))
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    wxcube::store::MIGRATOR.run(&pool).await.unwrap();
    pool
}

pub async fn sqlite_schema(pool: &SqlitePool) -> Schema {
    let mut schema = Schema::default();
    let objects: Vec<(String, String)> = sqlx::query_as(
        r"SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')
            AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
            AND name NOT LIKE '\_sqlx%' ESCAPE '\'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (kind, name) in objects {
        let kind = if kind == "table" {
            Kind::Table
        } else {
            Kind::View
        };
        let rows: Vec<(String, String, i64, Option<String>, i64)> = sqlx::query_as(
            r#"SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid"#,
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap();
        let mut key: Vec<(i64, String)> = rows
            .iter()
            .filter(|r| r.4 > 0)
            .map(|r| (r.4, r.0.clone()))
            .collect();
        key.sort();
        let columns = rows
            .into_iter()
            .map(|(column, ty, not_null, default, pk)| Column {
                name: column,
                ty,
                not_null: kind == Kind::Table && (not_null != 0 || pk > 0),
                default,
            })
            .collect();
        schema.objects.insert(
            name.clone(),
            Object {
                kind,
                columns,
                key: key.into_iter().map(|(_, c)| c).collect(),
            },
        );
        if kind == Kind::Table {
            // origin 'c': made by CREATE INDEX, not a key's automatic index.
            let indexes: Vec<(String, i64)> = sqlx::query_as(
                r#"SELECT name, "unique" FROM pragma_index_list(?) WHERE origin = 'c'"#,
            )
            .bind(&name)
            .fetch_all(pool)
            .await
            .unwrap();
            for (index, unique) in indexes {
                let columns: Vec<(String,)> =
                    sqlx::query_as("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                        .bind(&index)
                        .fetch_all(pool)
                        .await
                        .unwrap();
                let columns = columns.into_iter().map(|(c,)| c).collect();
                schema
                    .indexes
                    .insert(index, (name.clone(), columns, unique != 0));
            }
        }
    }
    schema
}

pub async fn postgres_schema(pool: &PgPool) -> Schema {
    let mut schema = Schema::default();
    let objects: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, table_type::text FROM information_schema.tables
          WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (name, kind) in objects {
        let kind = if kind == "VIEW" {
            Kind::View
        } else {
            Kind::Table
        };
        let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text
               FROM information_schema.columns
              WHERE table_schema = current_schema() AND table_name = $1
              ORDER BY ordinal_position",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap();
        let columns = rows
            .into_iter()
            .map(|(column, ty, nullable, default)| Column {
                name: column,
                ty: if ty == "timestamp with time zone" {
                    "timestamptz".into()
                } else {
                    ty
                },
                not_null: kind == Kind::Table && nullable == "NO",
                default,
            })
            .collect();
        let key: Vec<(String,)> = sqlx::query_as(
            "SELECT kcu.column_name::text
               FROM information_schema.table_constraints tc
               JOIN information_schema.key_column_usage kcu
                 ON kcu.constraint_schema = tc.constraint_schema
                AND kcu.constraint_name = tc.constraint_name
              WHERE tc.constraint_type = 'PRIMARY KEY'
                AND tc.table_schema = current_schema() AND tc.table_name = $1
              ORDER BY kcu.ordinal_position",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap();
        schema.objects.insert(
            name,
            Object {
                kind,
                columns,
                key: key.into_iter().map(|(c,)| c).collect(),
            },
        );
    }
    let indexes: Vec<(String, String, bool, Vec<String>)> = sqlx::query_as(
        "SELECT i.relname::text, t.relname::text, x.indisunique,
                array_agg(a.attname::text ORDER BY k.ord)
           FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_class t ON t.oid = x.indrelid
           JOIN pg_namespace n ON n.oid = t.relnamespace
           CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
          WHERE n.nspname = current_schema() AND NOT x.indisprimary
            AND t.relname <> '_sqlx_migrations'
          GROUP BY i.relname, t.relname, x.indisunique",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for (index, table, unique, columns) in indexes {
        schema.indexes.insert(index, (table, columns, unique));
    }
    schema
}

/// The PostgreSQL type SPEC section 9 gives a SQLite column (see the module
/// doc); `None` for a view's computed column, which has no declared type.
fn postgres_type_for(column: &str, sqlite_type: &str) -> Option<&'static str> {
    match sqlite_type {
        "INTEGER" => Some("bigint"),
        "REAL" => Some("double precision"),
        "TEXT" if column.ends_with("_date") => Some("date"),
        "TEXT" if column.ends_with("_at") => Some("timestamptz"),
        "TEXT" => Some("text"),
        _ => None,
    }
}

/// The only types section 9 allows.
const ALLOWED_TYPES: [&str; 5] = ["date", "bigint", "double precision", "timestamptz", "text"];

// ---------------------------------------------------------------------------
// Comparing contents
// ---------------------------------------------------------------------------

/// A row as comparable text: NULL is `None`.
pub type TextRow = Vec<Option<String>>;

/// One value as text both databases agree on: numbers to 12 significant
/// digits (SQLite prints a REAL `1.0` and to 15 digits, PostgreSQL `1` and to
/// 17), times in RFC 3339 UTC with microseconds, anything else unchanged.
fn normalize(value: Option<String>) -> Option<String> {
    let value = value?;
    if let Ok(number) = value.parse::<f64>() {
        return Some(format!("{number:.11e}"));
    }
    if value.len() > 10
        && let Ok(time) = DateTime::parse_from_rfc3339(&value)
    {
        return Some(
            time.with_timezone(&Utc)
                .to_rfc3339_opts(SecondsFormat::Micros, true),
        );
    }
    Some(value)
}

/// Every row of a SQLite table or view, as sorted text rows. A REAL goes
/// out with 17 significant digits, so that it reaches `normalize` as the very
/// double it is (CAST prints 15, which can round the other way at the 12th).
pub async fn sqlite_rows(pool: &SqlitePool, name: &str, object: &Object) -> Vec<TextRow> {
    let select: Vec<String> = object
        .columns
        .iter()
        .map(|c| {
            format!(
                "CASE typeof(\"{0}\") WHEN 'real' THEN printf('%!.17g', \"{0}\") ELSE CAST(\"{0}\" AS TEXT) END",
                c.name
            )
        })
        .collect();
    let sql = format!("SELECT {} FROM \"{name}\"", select.join(", "));
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap();
    let mut out: Vec<TextRow> = rows
        .iter()
        .map(|r| {
            (0..object.columns.len())
                .map(|i| normalize(r.get::<Option<String>, _>(i)))
                .collect()
        })
        .collect();
    out.sort();
    out
}

/// A PostgreSQL column as text that does not depend on DateStyle or
/// TimeZone: dates `YYYY-MM-DD`, times UTC RFC 3339 with `fraction` (`MS`
/// or `US`) digits of seconds, anything else cast to text.
pub fn pg_column_as_text(column: &Column, fraction: &str) -> String {
    match column.ty.as_str() {
        "date" => format!("to_char(\"{}\", 'YYYY-MM-DD')", column.name),
        "timestamptz" => format!(
            "to_char(\"{}\" AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.{fraction}\"Z\"')",
            column.name
        ),
        _ => format!("\"{}\"::text", column.name),
    }
}

/// Every row of a PostgreSQL table or view, as sorted text rows; dates and
/// times are formatted explicitly so that DateStyle and TimeZone do not matter.
pub async fn postgres_rows(pool: &PgPool, name: &str, object: &Object) -> Vec<TextRow> {
    let select: Vec<String> = object
        .columns
        .iter()
        .map(|c| pg_column_as_text(c, "US"))
        .collect();
    let sql = format!("SELECT {} FROM \"{name}\"", select.join(", "));
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(pool)
        .await
        .unwrap();
    let mut out: Vec<TextRow> = rows
        .iter()
        .map(|r| {
            (0..object.columns.len())
                .map(|i| normalize(r.get::<Option<String>, _>(i)))
                .collect()
        })
        .collect();
    out.sort();
    out
}

/// Compares every table and view of both databases row for row; gives the
/// differences, and the number of rows compared per object.
async fn compare_contents(
    sqlite: &SqlitePool,
    postgres: &PgPool,
) -> (Vec<String>, BTreeMap<String, usize>) {
    let lite = sqlite_schema(sqlite).await;
    let pg = postgres_schema(postgres).await;
    let mut problems = Vec::new();
    let mut counts = BTreeMap::new();
    for (name, object) in &lite.objects {
        let Some(pg_object) = pg.objects.get(name) else {
            problems.push(format!("{name}: missing in PostgreSQL"));
            continue;
        };
        let a = sqlite_rows(sqlite, name, object).await;
        let b = postgres_rows(postgres, name, pg_object).await;
        counts.insert(name.clone(), a.len());
        if a != b {
            let only_sqlite: Vec<_> = a.iter().filter(|r| !b.contains(r)).take(3).collect();
            let only_pg: Vec<_> = b.iter().filter(|r| !a.contains(r)).take(3).collect();
            problems.push(format!(
                "{name}: {} rows in SQLite, {} in PostgreSQL; only in SQLite {only_sqlite:?}; only in PostgreSQL {only_pg:?}",
                a.len(),
                b.len()
            ));
        }
    }
    (problems, counts)
}

/// Copies every row of every SQLite table into the same PostgreSQL table,
/// each value through text into the column's type (rows already there, the
/// lookup tables' seeds, are kept).
async fn copy_sqlite_to_postgres(sqlite: &SqlitePool, postgres: &PgPool) {
    let lite = sqlite_schema(sqlite).await;
    let pg = postgres_schema(postgres).await;
    let mut tx = postgres.begin().await.unwrap();
    for (name, object) in lite.objects.iter().filter(|(_, o)| o.kind == Kind::Table) {
        let pg_object = &pg.objects[name];
        let names: Vec<String> = object
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        let params: Vec<String> = pg_object
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("${}::{}", i + 1, c.ty))
            .collect();
        let insert = format!(
            "INSERT INTO \"{name}\" ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            names.join(", "),
            params.join(", ")
        );
        let select: Vec<String> = object
            .columns
            .iter()
            .map(|c| match c.ty.as_str() {
                // 17 significant digits: a REAL survives the trip through text.
                "REAL" => format!("printf('%!.17g', \"{}\")", c.name),
                _ => format!("CAST(\"{}\" AS TEXT)", c.name),
            })
            .collect();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {} FROM \"{name}\"",
            select.join(", ")
        )))
        .fetch_all(sqlite)
        .await
        .unwrap();
        for row in &rows {
            let mut query = sqlx::query(AssertSqlSafe(insert.clone()));
            for i in 0..object.columns.len() {
                query = query.bind(row.get::<Option<String>, _>(i));
            }
            query
                .execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("copying into {name}: {e}"));
        }
    }
    tx.commit().await.unwrap();
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn with_database_replaces_only_the_database_of_a_url() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgresql://u:p@h/db?sslmode=require", "t2"),
        "postgresql://u:p@h/t2?sslmode=require"
    );
    assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
    assert_eq!(
        redact("postgres://u:secret@h:5/db"),
        "postgres://u:***@h:5/db"
    );
    assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
}

#[tokio::test]
async fn postgres_test_databases_are_fresh_and_dropped_afterwards() {
    let Some(first) = TestPostgres::new().await else {
        return;
    };
    let second = TestPostgres::new().await.unwrap();
    assert_ne!(first.name(), second.name());
    let pool = first.pool().await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 0, "a new test database is empty");
    let name = first.name().to_string();
    // The pool is still open: WITH (FORCE) drops the database regardless.
    drop(first);
    let admin = second.pool().await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert_eq!(left, 0, "{name} was not dropped");
    pool.close().await;
}

#[tokio::test]
async fn postgres_migrations_apply_to_a_fresh_database_and_again_as_a_no_op() {
    let Some(pg) = TestPostgres::new().await else {
        return;
    };
    let pool = pg.pool().await;
    PG_MIGRATOR.run(&pool).await.expect("first run");
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    // Every migration, as many as SQLite has, each applied once.
    let expected: Vec<(i64, bool)> = wxcube::store::MIGRATOR
        .iter()
        .map(|m| (m.version, true))
        .collect();
    assert_eq!(applied, expected);
    // The same migrations from another pool, as a second process would: nothing
    // to do, nothing changed.
    let before = postgres_schema(&pool).await;
    pool.close().await;
    let again = pg.pool().await;
    PG_MIGRATOR.run(&again).await.expect("second run");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&again)
        .await
        .unwrap();
    assert_eq!(count, expected.len() as i64);
    let after = postgres_schema(&again).await;
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
    assert!(after.objects.contains_key("fetches") && after.objects.contains_key("v_followers"));
}

#[tokio::test]
async fn postgres_schema_has_the_tables_views_columns_keys_and_indexes_of_sqlite() {
    let Some(pg) = TestPostgres::new().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lite_pool = sqlite_pool(dir.path()).await;
    let lite = sqlite_schema(&lite_pool).await;
    let pg_pool = pg.migrated_pool().await;
    let pg = postgres_schema(&pg_pool).await;
    // A guard against a query that silently finds nothing.
    assert!(
        lite.objects.len() > 25 && lite.indexes.len() == 2,
        "{lite:?}"
    );

    let mut problems = Vec::new();
    let names = |s: &Schema, kind| -> BTreeSet<String> {
        s.objects
            .iter()
            .filter(|(_, o)| o.kind == kind)
            .map(|(n, _)| n.clone())
            .collect()
    };
    for kind in [Kind::Table, Kind::View] {
        let (a, b) = (names(&lite, kind), names(&pg, kind));
        if a != b {
            problems.push(format!(
                "{kind:?}s only in SQLite: {:?}; only in PostgreSQL: {:?}",
                a.difference(&b).collect::<Vec<_>>(),
                b.difference(&a).collect::<Vec<_>>()
            ));
        }
    }
    for (name, object) in &lite.objects {
        let Some(other) = pg.objects.get(name) else {
            continue;
        };
        let columns = |o: &Object| o.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        if columns(object) != columns(other) {
            problems.push(format!(
                "{name}: columns {:?} in SQLite, {:?} in PostgreSQL",
                columns(object),
                columns(other)
            ));
            continue;
        }
        if object.key != other.key {
            problems.push(format!(
                "{name}: key {:?} in SQLite, {:?} in PostgreSQL",
                object.key, other.key
            ));
        }
        for (a, b) in object.columns.iter().zip(&other.columns) {
            if a.not_null != b.not_null {
                problems.push(format!(
                    "{name}.{}: NOT NULL {} in SQLite, {} in PostgreSQL",
                    a.name, a.not_null, b.not_null
                ));
            }
            if a.default != b.default {
                problems.push(format!(
                    "{name}.{}: default {:?} in SQLite, {:?} in PostgreSQL",
                    a.name, a.default, b.default
                ));
            }
        }
    }
    if lite.indexes != pg.indexes {
        problems.push(format!(
            "indexes: {:?} in SQLite, {:?} in PostgreSQL",
            lite.indexes, pg.indexes
        ));
    }
    lite_pool.close().await;
    pg_pool.close().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn postgres_column_types_follow_section_9() {
    let Some(pg) = TestPostgres::new().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lite_pool = sqlite_pool(dir.path()).await;
    let lite = sqlite_schema(&lite_pool).await;
    let pg_pool = pg.migrated_pool().await;
    let pg = postgres_schema(&pg_pool).await;
    let mut problems = Vec::new();
    let mut seen = BTreeMap::<String, usize>::new();
    for (name, object) in &pg.objects {
        let sqlite_columns: BTreeMap<&str, &str> = lite
            .objects
            .get(name)
            .map(|o| {
                o.columns
                    .iter()
                    .map(|c| (c.name.as_str(), c.ty.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        for column in &object.columns {
            *seen.entry(column.ty.clone()).or_default() += 1;
            if !ALLOWED_TYPES.contains(&column.ty.as_str()) {
                problems.push(format!(
                    "{name}.{}: {} is not one of {ALLOWED_TYPES:?}",
                    column.name, column.ty
                ));
                continue;
            }
            let sqlite_type = sqlite_columns.get(column.name.as_str()).copied();
            match sqlite_type.and_then(|t| postgres_type_for(&column.name, t)) {
                Some(expected) if expected != column.ty => problems.push(format!(
                    "{name}.{}: {} in PostgreSQL, but SQLite's {} gives {expected}",
                    column.name,
                    column.ty,
                    sqlite_type.unwrap_or_default()
                )),
                // A view's computed column: only the allowed set applies.
                None if object.kind == Kind::Table => problems.push(format!(
                    "{name}.{}: SQLite type {sqlite_type:?} has no rule",
                    column.name
                )),
                _ => {}
            }
        }
    }
    lite_pool.close().await;
    pg_pool.close().await;
    // Every type of section 9 is in use (a guard against a rule that never fires).
    for ty in ALLOWED_TYPES {
        assert!(seen.contains_key(ty), "no column is {ty}: {seen:?}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Rows for every base table, valid SQL for both databases (dates and times as
/// string literals, which PostgreSQL casts to the column's type). They reach
/// each view's corners: a latest `stat_date` among several, codes missing from
/// the lookups, NULL counters, reals, a day with followers but no sources.
const SAMPLE: &str = r#"
INSERT INTO articles (appid, msgid, msg_data_id, idx, title, url, publish_date, publish_type, url_key) VALUES
    ('wxa', '100_1', '100', 1, 'First', 'https://mp.weixin.qq.com/s/aaa', '2026-03-01', 0, 'k-aaa'),
    ('wxa', '100_2', '100', 2, NULL, NULL, '2026-03-01', 1, NULL),
    ('wxa', '200', '200', NULL, 'No index', NULL, NULL, 2, 'k-200'),
    ('wxb', '300_1', '300', 1, 'Other account', 'https://mp.weixin.qq.com/s/ccc', '2026-02-28', NULL, 'k-ccc');
INSERT INTO article_daily (appid, ref_date, msgid, int_page_read_user, int_page_read_count, ori_page_read_user,
    ori_page_read_count, share_user, share_count, add_to_fav_user, add_to_fav_count) VALUES
    ('wxa', '2026-03-01', '100_1', 10, 12, 0, 0, 1, 1, 2, 2),
    ('wxa', '2026-03-02', '100_1', 5, NULL, 0, 0, NULL, 1, 0, 0);
INSERT INTO article_total (appid, msgid, stat_date, ref_date, target_user, int_page_read_user, int_page_read_count,
    share_user, share_count, add_to_fav_user, add_to_fav_count, int_page_from_session_read_user,
    int_page_from_hist_msg_read_user, int_page_from_feed_read_user, int_page_from_friends_read_user,
    int_page_from_other_read_user, int_page_from_kanyikan_read_user, int_page_from_souyisou_read_user,
    feed_share_from_other_cnt) VALUES
    ('wxa', '100_1', '2026-03-01', '2026-03-01', 1000, 10, 12, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 1),
    ('wxa', '100_1', '2026-03-03', '2026-03-01', 1000, 30, 40, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, NULL),
    ('wxa', '100_1', '2026-03-02', '2026-03-01', 1000, 20, 25, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 0),
    ('wxa', '999_1', '2026-03-02', '2026-03-02', NULL, 1, 1, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    ('wxb', '300_1', '2026-02-28', '2026-02-28', 50, 5, 5, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0);
INSERT INTO user_read_daily (appid, ref_date, user_source, int_page_read_user, int_page_read_count,
    share_user, add_to_fav_user) VALUES
    ('wxa', '2026-03-01', 99999999, 100, 150, 3, 1),
    ('wxa', '2026-03-01', 0, 40, 60, NULL, 0),
    ('wxa', '2026-03-01', 42, 1, 1, 0, 0);
INSERT INTO user_read_hourly (appid, ref_date, hour, user_source, int_page_read_user) VALUES
    ('wxa', '2026-03-01', 0, 99999999, 3),
    ('wxa', '2026-03-01', 23, 0, 1);
INSERT INTO user_share_daily (appid, ref_date, share_scene, share_count, share_user) VALUES
    ('wxa', '2026-03-01', 1, 5, 4),
    ('wxa', '2026-03-01', 77, 1, 1),
    ('wxa', '2026-03-02', 255, NULL, 2);
INSERT INTO user_share_hourly (appid, ref_date, hour, share_scene, share_count, share_user) VALUES
    ('wxa', '2026-03-01', 9, 1, 2, 2);
INSERT INTO article_read_daily (appid, ref_date, msgid, read_user) VALUES ('wxa', '2026-03-01', '100_1', 10);
INSERT INTO article_read_sources (appid, ref_date, msgid, scene_desc, user_count) VALUES
    ('wxa', '2026-03-01', '100_1', '朋友圈', 4);
INSERT INTO article_share_daily (appid, ref_date, msgid, share_user) VALUES ('wxa', '2026-03-01', '100_1', 1);
INSERT INTO biz_daily (appid, ref_date, read_user, share_user, zaikan_user, like_user, comment_count,
    collection_user, redirect_ori_page_user, send_page_count) VALUES
    ('wxa', '2026-03-01', 100, 3, 1, 2, 0, 1, 0, 2);
INSERT INTO biz_read_sources (appid, ref_date, scene_desc, user_count) VALUES
    ('wxa', '2026-03-01', '全部', 100),
    ('wxa', '2026-03-01', '搜一搜', 7),
    ('wxa', '2026-03-01', '新场景', 1);
INSERT INTO article_detail (appid, msgid, stat_date, ref_date, read_user, share_user, zaikan_user, like_user,
    comment_count, collection_user, praise_money, read_subscribe_user, read_delivery_rate, read_finish_rate,
    read_avg_activetime) VALUES
    ('wxa', '100_1', '2026-03-01', '2026-03-01', 10, 1, 0, 1, 0, 0, 0, 8, 0.1, 0.5, 30.25),
    ('wxa', '100_1', '2026-03-04', '2026-03-01', 40, 4, 2, 3, 1, 1, 100, 30, 0.123456789012345, 1.0, 45.0),
    ('wxa', '200', '2026-03-02', '2026-03-02', 3, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL);
INSERT INTO article_detail_sources (appid, msgid, stat_date, scene_desc, user_count) VALUES
    ('wxa', '100_1', '2026-03-04', '推荐', 12);
INSERT INTO article_detail_jumps (appid, msgid, stat_date, position, rate) VALUES
    ('wxa', '100_1', '2026-03-04', 1, 0.9),
    ('wxa', '100_1', '2026-03-04', 2, 0.333333333333);
INSERT INTO user_daily (appid, ref_date, user_source, new_user, cancel_user) VALUES
    ('wxa', '2026-03-01', 0, 5, 1),
    ('wxa', '2026-03-01', 30, 3, 0),
    ('wxa', '2026-03-02', 0, 2, NULL);
INSERT INTO user_cumulate (appid, ref_date, cumulate_user) VALUES
    ('wxa', '2026-03-01', 1000),
    ('wxa', '2026-03-03', 1004);
INSERT INTO published_articles (appid, article_id, idx, title, author, digest, url, content_source_url,
    thumb_url, thumb_media_id, show_cover_pic, need_open_comment, only_fans_can_comment, is_deleted,
    update_time, create_time, url_key) VALUES
    ('wxa', 'AID1', 1, NULL, 'Ann', 'Digest', 'https://mp.weixin.qq.com/s/aaa2', NULL, NULL, NULL, 1, 0, 0, 0,
     1772330000, 1772320000, 'k-aaa'),
    ('wxa', 'AID2', 1, 'Catalogue only', 'Bob', NULL, NULL, NULL, NULL, NULL, 0, 1, 1, 1, 1772330001, NULL, 'k-none');
INSERT INTO quota_seen (appid, endpoint, seen_at, seen_date, daily_limit, used, remain, reserve, sent,
    call_count, refresh_second) VALUES
    ('wxa', 'getuserread', '2026-03-01T04:05:06.789Z', '2026-03-01', 1000, 10, 990, 100, 5, 10000, 60),
    ('wxa', 'getbizsummary', '2026-03-01T04:05:07.000Z', '2026-03-01', 500, 0, 500, 50, 0, NULL, NULL);
INSERT INTO catalogue_state (appid, calls_date, calls, next_offset, sweep_complete, total_count, last_call_at,
    last_errcode, last_error, quota_spent_date) VALUES
    ('wxa', '2026-03-01', 3, 40, 0, 120, '2026-03-01T04:05:06.789Z', 45009, 'daily quota', '2026-03-01');
INSERT INTO fetches (appid, endpoint, begin_date, end_date, status, rows, attempts, errcode, error, fetched_at,
    is_delay) VALUES
    ('wxa', 'getuserread', '2026-03-01', '2026-03-01', 'ok', 3, 1, NULL, NULL, '2026-03-02T01:00:00.000Z', 0),
    ('wxa', 'getarticletotal', '2026-03-01', '2026-03-01', 'error', 0, 4, 61500, 'date out of range',
     '2026-03-02T01:00:01.500Z', NULL);
INSERT INTO raw_responses (appid, endpoint, begin_date, end_date, fetched_at, body) VALUES
    ('wxa', 'getuserread', '2026-03-01', '2026-03-01', '2026-03-02T01:00:00.000Z', '{"list":[]}');
INSERT INTO runs (command, started_at, finished_at, chunks_ok, chunks_failed, requests, rows, outcome) VALUES
    ('sync', '2026-03-02T01:00:00.000Z', '2026-03-02T01:00:05.250Z', 1, 1, 5, 3, 'partial'),
    ('daemon', '2026-03-03T01:00:00.000Z', NULL, NULL, NULL, NULL, NULL, NULL);
"#;

#[tokio::test]
async fn postgres_views_and_tables_give_the_rows_sqlite_gives_for_the_same_sample() {
    let Some(pg) = TestPostgres::new().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lite_pool = sqlite_pool(dir.path()).await;
    let pg_pool = pg.migrated_pool().await;
    sqlx::raw_sql(SAMPLE)
        .execute(&lite_pool)
        .await
        .expect("sample rows in SQLite");
    sqlx::raw_sql(SAMPLE)
        .execute(&pg_pool)
        .await
        .expect("sample rows in PostgreSQL");
    let (problems, counts) = compare_contents(&lite_pool, &pg_pool).await;
    lite_pool.close().await;
    pg_pool.close().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every view shows something: the sample reaches all of them.
    for (name, rows) in &counts {
        assert!(*rows > 0, "{name} is empty for the sample: {counts:?}");
    }
}

#[tokio::test]
async fn the_type_rule_matches_what_sqlite_holds_after_a_backfill() {
    // A simulated backfill of every dated endpoint and the catalogue into
    // SQLite, through the real engine: the columns SQLite fills with dates and
    // times are then known from the data, not from their names.
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    backfill(&engine, "2026-03-10", "2026-03-14", &[]).await;
    let latest = engine.latest().to_string();
    backfill(
        &engine,
        &latest,
        &latest,
        &[wxcube::endpoint::Endpoint::Freepublish],
    )
    .await;
    let pool = engine.store.sqlite_pool().expect("a SQLite store").clone();
    let lite = sqlite_schema(&pool).await;
    let mut problems = Vec::new();
    let mut observed = BTreeMap::<&'static str, usize>::new();
    for (name, object) in lite.objects.iter().filter(|(_, o)| o.kind == Kind::Table) {
        for column in object.columns.iter().filter(|c| c.ty == "TEXT") {
            let values: Vec<(String,)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT DISTINCT \"{0}\" FROM \"{name}\" WHERE \"{0}\" IS NOT NULL",
                column.name
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            if values.is_empty() {
                continue;
            }
            let is_date =
                |v: &str| v.len() == 10 && NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok();
            let is_time = |v: &str| v.ends_with('Z') && DateTime::parse_from_rfc3339(v).is_ok();
            let held = if values.iter().all(|(v,)| is_date(v)) {
                "date"
            } else if values.iter().all(|(v,)| is_time(v)) {
                "timestamptz"
            } else {
                "text"
            };
            *observed.entry(held).or_default() += 1;
            let rule = postgres_type_for(&column.name, "TEXT").unwrap();
            if held != rule {
                problems.push(format!(
                    "{name}.{}: SQLite holds {held} values ({:?}...), the rule gives {rule}",
                    column.name,
                    values.first()
                ));
            }
        }
    }
    engine.store.close().await;
    // Dates and times were seen at all (a guard against an empty backfill).
    assert!(
        observed.get("date").copied().unwrap_or(0) >= 10
            && observed.get("timestamptz").copied().unwrap_or(0) >= 3,
        "{observed:?}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn postgres_gives_the_rows_sqlite_gives_after_a_simulated_backfill_copied_over() {
    let Some(pg) = TestPostgres::new().await else {
        return;
    };
    let env = TestEnv::new().await;
    let engine = env.engine(&[]).await;
    backfill(&engine, "2026-03-10", "2026-03-14", &[]).await;
    let latest = engine.latest().to_string();
    backfill(
        &engine,
        &latest,
        &latest,
        &[wxcube::endpoint::Endpoint::Freepublish],
    )
    .await;
    let lite_pool = engine.store.sqlite_pool().expect("a SQLite store").clone();
    let pg_pool = pg.migrated_pool().await;
    copy_sqlite_to_postgres(&lite_pool, &pg_pool).await;
    let (problems, counts) = compare_contents(&lite_pool, &pg_pool).await;
    engine.store.close().await;
    pg_pool.close().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The views that read the backfilled tables are not empty.
    for view in [
        "v_reads_by_channel",
        "v_article_latest_totals",
        "v_article_latest_detail",
        "v_followers",
        "v_article_catalogue",
    ] {
        assert!(counts[view] > 0, "{view} is empty: {counts:?}");
    }
}
