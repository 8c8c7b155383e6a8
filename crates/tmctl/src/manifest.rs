//! A broker's manifest: every object created in it, as Kubernetes objects.
//!
//! The manifest is the truth from which the rest is derived: the broker's
//! trigger configuration, the adapters' environment, and `dump`'s output.
//! Objects are kept as JSON values in the shape the cluster takes (so that
//! a field tmctl does not know survives a round trip); the typed views are
//! [`awsdynamodbsource_api`]'s and [`broker::config`]'s. Secrets live here
//! (the file is private); this module never prints one.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};

use crate::home::write_private;

pub const TRIGGERMESH_EVENTING: &str = "eventing.triggermesh.io/v1alpha1";
pub const SOURCES: &str = "sources.triggermesh.io/v1alpha1";
pub const BROKER_KIND: &str = "RedisBroker";
pub const TRIGGER_KIND: &str = "Trigger";
pub const SOURCE_KIND: &str = "AWSDynamoDBSource";
pub const SECRET_KIND: &str = "Secret";
/// The label that ties every object to its broker (context), as the
/// original tmctl does.
pub const CONTEXT_LABEL: &str = "triggermesh.io/context";

#[derive(Debug, Default, Clone)]
pub struct Manifest {
    objects: Vec<Value>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let objects: Vec<Value> = serde_saphyr::from_multiple(&text)
            .with_context(|| format!("{} is not valid YAML", path.display()))?;
        Ok(Manifest {
            objects: objects.into_iter().filter(|o| !o.is_null()).collect(),
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_saphyr::to_string_multiple(&self.objects)
            .context("cannot write the manifest as YAML")?;
        write_private(path, text.as_bytes())
    }

    pub fn objects(&self) -> &[Value] {
        &self.objects
    }

    pub fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects.iter().filter(move |o| o["kind"] == kind)
    }

    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    /// Adds the object, or replaces the one of the same kind and name.
    pub fn put(&mut self, object: Value) {
        let (kind, name) = (object["kind"].clone(), object["metadata"]["name"].clone());
        match self
            .objects
            .iter_mut()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        {
            Some(slot) => *slot = object,
            None => self.objects.push(object),
        }
    }

    /// Removes the object; true when it was there.
    pub fn remove(&mut self, kind: &str, name: &str) -> bool {
        let before = self.objects.len();
        self.objects
            .retain(|o| !(o["kind"] == kind && o["metadata"]["name"] == name));
        self.objects.len() != before
    }

    /// The value of `key` in Secret `name` (its `data` is base64, as in a
    /// cluster; `stringData` is read too).
    pub fn secret_value(&self, name: &str, key: &str) -> Result<String> {
        let Some(secret) = self.get(SECRET_KIND, name) else {
            bail!("secret {name} is not in the manifest");
        };
        if let Some(v) = secret["stringData"][key].as_str() {
            return Ok(v.to_owned());
        }
        let Some(encoded) = secret["data"][key].as_str() else {
            bail!("secret {name} has no key {key}");
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .with_context(|| format!("secret {name}, key {key}: not base64 of UTF-8 text"))?;
        Ok(bytes)
    }
}

/// Metadata for an object of broker `broker`.
pub fn metadata(name: &str, broker: &str) -> Value {
    json!({"name": name, "labels": {CONTEXT_LABEL: broker}})
}

pub fn broker_object(name: &str) -> Value {
    json!({
        "apiVersion": TRIGGERMESH_EVENTING,
        "kind": BROKER_KIND,
        "metadata": metadata(name, name),
        "spec": {},
    })
}

pub fn secret_object(name: &str, broker: &str, values: &BTreeMap<String, String>) -> Value {
    let data: serde_json::Map<String, Value> = values
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
            )
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": SECRET_KIND,
        "metadata": metadata(name, broker),
        "type": "Opaque",
        "data": data,
    })
}

/// A `sink.ref` (or a trigger's broker) to the broker in the manifest.
pub fn broker_ref(broker: &str) -> Value {
    json!({"apiVersion": TRIGGERMESH_EVENTING, "kind": BROKER_KIND, "name": broker})
}

pub fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_yaml_and_keeps_secrets_base64() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.yaml");
        let mut m = Manifest::default();
        m.put(broker_object("b"));
        let values = BTreeMap::from([("secretAccessKey".to_owned(), "s3cr3t".to_owned())]);
        m.put(secret_object("src-secret", "b", &values));
        m.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        let back = Manifest::load(&path).unwrap();
        assert_eq!(back.objects(), m.objects());
        assert_eq!(
            back.secret_value("src-secret", "secretAccessKey").unwrap(),
            "s3cr3t"
        );
        assert!(back.secret_value("src-secret", "other").is_err());
    }

    #[test]
    fn put_replaces_and_remove_removes() {
        let mut m = Manifest::default();
        m.put(broker_object("b"));
        m.put(broker_object("b"));
        assert_eq!(m.objects().len(), 1);
        assert!(m.remove(BROKER_KIND, "b"));
        assert!(!m.remove(BROKER_KIND, "b"));
    }
}
