//! The engine of the Amazon DynamoDB event source: it reads a table's
//! DynamoDB Stream and delivers each change as a CloudEvent, in order per
//! item, losing nothing.
//!
//! The modules follow the data:
//!
//! ```text
//! stream (which stream, which shards, lineage)
//!   → shard (one reader per shard: pages, iterators, errors)
//!     → record (sequence number, item identity)
//!       → prepare (in order: skip by time, then
//!         → filter (FILTER's patterns), then
//!           → event (the CloudEvent and its data bytes))
//!             → sink (HTTP or stdout, retries; the encoding and the retry
//!               rule are `awsdynamodbsource_cloudevents`'s)
//!               → checkpoint (ordered finalizer, atomic store)
//! ```
//!
//! `snapshot` reads the table's existing items (SNAPSHOT=initial) and joins
//! them with the stream at a gate the shard readers pass through; `engine`
//! runs it all; `health` and `metrics` report on it, reading
//! delivery figures from `progress`. `http_pool` holds the keep-alive
//! connections of the two hot requests: the sink's, and GetRecords.
//! `lease` keeps shard leases for replicas that share a stream: with
//! leases, the engine reads the shards its lease keeper orders it to, and
//! the keeper is its checkpoint store. The engine knows nothing of Kubernetes or the CLI:
//! the adapter binary feeds it from its environment.
//!
//! Modules are private: the crate's root re-exports what the binaries use.
//! Its own integration tests reach deeper through [`test_support`], which is
//! not an API.

mod arn;
mod checkpoint;
mod engine;
mod event;
mod filter;
mod health;
mod http_pool;
mod lease;
mod metrics;
mod prepare;
mod progress;
mod record;
mod shard;
mod sink;
mod snapshot;
mod stream;
#[doc(hidden)]
pub mod test_support;

// What the binaries use: the engine and its settings,
pub use arn::{ArnError, TableArn};
pub use engine::{
    Engine, EngineConfig, Snapshot, StartingPosition, StartingPositionError, StartupBudget,
    StartupError, await_credentials, preflight, snapshot_due,
};
pub use event::{
    CeOverrides, DataFormat, EventOptions, Extensions, OptionError, OverridesError, SubjectMode,
};
pub use filter::{FilterError, RecordFilter};
// where events go,
pub use sink::{
    ContentMode, DeadLetter, HttpSink, RetryPolicy, SendError, Sink, SinkLimits, SinkUrlError,
    StdoutSink, Url, parse_sink_url, parse_sink_url_of, redact,
};
// where positions are kept (a store outside this crate implements the trait),
pub use checkpoint::{
    CheckpointError, CheckpointStore, Checkpointer, Checkpoints, FileStore, MemoryStore,
    SegmentProgress, ShardPosition, SnapshotProgress, StreamCheckpoint,
};
pub use record::SequenceNumber;
// how DynamoDB Streams is reached,
pub use lease::{
    DynamoDbLeaseStore, Lease, LeaseError, LeaseKeeper, LeaseSettings, LeaseStore, Liveness, Plan,
    plan,
};
pub use stream::aws::AwsStreams;
// the table's existing items (SNAPSHOT=initial),
pub use snapshot::{ReadRate, SnapshotCheckError, TableFacts, TableScanner};
// and what reports on it all.
pub use health::Health;
pub use metrics::Metrics;

/// A duration as the settings write it, for messages: `250ms`, `2s`, `1m`,
/// `1.5s`.
pub fn duration_text(d: std::time::Duration) -> String {
    match d.as_millis() {
        ms if ms >= 60_000 && ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms >= 1000 && ms % 100 == 0 => format!("{}s", d.as_secs_f64()),
        ms => format!("{ms}ms"),
    }
}

/// This machine's clock, in ms since the Unix epoch (the record times'
/// unit).
pub(crate) fn unix_ms_now() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// An error and its sources, on one line: `a: b: c`. (The SDK's
/// `DisplayErrorContext` adds a Debug dump, too long for a log line that a
/// person reads.)
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
