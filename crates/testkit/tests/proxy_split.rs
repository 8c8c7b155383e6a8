//! FaultProxy's virtual shard lineage against DynamoDB Local: splits, DescribeStream paging
//! and ShardFilter, iterator types on virtual shards, and consistency with concurrent writes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{
    Record, Shard, ShardFilter, ShardFilterType, ShardIteratorType,
};
use awsdynamodb_testkit::{
    AttributeValue, DynamoDbLocal, FaultProxy, KeyShape, Retries, ShardRead, SplitInfo,
    StreamViewType, TestTable, describe_all_shards, items, read_stream, record_sequence_number,
};

type Client = aws_sdk_dynamodbstreams::Client;

fn seq_key(s: &str) -> (usize, String) {
    let t = s.trim_start_matches('0');
    (t.len(), t.to_string())
}

fn item_key(r: &Record) -> String {
    let keys = r.dynamodb().unwrap().keys().unwrap();
    let mut parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    parts.sort();
    parts.join(",")
}

async fn setup(shape: KeyShape) -> (TestTable, FaultProxy, String, Client) {
    let local = DynamoDbLocal::shared().await;
    let table = TestTable::create(local, shape, StreamViewType::NewAndOldImages)
        .await
        .unwrap();
    let proxy = FaultProxy::start(local.endpoint()).await.unwrap();
    let arn = table.stream_arns().await.unwrap().remove(0);
    let client = proxy.streams_client(Retries::Disabled);
    (table, proxy, arn, client)
}

/// A round of writes: for each of `n` items a put, an update, and (every third) a delete.
async fn write_round(table: &TestTable, round: i64, n: usize) {
    for i in 0..n {
        let key = table.key(&format!("item-{i}"), Some(i as i64 % 3));
        table
            .put(items::with_value(key.clone(), round * 100))
            .await
            .unwrap();
        table
            .update_set(
                key.clone(),
                &[("v", AttributeValue::N((round * 100 + 1).to_string()))],
            )
            .await
            .unwrap();
        if i % 3 == round as usize % 3 {
            table.delete(key).await.unwrap();
        }
    }
}

fn shard_range(s: &Shard) -> (String, Option<String>) {
    let r = s.sequence_number_range().unwrap();
    (
        r.starting_sequence_number().unwrap().to_string(),
        r.ending_sequence_number().map(str::to_string),
    )
}

/// Checks a full read of a split stream against the records read directly from DynamoDB Local.
fn check_tree(reads: &[ShardRead], direct: &[Record], splits: &[SplitInfo]) {
    // Every real record exactly once, unchanged.
    let mut all: Vec<Record> = reads.iter().flat_map(|r| r.records.clone()).collect();
    let seqs: Vec<&str> = all.iter().map(record_sequence_number).collect();
    let unique: HashSet<&str> = seqs.iter().copied().collect();
    assert_eq!(unique.len(), seqs.len(), "a record appeared twice");
    all.sort_by_key(|r| seq_key(record_sequence_number(r)));
    assert_eq!(all.len(), direct.len());
    assert!(all == direct, "records differ from DynamoDB Local's");

    // Per-item order in read order (parents were read before children).
    let mut last: HashMap<String, (usize, String)> = HashMap::new();
    for r in reads.iter().flat_map(|r| r.records.iter()) {
        let s = seq_key(record_sequence_number(r));
        if let Some(prev) = last.insert(item_key(r), s.clone()) {
            assert!(prev < s, "per-item order broken for {}", item_key(r));
        }
    }

    // Every closed shard ended; every record is in its shard's range.
    let index: HashMap<&str, &ShardRead> = reads
        .iter()
        .map(|r| (r.shard.shard_id().unwrap(), r))
        .collect();
    for read in reads {
        let (start, end) = shard_range(&read.shard);
        if end.is_some() {
            assert!(
                read.ended,
                "closed shard {} did not end",
                read.shard.shard_id().unwrap()
            );
        } else {
            assert!(
                !read.ended,
                "open shard {} ended",
                read.shard.shard_id().unwrap()
            );
        }
        for r in &read.records {
            let s = seq_key(record_sequence_number(r));
            assert!(s >= seq_key(&start), "record before its shard's start");
            if let Some(end) = &end {
                assert!(s <= seq_key(end), "record after its shard's end");
            }
        }
        if let Some(parent) = read.shard.parent_shard_id() {
            assert!(index.contains_key(parent), "unknown parent {parent}");
        }
    }

    // Each item's records of one generation are in one shard, a child of the shard that has
    // its records of the previous generation.
    let generation_of: HashMap<String, usize> = splits
        .iter()
        .flat_map(|s| {
            s.child_shard_ids
                .iter()
                .map(move |id| (id.clone(), s.generation))
        })
        .collect();
    let mut item_shards: BTreeMap<(String, usize), HashSet<String>> = BTreeMap::new();
    for read in reads {
        let id = read.shard.shard_id().unwrap().to_string();
        let generation = generation_of.get(&id).copied().unwrap_or(0);
        for r in &read.records {
            item_shards
                .entry((item_key(r), generation))
                .or_default()
                .insert(id.clone());
        }
    }
    for ((item, generation), shards) in &item_shards {
        assert_eq!(
            shards.len(),
            1,
            "{item} spread over {shards:?} in generation {generation}"
        );
        if *generation >= 1
            && let Some(parent_shards) = item_shards.get(&(item.clone(), generation - 1))
        {
            let shard = shards.iter().next().unwrap();
            let parent = index[shard.as_str()].shard.parent_shard_id().unwrap();
            assert!(
                parent_shards.contains(parent),
                "{item}: child not under its parent"
            );
        }
    }
}

#[tokio::test]
async fn split_twice_then_read_the_whole_tree() {
    let (table, proxy, arn, client) = setup(KeyShape::HashRange).await;
    write_round(&table, 1, 12).await;
    let first = proxy.split(&arn, 2).await.unwrap();
    assert_eq!(first.generation, 1);
    assert_eq!(first.closed_shard_ids.len(), 1);
    assert_eq!(first.child_shard_ids.len(), 2);
    write_round(&table, 2, 12).await;
    let second = proxy.split(&arn, 3).await.unwrap();
    assert_eq!(second.generation, 2);
    assert_eq!(second.closed_shard_ids, first.child_shard_ids);
    assert_eq!(second.child_shard_ids.len(), 6);
    write_round(&table, 3, 12).await;

    let reads = read_stream(&client, &arn).await.unwrap();
    assert_eq!(reads.len(), 9);
    let direct = table.read_all_records(&arn).await.unwrap();
    check_tree(&reads, &direct, &[first.clone(), second.clone()]);

    // The boundaries: generation 0 ends at the first split's boundary, and so on.
    let by_id: HashMap<String, &ShardRead> = reads
        .iter()
        .map(|r| (r.shard.shard_id().unwrap().to_string(), r))
        .collect();
    let real = &by_id[&first.closed_shard_ids[0]];
    assert_eq!(
        shard_range(&real.shard).1.as_deref(),
        Some(first.boundary.as_str())
    );
    assert!(real.shard.parent_shard_id().is_none());
    for id in &first.child_shard_ids {
        assert_eq!(
            shard_range(&by_id[id].shard).1.as_deref(),
            Some(second.boundary.as_str())
        );
        assert_eq!(
            by_id[id].shard.parent_shard_id(),
            Some(first.closed_shard_ids[0].as_str())
        );
    }
    // Partitioning really splits: records land in several children of each generation.
    let non_empty = |ids: &[String]| {
        ids.iter()
            .filter(|id| !by_id[*id].records.is_empty())
            .count()
    };
    assert_eq!(non_empty(&first.child_shard_ids), 2);
    assert!(non_empty(&second.child_shard_ids) >= 3);
    // Every record of the real shard is accounted for across generations.
    let gen_count = |ids: &[String]| ids.iter().map(|id| by_id[id].records.len()).sum::<usize>();
    assert_eq!(
        real.records.len() + gen_count(&first.child_shard_ids) + gen_count(&second.child_shard_ids),
        direct.len()
    );
    assert!(!real.records.is_empty());
}

#[tokio::test]
async fn split_of_an_empty_stream_and_of_an_idle_generation() {
    let (table, proxy, arn, client) = setup(KeyShape::Hash).await;
    let first = proxy.split(&arn, 2).await.unwrap();
    let second = proxy.split(&arn, 1).await.unwrap();
    assert_eq!(second.child_shard_ids.len(), 2);
    write_round(&table, 1, 6).await;
    let reads = read_stream(&client, &arn).await.unwrap();
    assert_eq!(reads.len(), 5);
    let direct = table.read_all_records(&arn).await.unwrap();
    check_tree(&reads, &direct, &[first.clone(), second.clone()]);
    // Both boundaries lie before the real shard's first record; AFTER them still works.
    assert_eq!(first.boundary, second.boundary);
    let mut after_boundary = 0;
    for id in &second.child_shard_ids {
        let it = client
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(id)
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(&second.boundary)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let out = client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .unwrap();
        after_boundary += out.records().len();
    }
    assert_eq!(after_boundary, direct.len());
    let in_last: usize = reads
        .iter()
        .filter(|r| {
            second
                .child_shard_ids
                .contains(&r.shard.shard_id().unwrap().to_string())
        })
        .map(|r| r.records.len())
        .sum();
    assert_eq!(in_last, direct.len());
}

#[tokio::test]
async fn describe_stream_pages_over_the_virtual_list() {
    let (table, proxy, arn, client) = setup(KeyShape::Hash).await;
    write_round(&table, 1, 3).await;
    proxy.split(&arn, 2).await.unwrap();
    proxy.split(&arn, 3).await.unwrap();
    let all = describe_all_shards(&client, &arn).await.unwrap();
    assert_eq!(all.len(), 9);
    let ids: Vec<String> = all
        .iter()
        .map(|s| s.shard_id().unwrap().to_string())
        .collect();

    proxy.describe_page_size(Some(2));
    let mut pages = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = client
            .describe_stream()
            .stream_arn(&arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .unwrap();
        let d = out.stream_description().unwrap();
        pages.push(
            d.shards()
                .iter()
                .map(|s| s.shard_id().unwrap().to_string())
                .collect::<Vec<_>>(),
        );
        match d.last_evaluated_shard_id() {
            Some(last) => {
                assert_eq!(Some(last), pages.last().unwrap().last().map(String::as_str));
                start = Some(last.to_string());
            }
            None => break,
        }
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [2, 2, 2, 2, 1]
    );
    assert_eq!(pages.concat(), ids);
    // The SDK helper pages too and gets the same list.
    let paged: Vec<String> = describe_all_shards(&client, &arn)
        .await
        .unwrap()
        .iter()
        .map(|s| s.shard_id().unwrap().to_string())
        .collect();
    assert_eq!(paged, ids);

    // The request's Limit applies when it is smaller.
    proxy.describe_page_size(None);
    let out = client
        .describe_stream()
        .stream_arn(&arn)
        .limit(4)
        .send()
        .await
        .unwrap();
    let d = out.stream_description().unwrap();
    assert_eq!(d.shards().len(), 4);
    assert_eq!(d.last_evaluated_shard_id(), Some(ids[3].as_str()));
    // Starting after the last shard: an empty last page.
    let out = client
        .describe_stream()
        .stream_arn(&arn)
        .exclusive_start_shard_id(ids.last().unwrap())
        .send()
        .await
        .unwrap();
    let d = out.stream_description().unwrap();
    assert!(d.shards().is_empty());
    assert!(d.last_evaluated_shard_id().is_none());
    // Everything else in the description is upstream's.
    assert_eq!(d.stream_arn(), Some(arn.as_str()));
    assert_eq!(d.table_name(), Some(table.name()));
}

#[tokio::test]
async fn shard_filter_lists_children() {
    let (table, proxy, arn, client) = setup(KeyShape::Hash).await;
    write_round(&table, 1, 3).await;
    let first = proxy.split(&arn, 2).await.unwrap();
    let second = proxy.split(&arn, 3).await.unwrap();
    let children = |parent: String| {
        let client = client.clone();
        let arn = arn.clone();
        async move {
            let out = client
                .describe_stream()
                .stream_arn(&arn)
                .shard_filter(
                    ShardFilter::builder()
                        .r#type(ShardFilterType::ChildShards)
                        .shard_id(parent)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            out.stream_description()
                .unwrap()
                .shards()
                .iter()
                .map(|s| s.shard_id().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        children(first.closed_shard_ids[0].clone()).await,
        first.child_shard_ids
    );
    let c = &second.child_shard_ids;
    assert_eq!(
        children(first.child_shard_ids[0].clone()).await,
        [c[0].clone(), c[2].clone(), c[4].clone()]
    );
    assert_eq!(
        children(first.child_shard_ids[1].clone()).await,
        [c[1].clone(), c[3].clone(), c[5].clone()]
    );
    assert!(children(c[0].clone()).await.is_empty());
    // Like DynamoDB Local: the filter is ignored.
    proxy.honour_shard_filter(false);
    assert_eq!(children(first.closed_shard_ids[0].clone()).await.len(), 9);
}

async fn shard_iterator(
    client: &Client,
    arn: &str,
    shard: &str,
    kind: ShardIteratorType,
    seq: Option<&str>,
) -> String {
    client
        .get_shard_iterator()
        .stream_arn(arn)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_sequence_number(seq.map(str::to_string))
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap()
}

#[tokio::test]
async fn latest_on_a_closed_shard_is_finished_and_on_open_shards_sees_new_records() {
    let (table, proxy, arn, client) = setup(KeyShape::Hash).await;
    write_round(&table, 1, 3).await;
    let split = proxy.split(&arn, 2).await.unwrap();
    let it = shard_iterator(
        &client,
        &arn,
        &split.closed_shard_ids[0],
        ShardIteratorType::Latest,
        None,
    )
    .await;
    let out = client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap();
    assert!(out.records().is_empty());
    assert!(out.next_shard_iterator().is_none());

    let mut iterators = Vec::new();
    for id in &split.child_shard_ids {
        iterators.push(shard_iterator(&client, &arn, id, ShardIteratorType::Latest, None).await);
    }
    table
        .put(items::with_value(items::key("late"), 7))
        .await
        .unwrap();
    let mut found = 0;
    for it in &iterators {
        let out = client
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .unwrap();
        assert!(out.next_shard_iterator().is_some(), "open shards go on");
        found += out.records().len();
    }
    assert_eq!(found, 1, "the new record shows in exactly one open shard");
}

#[tokio::test]
async fn sequence_number_iterators_on_virtual_shards() {
    let (table, proxy, arn, client) = setup(KeyShape::Hash).await;
    write_round(&table, 1, 4).await;
    let split = proxy.split(&arn, 2).await.unwrap();
    write_round(&table, 2, 4).await;
    let reads = read_stream(&client, &arn).await.unwrap();
    let child = reads
        .iter()
        .find(|r| {
            split
                .child_shard_ids
                .contains(&r.shard.shard_id().unwrap().to_string())
                && r.records.len() >= 2
        })
        .expect("a child with two records");
    let id = child.shard.shard_id().unwrap();
    let seqs: Vec<&str> = child.records.iter().map(record_sequence_number).collect();

    let at = shard_iterator(
        &client,
        &arn,
        id,
        ShardIteratorType::AtSequenceNumber,
        Some(seqs[1]),
    )
    .await;
    let out = client
        .get_records()
        .shard_iterator(&at)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = out.records().iter().map(record_sequence_number).collect();
    assert_eq!(got, seqs[1..]);

    let after = shard_iterator(
        &client,
        &arn,
        id,
        ShardIteratorType::AfterSequenceNumber,
        Some(seqs[0]),
    )
    .await;
    let out = client
        .get_records()
        .shard_iterator(&after)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = out.records().iter().map(record_sequence_number).collect();
    assert_eq!(got, seqs[1..]);

    // AFTER the boundary is the child's TRIM_HORIZON.
    let after = shard_iterator(
        &client,
        &arn,
        id,
        ShardIteratorType::AfterSequenceNumber,
        Some(&split.boundary),
    )
    .await;
    let out = client
        .get_records()
        .shard_iterator(&after)
        .send()
        .await
        .unwrap();
    let got: Vec<&str> = out.records().iter().map(record_sequence_number).collect();
    assert_eq!(got, seqs);

    // An iterator on the closed parent, after its last record: finished at once.
    let parent = &split.closed_shard_ids[0];
    let it = shard_iterator(
        &client,
        &arn,
        parent,
        ShardIteratorType::AfterSequenceNumber,
        Some(&split.boundary),
    )
    .await;
    let out = client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap();
    assert!(out.records().is_empty());
    assert!(out.next_shard_iterator().is_none());

    // A virtual shard that does not exist.
    let err = client
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(format!(
            "shardId-v9-0-{}",
            parent.trim_start_matches("shardId-")
        ))
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn an_old_iterator_on_the_parent_stops_at_the_boundary() {
    let (table, proxy, arn, client) = setup(KeyShape::Hash).await;
    let shards = describe_all_shards(&client, &arn).await.unwrap();
    let real = shards[0].shard_id().unwrap().to_string();
    // A reader on generation 0 before any split, caught up. (Its iterator is taken once the
    // shard has a record: DynamoDB Local answers TrimmedDataAccessException to an iterator
    // taken on an empty shard once another table's write used the shard's starting number.)
    write_round(&table, 1, 3).await;
    let mut it = shard_iterator(&client, &arn, &real, ShardIteratorType::TrimHorizon, None).await;
    let out = client
        .get_records()
        .shard_iterator(&it)
        .send()
        .await
        .unwrap();
    let mut parent_records = out.records().to_vec();
    it = out.next_shard_iterator().unwrap().to_string();
    write_round(&table, 2, 3).await;
    let split = proxy.split(&arn, 2).await.unwrap();
    write_round(&table, 3, 3).await;
    // The old reader gets the rest up to the boundary, then the shard ends.
    loop {
        let out = client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .unwrap();
        parent_records.extend(out.records().iter().cloned());
        match out.next_shard_iterator() {
            Some(next) => it = next.to_string(),
            None => break,
        }
    }
    let direct = table.read_all_records(&arn).await.unwrap();
    let boundary = seq_key(&split.boundary);
    let expected: Vec<Record> = direct
        .iter()
        .filter(|r| seq_key(record_sequence_number(r)) <= boundary)
        .cloned()
        .collect();
    assert_eq!(parent_records, expected);
    assert!(direct.len() > expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_during_concurrent_writes_and_reads_loses_and_repeats_nothing() {
    let (table, proxy, arn, client) = setup(KeyShape::Hash).await;
    let real = describe_all_shards(&client, &arn).await.unwrap()[0]
        .shard_id()
        .unwrap()
        .to_string();
    let written = Arc::new(AtomicUsize::new(0));
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(0usize);
    let writer = {
        let table = table.clone();
        let written = written.clone();
        tokio::spawn(async move {
            for i in 0..120 {
                table
                    .put(items::with_value(items::key(&format!("w{}", i % 17)), i))
                    .await
                    .unwrap();
                written.store(i as usize + 1, Ordering::SeqCst);
                let _ = progress_tx.send(i as usize + 1);
            }
        })
    };
    // A reader following generation 0 while the writes and the split happen (from the first
    // record on: see an_old_iterator_on_the_parent_stops_at_the_boundary).
    progress_rx.wait_for(|n| *n >= 1).await.unwrap();
    let reader = {
        let client = client.clone();
        let arn = arn.clone();
        tokio::spawn(async move {
            let mut it =
                shard_iterator(&client, &arn, &real, ShardIteratorType::TrimHorizon, None).await;
            let mut records = Vec::new();
            loop {
                let out = client
                    .get_records()
                    .shard_iterator(&it)
                    .send()
                    .await
                    .unwrap();
                records.extend(out.records().iter().cloned());
                match out.next_shard_iterator() {
                    Some(next) => it = next.to_string(),
                    None => return records,
                }
                // The reader's poll interval.
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    progress_rx.wait_for(|n| *n >= 40).await.unwrap();
    let split = proxy.split(&arn, 2).await.unwrap();
    writer.await.unwrap();
    let parent_records = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("the generation 0 reader finished")
        .unwrap();
    let boundary = seq_key(&split.boundary);
    assert!(
        parent_records
            .iter()
            .all(|r| seq_key(record_sequence_number(r)) <= boundary),
        "the parent handed out a record past the boundary"
    );
    let mut children = Vec::new();
    for id in &split.child_shard_ids {
        let mut it = shard_iterator(&client, &arn, id, ShardIteratorType::TrimHorizon, None).await;
        loop {
            let out = client
                .get_records()
                .shard_iterator(&it)
                .send()
                .await
                .unwrap();
            if out.records().is_empty() {
                break;
            }
            children.extend(out.records().iter().cloned());
            it = out.next_shard_iterator().unwrap().to_string();
        }
    }
    let mut all: Vec<Record> = parent_records.into_iter().chain(children).collect();
    all.sort_by_key(|r| seq_key(record_sequence_number(r)));
    let direct = table.read_all_records(&arn).await.unwrap();
    assert_eq!(written.load(Ordering::SeqCst), 120);
    assert_eq!(direct.len(), 120);
    assert!(
        all == direct,
        "{} records through the proxy, {} direct",
        all.len(),
        direct.len()
    );
}

#[tokio::test]
async fn disabled_stream_closes_and_cannot_split() {
    let (table, proxy, arn, client) = setup(KeyShape::Hash).await;
    write_round(&table, 1, 2).await;
    proxy.split(&arn, 2).await.unwrap();
    write_round(&table, 2, 2).await;
    table.disable_stream().await.unwrap();
    let err = proxy.split(&arn, 2).await.unwrap_err();
    assert!(format!("{err:#}").contains("closed"), "{err:#}");
    // The last generation is closed where the real shard closed, and each shard finishes.
    let reads = read_stream(&client, &arn).await.unwrap();
    assert_eq!(reads.len(), 3);
    for r in &reads {
        assert!(shard_range(&r.shard).1.is_some());
        assert!(r.ended, "{} did not end", r.shard.shard_id().unwrap());
    }
    let direct = table.read_all_records(&arn).await.unwrap();
    let through: usize = reads.iter().map(|r| r.records.len()).sum();
    assert_eq!(through, direct.len());
    // A new stream: a new lineage, unsplit.
    table.enable_stream(StreamViewType::KeysOnly).await.unwrap();
    let arns = table.stream_arns().await.unwrap();
    assert_eq!(arns.len(), 2);
    assert_eq!(arns[1], arn);
    assert_eq!(
        describe_all_shards(&client, &arns[0]).await.unwrap().len(),
        1
    );
}
