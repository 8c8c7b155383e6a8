//! The DynamoDB lease store against DynamoDB Local: every write is
//! conditional on the holder and the counter, so a replica that lost a
//! lease can neither renew it nor move the new holder's checkpoint back.

use awsdynamodb_source::test_support::{
    DynamoDbLeaseStore, Lease, LeaseError, LeaseStore, SequenceNumber, ShardPosition,
};
use awsdynamodb_testkit::{DynamoDbLocal, Retries, dynamodb_client};

const STREAM: &str =
    "arn:aws:dynamodb:ddblocal:000000000000:table/orders/stream/2026-01-01T00:00:00.000";

fn after(n: u32) -> ShardPosition {
    ShardPosition::After(SequenceNumber::parse(&n.to_string()).unwrap())
}

async fn store() -> DynamoDbLeaseStore {
    let local = DynamoDbLocal::shared().await;
    let table = format!(
        "leases-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let client = dynamodb_client(local.endpoint(), Retries::Standard);
    let store = DynamoDbLeaseStore::open(client.clone(), &table, true)
        .await
        .unwrap();
    // A second replica opens the same table.
    DynamoDbLeaseStore::open(client, &table, false)
        .await
        .unwrap();
    store
}

#[tokio::test]
async fn a_missing_table_that_may_not_be_created_is_named() {
    let local = DynamoDbLocal::shared().await;
    let client = dynamodb_client(local.endpoint(), Retries::Standard);
    let Err(e) = DynamoDbLeaseStore::open(client, "no-such-lease-table", false).await else {
        panic!("opened a missing table");
    };
    let text = e.to_string();
    assert!(
        text.contains("no-such-lease-table") && text.contains("does not exist"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test]
async fn a_lease_is_created_once_and_listed() {
    let store = store().await;
    let lease = Lease::new(STREAM, "shard-1", vec!["shard-0".into()]);
    assert!(store.create(&lease).await.unwrap());
    assert!(
        !store.create(&lease).await.unwrap(),
        "the second create finds it"
    );
    assert!(
        store
            .create(&Lease::new(STREAM, "shard-2", vec![]))
            .await
            .unwrap()
    );
    let mut listed = store.list(STREAM).await.unwrap();
    listed.sort_by(|a, b| a.shard.cmp(&b.shard));
    assert_eq!(listed, vec![lease, Lease::new(STREAM, "shard-2", vec![])]);
    assert!(store.list("arn:other").await.unwrap().is_empty());
}

/// A takes, renews and checkpoints; B takes the lease over (A paused past
/// its lease time); A wakes up: its renewal, checkpoint and release all
/// fail, and B's position stands.
#[tokio::test]
async fn a_replica_that_lost_its_lease_cannot_write() {
    let store = store().await;
    let free = Lease::new(STREAM, "shard-1", vec![]);
    store.create(&free).await.unwrap();

    let a = store.take(&free, "a").await.unwrap();
    assert_eq!((a.owner.as_deref(), a.counter), (Some("a"), 1));
    assert_eq!(
        store.take(&free, "b").await,
        Err(LeaseError::Changed {
            shard: "shard-1".into()
        }),
        "a take on a stale view fails"
    );
    let a = store.renew(&a, Some(&after(10))).await.unwrap();
    assert_eq!((a.counter, a.checkpoint.clone()), (2, Some(after(10))));

    // B saw counter 2 stand still for a lease period: A is gone.
    let seen = store.list(STREAM).await.unwrap().remove(0);
    let b = store.take(&seen, "b").await.unwrap();
    assert_eq!((b.owner.as_deref(), b.counter), (Some("b"), 3));
    let b = store.renew(&b, Some(&after(20))).await.unwrap();

    let changed = Err(LeaseError::Changed {
        shard: "shard-1".into(),
    });
    assert_eq!(store.renew(&a, None).await, changed);
    assert_eq!(store.renew(&a, Some(&after(11))).await, changed);
    assert_eq!(store.release(&a, Some(&after(12))).await, changed);
    let now = store.list(STREAM).await.unwrap().remove(0);
    assert_eq!(now, b, "B's lease and position stand");
}

/// Balancing without duplicates: A asks for B's lease; B's renewals go on
/// and show the request; B checkpoints and releases; A takes it and starts
/// exactly after B's last position.
#[tokio::test]
async fn a_wanted_lease_is_handed_over_at_its_checkpoint() {
    let store = store().await;
    let free = Lease::new(STREAM, "shard-1", vec![]);
    store.create(&free).await.unwrap();
    let b = store.take(&free, "b").await.unwrap();

    let seen = store.list(STREAM).await.unwrap().remove(0);
    let wanted = store.want(&seen, "a").await.unwrap();
    assert_eq!(
        (wanted.wanted_by.as_deref(), wanted.counter),
        (Some("a"), b.counter)
    );
    let b = store.renew(&b, Some(&after(30))).await.unwrap();
    assert_eq!(
        b.wanted_by.as_deref(),
        Some("a"),
        "the holder sees the request"
    );

    let released = store.release(&b, Some(&after(31))).await.unwrap();
    assert_eq!(released.owner, None);
    let a = store.take(&released, "a").await.unwrap();
    assert_eq!(a.owner.as_deref(), Some("a"));
    assert_eq!(a.wanted_by, None);
    assert_eq!(a.checkpoint, Some(after(31)), "A starts exactly after B");
    assert_eq!(
        store.want(&released, "c").await,
        Err(LeaseError::Changed {
            shard: "shard-1".into()
        }),
        "a request on a stale view fails"
    );
}
