//! The snapshot's scan against DynamoDB Local: the segments of a parallel
//! scan together read every item exactly once, and a segment resumed from
//! a saved cursor (as JSON, as a checkpoint keeps it) reads exactly the
//! rest of it.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, StreamViewType, WriteRequest};
use awsdynamodb_source::TableScanner;
use awsdynamodb_source::test_support::ApiError;
use awsdynamodb_source::test_support::ScanCursor;
use awsdynamodb_testkit::{
    DynamoDbLocal, Fault, FaultProxy, KeyShape, Op, Retries, TestTable, dynamodb_client,
};

const ITEMS: i64 = 300;

/// A table of ITEMS items, `pk` = `item-<n>`, `sk` = n, `version` = 1.
async fn table_of_items() -> TestTable {
    let ddb = DynamoDbLocal::shared().await;
    let table = TestTable::create(ddb, KeyShape::HashRange, StreamViewType::NewImage)
        .await
        .unwrap();
    let items: Vec<i64> = (0..ITEMS).collect();
    for batch in items.chunks(25) {
        let requests: Vec<WriteRequest> = batch
            .iter()
            .map(|n| {
                let mut item = table.key(&format!("item-{n}"), Some(*n));
                item.insert("version".into(), AttributeValue::N("1".into()));
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                    .build()
            })
            .collect();
        let out = table
            .dynamodb()
            .batch_write_item()
            .request_items(table.name(), requests)
            .send()
            .await
            .unwrap();
        assert!(
            out.unprocessed_items().is_none_or(|u| u.is_empty()),
            "DynamoDB Local left items unwritten"
        );
    }
    table
}

fn sort_key(item: &std::collections::HashMap<String, AttributeValue>) -> i64 {
    item["sk"].as_n().unwrap().parse().unwrap()
}

/// Every page of `segment` from `cursor` on: the items' sort keys.
async fn read_segment(
    scanner: &TableScanner,
    segment: u32,
    cursor: Option<ScanCursor>,
) -> Vec<i64> {
    let mut cursor = cursor;
    let mut keys = Vec::new();
    loop {
        let page = scanner.page(segment, cursor.as_ref()).await.unwrap();
        keys.extend(page.items.iter().map(sort_key));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segments_read_every_item_once() {
    let table = table_of_items().await;
    let scanner = TableScanner::new(table.dynamodb().clone(), table.name(), 4, Some(17), None);
    let mut seen: BTreeMap<i64, u32> = BTreeMap::new();
    for segment in 0..scanner.total_segments() {
        for key in read_segment(&scanner, segment, None).await {
            *seen.entry(key).or_default() += 1;
        }
    }
    assert_eq!(seen.len() as i64, ITEMS, "items missed");
    assert!(seen.values().all(|n| *n == 1), "items read twice");
    // What a read rate is counted in: DynamoDB says what each page cost.
    let page = scanner.page(0, None).await.unwrap();
    assert!(page.consumed > 0.0, "no consumed capacity reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_resumed_from_a_saved_cursor_reads_exactly_the_rest() {
    let table = table_of_items().await;
    let scanner = TableScanner::new(table.dynamodb().clone(), table.name(), 2, Some(10), None);
    let whole = read_segment(&scanner, 1, None).await;
    assert!(whole.len() > 30, "the segment has several pages");

    // Three pages, then a "crash": the cursor goes through JSON.
    let mut cursor = None;
    let mut before = Vec::new();
    for _ in 0..3 {
        let page = scanner.page(1, cursor.as_ref()).await.unwrap();
        before.extend(page.items.iter().map(sort_key));
        cursor = page.next;
    }
    let saved = serde_json::to_string(&cursor.unwrap()).unwrap();
    assert!(saved.contains("\"pk\":{\"S\":\"item-"), "{saved}");
    assert!(saved.contains("\"sk\":{\"N\":\""), "{saved}");
    let restored: ScanCursor = serde_json::from_str(&saved).unwrap();

    let after = read_segment(&scanner, 1, Some(restored)).await;
    before.extend(after);
    assert_eq!(before, whole);
}

/// Without dynamodb:Scan, the scan's error is a denial (startup names it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_scan_is_access_denied() {
    let table = table_of_items().await;
    let proxy = FaultProxy::start(DynamoDbLocal::shared().await.endpoint())
        .await
        .unwrap();
    proxy.fail_ratio(Op::Scan, 1.0, Fault::AccessDenied);
    let client = dynamodb_client(&proxy.endpoint(), Retries::Disabled);
    let scanner = TableScanner::new(client, table.name(), 1, None, None);
    let err = scanner.page(0, None).await.unwrap_err();
    assert!(matches!(err, ApiError::AccessDenied(_)), "{err}");
}

/// Every segment at once, as the snapshot runs them: pages come with their
/// read times and each segment's progress after them; resumed from a
/// progress with one segment done and another halfway, the scan reads
/// exactly what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segments_run_in_parallel_and_resume_from_their_progress() {
    use awsdynamodb_source::test_support::scan_segments;
    use awsdynamodb_source::{SegmentProgress, SnapshotProgress};
    use tokio_util::sync::CancellationToken;

    let table = table_of_items().await;
    let scanner = TableScanner::new(table.dynamodb().clone(), table.name(), 3, Some(20), None);
    let run = |progress: SnapshotProgress| {
        let scanner = scanner.clone();
        async move {
            let (tx, mut rx) = tokio::sync::mpsc::channel(2);
            let scan = tokio::spawn(async move {
                scan_segments(scanner, &progress, tx, CancellationToken::new()).await
            });
            let mut pages = Vec::new();
            while let Some(page) = rx.recv().await {
                pages.push(page);
            }
            scan.await.unwrap().unwrap();
            pages
        }
    };

    let pages = run(SnapshotProgress::new(0, 3)).await;
    let mut keys: Vec<i64> = pages
        .iter()
        .flat_map(|p| p.items.iter().map(sort_key))
        .collect();
    keys.sort();
    assert_eq!(keys, (0..ITEMS).collect::<Vec<_>>());
    for page in &pages {
        assert!(page.read_from_ms <= page.read_to_ms);
    }
    // Each segment ends with Done, once.
    for segment in 0..3 {
        let ends: Vec<_> = pages
            .iter()
            .filter(|p| p.segment == segment && p.then == SegmentProgress::Done)
            .collect();
        assert_eq!(ends.len(), 1, "segment {segment}");
    }

    // Segment 0 done; segment 1 after its first page; segment 2 not begun.
    let first_of_1 = pages.iter().find(|p| p.segment == 1).unwrap();
    let mut progress = SnapshotProgress::new(0, 3);
    progress.segments.insert(0, SegmentProgress::Done);
    progress.segments.insert(1, first_of_1.then.clone());
    let resumed = run(progress).await;
    let mut left: Vec<i64> = resumed
        .iter()
        .flat_map(|p| p.items.iter().map(sort_key))
        .collect();
    left.sort();
    let mut expected: Vec<i64> = pages
        .iter()
        .filter(|p| p.segment == 2 || (p.segment == 1 && !std::ptr::eq(*p, first_of_1)))
        .flat_map(|p| p.items.iter().map(sort_key))
        .collect();
    expected.sort();
    assert_eq!(left, expected);
    assert!(resumed.iter().all(|p| p.segment != 0));
}

/// Before a snapshot: the stream must carry new images, and DescribeTable
/// and Scan must be allowed; each refusal is one line naming what to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_names_a_missing_image_or_permission() {
    use awsdynamodb_source::SnapshotCheckError;
    let table = table_of_items().await;
    let ddb = DynamoDbLocal::shared().await;
    let scanner = TableScanner::new(table.dynamodb().clone(), table.name(), 1, None, None);
    let facts = scanner.check().await.unwrap();
    assert!(facts.estimated_items >= 0);

    for view in [StreamViewType::KeysOnly, StreamViewType::OldImage] {
        let other = TestTable::create(ddb, KeyShape::Hash, view.clone())
            .await
            .unwrap();
        let scanner = TableScanner::new(other.dynamodb().clone(), other.name(), 1, None, None);
        let err = scanner.check().await.unwrap_err();
        assert!(
            matches!(err, SnapshotCheckError::NoNewImages { .. }),
            "{err}"
        );
        let line = err.to_string();
        assert!(
            line.contains(view.as_str()) && line.contains("NEW_IMAGE or NEW_AND_OLD_IMAGES"),
            "{line}"
        );
    }

    for (op, action) in [
        (Op::DescribeTable, "dynamodb:DescribeTable"),
        (Op::Scan, "dynamodb:Scan"),
    ] {
        let proxy = FaultProxy::start(ddb.endpoint()).await.unwrap();
        proxy.fail_ratio(op, 1.0, Fault::AccessDenied);
        let client = dynamodb_client(&proxy.endpoint(), Retries::Disabled);
        let scanner = TableScanner::new(client, table.name(), 1, None, None);
        let line = scanner.check().await.unwrap_err().to_string();
        assert!(
            line.starts_with(&format!(
                "SNAPSHOT=initial: permission denied: {action} on table"
            )),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }
}
