use super::*;
use awsdynamodbsource_api::{AWSDynamoDBSourceSpec, AdapterOverrides};

fn seed() -> AWSDynamoDBSource {
    let object: serde_json::Value =
        serde_saphyr::from_str(include_str!("../../../api/testdata/seed.yaml")).unwrap();
    serde_json::from_value(object).unwrap()
}

fn settings() -> AdapterSettings {
    AdapterSettings {
        image: "registry.example/adapter:1".into(),
    }
}

fn container(d: &Deployment) -> &Container {
    &d.spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
}

fn value<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a str> {
    env.iter()
        .find(|v| v.name == name)
        .and_then(|v| v.value.as_deref())
}

#[test]
fn adapter_overrides_reach_the_pod() {
    let mut source = seed();
    source.spec.adapter_overrides = Some(AdapterOverrides {
        annotations: Some(BTreeMap::from([("a".into(), "1".into())])),
        labels: Some(BTreeMap::from([("team".into(), "data".into())])),
        env: Some(vec![
            EnvVar {
                name: "MAX_IN_FLIGHT".into(),
                value: Some("8".into()),
                value_from: None,
            },
            EnvVar {
                name: "EXTRA".into(),
                value: Some("x".into()),
                value_from: None,
            },
        ]),
        node_selector: Some(BTreeMap::from([("disk".into(), "ssd".into())])),
        ..AdapterOverrides::default()
    });
    source.spec.max_in_flight = Some(32);
    let d = deployment(&source, &Targets::sink("http://sink/"), &settings(), false);
    let env = container(&d).env.clone().unwrap();
    assert_eq!(value(&env, "MAX_IN_FLIGHT"), Some("8"), "the override wins");
    assert_eq!(env.iter().filter(|v| v.name == "MAX_IN_FLIGHT").count(), 1);
    assert_eq!(value(&env, "EXTRA"), Some("x"));
    let template = &d.spec.as_ref().unwrap().template;
    let meta = template.metadata.as_ref().unwrap();
    assert_eq!(meta.annotations.as_ref().unwrap()["a"], "1");
    assert_eq!(meta.labels.as_ref().unwrap()["team"], "data");
    assert_eq!(d.metadata.labels.as_ref().unwrap()["team"], "data");
    // The selector stays the controller's: overrides cannot break it.
    assert_eq!(
        d.spec.as_ref().unwrap().selector.match_labels,
        Some(selector_labels(&source))
    );
    assert_eq!(
        template
            .spec
            .as_ref()
            .unwrap()
            .node_selector
            .as_ref()
            .unwrap()["disk"],
        "ssd"
    );
    assert_eq!(
        container(&d).image.as_deref(),
        Some("registry.example/adapter:1")
    );
}

#[test]
fn the_adapters_own_options_map_to_its_environment() {
    let mut source = seed();
    source.spec = AWSDynamoDBSourceSpec {
        starting_position: Some("TRIM_HORIZON".into()),
        poll_interval: Some("1s".into()),
        max_in_flight: Some(16),
        ..source.spec
    };
    let env = adapter_env(&source, &Targets::sink("http://sink/"), false);
    assert_eq!(value(&env, "STARTING_POSITION"), Some("TRIM_HORIZON"));
    assert_eq!(value(&env, "POLL_INTERVAL"), Some("1s"));
    assert_eq!(value(&env, "MAX_IN_FLIGHT"), Some("16"));
    let plain = adapter_env(&seed(), &Targets::sink("http://sink/"), false);
    assert!(value(&plain, "STARTING_POSITION").is_none());
}

#[test]
fn owners_only_with_a_uid_and_the_shared_account_is_not_controlled() {
    let mut source = seed();
    assert!(
        deployment(&source, &Targets::sink("http://s/"), &settings(), false)
            .metadata
            .owner_references
            .is_none()
    );
    source.metadata.uid = Some("u-1".into());
    source.metadata.namespace = Some("apps".into());
    let d = desired(&source, &Targets::sink("http://s/"), &settings(), false);
    let owners = d.deployment.metadata.owner_references.unwrap();
    assert_eq!(
        (owners[0].uid.as_str(), owners[0].controller),
        ("u-1", Some(true))
    );
    let sa_owners = d.service_account.metadata.owner_references.clone().unwrap();
    assert_eq!(
        sa_owners[0].controller,
        Some(false),
        "shared: one owner among others"
    );
    assert_eq!(d.deployment.metadata.namespace.as_deref(), Some("apps"));
    assert!(is_managed(&d.service_account.metadata));
    assert!(!is_managed(&ObjectMeta::default()));
}
