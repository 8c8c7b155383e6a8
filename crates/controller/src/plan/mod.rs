//! What to change, from what is wanted and what exists: a pure function.
//!
//! Owns the reconcile decisions: which objects to create or update, which
//! to leave alone (a service account the controller does not manage, an
//! unchanged Deployment), and the status to report (in `status`). It never
//! calls the API server: [`crate::reconcile`] fetches the [`Observed`] state
//! and carries the [`Plan`] out.

mod status;

use awsdynamodbsource_api::{AWSDynamoDBSource, AWSDynamoDBSourceStatus};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;

use crate::resources::{self, AdapterSettings, Desired, ROLE_ANNOTATION, Targets};
use crate::sink::{self, SinkError};

pub use status::rbac_not_bound;

/// The annotation carrying a hash of the Deployment the controller wrote:
/// the API server fills defaults into what it stores, so comparing objects
/// field by field would always see a difference.
pub const SPEC_HASH: &str = "sources.triggermesh.io/adapter-spec-hash";

/// What exists now for one source.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The object `spec.sink.ref` names (`None`: not found, or no ref).
    pub sink_object: Option<serde_json::Value>,
    /// The object `spec.delivery.deadLetterSink.ref` names.
    pub dead_letter_object: Option<serde_json::Value>,
    pub service_account: Option<ServiceAccount>,
    pub checkpoints: Option<ConfigMap>,
    pub checkpoint_role: Option<Role>,
    pub checkpoint_binding: Option<RoleBinding>,
    pub deployment: Option<Deployment>,
    pub disruption_budget: Option<PodDisruptionBudget>,
    /// The source's adapters have made shard Leases (it had replicas).
    pub leases_exist: bool,
    /// The adapter's pods, listed only while its Deployment has no
    /// available replica (to say why).
    pub pods: Vec<Pod>,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    CreateServiceAccount(ServiceAccount),
    ReplaceServiceAccount(ServiceAccount),
    CreateConfigMap(ConfigMap),
    CreateRole(Role),
    ReplaceRole(Role),
    CreateRoleBinding(RoleBinding),
    ReplaceRoleBinding(RoleBinding),
    CreateDeployment(Deployment),
    ReplaceDeployment(Deployment),
    CreateDisruptionBudget(PodDisruptionBudget),
    ReplaceDisruptionBudget(PodDisruptionBudget),
    /// Back to one replica: the budget would block every drain.
    DeleteDisruptionBudget(String),
}

/// The decisions for one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// The status to write; `None` when it is unchanged.
    pub status: Option<AWSDynamoDBSourceStatus>,
    /// A service account with the adapter's name exists and is not the
    /// controller's: it is used as it is, never changed.
    pub unmanaged_service_account: bool,
}

/// FNV-1a, 64 bits: stable across builds, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The desired Deployment with its hash annotation set.
fn stamped(mut deployment: Deployment) -> Deployment {
    let hash = fnv1a(&serde_json::to_vec(&deployment).unwrap_or_default());
    deployment
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(SPEC_HASH.to_owned(), hash);
    deployment
}

fn hash_of(deployment: &Deployment) -> Option<&str> {
    deployment
        .metadata
        .annotations
        .as_ref()?
        .get(SPEC_HASH)
        .map(String::as_str)
}

/// The existing service account updated as wanted: the role annotation
/// and this source among its owners; everything else kept.
fn merged_account(existing: &ServiceAccount, wanted: &ServiceAccount) -> ServiceAccount {
    let mut merged = existing.clone();
    let role = wanted
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ROLE_ANNOTATION));
    match role {
        Some(role) => {
            merged
                .metadata
                .annotations
                .get_or_insert_default()
                .insert(ROLE_ANNOTATION.to_owned(), role.clone());
        }
        None => {
            if let Some(a) = merged.metadata.annotations.as_mut() {
                a.remove(ROLE_ANNOTATION);
            }
        }
    }
    for owner in wanted.metadata.owner_references.iter().flatten() {
        let owners = merged.metadata.owner_references.get_or_insert_default();
        if !owners.iter().any(|o| o.uid == owner.uid) {
            owners.push(owner.clone());
        }
    }
    merged
}

/// Decides. `now` (RFC 3339) stamps the conditions that change.
pub fn plan(
    source: &AWSDynamoDBSource,
    observed: &Observed,
    settings: &AdapterSettings,
    now: &str,
) -> Plan {
    // Being deleted: the owner references let the garbage collector remove
    // what the source owns; nothing is created or reported meanwhile.
    if source.metadata.deletion_timestamp.is_some() {
        return Plan {
            changes: Vec::new(),
            status: None,
            unmanaged_service_account: false,
        };
    }
    let resolved = resolve_targets(source, observed);
    // Without a sink the adapter has nowhere to send events: nothing is
    // created until the status has said why.
    let (changes, unmanaged_service_account) = match &resolved {
        Ok(targets) => (
            changes_toward(
                resources::desired(source, targets, settings, observed.leases_exist),
                observed,
            ),
            is_unmanaged(observed.service_account.as_ref()),
        ),
        Err(_) => (Vec::new(), false),
    };
    let deployment_changed = changes.iter().any(|c| {
        matches!(
            c,
            Change::CreateDeployment(_) | Change::ReplaceDeployment(_)
        )
    });
    Plan {
        status: status::to_write(source, observed, resolved, deployment_changed, now),
        changes,
        unmanaged_service_account,
    }
}

/// The sink's URL and the dead-letter sink's, when the spec names one.
fn resolve_targets(source: &AWSDynamoDBSource, observed: &Observed) -> Result<Targets, SinkError> {
    let namespace = resources::namespace(source);
    let sink = sink::resolve(&source.spec.sink, &namespace, observed.sink_object.as_ref())?;
    let dead_letter = source
        .spec
        .delivery
        .as_ref()
        .and_then(|d| d.dead_letter_sink.as_ref())
        .map(|d| {
            sink::resolve(d, &namespace, observed.dead_letter_object.as_ref()).map_err(|e| {
                SinkError {
                    reason: e.reason,
                    message: format!("dead-letter sink: {}", e.message),
                }
            })
        })
        .transpose()?;
    Ok(Targets { sink, dead_letter })
}

/// A service account with the adapter's name exists and is not the
/// controller's.
fn is_unmanaged(existing: Option<&ServiceAccount>) -> bool {
    existing.is_some_and(|a| !resources::is_managed(&a.metadata))
}

/// The changes that turn what exists into what is wanted, in the order
/// they are made: the adapter's account and RBAC before the Deployment
/// that uses them.
fn changes_toward(desired: Desired, observed: &Observed) -> Vec<Change> {
    let Desired {
        service_account,
        checkpoints,
        checkpoint_role,
        checkpoint_binding,
        deployment,
        disruption_budget,
    } = desired;
    [
        service_account_change(observed.service_account.as_ref(), service_account),
        // The checkpoints are the adapter's data: never overwritten.
        observed
            .checkpoints
            .is_none()
            .then_some(Change::CreateConfigMap(checkpoints)),
        role_change(observed.checkpoint_role.as_ref(), checkpoint_role),
        role_binding_change(observed.checkpoint_binding.as_ref(), checkpoint_binding),
        deployment_change(observed.deployment.as_ref(), deployment),
        disruption_budget_change(observed.disruption_budget.as_ref(), disruption_budget),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// An unmanaged account is used as it is; a managed one (possibly shared
/// with other sources) is merged into, never overwritten.
fn service_account_change(
    existing: Option<&ServiceAccount>,
    wanted: ServiceAccount,
) -> Option<Change> {
    match existing {
        None => Some(Change::CreateServiceAccount(wanted)),
        Some(existing) if !resources::is_managed(&existing.metadata) => None,
        Some(existing) => {
            let merged = merged_account(existing, &wanted);
            (&merged != existing).then_some(Change::ReplaceServiceAccount(merged))
        }
    }
}

fn role_change(existing: Option<&Role>, wanted: Role) -> Option<Change> {
    match existing {
        None => Some(Change::CreateRole(wanted)),
        Some(existing) if existing.rules != wanted.rules => {
            Some(Change::ReplaceRole(keep_version(existing, wanted)))
        }
        Some(_) => None,
    }
}

fn role_binding_change(existing: Option<&RoleBinding>, wanted: RoleBinding) -> Option<Change> {
    match existing {
        None => Some(Change::CreateRoleBinding(wanted)),
        Some(existing)
            if existing.subjects != wanted.subjects || existing.role_ref != wanted.role_ref =>
        {
            Some(Change::ReplaceRoleBinding(keep_version(existing, wanted)))
        }
        Some(_) => None,
    }
}

/// Only the controller's own budget is replaced or deleted.
fn disruption_budget_change(
    existing: Option<&PodDisruptionBudget>,
    wanted: Option<PodDisruptionBudget>,
) -> Option<Change> {
    match (existing, wanted) {
        (None, Some(wanted)) => Some(Change::CreateDisruptionBudget(wanted)),
        (Some(existing), _) if !resources::is_managed(&existing.metadata) => None,
        (Some(existing), Some(wanted)) if budget_fields(existing) != budget_fields(&wanted) => {
            Some(Change::ReplaceDisruptionBudget(keep_version(
                existing, wanted,
            )))
        }
        (Some(existing), None) => Some(Change::DeleteDisruptionBudget(existing.name_any())),
        _ => None,
    }
}

/// What the controller sets in a budget: compared alone, since the API
/// server may fill in the rest.
fn budget_fields(
    budget: &PodDisruptionBudget,
) -> (
    Option<&k8s_openapi::apimachinery::pkg::util::intstr::IntOrString>,
    Option<&std::collections::BTreeMap<String, String>>,
    Option<&str>,
) {
    let spec = budget.spec.as_ref();
    (
        spec.and_then(|s| s.max_unavailable.as_ref()),
        spec.and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.as_ref()),
        spec.and_then(|s| s.unhealthy_pod_eviction_policy.as_deref()),
    )
}

/// Compared by [`SPEC_HASH`], not field by field (see there).
fn deployment_change(existing: Option<&Deployment>, wanted: Deployment) -> Option<Change> {
    let wanted = stamped(wanted);
    match existing {
        None => Some(Change::CreateDeployment(wanted)),
        Some(existing) if hash_of(existing) != hash_of(&wanted) => {
            Some(Change::ReplaceDeployment(keep_version(existing, wanted)))
        }
        Some(_) => None,
    }
}

/// A replacement carries the existing object's resourceVersion, so that a
/// concurrent change makes the update fail (and the reconcile retry)
/// instead of being overwritten.
fn keep_version<K: kube::Resource>(existing: &K, mut wanted: K) -> K {
    wanted.meta_mut().resource_version = existing.resource_version();
    wanted
}

#[cfg(test)]
mod tests;
