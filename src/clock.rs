//! "Today" and "yesterday" on the API's calendar (Asia/Shanghai by default),
//! whatever the host's timezone, with a clock that tests can pin.

use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;

/// The default calendar of the WeChat API.
pub const CHINA: Tz = chrono_tz::Asia::Shanghai;

/// A source of the current instant; `Clock::system()` in production,
/// `Clock::fixed(..)` in tests.
#[derive(Clone)]
pub struct Clock {
    now: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock {
            now: Arc::new(Utc::now),
        }
    }

    /// A clock stopped at `instant`.
    pub fn fixed(instant: DateTime<Utc>) -> Clock {
        Clock {
            now: Arc::new(move || instant),
        }
    }

    /// A clock driven by `now` (tests move time forward with it).
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Clock {
        Clock { now: Arc::new(now) }
    }

    /// The current instant.
    pub fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    /// Today's date in `tz`.
    pub fn today(&self, tz: Tz) -> NaiveDate {
        self.now().with_timezone(&tz).date_naive()
    }

    /// Yesterday's date in `tz`: the latest day the API can answer for.
    pub fn yesterday(&self, tz: Tz) -> NaiveDate {
        self.today(tz) - Days::new(1)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

/// The date of `instant` in `tz`.
pub fn date_in(instant: DateTime<Utc>, tz: Tz) -> NaiveDate {
    instant.with_timezone(&tz).date_naive()
}

/// Parses a `YYYY-MM-DD` date strictly.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("{text:?} is not a date of the form YYYY-MM-DD"))
}

/// Formats a date as the API and the database write it.
pub fn fmt_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// Every day from `from` to `to` inclusive (empty if `from > to`).
pub fn days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= to)
}

/// The first day of the last `days` days up to `latest`.
pub fn days_back(latest: NaiveDate, days: u32) -> NaiveDate {
    latest - Days::new(u64::from(days.saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Clock {
        Clock::fixed(text.parse().unwrap())
    }

    #[test]
    fn yesterday_in_china_after_utc_midnight_plus_eight() {
        // 2026-01-01T23:30Z is 07:30 on Jan 2 in China.
        assert_eq!(
            at("2026-01-01T23:30:00Z").yesterday(CHINA).to_string(),
            "2026-01-01"
        );
    }

    #[test]
    fn yesterday_in_china_before_midnight_china() {
        // 2026-01-01T15:59Z is 23:59 on Jan 1 in China.
        assert_eq!(
            at("2026-01-01T15:59:00Z").yesterday(CHINA).to_string(),
            "2025-12-31"
        );
    }

    #[test]
    fn parse_date_is_strict() {
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("20260101").is_err());
        assert_eq!(parse_date("2026-01-05").unwrap().to_string(), "2026-01-05");
    }

    #[test]
    fn days_is_inclusive() {
        let d = |s| parse_date(s).unwrap();
        assert_eq!(days(d("2026-01-30"), d("2026-02-02")).count(), 4);
        assert_eq!(days(d("2026-02-02"), d("2026-01-30")).count(), 0);
    }
}
