//! `cargo run --release -p bench -- replicas`: 1, 2 and 3 adapter processes
//! sharing one stream through shard leases (`COORDINATION=dynamodb:…`).
//!
//! The testkit's fault proxy presents DynamoDB Local's shard as
//! `BENCH_REPLICA_SHARDS` (default 32) open shards; `BENCH_REPLICA_RECORDS`
//! (default 20,000) records are written into them first. The lease table
//! lives in a second DynamoDB Local (in AWS, DynamoDB and DynamoDB Streams
//! are separate endpoints; one DynamoDB Local would serve both from one
//! core). For each replica count R, on a fresh lease table:
//!
//! 1. **drain**: R processes start together and read the records from
//!    TRIM_HORIZON; events/s from their start to the last first arrival.
//! 2. **crash**: while 20 changes a second are written, one process is
//!    killed with `kill -9` (with R = 1, a new one is started at once);
//!    failover is the time until the live processes hold every shard again
//!    (their `leases_held` gauges), with the default lease of 10 s
//!    (`BENCH_LEASE` changes it). Duplicates: events received more than
//!    once (the sink keeps every `ce-id`).
//! 3. **planned handoff**: still writing, one process gets SIGTERM and a
//!    new one is started (two handoffs: the leaving one's shards, then the
//!    newcomer's share; with R = 1 one handoff), until balanced again.
//!
//! Every change written is checked to have arrived before the next step.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use awsdynamodb_testkit::{
    AdapterProcess, DynamoDbLocal, FaultProxy, KeyShape, StreamViewType, TestTable,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::sink::Sink;
use super::{Local, adapter_env, fill, machine};

const WRITES_PER_SECOND: u64 = 20;
const ITEMS: usize = 200;
/// Writes before the fault, so that it lands mid-stream.
const BEFORE_FAULT: Duration = Duration::from_secs(3);
/// Writes after failover, before the writer stops.
const AFTER_FAULT: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(300);

/// `BENCH_REPLICAS`, e.g. `1,3` (default `1,2,3`).
fn counts() -> Vec<usize> {
    std::env::var("BENCH_REPLICAS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|n: &Vec<usize>| !n.is_empty())
        .unwrap_or_else(|| vec![1, 2, 3])
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The stream, the sink, and what has been written so far.
struct Setup<'a> {
    adapter_bin: &'a Path,
    table: Arc<TestTable>,
    proxy: FaultProxy,
    leases: DynamoDbLocal,
    sink: Sink,
    stream: String,
    width: u32,
    lease: Duration,
    /// Records in the stream: each must arrive.
    written: u64,
}

/// One adapter process and its metrics address.
struct Replica {
    process: AdapterProcess,
    metrics: String,
}

pub async fn run(adapter_bin: &Path) -> Result<()> {
    let width: u32 = setting("BENCH_REPLICA_SHARDS", 32);
    let records: usize = setting("BENCH_REPLICA_RECORDS", 20_000);
    let lease = Duration::from_secs(setting("BENCH_LEASE", 10));
    let local = Local::start().await?;
    eprintln!("bench: replicas: a second DynamoDB Local for the lease table...");
    let leases = DynamoDbLocal::spawn().await?;
    let table = Arc::new(
        TestTable::create_at(local.endpoint(), KeyShape::Hash, StreamViewType::NewImage).await?,
    );
    table.put(super::item(0)).await?;
    let proxy = FaultProxy::start(local.endpoint()).await?;
    let stream = table
        .latest_stream_arn()
        .await?
        .context("the table has no stream")?;
    proxy.split(&stream, width).await?;
    eprintln!("bench: replicas: {width} open shards; writing {records} records...");
    let ddb = awsdynamodb_testkit::dynamodb_client(
        local.endpoint(),
        awsdynamodb_testkit::Retries::Standard,
    );
    fill(&ddb, table.name(), records).await?;
    let mut setup = Setup {
        adapter_bin,
        table,
        proxy,
        leases,
        sink: Sink::start().await?,
        stream,
        width,
        lease,
        written: 0,
    };
    let mut rows = Vec::new();
    for replicas in counts() {
        rows.push(setup.round(replicas).await?);
    }
    let results = json!({
        "machine": machine(),
        "open_shards": width,
        "records": records,
        "lease_seconds": lease.as_secs_f64(),
        "replicas": rows,
    });
    print_table(&results);
    super::write_results(adapter_bin, "replicas.json", &results)
}

impl Setup<'_> {
    async fn round(&mut self, replicas: usize) -> Result<serde_json::Value> {
        let lease_table = format!("leases-{replicas}");
        // Drain: every record again, from TRIM_HORIZON (a fresh lease
        // table has no checkpoints), into a fresh sink.
        eprintln!("bench: replicas: {replicas}: drain...");
        self.sink = Sink::start().await?;
        self.sink.track_ids();
        self.written = self.table.read_all_records(&self.stream).await?.len() as u64;
        let started = Instant::now();
        let mut running = Vec::new();
        for _ in 0..replicas {
            running.push(self.spawn(&lease_table)?);
        }
        self.sink.wait_for_distinct(self.written, WAIT).await?;
        let drain = started.elapsed().as_secs_f64();
        let drain_repeats = self.sink.repeats();
        let events_per_second = self.written as f64 / drain;
        eprintln!("bench: replicas: {replicas}: {events_per_second:.0} events/s");
        self.await_balanced(&running).await?;

        eprintln!("bench: replicas: {replicas}: kill -9 of one while writing...");
        let repeats_before = self.sink.repeats();
        let (writer, stop) = self.writer();
        tokio::time::sleep(BEFORE_FAULT).await;
        let killed = running.remove(0);
        killed.process.kill9()?;
        let crashed = Instant::now();
        if running.is_empty() {
            running.push(self.spawn(&lease_table)?);
        }
        self.await_held(&running, |_| true).await?;
        let failover = crashed.elapsed().as_secs_f64();
        drop(killed);
        tokio::time::sleep(AFTER_FAULT).await;
        self.finish_writing(writer, stop).await?;
        let crash_repeats = self.sink.repeats() - repeats_before;
        if running.len() < replicas {
            running.push(self.spawn(&lease_table)?);
            self.await_balanced(&running).await?;
        }

        eprintln!("bench: replicas: {replicas}: SIGTERM of one and a new one, while writing...");
        let repeats_before = self.sink.repeats();
        let (writer, stop) = self.writer();
        tokio::time::sleep(BEFORE_FAULT).await;
        let mut leaving = running.remove(0);
        leaving.process.terminate()?;
        let handed = Instant::now();
        leaving.process.wait_exit(WAIT).await?;
        eprintln!(
            "bench: replicas: {replicas}: the leaving one exited after {:.1} s",
            handed.elapsed().as_secs_f64()
        );
        running.push(self.spawn(&lease_table)?);
        self.await_balanced(&running).await?;
        let handoff = handed.elapsed().as_secs_f64();
        if std::env::var("BENCH_DEBUG").is_ok() {
            eprintln!("LEAVING:\n{}", leaving.process.stderr_lines().join("\n"));
            eprintln!(
                "NEW:\n{}",
                running.last().unwrap().process.stderr_lines().join("\n")
            );
        }
        tokio::time::sleep(AFTER_FAULT).await;
        self.finish_writing(writer, stop).await?;
        let handoffs = if replicas == 1 { 1 } else { 2 };
        let planned_repeats = self.sink.repeats() - repeats_before;

        for mut replica in running {
            replica.process.terminate()?;
            replica.process.wait_exit(WAIT).await?;
        }
        Ok(json!({
            "replicas": replicas,
            "drain_events_per_second": events_per_second,
            "drain_duplicates": drain_repeats,
            "failover_seconds": failover,
            "duplicates_per_crash": crash_repeats,
            "planned_handoff_seconds": handoff,
            "planned_handoffs": handoffs,
            "duplicates_per_planned_handoff": planned_repeats as f64 / f64::from(handoffs),
        }))
    }

    fn spawn(&self, lease_table: &str) -> Result<Replica> {
        let mut env = adapter_env(
            self.table.arn(),
            &self.proxy.endpoint(),
            &self.sink,
            "TRIM_HORIZON",
        );
        env.extend(
            [
                (
                    "AWS_ENDPOINT_URL_DYNAMODB",
                    self.leases.endpoint().to_owned(),
                ),
                ("COORDINATION", format!("dynamodb:{lease_table}")),
                ("LEASE_DURATION", format!("{}s", self.lease.as_secs())),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        let port = env
            .iter()
            .find(|(k, _)| k == "METRICS_PROMETHEUS_PORT")
            .map(|(_, v)| v.clone())
            .context("a metrics port")?;
        Ok(Replica {
            process: AdapterProcess::spawn(self.adapter_bin, env)?,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        })
    }

    fn writer(
        &self,
    ) -> (
        tokio::task::JoinHandle<Result<(usize, f64)>>,
        CancellationToken,
    ) {
        let stop = CancellationToken::new();
        let writer = tokio::spawn(self.table.clone().write_round_robin(
            ITEMS,
            WRITES_PER_SECOND,
            usize::MAX,
            stop.clone(),
        ));
        (writer, stop)
    }

    /// Stops the writer and waits until every record of the stream has
    /// arrived (counted in DynamoDB Local's stream: a write that changes
    /// nothing makes no record).
    async fn finish_writing(
        &mut self,
        writer: tokio::task::JoinHandle<Result<(usize, f64)>>,
        stop: CancellationToken,
    ) -> Result<()> {
        stop.cancel();
        writer.await??;
        self.written = self.table.read_all_records(&self.stream).await?.len() as u64;
        self.sink.wait_for_distinct(self.written, WAIT).await
    }

    /// Polls the replicas' `leases_held` until they hold every shard
    /// between them and `also` holds for their counts. They are other
    /// processes: polling is the only way to see them change.
    async fn await_held(&self, replicas: &[Replica], also: impl Fn(&[u64]) -> bool) -> Result<()> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()?;
        let started = Instant::now();
        loop {
            let mut held = Vec::new();
            for r in replicas {
                let text = match http.get(&r.metrics).send().await {
                    Ok(resp) => resp.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                held.push(
                    text.lines()
                        .find_map(|l| l.strip_prefix("awsdynamodbsource_leases_held "))
                        .and_then(|v| v.trim().parse::<f64>().ok())
                        .unwrap_or(0.0) as u64,
                );
            }
            if held.iter().sum::<u64>() == u64::from(self.width) && also(&held) {
                return Ok(());
            }
            if started.elapsed() > WAIT {
                bail!("the replicas hold {held:?} of {} shards", self.width);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every shard held, each replica holding its share ± 1.
    async fn await_balanced(&self, replicas: &[Replica]) -> Result<()> {
        let share = u64::from(self.width) / replicas.len() as u64;
        self.await_held(replicas, |held| {
            held.iter().all(|&h| h >= share && h <= share + 1)
        })
        .await
    }
}

fn print_table(r: &serde_json::Value) {
    println!(
        "\nreplicas over {} open shards ({} records drained, lease {} s): {}\n",
        r["open_shards"],
        r["records"],
        r["lease_seconds"],
        super::machine_line(&r["machine"])
    );
    println!(
        "| replicas | drain events/s | duplicates in drain | failover after kill -9 | duplicates per crash | planned handoff (SIGTERM + new replica) until balanced | duplicates per planned handoff |"
    );
    println!("|---|---|---|---|---|---|---|");
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    for row in r["replicas"].as_array().into_iter().flatten() {
        println!(
            "| {} | {:.0} | {} | {:.1} s | {} | {:.1} s | {:.1} |",
            row["replicas"],
            f(&row["drain_events_per_second"]),
            row["drain_duplicates"],
            f(&row["failover_seconds"]),
            row["duplicates_per_crash"],
            f(&row["planned_handoff_seconds"]),
            f(&row["duplicates_per_planned_handoff"]),
        );
    }
}
