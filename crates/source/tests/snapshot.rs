//! SNAPSHOT=initial in the engine: the table's items from DynamoDB Local's
//! scan, the stream from the model behind `StreamsApi` (whose record times
//! a test sets). Rows arrive once, a change read during the snapshot
//! supersedes its item's row, FILTER sees rows as `SNAPSHOT`, progress is
//! reported and saved, and a source with checkpoints does not snapshot
//! again.

mod support;

use std::sync::Arc;
use std::time::Duration;

use awsdynamodb_source::test_support::MemoryStore;
use awsdynamodb_source::test_support::{CloudEvent, RetryPolicy};
use awsdynamodb_source::{
    EngineConfig, RecordFilter, Snapshot, StartingPosition, TableArn, TableScanner,
};
use awsdynamodb_testkit::{
    AttributeValue, DynamoDbLocal, Fault, FaultProxy, KeyShape, Op, Retries, StreamViewType,
    TestTable, dynamodb_client,
};
use support::{Call, FakeStreams, MemorySink, Running, TABLE_ARN};

const WAIT: Duration = Duration::from_secs(30);
const ITEMS: usize = 30;

fn config() -> EngineConfig {
    let mut c = EngineConfig::new(TABLE_ARN.parse::<TableArn>().unwrap());
    c.starting_position = StartingPosition::Latest;
    c.poll_interval = Duration::from_millis(5);
    c.discovery_interval = Duration::from_millis(200);
    c.shard_list_interval = Duration::from_millis(200);
    c.checkpoint_interval = Duration::from_millis(20);
    c.shutdown_timeout = Duration::from_secs(1);
    c.retry = RetryPolicy {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    c
}

/// A table of `ITEMS` items, `item-0`.. with `v` 0.
async fn table() -> TestTable {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage)
        .await
        .unwrap();
    for n in 0..ITEMS {
        let mut item = table.key(&format!("item-{n}"), None);
        item.insert("v".into(), AttributeValue::N("0".into()));
        table.put(item).await.unwrap();
    }
    table
}

async fn start(
    api: &FakeStreams,
    store: Arc<MemoryStore>,
    table: &TestTable,
    config: EngineConfig,
) -> Running {
    start_scanning(api, store, table, table.dynamodb().clone(), config).await
}

async fn start_scanning(
    api: &FakeStreams,
    store: Arc<MemoryStore>,
    table: &TestTable,
    client: aws_sdk_dynamodb::Client,
    config: EngineConfig,
) -> Running {
    // Small pages in 3 segments: several chunks, released one by one.
    let scanner = TableScanner::new(client, table.name(), 3, Some(4), None);
    let sink = Arc::new(MemorySink::default());
    support::start_engine(api, store, config, sink, |engine, saved| {
        let table_arn = TABLE_ARN.parse::<TableArn>().unwrap();
        if !awsdynamodb_source::snapshot_due(saved, &table_arn) {
            return engine;
        }
        engine.with_snapshot(Snapshot {
            scanner,
            // Wide: a loaded machine may read a chunk seconds after a change.
            margin: Duration::from_secs(10),
            estimated_items: ITEMS as i64,
        })
    })
    .await
}

/// Polls `condition` (a figure in process, no event to await) until it
/// holds, or fails naming `what`.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn operation(e: &CloudEvent) -> String {
    let data: serde_json::Value = serde_json::from_slice(e.data.as_deref().unwrap()).unwrap();
    data["EventName"].as_str().unwrap_or_default().to_owned()
}

fn key_of(e: &CloudEvent) -> String {
    let data: serde_json::Value = serde_json::from_slice(e.data.as_deref().unwrap()).unwrap();
    data["Dynamodb"]["Keys"]["pk"]["S"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn rows(events: &[CloudEvent]) -> Vec<String> {
    let mut keys: Vec<String> = events
        .iter()
        .filter(|e| operation(e) == "SNAPSHOT")
        .map(key_of)
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_item_once_then_changes_and_no_second_snapshot() {
    let table = table().await;
    let (api, stream) = FakeStreams::with_one_shard();
    let store = Arc::new(MemoryStore::new());
    let run = start(&api, store.clone(), &table, config()).await;
    run.sink
        .wait_for(WAIT, "every row", |events| rows(events).len() == ITEMS)
        .await;
    let mut expected: Vec<String> = (0..ITEMS).map(|n| format!("item-{n}")).collect();
    expected.sort();
    assert_eq!(
        rows(&run.sink.events.lock().unwrap()),
        expected,
        "each once"
    );
    // Done: reported, then changes follow.
    let metrics = &run.metrics;
    eventually("the snapshot ends", || {
        metrics.snapshot_segments_done.get() == 3 && run.health.note().is_none()
    })
    .await;
    assert_eq!(metrics.snapshot_items_read.get(), ITEMS as u64);
    assert_eq!(metrics.snapshot_rows_sent.get(), ITEMS as u64);
    let change = api.write(&stream, "a", "item-1", 7);
    run.sink
        .wait_for(WAIT, "the change", |events| {
            events.iter().any(|e| e.id == change)
        })
        .await;
    run.stop().await;

    // Checkpoints exist: no second snapshot.
    let again = start(&api, store, &table, config()).await;
    let later = api.write(&stream, "a", "item-2", 8);
    again
        .sink
        .wait_for(WAIT, "a later change", |events| {
            events.iter().any(|e| e.id == later)
        })
        .await;
    assert!(rows(&again.sink.events.lock().unwrap()).is_empty());
    assert_eq!(again.metrics.snapshot_segments.get(), 0);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_read_during_the_snapshot_supersedes_its_items_row() {
    let table = table().await;
    let (api, stream) = FakeStreams::with_one_shard();
    let run = start(&api, Arc::new(MemoryStore::new()), &table, config()).await;
    // Once the reader holds its iterator (the scan waits for that): a
    // change timed within the margin of the reads. The stream brings
    // item-3's state, and its row (older or the same) is dropped.
    eventually("the reader reads", || {
        api.count(|c| matches!(c, Call::GetRecords { .. })) > 0
    })
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let change = api.write_at(&stream, "a", "item-3", 9, now + 1);
    run.sink
        .wait_for(WAIT, "the other rows", |events| {
            rows(events).len() == ITEMS - 1
        })
        .await;
    let events = run.sink.events.lock().unwrap().clone();
    assert!(!rows(&events).contains(&"item-3".to_owned()));
    assert!(events.iter().any(|e| e.id == change));
    assert_eq!(run.metrics.snapshot_rows_superseded.get(), 1);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_sees_rows_as_snapshot() {
    let table = table().await;
    let (api, stream) = FakeStreams::with_one_shard();
    let mut only_changes = config();
    only_changes.filter = Some(Arc::new(
        RecordFilter::parse(r#"[{"eventName": ["MODIFY"]}]"#).unwrap(),
    ));
    let run = start(&api, Arc::new(MemoryStore::new()), &table, only_changes).await;
    eventually("the snapshot ends", || {
        run.metrics.snapshot_items_read.get() == ITEMS as u64
    })
    .await;
    let change = api.write(&stream, "a", "item-1", 7);
    run.sink
        .wait_for(WAIT, "the change", |events| {
            events.iter().any(|e| e.id == change)
        })
        .await;
    assert!(rows(&run.sink.events.lock().unwrap()).is_empty());
    assert_eq!(run.metrics.snapshot_rows_sent.get(), 0);
    run.stop().await;

    let mut rows_too = config();
    rows_too.filter = Some(Arc::new(
        RecordFilter::parse(r#"[{"eventName": ["MODIFY", "SNAPSHOT"]}]"#).unwrap(),
    ));
    let (api, _) = FakeStreams::with_one_shard();
    let run = start(&api, Arc::new(MemoryStore::new()), &table, rows_too).await;
    run.sink
        .wait_for(WAIT, "every row", |events| rows(events).len() == ITEMS)
        .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_scan_makes_the_source_unhealthy_until_it_reads_again() {
    let table = table().await;
    let proxy = FaultProxy::start(DynamoDbLocal::shared().await.endpoint())
        .await
        .unwrap();
    proxy.fail_ratio(Op::Scan, 1.0, Fault::AccessDenied);
    let client = dynamodb_client(&proxy.endpoint(), Retries::Disabled);
    let (api, _) = FakeStreams::with_one_shard();
    let run = start_scanning(&api, Arc::new(MemoryStore::new()), &table, client, config()).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let why = loop {
        if let Err(why) = run.health.check()
            && why.contains("snapshot")
        {
            break why;
        }
        assert!(tokio::time::Instant::now() < deadline, "unhealthy");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        why.starts_with(
            "the snapshot's scan of table orders failed and starts again: access denied"
        ),
        "{why}"
    );
    proxy.clear_faults();
    run.sink
        .wait_for(WAIT, "every row", |events| rows(events).len() == ITEMS)
        .await;
    assert_eq!(run.health.check(), Ok(()));
    run.stop().await;
}
