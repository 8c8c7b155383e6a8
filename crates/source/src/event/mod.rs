//! Record → CloudEvent: the attributes of the contract's section 2 and the
//! `data` bytes of the original (see [`data`]).
//!
//! Owns what an event says. It never sends one: that is `sink`'s job.

pub mod data;
mod overrides;

use std::sync::Arc;

use bytes::Bytes;
pub use overrides::{CeOverrides, OverridesError};

use crate::arn::TableArn;
use crate::record::ChangeRecord;
use crate::stream::KeySchema;

/// The CloudEvents `type` of every event.
pub const EVENT_TYPE: &str = "com.amazon.dynamodb.stream_record";
/// The `datacontenttype` of every event.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// The extension carrying INSERT, MODIFY or REMOVE.
pub const OPERATION_EXTENSION: &str = "dynamodboperation";

/// One CloudEvent, ready to send. `type`, `specversion` and
/// `datacontenttype` are the constants above.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    pub id: String,
    pub source: Arc<str>,
    pub subject: Option<String>,
    /// RFC 3339, from the record's ApproximateCreationDateTime.
    pub time: Option<String>,
    /// Extensions, each name once, in a stable order.
    pub extensions: Vec<(Arc<str>, Arc<str>)>,
    /// JSON.
    pub data: Bytes,
}

impl CloudEvent {
    /// Every context attribute with its value, as sent: required ones first.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &str)> {
        [
            Some(("specversion", "1.0")),
            Some(("id", self.id.as_str())),
            Some(("source", &*self.source)),
            Some(("type", EVENT_TYPE)),
            self.subject.as_deref().map(|s| ("subject", s)),
            self.time.as_deref().map(|t| ("time", t)),
        ]
        .into_iter()
        .flatten()
        .chain(self.extensions.iter().map(|(k, v)| (&**k, &**v)))
    }

    /// Structured mode: the whole event as one JSON object (`data` inline,
    /// since it is JSON).
    pub fn to_structured_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 256);
        out.push(b'{');
        for (name, value) in self.attributes() {
            data::string(&mut out, name);
            out.push(b':');
            data::string(&mut out, value);
            out.push(b',');
        }
        out.extend_from_slice(b"\"datacontenttype\":\"application/json\",\"data\":");
        out.extend_from_slice(&self.data);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
impl CloudEvent {
    /// An event with only an id, for tests of the stages after `event`.
    pub(crate) fn with_id(id: impl Into<String>) -> Self {
        CloudEvent {
            id: id.into(),
            source: "s".into(),
            subject: None,
            time: None,
            extensions: vec![],
            data: Default::default(),
        }
    }
}

/// Turns the records of one stream into events.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    source: Arc<str>,
    overrides: Arc<[(Arc<str>, Arc<str>)]>,
    key_schema: Option<KeySchema>,
}

impl EventBuilder {
    pub fn new(table: &TableArn, overrides: &CeOverrides) -> Self {
        EventBuilder {
            source: Arc::from(table.as_str()),
            overrides: overrides
                .extensions()
                .map(|(k, v)| (Arc::from(k), Arc::from(v)))
                .collect(),
            key_schema: None,
        }
    }

    /// The same builder for a stream whose key schema is known: the subject
    /// then lists the hash key, then the range key.
    pub fn for_key_schema(&self, key_schema: Option<KeySchema>) -> Self {
        EventBuilder {
            key_schema,
            ..self.clone()
        }
    }

    pub fn build(&self, change: &ChangeRecord) -> CloudEvent {
        let record = &change.record;
        let mut data = Vec::with_capacity(512);
        data::encode_record(record, &mut data);
        let operation = record.event_name().map(|op| op.as_str());
        let mut extensions = Vec::with_capacity(1 + self.overrides.len());
        if let Some(op) = operation
            && !self
                .overrides
                .iter()
                .any(|(k, _)| &**k == OPERATION_EXTENSION)
        {
            extensions.push((Arc::from(OPERATION_EXTENSION), Arc::from(op)));
        }
        extensions.extend(self.overrides.iter().cloned());
        CloudEvent {
            id: record.event_id().unwrap_or_default().to_owned(),
            source: self.source.clone(),
            subject: self.subject(change),
            time: change.created().map(data::format_time),
            extensions,
            data: Bytes::from(data),
        }
    }

    fn subject(&self, change: &ChangeRecord) -> Option<String> {
        if let Some(schema) = &self.key_schema {
            return Some(match &schema.range {
                Some(range) => format!("{},{}", schema.hash, range),
                None => schema.hash.clone(),
            });
        }
        // No key schema (never seen from AWS): the record's key names, sorted,
        // so the subject is at least stable.
        let keys = change.record.dynamodb()?.keys()?;
        let mut names: Vec<&str> = keys.keys().map(String::as_str).collect();
        names.sort_unstable();
        Some(names.join(","))
    }
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
        EventBuilder::new(&arn, &CeOverrides::parse(overrides).unwrap())
    }

    #[test]
    fn attributes_as_the_contract_says() {
        let b = builder(r#"{"extensions":{"team":"blue"}}"#).for_key_schema(Some(KeySchema {
            hash: "pk".into(),
            range: Some("sk".into()),
        }));
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
}
