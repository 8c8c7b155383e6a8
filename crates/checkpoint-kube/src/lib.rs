//! What the adapter keeps in Kubernetes, for adapters running in a cluster:
//!
//! - `CHECKPOINT_STORE=kubernetes:<configmap>` ([`ConfigMapStore`], here):
//!   checkpoints in a ConfigMap of the adapter's namespace;
//! - `COORDINATION=kubernetes` ([`KubeLeaseStore`], `lease.rs`): shard
//!   leases, with their checkpoints, as `coordination.k8s.io` Leases.
//!
//! The ConfigMap store owns reading and writing that one ConfigMap (key
//! `checkpoints.json`, the same JSON as the file store). Writes are updates
//! at the resourceVersion last seen: if anything else wrote the ConfigMap
//! meanwhile — a second adapter on the same source — the write fails as
//! `Locked` instead of silently interleaving two adapters' positions. The
//! controller creates the ConfigMap and grants exactly get/update on it;
//! this crate never creates or deletes it. How often it writes is the
//! engine's `Checkpointer`'s business (at most once a second).

mod lease;

pub use lease::KubeLeaseStore;

use std::sync::Mutex;

use async_trait::async_trait;
use awsdynamodb_source::{CheckpointError, CheckpointStore, Checkpoints};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};

/// The ConfigMap key holding the checkpoints.
pub const KEY: &str = "checkpoints.json";

pub struct ConfigMapStore {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
    /// The ConfigMap as last read or written: a write changes its data
    /// only, keeping the labels and owner the controller gave it, at its
    /// resourceVersion.
    last: Mutex<Option<ConfigMap>>,
}

impl ConfigMapStore {
    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        ConfigMapStore {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            last: Mutex::new(None),
        }
    }

    fn io(&self, message: impl std::fmt::Display) -> CheckpointError {
        CheckpointError::Io {
            location: self.location(),
            message: message.to_string(),
        }
    }
}

#[async_trait]
impl CheckpointStore for ConfigMapStore {
    async fn load(&self) -> Result<Checkpoints, CheckpointError> {
        let map = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.io(e))?
            .ok_or_else(|| self.io("the ConfigMap does not exist (the controller creates it)"))?;
        let loaded = match map.data.as_ref().and_then(|d| d.get(KEY)) {
            None => Checkpoints::default(),
            Some(json) => serde_json::from_str(json)
                .map_err(|e| CheckpointError::corrupt(self.location(), &e))?,
        };
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(map);
        Ok(loaded)
    }

    async fn save(&self, checkpoints: &Checkpoints) -> Result<(), CheckpointError> {
        let json = serde_json::to_string(checkpoints).map_err(|e| self.io(e))?;
        let mut map = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| ConfigMap {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    namespace: Some(self.namespace.clone()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            });
        map.data
            .get_or_insert_default()
            .insert(KEY.to_owned(), json);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &map)
            .await
        {
            Ok(written) => {
                *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(written);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Err(CheckpointError::Locked {
                location: self.location(),
            }),
            Err(e) => Err(self.io(e)),
        }
    }

    fn location(&self) -> String {
        format!("kubernetes:{}/{}", self.namespace, self.name)
    }
}
