//! CloudEvents as the adapter and the local broker send and receive them, in
//! one place so that both speak the same protocol.
//!
//! - [`CloudEvent`] (`event`): the attributes and data of one event, and what
//!   makes an event valid.
//! - `json`: the CloudEvents JSON format (structured mode), in and out, with
//!   data kept byte for byte.
//! - [`http`]: the HTTP protocol binding: binary-mode headers (percent-encoded
//!   values), reading a request in either mode, `Retry-After`.
//! - [`knative`]: Knative's delivery conventions: which failures are retried
//!   and the `knativeerror*` extensions of a dead letter.
//! - [`backoff`]: the pauses between attempts, for every retry loop of the
//!   adapter and the broker (their AWS calls and checkpoint saves too).
//!
//! No I/O happens here: transports, timeouts and retry loops belong to the
//! callers. Built by hand rather than on the `cloudevents-sdk` crate: its HTTP
//! binding (0.9) does not percent-encode header values as the binding's
//! section 3.1.3.2 requires (a subject with a space or a non-ASCII key would
//! be refused or sent wrong), and it copies every body into a `Vec`.

pub mod backoff;
mod event;
pub mod http;
mod json;
pub mod knative;

pub use event::{CloudEvent, EventError, is_json_content_type, valid_attribute_name};
