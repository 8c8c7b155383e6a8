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

use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodbstreams::types::Record;
use aws_smithy_http_client::test_util::infallible_client_fn;
use awsdynamodb_source::event::data::encode_record;

fn golden_dir() -> PathBuf {
    // At run time: a build cache shared by two checkouts must not send
    // this test to the other one.
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("testdata/golden")
}

/// Decodes a GetRecords body with the SDK, as in production.
async fn records_from(body: Vec<u8>) -> Vec<Record> {
    let http = infallible_client_fn(move |_req| {
        http::Response::builder()
            .status(200)
            .header("content-type", "application/x-amz-json-1.0")
            .body(body.clone())
            .unwrap()
    });
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "SECRET", None, None, "golden"))
        .http_client(http)
        .build();
    let client = aws_sdk_dynamodbstreams::Client::from_conf(config);
    let out = client
        .get_records()
        .shard_iterator("it")
        .send()
        .await
        .expect("the SDK decodes the input");
    out.records.unwrap_or_default()
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".input.json"))
        .collect();
    files.sort();
    files
}

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
