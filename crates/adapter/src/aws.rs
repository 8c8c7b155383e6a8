//! The AWS SDK's configuration: credentials from the standard chain (plus
//! AWS_ASSUME_ROLE_ARN), endpoint overrides from the environment, and the
//! region from the ARN — never from AWS_REGION, which EKS injects into pods.

use aws_config::BehaviorVersion;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_dynamodbstreams::config::{Builder, Region, SharedCredentialsProvider};
use awsdynamodb_source::AwsStreams;

use crate::config::Settings;

/// The DynamoDB Streams client; GetRecords signs its own requests with the
/// same credentials (see `AwsStreams::with_direct_get_records`).
pub async fn streams(s: &Settings) -> AwsStreams {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(s.arn.region().to_owned()))
        .load()
        .await;
    let mut builder = Builder::from(&sdk);
    let mut credentials = sdk.credentials_provider();
    if let (Some(role), Some(base)) = (&s.assume_role_arn, sdk.credentials_provider()) {
        let provider = AssumeRoleProvider::builder(role.clone())
            .session_name("awsdynamodbsource")
            .configure(&sdk)
            .build_from_provider(base)
            .await;
        let provider = SharedCredentialsProvider::new(provider);
        builder = builder.credentials_provider(provider.clone());
        credentials = Some(provider);
    }
    let streams = AwsStreams::new(builder);
    match credentials {
        Some(credentials) => streams.with_direct_get_records(credentials),
        None => streams,
    }
}
