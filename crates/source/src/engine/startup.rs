//! Start-up checks: before anything runs, there are AWS credentials, the
//! table has a stream and the four actions the IAM policy must allow work.
//!
//! Owns the one-line reasons a source cannot start. It never reads records
//! for delivery and never retries past its timeout.

use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
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
    #[error(
        "no AWS credentials: give {key} and {secret}, a web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE), a profile (AWS_PROFILE, ~/.aws) or container or instance credentials ({reason})",
        key = vars::AWS_ACCESS_KEY_ID,
        secret = vars::AWS_SECRET_ACCESS_KEY
    )]
    NoCredentials { reason: String },
    #[error(
        "cannot get AWS credentials within {var} ({}): {last}",
        crate::duration_text(*timeout),
        var = vars::STARTUP_TIMEOUT
    )]
    CredentialsUnavailable { timeout: Duration, last: String },
    #[error(
        "cannot reach DynamoDB Streams at {endpoint} within {var} ({}): {last}",
        crate::duration_text(*timeout),
        var = vars::STARTUP_TIMEOUT
    )]
    Unreachable {
        endpoint: String,
        timeout: Duration,
        last: String,
    },
}

/// The time the start-up checks share: one `STARTUP_TIMEOUT` for finding
/// credentials and reaching the stream together.
#[derive(Debug, Clone, Copy)]
pub struct StartupBudget {
    deadline: Instant,
    /// As configured, for messages.
    timeout: Duration,
}

impl StartupBudget {
    /// Starts now.
    pub fn new(timeout: Duration) -> StartupBudget {
        StartupBudget {
            deadline: Instant::now() + timeout,
            timeout,
        }
    }

    /// When the checks give up.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// How long instance metadata that answers with an error (a machine outside
/// EC2 answers 403) is asked again when nothing else could give
/// credentials: long enough to ride out a throttled metadata service.
const INSTANCE_METADATA_PATIENCE: Duration = Duration::from_secs(3);

/// Waits, within `budget`, until the credential chain gives credentials.
/// When no source has any, that is known at once and said at once; a
/// source that has some but failed to give them (STS, a web identity, a
/// container endpoint) is asked again until the budget ends.
/// `only_instance_metadata`: nothing but instance metadata could give
/// credentials (no keys, web identity, profile, container variables or
/// role to assume), so its errors are final after
/// [`INSTANCE_METADATA_PATIENCE`].
pub async fn await_credentials(
    provider: &SharedCredentialsProvider,
    only_instance_metadata: bool,
    budget: &StartupBudget,
) -> Result<(), StartupError> {
    let (deadline, timeout) = (budget.deadline, budget.timeout);
    let patience = Instant::now() + INSTANCE_METADATA_PATIENCE;
    let mut pauses = AWS_RETRY.pauses();
    let mut warned = false;
    loop {
        let last = match tokio::time::timeout_at(deadline, provider.provide_credentials()).await {
            Ok(Ok(_)) => return Ok(()),
            Err(_) => "no answer".to_owned(),
            Ok(Err(e)) => {
                let reason = one_line(&crate::error_chain(&e));
                match e {
                    CredentialsError::CredentialsNotLoaded(_) => {
                        return Err(StartupError::NoCredentials { reason });
                    }
                    CredentialsError::InvalidConfiguration(_) => {
                        return Err(StartupError::Credentials(reason));
                    }
                    CredentialsError::ProviderTimedOut(_) => reason,
                    _ if only_instance_metadata && Instant::now() >= patience => {
                        return Err(StartupError::NoCredentials { reason });
                    }
                    _ => reason,
                }
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(StartupError::CredentialsUnavailable { timeout, last });
        }
        // Once: the retries say nothing new.
        if !warned {
            tracing::warn!(error = %last, "no AWS credentials yet; retrying");
            warned = true;
        }
        let mut pause = pauses.next_pause().min(left);
        if only_instance_metadata {
            // The last try comes when the patience ends, not a pause later.
            let patient = patience.saturating_duration_since(Instant::now());
            pause = pause.min(patient.max(Duration::from_millis(10)));
        }
        tokio::time::sleep(pause).await;
    }
}

/// Checks, before anything runs, that the table has a stream and that the
/// four actions are allowed: ListStreams, then DescribeStream on the newest
/// stream and GetShardIterator(LATEST)/GetRecords on one of its open shards
/// (which reads nothing that matters). Transient failures are retried
/// within `budget`; `endpoint` is where the calls go, for messages.
pub async fn preflight(
    api: &dyn StreamsApi,
    table: &TableArn,
    endpoint: &str,
    budget: &StartupBudget,
) -> Result<(), StartupError> {
    let (deadline, timeout) = (budget.deadline, budget.timeout);
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
                StartupError::Unreachable {
                    endpoint: endpoint.to_owned(),
                    timeout,
                    // The message says it already.
                    last: last
                        .strip_prefix("cannot reach the endpoint: ")
                        .map(str::to_owned)
                        .unwrap_or(last),
                }
            }
        });
    }
}

/// The chain's error on one line: its list of the sources it tried
/// ("Attempted:\n  Environment: ...") joined with "; ".
fn one_line(reason: &str) -> String {
    reason
        .replace("no credentials found in chain. Attempted:", "tried")
        .replace("the credential provider was not enabled: ", "")
        .replace(
            "the credential provider was not enabled",
            "nothing configured",
        )
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace("tried; ", "tried: ")
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
