//! The CRD under `config/` against the seed's manifests and their bad
//! variants, with a JSON-schema validator (OpenAPI's `nullable` rewritten).

use awsdynamodbsource_api::{AWSDynamoDBSource, crd_schema, crd_yaml, schema, validate};
use serde_json::{Value, json};

const SEED: &str = include_str!("../testdata/seed.yaml");
const SEED_IAMROLE: &str = include_str!("../testdata/seed-iamrole.yaml");
const ORIGINAL_SAMPLE: &str = include_str!("../testdata/original-sample.yaml");

fn yaml(s: &str) -> Value {
    serde_saphyr::from_str(s).expect("valid YAML")
}

/// The seed's object with one change at a JSON pointer (`None` removes).
fn seed_with(pointer: &str, value: Option<Value>) -> Value {
    let mut object = yaml(SEED);
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let parent = object.pointer_mut(parent).expect("parent exists");
    let map = parent.as_object_mut().expect("an object");
    match value {
        Some(v) => map.insert(key.to_owned(), v),
        None => map.remove(key),
    };
    object
}

fn rejection(object: &Value) -> String {
    validate(object)
        .expect_err("the schema must reject it")
        .to_string()
}

#[test]
fn the_checked_in_crd_is_the_generated_one() {
    let path = format!(
        "{}/../../config/300-awsdynamodbsource.yaml",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    let checked_in = std::fs::read_to_string(&path).expect("config/300-awsdynamodbsource.yaml");
    assert!(
        checked_in == crd_yaml(),
        "config/300-awsdynamodbsource.yaml is stale: run `cargo run -p awsdynamodbsource-api --bin crdgen`"
    );
}

#[test]
fn the_seed_its_iamrole_form_and_the_original_sample_are_accepted() {
    for (name, manifest) in [
        ("seed", SEED),
        ("seed with iamrole", SEED_IAMROLE),
        ("original sample", ORIGINAL_SAMPLE),
    ] {
        let object = yaml(manifest);
        if let Err(e) = validate(&object) {
            panic!("{name} rejected: {e}");
        }
        let source: AWSDynamoDBSource =
            serde_json::from_value(object).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            source.spec.arn,
            "arn:aws:dynamodb:us-west-2:123456789012:table/triggermeshtest"
        );
    }
    let source: AWSDynamoDBSource = serde_json::from_value(yaml(SEED_IAMROLE)).unwrap();
    assert_eq!(
        source.spec.auth.role_arn(),
        Some("arn:aws:iam::123456789012:role/foo")
    );
    let source: AWSDynamoDBSource = serde_json::from_value(yaml(SEED)).unwrap();
    let credentials = source.spec.auth.credentials.expect("credentials");
    let secret = credentials
        .secret_access_key
        .value_from_secret
        .expect("a secret ref");
    assert_eq!(
        (secret.name.as_str(), secret.key.as_str()),
        ("awscreds", "aws_secret_access_key")
    );
}

#[test]
fn any_partition_and_region_name_and_the_other_auth_forms_are_accepted() {
    for arn in [
        "arn:aws:dynamodb:ddblocal:000000000000:table/orders",
        "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/t.1_x-y",
        "arn:aws-us-gov:dynamodb:us-gov-west-1:123456789012:table/abc",
        "arn:aws-iso-b:dynamodb:us-isob-east-1:123456789012:table/abc",
    ] {
        let object = seed_with("/spec/arn", Some(json!(arn)));
        assert!(validate(&object).is_ok(), "{arn}: {:?}", validate(&object));
    }
    for auth in [
        json!({"iamRole": "arn:aws:iam::123456789012:role/foo"}),
        json!({"iam": {"roleArn": "arn:aws:iam::123456789012:role/foo"}}),
        json!({"iam": {"roleArn": "arn:aws:iam::123456789012:role/foo", "serviceAccount": "mine"}}),
        json!({"credentials": {
            "accessKeyID": {"value": "AKIA"},
            "secretAccessKey": {"valueFromSecret": {"name": "s", "key": "k"}},
            "sessionToken": {"value": "t"},
            "assumeIamRole": "arn:aws:iam::123456789012:role/other",
        }}),
    ] {
        let object = seed_with("/spec/auth", Some(auth.clone()));
        assert!(validate(&object).is_ok(), "{auth}: {:?}", validate(&object));
    }
    let object = seed_with(
        "/spec/sink",
        Some(json!({"uri": "http://example.com/events"})),
    );
    assert!(validate(&object).is_ok());
    let object = seed_with("/spec/maxInFlight", Some(json!(16)));
    assert!(validate(&object).is_ok());
    let object = seed_with("/spec/startingPosition", Some(json!("TRIM_HORIZON")));
    assert!(validate(&object).is_ok());
    let object = seed_with("/spec/pollInterval", Some(json!("1s")));
    assert!(validate(&object).is_ok());
    // OpenAPI's nullable: an explicit null for an optional field is fine.
    let object = seed_with("/spec/adapterOverrides", Some(Value::Null));
    assert!(validate(&object).is_ok(), "{:?}", validate(&object));
}

/// The adapter's rule: the names in any case, or an RFC 3339 time; other
/// values are told the rule, not a regular expression.
#[test]
fn starting_positions_follow_the_adapters_rule() {
    for ok in [
        "LATEST",
        "latest",
        "Trim_Horizon",
        "2024-01-01T00:00:00Z",
        "2024-01-01t00:00:00.5+02:00",
    ] {
        let object = seed_with("/spec/startingPosition", Some(json!(ok)));
        assert!(validate(&object).is_ok(), "{ok}: {:?}", validate(&object));
    }
    for bad in ["EARLIEST", "latest!", "2024-13-01"] {
        let message = rejection(&seed_with("/spec/startingPosition", Some(json!(bad))));
        assert_eq!(
            message,
            format!(
                "spec.startingPosition: {bad:?} is not {}",
                awsdynamodbsource_api::vars::STARTING_POSITION_RULE
            )
        );
    }
}

#[test]
fn a_snapshot_is_off_or_initial_and_needs_one_replica() {
    for mode in ["off", "initial"] {
        assert!(validate(&seed_with("/spec/snapshot", Some(json!(mode)))).is_ok());
    }
    let message = rejection(&seed_with("/spec/snapshot", Some(json!("always"))));
    assert!(message.starts_with("spec.snapshot: "), "{message}");
    let mut object = seed_with("/spec/snapshot", Some(json!("initial")));
    object["spec"]["replicas"] = json!(3);
    assert_eq!(
        rejection(&object),
        "spec.snapshot: initial needs one replica while the snapshot runs, not 3: start with replicas 1 and raise it once the snapshot is done"
    );
    object["spec"]["replicas"] = json!(1);
    assert!(validate(&object).is_ok());
}

#[test]
fn poll_intervals_below_the_adapters_floor_are_rejected() {
    let object = seed_with("/spec/pollInterval", Some(json!("100ms")));
    assert!(validate(&object).is_ok());
    for bad in ["0s", "50ms"] {
        let message = rejection(&seed_with("/spec/pollInterval", Some(json!(bad))));
        assert_eq!(
            message,
            format!("spec.pollInterval: {bad:?} is below its minimum, 100ms")
        );
    }
    let message = rejection(&seed_with("/spec/pollInterval", Some(json!("fast"))));
    assert_eq!(
        message,
        "spec.pollInterval: \"fast\" is not a duration such as 250ms, 1s, 2m or 1h"
    );
}

#[test]
fn a_stream_arn_is_told_apart_with_its_tables_arn() {
    let table = "arn:aws:dynamodb:us-west-2:123456789012:table/triggermeshtest";
    let stream = format!("{table}/stream/2024-01-01T00:00:00.000");
    let message = rejection(&seed_with("/spec/arn", Some(json!(stream))));
    assert_eq!(
        message,
        format!("spec.arn: {stream:?} is a stream's ARN; give its table's ARN instead, {table:?}")
    );
}

#[test]
fn a_non_table_arn_is_rejected_naming_the_field() {
    for arn in [
        "arn:aws:s3:::bucket",
        "arn:aws:dynamodb:us-west-2:1234:table/short-account",
        "arn:aws:dynamodb:us-west-2:123456789012:index/x",
        "arn:aws:dynamodb:us-west-2:123456789012:table/ab",
        "triggermeshtest",
    ] {
        let message = rejection(&seed_with("/spec/arn", Some(json!(arn))));
        assert_eq!(
            message,
            format!(
                "spec.arn: {arn:?} is not a table ARN (arn:{{partition}}:dynamodb:{{region}}:{{account}}:table/{{name}})"
            )
        );
    }
}

#[test]
fn credentials_missing_a_key_are_rejected_naming_the_field() {
    let mut object = yaml(SEED);
    object["spec"]["auth"]["credentials"]
        .as_object_mut()
        .unwrap()
        .remove("secretAccessKey");
    let message = rejection(&object);
    assert!(message.contains("spec.auth.credentials: "), "{message}");
    assert!(message.contains("secretAccessKey"), "{message}");

    // A key with neither a value nor a secret reference.
    let mut object = yaml(SEED);
    object["spec"]["auth"]["credentials"]["accessKeyID"] = json!({});
    let message = rejection(&object);
    assert!(
        message.contains(
            "spec.auth.credentials.accessKeyID: exactly one of value and valueFromSecret"
        ),
        "{message}"
    );
}

#[test]
fn two_auth_methods_at_once_are_rejected_naming_the_field() {
    for extra in [
        ("iamrole", json!("arn:aws:iam::123456789012:role/foo")),
        ("iamRole", json!("arn:aws:iam::123456789012:role/foo")),
        (
            "iam",
            json!({"roleArn": "arn:aws:iam::123456789012:role/foo"}),
        ),
    ] {
        let mut object = yaml(SEED);
        object["spec"]["auth"][extra.0] = extra.1;
        let message = rejection(&object);
        assert!(
            message.contains("spec.auth: exactly one of credentials, iamRole (or iamrole) and iam"),
            "{}: {message}",
            extra.0
        );
    }
    let message = rejection(&seed_with("/spec/auth", Some(json!({}))));
    assert!(message.contains("spec.auth: exactly one of"), "{message}");
}

#[test]
fn a_sink_without_ref_or_uri_is_rejected_naming_the_field() {
    let message = rejection(&seed_with("/spec/sink", Some(json!({}))));
    assert_eq!(message, "spec.sink: a sink needs ref or uri");
    let message = rejection(&seed_with("/spec/sink", None));
    assert!(
        message.contains("spec: ") && message.contains("sink"),
        "{message}"
    );
}

#[test]
fn the_schema_is_structural() {
    // Kubernetes: no $ref; oneOf/anyOf branches only list `required`; every
    // declared property has a type (or says it preserves unknown fields).
    fn walk(v: &Value, path: &str) {
        let Value::Object(map) = v else { return };
        assert!(!map.contains_key("$ref"), "{path}: $ref");
        for combinator in ["oneOf", "anyOf", "allOf"] {
            for branch in map
                .get(combinator)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let keys: Vec<&String> = branch.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["required"], "{path}.{combinator}");
            }
        }
        if let Some(Value::Object(props)) = map.get("properties") {
            for (name, prop) in props {
                let p = format!("{path}.{name}");
                assert!(
                    prop.get("type").is_some()
                        || prop.get("x-kubernetes-int-or-string").is_some()
                        || prop.get("x-kubernetes-preserve-unknown-fields").is_some(),
                    "{p}: no type"
                );
                walk(prop, &p);
            }
        }
        if let Some(items) = map.get("items") {
            walk(items, &format!("{path}[]"));
        }
        if let Some(extra) = map.get("additionalProperties") {
            walk(extra, &format!("{path}{{}}"));
        }
    }
    walk(&crd_schema(), "");
}

#[test]
fn nullable_becomes_a_type_list() {
    let rewritten = schema::openapi_to_json_schema(json!({"type": "string", "nullable": true}));
    assert_eq!(rewritten, json!({"type": ["string", "null"]}));
}
