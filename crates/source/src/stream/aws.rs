//! [`StreamsApi`] over the AWS SDK for Rust, and the translation of its
//! errors into what the engine acts on.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::config::retry::RetryConfig;
use aws_sdk_dynamodbstreams::config::{Builder as ConfigBuilder, timeout::TimeoutConfig};
use aws_sdk_dynamodbstreams::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodbstreams::types::{KeyType, ShardFilter, ShardFilterType, ShardIteratorType};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;

use super::api::*;

/// The SDK client, with the engine's timeouts.
#[derive(Debug, Clone)]
pub struct AwsStreams {
    client: Client,
}

impl AwsStreams {
    /// Builds the client from a configuration (credentials, region,
    /// endpoint), adding timeouts so that no call can hang a reader (a
    /// GetRecords answer takes milliseconds, never seconds), and turning the
    /// SDK's own retries off: the engine's loops are the one retry layer,
    /// so that every failed call is seen (counted, on `/health`) and paced by
    /// one policy (`AWS_RETRY`).
    pub fn new(config: ConfigBuilder) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(20))
            .operation_attempt_timeout(Duration::from_secs(20))
            .operation_timeout(Duration::from_secs(60))
            .build();
        AwsStreams {
            client: Client::from_conf(
                config
                    .timeout_config(timeouts)
                    .retry_config(RetryConfig::disabled())
                    .build(),
            ),
        }
    }
}

#[async_trait]
impl StreamsApi for AwsStreams {
    async fn list_streams(&self, table: &str) -> Result<Vec<StreamSummary>, ApiError> {
        let mut streams = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .client
                .list_streams()
                .table_name(table)
                .set_exclusive_start_stream_arn(start.take())
                .send()
                .await
                .map_err(classify)?;
            streams.extend(out.streams().iter().filter_map(|s| {
                Some(StreamSummary {
                    arn: s.stream_arn()?.to_owned(),
                    label: s.stream_label().unwrap_or_default().to_owned(),
                })
            }));
            match out.last_evaluated_stream_arn() {
                Some(last) => start = Some(last.to_owned()),
                None => return Ok(streams),
            }
        }
    }

    async fn describe_stream(
        &self,
        stream_arn: &str,
        exclusive_start_shard_id: Option<&str>,
        children_of: Option<&str>,
    ) -> Result<StreamDescription, ApiError> {
        let filter = children_of.map(|parent| {
            ShardFilter::builder()
                .r#type(ShardFilterType::ChildShards)
                .shard_id(parent)
                .build()
        });
        let out = self
            .client
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(exclusive_start_shard_id.map(str::to_owned))
            .set_shard_filter(filter)
            .send()
            .await
            .map_err(classify)?;
        let Some(desc) = out.stream_description() else {
            return Err(ApiError::Transient(
                "DescribeStream answered without a description".into(),
            ));
        };
        let key_schema = desc.key_schema();
        let key_of = |kind: KeyType| {
            key_schema
                .iter()
                .find(|k| *k.key_type() == kind)
                .map(|k| k.attribute_name().to_owned())
        };
        Ok(StreamDescription {
            status: match desc.stream_status().map(|s| s.as_str()) {
                Some("ENABLING") => StreamStatus::Enabling,
                Some("ENABLED") => StreamStatus::Enabled,
                Some("DISABLING") => StreamStatus::Disabling,
                Some("DISABLED") => StreamStatus::Disabled,
                other => StreamStatus::Other(other.unwrap_or("missing").to_owned()),
            },
            key_schema: key_of(KeyType::Hash).map(|hash| KeySchema {
                hash,
                range: key_of(KeyType::Range),
            }),
            shards: desc
                .shards()
                .iter()
                .filter_map(|s| {
                    Some(ShardInfo {
                        id: s.shard_id()?.to_owned(),
                        parent: s.parent_shard_id().map(str::to_owned),
                        closed: s
                            .sequence_number_range()
                            .and_then(|r| r.ending_sequence_number())
                            .is_some(),
                    })
                })
                .collect(),
            last_evaluated_shard_id: desc.last_evaluated_shard_id().map(str::to_owned),
        })
    }

    async fn get_shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        position: &IteratorPosition,
    ) -> Result<String, ApiError> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(stream_arn)
            .shard_id(shard_id);
        let request = match position {
            IteratorPosition::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            IteratorPosition::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            IteratorPosition::AfterSequence(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq.as_str()),
        };
        let out = request.send().await.map_err(classify)?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::NotFound(format!("no iterator for shard {shard_id}")))
    }

    async fn get_records(&self, iterator: &str) -> Result<RecordsPage, ApiError> {
        let out = self
            .client
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
            .map_err(classify)?;
        Ok(RecordsPage {
            next_iterator: out.next_shard_iterator().map(str::to_owned),
            records: out.records.unwrap_or_default(),
        })
    }
}

/// Sorts an SDK error by what the engine does about it.
pub fn classify<E>(err: SdkError<E, HttpResponse>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let context = || DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) => {
            ApiError::Transient(format!("request timed out: {}", crate::error_chain(&err)))
        }
        SdkError::DispatchFailure(_) => ApiError::Transient(format!(
            "cannot reach the endpoint: {}",
            crate::error_chain(&err)
        )),
        SdkError::ResponseError(_) => {
            ApiError::Transient(format!("unreadable answer: {}", context()))
        }
        // Building the request failed: in practice, no usable credentials.
        SdkError::ConstructionFailure(_) => ApiError::Credentials(context()),
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or_default();
            let detail = format!("{code}: {}", e.message().unwrap_or_default());
            let status = service.raw().status().as_u16();
            match code {
                "ExpiredIteratorException" => ApiError::ExpiredIterator,
                "TrimmedDataAccessException" => ApiError::TrimmedData(detail),
                "ResourceNotFoundException" => ApiError::NotFound(detail),
                "LimitExceededException"
                | "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "TooManyRequestsException" => ApiError::Throttled(detail),
                "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "MissingAuthenticationToken"
                | "IncompleteSignature"
                | "InvalidClientTokenId"
                | "ExpiredTokenException"
                | "SignatureDoesNotMatch" => ApiError::AccessDenied(detail),
                "InternalServerError" | "InternalFailure" | "ServiceUnavailable" => {
                    ApiError::Transient(detail)
                }
                _ if status == 429 => ApiError::Throttled(detail),
                _ if status >= 500 || code.is_empty() => ApiError::Transient(context()),
                _ => ApiError::Rejected(detail),
            }
        }
        _ => ApiError::Transient(context()),
    }
}
