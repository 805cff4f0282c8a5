//! What can go wrong when the host calls a provider.

use std::time::Duration;

use thiserror::Error;

/// A failed provider call, naming the location it served.
#[derive(Debug, Error)]
#[error("{location}: {kind}")]
pub struct ProviderError {
    /// The location the instance serves, e.g. `backup-location "default"`.
    pub location: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// Why a provider call failed: either the provider's own answer (the WIT `error` variant) or
/// the sandbox stopping it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The provider: the object, volume or snapshot does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The provider: it already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The provider: the credential does not allow the operation.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The provider: the credential is missing or rejected.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// The provider: a config key is unknown, missing or wrong.
    #[error("invalid config key {key:?}: {reason}")]
    InvalidConfig {
        /// The key at fault.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The provider: an argument is malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The provider: its backing service failed or could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The provider: the operation is not implemented.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The provider: any other failure.
    #[error("{0}")]
    Other(String),
    /// The sandbox: the call ran longer than its CPU-time budget and was interrupted.
    #[error("stopped after exceeding its CPU-time limit of {0:?}; the instance was discarded")]
    CpuLimit(Duration),
    /// The sandbox: the call took longer than its wall-clock deadline.
    #[error("stopped after exceeding its call deadline of {0:?}; the instance was discarded")]
    Deadline(Duration),
    /// The sandbox: the instance asked for more memory than its limit and then trapped.
    #[error("trapped after being refused memory beyond its limit of {limit} bytes; the instance was discarded")]
    MemoryLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// The sandbox: the instance trapped.
    #[error("trapped: {0}; the instance was discarded")]
    Trap(String),
    /// The sandbox: the instance could not be created.
    #[error("could not be instantiated: {0}")]
    Instantiate(String),
    /// Reading the data to upload failed on the host side.
    #[error("reading the data to store failed: {0}")]
    Source(std::io::Error),
    /// A write refused because the host's data disk is short of the space kept for its state.
    #[error("refused: {0}")]
    NoRoom(crate::disk::BelowReserve),
    /// Writing the downloaded data failed on the host side.
    #[error("writing the fetched data failed: {0}")]
    Sink(std::io::Error),
    /// The provider answered something that cannot be right, such as a listed key outside the
    /// prefix it was asked for.
    #[error("answered nonsense: {0}")]
    InvalidAnswer(String),
    /// An object the host reads into memory is larger than the host allows for it.
    #[error("object {key:?} is larger than the {limit} bytes allowed for it")]
    TooLarge {
        /// The object.
        key: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The component was built against an earlier contract, which lacks the call.
    #[error("was built against contract {contract}, which has no {call} (added in {added}); rebuild it against the current coffer-guest-sdk")]
    OlderContract {
        /// The contract version the component implements.
        contract: &'static str,
        /// The call it lacks, as `wit/` names it.
        call: &'static str,
        /// The contract version that added the call.
        added: &'static str,
    },
    /// The provider reported a length that differs from what crossed the stream.
    #[error("reported {reported} bytes but {moved} crossed the stream")]
    LengthMismatch {
        /// What the provider returned.
        reported: u64,
        /// What the host counted.
        moved: u64,
    },
}

/// The longest provider message the host keeps (it ends up in statuses, logs and answers).
pub const MAX_MESSAGE: usize = 4096;

/// `message` cut to [`MAX_MESSAGE`] bytes (at a character boundary), saying how much was cut.
pub fn bounded(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let total = message.len();
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(&format!("… ({} more bytes cut)", total - end));
    message
}

macro_rules! from_wit_error {
    ($($types:tt)*) => {
        impl From<$($types)*::Error> for ErrorKind {
            fn from(e: $($types)*::Error) -> Self {
                use $($types)*::Error as W;
                let b = bounded;
                match e {
                    W::NotFound(m) => ErrorKind::NotFound(b(m)),
                    W::AlreadyExists(m) => ErrorKind::AlreadyExists(b(m)),
                    W::PermissionDenied(m) => ErrorKind::PermissionDenied(b(m)),
                    W::Unauthenticated(m) => ErrorKind::Unauthenticated(b(m)),
                    W::InvalidConfig(c) => ErrorKind::InvalidConfig { key: b(c.key), reason: b(c.reason) },
                    W::InvalidArgument(m) => ErrorKind::InvalidArgument(b(m)),
                    W::Unavailable(m) => ErrorKind::Unavailable(b(m)),
                    W::Unsupported(m) => ErrorKind::Unsupported(b(m)),
                    W::Other(m) => ErrorKind::Other(b(m)),
                }
            }
        }
    };
}

from_wit_error!(super::bindings::object_store::coffer::provider::types);
from_wit_error!(super::bindings::volume_snapshotter::coffer::provider::types);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages_are_bounded() {
        assert_eq!(bounded("short".into()), "short");
        let long = bounded("é".repeat(100_000));
        assert!(long.len() < MAX_MESSAGE + 64 && long.ends_with("more bytes cut)"), "{}", long.len());
    }
}
