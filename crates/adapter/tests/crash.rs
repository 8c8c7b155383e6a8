//! kill -9 while changes are written, three times: after restarts from the
//! checkpoints every change arrives, in order per item, and each crash
//! re-sends a bounded number of events. The bound is the README's: exactly
//! the events sent after the saved position, which trails the last delivered
//! event by at most the events done in the save interval (1 s; counted here
//! as all events received in the 2 s before the kill) plus MAX_IN_FLIGHT
//! (sent beyond the shard's oldest event not done).
//!
//! The scenario is an operator's: 50 items updated round-robin at about 80
//! writes/s, a kill every 7 s. It runs with a well-behaved sink and with a
//! sink whose accept queue is small (Python's ThreadingHTTPServer), where a
//! burst of connections after each restart used to leave requests hanging
//! and the saved position stuck behind them.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use awsdynamodb_testkit::{
    AdapterProcess, DynamoDbLocal, KeyShape, Kill, ReceivedEvent, RecordingSink, StreamViewType,
    TestTable, ThreadedSink, ThreadedSinkOptions,
};
use common::{WAIT, assert_all_arrived_in_order, assert_clean_output, spawn_healthy};
use rand::Rng;
use tokio_util::sync::CancellationToken;

const ITEMS: usize = 50;
const WRITES_PER_SECOND: u64 = 80;
const CHANGES: usize = 2000;
const KILL_EVERY: Duration = Duration::from_secs(7);
const MAX_IN_FLIGHT: usize = 64;
/// The figure for this scenario: a crash re-sends well under this.
const MOST_RESENT_PER_CRASH: usize = 200;

/// What a test needs of a sink.
trait Sink {
    fn url(&self) -> String;
    fn events(&self) -> Vec<ReceivedEvent>;
    async fn wait_for(
        &self,
        condition: impl Fn(&[ReceivedEvent]) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Vec<ReceivedEvent>>;
}

impl Sink for RecordingSink {
    fn url(&self) -> String {
        RecordingSink::url(self)
    }
    fn events(&self) -> Vec<ReceivedEvent> {
        RecordingSink::events(self)
    }
    async fn wait_for(
        &self,
        condition: impl Fn(&[ReceivedEvent]) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Vec<ReceivedEvent>> {
        RecordingSink::wait_for(self, condition, timeout).await
    }
}

impl Sink for ThreadedSink {
    fn url(&self) -> String {
        ThreadedSink::url(self)
    }
    fn events(&self) -> Vec<ReceivedEvent> {
        ThreadedSink::events(self)
    }
    async fn wait_for(
        &self,
        condition: impl Fn(&[ReceivedEvent]) -> bool,
        timeout: Duration,
    ) -> anyhow::Result<Vec<ReceivedEvent>> {
        ThreadedSink::wait_for(self, condition, timeout).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_three_times_into_a_well_behaved_sink_resends_a_bounded_few() -> anyhow::Result<()> {
    let sink = RecordingSink::start().await?;
    kill_three_times_while_writing(&sink).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_three_times_into_a_sink_with_a_small_accept_queue_resends_a_bounded_few()
-> anyhow::Result<()> {
    // 20 ms per accept: Python's GIL switch interval with a few busy
    // threads. 64 connections opened at once leave about half hanging.
    let sink = ThreadedSink::start_with(ThreadedSinkOptions {
        accept_delay: Duration::from_millis(20),
        ..ThreadedSinkOptions::default()
    })?;
    kill_three_times_while_writing(&sink).await
}

/// The scenarios run one at a time, so that each gets DynamoDB Local's
/// writes at the scenario's rate.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn kill_three_times_while_writing(sink: &impl Sink) -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let ddb = DynamoDbLocal::shared().await;
    let table = Arc::new(
        TestTable::create(ddb, KeyShape::HashRange, StreamViewType::NewAndOldImages).await?,
    );
    let state = tempfile::tempdir()?;
    let mut env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    common::set(&mut env, "EXTENSIONS", "sequence,dynamodbshard");
    common::set(&mut env, "MAX_IN_FLIGHT", &MAX_IN_FLIGHT.to_string());
    let mut adapter = spawn_healthy(env.clone()).await;

    let started = tokio::time::Instant::now();
    let writer = tokio::spawn(table.clone().write_round_robin(
        ITEMS,
        WRITES_PER_SECOND,
        CHANGES,
        CancellationToken::new(),
    ));

    let mut kills = Vec::new();
    for k in 1..=3u32 {
        // A random extra moment, so that kills land mid-delivery and
        // mid-checkpoint too.
        let jitter = Duration::from_millis(rand::rng().random_range(0..300));
        tokio::time::sleep_until(started + KILL_EVERY * k + jitter).await;
        adapter.kill9()?;
        let killed_at = Instant::now();
        let status = adapter.wait_exit(WAIT).await?;
        assert!(!status.success(), "killed");
        assert_clean_output(&adapter);
        let kill = Kill::observe(&sink.events(), state.path(), killed_at)?;
        assert!(kill.saved.len() <= 1, "one shard: {:?}", kill.saved);
        kills.push(kill);
        // At once, not waiting for health: the next kill may come early.
        adapter = AdapterProcess::spawn(common::BINARY, env.clone())?;
    }
    let (_, write_rate) = writer.await??;
    adapter.wait_healthy(WAIT).await?;

    let stream = table.latest_stream_arn().await?.unwrap();
    let records = table.read_all_records(&stream).await?;
    assert_eq!(records.len(), CHANGES);
    let received = sink.wait_for(common::has_every(&records), WAIT).await?;
    let duplicates = assert_all_arrived_in_order(&records, &received);

    let mut report = Vec::new();
    for kill in &kills {
        let resent = kill.resent(&received);
        let beyond_saved = kill.beyond_saved(&received);
        assert_eq!(
            resent, beyond_saved,
            "exactly the events sent after the saved position {:?} are sent again",
            kill.saved
        );
        let bound = kill.recent + MAX_IN_FLIGHT;
        assert!(
            beyond_saved.len() <= bound,
            "the saved position trails the last delivered event by {} events: more than the \
             {} received in the last 2 s plus MAX_IN_FLIGHT ({MAX_IN_FLIGHT})",
            beyond_saved.len(),
            kill.recent
        );
        assert!(
            resent.len() < MOST_RESENT_PER_CRASH,
            "{} events sent again after one crash",
            resent.len()
        );
        report.push((resent.len(), bound));
    }
    eprintln!(
        "{write_rate:.0} writes/s; per crash, events sent again and their bound: {report:?}; \
         duplicates in all: {duplicates}"
    );
    common::stop(&mut adapter).await;
    Ok(())
}
