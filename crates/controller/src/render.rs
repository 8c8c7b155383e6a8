//! `render`: the objects the controller would create for a manifest, as
//! YAML, without a cluster (for GitOps and for tests).

use awsdynamodbsource_api::{AWSDynamoDBSource, Destination, validate};

use crate::resources::{AdapterSettings, Targets, desired, namespace};
use crate::sink::{SinkError, is_core_service, ref_namespace, resolve};

/// Why a manifest cannot be rendered; the message names the problem.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("not YAML: {0}")]
    Yaml(String),
    #[error("not an AWSDynamoDBSource (apiVersion sources.triggermesh.io/v1alpha1): kind is {0:?}")]
    Kind(String),
    #[error("the source does not fit the CRD: {0}")]
    Schema(#[from] awsdynamodbsource_api::SchemaError),
    #[error("the source cannot be read: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("{0}")]
    Sink(SinkError),
    #[error("--sink-uri {0:?} is not an absolute http(s) URL")]
    SinkUri(String),
    /// The sink is a ref to an addressable object: its URL is in that
    /// object's status, in the cluster.
    #[error("the {which} is a {reference}; its address is known only in the cluster: {remedy}")]
    SinkInCluster {
        which: &'static str,
        /// `Kind ref (apiVersion namespace/name)`.
        reference: String,
        remedy: &'static str,
    },
}

/// The YAML documents for one source manifest, in the order they are
/// applied: service account, checkpoint ConfigMap, Role, RoleBinding,
/// Deployment (and with replicas, the PodDisruptionBudget). `sink_uri`,
/// when given, is the sink's URL whatever `spec.sink` says.
pub fn render(
    manifest: &str,
    sink_uri: Option<&str>,
    settings: &AdapterSettings,
) -> Result<String, RenderError> {
    let object: serde_json::Value =
        serde_saphyr::from_str(manifest).map_err(|e| RenderError::Yaml(e.to_string()))?;
    let kind = object
        .get("kind")
        .and_then(|k| k.as_str())
        .unwrap_or_default();
    if kind != "AWSDynamoDBSource" {
        return Err(RenderError::Kind(kind.to_owned()));
    }
    validate(&object)?;
    let source: AWSDynamoDBSource = serde_json::from_value(object)?;
    let namespace = namespace(&source);
    let sink = match sink_uri {
        Some(uri) => match url::Url::parse(uri) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url.to_string(),
            _ => return Err(RenderError::SinkUri(uri.to_owned())),
        },
        None => offline_sink(&source.spec.sink, &namespace, SINK)?,
    };
    // Without a cluster, only what needs no lookup can be resolved.
    let dead_letter = source
        .spec
        .delivery
        .as_ref()
        .and_then(|d| d.dead_letter_sink.as_ref())
        .map(|d| offline_sink(d, &namespace, DEAD_LETTER_SINK))
        .transpose()?;
    let targets = Targets { sink, dead_letter };
    // Offline, Leases cannot be seen: only `replicas` turns them on.
    let d = desired(&source, &targets, settings, false);
    let mut docs = vec![
        serde_json::to_value(&d.service_account)?,
        serde_json::to_value(&d.checkpoints)?,
        serde_json::to_value(&d.checkpoint_role)?,
        serde_json::to_value(&d.checkpoint_binding)?,
        serde_json::to_value(&d.deployment)?,
    ];
    if let Some(budget) = &d.disruption_budget {
        docs.push(serde_json::to_value(budget)?);
    }
    Ok(docs
        .iter()
        .map(|doc| serde_saphyr::to_string(doc).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("---\n"))
}

/// Which destination, and how to give its address to `render`.
const SINK: (&str, &str) = ("sink", "pass --sink-uri URL");
const DEAD_LETTER_SINK: (&str, &str) = (
    "dead-letter sink",
    "give spec.delivery.deadLetterSink.uri for render",
);

/// `spec.sink` (or the dead-letter sink) without a cluster: a `uri`, or a core Service's DNS name.
/// Any other ref's address is in its object's status, which only the
/// cluster has.
fn offline_sink(
    sink: &Destination,
    namespace: &str,
    (which, remedy): (&'static str, &'static str),
) -> Result<String, RenderError> {
    match &sink.reference {
        Some(reference) if !is_core_service(reference) => Err(RenderError::SinkInCluster {
            which,
            reference: format!(
                "{} ref ({} {}/{})",
                reference.kind,
                reference.api_version,
                ref_namespace(reference, namespace),
                reference.name
            ),
            remedy,
        }),
        _ => resolve(sink, namespace, None).map_err(RenderError::Sink),
    }
}
