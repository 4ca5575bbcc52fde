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
    // Many accounts (SPEC section 10); several may be given, one per item.
    /// Restricts `daily_quota_after` to one account (`daily_quota_appid=APPID`),
    /// for "a 45009 early in the day" of that account alone.
    pub daily_quota_appid: Option<String>,
    /// Daily limit of every endpoint of every account (`quota_limit=N`), as
    /// `/cgi-bin/openapi/quota/get` reports and 45009 enforces.
    pub quota_limit: u64,
    /// Per-account daily limits (`quota_limit=APPID:N`), replacing `quota_limit`.
    pub quota_limits: Vec<(String, u64)>,
    /// `rate_limit=COUNT/SECONDS`: more than COUNT requests of one account's
    /// endpoint within SECONDS answer 45011 (and the quota look-up reports it).
    pub rate_limit: Option<(u64, u64)>,
    /// The quota look-up answers 76022 (`quota_unknown`), as when the API
    /// refuses it: clients must fall back to reacting to 45009.
    pub quota_unknown: bool,
    /// Token requests of this account answer 40013 (`token_fail=APPID`), so
    /// its secret, or its token command (`wxcube sim-token`), fails.
    pub token_fail: Vec<String>,
    /// This account's endpoint answers 61007 (`unauthorised=APPID:ENDPOINT`).
    pub unauthorised: Vec<(String, Endpoint)>,
    /// The first N datacube requests presenting a token revoke it and answer
    /// 40001 (`revoke_token=N`), as when another service refreshed it.
    pub revoke_token: u64,
}

/// The daily limit of each endpoint when no `quota_limit` is given: far above
/// what any test sends in a day, so that only tests that lower it meet it.
pub const DEFAULT_QUOTA_LIMIT: u64 = 100_000;

impl FaultSpec {
    /// The daily limit of `appid`'s endpoints.
    pub fn quota_limit_of(&self, appid: &str) -> u64 {
        self.quota_limits
            .iter()
            .find(|(a, _)| a == appid)
            .map_or(self.quota_limit, |(_, n)| *n)
    }
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
            daily_quota_appid: None,
            quota_limit: DEFAULT_QUOTA_LIMIT,
            quota_limits: Vec::new(),
            rate_limit: None,
            quota_unknown: false,
            token_fail: Vec::new(),
            unauthorised: Vec::new(),
            revoke_token: 0,
        }
    }
}

/// Every name `FaultSpec::parse` accepts, for messages.
pub const FAULT_NAMES: [&str; 25] = [
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
    "daily_quota_appid",
    "quota_limit",
    "rate_limit",
    "quota_unknown",
    "token_fail",
    "unauthorised",
    "revoke_token",
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
                "daily_quota_appid" => f.daily_quota_appid = Some(value.to_string()),
                "quota_limit" => match value.split_once(':') {
                    Some((appid, n)) => f.quota_limits.push((
                        appid.trim().to_string(),
                        n.trim().parse().map_err(|_| bad("expected N or APPID:N"))?,
                    )),
                    None => f.quota_limit = number()?,
                },
                "rate_limit" => {
                    let parsed = value.split_once('/').and_then(|(c, s)| {
                        Some((c.trim().parse::<u64>().ok()?, s.trim().parse::<u64>().ok()?))
                    });
                    match parsed {
                        Some((c, s)) if c > 0 && s > 0 => f.rate_limit = Some((c, s)),
                        _ => return Err(bad("expected COUNT/SECONDS, both above 0")),
                    }
                }
                "quota_unknown" => f.quota_unknown = flag()?,
                "token_fail" => f.token_fail.push(value.to_string()),
                "unauthorised" => {
                    let (appid, endpoint) = value
                        .split_once(':')
                        .ok_or_else(|| bad("expected APPID:ENDPOINT"))?;
                    let endpoint = Endpoint::from_name(endpoint.trim())
                        .ok_or_else(|| bad("unknown endpoint name"))?;
                    f.unauthorised.push((appid.trim().to_string(), endpoint));
                }
                "revoke_token" => f.revoke_token = number()?,
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
    fn parses_the_per_account_faults() {
        let f = FaultSpec::parse(
            "quota_limit=50,quota_limit=wxa:20,rate_limit=5/1,token_fail=wxb,token_fail=wxc,\
             unauthorised=wxd:getuserread,daily_quota_appid=wxe,quota_unknown,revoke_token=1",
        )
        .unwrap();
        assert_eq!((f.quota_limit_of("wxa"), f.quota_limit_of("wxz")), (20, 50));
        assert_eq!(f.rate_limit, Some((5, 1)));
        assert_eq!(f.token_fail, ["wxb", "wxc"]);
        assert_eq!(f.unauthorised, [("wxd".to_string(), Endpoint::UserRead)]);
        assert_eq!(f.daily_quota_appid.as_deref(), Some("wxe"));
        assert!(f.quota_unknown);
        assert_eq!(f.revoke_token, 1);
        assert!(FaultSpec::parse("rate_limit=5").is_err());
        assert!(FaultSpec::parse("unauthorised=wxd").is_err());
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
