//! The AWS SDK's configuration: credentials from the standard chain (plus
//! AWS_ASSUME_ROLE_ARN), endpoint overrides from the environment, and the
//! region from the ARN — never from AWS_REGION, which EKS injects into pods.

use std::path::PathBuf;
use std::sync::Arc;

use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodbstreams::config::{Builder, Region, SharedCredentialsProvider};
use awsdynamodb_source::{
    AwsStreams, DynamoDbLeaseStore, LeaseStore, StartupBudget, Url, await_credentials, redact,
};
use awsdynamodbsource_api::vars::{
    AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB_STREAMS,
};

use crate::config::Settings;

/// The SDK's configuration, loaded once: the chain's credentials (with
/// AWS_ASSUME_ROLE_ARN's role on top) and the ARN's region.
pub struct Aws {
    sdk: SdkConfig,
    credentials: Option<SharedCredentialsProvider>,
    /// AWS_ASSUME_ROLE_ARN is set: `credentials` calls STS.
    assumes_role: bool,
}

impl Aws {
    pub async fn load(s: &Settings) -> Aws {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(s.arn.region().to_owned()))
            .load()
            .await;
        let role = assumed_role(s, &sdk).await;
        let assumes_role = role.is_some();
        let credentials = role.or_else(|| sdk.credentials_provider());
        Aws {
            sdk,
            credentials,
            assumes_role,
        }
    }

    /// Waits, within `budget`, until there are credentials (see
    /// [`await_credentials`]); the error is one line.
    pub async fn await_credentials(&self, budget: &StartupBudget) -> Result<(), String> {
        let Some(provider) = &self.credentials else {
            return Ok(());
        };
        // An assumed role's errors are STS's, worth asking again.
        let only_instance_metadata = !self.assumes_role && only_instance_metadata();
        await_credentials(provider, only_instance_metadata, budget)
            .await
            .map_err(|e| e.to_string())
    }

    /// The DynamoDB Streams client; GetRecords signs its own requests with
    /// the same credentials (see `AwsStreams::with_direct_get_records`).
    pub fn streams(&self) -> AwsStreams {
        let mut builder = Builder::from(&self.sdk);
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials_provider(credentials.clone());
        }
        let streams = AwsStreams::new(builder);
        match &self.credentials {
            Some(credentials) => streams.with_direct_get_records(credentials.clone()),
            None => streams,
        }
    }

    /// The DynamoDB (tables) client: the lease table, the snapshot's scan.
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&self.sdk);
        if let Some(credentials) = &self.credentials {
            builder = builder.credentials_provider(credentials.clone());
        }
        aws_sdk_dynamodb::Client::from_conf(builder.build())
    }

    /// The lease table's store (COORDINATION=dynamodb:<table>), created when
    /// missing.
    pub async fn lease_store(&self, table: &str) -> Result<Arc<dyn LeaseStore>, String> {
        let client = self.dynamodb();
        let store = DynamoDbLeaseStore::open(client, table, true)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    }
}

/// Where DynamoDB Streams calls go, for messages: an endpoint override and
/// the variable that set it, else the region's AWS endpoint.
pub fn streams_endpoint(s: &Settings) -> String {
    for var in [AWS_ENDPOINT_URL_DYNAMODB_STREAMS, AWS_ENDPOINT_URL] {
        if let Some(url) = std::env::var(var).ok().filter(|u| !u.trim().is_empty()) {
            // A password in it is never shown.
            let url = url.trim();
            let shown = match Url::parse(url) {
                _ if !url.contains('@') => url.to_owned(),
                Ok(parsed) => redact(&parsed),
                Err(_) => "(a URL with a user part, not shown)".to_owned(),
            };
            return format!("{shown} ({var})");
        }
    }
    let (partition, region) = (s.arn.partition(), s.arn.region());
    match partition {
        "aws" | "aws-us-gov" => format!("https://streams.dynamodb.{region}.amazonaws.com"),
        "aws-cn" => format!("https://streams.dynamodb.{region}.amazonaws.com.cn"),
        _ => format!("the {partition} endpoint of {region}"),
    }
}

/// Whether instance metadata is the only credential source the chain could
/// use: no keys, web identity, profile or container credentials configured.
fn only_instance_metadata() -> bool {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    let any_var = [
        AWS_ACCESS_KEY_ID,
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ]
    .into_iter()
    .any(set);
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let file_exists = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(default)))
            .is_some_and(|p| p.is_file())
    };
    let any_profile_file = file_exists("AWS_CONFIG_FILE", ".aws/config")
        || file_exists("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
    !any_var && !any_profile_file
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
