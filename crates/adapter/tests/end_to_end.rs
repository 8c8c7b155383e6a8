//! The adapter binary against DynamoDB Local into a real HTTP sink: every
//! change once, with the contract's attributes and the original's bytes.

mod common;

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::Record;
use awsdynamodb_source::test_support::{encode_record, format_time};
use awsdynamodb_testkit::{
    AttributeValue, DynamoDbLocal, FaultProxy, KeyShape, RecordingSink, StreamViewType, TestTable,
    items,
};
use common::{SECRET, WAIT, assert_clean_output, set, spawn_healthy};

/// Inserts of items with every attribute type, updates, deletes.
async fn workload(table: &TestTable, n: i64) -> anyhow::Result<()> {
    for i in 0..n {
        table
            .put(items::every_type(table.key(&format!("item-{i}"), Some(i))))
            .await?;
    }
    for i in 0..n {
        table
            .update_set(
                table.key(&format!("item-{i}"), Some(i)),
                &[
                    ("n", AttributeValue::N(format!("{}.5", i + 100))),
                    ("s", AttributeValue::S("updated <&> \u{2028} ok".into())),
                ],
            )
            .await?;
    }
    for i in 0..n / 2 {
        table
            .delete(table.key(&format!("item-{i}"), Some(i)))
            .await?;
    }
    Ok(())
}

fn operation(r: &Record) -> &str {
    r.event_name().unwrap().as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_arrives_once_with_the_contract_attributes_and_the_originals_bytes()
-> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table =
        TestTable::create(ddb, KeyShape::HashRange, StreamViewType::NewAndOldImages).await?;
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    // A password in the sink URL must not show up in the logs either.
    let sink_url = sink
        .url()
        .replace("http://", &format!("http://user:{SECRET}@"));
    let mut env = common::env(table.arn(), ddb.endpoint(), Some(&sink_url), state.path());
    set(
        &mut env,
        "K_CE_OVERRIDES",
        r#"{"extensions":{"team":"blue"}}"#,
    );
    let mut adapter = spawn_healthy(env).await;

    workload(&table, 10).await?;
    let stream = table.latest_stream_arn().await?.expect("a stream");
    let records = table.read_all_records(&stream).await?;
    assert_eq!(records.len(), 25, "10 inserts, 10 updates, 5 deletes");
    sink.wait_for_count(records.len(), WAIT).await?;
    // A graceful stop finishes what is in flight: nothing more may come.
    adapter.terminate()?;
    assert!(adapter.wait_exit(WAIT).await?.success());
    let received = sink.events();
    assert_eq!(received.len(), records.len(), "each change exactly once");

    for record in &records {
        let id = record.event_id().unwrap();
        let event = received.iter().find(|e| e.id == id).expect("delivered");
        assert_eq!(event.specversion, "1.0");
        assert_eq!(event.ty, "com.amazon.dynamodb.stream_record");
        assert_eq!(event.source, table.arn());
        assert_eq!(
            event.subject.as_deref(),
            Some("pk,sk"),
            "hash key, then range key"
        );
        let created = record
            .dynamodb()
            .unwrap()
            .approximate_creation_date_time()
            .unwrap();
        assert_eq!(
            event.time.as_deref(),
            Some(format_time(created).as_str()),
            "the record's time"
        );
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
        assert!(!event.structured, "binary mode");
        assert_eq!(
            event
                .extensions
                .get("dynamodboperation")
                .map(String::as_str),
            Some(operation(record))
        );
        assert_eq!(
            event.extensions.get("team").map(String::as_str),
            Some("blue")
        );
        let mut want = Vec::new();
        encode_record(record, &mut want);
        assert_eq!(
            String::from_utf8_lossy(&event.data),
            String::from_utf8_lossy(&want),
            "data bytes (the encoder is held to the original's golden files)"
        );
    }
    let ops: Vec<&str> = records.iter().map(operation).collect();
    assert!(ops.contains(&"INSERT") && ops.contains(&"MODIFY") && ops.contains(&"REMOVE"));
    assert_clean_output(&adapter);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sink_events_are_json_lines_on_stdout_and_health_and_metrics_are_served()
-> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    let proxy = FaultProxy::start(ddb.endpoint()).await?;
    // Startup is slowed down so that /health can be seen unready first.
    proxy.fail_next(
        awsdynamodb_testkit::Op::ListStreams,
        1,
        awsdynamodb_testkit::Fault::Delay(Duration::from_secs(2)),
    );
    let state = tempfile::tempdir()?;
    let env = common::env(table.arn(), &proxy.endpoint(), None, state.path());
    let port = |name: &str| env.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let (health_url, metrics_url) = (
        format!("http://127.0.0.1:{}/health", port("HEALTH_PORT")),
        format!(
            "http://127.0.0.1:{}/metrics",
            port("METRICS_PROMETHEUS_PORT")
        ),
    );
    let mut adapter = awsdynamodb_testkit::AdapterProcess::spawn(common::BINARY, env)?;
    let http = reqwest::Client::new();
    let first = loop {
        if let Ok(r) = http.get(&health_url).send().await {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        first.status(),
        503,
        "not ready before a reader holds an iterator"
    );
    assert!(!first.text().await?.is_empty(), "with a reason");
    adapter.wait_healthy(WAIT).await?;
    assert_eq!(http.get(&health_url).send().await?.status(), 204);

    for i in 0..20 {
        table
            .put(items::with_value(items::key(&format!("k{i}")), i))
            .await?;
    }
    let lines = adapter.wait_for_stdout(|l| l.len() >= 20, WAIT).await?;
    let stream = table.latest_stream_arn().await?.unwrap();
    let in_stream_order: Vec<String> = table
        .read_all_records(&stream)
        .await?
        .iter()
        .map(common::event_id)
        .collect();
    let printed: Vec<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        printed, in_stream_order,
        "standard output keeps stream order"
    );
    for line in &lines {
        let event: serde_json::Value = serde_json::from_str(line)?;
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["type"], "com.amazon.dynamodb.stream_record");
        assert_eq!(event["source"], table.arn());
        assert_eq!(event["subject"], "pk");
        assert_eq!(event["dynamodboperation"], "INSERT");
        assert_eq!(event["datacontenttype"], "application/json");
        assert_eq!(event["data"]["Dynamodb"]["StreamViewType"], "NEW_IMAGE");
    }
    let metrics = http.get(&metrics_url).send().await?.text().await?;
    for name in [
        "awsdynamodbsource_records_read_total 20",
        "awsdynamodbsource_events_delivered_total 20",
        "awsdynamodbsource_getrecords_calls_total",
        "awsdynamodbsource_shards_owned 1",
        "awsdynamodbsource_shard_lag_seconds{",
        "awsdynamodbsource_event_delivery_retries_total 0",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    // Logs are JSON lines with lower-case level, msg, logger and ts.
    for line in adapter.stderr_lines() {
        let log: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["level", "msg", "logger", "ts"] {
            assert!(log.get(key).is_some(), "{key} missing: {line}");
        }
        assert_eq!(
            log["level"].as_str().unwrap(),
            log["level"].as_str().unwrap().to_lowercase()
        );
    }
    common::stop(&mut adapter).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_restart_sends_nothing_twice() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    let mut adapter = spawn_healthy(env.clone()).await;
    for i in 0..20 {
        table
            .put(items::with_value(items::key(&format!("k{}", i % 4)), i))
            .await?;
    }
    sink.wait_for_count(20, WAIT).await?;
    adapter.terminate()?;
    assert!(
        adapter.wait_exit(WAIT).await?.success(),
        "SIGTERM ends with 0"
    );
    assert!(state.path().join("checkpoints.json").exists());
    for i in 20..30 {
        table
            .put(items::with_value(items::key(&format!("k{}", i % 4)), i))
            .await?;
    }
    let mut adapter = spawn_healthy(env).await;
    let stream = table.latest_stream_arn().await?.unwrap();
    let records = table.read_all_records(&stream).await?;
    let received = sink.wait_for_count(records.len(), WAIT).await?;
    adapter.terminate()?;
    adapter.wait_exit(WAIT).await?;
    let received_after = sink.events();
    assert_eq!(
        received_after.len(),
        30,
        "no duplicates across a graceful restart"
    );
    assert_eq!(common::assert_all_arrived_in_order(&records, &received), 0);
    assert_clean_output(&adapter);
    Ok(())
}
