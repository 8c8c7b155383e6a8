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
            "invalid ARN",
        ),
        ("ARN", "arn:aws:s3:::bucket", "invalid ARN"),
        ("K_SINK", "not a url", "K_SINK"),
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
        ("FILTER", "{\"eventName\": [\"INSERT\"]}", "FILTER"),
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
    ];
    for (key, value, needle) in cases {
        let mut env = base.clone();
        set(&mut env, key, value);
        let started = Instant::now();
        let (code, lines) = run_to_exit(env).await;
        assert_eq!(code, 2, "{key}={value}: {lines:?}");
        assert_one_clear_line(&lines, needle);
        assert!(started.elapsed() < Duration::from_secs(5), "at once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_that_is_missing_or_has_no_stream_exits_1() -> anyhow::Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let state = tempfile::tempdir()?;
    let missing = "arn:aws:dynamodb:ddblocal:000000000000:table/no-such-table-here";
    let (code, lines) = run_to_exit(common::env(missing, ddb.endpoint(), None, state.path())).await;
    assert_eq!(code, 1);
    assert_one_clear_line(&lines, "has no stream");

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
    assert_one_clear_line(&lines, "cannot reach DynamoDB Streams");
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
    assert!(!help.contains(SECRET));
}
