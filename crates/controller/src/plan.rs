//! What to change, from what is wanted and what exists: a pure function.
//!
//! Owns the reconcile decisions: which objects to create or update, which
//! to leave alone (a service account the controller does not manage, an
//! unchanged Deployment), and the status to report. It never calls the API
//! server: [`crate::reconcile`] fetches the [`Observed`] state and carries
//! the [`Plan`] out.

use awsdynamodbsource_api::{
    AWSDynamoDBSource, AWSDynamoDBSourceStatus, CeAttribute, Condition, EVENT_TYPE,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;

use crate::resources::{self, AdapterSettings, Desired, ROLE_ANNOTATION, Targets};
use crate::sink::{self, SinkError};

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

fn condition(
    type_: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<String>,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        severity: None,
        reason: reason.map(str::to_owned),
        message,
        last_transition_time: None,
    }
}

/// Whether the adapter runs: the Deployment has an available replica.
fn deployed(deployment: Option<&Deployment>, pods: &[Pod], just_changed: bool) -> Condition {
    let status = deployment.and_then(|d| d.status.as_ref());
    let available = status.and_then(|s| s.available_replicas).unwrap_or(0) >= 1;
    if available && !just_changed {
        return condition("Deployed", "True", None, None);
    }
    if !just_changed && let Some((reason, message)) = pod_failure(pods) {
        return condition("Deployed", "False", Some(reason), Some(message));
    }
    let message = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| c.type_ == "Available" && c.status != "True")
        })
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "the adapter is not available yet".to_owned());
    let state = if deployment.is_none() || just_changed {
        "Unknown"
    } else {
        "False"
    };
    condition("Deployed", state, Some("AdapterUnavailable"), Some(message))
}

/// Why the adapter's pods do not run, from their container statuses: an
/// image that cannot be pulled, or an adapter that exits (its last log
/// lines, the termination message, say why).
fn pod_failure(pods: &[Pod]) -> Option<(&'static str, String)> {
    let statuses = pods
        .iter()
        .filter_map(|p| p.status.as_ref()?.container_statuses.as_ref())
        .flatten();
    for status in statuses {
        let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
        let reason = waiting
            .and_then(|w| w.reason.as_deref())
            .unwrap_or_default();
        let waiting_message = waiting.and_then(|w| w.message.clone()).unwrap_or_default();
        if matches!(
            reason,
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName"
        ) {
            return Some((
                "BadContainerImage",
                format!("{reason}: {waiting_message}")
                    .trim_end_matches(": ")
                    .to_owned(),
            ));
        }
        let terminated = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .or(status.state.as_ref().and_then(|s| s.terminated.as_ref()));
        if reason == "CrashLoopBackOff" || terminated.is_some_and(|t| t.exit_code != 0) {
            let said = terminated
                .and_then(|t| t.message.as_deref())
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| m.lines().last().unwrap_or(m).to_owned());
            let exit = terminated.map(|t| format!("exited with code {}", t.exit_code));
            let message = [
                Some("the adapter".to_owned()),
                exit.or(Some("keeps restarting".into())),
                said,
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            return Some(("AppRuntimeFailure", message));
        }
    }
    None
}

/// Conditions with their transition times kept when their status did not
/// change, and `now` when it did.
fn with_times(mut conditions: Vec<Condition>, previous: &[Condition], now: &str) -> Vec<Condition> {
    for c in &mut conditions {
        let before = previous.iter().find(|p| p.type_ == c.type_);
        c.last_transition_time = match before {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => Some(now.to_owned()),
        };
    }
    conditions
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
    let namespace = resources::namespace(source);
    let resolved: Result<Targets, SinkError> =
        sink::resolve(&source.spec.sink, &namespace, observed.sink_object.as_ref()).and_then(
            |sink| {
                let dead_letter = source
                    .spec
                    .delivery
                    .as_ref()
                    .and_then(|d| d.dead_letter_sink.as_ref())
                    .map(|d| {
                        sink::resolve(d, &namespace, observed.dead_letter_object.as_ref()).map_err(
                            |e| SinkError {
                                reason: e.reason,
                                message: format!("dead-letter sink: {}", e.message),
                            },
                        )
                    })
                    .transpose()?;
                Ok(Targets { sink, dead_letter })
            },
        );
    let mut changes = Vec::new();
    let mut unmanaged_service_account = false;
    let mut deployment_changed = false;

    if let Ok(targets) = &resolved {
        let Desired {
            service_account,
            checkpoints,
            checkpoint_role,
            checkpoint_binding,
            deployment,
        } = resources::desired(source, targets, settings);

        match &observed.service_account {
            None => changes.push(Change::CreateServiceAccount(service_account)),
            Some(existing) if !resources::is_managed(&existing.metadata) => {
                unmanaged_service_account = true
            }
            Some(existing) => {
                let merged = merged_account(existing, &service_account);
                if &merged != existing {
                    changes.push(Change::ReplaceServiceAccount(merged));
                }
            }
        }
        if observed.checkpoints.is_none() {
            changes.push(Change::CreateConfigMap(checkpoints));
        }
        match &observed.checkpoint_role {
            None => changes.push(Change::CreateRole(checkpoint_role)),
            Some(existing) if existing.rules != checkpoint_role.rules => {
                changes.push(Change::ReplaceRole(keep_version(existing, checkpoint_role)))
            }
            Some(_) => {}
        }
        match &observed.checkpoint_binding {
            None => changes.push(Change::CreateRoleBinding(checkpoint_binding)),
            Some(existing)
                if existing.subjects != checkpoint_binding.subjects
                    || existing.role_ref != checkpoint_binding.role_ref =>
            {
                changes.push(Change::ReplaceRoleBinding(keep_version(
                    existing,
                    checkpoint_binding,
                )))
            }
            Some(_) => {}
        }
        let deployment = stamped(deployment);
        match &observed.deployment {
            None => {
                deployment_changed = true;
                changes.push(Change::CreateDeployment(deployment));
            }
            Some(existing) if hash_of(existing) != hash_of(&deployment) => {
                deployment_changed = true;
                changes.push(Change::ReplaceDeployment(keep_version(
                    existing, deployment,
                )));
            }
            Some(_) => {}
        }
    }

    let sink_condition = match &resolved {
        Ok(_) => condition("SinkProvided", "True", None, None),
        Err(e) => condition(
            "SinkProvided",
            "False",
            Some(e.reason),
            Some(e.message.clone()),
        ),
    };
    let deployed_condition = deployed(
        observed.deployment.as_ref(),
        &observed.pods,
        deployment_changed,
    );
    let ready = match (&sink_condition, &deployed_condition) {
        (s, d) if s.status == "True" && d.status == "True" => {
            condition("Ready", "True", None, None)
        }
        (s, _) if s.status != "True" => {
            condition("Ready", "False", s.reason.as_deref(), s.message.clone())
        }
        (_, d) => condition("Ready", &d.status, d.reason.as_deref(), d.message.clone()),
    };
    let previous = source.status.clone().unwrap_or_default();
    let status = AWSDynamoDBSourceStatus {
        sink_uri: resolved.ok().map(|t| t.sink),
        ce_attributes: Some(vec![CeAttribute {
            type_: EVENT_TYPE.to_owned(),
            source: source.spec.arn.clone(),
        }]),
        observed_generation: source.metadata.generation,
        conditions: Some(with_times(
            vec![deployed_condition, ready, sink_condition],
            previous.conditions.as_deref().unwrap_or_default(),
            now,
        )),
    };
    Plan {
        changes,
        status: (status != previous).then_some(status),
        unmanaged_service_account,
    }
}

/// The status when the adapter's RBAC cannot be set up (the controller may
/// not create its Role or RoleBinding): not deployed, for that reason.
pub fn rbac_not_bound(
    source: &AWSDynamoDBSource,
    planned: Option<AWSDynamoDBSourceStatus>,
    message: &str,
    now: &str,
) -> AWSDynamoDBSourceStatus {
    let previous = source.status.clone().unwrap_or_default();
    let mut status = planned.unwrap_or_else(|| previous.clone());
    let reason = Some("RBACNotBound");
    let mut conditions: Vec<Condition> = status
        .conditions
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ != "Deployed" && c.type_ != "Ready")
        .collect();
    conditions.push(condition(
        "Deployed",
        "False",
        reason,
        Some(message.to_owned()),
    ));
    conditions.push(condition(
        "Ready",
        "False",
        reason,
        Some(message.to_owned()),
    ));
    conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    status.conditions = Some(with_times(
        conditions,
        previous.conditions.as_deref().unwrap_or_default(),
        now,
    ));
    status
}

/// A replacement carries the existing object's resourceVersion, so that a
/// concurrent change makes the update fail (and the reconcile retry)
/// instead of being overwritten.
fn keep_version<K: kube::Resource>(existing: &K, mut wanted: K) -> K {
    wanted.meta_mut().resource_version = existing.resource_version();
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DeploymentStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use serde_json::json;

    const NOW: &str = "2026-11-24T00:00:00Z";
    const LATER: &str = "2026-11-24T00:01:00Z";
    const SINK: &str = "http://triggermesh-rb-broker.default.svc.cluster.local/";

    fn source(manifest: &str) -> AWSDynamoDBSource {
        let object: serde_json::Value = serde_saphyr::from_str(manifest).unwrap();
        let mut source: AWSDynamoDBSource = serde_json::from_value(object).unwrap();
        source.metadata.namespace = Some("default".into());
        source.metadata.uid = Some("uid-1".into());
        source.metadata.generation = Some(1);
        source
    }

    fn seed() -> AWSDynamoDBSource {
        source(include_str!("../../api/testdata/seed.yaml"))
    }

    fn settings() -> AdapterSettings {
        AdapterSettings {
            image: "adapter:1".into(),
        }
    }

    fn broker() -> Option<serde_json::Value> {
        Some(json!({"status": {"address": {"url": SINK}}}))
    }

    /// What exists after `plan`'s creations were carried out.
    fn created(source: &AWSDynamoDBSource) -> Observed {
        let d = resources::desired(source, &Targets::sink(SINK), &settings());
        Observed {
            sink_object: broker(),
            dead_letter_object: None,
            service_account: Some(d.service_account),
            checkpoints: Some(d.checkpoints),
            checkpoint_role: Some(d.checkpoint_role),
            checkpoint_binding: Some(d.checkpoint_binding),
            deployment: Some(with_version(stamped(d.deployment), "7")),
            pods: Vec::new(),
        }
    }

    fn with_version(mut d: Deployment, version: &str) -> Deployment {
        d.metadata.resource_version = Some(version.into());
        d
    }

    fn available(mut observed: Observed) -> Observed {
        if let Some(d) = observed.deployment.as_mut() {
            d.status = Some(DeploymentStatus {
                available_replicas: Some(1),
                ..DeploymentStatus::default()
            });
        }
        observed
    }

    fn condition_of<'a>(status: &'a AWSDynamoDBSourceStatus, type_: &str) -> &'a Condition {
        status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    fn kinds(plan: &Plan) -> Vec<&'static str> {
        plan.changes
            .iter()
            .map(|c| match c {
                Change::CreateServiceAccount(_) => "create ServiceAccount",
                Change::ReplaceServiceAccount(_) => "replace ServiceAccount",
                Change::CreateConfigMap(_) => "create ConfigMap",
                Change::CreateRole(_) => "create Role",
                Change::ReplaceRole(_) => "replace Role",
                Change::CreateRoleBinding(_) => "create RoleBinding",
                Change::ReplaceRoleBinding(_) => "replace RoleBinding",
                Change::CreateDeployment(_) => "create Deployment",
                Change::ReplaceDeployment(_) => "replace Deployment",
            })
            .collect()
    }

    #[test]
    fn creation() {
        let observed = Observed {
            sink_object: broker(),
            dead_letter_object: None,
            ..Observed::default()
        };
        let plan = plan(&seed(), &observed, &settings(), NOW);
        assert_eq!(
            kinds(&plan),
            [
                "create ServiceAccount",
                "create ConfigMap",
                "create Role",
                "create RoleBinding",
                "create Deployment"
            ]
        );
        let status = plan.status.unwrap();
        assert_eq!(status.sink_uri.as_deref(), Some(SINK));
        assert_eq!(status.observed_generation, Some(1));
        assert_eq!(status.ce_attributes.unwrap()[0].type_, EVENT_TYPE);
        let st = |t| {
            condition_of(&plan_status(&seed(), &observed), t)
                .status
                .clone()
        };
        assert_eq!(
            (st("SinkProvided"), st("Deployed"), st("Ready")),
            ("True".into(), "Unknown".into(), "Unknown".into())
        );
    }

    fn plan_status(source: &AWSDynamoDBSource, observed: &Observed) -> AWSDynamoDBSourceStatus {
        plan(source, observed, &settings(), NOW).status.unwrap()
    }

    #[test]
    fn a_missing_sink_deploys_nothing_and_says_why() {
        let plan = plan(&seed(), &Observed::default(), &settings(), NOW);
        assert!(plan.changes.is_empty());
        let status = plan.status.unwrap();
        let sink = condition_of(&status, "SinkProvided");
        assert_eq!(
            (sink.status.as_str(), sink.reason.as_deref()),
            ("False", Some("SinkNotFound"))
        );
        let ready = condition_of(&status, "Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("SinkNotFound"))
        );
        assert_eq!(status.sink_uri, None);
    }

    #[test]
    fn a_dead_letter_sink_is_resolved_like_the_sink() {
        let mut source = seed();
        source.spec.delivery = Some(awsdynamodbsource_api::Delivery {
            dead_letter_sink: Some(awsdynamodbsource_api::Destination {
                reference: Some(awsdynamodbsource_api::KReference {
                    api_version: "eventing.knative.dev/v1".into(),
                    kind: "Broker".into(),
                    name: "dlq".into(),
                    namespace: None,
                }),
                uri: None,
            }),
            max_attempts: Some(3),
            max_record_age: None,
        });
        let env = |plan: &Plan| -> Vec<(String, Option<String>)> {
            plan.changes
                .iter()
                .find_map(|c| match c {
                    Change::CreateDeployment(d) => Some(d),
                    _ => None,
                })
                .and_then(|d| d.spec.as_ref())
                .and_then(|s| s.template.spec.as_ref())
                .map(|p| p.containers[0].env.clone().unwrap_or_default())
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.name, e.value))
                .collect()
        };
        let found = Observed {
            sink_object: broker(),
            dead_letter_object: Some(
                json!({"status": {"address": {"url": "http://dlq.default/"}}}),
            ),
            ..Observed::default()
        };
        let p = plan(&source, &found, &settings(), NOW);
        let vars = env(&p);
        assert!(
            vars.contains(&(
                "DEAD_LETTER_SINK".into(),
                Some("http://dlq.default/".into())
            )),
            "{vars:?}"
        );
        assert!(
            vars.contains(&("MAX_ATTEMPTS".into(), Some("3".into()))),
            "{vars:?}"
        );

        let missing = Observed {
            sink_object: broker(),
            dead_letter_object: None,
            ..Observed::default()
        };
        let p = plan(&source, &missing, &settings(), NOW);
        assert!(p.changes.is_empty(), "{:?}", kinds(&p));
        let status = p.status.unwrap();
        let sink = condition_of(&status, "SinkProvided");
        assert_eq!(sink.reason.as_deref(), Some("SinkNotFound"));
        assert!(
            sink.message
                .as_deref()
                .unwrap_or("")
                .starts_with("dead-letter sink:"),
            "{sink:?}"
        );
    }

    #[test]
    fn a_sink_not_ready_yet_deploys_nothing() {
        let observed = Observed {
            sink_object: Some(json!({"status": {"conditions": []}})),
            dead_letter_object: None,
            ..Observed::default()
        };
        let plan = plan(&seed(), &observed, &settings(), NOW);
        assert!(plan.changes.is_empty());
        let status = plan.status.unwrap();
        assert_eq!(
            condition_of(&status, "SinkProvided").reason.as_deref(),
            Some("EmptySinkURI")
        );
    }

    #[test]
    fn nothing_changed_means_no_update() {
        let source = seed();
        let observed = available(created(&source));
        let first = plan(&source, &observed, &settings(), NOW);
        assert!(first.changes.is_empty(), "{:?}", kinds(&first));
        let mut reported = source.clone();
        reported.status = first.status;
        assert_eq!(
            condition_of(reported.status.as_ref().unwrap(), "Ready").status,
            "True"
        );
        let second = plan(&reported, &observed, &settings(), LATER);
        assert!(second.changes.is_empty());
        assert_eq!(second.status, None, "the same status is not written again");
    }

    #[test]
    fn a_spec_change_replaces_the_deployment_at_its_version() {
        let before = seed();
        let observed = available(created(&before));
        let mut after = before.clone();
        after.spec.max_in_flight = Some(8);
        after.metadata.generation = Some(2);
        let plan = plan(&after, &observed, &settings(), NOW);
        assert_eq!(kinds(&plan), ["replace Deployment"]);
        let Change::ReplaceDeployment(d) = &plan.changes[0] else {
            unreachable!()
        };
        assert_eq!(d.metadata.resource_version.as_deref(), Some("7"));
        let env = d
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .as_ref()
            .unwrap()
            .containers[0]
            .env
            .clone()
            .unwrap();
        assert!(
            env.iter()
                .any(|v| v.name == "MAX_IN_FLIGHT" && v.value.as_deref() == Some("8"))
        );
        let status = plan.status.unwrap();
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            condition_of(&status, "Deployed").status,
            "Unknown",
            "rolling out"
        );
    }

    #[test]
    fn adapter_overrides_change_the_deployment() {
        let before = seed();
        let observed = available(created(&before));
        let mut after = before.clone();
        after.spec.adapter_overrides = Some(awsdynamodbsource_api::AdapterOverrides {
            labels: Some([("team".to_owned(), "data".to_owned())].into()),
            ..Default::default()
        });
        assert_eq!(
            kinds(&plan(&after, &observed, &settings(), NOW)),
            ["replace Deployment"]
        );
    }

    #[test]
    fn an_iam_role_gets_its_own_annotated_account() {
        let source = source(include_str!("../../api/testdata/seed-iamrole.yaml"));
        let plan = plan(
            &source,
            &Observed {
                sink_object: broker(),
                dead_letter_object: None,
                ..Observed::default()
            },
            &settings(),
            NOW,
        );
        let Change::CreateServiceAccount(account) = &plan.changes[0] else {
            panic!("{:?}", kinds(&plan))
        };
        assert_eq!(
            account.metadata.name.as_deref(),
            Some("awsdynamodbsource-i-sample")
        );
        assert_eq!(
            account.metadata.annotations.as_ref().unwrap()[ROLE_ANNOTATION],
            "arn:aws:iam::123456789012:role/foo"
        );
    }

    #[test]
    fn an_unmanaged_service_account_is_left_alone() {
        let source = seed();
        let mut observed = created(&source);
        observed.service_account = Some(ServiceAccount {
            metadata: ObjectMeta {
                name: Some(resources::SHARED_SERVICE_ACCOUNT.into()),
                annotations: Some([("mine".to_owned(), "yes".to_owned())].into()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        });
        let plan = plan(&source, &observed, &settings(), NOW);
        assert!(plan.unmanaged_service_account);
        assert!(plan.changes.is_empty(), "{:?}", kinds(&plan));
    }

    #[test]
    fn a_second_source_joins_the_shared_account_as_an_owner() {
        let first = seed();
        let mut observed = created(&first);
        let mut second = seed();
        second.metadata.name = Some("other".into());
        second.metadata.uid = Some("uid-2".into());
        observed.deployment = None;
        let plan = plan(&second, &observed, &settings(), NOW);
        let Change::ReplaceServiceAccount(account) = &plan.changes[0] else {
            panic!("{:?}", kinds(&plan))
        };
        let uids: Vec<&str> = account
            .metadata
            .owner_references
            .iter()
            .flatten()
            .map(|o| o.uid.as_str())
            .collect();
        assert_eq!(uids, ["uid-1", "uid-2"]);
    }

    #[test]
    fn deletion_is_left_to_the_garbage_collector() {
        let mut source = seed();
        source.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let plan = plan(
            &source,
            &Observed {
                sink_object: broker(),
                dead_letter_object: None,
                ..Observed::default()
            },
            &settings(),
            NOW,
        );
        assert!(plan.changes.is_empty());
        assert_eq!(plan.status, None);
    }

    #[test]
    fn transition_times_move_only_with_the_status() {
        let source = seed();
        let observed = available(created(&source));
        let mut reported = source.clone();
        reported.status = plan(&source, &observed, &settings(), NOW).status;
        let mut broken = observed.clone();
        broken.sink_object = None;
        let status = plan(&reported, &broken, &settings(), LATER).status.unwrap();
        assert_eq!(
            condition_of(&status, "SinkProvided")
                .last_transition_time
                .as_deref(),
            Some(LATER)
        );
        assert_eq!(
            condition_of(&status, "Deployed")
                .last_transition_time
                .as_deref(),
            Some(NOW)
        );
    }

    fn with_pod(mut observed: Observed, container_status: serde_json::Value) -> Observed {
        observed.pods = vec![
            serde_json::from_value(json!({
                "metadata": {"name": "awsdynamodbsource-sample-abc"},
                "status": {"containerStatuses": [container_status]},
            }))
            .unwrap(),
        ];
        observed
    }

    #[test]
    fn a_bad_image_and_a_crashing_adapter_are_named() {
        let source = seed();
        let pulling = with_pod(
            created(&source),
            json!({"name": "adapter", "image": "adapter:1", "imageID": "", "ready": false, "restartCount": 0,
                   "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"adapter:1\""}}}),
        );
        let status = plan_status(&source, &pulling);
        let deployed = condition_of(&status, "Deployed");
        assert_eq!(
            (deployed.status.as_str(), deployed.reason.as_deref()),
            ("False", Some("BadContainerImage"))
        );
        assert!(
            deployed
                .message
                .as_deref()
                .unwrap()
                .contains("pulling image"),
            "{deployed:?}"
        );
        assert_eq!(
            condition_of(&status, "Ready").reason.as_deref(),
            Some("BadContainerImage")
        );

        let fatal =
            r#"{"level":"fatal","msg":"DynamoDB Streams refused ListStreams: access denied"}"#;
        let crashing = with_pod(
            created(&source),
            json!({"name": "adapter", "image": "adapter:1", "imageID": "", "ready": false, "restartCount": 3,
                   "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                   "lastState": {"terminated": {"exitCode": 1, "message": format!("starting\n{fatal}\n")}}}),
        );
        let status = plan_status(&source, &crashing);
        let deployed = condition_of(&status, "Deployed");
        assert_eq!(deployed.reason.as_deref(), Some("AppRuntimeFailure"));
        let message = deployed.message.as_deref().unwrap();
        assert!(
            message.contains("exited with code 1") && message.contains("access denied"),
            "{message}"
        );

        let starting = with_pod(
            created(&source),
            json!({"name": "adapter", "image": "adapter:1", "imageID": "", "ready": false, "restartCount": 0,
                   "state": {"running": {}}}),
        );
        assert_eq!(
            condition_of(&plan_status(&source, &starting), "Deployed")
                .reason
                .as_deref(),
            Some("AdapterUnavailable")
        );
    }
}
