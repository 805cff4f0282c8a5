//! `--state` and the `--etcd-*` options: where the state is kept, and how to reach its etcd.

use std::path::Path;

use anyhow::{Context, Result, bail};
use coffer::secret::SecretBytes;
use coffer::state::{EtcdTls, EtcdUser, StateLocation};

use super::args::EtcdAccess;

/// The state `value` names (`etcd://…`, or empty for the data directory's file), reached as
/// `access` says. The `--etcd-*` options apply only to an etcd state.
pub fn state_location(value: &str, access: &EtcdAccess) -> Result<StateLocation> {
    let mut location = StateLocation::parse(value).map_err(anyhow::Error::msg)?;
    let StateLocation::Etcd(options) = &mut location else {
        let given = [
            ("--etcd-cacert", access.etcd_cacert.is_some()),
            ("--etcd-cert", access.etcd_cert.is_some()),
            ("--etcd-user", access.etcd_user.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
            bail!("{flag} applies only to a state in etcd (--state etcd://...)");
        }
        return Ok(location);
    };
    let identity = match (&access.etcd_cert, &access.etcd_key) {
        (Some(cert), Some(key)) => Some((read("--etcd-cert", cert)?, SecretBytes::new(read("--etcd-key", key)?))),
        _ => None,
    };
    match &access.etcd_cacert {
        Some(ca) => options.tls = Some(EtcdTls { ca: read("--etcd-cacert", ca)?, identity }),
        None if identity.is_some() => bail!("--etcd-cert needs --etcd-cacert: the CA that signed the etcd members' certificates"),
        None => {}
    }
    if let (Some(name), Some(file)) = (&access.etcd_user, &access.etcd_password_file) {
        let mut password = read("--etcd-password-file", file)?;
        // A trailing newline, as `echo` and editors leave, is not part of the password.
        while password.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            password.pop();
        }
        if password.is_empty() {
            bail!("--etcd-password-file {}: the file is empty", file.display());
        }
        options.user = Some(EtcdUser { name: name.clone(), password: SecretBytes::new(password) });
    }
    Ok(location)
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot be read", path.display()))
}
