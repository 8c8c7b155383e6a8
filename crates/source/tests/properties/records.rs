//! Stream records: decoding into a `ChangeRecord`, and the three data
//! formats' encoders.

use std::collections::HashMap;
use std::sync::LazyLock;

use awsdynamodb_source::test_support::format_time;
use awsdynamodb_source::test_support::{ChangeRecord, ItemKey};
use jsonschema::Validator;
use proptest::prelude::*;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::arbitrary::{any_date_time, any_record, dynamodb_record};
use crate::config;
use crate::support::schemas::{FORMATS, Format, errors};

/// One validator per format, in [`FORMATS`]' order: built once, they are
/// the slow part.
static VALIDATORS: LazyLock<Vec<Validator>> =
    LazyLock::new(|| FORMATS.iter().map(|f| f.validator()).collect());

/// The validator of `format`'s schema.
pub fn validator(format: Format) -> &'static Validator {
    let at = FORMATS
        .iter()
        .position(|f| *f == format)
        .expect("every format is in FORMATS");
    &VALIDATORS[at]
}

/// Whether the source takes `text` as a sequence number: 1 to 40 ASCII
/// digits, as its documentation says.
fn is_sequence_number(text: &str) -> bool {
    (1..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}

proptest! {
    #![proptest_config(config(256))]

    /// Any record decodes, or is refused only for want of a sequence number,
    /// with an error naming the record; a decoded one keeps its sequence
    /// number, time and item, and its item does not depend on the order the
    /// key map happens to iterate in.
    #[test]
    fn a_record_decodes_unless_its_sequence_number_is_bad(record in any_record()) {
        let sequence = record.dynamodb().and_then(|d| d.sequence_number()).map(str::to_owned);
        let keys = record.dynamodb().and_then(|d| d.keys()).cloned();
        let created = record.dynamodb().and_then(|d| d.approximate_creation_date_time()).cloned();
        let event_id = record.event_id().map(str::to_owned);
        match ChangeRecord::new(record) {
            Ok(change) => {
                let sequence = sequence.expect("decoded without a sequence number");
                prop_assert!(is_sequence_number(&sequence), "took {sequence:?}");
                prop_assert_eq!(change.sequence.as_str(), sequence.as_str());
                prop_assert_eq!(change.created(), created.as_ref());
                // A new map: another hasher seed, another iteration order.
                let reordered: Option<HashMap<_, _>> = keys.map(|k| {
                    let mut entries: Vec<_> = k.into_iter().collect();
                    entries.reverse();
                    entries.into_iter().collect()
                });
                prop_assert_eq!(change.item, ItemKey::of(reordered.as_ref()));
            }
            Err(e) => {
                prop_assert!(
                    !sequence.as_deref().is_some_and(is_sequence_number),
                    "refused {sequence:?}: {e}"
                );
                let message = e.to_string();
                prop_assert!(message.contains(&format!("{event_id:?}")), "{message}");
                prop_assert!(message.contains("sequence number"), "{message}");
            }
        }
    }

    /// Whatever a record holds, each format writes one JSON object, the same
    /// bytes every time (map order never leaks out).
    #[test]
    fn every_format_writes_a_json_object_for_any_record(record in any_record()) {
        for format in FORMATS {
            let bytes = format.encode(&record);
            let doc: Value = match serde_json::from_slice(&bytes) {
                Ok(doc) => doc,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "{}: not JSON ({e}): {}",
                        format.name(),
                        String::from_utf8_lossy(&bytes)
                    )));
                }
            };
            prop_assert!(doc.is_object(), "{}: {doc}", format.name());
            prop_assert!(format.encode(&record) == bytes, "{}: bytes differ", format.name());
        }
    }
}

proptest! {
    // Schema validation of records this size is the slow part.
    #![proptest_config(config(128))]

    /// Every record DynamoDB can send satisfies the published schema of
    /// each format.
    #[test]
    fn what_dynamodb_sends_satisfies_every_schema(record in dynamodb_record()) {
        for format in FORMATS {
            let doc: Value = serde_json::from_slice(&format.encode(&record))
                .map_err(|e| TestCaseError::fail(format!("{}: not JSON: {e}", format.name())))?;
            let errs = errors(validator(format), &doc);
            prop_assert!(errs.is_empty(), "{}: {errs:#?}\n{doc}", format.name());
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    /// A creation time, whatever instant it holds, is written as RFC 3339 in
    /// UTC with a four-digit year: the instant to the millisecond when it
    /// has such a year, else Go's zero time (as the original could not
    /// print it either). CloudEvents' `time` and two formats rely on it.
    #[test]
    fn a_creation_time_is_always_rfc_3339(t in any_date_time()) {
        let text = format_time(&t);
        let parsed = OffsetDateTime::parse(&text, &Rfc3339)
            .map_err(|e| TestCaseError::fail(format!("{t:?} → {text:?}: {e}")))?;
        prop_assert!(text.ends_with('Z'), "{text}");
        prop_assert!(text.as_bytes().get(4) == Some(&b'-'), "{text}");
        // `.mmm` at most.
        if let Some((_, fraction)) = text.trim_end_matches('Z').split_once('.') {
            prop_assert!(fraction.len() <= 3, "{text}");
        }
        let millis = (i128::from(t.secs()) * 1000)
            + i128::from((t.subsec_nanos() + 500) / 1_000_000);
        let written = parsed.unix_timestamp_nanos() / 1_000_000;
        if written != millis {
            prop_assert_eq!(text.as_str(), "0001-01-01T00:00:00Z", "{:?}", t);
            let year_10000 = 253_402_300_800_000i128;
            let year_0 = -62_167_219_200_000i128;
            prop_assert!(!(year_0..year_10000).contains(&millis), "{t:?} → {text}");
        }
    }
}
