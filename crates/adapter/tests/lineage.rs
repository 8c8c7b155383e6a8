//! Shard lineage end to end: the fault-injecting proxy presents DynamoDB
//! Local's shard as a tree of shards (splits while changes are written) and
//! injects expired iterators, throttling and server errors. The records stay
//! DynamoDB Local's own. Every change arrives, in order per item, once.

mod common;

use awsdynamodb_testkit::{
    AdapterProcess, AttributeValue, DynamoDbLocal, Fault, FaultProxy, KeyShape, Op, RecordingSink,
    StreamViewType, TestTable, items,
};
use common::{WAIT, assert_all_arrived_in_order};

const ITEMS: usize = 12;

async fn write_batch(table: &TestTable, round: usize) -> anyhow::Result<()> {
    for i in 0..ITEMS * 4 {
        let key = items::key(&format!("item-{}", i % ITEMS));
        table
            .update_set(key, &[("v", AttributeValue::N(format!("{round}{i:03}")))])
            .await?;
    }
    Ok(())
}

/// Waits until every one of the stream's `expected` changes has arrived,
/// then checks that each arrived once, in order per item.
async fn every_change_arrives_once_in_order(
    table: &TestTable,
    stream: &str,
    sink: &RecordingSink,
    expected: usize,
) -> anyhow::Result<()> {
    let records = table.read_all_records(stream).await?;
    assert_eq!(records.len(), expected);
    let received = sink.wait_for(common::has_every(&records), WAIT).await?;
    assert_eq!(
        assert_all_arrived_in_order(&records, &received),
        0,
        "nothing twice"
    );
    Ok(())
}

/// Writes in four batches with a split before each of the last three, then
/// checks what arrived. Returns the adapter's log lines.
async fn split_while_writing(
    proxy: &FaultProxy,
    table: &TestTable,
    sink: &RecordingSink,
    adapter: &AdapterProcess,
) -> anyhow::Result<Vec<String>> {
    let stream = table.latest_stream_arn().await?.unwrap();
    let mut children = Vec::new();
    write_batch(table, 1).await?;
    for (round, fanout) in [(2, 2), (3, 2), (4, 1)] {
        let split = proxy.split(&stream, fanout).await?;
        children.extend(split.child_shard_ids);
        write_batch(table, round).await?;
    }
    every_change_arrives_once_in_order(table, &stream, sink, ITEMS * 4 * 4).await?;
    let logs = adapter.stderr_lines();
    for child in &children {
        assert!(
            logs.iter()
                .any(|l| l.contains("reading shard") && l.contains(child.as_str())),
            "child shard {child} was never read"
        );
    }
    Ok(logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_while_writing_keep_every_change_in_order() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    // Once with the CHILD_SHARDS filter answered, once ignored as DynamoDB
    // Local does; DescribeStream pages of two shards.
    for honour_filter in [true, false] {
        let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
        let proxy = FaultProxy::start(ddb.endpoint()).await?;
        proxy.honour_shard_filter(honour_filter);
        proxy.describe_page_size(Some(2));
        let sink = RecordingSink::start().await?;
        let (mut adapter, _state) = common::start_adapter(&table, &proxy.endpoint(), &sink).await;
        let logs = split_while_writing(&proxy, &table, &sink, &adapter).await?;
        assert!(
            logs.iter()
                .any(|l| l.contains("a shard ended; its children are known"))
        );
        common::stop(&mut adapter).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_iterators_throttling_and_server_errors_lose_nothing() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
    let proxy = FaultProxy::start(ddb.endpoint()).await?;
    proxy.fail_ratio(Op::GetRecords, 0.2, Fault::ExpiredIterator);
    proxy.fail_ratio(Op::GetShardIterator, 0.3, Fault::LimitExceeded);
    proxy.fail_ratio(Op::DescribeStream, 0.3, Fault::Internal);
    proxy.fail_ratio(Op::ListStreams, 0.3, Fault::Throttling);
    let sink = RecordingSink::start().await?;
    let (mut adapter, _state) = common::start_adapter(&table, &proxy.endpoint(), &sink).await;
    split_while_writing(&proxy, &table, &sink, &adapter).await?;
    assert!(
        proxy.calls(Op::GetShardIterator) > 5,
        "iterators were renewed"
    );
    common::stop(&mut adapter).await;
    Ok(())
}

/// One process, a parent split into 64 open children (records routed to
/// children by key): every change arrives once, in order per item; the
/// endpoint never sees more than 64 calls at once; and what the adapter
/// shows does not grow with the shards: `/metrics` is no bigger than with
/// one shard (give or take the digits of its counters), and the split
/// adds a few log lines, none long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_open_shards() -> anyhow::Result<()> {
    const WIDTH: u32 = 64;
    const ITEMS: usize = 100;
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
    let proxy = FaultProxy::start(ddb.endpoint()).await?;
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let mut env = common::env(
        table.arn(),
        &proxy.endpoint(),
        Some(&sink.url()),
        state.path(),
    );
    common::set(&mut env, "POLL_INTERVAL", "250ms");
    common::set(&mut env, "LOG_LEVEL", "info");
    let probe = common::Probe::new(&env);
    let mut adapter = common::spawn_healthy(env).await;
    let stream = table.latest_stream_arn().await?.unwrap();
    let key = |i: usize| items::key(&format!("item-{i}"));
    table.put(items::with_value(key(0), 0)).await?;
    sink.wait_for(|e| !e.is_empty(), WAIT).await?;
    let one_shard_metrics = probe.metrics().await?.len();
    let lines_before = adapter.stderr_lines().len();

    proxy.split(&stream, WIDTH).await?;
    proxy.reset_counters();
    for round in 1..=3 {
        for i in 0..ITEMS {
            table.put(items::with_value(key(i), round)).await?;
        }
    }
    every_change_arrives_once_in_order(&table, &stream, &sink, 1 + 3 * ITEMS).await?;
    let shards = probe
        .await_metrics(["awsdynamodbsource_shards_owned"], |[n]| {
            n == f64::from(WIDTH)
        })
        .await?;
    assert_eq!(shards, [f64::from(WIDTH)]);

    let peak = proxy.peak_in_flight();
    assert!(peak <= 64, "{peak} calls at once");
    let metrics = probe.metrics().await?.len();
    assert!(
        metrics <= one_shard_metrics + one_shard_metrics / 10,
        "/metrics: {metrics} bytes with {WIDTH} shards, {one_shard_metrics} with one"
    );
    let logs = adapter.stderr_lines();
    let new_lines = &logs[lines_before..];
    assert!(new_lines.len() <= 5, "{new_lines:#?}");
    assert!(new_lines.iter().all(|l| l.len() < 1_000), "{new_lines:#?}");
    common::stop(&mut adapter).await;
    Ok(())
}
