//! The ten datacube endpoints wxcube knows, and the facts about each that the
//! rest of the program plans around: span, family, first trustworthy date and
//! when a fetched day becomes final.

use std::fmt;

use chrono::NaiveDate;

/// The two generations of datacube article APIs (SPEC sections 1 and 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// The six original endpoints, data from 2014-12-01, being switched off.
    Legacy,
    /// The four endpoints that replace them, data from 2025-11-01, with `is_delay`.
    Current,
}

impl Family {
    /// The first day this family has trustworthy data for.
    pub fn first_date(self) -> NaiveDate {
        match self {
            Family::Legacy => NaiveDate::from_ymd_opt(2014, 12, 1).expect("valid date"),
            Family::Current => NaiveDate::from_ymd_opt(2025, 11, 1).expect("valid date"),
        }
    }

    /// A short name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Family::Legacy => "legacy",
            Family::Current => "current",
        }
    }
}

/// One datacube endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    ArticleSummary,
    ArticleTotal,
    UserRead,
    UserReadHour,
    UserShare,
    UserShareHour,
    ArticleRead,
    ArticleShare,
    BizSummary,
    ArticleTotalDetail,
}

impl Endpoint {
    /// All ten, in the order of the contract (also the default `endpoints`).
    pub const ALL: [Endpoint; 10] = [
        Endpoint::ArticleSummary,
        Endpoint::ArticleTotal,
        Endpoint::UserRead,
        Endpoint::UserReadHour,
        Endpoint::UserShare,
        Endpoint::UserShareHour,
        Endpoint::ArticleRead,
        Endpoint::ArticleShare,
        Endpoint::BizSummary,
        Endpoint::ArticleTotalDetail,
    ];

    /// The name in the URL path `/datacube/{name}`, also used in the ledger.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::ArticleSummary => "getarticlesummary",
            Endpoint::ArticleTotal => "getarticletotal",
            Endpoint::UserRead => "getuserread",
            Endpoint::UserReadHour => "getuserreadhour",
            Endpoint::UserShare => "getusershare",
            Endpoint::UserShareHour => "getusersharehour",
            Endpoint::ArticleRead => "getarticleread",
            Endpoint::ArticleShare => "getarticleshare",
            Endpoint::BizSummary => "getbizsummary",
            Endpoint::ArticleTotalDetail => "getarticletotaldetail",
        }
    }

    /// Looks an endpoint up by its name (exact, lower case).
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Maximum number of days one request may cover (`end - begin <= span - 1`).
    pub fn max_span_days(self) -> u32 {
        match self {
            Endpoint::UserRead => 3,
            Endpoint::UserShare => 7,
            Endpoint::BizSummary => 30,
            _ => 1,
        }
    }

    /// Which generation of the API this endpoint belongs to.
    pub fn family(self) -> Family {
        match self {
            Endpoint::ArticleRead
            | Endpoint::ArticleShare
            | Endpoint::BizSummary
            | Endpoint::ArticleTotalDetail => Family::Current,
            _ => Family::Legacy,
        }
    }

    /// The first day this endpoint has data for.
    pub fn first_date(self) -> NaiveDate {
        self.family().first_date()
    }

    /// How many days after its end date a fetched chunk stops changing:
    /// cumulative totals grow for 7 days (30 for getarticletotaldetail).
    pub fn final_after_days(self) -> i64 {
        match self {
            Endpoint::ArticleTotalDetail => 30,
            _ => 7,
        }
    }

    /// How many recent days each sync fetches again, given `refresh_days`.
    pub fn refresh_days(self, configured: u32) -> u32 {
        match self {
            Endpoint::ArticleTotalDetail => 30,
            _ => configured,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses an endpoint name with a message that lists the valid ones.
pub fn parse_endpoint(name: &str) -> Result<Endpoint, String> {
    let trimmed = name.trim();
    Endpoint::from_name(trimmed).ok_or_else(|| {
        let names: Vec<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        format!("unknown endpoint {trimmed:?} (known: {})", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_name(e.name()), Some(e));
        }
        assert!(
            parse_endpoint("getfoo")
                .unwrap_err()
                .contains("getbizsummary")
        );
    }

    #[test]
    fn spans_and_families_match_the_contract() {
        assert_eq!(Endpoint::UserRead.max_span_days(), 3);
        assert_eq!(Endpoint::UserShare.max_span_days(), 7);
        assert_eq!(Endpoint::BizSummary.max_span_days(), 30);
        assert_eq!(Endpoint::ArticleTotalDetail.max_span_days(), 1);
        assert_eq!(Endpoint::ArticleRead.first_date().to_string(), "2025-11-01");
        assert_eq!(
            Endpoint::UserShareHour.first_date().to_string(),
            "2014-12-01"
        );
        assert_eq!(Endpoint::ArticleTotalDetail.refresh_days(7), 30);
        assert_eq!(Endpoint::UserRead.refresh_days(7), 7);
    }
}
