//! DynamoDbLocal and TestTable against the real emulator.

use aws_sdk_dynamodbstreams::types::OperationType;
use awsdynamodb_testkit::{
    DynamoDbLocal, KeyShape, StreamViewType, TestTable, items, record_sequence_number,
};

#[tokio::test]
async fn shared_instance_answers() {
    let local = DynamoDbLocal::shared().await;
    assert!(
        local.endpoint().starts_with("http://127.0.0.1:"),
        "{}",
        local.endpoint()
    );
    local.dynamodb().list_tables().send().await.unwrap();
    let again = DynamoDbLocal::shared().await;
    assert!(std::ptr::eq(local, again));
}

#[tokio::test]
async fn table_writes_show_in_the_stream_in_order() {
    let local = DynamoDbLocal::shared().await;
    let table = TestTable::create(local, KeyShape::HashRange, StreamViewType::NewAndOldImages)
        .await
        .unwrap();
    assert!(table.arn().ends_with(&format!(":table/{}", table.name())));
    assert!(
        table
            .arn()
            .starts_with("arn:aws:dynamodb:ddblocal:000000000000:table/")
    );
    let key = table.key("a", Some(1));
    table.put(items::every_type(key.clone())).await.unwrap();
    table
        .update_set(
            key.clone(),
            &[("v", awsdynamodb_testkit::AttributeValue::N("2".into()))],
        )
        .await
        .unwrap();
    table.delete(key.clone()).await.unwrap();
    let arns = table.stream_arns().await.unwrap();
    assert_eq!(arns.len(), 1);
    assert_eq!(
        table.latest_stream_arn().await.unwrap().as_deref(),
        Some(arns[0].as_str())
    );
    let records = table.read_all_records(&arns[0]).await.unwrap();
    let ops: Vec<OperationType> = records
        .iter()
        .map(|r| r.event_name().unwrap().clone())
        .collect();
    assert_eq!(
        ops,
        [
            OperationType::Insert,
            OperationType::Modify,
            OperationType::Remove
        ]
    );
    let seqs: Vec<&str> = records.iter().map(record_sequence_number).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    // Every attribute type made the round trip through the stream.
    let image = records[0].dynamodb().unwrap().new_image().unwrap();
    assert_eq!(image.len(), items::every_type(key).len());
}

#[tokio::test]
async fn tables_are_unique_and_streams_switch() {
    let local = DynamoDbLocal::shared().await;
    let a = TestTable::create(local, KeyShape::Hash, StreamViewType::KeysOnly)
        .await
        .unwrap();
    let b = TestTable::create(local, KeyShape::Hash, StreamViewType::KeysOnly)
        .await
        .unwrap();
    assert_ne!(a.name(), b.name());
    a.put(items::key("x")).await.unwrap();
    let first = a.stream_arns().await.unwrap();
    a.disable_stream().await.unwrap();
    assert_eq!(a.latest_stream_arn().await.unwrap(), None);
    a.enable_stream(StreamViewType::NewImage).await.unwrap();
    let arns = a.stream_arns().await.unwrap();
    assert_eq!(arns.len(), 2);
    assert_eq!(arns[1], first[0], "newest first");
    assert_eq!(
        a.latest_stream_arn().await.unwrap().as_deref(),
        Some(arns[0].as_str())
    );
    // The old stream's shard is closed and still readable.
    let shards = awsdynamodb_testkit::read_stream(&local.streams(), &arns[1])
        .await
        .unwrap();
    assert_eq!(shards.len(), 1);
    assert!(shards[0].ended);
    assert_eq!(shards[0].records.len(), 1);
    a.delete_table().await.unwrap();
}

#[tokio::test]
async fn a_private_instance_dies_when_dropped() {
    // Always a JVM of its own, even when DYNAMODB_LOCAL_ENDPOINT names a shared one.
    let local = DynamoDbLocal::spawn().await.unwrap();
    let pid = local.pid().unwrap();
    local.dynamodb().list_tables().send().await.unwrap();
    let endpoint = local.endpoint().to_string();
    drop(local);
    let client =
        awsdynamodb_testkit::dynamodb_client(&endpoint, awsdynamodb_testkit::Retries::Disabled);
    // SIGKILL was sent: the port stops answering once the kernel has torn the JVM down.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while client.list_tables().send().await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "JVM {pid} still answers"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
