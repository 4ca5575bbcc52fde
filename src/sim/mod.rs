//! The built-in simulator of the WeChat API: access tokens (classic and
//! stable), the ten datacube endpoints with the real validation and errcodes,
//! deterministic data (`data`), the oracle of what wxcube must store
//! (`truth`), and fault injection (`FaultSpec`). Used by `wxcube simulate`,
//! `wxcube demo` and the tests. `followers` generates the follower series
//! (getusersummary, getusercumulate) and `catalogue` the published list
//! served at `POST /cgi-bin/freepublish/batchget` (SPEC section 8).
//!
//! Admin routes for tests that run it as a separate process:
//! `GET /_sim/stats` and `POST /_sim/faults` (body: a fault spec).
//!
//! Many accounts (SPEC section 10): any number of appids, each with its own
//! data (`data` seeds every series by appid), tokens and quota counts;
//! `POST /cgi-bin/openapi/quota/get` reports each account's daily limit and
//! rate limit, both enforced (45009, 45011); faults can aim at one account
//! (`faults.rs`); `wxcube sim-token` is a token program that asks the
//! simulator (`token_program`).

pub mod catalogue;
pub mod data;
mod faults;
pub mod followers;
pub mod token_program;
pub mod truth;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_followers;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::{CHINA, Clock, parse_date};
use crate::endpoint::{Endpoint, Family};

pub use faults::{DEFAULT_QUOTA_LIMIT, FAULT_NAMES, FaultSpec};

/// How the simulator behaves.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// If Some, the token routes answer 40125 on a mismatch; else any
    /// non-empty secret works.
    pub secret: Option<String>,
    /// Faults to inject into datacube answers.
    pub faults: FaultSpec,
    /// "Today" in China comes from here; tests pin it.
    pub clock: Clock,
    /// `expires_in` of issued tokens.
    pub token_ttl_secs: u64,
    /// How long a token stays valid after a classic `/cgi-bin/token` call (or
    /// a stable `force_refresh`) replaced it.
    pub classic_grace_secs: u64,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            secret: None,
            faults: FaultSpec::default(),
            clock: Clock::system(),
            token_ttl_secs: 7200,
            classic_grace_secs: 300,
        }
    }
}

/// One datacube request as the simulator saw it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RequestRecord {
    /// The token's appid ("" when the token was missing or unknown).
    pub appid: String,
    /// The name in the path (also unknown names).
    pub endpoint: String,
    /// As sent ("" when absent).
    pub begin_date: String,
    /// As sent ("" when absent).
    pub end_date: String,
    /// 0 = success (also for `slow`, `delay`, `outside_rows`); the errcode
    /// answered; for faults without one: the HTTP status for `http5xx`, -2
    /// for `drop`, -3 for `malformed`.
    pub errcode: i64,
    /// The injected fault, if any: busy, http5xx, slow, drop, malformed,
    /// quota_minute, daily_quota, token_expire, outside_rows, delay,
    /// not_ready, offline_legacy, missing_yesterday.
    pub fault: Option<String>,
}

#[derive(Default)]
struct StatsInner {
    log: Vec<RequestRecord>,
    token_requests: usize,
    force_refreshes: usize,
    issued: Vec<String>,
    /// Datacube requests being answered, per appid.
    in_flight: HashMap<String, usize>,
    /// The most distinct appids ever answered at the same time.
    max_accounts_in_flight: usize,
    /// `/cgi-bin/openapi/quota/get` calls.
    quota_lookups: usize,
    /// Token requests per appid.
    token_requests_by_appid: HashMap<String, usize>,
}

/// What the simulator was asked; thread-safe.
#[derive(Default)]
pub struct SimStats {
    inner: Mutex<StatsInner>,
}

impl SimStats {
    fn lock(&self) -> MutexGuard<'_, StatsInner> {
        // A panicking test thread must not hide the counts from the others.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All POSTs to `/datacube/*`.
    pub fn datacube_requests(&self) -> usize {
        let s = self.lock();
        s.log.iter().filter(|r| r.endpoint != FREEPUBLISH).count()
    }

    /// POSTs to one endpoint.
    pub fn requests_for(&self, endpoint: Endpoint) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|r| r.endpoint == endpoint.name())
            .count()
    }

    /// Every datacube (and freepublish) request in arrival order.
    pub fn log(&self) -> Vec<RequestRecord> {
        self.lock().log.clone()
    }

    /// `/cgi-bin/token` + `/cgi-bin/stable_token` calls (errors included).
    pub fn token_requests(&self) -> usize {
        self.lock().token_requests
    }

    /// stable_token calls with `force_refresh: true`.
    pub fn force_refreshes(&self) -> usize {
        self.lock().force_refreshes
    }

    /// The most distinct accounts whose datacube requests were in flight at
    /// once (since the start or `reset`).
    pub fn max_accounts_in_flight(&self) -> usize {
        self.lock().max_accounts_in_flight
    }

    /// Quota look-ups (`/cgi-bin/openapi/quota/get`).
    pub fn quota_lookups(&self) -> usize {
        self.lock().quota_lookups
    }

    /// Token requests of one appid.
    pub fn token_requests_of(&self, appid: &str) -> usize {
        self.lock()
            .token_requests_by_appid
            .get(appid)
            .copied()
            .unwrap_or(0)
    }

    fn count_token_request(&self, appid: Option<&str>) {
        let mut s = self.lock();
        s.token_requests += 1;
        if let Some(appid) = appid {
            *s.token_requests_by_appid
                .entry(appid.to_string())
                .or_default() += 1;
        }
    }

    /// A datacube request of `appid` starts (true) or ends being answered.
    fn in_flight(&self, appid: &str, starts: bool) {
        let mut s = self.lock();
        let n = s.in_flight.entry(appid.to_string()).or_default();
        if starts {
            *n += 1;
        } else {
            *n = n.saturating_sub(1);
        }
        if *n == 0 {
            s.in_flight.remove(appid);
        }
        s.max_accounts_in_flight = s.max_accounts_in_flight.max(s.in_flight.len());
    }

    /// Every token ever issued (kept across `reset`, so tests can scan
    /// outputs for any of them).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    /// Clears the log and the counters (not the issued tokens, nor the
    /// simulator's daily-quota counts).
    pub fn reset(&self) {
        let mut s = self.lock();
        s.log.clear();
        s.token_requests = 0;
        s.force_refreshes = 0;
        s.max_accounts_in_flight = 0;
        s.quota_lookups = 0;
        s.token_requests_by_appid.clear();
    }

    /// The JSON answered by `GET /_sim/stats`.
    pub fn snapshot(&self) -> Value {
        let s = self.lock();
        let mut per_endpoint = serde_json::Map::new();
        for e in Endpoint::ALL {
            let n = s.log.iter().filter(|r| r.endpoint == e.name()).count();
            per_endpoint.insert(e.name().to_string(), json!(n));
        }
        json!({
            "datacube_requests": s.log.iter().filter(|r| r.endpoint != FREEPUBLISH).count(),
            "per_endpoint": per_endpoint,
            "token_requests": s.token_requests,
            "force_refreshes": s.force_refreshes,
            "max_accounts_in_flight": s.max_accounts_in_flight,
            "quota_lookups": s.quota_lookups,
            "issued_tokens": s.issued,
            "log": s.log,
        })
    }
}

struct TokenInfo {
    appid: String,
    expires_at: Instant,
    /// Set when a newer token replaced this one: invalid (40001) from then on.
    revoke_at: Option<Instant>,
    /// Expired by a fault or `expire_all_tokens` (42001).
    killed: bool,
}

enum TokenState {
    Valid,
    Revoked,
    Expired,
}

impl TokenInfo {
    fn state(&self, now: Instant) -> TokenState {
        if self.revoke_at.is_some_and(|r| now >= r) {
            TokenState::Revoked
        } else if self.killed || now >= self.expires_at {
            TokenState::Expired
        } else {
            TokenState::Valid
        }
    }
}

#[derive(Default)]
struct TokenBook {
    tokens: HashMap<String, TokenInfo>,
    stable: HashMap<String, String>,
    classic: HashMap<String, String>,
}

/// State shared by the handlers and the `Simulator` handle.
struct Shared {
    secret: Option<String>,
    clock: Clock,
    token_ttl: Duration,
    grace: Duration,
    faults: Mutex<FaultSpec>,
    rng: Mutex<StdRng>,
    tokens: Mutex<TokenBook>,
    /// Requests per (appid, endpoint, China day) that reached the fault stage.
    quota: Mutex<HashMap<(String, Endpoint, NaiveDate), u64>>,
    /// freepublish/batchget calls per (appid, China day).
    catalogue_calls: Mutex<HashMap<(String, NaiveDate), u64>>,
    /// Arrival times of the last requests per (appid, endpoint), for `rate_limit`.
    rates: Mutex<HashMap<(String, Endpoint), VecDeque<Instant>>>,
    /// Tokens revoked so far by the `revoke_token` fault.
    revoked: Mutex<u64>,
    /// State of the `missing_yesterday` fault.
    missing_yesterday: followers::MissingYesterday,
    stats: Arc<SimStats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(opts: SimOptions) -> Shared {
        Shared {
            secret: opts.secret,
            clock: opts.clock,
            token_ttl: Duration::from_secs(opts.token_ttl_secs),
            grace: Duration::from_secs(opts.classic_grace_secs),
            rng: Mutex::new(StdRng::seed_from_u64(opts.faults.seed)),
            faults: Mutex::new(opts.faults),
            tokens: Mutex::new(TokenBook::default()),
            quota: Mutex::new(HashMap::new()),
            catalogue_calls: Mutex::new(HashMap::new()),
            rates: Mutex::new(HashMap::new()),
            revoked: Mutex::new(0),
            missing_yesterday: followers::MissingYesterday::default(),
            stats: Arc::new(SimStats::default()),
        }
    }

    fn set_faults(&self, faults: FaultSpec) {
        *lock(&self.rng) = StdRng::seed_from_u64(faults.seed);
        *lock(&self.faults) = faults;
    }

    /// A new random token for `appid`: 96 alphanumerics from the OS-seeded
    /// thread RNG, so tests can grep any output for it without false hits.
    fn issue(&self, book: &mut TokenBook, appid: &str) -> String {
        let token: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(96)
            .map(char::from)
            .collect();
        book.tokens.insert(
            token.clone(),
            TokenInfo {
                appid: appid.to_string(),
                expires_at: Instant::now() + self.token_ttl,
                revoke_at: None,
                killed: false,
            },
        );
        self.stats.lock().issued.push(token.clone());
        token
    }

    fn revoke_later(&self, book: &mut TokenBook, token: &str) {
        let at = Instant::now() + self.grace;
        if let Some(info) = book.tokens.get_mut(token) {
            info.revoke_at = Some(info.revoke_at.map_or(at, |r| r.min(at)));
        }
    }

    /// Checks appid and secret of a token request: Err((errcode, errmsg)).
    fn check_credentials(
        &self,
        grant_type: Option<&str>,
        appid: Option<&str>,
        secret: Option<&str>,
    ) -> Result<String, (i64, &'static str)> {
        if grant_type != Some("client_credential") {
            return Err((40002, "invalid grant_type"));
        }
        let appid = appid.map(str::trim).filter(|a| !a.is_empty());
        let Some(appid) = appid else {
            return Err((41002, "appid missing"));
        };
        let secret = secret.filter(|s| !s.is_empty());
        let Some(secret) = secret else {
            return Err((41004, "appsecret missing"));
        };
        if self
            .secret
            .as_deref()
            .is_some_and(|pinned| pinned != secret)
        {
            return Err((40125, "invalid appsecret"));
        }
        if lock(&self.faults).token_fail.iter().any(|a| a == appid) {
            return Err((40013, "invalid appid"));
        }
        Ok(appid.to_string())
    }

    fn roll(&self, rate: f64) -> bool {
        rate > 0.0 && lock(&self.rng).random::<f64>() < rate
    }
}

fn errbody(code: i64, msg: impl Into<String>) -> Response {
    let msg: String = msg.into();
    Json(json!({ "errcode": code, "errmsg": msg })).into_response()
}

fn token_body(token: &str, expires_in: u64) -> Response {
    Json(json!({ "access_token": token, "expires_in": expires_in })).into_response()
}

async fn classic_token(
    State(st): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    st.stats
        .count_token_request(q.get("appid").map(String::as_str));
    let appid = match st.check_credentials(
        q.get("grant_type").map(String::as_str),
        q.get("appid").map(String::as_str),
        q.get("secret").map(String::as_str),
    ) {
        Ok(a) => a,
        Err((code, msg)) => {
            tracing::debug!(errcode = code, "sim: token request refused");
            return errbody(code, msg);
        }
    };
    let mut book = lock(&st.tokens);
    // A classic call rotates the classic token: the previous one dies after the grace period.
    if let Some(old) = book.classic.get(&appid).cloned() {
        st.revoke_later(&mut book, &old);
    }
    let token = st.issue(&mut book, &appid);
    book.classic.insert(appid.clone(), token.clone());
    tracing::debug!(appid = %appid, "sim: classic token issued");
    token_body(&token, st.token_ttl.as_secs())
}

async fn stable_token(State(st): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = serde_json::from_slice::<Value>(&body).ok();
    let field = |k: &str| req.as_ref()?.get(k).and_then(Value::as_str);
    st.stats.count_token_request(field("appid"));
    let Some(req) = &req else {
        return errbody(47001, "data format error");
    };
    let force = match req.get("force_refresh") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    if force {
        st.stats.lock().force_refreshes += 1;
    }
    let appid = match st.check_credentials(field("grant_type"), field("appid"), field("secret")) {
        Ok(a) => a,
        Err((code, msg)) => {
            tracing::debug!(errcode = code, "sim: stable_token request refused");
            return errbody(code, msg);
        }
    };
    let stale_ok = lock(&st.faults).stale_stable;
    let now = Instant::now();
    let mut book = lock(&st.tokens);
    if let Some(current) = book.stable.get(&appid).cloned() {
        let info = &book.tokens[&current];
        let reusable = match info.state(now) {
            TokenState::Valid => true,
            // With stale_stable, a killed token is handed out again until
            // force_refresh, as when WeChat's cache disagrees with its checks.
            TokenState::Expired => stale_ok && info.killed && now < info.expires_at,
            _ => false,
        };
        if reusable && !force {
            let left = info
                .expires_at
                .saturating_duration_since(now)
                .as_secs()
                .max(1);
            tracing::debug!(appid = %appid, "sim: stable token reused");
            return token_body(&current, left);
        }
        if force {
            st.revoke_later(&mut book, &current);
        }
    }
    let token = st.issue(&mut book, &appid);
    book.stable.insert(appid.clone(), token.clone());
    tracing::debug!(appid = %appid, force, "sim: stable token issued");
    token_body(&token, st.token_ttl.as_secs())
}

/// What a datacube request is answered with.
enum Outcome {
    Error(i64, String),
    Http5xx(StatusCode),
    Drop(Value),
    Malformed(Value),
    Success(Value),
}

/// A strict `YYYY-MM-DD` (chrono alone would accept `2026-1-5`).
fn strict_date(text: &str) -> Option<NaiveDate> {
    (text.len() == 10).then(|| parse_date(text).ok()).flatten()
}

async fn datacube(
    State(st): State<Arc<Shared>>,
    method: Method,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return errbody(43002, "require POST method");
    }
    let faults = lock(&st.faults).clone();
    let req: Option<Value> = serde_json::from_slice(&body).ok();
    let date_field = |k: &str| {
        req.as_ref()
            .and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let mut rec = RequestRecord {
        appid: String::new(),
        endpoint: name.clone(),
        begin_date: date_field("begin_date").unwrap_or_default(),
        end_date: date_field("end_date").unwrap_or_default(),
        errcode: 0,
        fault: None,
    };
    let mut extra_delay = 0;
    let outcome = decide(&st, &faults, &q, req.is_some(), &mut rec, &mut extra_delay);
    rec.errcode = match &outcome {
        Outcome::Error(code, _) => *code,
        Outcome::Http5xx(status) => i64::from(status.as_u16()),
        Outcome::Drop(_) => -2,
        Outcome::Malformed(_) => -3,
        Outcome::Success(_) => 0,
    };
    tracing::debug!(
        appid = %rec.appid,
        endpoint = %rec.endpoint,
        begin_date = %rec.begin_date,
        end_date = %rec.end_date,
        errcode = rec.errcode,
        fault = rec.fault.as_deref().unwrap_or(""),
        "sim: datacube request"
    );
    let appid = rec.appid.clone();
    st.stats.lock().log.push(rec);
    let wait = faults.latency_ms + extra_delay;
    if !appid.is_empty() {
        st.stats.in_flight(&appid, true);
    }
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    // Yield once even without latency, so that concurrent requests overlap
    // here as they would on a real server.
    tokio::task::yield_now().await;
    if !appid.is_empty() {
        st.stats.in_flight(&appid, false);
    }
    render(outcome)
}

fn render(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Error(code, msg) => errbody(code, msg),
        Outcome::Success(v) => Json(v).into_response(),
        Outcome::Http5xx(status) => (
            status,
            [(header::CONTENT_TYPE, "text/html")],
            format!(
                "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center></body></html>"
            ),
        )
            .into_response(),
        Outcome::Malformed(v) => {
            let text = v.to_string();
            let cut = text.char_indices().nth(text.chars().count() / 2).map_or(0, |(i, _)| i);
            (
                [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
                text[..cut].to_string(),
            )
                .into_response()
        }
        Outcome::Drop(v) => {
            // Promise more bytes than are sent: the stream body (of unknown
            // length) ends early, hyper aborts the connection and the client
            // sees an incomplete message.
            let text = v.to_string();
            let partial = Bytes::from(text.as_bytes()[..text.len() / 3].to_vec());
            let promised = text.len() + 1024;
            let body = Body::from_stream(Body::from(partial).into_data_stream());
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::CONTENT_LENGTH, promised)
                .body(body)
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// Token check, validation, then faults, in the real API's order; fills the
/// record's appid and fault.
fn decide(
    st: &Shared,
    faults: &FaultSpec,
    q: &HashMap<String, String>,
    body_is_json: bool,
    rec: &mut RequestRecord,
    extra_delay: &mut u64,
) -> Outcome {
    let err = |code: i64, msg: &str| Outcome::Error(code, msg.to_string());
    // The catalogue has its own route (`/cgi-bin/freepublish/batchget`).
    let Some(endpoint) = Endpoint::from_name(&rec.endpoint).filter(|e| e.is_dated()) else {
        return err(40066, "invalid url: no such api (404)");
    };
    let token = match check_token(st, q, rec) {
        Ok(t) => t,
        Err(e) => return e,
    };
    {
        let mut revoked = lock(&st.revoked);
        if *revoked < faults.revoke_token {
            *revoked += 1;
            if let Some(info) = lock(&st.tokens).tokens.get_mut(&token) {
                info.revoke_at = Some(Instant::now());
            }
            rec.fault = Some("revoke_token".to_string());
            return err(
                40001,
                "invalid credential, access_token is invalid or not latest",
            );
        }
    }
    if !body_is_json {
        return err(47001, "data format error");
    }
    let (Some(begin), Some(end)) = (strict_date(&rec.begin_date), strict_date(&rec.end_date))
    else {
        return err(61500, "date format error");
    };
    let today = st.clock.today(CHINA);
    let span = i64::from(endpoint.max_span_days());
    if begin > end {
        return err(61501, "date range error: begin_date is after end_date");
    }
    if (end - begin).num_days() > span - 1 {
        return err(
            61501,
            &format!("date range error: the span of {endpoint} is at most {span} days"),
        );
    }
    if end >= today {
        return err(61501, "date range error: end_date must be before today");
    }
    if begin < endpoint.first_date() {
        return err(
            61501,
            &format!("date range error: no data before {}", endpoint.first_date()),
        );
    }

    // Faults, in a fixed order; the first that fires answers.
    // Delays and "not ready" exist only where the endpoint reports `is_delay`.
    let current = endpoint.reports_delay();
    let mut fault = |name: &str| rec.fault = Some(name.to_string());
    if faults.offline_legacy && endpoint.family() == Family::Legacy {
        fault("offline_legacy");
        return err(47009, "this api is offline, please use the new api");
    }
    if faults
        .unauthorised
        .iter()
        .any(|(a, e)| *a == rec.appid && *e == endpoint)
    {
        fault("unauthorised");
        return err(61007, "api is unauthorized to component");
    }
    if let Some((count, seconds)) = faults.rate_limit {
        let mut rates = lock(&st.rates);
        let window = rates.entry((rec.appid.clone(), endpoint)).or_default();
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(seconds))
        {
            window.pop_front();
        }
        if window.len() as u64 >= count {
            fault("rate_limit");
            return err(
                45011,
                "api minute-quota reach limit  mustslower  retry next minute",
            );
        }
        window.push_back(now);
    }
    {
        let mut quota = lock(&st.quota);
        let used = quota
            .entry((rec.appid.clone(), endpoint, today))
            .or_insert(0);
        let limited = faults.daily_quota_after.filter(|_| {
            faults
                .daily_quota_endpoint
                .is_none_or(|only| only == endpoint)
                && faults
                    .daily_quota_appid
                    .as_ref()
                    .is_none_or(|only| *only == rec.appid)
        });
        if limited.is_some_and(|n| *used >= n) || *used >= faults.quota_limit_of(&rec.appid) {
            fault("daily_quota");
            return err(45009, "reach max api daily quota limit");
        }
        *used += 1;
    }
    if st.roll(faults.token_expire) {
        if let Some(info) = lock(&st.tokens).tokens.get_mut(&token) {
            info.killed = true;
        }
        fault("token_expire");
        return err(42001, "access_token expired");
    }
    if st.roll(faults.quota_minute) {
        fault("quota_minute");
        return err(
            45011,
            "api minute-quota reach limit  mustslower  retry next minute",
        );
    }
    if st.roll(faults.busy) {
        fault("busy");
        return err(-1, "system error");
    }
    if current && st.roll(faults.not_ready) {
        fault("not_ready");
        return err(61503, "data not ready, please try later");
    }
    if st.roll(faults.http5xx) {
        fault("http5xx");
        let status = if lock(&st.rng).random::<bool>() {
            StatusCode::BAD_GATEWAY
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return Outcome::Http5xx(status);
    }
    let appid = rec.appid.clone();
    let body = || data::response(&appid, endpoint, begin, end, today);
    if st.roll(faults.drop) {
        fault("drop");
        return Outcome::Drop(body());
    }
    if st.roll(faults.malformed) {
        fault("malformed");
        return Outcome::Malformed(body());
    }
    if st.roll(faults.slow) {
        fault("slow");
        *extra_delay = faults.slow_ms;
        return Outcome::Success(body());
    }
    if current && st.roll(faults.delay) {
        fault("delay");
        let mut v = body();
        if let Some(list) = v.get_mut("list").and_then(Value::as_array_mut) {
            list.truncate(list.len() / 2);
        }
        v["is_delay"] = json!(true);
        return Outcome::Success(v);
    }
    if st.roll(faults.outside_rows) {
        fault("outside_rows");
        let mut v = body();
        let extra = outside_rows(&appid, endpoint, begin, today);
        if let Some(list) = v.get_mut("list").and_then(Value::as_array_mut) {
            list.extend(extra);
        }
        return Outcome::Success(v);
    }
    let mut v = body();
    if faults.missing_yesterday
        && followers::is_follower_endpoint(endpoint.name())
        && st
            .missing_yesterday
            .apply(&appid, endpoint.name(), today, &mut v)
    {
        fault("missing_yesterday");
    }
    Outcome::Success(v)
}

/// The token check of every authenticated route, in the real API's order:
/// missing (41001), unknown or replaced (40001), expired (42001); fills the
/// record's appid. Ok(the token).
fn check_token(
    st: &Shared,
    q: &HashMap<String, String>,
    rec: &mut RequestRecord,
) -> Result<String, Outcome> {
    let err = |code: i64, msg: &str| Outcome::Error(code, msg.to_string());
    let Some(token) = q.get("access_token").filter(|t| !t.is_empty()) else {
        return Err(err(41001, "access_token missing"));
    };
    {
        let book = lock(&st.tokens);
        let Some(info) = book.tokens.get(token) else {
            return Err(err(
                40001,
                "invalid credential, access_token is invalid or not latest",
            ));
        };
        rec.appid = info.appid.clone();
        match info.state(Instant::now()) {
            TokenState::Valid => {}
            TokenState::Expired => return Err(err(42001, "access_token expired")),
            TokenState::Revoked => {
                return Err(err(
                    40001,
                    "invalid credential, access_token is invalid or not latest",
                ));
            }
        }
        // Not part of the real request, but lets tests check that a client
        // never uses one account's token for another.
        if q.get("appid").is_some_and(|a| *a != info.appid) {
            return Err(err(
                40001,
                "invalid credential, access_token is not for this appid",
            ));
        }
    }
    Ok(token.clone())
}

/// Rows of the nearest earlier day that has any (the quiet days of the
/// article endpoints have none), to append where they do not belong. Their
/// counters are inflated, as after WeChat's outages, so that a client which
/// stored them would visibly corrupt days it already had.
fn outside_rows(appid: &str, endpoint: Endpoint, begin: NaiveDate, today: NaiveDate) -> Vec<Value> {
    for back in 1..=30 {
        let day = begin - chrono::Days::new(back);
        let mut v = data::response(appid, endpoint, day, day, today);
        if let Some(list) = v.get_mut("list").and_then(Value::as_array_mut)
            && !list.is_empty()
        {
            list.iter_mut().for_each(inflate_counters);
            return list.clone();
        }
    }
    Vec::new()
}

/// Adds 100000 to every counter (`*_user`, `*_count`, `*_cnt`) in `value`.
fn inflate_counters(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let counter =
                    key.ends_with("_user") || key.ends_with("_count") || key.ends_with("_cnt");
                match v.as_i64() {
                    Some(n) if counter => *v = json!(n + 100_000),
                    _ => inflate_counters(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(inflate_counters),
        _ => {}
    }
}

/// The endpoint name of freepublish/batchget calls in the request log.
pub const FREEPUBLISH: &str = "freepublish";

/// `POST /cgi-bin/freepublish/batchget`: token check, the 100-a-day quota
/// per appid (45009), then `catalogue::batchget`. Logged like the datacube
/// requests (endpoint "freepublish", no dates); faults do not apply.
async fn freepublish_batchget(
    State(st): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let mut rec = RequestRecord {
        appid: String::new(),
        endpoint: FREEPUBLISH.to_string(),
        begin_date: String::new(),
        end_date: String::new(),
        errcode: 0,
        fault: None,
    };
    let today = st.clock.today(CHINA);
    let outcome = check_token(&st, &q, &mut rec).and_then(|_| {
        let req: Value = serde_json::from_slice(&body)
            .map_err(|_| Outcome::Error(47001, "data format error".into()))?;
        {
            let mut calls = lock(&st.catalogue_calls);
            let used = calls.entry((rec.appid.clone(), today)).or_insert(0);
            // `daily_quota_endpoint=freepublish` lowers the quota, for tests.
            let faults = lock(&st.faults).clone();
            let limit = faults
                .daily_quota_after
                .filter(|_| faults.daily_quota_endpoint == Some(Endpoint::Freepublish))
                .unwrap_or(catalogue::DAILY_QUOTA);
            if *used >= limit {
                return Err(Outcome::Error(
                    45009,
                    "reach max api daily quota limit".into(),
                ));
            }
            *used += 1;
        }
        let arg = |k: &str| req.get(k).map_or(Some(0), Value::as_i64);
        let (Some(offset), Some(count)) = (arg("offset"), arg("count")) else {
            return Err(Outcome::Error(
                catalogue::INVALID_ARGS,
                "invalid args hint: offset and count must be integers".into(),
            ));
        };
        catalogue::batchget(&rec.appid, offset, count, today)
            .map_err(|(code, msg)| Outcome::Error(code, msg))
    });
    let outcome = outcome.map_or_else(|e| e, Outcome::Success);
    if let Outcome::Error(code, _) = &outcome {
        rec.errcode = *code;
    }
    tracing::debug!(appid = %rec.appid, errcode = rec.errcode, "sim: freepublish request");
    st.stats.lock().log.push(rec);
    render(outcome)
}

/// `POST /cgi-bin/openapi/quota/get` with `{"cgi_path": "/datacube/NAME"}`
/// (or `/cgi-bin/freepublish/batchget`): the account's daily limit, what it
/// used today (China time) and the rate limit, as WeChat answers it.
async fn quota_get(
    State(st): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    st.stats.lock().quota_lookups += 1;
    let mut rec = RequestRecord {
        appid: String::new(),
        endpoint: String::new(),
        begin_date: String::new(),
        end_date: String::new(),
        errcode: 0,
        fault: None,
    };
    if let Err(outcome) = check_token(&st, &q, &mut rec) {
        return render(outcome);
    }
    let faults = lock(&st.faults).clone();
    if faults.quota_unknown {
        return errbody(76022, "could not use this cgi_path, no permission");
    }
    let req: Option<Value> = serde_json::from_slice(&body).ok();
    let path = req
        .as_ref()
        .and_then(|r| r.get("cgi_path"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let today = st.clock.today(CHINA);
    let (daily_limit, used) = if path == "/cgi-bin/freepublish/batchget" {
        let used = lock(&st.catalogue_calls)
            .get(&(rec.appid.clone(), today))
            .copied()
            .unwrap_or(0);
        (catalogue::DAILY_QUOTA, used)
    } else {
        let endpoint = path
            .strip_prefix("/datacube/")
            .and_then(Endpoint::from_name)
            .filter(|e| e.is_dated());
        let Some(endpoint) = endpoint else {
            return errbody(76021, "cgi_path not found, please check");
        };
        let used = lock(&st.quota)
            .get(&(rec.appid.clone(), endpoint, today))
            .copied()
            .unwrap_or(0);
        (faults.quota_limit_of(&rec.appid), used)
    };
    // Without a configured rate limit, one no client of the tests comes near.
    let (call_count, refresh_second) = faults.rate_limit.unwrap_or((10_000, 60));
    Json(json!({
        "errcode": 0,
        "errmsg": "ok",
        "quota": {"daily_limit": daily_limit, "used": used, "remain": daily_limit.saturating_sub(used)},
        "rate_limit": {"call_count": call_count, "refresh_second": refresh_second},
    }))
    .into_response()
}

async fn admin_stats(State(st): State<Arc<Shared>>) -> Response {
    Json(st.stats.snapshot()).into_response()
}

async fn admin_faults(State(st): State<Arc<Shared>>, body: String) -> Response {
    match FaultSpec::parse(&body) {
        Ok(f) => {
            tracing::info!(faults = ?f, "sim: faults replaced");
            st.set_faults(f);
            Json(json!({"ok": true})).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ok": false, "error": e})),
        )
            .into_response(),
    }
}

fn router(st: Arc<Shared>) -> Router {
    Router::new()
        .route("/cgi-bin/token", get(classic_token))
        .route("/cgi-bin/stable_token", post(stable_token))
        .route("/datacube/{name}", any(datacube))
        .route("/cgi-bin/freepublish/batchget", post(freepublish_batchget))
        .route("/cgi-bin/openapi/quota/get", post(quota_get))
        .route("/_sim/stats", get(admin_stats))
        .route("/_sim/faults", post(admin_faults))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                Json(json!({"errcode": 40066, "errmsg": "invalid url"})),
            )
        })
        .with_state(st)
}

/// A running simulator (see `start`).
pub struct Simulator {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// What it was asked.
    pub stats: Arc<SimStats>,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free one) and serves in a background
    /// task; returns once listening.
    pub async fn start(listen: SocketAddr, opts: SimOptions) -> std::io::Result<Simulator> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(opts));
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Simulator {
            addr,
            stats: shared.stats.clone(),
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (loopback even when bound to 0.0.0.0).
    pub fn base_url(&self) -> String {
        let ip = if self.addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            self.addr.ip().to_string()
        };
        match self.addr {
            SocketAddr::V6(_) if !self.addr.ip().is_unspecified() => {
                format!("http://[{ip}]:{}", self.addr.port())
            }
            _ => format!("http://{ip}:{}", self.addr.port()),
        }
    }

    /// Replaces the faults (and re-seeds the fault RNG) at runtime.
    pub fn set_faults(&self, faults: FaultSpec) {
        self.shared.set_faults(faults);
    }

    /// Makes every token issued so far answer 42001 from now on.
    pub fn expire_all_tokens(&self) {
        for info in lock(&self.shared.tokens).tokens.values_mut() {
            info.killed = true;
        }
    }

    /// Graceful shutdown: stops accepting, lets requests in flight finish,
    /// waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "sim: server ended with an error"),
                Err(e) => tracing::warn!(error = %e, "sim: server task failed"),
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        // A test that forgets `stop` must not leave the server running.
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// For the `wxcube simulate` command: serve until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    opts: SimOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Arc::new(Shared::new(opts)));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
