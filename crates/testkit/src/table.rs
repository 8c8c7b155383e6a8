//! Test tables in DynamoDB Local: creation with a stream, writes, stream switching, and a
//! reference reader that returns what a correct adapter must deliver.
//!
//! [`TestTable`] owns one uniquely named table; [`items`] builds keys and items (including one
//! with every attribute type); [`read_stream`] reads every shard of a stream (parents before
//! children) with a plain SDK client, against DynamoDB Local or a [`crate::FaultProxy`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, TableStatus,
};
pub use aws_sdk_dynamodb::types::{AttributeValue, StreamViewType};
use aws_sdk_dynamodbstreams::types::{Record, Shard, ShardIteratorType};

use crate::DynamoDbLocal;
use crate::proxy::seq::SeqNo;

/// An item or a key, as the DynamoDB SDK takes it.
pub type Item = HashMap<String, AttributeValue>;

/// The key schema of a [`TestTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyShape {
    /// Hash key `pk` (S).
    Hash,
    /// Hash key `pk` (S) and range key `sk` (N).
    HashRange,
}

impl KeyShape {
    /// The hash key attribute name.
    pub const HASH_KEY: &'static str = "pk";
    /// The range key attribute name.
    pub const RANGE_KEY: &'static str = "sk";
}

static TABLE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A uniquely named table with a stream, in DynamoDB Local.
#[derive(Debug, Clone)]
pub struct TestTable {
    name: String,
    arn: String,
    key_shape: KeyShape,
    ddb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
}

impl TestTable {
    /// Creates a table named `t<pid>-<counter>-<millis>` with its stream enabled (`view`),
    /// and waits until it is ACTIVE.
    pub async fn create(
        local: &DynamoDbLocal,
        key_shape: KeyShape,
        view: StreamViewType,
    ) -> Result<TestTable> {
        Self::create_at(local.endpoint(), key_shape, view).await
    }

    /// Like [`TestTable::create`], for any DynamoDB Local endpoint.
    pub async fn create_at(
        endpoint: &str,
        key_shape: KeyShape,
        view: StreamViewType,
    ) -> Result<TestTable> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let name = format!(
            "t{}-{}-{}",
            std::process::id(),
            TABLE_COUNTER.fetch_add(1, Ordering::Relaxed),
            millis
        );
        Self::create_named(endpoint, name, key_shape, view).await
    }

    /// Creates the table `name` with its stream enabled (`view`) and waits until it is
    /// ACTIVE. Fails when it exists.
    pub async fn create_named(
        endpoint: &str,
        name: String,
        key_shape: KeyShape,
        view: StreamViewType,
    ) -> Result<TestTable> {
        let ddb = crate::dynamodb_client(endpoint, crate::Retries::Standard);
        let streams = crate::streams_client(endpoint, crate::Retries::Standard);
        let mut req = ddb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(KeyShape::HASH_KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(KeyShape::HASH_KEY)
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(view)
                    .build()?,
            );
        if key_shape == KeyShape::HashRange {
            req = req
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(KeyShape::RANGE_KEY)
                        .attribute_type(ScalarAttributeType::N)
                        .build()?,
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(KeyShape::RANGE_KEY)
                        .key_type(KeyType::Range)
                        .build()?,
                );
        }
        let out = req
            .send()
            .await
            .with_context(|| format!("CreateTable {name}"))?;
        let arn = out
            .table_description()
            .and_then(|d| d.table_arn())
            .ok_or_else(|| anyhow!("CreateTable {name} returned no TableArn"))?
            .to_string();
        let table = TestTable {
            name,
            arn,
            key_shape,
            ddb,
            streams,
        };
        table.wait_active().await?;
        Ok(table)
    }

    /// The table name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table ARN (`arn:aws:dynamodb:ddblocal:000000000000:table/NAME`).
    pub fn arn(&self) -> &str {
        &self.arn
    }

    /// The key schema.
    pub fn key_shape(&self) -> KeyShape {
        self.key_shape
    }

    /// The DynamoDB client this table writes with.
    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.ddb
    }

    /// The key of item `pk` (and `sk` for [`KeyShape::HashRange`]; 0 when `None`).
    pub fn key(&self, pk: &str, sk: Option<i64>) -> Item {
        match self.key_shape {
            KeyShape::Hash => items::key(pk),
            KeyShape::HashRange => items::key_with_range(pk, &sk.unwrap_or(0).to_string()),
        }
    }

    /// PutItem.
    pub async fn put(&self, item: Item) -> Result<()> {
        self.ddb
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .with_context(|| format!("PutItem into {}", self.name))?;
        Ok(())
    }

    /// Changes `item_count` items round-robin at `rate` writes a second, `changes` writes in all,
    /// or fewer if `stop` fires first: the first write of item `n` (`pk` `item-n`, `sk` `n`)
    /// puts it with every attribute type, later ones set `v` to the write's index. Writes to
    /// different items overlap, so the rate holds whatever one write takes; each item's writes
    /// stay in order. Returns the writes made and their rate per second.
    pub async fn write_round_robin(
        self: std::sync::Arc<Self>,
        item_count: usize,
        rate: u64,
        changes: usize,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<(usize, f64)> {
        let started = tokio::time::Instant::now();
        let mut pace = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
        let mut last_of_item: Vec<Option<tokio::task::JoinHandle<Result<()>>>> =
            (0..item_count).map(|_| None).collect();
        let mut made = 0;
        for i in 0..changes {
            tokio::select! {
                _ = pace.tick() => {}
                _ = stop.cancelled() => break,
            }
            let n = i % item_count;
            let previous = last_of_item[n].take();
            let table = self.clone();
            last_of_item[n] = Some(tokio::spawn(async move {
                if let Some(previous) = previous {
                    previous.await??;
                }
                let key = table.key(&format!("item-{n}"), Some(n as i64));
                if i < item_count {
                    table.put(items::every_type(key)).await
                } else {
                    table
                        .update_set(key, &[("v", AttributeValue::N(i.to_string()))])
                        .await
                }
            }));
            made += 1;
        }
        for write in last_of_item.into_iter().flatten() {
            write.await??;
        }
        Ok((made, made as f64 / started.elapsed().as_secs_f64()))
    }

    /// UpdateItem with `SET #n0 = :v0, #n1 = :v1, ...` for each `(attribute, value)`.
    pub async fn update_set(&self, key: Item, sets: &[(&str, AttributeValue)]) -> Result<()> {
        if sets.is_empty() {
            bail!("update_set needs at least one attribute");
        }
        let mut req = self
            .ddb
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key));
        let mut clauses = Vec::new();
        for (i, (name, value)) in sets.iter().enumerate() {
            clauses.push(format!("#n{i} = :v{i}"));
            req = req
                .expression_attribute_names(format!("#n{i}"), *name)
                .expression_attribute_values(format!(":v{i}"), value.clone());
        }
        req.update_expression(format!("SET {}", clauses.join(", ")))
            .send()
            .await
            .with_context(|| format!("UpdateItem in {}", self.name))?;
        Ok(())
    }

    /// UpdateItem with any update expression.
    pub async fn update(
        &self,
        key: Item,
        expression: &str,
        names: HashMap<String, String>,
        values: Item,
    ) -> Result<()> {
        self.ddb
            .update_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .update_expression(expression)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .send()
            .await
            .with_context(|| format!("UpdateItem in {}", self.name))?;
        Ok(())
    }

    /// DeleteItem.
    pub async fn delete(&self, key: Item) -> Result<()> {
        self.ddb
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .send()
            .await
            .with_context(|| format!("DeleteItem in {}", self.name))?;
        Ok(())
    }

    /// Disables the stream (DynamoDB Local closes its shard).
    pub async fn disable_stream(&self) -> Result<()> {
        self.ddb
            .update_table()
            .table_name(&self.name)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(false)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("UpdateTable {} (disable stream)", self.name))?;
        self.wait_active().await
    }

    /// Enables the stream again: a new stream ARN.
    pub async fn enable_stream(&self, view: StreamViewType) -> Result<()> {
        self.ddb
            .update_table()
            .table_name(&self.name)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(view)
                    .build()?,
            )
            .send()
            .await
            .with_context(|| format!("UpdateTable {} (enable stream)", self.name))?;
        self.wait_active().await
    }

    /// DeleteTable.
    pub async fn delete_table(&self) -> Result<()> {
        self.ddb
            .delete_table()
            .table_name(&self.name)
            .send()
            .await
            .with_context(|| format!("DeleteTable {}", self.name))?;
        Ok(())
    }

    /// The table's stream ARNs from ListStreams, newest first.
    pub async fn stream_arns(&self) -> Result<Vec<String>> {
        let mut streams = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = self
                .streams
                .list_streams()
                .table_name(&self.name)
                .set_exclusive_start_stream_arn(start.take())
                .send()
                .await
                .with_context(|| format!("ListStreams {}", self.name))?;
            for s in out.streams() {
                if let Some(arn) = s.stream_arn() {
                    streams.push((
                        s.stream_label().unwrap_or_default().to_string(),
                        arn.to_string(),
                    ));
                }
            }
            match out.last_evaluated_stream_arn() {
                Some(last) => start = Some(last.to_string()),
                None => break,
            }
        }
        // Labels are timestamps (2026-11-24T01:04:05.905): newest sorts last.
        streams.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        Ok(streams.into_iter().map(|(_, arn)| arn).collect())
    }

    /// The current stream ARN from DescribeTable (`None` when the stream is disabled).
    pub async fn latest_stream_arn(&self) -> Result<Option<String>> {
        let out = self
            .ddb
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
            .with_context(|| format!("DescribeTable {}", self.name))?;
        let table = out
            .table()
            .ok_or_else(|| anyhow!("DescribeTable without Table"))?;
        let enabled = table
            .stream_specification()
            .is_some_and(|s| s.stream_enabled());
        Ok(enabled
            .then(|| table.latest_stream_arn().map(str::to_string))
            .flatten())
    }

    /// Every record of every shard of `stream_arn`, TRIM_HORIZON to the current end, read
    /// straight from DynamoDB Local and sorted by sequence number: what should arrive.
    pub async fn read_all_records(&self, stream_arn: &str) -> Result<Vec<Record>> {
        let shards = read_stream(&self.streams, stream_arn).await?;
        let mut records: Vec<Record> = shards.into_iter().flat_map(|s| s.records).collect();
        records.sort_by_key(|r| SeqNo::new(record_sequence_number(r)));
        Ok(records)
    }

    /// Every item of the table now (strongly consistent Scan pages).
    pub async fn scan_all(&self) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .with_context(|| format!("Scan {}", self.name))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    async fn wait_active(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self
                .ddb
                .describe_table()
                .table_name(&self.name)
                .send()
                .await
                .with_context(|| format!("DescribeTable {}", self.name))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("table {} did not become ACTIVE within 30 s", self.name);
            }
            // DynamoDB Local is ACTIVE at once; this only runs against slower servers.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The sequence number of a stream record ("" when absent).
pub fn record_sequence_number(record: &Record) -> &str {
    record
        .dynamodb()
        .and_then(|d| d.sequence_number())
        .unwrap_or_default()
}

/// One shard as [`read_stream`] read it.
#[derive(Debug, Clone)]
pub struct ShardRead {
    /// The shard as DescribeStream listed it.
    pub shard: Shard,
    /// Its records, in the order GetRecords returned them.
    pub records: Vec<Record>,
    /// True when the last GetRecords had no NextShardIterator (the shard is finished).
    pub ended: bool,
    /// GetRecords calls made.
    pub calls: u32,
}

/// Reads every shard of `stream_arn` from TRIM_HORIZON, each parent before its children.
///
/// A closed shard (one with an EndingSequenceNumber) is read until GetRecords returns no
/// NextShardIterator; an open one until a page comes back empty (DynamoDB Local returns
/// everything it has, up to 1000 records per page, so an empty page means "caught up"; through
/// a [`crate::FaultProxy`] an open virtual shard can also show an empty page in the middle
/// when more than 1000 records of other partitions pass by).
pub async fn read_stream(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
) -> Result<Vec<ShardRead>> {
    let shards = describe_all_shards(client, stream_arn).await?;
    let ids: HashSet<String> = shards
        .iter()
        .filter_map(|s| s.shard_id().map(str::to_string))
        .collect();
    // Parents first: a shard is ready when its parent is done or unknown.
    let mut pending = shards;
    let mut done: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    while !pending.is_empty() {
        let before = pending.len();
        let mut rest = Vec::new();
        for shard in pending {
            let ready = shard
                .parent_shard_id()
                .is_none_or(|p| !ids.contains(p) || done.contains(p));
            if ready {
                let read = read_shard(client, stream_arn, shard).await?;
                done.insert(read.shard.shard_id().unwrap_or_default().to_string());
                out.push(read);
            } else {
                rest.push(shard);
            }
        }
        if rest.len() == before {
            bail!("shard parent cycle in {stream_arn}");
        }
        pending = rest;
    }
    Ok(out)
}

/// DescribeStream, every page.
pub async fn describe_all_shards(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
) -> Result<Vec<Shard>> {
    let mut shards = Vec::new();
    let mut start: Option<String> = None;
    for _ in 0..10_000 {
        let out = client
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .with_context(|| format!("DescribeStream {stream_arn}"))?;
        let desc = out
            .stream_description()
            .ok_or_else(|| anyhow!("DescribeStream without StreamDescription"))?;
        shards.extend(desc.shards().iter().cloned());
        match desc.last_evaluated_shard_id() {
            Some(last) => start = Some(last.to_string()),
            None => return Ok(shards),
        }
    }
    bail!("DescribeStream {stream_arn}: more than 10000 pages")
}

async fn read_shard(
    client: &aws_sdk_dynamodbstreams::Client,
    stream_arn: &str,
    shard: Shard,
) -> Result<ShardRead> {
    let shard_id = shard.shard_id().unwrap_or_default().to_string();
    let closed = shard
        .sequence_number_range()
        .and_then(|r| r.ending_sequence_number())
        .is_some();
    let mut iterator = client
        .get_shard_iterator()
        .stream_arn(stream_arn)
        .shard_id(&shard_id)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .with_context(|| format!("GetShardIterator {shard_id}"))?
        .shard_iterator
        .ok_or_else(|| anyhow!("GetShardIterator {shard_id}: no iterator"))?;
    let mut records = Vec::new();
    let mut calls = 0;
    let ended = loop {
        calls += 1;
        if calls > 100_000 {
            bail!("shard {shard_id}: more than 100000 GetRecords calls");
        }
        let out = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .with_context(|| format!("GetRecords {shard_id}"))?;
        let empty = out.records().is_empty();
        records.extend(out.records().iter().cloned());
        match out.next_shard_iterator() {
            None => break true,
            Some(_) if empty && !closed => break false,
            Some(next) => iterator = next.to_string(),
        }
    };
    Ok(ShardRead {
        shard,
        records,
        ended,
        calls,
    })
}

/// Keys and items for tests.
pub mod items {
    use super::{AttributeValue, Item, KeyShape};
    use aws_sdk_dynamodb::primitives::Blob;

    /// `{pk: S}`.
    pub fn key(pk: &str) -> Item {
        Item::from([(KeyShape::HASH_KEY.to_string(), AttributeValue::S(pk.into()))])
    }

    /// `{pk: S, sk: N}` (`sk` is a decimal number, as a string).
    pub fn key_with_range(pk: &str, sk: &str) -> Item {
        let mut k = key(pk);
        k.insert(KeyShape::RANGE_KEY.into(), AttributeValue::N(sk.into()));
        k
    }

    /// `key` plus one attribute `v` = N(`value`).
    pub fn with_value(key: Item, value: i64) -> Item {
        let mut item = key;
        item.insert("v".into(), AttributeValue::N(value.to_string()));
        item
    }

    /// `key` plus an attribute of every DynamoDB type, including a 38-digit number, binary
    /// with non-UTF-8 bytes, nested lists and maps, and strings that need JSON escaping.
    pub fn every_type(key: Item) -> Item {
        let mut item = key;
        let mut put = |name: &str, v: AttributeValue| {
            item.insert(name.to_string(), v);
        };
        put("s", AttributeValue::S("héllo \"wörld\"\n\t\\ 😀".into()));
        put(
            "n",
            AttributeValue::N("12345678901234567890123456789012345678".into()),
        );
        put(
            "n_frac",
            AttributeValue::N("-0.000000000000000000000000000000000001".into()),
        );
        put(
            "b",
            AttributeValue::B(Blob::new(vec![0u8, 1, 2, 0xfe, 0xff])),
        );
        put("bool", AttributeValue::Bool(true));
        put("null", AttributeValue::Null(true));
        put("ss", AttributeValue::Ss(vec!["a".into(), "b".into()]));
        put(
            "ns",
            AttributeValue::Ns(vec![
                "1".into(),
                "99999999999999999999999999999999999999".into(),
            ]),
        );
        put(
            "bs",
            AttributeValue::Bs(vec![Blob::new(vec![1u8]), Blob::new(vec![0xffu8, 0])]),
        );
        put(
            "l",
            AttributeValue::L(vec![
                AttributeValue::S("x".into()),
                AttributeValue::N("1.5".into()),
                AttributeValue::L(vec![AttributeValue::Bool(false)]),
            ]),
        );
        put(
            "m",
            AttributeValue::M(
                [
                    ("inner".to_string(), AttributeValue::S("y".into())),
                    (
                        "deep".to_string(),
                        AttributeValue::M(
                            [("z".to_string(), AttributeValue::Null(true))]
                                .into_iter()
                                .collect(),
                        ),
                    ),
                ]
                .into_iter()
                .collect(),
            ),
        );
        put("empty_s", AttributeValue::S(String::new()));
        item
    }
}
