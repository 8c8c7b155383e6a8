//! The Prometheus metrics of the engine. Names are documented in the README;
//! the adapter serves them on `/metrics`. Every family exists from start-up,
//! each known label value at zero, so that alerts never see "no data".
//! Delivery progress (lag, waiting events, the saved position's trail) is
//! read from [`Progress`] at scrape time.

use std::sync::Arc;

use awsdynamodbsource_vars as vars;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::progress::Progress;

/// The classes of failed delivery attempts (`SendError::class`).
pub const DELIVERY_FAILURE_CLASSES: [&str; 5] = ["4xx", "5xx", "timeout", "connection", "other"];
/// Why events are dropped (`GiveUpReason::as_str`, and malformed records).
pub const DROP_REASONS: [&str; 4] = [
    "rejected",
    "attempts-exhausted",
    "record-too-old",
    "malformed",
];
/// The DynamoDB Streams actions, and the classes of their errors
/// (`ApiError::class`).
pub const AWS_OPERATIONS: [&str; 4] = [
    "ListStreams",
    "DescribeStream",
    "GetShardIterator",
    "GetRecords",
];
pub const AWS_ERROR_CLASSES: [&str; 8] = [
    "expired_iterator",
    "trimmed_data",
    "not_found",
    "throttled",
    "access_denied",
    "credentials",
    "rejected",
    "transient",
];
/// Per-shard series are exported only up to this many shards: big streams
/// have thousands, and the worst and total gauges say what matters.
pub const PER_SHARD_SERIES_MAX: usize = 32;

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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AwsErrorLabels {
    pub operation: String,
    pub class: String,
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
    pub trimmed_data: Counter,
    pub checkpoint_writes: Counter,
    pub checkpoint_errors: Counter,
    pub aws_errors: Family<AwsErrorLabels, Counter>,
    pub leases_held: Gauge,
    pub leases_taken: Counter,
    pub leases_taken_over: Counter,
    pub leases_released: Counter,
    pub lease_renewal_failures: Counter,
    pub snapshot_items_read: Counter,
    pub snapshot_rows_sent: Counter,
    pub snapshot_rows_superseded: Counter,
    pub snapshot_segments: Gauge,
    pub snapshot_segments_done: Gauge,
    pub snapshot_items_estimated: Gauge,
    /// What readers and deliveries report; read by the collector and by
    /// `/health`.
    pub progress: Arc<Progress>,
}

impl Metrics {
    /// Creates the metrics and registers them, prefixed
    /// `awsdynamodbsource_`.
    pub fn new(registry: &mut Registry) -> Self {
        let m = Metrics::default();
        m.create_every_label_value();
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
            format!(
                "Records that {} did not pass (done, not sent)",
                vars::FILTER
            ),
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
        r.register(
            "aws_errors",
            "Failed DynamoDB Streams calls, by operation and error class",
            m.aws_errors.clone(),
        );
        r.register(
            "leases_held",
            "Shard leases this replica holds (COORDINATION)",
            m.leases_held.clone(),
        );
        r.register(
            "leases_taken",
            "Shard leases taken, free or from a replica gone",
            m.leases_taken.clone(),
        );
        r.register(
            "leases_taken_over",
            "Shard leases taken from a replica whose heartbeat stopped",
            m.leases_taken_over.clone(),
        );
        r.register(
            "leases_released",
            "Shard leases given up: handed over, finished, or at shutdown",
            m.leases_released.clone(),
        );
        r.register(
            "lease_renewal_failures",
            "Failed renewals of this replica's lease heartbeat",
            m.lease_renewal_failures.clone(),
        );
        r.register(
            "snapshot_items_read",
            "Items of the table's snapshot (SNAPSHOT=initial) done: sent, superseded by a change, or filtered",
            m.snapshot_items_read.clone(),
        );
        r.register(
            "snapshot_rows_sent",
            "Items of the table's snapshot handed to the sink: delivered, dead-lettered or dropped",
            m.snapshot_rows_sent.clone(),
        );
        r.register(
            "snapshot_rows_superseded",
            "Scanned items not sent because the stream brought a change of the item made while it was read",
            m.snapshot_rows_superseded.clone(),
        );
        r.register(
            "snapshot_segments",
            "Segments of the snapshot's parallel scan (0: no snapshot)",
            m.snapshot_segments.clone(),
        );
        r.register(
            "snapshot_segments_done",
            "Segments of the snapshot scanned and delivered to their end",
            m.snapshot_segments_done.clone(),
        );
        r.register(
            "snapshot_items_estimated",
            "The table's item count when the snapshot began (DescribeTable's, updated by AWS about every six hours)",
            m.snapshot_items_estimated.clone(),
        );
        r.register_collector(Box::new(ProgressCollector(m.progress.clone())));
        m
    }

    /// Every labelled series at zero from the start, so that alerts on them
    /// see 0, not "no data" (the guard each returns is only a read lock).
    fn create_every_label_value(&self) {
        for class in DELIVERY_FAILURE_CLASSES {
            drop(self.delivery_failures.get_or_create(&ClassLabel {
                class: class.into(),
            }));
        }
        for reason in DROP_REASONS {
            drop(self.events_dropped.get_or_create(&ReasonLabel {
                reason: reason.into(),
            }));
        }
        for operation in AWS_OPERATIONS {
            for class in AWS_ERROR_CLASSES {
                drop(self.aws_errors.get_or_create(&AwsErrorLabels {
                    operation: operation.into(),
                    class: class.into(),
                }));
            }
        }
    }

    /// Counts a failed DynamoDB Streams call.
    pub fn aws_error(&self, operation: &str, class: &str) {
        self.aws_errors
            .get_or_create(&AwsErrorLabels {
                operation: operation.into(),
                class: class.into(),
            })
            .inc();
    }
}

/// The delivery figures of [`Progress`], computed at each scrape.
#[derive(Debug)]
struct ProgressCollector(Arc<Progress>);

impl Collector for ProgressCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shards = self.0.shards();
        let secs = |ms: u64| ms as f64 / 1000.0;
        let max = |f: &dyn Fn(&crate::progress::ShardFigures) -> u64| {
            shards.iter().map(f).max().unwrap_or(0)
        };
        let sum = |f: &dyn Fn(&crate::progress::ShardFigures) -> u64| -> u64 {
            shards.iter().map(f).sum()
        };
        let gauges: [(&str, &str, f64); 7] = [
            (
                "delivery_lag_seconds",
                "Age of the oldest change not delivered yet, worst shard (0 when caught up)",
                secs(max(&|s| s.lag_ms)),
            ),
            (
                "event_wait_seconds",
                "How long the oldest event not delivered yet has waited since it was read, worst shard",
                secs(max(&|s| s.oldest_waiting_ms.unwrap_or(0))),
            ),
            (
                "events_waiting",
                "Events read and not done yet (queued or being delivered), all shards",
                sum(&|s| s.waiting) as f64,
            ),
            (
                "events_waiting_worst_shard",
                "Events read and not done yet, worst shard",
                max(&|s| s.waiting) as f64,
            ),
            (
                "checkpoint_trail_events",
                "Events done but not yet covered by a saved checkpoint (sent again after a crash), all shards",
                sum(&|s| s.trail_events) as f64,
            ),
            (
                "checkpoint_trail_events_worst_shard",
                "Events done but not yet covered by a saved checkpoint, worst shard",
                max(&|s| s.trail_events) as f64,
            ),
            (
                "checkpoint_trail_seconds",
                "How long a saved checkpoint has stood still behind done events, worst shard",
                secs(max(&|s| s.trail_ms)),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        let failing = self.0.sink_failing().map_or(0, |(ms, _)| ms);
        ConstGauge::new(secs(failing)).encode(encoder.encode_descriptor(
            "sink_failing_seconds",
            "How long every attempt at the sink has failed (0 after a success)",
            None,
            MetricType::Gauge,
        )?)?;
        let mut per_shard = encoder.encode_descriptor(
            "shard_lag_seconds",
            "Age of the oldest change of the shard not delivered yet (only while at most 32 shards are read)",
            None,
            MetricType::Gauge,
        )?;
        if shards.len() <= PER_SHARD_SERIES_MAX {
            for s in &shards {
                let label = ShardLabel {
                    shard: s.shard.to_string(),
                };
                ConstGauge::new(secs(s.lag_ms)).encode(per_shard.encode_family(&label)?)?;
            }
        }
        Ok(())
    }
}
