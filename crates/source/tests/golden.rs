//! The default `data` bytes against golden files made by the original's own
//! encoder (aws-sdk-go v1 + Go's encoding/json; see `tools/golden-gen`).
//!
//! Each `testdata/golden/NAME.input.json` is a GetRecords answer as the
//! service sends it. It goes through the real AWS SDK for Rust (a fake at
//! its HTTP layer serves the bytes), and every record's encoding must equal
//! the matching line of `NAME.golden.jsonl`, byte for byte.
//!
//! `testdata/golden/beyond-wire/` is not tested: it documents inputs the
//! service never sends (invalid unions, out-of-range times) where aws-sdk-go
//! v1 has quirks; the Rust SDK refuses most of them outright.

use std::path::{Path, PathBuf};

use awsdynamodb_source::test_support::{encode_record, records_page};
use golden_inputs::{golden_dir, inputs, records_from};

mod golden_inputs;

/// Compares one input file; returns the mismatches.
async fn check(input: &Path) -> (usize, Vec<String>) {
    let golden_path = PathBuf::from(
        input
            .to_string_lossy()
            .replace(".input.json", ".golden.jsonl"),
    );
    let golden = std::fs::read_to_string(&golden_path)
        .unwrap_or_else(|e| panic!("{}: {e}", golden_path.display()));
    let expected: Vec<&str> = golden.lines().collect();
    let records = records_from(std::fs::read(input).unwrap()).await;
    assert_eq!(
        records.len(),
        expected.len(),
        "{}: record count",
        input.display()
    );
    let mut mismatches = Vec::new();
    for (i, (record, want)) in records.iter().zip(&expected).enumerate() {
        let mut got = Vec::new();
        encode_record(record, &mut got);
        let got = String::from_utf8(got).unwrap();
        if got != *want {
            mismatches.push(format!(
                "{} record {i}:\n  want {want}\n  got  {got}",
                input.display()
            ));
        }
    }
    (records.len(), mismatches)
}

#[tokio::test]
async fn every_record_is_byte_equal_to_the_originals_encoding() {
    let files = inputs(&golden_dir());
    assert!(files.len() >= 8, "golden inputs missing: {files:?}");
    let mut total = 0;
    let mut mismatches = Vec::new();
    for input in &files {
        let (n, bad) = check(input).await;
        total += n;
        mismatches.extend(bad);
    }
    assert!(
        mismatches.is_empty(),
        "{} of {total} records differ:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert!(total >= 50, "only {total} golden records");
}

/// GetRecords answers are decoded by the adapter itself once the endpoint
/// is known (the SDK's per-call cost is the idle cost of many shards): its
/// decoder must give the SDK's records, field for field, for every input.
#[tokio::test]
async fn the_direct_decoder_reads_every_answer_as_the_sdk_does() {
    let files = inputs(&golden_dir());
    let mut records = 0;
    for input in &files {
        let body = std::fs::read(input).unwrap();
        let sdk = records_from(body.clone()).await;
        let direct = records_page(&body)
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()))
            .records;
        assert_eq!(direct, sdk, "{}", input.display());
        records += sdk.len();
    }
    assert!(records >= 50, "only {records} records compared");
}
