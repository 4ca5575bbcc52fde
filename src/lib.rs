//! wxcube: copies a WeChat Official Account's datacube article statistics into SQLite.
pub mod clock;
pub mod endpoint;
