//! The engine against a model of DynamoDB Streams behind its `StreamsApi`
//! trait: what DynamoDB Local cannot produce on demand — shard lineage,
//! expired iterators, trimmed data, throttling, vanished streams — and the
//! checkpoint and starting-position rules around them.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use awsdynamodb_source::test_support::CloudEvent;
use awsdynamodb_source::test_support::RetryPolicy;
use awsdynamodb_source::test_support::{ApiError, IteratorPosition, StreamStatus};
use awsdynamodb_source::test_support::{CheckpointStore, MemoryStore, ShardPosition};
use awsdynamodb_source::{
    EngineConfig, StartingPosition, StartupBudget, StartupError, TableArn, preflight,
};
use support::{Call, FakeStreams, MemorySink, Op, Running, TABLE_ARN};

const WAIT: Duration = Duration::from_secs(10);

fn config(start: StartingPosition) -> EngineConfig {
    let mut c = EngineConfig::new(TABLE_ARN.parse::<TableArn>().unwrap());
    c.starting_position = start;
    c.poll_interval = Duration::from_millis(5);
    c.discovery_interval = Duration::from_millis(200);
    c.shard_list_interval = Duration::from_millis(200);
    c.checkpoint_interval = Duration::from_millis(20);
    c.shutdown_timeout = Duration::from_secs(1);
    c.max_in_flight = 4;
    c.retry = RetryPolicy {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_millis(20),
        ..RetryPolicy::default()
    };
    c
}

/// `start_with` an empty checkpoint store and an accepting sink.
async fn start_fresh(api: &FakeStreams, config: EngineConfig) -> Running {
    start_with(
        api,
        Arc::new(MemoryStore::new()),
        config,
        Arc::new(MemorySink::default()),
    )
    .await
}

async fn start_with(
    api: &FakeStreams,
    store: Arc<MemoryStore>,
    config: EngineConfig,
    sink: Arc<MemorySink>,
) -> Running {
    support::start_engine(api, store, config, sink, |engine, _| engine).await
}

async fn start(api: &FakeStreams, store: Arc<MemoryStore>, position: StartingPosition) -> Running {
    start_with(
        api,
        store,
        config(position),
        Arc::new(MemorySink::default()),
    )
    .await
}

impl Running {
    async fn wait_healthy(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.health.check().is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never healthy: {:?}",
                self.health.check()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn position(events: &[CloudEvent], id: &str) -> usize {
    events
        .iter()
        .position(|e| e.id == id)
        .unwrap_or_else(|| panic!("{id} not delivered"))
}

/// (item, value) of each event, from its data.
fn changes(events: &[CloudEvent]) -> Vec<(String, u32)> {
    events
        .iter()
        .map(|e| {
            let v: serde_json::Value =
                serde_json::from_slice(e.data.as_deref().unwrap_or_default()).unwrap();
            let img = &v["Dynamodb"]["NewImage"];
            (
                img["pk"]["S"].as_str().unwrap().to_owned(),
                img["v"]["N"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

fn assert_in_order_per_item(events: &[CloudEvent]) {
    let mut last: HashMap<String, u32> = HashMap::new();
    for (item, value) in changes(events) {
        if let Some(prev) = last.insert(item.clone(), value) {
            assert!(prev < value, "item {item}: {value} arrived after {prev}");
        }
    }
}

#[tokio::test]
async fn parents_are_delivered_before_children_and_finished_shards_are_not_polled_again() {
    let api = FakeStreams::new();
    let s = api.add_stream("2024-01-01T00:00:00.000");
    api.add_shard(&s, "p", None);
    api.add_shard(&s, "c1", Some("p"));
    api.add_shard(&s, "c2", Some("p"));
    api.add_shard(&s, "g", Some("c1"));
    let mut parent_ids = vec![];
    for v in 0..7 {
        parent_ids.push(api.write(&s, "p", &format!("item{}", v % 3), v));
    }
    api.close_shard(&s, "p");
    // A split divides the key range: siblings never hold the same item, so
    // c1 (and its child g) hold item0 and item1, c2 holds item2.
    let c1 = (10..14)
        .map(|v| api.write(&s, "c1", &format!("item{}", v % 2), v))
        .collect::<Vec<_>>();
    let c2 = (20..23)
        .map(|v| api.write(&s, "c2", "item2", v))
        .collect::<Vec<_>>();
    api.close_shard(&s, "c1");
    let g = (30..34)
        .map(|v| api.write(&s, "g", &format!("item{}", v % 2), v))
        .collect::<Vec<_>>();

    let run = start(
        &api,
        Arc::new(MemoryStore::new()),
        StartingPosition::TrimHorizon,
    )
    .await;
    let total = parent_ids.len() + c1.len() + c2.len() + g.len();
    run.sink
        .wait_for(WAIT, "every change", |e| e.len() >= total)
        .await;
    let events = run.sink.events.lock().unwrap().clone();
    assert_eq!(events.len(), total, "each change once");
    let last_parent = parent_ids
        .iter()
        .map(|id| position(&events, id))
        .max()
        .unwrap();
    for id in c1.iter().chain(&c2) {
        assert!(
            position(&events, id) > last_parent,
            "child event {id} before the parent's end"
        );
    }
    let last_c1 = c1.iter().map(|id| position(&events, id)).max().unwrap();
    for id in &g {
        assert!(
            position(&events, id) > last_c1,
            "grandchild event {id} before c1's end"
        );
    }
    assert_in_order_per_item(&events);

    // Finished shards are never polled again while the open ones are.
    let polls = |shard: &str| {
        let shard = shard.to_owned();
        api.count(move |c| matches!(c, Call::GetRecords { shard: s } if *s == shard))
    };
    let (p, c1_polls, g_before) = (polls("p"), polls("c1"), polls("g"));
    while polls("g") < g_before + 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!((polls("p"), polls("c1")), (p, c1_polls));
    run.stop().await;
}

#[tokio::test]
async fn children_of_a_shard_closed_while_running_are_found_at_once() {
    for honour_filter in [true, false] {
        let api = FakeStreams::new();
        api.state.lock().unwrap().honour_filter = honour_filter;
        let s = api.add_stream("2024-01-01T00:00:00.000");
        api.add_shard(&s, "p", None);
        let mut config = config(StartingPosition::TrimHorizon);
        // Slow refreshes: the children must be found because the parent ended.
        config.discovery_interval = Duration::from_secs(30);
        config.shard_list_interval = Duration::from_secs(30);
        let run = start_with(
            &api,
            Arc::new(MemoryStore::new()),
            config,
            Arc::new(MemorySink::default()),
        )
        .await;
        run.wait_healthy().await;
        let a = api.write(&s, "p", "x", 1);
        run.sink
            .wait_for(WAIT, "the parent's change", |e| e.len() == 1)
            .await;
        api.add_shard(&s, "c1", Some("p"));
        api.add_shard(&s, "c2", Some("p"));
        let b = api.write(&s, "c1", "x", 2);
        let c = api.write(&s, "c2", "y", 3);
        api.close_shard(&s, "p");
        let closed_at = tokio::time::Instant::now();
        run.sink
            .wait_for(WAIT, "the children's changes", |e| e.len() == 3)
            .await;
        assert!(
            closed_at.elapsed() < Duration::from_secs(1),
            "children found in {:?}",
            closed_at.elapsed()
        );
        let ids = run.sink.ids();
        assert_eq!(ids[0], a);
        assert!(ids.contains(&b) && ids.contains(&c));
        assert!(
            api.count(|c| matches!(c, Call::Describe { children_of: Some(p), .. } if p == "p"))
                >= 1,
            "asked for the children with the CHILD_SHARDS filter"
        );
        run.stop().await;
    }
}

#[tokio::test]
async fn new_shards_are_found_by_the_periodic_refresh_and_describe_pages_are_followed() {
    let api = FakeStreams::new();
    api.state.lock().unwrap().describe_page = 2;
    let s = api.add_stream("2024-01-01T00:00:00.000");
    for id in ["a", "b", "c"] {
        api.add_shard(&s, id, None);
    }
    let run = start(
        &api,
        Arc::new(MemoryStore::new()),
        StartingPosition::TrimHorizon,
    )
    .await;
    run.wait_healthy().await;
    // A shard beyond the first describe page, and one that appears later.
    api.add_shard(&s, "d", None);
    let ids = ["a", "b", "c", "d"].map(|sh| api.write(&s, sh, sh, 1));
    run.sink
        .wait_for(WAIT, "a change from each shard", |e| e.len() == 4)
        .await;
    let mut got = run.sink.ids();
    got.sort();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(got, want);
    assert!(
        api.count(|c| matches!(c, Call::Describe { start: Some(_), .. })) >= 1,
        "paged DescribeStream"
    );
    run.stop().await;
}

/// Virtual time: after records, empty pages are followed by quick polls;
/// once the shard has been idle for the active window, by POLL_INTERVAL;
/// the pause then doubles every 10 s up to IDLE_POLL_INTERVAL. Every pause
/// is jittered by up to a quarter, so the counts have a margin.
#[tokio::test(start_paused = true)]
async fn polls_quickly_while_active_then_slower_and_slower_when_idle() {
    let (api, s) = FakeStreams::with_one_shard();
    let mut config = config(StartingPosition::TrimHorizon);
    config.poll_interval = Duration::from_millis(250);
    config.idle_poll_interval = Duration::from_secs(2);
    config.active_poll_interval = Duration::from_millis(50);
    config.active_window = Duration::from_secs(5);
    let run = start_fresh(&api, config).await;
    run.wait_healthy().await;
    api.write(&s, "a", "x", 1);
    run.sink
        .wait_for(WAIT, "the change", |e| e.len() == 1)
        .await;
    let polls = || api.count(|c| matches!(c, Call::GetRecords { .. }));
    let count_over = |seconds: u64| async move {
        let before = polls();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        polls() - before
    };

    let active = count_over(2).await;
    assert!(
        (32..=54).contains(&active),
        "{active} polls in 2 active seconds (every 50 ms)"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    let idle = count_over(4).await;
    assert!(
        (12..=22).contains(&idle),
        "{idle} polls from 6 s to 10 s without records (every 250 ms)"
    );
    tokio::time::sleep(Duration::from_secs(50)).await;
    let long_idle = count_over(30).await;
    assert!(
        (12..=20).contains(&long_idle),
        "{long_idle} polls in 30 s after a minute without records (every 2 s)"
    );
    run.stop().await;
}

/// Virtual time: an idle source re-reads its shard list (every
/// `shard_list_interval`) but, nothing having moved, writes no checkpoint;
/// and its DescribeStream calls stay 100 ms apart (AWS allows 10 a second).
#[tokio::test(start_paused = true)]
async fn an_idle_source_writes_no_checkpoint_and_paces_describe_stream() {
    let (api, _s) = FakeStreams::with_one_shard();
    let mut config = config(StartingPosition::TrimHorizon);
    config.shard_list_interval = Duration::from_millis(10);
    let run = start_fresh(&api, config).await;
    run.wait_healthy().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let writes = run.metrics.checkpoint_writes.get();
    let describes = || api.count(|c| matches!(c, Call::Describe { .. }));
    let before = describes();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let refreshes = describes() - before;
    assert!(
        (45..=51).contains(&refreshes),
        "{refreshes} DescribeStream calls in 5 s: one every 100 ms at most"
    );
    assert_eq!(
        run.metrics.checkpoint_writes.get(),
        writes,
        "refreshes that change nothing write nothing"
    );
    run.stop().await;
}

#[tokio::test]
async fn an_expired_iterator_is_renewed_after_the_last_record_read() {
    let (api, s) = FakeStreams::with_one_shard();
    let ids: Vec<String> = (0..7).map(|v| api.write(&s, "a", "x", v)).collect();
    api.pass(Op::GetRecords);
    api.fail(Op::GetRecords, ApiError::ExpiredIterator);
    let run = start(
        &api,
        Arc::new(MemoryStore::new()),
        StartingPosition::TrimHorizon,
    )
    .await;
    run.sink
        .wait_for(WAIT, "every change", |e| e.len() >= 7)
        .await;
    assert_eq!(run.sink.ids(), ids, "each once, in order");
    let iterators: Vec<IteratorPosition> = api
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Iterator { position, .. } => Some(position),
            _ => None,
        })
        .collect();
    assert_eq!(iterators.len(), 2);
    assert_eq!(iterators[0], IteratorPosition::TrimHorizon);
    // The first page held three records; the new iterator starts after them.
    assert_eq!(
        iterators[1],
        IteratorPosition::AfterSequence(
            awsdynamodb_source::test_support::SequenceNumber::parse("000000000000000000003")
                .unwrap()
        )
    );
    run.stop().await;
}

#[tokio::test]
async fn trimmed_data_is_reported_and_reading_goes_on_from_trim_horizon() {
    let (api, s) = FakeStreams::with_one_shard();
    for v in 0..4 {
        api.write(&s, "a", "x", v);
    }
    let store = Arc::new(MemoryStore::new());
    let run = start(&api, store.clone(), StartingPosition::TrimHorizon).await;
    run.sink
        .wait_for(WAIT, "the first changes", |e| e.len() == 4)
        .await;
    // The next read finds its position trimmed away.
    api.fail(
        Op::GetRecords,
        ApiError::TrimmedData("TrimmedDataAccessException".into()),
    );
    let later = api.write(&s, "a", "x", 9);
    run.sink
        .wait_for(WAIT, "changes after the trim", |e| {
            e.iter().any(|ev| ev.id == later)
        })
        .await;
    assert_eq!(
        run.metrics.trimmed_data.get(),
        1,
        "a position of ours fell out: counted as loss"
    );
    let trim_horizons = api.count(|c| {
        matches!(
            c,
            Call::Iterator {
                position: IteratorPosition::TrimHorizon,
                ..
            }
        )
    });
    assert_eq!(trim_horizons, 2, "read on from TRIM_HORIZON");
    run.stop().await;
}

#[tokio::test]
async fn an_iterator_trimmed_before_anything_was_read_is_no_loss() {
    let (api, s) = FakeStreams::with_one_shard();
    let ids: Vec<String> = (0..4).map(|v| api.write(&s, "a", "x", v)).collect();
    api.fail(
        Op::GetRecords,
        ApiError::TrimmedData("TrimmedDataAccessException".into()),
    );
    let run = start(
        &api,
        Arc::new(MemoryStore::new()),
        StartingPosition::TrimHorizon,
    )
    .await;
    run.sink
        .wait_for(WAIT, "every change", |e| e.len() >= 4)
        .await;
    assert_eq!(run.sink.ids(), ids);
    assert_eq!(
        run.metrics.trimmed_data.get(),
        0,
        "no position of ours was trimmed"
    );
    run.stop().await;
}

#[tokio::test]
async fn throttling_and_transient_errors_are_retried() {
    let (api, s) = FakeStreams::with_one_shard();
    let ids: Vec<String> = (0..5).map(|v| api.write(&s, "a", "x", v)).collect();
    for e in [
        ApiError::Throttled("LimitExceededException".into()),
        ApiError::Throttled("ThrottlingException".into()),
        ApiError::Transient("503".into()),
    ] {
        api.fail(Op::GetRecords, e.clone());
        api.fail(Op::Describe, e.clone());
        api.fail(Op::Iterator, e);
    }
    let run = start(
        &api,
        Arc::new(MemoryStore::new()),
        StartingPosition::TrimHorizon,
    )
    .await;
    run.sink
        .wait_for(WAIT, "every change", |e| e.len() >= 5)
        .await;
    assert_eq!(run.sink.ids(), ids);
    run.wait_healthy().await;
    run.stop().await;
}

#[tokio::test]
async fn a_failing_sink_is_retried_and_each_item_keeps_its_order() {
    let api = FakeStreams::new();
    api.state.lock().unwrap().page_size = 100;
    let s = api.add_stream("2024-01-01T00:00:00.000");
    api.add_shard(&s, "a", None);
    for v in 0..200 {
        api.write(&s, "a", &format!("item{}", v % 7), v);
    }
    let sink = Arc::new(MemorySink::default());
    // Every third attempt fails for a while.
    sink.script
        .lock()
        .unwrap()
        .extend((0..150).map(|i| if i % 3 == 0 { 503 } else { 429 }));
    let run = start_with(
        &api,
        Arc::new(MemoryStore::new()),
        config(StartingPosition::TrimHorizon),
        sink,
    )
    .await;
    run.sink
        .wait_for(WAIT, "every change", |e| e.len() >= 200)
        .await;
    let events = run.sink.events.lock().unwrap().clone();
    assert_eq!(events.len(), 200);
    assert_in_order_per_item(&events);
    assert!(run.metrics.delivery_retries.get() >= 150);
    run.stop().await;
}

#[tokio::test]
async fn a_restart_resumes_after_the_checkpoint() {
    let (api, s) = FakeStreams::with_one_shard();
    let first: Vec<String> = (0..5).map(|v| api.write(&s, "a", "x", v)).collect();
    let store = Arc::new(MemoryStore::new());
    let run = start(&api, store.clone(), StartingPosition::TrimHorizon).await;
    run.sink
        .wait_for(WAIT, "the first changes", |e| e.len() == 5)
        .await;
    assert_eq!(run.stop().await.ids(), first);
    let saved = store.load().await.unwrap();
    assert_eq!(
        saved.shard(&s, "a"),
        Some(&ShardPosition::After(
            awsdynamodb_source::test_support::SequenceNumber::parse("000000000000000000005")
                .unwrap()
        ))
    );
    let second: Vec<String> = (5..8).map(|v| api.write(&s, "a", "x", v)).collect();
    // STARTING_POSITION no longer applies: the checkpoint does.
    let run = start(&api, store, StartingPosition::Latest).await;
    run.sink
        .wait_for(WAIT, "the new changes", |e| e.len() == 3)
        .await;
    assert_eq!(run.stop().await.ids(), second);
}

#[tokio::test]
async fn latest_skips_old_changes_and_a_restart_before_any_delivery_loses_nothing() {
    let api = FakeStreams::new();
    let s = api.add_stream("2024-01-01T00:00:00.000");
    api.add_shard(&s, "old", None);
    api.add_shard(&s, "a", Some("old"));
    api.write_at(&s, "old", "x", 0, 1_704_067_200);
    api.close_shard(&s, "old");
    api.write_at(&s, "a", "x", 1, 1_704_067_200);
    let store = Arc::new(MemoryStore::new());
    let run = start(&api, store.clone(), StartingPosition::Latest).await;
    run.wait_healthy().await;
    // Stopped before anything was delivered...
    assert!(run.stop().await.ids().is_empty());
    // ...changes written meanwhile are not lost, old ones stay skipped.
    let new = api.write(&s, "a", "x", 2);
    let run = start(&api, store.clone(), StartingPosition::Latest).await;
    run.sink
        .wait_for(WAIT, "the change written while stopped", |e| !e.is_empty())
        .await;
    let newer = api.write(&s, "a", "x", 3);
    run.sink
        .wait_for(WAIT, "the next change", |e| e.len() == 2)
        .await;
    assert_eq!(run.stop().await.ids(), vec![new, newer]);
    let saved = store.load().await.unwrap();
    assert_eq!(
        saved.shard(&s, "old"),
        Some(&ShardPosition::Finished),
        "a closed shard is done under LATEST"
    );
}

#[tokio::test]
async fn a_timestamp_start_skips_older_changes() {
    let (api, s) = FakeStreams::with_one_shard();
    api.write_at(&s, "a", "x", 0, 1_704_067_200); // 2024-01-01T00:00:00Z
    let kept = api.write_at(&s, "a", "x", 1, 1_704_070_800); // 01:00
    let at = "2024-01-01T00:30:00Z".parse().unwrap();
    let run = start(&api, Arc::new(MemoryStore::new()), at).await;
    run.sink
        .wait_for(WAIT, "the newer change", |e| !e.is_empty())
        .await;
    let later = api.write(&s, "a", "x", 2);
    run.sink
        .wait_for(WAIT, "a later change", |e| e.len() == 2)
        .await;
    assert_eq!(run.stop().await.ids(), vec![kept, later]);
}

#[tokio::test]
async fn a_disabled_stream_is_drained_then_the_new_stream_is_read_from_its_start() {
    let api = FakeStreams::new();
    let old = api.add_stream("2024-01-01T00:00:00.000");
    api.add_shard(&old, "a", None);
    let run = start(
        &api,
        Arc::new(MemoryStore::new()),
        StartingPosition::TrimHorizon,
    )
    .await;
    run.wait_healthy().await;
    let mut want: Vec<String> = (0..3).map(|v| api.write(&old, "a", "x", v)).collect();
    // Disabled (its shard closes) and enabled again: a new stream.
    api.set_status(&old, StreamStatus::Disabled);
    api.close_shard(&old, "a");
    let new = api.add_stream("2024-01-02T00:00:00.000");
    api.add_shard(&new, "b", None);
    want.extend((3..6).map(|v| api.write(&new, "b", "x", v)));
    run.sink
        .wait_for(WAIT, "both streams' changes", |e| e.len() >= 6)
        .await;
    assert_eq!(
        run.sink.ids(),
        want,
        "the old stream's changes, then the new one's"
    );
    run.wait_healthy().await;
    let sink = run.stop().await;
    assert_eq!(sink.ids().len(), 6);
}

#[tokio::test]
async fn a_vanished_stream_makes_the_source_unhealthy_until_a_new_one_appears() {
    let (api, s) = FakeStreams::with_one_shard();
    let run = start(
        &api,
        Arc::new(MemoryStore::new()),
        StartingPosition::TrimHorizon,
    )
    .await;
    run.wait_healthy().await;
    api.remove_stream(&s);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match run.health.check() {
            Err(reason)
                if reason.contains("no stream")
                    || reason.contains("vanished")
                    || reason.contains("not found") =>
            {
                break;
            }
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still healthy: {:?}",
            run.health.check()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        !run.handle.is_finished(),
        "nothing from AWS ends the engine"
    );
    let s2 = api.add_stream("2024-01-03T00:00:00.000");
    api.add_shard(&s2, "b", None);
    let id = api.write(&s2, "b", "x", 1);
    run.sink
        .wait_for(WAIT, "the new stream's change", |e| !e.is_empty())
        .await;
    run.wait_healthy().await;
    assert_eq!(run.stop().await.ids(), vec![id]);
}

#[tokio::test]
async fn shutdown_abandons_stuck_deliveries_within_the_bound_and_checkpoints_only_what_is_done() {
    let (api, s) = FakeStreams::with_one_shard();
    for v in 0..3 {
        api.write(&s, "a", "x", v);
    }
    let sink = Arc::new(MemorySink::default());
    // The sink fails for ever.
    sink.script
        .lock()
        .unwrap()
        .extend(std::iter::repeat_n(503, 100_000));
    let store = Arc::new(MemoryStore::new());
    let run = start_with(
        &api,
        store.clone(),
        config(StartingPosition::TrimHorizon),
        sink,
    )
    .await;
    run.wait_healthy().await;
    while run.metrics.delivery_retries.get() < 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = tokio::time::Instant::now();
    run.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped in {:?}",
        started.elapsed()
    );
    let saved = store.load().await.unwrap();
    assert_eq!(
        saved.shard(&s, "a"),
        None,
        "nothing was delivered, so nothing is checkpointed"
    );
}

#[tokio::test]
async fn preflight_names_each_startup_problem() {
    let table: TableArn = TABLE_ARN.parse().unwrap();
    // The checks against the fake, within `ms`, calls going to "http://endpoint".
    let check = async |api: &FakeStreams, ms: u64| {
        preflight(
            api,
            &table,
            "http://endpoint",
            &StartupBudget::new(Duration::from_millis(ms)),
        )
        .await
    };
    let api = FakeStreams::new();
    let err = check(&api, 50).await.unwrap_err();
    assert!(matches!(err, StartupError::NoStream { .. }), "{err}");

    let s = api.add_stream("2024-01-01T00:00:00.000");
    api.add_shard(&s, "a", None);
    check(&api, 50).await.unwrap();
    let calls = api.calls();
    assert!(
        calls.iter().any(|c| matches!(c, Call::GetRecords { .. })),
        "all four actions tried: {calls:?}"
    );

    api.fail(
        Op::Describe,
        ApiError::AccessDenied("not authorized to perform dynamodb:DescribeStream".into()),
    );
    let err = check(&api, 50).await.unwrap_err().to_string();
    assert!(
        err.contains("permission denied") && err.contains("DescribeStream"),
        "{err}"
    );

    api.fail(
        Op::List,
        ApiError::NotFound("Requested resource not found: Table: orders not found".into()),
    );
    let err = check(&api, 50).await.unwrap_err();
    assert!(matches!(err, StartupError::TableNotFound { .. }), "{err}");

    for _ in 0..100 {
        api.fail(
            Op::List,
            ApiError::Transient("cannot reach the endpoint: connection refused".into()),
        );
    }
    let err = check(&api, 300).await.unwrap_err().to_string();
    assert!(
        err.contains(
            "cannot reach DynamoDB Streams at http://endpoint within STARTUP_TIMEOUT (300ms)"
        ) && err.contains("connection refused"),
        "{err}"
    );
}
