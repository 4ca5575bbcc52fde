//! The datacube client: one call = one endpoint over one chunk of dates, with
//! local validation, bounded retries and errcode classification.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use rand::Rng;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::errors::{FetchError, FetchErrorKind, Verdict, classify_errcode, errcode_hint};
use super::quota::{EndpointQuota, QuotaPolicy, QuotaSeen};
use super::redact;
use super::token::{AccessToken, TokenManager};
use crate::clock::Clock;
use crate::endpoint::Endpoint;
use crate::json::as_int;

/// How transient failures are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries per call, 45011 waits included.
    pub max_attempts: u32,
    /// First backoff delay; doubles each try, capped at 30 s, with jitter.
    pub base_delay: Duration,
    /// Fixed wait after 45011; None waits until the next full minute.
    pub minute_quota_wait: Option<Duration>,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct FetchOk {
    /// The body exactly as received (stored in `raw_responses`).
    pub body: String,
    /// The parsed body.
    pub json: Value,
    /// Requests sent, the successful one included.
    pub attempts: u32,
}

/// One account's datacube client.
pub struct DatacubeClient {
    http: reqwest::Client,
    api_base: String,
    appid: String,
    tokens: Arc<TokenManager>,
    retry: RetryPolicy,
    clock: Clock,
    timezone: Tz,
    /// Endpoints not to call again in this run: daily quota spent (45009, until
    /// the China day changes) or offline (47009).
    stopped: Mutex<HashMap<Endpoint, Stopped>>,
    /// Quota planning, when on (`with_quota`).
    quota_policy: Option<QuotaPolicy>,
    /// Each endpoint's plan, looked up once before its first request.
    quotas: Mutex<HashMap<Endpoint, Arc<tokio::sync::OnceCell<Arc<EndpointQuota>>>>>,
}

impl DatacubeClient {
    /// A client for the account whose tokens `tokens` manages.
    pub fn new(
        http: reqwest::Client,
        api_base: &str,
        appid: &str,
        tokens: Arc<TokenManager>,
        retry: RetryPolicy,
        clock: Clock,
        timezone: Tz,
    ) -> DatacubeClient {
        DatacubeClient {
            http,
            api_base: api_base.trim_end_matches('/').to_string(),
            appid: appid.to_string(),
            tokens,
            retry,
            clock,
            timezone,
            stopped: Mutex::new(HashMap::new()),
            quota_policy: None,
            quotas: Mutex::new(HashMap::new()),
        }
    }

    /// Turns on quota planning and pacing (SPEC section 10): before an
    /// endpoint's first request, `/cgi-bin/openapi/quota/get`; then at most
    /// `remain - reserve` requests, paced within its `rate_limit`.
    pub fn with_quota(mut self, policy: QuotaPolicy) -> DatacubeClient {
        self.quota_policy = Some(policy);
        self
    }

    /// What the quota look-ups of this run saw, with the requests sent since.
    pub fn quota_seen(&self) -> Vec<QuotaSeen> {
        let quotas = self.quotas.lock().expect("quota map");
        let mut seen: Vec<QuotaSeen> = quotas
            .values()
            .filter_map(|cell| cell.get()?.seen())
            .collect();
        seen.sort_by_key(|s| s.endpoint);
        seen
    }

    /// The endpoint's plan: looked up by the first caller, shared by the rest.
    async fn quota(&self, endpoint: Endpoint) -> Option<Arc<EndpointQuota>> {
        let policy = self.quota_policy?;
        let cell = self
            .quotas
            .lock()
            .expect("quota map")
            .entry(endpoint)
            .or_default()
            .clone();
        let plan = cell
            .get_or_init(|| async {
                let seen = if policy.check {
                    self.lookup_quota(endpoint, policy).await
                } else {
                    None
                };
                Arc::new(EndpointQuota::new(seen))
            })
            .await;
        Some(plan.clone())
    }

    /// `POST /cgi-bin/openapi/quota/get` for `endpoint`; None when the answer
    /// is anything but a quota (76021, 76022, other errors): then 45009 is
    /// the only signal, as without planning.
    async fn lookup_quota(&self, endpoint: Endpoint, policy: QuotaPolicy) -> Option<QuotaSeen> {
        let cgi_path = if endpoint.is_dated() {
            format!("/datacube/{}", endpoint.name())
        } else {
            "/cgi-bin/freepublish/batchget".to_string()
        };
        let token = self.tokens.get().await.ok()?;
        let sent = self
            .http
            .post(format!("{}/cgi-bin/openapi/quota/get", self.api_base))
            .query(&[("access_token", token.expose())])
            .json(&json!({ "cgi_path": cgi_path }))
            .send()
            .await;
        let unknown = |why: String| {
            tracing::info!(appid = %self.appid, %endpoint, "quota look-up failed ({why}); falling back to reacting to 45009");
            None
        };
        let body: Value = match sent {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(v) => v,
                Err(_) => return unknown("the answer is not JSON".into()),
            },
            Ok(r) => return unknown(format!("HTTP {}", r.status().as_u16())),
            Err(e) => return unknown(describe(&e.without_url())),
        };
        let errcode = as_int(body.get("errcode")).unwrap_or(0);
        if errcode != 0 {
            return unknown(format!("errcode {errcode}: {}", errcode_hint(errcode)));
        }
        let number = |v: Option<&Value>| as_int(v).and_then(|n| u64::try_from(n).ok());
        let quota = body.get("quota");
        let (Some(daily_limit), Some(used), Some(remain)) = (
            number(quota.and_then(|q| q.get("daily_limit"))),
            number(quota.and_then(|q| q.get("used"))),
            number(quota.and_then(|q| q.get("remain"))),
        ) else {
            return unknown("the answer has no quota".into());
        };
        let rate = body.get("rate_limit");
        let call_count = number(rate.and_then(|r| r.get("call_count"))).filter(|n| *n > 0);
        let refresh_second = number(rate.and_then(|r| r.get("refresh_second"))).filter(|n| *n > 0);
        let reserve = policy.reserve.of(daily_limit);
        let budget = remain.saturating_sub(reserve);
        tracing::debug!(appid = %self.appid, %endpoint, daily_limit, used, remain, reserve, budget,
            call_count, refresh_second, "quota looked up");
        Some(QuotaSeen {
            endpoint,
            daily_limit,
            used,
            remain,
            reserve,
            budget,
            sent: 0,
            call_count,
            refresh_second,
            seen_at: self.clock.now(),
        })
    }

    /// The account this client calls for.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Checks a request locally, as WeChat would, so that no request is wasted.
    pub fn validate(
        &self,
        endpoint: Endpoint,
        begin: NaiveDate,
        end: NaiveDate,
    ) -> Result<(), FetchError> {
        let today = self.clock.today(self.timezone);
        let problem = if begin > end {
            Some("begin_date is after end_date".to_string())
        } else if (end - begin).num_days() >= i64::from(endpoint.max_span_days()) {
            Some(format!(
                "the range spans {} days but {endpoint} allows at most {}",
                (end - begin).num_days() + 1,
                endpoint.max_span_days()
            ))
        } else if end >= today {
            Some(format!(
                "end_date must be before today ({today} in {})",
                self.timezone
            ))
        } else if begin < endpoint.first_date() {
            Some(format!(
                "{endpoint} has no data before {}",
                endpoint.first_date()
            ))
        } else {
            None
        };
        match problem {
            Some(why) => Err(FetchError {
                kind: FetchErrorKind::Refused,
                errcode: None,
                message: format!("account {}, {endpoint} {begin}..{end}: {why}", self.appid),
                attempts: 0,
            }),
            None => Ok(()),
        }
    }

    /// Fetches `endpoint` for `begin..=end`, retrying as the errcode table says (docs/wechat-api.md).
    /// Returns `Cancelled` as soon as `cancel` fires (nothing is half done).
    pub async fn fetch(
        &self,
        endpoint: Endpoint,
        begin: NaiveDate,
        end: NaiveDate,
        cancel: &CancellationToken,
    ) -> Result<FetchOk, FetchError> {
        self.validate(endpoint, begin, end)?;
        let what = format!("account {}, {endpoint} {begin}..{end}", self.appid);
        let path = format!("/datacube/{}", endpoint.name());
        let body = json!({ "begin_date": begin.to_string(), "end_date": end.to_string() });
        self.call(endpoint, &path, &body, &what, cancel).await
    }

    /// Fetches one page of the published catalogue (`freepublish/batchget`),
    /// newest first, with the same retry and errcode rules as the datacube.
    pub async fn fetch_catalogue_page(
        &self,
        endpoint: Endpoint,
        offset: u32,
        count: u32,
        cancel: &CancellationToken,
    ) -> Result<FetchOk, FetchError> {
        let what = format!("account {}, {endpoint} offset {offset}", self.appid);
        let body = json!({ "offset": offset, "count": count, "no_content": 1 });
        self.call(
            endpoint,
            "/cgi-bin/freepublish/batchget",
            &body,
            &what,
            cancel,
        )
        .await
    }

    /// One POST of `body` to `path`, retried until success, a permanent
    /// answer, `max_attempts` or cancellation. `endpoint` keys the in-run
    /// stop after 45009 or 47009.
    async fn call(
        &self,
        endpoint: Endpoint,
        path: &str,
        body: &Value,
        what: &str,
        cancel: &CancellationToken,
    ) -> Result<FetchOk, FetchError> {
        let mut attempts = 0u32;
        let mut token_refreshed = false;
        let quota = match self.stopped_reason(endpoint) {
            // Nothing to plan for an endpoint that is not called anyway.
            Some(_) => None,
            None => self.quota(endpoint).await,
        };
        loop {
            if cancel.is_cancelled() {
                return Err(self.fail(
                    FetchErrorKind::Cancelled,
                    None,
                    what,
                    "shutting down",
                    attempts,
                ));
            }
            if let Some((errcode, why)) = self.stopped_reason(endpoint) {
                return Err(self.fail(FetchErrorKind::NotSent, Some(errcode), what, why, attempts));
            }
            if let Some(quota) = &quota {
                if !quota.take() {
                    let why = quota.spent_reason();
                    return Err(self.fail(FetchErrorKind::NotSent, None, what, &why, attempts));
                }
                tokio::select! {
                    _ = cancel.cancelled() => {
                        return Err(self.fail(FetchErrorKind::Cancelled, None, what, "shutting down", attempts));
                    }
                    _ = quota.pace() => {}
                }
            }
            attempts += 1;
            let answer = tokio::select! {
                _ = cancel.cancelled() => {
                    return Err(self.fail(FetchErrorKind::Cancelled, None, what, "shutting down", attempts));
                }
                answer = self.try_once(path, body) => answer,
            };
            let (verdict, errcode, detail, token) = match answer {
                Attempt::Ok(body, json) => {
                    return Ok(FetchOk {
                        body,
                        json,
                        attempts,
                    });
                }
                Attempt::TokenFailed(e) if e.kind == FetchErrorKind::Transient => {
                    (Verdict::Transient, e.errcode, e.message, None)
                }
                Attempt::TokenFailed(e) => {
                    return Err(FetchError { attempts, ..e });
                }
                Attempt::Failed {
                    verdict,
                    errcode,
                    detail,
                    token,
                } => (verdict, errcode, detail, token),
            };
            match verdict {
                Verdict::Success => unreachable!("success is returned above"),
                Verdict::Transient | Verdict::MinuteQuota => {
                    let kind = if verdict == Verdict::MinuteQuota {
                        FetchErrorKind::MinuteQuota
                    } else {
                        FetchErrorKind::Transient
                    };
                    if attempts >= self.retry.max_attempts {
                        return Err(self.fail(
                            kind,
                            errcode,
                            what,
                            &format!("{detail} (gave up after {attempts} tries)"),
                            attempts,
                        ));
                    }
                    let wait = if verdict == Verdict::MinuteQuota {
                        self.minute_quota_wait()
                    } else {
                        self.backoff(attempts)
                    };
                    tracing::debug!(appid = %self.appid, %endpoint, what, attempts, wait_ms = wait.as_millis() as u64, "{detail}; retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => {
                            return Err(self.fail(FetchErrorKind::Cancelled, None, what, "shutting down", attempts));
                        }
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
                Verdict::TokenInvalid => {
                    if token_refreshed {
                        return Err(self.fail(
                            FetchErrorKind::Token,
                            errcode,
                            what,
                            &format!("{detail}, again after a token refresh"),
                            attempts,
                        ));
                    }
                    token_refreshed = true;
                    if let Some(token) = token {
                        self.tokens.invalidate(&token).await;
                    }
                    tracing::info!(appid = %self.appid, %endpoint, "access token rejected; refreshing it and retrying once");
                }
                Verdict::DailyQuota => {
                    let today = self.clock.today(self.timezone);
                    self.stop(endpoint, Stopped::QuotaSpent(today));
                    return Err(self.fail(
                        FetchErrorKind::DailyQuota,
                        errcode,
                        what,
                        &detail,
                        attempts,
                    ));
                }
                Verdict::NotReady => {
                    return Err(self.fail(
                        FetchErrorKind::NotReady,
                        errcode,
                        what,
                        &detail,
                        attempts,
                    ));
                }
                Verdict::Offline => {
                    self.stop(endpoint, Stopped::Offline);
                    return Err(self.fail(
                        FetchErrorKind::Offline,
                        errcode,
                        what,
                        &detail,
                        attempts,
                    ));
                }
                Verdict::Unauthorised => {
                    // Permanent for this account and endpoint: its other
                    // chunks are not sent in this run.
                    self.stop(endpoint, Stopped::Unauthorised(errcode.unwrap_or(0)));
                    return Err(self.fail(
                        FetchErrorKind::Permanent,
                        errcode,
                        what,
                        &detail,
                        attempts,
                    ));
                }
                Verdict::Permanent => {
                    return Err(self.fail(
                        FetchErrorKind::Permanent,
                        errcode,
                        what,
                        &detail,
                        attempts,
                    ));
                }
            }
        }
    }

    /// Why `endpoint` must not be called again in this run, if it must not:
    /// (errcode, explanation).
    pub fn stopped_reason(&self, endpoint: Endpoint) -> Option<(i64, &'static str)> {
        let today = self.clock.today(self.timezone);
        match self.stopped.lock().expect("stopped map").get(&endpoint)? {
            Stopped::QuotaSpent(day) if *day == today => Some((
                45009,
                "not sent: the daily quota of this endpoint is spent until tomorrow (China time)",
            )),
            Stopped::QuotaSpent(_) => None,
            Stopped::Offline => {
                Some((47009, "not sent: this endpoint answered that it is offline"))
            }
            Stopped::Unauthorised(code) => Some((
                *code,
                "not sent: this endpoint is not authorised for the account (61007/48001)",
            )),
        }
    }

    fn stop(&self, endpoint: Endpoint, why: Stopped) {
        self.stopped
            .lock()
            .expect("stopped map")
            .insert(endpoint, why);
    }

    async fn try_once(&self, path: &str, body: &Value) -> Attempt {
        let token = match self.tokens.get().await {
            Ok(token) => token,
            Err(e) => return Attempt::TokenFailed(e),
        };
        let url = format!("{}{path}", self.api_base);
        let sent = self
            .http
            .post(url)
            .query(&[("access_token", token.expose())])
            .json(body)
            .send()
            .await;
        let failed = |verdict, errcode, detail: String| Attempt::Failed {
            verdict,
            errcode,
            detail,
            token: Some(token.clone()),
        };
        let response = match sent {
            Ok(r) => r,
            // `without_url`: the URL carries the access token.
            Err(e) => return failed(Verdict::Transient, None, describe(&e.without_url())),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return failed(Verdict::Transient, None, describe(&e.without_url())),
        };
        if status.is_server_error() || status.as_u16() == 429 {
            return failed(
                Verdict::Transient,
                None,
                format!("HTTP {}", status.as_u16()),
            );
        }
        if !status.is_success() {
            return failed(
                Verdict::Permanent,
                None,
                format!("HTTP {}", status.as_u16()),
            );
        }
        let json: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) => {
                return failed(
                    Verdict::Transient,
                    None,
                    "the answer is not valid JSON (truncated?)".into(),
                );
            }
        };
        let errcode = as_int(json.get("errcode")).unwrap_or(0);
        match classify_errcode(errcode) {
            Verdict::Success => Attempt::Ok(text, json),
            verdict => {
                let errmsg = json.get("errmsg").and_then(Value::as_str).unwrap_or("");
                // errmsg comes from WeChat; redact it anyway in case it echoes the token.
                let errmsg = redact(errmsg, &[token.expose(), self.tokens.secret()]);
                failed(
                    verdict,
                    Some(errcode),
                    format!("{} ({errmsg})", errcode_hint(errcode)),
                )
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .retry
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(Duration::from_secs(30));
        // Full jitter in [50%, 100%] keeps concurrent retries from marching in step.
        let factor = rand::rng().random_range(0.5..=1.0);
        capped.mul_f64(factor)
    }

    fn minute_quota_wait(&self) -> Duration {
        if let Some(wait) = self.retry.minute_quota_wait {
            return wait;
        }
        let now = Utc::now();
        let into_minute = Duration::from_secs(u64::from(now.second()))
            + Duration::from_nanos(u64::from(now.nanosecond() % 1_000_000_000));
        Duration::from_secs(60).saturating_sub(into_minute)
            + Duration::from_millis(rand::rng().random_range(100..1000))
    }

    fn fail(
        &self,
        kind: FetchErrorKind,
        errcode: Option<i64>,
        what: &str,
        detail: &str,
        attempts: u32,
    ) -> FetchError {
        FetchError {
            kind,
            errcode,
            message: redact(&format!("{what}: {detail}"), &[self.tokens.secret()]),
            attempts,
        }
    }
}

/// Why an endpoint is not called again.
#[derive(Debug, Clone, Copy)]
enum Stopped {
    QuotaSpent(NaiveDate),
    Offline,
    /// 61007 or 48001 (the errcode).
    Unauthorised(i64),
}

enum Attempt {
    Ok(String, Value),
    TokenFailed(FetchError),
    Failed {
        verdict: Verdict,
        errcode: Option<i64>,
        detail: String,
        token: Option<AccessToken>,
    },
}

/// A transport error in words, with its cause chain but no URL.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the answer was cut off"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    redact(&text, &[])
}
