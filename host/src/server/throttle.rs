//! Failed token attempts, counted per client address: an address that sends too many bad
//! tokens in a short time is refused (`429 Too Many Requests`) until the window has passed,
//! so tokens cannot be guessed at speed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bad tokens an address may send within [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered before old entries are dropped.
const MAX_ADDRESSES: usize = 10_000;

/// Failed attempts by address: how many, since when.
#[derive(Debug, Default)]
pub struct FailedTokens {
    by_address: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailedTokens {
    /// `Err(wait)` when `address` has used up its failures and must wait `wait`.
    pub fn check(&self, address: IpAddr) -> Result<(), Duration> {
        let by_address = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        match by_address.get(&address) {
            Some((count, since)) if *count >= MAX_FAILURES && since.elapsed() < WINDOW => Err(WINDOW - since.elapsed()),
            _ => Ok(()),
        }
    }

    /// Counts one failed attempt from `address`.
    pub fn record(&self, address: IpAddr) {
        let mut by_address = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        if by_address.len() >= MAX_ADDRESSES {
            by_address.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let entry = by_address.entry(address).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_too_many_failures_and_others_are_not() {
        let failed = FailedTokens::default();
        let (bad, other): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert!(failed.check(bad).is_ok());
            failed.record(bad);
        }
        assert!(failed.check(bad).unwrap_err() <= WINDOW);
        assert!(failed.check(other).is_ok());
    }
}
