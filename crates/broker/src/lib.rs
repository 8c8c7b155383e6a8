//! The local in-memory CloudEvents broker that `tmctl` runs as a background process: a
//! stand-in for TriggerMesh's memory broker that neither loses nor reorders events.
//!
//! Events POSTed to it (binary or structured mode) go into one bounded log. Each trigger
//! walks the log in order with one delivery task: its filters pick events, which are POSTed
//! to its target in binary mode with retries and, when that fails for good, to a dead-letter
//! URL. An entry leaves memory only once every trigger is past it; at shutdown what is left
//! can be saved to a state file and is delivered after the next start.
//!
//! - [`config`]: the YAML config file types (tmctl writes them), filters, validation.
//! - [`Broker`], [`BrokerOptions`]: start, reload, status, shutdown.
//! - `event_log`: the in-memory log and cursors; delivery tasks reach it only through the
//!   `EventStore` trait (`store`), so that another store can take its place.
//!
//! Events, their JSON format, the HTTP binding and Knative's retry rule come from the
//! `awsdynamodbsource-cloudevents` crate, which the adapter uses too.
//! - [`BrokerStatus`]: what `GET /-/status` answers.

mod broker;
pub mod config;
mod delivery;
mod event_log;
mod retry;
mod server;
mod state_file;
mod status;
mod store;
mod triggers;

pub use broker::{Broker, BrokerOptions, ShutdownReport, StartError};
pub use delivery::ATTEMPT_TIMEOUT;
pub use retry::MAX_BACKOFF;
pub use server::MAX_EVENT_BYTES;
pub use state_file::StateFileError;
pub use status::{BrokerStatus, TriggerStatus};

/// An event with only the required attributes, for tests of the stages after ingest.
#[cfg(test)]
pub(crate) fn test_event(
    id: &str,
    data: Option<bytes::Bytes>,
) -> std::sync::Arc<awsdynamodbsource_cloudevents::CloudEvent> {
    std::sync::Arc::new(awsdynamodbsource_cloudevents::CloudEvent {
        id: id.into(),
        source: "s".into(),
        event_type: "t".into(),
        data,
        ..Default::default()
    })
}
