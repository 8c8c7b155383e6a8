//! Delivering one event: attempts until the sink takes it, refuses it for
//! good, attempts or the record's age run out, or the caller gives up
//! (shutdown). What cannot be delivered goes to the dead-letter sink when
//! there is one.

use std::time::Duration;

use awsdynamodbsource_cloudevents::backoff::{Backoff, Pauses};
use tokio_util::sync::CancellationToken;

use super::{DeadLetter, SendError, Sink};
use crate::event::StreamEvent;
use crate::metrics::{ClassLabel, Metrics, ReasonLabel};

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

/// How a delivery ended.
#[derive(Debug)]
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

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Sends `event` until it is delivered or given up, or `give_up` fires.
pub async fn deliver(
    sink: &dyn Sink,
    dead_letter: Option<&DeadLetter>,
    event: &StreamEvent,
    policy: &RetryPolicy,
    metrics: &Metrics,
    give_up: &CancellationToken,
) -> Delivery {
    let mut backoff = policy.backoff();
    let mut attempt: u32 = 0;
    let given_up = loop {
        if policy.max_record_age.is_some() && policy.too_old(event, now_ms()) {
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
            let result = tokio::select! {
                biased;
                _ = give_up.cancelled() => return Delivery::Abandoned,
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
            _ = give_up.cancelled() => return Delivery::Abandoned,
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
        tracing::warn!(event_id = %event.id, attempt, error = %err, retry_in = ?pause, "delivery failed; retrying");
    } else {
        tracing::debug!(event_id = %event.id, attempt, error = %err, retry_in = ?pause, "delivery failed; retrying");
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
    give_up: &CancellationToken,
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
        tracing::error!(event_id = %event.id, reason = reason.as_str(), attempts, error = %error_text, "event given up and dropped (no DEAD_LETTER_SINK)");
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
        let result = tokio::select! {
            biased;
            _ = give_up.cancelled() => return Delivery::Abandoned,
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
                    tracing::warn!(event_id = %event.id, attempt = tries, error = %err, retry_in = ?pause, "the dead-letter sink failed; retrying");
                }
                tokio::select! {
                    _ = give_up.cancelled() => return Delivery::Abandoned,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::event::CloudEvent;

    /// Answers from a script, then 200.
    struct Scripted(Mutex<VecDeque<Result<(), SendError>>>);

    #[async_trait]
    impl Sink for Scripted {
        async fn send(&self, _: &CloudEvent) -> Result<(), SendError> {
            self.0.lock().unwrap().pop_front().unwrap_or(Ok(()))
        }
    }

    fn status(status: u16, retry_after: Option<Duration>) -> Result<(), SendError> {
        Err(SendError::Status {
            status,
            retry_after,
            body: String::new(),
            raw: bytes::Bytes::new(),
        })
    }

    fn event() -> StreamEvent {
        StreamEvent::with_id("e")
    }

    #[tokio::test(start_paused = true)]
    async fn retries_retryable_statuses_until_delivered_honouring_retry_after() {
        let sink = Scripted(Mutex::new(
            [
                status(503, None),
                status(429, Some(Duration::from_secs(7))),
                Err(SendError::Timeout),
            ]
            .into(),
        ));
        let metrics = Metrics::default();
        let started = tokio::time::Instant::now();
        let d = deliver(
            &sink,
            None,
            &event(),
            &RetryPolicy::default(),
            &metrics,
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(d, Delivery::Delivered));
        assert_eq!(metrics.delivery_retries.get(), 3);
        assert_eq!(metrics.events_delivered.get(), 1);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(7),
            "Retry-After honoured: {waited:?}"
        );
        assert!(waited < Duration::from_secs(8), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_status_drops_without_retry() {
        let sink = Scripted(Mutex::new([status(400, None)].into()));
        let metrics = Metrics::default();
        let d = deliver(
            &sink,
            None,
            &event(),
            &RetryPolicy::default(),
            &metrics,
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(
            d,
            Delivery::Dropped(
                GiveUpReason::Rejected,
                Some(SendError::Status { status: 400, .. })
            )
        ));
        assert_eq!(metrics.delivery_retries.get(), 0);
        assert_eq!(metrics.events_delivered.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_grow_but_stay_capped() {
        let policy = RetryPolicy::default();
        let pauses: Vec<Duration> = policy.backoff().take(30).collect();
        assert!(pauses[0] >= policy.min_delay);
        assert!(pauses.iter().all(|p| *p <= policy.max_delay), "{pauses:?}");
        assert!(pauses[29] >= policy.max_delay / 2);
    }

    #[tokio::test(start_paused = true)]
    async fn giving_up_abandons() {
        let sink = Scripted(Mutex::new(
            std::iter::repeat_with(|| status(503, None))
                .take(1000)
                .collect(),
        ));
        let metrics = Metrics::default();
        let give_up = CancellationToken::new();
        let cancel = give_up.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            cancel.cancel();
        });
        let d = deliver(
            &sink,
            None,
            &event(),
            &RetryPolicy::default(),
            &metrics,
            &give_up,
        )
        .await;
        assert!(matches!(d, Delivery::Abandoned));
        assert_eq!(metrics.events_delivered.get(), 0);
    }

    /// Records what it is sent; answers from a script, then 200.
    struct Recording {
        script: Mutex<VecDeque<Result<(), SendError>>>,
        sent: Mutex<Vec<CloudEvent>>,
    }

    #[async_trait]
    impl Sink for Recording {
        async fn send(&self, event: &CloudEvent) -> Result<(), SendError> {
            self.sent.lock().unwrap().push(event.clone());
            self.script.lock().unwrap().pop_front().unwrap_or(Ok(()))
        }
        fn destination(&self) -> String {
            "http://dlq/".into()
        }
    }

    fn recording(script: Vec<Result<(), SendError>>) -> std::sync::Arc<Recording> {
        std::sync::Arc::new(Recording {
            script: Mutex::new(script.into()),
            sent: Mutex::new(Vec::new()),
        })
    }

    fn extension<'a>(event: &'a CloudEvent, name: &str) -> Option<&'a str> {
        event
            .extensions
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }

    #[tokio::test(start_paused = true)]
    async fn max_attempts_then_the_dead_letter_sink_which_is_retried_until_it_takes_it() {
        let sink = recording((0..10).map(|_| status(503, None)).collect());
        let dlq = recording(vec![status(500, None), Err(SendError::Timeout)]);
        let policy = RetryPolicy {
            max_attempts: Some(3),
            ..RetryPolicy::default()
        };
        let metrics = Metrics::default();
        let dead_letter = DeadLetter { sink: dlq.clone() };
        let d = deliver(
            &*sink,
            Some(&dead_letter),
            &event(),
            &policy,
            &metrics,
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(d, Delivery::DeadLettered(GiveUpReason::Attempts)));
        assert_eq!(sink.sent.lock().unwrap().len(), 3, "MAX_ATTEMPTS attempts");
        let letters = dlq.sent.lock().unwrap();
        assert_eq!(letters.len(), 3, "the dead-letter sink is retried");
        assert_eq!(extension(&letters[2], "deliveryattempts"), Some("3"));
        assert_eq!(extension(&letters[2], "knativeerrorcode"), Some("503"));
        assert_eq!(
            extension(&letters[2], "deadletterreason"),
            Some("attempts-exhausted")
        );
        assert_eq!(metrics.events_dead_lettered.get(), 1);
        assert_eq!(metrics.events_delivered.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_event_goes_to_the_dead_letter_sink_at_once() {
        let sink = recording(vec![status(400, None)]);
        let dlq = recording(vec![]);
        let d = deliver(
            &*sink,
            Some(&DeadLetter { sink: dlq.clone() }),
            &event(),
            &RetryPolicy::default(),
            &Metrics::default(),
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(d, Delivery::DeadLettered(GiveUpReason::Rejected)));
        assert_eq!(sink.sent.lock().unwrap().len(), 1);
        assert_eq!(
            extension(&dlq.sent.lock().unwrap()[0], "knativeerrorcode"),
            Some("400")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn max_attempts_without_a_dead_letter_sink_drops() {
        let sink = recording((0..10).map(|_| Err(SendError::Timeout)).collect());
        let policy = RetryPolicy {
            max_attempts: Some(2),
            ..RetryPolicy::default()
        };
        let metrics = Metrics::default();
        let d = deliver(
            &*sink,
            None,
            &event(),
            &policy,
            &metrics,
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(
            d,
            Delivery::Dropped(GiveUpReason::Attempts, Some(SendError::Timeout))
        ));
        assert_eq!(sink.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_record_older_than_max_record_age_is_given_up_untried() {
        let minute = 60_000;
        let policy = RetryPolicy {
            max_record_age: Some(Duration::from_secs(60)),
            ..RetryPolicy::default()
        };
        let mut old = event();
        old.origin.created_ms = Some(now_ms() - 2 * minute);
        let sink = recording(vec![]);
        let dlq = recording(vec![]);
        let dead_letter = DeadLetter { sink: dlq.clone() };
        let d = deliver(
            &*sink,
            Some(&dead_letter),
            &old,
            &policy,
            &Metrics::default(),
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(d, Delivery::DeadLettered(GiveUpReason::Age)));
        assert!(
            sink.sent.lock().unwrap().is_empty(),
            "not tried once too old"
        );
        assert_eq!(
            extension(&dlq.sent.lock().unwrap()[0], "deadletterreason"),
            Some("record-too-old")
        );

        // A young record is tried.
        let mut young = event();
        young.origin.created_ms = Some(now_ms());
        let sink = recording(vec![]);
        let d = deliver(
            &*sink,
            Some(&dead_letter),
            &young,
            &policy,
            &Metrics::default(),
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(d, Delivery::Delivered));
        assert_eq!(dlq.sent.lock().unwrap().len(), 1);
    }

    /// Every event's delivery is one boxed future holding its event and
    /// this one. glibc's malloc serves requests past 1 KiB on a slower path
    /// (it consolidates the fast bins first), so the common path stays under
    /// that; the dead-letter path is boxed apart for this reason.
    #[test]
    fn the_per_event_future_stays_under_a_kibibyte() {
        let sink = recording(vec![]);
        let (metrics, token, policy, e) = (
            Metrics::default(),
            CancellationToken::new(),
            RetryPolicy::default(),
            event(),
        );
        let f = deliver(&*sink, None, &e, &policy, &metrics, &token);
        let boxed = std::mem::size_of_val(&f) + std::mem::size_of::<CloudEvent>() + 64;
        assert!(boxed < 1024, "about {boxed} bytes per event");
    }
}
