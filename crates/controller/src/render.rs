//! `render`: the objects the controller would create for a manifest, as
//! YAML, without a cluster (for GitOps and for tests).

use awsdynamodbsource_api::{AWSDynamoDBSource, validate};

use crate::resources::{AdapterSettings, Targets, desired, namespace};
use crate::sink::{SinkError, resolve};

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
    #[error("dead-letter sink: {0} (render resolves a uri or a core Service ref only)")]
    DeadLetter(#[from] SinkError),
}

/// The YAML documents for one source manifest, in the order they are
/// applied: service account, checkpoint ConfigMap, Role, RoleBinding,
/// Deployment.
pub fn render(
    manifest: &str,
    sink_uri: &str,
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
    // Without a cluster, only what needs no lookup can be resolved.
    let dead_letter = source
        .spec
        .delivery
        .as_ref()
        .and_then(|d| d.dead_letter_sink.as_ref())
        .map(|d| resolve(d, &namespace(&source), None))
        .transpose()?;
    let targets = Targets {
        sink: sink_uri.to_owned(),
        dead_letter,
    };
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
