//! The reconcile decisions, checked against hand-made [`Observed`] states.

use super::*;
use awsdynamodbsource_api::{Condition, EVENT_TYPE};
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
    source(include_str!("../../../api/testdata/seed.yaml"))
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
    let d = resources::desired(source, &Targets::sink(SINK), &settings(), false);
    Observed {
        sink_object: broker(),
        dead_letter_object: None,
        service_account: Some(d.service_account),
        checkpoints: Some(d.checkpoints),
        checkpoint_role: Some(d.checkpoint_role),
        checkpoint_binding: Some(d.checkpoint_binding),
        deployment: Some(with_version(stamped(d.deployment), "7")),
        disruption_budget: d.disruption_budget,
        leases_exist: false,
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
            Change::CreateDisruptionBudget(_) => "create PodDisruptionBudget",
            Change::ReplaceDisruptionBudget(_) => "replace PodDisruptionBudget",
            Change::DeleteDisruptionBudget(_) => "delete PodDisruptionBudget",
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
        dead_letter_object: Some(json!({"status": {"address": {"url": "http://dlq.default/"}}})),
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
    let source = source(include_str!("../../../api/testdata/seed-iamrole.yaml"));
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

    let fatal = r#"{"level":"fatal","msg":"DynamoDB Streams refused ListStreams: access denied"}"#;
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

/// The budget exists only with replicas, and only the controller's own is
/// changed or deleted.
#[test]
fn a_disruption_budget_only_with_replicas_and_only_its_own() {
    let mut source = seed();
    source.spec.replicas = Some(2);
    let mut observed = available(created(&source));
    // As the API server returns it, with what it fills in.
    if let Some(budget) = observed.disruption_budget.as_mut() {
        budget.metadata.resource_version = Some("9".into());
        budget.metadata.generation = Some(1);
        if let Some(spec) = budget.spec.as_mut() {
            spec.min_available = None;
        }
        budget.status = Some(k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus {
            current_healthy: 2,
            desired_healthy: 1,
            expected_pods: 2,
            disruptions_allowed: 1,
            ..Default::default()
        });
    }
    assert!(observed.disruption_budget.is_some());
    assert!(kinds(&plan(&source, &observed, &settings(), NOW)).is_empty());

    // A budget from before unready pods could always be evicted: replaced
    // once, at its version.
    let mut older = observed.clone();
    if let Some(spec) = older
        .disruption_budget
        .as_mut()
        .and_then(|b| b.spec.as_mut())
    {
        spec.unhealthy_pod_eviction_policy = None;
    }
    let changes = plan(&source, &older, &settings(), NOW).changes;
    let [Change::ReplaceDisruptionBudget(replaced)] = &changes[..] else {
        panic!("one replacement of the budget: {changes:?}")
    };
    assert_eq!(replaced.metadata.resource_version.as_deref(), Some("9"));
    assert_eq!(
        replaced
            .spec
            .as_ref()
            .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref()),
        Some("AlwaysAllow")
    );

    source.spec.replicas = Some(1);
    let kinds_now = |observed: &Observed| kinds(&plan(&source, observed, &settings(), NOW));
    assert!(kinds_now(&observed).contains(&"delete PodDisruptionBudget"));
    let mut theirs = observed.clone();
    if let Some(budget) = theirs.disruption_budget.as_mut() {
        budget.metadata.labels = None;
    }
    assert!(!kinds_now(&theirs).contains(&"delete PodDisruptionBudget"));
}
