//! The Kubernetes lease store against a mocked API server (tower-test)
//! that keeps Lease objects as the real one does for these calls: a
//! resourceVersion bumped by every write, 409 for a create of an existing
//! name and for an update at an old version, 404 for a missing object,
//! label selectors on lists. Two replicas are two clients on it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use awsdynamodb_source::test_support::{Lease, LeaseError, LeaseStore, lease_contract};
use awsdynamodbsource_checkpoint_kube::KubeLeaseStore;
use http::{Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

const STREAM: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2026-01-01T00:00:00.000";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/apps/leases";

/// The API server's Leases in namespace `apps`.
#[derive(Default)]
struct Server {
    objects: Mutex<BTreeMap<String, Value>>,
    version: Mutex<u64>,
    /// Updates refused for an old resourceVersion.
    conflicts: Mutex<u32>,
    /// Answer every call with 403, as without RBAC.
    forbidden: Mutex<bool>,
}

fn status(code: StatusCode, reason: &str, message: &str) -> (StatusCode, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "reason": reason, "message": message, "code": code.as_u16()}),
    )
}

impl Server {
    fn next_version(&self) -> String {
        let mut v = self.version.lock().unwrap();
        *v += 1;
        v.to_string()
    }

    fn answer(&self, method: &str, path: &str, query: &str, body: Value) -> (StatusCode, Value) {
        if *self.forbidden.lock().unwrap() {
            return status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:apps:x\" cannot list resource \"leases\"",
            );
        }
        let mut objects = self.objects.lock().unwrap();
        let name = path.strip_prefix(LEASES).and_then(|n| n.strip_prefix('/'));
        match (method, name) {
            ("GET", None) => {
                let wanted: Vec<(String, String)> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("labelSelector="))
                    .flat_map(|s| {
                        let s = s
                            .replace("%2F", "/")
                            .replace("%3D", "=")
                            .replace("%2C", ",");
                        s.split(',')
                            .filter_map(|kv| {
                                let (k, v) = kv.split_once('=')?;
                                Some((k.to_owned(), v.to_owned()))
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect();
                let items: Vec<Value> = objects
                    .values()
                    .filter(|o| {
                        wanted
                            .iter()
                            .all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v))
                    })
                    .cloned()
                    .collect();
                (
                    StatusCode::OK,
                    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList",
                           "metadata": {"resourceVersion": self.version.lock().unwrap().to_string()},
                           "items": items}),
                )
            }
            ("GET", Some(name)) => match objects.get(name) {
                Some(o) => (StatusCode::OK, o.clone()),
                None => status(StatusCode::NOT_FOUND, "NotFound", "not found"),
            },
            ("POST", None) => {
                let name = body["metadata"]["name"].as_str().unwrap().to_owned();
                assert!(
                    name.len() <= 253
                        && name.chars().all(|c| c.is_ascii_lowercase()
                            || c.is_ascii_digit()
                            || c == '-'
                            || c == '.'),
                    "not a valid object name: {name}"
                );
                if objects.contains_key(&name) {
                    return status(StatusCode::CONFLICT, "AlreadyExists", "already exists");
                }
                let mut object = body;
                object["metadata"]["resourceVersion"] = json!(self.next_version());
                object["metadata"]["uid"] = json!(format!("uid-{name}"));
                objects.insert(name, object.clone());
                (StatusCode::CREATED, object)
            }
            ("PUT", Some(name)) => {
                let Some(stored) = objects.get(name) else {
                    return status(StatusCode::NOT_FOUND, "NotFound", "not found");
                };
                if body["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
                    *self.conflicts.lock().unwrap() += 1;
                    return status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        "the object has been modified; please apply your changes to the latest version and try again",
                    );
                }
                let mut object = body;
                object["metadata"]["resourceVersion"] = json!(self.next_version());
                objects.insert(name.to_owned(), object.clone());
                (StatusCode::OK, object)
            }
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", path),
        }
    }

    /// A client on this server: its requests are answered by a task.
    fn client(self: &Arc<Self>) -> Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().as_str().to_owned();
                let path = request.uri().path().to_owned();
                let query = request.uri().query().unwrap_or_default().to_owned();
                let bytes = request.into_body().collect_bytes().await.unwrap();
                let body = if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).unwrap()
                };
                let (code, reply) = server.answer(&method, &path, &query, body);
                send.send_response(
                    Response::builder()
                        .status(code)
                        .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                        .unwrap(),
                );
            }
        });
        Client::new(service, "apps")
    }

    fn store(self: &Arc<Self>) -> KubeLeaseStore {
        KubeLeaseStore::new(self.client(), "apps", "orders", Duration::from_secs(10))
    }
}

fn replicas() -> (Arc<Server>, KubeLeaseStore, KubeLeaseStore) {
    let server = Arc::new(Server::default());
    let (a, b) = (server.store(), server.store());
    (server, a, b)
}

#[tokio::test]
async fn a_lease_is_created_once_and_listed() {
    let (_, a, b) = replicas();
    lease_contract::created_once_and_listed(&a, &b, STREAM).await;
}

#[tokio::test]
async fn a_replica_that_lost_its_lease_cannot_write() {
    let (_, a, b) = replicas();
    lease_contract::lost_lease_cannot_write(&a, &b, STREAM).await;
}

#[tokio::test]
async fn a_wanted_lease_is_handed_over_at_its_checkpoint() {
    let (server, a, b) = replicas();
    lease_contract::wanted_lease_handed_over(&a, &b, STREAM).await;
    // B's renewal after A's request was at an old version: refused, read
    // again, and written with the request kept (the contract checks that).
    assert!(*server.conflicts.lock().unwrap() >= 1);
}

#[tokio::test]
async fn each_write_has_its_condition() {
    let (_, a, b) = replicas();
    lease_contract::each_write_has_its_condition(&a, &b, STREAM).await;
}

/// What `kubectl get leases` shows, and what a write keeps: the holder in
/// the spec, the checkpoint in the same object, the labels that list it.
#[tokio::test]
async fn a_lease_is_a_readable_lease_object() {
    let (server, a, _) = replicas();
    let shard = "shardId-00000001796283895957-ccab65d2";
    let free = Lease::new(
        STREAM,
        shard,
        vec!["shardId-00000001796283895000-aaaa0000".into()],
    );
    assert!(a.create(&free).await.unwrap());
    let held = a.take(&free, "orders-7d9f-abc123").await.unwrap();
    let position = awsdynamodb_source::test_support::ShardPosition::After(
        awsdynamodb_source::test_support::SequenceNumber::parse("000123").unwrap(),
    );
    a.renew(&held, Some(&position)).await.unwrap();
    // A heartbeat's key holds `~` and `/`: not in an object name.
    assert!(
        a.create(&Lease::new(STREAM, "~replica/orders-7d9f-ABC123", vec![]))
            .await
            .unwrap()
    );

    let objects = server.objects.lock().unwrap().clone();
    let (name, object) = objects
        .iter()
        .find(|(_, o)| o["spec"]["holderIdentity"] == "orders-7d9f-abc123")
        .expect("the held lease");
    assert!(name.starts_with("awsdynamodbsource-orders-"), "{name}");
    assert!(
        name.ends_with("-shardid-00000001796283895957-ccab65d2"),
        "{name}"
    );
    assert_eq!(object["spec"]["leaseDurationSeconds"], 10);
    let notes = &object["metadata"]["annotations"];
    assert_eq!(notes["awsdynamodbsource.triggermesh.io/shard"], shard);
    assert_eq!(notes["awsdynamodbsource.triggermesh.io/stream"], STREAM);
    assert_eq!(notes["awsdynamodbsource.triggermesh.io/counter"], "2");
    assert_eq!(
        notes["awsdynamodbsource.triggermesh.io/checkpoint"],
        serde_json::to_string(&position).unwrap()
    );
    assert_eq!(
        object["metadata"]["labels"]["awsdynamodbsource.triggermesh.io/source"],
        "orders"
    );
    let mut listed = a.list(STREAM).await.unwrap();
    listed.sort_by(|x, y| x.shard.cmp(&y.shard));
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].shard, "~replica/orders-7d9f-ABC123");
    assert_eq!(listed[0].checkpoint, Some(position));
}

/// Without the Role's rules, every call fails with one line that names
/// where, never a panic.
#[tokio::test]
async fn a_forbidden_call_is_a_store_error_naming_the_leases() {
    let (server, a, _) = replicas();
    *server.forbidden.lock().unwrap() = true;
    let Err(LeaseError::Store { location, message }) = a.list(STREAM).await else {
        panic!("a listing without permission");
    };
    assert_eq!(location, "kubernetes:apps/leases");
    assert!(message.contains("forbidden"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(matches!(
        a.create(&Lease::new(STREAM, "s", vec![])).await,
        Err(LeaseError::Store { .. })
    ));
}
