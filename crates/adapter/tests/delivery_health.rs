//! When delivery goes wrong, the operator sees it: the delivery lag (the age
//! of the oldest change not delivered) and the waiting events grow, and
//! `/health` answers 503 with the reason once the problem lasted
//! UNHEALTHY_AFTER; once the sink recovers, everything is delivered and both
//! come back. Also: every metric family is there from start-up.

mod common;

use std::time::Duration;

use awsdynamodb_testkit::{
    DynamoDbLocal, KeyShape, RecordingSink, StreamViewType, TestTable, items,
};
use common::{Probe, WAIT, metric, spawn_healthy};

const LAG: &str = "awsdynamodbsource_delivery_lag_seconds";
const WAITING: &str = "awsdynamodbsource_events_waiting";
const WAIT_SECONDS: &str = "awsdynamodbsource_event_wait_seconds";

async fn table() -> anyhow::Result<(&'static DynamoDbLocal, TestTable)> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    Ok((ddb, table))
}

async fn write(table: &TestTable, n: usize) -> anyhow::Result<()> {
    for i in 0..n {
        table
            .put(items::with_value(items::key(&format!("k{i}")), i as i64))
            .await?;
    }
    Ok(())
}

/// A sink that refuses every connection: the 7 changes wait, the lag grows
/// while they do, and `/health` names the sink's failure; back up, it gets
/// all 7 and the source is healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_refusing_connections_shows_in_the_lag_the_waiting_count_and_health()
-> anyhow::Result<()> {
    let (ddb, table) = table().await?;
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let mut env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    common::set(&mut env, "UNHEALTHY_AFTER", "2s");
    let mut adapter = spawn_healthy(env.clone()).await;
    let probe = Probe::new(&env);

    sink.set_down(true).await?;
    write(&table, 7).await?;
    let [_, first_lag] = probe
        .await_metrics([WAITING, LAG], |[w, _]| w == 7.0)
        .await?;
    probe.await_metrics([LAG], |[lag]| lag > first_lag).await?;
    let why = probe.await_health(|status, _| status == 503).await?;
    assert!(
        why.starts_with("the sink has failed every attempt for ")
            && why.contains("cannot connect to the sink"),
        "{why}"
    );
    let text = probe.metrics().await?;
    assert!(
        metric(&text, "awsdynamodbsource_sink_failing_seconds").is_some_and(|s| s >= 2.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            r#"awsdynamodbsource_event_delivery_failures_total{class="connection"}"#
        )
        .is_some_and(|n| n >= 7.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "awsdynamodbsource_events_delivered_total"),
        Some(0.0)
    );

    sink.set_down(false).await?;
    sink.wait_for_count(7, WAIT).await?;
    probe.await_health(|status, _| status == 204).await?;
    probe
        .await_metrics(
            [WAITING, LAG, "awsdynamodbsource_sink_failing_seconds"],
            |v| v == [0.0; 3],
        )
        .await?;
    common::stop(&mut adapter).await;
    Ok(())
}

/// A sink that answers, slowly (2 events a second for 40 changes): the
/// events wait, the oldest one waits longer and longer, and `/health` says
/// delivery is falling behind; once the sink is fast again, all arrive and
/// the source is healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sink_shows_in_the_lag_the_waiting_count_and_health() -> anyhow::Result<()> {
    let (ddb, table) = table().await?;
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let mut env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    common::set(&mut env, "UNHEALTHY_AFTER", "2s");
    common::set(&mut env, "MAX_IN_FLIGHT", "1");
    let mut adapter = spawn_healthy(env.clone()).await;
    let probe = Probe::new(&env);

    sink.set_delay(Some(Duration::from_millis(500)));
    write(&table, 40).await?;
    let [_, first_wait, first_lag] = probe
        .await_metrics([WAITING, WAIT_SECONDS, LAG], |[w, s, _]| {
            w >= 30.0 && s > 0.0
        })
        .await?;
    probe
        .await_metrics([WAIT_SECONDS, LAG], |[s, lag]| {
            s > first_wait && lag > first_lag
        })
        .await?;
    let why = probe.await_health(|status, _| status == 503).await?;
    assert!(
        why.starts_with("delivery is falling behind: shard ") && why.contains("events wait"),
        "{why}"
    );

    sink.set_delay(None);
    sink.wait_for_count(40, WAIT).await?;
    probe.await_health(|status, _| status == 204).await?;
    probe
        .await_metrics([WAITING, WAIT_SECONDS], |v| v == [0.0; 2])
        .await?;
    common::stop(&mut adapter).await;
    Ok(())
}

/// Before anything happened, every family is there, at zero: labelled
/// failure and drop counters for each label value, the AWS error counter for
/// each operation and class, the delivery gauges, and the `process_*`
/// metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_exists_from_start_up() -> anyhow::Result<()> {
    let (ddb, table) = table().await?;
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    let mut adapter = spawn_healthy(env.clone()).await;
    let text = Probe::new(&env).metrics().await?;
    let zero = [
        r#"awsdynamodbsource_event_delivery_failures_total{class="5xx"}"#,
        r#"awsdynamodbsource_event_delivery_failures_total{class="connection"}"#,
        r#"awsdynamodbsource_events_dropped_total{reason="rejected"}"#,
        r#"awsdynamodbsource_events_dropped_total{reason="malformed"}"#,
        r#"awsdynamodbsource_aws_errors_total{operation="GetRecords",class="throttled"}"#,
        r#"awsdynamodbsource_aws_errors_total{operation="DescribeStream",class="access_denied"}"#,
        "awsdynamodbsource_delivery_lag_seconds",
        "awsdynamodbsource_event_wait_seconds",
        "awsdynamodbsource_events_waiting",
        "awsdynamodbsource_events_waiting_worst_shard",
        "awsdynamodbsource_checkpoint_trail_events",
        "awsdynamodbsource_checkpoint_trail_events_worst_shard",
        "awsdynamodbsource_checkpoint_trail_seconds",
        "awsdynamodbsource_sink_failing_seconds",
        "awsdynamodbsource_events_delivered_total",
        "awsdynamodbsource_trimmed_data_total",
    ];
    for name in zero {
        assert_eq!(metric(&text, name), Some(0.0), "{name} at 0 in:\n{text}");
    }
    assert!(
        text.contains("awsdynamodbsource_shard_lag_seconds{shard=\"shardId-"),
        "a lag series for the one shard:\n{text}"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            metric(&text, name).is_some_and(|v| v > 0.0),
            "{name} in:\n{text}"
        );
    }
    common::stop(&mut adapter).await;
    Ok(())
}
