//! Scan pages of one segment of a parallel scan (`Segment`/`TotalSegments`),
//! strongly consistent, each ending at a [`ScanCursor`] that a checkpoint can
//! keep: a scan resumed from it reads the rest of the segment, nothing twice
//! and nothing skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, StreamViewType};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::ReadRate;
use crate::stream::ApiError;
use crate::stream::aws::classify;

/// A key attribute's value: DynamoDB keys are strings, numbers or binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum KeyValue {
    S(String),
    /// As DynamoDB writes it: decimal text, never a float.
    N(String),
    /// Base64, as in DynamoDB's JSON.
    B(String),
}

/// Where a segment's scan goes on: the last key read (DynamoDB's
/// `LastEvaluatedKey`), as JSON the checkpoint file can hold
/// (`{"pk":{"S":"a"},"sk":{"N":"1"}}`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ScanCursor(pub BTreeMap<String, KeyValue>);

impl ScanCursor {
    fn from_key(key: &HashMap<String, AttributeValue>) -> Result<ScanCursor, ApiError> {
        key.iter()
            .map(|(name, value)| {
                let value = match value {
                    AttributeValue::S(s) => KeyValue::S(s.clone()),
                    AttributeValue::N(n) => KeyValue::N(n.clone()),
                    AttributeValue::B(b) => KeyValue::B(BASE64.encode(b.as_ref())),
                    other => {
                        return Err(ApiError::Rejected(format!(
                            "a scan's last key has {name} of an unexpected type: {other:?}"
                        )));
                    }
                };
                Ok((name.clone(), value))
            })
            .collect::<Result<_, _>>()
            .map(ScanCursor)
    }

    fn to_key(&self) -> Result<HashMap<String, AttributeValue>, ApiError> {
        self.0
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    KeyValue::S(s) => AttributeValue::S(s.clone()),
                    KeyValue::N(n) => AttributeValue::N(n.clone()),
                    KeyValue::B(b) => {
                        AttributeValue::B(Blob::new(BASE64.decode(b).map_err(|e| {
                            ApiError::Rejected(format!("a saved scan cursor is damaged: {e}"))
                        })?))
                    }
                };
                Ok((name.clone(), value))
            })
            .collect()
    }
}

/// An item as the table API gives it.
pub type Item = HashMap<String, AttributeValue>;

/// One page of a segment.
#[derive(Debug, Clone)]
pub struct ScanPage {
    pub items: Vec<Item>,
    /// Where the segment goes on after this page; `None`: it is done.
    pub next: Option<ScanCursor>,
    /// Read capacity units the page cost (0 when DynamoDB does not say).
    pub consumed: f64,
}

/// Why a snapshot of the table cannot be taken; each is one line naming
/// what to change.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotCheckError {
    #[error(
        "SNAPSHOT=initial needs the stream to carry new images, and table {table}'s stream view type is {view}: set it to NEW_IMAGE or NEW_AND_OLD_IMAGES"
    )]
    NoNewImages { table: String, view: String },
    #[error("SNAPSHOT=initial: permission denied: {action} on table {table} ({detail})")]
    Denied {
        action: &'static str,
        table: String,
        detail: String,
    },
    #[error("SNAPSHOT=initial: {action} on table {table} failed: {error}")]
    Failed {
        action: &'static str,
        table: String,
        error: ApiError,
    },
}

/// What a snapshot needs to know of the table before it begins.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFacts {
    /// DescribeTable's item count (AWS updates it about every six hours):
    /// the estimate a progress bar divides by.
    pub estimated_items: i64,
}

/// Scans one table in `total_segments` segments.
#[derive(Clone)]
pub struct TableScanner {
    client: Client,
    table: String,
    total_segments: u32,
    page_limit: Option<i32>,
    rate: Option<Arc<ReadRate>>,
}

impl TableScanner {
    /// Strongly consistent pages of `table` in `total_segments` segments (at
    /// least 1), at most `page_limit` items each (else DynamoDB's 1 MB), all
    /// segments together within `rate` when given.
    pub fn new(
        client: Client,
        table: &str,
        total_segments: u32,
        page_limit: Option<i32>,
        rate: Option<Arc<ReadRate>>,
    ) -> TableScanner {
        TableScanner {
            client,
            table: table.to_owned(),
            total_segments: total_segments.max(1),
            page_limit,
            rate,
        }
    }

    pub fn total_segments(&self) -> u32 {
        self.total_segments
    }

    /// Checks, before a snapshot begins, that the stream carries new images
    /// (DescribeTable) and that the table may be scanned (a one-item Scan):
    /// without them it would fail, or miss changes, halfway.
    pub async fn check(&self) -> Result<TableFacts, SnapshotCheckError> {
        let failed = |action: &'static str, error: ApiError| match error {
            ApiError::AccessDenied(detail) => SnapshotCheckError::Denied {
                action,
                table: self.table.clone(),
                detail,
            },
            error => SnapshotCheckError::Failed {
                action,
                table: self.table.clone(),
                error,
            },
        };
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| failed("dynamodb:DescribeTable", classify(e)))?;
        let table = described.table();
        let view = table
            .and_then(|t| t.stream_specification())
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type());
        if !matches!(
            view,
            Some(StreamViewType::NewImage | StreamViewType::NewAndOldImages)
        ) {
            return Err(SnapshotCheckError::NoNewImages {
                table: self.table.clone(),
                view: view.map_or("none (no stream)", |v| v.as_str()).to_owned(),
            });
        }
        self.client
            .scan()
            .table_name(&self.table)
            .limit(1)
            .send()
            .await
            .map_err(|e| failed("dynamodb:Scan", classify(e)))?;
        Ok(TableFacts {
            estimated_items: table.and_then(|t| t.item_count()).unwrap_or(0),
        })
    }

    /// The next page of `segment`, after `cursor` (`None`: from its start).
    pub async fn page(
        &self,
        segment: u32,
        cursor: Option<&ScanCursor>,
    ) -> Result<ScanPage, ApiError> {
        if let Some(rate) = &self.rate {
            rate.ready().await;
        }
        let start = cursor.map(ScanCursor::to_key).transpose()?;
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment as i32)
            .total_segments(self.total_segments as i32)
            .consistent_read(true)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .set_limit(self.page_limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(classify)?;
        let consumed = out
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .unwrap_or(0.0);
        if let Some(rate) = &self.rate {
            rate.spent(consumed);
        }
        Ok(ScanPage {
            next: out
                .last_evaluated_key()
                .filter(|k| !k.is_empty())
                .map(ScanCursor::from_key)
                .transpose()?,
            items: out.items.unwrap_or_default(),
            consumed,
        })
    }
}
