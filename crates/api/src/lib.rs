//! The `AWSDynamoDBSource` custom resource, shared by the controller and
//! the CLI.
//!
//! Owns the object's shape (the [`types`]), the CRD generated from them
//! ([`crd`], checked in under `config/`), and the check of an object
//! against that CRD's schema ([`schema::validate`]). It never talks to a
//! cluster and knows nothing of the adapter's engine.

pub mod adapter;
pub mod schema;
pub mod types;
pub use awsdynamodbsource_vars as vars;

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use schema::{SchemaError, validate};
pub use types::*;

/// The CloudEvents type of every event the source sends.
pub const EVENT_TYPE: &str = "com.amazon.dynamodb.stream_record";

/// The CRD, with the labels and annotation Knative's tooling looks for.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = AWSDynamoDBSource::crd();
    crd.metadata.labels = Some(BTreeMap::from([
        ("eventing.knative.dev/source".to_owned(), "true".to_owned()),
        ("duck.knative.dev/source".to_owned(), "true".to_owned()),
    ]));
    // A struct, not `json!`: a map's key order depends on whether some crate
    // in the build enables serde_json's `preserve_order`.
    #[derive(serde::Serialize)]
    struct EventType {
        #[serde(rename = "type")]
        type_: &'static str,
        schema: &'static str,
        description: &'static str,
    }
    let event_types = [EventType {
        type_: EVENT_TYPE,
        schema: "https://raw.githubusercontent.com/triggermesh/triggermesh/main/schemas/com.amazon.dynamodb.stream_record.json",
        description: "A change to an item of the table (INSERT, MODIFY or REMOVE)",
    }];
    crd.metadata.annotations = Some(BTreeMap::from([(
        "registry.knative.dev/eventTypes".to_owned(),
        serde_json::to_string(&event_types).unwrap_or_default(),
    )]));
    crd
}

/// The CRD as the YAML checked in under `config/`.
pub fn crd_yaml() -> String {
    let body = serde_saphyr::to_string(&crd()).unwrap_or_default();
    format!(
        "# Generated from crates/api by `cargo run -p awsdynamodbsource-api --bin crdgen`; do not edit.\n{body}"
    )
}

/// The `openAPIV3Schema` of the CRD's only version, as JSON.
pub fn crd_schema() -> serde_json::Value {
    crd()
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default()
}
