//! The one integration test binary (one link step on 2 cores).
mod parsing;
