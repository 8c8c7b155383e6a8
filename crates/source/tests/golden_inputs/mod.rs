//! The golden GetRecords answers (`testdata/golden/*.input.json`), decoded
//! by the real SDK: shared by the golden-bytes test and the formats test.

use std::path::{Path, PathBuf};

use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodbstreams::types::Record;
use aws_smithy_http_client::test_util::infallible_client_fn;

/// `testdata/golden`, found at run time (a build cache shared by two
/// checkouts must not send a test to the other one's files).
pub fn golden_dir() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("testdata/golden")
}

/// The input files, sorted.
pub fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".input.json"))
        .collect();
    files.sort();
    files
}

/// Decodes a GetRecords body with the SDK, as in production.
pub async fn records_from(body: Vec<u8>) -> Vec<Record> {
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
