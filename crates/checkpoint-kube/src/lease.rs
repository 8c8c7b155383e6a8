//! `COORDINATION=kubernetes`: shard leases as `coordination.k8s.io/v1`
//! Leases in the adapter's namespace, one object per shard (and one
//! heartbeat per replica), with the shard's checkpoint in the same object.
//!
//! Owns the mapping of a [`Lease`] onto a Lease object and the one rule of
//! every write: an update at the resourceVersion of the object on which the
//! condition (holder and counter) was checked. The API server refuses it
//! (409) when anything wrote the object since; the store then reads it
//! again and checks again. So a write of the checkpoint is conditional on
//! the ownership and the other way round, as with DynamoDB's condition
//! expressions. It never deletes a Lease and never decides who holds what.
//!
//! - `spec.holderIdentity`: the owner (absent while free);
//!   `spec.leaseDurationSeconds` and `spec.renewTime` are set for
//!   `kubectl`, and not read;
//! - annotations under `awsdynamodbsource.triggermesh.io/`: `stream`,
//!   `shard`, `counter`, `checkpoint` (the position as in the checkpoint
//!   file), `parents` (a JSON list), `wanted-by`;
//! - labels: the source (`NAME`) and a hash of the stream ARN, for listing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use awsdynamodb_source::{Lease, LeaseError, LeaseStore, ShardPosition};
use k8s_openapi::api::coordination::v1::{Lease as LeaseObject, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};

const PREFIX: &str = "awsdynamodbsource.triggermesh.io/";
const SOURCE_LABEL: &str = awsdynamodbsource_vars::LEASE_SOURCE_LABEL;
const STREAM_LABEL: &str = "awsdynamodbsource.triggermesh.io/stream";
/// Conflicts in a row before a write gives up (another writer each time).
const ATTEMPTS: usize = 5;
/// The least time between two checkpoint writes into one Lease: an API
/// server is not a database. At 1,024 shards all written to, at most about
/// 100 writes a second; a crash sends again up to this much of a shard's
/// events (a hand-over or a shard's end is written at once).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);

pub struct KubeLeaseStore {
    api: Api<LeaseObject>,
    namespace: String,
    /// The source's name (`NAME`): every Lease name starts with it.
    source: String,
    lease_time: Duration,
    /// Each Lease object as last read or written, by name: a write starts
    /// from it, and reads again only when the API server says it is stale.
    seen: Mutex<HashMap<String, LeaseObject>>,
}

impl KubeLeaseStore {
    pub fn new(client: Client, namespace: &str, source: &str, lease_time: Duration) -> Self {
        KubeLeaseStore {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            source: source.to_owned(),
            lease_time,
            seen: Mutex::default(),
        }
    }

    /// `awsdynamodbsource-<source>-<stream hash>-<shard>`, lower-cased, with
    /// what a name may not hold replaced (a heartbeat's `~replica/` too).
    fn object_name(&self, stream: &str, shard: &str) -> String {
        let shard: String = shard
            .trim_start_matches('~')
            .chars()
            .map(|c| match c.to_ascii_lowercase() {
                c @ ('a'..='z' | '0'..='9' | '-' | '.') => c,
                _ => '-',
            })
            .collect();
        let mut name = format!(
            "awsdynamodbsource-{}-{}-{shard}",
            self.source,
            stream_hash(stream)
        );
        name.truncate(253);
        name
    }

    fn error(&self, message: impl std::fmt::Display) -> LeaseError {
        LeaseError::Store {
            location: self.location(),
            message: message.to_string(),
        }
    }

    fn remember(&self, object: &LeaseObject) {
        if let Some(name) = &object.metadata.name {
            let mut kept = object.clone();
            kept.metadata.managed_fields = None;
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.clone(), kept);
        }
    }

    /// The object as last seen, else as the API server has it now.
    async fn current(&self, name: &str, shard: &str) -> Result<LeaseObject, LeaseError> {
        let cached = self
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        match cached {
            Some(object) => Ok(object),
            None => self.fetch(name, shard).await,
        }
    }

    async fn fetch(&self, name: &str, shard: &str) -> Result<LeaseObject, LeaseError> {
        match self.api.get_opt(name).await {
            Ok(Some(object)) => {
                self.remember(&object);
                Ok(object)
            }
            Ok(None) => Err(LeaseError::Changed {
                shard: shard.to_owned(),
            }),
            Err(e) => Err(self.error(e)),
        }
    }

    /// One conditional write: `change` is applied when `condition` holds
    /// for the lease as the object has it, at the version that showed it.
    /// The conditions are the DynamoDB store's: a take, on the counter as
    /// seen; a request, on the holder; the holder's writes, on both.
    async fn update(
        &self,
        lease: &Lease,
        condition: impl Fn(&Lease) -> bool,
        change: impl Fn(&mut Lease),
    ) -> Result<Lease, LeaseError> {
        let changed = || LeaseError::Changed {
            shard: lease.shard.clone(),
        };
        let name = self.object_name(&lease.stream, &lease.shard);
        let mut object = self.current(&name, &lease.shard).await?;
        for _ in 0..ATTEMPTS {
            let mut now = lease_of(&object).ok_or_else(|| self.error("unreadable Lease"))?;
            if !condition(&now) {
                // Maybe only our copy is old: the write would tell, but a
                // failed condition cannot be sent; read again once.
                let fresh = self.fetch(&name, &lease.shard).await?;
                if fresh.metadata.resource_version == object.metadata.resource_version {
                    return Err(changed());
                }
                object = fresh;
                continue;
            }
            change(&mut now);
            let written = self.to_object(&now, Some(&object));
            match self
                .api
                .replace(&name, &PostParams::default(), &written)
                .await
            {
                Ok(written) => {
                    self.remember(&written);
                    return lease_of(&written).ok_or_else(|| self.error("unreadable Lease"));
                }
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    object = self.fetch(&name, &lease.shard).await?;
                }
                Err(kube::Error::Api(e)) if e.code == 404 => return Err(changed()),
                Err(e) => return Err(self.error(e)),
            }
        }
        Err(changed())
    }

    /// `lease` as an object; `base` gives the version written at and
    /// keeps what others set (labels, annotations of their own).
    fn to_object(&self, lease: &Lease, base: Option<&LeaseObject>) -> LeaseObject {
        let mut object = base.cloned().unwrap_or_default();
        let meta = &mut object.metadata;
        meta.name = Some(self.object_name(&lease.stream, &lease.shard));
        meta.namespace = Some(self.namespace.clone());
        let labels = meta.labels.get_or_insert_default();
        labels.insert(SOURCE_LABEL.to_owned(), self.source.clone());
        labels.insert(STREAM_LABEL.to_owned(), stream_hash(&lease.stream));
        let notes = meta.annotations.get_or_insert_default();
        notes.retain(|k, _| !k.starts_with(PREFIX));
        let mut note = |key: &str, value: String| {
            notes.insert(format!("{PREFIX}{key}"), value);
        };
        note("stream", lease.stream.clone());
        note("shard", lease.shard.clone());
        note("counter", lease.counter.to_string());
        if let Some(checkpoint) = &lease.checkpoint {
            note(
                "checkpoint",
                serde_json::to_string(checkpoint).expect("a position serializes"),
            );
        }
        if !lease.parents.is_empty() {
            note(
                "parents",
                serde_json::to_string(&lease.parents).expect("strings serialize"),
            );
        }
        if let Some(wanted_by) = &lease.wanted_by {
            note("wanted-by", wanted_by.clone());
        }
        let spec = object.spec.get_or_insert_default();
        spec.holder_identity = lease.owner.clone();
        spec.lease_duration_seconds = Some(self.lease_time.as_secs().max(1) as i32);
        spec.renew_time = Some(MicroTime(k8s_openapi::jiff::Timestamp::now()));
        object
    }
}

/// The condition of the holder's own writes: still the holder, at the
/// counter it last wrote.
fn holder_and_counter(held: &Lease) -> impl Fn(&Lease) -> bool + '_ {
    |now| now.owner == held.owner && now.counter == held.counter
}

/// A stable 8-hex-digit hash of a stream ARN (FNV-1a): a label value,
/// where the ARN itself is too long and holds `:` and `/`.
fn stream_hash(stream: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in stream.bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// The lease an object holds; `None` when its annotations are not ours.
fn lease_of(object: &LeaseObject) -> Option<Lease> {
    let notes: &BTreeMap<String, String> = object.metadata.annotations.as_ref()?;
    let note = |key: &str| notes.get(&format!("{PREFIX}{key}")).cloned();
    Some(Lease {
        stream: note("stream")?,
        shard: note("shard")?,
        owner: object
            .spec
            .as_ref()
            .and_then(|s: &LeaseSpec| s.holder_identity.clone()),
        counter: note("counter")?.parse().ok()?,
        checkpoint: match note("checkpoint") {
            Some(json) => Some(serde_json::from_str::<ShardPosition>(&json).ok()?),
            None => None,
        },
        parents: match note("parents") {
            Some(json) => serde_json::from_str(&json).ok()?,
            None => Vec::new(),
        },
        wanted_by: note("wanted-by"),
    })
}

#[async_trait]
impl LeaseStore for KubeLeaseStore {
    async fn list(&self, stream: &str) -> Result<Vec<Lease>, LeaseError> {
        let selector = format!(
            "{SOURCE_LABEL}={},{STREAM_LABEL}={}",
            self.source,
            stream_hash(stream)
        );
        let objects = self
            .api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| self.error(e))?;
        // The cache holds what the last list showed (and what was written
        // since): Leases that are gone leave it.
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let mut leases = Vec::new();
        for object in objects.items {
            self.remember(&object);
            match lease_of(&object) {
                Some(lease) if lease.stream == stream => leases.push(lease),
                // Another stream with the same hash.
                Some(_) => {}
                None => tracing::warn!(
                    lease = object.metadata.name.as_deref().unwrap_or_default(),
                    "unreadable Lease: left alone"
                ),
            }
        }
        Ok(leases)
    }

    async fn create(&self, lease: &Lease) -> Result<bool, LeaseError> {
        let object = self.to_object(lease, None);
        match self.api.create(&PostParams::default(), &object).await {
            Ok(created) => {
                self.remember(&created);
                Ok(true)
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn take(&self, seen: &Lease, owner: &str) -> Result<Lease, LeaseError> {
        let same_counter = |now: &Lease| now.counter == seen.counter;
        self.update(seen, same_counter, |lease| {
            lease.owner = Some(owner.to_owned());
            lease.counter += 1;
            lease.wanted_by = None;
        })
        .await
    }

    async fn renew(
        &self,
        held: &Lease,
        checkpoint: Option<&ShardPosition>,
    ) -> Result<Lease, LeaseError> {
        self.update(held, holder_and_counter(held), |lease| {
            lease.counter += 1;
            lease.checkpoint = checkpoint.or(lease.checkpoint.as_ref()).cloned();
        })
        .await
    }

    async fn want(&self, seen: &Lease, owner: &str) -> Result<Lease, LeaseError> {
        let same_holder = |now: &Lease| now.owner.is_some() && now.owner == seen.owner;
        self.update(seen, same_holder, |lease| {
            lease.wanted_by = Some(owner.to_owned())
        })
        .await
    }

    async fn release(
        &self,
        held: &Lease,
        checkpoint: Option<&ShardPosition>,
    ) -> Result<Lease, LeaseError> {
        self.update(held, holder_and_counter(held), |lease| {
            lease.owner = None;
            lease.wanted_by = None;
            lease.counter += 1;
            lease.checkpoint = checkpoint.or(lease.checkpoint.as_ref()).cloned();
        })
        .await
    }

    fn location(&self) -> String {
        format!("kubernetes:{}/leases", self.namespace)
    }

    fn checkpoint_interval(&self) -> Duration {
        CHECKPOINT_INTERVAL
    }
}
