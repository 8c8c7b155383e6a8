//! `cargo run --release -p bench -- soak`: the adapter under steady writes
//! and every fault at once, for a long time, checked from the outside.
//!
//! A fresh DynamoDB Local, the testkit's fault proxy in front of it, and a
//! recording sink. Items are updated round-robin at a steady rate
//! throughout. Meanwhile the proxy rolls the stream's shards over (and splits
//! them once), answers some GetRecords with expired iterators, throttling or
//! server errors and some GetShardIterator calls with throttling; the sink
//! refuses some events (503) and now and then goes down for a few seconds.
//! During the first phase the adapter is killed (`kill -9`) about every
//! minute and restarted at once; the second phase has no kill, and the
//! adapter's RSS is sampled through it.
//!
//! It checks, prints, and fails (exit 1) past any bound:
//! - nothing lost: every change of the stream reached the sink;
//! - order per item: each item's changes first arrived in stream order;
//! - per crash: exactly the events sent beyond the saved positions are sent
//!   again, and they are at most the events received in the 2 s before the
//!   kill plus MAX_IN_FLIGHT per shard being read (the README's bound);
//! - the saved position's trail (events and seconds, sampled from
//!   `/metrics` every second);
//! - memory: over the kill-free phase, after a warm-up that sees each fault
//!   (a sink outage, a roll-over) at least once, RSS's floor (the lowest
//!   sample of a minute) grows by at most 10 % from the first minute to the
//!   last; the peak is printed too.
//!
//! `SOAK_KILL_MINUTES` (default 6) and `SOAK_STEADY_MINUTES` (default 8) set
//! the phases, `SOAK_RATE` the writes per second (default 50).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use awsdynamodb_testkit::{
    AdapterProcess, Fault, FaultProxy, KeyShape, Kill, Op, RecordingSink, StreamViewType,
    TestTable, free_port,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Local, machine, vm_rss};

const ITEMS: usize = 200;
const MAX_IN_FLIGHT: usize = 64;
const KILL_EVERY: Duration = Duration::from_secs(60);
const ROLL_OVER_EVERY: Duration = Duration::from_secs(120);
const SINK_OUTAGE_EVERY: Duration = Duration::from_secs(150);
const SINK_OUTAGE: Duration = Duration::from_secs(5);
/// Longer than the outage and roll-over periods: memory high-water marks
/// (a backlog behind an outage) are reached before the baseline is taken.
const WARM_UP: Duration = Duration::from_secs(160);
const MOST_RSS_GROWTH: f64 = 0.10;

fn minutes(var: &str, default: u64) -> Duration {
    let m = std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(default as f64);
    Duration::from_secs_f64(m * 60.0)
}

/// One kill, and the shards being read when it came.
struct Crash {
    at: Duration,
    kill: Kill,
    shards: usize,
}

/// What `/metrics` said, once a second.
#[derive(Default)]
struct Samples {
    trail_events: f64,
    trail_seconds: f64,
    shards: f64,
}

pub async fn run(adapter_bin: &Path) -> Result<bool> {
    let kill_phase = minutes("SOAK_KILL_MINUTES", 6);
    let steady_phase = minutes("SOAK_STEADY_MINUTES", 8);
    let rate: u64 = std::env::var("SOAK_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let local = Local::start().await?;
    let proxy = FaultProxy::start(local.endpoint()).await?;
    let table = Arc::new(
        TestTable::create_at(
            local.endpoint(),
            KeyShape::Hash,
            StreamViewType::NewAndOldImages,
        )
        .await?,
    );
    let stream = table
        .latest_stream_arn()
        .await?
        .context("the table has a stream")?;
    let sink = RecordingSink::start().await?;
    sink.reject_ratio(0.02, 503);
    let state = tempfile::tempdir()?;
    let env: Vec<(String, String)> = [
        ("ARN", table.arn().to_owned()),
        ("AWS_ENDPOINT_URL", proxy.endpoint()),
        ("AWS_ACCESS_KEY_ID", "soak".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "soak".to_owned()),
        ("STARTING_POSITION", "TRIM_HORIZON".to_owned()),
        (
            "CHECKPOINT_STORE",
            format!("file:{}", state.path().display()),
        ),
        ("K_SINK", sink.url()),
        ("EXTENSIONS", "sequence,dynamodbshard".to_owned()),
        ("SUBJECT", "keys".to_owned()),
        ("MAX_IN_FLIGHT", MAX_IN_FLIGHT.to_string()),
        ("HEALTH_PORT", free_port().to_string()),
        ("METRICS_PROMETHEUS_PORT", free_port().to_string()),
        ("LOG_LEVEL", "error".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let metrics_url = format!(
        "http://127.0.0.1:{}/metrics",
        env.iter()
            .find(|(k, _)| k == "METRICS_PROMETHEUS_PORT")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    );

    eprintln!(
        "soak: {} min with a kill every minute, then {} min without; {rate} writes/s over {ITEMS} items",
        kill_phase.as_secs() / 60,
        steady_phase.as_secs() / 60
    );
    let mut adapter = AdapterProcess::spawn(adapter_bin, env.clone())?;
    adapter.wait_healthy(Duration::from_secs(60)).await?;
    let started = Instant::now();
    let total = kill_phase + steady_phase;

    let stop = CancellationToken::new();
    let writer = tokio::spawn(table.clone().write_round_robin(
        ITEMS,
        rate,
        (rate * total.as_secs()) as usize,
        stop.clone(),
    ));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let worst = Arc::new(Mutex::new(Samples::default()));
    let sampler = tokio::spawn(sample_metrics(
        metrics_url.clone(),
        samples.clone(),
        worst.clone(),
        stop.clone(),
    ));
    let faults = tokio::spawn(inject_faults(
        proxy.clone(),
        sink.clone(),
        stream.clone(),
        started + total,
        stop.clone(),
    ));

    // Phase 1: a kill about every minute.
    let mut kills = Vec::new();
    let mut next_kill = started + KILL_EVERY;
    while next_kill + Duration::from_secs(10) < started + kill_phase {
        let jitter = Duration::from_millis(rand_below(20_000));
        tokio::time::sleep_until((next_kill - Duration::from_secs(10) + jitter).into()).await;
        let shards = samples.lock().unwrap().shards as usize;
        adapter.kill9()?;
        let killed_at = Instant::now();
        adapter.wait_exit(Duration::from_secs(30)).await?;
        let kill = Kill::observe(&sink.events(), state.path(), killed_at)?;
        eprintln!(
            "soak: kill {} at {:?}, {} events received",
            kills.len() + 1,
            killed_at - started,
            kill.received
        );
        kills.push(Crash {
            at: killed_at - started,
            kill,
            shards: shards.max(1),
        });
        adapter = AdapterProcess::spawn(adapter_bin, env.clone())?;
        next_kill += KILL_EVERY;
    }

    // Phase 2: no kill; RSS every 5 s.
    tokio::time::sleep_until((started + kill_phase).into()).await;
    eprintln!("soak: the kill-free phase starts");
    let pid = adapter.pid();
    let mut rss: Vec<(Duration, u64)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    while Instant::now() < started + total {
        tick.tick().await;
        rss.push((started.elapsed(), vm_rss(pid)?));
    }
    let (writes, write_rate) = writer.await??;
    stop.cancel();
    faults.await??;
    proxy.clear_faults();
    sink.reject_ratio(0.0, 503);
    sink.set_down(false).await?;

    // Everything must arrive.
    let records = table.read_all_records(&stream).await?;
    let ids: HashSet<String> = records
        .iter()
        .filter_map(|r| r.event_id().map(str::to_owned))
        .collect();
    let received = sink
        .wait_for(
            |events| {
                let got: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
                ids.iter().all(|id| got.contains(id.as_str()))
            },
            Duration::from_secs(180),
        )
        .await
        .unwrap_or_else(|_| sink.events());
    sampler.await?;
    let final_metrics = reqwest_get(&metrics_url).await.unwrap_or_default();
    adapter.terminate()?;
    adapter.wait_exit(Duration::from_secs(30)).await?;

    let report = check(
        &records,
        &received,
        &kills,
        &rss,
        kill_phase,
        &worst.lock().unwrap(),
        &final_metrics,
    );
    eprintln!("soak: {writes} writes, {write_rate:.1} a second");
    print_report(&report, total, write_rate, records.len(), received.len());
    let out = adapter_bin
        .parent()
        .unwrap_or(adapter_bin)
        .join("../bench/soak.json");
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report)?)?;
    eprintln!("soak: results written to {}", out.display());
    Ok(report["passed"].as_bool().unwrap_or(false))
}

fn rand_below(n: u64) -> u64 {
    // A time-seeded value is enough to spread the kills.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % n.max(1)
}

/// Roll-overs and a split, GetRecords and GetShardIterator faults that
/// change every 20 s, and sink outages, until `until`.
async fn inject_faults(
    proxy: FaultProxy,
    sink: RecordingSink,
    stream: String,
    until: Instant,
    stop: CancellationToken,
) -> Result<()> {
    let started = Instant::now();
    let get_records_faults = [
        (0.01, Fault::ExpiredIterator),
        (0.02, Fault::LimitExceeded),
        (0.01, Fault::Internal),
        (0.02, Fault::Throttling),
    ];
    proxy.fail_ratio(Op::GetShardIterator, 0.05, Fault::Throttling);
    let mut next_roll = started + ROLL_OVER_EVERY;
    let mut next_outage = started + SINK_OUTAGE_EVERY;
    let mut rolls = 0u32;
    let mut tick = tokio::time::interval(Duration::from_secs(20));
    let mut turn = 0usize;
    while Instant::now() < until && !stop.is_cancelled() {
        tick.tick().await;
        let (ratio, fault) = get_records_faults[turn % get_records_faults.len()].clone();
        proxy.fail_ratio(Op::GetRecords, ratio, fault);
        turn += 1;
        if Instant::now() >= next_roll {
            // The second roll-over is a split into two shards.
            let fanout = if rolls == 1 { 2 } else { 1 };
            let split = proxy.split(&stream, fanout).await?;
            eprintln!(
                "soak: shards {:?} closed, {:?} opened",
                split.closed_shard_ids, split.child_shard_ids
            );
            rolls += 1;
            next_roll += ROLL_OVER_EVERY;
        }
        if Instant::now() >= next_outage {
            sink.set_down(true).await?;
            tokio::time::sleep(SINK_OUTAGE).await;
            sink.set_down(false).await?;
            next_outage += SINK_OUTAGE_EVERY;
        }
    }
    Ok(())
}

async fn reqwest_get(url: &str) -> Result<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()?;
    Ok(client.get(url).send().await?.text().await?)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Keeps the last sample (for the kills) and the worst (for the report);
/// scrapes fail while the adapter restarts, and are skipped.
async fn sample_metrics(
    url: String,
    last: Arc<Mutex<Samples>>,
    worst: Arc<Mutex<Samples>>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !stop.is_cancelled() {
        tick.tick().await;
        let Ok(text) = reqwest_get(&url).await else {
            continue;
        };
        let get = |name| metric(&text, name).unwrap_or(0.0);
        let now = Samples {
            trail_events: get("awsdynamodbsource_checkpoint_trail_events"),
            trail_seconds: get("awsdynamodbsource_checkpoint_trail_seconds"),
            shards: get("awsdynamodbsource_shards_owned"),
        };
        let mut w = worst.lock().unwrap();
        w.trail_events = w.trail_events.max(now.trail_events);
        w.trail_seconds = w.trail_seconds.max(now.trail_seconds);
        w.shards = w.shards.max(now.shards);
        *last.lock().unwrap() = now;
    }
}

fn check(
    records: &[aws_sdk_dynamodbstreams::types::Record],
    received: &[awsdynamodb_testkit::ReceivedEvent],
    kills: &[Crash],
    rss: &[(Duration, u64)],
    kill_phase: Duration,
    worst: &Samples,
    final_metrics: &str,
) -> serde_json::Value {
    let extension = |e: &awsdynamodb_testkit::ReceivedEvent, name: &str| {
        e.extensions.get(name).cloned().unwrap_or_default()
    };
    // Lost: changes of the stream that never arrived.
    let got: HashSet<&str> = received.iter().map(|e| e.id.as_str()).collect();
    let lost = records
        .iter()
        .filter(|r| r.event_id().is_some_and(|id| !got.contains(id)))
        .count();
    // Order: per item (the subject names it), first arrivals in stream
    // (sequence) order.
    let mut seen: HashSet<&str> = HashSet::new();
    let mut per_item: HashMap<&str, Vec<String>> = HashMap::new();
    for e in received {
        if seen.insert(e.id.as_str()) {
            per_item
                .entry(e.subject.as_deref().unwrap_or_default())
                .or_default()
                .push(extension(e, "sequence"));
        }
    }
    let out_of_order: usize = per_item
        .values()
        .map(|arrivals| arrivals.windows(2).filter(|w| w[0] > w[1]).count())
        .sum();
    // Per crash: re-sent events, and the bound.
    let mut crashes = Vec::new();
    let mut within = true;
    for crash in kills {
        let (kill, resent) = (&crash.kill, crash.kill.resent(received));
        let beyond = kill.beyond_saved(received);
        let bound = kill.recent + MAX_IN_FLIGHT * crash.shards;
        let ok = resent == beyond && resent.len() <= bound;
        within &= ok;
        crashes.push(json!({
            "at_seconds": crash.at.as_secs(),
            "resent": resent.len(),
            "beyond_saved": beyond.len(),
            "bound": bound,
            "shards": crash.shards,
            "ok": ok,
        }));
    }
    // Memory over the kill-free phase, after warm-up.
    let steady: Vec<(Duration, u64)> = rss
        .iter()
        .copied()
        .filter(|(at, _)| *at >= kill_phase + WARM_UP)
        .collect();
    let first_minute: Vec<u64> = steady
        .iter()
        .filter(|(at, _)| *at < kill_phase + WARM_UP + Duration::from_secs(60))
        .map(|(_, b)| *b)
        .collect();
    let end = steady.last().map(|(at, _)| *at).unwrap_or_default();
    let last_minute: Vec<u64> = steady
        .iter()
        .filter(|(at, _)| *at + Duration::from_secs(60) > end)
        .map(|(_, b)| *b)
        .collect();
    // The floor: a leak raises it; a backlog behind a sink outage lifts RSS
    // for a while, and that memory goes back (the peak is reported apart).
    let floor = |v: Vec<u64>| v.into_iter().min().unwrap_or(0);
    let (baseline, last) = (floor(first_minute), floor(last_minute));
    let peak = steady.iter().map(|(_, b)| *b).max().unwrap_or(0);
    let growth = if baseline > 0 {
        last as f64 / baseline as f64 - 1.0
    } else {
        f64::INFINITY
    };
    let aws_errors: BTreeMap<String, f64> = final_metrics
        .lines()
        .filter(|l| l.starts_with("awsdynamodbsource_aws_errors_total{"))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            (value > 0.0).then(|| {
                (
                    labels
                        .trim_start_matches("awsdynamodbsource_aws_errors_total")
                        .to_owned(),
                    value,
                )
            })
        })
        .collect();
    let passed = lost == 0 && out_of_order == 0 && within && growth <= MOST_RSS_GROWTH;
    json!({
        "machine": machine(),
        "passed": passed,
        "lost": lost,
        "out_of_order": out_of_order,
        "duplicates": received.len() - seen.len(),
        "crashes": crashes,
        "trail_events_max": worst.trail_events,
        "trail_seconds_max": worst.trail_seconds,
        "shards_max": worst.shards,
        "rss": {
            "floor_after_warm_up_mb": baseline as f64 / 1e6,
            "floor_last_minute_mb": last as f64 / 1e6,
            "peak_mb": peak as f64 / 1e6,
            "growth": growth,
            "samples": steady.len(),
            "series_mb": rss
                .iter()
                .map(|(at, b)| json!([at.as_secs(), *b as f64 / 1e6]))
                .collect::<Vec<_>>(),
        },
        "aws_errors_in_the_last_run": aws_errors,
    })
}

fn print_report(r: &serde_json::Value, total: Duration, rate: f64, changes: usize, events: usize) {
    let m = &r["machine"];
    println!(
        "\nadapter soak: {} CPUs ({}), {} GiB, kernel {}, {}\n",
        m["cpus"],
        m["cpu_model"].as_str().unwrap_or(""),
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or(""),
        m["date"].as_str().unwrap_or("")
    );
    println!("| measure | result |\n|---|---|");
    println!(
        "| run | {:.1} min, {rate:.1} writes/s, {changes} changes, {events} events received |",
        total.as_secs_f64() / 60.0
    );
    println!("| lost | {} |", r["lost"]);
    println!("| out of order (per item) | {} |", r["out_of_order"]);
    println!("| duplicates in all | {} |", r["duplicates"]);
    for (i, c) in r["crashes"].as_array().into_iter().flatten().enumerate() {
        println!(
            "| crash {} at {} s | {} sent again (= {} beyond the saved positions), bound {} ({} shard{} read){} |",
            i + 1,
            c["at_seconds"],
            c["resent"],
            c["beyond_saved"],
            c["bound"],
            c["shards"],
            if c["shards"].as_u64() == Some(1) {
                ""
            } else {
                "s"
            },
            if c["ok"].as_bool() == Some(true) {
                ""
            } else {
                " FAILED"
            }
        );
    }
    println!(
        "| saved position's trail, worst | {} events, {:.1} s |",
        r["trail_events_max"],
        r["trail_seconds_max"].as_f64().unwrap_or(0.0)
    );
    let rss = &r["rss"];
    println!(
        "| RSS floor, kill-free phase after warm-up | {:.1} MB → {:.1} MB ({:+.1} %), peak {:.1} MB, {} samples |",
        rss["floor_after_warm_up_mb"].as_f64().unwrap_or(0.0),
        rss["floor_last_minute_mb"].as_f64().unwrap_or(0.0),
        rss["growth"].as_f64().unwrap_or(0.0) * 100.0,
        rss["peak_mb"].as_f64().unwrap_or(0.0),
        rss["samples"]
    );
    println!(
        "| failed AWS calls, by operation and class (last process) | {} |",
        r["aws_errors_in_the_last_run"]
    );
    println!(
        "\nsoak: {}",
        if r["passed"].as_bool() == Some(true) {
            "passed"
        } else {
            "FAILED"
        }
    );
}
