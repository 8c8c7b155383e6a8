//! `tmctl create source awsdynamodb --arn ... --auth.credentials...`: the
//! object (its Secret apart), checked against the CRD's schema, then the
//! adapter started and awaited. Nothing is kept when any step fails.

use std::time::Duration;

use anyhow::{Result, bail};
use awsdynamodbsource_api::{EVENT_TYPE, vars};
use serde_json::json;

use crate::flags;
use crate::home::{Home, check_name};
use crate::manifest::{Manifest, SOURCE_KIND, SOURCES, broker_ref, metadata, secret_object};
use crate::runtime::{RunState, start_adapter};

const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The endpoint the source is created against (AWS_ENDPOINT_URL, e.g.
/// DynamoDB Local), kept in the spec as an override of the adapter's
/// environment: later starts and `dump` then reproduce what runs.
fn keep_endpoint(spec: &mut serde_json::Value) {
    let Some(endpoint) = std::env::var(vars::AWS_ENDPOINT_URL)
        .ok()
        .filter(|e| !e.trim().is_empty())
    else {
        return;
    };
    let kept = json!({"name": vars::AWS_ENDPOINT_URL, "value": endpoint.trim()});
    // Only into what has the CRD's shape: anything else is left for the
    // schema check to name.
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let overrides = spec.entry("adapterOverrides").or_insert_with(|| json!({}));
    let Some(overrides) = overrides.as_object_mut() else {
        return;
    };
    if let Some(list) = overrides
        .entry("env")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        && !list.iter().any(|v| v["name"] == vars::AWS_ENDPOINT_URL)
    {
        list.push(kept);
    }
}

pub async fn create(home: &Home, kind: &str, args: &[String]) -> Result<()> {
    if kind == "--help" || kind == "-h" {
        print!("{}", flags::help());
        return Ok(());
    }
    if kind != "awsdynamodb" {
        bail!(
            "source kind {kind:?} is not supported: this tmctl creates `awsdynamodb` sources only"
        );
    }
    let flags = flags::parse(args)?;
    if flags.help {
        print!("{}", flags::help());
        return Ok(());
    }
    let dir = home.broker(flags.broker.as_deref())?;
    let broker = dir.name.clone();
    let name = flags
        .name
        .clone()
        .unwrap_or_else(|| format!("{broker}-awsdynamodbsource"));
    check_name("source", &name)?;
    let mut manifest = Manifest::load(&dir.manifest())?;
    if manifest.get(SOURCE_KIND, &name).is_some() {
        bail!(
            "source {name} already exists in broker {broker}: delete it first (`tmctl delete source {name}`) or pick another --name"
        );
    }

    let secret_name = format!("{name}-secret");
    let (mut spec, secret_values) = flags.spec_for(&secret_name);
    if spec.get("sink").is_none() {
        spec["sink"] = json!({"ref": broker_ref(&broker)});
    }
    keep_endpoint(&mut spec);
    let object = json!({
        "apiVersion": SOURCES,
        "kind": SOURCE_KIND,
        "metadata": metadata(&name, &broker),
        "spec": spec,
    });
    awsdynamodbsource_api::validate(&object)
        .map_err(|e| anyhow::anyhow!("{}", e.problems.join("; ")))?;

    let mut state = RunState::load(&dir)?;
    let Some(broker_port) = state.broker_port() else {
        bail!("broker {broker} is not running: start it with `tmctl start {broker}`");
    };
    // The Secret first: `kubectl apply` of the dump then creates it before
    // the source that refers to it.
    if !secret_values.is_empty() {
        manifest.put(secret_object(&secret_name, &broker, &secret_values));
    }
    manifest.put(object);
    let wait = flags.wait.unwrap_or(DEFAULT_WAIT);
    if let Err(e) = start_adapter(&dir, &manifest, &name, &mut state, broker_port, wait).await {
        // The adapter removes a checkpoint folder it made and never wrote
        // to, unless it was killed first (it ignored SIGTERM).
        let _ = std::fs::remove_dir_all(dir.checkpoints(&name));
        bail!("source {name} was not created: {e:#}");
    }
    manifest.save(&dir.manifest())?;
    state.save(&dir)?;
    println!("Created source {name} (AWSDynamoDBSource) in broker {broker}");
    println!("Event types: {EVENT_TYPE}");
    println!("Next: tmctl create trigger --source {name} --target URL, or tmctl watch");
    Ok(())
}
