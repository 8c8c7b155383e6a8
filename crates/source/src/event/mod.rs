//! Record → CloudEvent: the attributes of the contract's section 2 and the
//! `data` bytes of the original (see [`data`]).
//!
//! Owns what an event says. It never sends one: that is `sink`'s job.

pub mod aws;
pub mod data;
pub(crate) mod json;
mod options;
mod overrides;
pub mod plain;

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, LazyLock};

use aws_sdk_dynamodbstreams::types::AttributeValue;
pub use awsdynamodbsource_cloudevents::CloudEvent;
use base64::Engine as _;
use bytes::Bytes;
pub use options::{
    DataFormat, EventOptions, Extensions, OptionError, SubjectMode, padded_sequence,
};
pub use overrides::{CeOverrides, OverridesError};

use crate::arn::TableArn;
use crate::record::{ChangeRecord, Record};
use crate::stream::KeySchema;

/// The CloudEvents `type` of every event.
pub const EVENT_TYPE: &str = "com.amazon.dynamodb.stream_record";
/// The `datacontenttype` of every event.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The extension carrying INSERT, MODIFY or REMOVE.
pub const OPERATION_EXTENSION: &str = "dynamodboperation";

/// The two constants above, shared by every event.
static SHARED: LazyLock<(Arc<str>, Arc<str>)> =
    LazyLock::new(|| (Arc::from(EVENT_TYPE), Arc::from(DATA_CONTENT_TYPE)));

/// One change as a CloudEvent ready to send, and the record behind it (not
/// sent, but retries and dead letters use it).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub event: CloudEvent,
    pub origin: Origin,
}

impl Deref for StreamEvent {
    type Target = CloudEvent;
    fn deref(&self) -> &CloudEvent {
        &self.event
    }
}

impl DerefMut for StreamEvent {
    fn deref_mut(&mut self) -> &mut CloudEvent {
        &mut self.event
    }
}

/// The record behind an event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Origin {
    pub shard: Arc<str>,
    pub sequence: Arc<str>,
    /// ApproximateCreationDateTime in Unix ms (for MAX_RECORD_AGE).
    pub created_ms: Option<i64>,
}

#[cfg(test)]
impl StreamEvent {
    /// An event with only an id, for tests of the stages after `event`.
    pub(crate) fn with_id(id: impl Into<String>) -> Self {
        StreamEvent {
            event: CloudEvent {
                id: id.into(),
                source: "s".into(),
                event_type: SHARED.0.clone(),
                datacontenttype: Some(SHARED.1.clone()),
                data: Some(Bytes::new()),
                ..CloudEvent::default()
            },
            origin: Origin::default(),
        }
    }
}

/// Turns the records of one stream into events.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    source: Arc<str>,
    table: Arc<str>,
    overrides: Arc<[(Arc<str>, Arc<str>)]>,
    options: Arc<EventOptions>,
    dataschema: Option<Arc<str>>,
    key_schema: Option<KeySchema>,
    stream: Arc<str>,
    shard: Arc<str>,
}

impl EventBuilder {
    pub fn new(table: &TableArn, overrides: &CeOverrides, options: EventOptions) -> Self {
        EventBuilder {
            source: Arc::from(table.as_str()),
            table: Arc::from(table.table()),
            overrides: overrides
                .extensions()
                .map(|(k, v)| (Arc::from(k), Arc::from(v)))
                .collect(),
            dataschema: options.dataschema().map(Arc::from),
            options: Arc::new(options),
            key_schema: None,
            stream: Arc::from(""),
            shard: Arc::from(""),
        }
    }

    /// The same builder for one stream: its ARN (the `aws` format's
    /// `eventSourceARN`) and its key schema (the subject lists the hash key,
    /// then the range key).
    pub fn for_stream(&self, stream: &str, key_schema: Option<KeySchema>) -> Self {
        EventBuilder {
            stream: Arc::from(stream),
            key_schema,
            ..self.clone()
        }
    }

    /// The same builder for one shard of the stream.
    pub fn for_shard(&self, shard: &str) -> Self {
        EventBuilder {
            shard: Arc::from(shard),
            ..self.clone()
        }
    }

    /// The stream's ARN.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    pub fn build(&self, change: &ChangeRecord) -> StreamEvent {
        self.build_record(&change.record, Some(change.sequence.as_str()))
    }

    /// A snapshot row as an event (`record`: the row as a stream would carry
    /// it, see `snapshot::row_record`). It has no shard or sequence number:
    /// the `dynamodbshard` and `sequence` extensions are left out.
    pub fn build_row(&self, record: &Record) -> StreamEvent {
        self.build_record(record, None)
    }

    fn build_record(&self, record: &Record, sequence: Option<&str>) -> StreamEvent {
        let mut data = Vec::with_capacity(512);
        match self.options.data_format {
            DataFormat::TriggerMesh => data::encode_record(record, &mut data),
            DataFormat::Aws => aws::encode_aws(record, &self.stream, &mut data),
            DataFormat::Plain => plain::encode_plain(record, &self.table, &mut data),
        }
        let operation = record.event_name().map(|op| op.as_str());
        let mut extensions = Vec::with_capacity(5 + self.overrides.len());
        let mut add = |name: &'static str, value: &str| {
            if !self.overrides.iter().any(|(k, _)| &**k == name) {
                extensions.push((Arc::from(name), Arc::from(value)));
            }
        };
        if let Some(op) = operation {
            add(OPERATION_EXTENSION, op);
        }
        let wanted = self.options.extensions;
        if wanted.table {
            add("dynamodbtable", &self.table);
        }
        if let Some(sequence) = sequence {
            if wanted.shard {
                add("dynamodbshard", &self.shard);
            }
            if wanted.sequence {
                add("sequence", &padded_sequence(sequence));
            }
        }
        if wanted.stream_view_type
            && let Some(view) = record.dynamodb().and_then(|d| d.stream_view_type())
        {
            add("streamviewtype", view.as_str());
        }
        extensions.extend(self.overrides.iter().cloned());
        let created = record
            .dynamodb()
            .and_then(|d| d.approximate_creation_date_time());
        StreamEvent {
            event: CloudEvent {
                id: record.event_id().unwrap_or_default().to_owned(),
                source: self.source.clone(),
                event_type: SHARED.0.clone(),
                datacontenttype: Some(SHARED.1.clone()),
                dataschema: self.dataschema.clone(),
                subject: self.subject(record),
                time: created.map(json::format_time),
                extensions,
                data: Some(Bytes::from(data)),
            },
            origin: Origin {
                shard: self.shard.clone(),
                sequence: Arc::from(sequence.unwrap_or_default()),
                created_ms: created.and_then(|t| t.to_millis().ok()),
            },
        }
    }

    fn subject(&self, record: &Record) -> Option<String> {
        let names: Vec<&str> = match &self.key_schema {
            Some(schema) => std::iter::once(schema.hash.as_str())
                .chain(schema.range.as_deref())
                .collect(),
            // No key schema (never seen from AWS): the record's key names,
            // sorted, so the subject is at least stable.
            None => {
                let keys = record.dynamodb()?.keys()?;
                let mut names: Vec<&str> = keys.keys().map(String::as_str).collect();
                names.sort_unstable();
                names
            }
        };
        match self.options.subject {
            SubjectMode::KeyNames => Some(names.join(",")),
            SubjectMode::Keys => {
                let keys = record.dynamodb()?.keys()?;
                let parts: Vec<String> = names
                    .iter()
                    .map(|name| {
                        let value = keys.get(*name).map(key_text).unwrap_or_default();
                        format!("{}={}", escape_key_part(name), escape_key_part(&value))
                    })
                    .collect();
                Some(parts.join(","))
            }
        }
    }
}

/// A key attribute's value as text: strings as they are, numbers as
/// DynamoDB's digits, binary as base64.
fn key_text(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
        AttributeValue::B(b) => base64::engine::general_purpose::STANDARD.encode(b.as_ref()),
        // Keys are S, N or B; anything else is shown as the SDK prints it.
        other => format!("{other:?}"),
    }
}

/// `%`, `,` and `=` percent-encoded, so that `name=value,name=value` splits
/// back unambiguously.
fn escape_key_part(s: &str) -> String {
    if !s.contains(['%', ',', '=']) {
        return s.to_owned();
    }
    s.replace('%', "%25")
        .replace(',', "%2C")
        .replace('=', "%3D")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record, StreamRecord};
    use aws_smithy_types::DateTime;

    fn change() -> ChangeRecord {
        let sr = StreamRecord::builder()
            .sequence_number("100000000000000000001")
            .keys("sk", AttributeValue::N("1".into()))
            .keys("pk", AttributeValue::S("a".into()))
            .approximate_creation_date_time(DateTime::from_secs(1_704_067_200))
            .build();
        let record = Record::builder()
            .event_id("c81e728d9d4c2f636f067f89cc14862c")
            .event_name(OperationType::Insert)
            .dynamodb(sr)
            .build();
        ChangeRecord::new(record).unwrap()
    }

    fn builder(overrides: &str) -> EventBuilder {
        let arn: TableArn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
            .parse()
            .unwrap();
        EventBuilder::new(
            &arn,
            &CeOverrides::parse(overrides).unwrap(),
            EventOptions::default(),
        )
    }

    #[test]
    fn attributes_as_the_contract_says() {
        let b = builder(r#"{"extensions":{"team":"blue"}}"#).for_stream(
            "arn:s",
            Some(KeySchema {
                hash: "pk".into(),
                range: Some("sk".into()),
            }),
        );
        let event = b.build(&change());
        let attrs: Vec<(&str, &str)> = event.attributes().collect();
        assert_eq!(
            attrs,
            vec![
                ("specversion", "1.0"),
                ("id", "c81e728d9d4c2f636f067f89cc14862c"),
                (
                    "source",
                    "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
                ),
                ("type", "com.amazon.dynamodb.stream_record"),
                ("subject", "pk,sk"),
                ("time", "2024-01-01T00:00:00Z"),
                ("dynamodboperation", "INSERT"),
                ("team", "blue"),
            ]
        );
        let structured: serde_json::Value =
            serde_json::from_slice(&event.to_structured_json()).unwrap();
        assert_eq!(structured["datacontenttype"], "application/json");
        assert_eq!(structured["data"]["EventName"], "INSERT");
        assert_eq!(structured["team"], "blue");
    }

    #[test]
    fn without_key_schema_the_subject_is_the_sorted_key_names() {
        let event = builder("").build(&change());
        assert_eq!(event.subject.as_deref(), Some("pk,sk"));
    }

    #[test]
    fn an_override_of_the_operation_extension_wins() {
        let event = builder(r#"{"extensions":{"dynamodboperation":"x"}}"#).build(&change());
        let ops: Vec<_> = event
            .extensions
            .iter()
            .filter(|(k, _)| &**k == OPERATION_EXTENSION)
            .collect();
        assert_eq!(ops.len(), 1);
        assert_eq!(&*ops[0].1, "x");
    }

    fn with_options(options: EventOptions) -> EventBuilder {
        let arn: TableArn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
            .parse()
            .unwrap();
        EventBuilder::new(&arn, &CeOverrides::default(), options)
            .for_stream(
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/x",
                Some(KeySchema {
                    hash: "pk".into(),
                    range: Some("sk".into()),
                }),
            )
            .for_shard("shardId-0001")
    }

    /// A snapshot row: operation SNAPSHOT, its stable id, its read time, the
    /// item's subject; no shard or sequence, so those extensions are left out.
    #[test]
    fn a_snapshot_row_is_an_event_without_shard_or_sequence() {
        use aws_sdk_dynamodb::types::AttributeValue as TableValue;
        let b = with_options(EventOptions {
            extensions: Extensions {
                table: true,
                shard: true,
                sequence: true,
                stream_view_type: true,
            },
            subject: SubjectMode::Keys,
            ..EventOptions::default()
        });
        let arn: TableArn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
            .parse()
            .unwrap();
        let item = std::collections::HashMap::from([
            ("pk".to_owned(), TableValue::S("alice".into())),
            ("sk".to_owned(), TableValue::N("7".into())),
        ]);
        let schema = KeySchema {
            hash: "pk".into(),
            range: Some("sk".into()),
        };
        let record = crate::snapshot::row_record(&arn, 1_000, &schema, &item, 61_000);
        let event = b.build_row(&record);
        assert_eq!(event.id, record.event_id().unwrap());
        assert_eq!(event.subject.as_deref(), Some("pk=alice,sk=7"));
        assert_eq!(event.time.as_deref(), Some("1970-01-01T00:01:01Z"));
        let names: Vec<&str> = event.extensions.iter().map(|(k, _)| &**k).collect();
        assert_eq!(
            names,
            [OPERATION_EXTENSION, "dynamodbtable", "streamviewtype"]
        );
        assert_eq!(&*event.extensions[0].1, "SNAPSHOT");
        assert_eq!(&*event.origin.sequence, "");
    }

    #[test]
    fn keys_subjects_name_the_item_with_separators_escaped() {
        let b = with_options(EventOptions {
            subject: SubjectMode::Keys,
            ..EventOptions::default()
        });
        assert_eq!(b.build(&change()).subject.as_deref(), Some("pk=a,sk=1"));

        let sr = StreamRecord::builder()
            .sequence_number("100000000000000000002")
            .keys("pk", AttributeValue::S("a=b,c%d".into()))
            .keys(
                "sk",
                AttributeValue::B(aws_smithy_types::Blob::new(vec![0xff, 0x00])),
            )
            .build();
        let record = Record::builder().event_id("e").dynamodb(sr).build();
        let event = b.build(&ChangeRecord::new(record).unwrap());
        assert_eq!(event.subject.as_deref(), Some("pk=a%3Db%2Cc%25d,sk=/wA%3D"));
    }

    #[test]
    fn optional_extensions_and_dataschema() {
        let b = with_options(EventOptions {
            extensions: "dynamodbtable,dynamodbshard,sequence,streamviewtype"
                .parse()
                .unwrap(),
            dataschema_base: Some("https://schemas.example/".into()),
            data_format: DataFormat::Plain,
            ..EventOptions::default()
        });
        let mut change = change();
        if let Some(d) = change.record.dynamodb.as_mut() {
            d.stream_view_type = Some(aws_sdk_dynamodbstreams::types::StreamViewType::NewImage);
        }
        let event = b.build(&change);
        let ext: Vec<(&str, &str)> = event.extensions.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(
            ext,
            [
                ("dynamodboperation", "INSERT"),
                ("dynamodbtable", "orders"),
                ("dynamodbshard", "shardId-0001"),
                ("sequence", "0000000000000000000100000000000000000001"),
                ("streamviewtype", "NEW_IMAGE"),
            ]
        );
        assert_eq!(
            event.dataschema.as_deref(),
            Some("https://schemas.example/com.amazon.dynamodb.stream_record.plain.json")
        );
        assert_eq!(&*event.origin.shard, "shardId-0001");
        assert_eq!(event.origin.created_ms, Some(1_704_067_200_000));
    }
}
