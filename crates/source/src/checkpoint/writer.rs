//! The one writer of a source's checkpoints.
//!
//! Readers update positions in memory as their finalizers advance; a
//! background loop saves the map when it changed, at most once an interval,
//! so a busy shard costs one write a second, not one per event. Moments that
//! must be durable before the engine goes on (a shard finished, shutdown)
//! call [`Checkpointer::flush`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{CheckpointError, CheckpointStore, Checkpoints, ShardPosition};
use crate::health::Health;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct Checkpointer {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn CheckpointStore>,
    /// The positions and a version bumped on every change.
    state: Mutex<(Checkpoints, u64)>,
    /// The version last saved; holding it serializes saves.
    saved: tokio::sync::Mutex<u64>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
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
                state: Mutex::new((loaded, 0)),
                saved: tokio::sync::Mutex::new(0),
                metrics,
                health,
            }),
        })
    }

    pub fn location(&self) -> String {
        self.inner.store.location()
    }

    fn state(&self) -> MutexGuard<'_, (Checkpoints, u64)> {
        // A panic elsewhere cannot leave the map half-updated: every update
        // is a single insert or remove.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the current positions.
    pub fn snapshot(&self) -> Checkpoints {
        self.state().0.clone()
    }

    pub fn position(&self, stream: &str, shard: &str) -> Option<ShardPosition> {
        self.state().0.shard(stream, shard).cloned()
    }

    /// Changes the positions in memory; saved by the next flush.
    pub fn update<T>(&self, change: impl FnOnce(&mut Checkpoints) -> T) -> T {
        let mut state = self.state();
        let out = change(&mut state.0);
        state.1 += 1;
        out
    }

    pub fn set(&self, stream: &str, shard: &str, position: ShardPosition) {
        self.update(|cps| {
            cps.streams
                .entry(stream.to_owned())
                .or_default()
                .shards
                .insert(shard.to_owned(), position)
        });
    }

    /// Saves the current positions if they changed since the last save.
    pub async fn flush(&self) -> Result<(), CheckpointError> {
        let mut saved = self.inner.saved.lock().await;
        let (snapshot, version) = {
            let state = self.state();
            if state.1 == *saved {
                return Ok(());
            }
            (state.0.clone(), state.1)
        };
        match self.inner.store.save(&snapshot).await {
            Ok(()) => {
                *saved = version;
                self.inner.metrics.checkpoint_writes.inc();
                self.inner.health.set_checkpoint_problem(None);
                Ok(())
            }
            Err(e) => {
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
        let mut delay = Duration::from_millis(100);
        loop {
            match self.flush().await {
                Ok(()) => return true,
                Err(e) => tracing::error!(error = %e, "cannot save checkpoints; retrying"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// Saves changes every `interval` until `cancel` fires.
    pub async fn run(&self, interval: Duration, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.flush().await {
                        tracing::error!(error = %e, "cannot save checkpoints; will retry");
                    }
                }
            }
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
    }
}
