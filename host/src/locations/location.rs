//! What backup storage locations and volume snapshot locations share, written once: their
//! label in messages, creation after a check of their provider, a new credential, and the
//! outcome of a validation recorded in their status.

use std::collections::BTreeMap;

use crate::coffer::Coffer;
use crate::model::{BackupStorageLocation, LocationPhase, LocationStatus, SecretKeySelector, VolumeSnapshotLocation, now};
use crate::object::ObjectError;
use crate::sandbox::ProviderKind;
use crate::state::{Resource, Txn};

use super::LocationError;
use super::credentials::resolve_credential;
use super::directories::check_apart;

/// A kind of location.
pub(super) trait Location: Resource + Clone + Send + Sync {
    /// The kind in errors, e.g. `backup storage location`.
    const NOUN: &'static str;
    /// The command that manages it, labelling it in messages, e.g. `backup-location`.
    const COMMAND: &'static str;
    /// The kind of provider it runs.
    const PROVIDER: ProviderKind;

    /// Its provider's name.
    fn provider(&self) -> &str;
    /// Its provider's config.
    fn config(&self) -> &BTreeMap<String, String>;
    /// Its own credential.
    fn credential_mut(&mut self) -> &mut Option<SecretKeySelector>;
    /// Its status.
    fn status_mut(&mut self) -> &mut LocationStatus;
    /// Checks it through its provider.
    async fn probe(&self, coffer: &Coffer) -> Result<(), LocationError>;

    /// Refuses to create it when the name is taken (or, for a kind with more rules, breaks one).
    fn check_create(&self, txn: &Txn<'_>) -> Result<(), LocationError> {
        match txn.get::<Self>(self.namespace(), self.name())? {
            Some(_) => Err(ObjectError::already_exists(Self::NOUN, self.name()).into()),
            None => Ok(()),
        }
    }
}

/// The accessors, on the fields both kinds name alike.
macro_rules! same_fields {
    () => {
        fn provider(&self) -> &str {
            &self.spec.provider
        }

        fn config(&self) -> &BTreeMap<String, String> {
            &self.spec.config
        }

        fn credential_mut(&mut self) -> &mut Option<SecretKeySelector> {
            &mut self.spec.credential
        }

        fn status_mut(&mut self) -> &mut LocationStatus {
            &mut self.status
        }
    };
}

impl Location for BackupStorageLocation {
    const NOUN: &'static str = "backup storage location";
    const COMMAND: &'static str = "backup-location";
    const PROVIDER: ProviderKind = ProviderKind::ObjectStore;

    same_fields!();

    async fn probe(&self, coffer: &Coffer) -> Result<(), LocationError> {
        super::backup_storage::validate_backup_storage_location(coffer, self).await
    }

    /// Also refuses a second default.
    fn check_create(&self, txn: &Txn<'_>) -> Result<(), LocationError> {
        if txn.get::<Self>(self.namespace(), self.name())?.is_some() {
            return Err(ObjectError::already_exists(Self::NOUN, self.name()).into());
        }
        if self.spec.default
            && let Some(existing) = txn.list::<Self>(self.namespace())?.into_iter().find(|b| b.spec.default)
        {
            return Err(LocationError::SecondDefault { name: self.name().to_owned(), existing: existing.metadata.name });
        }
        Ok(())
    }
}

impl Location for VolumeSnapshotLocation {
    const NOUN: &'static str = "volume snapshot location";
    const COMMAND: &'static str = "snapshot-location";
    const PROVIDER: ProviderKind = ProviderKind::VolumeSnapshotter;

    same_fields!();

    async fn probe(&self, coffer: &Coffer) -> Result<(), LocationError> {
        super::snapshot::volume_snapshotter_for(coffer, self).await.map(drop)
    }
}

/// How a location is named in messages, e.g. `backup-location "default"`.
pub(super) fn label<L: Location>(location: &L) -> String {
    format!("{} {:?}", L::COMMAND, location.name())
}

/// Creates `location` after checking that its provider initialises with its config and
/// credential. A wrong definition (unknown provider or config key, unusable directory,
/// missing credential) is refused with that error; a location that is merely unreachable (or,
/// for a backup storage location, whose bucket holds other data) is created Unavailable with
/// the reason, as Velero does.
pub(super) async fn create<L: Location>(coffer: &Coffer, mut location: L) -> Result<L, LocationError> {
    location.check_create(&coffer.state.read()?)?;
    check_apart(coffer, location.namespace(), &label(&location), location.provider(), L::PROVIDER, location.config())?;
    match location.probe(coffer).await {
        Err(e) if e.is_definition_error() => return Err(e),
        outcome => set_status(&mut location, outcome),
    }
    coffer.state.write(|txn| {
        location.check_create(txn)?;
        Ok::<_, LocationError>(txn.put(&mut location)?)
    })?;
    Ok(location)
}

/// Gives `location` its own `credential`, which must resolve.
pub(super) fn set_credential<L: Location>(txn: &Txn<'_>, coffer: &Coffer, location: &mut L, credential: SecretKeySelector) -> Result<(), LocationError> {
    resolve_credential(txn, &coffer.keyring, location.namespace(), &label(location), Some(&credential))?;
    *location.credential_mut() = Some(credential);
    Ok(())
}

/// Records a validation outcome in `location`'s status, in Velero's words.
fn set_status<L: Location>(location: &mut L, outcome: Result<(), LocationError>) {
    let (phase, message) = match outcome {
        Ok(()) => (LocationPhase::Available, String::new()),
        Err(e) => {
            let message = format!("{} {:?} is unavailable: {}", L::KIND, location.name(), e.reason());
            tracing::warn!("{message}");
            (LocationPhase::Unavailable, message)
        }
    };
    let status = location.status_mut();
    status.phase = Some(phase);
    status.message = message;
    status.last_validation_time = Some(now());
}

/// Validates `location` and stores the outcome in its status (if it still exists).
pub(super) async fn record_validation<L: Location>(coffer: &Coffer, mut location: L) -> Result<L, LocationError> {
    let outcome = location.probe(coffer).await;
    set_status(&mut location, outcome);
    coffer.state.write(|txn| {
        if let Some(mut stored) = txn.get::<L>(location.namespace(), location.name())? {
            let (checked, status) = (location.status_mut().clone(), stored.status_mut());
            status.phase = checked.phase;
            status.message = checked.message;
            status.last_validation_time = checked.last_validation_time;
            txn.put(&mut stored)?;
            location = stored;
        }
        Ok::<_, LocationError>(())
    })?;
    Ok(location)
}
