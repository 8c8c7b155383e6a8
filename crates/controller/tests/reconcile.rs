//! `reconcile` against a mocked API server (kube-rs's tower-test pattern):
//! each expected call is asserted, in order, and answered.

use std::sync::Arc;
use std::time::Duration;

use awsdynamodbsource_api::AWSDynamoDBSource;
use awsdynamodbsource_controller::reconcile::{Context, Error, reconcile};
use awsdynamodbsource_controller::resources::AdapterSettings;
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const SINK: &str = "http://triggermesh-rb-broker.default.svc.cluster.local/";
const NS: &str = "/api/v1/namespaces/default";

fn seed() -> AWSDynamoDBSource {
    let object: Value =
        serde_saphyr::from_str(include_str!("../../api/testdata/seed.yaml")).unwrap();
    let mut source: AWSDynamoDBSource = serde_json::from_value(object).unwrap();
    source.metadata.namespace = Some("default".into());
    source.metadata.uid = Some("uid-1".into());
    source.metadata.generation = Some(1);
    source
}

fn context(client: Client) -> Arc<Context> {
    let reporter = Reporter {
        controller: "awsdynamodbsource-controller".into(),
        instance: None,
    };
    Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        settings: AdapterSettings {
            image: "adapter:1".into(),
        },
    })
}

fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "not found", "reason": "NotFound", "code": 404}),
    )
}

/// Waits for the next call, asserts its method and path, answers it, and
/// returns its body.
async fn expect(
    handle: &mut Handle,
    method: &str,
    path: &str,
    answer: impl FnOnce(&Value) -> (StatusCode, Value),
) -> Value {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .unwrap_or_else(|_| panic!("no call; expected {method} {path}"))
        .unwrap_or_else(|| panic!("the client went away; expected {method} {path}"));
    assert_eq!(
        (request.method().as_str(), request.uri().path()),
        (method, path),
        "unexpected call"
    );
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    let (status, reply) = answer(&body);
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    body
}

/// An event: kube's recorder writes it with a patch to a named event (or a
/// post); answered as written. Returns the event.
async fn expect_event(handle: &mut Handle) -> Value {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("no event written")
        .expect("the client went away before the event");
    let path = request.uri().path().to_owned();
    assert!(
        path.starts_with(EVENTS),
        "unexpected call {} {path}",
        request.method()
    );
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let event: Value = serde_json::from_slice(&bytes).unwrap();
    send.send_response(
        Response::builder()
            .status(StatusCode::OK)
            .body(Body::from(bytes.to_vec()))
            .unwrap(),
    );
    event
}

/// The reconcile's result, or a failure if it does not end (a call the
/// test did not answer).
async fn finish<T>(run: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the reconcile ends")
        .expect("the reconcile does not panic")
}

fn echo(body: &Value) -> (StatusCode, Value) {
    (StatusCode::CREATED, body.clone())
}

fn broker() -> (StatusCode, Value) {
    (
        StatusCode::OK,
        json!({"apiVersion": "eventing.triggermesh.io/v1alpha1", "kind": "RedisBroker",
               "metadata": {"name": "triggermesh", "namespace": "default"},
               "status": {"address": {"url": SINK}}}),
    )
}

const BROKER: &str =
    "/apis/eventing.triggermesh.io/v1alpha1/namespaces/default/redisbrokers/triggermesh";
const ACCOUNT: &str = "/api/v1/namespaces/default/serviceaccounts/awsdynamodbsource-adapter";
const CONFIGMAP: &str =
    "/api/v1/namespaces/default/configmaps/awsdynamodbsource-sample-checkpoints";
const ROLE: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/awsdynamodbsource-sample-checkpoints";
const BINDING: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/awsdynamodbsource-sample-checkpoints";
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/default/deployments/awsdynamodbsource-sample";
const BUDGET: &str =
    "/apis/policy/v1/namespaces/default/poddisruptionbudgets/awsdynamodbsource-sample";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/default/events";
const STATUS: &str =
    "/apis/sources.triggermesh.io/v1alpha1/namespaces/default/awsdynamodbsources/sample/status";

/// A reconcile of `source` running against a fresh mocked API server.
fn start(source: AWSDynamoDBSource) -> (Handle, tokio::task::JoinHandle<Result<Action, Error>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let run = tokio::spawn(reconcile(
        Arc::new(source),
        context(Client::new(service, "default")),
    ));
    (handle, run)
}

/// The GETs of the source's own objects, none of which exists.
async fn nothing_exists(handle: &mut Handle) {
    for path in [ACCOUNT, CONFIGMAP, ROLE, BINDING, DEPLOYMENT, BUDGET] {
        expect(handle, "GET", path, |_| not_found()).await;
    }
    expect(handle, "GET", LEASES, |_| leases(0)).await;
}

/// The source's Leases (only their metadata is listed).
fn leases(n: usize) -> (StatusCode, Value) {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"metadata": {"name": format!("awsdynamodbsource-sample-x-{i}")}}))
        .collect();
    (
        StatusCode::OK,
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
               "metadata": {}, "items": items}),
    )
}

#[tokio::test]
async fn a_new_source_gets_its_objects_an_event_each_and_a_status() {
    let (mut handle, run) = start(seed());

    expect(&mut handle, "GET", BROKER, |_| broker()).await;
    nothing_exists(&mut handle).await;
    let created = [
        (format!("{NS}/serviceaccounts"), "ServiceAccount"),
        (format!("{NS}/configmaps"), "ConfigMap"),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles".to_owned(),
            "Role",
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings".to_owned(),
            "RoleBinding",
        ),
        (
            "/apis/apps/v1/namespaces/default/deployments".to_owned(),
            "Deployment",
        ),
    ];
    for (path, kind) in created {
        let body = expect(&mut handle, "POST", &path, echo).await;
        assert_eq!(body["kind"], kind);
        assert_eq!(
            body["metadata"]["ownerReferences"][0]["uid"], "uid-1",
            "{kind} is owned by the source"
        );
        if kind == "Deployment" {
            let env = &body["spec"]["template"]["spec"]["containers"][0]["env"];
            assert!(
                env.as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v["name"] == "K_SINK" && v["value"] == SINK)
            );
        }
        let event = expect_event(&mut handle).await;
        assert_eq!(event["reason"], "Reconciled");
        assert_eq!(event["regarding"]["name"], "sample");
    }
    let patch = expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    assert_eq!(patch["status"]["sinkUri"], SINK);
    let conditions = patch["status"]["conditions"].as_array().unwrap();
    let status_of = |t: &str| conditions.iter().find(|c| c["type"] == t).unwrap()["status"].clone();
    assert_eq!(status_of("SinkProvided"), "True");
    assert_eq!(status_of("Deployed"), "Unknown");

    finish(run).await.expect("the reconcile succeeds");
}

#[tokio::test]
async fn a_missing_sink_creates_nothing_and_reports_sink_not_found() {
    let (mut handle, run) = start(seed());

    expect(&mut handle, "GET", BROKER, |_| not_found()).await;
    nothing_exists(&mut handle).await;
    let patch = expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    let conditions = patch["status"]["conditions"].as_array().unwrap();
    let ready = conditions.iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("SinkNotFound"))
    );
    finish(run).await.expect("the reconcile succeeds");
    assert!(
        handle.next_request().await.is_none(),
        "nothing else is called"
    );
}

#[tokio::test]
async fn an_api_error_fails_the_reconcile_with_what_it_was_doing() {
    let (mut handle, run) = start(seed());
    expect(&mut handle, "GET", BROKER, |_| broker()).await;
    expect(&mut handle, "GET", ACCOUNT, |_| {
        (
            StatusCode::FORBIDDEN,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "forbidden", "reason": "Forbidden", "code": 403}),
        )
    })
    .await;
    let error = finish(run).await.expect_err("a 403 fails the reconcile");
    assert!(
        error.to_string().contains("get awsdynamodbsource-adapter"),
        "{error}"
    );
}

/// The objects a reconcile of `source` creates when nothing exists, as the
/// API server would return them (with a resourceVersion).
fn as_created(source: &AWSDynamoDBSource) -> Vec<Value> {
    use awsdynamodbsource_controller::plan::{Change, Observed, plan};
    let observed = Observed {
        sink_object: Some(broker().1),
        ..Observed::default()
    };
    let settings = AdapterSettings {
        image: "adapter:1".into(),
    };
    plan(source, &observed, &settings, "2026-01-01T00:00:00Z")
        .changes
        .into_iter()
        .map(|c| {
            let mut v = match c {
                Change::CreateServiceAccount(o) => serde_json::to_value(o),
                Change::CreateConfigMap(o) => serde_json::to_value(o),
                Change::CreateRole(o) => serde_json::to_value(o),
                Change::CreateRoleBinding(o) => serde_json::to_value(o),
                Change::CreateDeployment(o) => serde_json::to_value(o),
                Change::CreateDisruptionBudget(o) => serde_json::to_value(o),
                other => panic!("not a creation: {other:?}"),
            }
            .unwrap();
            v["metadata"]["resourceVersion"] = json!("41");
            v
        })
        .collect()
}

fn available(mut deployment: Value) -> Value {
    deployment["status"] = json!({"availableReplicas": 1, "replicas": 1});
    deployment
}

/// GETs of every object answered with `existing` (in the order observed;
/// one left out at the end is not found); no Leases.
async fn observed(handle: &mut Handle, existing: &[Value]) {
    observed_with_leases(handle, existing, 0).await;
}

async fn observed_with_leases(handle: &mut Handle, existing: &[Value], lease_count: usize) {
    expect(handle, "GET", BROKER, |_| broker()).await;
    for (i, path) in [ACCOUNT, CONFIGMAP, ROLE, BINDING, DEPLOYMENT, BUDGET]
        .into_iter()
        .enumerate()
    {
        match existing.get(i).cloned() {
            Some(object) => expect(handle, "GET", path, move |_| (StatusCode::OK, object)).await,
            None => expect(handle, "GET", path, |_| not_found()).await,
        };
    }
    expect(handle, "GET", LEASES, move |_| leases(lease_count)).await;
}

#[tokio::test]
async fn nothing_changed_means_reads_only() {
    let mut source = seed();
    let mut existing = as_created(&source);
    existing[4] = available(existing[4].clone());
    // The status as the first reconcile of this state wrote it.
    let (mut handle, run) = start(source.clone());
    observed(&mut handle, &existing).await;
    let patch = expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    finish(run).await.unwrap();
    source.status = Some(serde_json::from_value(patch["status"].clone()).unwrap());

    let (mut handle, run) = start(source);
    observed(&mut handle, &existing).await;
    finish(run).await.unwrap();
    assert!(
        handle.next_request().await.is_none(),
        "no write when nothing changed"
    );
}

/// A Deployment as the API server stores it: with the defaults it fills in
/// (pull policy, probe timeouts and schemes, DNS policy, ...).
fn as_stored(mut deployment: Value) -> Value {
    deployment["metadata"]["generation"] = json!(1);
    deployment["metadata"]["uid"] = json!("d-1");
    deployment["spec"]["revisionHistoryLimit"] = json!(10);
    deployment["spec"]["progressDeadlineSeconds"] = json!(600);
    let pod = &mut deployment["spec"]["template"]["spec"];
    pod["restartPolicy"] = json!("Always");
    pod["dnsPolicy"] = json!("ClusterFirst");
    pod["schedulerName"] = json!("default-scheduler");
    pod["terminationGracePeriodSeconds"] = json!(30);
    pod["serviceAccount"] = pod["serviceAccountName"].clone();
    let container = &mut pod["containers"][0];
    container["imagePullPolicy"] = json!("IfNotPresent");
    container["terminationMessagePath"] = json!("/dev/termination-log");
    for port in container["ports"].as_array_mut().unwrap() {
        port["protocol"] = json!("TCP");
    }
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let probe = &mut container[probe];
        assert!(probe.is_object(), "{probe}");
        probe["httpGet"]["scheme"] = json!("HTTP");
        probe["successThreshold"] = json!(1);
        for (field, default) in [
            ("timeoutSeconds", 1),
            ("periodSeconds", 10),
            ("failureThreshold", 3),
        ] {
            if probe[field].is_null() {
                probe[field] = json!(default);
            }
        }
    }
    deployment
}

/// What the API server fills into the Deployment and the budget is never
/// taken for a change: no write but the first status, so no endless
/// updates.
#[tokio::test]
async fn what_the_api_server_fills_in_is_no_change() {
    let mut source = seed();
    source.spec.replicas = Some(2);
    let mut existing = as_created(&source);
    existing[4] = available(as_stored(existing[4].clone()));
    existing[5]["metadata"]["generation"] = json!(1);
    existing[5]["status"] = json!({"currentHealthy": 2, "desiredHealthy": 1,
        "disruptionsAllowed": 1, "expectedPods": 2, "observedGeneration": 1});
    let (mut handle, run) = start(source);
    observed(&mut handle, &existing).await;
    expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    finish(run).await.unwrap();
    assert!(
        handle.next_request().await.is_none(),
        "no write but the status"
    );
}

#[tokio::test]
async fn a_spec_change_replaces_the_deployment_at_its_version() {
    let before = seed();
    let mut existing = as_created(&before);
    existing[4] = available(existing[4].clone());
    let mut after = before.clone();
    after.spec.max_in_flight = Some(8);
    let (mut handle, run) = start(after);
    observed(&mut handle, &existing).await;
    let put = expect(&mut handle, "PUT", DEPLOYMENT, |b| {
        (StatusCode::OK, b.clone())
    })
    .await;
    assert_eq!(put["metadata"]["resourceVersion"], "41");
    let env = put["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(
        env.iter()
            .any(|v| v["name"] == "MAX_IN_FLIGHT" && v["value"] == "8")
    );
    let event = expect_event(&mut handle).await;
    assert!(
        event["note"]
            .as_str()
            .unwrap()
            .contains("updated Deployment awsdynamodbsource-sample"),
        "{event}"
    );
    expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    finish(run).await.unwrap();
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn an_unmanaged_service_account_is_never_written() {
    let source = seed();
    let mut existing = as_created(&source);
    existing[0] = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": "awsdynamodbsource-adapter", "namespace": "default", "resourceVersion": "3",
                     "annotations": {"owner": "platform-team"}}});
    existing[4] = available(existing[4].clone());
    let (mut handle, run) = start(source);
    observed(&mut handle, &existing).await;
    // Only the status: the account is used as it is.
    expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    finish(run).await.unwrap();
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn a_sink_without_an_address_creates_nothing_and_reports_empty_sink_uri() {
    let (mut handle, run) = start(seed());
    expect(&mut handle, "GET", BROKER, |_| {
        (
            StatusCode::OK,
            json!({"apiVersion": "eventing.triggermesh.io/v1alpha1", "kind": "RedisBroker",
                                "metadata": {"name": "triggermesh"}, "status": {}}),
        )
    })
    .await;
    nothing_exists(&mut handle).await;
    let patch = expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    let conditions = patch["status"]["conditions"].as_array().unwrap();
    let sink = conditions
        .iter()
        .find(|c| c["type"] == "SinkProvided")
        .unwrap();
    assert_eq!(sink["reason"], "EmptySinkURI");
    finish(run).await.unwrap();
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn an_iam_role_creates_a_dedicated_annotated_account() {
    let mut source = seed();
    source.spec.auth =
        serde_json::from_value(json!({"iamrole": "arn:aws:iam::123456789012:role/foo"})).unwrap();
    let (mut handle, run) = start(source);
    expect(&mut handle, "GET", BROKER, |_| broker()).await;
    let dedicated = "/api/v1/namespaces/default/serviceaccounts/awsdynamodbsource-i-sample";
    for path in [dedicated, CONFIGMAP, ROLE, BINDING, DEPLOYMENT, BUDGET] {
        expect(&mut handle, "GET", path, |_| not_found()).await;
    }
    expect(&mut handle, "GET", LEASES, |_| leases(0)).await;
    let account = expect(&mut handle, "POST", &format!("{NS}/serviceaccounts"), echo).await;
    assert_eq!(account["metadata"]["name"], "awsdynamodbsource-i-sample");
    assert_eq!(
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
        "arn:aws:iam::123456789012:role/foo"
    );
    expect_event(&mut handle).await;
    for path in ["configmaps", "roles", "rolebindings", "deployments"] {
        let prefix = match path {
            "configmaps" => NS.to_owned(),
            "deployments" => "/apis/apps/v1/namespaces/default".to_owned(),
            _ => "/apis/rbac.authorization.k8s.io/v1/namespaces/default".to_owned(),
        };
        let body = expect(&mut handle, "POST", &format!("{prefix}/{path}"), echo).await;
        if path == "deployments" {
            assert_eq!(
                body["spec"]["template"]["spec"]["serviceAccountName"],
                "awsdynamodbsource-i-sample"
            );
        }
        if path == "rolebindings" {
            assert_eq!(body["subjects"][0]["name"], "awsdynamodbsource-i-sample");
        }
        expect_event(&mut handle).await;
    }
    expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    finish(run).await.unwrap();
}

#[tokio::test]
async fn adapter_overrides_update_the_deployment() {
    let before = seed();
    let mut existing = as_created(&before);
    existing[4] = available(existing[4].clone());
    let mut after = before.clone();
    after.spec.adapter_overrides = serde_json::from_value(json!({
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
        "resources": {"limits": {"memory": "64Mi"}},
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
    }))
    .unwrap();
    let (mut handle, run) = start(after);
    observed(&mut handle, &existing).await;
    let put = expect(&mut handle, "PUT", DEPLOYMENT, |b| {
        (StatusCode::OK, b.clone())
    })
    .await;
    let pod = &put["spec"]["template"]["spec"];
    assert_eq!(
        pod["containers"][0]["resources"]["limits"]["memory"],
        "64Mi"
    );
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    let env = pod["containers"][0]["env"].as_array().unwrap();
    assert!(
        env.iter()
            .any(|v| v["name"] == "LOG_LEVEL" && v["value"] == "debug")
    );
    expect_event(&mut handle).await;
    expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    finish(run).await.unwrap();
}

#[tokio::test]
async fn a_source_being_deleted_is_left_to_the_garbage_collector() {
    let mut source = seed();
    source.metadata.deletion_timestamp =
        serde_json::from_value(json!("2026-01-01T00:00:00Z")).unwrap();
    let mut existing = as_created(&seed());
    existing[4] = available(existing[4].clone());
    let (mut handle, run) = start(source);
    observed(&mut handle, &existing).await;
    finish(run).await.unwrap();
    assert!(
        handle.next_request().await.is_none(),
        "no write while the owner references do the work"
    );
}

#[tokio::test]
async fn a_crashing_adapter_is_reported_from_its_pods() {
    let source = seed();
    let existing = as_created(&source);
    let (mut handle, run) = start(source);
    observed(&mut handle, &existing).await;
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("the pods are listed")
        .unwrap();
    assert_eq!(
        (request.method().as_str(), request.uri().path()),
        ("GET", "/api/v1/namespaces/default/pods")
    );
    let query = request.uri().query().unwrap_or_default().to_owned();
    assert!(
        query.contains("labelSelector=app.kubernetes.io%2Finstance%3Dsample"),
        "{query}"
    );
    let pods = json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [{
        "metadata": {"name": "awsdynamodbsource-sample-1"},
        "status": {"containerStatuses": [{"name": "adapter", "image": "adapter:1", "imageID": "", "ready": false,
            "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 2, "message": "{\"level\":\"fatal\",\"msg\":\"invalid ARN\"}"}}}]}
    }]});
    send.send_response(
        Response::builder()
            .body(Body::from(serde_json::to_vec(&pods).unwrap()))
            .unwrap(),
    );
    let patch = expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    let conditions = patch["status"]["conditions"].as_array().unwrap();
    let deployed = conditions.iter().find(|c| c["type"] == "Deployed").unwrap();
    assert_eq!(deployed["reason"], "AppRuntimeFailure");
    assert!(
        deployed["message"]
            .as_str()
            .unwrap()
            .contains("invalid ARN"),
        "{deployed}"
    );
    finish(run).await.unwrap();
}

#[tokio::test]
async fn a_forbidden_role_is_reported_as_rbac_not_bound() {
    let (mut handle, run) = start(seed());
    expect(&mut handle, "GET", BROKER, |_| broker()).await;
    nothing_exists(&mut handle).await;
    expect(&mut handle, "POST", &format!("{NS}/serviceaccounts"), echo).await;
    expect_event(&mut handle).await;
    expect(&mut handle, "POST", &format!("{NS}/configmaps"), echo).await;
    expect_event(&mut handle).await;
    expect(&mut handle, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", |_| {
        (
            StatusCode::FORBIDDEN,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "roles is forbidden: attempting to grant RBAC permissions not currently held",
                   "reason": "Forbidden", "code": 403}),
        )
    })
    .await;
    let patch = expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    let conditions = patch["status"]["conditions"].as_array().unwrap();
    for type_ in ["Deployed", "Ready"] {
        let c = conditions.iter().find(|c| c["type"] == type_).unwrap();
        assert_eq!(
            (c["status"].as_str(), c["reason"].as_str()),
            (Some("False"), Some("RBACNotBound")),
            "{type_}"
        );
        assert!(
            c["message"]
                .as_str()
                .unwrap()
                .contains("not currently held"),
            "{c}"
        );
    }
    let error = finish(run)
        .await
        .expect_err("the reconcile fails and is retried");
    assert!(error.to_string().contains("create Role"), "{error}");
    assert!(
        handle.next_request().await.is_none(),
        "no Deployment without its RBAC"
    );
}

/// `replicas: 3`: three pods that share the shards through Leases
/// (COORDINATION=kubernetes, the Role grants Leases) and a budget of one pod
/// down at a time; the move to Leases recreates. Once Leases exist, updates
/// roll (one added before one stops), and back at one replica the Leases
/// stay on and the budget goes.
#[tokio::test]
async fn replicas_share_the_stream_through_leases_with_a_disruption_budget() {
    let mut source = seed();
    source.spec.replicas = Some(3);
    let (mut handle, run) = start(source.clone());
    expect(&mut handle, "GET", BROKER, |_| broker()).await;
    nothing_exists(&mut handle).await;
    // Each created, with an event.
    let rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/default";
    let mut created = Vec::new();
    for path in [
        format!("{NS}/serviceaccounts"),
        format!("{NS}/configmaps"),
        format!("{rbac}/roles"),
        format!("{rbac}/rolebindings"),
        "/apis/apps/v1/namespaces/default/deployments".to_owned(),
        "/apis/policy/v1/namespaces/default/poddisruptionbudgets".to_owned(),
    ] {
        created.push(expect(&mut handle, "POST", &path, echo).await);
        expect_event(&mut handle).await;
    }
    let [_, _, role, _, deployment, budget] = &created[..] else {
        panic!("six objects");
    };
    let leases = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["apiGroups"][0] == "coordination.k8s.io")
        .expect("a rule for Leases");
    assert_eq!(leases["resources"], json!(["leases"]));
    assert_eq!(leases["verbs"], json!(["get", "list", "create", "update"]));
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["strategy"]["type"], "Recreate",
        "no Leases yet: an old pod without them must not read beside the new ones"
    );
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    let var = |name: &str| {
        env.iter()
            .find(|v| v["name"] == name)
            .map(|v| v["value"].clone())
    };
    assert_eq!(var("COORDINATION"), Some(json!("kubernetes")));
    assert_eq!(
        var("NAME"),
        Some(json!("sample")),
        "Leases are named after it"
    );
    assert_eq!(
        var("CHECKPOINT_STORE"),
        Some(json!("kubernetes:awsdynamodbsource-sample-checkpoints")),
        "read once: where shards without a Lease begin"
    );
    assert_eq!(budget["spec"]["maxUnavailable"], 1);
    assert_eq!(
        budget["spec"]["unhealthyPodEvictionPolicy"], "AlwaysAllow",
        "an unready pod (a failing sink) does not block drains"
    );
    assert_eq!(
        budget["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(budget["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    finish(run).await.unwrap();

    // Back to one: the adapters made Leases, so the one left goes on with
    // them (the ConfigMap was not written meanwhile); no budget.
    let mut existing = as_created(&source);
    existing[4] = available(existing[4].clone());
    source.spec.replicas = Some(1);
    let (mut handle, run) = start(source);
    observed_with_leases(&mut handle, &existing, 1).await;
    let deployment = expect(&mut handle, "PUT", DEPLOYMENT, |b| {
        (StatusCode::OK, b.clone())
    })
    .await;
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 1, "maxUnavailable": 0})
    );
    let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
    assert!(
        env.as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "COORDINATION" && v["value"] == "kubernetes"),
        "{env}"
    );
    expect_event(&mut handle).await;
    expect(&mut handle, "DELETE", BUDGET, |_| {
        (
            StatusCode::OK,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
        )
    })
    .await;
    expect_event(&mut handle).await;
    expect(&mut handle, "PATCH", STATUS, |_| {
        (StatusCode::OK, serde_json::to_value(seed()).unwrap())
    })
    .await;
    finish(run).await.unwrap();
}
