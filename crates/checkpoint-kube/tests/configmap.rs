//! The ConfigMap store against a mocked API server: each call asserted.

use std::time::Duration;

use awsdynamodb_source::SequenceNumber;
use awsdynamodb_source::{CheckpointError, CheckpointStore, Checkpoints, ShardPosition};
use awsdynamodbsource_checkpoint_kube::{ConfigMapStore, KEY};
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const PATH: &str = "/api/v1/namespaces/apps/configmaps/awsdynamodbsource-s-checkpoints";

fn store() -> (ConfigMapStore, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "apps");
    (
        ConfigMapStore::new(client, "apps", "awsdynamodbsource-s-checkpoints"),
        handle,
    )
}

async fn expect(handle: &mut Handle, method: &str, status: StatusCode, reply: Value) -> Value {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("a call")
        .expect("the client is there");
    assert_eq!(
        (request.method().as_str(), request.uri().path()),
        (method, PATH)
    );
    let bytes = request.into_body().collect_bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    send.send_response(
        Response::builder()
            .status(status)
            .body(Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap(),
    );
    body
}

fn config_map(version: &str, data: Option<&str>) -> Value {
    let mut map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "awsdynamodbsource-s-checkpoints", "namespace": "apps", "resourceVersion": version,
                     "labels": {"app.kubernetes.io/managed-by": "awsdynamodbsource-controller"},
                     "ownerReferences": [{"apiVersion": "sources.triggermesh.io/v1alpha1", "kind": "AWSDynamoDBSource",
                                          "name": "s", "uid": "u-1", "controller": true}]},
    });
    if let Some(json) = data {
        map["data"] = json!({ KEY: json });
    }
    map
}

fn positions() -> Checkpoints {
    let mut cps = Checkpoints::default();
    cps.streams
        .entry("arn:stream".into())
        .or_default()
        .shards
        .insert(
            "shard-1".into(),
            ShardPosition::After(SequenceNumber::parse("000100").unwrap()),
        );
    cps
}

#[tokio::test]
async fn an_empty_configmap_loads_as_nothing_done_and_saves_keep_its_owner() {
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        expect(&mut handle, "GET", StatusCode::OK, config_map("5", None)).await;
        let first = expect(
            &mut handle,
            "PUT",
            StatusCode::OK,
            config_map("6", Some("{}")),
        )
        .await;
        let second = expect(
            &mut handle,
            "PUT",
            StatusCode::OK,
            config_map("7", Some("{}")),
        )
        .await;
        (first, second)
    });
    assert_eq!(store.load().await.unwrap(), Checkpoints::default());
    store.save(&positions()).await.unwrap();
    store.save(&positions()).await.unwrap();
    let (first, second) = server.await.unwrap();
    assert_eq!(
        first["metadata"]["resourceVersion"], "5",
        "written at the version read"
    );
    assert_eq!(
        second["metadata"]["resourceVersion"], "6",
        "then at the version written"
    );
    assert_eq!(
        first["metadata"]["ownerReferences"][0]["uid"], "u-1",
        "the owner is kept"
    );
    let saved: Checkpoints = serde_json::from_str(first["data"][KEY].as_str().unwrap()).unwrap();
    assert_eq!(saved, positions());
    assert_eq!(
        store.location(),
        "kubernetes:apps/awsdynamodbsource-s-checkpoints"
    );
}

#[tokio::test]
async fn saved_positions_load_again() {
    let (store, mut handle) = store();
    let json = serde_json::to_string(&positions()).unwrap();
    let server = tokio::spawn(async move {
        expect(
            &mut handle,
            "GET",
            StatusCode::OK,
            config_map("9", Some(&json)),
        )
        .await;
    });
    assert_eq!(store.load().await.unwrap(), positions());
    server.await.unwrap();
}

#[tokio::test]
async fn a_concurrent_writer_is_refused_as_a_second_adapter() {
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        expect(&mut handle, "GET", StatusCode::OK, config_map("5", None)).await;
        expect(
            &mut handle,
            "PUT",
            StatusCode::CONFLICT,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "the object has been modified", "reason": "Conflict", "code": 409}),
        )
        .await;
    });
    store.load().await.unwrap();
    let error = store.save(&positions()).await.unwrap_err();
    assert!(matches!(error, CheckpointError::Locked { .. }), "{error}");
    server.await.unwrap();
}

#[tokio::test]
async fn a_missing_configmap_or_bad_json_is_a_clear_error() {
    let (store, mut handle) = store();
    let server = tokio::spawn(async move {
        expect(
            &mut handle,
            "GET",
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "not found", "reason": "NotFound", "code": 404}),
        )
        .await;
        expect(
            &mut handle,
            "GET",
            StatusCode::OK,
            config_map("1", Some("{not json")),
        )
        .await;
    });
    let missing = store.load().await.unwrap_err().to_string();
    assert!(missing.contains("does not exist"), "{missing}");
    let corrupt = store.load().await.unwrap_err();
    assert!(
        matches!(corrupt, CheckpointError::Corrupt { .. }),
        "{corrupt}"
    );
    server.await.unwrap();
}
