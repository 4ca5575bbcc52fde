//! The follower series (data from 2014-12-01, not deprecated): new and
//! cancelled followers per day and follow source, and the total. Once the
//! legacy article endpoints are off, it is the only statistic with history
//! back to 2014. docs/wechat-api.md describes both endpoints.

use super::{DEFAULTS, EndpointDef, Family, KeyField, Mapping};
use crate::store::tables;

/// The facts both follower endpoints share.
const FOLLOWERS: EndpointDef = EndpointDef {
    family: Family::Followers,
    max_span_days: 7,
    ..DEFAULTS
};

/// Per day and follow source with activity: new and cancelled followers.
/// Sources without activity are absent (absent means 0: no row); codes not
/// yet documented are stored as they come.
pub static USER_SUMMARY: EndpointDef = EndpointDef {
    name: "getusersummary",
    mapping: Mapping::OneRow {
        table: &tables::USER_DAILY,
        keys: &[KeyField::Int("user_source")],
    },
    ..FOLLOWERS
};

/// Per day: the total number of followers. The undocumented `user_source: 0`
/// some rows carry is ignored.
pub static USER_CUMULATE: EndpointDef = EndpointDef {
    name: "getusercumulate",
    mapping: Mapping::OneRow {
        table: &tables::USER_CUMULATE,
        keys: &[],
    },
    ..FOLLOWERS
};
