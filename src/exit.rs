//! The exit codes every command returns: the contract scripts rely on.

/// Exit code: all requested work done.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run finished but some chunks failed.
pub const EXIT_FAILURES: u8 = 1;
/// Exit code: bad usage, configuration or input; nothing was fetched.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: another wxcube holds the database's lock.
pub const EXIT_LOCKED: u8 = 3;
