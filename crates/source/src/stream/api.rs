//! The four DynamoDB Streams actions, as the engine needs them, behind a
//! small trait: the AWS SDK implements it in production (`aws.rs`), tests
//! can put a fake behind it.

use async_trait::async_trait;

use crate::record::{Record, SequenceNumber};

/// A stream of the table, as ListStreams names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    pub arn: String,
    /// Orders the table's streams: the newest has the greatest label.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    Enabling,
    Enabled,
    Disabling,
    Disabled,
    Other(String),
}

/// The table's key attributes, in the order the subject names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    pub hash: String,
    pub range: Option<String>,
}

/// A shard as DescribeStream lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: String,
    pub parent: Option<String>,
    /// It has an ending sequence number: no record will be added to it.
    pub closed: bool,
}

/// One page of DescribeStream (or all of them, from
/// `describe_all`).
#[derive(Debug, Clone)]
pub struct StreamDescription {
    pub status: StreamStatus,
    pub key_schema: Option<KeySchema>,
    pub shards: Vec<ShardInfo>,
    pub last_evaluated_shard_id: Option<String>,
}

/// Where a new shard iterator points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IteratorPosition {
    TrimHorizon,
    Latest,
    AfterSequence(SequenceNumber),
}

impl std::fmt::Display for IteratorPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IteratorPosition::TrimHorizon => f.write_str("TRIM_HORIZON"),
            IteratorPosition::Latest => f.write_str("LATEST"),
            IteratorPosition::AfterSequence(seq) => write!(f, "after {seq}"),
        }
    }
}

/// One GetRecords answer. No `next_iterator` means the shard is closed and
/// everything in it has been read.
#[derive(Debug, Clone)]
pub struct RecordsPage {
    pub records: Vec<Record>,
    pub next_iterator: Option<String>,
}

/// What went wrong, sorted by what the engine does about it (the table in
/// `dynamodb-streams.md`). Messages never carry credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("the shard iterator expired")]
    ExpiredIterator,
    #[error("records were trimmed from the stream before they were read: {0}")]
    TrimmedData(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("access denied: {0}")]
    AccessDenied(String),
    #[error("no usable AWS credentials: {0}")]
    Credentials(String),
    #[error("request rejected: {0}")]
    Rejected(String),
    #[error("{0}")]
    Transient(String),
}

impl ApiError {
    /// Worth retrying as it is, after a pause.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Throttled(_) | ApiError::Transient(_))
    }

    /// The metric label (one of `metrics::AWS_ERROR_CLASSES`).
    pub fn class(&self) -> &'static str {
        match self {
            ApiError::ExpiredIterator => "expired_iterator",
            ApiError::TrimmedData(_) => "trimmed_data",
            ApiError::NotFound(_) => "not_found",
            ApiError::Throttled(_) => "throttled",
            ApiError::AccessDenied(_) => "access_denied",
            ApiError::Credentials(_) => "credentials",
            ApiError::Rejected(_) => "rejected",
            ApiError::Transient(_) => "transient",
        }
    }
}

#[async_trait]
pub trait StreamsApi: Send + Sync + 'static {
    /// Every stream of the table (all pages).
    async fn list_streams(&self, table: &str) -> Result<Vec<StreamSummary>, ApiError>;

    /// One page of the stream's description. `children_of` asks for the
    /// CHILD_SHARDS filter; endpoints may ignore it.
    async fn describe_stream(
        &self,
        stream_arn: &str,
        exclusive_start_shard_id: Option<&str>,
        children_of: Option<&str>,
    ) -> Result<StreamDescription, ApiError>;

    async fn get_shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        position: &IteratorPosition,
    ) -> Result<String, ApiError>;

    async fn get_records(&self, iterator: &str) -> Result<RecordsPage, ApiError>;
}
