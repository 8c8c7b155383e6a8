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
        &GiveUp::default(),
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
        &GiveUp::default(),
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
        &GiveUp::from(give_up),
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
        &GiveUp::default(),
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
        &GiveUp::default(),
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
        &GiveUp::default(),
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
    old.origin.created_ms = Some(crate::unix_ms_now() - 2 * minute);
    let sink = recording(vec![]);
    let dlq = recording(vec![]);
    let dead_letter = DeadLetter { sink: dlq.clone() };
    let d = deliver(
        &*sink,
        Some(&dead_letter),
        &old,
        &policy,
        &Metrics::default(),
        &GiveUp::default(),
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
    young.origin.created_ms = Some(crate::unix_ms_now());
    let sink = recording(vec![]);
    let d = deliver(
        &*sink,
        Some(&dead_letter),
        &young,
        &policy,
        &Metrics::default(),
        &GiveUp::default(),
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
        GiveUp::default(),
        RetryPolicy::default(),
        event(),
    );
    let f = deliver(&*sink, None, &e, &policy, &metrics, &token);
    let boxed = std::mem::size_of_val(&f) + std::mem::size_of::<CloudEvent>() + 64;
    assert!(boxed < 1024, "about {boxed} bytes per event");
}
