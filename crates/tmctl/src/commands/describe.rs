//! `tmctl describe [BROKER]`: the broker, its triggers and its sources, with
//! what their processes report. It shows where a credential comes from,
//! never its value.

use ::broker::BrokerStatus;
use anyhow::Result;
use serde_json::Value;

use crate::home::{BrokerDir, Home};
use crate::manifest::{Manifest, SOURCE_KIND, TRIGGER_KIND, name_of};
use crate::runtime::{RunState, broker_status, broker_url, http};

pub async fn run(home: &Home, broker: Option<&str>) -> Result<()> {
    let dir = home.broker(broker)?;
    let manifest = Manifest::load(&dir.manifest())?;
    let state = RunState::load(&dir)?;
    let client = http();
    let broker_port = state.broker_port();
    let status = broker_status(broker_port).await;

    print_broker(&dir.name, &state, broker_port, status.as_ref());
    print_triggers(&manifest, status.as_ref());
    print_sources(&manifest, &state, &dir, &client).await;
    Ok(())
}

/// Whether the broker runs, where, and how full it is.
fn print_broker(name: &str, state: &RunState, port: Option<u16>, status: Option<&BrokerStatus>) {
    match (port, status) {
        (Some(port), Some(s)) => println!(
            "Broker {name}: running at {} (pid {}), holding {} of {} events{}",
            broker_url(port),
            state.broker.pid.unwrap_or_default(),
            s.held,
            s.capacity,
            if s.accepting { "" } else { ", stopping" }
        ),
        (Some(port), None) => println!(
            "Broker {name}: running at {} but not answering",
            broker_url(port)
        ),
        (None, _) => println!("Broker {name}: stopped (`tmctl start {name}` starts it)"),
    }
}

/// Each trigger's target and filters, and its counters when the broker runs.
fn print_triggers(manifest: &Manifest, status: Option<&BrokerStatus>) {
    println!("\nTriggers:");
    let mut any = false;
    for t in manifest.of_kind(TRIGGER_KIND) {
        any = true;
        let tname = name_of(t);
        let spec = &t["spec"];
        println!(
            "  {tname} → {}",
            spec["target"]["uri"].as_str().unwrap_or("?")
        );
        match spec.get("filters") {
            Some(f) if !f.is_null() => println!("    filters: {f}"),
            _ => println!("    filters: none (every event)"),
        }
        if let Some(d) = spec.get("delivery") {
            println!("    delivery: {d}");
        }
        if let Some(ts) = status.and_then(|s| s.triggers.get(tname)) {
            println!(
                "    delivered {}, dead-lettered {}, dropped {}, pending {}",
                ts.delivered, ts.dead_lettered, ts.dropped, ts.pending
            );
            if let Some(e) = &ts.last_error {
                println!("    last error: {e}");
            }
        }
    }
    if !any {
        println!("  none (`tmctl create trigger --target URL` adds one)");
    }
}

/// Each source's spec (credentials summarised) and what its adapter says.
async fn print_sources(
    manifest: &Manifest,
    state: &RunState,
    dir: &BrokerDir,
    client: &reqwest::Client,
) {
    println!("\nSources:");
    let mut any = false;
    for s in manifest.of_kind(SOURCE_KIND) {
        any = true;
        let sname = name_of(s);
        let spec = &s["spec"];
        println!("  {sname} (AWSDynamoDBSource)");
        println!("    arn: {}", spec["arn"].as_str().unwrap_or("?"));
        println!("    auth: {}", auth_summary(&spec["auth"]));
        println!("    sink: {}", sink_summary(&spec["sink"]));
        println!("    status: {}", adapter_status(state, sname, client).await);
        println!("    log: {}", dir.log(sname).display());
    }
    if !any {
        println!("  none (`tmctl create source awsdynamodb --help` tells how to add one)");
    }
}

/// The sink's URI, or the broker it refers to.
fn sink_summary(sink: &Value) -> String {
    match sink["uri"].as_str() {
        Some(uri) => uri.to_owned(),
        None => format!("broker {}", sink["ref"]["name"].as_str().unwrap_or("?")),
    }
}

/// What the source's adapter says about itself: its health and how many
/// events it delivered, or that it is stopped.
async fn adapter_status(state: &RunState, source: &str, client: &reqwest::Client) -> String {
    let run = state.sources.get(source);
    let (Some(pid), Some(port)) = (state.source_pid(source), run.and_then(|r| r.health_port))
    else {
        return "stopped".to_owned();
    };
    let health = format!("http://127.0.0.1:{port}/health");
    let said = match client.get(&health).send().await {
        // A note: how far a snapshot is, or that the replica is idle.
        Ok(r) if r.status() == reqwest::StatusCode::OK => {
            match r.text().await.unwrap_or_default().trim() {
                "" => "capturing".to_owned(),
                note => format!("capturing; {note}"),
            }
        }
        Ok(r) if r.status().is_success() => "capturing".to_owned(),
        Ok(r) => format!("not ready: {}", r.text().await.unwrap_or_default().trim()),
        Err(_) => "not answering".to_owned(),
    };
    let delivered = delivered(client, port).await;
    format!(
        "{said} (pid {pid}, {health}){}",
        delivered
            .map(|n| format!(", {n} events delivered"))
            .unwrap_or_default()
    )
}

/// How the source authenticates, without any value.
fn auth_summary(auth: &Value) -> String {
    let credentials = &auth["credentials"];
    if credentials.is_object() {
        let from = |field: &str| match &credentials[field]["valueFromSecret"] {
            Value::Object(s) => format!(
                "secret {} key {}",
                s.get("name").and_then(Value::as_str).unwrap_or("?"),
                s.get("key").and_then(Value::as_str).unwrap_or("?")
            ),
            _ => "inline value (hidden)".to_owned(),
        };
        return format!(
            "access key (ID from {}, secret from {})",
            from("accessKeyID"),
            from("secretAccessKey")
        );
    }
    for key in ["iamRole", "iamrole"] {
        if let Some(role) = auth[key].as_str() {
            return format!("IAM role {role}");
        }
    }
    if let Some(role) = auth["iam"]["roleArn"].as_str() {
        return format!("IAM role {role}");
    }
    "none".to_owned()
}

/// The adapter's `events_delivered` counter, from its /metrics.
async fn delivered(client: &reqwest::Client, port: u16) -> Option<u64> {
    let text = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut total = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("awsdynamodbsource_events_delivered_total") {
            let value = rest.rsplit(' ').next()?.parse::<f64>().ok()?;
            *total.get_or_insert(0) += value as u64;
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn auth_is_summarised_without_values() {
        let inline = json!({"credentials": {
            "accessKeyID": {"value": "AKIDINLINE"},
            "secretAccessKey": {"valueFromSecret": {"name": "s", "key": "k"}},
        }});
        let text = auth_summary(&inline);
        assert!(!text.contains("AKIDINLINE"), "{text}");
        assert!(text.contains("secret s key k"), "{text}");
        assert_eq!(auth_summary(&json!({"iamrole": "arn:r"})), "IAM role arn:r");
    }
}
