//! Several adapter processes share one stream through shard leases in a
//! DynamoDB table (`COORDINATION=dynamodb:<table>`), over the fault proxy
//! presenting DynamoDB Local's shard as 32 open shards, while changes are
//! written to many items. Each process tags its events (a `replica`
//! extension through K_CE_OVERRIDES), so the one sink knows who sent what;
//! the lease table is read directly to see who holds what.
//!
//! The lease table lives in a DynamoDB Local of its own: in AWS, DynamoDB
//! and DynamoDB Streams are separate endpoints, while one DynamoDB Local
//! serves both from one SQLite file on one core, and 32 shards polled by
//! three processes keep that core busy. The scenarios run one at a time
//! for the same reason.
//!
//! The bounds, with a 3 s lease renewed every second:
//! - a new replica has its share (± 1) within two lease periods;
//! - after `kill -9`, the dead replica's shards are held by others within
//!   the lease time plus one renewal (and the few writes of taking them);
//!   it re-sends at most what it delivered in the 2 s before it died (its
//!   checkpoints are saved every second) plus MAX_IN_FLIGHT;
//! - SIGTERM hands every shard over with no duplicate, even while the
//!   shards split (parents are finished before any replica reads a child:
//!   every item's changes arrive in order);
//! - a replica frozen past its lease delivers nothing after it wakes, and
//!   no checkpoint moves back.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue as Av;
use awsdynamodb_testkit::{
    AdapterProcess, DynamoDbLocal, FaultProxy, KeyShape, ReceivedEvent, RecordingSink, Retries,
    StreamViewType, TestTable, dynamodb_client,
};
use common::{Probe, WAIT, assert_all_arrived_in_order, assert_clean_output};
use tokio_util::sync::CancellationToken;

const WIDTH: u32 = 32;
const LEASE: Duration = Duration::from_secs(3);
const RENEWAL: Duration = Duration::from_secs(1);
/// A lease store write on DynamoDB Local.
const TAKE_WRITE: Duration = Duration::from_millis(100);
const ITEMS: usize = 64;
const WRITES_PER_SECOND: u64 = 10;
const MAX_IN_FLIGHT: usize = 64;

/// The scenarios run one at a time (see above).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The table, the proxy splitting it, the sink, and the lease table.
struct Cluster {
    width: u32,
    lease_ddb: DynamoDbLocal,
    table: Arc<TestTable>,
    proxy: FaultProxy,
    sink: RecordingSink,
    stream: String,
    lease_table: String,
    leases: aws_sdk_dynamodb::Client,
    endpoint: String,
}

/// One adapter process and its name in the leases.
struct Replica {
    tag: &'static str,
    process: AdapterProcess,
    lease_name: String,
    probe: Probe,
}

/// A shard lease as the table holds it.
#[derive(Debug, Clone, PartialEq)]
struct Held {
    owner: Option<String>,
    checkpoint: Option<String>,
    parents: Vec<String>,
}

impl Cluster {
    /// A table whose stream the proxy shows as one parent split into
    /// `width` open shards.
    async fn start(width: u32) -> anyhow::Result<Self> {
        let ddb = DynamoDbLocal::shared().await;
        let table = Arc::new(
            TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?,
        );
        let proxy = FaultProxy::start(ddb.endpoint()).await?;
        let sink = RecordingSink::start().await?;
        table
            .put(awsdynamodb_testkit::items::with_value(
                awsdynamodb_testkit::items::key("first"),
                0,
            ))
            .await?;
        let stream = table.latest_stream_arn().await?.unwrap();
        proxy.split(&stream, width).await?;
        let lease_table = format!("leases-{}", table.arn().rsplit('/').next().unwrap());
        let lease_ddb = DynamoDbLocal::spawn().await?;
        Ok(Cluster {
            width,
            leases: dynamodb_client(lease_ddb.endpoint(), Retries::Standard),
            lease_ddb,
            endpoint: proxy.endpoint(),
            table,
            proxy,
            sink,
            stream,
            lease_table,
        })
    }

    fn env(&self, tag: &str) -> Vec<(String, String)> {
        let state = std::env::temp_dir();
        let mut env = common::env(
            self.table.arn(),
            &self.endpoint,
            Some(&self.sink.url()),
            &state,
        );
        common::set(&mut env, "CHECKPOINT_STORE", "memory:");
        common::set(
            &mut env,
            "AWS_ENDPOINT_URL_DYNAMODB",
            self.lease_ddb.endpoint(),
        );
        common::set(
            &mut env,
            "COORDINATION",
            &format!("dynamodb:{}", self.lease_table),
        );
        common::set(&mut env, "LEASE_DURATION", &format!("{}s", LEASE.as_secs()));
        common::set(&mut env, "POLL_INTERVAL", "250ms");
        common::set(&mut env, "LOG_LEVEL", "info");
        common::set(
            &mut env,
            "K_CE_OVERRIDES",
            &format!(r#"{{"extensions":{{"replica":"{tag}"}}}}"#),
        );
        env
    }

    async fn spawn(&self, tag: &'static str) -> anyhow::Result<Replica> {
        let env = self.env(tag);
        let probe = Probe::new(&env);
        let process = common::spawn_healthy(env).await;
        let line = process
            .stderr_lines()
            .into_iter()
            .find(|l| l.contains("sharing the stream through shard leases"))
            .ok_or_else(|| anyhow::anyhow!("replica {tag} did not say it uses leases"))?;
        let start = line.find(r#""replica":""#).expect("the replica's name") + 11;
        let lease_name = line[start..].split('"').next().unwrap().to_owned();
        Ok(Replica {
            tag,
            process,
            lease_name,
            probe,
        })
    }

    /// The shard leases (not the heartbeats), by shard.
    async fn leases(&self) -> anyhow::Result<BTreeMap<String, Held>> {
        let out = self
            .leases
            .query()
            .table_name(&self.lease_table)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", "stream")
            .expression_attribute_values(":s", Av::S(self.stream.clone()))
            .consistent_read(true)
            .send()
            .await?;
        let text = |item: &HashMap<String, Av>, name: &str| {
            item.get(name).and_then(|v| v.as_s().ok()).cloned()
        };
        Ok(out
            .items()
            .iter()
            .filter_map(|item| {
                let shard = text(item, "shard")?;
                (!shard.starts_with('~')).then(|| {
                    let parents = match item.get("parents") {
                        Some(Av::L(l)) => l.iter().filter_map(|p| p.as_s().ok().cloned()).collect(),
                        _ => Vec::new(),
                    };
                    let held = Held {
                        owner: text(item, "owner"),
                        checkpoint: text(item, "checkpoint"),
                        parents,
                    };
                    (shard, held)
                })
            })
            .collect())
    }

    /// Polls the lease table until `balanced` holds among `replicas`;
    /// returns how long that took. The table is another process's state:
    /// polling is the only way to see it change.
    async fn await_balance(
        &self,
        replicas: &[&Replica],
        within: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let leases = self.leases().await?;
            match balanced(&leases, replicas, self.width) {
                Ok(()) => return Ok(started.elapsed()),
                Err(why) if started.elapsed() > within => {
                    anyhow::bail!("not balanced after {within:?}: {why}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn writer(
        &self,
        changes: usize,
    ) -> (
        tokio::task::JoinHandle<anyhow::Result<(usize, f64)>>,
        CancellationToken,
    ) {
        let stop = CancellationToken::new();
        let writer = tokio::spawn(self.table.clone().write_round_robin(
            ITEMS,
            WRITES_PER_SECOND,
            changes,
            stop.clone(),
        ));
        (writer, stop)
    }

    /// Every change of the stream arrived (in order per item, first
    /// arrivals); the events received, and how many were repeats.
    async fn every_change_arrived(&self) -> anyhow::Result<(Vec<ReceivedEvent>, usize)> {
        let records = self.table.read_all_records(&self.stream).await?;
        let received = self
            .sink
            .wait_for(common::has_every(&records), WAIT)
            .await?;
        let duplicates = assert_all_arrived_in_order(&records, &received);
        Ok((received, duplicates))
    }
}

/// The `width` readable leases (not finished, parents finished or gone)
/// are held by `replicas`, each holding its share ± 1.
fn balanced(
    leases: &BTreeMap<String, Held>,
    replicas: &[&Replica],
    width: u32,
) -> Result<(), String> {
    let finished = |shard: &str| {
        leases
            .get(shard)
            .is_none_or(|l| l.checkpoint.as_deref() == Some("\"finished\""))
    };
    let mut load: BTreeMap<&str, usize> = replicas
        .iter()
        .map(|r| (r.lease_name.as_str(), 0))
        .collect();
    for (shard, lease) in leases {
        if finished(shard) || !lease.parents.iter().all(|p| finished(p)) {
            continue;
        }
        match lease.owner.as_deref().and_then(|o| load.get_mut(o)) {
            Some(n) => *n += 1,
            None => return Err(format!("{shard} is held by {:?}", lease.owner)),
        }
    }
    let (min, max) = (load.values().min(), load.values().max());
    let readable: usize = load.values().sum();
    if readable != width as usize {
        return Err(format!("{readable} readable shards"));
    }
    if max.zip(min).is_some_and(|(max, min)| max - min <= 1) {
        Ok(())
    } else {
        Err(format!("loads {load:?}"))
    }
}

fn sent_by<'a>(events: &'a [ReceivedEvent], tag: &str) -> impl Iterator<Item = &'a ReceivedEvent> {
    events
        .iter()
        .filter(move |e| e.extensions.get("replica").map(String::as_str) == Some(tag))
}

/// Polls until no readable lease is held by `gone`; how long since `since`.
async fn await_taken_over(
    cluster: &Cluster,
    gone: &Replica,
    since: Instant,
) -> anyhow::Result<Duration> {
    loop {
        let leases = cluster.leases().await?;
        if !leases.values().any(|l| {
            l.owner.as_deref() == Some(gone.lease_name.as_str())
                && l.checkpoint.as_deref() != Some("\"finished\"")
        }) {
            return Ok(since.elapsed());
        }
        anyhow::ensure!(
            since.elapsed() < WAIT,
            "{}'s shards were never taken over",
            gone.tag
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_shards_fail_over_and_hand_over() -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(WIDTH).await?;
    let a = cluster.spawn("a").await?;
    cluster.await_balance(&[&a], WAIT).await?;
    let (writer, stop_writing) = cluster.writer(usize::MAX);

    // Two more: each gets its share within two lease periods.
    let b = cluster.spawn("b").await?;
    let c = cluster.spawn("c").await?;
    let took = cluster.await_balance(&[&a, &b, &c], WAIT).await?;
    assert!(
        took <= 2 * LEASE,
        "balanced {took:?} after the third replica was healthy"
    );
    cluster
        .sink
        .wait_for(
            |e| sent_by(e, "b").next().is_some() && sent_by(e, "c").next().is_some(),
            WAIT,
        )
        .await?;

    // kill -9 of b: its shards are taken over within the lease time plus
    // one renewal, and it re-sends a bounded few.
    let mut b = b;
    tokio::time::sleep(Duration::from_millis(fastrand::u64(0..1000))).await;
    b.process.kill9()?;
    let killed_at = Instant::now();
    b.process.wait_exit(WAIT).await?;
    assert_clean_output(&b.process);
    let recent_b = sent_by(&cluster.sink.events(), "b")
        .filter(|e| e.received_at + Duration::from_secs(2) >= killed_at)
        .count();
    let delivered_by_b: HashSet<String> = sent_by(&cluster.sink.events(), "b")
        .map(|e| e.id.clone())
        .collect();
    let held_by_b = cluster
        .leases()
        .await?
        .values()
        .filter(|l| {
            l.owner.as_deref() == Some(b.lease_name.as_str())
                && l.checkpoint.as_deref() != Some("\"finished\"")
        })
        .count() as u32;
    let takeover = await_taken_over(&cluster, &b, killed_at).await?;
    // The lease, one renewal round, and a conditional write per lease taken
    // (DynamoDB Local takes about 10 writes a second; slower when cold).
    let bound = LEASE + RENEWAL + Duration::from_millis(500) + held_by_b * TAKE_WRITE;
    assert!(
        takeover <= bound,
        "b's {held_by_b} shards were taken over {takeover:?} after the kill (bound {bound:?})"
    );
    cluster.await_balance(&[&a, &c], WAIT).await?;

    // A fourth joins; then the writes stop and everything arrives.
    let d = cluster.spawn("d").await?;
    cluster.await_balance(&[&a, &c, &d], WAIT).await?;
    stop_writing.cancel();
    let (written, rate) = writer.await??;
    let (received, duplicates) = cluster.every_change_arrived().await?;
    let resent: HashSet<&str> = received
        .iter()
        .filter(|e| e.extensions.get("replica").map(String::as_str) != Some("b"))
        .map(|e| e.id.as_str())
        .filter(|id| delivered_by_b.contains(*id))
        .collect();
    assert_eq!(
        resent.len(),
        duplicates,
        "only b's deliveries were sent twice"
    );
    assert!(
        resent.len() <= recent_b + MAX_IN_FLIGHT,
        "b's crash re-sent {} events; it delivered {recent_b} in its last 2 s",
        resent.len()
    );

    // SIGTERM of c while the shards split, and a fifth replica: every
    // shard is handed over, nothing is sent twice.
    let before = received.len();
    let (writer, stop_writing) = cluster.writer(usize::MAX);
    cluster
        .sink
        .wait_for(|e| e.len() > before + 40, WAIT)
        .await?;
    let mut c = c;
    c.process.terminate()?;
    cluster.proxy.split(&cluster.stream, 1).await?;
    let status = c.process.wait_exit(WAIT).await?;
    assert!(status.success(), "SIGTERM ends with 0");
    assert_clean_output(&c.process);
    let e = cluster.spawn("e").await?;
    cluster.await_balance(&[&a, &d, &e], WAIT).await?;
    let after = cluster.sink.events().len();
    cluster
        .sink
        .wait_for(|e| e.len() > after + 40, WAIT)
        .await?;
    stop_writing.cancel();
    let (written_then, _) = writer.await??;
    let (_, duplicates_then) = cluster.every_change_arrived().await?;
    assert_eq!(
        duplicates_then, duplicates,
        "a SIGTERM and a split while leases moved sent something twice"
    );
    eprintln!(
        "{written} + {written_then} changes at {rate:.0}/s; balanced {took:?} after the third \
         replica; kill -9 taken over in {takeover:?}, re-sent {} (b delivered {recent_b} in its \
         last 2 s); SIGTERM with a split: 0 re-sent",
        resent.len()
    );
    for mut r in [a, d, e] {
        common::stop(&mut r.process).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_frozen_past_its_lease_delivers_nothing_when_it_wakes() -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(WIDTH).await?;
    let a = cluster.spawn("a").await?;
    let b = cluster.spawn("b").await?;
    cluster.await_balance(&[&a, &b], WAIT).await?;
    let (writer, stop_writing) = cluster.writer(usize::MAX);
    cluster
        .sink
        .wait_for(
            |e| sent_by(e, "a").count() > 50 && sent_by(e, "b").count() > 50,
            WAIT,
        )
        .await?;

    b.process.freeze()?;
    let frozen_at = Instant::now();
    let takeover = await_taken_over(&cluster, &b, frozen_at).await?;
    // Past the lease time on b's own clock, too.
    tokio::time::sleep((LEASE + RENEWAL).saturating_sub(frozen_at.elapsed())).await;
    let positions = cluster.leases().await?;
    b.process.thaw()?;
    let thawed_at = Instant::now();

    // Whatever b does once awake (it rejoins and gets its share back by
    // hand-over), no lease's checkpoint moves back.
    let watch_until = Instant::now() + 3 * LEASE;
    let mut last = positions;
    while Instant::now() < watch_until {
        let now = cluster.leases().await?;
        for (shard, lease) in &now {
            if let (Some(before), Some(after)) = (
                last.get(shard)
                    .and_then(|l| l.checkpoint.as_deref())
                    .and_then(sequence),
                lease.checkpoint.as_deref().and_then(sequence),
            ) {
                assert!(
                    after >= before,
                    "{shard}'s checkpoint went back: {before} → {after}"
                );
            }
        }
        last = now;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.await_balance(&[&a, &b], WAIT).await?;
    stop_writing.cancel();
    writer.await??;
    let (received, _) = cluster.every_change_arrived().await?;
    let logs = b.process.stderr_lines();
    assert!(
        logs.iter()
            .any(|l| l.contains("no heartbeat within the lease time")
                || l.contains("leases taken by other replicas")),
        "b noticed its leases were gone"
    );
    // What b delivered after it woke, before it took leases again: nothing.
    let first_take_again = received
        .iter()
        .filter(|e| e.received_at > thawed_at)
        .filter(|e| e.extensions.get("replica").map(String::as_str) == Some("b"))
        .map(|e| e.id.clone())
        .collect::<Vec<_>>();
    let delivered_by_a: HashSet<&str> = sent_by(&received, "a").map(|e| e.id.as_str()).collect();
    let stale: Vec<&String> = first_take_again
        .iter()
        .filter(|id| delivered_by_a.contains(id.as_str()))
        .collect();
    assert!(
        stale.is_empty(),
        "b sent {} events after waking that a had taken over: {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
    eprintln!("frozen b's shards taken over in {takeover:?}");
    let mut a = a;
    let mut b = b;
    common::stop(&mut a.process).await;
    common::stop(&mut b.process).await;
    Ok(())
}

/// The sequence number of a checkpoint `{"after":"…"}`.
fn sequence(checkpoint: &str) -> Option<u128> {
    let v: serde_json::Value = serde_json::from_str(checkpoint).ok()?;
    v["after"].as_str()?.parse().ok()
}

/// A source that had one replica with file checkpoints moves to leases and
/// resumes where it was: nothing is sent twice (STARTING_POSITION is
/// TRIM_HORIZON, so starting over would re-send everything). Then the
/// checkpoints live in the leases: a replica with an empty CHECKPOINT_STORE
/// resumes from them, again with nothing sent twice.
/// With more replicas than shards, the one without a lease is healthy and
/// says it is idle; when the holder leaves, it takes the shard over where
/// the holder stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_a_shard_is_healthy_and_idle_until_it_takes_over() -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let cluster = Cluster::start(1).await?;
    let mut a = cluster.spawn("a").await?;
    // The parent first, to its end: then a holds the one open shard.
    let started = Instant::now();
    while !cluster
        .leases()
        .await?
        .values()
        .any(|l| !l.parents.is_empty() && l.owner.as_deref() == Some(a.lease_name.as_str()))
    {
        anyhow::ensure!(started.elapsed() < WAIT, "a never took the open shard");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = cluster.spawn("b").await?;
    let said = b
        .probe
        .await_health(|status, body| status == 200 && body.starts_with("idle"))
        .await?;
    assert!(said.contains("holds no shard lease"), "{said}");
    let held = |text: String| common::metric(&text, "awsdynamodbsource_leases_held");
    assert_eq!(held(b.probe.metrics().await?), Some(0.0));
    assert_eq!(held(a.probe.metrics().await?), Some(1.0));
    assert_eq!(a.probe.health().await?.0, 204, "the holder is not idle");

    let (writer, stop_writing) = cluster.writer(usize::MAX);
    cluster
        .sink
        .wait_for(|e| sent_by(e, "a").count() >= 5, WAIT)
        .await?;
    a.process.terminate()?;
    a.process.wait_exit(WAIT).await?;
    b.probe.await_health(|status, _| status == 204).await?;
    cluster
        .sink
        .wait_for(|e| sent_by(e, "b").count() >= 5, WAIT)
        .await?;
    stop_writing.cancel();
    writer.await??;
    let (_, duplicates) = cluster.every_change_arrived().await?;
    assert_eq!(duplicates, 0, "a handover sends nothing twice");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_carry_over_to_leases() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
    let sink = RecordingSink::start().await?;
    let state = tempfile::tempdir()?;
    let lease_table = format!("leases-{}", table.arn().rsplit('/').next().unwrap());
    let write = |round: i64| {
        let table = &table;
        async move {
            for i in 0..10 {
                let key = awsdynamodb_testkit::items::key(&format!("item-{i}"));
                table
                    .put(awsdynamodb_testkit::items::with_value(key, round))
                    .await?;
            }
            anyhow::Ok(())
        }
    };
    let arrived = |count: usize| sink.wait_for(move |e| e.len() >= count, WAIT);

    let env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    let mut alone = common::spawn_healthy(env.clone()).await;
    write(1).await?;
    arrived(10).await?;
    common::stop(&mut alone).await;

    let mut leased_env = env.clone();
    common::set(
        &mut leased_env,
        "COORDINATION",
        &format!("dynamodb:{lease_table}"),
    );
    let mut leased = common::spawn_healthy(leased_env.clone()).await;
    write(2).await?;
    arrived(20).await?;
    common::stop(&mut leased).await;

    let elsewhere = tempfile::tempdir()?;
    common::set(
        &mut leased_env,
        "CHECKPOINT_STORE",
        &format!("file:{}", elsewhere.path().display()),
    );
    let mut leased = common::spawn_healthy(leased_env).await;
    write(3).await?;
    arrived(30).await?;
    let stream = table.latest_stream_arn().await?.unwrap();
    let records = table.read_all_records(&stream).await?;
    let received = sink.events();
    assert_eq!(
        assert_all_arrived_in_order(&records, &received),
        0,
        "resumed where it was, twice"
    );
    common::stop(&mut leased).await;
    Ok(())
}
