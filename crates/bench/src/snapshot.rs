//! `cargo run --release -p bench -- snapshot`: how fast SNAPSHOT=initial
//! sends a table's items, unlimited and within a read-unit limit.
//!
//! One table of `BENCH_SNAPSHOT_ITEMS` items (default 100,000, about 200
//! bytes each, distinct keys) on a fresh DynamoDB Local, written first
//! (the snapshot reads the stream from LATEST: their records are not
//! sent). Then, in
//! turn, twice each (A/B on one machine): the release adapter with a fresh
//! memory checkpoint store (a first start, so a snapshot) and 4 segments,
//! unlimited, then with `SNAPSHOT_READ_UNITS` (`BENCH_SNAPSHOT_UNITS`,
//! default 250). Items/s counts from the adapter's start to the last row
//! received; CPU seconds and peak RSS come from `/proc`. The limit's
//! ceiling in items/s is the units times 4 KB (a strongly consistent read
//! unit) over the items' size.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use awsdynamodb_testkit::{AdapterProcess, KeyShape, StreamViewType, TestTable};
use serde_json::json;

use super::sink::Sink;
use super::{Local, adapter_env, machine, process_usage};

const SEGMENTS: u32 = 4;
/// Nothing is written during the snapshot: the margin only matters to
/// changes.
const MARGIN: &str = "2s";

fn items() -> usize {
    std::env::var("BENCH_SNAPSHOT_ITEMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn units() -> f64 {
    std::env::var("BENCH_SNAPSHOT_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250.0)
}

/// Like the drain's items, each with its own key.
fn snapshot_item(
    i: usize,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let mut item = super::item(i);
    item.insert(
        "pk".to_owned(),
        aws_sdk_dynamodb::types::AttributeValue::S(format!("item-{i:07}")),
    );
    item
}

pub async fn run(adapter_bin: &Path) -> Result<()> {
    let local = Local::start().await?;
    let sink = Sink::start().await?;
    let n = items();
    let table =
        TestTable::create_at(local.endpoint(), KeyShape::Hash, StreamViewType::NewImage).await?;
    super::fill_with(table.dynamodb(), table.name(), n, snapshot_item).await?;
    // The table also holds the fill's marker item.
    let rows = n as u64 + 1;
    let bytes = scanned_bytes(&table).await?;
    eprintln!(
        "bench: snapshot: {rows} items ({:.1} MB)",
        bytes as f64 / 1e6
    );

    let limit = units();
    let mut runs = Vec::new();
    for round in 0..2 {
        for read_units in [None, Some(limit)] {
            let run = one_run(
                adapter_bin,
                &table,
                local.endpoint(),
                &sink,
                rows,
                read_units,
            )
            .await?;
            eprintln!("bench: snapshot: round {round}: {run}");
            runs.push(run);
        }
    }
    let average_item_bytes = bytes as f64 / rows as f64;
    let results = json!({
        "machine": machine(),
        "items": rows,
        "average_item_bytes": average_item_bytes,
        "segments": SEGMENTS,
        "read_units_limit": limit,
        "limit_ceiling_items_per_second": limit * 4096.0 / average_item_bytes.max(1.0),
        "runs": runs,
    });
    print_table(&results);
    super::write_results(adapter_bin, "snapshot.json", &results)
}

/// The items' size as a scan counts it (for the limit's ceiling).
async fn scanned_bytes(table: &TestTable) -> Result<u64> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let size = |(name, value): (&String, &AttributeValue)| {
        name.len() as u64
            + match value {
                AttributeValue::S(s) => s.len() as u64,
                AttributeValue::N(n) => n.len() as u64 / 2 + 1,
                _ => 1,
            }
    };
    Ok(table
        .scan_all()
        .await?
        .iter()
        .map(|item| item.iter().map(size).sum::<u64>())
        .sum())
}

async fn one_run(
    adapter_bin: &Path,
    table: &TestTable,
    endpoint: &str,
    sink: &Sink,
    rows: u64,
    read_units: Option<f64>,
) -> Result<serde_json::Value> {
    let mut env = adapter_env(table.arn(), endpoint, sink, "LATEST");
    env.extend(
        [
            ("SNAPSHOT", "initial".to_owned()),
            ("SNAPSHOT_SEGMENTS", SEGMENTS.to_string()),
            ("SNAPSHOT_MARGIN", MARGIN.to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    if let Some(units) = read_units {
        env.push(("SNAPSHOT_READ_UNITS".into(), units.to_string()));
    }
    let before = sink.received();
    let started = Instant::now();
    let adapter = AdapterProcess::spawn(adapter_bin, env)?;
    sink.wait_for(before + rows, Duration::from_secs(900))
        .await?;
    let elapsed = started.elapsed();
    let (rss, cpu) = process_usage(adapter.pid())?;
    drop(adapter);
    Ok(json!({
        "read_units": read_units,
        "seconds": elapsed.as_secs_f64(),
        "items_per_second": rows as f64 / elapsed.as_secs_f64(),
        "cpu_seconds": cpu,
        "peak_rss_bytes": rss,
    }))
}

fn print_table(r: &serde_json::Value) {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    println!(
        "\nsnapshot of {} items (about {:.0} bytes each, {} segments): {}\n",
        r["items"],
        f(&r["average_item_bytes"]),
        r["segments"],
        super::machine_line(&r["machine"])
    );
    println!("| read units/s | items/s | seconds | adapter CPU s | peak RSS |");
    println!("|---|---|---|---|---|");
    for run in r["runs"].as_array().into_iter().flatten() {
        let units = match run["read_units"].as_f64() {
            Some(u) => format!(
                "{u:.0} (ceiling {:.0} items/s)",
                f(&r["limit_ceiling_items_per_second"])
            ),
            None => "unlimited".to_owned(),
        };
        println!(
            "| {units} | {:.0} | {:.1} | {:.1} | {:.0} MB |",
            f(&run["items_per_second"]),
            f(&run["seconds"]),
            f(&run["cpu_seconds"]),
            f(&run["peak_rss_bytes"]) / 1e6,
        );
    }
}
