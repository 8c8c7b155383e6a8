//! CloudEvent → sink: one attempt at a time through a [`Sink`], and the
//! retry rules around it ([`deliver`]).
//!
//! Owns the transport (HTTP connections, or JSON lines on standard output)
//! and the retry loop; the encoding and Knative's retry rule come from
//! `awsdynamodbsource_cloudevents`. It never decides what is checkpointed: it
//! says how each event ended, and `shard` takes it from there.

mod dead_letter;
mod http;
mod retry;
mod stdout;

use std::time::Duration;

use async_trait::async_trait;
use awsdynamodbsource_cloudevents::knative;
use bytes::Bytes;
pub use dead_letter::DeadLetter;
pub use http::{
    ContentMode, HttpSink, SinkLimits, SinkUrlError, parse_sink_url, parse_sink_url_of, redact,
};
pub use retry::{Delivery, GiveUp, RetryPolicy, deliver};
pub use stdout::StdoutSink;
pub use url::Url;

use crate::event::CloudEvent;

/// Where events go. One call is one attempt.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    async fn send(&self, event: &CloudEvent) -> Result<(), SendError>;

    /// Where events go, for a dead letter's `knativeerrordest` (no
    /// credentials in it).
    fn destination(&self) -> String {
        String::new()
    }
}

/// A failed attempt. Messages never carry the sink's credentials.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    #[error("sink answered {status}{}", body_excerpt(body))]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        /// The start of the answer's body, on one line, for logs.
        body: String,
        /// The same bytes as received, for a dead letter.
        raw: Bytes,
    },
    #[error("sink did not answer in time")]
    Timeout,
    #[error("cannot connect to the sink: {0}")]
    Connect(String),
    #[error("sending failed: {0}")]
    Transport(String),
}

fn body_excerpt(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl SendError {
    /// Knative's rule: retry 404, 408, 409, 429, 5xx and transport errors;
    /// other statuses are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Status { status, .. } => knative::retryable_status(*status),
            _ => true,
        }
    }

    /// The metric label: `4xx`, `5xx`, `timeout`, `connection`, `other`.
    pub fn class(&self) -> &'static str {
        match self {
            SendError::Status {
                status: 400..=499, ..
            } => "4xx",
            SendError::Status { status: 500.., .. } => "5xx",
            SendError::Status { .. } => "other",
            SendError::Timeout => "timeout",
            SendError::Connect(_) | SendError::Transport(_) => "connection",
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SendError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(s: u16) -> SendError {
        SendError::Status {
            status: s,
            retry_after: None,
            body: String::new(),
            raw: Bytes::new(),
        }
    }

    #[test]
    fn knative_retry_rule() {
        for s in [404, 408, 409, 429, 500, 502, 503, 504, 599] {
            assert!(status(s).is_retryable(), "{s}");
        }
        for s in [300, 301, 400, 401, 403, 405, 410, 413, 422] {
            assert!(!status(s).is_retryable(), "{s}");
        }
        assert!(SendError::Timeout.is_retryable());
        assert!(SendError::Connect("refused".into()).is_retryable());
        assert_eq!(status(503).class(), "5xx");
        assert_eq!(status(404).class(), "4xx");
    }
}
