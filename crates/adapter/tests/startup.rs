//! Startup failures: each bad configuration, and each problem found at
//! startup, ends the process at once (or within STARTUP_TIMEOUT) with a
//! non-zero code and one clear line — never a panic.

mod common;

use std::time::{Duration, Instant};

use awsdynamodb_testkit::{
    AdapterProcess, DynamoDbLocal, Fault, FaultProxy, KeyShape, Op, StreamViewType, TestTable,
    free_port,
};
use common::{SECRET, WAIT, set};

/// Runs the adapter to its end; returns (exit code, stderr lines).
async fn run_to_exit(env: Vec<(String, String)>) -> (i32, Vec<String>) {
    let mut adapter = AdapterProcess::spawn(common::BINARY, env).unwrap();
    let status = adapter
        .wait_exit(WAIT)
        .await
        .expect("the adapter exits by itself");
    common::assert_clean_output(&adapter);
    (
        status.code().expect("an exit code, not a signal"),
        adapter.stderr_lines(),
    )
}

/// One JSON line at level fatal whose message contains `needle`.
fn assert_one_clear_line(lines: &[String], needle: &str) {
    let fatal: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("\"level\":\"fatal\""))
        .collect();
    assert_eq!(fatal.len(), 1, "one fatal line: {lines:#?}");
    let log: serde_json::Value = serde_json::from_str(fatal[0]).unwrap();
    let msg = log["msg"].as_str().unwrap();
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    assert!(!msg.contains('\n'));
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("\"level\":\"error\"") && l.contains("panic"))
    );
}

const ARN: &str = "arn:aws:dynamodb:ddblocal:000000000000:table/orders";

#[tokio::test]
async fn bad_configuration_exits_2_at_once_with_one_line() {
    let state = tempfile::tempdir().unwrap();
    let base = common::env(ARN, "http://127.0.0.1:9", None, state.path());
    let cases: &[(&str, &str, &str)] = &[
        ("ARN", "", "ARN is not set"),
        (
            "ARN",
            "arn:aws:dynamodb:us-east-1:123456789012",
            "invalid ARN",
        ),
        (
            "ARN",
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024",
            "it is a stream's ARN; give its table's ARN instead, arn:aws:dynamodb:us-east-1:123456789012:table/orders",
        ),
        ("ARN", "arn:aws:s3:::bucket", "invalid ARN"),
        ("K_SINK", "not a url", "K_SINK"),
        (
            "K_SINK",
            "127.0.0.1:9999",
            "K_SINK \"127.0.0.1:9999\" is not usable: it has no scheme: write http://127.0.0.1:9999",
        ),
        ("K_SINK", "localhost:8080", "write http://localhost:8080"),
        ("K_SINK", "ftp://broker/", "K_SINK"),
        ("K_CE_OVERRIDES", "{\"extensions\":", "K_CE_OVERRIDES"),
        ("STARTING_POSITION", "EARLIEST", "STARTING_POSITION"),
        (
            "STARTING_POSITION",
            "2024-13-01T00:00:00Z",
            "STARTING_POSITION",
        ),
        ("MAX_IN_FLIGHT", "many", "MAX_IN_FLIGHT"),
        ("CHECKPOINT_STORE", "s3://bucket", "CHECKPOINT_STORE"),
        ("DATA_FORMAT", "json", "DATA_FORMAT"),
        ("SUBJECT", "ids", "SUBJECT"),
        ("CE_MODE", "batched", "CE_MODE"),
        ("EXTENSIONS", "sequence,region", "EXTENSIONS"),
        ("DATASCHEMA_BASE", "not a url", "DATASCHEMA_BASE"),
        (
            "FILTER",
            "{\"eventName\": [\"INSERT\"]}",
            "FILTER: must be a JSON array",
        ),
        (
            "FILTER",
            "[{\"eventName\": \"INSERT\"}]",
            "FILTER[0].eventName",
        ),
        (
            "FILTER",
            "[{\"dynamodb\": {\"NewImage\": {\"v\": {\"N\": [{\"numeric\": [\"~\", 3]}]}}}}]",
            "FILTER[0].dynamodb.NewImage.v.N[0]",
        ),
        ("DEAD_LETTER_SINK", "ftp://dlq/", "DEAD_LETTER_SINK"),
        ("MAX_ATTEMPTS", "0", "MAX_ATTEMPTS"),
        ("MAX_RECORD_AGE", "a day", "MAX_RECORD_AGE"),
        // Each number has a floor below which it only costs or breaks.
        (
            "POLL_INTERVAL",
            "0",
            "POLL_INTERVAL \"0\" is below its minimum, 100ms",
        ),
        ("POLL_INTERVAL", "20ms", "below its minimum, 100ms"),
        ("IDLE_POLL_INTERVAL", "0", "below its minimum, 100ms"),
        ("K_SINK_TIMEOUT", "0", "below its minimum, 100ms"),
        ("SINK_CONNECT_TIMEOUT", "1ms", "below its minimum, 100ms"),
        ("STARTUP_TIMEOUT", "0", "below its minimum, 1s"),
        ("UNHEALTHY_AFTER", "10ms", "below its minimum, 1s"),
        ("LEASE_DURATION", "1s", "below its minimum, 2s"),
        ("MAX_RECORD_AGE", "0", "below its minimum, 1s"),
        ("MAX_IN_FLIGHT", "0", "from 1 to 10000"),
        (
            "SNAPSHOT",
            "always",
            "SNAPSHOT \"always\" is not off or initial",
        ),
        ("SNAPSHOT_SEGMENTS", "0", "from 1 to 10000"),
        (
            "SNAPSHOT_READ_UNITS",
            "0",
            "SNAPSHOT_READ_UNITS \"0\" is not a number",
        ),
        ("SNAPSHOT_MARGIN", "500ms", "below its minimum, 1s"),
        ("SINK_MAX_CONNECTIONS", "0", "from 1 to 10000"),
        ("HEALTH_PORT", "0", "from 1 to 65535"),
        ("METRICS_PROMETHEUS_PORT", "70000", "from 1 to 65535"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "",
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
        ),
    ];
    for (key, value, needle) in cases {
        let mut env = base.clone();
        set(&mut env, key, value);
        let started = Instant::now();
        let (code, lines) = run_to_exit(env).await;
        assert_eq!(code, 2, "{key}={value}: {lines:?}");
        assert_one_clear_line(&lines, needle);
        assert!(
            !lines.iter().any(|l| l.contains("FILTER: FILTER")),
            "{lines:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "at once");
    }
}

/// LATEST and TRIM_HORIZON in any case, as the CRD and tmctl take them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_positions_are_taken_in_any_case() {
    let ddb = DynamoDbLocal::shared().await;
    let state = tempfile::tempdir().unwrap();
    let missing = "arn:aws:dynamodb:ddblocal:000000000000:table/no-such-table-here";
    for position in ["latest", "Latest", "trim_horizon", "Trim_Horizon"] {
        let mut env = common::env(missing, ddb.endpoint(), None, state.path());
        set(&mut env, "STARTING_POSITION", position);
        let (code, lines) = run_to_exit(env).await;
        // Past the configuration: the table is what stops it.
        assert_eq!(code, 1, "{position}: {lines:?}");
        assert_one_clear_line(&lines, "has no stream");
    }
}

/// Without any credential source, the adapter says so at once, naming the
/// sources it tried, instead of blaming the endpoint after STARTUP_TIMEOUT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_credentials_exit_1_at_once_naming_what_was_tried() {
    let ddb = DynamoDbLocal::shared().await;
    let state = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut env = common::env(ARN, ddb.endpoint(), None, state.path());
    env.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && k != "AWS_SECRET_ACCESS_KEY");
    // No profile files, and instance metadata that is not there (as on a
    // laptop): a port nobody listens on.
    set(&mut env, "HOME", &home.path().display().to_string());
    set(
        &mut env,
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let started = Instant::now();
    let (code, lines) = run_to_exit(env).await;
    assert_eq!(code, 1, "{lines:?}");
    assert_one_clear_line(&lines, "no AWS credentials: give AWS_ACCESS_KEY_ID");
    assert_one_clear_line(&lines, "tried: Environment: ");
    assert_one_clear_line(
        &lines,
        "Ec2InstanceMetadata: could not communicate with IMDS",
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not at once: {:?}",
        started.elapsed()
    );
    // Nothing but the fatal line and the one saying how it starts.
    assert!(lines.len() <= 2, "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_is_missing_or_has_no_stream_exits_1() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let state = tempfile::tempdir()?;
    let missing = "arn:aws:dynamodb:ddblocal:000000000000:table/no-such-table-here";
    let (code, lines) = run_to_exit(common::env(missing, ddb.endpoint(), None, state.path())).await;
    assert_eq!(code, 1);
    assert_one_clear_line(&lines, "has no stream");
    // A start that failed leaves nothing in the checkpoint folder...
    assert_eq!(std::fs::read_dir(state.path())?.count(), 0);
    // ...and no folder where it made one (the default, under STATE_DIR).
    let mut env = common::env(missing, ddb.endpoint(), None, state.path());
    env.retain(|(k, _)| k != "CHECKPOINT_STORE");
    set(&mut env, "STATE_DIR", &state.path().display().to_string());
    set(&mut env, "NAME", "orders-source");
    let (code, _) = run_to_exit(env).await;
    assert_eq!(code, 1);
    assert_eq!(std::fs::read_dir(state.path())?.count(), 0);

    // A table whose stream is off.
    let name = format!("nostream-{}", std::process::id());
    ddb.dynamodb()
        .create_table()
        .table_name(&name)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()?,
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()?,
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await?;
    let arn = format!("arn:aws:dynamodb:ddblocal:000000000000:table/{name}");
    let (code, lines) = run_to_exit(common::env(&arn, ddb.endpoint(), None, state.path())).await;
    assert_eq!(code, 1);
    assert_one_clear_line(&lines, &format!("table {name} has no stream"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_permissions_exit_1_naming_the_action() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::KeysOnly).await?;
    for op in [
        Op::ListStreams,
        Op::DescribeStream,
        Op::GetShardIterator,
        Op::GetRecords,
    ] {
        let proxy = FaultProxy::start(ddb.endpoint()).await?;
        proxy.fail_ratio(op, 1.0, Fault::AccessDenied);
        let state = tempfile::tempdir()?;
        let (code, lines) = run_to_exit(common::env(
            table.arn(),
            &proxy.endpoint(),
            None,
            state.path(),
        ))
        .await;
        assert_eq!(code, 1, "{op:?}");
        assert_one_clear_line(&lines, "permission denied");
        assert_one_clear_line(&lines, op.target().rsplit('.').next().unwrap());
    }
    Ok(())
}

/// SNAPSHOT=initial is refused before anything is read when it could not
/// run to its end: no new images in the stream, DescribeTable or Scan
/// denied, or replicas sharing the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_cannot_run_is_refused_naming_why() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let keys_only = TestTable::create(ddb, KeyShape::Hash, StreamViewType::KeysOnly).await?;
    let state = tempfile::tempdir()?;
    let mut env = common::env(keys_only.arn(), ddb.endpoint(), None, state.path());
    set(&mut env, "SNAPSHOT", "initial");
    let (code, lines) = run_to_exit(env).await;
    assert_eq!(code, 1);
    assert_one_clear_line(
        &lines,
        "stream view type is KEYS_ONLY: set it to NEW_IMAGE or NEW_AND_OLD_IMAGES",
    );

    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    for (op, action) in [
        (Op::DescribeTable, "dynamodb:DescribeTable"),
        (Op::Scan, "dynamodb:Scan"),
    ] {
        let proxy = FaultProxy::start(ddb.endpoint()).await?;
        proxy.fail_ratio(op, 1.0, Fault::AccessDenied);
        let state = tempfile::tempdir()?;
        let mut env = common::env(table.arn(), &proxy.endpoint(), None, state.path());
        set(&mut env, "SNAPSHOT", "initial");
        let (code, lines) = run_to_exit(env).await;
        assert_eq!(code, 1, "{action}");
        assert_one_clear_line(&lines, &format!("permission denied: {action} on table"));
    }

    let mut env = common::env(table.arn(), ddb.endpoint(), None, state.path());
    set(&mut env, "SNAPSHOT", "initial");
    set(&mut env, "COORDINATION", "dynamodb:leases");
    let (code, lines) = run_to_exit(env).await;
    assert_eq!(code, 2);
    assert_one_clear_line(
        &lines,
        "SNAPSHOT=initial cannot be used with COORDINATION yet",
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_endpoint_exits_1_after_the_startup_timeout() {
    let state = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let mut env = common::env(ARN, &endpoint, None, state.path());
    set(&mut env, "STARTUP_TIMEOUT", "3s");
    let started = Instant::now();
    let (code, lines) = run_to_exit(env).await;
    let took = started.elapsed();
    assert_eq!(code, 1);
    // Where, how long, and why, in the one line.
    assert_one_clear_line(
        &lines,
        &format!(
            "cannot reach DynamoDB Streams at {endpoint} (AWS_ENDPOINT_URL) within STARTUP_TIMEOUT (3s): "
        ),
    );
    assert_one_clear_line(&lines, "Connection refused");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_adapter_on_the_same_checkpoints_is_refused() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::KeysOnly).await?;
    let state = tempfile::tempdir()?;
    let env = common::env(table.arn(), ddb.endpoint(), None, state.path());
    let mut first = common::spawn_healthy(env).await;
    let (code, lines) =
        run_to_exit(common::env(table.arn(), ddb.endpoint(), None, state.path())).await;
    assert_eq!(code, 1);
    assert_one_clear_line(&lines, "in use by another adapter");
    first.terminate()?;
    first.wait_exit(WAIT).await?;
    Ok(())
}

/// A checkpoint file that cannot be read stops the adapter with one line
/// naming the file, never a fresh start (which would send changes again, or
/// skip them); the file is left exactly as it was, for a person to look at,
/// and nothing is written beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_checkpoint_file_exits_1_naming_it_and_stays_as_it_was() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::KeysOnly).await?;
    let corrupt: [&[u8]; 3] = [
        // Cut short, with bytes that are not UTF-8.
        b"{\"streams\": {\"arn\": {\"sha\xff\x00",
        // Valid JSON, but no sequence number.
        br#"{"streams": {"arn": {"shards": {"a": {"after": "12x"}}}}}"#,
        // A position serde repeats in its message, line break included.
        br#"{"streams": {"arn": {"shards": {"a": {"aft\ner": "1"}}}}}"#,
    ];
    for bytes in corrupt {
        let state = tempfile::tempdir()?;
        let file = state.path().join("checkpoints.json");
        std::fs::write(&file, bytes)?;
        let (code, lines) =
            run_to_exit(common::env(table.arn(), ddb.endpoint(), None, state.path())).await;
        assert_eq!(code, 1, "{lines:#?}");
        assert_one_clear_line(&lines, &format!("checkpoint file {}", file.display()));
        assert_one_clear_line(&lines, "unreadable");
        assert_eq!(std::fs::read(&file)?, bytes, "the checkpoint file changed");
        let mut names: Vec<String> = std::fs::read_dir(state.path())?
            .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        names.sort();
        assert_eq!(names, ["checkpoints.json", "lock"]);
    }
    Ok(())
}

#[tokio::test]
async fn help_lists_every_variable_with_its_default_and_never_a_value() {
    let out = tokio::process::Command::new(common::BINARY)
        .arg("--help")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("K_SINK", format!("http://u:{SECRET}@x/"))
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    // Wrapped to the terminal's width: compare with whitespace collapsed.
    let help = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for var in [
        "ARN",
        "K_SINK",
        "K_SINK_TIMEOUT",
        "K_CE_OVERRIDES",
        "NAMESPACE",
        "NAME",
        "STARTING_POSITION",
        "CHECKPOINT_STORE",
        "STATE_DIR",
        "MAX_IN_FLIGHT",
        "POLL_INTERVAL",
        "STARTUP_TIMEOUT",
        "SHUTDOWN_TIMEOUT",
        "HEALTH_PORT",
        "METRICS_PROMETHEUS_PORT",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "AWS_ASSUME_ROLE_ARN",
        "SNAPSHOT",
        "SNAPSHOT_SEGMENTS",
        "SNAPSHOT_READ_UNITS",
        "SNAPSHOT_MARGIN",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "K_LOGGING_CONFIG",
        "DATA_FORMAT",
        "DATASCHEMA_BASE",
        "SUBJECT",
        "CE_MODE",
        "EXTENSIONS",
        "FILTER",
        "DEAD_LETTER_SINK",
        "MAX_ATTEMPTS",
        "MAX_RECORD_AGE",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
    for default in [
        "[default: 64]",
        "[default: 250ms]",
        "[default: 30]",
        "[default: 8080]",
        "[default: 9092]",
        "[default: LATEST]",
        "[default: json]",
        "[default: info]",
    ] {
        assert!(help.contains(default), "{default} missing from --help");
    }
    // The floors of the numbers are said where they are set.
    for floor in [
        "waits up to this long. At least 100ms [env: IDLE_POLL_INTERVAL]",
        "At least 1s [env: STARTUP_TIMEOUT]",
    ] {
        assert!(help.contains(floor), "{floor:?} missing from --help");
    }
    assert!(!help.contains(SECRET));
}

/// The log says, as values a person or a query reads, the settings that
/// decide what happens and where reading resumes; no field is Rust's Debug
/// text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_starting_lines_show_the_settings_as_values() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::KeysOnly).await?;
    let state = tempfile::tempdir()?;
    let env = common::env(table.arn(), ddb.endpoint(), None, state.path());
    let mut adapter = common::spawn_healthy(env).await;
    let field = |lines: &[String], msg: &str, key: &str| -> String {
        lines
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["msg"] == msg)
            .map(|l| l[key].to_string())
            .unwrap_or_else(|| panic!("no {msg:?} line with {key}: {lines:#?}"))
    };
    let lines = adapter
        .wait_for_stderr(|l| l.iter().any(|l| l.contains("reading shard")), WAIT)
        .await?;
    let starting = |key| field(&lines, "starting", key);
    assert_eq!(starting("starting_position"), "\"TRIM_HORIZON\"");
    assert_eq!(starting("poll_interval"), "\"100ms\"");
    assert_eq!(starting("idle_poll_interval"), "\"2s\"");
    assert_eq!(
        starting("checkpoint_store"),
        format!("\"file:{}\"", state.path().display())
    );
    assert_eq!(
        starting("endpoint"),
        format!("\"{} (AWS_ENDPOINT_URL)\"", ddb.endpoint())
    );
    assert_eq!(
        field(&lines, "checkpoints loaded", "resumes"),
        "\"at STARTING_POSITION (first start)\""
    );
    for line in &lines {
        for debug in [
            "Some(",
            "ShardStart",
            "SequenceNumber(",
            "TrimHorizon",
            " { ",
        ] {
            assert!(!line.contains(debug), "Debug text {debug:?} in {line}");
        }
    }
    adapter.terminate()?;
    adapter.wait_exit(WAIT).await?;
    Ok(())
}
