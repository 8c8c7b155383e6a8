//! A scanned item as the record a stream would carry for it: operation
//! `SNAPSHOT`, its keys, its whole state as `NewImage`, the moment it was
//! read as `ApproximateCreationDateTime`, and an id that is the same
//! whenever the same snapshot reads the same item again (a resumed
//! snapshot), so consumers can drop repeats by `source` + `id`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as TableValue;
use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
use aws_sdk_dynamodbstreams::types::{
    AttributeValue, OperationType, Record, StreamRecord, StreamViewType,
};
use sha2::{Digest, Sha256};

use crate::arn::TableArn;
use crate::stream::KeySchema;

/// The operation value of a snapshot row, in `dynamodboperation` and in
/// every data format.
pub const SNAPSHOT_OPERATION: &str = "SNAPSHOT";

/// `item`, read at `read_ms` by the snapshot of `table` begun at
/// `snapshot_ms`, as a stream record.
pub fn row_record(
    table: &TableArn,
    snapshot_ms: i64,
    key_schema: &KeySchema,
    item: &HashMap<String, TableValue>,
    read_ms: i64,
) -> Record {
    let image: HashMap<String, AttributeValue> = item
        .iter()
        .map(|(name, value)| (name.clone(), stream_value(value)))
        .collect();
    let keys: HashMap<String, AttributeValue> = std::iter::once(key_schema.hash.as_str())
        .chain(key_schema.range.as_deref())
        .filter_map(|name| Some((name.to_owned(), image.get(name)?.clone())))
        .collect();
    let size = item_size(&image);
    let stream_record = StreamRecord::builder()
        .set_keys(Some(keys.clone()))
        .size_bytes(size)
        .set_new_image(Some(image))
        .approximate_creation_date_time(DateTime::from_millis(read_ms))
        .stream_view_type(StreamViewType::NewImage)
        .build();
    Record::builder()
        .event_id(row_id(table.as_str(), snapshot_ms, &keys))
        .event_name(OperationType::from(SNAPSHOT_OPERATION))
        .event_version("1.1")
        .event_source("aws:dynamodb")
        .aws_region(table.region())
        .dynamodb(stream_record)
        .build()
}

/// An item's exact identity, for the join: its key attributes' names,
/// types and values, in name order, each length-prefixed.
pub type JoinKey = Vec<u8>;

pub fn join_key(keys: &HashMap<String, AttributeValue>) -> JoinKey {
    let mut out = Vec::with_capacity(64);
    let mut names: Vec<&String> = keys.keys().collect();
    names.sort();
    for name in names {
        out.extend((name.len() as u64).to_be_bytes());
        out.extend(name.as_bytes());
        let (kind, bytes): (u8, &[u8]) = match &keys[name] {
            AttributeValue::S(s) => (b'S', s.as_bytes()),
            AttributeValue::N(n) => (b'N', n.as_bytes()),
            AttributeValue::B(b) => (b'B', b.as_ref()),
            _ => (b'?', &[]),
        };
        out.push(kind);
        out.extend((bytes.len() as u64).to_be_bytes());
        out.extend(bytes);
    }
    out
}

/// A UUID-shaped name (RFC 9562 version 8) of the table, the snapshot and
/// the item's key: stable across restarts and releases, unlike std's
/// hasher.
fn row_id(table: &str, snapshot_ms: i64, keys: &HashMap<String, AttributeValue>) -> String {
    let mut hash = Sha256::new();
    hash.update(table.as_bytes());
    hash.update(snapshot_ms.to_be_bytes());
    hash.update(join_key(keys));
    let digest = hash.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The item's size as DynamoDB counts it (attribute names and values in
/// bytes; a number about one byte per two digits): what `SizeBytes` says of
/// a change.
fn item_size(image: &HashMap<String, AttributeValue>) -> i64 {
    fn value(v: &AttributeValue) -> i64 {
        let number = |n: &String| n.len().div_ceil(2) as i64 + 1;
        match v {
            AttributeValue::S(s) => s.len() as i64,
            AttributeValue::N(n) => number(n),
            AttributeValue::B(b) => b.as_ref().len() as i64,
            AttributeValue::Ss(v) => v.iter().map(|s| s.len() as i64).sum(),
            AttributeValue::Ns(v) => v.iter().map(number).sum(),
            AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len() as i64).sum(),
            AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value(x)).sum::<i64>(),
            AttributeValue::M(m) => {
                3 + m
                    .iter()
                    .map(|(k, x)| 1 + k.len() as i64 + value(x))
                    .sum::<i64>()
            }
            _ => 1,
        }
    }
    image.iter().map(|(k, v)| k.len() as i64 + value(v)).sum()
}

/// The table API's attribute value as the Streams API's (the same shapes,
/// two SDK crates).
fn stream_value(value: &TableValue) -> AttributeValue {
    match value {
        TableValue::S(s) => AttributeValue::S(s.clone()),
        TableValue::N(n) => AttributeValue::N(n.clone()),
        TableValue::B(b) => AttributeValue::B(Blob::new(b.as_ref())),
        TableValue::Bool(b) => AttributeValue::Bool(*b),
        TableValue::Null(n) => AttributeValue::Null(*n),
        TableValue::Ss(v) => AttributeValue::Ss(v.clone()),
        TableValue::Ns(v) => AttributeValue::Ns(v.clone()),
        TableValue::Bs(v) => AttributeValue::Bs(v.iter().map(|b| Blob::new(b.as_ref())).collect()),
        TableValue::L(v) => AttributeValue::L(v.iter().map(stream_value).collect()),
        TableValue::M(m) => AttributeValue::M(
            m.iter()
                .map(|(k, v)| (k.clone(), stream_value(v)))
                .collect(),
        ),
        // A type newer than this SDK: kept as nothing rather than guessed.
        _ => AttributeValue::Null(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn(table: &str) -> TableArn {
        format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}")
            .parse()
            .unwrap()
    }

    fn schema() -> KeySchema {
        KeySchema {
            hash: "pk".into(),
            range: Some("sk".into()),
        }
    }

    fn item(pk: &str, version: i64) -> HashMap<String, TableValue> {
        HashMap::from([
            ("pk".into(), TableValue::S(pk.into())),
            ("sk".into(), TableValue::N("7".into())),
            ("version".into(), TableValue::N(version.to_string())),
            (
                "tags".into(),
                TableValue::L(vec![
                    TableValue::Bool(true),
                    TableValue::Ss(vec!["a".into()]),
                ]),
            ),
        ])
    }

    #[test]
    fn a_row_is_a_snapshot_record_of_its_keys_and_whole_item() {
        let record = row_record(&arn("ttt"), 1_000, &schema(), &item("alice", 3), 2_500);
        assert_eq!(record.event_name().map(|o| o.as_str()), Some("SNAPSHOT"));
        let sr = record.dynamodb().unwrap();
        assert_eq!(sr.keys().unwrap().len(), 2);
        assert_eq!(sr.new_image().unwrap().len(), 4);
        assert_eq!(
            sr.new_image().unwrap()["tags"],
            AttributeValue::L(vec![
                AttributeValue::Bool(true),
                AttributeValue::Ss(vec!["a".into()])
            ])
        );
        assert_eq!(
            sr.approximate_creation_date_time()
                .unwrap()
                .to_millis()
                .unwrap(),
            2_500
        );
        assert!(sr.sequence_number().is_none());
    }

    /// The same item in the same snapshot: the same id, whatever its state
    /// or when it was read; another item, table or snapshot: another id.
    #[test]
    fn the_id_names_the_table_the_snapshot_and_the_key() {
        let id = |table, snapshot, pk, version, read| {
            row_record(&arn(table), snapshot, &schema(), &item(pk, version), read)
                .event_id()
                .unwrap()
                .to_owned()
        };
        let first = id("ttt", 1_000, "alice", 1, 2_000);
        assert_eq!(first, id("ttt", 1_000, "alice", 9, 9_000));
        assert_ne!(first, id("ttt", 1_000, "bob", 1, 2_000));
        assert_ne!(first, id("uuu", 1_000, "alice", 1, 2_000));
        assert_ne!(first, id("ttt", 1_001, "alice", 1, 2_000));
        // UUID-shaped, version 8.
        assert_eq!(first.len(), 36);
        assert_eq!(&first[14..15], "8");
    }
}
