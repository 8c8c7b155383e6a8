//! The three data formats against the JSON Schemas the project publishes
//! (`schemas/` at the repository's root).
//!
//! The records are the golden inputs (GetRecords answers as the service
//! sends them, decoded by the real SDK: every attribute type, odd numbers,
//! escapes, TTL deletes, missing members) plus a few built by hand. Every
//! record, in every format, must satisfy its schema; each schema must also
//! refuse documents that are wrong in the ways an encoder bug would make
//! them wrong; and the plain format's numbers must be DynamoDB's digits.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::types::{
    AttributeValue, Identity, OperationType, Record, StreamRecord, StreamViewType,
};
use aws_smithy_types::{Blob, DateTime};
use golden_inputs::{golden_dir, inputs, records_from};
use serde_json::Value;
use serde_json::value::RawValue;
use support::schemas::{FORMATS, Format, errors};

mod golden_inputs;
mod support;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.into())
}

/// Records no golden input has: a fractional creation time, a partial
/// identity, deep nesting, every set type inside lists.
fn hand_built() -> Vec<(String, Record)> {
    let nested = AttributeValue::M(HashMap::from([
        (
            "list".to_owned(),
            AttributeValue::L(vec![
                AttributeValue::Ns(vec!["+1".into(), ".5".into(), "1E-130".into()]),
                AttributeValue::Bs(vec![Blob::new(vec![0xc3, 0x28]), Blob::new(vec![])]),
                AttributeValue::Ss(vec!["<&>".into(), "\u{2028}".into()]),
                AttributeValue::M(HashMap::from([(
                    "deep".to_owned(),
                    AttributeValue::Null(true),
                )])),
            ]),
        ),
        ("flag".to_owned(), AttributeValue::Bool(false)),
    ]));
    let full = Record::builder()
        .event_id("f0000000000000000000000000000001")
        .event_name(OperationType::Modify)
        .event_version("1.1")
        .event_source("aws:dynamodb")
        .aws_region("eu-west-1")
        .dynamodb(
            StreamRecord::builder()
                .approximate_creation_date_time(DateTime::from_fractional_secs(1_700_000_000, 0.5))
                .keys("pk", AttributeValue::B(Blob::new(vec![0xff, 0xfe, 0x00])))
                .new_image("pk", AttributeValue::B(Blob::new(vec![0xff, 0xfe, 0x00])))
                .new_image("nested", nested.clone())
                .new_image("n", n("00.00100"))
                .old_image("pk", AttributeValue::B(Blob::new(vec![0xff, 0xfe, 0x00])))
                .old_image("nested", nested)
                .sequence_number("1234567890123456789012345678901234567890")
                .size_bytes(1)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build(),
        )
        .build();
    let ttl_partial_identity = Record::builder()
        .event_id("f0000000000000000000000000000002")
        .event_name(OperationType::Remove)
        .event_version("1.1")
        .event_source("aws:dynamodb")
        .aws_region("eu-west-1")
        .user_identity(Identity::builder().r#type("Service").build())
        .dynamodb(
            StreamRecord::builder()
                .keys("pk", s("x"))
                .sequence_number("100000000000000000002")
                .size_bytes(3)
                .stream_view_type(StreamViewType::KeysOnly)
                .build(),
        )
        .build();
    vec![
        ("hand-built full".into(), full),
        ("hand-built partial identity".into(), ttl_partial_identity),
    ]
}

/// Every golden input's records, labelled, plus the hand-built ones.
async fn all_records() -> Vec<(String, Record)> {
    let files = inputs(&golden_dir());
    assert!(files.len() >= 8, "golden inputs missing: {files:?}");
    let mut records = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (i, r) in records_from(std::fs::read(&file).unwrap())
            .await
            .into_iter()
            .enumerate()
        {
            records.push((format!("{name} record {i}"), r));
        }
    }
    records.extend(hand_built());
    records
}

#[test]
fn every_schema_is_valid_draft_2020_12_and_names_itself() {
    for format in FORMATS {
        let schema = format.schema();
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            panic!("{}: {e}", format.name());
        }
        assert_eq!(
            schema["$id"],
            format!(
                "https://github.com/awsdynamodbsource/schemas/com.amazon.dynamodb.stream_record.{}.json",
                format.name()
            )
        );
        assert!(schema["title"].is_string() && schema["description"].is_string());
    }
}

/// The member naming the operation in each format.
fn operation_pointer(format: Format) -> &'static str {
    match format {
        Format::Triggermesh => "/EventName",
        Format::Aws => "/eventName",
        Format::Plain => "/operation",
    }
}

fn known_operation(record: &Record) -> bool {
    matches!(
        record.event_name(),
        None | Some(OperationType::Insert | OperationType::Modify | OperationType::Remove)
    )
}

#[tokio::test]
async fn every_record_satisfies_its_schema_in_every_format() {
    let records = all_records().await;
    assert!(records.len() >= 50, "only {} records", records.len());
    let mut failures = Vec::new();
    let mut unknown_operations = 0;
    for format in FORMATS {
        let validator = format.validator();
        for (label, record) in &records {
            // An operation DynamoDB does not have (the golden `TRUNCATE`) is
            // passed on as it is, and the schemas refuse it on purpose: that
            // and nothing else may be wrong with such a record.
            if !known_operation(record) {
                unknown_operations += 1;
                let doc: Value = serde_json::from_slice(&format.encode(record)).unwrap();
                let errs: Vec<_> = validator.iter_errors(&doc).collect();
                let at_operation = errs.len() == 1
                    && errs[0].instance_path().to_string() == operation_pointer(format);
                if !at_operation {
                    failures.push(format!(
                        "{} {label}: want one error at {}, got {:?}",
                        format.name(),
                        operation_pointer(format),
                        errors(&validator, &doc)
                    ));
                }
                continue;
            }
            let bytes = format.encode(record);
            let doc: Value = match serde_json::from_slice(&bytes) {
                Ok(doc) => doc,
                Err(e) => {
                    failures.push(format!("{} {label}: not JSON: {e}", format.name()));
                    continue;
                }
            };
            for e in errors(&validator, &doc) {
                failures.push(format!("{} {label}: {e}", format.name()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        unknown_operations > 0,
        "no record with an unknown operation"
    );
}

/// DynamoDB's forms that are not JSON numbers, and the JSON form the plain
/// format must give them; every other N must come out exactly as written.
const FORM_FIXES: [(&str, &str); 6] = [
    ("+5", "5"),
    ("+1", "1"),
    (".5", "0.5"),
    ("007", "7"),
    ("01", "1"),
    ("00.00100", "0.00100"),
];

/// Numbers that must be among those checked, or the test proves little.
const MUST_SEE: [&str; 4] = [
    "12345678901234567890123456789012345678",
    "0.000000000000000000000000000000000000001",
    "1E-130",
    "9.9999999999999999999999999999999999999E+125",
];

struct NumberCheck {
    seen: Vec<String>,
    failures: Vec<String>,
}

impl NumberCheck {
    fn number(&mut self, path: &str, dynamodb: &str, raw: &RawValue) {
        self.seen.push(dynamodb.to_owned());
        let want = FORM_FIXES
            .iter()
            .find(|(from, _)| *from == dynamodb)
            .map_or(dynamodb, |(_, to)| to);
        let got = raw.get();
        let is_number = serde_json::from_str::<Value>(got).is_ok_and(|v| v.is_number());
        if got != want || !is_number {
            self.failures.push(format!(
                "{path}: N {dynamodb:?} written as {got} (want {want})"
            ));
        }
    }

    fn value(&mut self, path: &str, value: &AttributeValue, raw: &RawValue) {
        match value {
            AttributeValue::N(text) => self.number(path, text, raw),
            AttributeValue::Ns(texts) => {
                let items: Vec<&RawValue> = serde_json::from_str(raw.get()).unwrap();
                assert_eq!(items.len(), texts.len(), "{path}");
                for (i, (text, item)) in texts.iter().zip(items).enumerate() {
                    self.number(&format!("{path}[{i}]"), text, item);
                }
            }
            AttributeValue::L(values) => {
                let items: Vec<&RawValue> = serde_json::from_str(raw.get()).unwrap();
                assert_eq!(items.len(), values.len(), "{path}");
                for (i, (v, item)) in values.iter().zip(items).enumerate() {
                    self.value(&format!("{path}[{i}]"), v, item);
                }
            }
            AttributeValue::M(map) => self.item(path, map, raw),
            _ => {}
        }
    }

    fn item(&mut self, path: &str, map: &HashMap<String, AttributeValue>, raw: &RawValue) {
        let members: HashMap<String, &RawValue> = serde_json::from_str(raw.get()).unwrap();
        assert_eq!(members.len(), map.len(), "{path}");
        for (name, value) in map {
            self.value(&format!("{path}.{name}"), value, members[name]);
        }
    }
}

#[tokio::test]
async fn plain_numbers_are_dynamodbs_digits() {
    let mut check = NumberCheck {
        seen: Vec::new(),
        failures: Vec::new(),
    };
    for (label, record) in all_records().await {
        let text = String::from_utf8(Format::Plain.encode(&record)).unwrap();
        let top: HashMap<String, &RawValue> = serde_json::from_str(&text).unwrap();
        let Some(r) = record.dynamodb() else { continue };
        for (member, map) in [
            ("keys", r.keys()),
            ("newImage", r.new_image()),
            ("oldImage", r.old_image()),
        ] {
            if let Some(map) = map {
                check.item(&format!("{label} {member}"), map, top[member]);
            }
        }
    }
    assert!(check.failures.is_empty(), "{}", check.failures.join("\n"));
    for want in FORM_FIXES.iter().map(|(from, _)| *from).chain(MUST_SEE) {
        assert!(
            check.seen.iter().any(|n| n == want),
            "no record has N {want:?}"
        );
    }
}

/// A valid document of `format`, from a record with a bit of everything.
fn sample(format: Format) -> Value {
    let record = Record::builder()
        .event_id("e0000000000000000000000000000001")
        .event_name(OperationType::Remove)
        .event_version("1.1")
        .event_source("aws:dynamodb")
        .aws_region("us-east-1")
        .user_identity(
            Identity::builder()
                .principal_id("dynamodb.amazonaws.com")
                .r#type("Service")
                .build(),
        )
        .dynamodb(
            StreamRecord::builder()
                .approximate_creation_date_time(DateTime::from_secs(1_704_067_200))
                .keys("pk", s("a"))
                .old_image("pk", s("a"))
                .old_image("n", n("12.5"))
                .old_image("b", AttributeValue::B(Blob::new(vec![0xff])))
                .sequence_number("100000000000000000001")
                .size_bytes(10)
                .stream_view_type(StreamViewType::NewAndOldImages)
                .build(),
        )
        .build();
    serde_json::from_slice(&format.encode(&record)).unwrap()
}

/// A wrong document: what is wrong, and the change that makes it so.
type Case<'a> = (&'a str, &'a dyn Fn(&mut Value));

/// Each case's change applied to a valid sample must make it invalid.
fn assert_rejects(format: Format, cases: &[Case]) {
    let validator = format.validator();
    let valid = sample(format);
    let errs = errors(&validator, &valid);
    assert!(errs.is_empty(), "{} sample: {errs:?}", format.name());
    for (what, change) in cases {
        let mut doc = valid.clone();
        change(&mut doc);
        assert_ne!(doc, valid, "{what}: the change changed nothing");
        assert!(
            !validator.is_valid(&doc),
            "{} schema accepts {what}: {doc}",
            format.name()
        );
    }
}

fn remove(doc: &mut Value, member: &str) {
    doc.as_object_mut().unwrap().remove(member);
}

#[test]
fn the_aws_schema_rejects_what_an_encoder_bug_would_write() {
    assert_rejects(
        Format::Aws,
        &[
            ("an N as a number", &|d| {
                d["dynamodb"]["OldImage"]["n"] = serde_json::json!({"N": 12.5})
            }),
            ("a missing eventSourceARN", &|d| remove(d, "eventSourceARN")),
            ("a missing dynamodb.Keys", &|d| {
                remove(&mut d["dynamodb"], "Keys")
            }),
            ("an absent member as null", &|d| {
                d["dynamodb"]["NewImage"] = Value::Null
            }),
            ("two members in one attribute value", &|d| {
                d["dynamodb"]["Keys"]["pk"]["N"] = "1".into()
            }),
            ("an empty attribute value", &|d| {
                d["dynamodb"]["Keys"]["pk"] = serde_json::json!({})
            }),
            ("a lower-case type member", &|d| {
                d["dynamodb"]["Keys"]["pk"] = serde_json::json!({"s": "a"})
            }),
            ("base64 without padding", &|d| {
                d["dynamodb"]["OldImage"]["b"] = serde_json::json!({"B": "/w"})
            }),
            ("the creation time as text", &|d| {
                d["dynamodb"]["ApproximateCreationDateTime"] = "2024-01-01T00:00:00Z".into()
            }),
            ("an unknown operation", &|d| {
                d["eventName"] = "UPSERT".into()
            }),
            ("a PascalCase record member", &|d| {
                let v = d["eventID"].take();
                remove(d, "eventID");
                d["EventID"] = v;
            }),
        ],
    );
}

#[test]
fn the_triggermesh_schema_rejects_what_an_encoder_bug_would_write() {
    assert_rejects(
        Format::Triggermesh,
        &[
            ("a missing UserIdentity", &|d| remove(d, "UserIdentity")),
            ("a missing attribute-value member", &|d| {
                remove(&mut d["Dynamodb"]["Keys"]["pk"], "SS")
            }),
            ("two non-null attribute-value members", &|d| {
                d["Dynamodb"]["Keys"]["pk"]["N"] = "1".into()
            }),
            ("an attribute value with every member null", &|d| {
                d["Dynamodb"]["Keys"]["pk"]["S"] = Value::Null
            }),
            ("an N as a number", &|d| {
                d["Dynamodb"]["OldImage"]["n"]["N"] = serde_json::json!(12.5)
            }),
            ("the creation time as epoch seconds", &|d| {
                d["Dynamodb"]["ApproximateCreationDateTime"] = 1_704_067_200.into()
            }),
            ("the creation time not RFC 3339", &|d| {
                d["Dynamodb"]["ApproximateCreationDateTime"] = "2024-01-01 00:00:00".into()
            }),
            // Passes the pattern: only `format: date-time` refuses it.
            ("the creation time in month 13", &|d| {
                d["Dynamodb"]["ApproximateCreationDateTime"] = "2024-13-01T00:00:00Z".into()
            }),
            ("a camelCase member", &|d| {
                let v = d["EventID"].take();
                remove(d, "EventID");
                d["eventID"] = v;
            }),
        ],
    );
}

#[test]
fn the_plain_schema_rejects_what_an_encoder_bug_would_write() {
    assert_rejects(
        Format::Plain,
        &[
            ("an unknown operation", &|d| {
                d["operation"] = "UPSERT".into()
            }),
            ("a missing table", &|d| remove(d, "table")),
            ("a missing newImage (null is required)", &|d| {
                remove(d, "newImage")
            }),
            ("keys as null", &|d| d["keys"] = Value::Null),
            ("an extra member", &|d| d["eventID"] = "x".into()),
            ("the creation time not RFC 3339", &|d| {
                d["approximateCreationDateTime"] = "yesterday".into()
            }),
            // Passes the pattern: only `format: date-time` refuses it.
            ("the creation time in month 13", &|d| {
                d["approximateCreationDateTime"] = "2024-13-01T00:00:00Z".into()
            }),
            ("the creation time as epoch seconds", &|d| {
                d["approximateCreationDateTime"] = 1_704_067_200.into()
            }),
            ("the sequence number as a number", &|d| {
                d["sequenceNumber"] = 1.into()
            }),
            ("a userIdentity missing type", &|d| {
                remove(&mut d["userIdentity"], "type")
            }),
        ],
    );
}

/// A snapshot row (an item read by the scan, every attribute type) is an
/// event of operation SNAPSHOT that every format's schema accepts.
#[test]
fn snapshot_rows_satisfy_every_schema() {
    use awsdynamodb_testkit::items::{every_type, key_with_range};
    let schema = awsdynamodb_source::test_support::KeySchema {
        hash: "pk".into(),
        range: Some("sk".into()),
    };
    let item = every_type(key_with_range("alice", "42"));
    let table: awsdynamodb_source::TableArn =
        "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
            .parse()
            .unwrap();
    let record = awsdynamodb_source::test_support::row_record(&table, 1_000, &schema, &item, 2_000);
    for format in FORMATS {
        let doc: Value = serde_json::from_slice(&format.encode(&record)).unwrap();
        assert_eq!(
            doc.pointer(operation_pointer(format)),
            Some(&Value::from("SNAPSHOT"))
        );
        let problems = errors(&format.validator(), &doc);
        assert!(problems.is_empty(), "{}: {problems:?}", format.name());
    }
}
