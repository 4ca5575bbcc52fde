//! Fault injection settings of the simulator, parsed from a `name=value,...` spec.

use crate::endpoint::Endpoint;

/// Which faults the simulator injects into datacube answers. Rates are
/// probabilities (0..=1) per datacube request, drawn from a RNG seeded by
/// `seed`, so a test run is reproducible.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// errcode -1, system busy.
    pub busy: f64,
    /// HTTP 502 or 503 with an HTML body.
    pub http5xx: f64,
    /// Answer only after `slow_ms`, so a short client timeout trips.
    pub slow: f64,
    /// Close the connection in the middle of the response.
    pub drop: f64,
    /// A truncated JSON body with HTTP 200.
    pub malformed: f64,
    /// errcode 45011, per-minute quota.
    pub quota_minute: f64,
    /// errcode 45009 for an (appid, endpoint) once this many requests of it
    /// reached the simulator's fault stage that China day.
    pub daily_quota_after: Option<u64>,
    /// Restricts `daily_quota_after` to one endpoint.
    pub daily_quota_endpoint: Option<Endpoint>,
    /// errcode 42001 for the presented token, which stays expired.
    pub token_expire: f64,
    /// Adds rows whose ref_date lies outside the requested dates.
    pub outside_rows: f64,
    /// Current four only: `is_delay: true` with part of the rows.
    pub delay: f64,
    /// Current four only: errcode 61503, data not ready.
    pub not_ready: f64,
    /// All six legacy endpoints answer errcode 47009 (offline).
    pub offline_legacy: bool,
    /// Stable mode keeps returning a token that a fault or
    /// `expire_all_tokens` killed, until `force_refresh` (so a client's
    /// force-refresh path can be tested).
    pub stale_stable: bool,
    /// Follower endpoints only (getusersummary, getusercumulate): an answer
    /// whose range includes yesterday omits yesterday's rows the first time
    /// that (appid, endpoint, day) is asked, as while WeChat is still
    /// computing; later answers include them.
    pub missing_yesterday: bool,
    /// Added to every datacube answer.
    pub latency_ms: u64,
    /// Seed of the fault RNG.
    pub seed: u64,
    /// Delay of the `slow` fault.
    pub slow_ms: u64,
}

impl Default for FaultSpec {
    fn default() -> FaultSpec {
        FaultSpec {
            busy: 0.0,
            http5xx: 0.0,
            slow: 0.0,
            drop: 0.0,
            malformed: 0.0,
            quota_minute: 0.0,
            daily_quota_after: None,
            daily_quota_endpoint: None,
            token_expire: 0.0,
            outside_rows: 0.0,
            delay: 0.0,
            not_ready: 0.0,
            offline_legacy: false,
            stale_stable: false,
            missing_yesterday: false,
            latency_ms: 0,
            seed: 1,
            slow_ms: 3000,
        }
    }
}

/// Every name `FaultSpec::parse` accepts, for messages.
pub const FAULT_NAMES: [&str; 18] = [
    "busy",
    "http5xx",
    "slow",
    "drop",
    "malformed",
    "quota_minute",
    "daily_quota_after",
    "daily_quota_endpoint",
    "token_expire",
    "outside_rows",
    "delay",
    "not_ready",
    "offline_legacy",
    "stale_stable",
    "missing_yesterday",
    "latency_ms",
    "seed",
    "slow_ms",
];

impl FaultSpec {
    /// Parses `name=value,name=value` ("" means no faults). A bare name means
    /// rate 1 (or on). Errors name the bad item.
    pub fn parse(spec: &str) -> Result<FaultSpec, String> {
        let mut f = FaultSpec::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = match item.split_once('=') {
                Some((n, v)) => (n.trim(), v.trim()),
                None => (item, "1"),
            };
            let bad = |why: &str| format!("fault {item:?}: {why}");
            let rate = || -> Result<f64, String> {
                let r: f64 = value
                    .parse()
                    .map_err(|_| bad("expected a probability between 0 and 1"))?;
                if (0.0..=1.0).contains(&r) {
                    Ok(r)
                } else {
                    Err(bad("expected a probability between 0 and 1"))
                }
            };
            let number = || -> Result<u64, String> {
                value
                    .parse()
                    .map_err(|_| bad("expected a non-negative integer"))
            };
            let flag = || -> Result<bool, String> {
                match value {
                    "1" | "true" | "yes" | "on" => Ok(true),
                    "0" | "false" | "no" | "off" => Ok(false),
                    _ => Err(bad("expected 1 or 0")),
                }
            };
            match name {
                "busy" => f.busy = rate()?,
                "http5xx" => f.http5xx = rate()?,
                "slow" => f.slow = rate()?,
                "drop" => f.drop = rate()?,
                "malformed" => f.malformed = rate()?,
                "quota_minute" => f.quota_minute = rate()?,
                "daily_quota_after" => f.daily_quota_after = Some(number()?),
                "daily_quota_endpoint" => {
                    f.daily_quota_endpoint = Some(
                        Endpoint::from_name(value).ok_or_else(|| bad("unknown endpoint name"))?,
                    )
                }
                "token_expire" => f.token_expire = rate()?,
                "outside_rows" => f.outside_rows = rate()?,
                "delay" => f.delay = rate()?,
                "not_ready" => f.not_ready = rate()?,
                "offline_legacy" => f.offline_legacy = flag()?,
                "stale_stable" => f.stale_stable = flag()?,
                "missing_yesterday" => f.missing_yesterday = flag()?,
                "latency_ms" => f.latency_ms = number()?,
                "seed" => f.seed = number()?,
                "slow_ms" => f.slow_ms = number()?,
                _ => {
                    return Err(bad(&format!(
                        "unknown fault name (known: {})",
                        FAULT_NAMES.join(", ")
                    )));
                }
            }
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_spec_means_no_faults() {
        assert_eq!(FaultSpec::parse("").unwrap(), FaultSpec::default());
        assert_eq!(FaultSpec::parse(" , ").unwrap(), FaultSpec::default());
    }

    #[test]
    fn parses_every_kind() {
        let f = FaultSpec::parse(
            "busy=0.5, http5xx=0.1,slow=1,slow_ms=200,drop=0.2,malformed=0.3,quota_minute=0.4,\
             daily_quota_after=2,daily_quota_endpoint=getuserread,token_expire=0.05,\
             outside_rows=1,delay=0.5,not_ready=0.5,offline_legacy=1,latency_ms=7,seed=42,stale_stable,missing_yesterday",
        )
        .unwrap();
        assert_eq!(f.busy, 0.5);
        assert_eq!(f.slow_ms, 200);
        assert_eq!(f.daily_quota_after, Some(2));
        assert_eq!(f.daily_quota_endpoint, Some(Endpoint::UserRead));
        assert!(f.offline_legacy && f.stale_stable && f.missing_yesterday);
        assert_eq!((f.latency_ms, f.seed), (7, 42));
    }

    #[test]
    fn errors_name_the_bad_item() {
        assert!(FaultSpec::parse("busy=2").unwrap_err().contains("busy=2"));
        assert!(FaultSpec::parse("bogus=1").unwrap_err().contains("bogus"));
        assert!(
            FaultSpec::parse("daily_quota_endpoint=getfoo")
                .unwrap_err()
                .contains("getfoo")
        );
        assert!(
            FaultSpec::parse("latency_ms=-1")
                .unwrap_err()
                .contains("latency_ms")
        );
    }
}
