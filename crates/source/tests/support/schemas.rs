//! The three data formats and their published JSON Schemas (`schemas/` at
//! the repository's root): how the format tests and the property tests
//! encode a record and validate what comes out.

use std::path::{Path, PathBuf};

use aws_sdk_dynamodbstreams::types::Record;
use awsdynamodb_source::test_support::DataFormat;
use awsdynamodb_source::test_support::encode_aws;
use awsdynamodb_source::test_support::encode_plain;
use awsdynamodb_source::test_support::encode_record;
use jsonschema::Validator;
use serde_json::Value;

/// The stream the `aws` format names as `eventSourceARN`.
pub const STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000";
/// The table the `plain` format names.
pub const TABLE: &str = "orders";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Triggermesh,
    Aws,
    Plain,
}

pub const FORMATS: [Format; 3] = [Format::Triggermesh, Format::Aws, Format::Plain];

impl From<DataFormat> for Format {
    fn from(format: DataFormat) -> Self {
        match format {
            DataFormat::TriggerMesh => Format::Triggermesh,
            DataFormat::Aws => Format::Aws,
            DataFormat::Plain => Format::Plain,
        }
    }
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Triggermesh => "triggermesh",
            Format::Aws => "aws",
            Format::Plain => "plain",
        }
    }

    /// The record's `data` in this format, for [`STREAM_ARN`] and [`TABLE`].
    pub fn encode(self, record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Format::Triggermesh => encode_record(record, &mut out),
            Format::Aws => encode_aws(record, STREAM_ARN, &mut out),
            Format::Plain => encode_plain(record, TABLE, &mut out),
        }
        out
    }

    pub fn schema_path(self) -> PathBuf {
        // At run time: a build cache shared by two checkouts must not send
        // this test to the other one's files.
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../schemas")
            .join(format!(
                "com.amazon.dynamodb.stream_record.{}.json",
                self.name()
            ))
    }

    pub fn schema(self) -> Value {
        let path = self.schema_path();
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn validator(self) -> Validator {
        jsonschema::draft202012::options()
            // `date-time` is only an annotation unless asked for.
            .should_validate_formats(true)
            .build(&self.schema())
            .unwrap_or_else(|e| panic!("{} schema: {e}", self.name()))
    }
}

/// Every way `doc` breaks the schema, each with where.
pub fn errors(validator: &Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}
