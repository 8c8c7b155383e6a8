//! The table's stream disabled and enabled again while the adapter runs: the
//! old stream's unread changes are drained, then the new stream is read from
//! its start, without a restart.

mod common;

use awsdynamodb_testkit::{
    DynamoDbLocal, KeyShape, RecordingSink, StreamViewType, TestTable, items,
};
use common::{WAIT, assert_all_arrived_in_order};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_of_both_streams_arrives() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
    let sink = RecordingSink::start().await?;
    let (mut adapter, _state) = common::start_adapter(&table, ddb.endpoint(), &sink).await;
    let pid = adapter.pid();
    // The sink is down until both streams have their changes, so the old
    // stream still has undelivered changes when it is disabled, however
    // fast or slow the machine is.
    sink.set_down(true).await?;

    for i in 0..60 {
        table
            .put(items::with_value(items::key(&format!("k{}", i % 6)), i))
            .await?;
    }
    let old = table.latest_stream_arn().await?.unwrap();
    table.disable_stream().await?;
    let delivered_when_disabled = sink.events().len();
    table.enable_stream(StreamViewType::NewAndOldImages).await?;
    let new = table.latest_stream_arn().await?.unwrap();
    assert_ne!(old, new);
    for i in 60..100 {
        table
            .put(items::with_value(items::key(&format!("k{}", i % 6)), i))
            .await?;
    }
    sink.set_down(false).await?;
    let mut records = table.read_all_records(&old).await?;
    let old_count = records.len();
    records.extend(table.read_all_records(&new).await?);
    assert_eq!((old_count, records.len()), (60, 100));
    let received = sink.wait_for_count(records.len(), WAIT).await?;
    assert!(
        delivered_when_disabled < old_count,
        "the old stream still had unread changes when it was disabled"
    );
    assert_eq!(assert_all_arrived_in_order(&records, &received), 0);
    let last_old = received
        .iter()
        .rposition(|e| {
            records[..old_count]
                .iter()
                .any(|r| r.event_id() == Some(&e.id))
        })
        .unwrap();
    let first_new = received
        .iter()
        .position(|e| {
            records[old_count..]
                .iter()
                .any(|r| r.event_id() == Some(&e.id))
        })
        .unwrap();
    assert!(
        last_old < first_new,
        "the old stream is drained before the new one is read"
    );
    adapter.wait_healthy(WAIT).await?;
    assert_eq!(adapter.pid(), pid, "no restart");
    common::stop(&mut adapter).await;
    Ok(())
}
