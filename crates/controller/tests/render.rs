//! `awsdynamodbsource-controller render`, the binary, on the seed's
//! manifests.

use std::process::{Command, Output};

use serde_json::{Value, json};

/// A file of `crates/api/testdata`, found at run time (a build cache shared
/// by two checkouts must not send this test to the other one).
fn testdata(file: &str) -> String {
    format!(
        "{}/../api/testdata/{file}",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    )
}
const SINK: &str = "http://triggermesh-rb-broker.default.svc.cluster.local/";

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_awsdynamodbsource-controller"))
        .args(args)
        .env_remove("AWSDYNAMODBSOURCE_ADAPTER_IMAGE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the controller binary runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("it exits")
}

/// The rendered documents, by kind.
fn render(file: &str, stdin: Option<&str>) -> Vec<Value> {
    render_with(&["--sink-uri", SINK], file, stdin)
}

/// The same, with `args` before `-f`.
fn render_with(args: &[&str], file: &str, stdin: Option<&str>) -> Vec<Value> {
    let mut all = vec!["render"];
    all.extend_from_slice(args);
    all.extend(["-f", file]);
    let out = run(&all, stdin);
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.split("---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).expect("each document is YAML"))
        .collect()
}

fn seed() -> String {
    std::fs::read_to_string(testdata("seed.yaml")).expect("the seed")
}

/// The seed with its sink (a RedisBroker ref) replaced by `sink`, the
/// lines under `sink:`.
fn seed_with_sink(sink: &str) -> String {
    const BROKER: &str = "  sink:\n    ref:\n      apiVersion: eventing.triggermesh.io/v1alpha1\n      kind: RedisBroker\n      name: triggermesh\n";
    let seed = seed();
    assert!(
        seed.contains(BROKER),
        "the seed's sink is a RedisBroker ref"
    );
    seed.replace(BROKER, &format!("  sink:\n{sink}"))
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

fn env_of(deployment: &Value) -> Vec<Value> {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["name"], "adapter");
    containers[0]["env"].as_array().expect("env").clone()
}

fn var<'a>(env: &'a [Value], name: &str) -> &'a Value {
    env.iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in the adapter's env"))
}

#[test]
fn the_seed_renders_a_deployment_with_arn_sink_and_secret_refs_on_the_shared_account() {
    let docs = render(&testdata("seed.yaml"), None);
    let deployment = of_kind(&docs, "Deployment");
    assert_eq!(deployment["metadata"]["name"], "awsdynamodbsource-sample");
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let env = env_of(deployment);
    assert_eq!(
        var(&env, "ARN")["value"],
        "arn:aws:dynamodb:us-west-2:123456789012:table/triggermeshtest"
    );
    assert_eq!(var(&env, "K_SINK")["value"], SINK);
    assert_eq!(
        var(&env, "AWS_ACCESS_KEY_ID")["valueFrom"],
        json!({"secretKeyRef": {"name": "awscreds", "key": "aws_access_key_id"}})
    );
    assert_eq!(
        var(&env, "AWS_SECRET_ACCESS_KEY")["valueFrom"],
        json!({"secretKeyRef": {"name": "awscreds", "key": "aws_secret_access_key"}})
    );
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "awsdynamodbsource-adapter"
    );
    let account = of_kind(&docs, "ServiceAccount");
    assert_eq!(account["metadata"]["name"], "awsdynamodbsource-adapter");
    assert!(
        account["metadata"].get("annotations").is_none(),
        "{account}"
    );
    // The checkpoints' RBAC is bound to that account, for that ConfigMap only.
    let binding = of_kind(&docs, "RoleBinding");
    assert_eq!(binding["subjects"][0]["name"], "awsdynamodbsource-adapter");
    let role = of_kind(&docs, "Role");
    assert_eq!(
        role["rules"][0]["resourceNames"],
        json!(["awsdynamodbsource-sample-checkpoints"])
    );
    assert_eq!(
        var(&env, "CHECKPOINT_STORE")["value"],
        "kubernetes:awsdynamodbsource-sample-checkpoints"
    );
}

#[test]
fn an_iam_role_gets_a_dedicated_annotated_service_account() {
    let role = "arn:aws:iam::123456789012:role/foo";
    let iam = std::fs::read_to_string(testdata("seed.yaml")).unwrap().replace(
        "  auth:\n    credentials:\n      accessKeyID:\n        valueFromSecret:\n          name: awscreds\n          key: aws_access_key_id\n      secretAccessKey:\n        valueFromSecret:\n          name: awscreds\n          key: aws_secret_access_key\n",
        &format!("  auth:\n    iam:\n      roleArn: {role}\n"),
    );
    assert!(iam.contains("iam:\n      roleArn"), "the replacement took");
    for (what, docs, name) in [
        (
            "auth.iamrole",
            render(&testdata("seed-iamrole.yaml"), None),
            "awsdynamodbsource-i-sample",
        ),
        (
            "auth.iam",
            render("-", Some(&iam)),
            "awsdynamodbsource-i-sample",
        ),
    ] {
        let account = of_kind(&docs, "ServiceAccount");
        assert_eq!(account["metadata"]["name"], name, "{what}");
        assert_eq!(
            account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"], role,
            "{what}"
        );
        let deployment = of_kind(&docs, "Deployment");
        assert_eq!(
            deployment["spec"]["template"]["spec"]["serviceAccountName"], name,
            "{what}"
        );
        let env = env_of(deployment);
        assert!(
            env.iter()
                .all(|v| !v["name"].as_str().unwrap().starts_with("AWS_ACCESS")),
            "{what}: no static keys"
        );
    }
    // A named service account under auth.iam is used as named.
    let named = iam.replace(
        &format!("roleArn: {role}\n"),
        &format!("roleArn: {role}\n      serviceAccount: my-irsa\n"),
    );
    let docs = render("-", Some(&named));
    assert_eq!(
        of_kind(&docs, "ServiceAccount")["metadata"]["name"],
        "my-irsa"
    );
}

#[test]
fn a_bad_manifest_gives_one_line_naming_the_field() {
    let bad = std::fs::read_to_string(testdata("seed.yaml"))
        .unwrap()
        .replace("table/triggermeshtest", "stream/x");
    let out = run(&["render", "--sink-uri", SINK, "-f", "-"], Some(&bad));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("spec.arn: "), "{stderr}");
    assert!(out.stdout.is_empty());
}

fn container_of(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

/// The rules of Pod Security's `restricted` profile that a pod template
/// can break, as its admission checks them, and a read-only root.
fn assert_restricted(deployment: &Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        assert_ne!(pod[host], true, "{host}");
    }
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        assert!(
            volume.get("hostPath").is_none(),
            "a hostPath volume: {volume}"
        );
    }
    let on_pod = &pod["securityContext"];
    assert_ne!(on_pod["runAsUser"], 0, "the pod runs as root");
    let seccomp_ok = |p: &Value| matches!(p["type"].as_str(), Some("RuntimeDefault" | "Localhost"));
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| pod[k].as_array().into_iter().flatten())
        .collect();
    assert!(!containers.is_empty());
    for c in containers {
        let name = &c["name"];
        let context = &c["securityContext"];
        assert_eq!(context["allowPrivilegeEscalation"], false, "{name}");
        assert_ne!(context["privileged"], true, "{name}");
        let capabilities = &context["capabilities"];
        assert!(
            capabilities["drop"]
                .as_array()
                .is_some_and(|d| d.contains(&json!("ALL"))),
            "{name}: capabilities drop ALL"
        );
        assert!(
            capabilities["add"]
                .as_array()
                .into_iter()
                .flatten()
                .all(|c| c == "NET_BIND_SERVICE"),
            "{name}: no capability added but NET_BIND_SERVICE"
        );
        assert!(
            context["runAsNonRoot"] == true
                || (on_pod["runAsNonRoot"] == true && context["runAsNonRoot"] != false),
            "{name}: runAsNonRoot"
        );
        assert_ne!(context["runAsUser"], 0, "{name} runs as root");
        assert!(
            seccomp_ok(&context["seccompProfile"])
                || (context["seccompProfile"].is_null() && seccomp_ok(&on_pod["seccompProfile"])),
            "{name}: seccompProfile RuntimeDefault or Localhost"
        );
        assert_eq!(context["readOnlyRootFilesystem"], true, "{name}");
        for port in c["ports"].as_array().into_iter().flatten() {
            assert!(port.get("hostPort").is_none(), "{name}: a host port");
        }
    }
}

#[test]
fn the_adapter_passes_the_restricted_pod_security_profile() {
    let docs = render(&testdata("seed.yaml"), None);
    assert_restricted(of_kind(&docs, "Deployment"));
}

/// Probes: only `/health` (whose verdict includes the sink) decides
/// readiness; what restarts the container asks only whether it serves.
#[test]
fn readiness_is_health_and_liveness_ignores_delivery() {
    let docs = render(&testdata("seed.yaml"), None);
    let container = container_of(of_kind(&docs, "Deployment"));
    let probe_path = |probe: &str| {
        assert_eq!(container[probe]["httpGet"]["port"], "health", "{probe}");
        container[probe]["httpGet"]["path"].clone()
    };
    assert_eq!(probe_path("readinessProbe"), "/health");
    assert_eq!(probe_path("livenessProbe"), "/livez");
    assert_eq!(probe_path("startupProbe"), "/livez");
    let ports = container["ports"].as_array().expect("ports");
    assert!(ports.iter().any(|p| p["name"] == "health"));
}

/// Without overrides: requests, and Prometheus's annotations naming the
/// `metrics` port.
#[test]
fn defaults_requests_and_scrape_annotations() {
    let docs = render(&testdata("seed.yaml"), None);
    let deployment = of_kind(&docs, "Deployment");
    let container = container_of(deployment);
    let resources = &container["resources"];
    assert!(resources["requests"]["cpu"].is_string(), "{resources}");
    assert!(resources["requests"]["memory"].is_string(), "{resources}");
    assert!(
        resources["limits"].is_null(),
        "no default limits: {resources}"
    );
    let metrics_port = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a port named metrics")["containerPort"]
        .clone();
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    assert_eq!(
        annotations["prometheus.io/port"],
        metrics_port.to_string(),
        "the metrics port, as a string"
    );
}

/// A controller runs the adapter it was built with, not `latest`.
#[test]
fn the_default_adapter_image_is_the_controllers_version() {
    let docs = render(&testdata("seed.yaml"), None);
    assert_eq!(
        container_of(of_kind(&docs, "Deployment"))["image"],
        format!("awsdynamodbsource-adapter:{}", env!("CARGO_PKG_VERSION"))
    );
}

/// `adapterOverrides` win over the defaults and keep the pod restricted.
#[test]
fn overrides_replace_the_resources_and_win_over_the_annotations() {
    let manifest = format!(
        "{}  adapterOverrides:\n    annotations:\n      prometheus.io/scrape: \"false\"\n      team: data\n    resources:\n      limits:\n        memory: 256Mi\n",
        seed()
    );
    let docs = render("-", Some(&manifest));
    let deployment = of_kind(&docs, "Deployment");
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "false");
    assert_eq!(annotations["team"], "data");
    assert_eq!(
        annotations["prometheus.io/path"], "/metrics",
        "the rest kept"
    );
    assert_eq!(
        container_of(deployment)["resources"],
        json!({"limits": {"memory": "256Mi"}}),
        "the override whole, no default request beside it"
    );
    assert_restricted(deployment);
}

#[test]
fn with_a_uid_every_object_is_owned_by_the_source() {
    let uid = "0e5b2c1a-6f43-4d3c-9d53-1b2f1a7c9e10";
    let manifest = seed().replace(
        "  name: sample\n",
        &format!("  name: sample\n  uid: {uid}\n"),
    );
    assert!(manifest.contains(uid), "the uid went in");
    let docs = render("-", Some(&manifest));
    for doc in &docs {
        let kind = &doc["kind"];
        let owners = doc["metadata"]["ownerReferences"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind} has no owner"));
        assert_eq!(owners.len(), 1, "{kind}");
        let owner = &owners[0];
        assert_eq!(owner["apiVersion"], "sources.triggermesh.io/v1alpha1");
        assert_eq!(owner["kind"], "AWSDynamoDBSource");
        assert_eq!(owner["name"], "sample");
        assert_eq!(owner["uid"], uid);
        // The shared account may have other sources as owners.
        let controls = *kind != "ServiceAccount";
        assert_eq!(owner["controller"], controls, "{kind}");
    }
    // Without one, nothing is owned: a wrong owner would be collected.
    for doc in render(&testdata("seed.yaml"), None) {
        assert!(doc["metadata"]["ownerReferences"].is_null(), "{doc}");
    }
}

/// The seed's RedisBroker ref has its address only in the cluster: one
/// line says so and how to give it.
#[test]
fn an_addressable_ref_without_sink_uri_asks_for_it() {
    let out = run(&["render", "-f", &testdata("seed.yaml")], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for part in [
        "RedisBroker",
        "eventing.triggermesh.io/v1alpha1",
        "default/triggermesh",
        "only in the cluster",
        "--sink-uri",
    ] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
}

/// The same for a dead-letter sink that is such a ref: one line, naming it
/// and how to give render its address.
#[test]
fn an_addressable_dead_letter_ref_asks_for_its_uri() {
    let manifest = seed_with_sink(
        "    uri: https://hooks.example/dynamodb\n  delivery:\n    deadLetterSink:\n      ref:\n        apiVersion: eventing.knative.dev/v1\n        kind: Broker\n        name: dlq\n",
    );
    let out = run(&["render", "-f", "-"], Some(&manifest));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("the dead-letter sink is a Broker ref (eventing.knative.dev/v1 default/dlq); its address is known only in the cluster: give spec.delivery.deadLetterSink.uri"),
        "{stderr}"
    );
}

/// A `uri`, or a core Service ref, needs no cluster; `--sink-uri`
/// overrides either.
#[test]
fn a_uri_or_a_service_ref_renders_without_sink_uri() {
    let k_sink =
        |docs: &[Value]| var(&env_of(of_kind(docs, "Deployment")), "K_SINK")["value"].clone();
    let uri = seed_with_sink("    uri: https://hooks.example/dynamodb\n");
    assert_eq!(
        k_sink(&render_with(&[], "-", Some(&uri))),
        "https://hooks.example/dynamodb"
    );

    let service = seed_with_sink(
        "    ref:\n      apiVersion: v1\n      kind: Service\n      name: display\n      namespace: apps\n    uri: /events\n",
    );
    assert_eq!(
        k_sink(&render_with(&[], "-", Some(&service))),
        "http://display.apps.svc.cluster.local/events"
    );

    for manifest in [uri, service, seed()] {
        assert_eq!(
            k_sink(&render_with(&["--sink-uri", SINK], "-", Some(&manifest))),
            SINK,
            "--sink-uri wins"
        );
    }
}

#[test]
fn a_sink_uri_that_is_no_url_is_one_line() {
    let out = run(
        &[
            "render",
            "--sink-uri",
            "broker:80",
            "-f",
            &testdata("seed.yaml"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--sink-uri \"broker:80\""), "{stderr}");
}
