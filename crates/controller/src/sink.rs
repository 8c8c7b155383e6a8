//! `spec.sink` → the URL the adapter posts to.
//!
//! Owns the resolution rules (Knative's): a `ref` to an addressable object
//! gives its `status.address.url`; a `ref` to a core `v1` Service gives its
//! cluster DNS name; a `uri` alone must be absolute; a `uri` beside a `ref`
//! is resolved against the ref's URL. Looking the referenced object up is the
//! caller's job: this module never talks to the API server.

use awsdynamodbsource_api::{Destination, KReference};
use serde_json::Value;
use url::Url;

/// Why the sink has no URL; `reason` is the status condition's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub reason: &'static str,
    pub message: String,
}

fn fail(reason: &'static str, message: String) -> SinkError {
    SinkError { reason, message }
}

/// Whether the ref names a core Service (resolved without a lookup).
pub fn is_core_service(reference: &KReference) -> bool {
    reference.api_version == "v1" && reference.kind == "Service"
}

/// The namespace a ref points into.
pub fn ref_namespace<'a>(reference: &'a KReference, source_namespace: &'a str) -> &'a str {
    reference.namespace.as_deref().unwrap_or(source_namespace)
}

/// Resolves the destination. `referenced` is the object `ref` names, as
/// fetched (`None` when it does not exist); unused for core Services and
/// for a `uri` alone.
pub fn resolve(
    destination: &Destination,
    source_namespace: &str,
    referenced: Option<&Value>,
) -> Result<String, SinkError> {
    let Some(reference) = &destination.reference else {
        let uri = destination.uri.as_deref().unwrap_or_default();
        return match Url::parse(uri) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(url.to_string()),
            _ if uri.is_empty() => Err(fail(
                "EmptySinkURI",
                "the sink has neither ref nor uri".into(),
            )),
            _ => Err(fail(
                "SinkNotFound",
                format!("sink uri {uri:?} is not an absolute http(s) URL"),
            )),
        };
    };
    let namespace = ref_namespace(reference, source_namespace);
    let base = if is_core_service(reference) {
        format!("http://{}.{namespace}.svc.cluster.local", reference.name)
    } else {
        let what = format!(
            "{} {}/{} ({})",
            reference.kind, namespace, reference.name, reference.api_version
        );
        let object =
            referenced.ok_or_else(|| fail("SinkNotFound", format!("sink {what} not found")))?;
        match object
            .pointer("/status/address/url")
            .and_then(Value::as_str)
        {
            Some(url) if !url.is_empty() => url.to_owned(),
            _ => {
                return Err(fail(
                    "EmptySinkURI",
                    format!("sink {what} has no address yet (status.address.url)"),
                ));
            }
        }
    };
    let base = Url::parse(&base).map_err(|e| {
        fail(
            "SinkNotFound",
            format!("sink address {base:?} is not a URL: {e}"),
        )
    })?;
    match destination.uri.as_deref() {
        None | Some("") => Ok(base.to_string()),
        Some(relative) => base.join(relative).map(|u| u.to_string()).map_err(|e| {
            fail(
                "SinkNotFound",
                format!("sink uri {relative:?} does not resolve against {base}: {e}"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference(api_version: &str, kind: &str, name: &str) -> Option<KReference> {
        Some(KReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: None,
        })
    }

    #[test]
    fn addressables_core_services_and_uris() {
        let broker = Destination {
            reference: reference(
                "eventing.triggermesh.io/v1alpha1",
                "RedisBroker",
                "triggermesh",
            ),
            uri: None,
        };
        let ready = json!({"status": {"address": {"url": "http://triggermesh-rb-broker.ns.svc.cluster.local"}}});
        assert_eq!(
            resolve(&broker, "ns", Some(&ready)).unwrap(),
            "http://triggermesh-rb-broker.ns.svc.cluster.local/"
        );
        let missing = resolve(&broker, "ns", None).unwrap_err();
        assert_eq!(missing.reason, "SinkNotFound");
        assert!(
            missing.message.contains("RedisBroker ns/triggermesh"),
            "{missing}"
        );
        let not_ready = resolve(&broker, "ns", Some(&json!({"status": {}}))).unwrap_err();
        assert_eq!(not_ready.reason, "EmptySinkURI");

        let service = Destination {
            reference: reference("v1", "Service", "display"),
            uri: Some("/events?x=1".into()),
        };
        assert_eq!(
            resolve(&service, "apps", None).unwrap(),
            "http://display.apps.svc.cluster.local/events?x=1"
        );
        let uri = Destination {
            reference: None,
            uri: Some("https://example.com/hook".into()),
        };
        assert_eq!(
            resolve(&uri, "ns", None).unwrap(),
            "https://example.com/hook"
        );
        let relative = Destination {
            reference: None,
            uri: Some("/hook".into()),
        };
        assert_eq!(
            resolve(&relative, "ns", None).unwrap_err().reason,
            "SinkNotFound"
        );
    }
}
