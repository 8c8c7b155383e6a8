//! SNAPSHOT=initial, end to end: a table of 10,000 items, each with a
//! version, written to all along (updates that raise the version, inserts,
//! deletes) while the snapshot runs in 4 segments, with a kill -9 in its
//! middle. Once repeats of an id are dropped (delivery is at least once):
//! every item present at the start and every change arrived; per item the
//! states arrive in order (versions never go back, and no item comes back
//! after its deletion); applying the events in arrival order rebuilds the
//! table exactly; and the kill re-sends no more than what was delivered
//! since the last save (the 2 s before it) plus MAX_IN_FLIGHT.
//!
//! DynamoDB Local rounds record times down to the minute, so the margin is
//! 61 s: a row is dropped when its item changed within a minute of its
//! read. Most items do not change during the snapshot, so most arrive as
//! rows.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use awsdynamodb_testkit::{
    AdapterProcess, AttributeValue, DynamoDbLocal, Item, KeyShape, Kill, ReceivedEvent,
    RecordingSink, StreamViewType, TestTable,
};
use common::{WAIT, assert_clean_output, spawn_healthy};
use rand::Rng;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const ITEMS: usize = 10_000;
const SEGMENTS: usize = 4;
const MAX_IN_FLIGHT: usize = 64;
/// About 1 KB per item: 10 MB, about ten 1 MB scan pages.
const PADDING: usize = 1_000;
/// Slow enough that the kill lands mid-snapshot: 10 MB at 4 KB a unit is
/// about 2,500 units, some 12 s.
const READ_UNITS: &str = "200";
const WRITES_PER_SECOND: u64 = 40;

/// One write of the writer: the item, and its version after the write
/// (`None`: deleted, from the version it had).
#[derive(Debug, Clone)]
struct Write {
    pk: String,
    version: u64,
    deleted: bool,
}

/// An event's place in its item's history: (version, deleted).
type State = (u64, bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_joins_the_stream_with_no_step_back_through_a_kill_9() -> anyhow::Result<()> {
    let began = Instant::now();
    let phase = |what: &str| {
        eprintln!(
            "snapshot test: {what} at {:.1} s",
            began.elapsed().as_secs_f64()
        )
    };
    let ddb = DynamoDbLocal::shared().await;
    let table =
        Arc::new(TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?);
    fill(&table).await?;
    phase("table filled");

    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let mut env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    for (k, v) in [
        ("SNAPSHOT", "initial"),
        ("SNAPSHOT_SEGMENTS", &SEGMENTS.to_string()),
        ("SNAPSHOT_READ_UNITS", READ_UNITS),
        ("SNAPSHOT_MARGIN", "61s"),
        ("MAX_IN_FLIGHT", &MAX_IN_FLIGHT.to_string()),
        ("LOG_LEVEL", "info"),
    ] {
        common::set(&mut env, k, v);
    }
    let mut adapter = spawn_healthy(env.clone()).await;
    phase("adapter healthy");

    let stop_writing = CancellationToken::new();
    let writes = Arc::new(Mutex::new(Vec::<Write>::new()));
    let writer = tokio::spawn(write_all_along(
        table.clone(),
        writes.clone(),
        stop_writing.clone(),
    ));

    // The kill, once some rows arrived.
    sink.wait_for(|events| snapshot_rows(events) >= 1_500, WAIT)
        .await?;
    let jitter = Duration::from_millis(rand::rng().random_range(0..300));
    tokio::time::sleep(jitter).await;
    adapter.kill9()?;
    let killed_at = Instant::now();
    phase("killed");
    adapter.wait_exit(WAIT).await?;
    assert_clean_output(&adapter);
    assert!(
        !said_done(&adapter),
        "the snapshot ended before the kill: the test must kill it mid-way (slow the scan)"
    );
    let kill = Kill::observe(&sink.events(), state.path(), killed_at)?;
    let rows_before = snapshot_rows(&sink.events());
    assert!(rows_before < ITEMS, "mid-snapshot: {rows_before} rows");

    let mut adapter = AdapterProcess::spawn(common::BINARY, env.clone())?;
    // While it runs, the source is healthy and says how far it is.
    let probe = common::Probe::new(&env);
    let running = probe
        .await_health(|status, body| status == 200 && body.starts_with("snapshot running: "))
        .await?;
    assert!(
        running.contains(" items done of about ")
            && running.ends_with(&format!(" of {SEGMENTS} segments")),
        "{running}"
    );
    adapter
        .wait_for_stderr(
            |lines| lines.iter().any(|l| l.contains("snapshot done")),
            Duration::from_secs(180),
        )
        .await?;
    phase("snapshot done");
    probe.await_health(|status, _| status == 204).await?;
    let [segments, done] = probe
        .await_metrics(
            [
                "awsdynamodbsource_snapshot_segments",
                "awsdynamodbsource_snapshot_segments_done",
            ],
            |[segments, done]| segments > 0.0 && done == segments,
        )
        .await?;
    assert_eq!((segments, done), (SEGMENTS as f64, SEGMENTS as f64));
    // Changes go on a little after the snapshot, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_writing.cancel();
    writer.await??;

    let expected = table_content(&table).await?;
    let writes = writes.lock().unwrap().clone();
    // Until the consumer holds the table; if it never does, what arrived
    // says why.
    let received = sink
        .wait_for(
            |events| consumer_state(&first_of_each(events)) == expected,
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|_| sink.events());
    let events = first_of_each(&received);
    phase("events in");

    // Per item, states never go back.
    let mut history: HashMap<String, Vec<State>> = HashMap::new();
    for e in &events {
        let (pk, state) = item_state(e);
        history.entry(pk).or_default().push(state);
    }
    for (pk, states) in &history {
        assert!(
            states.windows(2).all(|w| w[0] <= w[1]),
            "{pk}'s states went back: {states:?}"
        );
    }
    // Every item present at the start arrived, and every change.
    for n in 0..ITEMS {
        let pk = format!("item-{n}");
        assert!(history.contains_key(&pk), "{pk} never arrived");
    }
    for w in &writes {
        let arrived = history
            .get(&w.pk)
            .is_some_and(|states| states.contains(&(w.version, w.deleted)));
        assert!(arrived, "the change {w:?} never arrived");
    }
    let held = consumer_state(&events);
    let differ: Vec<_> = expected
        .iter()
        .filter(|(pk, v)| held.get(*pk) != Some(v))
        .map(|(pk, v)| (pk, v, held.get(pk)))
        .chain(
            held.iter()
                .filter(|(pk, _)| !expected.contains_key(*pk))
                .map(|(pk, v)| (pk, v, None)),
        )
        .take(10)
        .collect();
    assert!(
        differ.is_empty(),
        "applied in order, the events do not rebuild the table: (item, table, consumer) {differ:?}"
    );
    // Resent by the kill: at most what arrived since the last save.
    let resent = received.len() - events.len();
    let bound = kill.recent + MAX_IN_FLIGHT;
    assert!(
        resent <= bound,
        "{resent} events arrived twice: more than the {} received in the 2 s before the kill plus MAX_IN_FLIGHT",
        kill.recent
    );
    let rows = events.iter().filter(|e| operation(e) == "SNAPSHOT").count();
    eprintln!(
        "{} changes written; {rows} rows of {ITEMS} items ({rows_before} before the kill); {resent} events repeated (bound {bound})",
        writes.len()
    );
    assert!(
        rows > ITEMS / 2,
        "most items come as rows (few change during the snapshot): {rows}"
    );
    common::stop(&mut adapter).await;
    Ok(())
}

/// Items `item-0`..`item-9999` at version 0.
async fn fill(table: &TestTable) -> anyhow::Result<()> {
    let padding = "x".repeat(PADDING);
    let batches: Vec<Vec<WriteRequest>> = (0..ITEMS)
        .map(|n| {
            let item = item(&format!("item-{n}"), 0, &padding);
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                .build()
        })
        .collect::<Vec<_>>()
        .chunks(25)
        .map(<[WriteRequest]>::to_vec)
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let batches = Arc::new(Mutex::new(batches));
    for _ in 0..8 {
        let (table, batches) = (table.clone(), batches.clone());
        tasks.spawn(async move {
            loop {
                let Some(batch) = batches.lock().unwrap().pop() else {
                    return anyhow::Ok(());
                };
                let mut requests = HashMap::from([(table.name().to_owned(), batch)]);
                while !requests.is_empty() {
                    let out = table
                        .dynamodb()
                        .batch_write_item()
                        .set_request_items(Some(requests))
                        .send()
                        .await?;
                    requests = out.unprocessed_items.unwrap_or_default();
                    requests.retain(|_, r| !r.is_empty());
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

fn item(pk: &str, version: u64, padding: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("v".to_owned(), AttributeValue::N(version.to_string())),
        ("pad".to_owned(), AttributeValue::S(padding.to_owned())),
    ])
}

/// Until `stop`: one write at a time, each an update raising an item's
/// version (most), an insert of a new item, or a delete.
async fn write_all_along(
    table: Arc<TestTable>,
    writes: Arc<Mutex<Vec<Write>>>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut live: Vec<String> = (0..ITEMS).map(|n| format!("item-{n}")).collect();
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut next_item = ITEMS;
    let mut version = 0u64;
    let mut pace = tokio::time::interval(Duration::from_micros(1_000_000 / WRITES_PER_SECOND));
    while !stop.is_cancelled() {
        pace.tick().await;
        version += 1;
        let roll = rand::rng().random_range(0..100);
        let write = if roll < 15 || live.is_empty() {
            let pk = format!("item-{next_item}");
            next_item += 1;
            table.put(item(&pk, version, "new")).await?;
            live.push(pk.clone());
            Write {
                pk,
                version,
                deleted: false,
            }
        } else if roll < 30 {
            let pk = live.swap_remove(rand::rng().random_range(0..live.len()));
            table.delete(table.key(&pk, None)).await?;
            Write {
                version: versions.get(&pk).copied().unwrap_or(0),
                pk,
                deleted: true,
            }
        } else {
            let pk = live[rand::rng().random_range(0..live.len())].clone();
            table
                .update_set(
                    table.key(&pk, None),
                    &[("v", AttributeValue::N(version.to_string()))],
                )
                .await?;
            Write {
                pk,
                version,
                deleted: false,
            }
        };
        if !write.deleted {
            versions.insert(write.pk.clone(), write.version);
        }
        writes.lock().unwrap().push(write);
    }
    Ok(())
}

/// The table now: each item's version.
async fn table_content(table: &TestTable) -> anyhow::Result<BTreeMap<String, u64>> {
    table
        .scan_all()
        .await?
        .iter()
        .map(|item| {
            Ok((
                item["pk"].as_s().unwrap().clone(),
                item["v"].as_n().unwrap().parse()?,
            ))
        })
        .collect()
}

/// The first arrival of each id (`source` is the same for all).
fn first_of_each(events: &[ReceivedEvent]) -> Vec<ReceivedEvent> {
    let mut seen = HashSet::new();
    events
        .iter()
        .filter(|e| seen.insert((e.source.clone(), e.id.clone())))
        .cloned()
        .collect()
}

fn operation(e: &ReceivedEvent) -> String {
    e.data_json().expect("JSON data")["EventName"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn snapshot_rows(events: &[ReceivedEvent]) -> usize {
    events
        .iter()
        .filter(|e| operation(e) == "SNAPSHOT")
        .map(|e| &e.id)
        .collect::<HashSet<_>>()
        .len()
}

/// The item an event is of, and the state it brings.
fn item_state(e: &ReceivedEvent) -> (String, State) {
    let data = e.data_json().expect("JSON data");
    let number = |image: &Value| -> u64 {
        image["v"]["N"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("event {} has no version: {data}", e.id))
    };
    let pk = data["Dynamodb"]["Keys"]["pk"]["S"]
        .as_str()
        .unwrap_or_else(|| panic!("event {} has no key: {data}", e.id))
        .to_owned();
    let state = match data["EventName"].as_str() {
        Some("REMOVE") => (number(&data["Dynamodb"]["OldImage"]), true),
        _ => (number(&data["Dynamodb"]["NewImage"]), false),
    };
    (pk, state)
}

/// What a consumer applying the events in order holds.
fn consumer_state(events: &[ReceivedEvent]) -> BTreeMap<String, u64> {
    let mut state = BTreeMap::new();
    for e in events {
        match item_state(e) {
            (pk, (_, true)) => drop(state.remove(&pk)),
            (pk, (v, false)) => drop(state.insert(pk, v)),
        }
    }
    state
}

fn said_done(adapter: &AdapterProcess) -> bool {
    adapter
        .stderr_lines()
        .iter()
        .any(|l| l.contains("snapshot done"))
}
