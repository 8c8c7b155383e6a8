//! Records trimmed from the stream while the adapter was stopped (the 24 h
//! retention, played by the fault proxy): on restart the loss is logged with
//! its range, counted, and shown on `/health` until the reader catches up,
//! and the records still kept arrive, each once.

mod common;

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::Record;
use awsdynamodb_testkit::{
    AdapterProcess, DynamoDbLocal, Fault, FaultProxy, KeyShape, Op, RecordingSink, StreamViewType,
    TestTable, describe_all_shards, items,
};
use common::{Probe, WAIT, event_id, record_sequence};

/// Changes delivered and checkpointed before the stop.
const DELIVERED: usize = 4;

/// A table whose first changes the adapter delivered and checkpointed through
/// the proxy before it was stopped.
struct Stopped {
    table: TestTable,
    proxy: FaultProxy,
    sink: RecordingSink,
    env: Vec<(String, String)>,
    _state: tempfile::TempDir,
    stream: String,
    shard: String,
    /// The checkpoint: the sequence number of the last change delivered.
    saved: String,
    probe: Probe,
}

impl Stopped {
    async fn new() -> anyhow::Result<Stopped> {
        let ddb = DynamoDbLocal::shared().await;
        let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
        let proxy = FaultProxy::start(ddb.endpoint()).await?;
        let sink = RecordingSink::start().await?;
        let state = tempfile::tempdir()?;
        let env = common::env(
            table.arn(),
            &proxy.endpoint(),
            Some(&sink.url()),
            state.path(),
        );
        for i in 0..DELIVERED {
            put(&table, i).await?;
        }
        let mut adapter = common::spawn_healthy(env.clone()).await;
        sink.wait_for_count(DELIVERED, WAIT).await?;
        common::stop(&mut adapter).await;
        let stream = table.latest_stream_arn().await?.unwrap();
        let delivered = table.read_all_records(&stream).await?;
        assert_eq!(delivered.len(), DELIVERED);
        let saved = record_sequence(delivered.last().unwrap()).to_owned();
        let checkpoints = std::fs::read_to_string(state.path().join("checkpoints.json"))?;
        assert!(
            checkpoints.contains(&saved),
            "checkpoint at the last change delivered, {saved}: {checkpoints}"
        );
        let shards = describe_all_shards(&ddb.streams(), &stream).await?;
        let shard = shards[0].shard_id().unwrap().to_owned();
        sink.clear();
        let probe = Probe::new(&env);
        Ok(Stopped {
            table,
            proxy,
            sink,
            env,
            _state: state,
            stream,
            shard,
            saved,
            probe,
        })
    }

    /// Writes changes `from..to`; returns every record of the stream.
    async fn write(&self, from: usize, to: usize) -> anyhow::Result<Vec<Record>> {
        for i in from..to {
            put(&self.table, i).await?;
        }
        self.table.read_all_records(&self.stream).await
    }

    /// The one `RECORDS LOST` line of `adapter`, once written.
    async fn records_lost_line(
        &self,
        adapter: &AdapterProcess,
    ) -> anyhow::Result<serde_json::Value> {
        let lines = adapter
            .wait_for_stderr(|l| l.iter().any(|l| l.contains("RECORDS LOST")), WAIT)
            .await?;
        let lost: Vec<serde_json::Value> = lines
            .iter()
            .filter(|l| l.contains("RECORDS LOST"))
            .map(|l| serde_json::from_str(l))
            .collect::<Result<_, _>>()?;
        assert_eq!(lost.len(), 1, "one line for one trim: {lost:?}");
        let line = lost.into_iter().next().unwrap();
        eprintln!("the line: {line}");
        assert_eq!(line["level"], "error");
        assert_eq!(line["shard"], self.shard.as_str());
        assert_eq!(line["read_up_to"], self.saved.as_str());
        Ok(line)
    }

    async fn assert_one_trim_counted(&self) -> anyhow::Result<()> {
        let metrics = self.probe.metrics().await?;
        assert!(
            metrics
                .lines()
                .any(|l| l == "awsdynamodbsource_trimmed_data_total 1"),
            "one trim counted:\n{metrics}"
        );
        Ok(())
    }
}

async fn put(table: &TestTable, i: usize) -> anyhow::Result<()> {
    table
        .put(items::with_value(items::key(&format!("k{i}")), i as i64))
        .await
}

/// Once the stream has trimmed records past the saved position, the restarted
/// adapter says at level error which range is lost (from the saved position to
/// the first record read after the trim), counts it once, reports it on
/// `/health` until it has read up to the end of the shard, and delivers
/// exactly the records after the trim point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_trimmed_while_stopped_are_reported_lost_and_the_rest_arrive_once()
-> anyhow::Result<()> {
    let s = Stopped::new().await?;
    let records = s.write(DELIVERED, DELIVERED + 8).await?;
    // The first three changes written while stopped are trimmed.
    let trim_point = record_sequence(&records[DELIVERED + 2]);
    let kept = &records[DELIVERED + 3..];
    let first_kept = record_sequence(&kept[0]);
    s.proxy.trim_through(&s.stream, trim_point).await?;

    // Slow reads, so that /health is seen reporting the loss before the
    // reader reaches the end of the shard.
    s.proxy.fail_ratio(
        Op::GetRecords,
        1.0,
        Fault::Delay(Duration::from_millis(500)),
    );
    let mut adapter = AdapterProcess::spawn(common::BINARY, s.env.clone())?;
    let reason = s
        .probe
        .await_health(|status, body| status == 503 && body.contains("lost records"))
        .await?;
    assert!(
        reason.contains(&format!("shard {} ", s.shard)) && reason.contains(&s.saved),
        "names the shard and the saved position: {reason}"
    );
    s.proxy.clear_faults();
    adapter.wait_healthy(WAIT).await?;

    let line = s.records_lost_line(&adapter).await?;
    assert_eq!(line["first_read_after_trim"], first_kept);
    let msg = line["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!("after {} and before {first_kept}", s.saved)),
        "the message names the lost range: {msg}"
    );
    s.assert_one_trim_counted().await?;

    let received = s.sink.wait_for_count(kept.len(), WAIT).await?;
    common::stop(&mut adapter).await;
    // Each item changed once, so only the set is ordered (per item).
    let mut received_ids: Vec<&str> = received.iter().map(|e| e.id.as_str()).collect();
    let mut kept_ids: Vec<String> = kept.iter().map(event_id).collect();
    received_ids.sort_unstable();
    kept_ids.sort_unstable();
    assert_eq!(
        received_ids, kept_ids,
        "exactly the records after the trim point"
    );
    assert_eq!(
        s.sink.events().len(),
        kept.len(),
        "nothing more, nothing twice"
    );
    Ok(())
}

/// When the trim took every record after the saved position, the line says
/// the shard holds nothing after the trim, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trim_that_took_every_unread_record_says_so() -> anyhow::Result<()> {
    let s = Stopped::new().await?;
    let records = s.write(DELIVERED, DELIVERED + 3).await?;
    s.proxy
        .trim_through(&s.stream, record_sequence(records.last().unwrap()))
        .await?;

    let mut adapter = AdapterProcess::spawn(common::BINARY, s.env.clone())?;
    let line = s.records_lost_line(&adapter).await?;
    assert!(line.get("first_read_after_trim").is_none(), "{line}");
    let msg = line["msg"].as_str().unwrap();
    assert!(
        msg.contains(&format!("after {} ", s.saved))
            && msg.contains("the shard holds no record after the trim"),
        "{msg}"
    );
    adapter.wait_healthy(WAIT).await?;
    s.assert_one_trim_counted().await?;
    common::stop(&mut adapter).await;
    assert!(s.sink.events().is_empty(), "nothing was left to send");
    Ok(())
}
