//! Delivering one event: attempts until the sink takes it, refuses it for
//! good, attempts or the record's age run out, or the caller gives up
//! (shutdown, a lease lost). What cannot be delivered goes to the dead-letter sink when
//! there is one.

use std::sync::Arc;
use std::time::Duration;

use awsdynamodbsource_cloudevents::backoff::{Backoff, Pauses};
use awsdynamodbsource_vars as vars;
use tokio_util::sync::CancellationToken;

use super::{DeadLetter, SendError, Sink};
use crate::event::StreamEvent;
use crate::lease::LeaseDeadline;
use crate::metrics::{ClassLabel, Metrics, ReasonLabel};

/// When deliveries end unsent (abandoned: not done, so sent again by
/// whoever reads the shard next): the token fires (shutdown past its
/// timeout, a lease lost), or the replica's lease deadline passed. The
/// deadline is read right before every send, so a replica that was frozen
/// past it sends nothing when it wakes, even before any task notices.
#[derive(Debug, Clone, Default)]
pub struct GiveUp {
    pub token: CancellationToken,
    pub deadline: Option<Arc<LeaseDeadline>>,
}

impl GiveUp {
    fn now(&self) -> bool {
        self.token.is_cancelled() || self.deadline.as_ref().is_some_and(|d| d.passed())
    }
}

impl From<CancellationToken> for GiveUp {
    fn from(token: CancellationToken) -> Self {
        GiveUp {
            token,
            deadline: None,
        }
    }
}

/// Capped exponential backoff with jitter between attempts; a sink's
/// `Retry-After` replaces the computed pause (up to `max_retry_after`).
/// `max_attempts` and `max_record_age` bound the tries (default: none).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_retry_after: Duration,
    /// Attempts at the sink before the event is given up (MAX_ATTEMPTS).
    pub max_attempts: Option<u32>,
    /// Age of the record (from its ApproximateCreationDateTime) past which
    /// it is given up rather than tried again (MAX_RECORD_AGE).
    pub max_record_age: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(300),
            max_attempts: None,
            max_record_age: None,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> Pauses {
        Backoff::jittered(self.min_delay, self.max_delay).pauses()
    }

    /// The pause after a failed attempt: the sink's `Retry-After` (capped),
    /// else the next backoff step.
    fn pause(&self, err: &SendError, backoff: &mut impl Iterator<Item = Duration>) -> Duration {
        match err.retry_after() {
            Some(after) => after.min(self.max_retry_after),
            None => backoff.next().unwrap_or(self.max_delay),
        }
    }

    /// True when the event's record is older than `max_record_age`.
    fn too_old(&self, event: &StreamEvent, now_ms: i64) -> bool {
        match (self.max_record_age, event.origin.created_ms) {
            (Some(age), Some(created)) => now_ms.saturating_sub(created) > age.as_millis() as i64,
            _ => false,
        }
    }
}

/// Why an event was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// The sink answered a status that is not retried (e.g. 400).
    Rejected,
    /// MAX_ATTEMPTS attempts failed.
    Attempts,
    /// The record outgrew MAX_RECORD_AGE.
    Age,
}

impl GiveUpReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GiveUpReason::Rejected => "rejected",
            GiveUpReason::Attempts => "attempts-exhausted",
            GiveUpReason::Age => "record-too-old",
        }
    }
}

/// How a delivery ended. The reader needs only which way; why it was
/// given up is for logs and tests.
#[derive(Debug)]
#[allow(dead_code)]
pub enum Delivery {
    /// The sink answered 2xx.
    Delivered,
    /// Given up, and the dead-letter sink took it: done.
    DeadLettered(GiveUpReason),
    /// Given up without a dead-letter sink: done, not delivered.
    Dropped(GiveUpReason, Option<SendError>),
    /// Given up before an answer (shutdown): not done.
    Abandoned,
}

/// Sends `event` until it is delivered or given up, or `give_up` fires.
pub async fn deliver(
    sink: &dyn Sink,
    dead_letter: Option<&DeadLetter>,
    event: &StreamEvent,
    policy: &RetryPolicy,
    metrics: &Metrics,
    give_up: &GiveUp,
) -> Delivery {
    let mut backoff = policy.backoff();
    let mut attempt: u32 = 0;
    let given_up = loop {
        if policy.max_record_age.is_some() && policy.too_old(event, crate::unix_ms_now()) {
            break GivenUp {
                reason: GiveUpReason::Age,
                attempts: attempt,
                last_error: None,
            };
        }
        attempt += 1;
        if attempt > 1 {
            metrics.delivery_retries.inc();
        }
        // A block, so that the error's storage ends before the pause: this
        // future is allocated for every event, and glibc's malloc takes a
        // slower path past 1 KiB.
        let pause = {
            if give_up.now() {
                return Delivery::Abandoned;
            }
            let result = tokio::select! {
                biased;
                _ = give_up.token.cancelled() => return Delivery::Abandoned,
                r = sink.send(event) => r,
            };
            match result {
                Ok(()) => {
                    metrics.events_delivered.inc();
                    metrics.progress.sink_succeeded();
                    return Delivery::Delivered;
                }
                Err(err) => match after_failure(err, attempt, &mut backoff, event, policy, metrics)
                {
                    Ok(pause) => pause,
                    Err(given_up) => break given_up,
                },
            }
        };
        tokio::select! {
            _ = give_up.token.cancelled() => return Delivery::Abandoned,
            _ = tokio::time::sleep(pause) => {}
        }
    };
    // Boxed for the same reason: the rare path stays out of the common
    // future.
    Box::pin(dispose(
        sink,
        dead_letter,
        event,
        given_up,
        policy,
        metrics,
        give_up,
    ))
    .await
}

struct GivenUp {
    reason: GiveUpReason,
    attempts: u32,
    last_error: Option<SendError>,
}

/// After a failed attempt: the pause before the next one, or why the event
/// is given up.
fn after_failure(
    err: SendError,
    attempt: u32,
    backoff: &mut impl Iterator<Item = Duration>,
    event: &StreamEvent,
    policy: &RetryPolicy,
    metrics: &Metrics,
) -> Result<Duration, GivenUp> {
    metrics
        .delivery_failures
        .get_or_create(&ClassLabel {
            class: err.class().to_owned(),
        })
        .inc();
    metrics.progress.sink_failed(&err);
    let reason = if !err.is_retryable() {
        Some(GiveUpReason::Rejected)
    } else if policy.max_attempts.is_some_and(|max| attempt >= max) {
        Some(GiveUpReason::Attempts)
    } else {
        None
    };
    if let Some(reason) = reason {
        return Err(GivenUp {
            reason,
            attempts: attempt,
            last_error: Some(err),
        });
    }
    let pause = policy.pause(&err, backoff);
    if attempt == 1 || attempt.is_multiple_of(10) {
        tracing::warn!(event_id = %event.id, attempt, error = %err, retry_in = %crate::duration_text(pause), "delivery failed; retrying");
    } else {
        tracing::debug!(event_id = %event.id, attempt, error = %err, retry_in = %crate::duration_text(pause), "delivery failed; retrying");
    }
    Ok(pause)
}

/// A given-up event: to the dead-letter sink, retried until it takes it
/// (giving up there would lose the event), or dropped without one.
async fn dispose(
    sink: &dyn Sink,
    dead_letter: Option<&DeadLetter>,
    event: &StreamEvent,
    given_up: GivenUp,
    policy: &RetryPolicy,
    metrics: &Metrics,
    give_up: &GiveUp,
) -> Delivery {
    let GivenUp {
        reason,
        attempts,
        last_error,
    } = given_up;
    let error_text = last_error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_else(|| "not tried".to_owned());
    let Some(dead_letter) = dead_letter else {
        metrics
            .events_dropped
            .get_or_create(&ReasonLabel {
                reason: reason.as_str().to_owned(),
            })
            .inc();
        tracing::error!(event_id = %event.id, reason = reason.as_str(), attempts, error = %error_text, "event given up and dropped (no {})", vars::DEAD_LETTER_SINK);
        return Delivery::Dropped(reason, last_error);
    };
    let letter = DeadLetter::letter(
        event,
        &sink.destination(),
        reason,
        attempts,
        last_error.as_ref(),
    );
    tracing::warn!(event_id = %event.id, reason = reason.as_str(), attempts, error = %error_text, "event given up; sending it to the dead-letter sink");
    let mut backoff = policy.backoff();
    let mut tries: u32 = 0;
    loop {
        tries += 1;
        if give_up.now() {
            return Delivery::Abandoned;
        }
        let result = tokio::select! {
            biased;
            _ = give_up.token.cancelled() => return Delivery::Abandoned,
            r = dead_letter.sink.send(&letter) => r,
        };
        match result {
            Ok(()) => {
                metrics.events_dead_lettered.inc();
                return Delivery::DeadLettered(reason);
            }
            Err(err) => {
                let pause = policy.pause(&err, &mut backoff);
                if tries == 1 || tries.is_multiple_of(10) {
                    tracing::warn!(event_id = %event.id, attempt = tries, error = %err, retry_in = %crate::duration_text(pause), "the dead-letter sink failed; retrying");
                }
                tokio::select! {
                    _ = give_up.token.cancelled() => return Delivery::Abandoned,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
