//! wxcube: copies a WeChat Official Account's datacube article statistics into SQLite.
//!
//! Read top-down: `cli` parses the command line and calls one function per
//! command; `config` loads settings; `clock` knows China's calendar;
//! `endpoint` lists the ten APIs; `wechat` holds tokens and the datacube
//! client; `ingest` plans chunks, normalises responses and runs the loop;
//! `store` is SQLite; `lock`, `daemon` and `status` serve the commands; `sim`
//! is the built-in simulator of the WeChat API; `demo` ties it all together.
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod endpoint;
pub mod exit;
pub mod ingest;
pub mod json;
pub mod lock;
pub mod report;
pub mod shutdown;
pub mod sim;
pub mod status;
pub mod store;
pub mod telemetry;
pub mod url_key;
pub mod wechat;
