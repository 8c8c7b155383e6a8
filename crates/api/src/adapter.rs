//! What a spec means for the adapter process: its settings as environment
//! variables.
//!
//! Both the controller (a Deployment's `env`) and tmctl (a local process)
//! start the adapter from a spec; this is the one place that maps spec
//! fields to the adapter's variables, so the two cannot drift apart. It
//! never resolves a Secret: a credential from a Secret stays a reference,
//! and each caller resolves it its own way. Variables that depend on where
//! the adapter runs (`K_SINK`, ports, the checkpoint store, the name) are
//! the callers' too.

use crate::types::{AWSDynamoDBSourceSpec, SecretKeySelector, ValueFrom};
use crate::vars::*;

/// Where a variable's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvValue {
    /// Written in the spec.
    Literal(String),
    /// A key of a Secret in the source's namespace.
    Secret(SecretKeySelector),
}

impl From<&ValueFrom> for EnvValue {
    fn from(v: &ValueFrom) -> EnvValue {
        match (&v.value, &v.value_from_secret) {
            (_, Some(secret)) => EnvValue::Secret(secret.clone()),
            (value, None) => EnvValue::Literal(value.clone().unwrap_or_default()),
        }
    }
}

/// The adapter's variables for this spec, in a stable order. Does not
/// include `spec.adapterOverrides.env`, which callers apply last (an
/// override replaces a variable of the same name).
pub fn spec_env(spec: &AWSDynamoDBSourceSpec) -> Vec<(&'static str, EnvValue)> {
    let literal = |s: &str| EnvValue::Literal(s.to_owned());
    let mut vars = vec![(ARN, literal(&spec.arn))];
    if let Some(credentials) = &spec.auth.credentials {
        vars.push((AWS_ACCESS_KEY_ID, (&credentials.access_key_id).into()));
        vars.push((
            AWS_SECRET_ACCESS_KEY,
            (&credentials.secret_access_key).into(),
        ));
        if let Some(token) = &credentials.session_token {
            vars.push((AWS_SESSION_TOKEN, token.into()));
        }
        if let Some(role) = &credentials.assume_iam_role {
            vars.push((AWS_ASSUME_ROLE_ARN, literal(role)));
        }
    }
    if let Some(position) = &spec.starting_position {
        vars.push((STARTING_POSITION, literal(position)));
    }
    if let Some(mode) = &spec.snapshot {
        vars.push((SNAPSHOT, EnvValue::Literal(spelled(mode))));
    }
    if let Some(interval) = &spec.poll_interval {
        vars.push((POLL_INTERVAL, literal(interval)));
    }
    if let Some(n) = spec.max_in_flight {
        vars.push((MAX_IN_FLIGHT, EnvValue::Literal(n.to_string())));
    }
    if let Some(format) = &spec.data_format {
        vars.push((DATA_FORMAT, EnvValue::Literal(spelled(format))));
    }
    if let Some(base) = &spec.data_schema_base {
        vars.push((DATASCHEMA_BASE, literal(base)));
    }
    if let Some(subject) = &spec.subject {
        vars.push((SUBJECT, EnvValue::Literal(spelled(subject))));
    }
    if let Some(mode) = &spec.content_mode {
        vars.push((CE_MODE, EnvValue::Literal(spelled(mode))));
    }
    if let Some(extensions) = &spec.extensions {
        let names: Vec<String> = extensions.iter().map(spelled).collect();
        vars.push((EXTENSIONS, EnvValue::Literal(names.join(","))));
    }
    if let Some(filters) = &spec.filters {
        let json = serde_json::to_string(filters).unwrap_or_default();
        vars.push((FILTER, EnvValue::Literal(json)));
    }
    if let Some(delivery) = &spec.delivery {
        if let Some(n) = delivery.max_attempts {
            vars.push((MAX_ATTEMPTS, EnvValue::Literal(n.to_string())));
        }
        if let Some(age) = &delivery.max_record_age {
            vars.push((MAX_RECORD_AGE, literal(age)));
        }
    }
    vars
}

/// A spec enum's value as the spec spells it (its serde name), which is
/// also how the adapter's variable spells it.
fn spelled(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::*;

    #[test]
    fn every_spec_setting_becomes_its_variable() {
        let spec: AWSDynamoDBSourceSpec = serde_json::from_value(serde_json::json!({
            "arn": "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
            "auth": {"credentials": {
                "accessKeyID": {"value": "AKID"},
                "secretAccessKey": {"valueFromSecret": {"name": "s", "key": "k"}},
            }},
            "sink": {"uri": "http://sink/"},
            "snapshot": "initial",
            "dataFormat": "plain",
            "dataSchemaBase": "https://schemas.example/",
            "subject": "keys",
            "contentMode": "structured",
            "extensions": ["sequence", "dynamodbtable"],
            "filters": [{"eventName": ["INSERT"]}],
            "delivery": {"deadLetterSink": {"uri": "http://dlq/"}, "maxAttempts": 3, "maxRecordAge": "1h"},
        }))
        .unwrap();
        let env: std::collections::BTreeMap<&str, EnvValue> = spec_env(&spec).into_iter().collect();
        let literal = |s: &str| EnvValue::Literal(s.to_owned());
        assert_eq!(env["AWS_ACCESS_KEY_ID"], literal("AKID"));
        assert_eq!(
            env["AWS_SECRET_ACCESS_KEY"],
            EnvValue::Secret(SecretKeySelector {
                name: "s".into(),
                key: "k".into()
            })
        );
        assert_eq!(env["SNAPSHOT"], literal("initial"));
        assert_eq!(env["DATA_FORMAT"], literal("plain"));
        assert_eq!(env["DATASCHEMA_BASE"], literal("https://schemas.example/"));
        assert_eq!(env["SUBJECT"], literal("keys"));
        assert_eq!(env["CE_MODE"], literal("structured"));
        assert_eq!(env["EXTENSIONS"], literal("sequence,dynamodbtable"));
        assert_eq!(env["FILTER"], literal(r#"[{"eventName":["INSERT"]}]"#));
        assert_eq!(env["MAX_ATTEMPTS"], literal("3"));
        assert_eq!(env["MAX_RECORD_AGE"], literal("1h"));
        // Where dead letters go depends on where the adapter runs: the
        // callers resolve it.
        assert!(!env.contains_key("DEAD_LETTER_SINK"));
    }
}
