//! `coffer state migrate`: a state moved between a data directory's file and etcd.

use std::path::Path;

use anyhow::{Context, Result, bail};
use coffer::keyring::KEY_FILE;
use coffer::state::{STATE_FILE, State, StateLocation};

use super::args::{EtcdAccess, MigrateArgs};
use super::state_access::state_location;

/// Where a state is, as `--from` and `--to` name it.
enum Place<'a> {
    /// A data directory's file.
    DataDir(&'a Path),
    /// etcd.
    Etcd(StateLocation),
}

fn place<'a>(value: &'a str, etcd: &EtcdAccess) -> Result<Place<'a>> {
    if value.starts_with("etcd://") {
        return Ok(Place::Etcd(state_location(value, etcd)?));
    }
    Ok(Place::DataDir(Path::new(value)))
}

fn open(place: &Place<'_>, source: bool) -> Result<State> {
    match place {
        Place::DataDir(dir) => {
            if source && !dir.join(STATE_FILE).is_file() {
                bail!("{} holds no state ({STATE_FILE})", dir.display());
            }
            State::open(dir).with_context(|| format!("opening the state of {}", dir.display()))
        }
        Place::Etcd(location) => State::open_at(Path::new("."), location).context("opening the state in etcd"),
    }
}

/// Copies every object of `--from` into `--to`, and says which master key the secrets need.
pub fn migrate(args: &MigrateArgs, etcd: &EtcdAccess) -> Result<()> {
    let (from, to) = (place(&args.from, etcd).context("--from")?, place(&args.to, etcd).context("--to")?);
    if let (Place::DataDir(a), Place::DataDir(b)) = (&from, &to) {
        bail!("--from {} and --to {}: one of the two must be etcd://", a.display(), b.display());
    }
    let (source, target) = (open(&from, true)?, open(&to, false)?);
    let moved = source.migrate_to(&target)?;
    println!("Copied {moved} objects from {} to {}.", source.path(), target.path());
    match (&from, &to) {
        (Place::DataDir(dir), _) => eprintln!(
            "Secrets stay sealed with {}: give every server of the new state --master-key-file {0}.",
            dir.join(KEY_FILE).display()
        ),
        (_, Place::DataDir(dir)) => eprintln!(
            "Secrets stay sealed with the master key the servers were given: copy it to {} (mode 0600), or keep giving --master-key-file.",
            dir.join(KEY_FILE).display()
        ),
        _ => {}
    }
    Ok(())
}
