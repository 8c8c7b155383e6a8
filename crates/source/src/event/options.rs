//! What users choose about their events: the data format, the subject, the
//! optional extensions and where the data's schema is published.
//!
//! Parsing only: each option's text as the adapter's variable gives it, with
//! an error naming the variable. How an option shapes an event is
//! `EventBuilder`'s business.

use std::fmt;
use std::str::FromStr;

use awsdynamodbsource_vars as vars;

/// The shape of `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataFormat {
    /// The original's bytes: aws-sdk-go v1's `Record` through `encoding/json`.
    #[default]
    TriggerMesh,
    /// The record as the Streams API and AWS Lambda give it, plus `eventSourceARN`.
    Aws,
    /// Items as ordinary JSON, with the change's context.
    Plain,
}

impl DataFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::TriggerMesh => "triggermesh",
            DataFormat::Aws => "aws",
            DataFormat::Plain => "plain",
        }
    }

    /// The file name of this format's JSON Schema (under `schemas/`).
    pub fn schema_file(self) -> String {
        format!("com.amazon.dynamodb.stream_record.{}.json", self.as_str())
    }
}

impl FromStr for DataFormat {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        match s {
            "triggermesh" | "" => Ok(DataFormat::TriggerMesh),
            "aws" => Ok(DataFormat::Aws),
            "plain" => Ok(DataFormat::Plain),
            other => Err(OptionError::new(
                vars::DATA_FORMAT,
                format!("{other:?} is not one of triggermesh, aws, plain"),
            )),
        }
    }
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `subject` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectMode {
    /// The key attributes' names, `pk,sk` (the original's).
    #[default]
    KeyNames,
    /// The item's key, `pk=alice,sk=42`: one subject per item.
    Keys,
}

impl FromStr for SubjectMode {
    type Err = OptionError;
    fn from_str(s: &str) -> Result<Self, OptionError> {
        match s {
            "keynames" | "" => Ok(SubjectMode::KeyNames),
            "keys" => Ok(SubjectMode::Keys),
            other => Err(OptionError::new(
                vars::SUBJECT,
                format!("{other:?} is not one of keynames, keys"),
            )),
        }
    }
}

/// The optional extensions an event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extensions {
    /// `dynamodbtable`: the table's name.
    pub table: bool,
    /// `dynamodbshard`: the shard's id.
    pub shard: bool,
    /// `sequence`: the sequence number, zero-padded to 40 digits so that it
    /// sorts as text.
    pub sequence: bool,
    /// `streamviewtype`: what the stream records carry.
    pub stream_view_type: bool,
}

impl FromStr for Extensions {
    type Err = OptionError;
    /// A comma list, e.g. `dynamodbtable,sequence`.
    fn from_str(s: &str) -> Result<Self, OptionError> {
        let mut out = Extensions::default();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "dynamodbtable" => out.table = true,
                "dynamodbshard" => out.shard = true,
                "sequence" => out.sequence = true,
                "streamviewtype" => out.stream_view_type = true,
                other => {
                    return Err(OptionError::new(
                        vars::EXTENSIONS,
                        format!(
                            "{other:?} is not one of dynamodbtable, dynamodbshard, sequence, streamviewtype"
                        ),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// Everything an event's shape depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventOptions {
    pub data_format: DataFormat,
    pub subject: SubjectMode,
    pub extensions: Extensions,
    /// Where the formats' schemas are published: `dataschema` is
    /// `<base>/<format's schema file>`.
    pub dataschema_base: Option<String>,
}

impl EventOptions {
    /// The `dataschema` attribute, when a base is set.
    pub fn dataschema(&self) -> Option<String> {
        self.dataschema_base.as_ref().map(|base| {
            format!(
                "{}/{}",
                base.trim_end_matches('/'),
                self.data_format.schema_file()
            )
        })
    }
}

/// A bad option value, naming its variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct OptionError {
    pub variable: &'static str,
    pub problem: String,
}

impl OptionError {
    fn new(variable: &'static str, problem: String) -> Self {
        OptionError { variable, problem }
    }
}

/// The sequence number as the `sequence` extension: zero-padded to 40
/// digits (DynamoDB's have up to 40), so that text order is number order.
pub fn padded_sequence(sequence: &str) -> String {
    format!("{sequence:0>40}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_bad_ones_name_their_variable() {
        assert_eq!("aws".parse::<DataFormat>().unwrap(), DataFormat::Aws);
        assert_eq!("".parse::<DataFormat>().unwrap(), DataFormat::TriggerMesh);
        assert_eq!(
            "json".parse::<DataFormat>().unwrap_err().to_string(),
            "DATA_FORMAT: \"json\" is not one of triggermesh, aws, plain"
        );
        assert_eq!("keys".parse::<SubjectMode>().unwrap(), SubjectMode::Keys);
        assert!(
            "key"
                .parse::<SubjectMode>()
                .unwrap_err()
                .to_string()
                .starts_with("SUBJECT:")
        );
        let e: Extensions = "sequence, dynamodbtable".parse().unwrap();
        assert!(e.sequence && e.table && !e.shard && !e.stream_view_type);
        assert!(
            "sequence,nope"
                .parse::<Extensions>()
                .unwrap_err()
                .to_string()
                .contains("\"nope\"")
        );
    }

    #[test]
    fn dataschema_names_the_formats_schema() {
        let options = EventOptions {
            data_format: DataFormat::Plain,
            dataschema_base: Some("https://example.com/schemas/".into()),
            ..EventOptions::default()
        };
        assert_eq!(
            options.dataschema().as_deref(),
            Some("https://example.com/schemas/com.amazon.dynamodb.stream_record.plain.json")
        );
        assert_eq!(EventOptions::default().dataschema(), None);
    }

    #[test]
    fn padded_sequences_sort_as_numbers() {
        let (a, b) = (padded_sequence("999"), padded_sequence("1000"));
        assert_eq!(a.len(), 40);
        assert!(a < b);
    }
}
