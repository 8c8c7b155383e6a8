//! Where the snapshot meets the stream: the join's view of the records read
//! (by exact item key), the watermark (how far every shard's delivery has
//! passed, in write time on this machine's clock), and the gate that holds
//! the records read after a chunk's release until its rows are delivered.
//!
//! Owns those three under one lock, so that a record's check and a chunk's
//! release cannot interleave: a record checked before the release has
//! dropped the rows of its item; one checked after waits for the rows. Also
//! here, [`ShardWatermark`]: how one reader works out how far its shard has
//! passed, before it reports it. It never reads the table or the stream and
//! never delivers: shard readers report to it, the stream run says which
//! shards count, and the engine's snapshot run releases chunks from it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodbstreams::types::Record;
use tokio::sync::{Notify, watch};

use super::join::{Chunk, SnapshotJoin};
use super::{SegmentProgress, row::JoinKey};

/// How long a write may take to show in its shard's GetRecords: a page
/// found empty at some moment vouches only for the writes made this long
/// before it.
pub const STREAM_DELAY_MS: i64 = 2_000;

/// What a released chunk tells the snapshot run: whose progress it moves.
#[derive(Debug, Clone)]
pub struct ChunkEnd {
    pub segment: u32,
    pub then: SegmentProgress,
}

/// Scanned rows (each an item as a stream record) waiting for the stream.
pub type RowChunk = Chunk<JoinKey, Record, ChunkEnd>;

/// Whether a record read now may be delivered, or must wait until the
/// rows released before it are delivered (`opened` reaches the number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Now,
    After(u64),
}

pub struct SnapshotGate {
    margin_ms: i64,
    state: Mutex<GateState>,
    /// False once the snapshot is done (or is not to run): readers then
    /// skip it all.
    active: AtomicBool,
    /// A shard passed further, or a chunk came: the snapshot run looks for
    /// a chunk to release.
    progressed: Notify,
    /// How many releases have had their rows delivered.
    opened: watch::Sender<u64>,
}

struct GateState {
    join: SnapshotJoin<JoinKey, Record, ChunkEnd>,
    /// How many chunks were released.
    released: u64,
    /// How far each shard that counts has passed (write time, Unix ms):
    /// every write made up to it, if it went to this shard, is delivered.
    shards: HashMap<String, i64>,
    /// When the last complete shard list was asked for (Unix ms): a shard
    /// made later (a split's child) may hold writes no known shard has.
    listed_ms: i64,
}

impl SnapshotGate {
    /// `margin_ms`: how far a record's time may fall before its write
    /// (rounding and clock skew).
    pub fn new(margin_ms: i64) -> Self {
        SnapshotGate {
            margin_ms,
            state: Mutex::new(GateState {
                join: SnapshotJoin::new(margin_ms),
                released: 0,
                shards: HashMap::new(),
                listed_ms: i64::MIN,
            }),
            active: AtomicBool::new(true),
            progressed: Notify::new(),
            opened: watch::Sender::new(0),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state
            .lock()
            .expect("the gate's lock is never held across a panic")
    }

    pub fn margin_ms(&self) -> i64 {
        self.margin_ms
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The snapshot is done (or will not run): records pass freely.
    pub fn finish(&self) {
        self.active.store(false, Ordering::Release);
        self.end_run();
    }

    // The shard readers' side.

    /// A record just read (with its item's key and record time, when it
    /// will be delivered): seen by the join, and admitted now or held.
    /// `behind` is the admission of the reader's last held record: a record
    /// never overtakes an earlier one.
    pub fn admit(
        &self,
        key: Option<JoinKey>,
        created_ms: Option<i64>,
        behind: Option<u64>,
    ) -> Admission {
        if !self.is_active() {
            return behind.map_or(Admission::Now, Admission::After);
        }
        let mut state = self.state();
        if let (Some(key), Some(at)) = (key, created_ms) {
            state.join.record(key, at);
        }
        let wait = behind.unwrap_or(0).max(state.released);
        if behind.is_some() || wait > *self.opened.borrow() {
            Admission::After(wait)
        } else {
            Admission::Now
        }
    }

    /// Waits on it for held records: it changes when released rows are
    /// delivered.
    pub fn opened(&self) -> watch::Receiver<u64> {
        self.opened.subscribe()
    }

    /// `shard` has passed `ms` (it only moves forward).
    pub fn passed(&self, shard: &str, ms: i64) {
        let mut state = self.state();
        if let Some(at) = state.shards.get_mut(shard)
            && ms > *at
        {
            *at = ms;
            drop(state);
            self.progressed.notify_one();
        }
    }

    // The stream run's side: which shards count.

    /// The shards that count now: `reading`, those that may still hold
    /// writes not delivered (a new one has passed nothing yet), and
    /// `awaiting_children`, finished shards whose children are not known
    /// yet (they keep what they had passed). Any other is forgotten.
    pub fn track_shards<'a>(
        &self,
        reading: impl IntoIterator<Item = &'a str>,
        awaiting_children: impl IntoIterator<Item = &'a str>,
    ) {
        if !self.is_active() {
            return;
        }
        let mut state = self.state();
        let mut kept: HashMap<String, i64> = reading
            .into_iter()
            .map(|id| {
                (
                    id.to_owned(),
                    state.shards.get(id).copied().unwrap_or(i64::MIN),
                )
            })
            .collect();
        for id in awaiting_children {
            if let Some(at) = state.shards.get(id) {
                kept.insert(id.to_owned(), *at);
            }
        }
        state.shards = kept;
        drop(state);
        self.progressed.notify_one();
    }

    /// A complete shard list was asked for at `ms`.
    pub fn listed(&self, ms: i64) {
        let mut state = self.state();
        state.listed_ms = state.listed_ms.max(ms);
        drop(state);
        self.progressed.notify_one();
    }

    // The snapshot run's side.

    pub fn add_chunk(&self, chunk: RowChunk) {
        self.state().join.add_chunk(chunk);
        self.progressed.notify_one();
    }

    /// The next chunk whose rows may be delivered now, if no earlier one's
    /// are being delivered (with how many of its rows the stream
    /// superseded): from now until [`Self::delivered`], records read are
    /// held. Passed means every shard that counts has passed, and the last
    /// complete shard list (less [`STREAM_DELAY_MS`]) too.
    pub fn release(&self) -> Option<(RowChunk, usize)> {
        let mut state = self.state();
        if state.released > *self.opened.borrow() {
            return None;
        }
        let listing = state.listed_ms.saturating_sub(STREAM_DELAY_MS);
        let passed = state.shards.values().min().copied()?.min(listing);
        let taken = state.join.take_ready(passed)?;
        state.released += 1;
        Some(taken)
    }

    /// The released chunk's rows are delivered: held records may go.
    pub fn delivered(&self) {
        let released = self.state().released;
        self.opened.send_replace(released);
    }

    /// Forgets records that no chunk can need: every chunk still to come
    /// is read from `ms` on.
    pub fn forget_before(&self, ms: i64) {
        self.state().join.forget_before(ms);
    }

    /// Chunks read and not released yet.
    pub fn pending_chunks(&self) -> usize {
        self.state().join.pending_chunks()
    }

    /// Resolves after a shard passed further or a chunk was added.
    pub async fn progressed(&self) {
        self.progressed.notified().await
    }

    /// Every shard that counts has reported at least once: each holds an
    /// iterator, so a scan begun now reads after every reader's start.
    pub fn all_reported(&self) -> bool {
        let state = self.state();
        !state.shards.is_empty() && state.shards.values().all(|at| *at > i64::MIN)
    }

    /// The stream run is over (the stream drained or vanished, or the
    /// snapshot run stopped): chunks not delivered are forgotten (the
    /// progress saved says where their segments go on), held records go,
    /// and the next run's shards count instead.
    pub fn end_run(&self) {
        let mut state = self.state();
        state.join = SnapshotJoin::new(self.margin_ms);
        state.shards.clear();
        state.listed_ms = i64::MIN;
        let released = state.released;
        drop(state);
        self.opened.send_replace(released);
    }
}

/// The first event of a shard not done yet.
#[derive(Debug, Clone, Copy)]
pub struct FirstUndone {
    pub created_ms: Option<i64>,
}

/// Empty pages in a row after which a reader walking a shard's history
/// takes them to mean it is at the shard's end, having read no record.
const EMPTY_PAGES_AT_THE_END: u32 = 3;

/// One shard reader's watermark: how far its delivery has passed, in
/// write time, from two kinds of evidence. A page found empty at some
/// moment means every write made [`STREAM_DELAY_MS`] before it was read,
/// so once the events read before it are done, those writes are delivered.
/// And once every record timed before some moment is done, every write
/// made a margin before that is (record times are within the margin of
/// their write; within a shard they do not go back).
///
/// Empty pages can also come in the middle of a shard. A reader that
/// follows the shard's end (from LATEST, after a sequence number, or from
/// the start of a new shard) trusts them; one that walks a shard's history
/// (from TRIM_HORIZON, skipping older records) trusts them only once it has
/// read a record, or after [`EMPTY_PAGES_AT_THE_END`] in a row.
#[derive(Debug, Default)]
pub struct ShardWatermark {
    /// Empty pages not yet vouched for: (events read before it, moment).
    claims: VecDeque<(u64, i64)>,
    by_empty_page: Option<i64>,
    newest_record_ms: Option<i64>,
    reported: Option<i64>,
    /// Walking history: empty pages in a row so far.
    walking: Option<u32>,
}

impl ShardWatermark {
    /// For a reader that walks the shard's history.
    pub fn walking_history() -> Self {
        ShardWatermark {
            walking: Some(0),
            ..Default::default()
        }
    }

    /// A page came back empty from a call made at `called_ms`, after
    /// `read` events were read from the shard.
    pub fn empty_page(&mut self, read: u64, called_ms: i64) {
        if let Some(empty) = &mut self.walking {
            *empty += 1;
            if *empty < EMPTY_PAGES_AT_THE_END {
                return;
            }
            self.walking = None;
        }
        match self.claims.back_mut() {
            // Nothing read since the last one: only the moment moves.
            Some((n, at)) if *n == read => *at = called_ms,
            _ => self.claims.push_back((read, called_ms)),
        }
    }

    /// A record timed `created_ms` was read.
    pub fn record(&mut self, created_ms: Option<i64>) {
        self.walking = None;
        if let Some(ms) = created_ms {
            self.newest_record_ms = Some(self.newest_record_ms.map_or(ms, |n| n.max(ms)));
        }
    }

    /// How far the shard has passed now, when that is further than last
    /// reported: `done` events are done in order (the checkpoint's count);
    /// `first_undone` is the first event not done, if any, with its record
    /// time when it has one.
    pub fn advance(
        &mut self,
        done: u64,
        first_undone: Option<FirstUndone>,
        margin_ms: i64,
    ) -> Option<i64> {
        while let Some(&(read, at)) = self.claims.front()
            && read <= done
        {
            self.claims.pop_front();
            self.by_empty_page = Some(at - STREAM_DELAY_MS);
        }
        let timed_before = match first_undone {
            Some(FirstUndone { created_ms }) => created_ms,
            None => self.newest_record_ms,
        };
        let by_record_time = timed_before.map(|ms| ms - 1 - margin_ms);
        let passed = self.by_empty_page.max(by_record_time)?;
        if self.reported.is_some_and(|r| r >= passed) {
            return None;
        }
        self.reported = Some(passed);
        Some(passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn undone(created_ms: i64) -> Option<FirstUndone> {
        Some(FirstUndone {
            created_ms: Some(created_ms),
        })
    }

    #[test]
    fn an_empty_page_vouches_once_what_was_read_before_it_is_done() {
        let mut w = ShardWatermark::default();
        w.record(Some(1_000));
        w.empty_page(3, 10_000);
        // Two of the three events read are done: the page proves nothing yet.
        assert_eq!(w.advance(2, undone(1_000), 500), Some(1_000 - 1 - 500));
        assert_eq!(w.advance(3, None, 500), Some(10_000 - STREAM_DELAY_MS));
        // Later empty pages with nothing read in between move the moment.
        w.empty_page(3, 12_000);
        w.empty_page(3, 13_000);
        assert_eq!(w.advance(3, None, 500), Some(13_000 - STREAM_DELAY_MS));
        assert_eq!(w.advance(3, None, 500), None, "reported once");
    }

    #[test]
    fn a_reader_walking_history_trusts_empty_pages_after_a_record_or_a_few() {
        let mut w = ShardWatermark::walking_history();
        w.empty_page(0, 10_000);
        w.empty_page(0, 11_000);
        assert_eq!(w.advance(0, None, 500), None, "maybe in the middle");
        w.empty_page(0, 12_000);
        assert_eq!(w.advance(0, None, 500), Some(12_000 - STREAM_DELAY_MS));

        let mut w = ShardWatermark::walking_history();
        w.empty_page(0, 10_000);
        w.record(Some(1_000));
        w.empty_page(1, 11_000);
        assert_eq!(w.advance(1, None, 500), Some(11_000 - STREAM_DELAY_MS));
    }

    #[test]
    fn without_empty_pages_record_times_less_the_margin_count() {
        let mut w = ShardWatermark::default();
        assert_eq!(w.advance(0, None, 500), None, "nothing read, nothing known");
        w.record(Some(5_000));
        w.record(Some(6_000));
        assert_eq!(w.advance(0, undone(5_000), 500), Some(4_499));
        assert_eq!(w.advance(2, None, 500), Some(5_499));
    }

    fn row_chunk(read_to_ms: i64) -> RowChunk {
        Chunk {
            read_from_ms: read_to_ms - 10,
            read_to_ms,
            rows: vec![(b"k".to_vec(), Record::builder().build())],
            then: ChunkEnd {
                segment: 0,
                then: SegmentProgress::Done,
            },
        }
    }

    #[test]
    fn a_release_waits_for_every_known_shard_and_holds_later_records() {
        let gate = SnapshotGate::new(100);
        gate.add_chunk(row_chunk(1_000));
        assert!(gate.release().is_none(), "no shard known: nothing passed");
        gate.track_shards(["a", "b"], []);
        gate.passed("a", 5_000);
        gate.passed("b", 5_000);
        assert!(gate.release().is_none(), "no shard list yet");
        gate.listed(1_000 + STREAM_DELAY_MS);
        gate.track_shards(["a", "b", "c"], []);
        assert!(gate.release().is_none(), "c has passed nothing");
        // c ends before it passed anything, its children not known yet.
        gate.track_shards(["a", "b"], ["c"]);
        assert!(
            gate.release().is_none(),
            "c holds until its children are known"
        );
        assert_eq!(gate.admit(None, None, None), Admission::Now);
        // Known: they count instead (here they are a and b).
        gate.track_shards(["a", "b"], []);
        let (chunk, superseded) = gate.release().expect("every shard passed its read");
        assert_eq!((chunk.rows.len(), superseded), (1, 0));
        // Read after the release: held until the rows are delivered.
        assert_eq!(gate.admit(None, Some(2_000), None), Admission::After(1));
        gate.add_chunk(row_chunk(1_500));
        assert!(gate.release().is_none(), "one release at a time");
        gate.delivered();
        assert_eq!(gate.admit(None, None, None), Admission::Now);
        assert_eq!(
            gate.admit(None, None, Some(1)),
            Admission::After(1),
            "behind a held record, even once it may go"
        );
    }

    #[test]
    fn a_record_seen_before_the_release_drops_its_items_row() {
        let gate = SnapshotGate::new(100);
        gate.track_shards(["a"], []);
        gate.listed(i64::MAX);
        gate.add_chunk(row_chunk(1_000));
        gate.admit(Some(b"k".to_vec()), Some(995), None);
        gate.passed("a", 1_000);
        let (chunk, superseded) = gate.release().expect("released");
        assert_eq!((chunk.rows.len(), superseded), (0, 1));
    }

    #[test]
    fn a_finished_gate_admits_everything_in_order() {
        let gate = SnapshotGate::new(100);
        gate.track_shards(["a"], []);
        gate.listed(i64::MAX);
        gate.passed("a", 2_000);
        gate.add_chunk(row_chunk(1_000));
        gate.release().expect("released");
        assert_eq!(gate.admit(None, None, None), Admission::After(1));
        gate.finish();
        assert_eq!(gate.admit(None, None, None), Admission::Now);
        assert_eq!(*gate.opened().borrow(), 1);
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;

    #[test]
    fn a_run_that_ends_opens_the_gate_and_forgets_its_chunks_and_shards() {
        let gate = SnapshotGate::new(100);
        gate.track_shards(["a"], []);
        assert!(!gate.all_reported());
        gate.passed("a", 2_000);
        assert!(gate.all_reported());
        gate.listed(i64::MAX);
        for read_to_ms in [1_000, 1_500] {
            gate.add_chunk(Chunk {
                read_from_ms: read_to_ms - 10,
                read_to_ms,
                rows: vec![],
                then: ChunkEnd {
                    segment: 0,
                    then: SegmentProgress::Done,
                },
            });
        }
        gate.release().expect("released");
        assert_eq!(gate.admit(None, None, None), Admission::After(1));
        gate.end_run();
        assert_eq!(gate.admit(None, None, None), Admission::Now);
        assert_eq!(gate.pending_chunks(), 0);
        assert!(
            !gate.all_reported(),
            "no shard counts until the next run says"
        );
    }
}
