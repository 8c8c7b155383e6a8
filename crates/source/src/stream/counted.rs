//! [`StreamsApi`] with every failed call counted, by operation and error
//! class (`awsdynamodbsource_aws_errors_total`). The engine wraps whatever
//! API it is given, so the count is the same for the SDK and for a fake.

use std::sync::Arc;

use async_trait::async_trait;

use super::api::*;
use crate::metrics::Metrics;

pub struct CountedApi {
    inner: Arc<dyn StreamsApi>,
    metrics: Arc<Metrics>,
}

impl CountedApi {
    pub fn new(inner: Arc<dyn StreamsApi>, metrics: Arc<Metrics>) -> Self {
        CountedApi { inner, metrics }
    }

    fn count<T>(&self, operation: &str, result: Result<T, ApiError>) -> Result<T, ApiError> {
        if let Err(e) = &result {
            self.metrics.aws_error(operation, e.class());
        }
        result
    }
}

#[async_trait]
impl StreamsApi for CountedApi {
    async fn list_streams(&self, table: &str) -> Result<Vec<StreamSummary>, ApiError> {
        self.count("ListStreams", self.inner.list_streams(table).await)
    }

    async fn describe_stream(
        &self,
        stream_arn: &str,
        exclusive_start_shard_id: Option<&str>,
        children_of: Option<&str>,
    ) -> Result<StreamDescription, ApiError> {
        let result = self
            .inner
            .describe_stream(stream_arn, exclusive_start_shard_id, children_of)
            .await;
        self.count("DescribeStream", result)
    }

    async fn get_shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        position: &IteratorPosition,
    ) -> Result<String, ApiError> {
        let result = self
            .inner
            .get_shard_iterator(stream_arn, shard_id, position)
            .await;
        self.count("GetShardIterator", result)
    }

    async fn get_records(&self, iterator: &str) -> Result<RecordsPage, ApiError> {
        self.count("GetRecords", self.inner.get_records(iterator).await)
    }
}
