//! The release manifests under `config/`: what `kubectl apply -f config/`
//! installs.

use serde_json::Value;

fn documents() -> Vec<(String, Value)> {
    let dir = format!(
        "{}/../../config",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("config/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in text.split("\n---\n") {
            let value: Value =
                serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            docs.push((file.display().to_string(), value));
        }
    }
    docs
}

#[test]
fn every_manifest_is_a_named_object() {
    let docs = documents();
    let kinds: Vec<&str> = docs
        .iter()
        .map(|(_, d)| d["kind"].as_str().unwrap_or(""))
        .collect();
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
    ] {
        assert!(kinds.contains(&kind), "no {kind} in config/");
    }
    for (file, doc) in &docs {
        assert!(doc["apiVersion"].is_string(), "{file}: apiVersion");
        assert!(doc["metadata"]["name"].is_string(), "{file}: metadata.name");
    }
}

/// Every (group, resource, verb) the controller's code uses is granted.
#[test]
fn the_controller_may_do_what_it_does() {
    let docs = documents();
    let rules: Vec<&Value> = docs
        .iter()
        .filter(|(_, d)| d["kind"] == "ClusterRole" || d["kind"] == "Role")
        .flat_map(|(_, d)| d["rules"].as_array().unwrap())
        .collect();
    let granted = |group: &str, resource: &str, verb: &str| {
        rules.iter().any(|r| {
            let has = |key: &str, want: &str| {
                r[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|v| v == want || v == "*")
            };
            has("apiGroups", group) && has("resources", resource) && has("verbs", verb)
        })
    };
    for (group, resource, verbs) in [
        (
            "sources.triggermesh.io",
            "awsdynamodbsources",
            &["get", "list", "watch"][..],
        ),
        (
            "sources.triggermesh.io",
            "awsdynamodbsources/status",
            &["patch"],
        ),
        (
            "apps",
            "deployments",
            &["get", "list", "watch", "create", "update"],
        ),
        ("", "serviceaccounts", &["get", "create", "update"]),
        ("", "pods", &["list"]),
        ("", "configmaps", &["get", "create", "update", "patch"]),
        (
            "rbac.authorization.k8s.io",
            "roles",
            &["get", "create", "update"],
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            &["get", "create", "update"],
        ),
        ("events.k8s.io", "events", &["create", "patch"]),
        ("eventing.triggermesh.io", "redisbrokers", &["get"]),
        ("eventing.knative.dev", "brokers", &["get"]),
        (
            "coordination.k8s.io",
            "leases",
            &["get", "list", "create", "update"],
        ),
        (
            "policy",
            "poddisruptionbudgets",
            &["get", "create", "update", "delete"],
        ),
    ] {
        for verb in verbs {
            assert!(
                granted(group, resource, verb),
                "{verb} {group}/{resource} is not granted"
            );
        }
    }
    let container = controller_container(&docs);
    assert_eq!(container["args"][0], "run");
    let env = container["env"].as_array().unwrap();
    assert!(
        env.iter()
            .any(|v| v["name"] == "AWSDYNAMODBSOURCE_ADAPTER_IMAGE")
    );
}

/// The controller Deployment's container.
fn controller_container(docs: &[(String, Value)]) -> &Value {
    let (_, controller) = docs
        .iter()
        .find(|(_, d)| d["kind"] == "Deployment")
        .expect("the controller's Deployment");
    &controller["spec"]["template"]["spec"]["containers"][0]
}

/// The release installs the images of this version, never `latest`: a
/// controller runs the adapter it was built with.
#[test]
fn the_images_are_of_this_version() {
    let docs = documents();
    let container = controller_container(&docs);
    let adapter = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "AWSDYNAMODBSOURCE_ADAPTER_IMAGE")
        .expect("the adapter's image is set");
    let version = env!("CARGO_PKG_VERSION");
    for image in [&container["image"], &adapter["value"]] {
        let tag = image
            .as_str()
            .and_then(|i| i.rsplit_once(':'))
            .map(|(_, t)| t);
        assert_eq!(tag, Some(version), "{image}");
    }
    // And Pod Security's `restricted` profile, as the adapters.
    let context = &container["securityContext"];
    assert_eq!(context["allowPrivilegeEscalation"], false);
    assert_eq!(context["runAsNonRoot"], true);
    assert_eq!(context["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(context["seccompProfile"]["type"], "RuntimeDefault");
}
