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
//! - the other rows are emitted once the record of every write made up to
//!   `read_to` is delivered, and before any record read after that moment
//!   is: a later record of the item would have dropped the row, so the row
//!   is the item's latest state, in the stream's order.
//!
//! `margin` covers the record times' rounding (AWS rounds down to the
//! second, DynamoDB Local to the minute) and the clocks' skew: a write made
//! during the read has a record time of `read_from - margin` or later. Every
//! write is either in the stream as read or made before it began, and then
//! before every chunk's read (the engine starts the scan after the stream).
//!
//! How far delivery has passed is the engine's to say (the shard readers'
//! watermark, in write time on this machine's clock); the join only asks
//! for it.
//!
//! Owns the decision, row by row and chunk by chunk. It never reads the
//! table or the stream and never delivers: the engine tells it what it read
//! and how far delivery has passed, and delivers what it hands back.

use std::collections::BTreeMap;

/// Scanned rows and when their read began and ended (ms since the epoch),
/// with what the caller needs back when the chunk is released (`then`).
#[derive(Debug, Clone)]
pub struct Chunk<K, R, T = ()> {
    pub read_from_ms: i64,
    pub read_to_ms: i64,
    pub rows: Vec<(K, R)>,
    pub then: T,
}

#[derive(Debug)]
pub struct SnapshotJoin<K, R, T = ()> {
    margin_ms: i64,
    /// In the order they were added.
    pending: std::collections::VecDeque<Chunk<K, R, T>>,
    /// Each item's newest stream record time seen.
    changed: BTreeMap<K, i64>,
}

impl<K: Ord + Clone, R, T> SnapshotJoin<K, R, T> {
    pub fn new(margin_ms: i64) -> Self {
        SnapshotJoin {
            margin_ms,
            pending: Default::default(),
            changed: BTreeMap::new(),
        }
    }

    /// A chunk just read.
    pub fn add_chunk(&mut self, chunk: Chunk<K, R, T>) {
        self.pending.push_back(chunk);
    }

    /// A stream record of `key`, read (it need not be delivered yet).
    pub fn record(&mut self, key: K, record_time_ms: i64) {
        let newest = self.changed.entry(key).or_insert(record_time_ms);
        *newest = (*newest).max(record_time_ms);
    }

    /// The first chunk (in the order they were added) to deliver now, its
    /// rows filtered: the record of every write made up to `passed_ms` is
    /// delivered. Its rows must be delivered before any record read after
    /// this call, and before the next chunk is asked for (that one is
    /// filtered by the records seen until then). With it, how many of its
    /// rows were dropped.
    pub fn take_ready(&mut self, passed_ms: i64) -> Option<(Chunk<K, R, T>, usize)> {
        let at = self
            .pending
            .iter()
            .position(|c| c.read_to_ms <= passed_ms)?;
        let mut chunk = self.pending.remove(at)?;
        let since = chunk.read_from_ms - self.margin_ms;
        let read = chunk.rows.len();
        chunk
            .rows
            .retain(|(key, _)| self.changed.get(key).is_none_or(|t| *t < since));
        let dropped = read - chunk.rows.len();
        Some((chunk, dropped))
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

    /// Chunks read and not yet handed back.
    pub fn pending_chunks(&self) -> usize {
        self.pending.len()
    }

    /// Rows read and not yet handed back.
    #[cfg(test)]
    pub fn pending_rows(&self) -> usize {
        self.pending.iter().map(|c| c.rows.len()).sum()
    }
}

#[cfg(test)]
mod tests;
