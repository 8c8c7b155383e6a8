//! What every [`LeaseStore`] must do, as checks that each store's tests run
//! against its real backend (or the mocked API): created once, conditional
//! on holder and counter, handed over at its checkpoint. `a` and `b` are
//! two replicas' stores on the same backend.

use super::{Lease, LeaseError, LeaseStore};
use crate::checkpoint::ShardPosition;
use crate::record::SequenceNumber;

fn after(n: u32) -> ShardPosition {
    ShardPosition::After(SequenceNumber::parse(&n.to_string()).expect("a sequence number"))
}

fn changed(shard: &str) -> Result<Lease, LeaseError> {
    Err(LeaseError::Changed {
        shard: shard.into(),
    })
}

/// A lease is created once (a second create, by either replica, finds it)
/// and listed by stream only.
pub async fn created_once_and_listed(a: &dyn LeaseStore, b: &dyn LeaseStore, stream: &str) {
    let lease = Lease::new(stream, "shard-1", vec!["shard-0".into()]);
    assert!(a.create(&lease).await.unwrap());
    assert!(
        !a.create(&lease).await.unwrap(),
        "the second create finds it"
    );
    assert!(
        !b.create(&lease).await.unwrap(),
        "so does another replica's"
    );
    let other = Lease::new(stream, "shard-2", vec![]);
    assert!(b.create(&other).await.unwrap());
    for store in [a, b] {
        let mut listed = store.list(stream).await.unwrap();
        listed.sort_by(|x, y| x.shard.cmp(&y.shard));
        assert_eq!(listed, vec![lease.clone(), other.clone()]);
        assert!(store.list("arn:other").await.unwrap().is_empty());
    }
}

/// A takes, renews and checkpoints; B takes the lease over (A paused past
/// its lease time); A wakes up: its renewal, checkpoint and release all
/// fail, and B's position stands.
pub async fn lost_lease_cannot_write(a: &dyn LeaseStore, b: &dyn LeaseStore, stream: &str) {
    let free = Lease::new(stream, "shard-1", vec![]);
    a.create(&free).await.unwrap();

    let held_a = a.take(&free, "a").await.unwrap();
    assert_eq!((held_a.owner.as_deref(), held_a.counter), (Some("a"), 1));
    assert_eq!(
        b.take(&free, "b").await,
        changed("shard-1"),
        "a take on a stale view fails"
    );
    let held_a = a.renew(&held_a, Some(&after(10))).await.unwrap();
    assert_eq!(
        (held_a.counter, held_a.checkpoint.clone()),
        (2, Some(after(10)))
    );

    // B saw counter 2 stand still for a lease period: A is gone.
    let seen = b.list(stream).await.unwrap().remove(0);
    let held_b = b.take(&seen, "b").await.unwrap();
    assert_eq!((held_b.owner.as_deref(), held_b.counter), (Some("b"), 3));
    let held_b = b.renew(&held_b, Some(&after(20))).await.unwrap();

    assert_eq!(a.renew(&held_a, None).await, changed("shard-1"));
    assert_eq!(a.renew(&held_a, Some(&after(11))).await, changed("shard-1"));
    assert_eq!(
        a.release(&held_a, Some(&after(12))).await,
        changed("shard-1")
    );
    let now = a.list(stream).await.unwrap().remove(0);
    assert_eq!(now, held_b, "B's lease and position stand");
}

/// Balancing without duplicates: A asks for B's lease; B's renewals go on
/// and show the request; B checkpoints and releases; A takes it and starts
/// exactly after B's last position.
pub async fn wanted_lease_handed_over(a: &dyn LeaseStore, b: &dyn LeaseStore, stream: &str) {
    let free = Lease::new(stream, "shard-1", vec![]);
    b.create(&free).await.unwrap();
    let held_b = b.take(&free, "b").await.unwrap();

    let seen = a.list(stream).await.unwrap().remove(0);
    let wanted = a.want(&seen, "a").await.unwrap();
    assert_eq!(
        (wanted.wanted_by.as_deref(), wanted.counter),
        (Some("a"), held_b.counter)
    );
    let held_b = b.renew(&held_b, Some(&after(30))).await.unwrap();
    assert_eq!(
        held_b.wanted_by.as_deref(),
        Some("a"),
        "the holder sees the request"
    );

    let released = b.release(&held_b, Some(&after(31))).await.unwrap();
    assert_eq!(released.owner, None);
    let held_a = a.take(&released, "a").await.unwrap();
    assert_eq!(held_a.owner.as_deref(), Some("a"));
    assert_eq!(held_a.wanted_by, None);
    assert_eq!(
        held_a.checkpoint,
        Some(after(31)),
        "A starts exactly after B"
    );
    assert_eq!(
        b.want(&released, "c").await,
        changed("shard-1"),
        "a request on a stale view fails"
    );
}

/// Each write's own condition: a request needs only the same holder (its
/// checkpoint saves go on meanwhile); a take needs only the counter as
/// seen, so that a replica can take back a lease still in its name that it
/// gave up (a lapse, a failed release).
pub async fn each_write_has_its_condition(a: &dyn LeaseStore, b: &dyn LeaseStore, stream: &str) {
    let free = Lease::new(stream, "shard-1", vec![]);
    a.create(&free).await.unwrap();
    let held_a = a.take(&free, "a").await.unwrap();
    let seen_by_b = b.list(stream).await.unwrap().remove(0);
    let held_a = a.renew(&held_a, Some(&after(5))).await.unwrap();
    let wanted = b.want(&seen_by_b, "b").await.unwrap();
    assert_eq!(wanted.wanted_by.as_deref(), Some("b"));
    assert_eq!(wanted.counter, held_a.counter, "a request moves no counter");

    // A gave it up in its own mind; the lease still names A.
    let as_free = Lease {
        owner: None,
        ..held_a.clone()
    };
    let again = a.take(&as_free, "a").await.unwrap();
    assert_eq!(
        (again.owner.as_deref(), again.counter),
        (Some("a"), held_a.counter + 1)
    );
    assert_eq!(again.checkpoint, Some(after(5)), "its position stays");
    assert_eq!(
        b.take(&as_free, "b").await,
        changed("shard-1"),
        "the counter moved"
    );
}
