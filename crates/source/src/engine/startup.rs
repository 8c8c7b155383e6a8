//! Start-up checks: before anything runs, the table has a stream and the
//! four actions the IAM policy must allow work.
//!
//! Owns the one-line reasons a source cannot start. It never reads records
//! for delivery and never retries past its timeout.

use std::time::Duration;

use awsdynamodbsource_vars as vars;
use tokio::time::Instant;

use crate::arn::TableArn;
use crate::stream::{self, AWS_RETRY, ApiError, IteratorPosition, StreamsApi};

/// Why the source cannot start. Each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("table {table} not found ({detail})")]
    TableNotFound { table: String, detail: String },
    #[error("table {table} has no stream: enable a stream on it (or check that the table exists)")]
    NoStream { table: String },
    #[error(
        "permission denied: {detail}. The policy must allow dynamodb:ListStreams, DescribeStream, GetShardIterator and GetRecords"
    )]
    Denied { detail: String },
    #[error(
        "no usable AWS credentials ({0}). Give the adapter some: {key} and {secret}, an IAM role for its service account, or a profile",
        key = vars::AWS_ACCESS_KEY_ID,
        secret = vars::AWS_SECRET_ACCESS_KEY
    )]
    Credentials(String),
    #[error("{action} was refused: {detail}")]
    Rejected {
        action: &'static str,
        detail: String,
    },
    #[error("cannot reach DynamoDB Streams within {timeout:?}: {last}")]
    Unreachable { timeout: Duration, last: String },
}

/// Checks, before anything runs, that the table has a stream and that the
/// four actions are allowed: ListStreams, then DescribeStream on the newest
/// stream and GetShardIterator(LATEST)/GetRecords on one of its open shards
/// (which reads nothing that matters). Transient failures are retried until
/// `timeout`.
pub async fn preflight(
    api: &dyn StreamsApi,
    table: &TableArn,
    timeout: Duration,
) -> Result<(), StartupError> {
    let deadline = Instant::now() + timeout;
    let mut pauses = AWS_RETRY.pauses();
    loop {
        let (action, e) = match try_preflight(api, table).await {
            Ok(()) => return Ok(()),
            Err(Failure::NoStream) => {
                return Err(StartupError::NoStream {
                    table: table.table().to_owned(),
                });
            }
            Err(Failure::Api(action, e)) => (action, e),
        };
        // Tried until the deadline itself: one last attempt comes at it.
        let left = deadline.saturating_duration_since(Instant::now());
        if e.is_transient() && !left.is_zero() {
            tracing::warn!(error = %e, "DynamoDB Streams not reachable yet; retrying");
            tokio::time::sleep(pauses.next_pause().min(left)).await;
            continue;
        }
        return Err(match e {
            ApiError::NotFound(detail) if action == "ListStreams" => StartupError::TableNotFound {
                table: table.table().to_owned(),
                detail,
            },
            ApiError::AccessDenied(detail) => StartupError::Denied {
                detail: format!("{action}: {detail}"),
            },
            ApiError::Credentials(detail) => StartupError::Credentials(detail),
            ApiError::NotFound(detail) | ApiError::Rejected(detail) => {
                StartupError::Rejected { action, detail }
            }
            // The stream is there and readable; the reader handles these.
            ApiError::ExpiredIterator | ApiError::TrimmedData(_) => return Ok(()),
            ApiError::Throttled(last) | ApiError::Transient(last) => {
                StartupError::Unreachable { timeout, last }
            }
        });
    }
}

async fn try_preflight(api: &dyn StreamsApi, table: &TableArn) -> Result<(), Failure> {
    let streams = api
        .list_streams(table.table())
        .await
        .map_err(|e| Failure::Api("ListStreams", e))?;
    let newest = stream::newest(&streams).ok_or(Failure::NoStream)?;
    let page = api
        .describe_stream(&newest.arn, None, None)
        .await
        .map_err(|e| Failure::Api("DescribeStream", e))?;
    if let Some(open) = page.shards.iter().find(|s| !s.closed) {
        let iterator = api
            .get_shard_iterator(&newest.arn, &open.id, &IteratorPosition::Latest)
            .await
            .map_err(|e| Failure::Api("GetShardIterator", e))?;
        api.get_records(&iterator)
            .await
            .map_err(|e| Failure::Api("GetRecords", e))?;
    }
    Ok(())
}

enum Failure {
    NoStream,
    Api(&'static str, ApiError),
}
