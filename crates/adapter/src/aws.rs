//! The AWS SDK's configuration: credentials from the standard chain (plus
//! AWS_ASSUME_ROLE_ARN), endpoint overrides from the environment, and the
//! region from the ARN — never from AWS_REGION, which EKS injects into pods.

use aws_config::BehaviorVersion;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_dynamodbstreams::config::{Builder, Region};

use crate::config::Settings;

pub async fn client_config(s: &Settings) -> Builder {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(s.arn.region().to_owned()))
        .load()
        .await;
    let mut builder = Builder::from(&sdk);
    if let (Some(role), Some(base)) = (&s.assume_role_arn, sdk.credentials_provider()) {
        let provider = AssumeRoleProvider::builder(role.clone())
            .session_name("awsdynamodbsource")
            .configure(&sdk)
            .build_from_provider(base)
            .await;
        builder = builder.credentials_provider(provider);
    }
    builder
}
