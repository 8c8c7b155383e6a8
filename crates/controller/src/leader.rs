//! Leader election over a `coordination.k8s.io` Lease, so that two
//! controller replicas never reconcile at once.
//!
//! Owns the lease's life: take it when it is free or expired, renew it well
//! within its duration, and report when it is lost. Updates carry the
//! lease's resourceVersion, so two candidates cannot both win a race. It
//! never reconciles anything: `main` runs the controller while it leads.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

/// How long a lease holds without renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews, and a candidate retries.
pub const RENEW_EVERY: Duration = Duration::from_secs(5);

/// Whether `me` may take (or keep) the lease at `now`.
pub fn may_hold(lease: &Lease, me: &str, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    match spec.holder_identity.as_deref() {
        None | Some("") => true,
        Some(holder) if holder == me => true,
        Some(_) => {
            let renewed = spec
                .renew_time
                .as_ref()
                .or(spec.acquire_time.as_ref())
                .map(|t| t.0);
            let duration = spec
                .lease_duration_seconds
                .unwrap_or(LEASE_DURATION.as_secs() as i32);
            match renewed {
                None => true,
                Some(at) => now.as_second() > at.as_second() + i64::from(duration),
            }
        }
    }
}

/// The lease held by `me` from `now`, keeping its acquire time when `me`
/// already held it.
pub fn held(existing: Option<&Lease>, name: &str, me: &str, now: Timestamp) -> Lease {
    let previous = existing.and_then(|l| l.spec.as_ref());
    let ours = previous.and_then(|s| s.holder_identity.as_deref()) == Some(me);
    let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            resource_version: existing.and_then(|l| l.metadata.resource_version.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(me.to_owned()),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: if ours {
                previous.and_then(|s| s.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
            ..LeaseSpec::default()
        }),
    }
}

/// One attempt to take or renew the lease; `Ok(true)` when `me` holds it.
pub async fn try_hold(api: &Api<Lease>, name: &str, me: &str) -> Result<bool, kube::Error> {
    let now = Timestamp::now();
    let existing = api.get_opt(name).await?;
    if let Some(lease) = &existing
        && !may_hold(lease, me, now)
    {
        return Ok(false);
    }
    let wanted = held(existing.as_ref(), name, me, now);
    let written = match existing {
        None => api.create(&PostParams::default(), &wanted).await,
        Some(_) => api.replace(name, &PostParams::default(), &wanted).await,
    };
    match written {
        Ok(_) => Ok(true),
        // Someone else wrote it first (409): not ours this round.
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Waits until `me` holds the lease.
pub async fn acquire(client: &Client, namespace: &str, name: &str, me: &str) {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    loop {
        match try_hold(&api, name, me).await {
            Ok(true) => return,
            Ok(false) => tracing::info!(lease = name, "another controller leads; waiting"),
            Err(e) => tracing::warn!(lease = name, error = %e, "cannot read or write the lease"),
        }
        tokio::time::sleep(RENEW_EVERY).await;
    }
}

/// Renews the lease until a renewal fails past the lease's duration;
/// returns then (leadership is lost).
pub async fn keep(client: &Client, namespace: &str, name: &str, me: &str) {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        match try_hold(&api, name, me).await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(lease = name, error = %e, "cannot renew the lease");
                if last_renewed.elapsed() >= LEASE_DURATION {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn a_lease_is_taken_when_free_expired_or_already_ours() {
        let held_by_a = held(None, "l", "a", at(100));
        assert!(may_hold(&Lease::default(), "b", at(100)), "no spec: free");
        assert!(may_hold(&held_by_a, "a", at(101)), "ours");
        assert!(!may_hold(&held_by_a, "b", at(110)), "a's, not expired");
        assert!(may_hold(&held_by_a, "b", at(116)), "a's, expired");
    }

    #[test]
    fn renewals_keep_the_acquire_time_and_takeovers_count() {
        let first = held(None, "l", "a", at(100));
        let renewed = held(Some(&first), "l", "a", at(105));
        let spec = renewed.spec.as_ref().unwrap();
        assert_eq!(spec.acquire_time.as_ref().unwrap().0, at(100));
        assert_eq!(spec.renew_time.as_ref().unwrap().0, at(105));
        assert_eq!(spec.lease_transitions, Some(1));
        let taken = held(Some(&renewed), "l", "b", at(130));
        let spec = taken.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.acquire_time.as_ref().unwrap().0, at(130));
        assert_eq!(spec.lease_transitions, Some(2));
    }
}
