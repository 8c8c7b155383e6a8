//! kill -9 at random moments while changes are written: after restarts from
//! the checkpoints, every change arrives (duplicates allowed, order per item
//! kept).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use awsdynamodb_testkit::{
    AdapterProcess, AttributeValue, DynamoDbLocal, KeyShape, RecordingSink, StreamViewType,
    TestTable, items,
};
use common::{WAIT, assert_all_arrived_in_order, assert_clean_output, spawn_healthy};
use rand::Rng;

const CHANGES: usize = 1000;
const ITEMS: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_three_times_while_a_thousand_changes_are_written_loses_nothing()
-> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = Arc::new(
        TestTable::create(ddb, KeyShape::HashRange, StreamViewType::NewAndOldImages).await?,
    );
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    let mut adapter = spawn_healthy(env.clone()).await;

    let written = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn({
        let (table, written) = (table.clone(), written.clone());
        async move {
            for i in 0..CHANGES {
                let key = table.key(&format!("item-{}", i % ITEMS), Some((i % ITEMS) as i64));
                if i < ITEMS {
                    table.put(items::every_type(key)).await?;
                } else {
                    table
                        .update_set(key, &[("v", AttributeValue::N(i.to_string()))])
                        .await?;
                }
                written.fetch_add(1, Ordering::SeqCst);
            }
            anyhow::Ok(())
        }
    });

    // Three kills at random points of the writing, each followed at once by
    // a restart (not waiting for health: a kill may come during startup).
    let mut points: Vec<usize> = (0..3)
        .map(|_| rand::rng().random_range(50..CHANGES - 50))
        .collect();
    points.sort();
    let mut kills = Vec::new();
    for point in points {
        while written.load(Ordering::SeqCst) < point {
            tokio::task::yield_now().await;
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        // A random extra moment, so that kills also land mid-delivery and
        // mid-checkpoint.
        tokio::time::sleep(std::time::Duration::from_millis(
            rand::rng().random_range(0..300),
        ))
        .await;
        adapter.kill9()?;
        let status = adapter.wait_exit(WAIT).await?;
        assert!(!status.success(), "killed");
        assert_clean_output(&adapter);
        // Whenever the kill came, the checkpoint file is whole.
        if let Ok(bytes) = std::fs::read(state.path().join("checkpoints.json")) {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .expect("the checkpoint file is never torn");
        }
        kills.push((point, sink.events().len()));
        adapter = AdapterProcess::spawn(common::BINARY, env.clone())?;
    }
    writer.await??;
    adapter.wait_healthy(WAIT).await?;

    let stream = table.latest_stream_arn().await?.unwrap();
    let records = table.read_all_records(&stream).await?;
    assert_eq!(records.len(), CHANGES);
    let ids: std::collections::HashSet<String> = records.iter().map(common::event_id).collect();
    let received = sink
        .wait_for(
            |events| {
                let got: std::collections::HashSet<&str> =
                    events.iter().map(|e| e.id.as_str()).collect();
                ids.iter().all(|id| got.contains(id.as_str()))
            },
            WAIT,
        )
        .await?;
    let duplicates = assert_all_arrived_in_order(&records, &received);
    eprintln!(
        "kills at (changes written, events received): {kills:?}; duplicates after restarts: {duplicates}"
    );
    common::stop(&mut adapter).await;
    Ok(())
}
