//! Counts and latencies of provider calls, by operation and outcome, for metrics and for the
//! load test's percentiles.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets: 50 µs growing by a quarter up to ~10 min.
fn bounds() -> &'static [f64] {
    static BOUNDS: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| std::iter::successors(Some(50e-6), |b| (*b < 600.0).then_some(b * 1.25)).collect())
}

/// A latency histogram with fixed buckets (seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Calls per bucket; the last counts those above every bound.
    pub counts: Vec<u64>,
    /// Sum of all latencies, seconds.
    pub sum: f64,
}

impl Histogram {
    fn record(&mut self, seconds: f64) {
        let bounds = bounds();
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let i = bounds.partition_point(|b| *b < seconds);
        self.counts[i] += 1;
        self.sum += seconds;
    }

    /// Number of calls recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The bucket bounds with cumulative counts, as Prometheus `le` buckets (the last is +Inf).
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        let mut out: Vec<(f64, u64)> = bounds().iter().zip(&self.counts).map(|(b, c)| {
            total += c;
            (*b, total)
        }).collect();
        out.push((f64::INFINITY, self.count()));
        out
    }

    /// The upper bound of the bucket holding quantile `q` (0–1): within 25% above the truth.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let (bound, _) = self.cumulative().into_iter().find(|(_, c)| *c >= rank)?;
        Some(Duration::from_secs_f64(bound.min(bounds()[bounds().len() - 1])))
    }

    /// Adds `other`'s calls to these.
    pub fn merge(&mut self, other: &Histogram) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds().len() + 1];
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
    }
}

/// Provider-call statistics of one sandbox.
#[derive(Debug, Default)]
pub struct CallStats {
    by_call: Mutex<BTreeMap<(&'static str, bool), Histogram>>,
}

impl CallStats {
    /// Records one call of `operation` that took `elapsed` and succeeded or not.
    pub(crate) fn record(&self, operation: &'static str, ok: bool, elapsed: Duration) {
        let mut by_call = self.by_call.lock().unwrap_or_else(|e| e.into_inner());
        by_call.entry((operation, ok)).or_default().record(elapsed.as_secs_f64());
    }

    /// A copy of the histograms, keyed by operation and whether the call succeeded.
    pub fn snapshot(&self) -> BTreeMap<(&'static str, bool), Histogram> {
        self.by_call.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every call's latency in one histogram.
    pub fn all_calls(&self) -> Histogram {
        let mut all = Histogram::default();
        for h in self.snapshot().values() {
            all.merge(h);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_buckets() {
        let stats = CallStats::default();
        for _ in 0..99 {
            stats.record("exists", true, Duration::from_micros(100));
        }
        stats.record("put", false, Duration::from_millis(50));
        let all = stats.all_calls();
        assert_eq!(all.count(), 100);
        let p50 = all.quantile(0.5).unwrap();
        assert!(p50 >= Duration::from_micros(100) && p50 < Duration::from_micros(125), "{p50:?}");
        let p100 = all.quantile(1.0).unwrap();
        assert!(p100 >= Duration::from_millis(50) && p100 < Duration::from_micros(62_500), "{p100:?}");
        assert_eq!(all.cumulative().last(), Some(&(f64::INFINITY, 100)));
        assert_eq!(stats.snapshot().len(), 2);
    }
}
