//! The main job: plan the chunks a sync or backfill needs, fetch them, and
//! store each one in a single transaction.

pub mod catalogue;
pub mod plan;
pub mod run;

pub use run::{AccountBusy, BackfillRequest, Engine, RunError, RunReport};
