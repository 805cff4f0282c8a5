//! Coffer's integration tests: one binary, a fresh temporary directory per test.

mod common;
mod sandbox_isolation;
