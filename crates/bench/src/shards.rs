//! `cargo run --release -p bench -- shards`: what many open shards cost one
//! adapter, idle and on a write.
//!
//! For each width W (`BENCH_SHARDS`, default `16,128,512,1024`): a fresh
//! table on one DynamoDB Local, the testkit's fault proxy in front of it
//! splitting the stream's shard into W open children (records routed to
//! children by key), and the release adapter reading them from LATEST.
//! Nothing is written for `BENCH_IDLE_SECONDS` (default 60); then, over
//! 10 s, the proxy counts GetRecords calls and how they bunch in time, and
//! `/proc` gives the adapter's CPU, its RSS and its connections to the
//! proxy. Then single writes: each of a few keys written once after the
//! idle (the first write to an idle shard), then again every 2 s (a shard
//! that just had traffic); the sink takes write-to-receipt times.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use awsdynamodb_testkit::{AdapterProcess, FaultProxy, KeyShape, Op, StreamViewType, TestTable};
use serde_json::json;

use super::sink::Sink;
use super::{Local, adapter_env, item, machine, percentile, process_usage, vm_rss};

const WINDOW: Duration = Duration::from_secs(10);
/// Keys written per round of the write phase, and rounds after the first.
const KEYS_PER_ROUND: usize = 10;
const ACTIVE_ROUNDS: usize = 4;
const WRITE_SPACING: Duration = Duration::from_millis(200);

fn widths() -> Vec<u32> {
    std::env::var("BENCH_SHARDS")
        .ok()
        .map(|v| v.split(',').filter_map(|w| w.trim().parse().ok()).collect())
        .filter(|w: &Vec<u32>| !w.is_empty())
        .unwrap_or_else(|| vec![16, 128, 512, 1024])
}

fn idle_for() -> Duration {
    Duration::from_secs_f64(
        std::env::var("BENCH_IDLE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60.0),
    )
}

pub async fn run(adapter_bin: &Path) -> Result<()> {
    let local = Local::start().await?;
    let sink = Sink::start().await?;
    let mut rows = Vec::new();
    for width in widths() {
        rows.push(one_width(adapter_bin, local.endpoint(), &sink, width).await?);
    }
    let results = json!({ "machine": machine(), "idle_shards": rows });
    print_table(&results);
    super::write_results(adapter_bin, "shards.json", &results)
}

async fn one_width(
    adapter_bin: &Path,
    endpoint: &str,
    sink: &Sink,
    width: u32,
) -> Result<serde_json::Value> {
    let table = TestTable::create_at(endpoint, KeyShape::Hash, StreamViewType::NewImage).await?;
    table.put(item(0)).await?;
    let proxy = FaultProxy::start(endpoint).await?;
    let stream = table
        .latest_stream_arn()
        .await?
        .context("the table has no stream")?;
    proxy.split(&stream, width).await?;
    eprintln!("bench: shards: {width} open shards; the adapter starts...");
    let mut adapter = AdapterProcess::spawn(
        adapter_bin,
        adapter_env(table.arn(), &proxy.endpoint(), sink, "LATEST"),
    )?;
    adapter.wait_healthy(Duration::from_secs(120)).await?;
    let idle = idle_for();
    eprintln!("bench: shards: idle for {idle:?}...");
    tokio::time::sleep(idle).await;

    proxy.reset_counters();
    proxy.record_call_times(true);
    let (_, cpu_before) = process_usage(adapter.pid())?;
    let started = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let (_, cpu_after) = process_usage(adapter.pid())?;
    let seconds = started.elapsed().as_secs_f64();
    let calls = proxy.calls(Op::GetRecords);
    let bunching = busiest_tenth_share(&proxy.call_times(Op::GetRecords));
    proxy.record_call_times(false);
    let rss = vm_rss(adapter.pid())?;
    let connections = established_to(proxy_port(&proxy)?)?;

    let (after_idle, active) = write_latencies(&table, sink).await?;
    adapter.terminate()?;
    adapter.wait_exit(Duration::from_secs(60)).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let getrecords_per_second = calls as f64 / seconds;
    let cpu = (cpu_after - cpu_before) / seconds;
    Ok(json!({
        "open_shards": width,
        "idle_seconds": idle.as_secs_f64(),
        "getrecords_per_second": getrecords_per_second,
        "getrecords_per_shard_per_second": getrecords_per_second / f64::from(width),
        "cpu_share_of_one_core": cpu,
        "cpu_microseconds_per_getrecords": if calls > 0 { cpu * 1e6 / getrecords_per_second } else { 0.0 },
        "rss_bytes": rss,
        "connections": connections,
        "busiest_tenth_share": bunching,
        "first_write_after_idle_ms": {
            "p50": ms(percentile(&after_idle, 50.0)),
            "max": ms(after_idle.last().copied().unwrap_or_default()),
        },
        "write_after_traffic_ms": {
            "p50": ms(percentile(&active, 50.0)),
            "p99": ms(percentile(&active, 99.0)),
        },
    }))
}

/// Write-to-receipt times: of a first write to each of a few keys after
/// the idle, then of writes to the same keys 2 s after their last one.
async fn write_latencies(table: &TestTable, sink: &Sink) -> Result<(Vec<Duration>, Vec<Duration>)> {
    use std::sync::atomic::Ordering;
    let mut rounds = Vec::new();
    let mut n = 1;
    for _ in 0..=ACTIVE_ROUNDS {
        sink.counts.latency_mode.store(true, Ordering::SeqCst);
        let before = sink.received();
        for key in 0..KEYS_PER_ROUND {
            let mut it = item(key);
            it.insert(
                "n".into(),
                aws_sdk_dynamodb::types::AttributeValue::N(n.to_string()),
            );
            n += 1;
            table.put(it).await?;
            tokio::time::sleep(WRITE_SPACING).await;
        }
        sink.wait_for(before + KEYS_PER_ROUND as u64, Duration::from_secs(60))
            .await?;
        rounds.push(sink.take_latencies());
    }
    sink.counts.latency_mode.store(false, Ordering::SeqCst);
    let after_idle = rounds.remove(0);
    let mut active: Vec<Duration> = rounds.into_iter().flatten().collect();
    active.sort();
    Ok((after_idle, active))
}

/// The share of calls in the busiest tenth of the window's 10 ms slots:
/// 0.1 when calls are spread evenly, near 1 when they come in bursts.
fn busiest_tenth_share(times: &[Instant]) -> f64 {
    let Some(first) = times.iter().min() else {
        return 0.0;
    };
    let slots = (WINDOW.as_millis() / 10) as usize;
    let mut counts = vec![0u64; slots];
    for t in times {
        let slot = (t.duration_since(*first).as_millis() / 10) as usize;
        counts[slot.min(slots - 1)] += 1;
    }
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let top: u64 = counts[..slots / 10].iter().sum();
    top as f64 / times.len() as f64
}

fn proxy_port(proxy: &FaultProxy) -> Result<u16> {
    proxy
        .endpoint()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("the proxy's port")
}

/// Established TCP connections whose local end is `port` (the proxy's side
/// of the adapter's connections: nothing else talks to the proxy).
fn established_to(port: u16) -> Result<usize> {
    let mut n = 0;
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        n += text
            .lines()
            .skip(1)
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let local_port = fields
                    .get(1)
                    .and_then(|a| a.rsplit(':').next())
                    .and_then(|p| u16::from_str_radix(p, 16).ok());
                local_port == Some(port) && fields.get(3) == Some(&"01")
            })
            .count();
    }
    Ok(n)
}

fn print_table(r: &serde_json::Value) {
    println!(
        "\nmany idle shards: {}\n",
        super::machine_line(&r["machine"])
    );
    println!(
        "| open shards | GetRecords/s (per shard) | adapter CPU (one core = 100 %) | CPU per GetRecords | RSS | connections | busiest tenth of 10 ms slots | first write after idle p50 / max | write after traffic p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    for row in r["idle_shards"].as_array().into_iter().flatten() {
        println!(
            "| {} | {:.0} ({:.2}) | {:.1} % | {:.0} µs | {:.1} MB | {} | {:.0} % | {:.0} / {:.0} ms | {:.0} / {:.0} ms |",
            row["open_shards"],
            f(&row["getrecords_per_second"]),
            f(&row["getrecords_per_shard_per_second"]),
            f(&row["cpu_share_of_one_core"]) * 100.0,
            f(&row["cpu_microseconds_per_getrecords"]),
            f(&row["rss_bytes"]) / 1e6,
            row["connections"],
            f(&row["busiest_tenth_share"]) * 100.0,
            f(&row["first_write_after_idle_ms"]["p50"]),
            f(&row["first_write_after_idle_ms"]["max"]),
            f(&row["write_after_traffic_ms"]["p50"]),
            f(&row["write_after_traffic_ms"]["p99"]),
        );
    }
}
