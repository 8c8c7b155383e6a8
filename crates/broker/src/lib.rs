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
//! - [`CloudEvent`] and [`http_binding`]: events and the CloudEvents HTTP binding.
//! - [`BrokerStatus`]: what `GET /-/status` answers.

mod broker;
pub mod config;
mod delivery;
mod event;
mod event_log;
pub mod http_binding;
mod retry;
mod server;
mod state_file;
mod status;
mod triggers;

pub use broker::{Broker, BrokerOptions, ShutdownReport, StartError};
pub use delivery::ATTEMPT_TIMEOUT;
pub use event::{CloudEvent, EventError, is_json_content_type};
pub use retry::MAX_BACKOFF;
pub use server::MAX_EVENT_BYTES;
pub use state_file::StateFileError;
pub use status::{BrokerStatus, TriggerStatus};
