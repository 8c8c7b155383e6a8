//! A sink that rejects 30 % of requests with 503 and is down for 8 seconds,
//! under many updates per item: every change arrives, in order per item.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use awsdynamodb_testkit::{
    AttributeValue, DynamoDbLocal, KeyShape, RecordingSink, StreamViewType, TestTable, items,
};
use common::{WAIT, assert_all_arrived_in_order, assert_clean_output};

const ITEMS: usize = 10;
const UPDATES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_sink_that_also_goes_down_gets_every_change_in_order_per_item() -> anyhow::Result<()>
{
    let ddb = DynamoDbLocal::shared().await;
    let table =
        Arc::new(TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?);
    let sink = RecordingSink::start().await?;
    sink.reject_ratio(0.3, 503);
    let (mut adapter, _state) = common::start_adapter(&table, ddb.endpoint(), &sink).await;

    let written = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let (table, written) = (table.clone(), written.clone());
        async move {
            for round in 0..UPDATES {
                for item in 0..ITEMS {
                    let key = items::key(&format!("item-{item}"));
                    table
                        .update_set(key, &[("v", AttributeValue::N(round.to_string()))])
                        .await?;
                    written.fetch_add(1, Ordering::SeqCst);
                }
            }
            anyhow::Ok(())
        }
    });
    // Down for 8 s while a third of the changes are written.
    while written.load(Ordering::SeqCst) < ITEMS * UPDATES / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sink.set_down(true).await?;
    let during = sink.events().len();
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        sink.events().len(),
        during,
        "nothing arrives while the sink is down"
    );
    sink.set_down(false).await?;
    writer.await??;

    let stream = table.latest_stream_arn().await?.unwrap();
    let records = table.read_all_records(&stream).await?;
    assert_eq!(records.len(), ITEMS * UPDATES);
    let received = sink.wait_for_count(records.len(), WAIT).await?;
    let duplicates = assert_all_arrived_in_order(&records, &received);
    assert_eq!(duplicates, 0, "503s are retried, never duplicated");
    assert!(
        sink.count_status(503) > (records.len() / 10) as u64,
        "the sink really rejected: {:?}",
        sink.status_counts()
    );
    common::stop(&mut adapter).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_refused_with_400_is_dropped_and_the_stream_goes_on() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
    let sink = RecordingSink::start().await?;
    // Changes whose value is a multiple of 3 are refused for good.
    let poisoned = |v: i64| v % 3 == 0;
    sink.status_for(
        move |e| {
            let data = e.data_json().unwrap();
            let v = data["Dynamodb"]["NewImage"]["v"]["N"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap();
            poisoned(v)
        },
        400,
    );
    let (mut adapter, state) = common::start_adapter(&table, ddb.endpoint(), &sink).await;
    for i in 0..20 {
        table
            .put(items::with_value(items::key(&format!("k{i}")), i))
            .await?;
    }
    let refused = (0..20).filter(|v| poisoned(*v)).count();
    sink.wait_for(
        |e| e.len() >= 20 - refused && sink.rejected().len() >= refused,
        WAIT,
    )
    .await?;
    let stream = table.latest_stream_arn().await?.unwrap();
    let records = table.read_all_records(&stream).await?;
    // The stream goes on past the dropped events, and the checkpoint covers
    // them: nothing is sent twice, nothing retried.
    adapter.terminate()?;
    assert!(adapter.wait_exit(WAIT).await?.success());
    assert_eq!(
        sink.rejected().len(),
        refused,
        "each refused once, never retried"
    );
    assert_eq!(sink.events().len(), 20 - refused);
    let checkpoints = std::fs::read_to_string(state.path().join("checkpoints.json"))?;
    let last = common::record_sequence(records.last().unwrap());
    assert!(
        checkpoints.contains(last),
        "checkpoint at the last record {last}: {checkpoints}"
    );
    let dropped_lines = adapter
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("given up and dropped") && l.contains("\"reason\":\"rejected\""))
        .count();
    assert_eq!(dropped_lines, refused, "each drop logged with its event id");
    assert_clean_output(&adapter);
    Ok(())
}
