//! Whether the source is capturing, and if not, why — what `/health` says.
//!
//! Capturing means: the stream is known, checkpoints save, every shard that
//! may be read now (no unfinished parent) has a reader holding an iterator,
//! and delivery keeps up: for no longer than `unhealthy_after` has the sink
//! failed every attempt, a saved position stood still behind delivered
//! events, or an event waited since it was read. Each stage reports its
//! part here (delivery through [`Progress`]); this module decides nothing
//! else.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::progress::Progress;

#[derive(Debug)]
pub struct Health {
    state: Mutex<State>,
    /// What the readers and deliveries report (the engine's metrics' own).
    progress: Mutex<Arc<Progress>>,
    /// How long a delivery problem lasts before it is reported.
    unhealthy_after: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health::new(Duration::from_secs(60))
    }
}

#[derive(Debug)]
struct State {
    /// The engine has resolved a stream and started its readers.
    started: bool,
    stream_problem: Option<String>,
    checkpoint_problem: Option<String>,
    /// Readers, by shard: `None` when holding an iterator, else why not.
    shards: BTreeMap<String, Option<String>>,
    /// Shards that lost records to trimming, until their reader catches up.
    data_loss: BTreeMap<String, String>,
    /// This replica holds no shard lease: healthy, and says so.
    idle: bool,
    /// While a snapshot runs: how far it is.
    snapshot: Option<String>,
    /// Why the snapshot cannot go on (its scan fails).
    snapshot_problem: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        State {
            started: false,
            stream_problem: Some("starting".into()),
            checkpoint_problem: None,
            shards: BTreeMap::new(),
            data_loss: BTreeMap::new(),
            idle: false,
            snapshot: None,
            snapshot_problem: None,
        }
    }
}

impl Health {
    /// Reports delivery problems once they last `unhealthy_after`.
    pub fn new(unhealthy_after: Duration) -> Self {
        Health {
            state: Mutex::default(),
            progress: Mutex::default(),
            unhealthy_after,
        }
    }

    /// Judges delivery from `progress`, the one readers and deliveries
    /// report to (the engine sets it).
    pub fn watch(&self, progress: Arc<Progress>) {
        *self.progress.lock().unwrap_or_else(|e| e.into_inner()) = progress;
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this replica holds no shard lease (the others read every
    /// shard): set by the lease keeper.
    pub fn set_idle(&self, idle: bool) {
        self.state().idle = idle;
    }

    /// What a healthy replica says besides being healthy: how far its
    /// snapshot is, or that it is idle.
    pub fn note(&self) -> Option<String> {
        let s = self.state();
        if let Some(snapshot) = &s.snapshot {
            return Some(snapshot.clone());
        }
        s.idle.then(|| {
            "idle: this replica holds no shard lease; the other replicas read every shard".into()
        })
    }

    /// While a snapshot runs, how far it is (`/health` says it when
    /// healthy); `None` once it is done.
    pub fn set_snapshot(&self, progress: Option<String>) {
        self.state().snapshot = progress;
    }

    /// The snapshot's scan fails (it is retried); `None` once it reads.
    pub fn set_snapshot_problem(&self, problem: Option<String>) {
        self.state().snapshot_problem = problem;
    }

    /// `Ok` when capturing, else a one-line reason.
    pub fn check(&self) -> Result<(), String> {
        let s = self.state();
        if let Some(p) = &s.stream_problem {
            return Err(p.clone());
        }
        if !s.started {
            return Err("starting".into());
        }
        if let Some(p) = &s.checkpoint_problem {
            return Err(p.clone());
        }
        if let Some(p) = &s.snapshot_problem {
            return Err(p.clone());
        }
        if let Some((shard, why)) = s
            .shards
            .iter()
            .find_map(|(k, v)| v.as_ref().map(|why| (k, why)))
        {
            return Err(format!("shard {shard} is not being read: {why}"));
        }
        if let Some((shard, what)) = s.data_loss.iter().next() {
            return Err(format!("shard {shard} lost records: {what}"));
        }
        drop(s);
        self.check_delivery()
    }

    /// Delivery problems that lasted `unhealthy_after`: the sink failing
    /// every attempt, a saved position standing still behind delivered
    /// events, an event waiting since it was read.
    fn check_delivery(&self) -> Result<(), String> {
        let limit = self.unhealthy_after.as_millis() as u64;
        let secs = |ms: u64| format!("{}s", ms / 1000);
        let progress = self
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some((failing_ms, error)) = progress.sink_failing()
            && failing_ms >= limit
        {
            return Err(format!(
                "the sink has failed every attempt for {}: {error}",
                secs(failing_ms)
            ));
        }
        let shards = progress.shards();
        if let Some(s) = shards
            .iter()
            .find(|s| s.trail_events > 0 && s.trail_ms >= limit)
        {
            let waited = s
                .oldest_waiting_ms
                .map(|ms| format!("; its oldest waiting event was read {} ago", secs(ms)))
                .unwrap_or_default();
            return Err(format!(
                "shard {}: the saved position has not moved for {} while {} events after it were done{waited}",
                s.shard,
                secs(s.trail_ms),
                s.trail_events
            ));
        }
        if let Some(s) = shards
            .iter()
            .find(|s| s.oldest_waiting_ms.is_some_and(|ms| ms >= limit))
        {
            return Err(format!(
                "delivery is falling behind: shard {}'s oldest waiting event was read {} ago and is not delivered yet; {} events wait (delivery lag {})",
                s.shard,
                secs(s.oldest_waiting_ms.unwrap_or_default()),
                s.waiting,
                secs(s.lag_ms)
            ));
        }
        Ok(())
    }

    pub fn set_started(&self) {
        self.state().started = true;
    }

    /// A problem with the stream as a whole (none found, vanished, disabled).
    pub fn set_stream_problem(&self, problem: Option<String>) {
        self.state().stream_problem = problem;
    }

    pub fn set_checkpoint_problem(&self, problem: Option<String>) {
        self.state().checkpoint_problem = problem;
    }

    /// A reader took the shard; it has no iterator yet.
    pub fn shard_started(&self, shard: &str) {
        self.state()
            .shards
            .insert(shard.to_owned(), Some("getting a shard iterator".into()));
    }

    /// The reader holds an iterator (`None`), or lost it and why.
    pub fn shard_reading(&self, shard: &str, problem: Option<String>) {
        if let Some(entry) = self.state().shards.get_mut(shard) {
            *entry = problem;
        }
    }

    /// The reader is done with the shard (finished, or stopped).
    pub fn shard_stopped(&self, shard: &str) {
        let mut s = self.state();
        s.shards.remove(shard);
        s.data_loss.remove(shard);
    }

    pub fn data_lost(&self, shard: &str, what: String) {
        self.state().data_loss.insert(shard.to_owned(), what);
    }

    pub fn caught_up(&self, shard: &str) {
        let mut s = self.state();
        if !s.data_loss.is_empty() {
            s.data_loss.remove(shard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capturing_needs_a_stream_and_an_iterator_on_every_reader() {
        let h = Health::default();
        assert_eq!(h.check(), Err("starting".into()));
        h.set_stream_problem(None);
        h.shard_started("a");
        h.set_started();
        assert!(h.check().unwrap_err().contains("shard a"));
        h.shard_reading("a", None);
        assert_eq!(h.check(), Ok(()));
        h.data_lost("a", "trimmed".into());
        assert!(h.check().unwrap_err().contains("lost records"));
        h.caught_up("a");
        assert_eq!(h.check(), Ok(()));
        h.set_checkpoint_problem(Some("disk full".into()));
        assert_eq!(h.check(), Err("disk full".into()));
        h.set_checkpoint_problem(None);
        h.set_stream_problem(Some("stream vanished".into()));
        assert_eq!(h.check(), Err("stream vanished".into()));
    }

    /// The sink failing every attempt, a saved position standing still
    /// behind done events, and an event waiting since it was read are each
    /// reported with the reason, once they last `unhealthy_after`.
    #[test]
    fn delivery_problems_are_reported_once_they_last() {
        let capturing = |h: &Health| {
            h.set_stream_problem(None);
            h.set_started();
        };
        let patient = Health::new(Duration::from_secs(60));
        let at_once = Health::new(Duration::ZERO);
        let progress = Arc::new(Progress::default());
        for h in [&patient, &at_once] {
            capturing(h);
            h.watch(progress.clone());
        }
        assert_eq!(at_once.check(), Ok(()));

        progress.sink_failed(&"cannot connect to the sink: Connection refused");
        let why = at_once.check().unwrap_err();
        assert!(
            why.starts_with("the sink has failed every attempt for 0s: cannot connect"),
            "{why}"
        );
        assert_eq!(patient.check(), Ok(()), "not for long yet");
        progress.sink_succeeded();

        let shard = progress.add_shard("s", "shard-a");
        shard.set_waiting(2, Some((None, progress.now())), 0);
        let why = at_once.check().unwrap_err();
        assert!(
            why.starts_with("delivery is falling behind: shard shard-a's oldest waiting event"),
            "{why}"
        );
        assert!(why.contains("2 events wait"), "{why}");

        shard.set_waiting(1, Some((None, progress.now())), 5);
        let why = at_once.check().unwrap_err();
        assert!(why.starts_with("shard shard-a: the saved position has not moved for 0s while 5 events after it were done"), "{why}");
        assert_eq!(patient.check(), Ok(()));

        shard.set_waiting(0, None, 0);
        assert_eq!(at_once.check(), Ok(()));
    }
}
