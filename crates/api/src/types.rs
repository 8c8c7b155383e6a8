//! The `AWSDynamoDBSource` object: spec and status, as Rust types.
//!
//! Field names and shapes are the original CRD's (contract section 3), so
//! its manifests deserialize unchanged. Where the JSON schema must say more
//! than the Rust type (patterns, "exactly one of"), a `schema_with` function
//! in [`crate::schema`] writes it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Affinity, EnvVar, ResourceRequirements, Toleration};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::schema;

/// What a source reads and where its events go.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "sources.triggermesh.io",
    version = "v1alpha1",
    kind = "AWSDynamoDBSource",
    namespaced,
    status = "AWSDynamoDBSourceStatus",
    doc = "An Amazon DynamoDB event source: a table's stream changes as CloudEvents.",
    category = "all",
    category = "knative",
    category = "eventing",
    category = "sources",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type=='Ready')].reason"}"#,
    printcolumn = r#"{"name":"Sink","type":"string","jsonPath":".status.sinkUri"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(
    description = "Reads an Amazon DynamoDB table's stream and sends one CloudEvent per change.",
    // The API server's own check of what `schema::validate` checks too.
    extend("x-kubernetes-validations" = [{
        "rule": "!has(self.snapshot) || self.snapshot != 'initial' || !has(self.replicas) || self.replicas <= 1",
        "message": "snapshot: initial needs one replica while the snapshot runs: start with replicas 1 and raise it once the snapshot is done",
    }]),
)]
pub struct AWSDynamoDBSourceSpec {
    /// The table's ARN: arn:{partition}:dynamodb:{region}:{account}:table/{name}.
    #[schemars(schema_with = "schema::arn")]
    pub arn: String,

    /// How the adapter authenticates to AWS: exactly one method.
    pub auth: Auth,

    /// Where events are sent.
    pub sink: Destination,

    /// Settings of the adapter's Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter_overrides: Option<AdapterOverrides>,

    /// Where shards that exist at the first start begin: LATEST (default),
    /// TRIM_HORIZON, or an RFC 3339 time. Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::starting_position")]
    pub starting_position: Option<String>,

    /// off (default) or initial (SNAPSHOT): at the first start, every
    /// item of the table is sent once (operation SNAPSHOT), then changes
    /// follow, with no item's state stepping back. Needs a stream with new
    /// images, dynamodb:Scan and dynamodb:DescribeTable, and one replica
    /// while it runs. Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotMode>,

    /// Pause after an empty page of an idle shard, e.g. 250ms (default).
    /// Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub poll_interval: Option<String>,

    /// Per shard, events sent and not yet behind its checkpoint (default
    /// 64): at most this many are in flight, and delivery never runs further
    /// ahead of the shard's oldest undelivered event. Not in the original
    /// CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_in_flight: Option<u32>,

    /// The shape of `data` (DATA_FORMAT): triggermesh (default, the
    /// original's bytes), aws (the record as AWS Lambda gets it) or plain
    /// (items as ordinary JSON). Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_format: Option<DataFormat>,

    /// Where the formats' JSON Schemas are published (DATASCHEMA_BASE): the
    /// events' `dataschema` is `<base>/com.amazon.dynamodb.stream_record.<format>.json`.
    /// Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_schema_base: Option<String>,

    /// What `subject` says (SUBJECT): keynames (default, `pk,sk`) or keys
    /// (`pk=alice,sk=42`). Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectMode>,

    /// How events travel (CE_MODE): binary (default, `ce-` headers) or
    /// structured (`application/cloudevents+json`). Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_mode: Option<ContentMode>,

    /// Optional extensions on every event (EXTENSIONS). Not in the original
    /// CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Vec<Extension>>,

    /// EventBridge-style patterns, as AWS Lambda's FilterCriteria (FILTER):
    /// only records matching one of them are sent. Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::filters")]
    pub filters: Option<Vec<serde_json::Value>>,

    /// What happens to events that cannot be delivered. Not in the original
    /// CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,

    /// Adapter pods sharing the stream (default 1). Above one, they share
    /// the shards through Leases in the source's namespace
    /// (COORDINATION=kubernetes), roll one at a time with no duplicate, and
    /// a PodDisruptionBudget keeps all but one running during node drains.
    /// Not in the original CRD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: Option<u32>,
}

impl AWSDynamoDBSourceSpec {
    /// How many adapter pods run: `replicas`, else 1.
    pub fn replicas(&self) -> u32 {
        self.replicas.unwrap_or(1).max(1)
    }
}

/// `spec.dataFormat`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Triggermesh,
    Aws,
    Plain,
}

/// `spec.snapshot`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotMode {
    Off,
    Initial,
}

/// `spec.subject`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubjectMode {
    Keynames,
    Keys,
}

/// `spec.contentMode`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ContentMode {
    Binary,
    Structured,
}

/// One of `spec.extensions`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Extension {
    /// The table's name.
    Dynamodbtable,
    /// The shard's id.
    Dynamodbshard,
    /// The sequence number, zero-padded to 40 digits.
    Sequence,
    /// The stream's view type.
    Streamviewtype,
}

/// `spec.delivery`: dead letters, Knative's way.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// Receives the events the sink refuses for good (a 4xx other than
    /// 404, 408, 409, 429), that exhaust maxAttempts or outgrow maxRecordAge
    /// (DEAD_LETTER_SINK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_sink: Option<Destination>,
    /// Attempts at the sink before an event is given up (MAX_ATTEMPTS;
    /// default: until delivered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attempts: Option<u32>,
    /// A record older than this is given up instead of tried again
    /// (MAX_RECORD_AGE), e.g. 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::duration")]
    pub max_record_age: Option<String>,
}

/// Exactly one of `credentials`, `iamRole` (also spelled `iamrole`, as the
/// seed's example does) or `iam`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
    /// Deprecated: an IAM role for the service account (EKS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_role: Option<String>,
    /// The seed's spelling of `iamRole`, declared so that its example is
    /// accepted; it means the same.
    #[serde(default, rename = "iamrole", skip_serializing_if = "Option::is_none")]
    pub iamrole: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<IamAuth>,
}

impl JsonSchema for Auth {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Auth".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schema::auth(generator)
    }
}

impl Auth {
    /// The IAM role for the service account, from `iamRole`, `iamrole` or
    /// `iam.roleArn`.
    pub fn role_arn(&self) -> Option<&str> {
        self.iam_role
            .as_deref()
            .or(self.iamrole.as_deref())
            .or(self.iam.as_ref().and_then(|i| i.role_arn.as_deref()))
    }
}

/// Static AWS credentials.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    #[serde(rename = "accessKeyID")]
    pub access_key_id: ValueFrom,
    pub secret_access_key: ValueFrom,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<ValueFrom>,
    /// A role assumed (STS AssumeRole) with these credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_role_arn")]
    pub assume_iam_role: Option<String>,
}

/// A value given inline or read from a Secret: exactly one of the two.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from_secret: Option<SecretKeySelector>,
}

impl JsonSchema for ValueFrom {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ValueFrom".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schema::value_from(generator)
    }
}

/// A key of a Secret in the source's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct SecretKeySelector {
    pub name: String,
    pub key: String,
}

/// EKS IAM roles for service accounts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IamAuth {
    /// The role the service account is annotated with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::optional_role_arn")]
    pub role_arn: Option<String>,
    /// The service account's name (default `awsdynamodbsource-i-<source>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// A Knative destination: `ref` and/or `uri`, at least one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Destination {
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<KReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl JsonSchema for Destination {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Destination".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schema::destination(generator)
    }
}

/// A reference to an object, by API version, kind and name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KReference {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// Default: the source's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Settings applied to the adapter's Deployment and container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdapterOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<EnvVar>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

/// What the controller observed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AWSDynamoDBSourceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce_attributes: Option<Vec<CeAttribute>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// A CloudEvent type and source that the source produces.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct CeAttribute {
    #[serde(rename = "type")]
    pub type_: String,
    pub source: String,
}

/// A Knative-style condition.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}
