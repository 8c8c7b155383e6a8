//! One stream record as read from a shard, with what the later stages need
//! worked out once: its sequence number, which item it changes, when.
//!
//! Owns the record's identity. It never encodes or sends anything: turning a
//! record into a CloudEvent is `event`'s job.

mod sequence;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

pub use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use aws_smithy_types::DateTime;
pub use sequence::SequenceNumber;

/// Which item a record changes: a hash of its key attributes. Two records of
/// one item always get the same key; two items rarely share one, and when they
/// do the only effect is that one waits for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ItemKey(u64);

impl ItemKey {
    pub fn of(keys: Option<&HashMap<String, AttributeValue>>) -> ItemKey {
        let mut hasher = std::hash::DefaultHasher::new();
        if let Some(keys) = keys {
            let mut names: Vec<&String> = keys.keys().collect();
            names.sort();
            for name in names {
                name.hash(&mut hasher);
                hash_value(&keys[name], &mut hasher);
            }
        }
        ItemKey(hasher.finish())
    }
}

fn hash_value(value: &AttributeValue, h: &mut impl Hasher) {
    // Key attributes are S, N or B; the rest is here so that any map hashes.
    match value {
        AttributeValue::S(s) => (0u8, s).hash(h),
        AttributeValue::N(n) => (1u8, n).hash(h),
        AttributeValue::B(b) => (2u8, b.as_ref()).hash(h),
        other => (3u8, format!("{other:?}")).hash(h),
    }
}

/// A record that cannot be placed in its shard's order.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("stream record {event_id:?} has no valid sequence number")]
    NoSequenceNumber { event_id: Option<String> },
}

/// A stream record and the facts every later stage asks of it.
#[derive(Debug, Clone)]
pub struct ChangeRecord {
    pub record: Record,
    pub sequence: SequenceNumber,
    pub item: ItemKey,
}

impl ChangeRecord {
    pub fn new(record: Record) -> Result<Self, RecordError> {
        let stream_record = record.dynamodb();
        let sequence = stream_record
            .and_then(|r| r.sequence_number())
            .and_then(SequenceNumber::parse)
            .ok_or_else(|| RecordError::NoSequenceNumber {
                event_id: record.event_id().map(str::to_owned),
            })?;
        let item = ItemKey::of(stream_record.and_then(|r| r.keys()));
        Ok(ChangeRecord {
            record,
            sequence,
            item,
        })
    }

    /// `ApproximateCreationDateTime`, when the record carries it.
    pub fn created(&self) -> Option<&DateTime> {
        self.record
            .dynamodb()
            .and_then(|r| r.approximate_creation_date_time())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::StreamRecord;

    fn record(seq: Option<&str>, keys: &[(&str, AttributeValue)]) -> Record {
        let mut sr = StreamRecord::builder().set_sequence_number(seq.map(str::to_owned));
        for (k, v) in keys {
            sr = sr.keys(*k, v.clone());
        }
        Record::builder()
            .event_id("e1")
            .dynamodb(sr.build())
            .build()
    }

    #[test]
    fn same_item_same_key_whatever_the_map_order() {
        let a = ChangeRecord::new(record(
            Some("100000000000000000001"),
            &[
                ("pk", AttributeValue::S("a".into())),
                ("sk", AttributeValue::N("1".into())),
            ],
        ))
        .unwrap();
        let b = ChangeRecord::new(record(
            Some("100000000000000000002"),
            &[
                ("sk", AttributeValue::N("1".into())),
                ("pk", AttributeValue::S("a".into())),
            ],
        ))
        .unwrap();
        let c = ChangeRecord::new(record(
            Some("100000000000000000003"),
            &[
                ("pk", AttributeValue::S("a".into())),
                ("sk", AttributeValue::S("1".into())),
            ],
        ))
        .unwrap();
        assert_eq!(a.item, b.item);
        assert_ne!(a.item, c.item, "S \"1\" and N 1 are different items");
        assert!(a.sequence < b.sequence);
    }

    #[test]
    fn a_record_without_sequence_number_is_an_error() {
        let err = ChangeRecord::new(record(None, &[])).unwrap_err();
        assert!(err.to_string().contains("e1"));
    }
}
