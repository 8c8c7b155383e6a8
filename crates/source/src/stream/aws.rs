//! [`StreamsApi`] over the AWS SDK for Rust (GetRecords around it once the
//! endpoint is known: see `signed`), the bound on calls in flight, and the
//! translation of errors into what the engine acts on.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::config::retry::RetryConfig;
use aws_sdk_dynamodbstreams::config::{Builder as ConfigBuilder, timeout::TimeoutConfig};
use aws_sdk_dynamodbstreams::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodbstreams::types::{KeyType, ShardFilter, ShardFilterType, ShardIteratorType};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use tokio::sync::{Semaphore, SemaphorePermit};

use super::api::*;
use super::signed::{EndpointSeen, SignedGetRecords};

/// Calls to DynamoDB Streams in flight at once, across every shard: each
/// holds one connection, so this also bounds the connections. An idle shard
/// polls every few seconds and a call takes milliseconds, so a thousand
/// shards need a handful; a busy shard's call returns up to 1,000 records.
pub const MAX_CALLS_IN_FLIGHT: usize = 64;

/// Connecting to DynamoDB Streams, and one attempt at a call (a GetRecords
/// answer takes milliseconds, never seconds): the SDK's and `signed`'s.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub(super) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// The SDK client, with the engine's timeouts, and the bound on calls in
/// flight. GetRecords goes around the SDK ([`signed`](super::signed)) once
/// the SDK's first request has shown the endpoint, unless the client has
/// an HTTP client of its own (tests) or a proxy is configured.
#[derive(Debug, Clone)]
pub struct AwsStreams {
    client: Client,
    calls: Arc<Semaphore>,
    endpoint: EndpointSeen,
    /// What signing needs, when GetRecords may go around the SDK.
    signing: Option<(String, &'static str, SharedCredentialsProvider)>,
    direct: Arc<OnceLock<Option<SignedGetRecords>>>,
}

/// The proxy variables the SDK's HTTP client honours; the direct path
/// does not, so any of them keeps GetRecords on the SDK.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

impl AwsStreams {
    /// Builds the client from a configuration (credentials, region,
    /// endpoint), adding timeouts so that no call can hang a reader (a
    /// GetRecords answer takes milliseconds, never seconds), and turning the
    /// SDK's own retries off: the engine's loops are the one retry layer,
    /// so that every failed call is seen (counted, on `/health`) and paced by
    /// one policy (`AWS_RETRY`).
    pub fn new(config: ConfigBuilder) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(ATTEMPT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .operation_timeout(Duration::from_secs(60))
            .build();
        let endpoint = EndpointSeen::default();
        let config = config
            .timeout_config(timeouts)
            .retry_config(RetryConfig::disabled())
            .interceptor(endpoint.clone())
            .build();
        AwsStreams {
            client: Client::from_conf(config),
            calls: Arc::new(Semaphore::new(MAX_CALLS_IN_FLIGHT)),
            endpoint,
            signing: None,
            direct: Arc::default(),
        }
    }

    /// Lets GetRecords go around the SDK, signed with `credentials` (the
    /// provider the SDK's configuration was built with). Without it, or with
    /// a proxy configured, or a client on an HTTP client of its own (tests),
    /// every call goes through the SDK.
    pub fn with_direct_get_records(mut self, credentials: SharedCredentialsProvider) -> Self {
        let config = self.client.config();
        let proxied = PROXY_VARIABLES
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        self.signing = match config.region() {
            Some(region) if config.http_client().is_none() && !proxied => {
                Some((region.to_string(), config.signing_name(), credentials))
            }
            _ => None,
        };
        self
    }

    /// Whether GetRecords goes around the SDK now.
    pub fn get_records_is_direct(&self) -> bool {
        self.direct().is_some()
    }

    fn direct(&self) -> Option<&SignedGetRecords> {
        let (region, signing_name, credentials) = self.signing.as_ref()?;
        let origin = self.endpoint.0.get()?;
        self.direct
            .get_or_init(|| {
                SignedGetRecords::new(
                    origin.clone(),
                    region.clone(),
                    signing_name,
                    credentials.clone(),
                    self.calls.clone(),
                    MAX_CALLS_IN_FLIGHT,
                )
            })
            .as_ref()
    }

    /// Waits for a turn among the calls in flight.
    async fn turn(&self) -> SemaphorePermit<'_> {
        self.calls
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }
}

#[async_trait]
impl StreamsApi for AwsStreams {
    async fn list_streams(&self, table: &str) -> Result<Vec<StreamSummary>, ApiError> {
        let mut streams = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let _turn = self.turn().await;
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
        let _turn = self.turn().await;
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
        let _turn = self.turn().await;
        let out = request.send().await.map_err(classify)?;
        out.shard_iterator()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::NotFound(format!("no iterator for shard {shard_id}")))
    }

    async fn get_records(&self, iterator: &str) -> Result<RecordsPage, ApiError> {
        // The direct path takes its turn itself, after its credentials.
        if let Some(direct) = self.direct()
            && let Some(page) = direct.get_records(iterator).await?
        {
            return Ok(page);
        }
        let _turn = self.turn().await;
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
            classify_service_error(
                e.code().unwrap_or_default(),
                e.message().unwrap_or_default(),
                service.raw().status().as_u16(),
                context,
            )
        }
        _ => ApiError::Transient(context()),
    }
}

/// Sorts a service's error answer (its code without namespace, message and
/// HTTP status) by what the engine does about it; `context` describes an
/// answer with no code.
pub(super) fn classify_service_error(
    code: &str,
    message: &str,
    status: u16,
    context: impl FnOnce() -> String,
) -> ApiError {
    // A signature mismatch's message goes on with the canonical request,
    // session token included: it never reaches a log or /health.
    let message = message
        .split("The Canonical String")
        .next()
        .unwrap_or_default()
        .trim_end();
    let detail = format!("{code}: {message}");
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
