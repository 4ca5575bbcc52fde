//! How a datacube call can fail, classified as SPEC section 1 says.

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
    Permanent,
}

/// Classifies a WeChat errcode (0 is success).
pub fn classify_errcode(errcode: i64) -> Verdict {
    match errcode {
        0 => Verdict::Success,
        -1 => Verdict::Transient,
        45011 => Verdict::MinuteQuota,
        45009 => Verdict::DailyQuota,
        40001 | 40014 | 42001 => Verdict::TokenInvalid,
        61503 => Verdict::NotReady,
        47009 => Verdict::Offline,
        _ => Verdict::Permanent,
    }
}

/// A human hint for well-known errcodes, used in messages and the README.
pub fn errcode_hint(errcode: i64) -> &'static str {
    match errcode {
        -1 => "system busy",
        40001 | 40014 => "invalid access token",
        42001 => "access token expired",
        40013 => "invalid appid",
        40125 => "invalid appsecret",
        40164 => "caller IP not in the account's whitelist",
        45009 => "daily quota of this API reached",
        45011 => "per-minute quota reached",
        47009 => "this API is offline for the account",
        48001 => "API not authorised for this account",
        50001 => "user not authorised for this API",
        61007 => "no permission for a third-party platform",
        61500 => "bad date format",
        61501 => "date range error",
        61503 => "data not ready yet",
        _ => "unknown errcode",
    }
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
        for code in [48001, 50001, 61500, 61501, 61007, 12345] {
            assert_eq!(classify_errcode(code), Verdict::Permanent);
        }
        assert_eq!(classify_errcode(61503), Verdict::NotReady);
        assert_eq!(classify_errcode(47009), Verdict::Offline);
    }
}
