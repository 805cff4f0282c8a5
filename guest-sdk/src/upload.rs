//! Uploads of any size: one request for an object smaller than a part, and parts for a larger
//! one, reading one part into guest memory at a time while a bounded number of earlier parts
//! await the service's answer.

use std::collections::VecDeque;

use crate::error::Result;
use crate::http::{Pending, Response};
use crate::streams::{InputStream, read_up_to};

/// How a service takes an object in parts (S3's multipart upload, Azure's blocks).
pub trait Parts {
    /// Sends part `number` (from 1) without waiting for its answer.
    fn send(&mut self, number: usize, bytes: &[u8]) -> Result<Pending>;
    /// Takes the answer to part `number`; parts are answered in order.
    fn answered(&mut self, number: usize, response: Response) -> Result<()>;
    /// Joins the parts into the object, once every part is answered.
    fn complete(self) -> Result<()>;
    /// Gives up after a failure, as well as it can (the failure is what the caller sees).
    fn abort(self);
}

/// Stores everything `body` holds: with `whole` when it is smaller than `part_size`, else in
/// parts through what `begin` starts, with at most `in_flight` parts awaiting answers.
/// Returns the number of bytes stored.
pub fn put<P: Parts>(
    body: &InputStream,
    part_size: usize,
    in_flight: usize,
    whole: impl FnOnce(&[u8]) -> Result<()>,
    begin: impl FnOnce() -> Result<P>,
) -> Result<u64> {
    let first = read_up_to(body, part_size)?;
    if first.len() < part_size {
        whole(&first)?;
        return Ok(first.len() as u64);
    }
    let mut parts = begin()?;
    match send_all(&mut parts, first, body, part_size, in_flight.max(1)) {
        Ok(total) => parts.complete().map(|()| total),
        Err(e) => {
            parts.abort();
            Err(e)
        }
    }
}

fn answer_oldest<P: Parts>(parts: &mut P, waiting: &mut VecDeque<(usize, Pending)>) -> Result<()> {
    match waiting.pop_front() {
        Some((number, pending)) => parts.answered(number, pending.wait()?),
        None => Ok(()),
    }
}

fn send_all<P: Parts>(parts: &mut P, first: Vec<u8>, body: &InputStream, part_size: usize, in_flight: usize) -> Result<u64> {
    let mut waiting: VecDeque<(usize, Pending)> = VecDeque::new();
    let (mut total, mut number, mut part) = (0u64, 0usize, first);
    while !part.is_empty() {
        number += 1;
        waiting.push_back((number, parts.send(number, &part)?));
        total += part.len() as u64;
        if waiting.len() >= in_flight {
            answer_oldest(parts, &mut waiting)?;
        }
        part = read_up_to(body, part_size)?;
    }
    while !waiting.is_empty() {
        answer_oldest(parts, &mut waiting)?;
    }
    Ok(total)
}
