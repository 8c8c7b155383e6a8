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
//! [`engine`] runs it all; [`health`] and [`metrics`] report on it, reading
//! delivery figures from [`progress`]. The engine
//! knows nothing of Kubernetes or the CLI: the adapter binary feeds it from
//! its environment.

pub mod arn;
pub mod checkpoint;
pub mod engine;
pub mod event;
pub mod filter;
pub mod health;
pub mod metrics;
mod prepare;
pub mod progress;
pub mod record;
pub mod shard;
pub mod sink;
pub mod stream;

pub use arn::{ArnError, TableArn};
pub use engine::{Engine, EngineConfig, StartingPosition, StartupError, preflight};

/// An error and its sources, on one line: `a: b: c`. (The SDK's
/// `DisplayErrorContext` adds a Debug dump, too long for a log line that a
/// person reads.)
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(e), |e| e.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
