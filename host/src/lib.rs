//! Coffer: a backup engine in the spirit of Velero whose storage and snapshot providers are
//! sandboxed WebAssembly components.
//!
//! - [`api`]: the HTTP API's wire types, shared by the server and its clients;
//! - [`disk`]: the room a shared host keeps on its data disk for its own state;
//! - [`confine`]: where the paths a tenant names resolve, held as open directories;
//! - [`sandbox`]: the WebAssembly runtime and the capabilities of each provider instance;
//! - [`conformance`]: the provider contract's named checks (`coffer plugin test`);
//! - [`locations`]: backup storage and volume snapshot locations;
//! - [`object`]: object names and the errors of naming, finding and creating one;
//! - [`secrets`], [`keyring`]: credentials, sealed at rest; [`encryption`]: a location's age
//!   key, with which backups are encrypted client-side;
//! - [`state`], [`model`]: the state (the embedded redb file, or etcd shared by several servers) and its Velero-shaped objects;
//! - [`plugins`], [`embedded`]: the provider components; [`provider_template`]: a new one's crate;
//! - [`jobs`]: where accepted backups and restores run, a bounded number at once;
//! - [`controllers`]: what a server does by itself: validation, sync, schedules, GC;
//! - [`schedules`]: backups on a cadence;
//! - [`server`]: the HTTP API of a shared host;
//! - [`tenant`]: one tenant's namespace and tree, which every service call goes through;
//! - [`tokens`]: API tokens of a shared host; [`quotas`]: each tenant's share of the sandbox;

pub mod api;
pub mod backup;
pub mod coffer;
pub mod disk;
pub mod encryption;
pub mod confine;
pub mod conformance;
pub mod controllers;
pub mod embedded;
pub mod fsb;
pub mod jobs;
pub mod keyring;
pub mod locations;
pub mod model;
pub mod object;
pub mod plugin_store;
pub mod plugins;
pub mod provider_template;
pub mod quotas;
pub mod sandbox;
pub mod secret;
pub mod schedules;
pub mod secrets;
pub mod server;
pub mod state;
pub mod tenant;
pub mod tokens;
