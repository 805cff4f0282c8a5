//! One tenant as the library serves it: the namespace its objects live in and the tree the
//! paths it names resolve in. Every call of the service layer goes through one; a single
//! user's command line is the trivial tenant, whose paths are the user's own.

use crate::confine::PathRoot;

/// A tenant: its namespace, and where the paths it names resolve.
#[derive(Debug, Clone)]
pub struct Tenant {
    namespace: String,
    paths: PathRoot,
}

impl Tenant {
    /// The single user of a command line, acting in `namespace`, whose paths are its own.
    pub fn single_user(namespace: impl Into<String>) -> Tenant {
        Tenant { namespace: namespace.into(), paths: PathRoot::Anywhere }
    }

    /// The tenant `namespace`, whose paths resolve in `paths`.
    pub(crate) fn new(namespace: impl Into<String>, paths: PathRoot) -> Tenant {
        Tenant { namespace: namespace.into(), paths }
    }

    /// The namespace its objects live in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Where the paths it names resolve: every path goes through here, confined (symbolic
    /// links resolved by the kernel) beneath the tenant's tree on a shared host.
    pub fn paths(&self) -> &PathRoot {
        &self.paths
    }
}
