//! A source's adapter: its environment from the manifest, its process
//! started and waited for until `/health` says it captures, and its
//! complaints read from its log.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use awsdynamodbsource_api::AWSDynamoDBSource;
use awsdynamodbsource_api::adapter::{EnvValue, spec_env};
use awsdynamodbsource_api::vars;
use serde_json::Value;

use super::{RunState, answers, broker_url, http};
use crate::home::BrokerDir;
use crate::manifest::Manifest;
use crate::process;

pub const ADAPTER_PROGRAM: &str = "awsdynamodbsource-adapter";

/// How long an adapter may take to finish its deliveries when stopped
/// (its own SHUTDOWN_TIMEOUT is 20 s).
pub const ADAPTER_GRACE: Duration = Duration::from_secs(30);

/// The source object of this name in the manifest, typed.
pub fn source(manifest: &Manifest, name: &str) -> Result<AWSDynamoDBSource> {
    let object = manifest
        .get(crate::manifest::SOURCE_KIND, name)
        .with_context(|| format!("source {name} does not exist"))?;
    serde_json::from_value(object.clone())
        .with_context(|| format!("source {name} in the manifest is not valid"))
}

/// The adapter's environment: the spec's settings (secrets resolved from
/// the manifest), then local ones, then `adapterOverrides.env`.
pub fn adapter_env(
    dir: &BrokerDir,
    manifest: &Manifest,
    source: &AWSDynamoDBSource,
    sink: &str,
    health_port: u16,
    endpoint: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let name = source.metadata.name.clone().unwrap_or_default();
    if source.spec.replicas() > 1 {
        bail!(
            "source {name}: tmctl runs one adapter per source: replicas above 1 share the stream through Kubernetes Leases (or adapters started with COORDINATION=dynamodb:<table>)"
        );
    }
    let resolve = |value: EnvValue| -> Result<String> {
        match value {
            EnvValue::Literal(v) => Ok(v),
            EnvValue::Secret(s) => manifest.secret_value(&s.name, &s.key),
        }
    };
    let mut env = Vec::new();
    for (var, value) in spec_env(&source.spec) {
        env.push((var.to_owned(), resolve(value)?));
    }
    let checkpoints = dir.checkpoints(&name);
    env.extend([
        (vars::K_SINK.to_owned(), sink.to_owned()),
        (vars::NAME.to_owned(), name.clone()),
        (
            vars::CHECKPOINT_STORE.to_owned(),
            format!("file:{}", checkpoints.display()),
        ),
        (vars::HEALTH_PORT.to_owned(), health_port.to_string()),
        // One port for both: /metrics is served beside /health.
        (
            vars::METRICS_PROMETHEUS_PORT.to_owned(),
            health_port.to_string(),
        ),
    ]);
    if let Some(endpoint) = endpoint {
        env.push((vars::AWS_ENDPOINT_URL.to_owned(), endpoint.to_owned()));
    }
    if let Some(dead_letter) = source
        .spec
        .delivery
        .as_ref()
        .and_then(|d| d.dead_letter_sink.as_ref())
    {
        let Some(uri) = dead_letter
            .uri
            .as_ref()
            .filter(|_| dead_letter.reference.is_none())
        else {
            bail!(
                "source {name}: tmctl sends dead letters to a URL only: set --delivery.deadLetterSink.uri"
            );
        };
        env.push((vars::DEAD_LETTER_SINK.to_owned(), uri.clone()));
    }
    for var in source
        .spec
        .adapter_overrides
        .iter()
        .flat_map(|o| o.env.iter().flatten())
    {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(from)) => match &from.secret_key_ref {
                Some(r) => manifest.secret_value(&r.name, &r.key)?,
                None => bail!(
                    "source {name}: adapterOverrides.env {} takes its value from something tmctl cannot read locally",
                    var.name
                ),
            },
            (None, None) => String::new(),
        };
        env.retain(|(k, _)| *k != var.name);
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// The sink the adapter sends to: the spec's `sink.uri`, else the broker.
pub fn sink_for(source: &AWSDynamoDBSource, broker_port: u16) -> String {
    source
        .spec
        .sink
        .uri
        .clone()
        .unwrap_or_else(|| broker_url(broker_port))
}

/// Starts the source's adapter and waits, at most `wait`, until its
/// `/health` says it captures; fails with the adapter's own words when it
/// logs an error or exits. Its warnings (an endpoint not answering yet) are
/// shown as they come, as progress. Records it in `state`.
pub async fn start_adapter(
    dir: &BrokerDir,
    manifest: &Manifest,
    name: &str,
    state: &mut RunState,
    broker_port: u16,
    wait: Duration,
) -> Result<()> {
    let source = source(manifest, name)?;
    let binary = process::find_binary(ADAPTER_PROGRAM)?;
    let health_port = process::free_port()?;
    let mut run = state.sources.get(name).cloned().unwrap_or_default();
    let exported = std::env::var(vars::AWS_ENDPOINT_URL)
        .ok()
        .filter(|e| !e.is_empty());
    // A source keeps the endpoint it was created against in its spec; one
    // made by an older tmctl has it in the run state only.
    let kept = source
        .spec
        .adapter_overrides
        .iter()
        .flat_map(|o| o.env.iter().flatten())
        .find(|v| v.name == vars::AWS_ENDPOINT_URL)
        .and_then(|v| v.value.clone());
    match (kept, exported) {
        (Some(kept), Some(exported)) if kept != exported => eprintln!(
            "source {name}: uses the endpoint it was created with, {kept}, not {}={exported} (change adapterOverrides.env to move it)",
            vars::AWS_ENDPOINT_URL
        ),
        (None, Some(exported)) => run.endpoint = Some(exported),
        _ => {}
    }
    let mut env = adapter_env(
        dir,
        manifest,
        &source,
        &sink_for(&source, broker_port),
        health_port,
        run.endpoint.as_deref(),
    )?;
    // The adapter gives up, saying why, when tmctl would: its own
    // STARTUP_TIMEOUT (unless the spec sets one) is this wait.
    if !env.iter().any(|(k, _)| k == vars::STARTUP_TIMEOUT) {
        env.push((
            vars::STARTUP_TIMEOUT.to_owned(),
            format!("{}s", wait.as_secs().max(1)),
        ));
    }
    let mut started = process::spawn(&binary, &[], &env, &dir.log(name))?;
    let pid = started.child.id();
    let client = http();
    let url = format!("http://127.0.0.1:{health_port}/health");
    // A margin past `wait` for the adapter's own last word.
    let deadline = Instant::now() + wait + Duration::from_secs(5);
    let mut shown = 0;
    let mut last_warning = None;
    let failure = loop {
        if let Ok(Some(status)) = started.child.try_wait() {
            // Read after the exit: its last line is in.
            let lines = process::log_lines_since(&started.log, started.log_offset);
            break lines
                .iter()
                .rev()
                .find_map(|l| complaint(l, false))
                .or_else(|| lines.last().cloned())
                .unwrap_or_else(|| format!("the adapter exited ({status})"));
        }
        let lines = process::log_lines_since(&started.log, started.log_offset);
        if let Some(reason) = lines.iter().find_map(|l| complaint(l, false)) {
            break reason;
        }
        for line in &lines[shown.min(lines.len())..] {
            // A warning repeated by each retry is shown once.
            if let Some(warning) = complaint(line, true)
                && last_warning.as_ref() != Some(&warning)
            {
                eprintln!("source {name}: {warning}");
                last_warning = Some(warning);
            }
        }
        shown = lines.len();
        if answers(&client, &url).await {
            run.pid = Some(pid);
            run.health_port = Some(health_port);
            state.sources.insert(name.to_owned(), run);
            return Ok(());
        }
        if Instant::now() > deadline {
            let why = match last_warning {
                Some(warning) => warning,
                None => http_reason(&client, &url).await,
            };
            break format!("not capturing after {} s: {why}", wait.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    process::stop(pid, ADAPTER_PROGRAM, Duration::from_secs(5)).await;
    let _ = started.child.wait();
    Err(anyhow!("{failure} (log: {})", started.log.display()))
}

/// The adapter's `/health` answer when it is not 2xx.
async fn http_reason(client: &reqwest::Client, url: &str) -> String {
    match client.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => "its health endpoint does not answer".to_owned(),
    }
}

/// A log line's complaint, as one line: `msg: error` of a JSON log line at
/// level warn (when `warn_too`), error or fatal, or a plain `error: ...`
/// line (the adapter's bad-configuration message).
pub fn complaint(line: &str, warn_too: bool) -> Option<String> {
    let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(line) else {
        return line
            .strip_prefix("error: ")
            .map(|rest| rest.trim().to_owned());
    };
    let level = entry.get("level").and_then(Value::as_str).unwrap_or("");
    let serious =
        matches!(level, "error" | "fatal" | "panic" | "dpanic") || (warn_too && level == "warn");
    if !serious {
        return None;
    }
    let msg = entry.get("msg").and_then(Value::as_str).unwrap_or(level);
    Some(match entry.get("error").and_then(Value::as_str) {
        Some(error) => format!("{msg}: {error}"),
        None => msg.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complaints_come_from_warnings_and_worse() {
        let warn = r#"{"level":"warn","msg":"DynamoDB Streams not reachable yet; retrying","error":"connection refused"}"#;
        assert_eq!(
            complaint(warn, true).as_deref(),
            Some("DynamoDB Streams not reachable yet; retrying: connection refused")
        );
        assert_eq!(complaint(warn, false), None);
        assert_eq!(
            complaint(r#"{"level":"fatal","msg":"invalid ARN"}"#, false).as_deref(),
            Some("invalid ARN")
        );
        assert_eq!(
            complaint(r#"{"level":"info","msg":"starting"}"#, true),
            None
        );
        assert_eq!(
            complaint("error: invalid value 'x' for '--max-in-flight'", true).as_deref(),
            Some("invalid value 'x' for '--max-in-flight'")
        );
        assert_eq!(complaint("some other text", true), None);
    }
}
