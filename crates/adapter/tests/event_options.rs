//! The event options beyond the original, end to end against DynamoDB Local:
//! data formats (checked against the Streams API's own JSON and the
//! formats' schemas), subjects, structured mode, extensions, filters and
//! dead letters.

mod common;

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use awsdynamodb_testkit::{
    AttributeValue, DynamoDbLocal, KeyShape, ReceivedEvent, RecordingSink, StreamViewType,
    TestTable, items,
};
use base64::Engine as _;
use common::{Probe, WAIT, set, spawn_healthy, stop};
use serde_json::{Value, json};

/// The schema of a data format, from the repository's `schemas/`.
fn validator(format: &str) -> Result<jsonschema::Validator> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").context("cargo sets CARGO_MANIFEST_DIR")?;
    let path = format!("{dir}/../../schemas/com.amazon.dynamodb.stream_record.{format}.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| anyhow::anyhow!("{path}: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, event: &ReceivedEvent) -> Result<Value> {
    let data = event.data_json()?;
    let problems: Vec<String> = validator
        .iter_errors(&data)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    ensure!(
        problems.is_empty(),
        "event {}: {problems:?}\n{data}",
        event.id
    );
    Ok(data)
}

/// Every record of the stream as DynamoDB Local's own GetRecords JSON
/// answers give it: the reference the `aws` format must equal.
async fn raw_records(endpoint: &str, stream_arn: &str) -> Result<Vec<Value>> {
    let http = reqwest::Client::new();
    let call = |target: &'static str, body: Value| {
        let http = http.clone();
        async move {
            let resp = http
                .post(endpoint)
                .header("X-Amz-Target", format!("DynamoDBStreams_20120810.{target}"))
                .header("Content-Type", "application/x-amz-json-1.0")
                // DynamoDB Local checks the header's shape, not the signature.
                .header(
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=AKID/20260101/ddblocal/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                )
                .body(body.to_string())
                .send()
                .await?;
            let status = resp.status();
            let text = resp.text().await?;
            ensure!(status.is_success(), "{target}: {status} {text}");
            Ok::<Value, anyhow::Error>(serde_json::from_str(&text)?)
        }
    };
    let described = call("DescribeStream", json!({"StreamArn": stream_arn})).await?;
    let mut records = Vec::new();
    for shard in described["StreamDescription"]["Shards"]
        .as_array()
        .context("shards")?
    {
        let iterator = call(
            "GetShardIterator",
            json!({"StreamArn": stream_arn, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON"}),
        )
        .await?;
        let mut iterator = iterator["ShardIterator"].clone();
        // An open shard's iterator never ends: stop at the first empty page.
        while iterator.is_string() {
            let page = call("GetRecords", json!({"ShardIterator": iterator})).await?;
            let got = page["Records"].as_array().cloned().unwrap_or_default();
            if got.is_empty() {
                break;
            }
            records.extend(got);
            iterator = page["NextShardIterator"].clone();
        }
    }
    Ok(records)
}

/// Numbers as f64, so that `1.7E9` and `1700000000` compare equal (the
/// wire's spelling of a number is not the point of this comparison).
fn normalize(v: Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalize).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalize(v))).collect()),
        other => other,
    }
}

/// Inserts of items with every type, an update, a delete.
async fn workload(table: &TestTable) -> Result<usize> {
    for i in 0..3 {
        table
            .put(items::every_type(table.key(&format!("item-{i}"), Some(i))))
            .await?;
    }
    table
        .update_set(
            table.key("item-1", Some(1)),
            &[("n", AttributeValue::N("0.5".into()))],
        )
        .await?;
    table.delete(table.key("item-2", Some(2))).await?;
    Ok(5)
}

async fn adapter_with(
    table: &TestTable,
    endpoint: &str,
    sink: &RecordingSink,
    settings: &[(&str, &str)],
) -> (awsdynamodb_testkit::AdapterProcess, tempfile::TempDir) {
    let state = tempfile::tempdir().expect("a checkpoint folder");
    let mut env = common::env(table.arn(), endpoint, Some(&sink.url()), state.path());
    for (k, v) in settings {
        set(&mut env, k, v);
    }
    (spawn_healthy(env).await, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_data_is_the_streams_record_plus_its_stream_arn() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table =
        TestTable::create(ddb, KeyShape::HashRange, StreamViewType::NewAndOldImages).await?;
    let sink = RecordingSink::start().await?;
    let (mut adapter, _state) =
        adapter_with(&table, ddb.endpoint(), &sink, &[("DATA_FORMAT", "aws")]).await;
    let n = workload(&table).await?;
    let events = sink.wait_for_count(n, WAIT).await?;
    stop(&mut adapter).await;

    let stream = table.latest_stream_arn().await?.context("a stream")?;
    let raw: BTreeMap<String, Value> = raw_records(ddb.endpoint(), &stream)
        .await?
        .into_iter()
        .map(|r| (r["eventID"].as_str().unwrap_or_default().to_owned(), r))
        .collect();
    ensure!(raw.len() == n, "{} raw records", raw.len());
    let schema = validator("aws")?;
    for event in &events {
        let data = assert_valid(&schema, event)?;
        let mut expected = raw.get(&event.id).context("a raw record")?.clone();
        expected["eventSourceARN"] = json!(stream);
        assert_eq!(normalize(data), normalize(expected), "event {}", event.id);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_data_keeps_every_digit_and_keys_subjects_name_the_item() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table =
        TestTable::create(ddb, KeyShape::HashRange, StreamViewType::NewAndOldImages).await?;
    let sink = RecordingSink::start().await?;
    let (mut adapter, _state) = adapter_with(
        &table,
        ddb.endpoint(),
        &sink,
        &[("DATA_FORMAT", "plain"), ("SUBJECT", "keys")],
    )
    .await;
    let n = workload(&table).await?;
    let mut odd = table.key("a=b,c%d", Some(-7));
    odd.insert("tiny".into(), AttributeValue::N("1E-130".into()));
    table.put(odd).await?;
    let events = sink.wait_for_count(n + 1, WAIT).await?;
    stop(&mut adapter).await;

    let schema = validator("plain")?;
    for event in &events {
        let data = assert_valid(&schema, event)?;
        assert_eq!(data["table"], table.name());
        let text = std::str::from_utf8(&event.data)?;
        let key = &data["keys"];
        let expected_subject = format!(
            "pk={},sk={}",
            key["pk"]
                .as_str()
                .unwrap_or_default()
                .replace('%', "%25")
                .replace(',', "%2C")
                .replace('=', "%3D"),
            key["sk"]
        );
        assert_eq!(event.subject.as_deref(), Some(expected_subject.as_str()));
        if data["operation"] == "INSERT" && key["pk"] != "a=b,c%d" {
            // DynamoDB's digits, as JSON numbers, unrounded.
            for digits in [
                "\"n\":12345678901234567890123456789012345678",
                "\"n_frac\":-0.000000000000000000000000000000000001",
                "\"ns\":[1,99999999999999999999999999999999999999]",
            ] {
                assert!(text.contains(digits), "{digits} not in {text}");
            }
            assert_eq!(data["newImage"]["b"], "AAEC/v8=");
            assert_eq!(data["newImage"]["null"], Value::Null);
            assert_eq!(data["newImage"]["ss"], json!(["a", "b"]));
            assert_eq!(data["oldImage"], Value::Null);
        }
    }
    // The tiny number: exactly the digits DynamoDB's own JSON gives.
    let odd = events
        .iter()
        .find(|e| e.subject.as_deref() == Some("pk=a%3Db%2Cc%25d,sk=-7"))
        .context("the item with separators in its key")?;
    let stream = table.latest_stream_arn().await?.context("a stream")?;
    let raw = raw_records(ddb.endpoint(), &stream).await?;
    let tiny = raw
        .iter()
        .find(|r| r["eventID"] == odd.id.as_str())
        .and_then(|r| r["dynamodb"]["NewImage"]["tiny"]["N"].as_str())
        .context("the raw record's N")?;
    let text = std::str::from_utf8(&odd.data)?;
    assert!(
        text.contains(&format!("\"tiny\":{tiny}")),
        "{tiny} in {text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_mode_with_every_extension_and_a_dataschema() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    let sink = RecordingSink::start().await?;
    let (mut adapter, _state) = adapter_with(
        &table,
        ddb.endpoint(),
        &sink,
        &[
            ("CE_MODE", "structured"),
            (
                "EXTENSIONS",
                "dynamodbtable,dynamodbshard,sequence,streamviewtype",
            ),
            ("DATASCHEMA_BASE", "https://schemas.example/dynamodb/"),
        ],
    )
    .await;
    for i in 0..3 {
        table
            .put(items::with_value(items::key(&format!("k{i}")), i))
            .await?;
    }
    let events = sink.wait_for_count(3, WAIT).await?;
    stop(&mut adapter).await;

    let schema = validator("triggermesh")?;
    let mut sequences: Vec<(String, u128)> = Vec::new();
    for event in &events {
        assert!(event.structured, "structured mode");
        assert_eq!(event.datacontenttype.as_deref(), Some("application/json"));
        let data = assert_valid(&schema, event)?;
        let ext = &event.extensions;
        assert_eq!(
            ext.get("dataschema").map(String::as_str),
            Some(
                "https://schemas.example/dynamodb/com.amazon.dynamodb.stream_record.triggermesh.json"
            )
        );
        assert_eq!(
            ext.get("dynamodbtable").map(String::as_str),
            Some(table.name())
        );
        assert!(
            ext.get("dynamodbshard")
                .is_some_and(|s| s.starts_with("shardId-"))
        );
        assert_eq!(
            ext.get("streamviewtype").map(String::as_str),
            Some("NEW_IMAGE")
        );
        let sequence = ext.get("sequence").context("sequence")?;
        let record_sequence = data["Dynamodb"]["SequenceNumber"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(sequence.len(), 40);
        assert_eq!(
            sequence.trim_start_matches('0'),
            record_sequence.trim_start_matches('0')
        );
        sequences.push((sequence.clone(), record_sequence.parse()?));
    }
    // Text order of the padded values is the numbers' order.
    sequences.sort();
    assert!(
        sequences.windows(2).all(|w| w[0].1 < w[1].1),
        "{sequences:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_pass_exactly_the_matching_records_and_the_rest_are_done() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewAndOldImages).await?;
    let sink = RecordingSink::start().await?;
    let filter = json!([
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["active"]}}}},
        {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"v": {"N": [{"numeric": [">=", 10, "<", 20]}]}}},
         "userIdentity": [{"exists": false}]},
    ]);
    let state = tempfile::tempdir()?;
    let mut env = common::env(table.arn(), ddb.endpoint(), Some(&sink.url()), state.path());
    set(&mut env, "FILTER", &filter.to_string());
    set(&mut env, "DATA_FORMAT", "aws");
    let probe = Probe::new(&env);
    let mut adapter = spawn_healthy(env).await;
    let status = |s: &str| AttributeValue::S(s.into());
    let mut expected = Vec::new();
    for (i, state) in ["active", "inactive", "active", "ACTIVE"]
        .iter()
        .enumerate()
    {
        let key = format!("i{i}");
        let mut item = items::key(&key);
        item.insert("status".into(), status(state));
        table.put(item).await?;
        if *state == "active" {
            expected.push(format!("INSERT {key}"));
        }
    }
    for (v, passes) in [(9, false), (10, true), (15, true), (20, false)] {
        table
            .update_set(items::key("i0"), &[("v", AttributeValue::N(v.to_string()))])
            .await?;
        if passes {
            expected.push("MODIFY i0".to_owned());
        }
    }
    table.delete(items::key("i1")).await?;
    // The last record does not pass: the checkpoint must still move over it.
    let mut last = items::key("i9");
    last.insert("status".into(), status("inactive"));
    table.put(last).await?;

    let events = sink.wait_for_count(expected.len(), WAIT).await?;
    // Every record read and done: the filtered ones too. The checkpoint file
    // then holds the last record's sequence number.
    let stream = table.latest_stream_arn().await?.context("a stream")?;
    let raw = raw_records(ddb.endpoint(), &stream).await?;
    let last_sequence = raw
        .last()
        .and_then(|r| r["dynamodb"]["SequenceNumber"].as_str())
        .context("a last record")?
        .to_owned();
    // The last matching event can arrive before the filtered record after it
    // is read: stop only once every record has been read.
    let records = raw.len() as f64;
    probe
        .await_metrics(["awsdynamodbsource_records_read_total"], |[read]| {
            read >= records
        })
        .await?;
    stop(&mut adapter).await;
    let got: Vec<String> = events
        .iter()
        .map(|e| {
            let d = e.data_json()?;
            Ok(format!(
                "{} {}",
                d["eventName"].as_str().unwrap_or("?"),
                d["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap_or("?")
            ))
        })
        .collect::<Result<_>>()?;
    let i0 = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter(|c| c.ends_with(" i0"))
            .cloned()
            .collect()
    };
    assert_eq!(i0(&got), i0(&expected), "one item's changes, in order");
    let (mut got, mut expected) = (got, expected);
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "exactly the matching records");
    let checkpoints = std::fs::read_dir(state.path())?
        .flatten()
        .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        checkpoints.contains(&last_sequence),
        "the checkpoint moved over the filtered records: {checkpoints}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_undeliverable_events_go_to_the_dead_letter_sink() -> Result<()> {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::Hash, StreamViewType::NewImage).await?;
    let sink = RecordingSink::start().await?;
    let dead_letters = RecordingSink::start().await?;
    sink.status_for(
        |e| {
            e.data_json().is_ok_and(|d| {
                d["Dynamodb"]["Keys"]["pk"]["S"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("bad"))
            })
        },
        400,
    );
    sink.set_reject_body("nope: bad item");
    let (mut adapter, _state) = adapter_with(
        &table,
        ddb.endpoint(),
        &sink,
        &[
            ("DEAD_LETTER_SINK", &dead_letters.url()),
            ("MAX_ATTEMPTS", "3"),
            ("MAX_IN_FLIGHT", "1"),
        ],
    )
    .await;
    let key = |e: &ReceivedEvent| -> String {
        e.data_json()
            .ok()
            .and_then(|d| d["Dynamodb"]["Keys"]["pk"]["S"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    for k in ["good-0", "bad-0", "good-1", "bad-1", "good-2"] {
        table.put(items::key(k)).await?;
    }
    let letters = dead_letters.wait_for_count(2, WAIT).await?;
    let delivered = sink.wait_for_count(3, WAIT).await?;
    assert_eq!(
        delivered.iter().map(key).collect::<Vec<_>>(),
        ["good-0", "good-1", "good-2"],
        "the stream goes on past refused events"
    );
    assert_eq!(
        letters.iter().map(key).collect::<Vec<_>>(),
        ["bad-0", "bad-1"]
    );
    let refused = sink.rejected();
    for letter in &letters {
        let original = refused
            .iter()
            .find(|r| r.id == letter.id)
            .context("refused")?;
        assert_eq!(letter.data, original.data, "the event unchanged");
        assert_eq!(letter.ty, original.ty);
        let ext = &letter.extensions;
        assert_eq!(ext["knativeerrorcode"], "400");
        assert_eq!(
            base64::engine::general_purpose::STANDARD.decode(&ext["knativeerrordata"])?,
            b"nope: bad item"
        );
        assert_eq!(ext["knativeerrordest"], sink.url());
        assert_eq!(ext["deadletterreason"], "rejected");
        assert_eq!(ext["deliveryattempts"], "1");
        assert!(ext["dynamodbshard"].starts_with("shardId-"));
        assert_eq!(ext["sequence"].len(), 40);
    }

    // A sink that is down: MAX_ATTEMPTS attempts, then the dead letter.
    sink.set_down(true).await?;
    table.put(items::key("late-0")).await?;
    let letters = dead_letters
        .wait_for(|l| l.iter().any(|e| key(e) == "late-0"), WAIT)
        .await?;
    let late = letters
        .iter()
        .find(|e| key(e) == "late-0")
        .context("late-0")?;
    assert_eq!(late.extensions["deadletterreason"], "attempts-exhausted");
    assert_eq!(late.extensions["deliveryattempts"], "3");
    assert!(!late.extensions.contains_key("knativeerrorcode"));
    sink.set_down(false).await?;
    table.put(items::key("good-3")).await?;
    sink.wait_for(|e| e.iter().any(|e| key(e) == "good-3"), WAIT)
        .await?;
    stop(&mut adapter).await;
    Ok(())
}
