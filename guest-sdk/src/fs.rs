//! Files in the directories the host granted, through `wasi:filesystem` descriptors, so that
//! file bodies can be spliced to and from host streams without entering guest memory.

pub use wasip2::filesystem::types::{Descriptor, DescriptorFlags, DescriptorType, ErrorCode, OpenFlags, PathFlags};

use crate::Error;
use crate::streams::{InputStream, OutputStream, splice_all, splice_up_to};

/// Prefix of the temporary files written before an atomic rename. Keys and names starting
/// with it are reserved.
pub const TEMP_PREFIX: &str = ".coffer-tmp-";

/// Maps a `wasi:filesystem` error on `what` to the SDK error that means the same thing.
pub fn fs_error(what: &str, code: ErrorCode) -> Error {
    let text = format!("{what}: {}", code.message());
    match code {
        ErrorCode::NoEntry => Error::NotFound(text),
        ErrorCode::Exist | ErrorCode::NotEmpty => Error::AlreadyExists(text),
        ErrorCode::Access | ErrorCode::NotPermitted | ErrorCode::ReadOnly => Error::PermissionDenied(text),
        ErrorCode::Invalid | ErrorCode::NameTooLong | ErrorCode::Loop => Error::InvalidArgument(text),
        ErrorCode::InsufficientSpace | ErrorCode::Quota => Error::Unavailable(text),
        _ => Error::Other(text),
    }
}

/// The directory the host granted at `guest_path`, or an error naming it.
pub fn preopen(guest_path: &str) -> Result<Descriptor, Error> {
    wasip2::filesystem::preopens::get_directories()
        .into_iter()
        .find_map(|(dir, path)| (path == guest_path).then_some(dir))
        .ok_or_else(|| Error::PermissionDenied(format!("no directory is granted at {guest_path}")))
}

/// A random lowercase hex string of `bytes` bytes, from `wasi:random`.
pub fn random_hex(bytes: u64) -> String {
    wasip2::random::random::get_random_bytes(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The type of `path` under `dir` (symlinks not followed), `None` when it does not exist.
pub fn kind_of(dir: &Descriptor, path: &str) -> Result<Option<DescriptorType>, Error> {
    match dir.stat_at(PathFlags::empty(), path) {
        Ok(stat) => Ok(Some(stat.type_)),
        Err(ErrorCode::NoEntry | ErrorCode::NotDirectory) => Ok(None),
        Err(code) => Err(fs_error(path, code)),
    }
}

/// Creates `path` and its missing parents under `dir`.
pub fn create_dir_all(dir: &Descriptor, path: &str) -> Result<(), Error> {
    let mut built = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if !built.is_empty() {
            built.push('/');
        }
        built.push_str(segment);
        match dir.create_directory_at(&built) {
            Ok(()) | Err(ErrorCode::Exist) => {}
            Err(code) => return Err(fs_error(&built, code)),
        }
    }
    Ok(())
}

/// Writes everything from `body` to `path` under `dir` atomically: into a temporary file in the
/// same directory, synced, then renamed over `path`. Readers see the old file or the whole new
/// one, never a part. Returns the bytes written.
pub fn write_atomically(dir: &Descriptor, path: &str, body: &InputStream) -> Result<u64, Error> {
    let (parent, _) = path.rsplit_once('/').unwrap_or(("", path));
    if !parent.is_empty() {
        create_dir_all(dir, parent)?;
    }
    let temp = if parent.is_empty() {
        format!("{TEMP_PREFIX}{}", random_hex(8))
    } else {
        format!("{parent}/{TEMP_PREFIX}{}", random_hex(8))
    };
    let result = (|| {
        let file = dir
            .open_at(PathFlags::empty(), &temp, OpenFlags::CREATE | OpenFlags::EXCLUSIVE, DescriptorFlags::WRITE)
            .map_err(|c| fs_error(&temp, c))?;
        let written = {
            let sink = file.write_via_stream(0).map_err(|c| fs_error(&temp, c))?;
            splice_all(body, &sink)?
        };
        file.sync_data().map_err(|c| fs_error(&temp, c))?;
        drop(file);
        dir.rename_at(&temp, dir, path).map_err(|c| fs_error(path, c))?;
        Ok(written)
    })();
    if result.is_err() {
        let _ = dir.unlink_file_at(&temp);
    }
    result
}

/// Streams the regular file `path` under `dir` into `sink`. Returns its length.
pub fn read_into(dir: &Descriptor, path: &str, sink: &OutputStream) -> Result<u64, Error> {
    let file = dir
        .open_at(PathFlags::empty(), path, OpenFlags::empty(), DescriptorFlags::READ)
        .map_err(|c| fs_error(path, c))?;
    let source = file.read_via_stream(0).map_err(|c| fs_error(path, c))?;
    splice_all(&source, sink)
}

/// Streams at most `length` bytes of the regular file `path` under `dir`, from byte `offset`,
/// into `sink`. Returns how many (none from at or past its end).
pub fn read_range_into(dir: &Descriptor, path: &str, offset: u64, length: u64, sink: &OutputStream) -> Result<u64, Error> {
    let file = dir
        .open_at(PathFlags::empty(), path, OpenFlags::empty(), DescriptorFlags::READ)
        .map_err(|c| fs_error(path, c))?;
    let source = file.read_via_stream(offset).map_err(|c| fs_error(path, c))?;
    splice_up_to(&source, sink, length)
}

/// The size of the file `path` under `dir` (symlinks not followed).
pub fn size_of(dir: &Descriptor, path: &str) -> Result<u64, Error> {
    dir.stat_at(PathFlags::empty(), path).map(|stat| stat.size).map_err(|c| fs_error(path, c))
}

/// Copies the regular file `from` under `from_dir` to `to` under `to_dir` (which must not
/// exist). The bytes move inside the host.
pub fn copy_file(from_dir: &Descriptor, from: &str, to_dir: &Descriptor, to: &str) -> Result<u64, Error> {
    let source = from_dir
        .open_at(PathFlags::empty(), from, OpenFlags::empty(), DescriptorFlags::READ)
        .map_err(|c| fs_error(from, c))?;
    let target = to_dir
        .open_at(PathFlags::empty(), to, OpenFlags::CREATE | OpenFlags::EXCLUSIVE, DescriptorFlags::WRITE)
        .map_err(|c| fs_error(to, c))?;
    let copied = {
        let input = source.read_via_stream(0).map_err(|c| fs_error(from, c))?;
        let output = target.write_via_stream(0).map_err(|c| fs_error(to, c))?;
        splice_all(&input, &output)?
    };
    target.sync_data().map_err(|c| fs_error(to, c))?;
    Ok(copied)
}

/// The names in directory `path` under `dir` (`.` and `..` excluded), with their types.
pub fn read_dir(dir: &Descriptor, path: &str) -> Result<Vec<(String, DescriptorType)>, Error> {
    let sub = if path.is_empty() {
        None
    } else {
        Some(
            dir.open_at(PathFlags::empty(), path, OpenFlags::DIRECTORY, DescriptorFlags::READ)
                .map_err(|c| fs_error(path, c))?,
        )
    };
    let listing = sub.as_ref().unwrap_or(dir).read_directory().map_err(|c| fs_error(path, c))?;
    let mut out = Vec::new();
    while let Some(entry) = listing.read_directory_entry().map_err(|c| fs_error(path, c))? {
        if entry.name != "." && entry.name != ".." {
            out.push((entry.name, entry.type_));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes `path` under `dir` and everything below it. A missing path is not an error.
pub fn remove_all(dir: &Descriptor, path: &str) -> Result<(), Error> {
    match kind_of(dir, path)? {
        None => Ok(()),
        Some(DescriptorType::Directory) => {
            for (name, _) in read_dir(dir, path)? {
                remove_all(dir, &format!("{path}/{name}"))?;
            }
            dir.remove_directory_at(path).map_err(|c| fs_error(path, c))
        }
        Some(_) => match dir.unlink_file_at(path) {
            Ok(()) | Err(ErrorCode::NoEntry) => Ok(()),
            Err(code) => Err(fs_error(path, code)),
        },
    }
}
