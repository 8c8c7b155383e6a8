//! `tmctl create trigger`: a Trigger object in the manifest and in the
//! broker's configuration, with its filters and delivery options.

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use ::broker::config::{Filter, parse_iso8601_duration};

use crate::home::{Home, check_name};
use crate::manifest::{Manifest, SOURCE_KIND, TRIGGER_KIND, TRIGGERMESH_EVENTING, metadata};

#[derive(Args, Debug)]
pub struct TriggerArgs {
    /// Where matching events are POSTed (CloudEvents binary mode).
    #[arg(long, value_name = "URL")]
    target: String,
    /// Only events of this source (a source's name in the broker).
    #[arg(long, value_name = "SOURCE")]
    source: Option<String>,
    /// Only events of these types (comma-separated).
    #[arg(long = "eventTypes", value_name = "TYPE,...", value_delimiter = ',')]
    event_types: Vec<String>,
    /// A CloudEvents subscription filter, as JSON: `{"exact": {"type": "..."}}`,
    /// `prefix`, `suffix`, `all`, `any`, `not`; or an array of them (all must
    /// match).
    #[arg(long, value_name = "JSON")]
    filter: Option<String>,
    /// The trigger's name (default: <broker>-trigger-N).
    #[arg(long)]
    name: Option<String>,
    /// The broker (default: the current one).
    #[arg(long)]
    broker: Option<String>,
    /// Retries after a failed delivery (default: until delivered).
    #[arg(long)]
    retry: Option<u32>,
    /// The first retry's delay, as an ISO 8601 duration (default PT0.2S).
    #[arg(long = "backoff-delay", value_name = "DURATION")]
    backoff_delay: Option<String>,
    /// How the delay grows between retries.
    #[arg(long = "backoff-policy", value_parser = ["exponential", "linear"])]
    backoff_policy: Option<String>,
    /// Where events go that the target refuses (a 4xx other than 404, 409,
    /// 429) or that exhaust --retry.
    #[arg(long = "dead-letter-url", value_name = "URL")]
    dead_letter_url: Option<String>,
}

pub async fn create(home: &Home, args: TriggerArgs) -> Result<()> {
    let dir = home.broker(args.broker.as_deref())?;
    let broker = dir.name.clone();
    let mut manifest = Manifest::load(&dir.manifest())?;
    let name = match &args.name {
        Some(n) => {
            check_name("trigger", n)?;
            if manifest.get(TRIGGER_KIND, n).is_some() {
                bail!("trigger {n} already exists in broker {broker}");
            }
            n.clone()
        }
        None => (1..)
            .map(|i| format!("{broker}-trigger-{i}"))
            .find(|n| manifest.get(TRIGGER_KIND, n).is_none())
            .context("no free trigger name")?,
    };
    let filters = filters(&manifest, &args)?;
    let mut spec = json!({
        "broker": {"group": "eventing.triggermesh.io", "kind": "RedisBroker", "name": broker},
        "target": {"uri": args.target},
    });
    if !filters.is_empty() {
        spec["filters"] = serde_json::to_value(&filters)?;
    }
    let mut delivery = serde_json::Map::new();
    if let Some(n) = args.retry {
        delivery.insert("retry".into(), json!(n));
    }
    if let Some(d) = &args.backoff_delay {
        parse_iso8601_duration(d).map_err(|e| anyhow::anyhow!("--backoff-delay: {e}"))?;
        delivery.insert("backoffDelay".into(), json!(d));
    }
    if let Some(p) = &args.backoff_policy {
        delivery.insert("backoffPolicy".into(), json!(p));
    }
    if let Some(url) = &args.dead_letter_url {
        delivery.insert("deadLetterSink".into(), json!({"uri": url}));
    }
    if !delivery.is_empty() {
        spec["delivery"] = Value::Object(delivery);
    }
    manifest.put(json!({
        "apiVersion": TRIGGERMESH_EVENTING,
        "kind": TRIGGER_KIND,
        "metadata": metadata(&name, &broker),
        "spec": spec,
    }));
    // The broker checks the whole configuration (URLs, filters) before the
    // manifest keeps the trigger.
    super::sync_broker_conf(&dir, &manifest)
        .await
        .with_context(|| format!("trigger {name} was not created"))?;
    manifest.save(&dir.manifest())?;
    println!(
        "Created trigger {name} in broker {broker}: events go to {}",
        args.target
    );
    if !filters.is_empty() {
        println!("Filters: {}", serde_json::to_string(&filters)?);
    }
    Ok(())
}

/// The trigger's filters: `--source`, `--eventTypes` and `--filter`, all of
/// which must match.
fn filters(manifest: &Manifest, args: &TriggerArgs) -> Result<Vec<Filter>> {
    let mut filters = Vec::new();
    if let Some(source) = &args.source {
        let Some(object) = manifest.get(SOURCE_KIND, source) else {
            bail!("--source: there is no source {source} in this broker");
        };
        // The adapter's events carry the table's ARN as their `source`.
        let arn = object["spec"]["arn"].as_str().unwrap_or_default();
        filters.push(Filter::Exact(
            [("source".to_owned(), arn.to_owned())].into(),
        ));
    }
    let types: Vec<Filter> = args
        .event_types
        .iter()
        .filter(|t| !t.is_empty())
        .map(|t| Filter::Exact([("type".to_owned(), t.clone())].into()))
        .collect();
    match types.len() {
        0 => {}
        1 => filters.extend(types),
        _ => filters.push(Filter::Any(types)),
    }
    if let Some(json) = &args.filter {
        let value: Value = serde_json::from_str(json).context("--filter is not JSON")?;
        let given: Vec<Filter> = if value.is_array() {
            serde_json::from_value(value)
        } else {
            serde_json::from_value(value).map(|f| vec![f])
        }
        .context("--filter is not a subscription filter (exact, prefix, suffix, all, any, not)")?;
        for f in &given {
            f.validate().map_err(|e| anyhow::anyhow!("--filter: {e}"))?;
        }
        filters.extend(given);
    }
    Ok(filters)
}
