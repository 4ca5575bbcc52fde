//! How a WeChat call can fail: the errcode table and the failure kinds
//! (docs/wechat-api.md explains each code).

use std::fmt;

/// What kind of failure, which decides what the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// -1, HTTP 5xx, timeouts, connection errors, malformed bodies: retried
    /// with backoff until `max_attempts` ran out.
    Transient,
    /// 45011, still failing when `max_attempts` ran out.
    MinuteQuota,
    /// 45009: the endpoint's daily quota is spent until the next China day.
    DailyQuota,
    /// Not sent at all: earlier in this run the endpoint's daily quota ran out
    /// (45009) or it answered that it is offline (47009). `errcode` says which.
    NotSent,
    /// 40001, 40014, 42001 again after one token refresh.
    Token,
    /// The token endpoint refused the credentials (40125, 40013, 40164, ...).
    Credentials,
    /// 61503: data not ready; retried by the next sync, not within the run.
    NotReady,
    /// 47009: the endpoint is switched off for this account.
    Offline,
    /// 48001, 50001, 61007, 61500, 61501 and unknown codes; unexpected shapes.
    /// (48001 and 61007 also stop the endpoint for the rest of the run.)
    Permanent,
    /// Refused locally before any request (bad span, date out of range).
    Refused,
    /// The run is shutting down; nothing was stored.
    Cancelled,
}

impl FetchErrorKind {
    /// A short label for logs and the ledger.
    pub fn label(self) -> &'static str {
        match self {
            FetchErrorKind::Transient => "transient",
            FetchErrorKind::MinuteQuota => "minute quota",
            FetchErrorKind::DailyQuota => "daily quota",
            FetchErrorKind::NotSent => "not sent",
            FetchErrorKind::Token => "token",
            FetchErrorKind::Credentials => "credentials",
            FetchErrorKind::NotReady => "not ready",
            FetchErrorKind::Offline => "offline",
            FetchErrorKind::Permanent => "permanent",
            FetchErrorKind::Refused => "refused",
            FetchErrorKind::Cancelled => "cancelled",
        }
    }
}

/// A failed datacube call. The message is already redacted: it never holds a
/// URL with a token, the token itself or the appsecret.
#[derive(Debug, Clone)]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub errcode: Option<i64>,
    pub message: String,
    /// Requests sent for this call (0 when refused or skipped).
    pub attempts: u32,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errcode {
            Some(code) => write!(
                f,
                "{} error (errcode {code}): {}",
                self.kind.label(),
                self.message
            ),
            None => write!(f, "{} error: {}", self.kind.label(), self.message),
        }
    }
}

impl std::error::Error for FetchError {}

/// What one answer from a datacube endpoint means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    Transient,
    MinuteQuota,
    DailyQuota,
    TokenInvalid,
    NotReady,
    Offline,
    /// 61007, 48001: the API is not authorised for this account (or its
    /// third-party platform); permanent for that account and endpoint.
    Unauthorised,
    Permanent,
}

/// One errcode wxcube knows: what it means, how it is classified, and what
/// wxcube does about it. [`ERRCODES`] is the only place these facts live; the
/// client, the planner, `status` and the README's troubleshooting table (a
/// test compares them) all read it.
#[derive(Debug, Clone, Copy)]
pub struct ErrcodeInfo {
    pub code: i64,
    pub verdict: Verdict,
    /// What WeChat means by it, for messages.
    pub meaning: &'static str,
    /// What wxcube does when it sees it (the README's "what wxcube does").
    pub action: &'static str,
}

const fn info(
    code: i64,
    verdict: Verdict,
    meaning: &'static str,
    action: &'static str,
) -> ErrcodeInfo {
    ErrcodeInfo {
        code,
        verdict,
        meaning,
        action,
    }
}

/// errcode of "system busy".
pub const SYSTEM_BUSY: i64 = -1;
/// errcode of "daily quota of this API reached".
pub const DAILY_QUOTA: i64 = 45009;
/// errcode of "per-minute quota reached".
pub const MINUTE_QUOTA: i64 = 45011;
/// errcode of "this API is offline" (the older article endpoints being switched off).
pub const OFFLINE: i64 = 47009;
/// errcode of "data not ready yet".
pub const NOT_READY: i64 = 61503;

/// Every errcode wxcube treats specially; any other code is permanent.
pub static ERRCODES: &[ErrcodeInfo] = &[
    info(
        SYSTEM_BUSY,
        Verdict::Transient,
        "system busy",
        "retried with exponential backoff and jitter, up to `max_attempts`",
    ),
    info(
        40001,
        Verdict::TokenInvalid,
        "invalid access token",
        "the token is fetched again once and the request retried once",
    ),
    info(
        40014,
        Verdict::TokenInvalid,
        "invalid access token",
        "the token is fetched again once and the request retried once",
    ),
    info(
        42001,
        Verdict::TokenInvalid,
        "access token expired",
        "the token is fetched again once and the request retried once",
    ),
    info(
        40013,
        Verdict::Permanent,
        "invalid appid",
        "the account's chunks fail; the token endpoint is not asked again in the run",
    ),
    info(
        40125,
        Verdict::Permanent,
        "invalid appsecret",
        "the account's chunks fail; the token endpoint is not asked again in the run",
    ),
    info(
        40164,
        Verdict::Permanent,
        "caller IP not in the account's whitelist",
        "the account's chunks fail",
    ),
    info(
        DAILY_QUOTA,
        Verdict::DailyQuota,
        "daily quota of this API reached",
        "the endpoint is not called again until the next China day; the others go on",
    ),
    info(
        MINUTE_QUOTA,
        Verdict::MinuteQuota,
        "per-minute quota reached",
        "waits for the next minute, then retries (counts toward `max_attempts`)",
    ),
    info(
        OFFLINE,
        Verdict::Offline,
        "this API is offline for the account",
        "recorded; syncs skip the endpoint for 7 days",
    ),
    info(
        48001,
        Verdict::Unauthorised,
        "API not authorised for this account",
        "permanent for that account and endpoint: its other chunks are not sent in the run; `status` shows UNAUTHORISED",
    ),
    info(
        50001,
        Verdict::Permanent,
        "user not authorised for this API",
        "permanent for that request; not retried",
    ),
    info(
        61007,
        Verdict::Unauthorised,
        "API not authorised to the third-party platform",
        "permanent for that account and endpoint: its other chunks are not sent in the run; `status` shows UNAUTHORISED",
    ),
    info(
        61500,
        Verdict::Permanent,
        "bad date format",
        "permanent for that request; not retried",
    ),
    info(
        61501,
        Verdict::Permanent,
        "date range error",
        "permanent for that request; not retried",
    ),
    info(
        76021,
        Verdict::Permanent,
        "quota look-up: cgi_path not found",
        "quota planning falls back to reacting to 45009 for that endpoint",
    ),
    info(
        76022,
        Verdict::Permanent,
        "quota look-up: cgi_path not allowed",
        "quota planning falls back to reacting to 45009 for that endpoint",
    ),
    info(
        NOT_READY,
        Verdict::NotReady,
        "data not ready yet",
        "recorded; retried by the next sync, not within the run",
    ),
];

/// What wxcube knows about `errcode`, if anything.
pub fn errcode_info(errcode: i64) -> Option<&'static ErrcodeInfo> {
    ERRCODES.iter().find(|i| i.code == errcode)
}

/// Classifies a WeChat errcode (0 is success; unknown codes are permanent).
pub fn classify_errcode(errcode: i64) -> Verdict {
    match errcode {
        0 => Verdict::Success,
        _ => errcode_info(errcode).map_or(Verdict::Permanent, |i| i.verdict),
    }
}

/// A human hint for an errcode, used in messages.
pub fn errcode_hint(errcode: i64) -> &'static str {
    errcode_info(errcode).map_or("unknown errcode", |i| i.meaning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errcodes_classify_as_the_contract_says() {
        assert_eq!(classify_errcode(-1), Verdict::Transient);
        assert_eq!(classify_errcode(45011), Verdict::MinuteQuota);
        assert_eq!(classify_errcode(45009), Verdict::DailyQuota);
        for code in [40001, 40014, 42001] {
            assert_eq!(classify_errcode(code), Verdict::TokenInvalid);
        }
        for code in [50001, 61500, 61501, 12345] {
            assert_eq!(classify_errcode(code), Verdict::Permanent);
        }
        for code in [48001, 61007] {
            assert_eq!(classify_errcode(code), Verdict::Unauthorised);
        }
        assert_eq!(classify_errcode(61503), Verdict::NotReady);
        assert_eq!(classify_errcode(47009), Verdict::Offline);
        assert_eq!(classify_errcode(0), Verdict::Success);
    }

    #[test]
    fn each_errcode_is_listed_once() {
        let mut codes: Vec<i64> = ERRCODES.iter().map(|i| i.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ERRCODES.len());
        assert_eq!(errcode_hint(99999), "unknown errcode");
        assert_eq!(errcode_hint(45009), "daily quota of this API reached");
    }
}
