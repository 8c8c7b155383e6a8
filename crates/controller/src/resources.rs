//! Source → the objects that run its adapter, as pure functions.
//!
//! Owns what the controller *wants* to exist for one `AWSDynamoDBSource`:
//! the adapter's Deployment, its ServiceAccount (when the controller manages
//! one), the ConfigMap, Role and RoleBinding of its checkpoints (and its
//! shard Leases, with replicas), and with replicas a PodDisruptionBudget. It never
//! talks to the API server: `reconcile` compares and applies, and `render`
//! prints.

use std::collections::BTreeMap;

use awsdynamodbsource_api::AWSDynamoDBSource;
use awsdynamodbsource_api::adapter::{EnvValue, spec_env};
use awsdynamodbsource_api::vars as var;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecurityContext, ServiceAccount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{Resource, ResourceExt};

/// The service account shared by a namespace's adapters without an IAM role.
pub const SHARED_SERVICE_ACCOUNT: &str = "awsdynamodbsource-adapter";
/// The annotation EKS reads to give a service account's pods an IAM role.
pub const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// Set on every object the controller manages; one without it is never changed.
pub const MANAGED_BY: (&str, &str) = (
    "app.kubernetes.io/managed-by",
    "awsdynamodbsource-controller",
);
pub const HEALTH_PORT: i32 = 8080;
pub const METRICS_PORT: i32 = 9092;
/// The adapter's liveness endpoint, on the health port (its HTTP server's
/// `/livez`): it answers while the process serves requests, whatever the
/// sink does.
pub const LIVENESS_PATH: &str = "/livez";
/// The adapter's readiness: `/health`, 503 while it is not capturing.
pub const READINESS_PATH: &str = "/health";
/// The `nonroot` user of the adapter's distroless image. Set explicitly so
/// that `runAsNonRoot` holds for any image, even one whose user is a name
/// the kubelet cannot check.
pub const ADAPTER_UID: i64 = 65532;

/// Controller settings that shape every adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSettings {
    /// The adapter's container image.
    pub image: String,
}

/// Everything one source needs, as the controller would create it.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    /// The adapter's service account, when the controller manages it. For a
    /// shared one, this is the account with this source added as an owner.
    pub service_account: ServiceAccount,
    pub checkpoints: ConfigMap,
    pub checkpoint_role: Role,
    pub checkpoint_binding: RoleBinding,
    pub deployment: Deployment,
    /// With more than one replica: at most one adapter pod evicted at once.
    pub disruption_budget: Option<PodDisruptionBudget>,
}

/// The adapter Deployment's name: `awsdynamodbsource-<source>`.
pub fn deployment_name(source: &AWSDynamoDBSource) -> String {
    format!("awsdynamodbsource-{}", source.name_any())
}

/// The ConfigMap holding the adapter's checkpoints.
pub fn checkpoints_name(source: &AWSDynamoDBSource) -> String {
    format!("awsdynamodbsource-{}-checkpoints", source.name_any())
}

/// The service account the adapter runs as, and whether it is the shared one.
pub fn service_account_name(source: &AWSDynamoDBSource) -> (String, bool) {
    let auth = &source.spec.auth;
    if let Some(name) = auth.iam.as_ref().and_then(|i| i.service_account.clone()) {
        return (name, false);
    }
    if auth.role_arn().is_some() {
        return (format!("awsdynamodbsource-i-{}", source.name_any()), false);
    }
    (SHARED_SERVICE_ACCOUNT.to_owned(), true)
}

/// The source's namespace ("default" for a manifest without one).
pub fn namespace(source: &AWSDynamoDBSource) -> String {
    source.namespace().unwrap_or_else(|| "default".to_owned())
}

/// The source as an owner, for garbage collection. A source read from a
/// file (`render`) has no uid yet, and so owns nothing.
fn owner(source: &AWSDynamoDBSource, controller: bool) -> Option<Vec<OwnerReference>> {
    Some(vec![OwnerReference {
        api_version: AWSDynamoDBSource::api_version(&()).into_owned(),
        kind: AWSDynamoDBSource::kind(&()).into_owned(),
        name: source.name_any(),
        uid: source.uid()?,
        controller: Some(controller),
        block_owner_deletion: Some(true),
    }])
}

/// The labels that select one source's adapter pods.
pub fn selector_labels(source: &AWSDynamoDBSource) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/name".to_owned(),
            "awsdynamodbsource".to_owned(),
        ),
        ("app.kubernetes.io/instance".to_owned(), source.name_any()),
    ])
}

fn labels(source: &AWSDynamoDBSource) -> BTreeMap<String, String> {
    let mut labels = selector_labels(source);
    labels.insert(
        "app.kubernetes.io/component".to_owned(),
        "adapter".to_owned(),
    );
    labels.insert(
        "app.kubernetes.io/part-of".to_owned(),
        "triggermesh".to_owned(),
    );
    labels.insert(MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned());
    labels
}

fn meta(source: &AWSDynamoDBSource, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace(source)),
        labels: Some(labels(source)),
        owner_references: owner(source, true),
        ..ObjectMeta::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

/// A spec setting as an env var: inline, or a `secretKeyRef`.
fn env_var(name: &str, value: EnvValue) -> EnvVar {
    match value {
        EnvValue::Literal(value) => env(name, value),
        EnvValue::Secret(secret) => EnvVar {
            name: name.to_owned(),
            value: None,
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: secret.name,
                    key: secret.key,
                    optional: None,
                }),
                ..EnvVarSource::default()
            }),
        },
    }
}

/// Where the adapter sends: the resolved `spec.sink`, and the resolved
/// `spec.delivery.deadLetterSink` when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub sink: String,
    pub dead_letter: Option<String>,
}

impl Targets {
    /// A sink without a dead-letter sink.
    pub fn sink(uri: &str) -> Targets {
        Targets {
            sink: uri.to_owned(),
            dead_letter: None,
        }
    }
}

/// Whether the adapters share the stream through Leases: with more than
/// one replica, and also once they did (`leases_exist`): scaled back to
/// one, the ConfigMap's checkpoints are as old as the move to Leases.
pub fn uses_leases(source: &AWSDynamoDBSource, leases_exist: bool) -> bool {
    source.spec.replicas() > 1 || leases_exist
}

/// The adapter's environment (contract section 1, plus its own options).
pub fn adapter_env(source: &AWSDynamoDBSource, targets: &Targets, leases: bool) -> Vec<EnvVar> {
    let spec = &source.spec;
    let mut vars = vec![
        env(var::K_SINK, targets.sink.as_str()),
        env(var::NAMESPACE, namespace(source)),
        env(var::NAME, source.name_any()),
        env(
            var::CHECKPOINT_STORE,
            format!("kubernetes:{}", checkpoints_name(source)),
        ),
        env(var::HEALTH_PORT, HEALTH_PORT.to_string()),
        env(var::METRICS_PROMETHEUS_PORT, METRICS_PORT.to_string()),
    ];
    if let Some(dead_letter) = &targets.dead_letter {
        vars.push(env(var::DEAD_LETTER_SINK, dead_letter.as_str()));
    }
    // Replicas share the shards through Leases; the ConfigMap's
    // checkpoints are then read once, for where shards without a Lease yet
    // begin (a source scaled up resumes where it was).
    if leases {
        vars.push(env(var::COORDINATION, "kubernetes"));
    }
    for (name, value) in spec_env(spec) {
        vars.push(env_var(name, value));
    }
    // adapterOverrides.env last: an override of a name replaces it.
    for extra in spec
        .adapter_overrides
        .iter()
        .flat_map(|o| o.env.iter().flatten())
    {
        vars.retain(|v| v.name != extra.name);
        vars.push(extra.clone());
    }
    vars
}

/// The service account the controller wants for this source. For the shared
/// account, the source is one owner among others (so that the account goes
/// when its last source does); a dedicated one is annotated with the role.
pub fn service_account(source: &AWSDynamoDBSource) -> ServiceAccount {
    let (name, shared) = service_account_name(source);
    let mut meta = meta(source, name);
    if shared {
        meta.labels = Some(BTreeMap::from([
            (
                "app.kubernetes.io/name".to_owned(),
                "awsdynamodbsource".to_owned(),
            ),
            (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
        ]));
        meta.owner_references = owner(source, false);
    }
    if let Some(role) = source.spec.auth.role_arn() {
        meta.annotations = Some(BTreeMap::from([(
            ROLE_ANNOTATION.to_owned(),
            role.to_owned(),
        )]));
    }
    ServiceAccount {
        metadata: meta,
        ..ServiceAccount::default()
    }
}

/// The adapter's Deployment. Without Leases: `Recreate`, so that a rollout
/// never runs two adapters on one set of checkpoints. Once the adapters run
/// with Leases (`leases_exist`), they share the stream, so a rolling update
/// starts one new pod (which takes its share of the shards, handed over
/// with no duplicate) before it stops an old one (which hands its shards
/// over on SIGTERM). The first move to Leases recreates: an old pod
/// without them must not read beside the new ones. (A change of strategy
/// alone restarts no pod.)
pub fn deployment(
    source: &AWSDynamoDBSource,
    targets: &Targets,
    settings: &AdapterSettings,
    leases_exist: bool,
) -> Deployment {
    let leases = uses_leases(source, leases_exist);
    let overrides = source.spec.adapter_overrides.clone().unwrap_or_default();
    let mut pod_labels = labels(source);
    pod_labels.extend(overrides.labels.clone().unwrap_or_default());
    let container = Container {
        name: "adapter".to_owned(),
        image: Some(settings.image.clone()),
        env: Some(adapter_env(source, targets, leases)),
        ports: Some(vec![
            ContainerPort {
                name: Some("metrics".to_owned()),
                container_port: METRICS_PORT,
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("health".to_owned()),
                container_port: HEALTH_PORT,
                ..ContainerPort::default()
            },
        ]),
        // Probes that restart the container (startup, liveness) ask only
        // whether the process serves requests: a restart because the sink
        // fails would send again what was delivered since the last
        // checkpoint, and fix nothing. `/health`'s verdict (sink, stream,
        // checkpoints) only takes the pod out of ready, which the source's
        // status then reports.
        startup_probe: Some(Probe {
            http_get: Some(http_get(LIVENESS_PATH)),
            period_seconds: Some(1),
            failure_threshold: Some(60),
            ..Probe::default()
        }),
        liveness_probe: Some(Probe {
            http_get: Some(http_get(LIVENESS_PATH)),
            period_seconds: Some(10),
            timeout_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        // Three misses in a row: a shard's reader between two iterators
        // (a shard ending, a retry) does not flap the pod.
        readiness_probe: Some(Probe {
            http_get: Some(http_get(READINESS_PATH)),
            period_seconds: Some(5),
            failure_threshold: Some(3),
            ..Probe::default()
        }),
        resources: Some(
            overrides
                .resources
                .clone()
                .unwrap_or_else(default_resources),
        ),
        security_context: Some(container_security_context()),
        // The adapter's last log line (its fatal error) becomes the
        // termination message, which the status then quotes.
        termination_message_policy: Some("FallbackToLogsOnError".to_owned()),
        ..Container::default()
    };
    let mut metadata = meta(source, deployment_name(source));
    if let Some(extra) = &overrides.labels {
        metadata
            .labels
            .get_or_insert_default()
            .extend(extra.clone());
    }
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            replicas: Some(source.spec.replicas() as i32),
            strategy: Some(if leases_exist {
                DeploymentStrategy {
                    type_: Some("RollingUpdate".to_owned()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(IntOrString::Int(1)),
                        max_unavailable: Some(IntOrString::Int(0)),
                    }),
                }
            } else {
                DeploymentStrategy {
                    type_: Some("Recreate".to_owned()),
                    rolling_update: None,
                }
            }),
            selector: LabelSelector {
                match_labels: Some(selector_labels(source)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations(overrides.annotations.as_ref())),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(service_account_name(source).0),
                    security_context: Some(pod_security_context()),
                    containers: vec![container],
                    tolerations: overrides.tolerations.clone(),
                    node_selector: overrides.node_selector.clone(),
                    affinity: overrides.affinity.clone(),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// A GET on the adapter's port named `health`.
fn http_get(path: &str) -> HTTPGetAction {
    HTTPGetAction {
        path: Some(path.to_owned()),
        port: IntOrString::String("health".to_owned()),
        ..HTTPGetAction::default()
    }
}

/// Without `adapterOverrides.resources`: requests only. An adapter uses
/// about 20 MB and a few percent of a core on a quiet stream, and about
/// 85 MB and 60 % of a core polling 1,024 busy shards (README, Many shards).
/// No CPU limit: throttling would only delay polls and deliveries, and the
/// request already places the pod. No memory limit: memory grows with the
/// shards and with the events read ahead of delivery, so no one number fits
/// every stream, and an OOM kill sends again what was delivered since the
/// last checkpoint, then runs out at the same place. The override replaces
/// all of this (a limit is set there).
fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_owned(), Quantity("50m".to_owned())),
            ("memory".to_owned(), Quantity("64Mi".to_owned())),
        ])),
        ..ResourceRequirements::default()
    }
}

/// Prometheus's usual scrape annotations, then `adapterOverrides.annotations`,
/// which win (e.g. `prometheus.io/scrape: "false"`).
fn pod_annotations(overrides: Option<&BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), METRICS_PORT.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ]);
    annotations.extend(overrides.cloned().unwrap_or_default());
    annotations
}

/// Pod Security's `restricted` profile, at the pod's level: a non-root
/// user and the runtime's default seccomp profile.
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(ADAPTER_UID),
        run_as_group: Some(ADAPTER_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

/// The container's part of `restricted`, and a read-only root: with the
/// `kubernetes:` checkpoint store the adapter writes no file (only the
/// `file:` store does, under STATE_DIR or HOME).
fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            add: None,
            drop: Some(vec!["ALL".to_owned()]),
        }),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

/// The ConfigMap the adapter keeps its checkpoints in. The controller
/// creates it empty and never writes it again: its data is the adapter's.
pub fn checkpoints(source: &AWSDynamoDBSource) -> ConfigMap {
    ConfigMap {
        metadata: meta(source, checkpoints_name(source)),
        ..ConfigMap::default()
    }
}

/// Exactly what the adapter needs: read and write its own ConfigMap; with
/// Leases, also list, read, create and update Leases in the namespace
/// (their names are not known in advance: one per shard, so RBAC cannot
/// name them; the adapter never deletes one).
pub fn checkpoint_role(source: &AWSDynamoDBSource, leases: bool) -> Role {
    let verbs = |v: &[&str]| v.iter().map(|v| (*v).to_owned()).collect();
    let mut rules = vec![PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["configmaps".to_owned()]),
        resource_names: Some(vec![checkpoints_name(source)]),
        verbs: verbs(&["get", "update", "patch"]),
        non_resource_urls: None,
    }];
    if leases {
        rules.push(PolicyRule {
            api_groups: Some(vec!["coordination.k8s.io".to_owned()]),
            resources: Some(vec!["leases".to_owned()]),
            resource_names: None,
            verbs: verbs(&["get", "list", "create", "update"]),
            non_resource_urls: None,
        });
    }
    Role {
        metadata: meta(source, checkpoints_name(source)),
        rules: Some(rules),
    }
}

/// With more than one replica: voluntary evictions (node drains) take one
/// adapter pod at a time, whose shards the others take over at once (it
/// hands them over on SIGTERM). A pod that is not ready may always be
/// evicted: while the sink fails, every adapter is unready, and the
/// default policy would then block every drain until the sink is back.
pub fn disruption_budget(source: &AWSDynamoDBSource) -> Option<PodDisruptionBudget> {
    (source.spec.replicas() > 1).then(|| PodDisruptionBudget {
        metadata: meta(source, deployment_name(source)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(source)),
                match_expressions: None,
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
            ..PodDisruptionBudgetSpec::default()
        }),
        status: None,
    })
}

pub fn checkpoint_binding(source: &AWSDynamoDBSource) -> RoleBinding {
    RoleBinding {
        metadata: meta(source, checkpoints_name(source)),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "Role".to_owned(),
            name: checkpoints_name(source),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: service_account_name(source).0,
            namespace: Some(namespace(source)),
            api_group: None,
        }]),
    }
}

/// All of it. `leases_exist`: the source's adapters have made Leases.
pub fn desired(
    source: &AWSDynamoDBSource,
    targets: &Targets,
    settings: &AdapterSettings,
    leases_exist: bool,
) -> Desired {
    let leases = uses_leases(source, leases_exist);
    Desired {
        service_account: service_account(source),
        checkpoints: checkpoints(source),
        checkpoint_role: checkpoint_role(source, leases),
        checkpoint_binding: checkpoint_binding(source),
        deployment: deployment(source, targets, settings, leases_exist),
        disruption_budget: disruption_budget(source),
    }
}

/// Whether an existing object is the controller's to change.
pub fn is_managed(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1)
}

#[cfg(test)]
mod tests;
