//! Coffer's integration tests: one binary, a fresh temporary directory per test.

mod common;
mod backups;
mod cli_backups;
mod cli_locations;
mod credentials;
mod local_snapshots;
mod sandbox_isolation;
mod state_crash;
