//! What `GET /-/status` reports, and the per-trigger counters behind it.
//!
//! [`BrokerStatus`] and [`TriggerStatus`] are public so tmctl can parse the answer. The
//! counters only count; they never decide anything about delivery.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The broker as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatus {
    /// False once shutting down (ingest answers 503).
    pub accepting: bool,
    /// Entries held in memory.
    pub held: u64,
    /// The most entries held before ingest answers 503.
    pub capacity: u64,
    /// Per trigger.
    pub triggers: BTreeMap<String, TriggerStatus>,
}

/// One trigger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    /// Events the target accepted.
    pub delivered: u64,
    /// Events the dead-letter sink accepted.
    pub dead_lettered: u64,
    /// Events given up on without a dead-letter sink (or refused by it).
    pub dropped: u64,
    /// Held entries this trigger has not finished.
    pub pending: u64,
    /// The latest failed attempt's reason; cleared when a delivery succeeds.
    pub last_error: Option<String>,
}

/// A trigger's live counters (shared by its delivery task and status).
#[derive(Debug, Default)]
pub(crate) struct TriggerCounters {
    delivered: AtomicU64,
    dead_lettered: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl TriggerCounters {
    pub fn delivered(&self) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.set_last_error(None);
    }

    pub fn dead_lettered(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_last_error(&self, error: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    fn status(&self, pending: u64) -> TriggerStatus {
        TriggerStatus {
            delivered: self.delivered.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            pending,
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// Counters of the configured triggers, by name.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    by_trigger: Mutex<BTreeMap<String, Arc<TriggerCounters>>>,
}

impl Counters {
    /// The trigger's counters, created when new (kept across a trigger's restarts).
    pub fn for_trigger(&self, name: &str) -> Arc<TriggerCounters> {
        self.lock().entry(name.to_string()).or_default().clone()
    }

    pub fn remove(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Each trigger's status, given its pending count.
    pub fn statuses(&self, pending: impl Fn(&str) -> u64) -> BTreeMap<String, TriggerStatus> {
        self.lock()
            .iter()
            .map(|(name, counters)| (name.clone(), counters.status(pending(name))))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<TriggerCounters>>> {
        self.by_trigger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_has_the_documented_shape() {
        let counters = Counters::default();
        let t = counters.for_trigger("t");
        t.delivered();
        t.set_last_error(Some("POST http://x/: 503".into()));
        t.dropped();
        let status = BrokerStatus {
            accepting: true,
            held: 2,
            capacity: 10,
            triggers: counters.statuses(|_| 2),
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "accepting": true, "held": 2, "capacity": 10,
                "triggers": {"t": {"delivered": 1, "deadLettered": 0, "dropped": 1, "pending": 2,
                                   "lastError": "POST http://x/: 503"}}
            })
        );
        t.delivered();
        assert_eq!(counters.statuses(|_| 0)["t"].last_error, None);
    }
}
