//! The one integration test binary (one link step on 2 cores).
mod checks;
mod driver;
mod helpers;

mod accounts;
mod cli;
mod client;
mod current;
mod daemon;
mod docs;
mod followers;
mod ingest;
mod parsing;
mod pg_behaviour;
mod postgres;
mod report;
mod resilience;
mod robustness;
