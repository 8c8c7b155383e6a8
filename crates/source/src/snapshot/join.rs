//! Joining scanned items with the stream so that no item's state steps
//! back in time (the watermark idea of Netflix's DBLog, with the stream's
//! record times for watermarks, since the adapter may not write to the
//! table).
//!
//! The scan reads the table in chunks; each chunk knows when its read began
//! and ended (`read_from`, `read_to`, on the adapter's clock). The stream is
//! read from before the snapshot began. A chunk's row is the item's state at
//! some moment of the chunk's read, so:
//! - a row whose item has a stream record from `read_from - margin` on is
//!   dropped: the stream brings that item's state, as new or newer;
//! - the other rows are emitted once every stream record up to
//!   `read_to + margin` is delivered, and before any later one is: they are
//!   then the item's latest state, in the stream's order.
//!
//! `margin` covers the record times' rounding (AWS rounds down to the
//! second, DynamoDB Local to the minute) and the clocks' skew. The stream
//! must be read from `snapshot start - margin` on, or a dropped row's change
//! could be skipped with the records older than the start.
//!
//! Owns the decision, row by row and chunk by chunk. It never reads the
//! table or the stream and never delivers: the engine tells it what it read
//! and how far delivery has passed, and delivers what it hands back.

use std::collections::BTreeMap;

/// Scanned rows and when their read began and ended (ms since the epoch).
#[derive(Debug, Clone)]
pub struct Chunk<K, R> {
    pub read_from_ms: i64,
    pub read_to_ms: i64,
    pub rows: Vec<(K, R)>,
}

#[derive(Debug)]
pub struct SnapshotJoin<K, R> {
    margin_ms: i64,
    /// In the order they were added.
    pending: Vec<Chunk<K, R>>,
    /// Each item's newest stream record time seen.
    changed: BTreeMap<K, i64>,
}

impl<K: Ord + Clone, R> SnapshotJoin<K, R> {
    pub fn new(margin_ms: i64) -> Self {
        SnapshotJoin {
            margin_ms,
            pending: Vec::new(),
            changed: BTreeMap::new(),
        }
    }

    /// A chunk just read.
    pub fn add_chunk(&mut self, chunk: Chunk<K, R>) {
        self.pending.push(chunk);
    }

    /// A stream record of `key`, read (it need not be delivered yet).
    pub fn record(&mut self, key: K, record_time_ms: i64) {
        let newest = self.changed.entry(key).or_insert(record_time_ms);
        *newest = (*newest).max(record_time_ms);
    }

    /// The rows to deliver now, before any stream record after `passed_ms`:
    /// every stream record up to `passed_ms` is delivered. Chunks come out
    /// whole, in the order they were added.
    pub fn take_ready(&mut self, passed_ms: i64) -> Vec<(K, R)> {
        let margin = self.margin_ms;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|c| c.read_to_ms.saturating_add(margin) <= passed_ms);
        self.pending = waiting;
        let changed = &self.changed;
        ready
            .into_iter()
            .flat_map(|chunk| {
                let since = chunk.read_from_ms - margin;
                chunk
                    .rows
                    .into_iter()
                    .filter(move |(key, _)| changed.get(key).is_none_or(|t| *t < since))
            })
            .collect()
    }

    /// Forgets records older than `ms - margin`: no chunk read from before
    /// `ms` is pending or still to come.
    pub fn forget_before(&mut self, ms: i64) {
        let floor = self
            .pending
            .iter()
            .map(|c| c.read_from_ms)
            .min()
            .unwrap_or(ms)
            .min(ms)
            - self.margin_ms;
        self.changed.retain(|_, t| *t >= floor);
    }

    /// Rows read and not yet handed back.
    pub fn pending_rows(&self) -> usize {
        self.pending.iter().map(|c| c.rows.len()).sum()
    }
}

#[cfg(test)]
mod tests;
