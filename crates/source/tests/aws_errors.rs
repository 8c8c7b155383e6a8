//! The AWS SDK's answers → what the engine does about them, through the real
//! SDK client with a fake at its HTTP layer (canned status and body per
//! case, as the service sends them).

use aws_sdk_dynamodbstreams::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::infallible_client_fn;
use awsdynamodb_source::test_support::AwsStreams;
use awsdynamodb_source::test_support::{ApiError, StreamsApi};

fn api(status: u16, body: &'static str) -> AwsStreams {
    let http = infallible_client_fn(move |_req| {
        http::Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.0")
            .body(body)
            .unwrap()
    });
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "t",
        ))
        .http_client(http);
    AwsStreams::new(config)
}

fn error(kind: &str) -> &'static str {
    Box::leak(
        format!(r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{kind}","message":"m"}}"#)
            .into_boxed_str(),
    )
}

/// (status, error type, what the engine must see)
type Case = (u16, &'static str, fn(&ApiError) -> bool);

#[tokio::test]
async fn service_errors_are_sorted_by_what_to_do() {
    let cases: Vec<Case> = vec![
        (400, "ExpiredIteratorException", |e| {
            *e == ApiError::ExpiredIterator
        }),
        (400, "TrimmedDataAccessException", |e| {
            matches!(e, ApiError::TrimmedData(_))
        }),
        (400, "ResourceNotFoundException", |e| {
            matches!(e, ApiError::NotFound(_))
        }),
        (400, "LimitExceededException", |e| {
            matches!(e, ApiError::Throttled(_))
        }),
        (400, "ThrottlingException", |e| {
            matches!(e, ApiError::Throttled(_))
        }),
        (400, "AccessDeniedException", |e| {
            matches!(e, ApiError::AccessDenied(_))
        }),
        (400, "UnrecognizedClientException", |e| {
            matches!(e, ApiError::AccessDenied(_))
        }),
        (400, "ValidationException", |e| {
            matches!(e, ApiError::Rejected(_))
        }),
        (500, "InternalServerError", |e| {
            matches!(e, ApiError::Transient(_))
        }),
        (503, "SomethingNew", |e| matches!(e, ApiError::Transient(_))),
    ];
    for (status, kind, expected) in cases {
        let e = api(status, error(kind))
            .get_records("it")
            .await
            .unwrap_err();
        assert!(expected(&e), "{status} {kind} → {e:?}");
        assert!(!e.to_string().contains("wJalrXUtnFEMI"), "{e}");
    }
}

#[tokio::test]
async fn an_unreadable_answer_is_transient() {
    let e = api(200, "{not json").get_records("it").await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");
}

#[tokio::test]
async fn describe_stream_answers_are_read_into_shards_and_key_schema() {
    let body = r#"{"StreamDescription":{"StreamArn":"arn:s","StreamStatus":"ENABLED","StreamViewType":"NEW_AND_OLD_IMAGES",
        "KeySchema":[{"AttributeName":"sk","KeyType":"RANGE"},{"AttributeName":"pk","KeyType":"HASH"}],
        "Shards":[{"ShardId":"p","SequenceNumberRange":{"StartingSequenceNumber":"1","EndingSequenceNumber":"9"}},
                  {"ShardId":"c","ParentShardId":"p","SequenceNumberRange":{"StartingSequenceNumber":"10"}}],
        "LastEvaluatedShardId":"c"}}"#;
    let d = api(200, body)
        .describe_stream("arn:s", None, Some("p"))
        .await
        .unwrap();
    let schema = d.key_schema.unwrap();
    assert_eq!(
        (schema.hash.as_str(), schema.range.as_deref()),
        ("pk", Some("sk"))
    );
    assert_eq!(d.shards.len(), 2);
    assert!(d.shards[0].closed && !d.shards[1].closed);
    assert_eq!(d.shards[1].parent.as_deref(), Some("p"));
    assert_eq!(d.last_evaluated_shard_id.as_deref(), Some("c"));
}

/// The engine's loops are the one retry layer: each call the engine makes is
/// one request, however the service answers, so every failure is seen,
/// counted and paced by the engine (`AwsStreams::new` is what production
/// uses).
#[tokio::test]
async fn the_sdk_does_not_retry_under_the_engine() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    for (status, kind) in [
        (400, "ThrottlingException"),
        (400, "LimitExceededException"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
    ] {
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let http = infallible_client_fn(move |_req| {
            counted.fetch_add(1, Ordering::SeqCst);
            http::Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.0")
                .body(error(kind))
                .unwrap()
        });
        let config = aws_sdk_dynamodbstreams::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "t"))
            .http_client(http);
        let e = AwsStreams::new(config).get_records("it").await.unwrap_err();
        assert!(e.is_transient(), "{kind}: {e:?}");
        assert_eq!(requests.load(Ordering::SeqCst), 1, "{status} {kind}");
    }
}
