//! GetRecords around the SDK (signed by the adapter, on its own keep-alive
//! pool), against DynamoDB Local through the fault proxy: the same records
//! as the SDK, every error sorted as the SDK path sorts it, and no more
//! calls in flight (so connections) than the bound.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::config::{
    BehaviorVersion, Credentials, Region, SharedCredentialsProvider,
};
use awsdynamodb_source::test_support::{
    ApiError, AwsStreams, IteratorPosition, MAX_CALLS_IN_FLIGHT, StreamsApi, describe_all,
};
use awsdynamodb_testkit::{
    DynamoDbLocal, Fault, FaultProxy, KeyShape, Op, StreamViewType, TestTable, items,
};

/// A client whose GetRecords goes around the SDK once it has seen the
/// endpoint (`direct`), or always through the SDK.
fn streams(endpoint: &str, direct: bool) -> AwsStreams {
    let credentials = Credentials::new("direct", "direct-secret", None, None, "test");
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("ddblocal"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials.clone());
    let streams = AwsStreams::new(config);
    if direct {
        streams.with_direct_get_records(SharedCredentialsProvider::new(credentials))
    } else {
        streams
    }
}

struct Setup {
    _table: TestTable,
    proxy: FaultProxy,
    direct: AwsStreams,
    stream: String,
    shard: String,
}

/// A table with `n` changes; the direct client has made its first SDK
/// call (DescribeStream), so GetRecords now goes around the SDK.
async fn setup(n: usize) -> Setup {
    let local = DynamoDbLocal::shared().await;
    let table = TestTable::create(local, KeyShape::Hash, StreamViewType::NewAndOldImages)
        .await
        .unwrap();
    for i in 0..n {
        table
            .put(items::every_type(items::key(&format!("item-{i}"))))
            .await
            .unwrap();
    }
    let proxy = FaultProxy::start(local.endpoint()).await.unwrap();
    let stream = table.stream_arns().await.unwrap().remove(0);
    let direct = streams(&proxy.endpoint(), true);
    assert!(!direct.get_records_is_direct(), "no endpoint seen yet");
    let described = describe_all(&direct, &Default::default(), &stream)
        .await
        .unwrap();
    assert!(direct.get_records_is_direct());
    Setup {
        _table: table,
        proxy,
        direct,
        stream,
        shard: described.shards[0].id.clone(),
    }
}

impl Setup {
    async fn iterator(&self) -> String {
        self.direct
            .get_shard_iterator(&self.stream, &self.shard, &IteratorPosition::TrimHorizon)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_same_records_as_the_sdk() {
    let s = setup(25).await;
    let iterator = s.iterator().await;
    let proxy_calls = s.proxy.calls(Op::GetRecords);
    let direct = s.direct.get_records(&iterator).await.unwrap();
    assert_eq!(s.proxy.calls(Op::GetRecords), proxy_calls + 1);
    // An iterator can be read again: the SDK reads the same page.
    let sdk = streams(&s.proxy.endpoint(), false);
    let through_sdk = sdk.get_records(&iterator).await.unwrap();
    assert!(!sdk.get_records_is_direct());
    assert_eq!(direct.records.len(), 25);
    assert_eq!(direct.records, through_sdk.records);
    assert!(direct.next_iterator.is_some());
}

#[tokio::test]
async fn errors_are_sorted_as_on_the_sdk_path() {
    let s = setup(1).await;
    let iterator = s.iterator().await;
    type Case = (Fault, fn(&ApiError) -> bool);
    let cases: Vec<Case> = vec![
        (Fault::ExpiredIterator, |e| *e == ApiError::ExpiredIterator),
        (Fault::TrimmedDataAccess, |e| {
            matches!(e, ApiError::TrimmedData(_))
        }),
        (Fault::ResourceNotFound, |e| {
            matches!(e, ApiError::NotFound(_))
        }),
        (Fault::LimitExceeded, |e| {
            matches!(e, ApiError::Throttled(_))
        }),
        (Fault::Throttling, |e| matches!(e, ApiError::Throttled(_))),
        (Fault::AccessDenied, |e| {
            matches!(e, ApiError::AccessDenied(_))
        }),
        (Fault::Internal, |e| matches!(e, ApiError::Transient(_))),
        (Fault::Unavailable, |e| matches!(e, ApiError::Transient(_))),
        (Fault::Drop, |e| matches!(e, ApiError::Transient(_))),
    ];
    for (fault, expected) in cases {
        s.proxy.fail_next(Op::GetRecords, 1, fault.clone());
        let e = s.direct.get_records(&iterator).await.unwrap_err();
        assert!(expected(&e), "{fault:?} → {e:?}");
        assert!(!format!("{e}").contains("direct-secret"), "{e}");
    }
    // And the iterator still reads after all that.
    assert_eq!(
        s.direct.get_records(&iterator).await.unwrap().records.len(),
        1
    );
}

/// Many shards polling at once share a bounded pool: never more calls in
/// flight, so connections, than `MAX_CALLS_IN_FLIGHT`.
#[tokio::test]
async fn calls_in_flight_are_bounded() {
    let s = Arc::new(setup(1).await);
    let iterator = s.iterator().await;
    s.proxy.fail_ratio(
        Op::GetRecords,
        1.0,
        Fault::Delay(Duration::from_millis(200)),
    );
    s.proxy.reset_counters();
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let (s, iterator) = (s.clone(), iterator.clone());
        calls.spawn(async move {
            s.direct
                .get_records(&iterator)
                .await
                .map(|p| p.records.len())
        });
    }
    while let Some(done) = calls.join_next().await {
        assert_eq!(done.unwrap().unwrap(), 1);
    }
    let peak = s.proxy.peak_in_flight();
    assert!(
        peak as usize <= MAX_CALLS_IN_FLIGHT && peak >= 8,
        "{peak} calls at once"
    );
}
