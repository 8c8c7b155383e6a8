//! Delivery progress: per shard, what waits, how old the oldest waiting
//! change is, and how far the saved position trails what was delivered; and
//! whether the sink has been failing every attempt. These are the figures
//! behind the lag gauges and the delivery checks of `/health`.
//!
//! Readers write their own shard's figures and deliveries report each
//! attempt, with relaxed atomics: nothing on the event path takes a lock.
//! The metrics collector and `/health` read everything at scrape or probe
//! time, so ages are computed then, not when last written. This module
//! decides nothing and never blocks a reader.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// "Not set" for the time fields below.
const NONE_I64: i64 = i64::MIN;
const NONE_U64: u64 = u64::MAX;

/// The progress of every shard this process reads, and of its sink.
#[derive(Debug)]
pub struct Progress {
    /// The origin of the monotonic times below (milliseconds since it).
    origin: Instant,
    shards: Mutex<Vec<Arc<ShardProgress>>>,
    sink: SinkWatch,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            origin: Instant::now(),
            shards: Mutex::new(Vec::new()),
            sink: SinkWatch::default(),
        }
    }
}

/// One shard's figures, written by its reader (and the checkpoint writer).
/// Times are milliseconds since [`Progress`]'s origin; record times are
/// Unix milliseconds (the records' ApproximateCreationDateTime).
#[derive(Debug)]
pub struct ShardProgress {
    pub stream: Arc<str>,
    pub shard: Arc<str>,
    /// Events read and not done yet (queued or being delivered).
    waiting: AtomicU64,
    /// The record time, and the read time, of the oldest event not done.
    oldest_created_ms: AtomicI64,
    oldest_read_at: AtomicU64,
    /// The record time of the newest record read while the reader is
    /// behind the shard's end (its last page had records); unset once a
    /// page comes back empty.
    behind_created_ms: AtomicI64,
    /// Events done (delivered, dead-lettered, dropped or skipped) after the
    /// oldest one not done: the checkpoint cannot cover them yet.
    done_ahead: AtomicU64,
    /// Events the checkpoint covers in memory since the reader began, and
    /// how many of those the last successful save stored.
    covered: AtomicU64,
    saved: AtomicU64,
    /// When the saved part last moved (or the reader began).
    saved_moved_at: AtomicU64,
    /// Listed by the checkpoint writer among the shards to record at its
    /// next save.
    pub(crate) moved: AtomicBool,
}

/// What one shard looks like at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardFigures {
    pub shard: Arc<str>,
    /// Age of the oldest change not delivered yet (IteratorAge): of the
    /// oldest waiting event, else, while the reader is behind, of the newest
    /// record read; 0 when caught up.
    pub lag_ms: u64,
    pub waiting: u64,
    /// How long ago the oldest waiting event was read.
    pub oldest_waiting_ms: Option<u64>,
    /// Events done but not yet stored by a save: what a crash now would
    /// send again, besides the events in flight.
    pub trail_events: u64,
    /// How long the saved position has stood still behind done events
    /// (0 when nothing done is unsaved).
    pub trail_ms: u64,
}

/// Whether the sink has failed every attempt since some moment.
#[derive(Debug)]
struct SinkWatch {
    /// When the current run of failures began, unset after a success.
    failing_since: AtomicU64,
    last_error: Mutex<String>,
}

impl Default for SinkWatch {
    fn default() -> Self {
        SinkWatch {
            failing_since: AtomicU64::new(NONE_U64),
            last_error: Mutex::new(String::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single assignment or push: a
    // panic elsewhere cannot leave them half-done.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Progress {
    /// Milliseconds since this progress began (a monotonic clock).
    pub fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// A reader's figures, registered until [`Progress::remove`].
    pub fn add_shard(&self, stream: &str, shard: &str) -> Arc<ShardProgress> {
        let progress = Arc::new(ShardProgress {
            stream: Arc::from(stream),
            shard: Arc::from(shard),
            waiting: AtomicU64::new(0),
            oldest_created_ms: AtomicI64::new(NONE_I64),
            oldest_read_at: AtomicU64::new(NONE_U64),
            behind_created_ms: AtomicI64::new(NONE_I64),
            done_ahead: AtomicU64::new(0),
            covered: AtomicU64::new(0),
            saved: AtomicU64::new(0),
            saved_moved_at: AtomicU64::new(self.now()),
            moved: AtomicBool::new(false),
        });
        lock(&self.shards).push(progress.clone());
        progress
    }

    pub fn remove(&self, shard: &Arc<ShardProgress>) {
        lock(&self.shards).retain(|s| !Arc::ptr_eq(s, shard));
    }

    /// Every shard's figures now.
    pub fn shards(&self) -> Vec<ShardFigures> {
        let (now, now_unix) = (self.now(), crate::unix_ms_now());
        lock(&self.shards)
            .iter()
            .map(|s| s.figures(now, now_unix))
            .collect()
    }

    /// A sink attempt succeeded.
    pub fn sink_succeeded(&self) {
        if self.sink.failing_since.load(Relaxed) != NONE_U64 {
            self.sink.failing_since.store(NONE_U64, Relaxed);
        }
    }

    /// A sink attempt failed with `error` (a message without credentials).
    pub fn sink_failed(&self, error: &dyn std::fmt::Display) {
        let _ = self
            .sink
            .failing_since
            .compare_exchange(NONE_U64, self.now(), Relaxed, Relaxed);
        *lock(&self.sink.last_error) = error.to_string();
    }

    /// How long every sink attempt has failed, and the last error.
    pub fn sink_failing(&self) -> Option<(u64, String)> {
        let since = self.sink.failing_since.load(Relaxed);
        (since != NONE_U64).then(|| {
            (
                self.now().saturating_sub(since),
                lock(&self.sink.last_error).clone(),
            )
        })
    }
}

impl ShardProgress {
    /// What the reader holds now: `waiting` events not done, the oldest of
    /// them (record time, read time), and `done_ahead` done behind it.
    pub fn set_waiting(
        &self,
        waiting: usize,
        oldest: Option<(Option<i64>, u64)>,
        done_ahead: usize,
    ) {
        self.waiting.store(waiting as u64, Relaxed);
        self.done_ahead.store(done_ahead as u64, Relaxed);
        let (created, read_at) = match oldest {
            Some((created, read_at)) => (created.unwrap_or(NONE_I64), read_at),
            None => (NONE_I64, NONE_U64),
        };
        self.oldest_created_ms.store(created, Relaxed);
        self.oldest_read_at.store(read_at, Relaxed);
    }

    /// After a page: the newest record time read when the page had records
    /// (the reader is behind), `None` when it was empty (caught up).
    pub fn set_behind(&self, newest_created_ms: Option<i64>) {
        self.behind_created_ms
            .store(newest_created_ms.unwrap_or(NONE_I64), Relaxed);
    }

    /// The checkpoint now covers `events` more (in memory).
    pub(crate) fn add_covered(&self, events: u64) -> u64 {
        self.covered.fetch_add(events, Relaxed) + events
    }

    pub(crate) fn covered(&self) -> u64 {
        self.covered.load(Relaxed)
    }

    /// A save stored the position that covered `covered` events.
    pub(crate) fn set_saved(&self, covered: u64, now: u64) {
        if self.saved.fetch_max(covered, Relaxed) < covered {
            self.saved_moved_at.store(now, Relaxed);
        }
    }

    fn figures(&self, now: u64, now_unix: i64) -> ShardFigures {
        let waiting = self.waiting.load(Relaxed);
        let age = |created: i64| (now_unix.saturating_sub(created)).max(0) as u64;
        let (oldest_created, oldest_read_at) = (
            self.oldest_created_ms.load(Relaxed),
            self.oldest_read_at.load(Relaxed),
        );
        let oldest_waiting_ms =
            (oldest_read_at != NONE_U64).then(|| now.saturating_sub(oldest_read_at));
        let behind = self.behind_created_ms.load(Relaxed);
        let lag_ms = if oldest_created != NONE_I64 {
            age(oldest_created)
        } else if let Some(waited) = oldest_waiting_ms {
            waited
        } else if behind != NONE_I64 {
            age(behind)
        } else {
            0
        };
        let unsaved = self
            .covered
            .load(Relaxed)
            .saturating_sub(self.saved.load(Relaxed));
        let trail_events = unsaved + self.done_ahead.load(Relaxed);
        let trail_ms = if trail_events > 0 {
            now.saturating_sub(self.saved_moved_at.load(Relaxed))
        } else {
            0
        };
        ShardFigures {
            shard: self.shard.clone(),
            lag_ms,
            waiting,
            oldest_waiting_ms,
            trail_events,
            trail_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_oldest_waiting_change_else_the_reading_lag_else_zero() {
        let progress = Progress::default();
        let shard = progress.add_shard("s", "a");
        let figures = |p: &Progress| p.shards().remove(0);
        assert_eq!(figures(&progress).lag_ms, 0, "caught up");

        let ten_s_ago = crate::unix_ms_now() - 10_000;
        shard.set_behind(Some(ten_s_ago));
        let lag = figures(&progress).lag_ms;
        assert!((10_000..11_000).contains(&lag), "reading lag {lag}");

        let minute_ago = crate::unix_ms_now() - 60_000;
        shard.set_waiting(3, Some((Some(minute_ago), progress.now())), 0);
        let f = figures(&progress);
        assert!((60_000..61_000).contains(&f.lag_ms), "delivery lag {f:?}");
        assert_eq!(f.waiting, 3);
        assert!(f.oldest_waiting_ms.is_some());

        shard.set_waiting(0, None, 0);
        shard.set_behind(None);
        assert_eq!(figures(&progress).lag_ms, 0);
        progress.remove(&shard);
        assert!(progress.shards().is_empty());
    }

    #[test]
    fn the_trail_counts_done_events_not_yet_saved() {
        let progress = Progress::default();
        let shard = progress.add_shard("s", "a");
        shard.set_waiting(1, Some((None, progress.now())), 5);
        shard.add_covered(10);
        assert_eq!(progress.shards()[0].trail_events, 15);
        shard.set_saved(10, progress.now());
        assert_eq!(progress.shards()[0].trail_events, 5);
        shard.set_waiting(0, None, 0);
        let f = &progress.shards()[0];
        assert_eq!((f.trail_events, f.trail_ms), (0, 0));
    }

    #[test]
    fn the_sink_is_failing_from_the_first_failure_to_the_next_success() {
        let progress = Progress::default();
        assert_eq!(progress.sink_failing(), None);
        progress.sink_failed(&"connection refused");
        progress.sink_failed(&"connection refused again");
        let (_, error) = progress.sink_failing().unwrap();
        assert_eq!(error, "connection refused again");
        progress.sink_succeeded();
        assert_eq!(progress.sink_failing(), None);
    }
}
