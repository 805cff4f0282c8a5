//! Coffer's integration tests: one binary, a fresh temporary directory per test.

mod common;
mod confinement;
mod conformance;
mod controller_clock;
mod azure;
mod backups;
mod cli_everywhere;
mod cli_locations;
mod credentials;
mod disk_full;
mod ebs;
mod gcs;
mod host_hardening;
mod layering;
mod hostile_tenants;
mod local_snapshots;
mod quotas;
mod recovery;
mod s3;
mod sandbox_isolation;
mod server_api;
mod server_controllers;
mod server_hardening;
mod servers;
mod state_crash;
mod ttls;
