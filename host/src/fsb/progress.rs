//! How far a volume's backup or restore has got, in bytes: rustic reports its byte progress
//! to a [`DataCounter`], which the run reads while it waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rustic_core::{Progress, ProgressBars, ProgressType, RusticProgress};

/// Bytes done and in all of one volume's backup or restore, shared with rustic's threads.
#[derive(Debug, Default)]
pub struct DataCounter {
    done: AtomicU64,
    total: AtomicU64,
}

impl DataCounter {
    /// A counter at zero.
    pub fn new() -> Arc<Self> {
        Arc::new(DataCounter::default())
    }

    /// Bytes done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Bytes in all, as far as known (0 until counted).
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

/// rustic's progress bars, counting its byte progress (reading files in a backup, writing
/// them in a restore) into a [`DataCounter`]; its other bars are hidden.
#[derive(Debug, Clone)]
pub(super) struct CountingBars(pub Arc<DataCounter>);

impl ProgressBars for CountingBars {
    fn progress(&self, progress_type: ProgressType, _prefix: &str) -> Progress {
        match progress_type {
            ProgressType::Bytes => Progress::new(Counting(self.0.clone())),
            ProgressType::Spinner | ProgressType::Counter => Progress::hidden(),
        }
    }
}

/// One byte bar, counting into the shared counter.
#[derive(Debug)]
struct Counting(Arc<DataCounter>);

impl RusticProgress for Counting {
    fn is_hidden(&self) -> bool {
        false
    }

    fn set_length(&self, len: u64) {
        self.0.total.store(len, Ordering::Relaxed);
    }

    fn set_title(&self, _title: &str) {}

    fn inc(&self, inc: u64) {
        self.0.done.fetch_add(inc, Ordering::Relaxed);
    }

    fn finish(&self) {}
}
