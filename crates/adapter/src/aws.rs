//! The AWS SDK's configuration: credentials from the standard chain (plus
//! AWS_ASSUME_ROLE_ARN), endpoint overrides from the environment, and the
//! region from the ARN — never from AWS_REGION, which EKS injects into pods.

use std::sync::Arc;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodbstreams::config::{Builder, Region, SharedCredentialsProvider};
use awsdynamodb_source::{AwsStreams, DynamoDbLeaseStore, LeaseStore};

use crate::config::Settings;

/// The lease table's store (COORDINATION=dynamodb:<table>), created when
/// missing.
pub async fn lease_store(s: &Settings, table: &str) -> Result<Arc<dyn LeaseStore>, String> {
    let sdk = sdk_config(s).await;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&sdk);
    if let Some(provider) = assumed_role(s, &sdk).await {
        builder = builder.credentials_provider(provider);
    }
    let client = aws_sdk_dynamodb::Client::from_conf(builder.build());
    let store = DynamoDbLeaseStore::open(client, table, true)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(store))
}

/// The DynamoDB Streams client; GetRecords signs its own requests with the
/// same credentials (see `AwsStreams::with_direct_get_records`).
pub async fn streams(s: &Settings) -> AwsStreams {
    let sdk = sdk_config(s).await;
    let mut builder = Builder::from(&sdk);
    let mut credentials = sdk.credentials_provider();
    if let Some(provider) = assumed_role(s, &sdk).await {
        builder = builder.credentials_provider(provider.clone());
        credentials = Some(provider);
    }
    let streams = AwsStreams::new(builder);
    match credentials {
        Some(credentials) => streams.with_direct_get_records(credentials),
        None => streams,
    }
}

/// The shared configuration: the standard chain, the ARN's region.
async fn sdk_config(s: &Settings) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(s.arn.region().to_owned()))
        .load()
        .await
}

/// AWS_ASSUME_ROLE_ARN's credentials, from the standard chain's.
async fn assumed_role(s: &Settings, sdk: &SdkConfig) -> Option<SharedCredentialsProvider> {
    let (role, base) = (s.assume_role_arn.as_ref()?, sdk.credentials_provider()?);
    let provider = AssumeRoleProvider::builder(role.clone())
        .session_name("awsdynamodbsource")
        .configure(sdk)
        .build_from_provider(base)
        .await;
    Some(SharedCredentialsProvider::new(provider))
}
