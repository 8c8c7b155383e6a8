//! FaultProxy against DynamoDB Local: forwarding, counters, every fault as the SDK sees it, and
//! trimming as the 24 h retention does it.

use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodbstreams::operation::get_records::GetRecordsError;
use aws_sdk_dynamodbstreams::operation::get_shard_iterator::GetShardIteratorError;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use awsdynamodb_testkit::{
    DynamoDbLocal, Fault, FaultProxy, KeyShape, Op, Retries, StreamViewType, TestTable, items,
    read_stream, record_sequence_number,
};

type HttpResponse = aws_sdk_dynamodbstreams::config::http::HttpResponse;

async fn setup() -> (TestTable, FaultProxy, String) {
    let local = DynamoDbLocal::shared().await;
    let table = TestTable::create(local, KeyShape::Hash, StreamViewType::NewAndOldImages)
        .await
        .unwrap();
    let proxy = FaultProxy::start(local.endpoint()).await.unwrap();
    let arn = table.stream_arns().await.unwrap().remove(0);
    (table, proxy, arn)
}

async fn iterator(client: &aws_sdk_dynamodbstreams::Client, arn: &str) -> String {
    let shards = awsdynamodb_testkit::describe_all_shards(client, arn)
        .await
        .unwrap();
    client
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shards[0].shard_id().unwrap())
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap()
}

/// The error a GetRecords call gets when the proxy injects `fault` (no SDK retries).
async fn get_records_error(
    fault: Fault,
) -> SdkError<GetRecordsError, aws_sdk_dynamodbstreams::config::http::HttpResponse> {
    let (_table, proxy, arn) = setup().await;
    let client = proxy.streams_client(Retries::Disabled);
    let it = iterator(&client, &arn).await;
    proxy.fail_next(Op::GetRecords, 1, fault);
    let err = client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap_err();
    assert_eq!(proxy.calls(Op::GetRecords), 1);
    // The fault was used up: the next call goes through.
    client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap();
    err
}

fn service_error(
    err: &SdkError<GetRecordsError, aws_sdk_dynamodbstreams::config::http::HttpResponse>,
) -> &GetRecordsError {
    err.as_service_error()
        .unwrap_or_else(|| panic!("not a service error: {err:?}"))
}

#[tokio::test]
async fn expired_iterator_is_modelled() {
    let err = get_records_error(Fault::ExpiredIterator).await;
    let e = service_error(&err);
    assert!(e.is_expired_iterator_exception(), "{e:?}");
    assert_eq!(e.message(), Some("Iterator expired"));
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 400);
}

#[tokio::test]
async fn trimmed_data_access_is_modelled() {
    let err = get_records_error(Fault::TrimmedDataAccess).await;
    assert!(
        service_error(&err).is_trimmed_data_access_exception(),
        "{err:?}"
    );
}

#[tokio::test]
async fn limit_exceeded_is_modelled() {
    let err = get_records_error(Fault::LimitExceeded).await;
    assert!(service_error(&err).is_limit_exceeded_exception(), "{err:?}");
}

#[tokio::test]
async fn resource_not_found_is_modelled() {
    let err = get_records_error(Fault::ResourceNotFound).await;
    assert!(
        service_error(&err).is_resource_not_found_exception(),
        "{err:?}"
    );
}

#[tokio::test]
async fn internal_server_error_is_modelled() {
    let err = get_records_error(Fault::Internal).await;
    assert!(service_error(&err).is_internal_server_error(), "{err:?}");
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 500);
}

#[tokio::test]
async fn throttling_has_its_code() {
    let err = get_records_error(Fault::Throttling).await;
    let e = service_error(&err);
    assert_eq!(e.code(), Some("ThrottlingException"));
    assert!(!e.is_limit_exceeded_exception() && !e.is_internal_server_error());
}

#[tokio::test]
async fn access_denied_has_its_code() {
    let err = get_records_error(Fault::AccessDenied).await;
    assert_eq!(service_error(&err).code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn unavailable_is_a_503() {
    let err = get_records_error(Fault::Unavailable).await;
    assert_eq!(err.raw_response().unwrap().status().as_u16(), 503);
    assert_eq!(
        service_error(&err).code(),
        Some("ServiceUnavailableException")
    );
}

#[tokio::test]
async fn drop_closes_the_connection_unanswered() {
    let err = get_records_error(Fault::Drop).await;
    assert!(matches!(err, SdkError::DispatchFailure(_)), "{err:?}");
    assert!(err.raw_response().is_none());
}

#[tokio::test]
async fn delay_answers_late_but_right() {
    let (table, proxy, arn) = setup().await;
    table
        .put(items::with_value(items::key("a"), 1))
        .await
        .unwrap();
    let client = proxy.streams_client(Retries::Disabled);
    let it = iterator(&client, &arn).await;
    proxy.fail_next(Op::GetRecords, 1, Fault::Delay(Duration::from_millis(400)));
    let started = Instant::now();
    let out = client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(out.records().len(), 1);
}

#[tokio::test]
async fn faults_apply_to_every_streams_operation() {
    let (table, proxy, arn) = setup().await;
    let client = proxy.streams_client(Retries::Disabled);
    proxy.fail_next(Op::ListStreams, 1, Fault::Internal);
    let err = client
        .list_streams()
        .table_name(table.name())
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_internal_server_error());

    proxy.fail_next(Op::DescribeStream, 1, Fault::ResourceNotFound);
    let err = client
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());

    proxy.fail_next(Op::GetShardIterator, 1, Fault::TrimmedDataAccess);
    let shards = awsdynamodb_testkit::describe_all_shards(&client, &arn)
        .await
        .unwrap();
    let err = client
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(shards[0].shard_id().unwrap())
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_trimmed_data_access_exception());
    // Faults on one operation leave the others alone.
    proxy.fail_next(Op::GetRecords, 5, Fault::Internal);
    client
        .list_streams()
        .table_name(table.name())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn sdk_retries_throttling_but_not_access_denied() {
    let (table, proxy, _arn) = setup().await;
    let client = proxy.streams_client(Retries::Standard);
    proxy.fail_next(Op::ListStreams, 2, Fault::Throttling);
    let out = client
        .list_streams()
        .table_name(table.name())
        .send()
        .await
        .unwrap();
    assert_eq!(out.streams().len(), 1);
    assert_eq!(proxy.calls(Op::ListStreams), 3);

    proxy.reset_counters();
    proxy.fail_next(Op::ListStreams, 1, Fault::AccessDenied);
    let err = client
        .list_streams()
        .table_name(table.name())
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("AccessDeniedException"));
    assert_eq!(proxy.calls(Op::ListStreams), 1);

    proxy.reset_counters();
    proxy.fail_next(Op::ListStreams, 1, Fault::Drop);
    client
        .list_streams()
        .table_name(table.name())
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.calls(Op::ListStreams), 2);
}

#[tokio::test]
async fn fail_next_counts_down_in_order() {
    let (table, proxy, _arn) = setup().await;
    let client = proxy.streams_client(Retries::Disabled);
    proxy.fail_next(Op::ListStreams, 2, Fault::Internal);
    proxy.fail_next(Op::ListStreams, 1, Fault::ResourceNotFound);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            match client.list_streams().table_name(table.name()).send().await {
                Ok(_) => "ok".to_string(),
                Err(e) => e.code().unwrap_or("?").to_string(),
            },
        );
    }
    assert_eq!(
        seen,
        [
            "InternalServerError",
            "InternalServerError",
            "ResourceNotFoundException",
            "ok"
        ]
    );
    proxy.fail_next(Op::ListStreams, 3, Fault::Internal);
    proxy.clear_faults();
    client
        .list_streams()
        .table_name(table.name())
        .send()
        .await
        .unwrap();
}

async fn ratio_pattern(seed: u64) -> Vec<bool> {
    let (table, proxy, _arn) = setup().await;
    let client = proxy.streams_client(Retries::Disabled);
    proxy.set_seed(seed);
    proxy.fail_ratio(Op::ListStreams, 0.5, Fault::Internal);
    let mut pattern = Vec::new();
    for _ in 0..40 {
        pattern.push(
            client
                .list_streams()
                .table_name(table.name())
                .send()
                .await
                .is_err(),
        );
    }
    pattern
}

#[tokio::test]
async fn fail_ratio_is_deterministic_per_seed() {
    let a = ratio_pattern(42).await;
    let b = ratio_pattern(42).await;
    let c = ratio_pattern(43).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
    let failures = a.iter().filter(|f| **f).count();
    assert!((8..=32).contains(&failures), "{failures} of 40");
}

#[tokio::test]
async fn fail_ratio_zero_turns_it_off() {
    let (table, proxy, _arn) = setup().await;
    let client = proxy.streams_client(Retries::Disabled);
    proxy.fail_ratio(Op::ListStreams, 1.0, Fault::Internal);
    assert!(
        client
            .list_streams()
            .table_name(table.name())
            .send()
            .await
            .is_err()
    );
    proxy.fail_ratio(Op::ListStreams, 0.0, Fault::Internal);
    client
        .list_streams()
        .table_name(table.name())
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn counters_count_each_target() {
    let (table, proxy, arn) = setup().await;
    let client = proxy.streams_client(Retries::Disabled);
    let ddb = awsdynamodb_testkit::dynamodb_client(&proxy.endpoint(), Retries::Disabled);
    ddb.put_item()
        .table_name(table.name())
        .set_item(Some(items::with_value(items::key("x"), 1)))
        .send()
        .await
        .unwrap();
    let it = iterator(&client, &arn).await;
    for _ in 0..3 {
        client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(proxy.calls(Op::GetRecords), 3);
    assert_eq!(proxy.calls(Op::GetShardIterator), 1);
    assert_eq!(proxy.calls(Op::DescribeStream), 1);
    assert_eq!(proxy.calls(Op::ListStreams), 0);
    assert_eq!(proxy.calls_target("DynamoDB_20120810.PutItem"), 1);
    proxy.reset_counters();
    assert_eq!(proxy.calls(Op::GetRecords), 0);
    client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap();
    assert_eq!(proxy.calls(Op::GetRecords), 1);
}

#[tokio::test]
async fn dynamodb_calls_and_records_pass_through_unchanged() {
    let (table, proxy, arn) = setup().await;
    let ddb = awsdynamodb_testkit::dynamodb_client(&proxy.endpoint(), Retries::Disabled);
    ddb.put_item()
        .table_name(table.name())
        .set_item(Some(items::every_type(items::key("all"))))
        .send()
        .await
        .unwrap();
    let got = ddb
        .get_item()
        .table_name(table.name())
        .set_key(Some(items::key("all")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.item().unwrap(), &items::every_type(items::key("all")));
    // The stream through the proxy is the stream from DynamoDB Local, record for record.
    let through = awsdynamodb_testkit::read_stream(&proxy.streams_client(Retries::Disabled), &arn)
        .await
        .unwrap();
    let direct = table.read_all_records(&arn).await.unwrap();
    assert_eq!(through.len(), 1);
    assert_eq!(through[0].records, direct);
}

#[tokio::test]
async fn unparseable_requests_are_forwarded_unchanged() {
    let (_table, proxy, _arn) = setup().await;
    let local = DynamoDbLocal::shared().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for (target, body) in [
        ("DynamoDBStreams_20120810.GetRecords", "{not json"),
        (
            "DynamoDBStreams_20120810.GetRecords",
            r#"{"ShardIterator":"tkproxy1|nonsense"}"#,
        ),
        ("DynamoDBStreams_20120810.DescribeStream", "[]"),
        (
            "DynamoDBStreams_20120810.GetShardIterator",
            r#"{"StreamArn":1}"#,
        ),
        ("Bogus_20120810.Nothing", "{}"),
    ] {
        let send = |endpoint: String| {
            http.post(endpoint)
                .header("x-amz-target", target)
                .header("content-type", "application/x-amz-json-1.0")
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=k/20240101/ddblocal/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
                )
                .body(body)
                .send()
        };
        let via = send(proxy.endpoint()).await.unwrap();
        let direct = send(local.endpoint().to_string()).await.unwrap();
        assert_eq!(via.status(), direct.status(), "{target} {body}");
        let (via, direct) = (via.text().await.unwrap(), direct.text().await.unwrap());
        assert_eq!(via, direct, "{target} {body}");
    }
}

#[tokio::test]
async fn upstream_down_gives_a_transient_error() {
    let port = awsdynamodb_testkit::free_port();
    let proxy = FaultProxy::start(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap();
    let client = proxy.streams_client(Retries::Disabled);
    let err = client
        .list_streams()
        .table_name("abc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(502));
}

/// Writes `n` items and returns the sequence numbers of their records, in stream order.
async fn write_items(table: &TestTable, arn: &str, prefix: &str, n: i64) -> Vec<String> {
    let before = table.read_all_records(arn).await.unwrap().len();
    for i in 0..n {
        table
            .put(items::with_value(items::key(&format!("{prefix}{i}")), i))
            .await
            .unwrap();
    }
    let records = table.read_all_records(arn).await.unwrap();
    records[before..]
        .iter()
        .map(|r| record_sequence_number(r).to_owned())
        .collect()
}

async fn shard_iterator_at(
    client: &aws_sdk_dynamodbstreams::Client,
    arn: &str,
    kind: ShardIteratorType,
    sequence: Option<&str>,
) -> Result<String, SdkError<GetShardIteratorError, HttpResponse>> {
    let shards = awsdynamodb_testkit::describe_all_shards(client, arn)
        .await
        .unwrap();
    let out = client
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shards[0].shard_id().unwrap())
        .shard_iterator_type(kind)
        .set_sequence_number(sequence.map(str::to_owned))
        .send()
        .await?;
    Ok(out.shard_iterator.unwrap())
}

/// The sequence numbers GetRecords shows from `iterator` to the current end of the shard.
async fn sequences_from(client: &aws_sdk_dynamodbstreams::Client, iterator: String) -> Vec<String> {
    let mut sequences = Vec::new();
    let mut next = Some(iterator);
    while let Some(it) = next.take() {
        let page = client
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .unwrap();
        if page.records().is_empty() {
            break;
        }
        sequences.extend(
            page.records()
                .iter()
                .map(|r| record_sequence_number(r).to_owned()),
        );
        next = page.next_shard_iterator;
    }
    sequences
}

/// After `trim_through`, the proxy answers as the real service does once the 24 h retention
/// has trimmed records: TRIM_HORIZON starts at the first record kept, a position before the
/// trim point (as a sequence number, or as an iterator taken before the trim) answers
/// TrimmedDataAccessException, and a position at or past it reads on normally.
#[tokio::test]
async fn trimmed_records_are_gone_and_positions_before_them_are_refused() {
    let (table, proxy, arn) = setup().await;
    let seqs = write_items(&table, &arn, "k", 5).await;
    let client = proxy.streams_client(Retries::Disabled);
    let taken_before_the_trim = iterator(&client, &arn).await;
    proxy.trim_through(&arn, &seqs[1]).await.unwrap();

    let err = client
        .get_records()
        .shard_iterator(&taken_before_the_trim)
        .send()
        .await
        .unwrap_err();
    assert!(
        service_error(&err).is_trimmed_data_access_exception(),
        "{err:?}"
    );
    for (kind, at) in [
        (ShardIteratorType::AfterSequenceNumber, &seqs[0]),
        (ShardIteratorType::AtSequenceNumber, &seqs[0]),
        (ShardIteratorType::AtSequenceNumber, &seqs[1]),
    ] {
        let err = shard_iterator_at(&client, &arn, kind.clone(), Some(at))
            .await
            .unwrap_err();
        assert!(
            err.as_service_error()
                .is_some_and(GetShardIteratorError::is_trimmed_data_access_exception),
            "{kind:?} {at}: {err:?}"
        );
    }

    let kept = seqs[2..].to_vec();
    for (kind, at) in [
        (ShardIteratorType::TrimHorizon, None),
        (ShardIteratorType::AfterSequenceNumber, Some(&seqs[1])),
        (ShardIteratorType::AtSequenceNumber, Some(&seqs[2])),
    ] {
        let it = shard_iterator_at(&client, &arn, kind.clone(), at.map(String::as_str))
            .await
            .unwrap();
        assert_eq!(sequences_from(&client, it).await, kept, "{kind:?} {at:?}");
    }
    // Later records read on from where a reader stands.
    let it = shard_iterator_at(&client, &arn, ShardIteratorType::Latest, None)
        .await
        .unwrap();
    let later = write_items(&table, &arn, "later", 1).await;
    assert_eq!(sequences_from(&client, it).await, later);
    // A trim never moves back; DynamoDB Local itself still has every record.
    proxy.trim_through(&arn, &seqs[0]).await.unwrap();
    let it = shard_iterator_at(&client, &arn, ShardIteratorType::TrimHorizon, None)
        .await
        .unwrap();
    assert_eq!(sequences_from(&client, it).await[0], seqs[2]);
    assert_eq!(table.read_all_records(&arn).await.unwrap().len(), 6);
    assert!(proxy.trim_through(&arn, "12a").await.is_err());
}

/// The trim reaches the virtual shards of a split: a closed generation that ends before the
/// trim point reads as empty and finished, and its children start at the first record kept.
#[tokio::test]
async fn trimming_reaches_the_shards_of_a_split() {
    let (table, proxy, arn) = setup().await;
    let parents = write_items(&table, &arn, "a", 3).await;
    let split = proxy.split(&arn, 2).await.unwrap();
    assert_eq!(split.boundary, parents[2]);
    let children = write_items(&table, &arn, "b", 6).await;
    proxy.trim_through(&arn, &children[1]).await.unwrap();

    let client = proxy.streams_client(Retries::Disabled);
    let reads = read_stream(&client, &arn).await.unwrap();
    let parent = reads
        .iter()
        .find(|r| r.shard.shard_id() == Some(split.closed_shard_ids[0].as_str()))
        .unwrap();
    assert!(parent.records.is_empty() && parent.ended, "{parent:?}");
    let mut read: Vec<String> = reads
        .iter()
        .flat_map(|r| {
            r.records
                .iter()
                .map(|r| record_sequence_number(r).to_owned())
        })
        .collect();
    read.sort_by_key(|s| {
        (
            s.trim_start_matches('0').len(),
            s.trim_start_matches('0').to_owned(),
        )
    });
    assert_eq!(read, children[2..]);
}
