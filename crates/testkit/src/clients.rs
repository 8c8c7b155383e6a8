//! AWS SDK clients for tests: static dummy credentials, region `ddblocal`, an endpoint
//! override, and retries and timeouts that fail fast instead of hanging a test.
//!
//! Clients are cheap to build and bound to the Tokio runtime they are first used on, so
//! build one per test (the helpers here do) rather than sharing one between tests.

use std::time::Duration;

use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, Region, retry::RetryConfig, timeout::TimeoutConfig,
};

/// The region DynamoDB Local puts in its ARNs.
pub const REGION: &str = "ddblocal";

/// Whether an SDK client retries transient errors (throttling, 5xx, connection errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retries {
    /// The SDK's standard mode, 3 attempts, short backoff.
    Standard,
    /// One attempt: every error reaches the caller (to assert on injected faults).
    Disabled,
}

fn retry_config(retries: Retries) -> RetryConfig {
    match retries {
        Retries::Standard => RetryConfig::standard()
            .with_max_attempts(3)
            .with_initial_backoff(Duration::from_millis(20))
            .with_max_backoff(Duration::from_millis(500)),
        Retries::Disabled => RetryConfig::disabled(),
    }
}

fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(20))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

fn credentials() -> Credentials {
    Credentials::new("testkit", "testkit", None, None, "awsdynamodb-testkit")
}

/// A DynamoDB client for `endpoint` (e.g. `http://127.0.0.1:8000`).
pub fn dynamodb_client(endpoint: &str, retries: Retries) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .retry_config(retry_config(retries))
        .timeout_config(timeout_config())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A DynamoDB Streams client for `endpoint` (DynamoDB Local or a [`crate::FaultProxy`]).
pub fn streams_client(endpoint: &str, retries: Retries) -> aws_sdk_dynamodbstreams::Client {
    use aws_sdk_dynamodbstreams::config as c;
    let config = c::Config::builder()
        .behavior_version(c::BehaviorVersion::latest())
        .region(c::Region::new(REGION))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .retry_config(retry_config(retries))
        .timeout_config(timeout_config())
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}
