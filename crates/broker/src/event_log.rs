//! The bounded in-memory log of ingested events and each trigger's cursor into it.
//!
//! Owns sequence numbers, capacity, cursors and when an entry is released: only once every
//! cursor has passed it (so an undelivered entry is never trimmed), or at once when there are
//! no triggers. It never delivers, filters or blocks on I/O; callers await its changes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use awsdynamodbsource_cloudevents::CloudEvent;
use tokio::sync::watch;

pub(crate) use crate::store::Entry;
use crate::store::EventStore;

/// Why an event was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendError {
    /// `capacity` entries are held.
    Full,
    /// Shutting down.
    Draining,
}

/// Entries and cursors at one moment (for the state file).
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshot {
    pub entries: Vec<Entry>,
    pub next_seq: u64,
    pub cursors: BTreeMap<String, u64>,
}

struct LogState {
    /// Contiguous: `entries[i].seq == first_seq + i`.
    entries: VecDeque<Entry>,
    /// The seq the next appended event gets.
    next_seq: u64,
    /// Per trigger: the seq of the first entry it has not finished.
    cursors: BTreeMap<String, u64>,
    capacity: usize,
    accepting: bool,
}

impl LogState {
    fn first_seq(&self) -> u64 {
        self.entries.front().map_or(self.next_seq, |e| e.seq)
    }

    fn get(&self, seq: u64) -> Option<&Entry> {
        let index = seq.checked_sub(self.first_seq())?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    /// Drops the entries every cursor has passed (all of them without cursors).
    fn release(&mut self) {
        let keep_from = self
            .cursors
            .values()
            .copied()
            .min()
            .unwrap_or(self.next_seq);
        while self.entries.front().is_some_and(|e| e.seq < keep_from) {
            self.entries.pop_front();
        }
    }
}

/// The log, shared by ingest, delivery tasks, status and shutdown.
pub(crate) struct EventLog {
    state: Mutex<LogState>,
    /// Bumped on every append: delivery tasks wait on it.
    appended: watch::Sender<u64>,
    /// Bumped on every cursor move or removal: the drain waits on it.
    progressed: watch::Sender<u64>,
}

impl EventLog {
    /// A log holding `entries` (contiguous seqs, from a state file) with the next seq
    /// `next_seq`, and no cursors yet.
    pub fn new(capacity: usize, entries: Vec<Entry>, next_seq: u64) -> EventLog {
        EventLog {
            state: Mutex::new(LogState {
                entries: entries.into(),
                next_seq,
                cursors: BTreeMap::new(),
                capacity,
                accepting: true,
            }),
            appended: watch::channel(0).0,
            progressed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        // A panic elsewhere while holding the lock leaves consistent data (every change is
        // one step), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores an event; returns its seq. With no triggers it is released at once.
    pub fn append(&self, event: Arc<CloudEvent>) -> Result<u64, AppendError> {
        let seq = {
            let mut s = self.lock();
            if !s.accepting {
                return Err(AppendError::Draining);
            }
            if s.entries.len() >= s.capacity {
                return Err(AppendError::Full);
            }
            let seq = s.next_seq;
            s.next_seq += 1;
            s.entries.push_back(Entry { seq, event });
            s.release();
            seq
        };
        self.appended.send_modify(|n| *n += 1);
        Ok(seq)
    }

    /// From now on appends answer [`AppendError::Draining`].
    pub fn stop_accepting(&self) {
        self.lock().accepting = false;
    }

    /// Adds a trigger's cursor at `at` (kept within the held entries), or at the end.
    pub fn add_cursor(&self, name: &str, at: Option<u64>) {
        let mut s = self.lock();
        let position = match at {
            Some(seq) => seq.clamp(s.first_seq(), s.next_seq),
            None => s.next_seq,
        };
        s.cursors.insert(name.to_string(), position);
        s.release();
    }

    /// Removes a trigger's cursor; the entries only it held are released.
    pub fn remove_cursor(&self, name: &str) {
        {
            let mut s = self.lock();
            s.cursors.remove(name);
            s.release();
        }
        self.progressed.send_modify(|n| *n += 1);
    }

    /// Releases what no cursor holds (after a restore, once the cursors are in place).
    pub fn release_unheld(&self) {
        self.lock().release();
    }

    /// A trigger's cursor.
    pub fn cursor(&self, name: &str) -> Option<u64> {
        self.lock().cursors.get(name).copied()
    }

    /// Marks every entry before `to` finished for a trigger.
    pub fn advance(&self, name: &str, to: u64) {
        {
            let mut s = self.lock();
            let next_seq = s.next_seq;
            let Some(cursor) = s.cursors.get_mut(name) else {
                return;
            };
            *cursor = to.clamp(*cursor, next_seq);
            s.release();
        }
        self.progressed.send_modify(|n| *n += 1);
    }

    /// The first held entry at or after `from`, waiting for one to be appended.
    pub async fn next_entry(&self, from: u64) -> Entry {
        let mut appended = self.appended.subscribe();
        loop {
            {
                let s = self.lock();
                if let Some(entry) = s.get(from.max(s.first_seq())) {
                    return entry.clone();
                }
            }
            // The sender lives as long as `self`, so this cannot fail while we are here.
            let _ = appended.changed().await;
        }
    }

    /// Waits until every trigger has finished every held entry.
    pub async fn wait_drained(&self) {
        let mut progressed = self.progressed.subscribe();
        loop {
            if self.is_drained() {
                return;
            }
            let _ = progressed.changed().await;
        }
    }

    fn is_drained(&self) -> bool {
        let s = self.lock();
        s.cursors.values().all(|&c| c >= s.next_seq)
    }

    /// Entries held.
    pub fn held(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether appends are accepted (not draining; capacity aside).
    pub fn accepting(&self) -> bool {
        self.lock().accepting
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Entries held that a trigger has not finished.
    pub fn pending(&self, name: &str) -> u64 {
        let s = self.lock();
        s.cursors
            .get(name)
            .map_or(0, |&c| s.next_seq.saturating_sub(c))
    }

    /// Everything held and every cursor.
    pub fn snapshot(&self) -> Snapshot {
        let s = self.lock();
        Snapshot {
            entries: s.entries.iter().cloned().collect(),
            next_seq: s.next_seq,
            cursors: s.cursors.clone(),
        }
    }
}

#[async_trait]
impl EventStore for EventLog {
    async fn cursor(&self, trigger: &str) -> Option<u64> {
        EventLog::cursor(self, trigger)
    }

    async fn next_entry(&self, from: u64) -> Entry {
        EventLog::next_entry(self, from).await
    }

    async fn advance(&self, trigger: &str, to: u64) {
        EventLog::advance(self, trigger, to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn event(id: &str) -> Arc<CloudEvent> {
        crate::test_event(id, None)
    }

    #[test]
    fn without_triggers_entries_are_released_at_once() {
        let log = EventLog::new(2, Vec::new(), 0);
        for i in 0..5 {
            assert_eq!(log.append(event(&i.to_string())), Ok(i));
        }
        assert_eq!(log.held(), 0);
    }

    #[test]
    fn entries_stay_until_every_cursor_passes_and_capacity_bounds_them() {
        let log = EventLog::new(3, Vec::new(), 0);
        log.add_cursor("a", None);
        log.add_cursor("b", None);
        for i in 0..3 {
            log.append(event(&i.to_string())).unwrap();
        }
        assert_eq!(log.append(event("x")), Err(AppendError::Full));
        log.advance("a", 3);
        assert_eq!(log.held(), 3, "b still holds them");
        assert_eq!((log.pending("a"), log.pending("b")), (0, 3));
        log.advance("b", 1);
        assert_eq!(log.held(), 2);
        log.append(event("3")).unwrap();
        log.remove_cursor("b");
        assert_eq!(log.held(), 1, "only seq 3, which a has not finished");
        log.stop_accepting();
        assert_eq!(log.append(event("y")), Err(AppendError::Draining));
    }

    #[test]
    fn a_new_cursor_starts_at_the_end_and_restored_ones_are_clamped() {
        let entries = (5..8)
            .map(|seq| Entry {
                seq,
                event: event(&seq.to_string()),
            })
            .collect();
        let log = EventLog::new(10, entries, 8);
        log.add_cursor("old", Some(1));
        log.add_cursor("new", None);
        log.release_unheld();
        assert_eq!(log.cursor("old"), Some(5));
        assert_eq!(log.cursor("new"), Some(8));
        assert_eq!(log.held(), 3);
        assert_eq!(log.snapshot().entries.first().map(|e| e.seq), Some(5));
    }

    #[tokio::test]
    async fn next_entry_waits_for_an_append_and_drain_for_progress() {
        let log = Arc::new(EventLog::new(10, Vec::new(), 0));
        log.add_cursor("a", None);
        let waiter = tokio::spawn({
            let log = log.clone();
            async move { log.next_entry(0).await }
        });
        log.append(event("first")).unwrap();
        let entry = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((entry.seq, entry.event.id.as_str()), (0, "first"));

        let drained = tokio::spawn({
            let log = log.clone();
            async move { log.wait_drained().await }
        });
        tokio::task::yield_now().await;
        assert!(!drained.is_finished());
        log.advance("a", 1);
        tokio::time::timeout(Duration::from_secs(5), drained)
            .await
            .unwrap()
            .unwrap();
    }
}
