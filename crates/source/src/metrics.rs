//! The Prometheus metrics of the engine. Names are documented in the README;
//! the adapter serves them on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    /// `4xx`, `5xx`, `timeout` or `connection`.
    pub class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    pub shard: String,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub records_read: Counter,
    pub events_delivered: Counter,
    pub delivery_failures: Family<ClassLabel, Counter>,
    pub delivery_retries: Counter,
    pub events_dropped: Family<ReasonLabel, Counter>,
    pub events_dead_lettered: Counter,
    pub events_filtered: Counter,
    pub get_records_calls: Counter,
    pub shards_owned: Gauge,
    pub shard_lag_seconds: Family<ShardLabel, Gauge<f64, AtomicU64>>,
    pub trimmed_data: Counter,
    pub checkpoint_writes: Counter,
    pub checkpoint_errors: Counter,
}

impl Metrics {
    /// Creates the metrics and registers them, prefixed
    /// `awsdynamodbsource_`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        let r = registry.sub_registry_with_prefix("awsdynamodbsource");
        r.register(
            "records_read",
            "Stream records read with GetRecords",
            m.records_read.clone(),
        );
        r.register(
            "events_delivered",
            "Events acknowledged by the sink (2xx)",
            m.events_delivered.clone(),
        );
        r.register(
            "event_delivery_failures",
            "Failed delivery attempts, by class: 4xx, 5xx, timeout, connection",
            m.delivery_failures.clone(),
        );
        r.register(
            "event_delivery_retries",
            "Delivery attempts that were retries",
            m.delivery_retries.clone(),
        );
        r.register(
            "events_dropped",
            "Events given up on without a dead-letter sink, by reason: rejected, attempts-exhausted, record-too-old, malformed",
            m.events_dropped.clone(),
        );
        r.register(
            "events_dead_lettered",
            "Events given up on and taken by the dead-letter sink",
            m.events_dead_lettered.clone(),
        );
        r.register(
            "events_filtered",
            "Records that FILTER did not pass (done, not sent)",
            m.events_filtered.clone(),
        );
        r.register(
            "getrecords_calls",
            "GetRecords calls made",
            m.get_records_calls.clone(),
        );
        r.register(
            "shards_owned",
            "Shards with a reader in this process",
            m.shards_owned.clone(),
        );
        r.register(
            "shard_lag_seconds",
            "Age of the newest record read from the shard; 0 once caught up",
            m.shard_lag_seconds.clone(),
        );
        r.register(
            "trimmed_data",
            "Times records were trimmed from the stream before they could be read (data lost)",
            m.trimmed_data.clone(),
        );
        r.register(
            "checkpoint_writes",
            "Checkpoint saves",
            m.checkpoint_writes.clone(),
        );
        r.register(
            "checkpoint_write_errors",
            "Failed checkpoint saves",
            m.checkpoint_errors.clone(),
        );
        m
    }
}
