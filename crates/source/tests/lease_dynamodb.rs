//! The DynamoDB lease store against DynamoDB Local: the lease stores'
//! contract (every write conditional on the holder and the counter, so a
//! replica that lost a lease can neither renew it nor move the new
//! holder's checkpoint back), and a missing table named.

use awsdynamodb_source::test_support::{DynamoDbLeaseStore, lease_contract};
use awsdynamodb_testkit::{DynamoDbLocal, Retries, dynamodb_client};

const STREAM: &str =
    "arn:aws:dynamodb:ddblocal:000000000000:table/orders/stream/2026-01-01T00:00:00.000";

/// Two replicas' stores on one new table.
async fn stores() -> (DynamoDbLeaseStore, DynamoDbLeaseStore) {
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
    let a = DynamoDbLeaseStore::open(client.clone(), &table, true)
        .await
        .unwrap();
    // A second replica opens the same table.
    let b = DynamoDbLeaseStore::open(client, &table, false)
        .await
        .unwrap();
    (a, b)
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
    let (a, b) = stores().await;
    lease_contract::created_once_and_listed(&a, &b, STREAM).await;
}

#[tokio::test]
async fn a_replica_that_lost_its_lease_cannot_write() {
    let (a, b) = stores().await;
    lease_contract::lost_lease_cannot_write(&a, &b, STREAM).await;
}

#[tokio::test]
async fn a_wanted_lease_is_handed_over_at_its_checkpoint() {
    let (a, b) = stores().await;
    lease_contract::wanted_lease_handed_over(&a, &b, STREAM).await;
}

#[tokio::test]
async fn each_write_has_its_condition() {
    let (a, b) = stores().await;
    lease_contract::each_write_has_its_condition(&a, &b, STREAM).await;
}
