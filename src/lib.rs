//! wxcube: copies a WeChat Official Account's datacube article statistics into SQLite.
//!
//! The modules follow the concepts: `config` (settings), `clock` (China's
//! calendar), `endpoint` (the ten APIs), `wechat` (tokens and the datacube
//! client), `ingest` (planning, normalisation, the run loop), `store` (SQLite),
//! `lock`, `daemon`, `sim` (the built-in simulator), `cli`.
pub mod clock;
pub mod config;
pub mod endpoint;
pub mod ingest;
pub mod store;
pub mod wechat;
