//! The traits provider authors implement, and their glue to the generated bindings.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

use crate::bindings::{object_store as os, volume_snapshotter as vs};
use crate::streams::{InputStream, OutputStream};
use crate::{Config, Credential, Error, Manifest, Result};

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    /// The whole key.
    pub key: String,
    /// The object's length in bytes.
    pub size: u64,
}

/// An object store for one backup storage location, with Velero's ObjectStore semantics.
pub trait ObjectStore: Sized + 'static {
    /// What this provider is and what it may be granted.
    fn manifest() -> Manifest;
    /// Builds the instance from the location's config (see [`crate::Config`]) and credential.
    fn init(config: Vec<(String, String)>, credential: Option<Credential>) -> Result<Self>;
    /// Stores everything read from `body` as `key`, atomically. Returns the bytes stored.
    fn put_object(&self, bucket: &str, key: &str, body: InputStream) -> Result<u64>;
    /// Whether `key` exists; a missing key is `Ok(false)`.
    fn object_exists(&self, bucket: &str, key: &str) -> Result<bool>;
    /// Writes `key` to `sink`; a missing key is [`Error::NotFound`]. Returns the length.
    fn get_object(&self, bucket: &str, key: &str, sink: OutputStream) -> Result<u64>;
    /// Writes at most `length` bytes of `key` from byte `offset` to `sink`; returns how many:
    /// fewer only where the object ends first, none when `offset` is at or past its end. A
    /// missing key is [`Error::NotFound`]. Never called with a `length` of 0. (With HTTP,
    /// [`crate::http::range`] and [`crate::http::Response::splice_range_into`].)
    fn get_object_range(&self, bucket: &str, key: &str, offset: u64, length: u64, sink: OutputStream) -> Result<u64>;
    /// Distinct prefixes under `prefix` up to the next `delimiter`, each ending in it.
    fn list_common_prefixes(&self, bucket: &str, prefix: &str, delimiter: &str) -> Result<Vec<String>>;
    /// Every object under `prefix`, with its size.
    fn list_objects(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectEntry>>;
    /// Deletes `key`; a missing key is not an error.
    fn delete_object(&self, bucket: &str, key: &str) -> Result<()>;
    /// A URL to GET `key` for `ttl`.
    fn create_signed_url(&self, bucket: &str, key: &str, ttl: Duration) -> Result<String>;
}

/// A volume's type and IOPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The provider's volume type, e.g. `gp3`.
    pub volume_type: String,
    /// Provisioned IOPS, where the type has them.
    pub iops: Option<i64>,
}

/// A snapshot copied into this location by [`VolumeSnapshotter::copy_snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCopy {
    /// The copy's snapshot ID in this location.
    pub snapshot_id: String,
    /// The zone in which volumes are made from the copy (empty where there are no zones).
    pub volume_az: String,
}

/// A volume snapshotter for one volume snapshot location (Velero's VolumeSnapshotter v1).
pub trait VolumeSnapshotter: Sized + 'static {
    /// What this provider is and what it may be granted.
    fn manifest() -> Manifest;
    /// Builds the instance from the location's config and credential.
    fn init(config: Vec<(String, String)>, credential: Option<Credential>) -> Result<Self>;
    /// Creates a volume from a snapshot and returns its ID.
    fn create_volume_from_snapshot(
        &self,
        snapshot_id: &str,
        volume_type: &str,
        volume_az: &str,
        iops: Option<i64>,
    ) -> Result<String>;
    /// The volume ID behind the PersistentVolume JSON `pv`, or `None` if this provider does
    /// not handle it.
    fn get_volume_id(&self, pv: &str) -> Result<Option<String>>;
    /// `pv` rewritten to refer to `volume_id`.
    fn set_volume_id(&self, pv: &str, volume_id: &str) -> Result<String>;
    /// The type and IOPS of a volume.
    fn get_volume_info(&self, volume_id: &str, volume_az: &str) -> Result<VolumeInfo>;
    /// Snapshots a volume and returns the snapshot ID.
    fn create_snapshot(&self, volume_id: &str, volume_az: &str, tags: Vec<(String, String)>) -> Result<String>;
    /// Deletes a snapshot; a missing one is not an error.
    fn delete_snapshot(&self, snapshot_id: &str) -> Result<()>;
    /// Copies `snapshot_id`, taken through another location of this provider whose config is
    /// `source`, into this location, tagged with `tags`; the snapshot's volume was in
    /// `volume_az`. The source location's directories are mounted read-only under `/source`.
    /// Providers that cannot copy keep this default, which answers [`Error::Unsupported`].
    fn copy_snapshot(&self, snapshot_id: &str, source: Config, volume_az: &str, tags: Vec<(String, String)>) -> Result<SnapshotCopy> {
        let _ = (snapshot_id, source, volume_az, tags);
        Err(Error::Unsupported("copy-snapshot: this provider does not copy snapshots between locations".into()))
    }
}

thread_local! {
    /// The initialised provider of this instance. Components are single-threaded.
    static INSTANCE: RefCell<Option<Rc<dyn Any>>> = const { RefCell::new(None) };
}

fn install<T: 'static>(value: T) {
    INSTANCE.with(|slot| *slot.borrow_mut() = Some(Rc::new(value)));
}

fn with_instance<T: 'static, R, E: From<Error>>(f: impl FnOnce(&T) -> Result<R, E>) -> Result<R, E> {
    let instance = INSTANCE.with(|slot| slot.borrow().clone());
    let instance = instance.ok_or_else(|| Error::Other("provider called before init".into()))?;
    let typed = instance
        .downcast_ref::<T>()
        .ok_or_else(|| Error::Other("provider initialised as another type".into()))?;
    f(typed)
}

fn to_wit<T, W: From<Error>>(r: Result<T>) -> Result<T, W> {
    r.map_err(W::from)
}

/// Adapts an [`ObjectStore`] to the generated exports. Used by [`export_object_store!`].
#[doc(hidden)]
pub struct ObjectStoreExport<T>(PhantomData<T>);

impl<T: ObjectStore> os::exports::coffer::provider::object_store::Guest for ObjectStoreExport<T> {
    fn describe() -> os::wit::Manifest {
        T::manifest().into()
    }
    fn init(config: Vec<(String, String)>, credential: Option<Vec<u8>>) -> Result<(), os::wit::Error> {
        to_wit(T::init(config, credential.map(Credential::new)).map(install))
    }
    fn put_object(bucket: String, key: String, body: InputStream) -> Result<u64, os::wit::Error> {
        with_instance(|s: &T| to_wit(s.put_object(&bucket, &key, body)))
    }
    fn object_exists(bucket: String, key: String) -> Result<bool, os::wit::Error> {
        with_instance(|s: &T| to_wit(s.object_exists(&bucket, &key)))
    }
    fn get_object(bucket: String, key: String, sink: OutputStream) -> Result<u64, os::wit::Error> {
        with_instance(|s: &T| to_wit(s.get_object(&bucket, &key, sink)))
    }
    fn list_common_prefixes(bucket: String, prefix: String, delimiter: String) -> Result<Vec<String>, os::wit::Error> {
        with_instance(|s: &T| to_wit(s.list_common_prefixes(&bucket, &prefix, &delimiter)))
    }
    fn get_object_range(bucket: String, key: String, offset: u64, length: u64, sink: OutputStream) -> Result<u64, os::wit::Error> {
        with_instance(|s: &T| {
            // A read of nothing still answers whether the object exists.
            to_wit(match length {
                0 => s.object_exists(&bucket, &key).and_then(|found| match found {
                    true => Ok(0),
                    false => Err(Error::NotFound(key.clone())),
                }),
                _ => s.get_object_range(&bucket, &key, offset, length, sink),
            })
        })
    }
    fn list_objects(bucket: String, prefix: String) -> Result<Vec<os::ObjectEntry>, os::wit::Error> {
        with_instance(|s: &T| {
            to_wit(s.list_objects(&bucket, &prefix).map(|objects| {
                objects.into_iter().map(|o| os::ObjectEntry { key: o.key, size: o.size }).collect()
            }))
        })
    }
    fn delete_object(bucket: String, key: String) -> Result<(), os::wit::Error> {
        with_instance(|s: &T| to_wit(s.delete_object(&bucket, &key)))
    }
    fn create_signed_url(bucket: String, key: String, ttl_seconds: u64) -> Result<String, os::wit::Error> {
        with_instance(|s: &T| to_wit(s.create_signed_url(&bucket, &key, Duration::from_secs(ttl_seconds))))
    }
}

/// Adapts a [`VolumeSnapshotter`] to the generated exports. Used by
/// [`export_volume_snapshotter!`].
#[doc(hidden)]
pub struct VolumeSnapshotterExport<T>(PhantomData<T>);

impl<T: VolumeSnapshotter> vs::exports::coffer::provider::volume_snapshotter::Guest for VolumeSnapshotterExport<T> {
    fn describe() -> vs::wit::Manifest {
        T::manifest().into()
    }
    fn init(config: Vec<(String, String)>, credential: Option<Vec<u8>>) -> Result<(), vs::wit::Error> {
        to_wit(T::init(config, credential.map(Credential::new)).map(install))
    }
    fn create_volume_from_snapshot(
        snapshot_id: String,
        volume_type: String,
        volume_az: String,
        iops: Option<i64>,
    ) -> Result<String, vs::wit::Error> {
        with_instance(|s: &T| to_wit(s.create_volume_from_snapshot(&snapshot_id, &volume_type, &volume_az, iops)))
    }
    fn get_volume_id(pv: String) -> Result<Option<String>, vs::wit::Error> {
        with_instance(|s: &T| to_wit(s.get_volume_id(&pv)))
    }
    fn set_volume_id(pv: String, volume_id: String) -> Result<String, vs::wit::Error> {
        with_instance(|s: &T| to_wit(s.set_volume_id(&pv, &volume_id)))
    }
    fn get_volume_info(
        volume_id: String,
        volume_az: String,
    ) -> Result<vs::exports::coffer::provider::volume_snapshotter::VolumeInfo, vs::wit::Error> {
        with_instance(|s: &T| {
            to_wit(s.get_volume_info(&volume_id, &volume_az).map(|info| {
                vs::exports::coffer::provider::volume_snapshotter::VolumeInfo {
                    volume_type: info.volume_type,
                    iops: info.iops,
                }
            }))
        })
    }
    fn create_snapshot(volume_id: String, volume_az: String, tags: Vec<(String, String)>) -> Result<String, vs::wit::Error> {
        with_instance(|s: &T| to_wit(s.create_snapshot(&volume_id, &volume_az, tags)))
    }
    fn delete_snapshot(snapshot_id: String) -> Result<(), vs::wit::Error> {
        with_instance(|s: &T| to_wit(s.delete_snapshot(&snapshot_id)))
    }
    fn copy_snapshot(
        snapshot_id: String,
        source: Vec<(String, String)>,
        volume_az: String,
        tags: Vec<(String, String)>,
    ) -> Result<vs::exports::coffer::provider::volume_snapshotter::SnapshotCopy, vs::wit::Error> {
        with_instance(|s: &T| {
            let copy = s.copy_snapshot(&snapshot_id, Config::from_checked(source), &volume_az, tags);
            to_wit(copy.map(|c| vs::exports::coffer::provider::volume_snapshotter::SnapshotCopy {
                snapshot_id: c.snapshot_id,
                volume_az: c.volume_az,
            }))
        })
    }
}

/// Exports `$ty`, an [`ObjectStore`], as this component's `object-store-provider` world.
#[macro_export]
macro_rules! export_object_store {
    ($ty:ty) => {
        type __CofferObjectStoreExport = $crate::ObjectStoreExport<$ty>;
        $crate::bindings::object_store::export_object_store_world!(
            __CofferObjectStoreExport with_types_in $crate::bindings::object_store
        );
    };
}

/// Exports `$ty`, a [`VolumeSnapshotter`], as this component's `volume-snapshotter-provider`
/// world.
#[macro_export]
macro_rules! export_volume_snapshotter {
    ($ty:ty) => {
        type __CofferVolumeSnapshotterExport = $crate::VolumeSnapshotterExport<$ty>;
        $crate::bindings::volume_snapshotter::export_volume_snapshotter_world!(
            __CofferVolumeSnapshotterExport with_types_in $crate::bindings::volume_snapshotter
        );
    };
}
