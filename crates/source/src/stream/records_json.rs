//! A GetRecords answer's JSON → the SDK's record types, for the direct
//! GetRecords call (`signed`), with the SDK's own decoding rules: unknown
//! members ignored, `null` members absent, an attribute value's `null`
//! members skipped, times as epoch seconds, blobs as base64. The golden
//! inputs hold it to the SDK's result record for record. An attribute kind
//! that DynamoDB does not have today is an error here: only the SDK can
//! represent it, so the caller asks the SDK.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, Identity, OperationType, Record, StreamRecord, StreamViewType,
};
use base64::Engine as _;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::api::RecordsPage;

/// Decodes a GetRecords answer (status 200).
pub fn records_page(body: &[u8]) -> Result<RecordsPage, serde_json::Error> {
    let page: Page = serde_json::from_slice(body)?;
    Ok(RecordsPage {
        records: page
            .records
            .unwrap_or_default()
            .into_iter()
            .map(Record::from)
            .collect(),
        next_iterator: page.next_shard_iterator,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Page {
    records: Option<Vec<RecordJson>>,
    next_shard_iterator: Option<String>,
}

#[derive(Deserialize)]
struct RecordJson {
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    #[serde(rename = "eventVersion")]
    event_version: Option<String>,
    #[serde(rename = "eventSource")]
    event_source: Option<String>,
    #[serde(rename = "awsRegion")]
    aws_region: Option<String>,
    dynamodb: Option<StreamRecordJson>,
    #[serde(rename = "userIdentity")]
    user_identity: Option<IdentityJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamRecordJson {
    approximate_creation_date_time: Option<f64>,
    keys: Option<AttributeMap>,
    new_image: Option<AttributeMap>,
    old_image: Option<AttributeMap>,
    sequence_number: Option<String>,
    size_bytes: Option<i64>,
    stream_view_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdentityJson {
    principal_id: Option<String>,
    r#type: Option<String>,
}

impl From<RecordJson> for Record {
    fn from(r: RecordJson) -> Record {
        Record::builder()
            .set_event_id(r.event_id)
            .set_event_name(r.event_name.as_deref().map(OperationType::from))
            .set_event_version(r.event_version)
            .set_event_source(r.event_source)
            .set_aws_region(r.aws_region)
            .set_dynamodb(r.dynamodb.map(StreamRecord::from))
            .set_user_identity(r.user_identity.map(|i| {
                Identity::builder()
                    .set_principal_id(i.principal_id)
                    .set_type(i.r#type)
                    .build()
            }))
            .build()
    }
}

impl From<StreamRecordJson> for StreamRecord {
    fn from(s: StreamRecordJson) -> StreamRecord {
        StreamRecord::builder()
            .set_approximate_creation_date_time(
                s.approximate_creation_date_time
                    .map(DateTime::from_secs_f64),
            )
            .set_keys(s.keys.map(|m| m.0))
            .set_new_image(s.new_image.map(|m| m.0))
            .set_old_image(s.old_image.map(|m| m.0))
            .set_sequence_number(s.sequence_number)
            .set_size_bytes(s.size_bytes)
            .set_stream_view_type(s.stream_view_type.as_deref().map(StreamViewType::from))
            .build()
    }
}

/// A map of attribute values; a `null` value is an error, as in the SDK.
struct AttributeMap(HashMap<String, AttributeValue>);

impl<'de> Deserialize<'de> for AttributeMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(MapVisitor)
    }
}

struct MapVisitor;

impl<'de> Visitor<'de> for MapVisitor {
    type Value = AttributeMap;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of attribute values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AttributeMap, A::Error> {
        let mut values = HashMap::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((name, value)) = map.next_entry::<String, Value>()? {
            values.insert(name, value.0);
        }
        Ok(AttributeMap(values))
    }
}

/// One attribute value (a union: one member set).
struct Value(AttributeValue);

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ValueVisitor)
    }
}

/// Base64 text → bytes.
struct Base64(Blob);

impl<'de> Deserialize<'de> for Base64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(|bytes| Base64(Blob::new(bytes)))
            .map_err(de::Error::custom)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut value: Option<AttributeValue> = None;
        while let Some(kind) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let next = match kind.as_ref() {
                "S" => map.next_value::<Option<String>>()?.map(AttributeValue::S),
                "N" => map.next_value::<Option<String>>()?.map(AttributeValue::N),
                "B" => map
                    .next_value::<Option<Base64>>()?
                    .map(|b| AttributeValue::B(b.0)),
                "SS" => map
                    .next_value::<Option<Vec<String>>>()?
                    .map(AttributeValue::Ss),
                "NS" => map
                    .next_value::<Option<Vec<String>>>()?
                    .map(AttributeValue::Ns),
                "BS" => map
                    .next_value::<Option<Vec<Base64>>>()?
                    .map(|bs| AttributeValue::Bs(bs.into_iter().map(|b| b.0).collect())),
                "M" => map
                    .next_value::<Option<AttributeMap>>()?
                    .map(|m| AttributeValue::M(m.0)),
                "L" => map
                    .next_value::<Option<Vec<Value>>>()?
                    .map(|l| AttributeValue::L(l.into_iter().map(|v| v.0).collect())),
                "NULL" => map.next_value::<Option<bool>>()?.map(AttributeValue::Null),
                "BOOL" => map.next_value::<Option<bool>>()?.map(AttributeValue::Bool),
                "__type" => {
                    map.next_value::<IgnoredAny>()?;
                    None
                }
                _ => match map.next_value::<Option<IgnoredAny>>()? {
                    Some(_) => {
                        return Err(de::Error::custom(
                            "an attribute kind only the SDK can represent",
                        ));
                    }
                    None => None,
                },
            };
            if let Some(next) = next {
                if value.is_some() {
                    return Err(de::Error::custom("encountered mixed variants in union"));
                }
                value = Some(next);
            }
        }
        value
            .map(Value)
            .ok_or_else(|| de::Error::custom("Union did not contain a valid variant."))
    }
}
