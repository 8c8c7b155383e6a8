//! Delivering one event: attempts until the sink takes it, refuses it for
//! good, or the caller gives up (shutdown).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

use super::{SendError, Sink};
use crate::event::CloudEvent;
use crate::metrics::{ClassLabel, Metrics, ReasonLabel};

/// Capped exponential backoff with jitter between attempts; a sink's
/// `Retry-After` replaces the computed pause (up to `max_retry_after`).
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            // Jitter adds up to 100 %: halve the cap so pauses stay under it.
            .with_max_delay(self.max_delay / 2)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// How a delivery ended.
#[derive(Debug)]
pub enum Delivery {
    /// The sink answered 2xx.
    Delivered,
    /// The sink refused it with a final status; it is done, not delivered.
    Dropped(SendError),
    /// Given up before an answer (shutdown): not done.
    Abandoned,
}

/// Sends `event` until it is delivered or refused for good, or `give_up`
/// fires.
pub async fn deliver(
    sink: &dyn Sink,
    event: &CloudEvent,
    policy: &RetryPolicy,
    metrics: &Metrics,
    give_up: &CancellationToken,
) -> Delivery {
    let mut backoff = policy.backoff();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        if attempt > 1 {
            metrics.delivery_retries.inc();
        }
        let result = tokio::select! {
            biased;
            _ = give_up.cancelled() => return Delivery::Abandoned,
            r = sink.send(event) => r,
        };
        let err = match result {
            Ok(()) => {
                metrics.events_delivered.inc();
                return Delivery::Delivered;
            }
            Err(err) => err,
        };
        metrics
            .delivery_failures
            .get_or_create(&ClassLabel {
                class: err.class().to_owned(),
            })
            .inc();
        if !err.is_retryable() {
            metrics
                .events_dropped
                .get_or_create(&ReasonLabel {
                    reason: "rejected".to_owned(),
                })
                .inc();
            tracing::error!(event_id = %event.id, error = %err, "the sink refused the event for good; dropped");
            return Delivery::Dropped(err);
        }
        let pause = match err.retry_after() {
            Some(after) => after.min(policy.max_retry_after),
            None => backoff.next().unwrap_or(policy.max_delay),
        };
        if attempt == 1 || attempt.is_multiple_of(10) {
            tracing::warn!(event_id = %event.id, attempt, error = %err, retry_in = ?pause, "delivery failed; retrying");
        } else {
            tracing::debug!(event_id = %event.id, attempt, error = %err, retry_in = ?pause, "delivery failed; retrying");
        }
        tokio::select! {
            _ = give_up.cancelled() => return Delivery::Abandoned,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;

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
        })
    }

    fn event() -> CloudEvent {
        CloudEvent::with_id("e")
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
            &event(),
            &RetryPolicy::default(),
            &metrics,
            &CancellationToken::new(),
        )
        .await;
        assert!(matches!(
            d,
            Delivery::Dropped(SendError::Status { status: 400, .. })
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
        let d = deliver(&sink, &event(), &RetryPolicy::default(), &metrics, &give_up).await;
        assert!(matches!(d, Delivery::Abandoned));
        assert_eq!(metrics.events_delivered.get(), 0);
    }
}
