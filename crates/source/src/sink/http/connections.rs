use std::sync::Arc;
use std::time::{Duration, Instant};

use awsdynamodb_testkit::{FullListener, ThreadedSink, ThreadedSinkOptions};

use super::*;
use crate::event::StreamEvent;

/// 64 events at once (64 shards' worth) into a sink whose accept thread
/// takes 20 ms per connection: every one is answered promptly, because
/// connections are opened one at a time, and no more than the cap exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_opens_connections_one_at_a_time_and_never_past_the_cap() {
    for max_connections in [8, 64] {
        let receiver = ThreadedSink::start_with(ThreadedSinkOptions {
            accept_delay: Duration::from_millis(20),
            ..ThreadedSinkOptions::default()
        })
        .unwrap();
        let sink = Arc::new(
            HttpSink::new(
                parse_sink_url(&receiver.url()).unwrap(),
                SinkLimits {
                    max_connections,
                    ..SinkLimits::default()
                },
            )
            .unwrap(),
        );
        let started = Instant::now();
        let sends: Vec<_> = (0..64)
            .map(|n| {
                let sink = sink.clone();
                tokio::spawn(async move {
                    sink.send(&StreamEvent::with_id(format!("e{n}")))
                        .await
                        .map(|()| started.elapsed())
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for send in sends {
            slowest = slowest.max(send.await.unwrap().unwrap());
        }
        // The sink counts an answer just after writing it.
        let counts = receiver
            .wait_for_counts(|c| c.requests_answered == 64, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            counts.connections_accepted <= max_connections as u64,
            "{} connections for a cap of {max_connections}",
            counts.connections_accepted
        );
        // A request on a connection the sink never accepted waits for TCP
        // retransmissions (1 s and more), up to the response timeout.
        assert!(
            slowest < Duration::from_secs(1),
            "cap {max_connections}: the slowest of 64 took {slowest:?} ({counts:?})"
        );
    }
}

/// A sink whose accept queue is full drops the connection's SYN: the
/// attempt fails after SINK_CONNECT_TIMEOUT, not after the response timeout.
#[tokio::test]
async fn a_connection_not_established_in_time_is_abandoned() {
    let full = FullListener::start().unwrap();
    let sink = HttpSink::new(
        parse_sink_url(&full.url()).unwrap(),
        SinkLimits {
            connect_timeout: Duration::from_millis(200),
            response_timeout: Duration::from_secs(30),
            ..SinkLimits::default()
        },
    )
    .unwrap();
    let started = Instant::now();
    let err = sink
        .send(&StreamEvent::with_id("e"))
        .await
        .expect_err("never connected");
    assert!(
        matches!(&err, SendError::Connect(m) if m.contains("within 200ms")),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
