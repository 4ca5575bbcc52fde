//! The two databases: connecting to each, and the two macros that let one
//! piece of query code run on either (`on_pool!`, `on_conn!`). The query
//! text is shared (`$1` placeholders, standard SQL); only the pool and the
//! connection types differ, and the macros compile the same code once per
//! database.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{ConnectOptions as _, Connection as _, Postgres, Sqlite};

use super::tables::ALL_TABLES;
use super::{DatabaseTarget, MIGRATOR, PG_MIGRATOR};

/// Which database a store writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// A pool of either database.
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the pool, whichever database it is.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::db::Db::Sqlite($pool) => $body,
            $crate::store::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// One connection of either database, taken from the pool.
pub(crate) enum Conn {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

/// Runs `$body` with `$conn` bound to `&mut PoolConnection<_>`.
macro_rules! on_conn {
    ($c:expr, $conn:ident => $body:expr) => {
        match $c {
            $crate::store::db::Conn::Sqlite($conn) => $body,
            $crate::store::db::Conn::Postgres($conn) => $body,
        }
    };
}
pub(crate) use on_conn;

impl Conn {
    /// Runs a statement without parameters (transaction control).
    pub(crate) async fn run(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
        on_conn!(self, conn => sqlx::raw_sql(sql).execute(&mut **conn).await.map(drop))
    }

    /// Closes the connection instead of giving it back to the pool: after a
    /// failed write its transaction state is unknown. When SQLite rolls a
    /// transaction back by itself (disk full, I/O error), a later BEGIN would
    /// fail, or worse, nest inside a transaction that never commits.
    pub(crate) fn discard(mut self) {
        on_conn!(&mut self, conn => conn.close_on_drop());
    }
}

impl Db {
    /// Connects to `target`, applies the migrations, and returns the pool
    /// and the location to name in messages (never with a password).
    pub(crate) async fn connect(target: &DatabaseTarget) -> anyhow::Result<(Db, String)> {
        if is_postgres_url(&target.database) {
            connect_postgres(target).await
        } else {
            connect_sqlite(&target.database).await
        }
    }

    pub(crate) fn kind(&self) -> DatabaseKind {
        match self {
            Db::Sqlite(_) => DatabaseKind::Sqlite,
            Db::Postgres(_) => DatabaseKind::Postgres,
        }
    }

    /// A connection for a write.
    pub(crate) async fn acquire(&self) -> anyhow::Result<Conn> {
        let conn = match self {
            Db::Sqlite(pool) => pool.acquire().await.map(Conn::Sqlite),
            Db::Postgres(pool) => pool.acquire().await.map(Conn::Postgres),
        };
        conn.context("cannot get a database connection")
    }

    /// For PostgreSQL, the SQL type of every column of the contract's
    /// tables, as the migrations created them (`None` for SQLite, whose
    /// columns take any value). The upserts cast each parameter to it.
    pub(crate) async fn column_casts(
        &self,
    ) -> anyhow::Result<Option<HashMap<(&'static str, String), String>>> {
        let Db::Postgres(pool) = self else {
            return Ok(None);
        };
        let columns: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text, data_type::text
             FROM information_schema.columns WHERE table_schema = current_schema()",
        )
        .fetch_all(pool)
        .await
        .context("cannot read the column types")?;
        let mut casts = HashMap::new();
        for (table, column, data_type) in columns {
            if let Some(def) = ALL_TABLES.iter().find(|t| t.name == table) {
                let cast = match data_type.as_str() {
                    "timestamp with time zone" => "timestamptz".to_owned(),
                    other => other.to_owned(),
                };
                casts.insert((def.name, column), cast);
            }
        }
        Ok(Some(casts))
    }
}

/// `postgres://` and `postgresql://` select PostgreSQL; anything else is SQLite.
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

async fn connect_sqlite(database: &str) -> anyhow::Result<(Db, String)> {
    let options = sqlite_options(database)?;
    let path = options.get_filename().to_path_buf();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        anyhow::bail!(
            "cannot open database {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    // One connection: SQLite has one writer anyway, and a single connection
    // makes every transaction strictly serial.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(options)
        .await
        .with_context(|| format!("cannot open database {}", path.display()))?;
    MIGRATOR
        .run(&pool)
        .await
        .with_context(|| format!("cannot apply migrations to {}", path.display()))?;
    Ok((Db::Sqlite(pool), path.display().to_string()))
}

fn sqlite_options(database: &str) -> anyhow::Result<SqliteConnectOptions> {
    let options = if database.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(database)
            .with_context(|| format!("bad database URL {database:?}"))?
    } else {
        SqliteConnectOptions::new().filename(database)
    };
    Ok(options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(30))
        // Room for every batch shape of every table (tables x 7) and the rest.
        .statement_cache_capacity(ALL_TABLES.len() * 8 + 32))
}

/// The lock file beside a SQLite database; `None` for PostgreSQL.
pub(crate) fn sqlite_lock_path(database: &str) -> anyhow::Result<Option<PathBuf>> {
    if is_postgres_url(database) {
        return Ok(None);
    }
    let options = sqlite_options(database)?;
    let mut name = options.get_filename().as_os_str().to_owned();
    name.push(".lock");
    Ok(Some(PathBuf::from(name)))
}

/// The PostgreSQL options of `target`: the URL (whose `sslmode` applies,
/// with rustls), the password from the URL, `PGPASSWORD`, `~/.pgpass` or
/// `database_password_file`, and an application name that tells other
/// wxcube processes (and `pg_stat_activity`) who holds an account.
pub(crate) fn pg_options(target: &DatabaseTarget) -> anyhow::Result<PgConnectOptions> {
    // The URL may hold a password: the message names the redacted URL only,
    // and not the parser's error, which could quote it.
    let mut options = PgConnectOptions::from_str(&target.database).map_err(|_| {
        anyhow::anyhow!(
            "bad database URL {}: expected postgres://user@host:port/dbname",
            redact_url(&target.database)
        )
    })?;
    if let Some(password) = &target.password {
        options = options.password(password.expose_secret());
    }
    Ok(options
        .application_name(&holder_name())
        // Room for every upsert shape of every table (tables x 7) and the
        // rest: an evicted statement with 2,000 parameters costs a new
        // parse and plan on the server.
        .statement_cache_capacity(ALL_TABLES.len() * 8 + 32))
}

async fn connect_postgres(target: &DatabaseTarget) -> anyhow::Result<(Db, String)> {
    let options = pg_options(target)?;
    let location = pg_location(&options);
    // One connection first: the pool retries a refused connection until its
    // acquire timeout and then says only "timed out"; this fails at once
    // with the server's (or the socket's) own reason.
    let probe = options
        .connect()
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {location}: {}", pg_error(&e)))?;
    let _ = probe.close().await;
    let pool = PgPoolOptions::new()
        // The writer, planning's reads, the catalogue and status: a few
        // connections; account locks keep connections of their own.
        .max_connections(4)
        .after_connect(|_, _| {
            Box::pin(async {
                disable_nagle();
                Ok(())
            })
        })
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {location}: {}", pg_error(&e)))?;
    // sqlx's migrator holds an advisory lock while it runs, so processes
    // starting together apply each migration once.
    PG_MIGRATOR
        .run(&pool)
        .await
        .with_context(|| format!("cannot apply migrations to {location}"))?;
    Ok((Db::Postgres(pool), location))
}

/// Sets `TCP_NODELAY` on every TCP socket of this process.
///
/// sqlx 0.9.0 stopped setting it on its connections (transact-rs/sqlx
/// issue 4335, fixed after that release), and without it Nagle's algorithm
/// holds a statement's last packet until the server's delayed ACK: up to
/// 40 ms per round trip, which made a full backfill into PostgreSQL take
/// ten times as long as into SQLite. sqlx does not hand out its socket, so
/// this walks `/proc/self/fd` after each connect. Setting the option on any
/// other TCP socket of ours (HTTP connections, which reqwest already sets
/// it on) changes nothing but latency.
pub(crate) fn disable_nagle() {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    for entry in fds.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::c_int>().ok())
        else {
            continue;
        };
        let is_socket = std::fs::read_link(entry.path())
            .map(|target| target.to_string_lossy().starts_with("socket:"))
            .unwrap_or(false);
        if is_socket {
            set_nodelay_if_tcp(fd);
        }
    }
}

fn set_nodelay_if_tcp(fd: libc::c_int) {
    let mut kind: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` is an open descriptor of this process (it may close in
    // between: the calls then fail with EBADF, which is ignored); `kind`
    // and `len` are valid for writes of the sizes given.
    let stream = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut libc::c_int).cast(),
            &mut len,
        ) == 0
    } && kind == libc::SOCK_STREAM;
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut address_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: as above; `address` is a zeroed sockaddr_storage of the size given.
    let inet = stream
        && unsafe {
            libc::getsockname(
                fd,
                (&mut address as *mut libc::sockaddr_storage).cast(),
                &mut address_len,
            ) == 0
        }
        && matches!(
            libc::c_int::from(address.ss_family),
            libc::AF_INET | libc::AF_INET6
        );
    if inet {
        let on: libc::c_int = 1;
        // SAFETY: `on` is a valid c_int for the size given; failure is harmless.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// A connection error without anything the server or URL could echo.
pub(crate) fn pg_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(tls) => format!("TLS: {tls}"),
        sqlx::Error::PoolTimedOut => "timed out".to_owned(),
        other => other.to_string(),
    }
}

/// `postgres://user@host:port/dbname`, never with the password.
pub(crate) fn pg_location(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

/// The URL with any password replaced by `***`, for messages about a URL
/// that could not be parsed.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// `wxcube HOST pid PID`: how this process names itself to the server.
pub(crate) fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned());
    format!("wxcube {host} pid {}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_urls_keep_everything_but_the_password() {
        assert_eq!(
            redact_url("postgres://ana:s3cr%40t@db.example:5432/wx?sslmode=require"),
            "postgres://ana:***@db.example:5432/wx?sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://ana@db/wx"),
            "postgresql://ana@db/wx"
        );
        assert_eq!(redact_url("postgres://db/wx"), "postgres://db/wx");
    }

    #[test]
    fn a_bad_url_is_named_without_its_password() {
        let target = DatabaseTarget {
            database: "postgres://ana:hunter2@db:notaport/wx".to_owned(),
            password: None,
        };
        let message = pg_options(&target).unwrap_err().to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("postgres://ana:***@db:notaport/wx"),
            "{message}"
        );
    }

    #[test]
    fn the_location_never_holds_the_password() {
        let target = DatabaseTarget {
            database: "postgres://ana:hunter2@db.example:6543/wx".to_owned(),
            password: None,
        };
        let options = pg_options(&target).unwrap();
        assert_eq!(pg_location(&options), "postgres://ana@db.example:6543/wx");
    }
}
