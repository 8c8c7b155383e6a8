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
    let mut vars = vec![("ARN", literal(&spec.arn))];
    if let Some(credentials) = &spec.auth.credentials {
        vars.push(("AWS_ACCESS_KEY_ID", (&credentials.access_key_id).into()));
        vars.push((
            "AWS_SECRET_ACCESS_KEY",
            (&credentials.secret_access_key).into(),
        ));
        if let Some(token) = &credentials.session_token {
            vars.push(("AWS_SESSION_TOKEN", token.into()));
        }
        if let Some(role) = &credentials.assume_iam_role {
            vars.push(("AWS_ASSUME_ROLE_ARN", literal(role)));
        }
    }
    if let Some(position) = &spec.starting_position {
        vars.push(("STARTING_POSITION", literal(position)));
    }
    if let Some(interval) = &spec.poll_interval {
        vars.push(("POLL_INTERVAL", literal(interval)));
    }
    if let Some(n) = spec.max_in_flight {
        vars.push(("MAX_IN_FLIGHT", EnvValue::Literal(n.to_string())));
    }
    vars
}
