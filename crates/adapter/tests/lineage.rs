//! Shard lineage end to end: the fault-injecting proxy presents DynamoDB
//! Local's shard as a tree of shards (splits while changes are written) and
//! injects expired iterators, throttling and server errors. The records stay
//! DynamoDB Local's own. Every change arrives, in order per item, once.

mod common;

use std::collections::HashSet;

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
    let records = table.read_all_records(&stream).await?;
    assert_eq!(records.len(), ITEMS * 4 * 4);
    let ids: HashSet<String> = records.iter().map(common::event_id).collect();
    let received = sink
        .wait_for(|e| ids.iter().all(|id| e.iter().any(|x| &x.id == id)), WAIT)
        .await?;
    assert_eq!(
        assert_all_arrived_in_order(&records, &received),
        0,
        "nothing twice"
    );
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
