//! The endpoints wxcube knows, each declared once.
//!
//! An endpoint's declaration ([`EndpointDef`], in `legacy.rs`, `current.rs`
//! and so on) holds everything the program knows about it: its name, span,
//! first date, when a fetched day is final, whether it reports `is_delay`, the
//! tables it fills and how one response item maps to rows. Planning, the run
//! loop, the store, `status` and the simulator's routing read these facts;
//! nothing else names an endpoint.
//!
//! Adding an endpoint means: its declaration here, its table definition in
//! `store/tables.rs`, its migration, its simulator data and its tests. The
//! registry tests below (and the compiler, for the simulator's exhaustive
//! matches) fail until all of them exist. docs/wechat-api.md explains the facts.

pub mod catalogue;
mod current;
mod followers;
mod legacy;
pub mod normalize;

use std::fmt;

use chrono::NaiveDate;

use crate::store::tables::TableDef;
pub use legacy::ALL_SOURCES;
pub use normalize::{Item, Normalized, ShapeError, normalize, split_msgid};

/// The generations of the datacube APIs, for grouping in messages and docs.
/// Facts that differ between endpoints live on [`EndpointDef`], not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// The six original article endpoints, data from 2014-12-01, being switched off.
    Legacy,
    /// The four endpoints that replace them, data from 2025-11-01, with `is_delay`.
    Current,
    /// The follower series, data from 2014-12-01, not deprecated.
    Followers,
    /// The catalogue of published articles: pages, not dates.
    Catalogue,
}

impl Family {
    /// A short name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Family::Legacy => "legacy",
            Family::Current => "current",
            Family::Followers => "follower",
            Family::Catalogue => "catalogue",
        }
    }

    /// The endpoints of this family, in declaration order.
    pub fn endpoints(self) -> impl Iterator<Item = Endpoint> {
        Endpoint::ALL
            .iter()
            .copied()
            .filter(move |e| e.family() == self)
    }

    /// The first day this family has data for (the earliest of its endpoints).
    pub fn first_date(self) -> NaiveDate {
        self.endpoints()
            .map(Endpoint::first_date)
            .min()
            .expect("every family has an endpoint")
    }
}

/// How many recent days each sync fetches again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// The configured `refresh_days`.
    Configured,
    /// Always this many: cumulative series that keep changing for longer.
    Days(u32),
}

/// How one response list item becomes rows.
pub enum Mapping {
    /// One item is one row of `table`: `appid`, `ref_date`, the extra `keys`
    /// read from the item, and every other column of the table read as an
    /// integer from the item field of the same name (absent: NULL).
    OneRow {
        table: &'static TableDef,
        keys: &'static [KeyField],
    },
    /// Anything else: a function that pushes the item's rows into `tables`.
    Custom {
        tables: &'static [&'static TableDef],
        map: fn(&Item<'_>, &mut Vec<crate::store::Row>) -> Result<(), ShapeError>,
    },
    /// Not a datacube endpoint: paged, not dated; `catalogue` parses its pages.
    Pages {
        tables: &'static [&'static TableDef],
    },
}

/// A key column of a [`Mapping::OneRow`] row, besides `appid` and `ref_date`.
#[derive(Debug, Clone, Copy)]
pub enum KeyField {
    /// An integer field of the same name that must be present.
    Int(&'static str),
    /// An integer field of the same name, or `default` when absent.
    IntOr(&'static str, i64),
    /// `hour`, from the HHMM-style `ref_hour` (0, 100, ..., 2300).
    Hour,
}

/// Everything wxcube knows about one endpoint.
pub struct EndpointDef {
    /// The name in the URL path `/datacube/{name}`, the ledger and `endpoints`.
    pub name: &'static str,
    pub family: Family,
    /// Most days one request may cover (`end - begin <= span - 1`).
    pub max_span_days: u32,
    /// The first day with trustworthy data.
    pub first_date: NaiveDate,
    /// Days after its end date until a fetched chunk stops changing.
    pub final_after_days: i64,
    pub refresh: Refresh,
    /// Whether answers carry `is_delay` (then a delayed chunk is not final).
    pub reports_delay: bool,
    pub mapping: Mapping,
}

impl EndpointDef {
    /// Every table the endpoint writes.
    pub fn tables(&'static self) -> &'static [&'static TableDef] {
        match &self.mapping {
            Mapping::OneRow { table, .. } => std::slice::from_ref(table),
            Mapping::Custom { tables, .. } | Mapping::Pages { tables } => tables,
        }
    }
}

/// What most endpoints share; each family's declarations start from it
/// (`..DEFAULTS`) and say only how they differ.
const DEFAULTS: EndpointDef = EndpointDef {
    name: "",
    family: Family::Legacy,
    max_span_days: 1,
    first_date: DATACUBE_START,
    final_after_days: 7,
    refresh: Refresh::Configured,
    reports_delay: false,
    mapping: Mapping::Custom {
        tables: &[],
        map: |_, _| Ok(()),
    },
};

/// 2014-12-01: nothing before it is trustworthy.
pub const DATACUBE_START: NaiveDate = date(2014, 12, 1);
/// 2025-11-01: the first day of the current endpoints.
pub const CURRENT_START: NaiveDate = date(2025, 11, 1);

const fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

/// Declares the `Endpoint` handle for each declaration, and `Endpoint::ALL`,
/// so that the list of endpoints is written exactly once.
macro_rules! registry {
    ($($(#[$doc:meta])* $variant:ident => $def:path,)*) => {
        /// One endpoint: a small copyable handle on its [`EndpointDef`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Endpoint {
            $($(#[$doc])* $variant,)*
        }

        impl Endpoint {
            /// Every endpoint, in the order of the contract (also the default `endpoints`).
            pub const ALL: [Endpoint; [$(stringify!($variant)),*].len()] =
                [$(Endpoint::$variant,)*];

            /// The endpoint's declaration.
            pub fn def(self) -> &'static EndpointDef {
                match self {
                    $(Endpoint::$variant => &$def,)*
                }
            }
        }
    };
}

registry! {
    /// getarticlesummary
    ArticleSummary => legacy::ARTICLE_SUMMARY,
    /// getarticletotal
    ArticleTotal => legacy::ARTICLE_TOTAL,
    /// getuserread
    UserRead => legacy::USER_READ,
    /// getuserreadhour
    UserReadHour => legacy::USER_READ_HOUR,
    /// getusershare
    UserShare => legacy::USER_SHARE,
    /// getusersharehour
    UserShareHour => legacy::USER_SHARE_HOUR,
    /// getarticleread
    ArticleRead => current::ARTICLE_READ,
    /// getarticleshare
    ArticleShare => current::ARTICLE_SHARE,
    /// getbizsummary
    BizSummary => current::BIZ_SUMMARY,
    /// getarticletotaldetail
    ArticleTotalDetail => current::ARTICLE_TOTAL_DETAIL,
    /// getusersummary
    UserSummary => followers::USER_SUMMARY,
    /// getusercumulate
    UserCumulate => followers::USER_CUMULATE,
    /// freepublish/batchget, the published catalogue
    Freepublish => catalogue::FREEPUBLISH,
}

impl Endpoint {
    /// The name in the URL path `/datacube/{name}`, also used in the ledger.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// Looks an endpoint up by its name (exact, lower case).
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Maximum number of days one request may cover (`end - begin <= span - 1`).
    pub fn max_span_days(self) -> u32 {
        self.def().max_span_days
    }

    /// Which generation of the API this endpoint belongs to.
    pub fn family(self) -> Family {
        self.def().family
    }

    /// The first day this endpoint has data for.
    pub fn first_date(self) -> NaiveDate {
        self.def().first_date
    }

    /// How many days after its end date a fetched chunk stops changing.
    pub fn final_after_days(self) -> i64 {
        self.def().final_after_days
    }

    /// How many recent days each sync fetches again, given `refresh_days`.
    pub fn refresh_days(self, configured: u32) -> u32 {
        match self.def().refresh {
            Refresh::Configured => configured,
            Refresh::Days(days) => days,
        }
    }

    /// Whether this is a datacube endpoint, fetched by dates (else by pages).
    pub fn is_dated(self) -> bool {
        !matches!(self.def().mapping, Mapping::Pages { .. })
    }

    /// The datacube endpoints, fetched by dates, in declaration order.
    pub fn dated() -> impl Iterator<Item = Endpoint> {
        Endpoint::ALL.into_iter().filter(|e| e.is_dated())
    }

    /// Whether answers carry `is_delay`.
    pub fn reports_delay(self) -> bool {
        self.def().reports_delay
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
    use std::collections::BTreeSet;

    use super::*;
    use crate::store::tables::ALL_TABLES;

    #[test]
    fn names_round_trip_and_are_unique() {
        let names: BTreeSet<&str> = Endpoint::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), Endpoint::ALL.len());
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
    fn spans_and_dates_match_the_api() {
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
        assert_eq!(Endpoint::ArticleTotalDetail.final_after_days(), 30);
        assert_eq!(Endpoint::UserRead.refresh_days(7), 7);
        assert_eq!(Family::Current.first_date().to_string(), "2025-11-01");
        assert_eq!(Family::Legacy.first_date().to_string(), "2014-12-01");
    }

    /// Every declaration is sane, and every data table is filled by some
    /// endpoint (a table nobody fills is a forgotten declaration).
    #[test]
    fn the_registry_is_complete() {
        let mut filled = BTreeSet::new();
        for e in Endpoint::ALL {
            let def = e.def();
            assert!(def.max_span_days >= 1, "{e}");
            assert!(def.first_date >= DATACUBE_START, "{e}");
            assert!(!def.tables().is_empty(), "{e} fills no table");
            for table in def.tables() {
                assert!(
                    ALL_TABLES.iter().any(|t| std::ptr::eq(*t, *table)),
                    "{e}: table {} is not in ALL_TABLES",
                    table.name
                );
                filled.insert(table.name);
            }
            if let Mapping::OneRow { table, keys } = &def.mapping {
                let named: Vec<&str> = keys
                    .iter()
                    .map(|k| match k {
                        KeyField::Int(c) | KeyField::IntOr(c, _) => *c,
                        KeyField::Hour => "hour",
                    })
                    .collect();
                let mut expected = vec!["appid", "ref_date"];
                expected.extend(&named);
                assert_eq!(table.keys, expected.as_slice(), "{e}: key fields");
            }
        }
        let all: BTreeSet<&str> = ALL_TABLES.iter().map(|t| t.name).collect();
        assert_eq!(filled, all, "tables without an endpoint, or the reverse");
    }
}
