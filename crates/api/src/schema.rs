//! The parts of the CRD's OpenAPI schema that the Rust types cannot say by
//! themselves, and the check of an object against the whole schema.
//!
//! Kubernetes wants *structural* schemas: every property is declared with its
//! type at the object's level, and `oneOf`/`anyOf` branches may only list
//! `required` names. So "exactly one auth method" is a `oneOf` of `required`
//! lists over declared properties.

use schemars::{Schema, SchemaGenerator, json_schema};
use serde_json::Value;

use crate::types::{Credentials, IamAuth, KReference, SecretKeySelector};

/// A table ARN in any partition and region (DynamoDB Local's `ddblocal`
/// too), with a 12-digit account and a table name as DynamoDB allows it
/// (3 to 255 of `a-zA-Z0-9_.-`): the adapter's own rule.
pub const ARN_PATTERN: &str =
    r"^arn:[a-z0-9-]+:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[a-zA-Z0-9_.-]{3,255}$";

/// A duration as the adapter's variables take it.
const DURATION_PATTERN: &str = r"^[0-9]+(ms|s|m|h)$";

/// An IAM role ARN in any partition.
pub const ROLE_ARN_PATTERN: &str = r"^arn:[a-z0-9-]+:iam::[0-9]{12}:role/.+$";

pub(crate) fn arn(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "The table's ARN: arn:{partition}:dynamodb:{region}:{account}:table/{name}.",
        "type": "string",
        "pattern": ARN_PATTERN,
    })
}

fn role_arn() -> Value {
    serde_json::json!({
        "description": "An IAM role ARN: arn:{partition}:iam::{account}:role/{name}.",
        "type": "string",
        "pattern": ROLE_ARN_PATTERN,
    })
}

pub(crate) fn optional_role_arn(_: &mut SchemaGenerator) -> Schema {
    let mut schema = role_arn();
    schema["nullable"] = true.into();
    Schema::try_from(schema).expect("an object")
}

/// The adapter's rule ([`crate::vars::STARTING_POSITION_RULE`]): the names
/// in any case (spelled out, since a CRD's pattern has no case-insensitive
/// flag that every validator reads), or an RFC 3339 time.
pub(crate) fn starting_position(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "LATEST (default), TRIM_HORIZON (in any case), or an RFC 3339 time.",
        "type": "string",
        "nullable": true,
        "pattern": r"^([Ll][Aa][Tt][Ee][Ss][Tt]|[Tt][Rr][Ii][Mm]_[Hh][Oo][Rr][Ii][Zz][Oo][Nn]|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))$",
    })
}

pub(crate) fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "A duration such as 250ms, 1s, 2m or 1h.",
        "type": "string",
        "nullable": true,
        "pattern": DURATION_PATTERN,
    })
}

pub(crate) fn filters(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "EventBridge-style patterns (AWS Lambda's FilterCriteria), matched against the record as AWS Lambda gets it: a record is sent when one of them matches.",
        "type": "array",
        "nullable": true,
        "minItems": 1,
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        },
    })
}

pub(crate) fn auth(generator: &mut SchemaGenerator) -> Schema {
    let credentials = generator.subschema_for::<Credentials>();
    let iam = generator.subschema_for::<IamAuth>();
    let mut deprecated_role = role_arn();
    deprecated_role["description"] =
        "Deprecated: an IAM role ARN for the adapter's service account (EKS).".into();
    let mut seed_spelling = role_arn();
    seed_spelling["description"] = "The same as iamRole (the seed's spelling).".into();
    json_schema!({
        "description": "How the adapter authenticates to AWS: exactly one of credentials, iamRole (or iamrole) and iam.",
        "type": "object",
        "properties": {
            "credentials": credentials,
            "iamRole": deprecated_role,
            "iamrole": seed_spelling,
            "iam": iam,
        },
        "oneOf": [
            {"required": ["credentials"]},
            {"required": ["iamRole"]},
            {"required": ["iamrole"]},
            {"required": ["iam"]},
        ],
    })
}

pub(crate) fn value_from(generator: &mut SchemaGenerator) -> Schema {
    let secret = generator.subschema_for::<SecretKeySelector>();
    json_schema!({
        "description": "Exactly one of value and valueFromSecret.",
        "type": "object",
        "properties": {
            "value": {"type": "string"},
            "valueFromSecret": secret,
        },
        "oneOf": [
            {"required": ["value"]},
            {"required": ["valueFromSecret"]},
        ],
    })
}

pub(crate) fn destination(generator: &mut SchemaGenerator) -> Schema {
    let reference = generator.subschema_for::<KReference>();
    json_schema!({
        "description": "Where events are sent: ref (an addressable object or a Service) and/or uri (absolute, or relative to ref).",
        "type": "object",
        "properties": {
            "ref": reference,
            "uri": {"type": "string"},
        },
        "anyOf": [
            {"required": ["ref"]},
            {"required": ["uri"]},
        ],
    })
}

/// Why an object does not fit the CRD: one line per problem, each naming
/// the field (`spec.auth.credentials: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct SchemaError {
    pub problems: Vec<String>,
}

/// Checks a whole object (`apiVersion`, `kind`, `metadata`, `spec`) against
/// the CRD's schema, as the API server would (minus CEL, which the schema
/// does not use).
pub fn validate(object: &Value) -> Result<(), SchemaError> {
    let schema = openapi_to_json_schema(crate::crd_schema());
    let validator = jsonschema::validator_for(&schema).map_err(|e| SchemaError {
        problems: vec![format!("the CRD's own schema does not compile: {e}")],
    })?;
    let mut problems: Vec<String> = validator
        .iter_errors(object)
        .map(|e| {
            let path = e.instance_path().to_string();
            let field = path.trim_start_matches('/').replace('/', ".");
            let field = if field.is_empty() {
                "object".to_owned()
            } else {
                field
            };
            format!("{field}: {}", explain(&field, &e.to_string()))
        })
        .collect();
    problems.extend(below_floor(object));
    problems.extend(snapshot_with_replicas(object));
    problems.dedup();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SchemaError { problems })
    }
}

/// A snapshot's watermark needs every shard in one process: the adapter
/// refuses SNAPSHOT with COORDINATION, which replicas above one set. (The
/// CRD says the same to the API server in CEL, which this check does not
/// read.)
fn snapshot_with_replicas(object: &Value) -> Option<String> {
    let initial = object.pointer("/spec/snapshot")?.as_str()? == "initial";
    let replicas = object.pointer("/spec/replicas")?.as_u64()?;
    (initial && replicas > 1).then(|| {
        format!("spec.snapshot: initial needs one replica while the snapshot runs, not {replicas}: start with replicas 1 and raise it once the snapshot is done")
    })
}

/// The adapter's floors that a pattern cannot say: `pollInterval` of at
/// least [`crate::vars::MIN_POLL_INTERVAL_MS`].
fn below_floor(object: &Value) -> Option<String> {
    let text = object.pointer("/spec/pollInterval")?.as_str()?;
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let factor = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    let ms = n.parse::<u64>().ok()?.saturating_mul(factor);
    let min = crate::vars::MIN_POLL_INTERVAL_MS;
    (ms < min).then(|| format!("spec.pollInterval: {text:?} is below its minimum, {min}ms"))
}

/// Plain words for the schema's `oneOf`/`anyOf` rules, whose generic
/// messages do not say what is expected, and for patterns, whose messages
/// show a regular expression.
fn explain(field: &str, message: &str) -> String {
    let one_of = message.contains("oneOf");
    let any_of = message.contains("anyOf");
    if let Some((value, pattern)) = message.split_once(" does not match ") {
        return match field {
            "spec.arn" => match value.split_once("/stream/") {
                Some((table, _)) => {
                    format!("{value} is a stream's ARN; give its table's ARN instead, {table}\"")
                }
                None => format!(
                    "{value} is not a table ARN (arn:{{partition}}:dynamodb:{{region}}:{{account}}:table/{{name}})"
                ),
            },
            "spec.startingPosition" => {
                format!("{value} is not {}", crate::vars::STARTING_POSITION_RULE)
            }
            _ if pattern.contains(DURATION_PATTERN) => {
                format!("{value} is not a duration such as 250ms, 1s, 2m or 1h")
            }
            _ if pattern.contains(ROLE_ARN_PATTERN) => format!(
                "{value} is not an IAM role ARN (arn:{{partition}}:iam::{{account}}:role/{{name}})"
            ),
            _ => message.to_owned(),
        };
    }
    match field {
        "spec.auth" if one_of => {
            "exactly one of credentials, iamRole (or iamrole) and iam must be given".to_owned()
        }
        "spec.sink" if any_of => "a sink needs ref or uri".to_owned(),
        f if one_of && f.starts_with("spec.auth.credentials.") => {
            "exactly one of value and valueFromSecret must be given".to_owned()
        }
        _ => message.to_owned(),
    }
}

/// OpenAPI v3.0's `nullable: true` is not JSON Schema: a `null` would fail
/// `type`. Rewrites it into a type list, everywhere in the schema.
pub fn openapi_to_json_schema(mut schema: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                if map.remove("nullable") == Some(Value::Bool(true))
                    && let Some(Value::String(t)) = map.get("type").cloned()
                {
                    map.insert("type".into(), serde_json::json!([t, "null"]));
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut schema);
    schema
}
