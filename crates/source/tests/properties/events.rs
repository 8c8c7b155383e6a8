//! The whole event: `EventBuilder` with every option, for any record.

use aws_sdk_dynamodbstreams::types::Record;
use awsdynamodb_source::TableArn;
use awsdynamodb_source::test_support::ChangeRecord;
use awsdynamodb_source::test_support::KeySchema;
use awsdynamodb_source::test_support::encode_aws;
use awsdynamodb_source::test_support::encode_plain;
use awsdynamodb_source::test_support::encode_record;
use awsdynamodb_source::test_support::{
    CeOverrides, CloudEvent, DataFormat, EVENT_TYPE, EventBuilder, EventOptions, Extensions,
    StreamEvent, SubjectMode,
};
use proptest::collection::btree_map;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::arbitrary::{any_record, dynamodb_record, odd_string, with_sequence};
use crate::config;
use crate::records::validator;
use crate::support::schemas::errors;

const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
const STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000";

/// Everything an event's shape depends on besides the record.
#[derive(Debug, Clone)]
struct Setup {
    options: EventOptions,
    overrides: CeOverrides,
    key_schema: Option<KeySchema>,
    shard: String,
}

fn setup() -> impl Strategy<Value = Setup> {
    let format = select(&[DataFormat::TriggerMesh, DataFormat::Aws, DataFormat::Plain][..]);
    let subject = select(&[SubjectMode::KeyNames, SubjectMode::Keys][..]);
    let extensions = any::<[bool; 4]>().prop_map(|[table, shard, sequence, view]| Extensions {
        table,
        shard,
        sequence,
        stream_view_type: view,
    });
    let base = option::of(select(
        &["https://schemas.example", "https://schemas.example/x/", ""][..],
    ));
    // Names that collide with the built-in extensions, and others.
    let names = select(
        &[
            "dynamodboperation",
            "dynamodbtable",
            "dynamodbshard",
            "sequence",
            "streamviewtype",
            "region",
            "team7",
        ][..],
    );
    let overrides = btree_map(names, odd_string(), 0..3).prop_map(|extensions| {
        let json = serde_json::json!({ "extensions": extensions }).to_string();
        CeOverrides::parse(&json).expect("valid names")
    });
    let name = prop_oneof![
        select(&["pk", "sk"][..]).prop_map(str::to_owned),
        odd_string()
    ];
    let key_schema = option::of((name.clone(), option::of(name)))
        .prop_map(|k| k.map(|(hash, range)| KeySchema { hash, range }));
    (
        format,
        subject,
        extensions,
        base,
        overrides,
        key_schema,
        odd_string(),
    )
        .prop_map(
            |(data_format, subject, extensions, base, overrides, key_schema, shard)| Setup {
                options: EventOptions {
                    data_format,
                    subject,
                    extensions,
                    dataschema_base: base.map(str::to_owned),
                },
                overrides,
                key_schema,
                shard,
            },
        )
}

fn build(setup: &Setup, record: Record) -> (ChangeRecord, StreamEvent) {
    let arn: TableArn = TABLE_ARN.parse().expect("a valid ARN");
    let builder = EventBuilder::new(&arn, &setup.overrides, setup.options.clone())
        .for_stream(STREAM_ARN, setup.key_schema.clone())
        .for_shard(&setup.shard);
    let change = ChangeRecord::new(record).expect("a record with a sequence number");
    let event = builder.build(&change);
    (change, event)
}

/// The record's data in `format`, as the builder must have written it.
fn data_of(format: DataFormat, record: &Record) -> Vec<u8> {
    let mut out = Vec::new();
    match format {
        DataFormat::TriggerMesh => encode_record(record, &mut out),
        DataFormat::Aws => encode_aws(record, STREAM_ARN, &mut out),
        DataFormat::Plain => encode_plain(record, "orders", &mut out),
    }
    out
}

/// The structured-mode JSON of `event`, checked: one object holding each
/// attribute once, as `attributes()` lists it, and `data` as the format
/// wrote it.
fn check_structured(event: &CloudEvent, data: &[u8]) -> Result<(), TestCaseError> {
    let text = event.to_structured_json();
    let object: Map<String, Value> = serde_json::from_slice(&text).map_err(|e| {
        TestCaseError::fail(format!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&text)
        ))
    })?;
    let attributes: Vec<(&str, &str)> = event.attributes().collect();
    // A name written twice would leave fewer members than attributes.
    prop_assert_eq!(object.len(), attributes.len() + 2, "{:?}", attributes);
    for (name, value) in &attributes {
        prop_assert_eq!(object.get(*name), Some(&Value::from(*value)), "{}", name);
    }
    prop_assert_eq!(&object["datacontenttype"], "application/json");
    let want: Value = serde_json::from_slice(data)
        .map_err(|e| TestCaseError::fail(format!("data is not JSON: {e}")))?;
    prop_assert_eq!(&object["data"], &want);
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// For any record and any options, the event is one valid structured
    /// JSON object naming each attribute once, its `data` is what the chosen
    /// format writes, and the required attributes are there.
    #[test]
    fn any_record_makes_a_well_formed_event(
        setup in setup(),
        record in any_record(),
        sequence in "[0-9]{1,40}",
    ) {
        let record = with_sequence(record, &sequence);
        let (change, event) = build(&setup, record);
        let data = data_of(setup.options.data_format, &change.record);
        prop_assert!(event.data.as_deref() == Some(data.as_slice()), "data is not the format's");
        check_structured(&event, &data)?;
        prop_assert_eq!(&*event.source, TABLE_ARN);
        prop_assert_eq!(event.id.as_str(), change.record.event_id().unwrap_or_default());
        prop_assert_eq!(&*event.origin.sequence, sequence.as_str());
        let names: Vec<&str> = event.attributes().map(|(name, _)| name).collect();
        prop_assert!(names.contains(&"type") && names.contains(&"specversion"));
        prop_assert!(event.attributes().any(|(n, v)| n == "type" && v == EVENT_TYPE));
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// For what DynamoDB sends, with any options, `data` satisfies the
    /// chosen format's schema, `dataschema` names that schema when asked
    /// for, and `time` is RFC 3339.
    #[test]
    fn what_dynamodb_sends_makes_events_of_the_published_shape(
        setup in setup(),
        record in dynamodb_record(),
    ) {
        let format = setup.options.data_format;
        let (_, event) = build(&setup, record);
        let data: Value = serde_json::from_slice(event.data.as_deref().unwrap_or_default())
            .map_err(|e| TestCaseError::fail(format!("data is not JSON: {e}")))?;
        let errs = errors(validator(format.into()), &data);
        prop_assert!(errs.is_empty(), "{}: {errs:#?}\n{data}", format);
        if setup.options.dataschema_base.is_some() {
            let dataschema = event.dataschema.as_deref().unwrap_or_default();
            prop_assert!(dataschema.ends_with(&format!("/{}", format.schema_file())), "{dataschema}");
        }
        let time = event.time.as_deref().unwrap_or_default();
        prop_assert!(OffsetDateTime::parse(time, &Rfc3339).is_ok(), "time {time:?}");
    }
}
