//! `bench`: measures the adapter from the outside, on this machine.
//!
//! `cargo run --release -p bench` builds the release adapter and runs three
//! phases, each against a fresh DynamoDB Local (its write path slows down as
//! stream records accumulate):
//!
//! 1. **drain**: 100,000 records (about 200-byte items over 1,000 keys) are
//!    written first, then read three times by a bare SDK reader (DynamoDB
//!    Local's ceiling, and the warm-up of its JIT); the adapter then reads
//!    them from TRIM_HORIZON into this process's sink. Events/s counts from
//!    the adapter's start to the last event received; peak RSS (`VmHWM`) and
//!    CPU seconds come from `/proc`. Once for NEW_IMAGE, once for
//!    NEW_AND_OLD_IMAGES.
//! 2. **latency**: 50 writes/s for 20 s; each item carries its write time,
//!    and the sink takes write-to-receipt times.
//! 3. **idle**: then nothing is written; a counting proxy in front of
//!    DynamoDB Local counts the adapter's GetRecords calls per second.
//!
//! It prints one table and writes it as JSON (`target/bench/results.json`,
//! or the path in `BENCH_OUT`). For experiments: `BENCH_RECORDS` changes the
//! drain size; `DYNAMODB_LOCAL_ENDPOINT` uses a running DynamoDB Local for
//! every phase, and `BENCH_TABLE` names a table to keep there (filled once,
//! reused by later runs); `BENCH_ADAPTER` runs another adapter binary (or a
//! wrapper such as `perf record`); `BENCH_PHASES=drain` skips the other
//! phases; `BENCH_ENV="K=V ..."` adds adapter settings.
//!
//! `cargo run --release -p bench -- soak` runs the soak instead (see
//! `soak.rs`): 14 minutes of writes and faults, with kills, checked.
//! `cargo run --release -p bench -- shards` measures many idle shards (see
//! `shards.rs`). `cargo run --release -p bench -- replicas` measures 1, 2
//! and 3 replicas sharing a many-shard stream through leases (see
//! `replicas.rs`).

mod replicas;
mod shards;
mod sink;
mod snapshot;
mod soak;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use awsdynamodb_testkit::{
    AdapterProcess, DynamoDbLocal, FaultProxy, KeyShape, Op, StreamViewType, TestTable, free_port,
};
use serde_json::json;
use sink::Sink;

const KEYS: usize = 1_000;
/// The key of the item that marks a kept table as filled; it is the
/// stream's last record, so the drain waits for it too.
const FILLED: &str = "zz-filled";
const LATENCY_RATE: u64 = 50;
const LATENCY_SECONDS: u64 = 20;
const IDLE_SETTLE: Duration = Duration::from_secs(5);
const IDLE_WINDOW: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> Result<()> {
    let records: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let adapter_bin = match std::env::var("BENCH_ADAPTER") {
        Ok(path) => PathBuf::from(path),
        Err(_) => build_adapter()?,
    };
    if std::env::args().nth(1).as_deref() == Some("soak") {
        if !soak::run(&adapter_bin).await? {
            std::process::exit(1);
        }
        return Ok(());
    }
    if std::env::args().nth(1).as_deref() == Some("shards") {
        return shards::run(&adapter_bin).await;
    }
    if std::env::args().nth(1).as_deref() == Some("replicas") {
        return replicas::run(&adapter_bin).await;
    }
    if std::env::args().nth(1).as_deref() == Some("snapshot") {
        return snapshot::run(&adapter_bin).await;
    }
    let sink = Sink::start().await?;
    let drain_only = std::env::var("BENCH_PHASES").is_ok_and(|p| p == "drain");

    // Each phase gets a fresh DynamoDB Local: its write path slows down as
    // stream records accumulate in its in-memory database.
    let drain_new_image = drain(&adapter_bin, &sink, records, StreamViewType::NewImage).await?;
    let drain_both_images = if drain_only {
        json!({})
    } else {
        drain(
            &adapter_bin,
            &sink,
            records,
            StreamViewType::NewAndOldImages,
        )
        .await?
    };
    let latency = if drain_only {
        json!({})
    } else {
        let local = Local::start().await?;
        latency_and_idle(&adapter_bin, local.endpoint(), &sink).await?
    };

    let results = json!({
        "machine": machine(),
        "drain": drain_new_image,
        "drain_new_and_old_images": drain_both_images,
        "latency_and_idle": latency,
    });
    print_table(&results);
    write_results(&adapter_bin, "results.json", &results)
}

/// Writes `results` as JSON to `BENCH_OUT`, else to `target/bench/<name>`.
fn write_results(adapter_bin: &Path, name: &str, results: &serde_json::Value) -> Result<()> {
    let out = std::env::var("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            adapter_bin
                .parent()
                .unwrap_or(adapter_bin)
                .join("../bench")
                .join(name)
        });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(results)?)?;
    eprintln!("bench: results written to {}", out.display());
    Ok(())
}

/// The machine, as a table's heading says it: `2 CPUs (model), 8 GiB, date`.
fn machine_line(m: &serde_json::Value) -> String {
    format!(
        "{} CPUs ({}), {} GiB, {}",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["memory_gib"],
        m["date"].as_str().unwrap_or("")
    )
}

/// Builds the release adapter with the cargo that runs us, and returns its
/// path (beside this binary).
fn build_adapter() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .context("no folder for the bench binary")?
        .to_path_buf();
    if let Ok(cargo) = std::env::var("CARGO") {
        eprintln!("bench: building the release adapter...");
        let status = std::process::Command::new(cargo)
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "awsdynamodbsource-adapter",
            ])
            .status()?;
        if !status.success() {
            bail!("building the adapter failed");
        }
    }
    let bin = dir.join("awsdynamodbsource-adapter");
    if !bin.exists() {
        bail!(
            "{} not found: run `cargo run --release -p bench`",
            bin.display()
        );
    }
    Ok(bin)
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn adapter_env(table_arn: &str, endpoint: &str, sink: &Sink, start: &str) -> Vec<(String, String)> {
    [
        ("ARN", table_arn.to_owned()),
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "bench".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_owned()),
        ("STARTING_POSITION", start.to_owned()),
        ("CHECKPOINT_STORE", "memory:".to_owned()),
        ("K_SINK", sink.url.clone()),
        ("HEALTH_PORT", free_port().to_string()),
        ("METRICS_PROMETHEUS_PORT", free_port().to_string()),
        ("LOG_LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    // Extra adapter settings for experiments: BENCH_ENV="MAX_IN_FLIGHT=128 ...".
    .chain(
        std::env::var("BENCH_ENV")
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            }),
    )
    .collect()
}

/// About 200 bytes: a key, a number, a text, and the write time.
fn item(i: usize) -> HashMap<String, AttributeValue> {
    let text: String = std::iter::repeat_n("lorem ipsum ", 13).collect();
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("key-{:04}", i % KEYS)),
        ),
        ("n".to_owned(), AttributeValue::N(i.to_string())),
        ("text".to_owned(), AttributeValue::S(text)),
        ("t".to_owned(), AttributeValue::N(now_nanos().to_string())),
    ])
}

/// Writes `records` items in batches of 25 (distinct keys in each).
async fn fill(ddb: &aws_sdk_dynamodb::Client, name: &str, records: usize) -> Result<()> {
    fill_with(ddb, name, records, item).await
}

/// The same, each item made by `make`, then the marker item.
async fn fill_with(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    records: usize,
    make: fn(usize) -> HashMap<String, AttributeValue>,
) -> Result<()> {
    let started = Instant::now();
    let batches: Vec<std::ops::Range<usize>> = (0..records)
        .step_by(25)
        .map(|s| s..(s + 25).min(records))
        .collect();
    let writers = 8;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let mine: Vec<std::ops::Range<usize>> =
            batches.iter().skip(w).step_by(writers).cloned().collect();
        let ddb = ddb.clone();
        let name = name.to_owned();
        tasks.spawn(async move {
            for range in mine {
                let mut requests: Vec<WriteRequest> = range
                    .map(|i| {
                        WriteRequest::builder()
                            .put_request(
                                PutRequest::builder()
                                    .set_item(Some(make(i)))
                                    .build()
                                    .expect("item"),
                            )
                            .build()
                    })
                    .collect();
                while !requests.is_empty() {
                    let out = ddb
                        .batch_write_item()
                        .request_items(&name, requests)
                        .send()
                        .await
                        .context("BatchWriteItem")?;
                    requests = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(&name))
                        .unwrap_or_default();
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    ddb.put_item()
        .table_name(name)
        .item("pk", AttributeValue::S(FILLED.into()))
        .send()
        .await
        .context("PutItem (marker)")?;
    eprintln!(
        "bench: wrote {records} records in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The DynamoDB Local a phase runs against: a fresh one started here, or
/// the one named by `DYNAMODB_LOCAL_ENDPOINT` (kept across phases).
struct Local {
    spawned: Option<DynamoDbLocal>,
    endpoint: String,
}

impl Local {
    async fn start() -> Result<Local> {
        if let Ok(endpoint) = std::env::var("DYNAMODB_LOCAL_ENDPOINT") {
            return Ok(Local {
                spawned: None,
                endpoint,
            });
        }
        eprintln!("bench: starting DynamoDB Local...");
        let spawned = DynamoDbLocal::spawn().await?;
        let endpoint = spawned.endpoint().to_owned();
        Ok(Local {
            spawned: Some(spawned),
            endpoint,
        })
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// DynamoDB Local's CPU seconds so far, when this process started it.
    fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.spawned.as_ref()?.pid()?;
        process_usage(pid).ok().map(|(_, cpu)| cpu)
    }
}

/// Reads the whole stream of `table` from TRIM_HORIZON with the SDK and no
/// delivery, until `expected` records came, and returns records/s. This is
/// the ceiling a reader can reach here; it also warms DynamoDB Local's JIT,
/// so that the adapter's drain measures the adapter.
async fn bare_read(endpoint: &str, table: &str, expected: usize) -> Result<f64> {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let ddb =
        awsdynamodb_testkit::dynamodb_client(endpoint, awsdynamodb_testkit::Retries::Standard);
    let streams =
        awsdynamodb_testkit::streams_client(endpoint, awsdynamodb_testkit::Retries::Standard);
    let stream_arn = ddb
        .describe_table()
        .table_name(table)
        .send()
        .await?
        .table
        .and_then(|t| t.latest_stream_arn)
        .context("the table has no stream")?;
    let started = Instant::now();
    let shards = streams
        .describe_stream()
        .stream_arn(&stream_arn)
        .send()
        .await?;
    let shards = shards
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default();
    let mut read = 0;
    for shard in shards {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&stream_arn)
            .shard_id(shard.shard_id.unwrap_or_default())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await?
            .shard_iterator;
        while let Some(it) = iterator.take() {
            let page = streams
                .get_records()
                .shard_iterator(it)
                .limit(1000)
                .send()
                .await?;
            let n = page.records.map(|r| r.len()).unwrap_or(0);
            read += n;
            if read >= expected {
                break;
            }
            // An open shard's iterator never ends: stop at an empty page.
            iterator = page.next_shard_iterator.filter(|_| n > 0);
        }
    }
    if read < expected {
        bail!("the bare reader found {read} of {expected} records");
    }
    Ok(read as f64 / started.elapsed().as_secs_f64())
}

/// The resident set (`VmRSS`) of a running process, in bytes.
pub(crate) fn vm_rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")?;
    Ok(kb * 1024)
}

/// (peak RSS in bytes, CPU seconds) of a running process.
fn process_usage(pid: u32) -> Result<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let hwm_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmHWM")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) and its ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("bad stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok((hwm_kb * 1024, ticks as f64 / per_second))
}

async fn drain(
    adapter_bin: &PathBuf,
    sink: &Sink,
    records: usize,
    view: StreamViewType,
) -> Result<serde_json::Value> {
    let local = Local::start().await?;
    let endpoint = local.endpoint();
    let ddb =
        awsdynamodb_testkit::dynamodb_client(endpoint, awsdynamodb_testkit::Retries::Standard);
    let kept = std::env::var("BENCH_TABLE").ok().map(|t| {
        format!(
            "{t}-{records}-{}",
            view.as_str().to_lowercase().replace('_', "-")
        )
    });
    // A kept table is reused only once it was filled completely.
    let filled = match &kept {
        Some(name) => ddb
            .get_item()
            .table_name(name)
            .key("pk", AttributeValue::S(FILLED.into()))
            .send()
            .await
            .is_ok_and(|out| out.item.is_some()),
        None => false,
    };
    let table = match &kept {
        Some(name) if filled => None,
        Some(name) => {
            let _ = ddb.delete_table().table_name(name).send().await;
            Some(
                TestTable::create_named(endpoint, name.clone(), KeyShape::Hash, view.clone())
                    .await?,
            )
        }
        None => Some(TestTable::create_at(endpoint, KeyShape::Hash, view.clone()).await?),
    };
    let (name, arn) = match &table {
        Some(t) => (t.name().to_owned(), t.arn().to_owned()),
        None => {
            let name = kept.clone().unwrap_or_default();
            let arn = format!("arn:aws:dynamodb:ddblocal:000000000000:table/{name}");
            (name, arn)
        }
    };
    if table.is_some() {
        eprintln!(
            "bench: drain ({}): writing {records} records over {KEYS} keys...",
            view.as_str()
        );
        fill(&ddb, &name, records).await?;
    }
    // The records, and the marker written after them.
    let expected = records + 1;
    eprintln!(
        "bench: drain: a bare reader reads them (DynamoDB Local's ceiling, and its warm-up)..."
    );
    // Three passes: DynamoDB Local's JIT needs a few to settle.
    let mut bare = 0.0;
    for _ in 0..3 {
        bare = bare_read(endpoint, &name, expected).await?;
        eprintln!("bench: drain: bare reader: {bare:.0} records/s");
    }
    let before = sink.received();
    eprintln!("bench: drain: the adapter reads them from TRIM_HORIZON...");
    let (sink_cpu, local_cpu) = (own_cpu_seconds(), local.cpu_seconds());
    let started = Instant::now();
    let mut adapter = AdapterProcess::spawn(
        adapter_bin,
        adapter_env(&arn, endpoint, sink, "TRIM_HORIZON"),
    )?;
    sink.wait_for(before + expected as u64, Duration::from_secs(600))
        .await?;
    let elapsed = started.elapsed();
    let (rss, cpu) = process_usage(adapter.pid())?;
    let sink_cpu = own_cpu_seconds() - sink_cpu;
    let local_cpu = local
        .cpu_seconds()
        .zip(local_cpu)
        .map(|(after, before)| after - before);
    adapter.terminate()?;
    adapter.wait_exit(Duration::from_secs(30)).await?;
    let rate = records as f64 / elapsed.as_secs_f64();
    eprintln!("bench: drain: {rate:.0} events/s");
    Ok(json!({
        "stream_view_type": view.as_str(),
        "records": records,
        "seconds": elapsed.as_secs_f64(),
        "events_per_second": rate,
        "peak_rss_bytes": rss,
        "cpu_seconds": cpu,
        "cpu_seconds_per_100k_events": cpu * 100_000.0 / records as f64,
        "bare_reader_records_per_second": bare,
        "sink_cpu_seconds": sink_cpu,
        "dynamodb_local_cpu_seconds": local_cpu,
    }))
}

/// This process's CPU seconds so far (the sink runs in it; the writers are
/// idle while the adapter drains).
fn own_cpu_seconds() -> f64 {
    process_usage(std::process::id())
        .map(|(_, cpu)| cpu)
        .unwrap_or(0.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn latency_and_idle(
    adapter_bin: &PathBuf,
    endpoint: &str,
    sink: &Sink,
) -> Result<serde_json::Value> {
    let table =
        Arc::new(TestTable::create_at(endpoint, KeyShape::Hash, StreamViewType::NewImage).await?);
    let proxy = FaultProxy::start(endpoint).await?;
    let mut adapter = AdapterProcess::spawn(
        adapter_bin,
        adapter_env(table.arn(), &proxy.endpoint(), sink, "LATEST"),
    )?;
    adapter.wait_healthy(Duration::from_secs(60)).await?;
    sink.counts
        .latency_mode
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let writes = LATENCY_RATE * LATENCY_SECONDS;
    eprintln!("bench: latency: {LATENCY_RATE} writes/s for {LATENCY_SECONDS} s...");
    let before = sink.received();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / LATENCY_RATE));
    let mut puts = tokio::task::JoinSet::new();
    for i in 0..writes as usize {
        tick.tick().await;
        let table = table.clone();
        puts.spawn(async move {
            table
                .put(item(i))
                .await
                .map_err(|e| anyhow::anyhow!("{e:#}"))
        });
    }
    while let Some(done) = puts.join_next().await {
        done??;
    }
    sink.wait_for(before + writes, Duration::from_secs(60))
        .await?;
    sink.counts
        .latency_mode
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let latencies = sink.take_latencies();

    eprintln!("bench: idle: counting GetRecords calls for {IDLE_WINDOW:?}...");
    tokio::time::sleep(IDLE_SETTLE).await;
    proxy.reset_counters();
    tokio::time::sleep(IDLE_WINDOW).await;
    let calls = proxy.calls(Op::GetRecords);
    adapter.terminate()?;
    adapter.wait_exit(Duration::from_secs(30)).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(json!({
        "writes": writes,
        "writes_per_second": LATENCY_RATE,
        "latency_ms": {
            "p50": ms(percentile(&latencies, 50.0)),
            "p99": ms(percentile(&latencies, 99.0)),
            "max": ms(latencies.last().copied().unwrap_or_default()),
            "samples": latencies.len(),
        },
        "idle_getrecords_per_second": calls as f64 / IDLE_WINDOW.as_secs_f64(),
    }))
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0 / 1024.0)
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "memory_gib": (mem_gib * 10.0).round() / 10.0,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "date": String::from_utf8_lossy(&std::process::Command::new("date").arg("-u").arg("+%Y-%m-%d").output().map(|o| o.stdout).unwrap_or_default()).trim(),
    })
}

fn print_table(r: &serde_json::Value) {
    let d = &r["drain"];
    let l = &r["latency_and_idle"];
    let m = &r["machine"];
    println!(
        "\nadapter benchmark: {} CPUs ({}), {} GiB, kernel {}, {}\n",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or(""),
        m["date"].as_str().unwrap_or("")
    );
    let rows = [
        (
            "drain (NEW_IMAGE)",
            format!(
                "{:.0} events/s ({} records in {:.2} s)",
                d["events_per_second"].as_f64().unwrap_or(0.0),
                d["records"],
                d["seconds"].as_f64().unwrap_or(0.0)
            ),
            "≥ 22,000 events/s",
        ),
        (
            "drain (NEW_AND_OLD_IMAGES)",
            format!(
                "{:.0} events/s",
                r["drain_new_and_old_images"]["events_per_second"]
                    .as_f64()
                    .unwrap_or(0.0)
            ),
            "",
        ),
        (
            "latency p50",
            format!("{:.1} ms", l["latency_ms"]["p50"].as_f64().unwrap_or(0.0)),
            "≤ 60 ms",
        ),
        (
            "latency p99",
            format!("{:.1} ms", l["latency_ms"]["p99"].as_f64().unwrap_or(0.0)),
            "≤ 250 ms",
        ),
        (
            "latency max",
            format!("{:.1} ms", l["latency_ms"]["max"].as_f64().unwrap_or(0.0)),
            "",
        ),
        (
            "idle GetRecords calls",
            format!(
                "{:.2} /s",
                l["idle_getrecords_per_second"].as_f64().unwrap_or(0.0)
            ),
            "≤ 4 /s",
        ),
        (
            "peak RSS while draining",
            format!(
                "{:.1} MB",
                d["peak_rss_bytes"].as_f64().unwrap_or(0.0) / 1e6
            ),
            "≤ 30 MB",
        ),
        (
            "CPU per 100,000 events",
            format!(
                "{:.2} s",
                d["cpu_seconds_per_100k_events"].as_f64().unwrap_or(0.0)
            ),
            "",
        ),
        (
            "CPU while draining",
            format!(
                "adapter {:.2} s, sink {:.2} s, DynamoDB Local {} ({:.2} s of wall time on {} CPUs)",
                d["cpu_seconds"].as_f64().unwrap_or(0.0),
                d["sink_cpu_seconds"].as_f64().unwrap_or(0.0),
                d["dynamodb_local_cpu_seconds"]
                    .as_f64()
                    .map(|s| format!("{s:.2} s"))
                    .unwrap_or_else(|| "not measured".into()),
                d["seconds"].as_f64().unwrap_or(0.0),
                m["cpus"],
            ),
            "",
        ),
        (
            "bare reader (SDK, no delivery)",
            format!(
                "{:.0} records/s",
                d["bare_reader_records_per_second"].as_f64().unwrap_or(0.0)
            ),
            "",
        ),
    ];
    println!("| measure | result | target |\n|---|---|---|");
    for (name, value, target) in rows {
        println!("| {name} | {value} | {target} |");
    }
}
