//! The API side of a reconcile: fetch what exists, [`plan`], carry it out.
//!
//! Owns the calls to the API server for one source, in a fixed order (the
//! mocked-API tests assert it): the sink object, the service account, the
//! checkpoint ConfigMap, Role and RoleBinding, the Deployment, its
//! PodDisruptionBudget, whether its adapters made Leases; then the
//! changes, the status, and an event per change. It never decides anything:
//! that is [`crate::plan`].

use std::sync::Arc;
use std::time::Duration;

use awsdynamodbsource_api::vars::LEASE_SOURCE_LABEL;
use awsdynamodbsource_api::{AWSDynamoDBSource, AWSDynamoDBSourceStatus, Destination};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::plan::{Change, Observed, plan, rbac_not_bound};
use crate::resources::{self, AdapterSettings};
use crate::sink::is_core_service;

/// How often a source is looked at again when nothing happens: a sink's
/// address can change without the source changing.
pub const RESYNC: Duration = Duration::from_secs(300);

/// What every reconcile shares.
pub struct Context {
    pub client: Client,
    pub settings: AdapterSettings,
    pub recorder: Recorder,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
}

fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

/// GET that treats 404 as absent.
async fn get_opt<K>(api: &Api<K>, name: &str) -> Result<Option<K>, Error>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name)
        .await
        .map_err(kube_err(format!("get {name}")))
}

/// The object a destination's `ref` names, unless it is a core Service
/// (resolved by name alone) or there is no ref.
async fn ref_object(
    client: &Client,
    source: &AWSDynamoDBSource,
    destination: Option<&Destination>,
) -> Result<Option<serde_json::Value>, Error> {
    let Some(reference) = destination.and_then(|d| d.reference.as_ref()) else {
        return Ok(None);
    };
    if is_core_service(reference) {
        return Ok(None);
    }
    let (group, version) = match reference.api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", reference.api_version.as_str()),
    };
    let gvk = GroupVersionKind::gvk(group, version, &reference.kind);
    let resource = ApiResource::from_gvk(&gvk);
    let namespace = reference
        .namespace
        .clone()
        .unwrap_or_else(|| resources::namespace(source));
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
    let object = get_opt(&api, &reference.name).await?;
    Ok(object.and_then(|o| serde_json::to_value(o).ok()))
}

/// Everything that exists for the source.
pub async fn observe(client: &Client, source: &AWSDynamoDBSource) -> Result<Observed, Error> {
    let ns = resources::namespace(source);
    let (account, _) = resources::service_account_name(source);
    let checkpoints = resources::checkpoints_name(source);
    let sink_object = ref_object(client, source, Some(&source.spec.sink)).await?;
    let dead_letter = source
        .spec
        .delivery
        .as_ref()
        .and_then(|d| d.dead_letter_sink.as_ref());
    let dead_letter_object = ref_object(client, source, dead_letter).await?;
    let service_account = get_opt(
        &Api::<ServiceAccount>::namespaced(client.clone(), &ns),
        &account,
    )
    .await?;
    let checkpoint_map = get_opt(
        &Api::<ConfigMap>::namespaced(client.clone(), &ns),
        &checkpoints,
    )
    .await?;
    let checkpoint_role =
        get_opt(&Api::<Role>::namespaced(client.clone(), &ns), &checkpoints).await?;
    let checkpoint_binding = get_opt(
        &Api::<RoleBinding>::namespaced(client.clone(), &ns),
        &checkpoints,
    )
    .await?;
    let deployment = get_opt(
        &Api::<Deployment>::namespaced(client.clone(), &ns),
        &resources::deployment_name(source),
    )
    .await?;
    let disruption_budget = get_opt(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns),
        &resources::deployment_name(source),
    )
    .await?;
    // Whether the adapters ever shared the stream through Leases: then they
    // go on doing so even at one replica (the ConfigMap is not written
    // meanwhile).
    let leases_exist = !Api::<Lease>::namespaced(client.clone(), &ns)
        .list_metadata(
            &ListParams::default()
                .labels(&format!("{LEASE_SOURCE_LABEL}={}", source.name_any()))
                .limit(1),
        )
        .await
        .map_err(kube_err("list the adapter's Leases"))?
        .items
        .is_empty();
    let unavailable = deployment.as_ref().is_some_and(|d| {
        d.status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0)
            < 1
    });
    let pods = if unavailable {
        let selector = resources::selector_labels(source)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        Api::<Pod>::namespaced(client.clone(), &ns)
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(kube_err("list the adapter's pods"))?
            .items
    } else {
        Vec::new()
    };
    Ok(Observed {
        sink_object,
        dead_letter_object,
        service_account,
        checkpoints: checkpoint_map,
        checkpoint_role,
        checkpoint_binding,
        deployment,
        disruption_budget,
        leases_exist,
        pods,
    })
}

/// Creates an object, or replaces it (at the resourceVersion it carries);
/// returns what it did, for the event.
async fn write<K>(client: &Client, ns: &str, object: &K, replace: bool) -> Result<String, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let what = format!("{} {}", K::kind(&Default::default()), object.name_any());
    let api = Api::<K>::namespaced(client.clone(), ns);
    let params = PostParams::default();
    if replace {
        api.replace(&object.name_any(), &params, object)
            .await
            .map_err(kube_err(format!("replace {what}")))?;
        Ok(format!("updated {what}"))
    } else {
        api.create(&params, object)
            .await
            .map_err(kube_err(format!("create {what}")))?;
        Ok(format!("created {what}"))
    }
}

/// Carries one change out; returns what it did, for the event.
async fn apply(client: &Client, ns: &str, change: &Change) -> Result<String, Error> {
    match change {
        Change::CreateServiceAccount(o) => write(client, ns, o, false).await,
        Change::ReplaceServiceAccount(o) => write(client, ns, o, true).await,
        Change::CreateConfigMap(o) => write(client, ns, o, false).await,
        Change::CreateRole(o) => write(client, ns, o, false).await,
        Change::ReplaceRole(o) => write(client, ns, o, true).await,
        Change::CreateRoleBinding(o) => write(client, ns, o, false).await,
        Change::ReplaceRoleBinding(o) => write(client, ns, o, true).await,
        Change::CreateDeployment(o) => write(client, ns, o, false).await,
        Change::ReplaceDeployment(o) => write(client, ns, o, true).await,
        Change::CreateDisruptionBudget(o) => write(client, ns, o, false).await,
        Change::ReplaceDisruptionBudget(o) => write(client, ns, o, true).await,
        Change::DeleteDisruptionBudget(name) => {
            Api::<PodDisruptionBudget>::namespaced(client.clone(), ns)
                .delete(name, &DeleteParams::default())
                .await
                .map_err(kube_err(format!("delete PodDisruptionBudget {name}")))?;
            Ok(format!("deleted PodDisruptionBudget {name}"))
        }
    }
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// One reconcile of one source.
pub async fn reconcile(source: Arc<AWSDynamoDBSource>, ctx: Arc<Context>) -> Result<Action, Error> {
    let client = &ctx.client;
    let ns = resources::namespace(&source);
    let observed = observe(client, &source).await?;
    let plan = plan(&source, &observed, &ctx.settings, &now());
    let reference = source.object_ref(&());
    if plan.unmanaged_service_account {
        tracing::info!(source = %source.name_any(), "using a service account the controller does not manage, unchanged");
    }
    for change in &plan.changes {
        let done = match apply(client, &ns, change).await {
            Ok(done) => done,
            Err(Error::Kube {
                what,
                source: kube::Error::Api(e),
            }) if e.code == 403
                && matches!(
                    change,
                    Change::CreateRole(_)
                        | Change::ReplaceRole(_)
                        | Change::CreateRoleBinding(_)
                        | Change::ReplaceRoleBinding(_)
                ) =>
            {
                let message = format!(
                    "the adapter's checkpoint RBAC cannot be set up: {what}: {}",
                    e.message
                );
                let status = rbac_not_bound(&source, plan.status.clone(), &message, &now());
                write_status(client, &source, &status).await?;
                return Err(Error::Kube {
                    what,
                    source: kube::Error::Api(e),
                });
            }
            Err(e) => return Err(e),
        };
        tracing::info!(source = %source.name_any(), "{done}");
        let event = Event {
            type_: EventType::Normal,
            reason: "Reconciled".into(),
            note: Some(done),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(error = %e, "cannot publish an event");
        }
    }
    if let Some(status) = &plan.status {
        write_status(client, &source, status).await?;
    }
    Ok(Action::requeue(RESYNC))
}

async fn write_status(
    client: &Client,
    source: &AWSDynamoDBSource,
    status: &AWSDynamoDBSourceStatus,
) -> Result<(), Error> {
    let api: Api<AWSDynamoDBSource> =
        Api::namespaced(client.clone(), &resources::namespace(source));
    let patch = serde_json::json!({ "status": status });
    api.patch_status(
        &source.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(kube_err("update the status"))?;
    Ok(())
}

/// After a failed reconcile: log, and try again soon.
pub fn error_policy(source: Arc<AWSDynamoDBSource>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(source = %source.name_any(), error = %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}
