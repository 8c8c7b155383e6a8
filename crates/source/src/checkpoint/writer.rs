//! The one writer of a source's checkpoints.
//!
//! Readers update positions in memory as their finalizers advance; a
//! background loop saves the map when it changed: once an interval, or
//! sooner when many events are unsaved, so a busy shard costs a few writes
//! a second, not one per event, and a crash re-sends at most about an
//! interval's worth (or that many events). Moments that must be durable
//! before the engine goes on (a shard finished, shutdown) call
//! [`Checkpointer::flush`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use awsdynamodbsource_cloudevents::backoff::Backoff;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{CheckpointError, CheckpointStore, Checkpoints, ShardPosition};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::progress::ShardProgress;
use crate::record::SequenceNumber;

/// The pauses between failed saves that must succeed.
const SAVE_RETRY: Backoff = Backoff::jittered(Duration::from_millis(100), Duration::from_secs(5));

#[derive(Clone)]
pub struct Checkpointer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn CheckpointStore>,
    state: Mutex<State>,
    /// The version last saved; holding it serializes saves.
    saved: tokio::sync::Mutex<u64>,
    /// Unsaved events past which the writer saves at once (0: only on its
    /// interval).
    save_after_events: AtomicU64,
    /// Wakes the writer when that many are unsaved.
    many_unsaved: Notify,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

#[derive(Default)]
struct State {
    checkpoints: Checkpoints,
    /// Bumped on every change.
    version: u64,
    /// Events the positions in memory cover beyond what is saved.
    unsaved_events: u64,
    /// Shards whose covered count moved since the last snapshot.
    moved: Vec<Arc<ShardProgress>>,
}

/// What a save stores: the positions, and how far each moved shard was.
struct Snapshot {
    checkpoints: Checkpoints,
    version: u64,
    unsaved_events: u64,
    covered: Vec<(Arc<ShardProgress>, u64)>,
}

impl Checkpointer {
    /// Loads what the store holds.
    pub async fn open(
        store: Arc<dyn CheckpointStore>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<Self, CheckpointError> {
        let loaded = store.load().await?;
        Ok(Checkpointer {
            inner: Arc::new(Inner {
                store,
                state: Mutex::new(State {
                    checkpoints: loaded,
                    ..State::default()
                }),
                saved: tokio::sync::Mutex::new(0),
                save_after_events: AtomicU64::new(0),
                many_unsaved: Notify::new(),
                metrics,
                health,
            }),
        })
    }

    pub fn location(&self) -> String {
        self.inner.store.location()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the map half-updated: every update
        // is a single insert or remove.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current positions.
    pub fn snapshot(&self) -> Checkpoints {
        self.state().checkpoints.clone()
    }

    pub fn position(&self, stream: &str, shard: &str) -> Option<ShardPosition> {
        self.state().checkpoints.shard(stream, shard).cloned()
    }

    /// Changes the positions in memory; saved by the next flush if they
    /// differ (a change that changes nothing costs no write: a store such as
    /// a ConfigMap counts writes).
    pub fn update<T>(&self, change: impl FnOnce(&mut Checkpoints) -> T) -> T {
        let mut state = self.state();
        let before = state.checkpoints.clone();
        let out = change(&mut state.checkpoints);
        if state.checkpoints != before {
            state.version += 1;
        }
        out
    }

    pub fn set(&self, stream: &str, shard: &str, position: ShardPosition) {
        // Not through `update`: no copy of the whole map per shard.
        let mut state = self.state();
        if set_position(&mut state.checkpoints, stream, shard, position) {
            state.version += 1;
        }
    }

    /// Sets a shard's position as a lease holds it (none: nothing saved
    /// yet, so the shard is read from its start).
    pub fn reset(&self, stream: &str, shard: &str, position: Option<ShardPosition>) {
        match position {
            Some(position) => self.set(stream, shard, position),
            None => {
                let mut state = self.state();
                if let Some(s) = state.checkpoints.streams.get_mut(stream)
                    && s.shards.remove(shard).is_some()
                {
                    state.version += 1;
                }
            }
        }
    }

    /// A reader's finalizer moved over `events` more events, up to and
    /// including `sequence`: the shard's position in memory, saved by the
    /// next flush (at once when many events are unsaved).
    pub fn advance(&self, shard: &Arc<ShardProgress>, sequence: SequenceNumber, events: u64) {
        let mut state = self.state();
        set_position(
            &mut state.checkpoints,
            &shard.stream,
            &shard.shard,
            ShardPosition::After(sequence),
        );
        state.version += 1;
        shard.add_covered(events);
        if !shard.moved.swap(true, Relaxed) {
            state.moved.push(shard.clone());
        }
        let before = state.unsaved_events;
        state.unsaved_events += events;
        let limit = self.inner.save_after_events.load(Relaxed);
        drop(state);
        if limit > 0 && before < limit && before + events >= limit {
            self.inner.many_unsaved.notify_one();
        }
    }

    /// Saves the current positions if they changed since the last save.
    pub async fn flush(&self) -> Result<(), CheckpointError> {
        let mut saved = self.inner.saved.lock().await;
        let snapshot = {
            let mut state = self.state();
            if state.version == *saved {
                return Ok(());
            }
            let moved = std::mem::take(&mut state.moved);
            Snapshot {
                checkpoints: state.checkpoints.clone(),
                version: state.version,
                unsaved_events: state.unsaved_events,
                covered: moved
                    .into_iter()
                    .map(|shard| {
                        shard.moved.store(false, Relaxed);
                        let covered = shard.covered();
                        (shard, covered)
                    })
                    .collect(),
            }
        };
        match self.inner.store.save(&snapshot.checkpoints).await {
            Ok(()) => {
                *saved = snapshot.version;
                self.state().unsaved_events -= snapshot.unsaved_events;
                let now = self.inner.metrics.progress.now();
                for (shard, covered) in &snapshot.covered {
                    shard.set_saved(*covered, now);
                }
                self.inner.metrics.checkpoint_writes.inc();
                self.inner.health.set_checkpoint_problem(None);
                Ok(())
            }
            Err(e) => {
                // The moved shards stay to be saved by the next flush.
                let mut state = self.state();
                for (shard, _) in snapshot.covered {
                    if !shard.moved.swap(true, Relaxed) {
                        state.moved.push(shard);
                    }
                }
                drop(state);
                self.inner.metrics.checkpoint_errors.inc();
                self.inner
                    .health
                    .set_checkpoint_problem(Some(e.to_string()));
                Err(e)
            }
        }
    }

    /// Flushes until it works or `cancel` fires; for positions the engine
    /// must not go past unsaved (a finished parent before its children).
    pub async fn flush_durably(&self, cancel: &CancellationToken) -> bool {
        let mut pauses = SAVE_RETRY.pauses();
        loop {
            match self.flush().await {
                Ok(()) => return true,
                Err(e) => tracing::error!(error = %e, "cannot save checkpoints; retrying"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(pauses.next_pause()) => {}
            }
        }
    }

    /// Saves changes every `interval`, and at once when `save_after_events`
    /// (if not 0) are unsaved, until `cancel` fires.
    pub async fn run(&self, interval: Duration, save_after_events: u64, cancel: CancellationToken) {
        self.inner
            .save_after_events
            .store(save_after_events, Relaxed);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.inner.many_unsaved.notified() => {}
            }
            if let Err(e) = self.flush().await {
                tracing::error!(error = %e, "cannot save checkpoints; will retry");
            }
        }
    }
}

/// Sets one shard's position, allocating only for a new stream or shard.
/// Sets a shard's position; whether it changed.
fn set_position(cps: &mut Checkpoints, stream: &str, shard: &str, position: ShardPosition) -> bool {
    let shards = match cps.streams.get_mut(stream) {
        Some(s) => &mut s.shards,
        None => &mut cps.streams.entry(stream.to_owned()).or_default().shards,
    };
    match shards.get_mut(shard) {
        Some(p) if *p == position => false,
        Some(p) => {
            *p = position;
            true
        }
        None => {
            shards.insert(shard.to_owned(), position);
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::MemoryStore;
    use crate::record::SequenceNumber;

    #[tokio::test]
    async fn flush_saves_only_changes() {
        let store = Arc::new(MemoryStore::new());
        let metrics = Arc::new(Metrics::new(&mut Default::default()));
        let cp = Checkpointer::open(store.clone(), metrics.clone(), Arc::new(Health::default()))
            .await
            .unwrap();
        cp.flush().await.unwrap();
        assert_eq!(
            metrics.checkpoint_writes.get(),
            0,
            "nothing changed, nothing written"
        );
        cp.set(
            "s",
            "a",
            ShardPosition::After(SequenceNumber::parse("5").unwrap()),
        );
        cp.flush().await.unwrap();
        cp.flush().await.unwrap();
        assert_eq!(metrics.checkpoint_writes.get(), 1);
        assert_eq!(store.load().await.unwrap(), cp.snapshot());

        // The same position again, and an update that removes nothing (a
        // shard-list refresh that found every shard still listed).
        cp.set(
            "s",
            "a",
            ShardPosition::After(SequenceNumber::parse("5").unwrap()),
        );
        cp.update(|c| c.streams.retain(|_, _| true));
        cp.flush().await.unwrap();
        assert_eq!(
            metrics.checkpoint_writes.get(),
            1,
            "changes that change nothing are not written"
        );
    }

    /// A busy shard's positions are saved as soon as `save_after_events`
    /// are unsaved, without waiting for the interval, and one write covers
    /// them all; fewer wait for the interval. The progress then shows
    /// nothing done unsaved.
    #[tokio::test(start_paused = true)]
    async fn many_unsaved_events_are_saved_before_the_interval_in_one_write() {
        let store = Arc::new(MemoryStore::new());
        let metrics = Arc::new(Metrics::default());
        let cp = Checkpointer::open(store.clone(), metrics.clone(), Arc::new(Health::default()))
            .await
            .unwrap();
        let shard = metrics.progress.add_shard("s", "a");
        let stop = CancellationToken::new();
        let writer = tokio::spawn({
            let (cp, stop) = (cp.clone(), stop.clone());
            async move { cp.run(Duration::from_secs(3600), 100, stop).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        let seq = |n: u32| SequenceNumber::parse(&n.to_string()).unwrap();
        for n in 1..=99 {
            cp.advance(&shard, seq(n), 1);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            metrics.checkpoint_writes.get(),
            0,
            "99 wait for the interval"
        );
        assert_eq!(metrics.progress.shards()[0].trail_events, 99);

        cp.advance(&shard, seq(100), 1);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(
            metrics.checkpoint_writes.get(),
            1,
            "the 100th is saved at once"
        );
        assert_eq!(store.load().await.unwrap(), cp.snapshot());
        assert_eq!(metrics.progress.shards()[0].trail_events, 0);

        for n in 101..=250 {
            cp.advance(&shard, seq(n), 1);
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(
            metrics.checkpoint_writes.get(),
            2,
            "one more for the next 100"
        );
        assert_eq!(metrics.progress.shards()[0].trail_events, 50);
        stop.cancel();
        writer.await.unwrap();
    }
}
