//! tmctl end to end, in a temporary HOME: a real broker process, real
//! adapters reading DynamoDB Local, real HTTP targets on loopback.
//!
//! tmctl finds `memory-broker` and `awsdynamodbsource-adapter` beside its
//! own executable, so these tests need the workspace's binaries built:
//! `cargo test --workspace` does that.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use awsdynamodb_testkit::{
    DynamoDbLocal, KeyShape, RecordingSink, StreamViewType, TestTable, free_port, items,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

const KEY_ID: &str = "AKIDTMCTLTEST";
const SECRET_KEY: &str = "wJalrXUtnFEMI-tmctl-SECRET";
/// Bound on any one tmctl command (stop may wait for a drain).
const COMMAND: Duration = Duration::from_secs(120);
/// Bound on events arriving.
const ARRIVAL: Duration = Duration::from_secs(60);

/// tmctl with its own HOME.
struct Tmctl {
    home: tempfile::TempDir,
    bin: PathBuf,
    endpoint: String,
}

impl Tmctl {
    fn new(endpoint: &str) -> Result<Tmctl> {
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_tmctl"));
        let dir = bin.parent().context("tmctl has a folder")?;
        for program in ["memory-broker", "awsdynamodbsource-adapter"] {
            ensure!(
                dir.join(program).is_file(),
                "{program} is not built beside tmctl in {}: run `cargo build --workspace` (or `cargo test --workspace`)",
                dir.display()
            );
        }
        Ok(Tmctl {
            home: tempfile::tempdir()?,
            bin,
            endpoint: endpoint.to_owned(),
        })
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Result<Output> {
        let out = tokio::time::timeout(COMMAND, self.command(args).output())
            .await
            .with_context(|| format!("tmctl {args:?} did not finish within {COMMAND:?}"))??;
        Ok(out)
    }

    /// Runs a command that must succeed; its stdout.
    async fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args).await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        ensure!(out.status.success(), "tmctl {args:?} failed: {stderr}");
        Ok(String::from_utf8(out.stdout)?)
    }

    /// Runs a command that must fail; its error, which must be one line
    /// (after the progress lines of a source being waited for, if any).
    async fn fails(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args).await?;
        let stderr = String::from_utf8(out.stderr)?;
        ensure!(!out.status.success(), "tmctl {args:?} succeeded: {stderr}");
        let lines: Vec<&str> = stderr.trim_end().lines().collect();
        let (error, progress) = lines.split_last().context("no error line")?;
        ensure!(
            error.starts_with("error: ") && progress.iter().all(|l| l.starts_with("source ")),
            "tmctl {args:?}: expected one error line, got {stderr:?}"
        );
        Ok((*error).to_owned())
    }

    fn broker_dir(&self, broker: &str) -> PathBuf {
        self.home.path().join(".triggermesh/cli").join(broker)
    }

    fn run_state(&self, broker: &str) -> Result<Value> {
        let bytes = std::fs::read(self.broker_dir(broker).join("run.json"))?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

impl Drop for Tmctl {
    /// Stops what the test started, even when it failed half-way.
    fn drop(&mut self) {
        let root = self.home.path().join(".triggermesh/cli");
        let Ok(entries) = std::fs::read_dir(&root) else {
            return;
        };
        for entry in entries.flatten().filter(|e| e.path().is_dir()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let _ = std::process::Command::new(&self.bin)
                .args(["stop", &name])
                .env("HOME", self.home.path())
                .output();
        }
    }
}

/// The pids in run.json that still run.
fn live_pids(state: &Value) -> Vec<u64> {
    let mut pids: Vec<u64> = state["sources"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|s| s["pid"].as_u64())
        .collect();
    pids.extend(state["broker"]["pid"].as_u64());
    pids.into_iter().filter(|pid| runs(*pid)).collect()
}

/// True while `pid` runs (not gone, not a zombie: a parent that never reaps
/// keeps the dead in /proc).
fn runs(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        !matches!(state, Some("Z") | Some("X") | None)
    })
}

fn seed_command(arn: &str) -> Vec<&str> {
    vec![
        "create",
        "source",
        "awsdynamodb",
        "--arn",
        arn,
        "--auth.credentials.accessKeyID",
        KEY_ID,
        "--auth.credentials.secretAccessKey",
        SECRET_KEY,
    ]
}

/// `tmctl watch` as a child: its stdout, line by line.
struct Watch {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Watch {
    async fn start(tmctl: &Tmctl) -> Result<Watch> {
        let mut child = tmctl
            .command(&["watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        // watch says so on stderr once the broker streams to it.
        let mut err_lines = BufReader::new(stderr).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), err_lines.next_line())
            .await
            .context("watch did not connect")??
            .context("watch ended before connecting")?;
        ensure!(first.starts_with("Watching broker"), "watch said {first:?}");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut out = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = out.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Watch { child, lines })
    }

    /// Reads lines until every one of `ids` was printed as an event id;
    /// returns all lines read.
    async fn until_ids(&mut self, ids: &BTreeSet<String>) -> Result<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut lines = Vec::new();
        let deadline = tokio::time::Instant::now() + ARRIVAL;
        while !ids.is_subset(&seen) {
            let line = match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => bail!("watch ended; it printed:\n{}", lines.join("\n")),
                Err(_) => bail!(
                    "watch did not print every id; it printed:\n{}",
                    lines.join("\n")
                ),
            };
            if let Some(id) = line.trim().strip_prefix("id: ") {
                seen.insert(id.to_owned());
            }
            lines.push(line);
        }
        Ok(lines)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_command_creates_a_source_whose_events_reach_a_trigger_and_watch() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
    let target = RecordingSink::start().await?;
    let tmctl = Tmctl::new(ddb.endpoint())?;

    let created = tmctl.ok(&["create", "broker", "foo"]).await?;
    assert!(created.contains("Created broker foo"), "{created}");
    let created = tmctl.ok(&seed_command(table.arn())).await?;
    assert!(
        created.contains("foo-awsdynamodbsource")
            && created.contains("com.amazon.dynamodb.stream_record"),
        "{created}"
    );
    let created = tmctl
        .ok(&[
            "create",
            "trigger",
            "--target",
            &target.url(),
            "--source",
            "foo-awsdynamodbsource",
            "--eventTypes",
            "com.amazon.dynamodb.stream_record",
        ])
        .await?;
    assert!(created.contains("foo-trigger-1"), "{created}");
    let mut watch = Watch::start(&tmctl).await?;

    let keys: Vec<String> = (0..5).map(|i| format!("item-{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        table
            .put(items::with_value(items::key(k), i as i64))
            .await?;
    }
    table.delete(items::key(&keys[0])).await?;

    let events = target.wait_for_count(keys.len() + 1, ARRIVAL).await?;
    let subjects: Vec<&str> = events
        .iter()
        .map(|e| e.subject.as_deref().unwrap_or(""))
        .collect();
    assert!(subjects.iter().all(|s| *s == "pk"), "{subjects:?}");
    // Every change once; in order per item (items are delivered in parallel,
    // so only one item's changes have an order to keep).
    let changes: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            let d = e.data_json()?;
            let key = d["Dynamodb"]["Keys"]["pk"]["S"]
                .as_str()
                .unwrap_or("?")
                .to_owned();
            Ok((key, d["EventName"].as_str().unwrap_or("?").to_owned()))
        })
        .collect::<Result<_>>()?;
    let mut sorted_keys: Vec<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
    sorted_keys.sort();
    let mut expected: Vec<&str> = keys.iter().map(String::as_str).collect();
    expected.push(&keys[0]);
    expected.sort();
    assert_eq!(sorted_keys, expected);
    let first: Vec<&str> = changes
        .iter()
        .filter(|(k, _)| *k == keys[0])
        .map(|(_, op)| op.as_str())
        .collect();
    assert_eq!(first, ["INSERT", "REMOVE"]);
    for e in &events {
        assert_eq!(e.ty, "com.amazon.dynamodb.stream_record");
        assert_eq!(e.source, table.arn());
    }

    // watch printed every one of them.
    let ids: BTreeSet<String> = events.iter().map(|e| e.id.clone()).collect();
    let printed = watch.until_ids(&ids).await?.join("\n");
    assert!(
        printed.contains("Context Attributes,") && printed.contains("Data,"),
        "{printed}"
    );
    assert!(
        printed.contains("\"Keys\": {"),
        "data is pretty-printed:\n{printed}"
    );
    watch.child.kill().await?;

    // describe: broker, trigger and source status; never a credential. The
    // broker counts a delivery once the target's answer is in: ask until it has.
    let delivered = format!("delivered {}", events.len());
    let deadline = tokio::time::Instant::now() + ARRIVAL;
    let described = loop {
        let described = tmctl.ok(&["describe"]).await?;
        if described.contains(&delivered) || tokio::time::Instant::now() > deadline {
            break described;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for expected in [
        "Broker foo: running at http://127.0.0.1:",
        "foo-trigger-1 → ",
        "foo-awsdynamodbsource (AWSDynamoDBSource)",
        "status: capturing",
        "secret foo-awsdynamodbsource-secret",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} not in:\n{described}"
        );
    }
    assert!(described.contains(&delivered), "{described}");
    assert!(
        !described.contains(KEY_ID) && !described.contains(SECRET_KEY),
        "{described}"
    );

    // The manifest keeps the credentials only in its Secret, base64, private.
    let manifest = tmctl.broker_dir("foo").join("manifest.yaml");
    let text = std::fs::read_to_string(&manifest)?;
    assert!(!text.contains(SECRET_KEY), "{text}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&manifest)?.permissions().mode() & 0o777,
        0o600
    );

    // dump: objects the CRD accepts; the Secret carries the credentials.
    let dumped = tmctl.ok(&["dump", "-p", "kubernetes"]).await?;
    let objects: Vec<Value> = serde_saphyr::from_multiple(&dumped)?;
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["RedisBroker", "Secret", "AWSDynamoDBSource", "Trigger"],
        "{dumped}"
    );
    for o in &objects {
        assert!(
            o["apiVersion"].is_string() && o["metadata"]["name"].is_string(),
            "{o}"
        );
    }
    let source = &objects[2];
    awsdynamodbsource_api::validate(source).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(source["spec"]["arn"], table.arn());
    assert_eq!(source["spec"]["sink"]["ref"]["kind"], "RedisBroker");
    // The endpoint it was created against, as the adapter's override: the
    // dump reproduces what runs.
    assert_eq!(
        source["spec"]["adapterOverrides"]["env"],
        json!([{"name": "AWS_ENDPOINT_URL", "value": ddb.endpoint()}]),
        "{dumped}"
    );
    assert_eq!(
        source["spec"]["auth"]["credentials"]["secretAccessKey"]["valueFromSecret"]["name"],
        "foo-awsdynamodbsource-secret"
    );
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD.decode(
        objects[1]["data"]["secretAccessKey"]
            .as_str()
            .unwrap_or_default(),
    )?;
    assert_eq!(decoded, SECRET_KEY.as_bytes());
    let json = tmctl
        .ok(&["dump", "-p", "knative", "-o", "json", "--no-secrets"])
        .await?;
    let list: Value = serde_json::from_str(&json)?;
    let kinds: Vec<&str> = list["items"]
        .as_array()
        .context("a List")?
        .iter()
        .filter_map(|o| o["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["Broker", "AWSDynamoDBSource", "Trigger"], "{json}");
    awsdynamodbsource_api::validate(&list["items"][1]).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(!json.contains(&base64::engine::general_purpose::STANDARD.encode(SECRET_KEY)));

    // delete: the trigger, then the source (its adapter stops, its Secret
    // goes), then the broker (its folder goes).
    let pids = live_pids(&tmctl.run_state("foo")?);
    assert_eq!(pids.len(), 2, "the broker and the adapter run");
    tmctl.ok(&["delete", "trigger", "foo-trigger-1"]).await?;
    tmctl
        .ok(&["delete", "source", "foo-awsdynamodbsource"])
        .await?;
    let described = tmctl.ok(&["describe"]).await?;
    assert!(
        described.contains("Triggers:\n  none") && described.contains("Sources:\n  none"),
        "{described}"
    );
    let dumped = tmctl.ok(&["dump"]).await?;
    let objects: Vec<Value> = serde_saphyr::from_multiple(&dumped)?;
    assert_eq!(objects.len(), 1, "only the broker is left:\n{dumped}");
    assert_eq!(live_pids(&tmctl.run_state("foo")?).len(), 1);
    tmctl.ok(&["delete", "broker", "foo"]).await?;
    assert!(!tmctl.broker_dir("foo").exists());
    for pid in pids {
        assert!(!runs(pid), "{pid} still runs");
    }
    let e = tmctl.fails(&["describe"]).await?;
    assert!(e.contains("no broker"), "{e}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_start_while_changes_are_written_lose_nothing() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    let target = RecordingSink::start().await?;
    let tmctl = Tmctl::new(ddb.endpoint())?;
    tmctl.ok(&["create", "broker", "b"]).await?;
    tmctl.ok(&seed_command(table.arn())).await?;
    tmctl
        .ok(&["create", "trigger", "--target", &target.url()])
        .await?;

    // Writes go on through stop and start: some while the adapter and the
    // broker stop, 100 while nothing runs, more while they start again.
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
    let (idle_writes_tx, idle_writes_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let table = table.clone();
        tokio::spawn(async move {
            let mut written = Vec::new();
            let mut put = async |i: i64| {
                let key = format!("k{i:04}");
                table.put(items::with_value(items::key(&key), i)).await?;
                written.push(key);
                anyhow::Ok(())
            };
            for i in 0..200 {
                put(i).await?;
            }
            stopped_rx.await?;
            for i in 200..300 {
                put(i).await?;
            }
            let _ = idle_writes_tx.send(());
            for i in 300..400 {
                put(i).await?;
            }
            anyhow::Ok(written)
        })
    };
    target.wait_for_count(20, ARRIVAL).await?;
    let stopped = tmctl.ok(&["stop"]).await?;
    assert!(
        stopped.contains("Stopped broker b and 1 source"),
        "{stopped}"
    );
    assert!(live_pids(&tmctl.run_state("b")?).is_empty());
    let _ = stopped_tx.send(());
    idle_writes_rx.await?;
    let started = tmctl.ok(&["start"]).await?;
    assert!(
        started.contains("b-awsdynamodbsource capturing"),
        "{started}"
    );
    let written = writer.await??;
    assert_eq!(written.len(), 400);

    let events = target
        .wait_for(
            |events| {
                let got: BTreeSet<String> = events
                    .iter()
                    .filter_map(|e| e.data_json().ok())
                    .filter_map(|d| d["Dynamodb"]["Keys"]["pk"]["S"].as_str().map(str::to_owned))
                    .collect();
                written.iter().all(|k| got.contains(k))
            },
            ARRIVAL,
        )
        .await?;
    assert!(events.len() >= written.len());

    // `start --restart` restarts and still captures.
    tmctl.ok(&["start", "--restart"]).await?;
    table
        .put(items::with_value(items::key("after-restart"), 1))
        .await?;
    target
        .wait_for(
            |events| {
                events.iter().any(|e| {
                    e.data_json()
                        .is_ok_and(|d| d["Dynamodb"]["Keys"]["pk"]["S"] == "after-restart")
                })
            },
            ARRIVAL,
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_one_clear_line_and_a_failure() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;

    // No broker yet.
    let tmctl = Tmctl::new(ddb.endpoint())?;
    let e = tmctl.fails(&seed_command(table.arn())).await?;
    assert!(
        e.contains("no broker") && e.contains("tmctl create broker"),
        "{e}"
    );
    let mut named = seed_command(table.arn());
    named.extend(["--broker", "nope"]);
    let e = tmctl.fails(&named).await?;
    assert!(e.contains("broker nope does not exist"), "{e}");

    tmctl.ok(&["create", "broker", "b"]).await?;
    // A bad ARN: the CRD schema's message.
    let e = tmctl
        .fails(&seed_command(
            "arn:aws:dynamodb:us-west-2:123456789012:stream/x",
        ))
        .await?;
    assert!(
        e.contains("spec.arn") && e.contains("is not a table ARN"),
        "{e}"
    );
    assert!(!e.contains(SECRET_KEY));
    // Another kind.
    let e = tmctl
        .fails(&["create", "source", "awss3", "--arn", "x"])
        .await?;
    assert!(e.contains("not supported"), "{e}");
    // Replicas share a stream in Kubernetes; tmctl runs one adapter.
    let mut replicated = seed_command(table.arn());
    replicated.extend(["--replicas", "3"]);
    let e = tmctl.fails(&replicated).await?;
    assert!(
        e.contains("one adapter per source") && e.contains("replicas"),
        "{e}"
    );

    // A starting position outside the rule: the rule, not a regular expression.
    let mut early = seed_command(table.arn());
    early.extend(["--startingPosition", "EARLIEST"]);
    let e = tmctl.fails(&early).await?;
    assert!(
        e.contains("\"EARLIEST\" is not LATEST, TRIM_HORIZON (in any case) or an RFC 3339 time")
            && !e.contains("^("),
        "{e}"
    );

    // An endpoint where nothing listens: the adapter's own last words, which
    // name the endpoint and the cause, once it gives up (at --wait).
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let unreachable = Tmctl::new(&nowhere)?;
    unreachable.ok(&["create", "broker", "b"]).await?;
    let mut waiting = seed_command(table.arn());
    waiting.extend(["--wait", "3"]);
    let e = unreachable.fails(&waiting).await?;
    assert!(
        e.contains("was not created")
            && e.contains(&format!("cannot reach DynamoDB Streams at {nowhere} (AWS_ENDPOINT_URL) within STARTUP_TIMEOUT (3s)"))
            && e.contains("Connection refused")
            && !e.contains("retrying"),
        "{e}"
    );
    assert!(!e.contains(SECRET_KEY) && !e.contains(KEY_ID), "{e}");
    let described = unreachable.ok(&["describe"]).await?;
    assert!(described.contains("Sources:\n  none"), "{described}");
    let state = unreachable.run_state("b")?;
    assert!(
        state["sources"].as_object().is_none_or(|s| s.is_empty()),
        "{state}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapters_event_options_are_flags() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    let target = RecordingSink::start().await?;
    let tmctl = Tmctl::new(ddb.endpoint())?;
    tmctl.ok(&["create", "broker", "opts"]).await?;
    let mut create = seed_command(table.arn());
    create.extend([
        "--dataFormat",
        "plain",
        "--subject",
        "keys",
        "--extensions",
        "sequence,dynamodbtable",
        "--filters",
        r#"[{"dynamodb": {"NewImage": {"v": {"N": [{"numeric": [">", 1]}]}}}}]"#,
    ]);
    tmctl.ok(&create).await?;
    tmctl
        .ok(&["create", "trigger", "--target", &target.url()])
        .await?;
    for (k, v) in [("one", 1), ("two", 2), ("zero", 0), ("three", 3)] {
        table.put(items::with_value(items::key(k), v)).await?;
    }
    let events = target.wait_for_count(2, ARRIVAL).await?;
    let mut subjects: Vec<&str> = events.iter().filter_map(|e| e.subject.as_deref()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["pk=three", "pk=two"],
        "the filter passed only v > 1"
    );
    let event = events
        .iter()
        .find(|e| e.subject.as_deref() == Some("pk=two"))
        .context("two")?;
    let data = event.data_json()?;
    assert_eq!(data["newImage"]["v"], 2, "plain data: {data}");
    assert_eq!(
        event.extensions.get("dynamodbtable").map(String::as_str),
        Some(table.name())
    );
    assert_eq!(event.extensions.get("sequence").map(String::len), Some(40));

    let dumped = tmctl.ok(&["dump"]).await?;
    let objects: Vec<Value> = serde_saphyr::from_multiple(&dumped)?;
    let source = objects
        .iter()
        .find(|o| o["kind"] == "AWSDynamoDBSource")
        .context("the source")?;
    awsdynamodbsource_api::validate(source).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(source["spec"]["dataFormat"], "plain");
    assert_eq!(
        source["spec"]["extensions"],
        serde_json::json!(["sequence", "dynamodbtable"])
    );

    // A value the CRD does not allow: the schema's message, nothing created.
    let mut bad = seed_command(table.arn());
    bad.extend(["--name", "bad", "--dataFormat", "xml"]);
    let e = tmctl.fails(&bad).await?;
    assert!(e.contains("spec.dataFormat"), "{e}");
    Ok(())
}
