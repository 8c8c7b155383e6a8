//! What the adapter's end-to-end tests share: starting the real binary
//! against DynamoDB Local (optionally through the fault proxy) and into a
//! real HTTP sink, and the checks of what arrived.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::Record;
use awsdynamodb_testkit::{AdapterProcess, ReceivedEvent, RecordingSink, TestTable, free_port};

pub const BINARY: &str = env!("CARGO_BIN_EXE_awsdynamodbsource-adapter");
/// Given to the adapter as its AWS secret key: it must never appear in its output.
pub const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY-SECRET-MARKER";
pub const WAIT: Duration = Duration::from_secs(60);

/// The adapter's environment for a table, an endpoint, and optionally a sink.
pub fn env(
    table_arn: &str,
    endpoint: &str,
    sink: Option<&str>,
    state: &Path,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("ARN", table_arn.to_owned()),
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDTESTADAPTER".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.to_owned()),
        // EKS injects this; the ARN's region must win.
        ("AWS_REGION", "eu-west-3".to_owned()),
        ("STARTING_POSITION", "TRIM_HORIZON".to_owned()),
        ("CHECKPOINT_STORE", format!("file:{}", state.display())),
        ("HEALTH_PORT", free_port().to_string()),
        ("METRICS_PROMETHEUS_PORT", free_port().to_string()),
        ("POLL_INTERVAL", "100ms".to_owned()),
        ("STARTUP_TIMEOUT", "20s".to_owned()),
        ("SHUTDOWN_TIMEOUT", "5s".to_owned()),
        ("LOG_LEVEL", "debug".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(sink) = sink {
        env.push(("K_SINK".into(), sink.into()));
    }
    env
}

pub fn set(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    env.retain(|(k, _)| k != key);
    env.push((key.to_owned(), value.to_owned()));
}

pub async fn spawn_healthy(env: Vec<(String, String)>) -> AdapterProcess {
    let mut adapter = AdapterProcess::spawn(BINARY, env).expect("spawn the adapter");
    adapter
        .wait_healthy(WAIT)
        .await
        .expect("the adapter becomes healthy");
    adapter
}

/// A healthy adapter reading `table` through `endpoint` into `sink`, with
/// its checkpoints in a new folder (kept as long as the returned guard).
pub async fn start_adapter(
    table: &TestTable,
    endpoint: &str,
    sink: &RecordingSink,
) -> (AdapterProcess, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("a checkpoint folder");
    let adapter = spawn_healthy(env(table.arn(), endpoint, Some(&sink.url()), state.path())).await;
    (adapter, state)
}

/// SIGTERM: the adapter must exit 0 with clean output.
pub async fn stop(adapter: &mut AdapterProcess) {
    adapter.terminate().expect("SIGTERM");
    let status = adapter.wait_exit(WAIT).await.expect("the adapter exits");
    assert!(status.success(), "SIGTERM ends with 0, not {status}");
    assert_clean_output(adapter);
}

/// No line the adapter wrote may carry the secret key, and none may be a
/// panic.
pub fn assert_clean_output(adapter: &AdapterProcess) {
    for line in adapter
        .stderr_lines()
        .iter()
        .chain(adapter.stdout_lines().iter())
    {
        assert!(!line.contains(SECRET), "the secret leaked: {line}");
        assert!(!line.contains("panicked"), "a panic: {line}");
    }
}

pub fn event_id(r: &Record) -> String {
    r.event_id().unwrap().to_owned()
}

/// The item a record changes, as a stable string.
pub fn record_item(r: &Record) -> String {
    let mut keys: Vec<String> = r
        .dynamodb()
        .unwrap()
        .keys()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    keys.sort();
    keys.join(",")
}

/// The same for a received event, from its data.
pub fn event_item(e: &ReceivedEvent) -> String {
    let data = e.data_json().expect("JSON data");
    let keys = data["Dynamodb"]["Keys"].as_object().expect("Keys").clone();
    let mut parts: Vec<String> = keys
        .iter()
        .map(|(k, v)| {
            let v = v.as_object().unwrap();
            let (ty, val) = v.iter().find(|(_, x)| !x.is_null()).unwrap();
            format!("{k}={ty}:{val}")
        })
        .collect();
    parts.sort();
    parts.join(",")
}

/// A condition for `wait_for`: every one of `records` has arrived (by event id).
pub fn has_every(records: &[Record]) -> impl Fn(&[ReceivedEvent]) -> bool + use<> {
    let ids: HashSet<String> = records.iter().map(event_id).collect();
    move |events| {
        let got: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
        ids.iter().all(|id| got.contains(id.as_str()))
    }
}

/// Every record arrived, and for each item the first arrival of each of its
/// changes is in stream order. Duplicates (allowed after a crash) are
/// counted and returned.
pub fn assert_all_arrived_in_order(records: &[Record], received: &[ReceivedEvent]) -> usize {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, e) in received.iter().enumerate() {
        first_seen.entry(e.id.as_str()).or_insert(i);
    }
    let missing: Vec<String> = records
        .iter()
        .map(event_id)
        .filter(|id| !first_seen.contains_key(id.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} changes never arrived: {:?}",
        missing.len(),
        records.len(),
        &missing[..missing.len().min(10)]
    );
    let mut per_item: HashMap<String, Vec<usize>> = HashMap::new();
    for r in records {
        // Items are identified by their Keys; the received side is checked
        // against the same records, so the record's own id order suffices.
        per_item
            .entry(record_item(r))
            .or_default()
            .push(first_seen[event_id(r).as_str()]);
    }
    for (item, arrivals) in per_item {
        assert!(
            arrivals.windows(2).all(|w| w[0] < w[1]),
            "changes of {item} arrived out of order: {arrivals:?}"
        );
    }
    let expected: std::collections::HashSet<String> = records.iter().map(event_id).collect();
    let strays: Vec<&str> = received
        .iter()
        .map(|e| e.id.as_str())
        .filter(|id| !expected.contains(*id))
        .collect();
    assert!(
        strays.is_empty(),
        "events that are no change of the table: {strays:?}"
    );
    received.len() - first_seen.len()
}

pub fn record_sequence(r: &Record) -> &str {
    r.dynamodb().unwrap().sequence_number().unwrap()
}

/// `/health` and `/metrics` of an adapter started with `env`. The adapter is
/// an external process: polling with a deadline is the only way to see a
/// condition come about there.
pub struct Probe {
    http: reqwest::Client,
    health: String,
    live: String,
    metrics: String,
}

impl Probe {
    pub fn new(env: &[(String, String)]) -> Self {
        let port = |key: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{key} in the environment"))
        };
        Probe {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(2))
                .build()
                .expect("an HTTP client"),
            health: format!("http://127.0.0.1:{}/health", port("HEALTH_PORT")),
            live: format!("http://127.0.0.1:{}/livez", port("HEALTH_PORT")),
            metrics: format!(
                "http://127.0.0.1:{}/metrics",
                port("METRICS_PROMETHEUS_PORT")
            ),
        }
    }

    /// `/health`'s status and body.
    pub async fn health(&self) -> anyhow::Result<(u16, String)> {
        let resp = self.http.get(&self.health).send().await?;
        let status = resp.status().as_u16();
        Ok((status, resp.text().await?))
    }

    /// `/livez`'s status.
    pub async fn live(&self) -> anyhow::Result<u16> {
        Ok(self.http.get(&self.live).send().await?.status().as_u16())
    }

    /// Polls `/health` until `condition` holds for its status and body;
    /// returns the body.
    pub async fn await_health(
        &self,
        condition: impl Fn(u16, &str) -> bool,
    ) -> anyhow::Result<String> {
        self.poll("/health", || async {
            let (status, body) = self.health().await?;
            Ok((
                condition(status, &body).then(|| body.clone()),
                format!("{status} {body}"),
            ))
        })
        .await
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self.http.get(&self.metrics).send().await?.text().await?)
    }

    /// Polls `/metrics` until `condition` holds for the values of the
    /// samples named (without labels); returns those values.
    pub async fn await_metrics<const N: usize>(
        &self,
        names: [&str; N],
        condition: impl Fn([f64; N]) -> bool,
    ) -> anyhow::Result<[f64; N]> {
        self.poll("/metrics", || async {
            let text = self.metrics().await?;
            let values = names.map(|name| metric(&text, name).unwrap_or(f64::NAN));
            Ok((
                condition(values).then_some(values),
                format!("{names:?} = {values:?}"),
            ))
        })
        .await
    }

    async fn poll<T, F, Fut>(&self, what: &str, mut attempt: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<(Option<T>, String)>>,
    {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let last = match attempt().await {
                Ok((Some(done), _)) => return Ok(done),
                Ok((None, last)) => last,
                Err(e) => e.to_string(),
            };
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{what} never met the condition within {WAIT:?} (last: {last})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The value of the sample `name` (exactly: no labels) in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}
