//! Stream discovery: which of the table's streams to read, its shards, and
//! the order they may be read in.
//!
//! Owns every call of ListStreams and DescribeStream. It never reads records
//! (that is `shard`'s job) and never calls an AWS action beyond the four the
//! documented IAM policy grants.

use std::time::Duration;

use awsdynamodbsource_cloudevents::backoff::Backoff;

mod api;
pub mod aws;
mod counted;
mod lineage;
mod records_json;
mod signed;

pub use api::{
    ApiError, IteratorPosition, KeySchema, RecordsPage, ShardInfo, StreamDescription, StreamStatus,
    StreamSummary, StreamsApi,
};
pub use counted::CountedApi;
pub use lineage::{ShardState, ShardTree};
#[doc(hidden)]
pub use records_json::records_page;

/// The pauses between failed calls to DynamoDB Streams, for every loop that
/// retries one (the AWS SDK's own retries are off: see [`aws`]).
pub(crate) const AWS_RETRY: Backoff =
    Backoff::jittered(Duration::from_millis(100), Duration::from_secs(5));

/// AWS allows 10 DescribeStream calls a second per account.
const DESCRIBE_SPACING: Duration = Duration::from_millis(100);

/// Keeps a source's DescribeStream calls [`DESCRIBE_SPACING`] apart, so that
/// paging a stream of thousands of shards stays within AWS's rate.
#[derive(Debug)]
pub struct DescribePacer {
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Default for DescribePacer {
    fn default() -> Self {
        DescribePacer {
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }
}

impl DescribePacer {
    /// Waits until the next call may start.
    async fn ready(&self) {
        let mut next = self.next.lock().await;
        tokio::time::sleep_until(*next).await;
        *next = tokio::time::Instant::now() + DESCRIBE_SPACING;
    }
}

/// Every shard of a stream, paging DescribeStream to the end.
pub async fn describe_all(
    api: &dyn StreamsApi,
    pacer: &DescribePacer,
    stream_arn: &str,
) -> Result<StreamDescription, ApiError> {
    pacer.ready().await;
    let mut page = api.describe_stream(stream_arn, None, None).await?;
    let mut shards = std::mem::take(&mut page.shards);
    while let Some(last) = page.last_evaluated_shard_id.take() {
        pacer.ready().await;
        let next = api.describe_stream(stream_arn, Some(&last), None).await?;
        shards.extend(next.shards);
        page.last_evaluated_shard_id = next.last_evaluated_shard_id;
        page.status = next.status;
    }
    page.shards = shards;
    Ok(page)
}

/// The children of a closed shard: DescribeStream's CHILD_SHARDS filter where
/// the endpoint supports it, full paging where it does not. Some endpoints
/// (DynamoDB Local) accept the filter and ignore it, so only shards that name
/// `parent` are kept either way.
pub async fn describe_children(
    api: &dyn StreamsApi,
    pacer: &DescribePacer,
    stream_arn: &str,
    parent: &str,
) -> Result<Vec<ShardInfo>, ApiError> {
    let mut children = Vec::new();
    let mut start: Option<String> = None;
    let mut filter = Some(parent);
    loop {
        pacer.ready().await;
        let page = match api
            .describe_stream(stream_arn, start.as_deref(), filter)
            .await
        {
            Err(ApiError::Rejected(_)) if filter.is_some() => {
                // The endpoint does not know ShardFilter: page everything.
                filter = None;
                start = None;
                children.clear();
                continue;
            }
            other => other?,
        };
        children.extend(
            page.shards
                .into_iter()
                .filter(|s| s.parent.as_deref() == Some(parent)),
        );
        match page.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => return Ok(children),
        }
    }
}

/// The stream to read among the table's streams: the newest by label.
pub fn newest(streams: &[StreamSummary]) -> Option<&StreamSummary> {
    streams.iter().max_by(|a, b| a.label.cmp(&b.label))
}
