//! Test doubles behind the engine's two small traits: a DynamoDB Streams
//! model behind `StreamsApi` (for what DynamoDB Local cannot do on demand:
//! lineage, expiry, trimming, throttling) and an in-process `Sink`.

#![allow(dead_code)]

pub mod schemas;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodbstreams::types::{AttributeValue, OperationType, Record, StreamRecord};
use aws_smithy_types::DateTime;
use awsdynamodb_source::test_support::CloudEvent;
use awsdynamodb_source::test_support::SequenceNumber;
use awsdynamodb_source::test_support::{
    ApiError, IteratorPosition, KeySchema, RecordsPage, ShardInfo, StreamDescription, StreamStatus,
    StreamSummary, StreamsApi,
};
use awsdynamodb_source::test_support::{
    Checkpointer, Checkpoints, Health, MemoryStore, Metrics, SendError, Sink,
};
use awsdynamodb_source::{Engine, EngineConfig};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Logs of the code under test, shown for failing tests (`RUST_LOG` picks).
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
}

/// One call the engine made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    ListStreams,
    Describe {
        start: Option<String>,
        children_of: Option<String>,
    },
    Iterator {
        shard: String,
        position: IteratorPosition,
    },
    GetRecords {
        shard: String,
    },
}

#[derive(Debug, Clone)]
pub struct FakeShard {
    pub id: String,
    pub parent: Option<String>,
    pub closed: bool,
    pub records: Vec<Record>,
}

#[derive(Debug, Clone)]
pub struct FakeStream {
    pub arn: String,
    pub label: String,
    pub status: StreamStatus,
    pub shards: Vec<FakeShard>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    List,
    Describe,
    Iterator,
    GetRecords,
}

#[derive(Default)]
pub struct State {
    pub streams: Vec<FakeStream>,
    /// Per operation, what the next calls answer: an error, or `None` for
    /// a normal answer; once empty, normal answers.
    pub faults: HashMap<Op, VecDeque<Option<ApiError>>>,
    pub calls: Vec<Call>,
    /// Records per GetRecords page.
    pub page_size: usize,
    /// DescribeStream page size.
    pub describe_page: usize,
    /// Answer the CHILD_SHARDS filter (else ignore it, as DynamoDB Local).
    pub honour_filter: bool,
    next_seq: u64,
}

/// A DynamoDB Streams model: streams, shards with parents, records with
/// sequence numbers, iterators as `shard|index` tokens.
#[derive(Clone, Default)]
pub struct FakeStreams {
    pub state: Arc<Mutex<State>>,
}

pub const TABLE_ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";

impl FakeStreams {
    pub fn new() -> Self {
        let f = FakeStreams::default();
        {
            let mut s = f.state.lock().unwrap();
            s.page_size = 3;
            s.describe_page = 100;
            s.honour_filter = true;
        }
        f
    }

    /// A stream with one open shard, `a`; returns the model and the stream ARN.
    pub fn with_one_shard() -> (FakeStreams, String) {
        let api = FakeStreams::new();
        let s = api.add_stream("2024-01-01T00:00:00.000");
        api.add_shard(&s, "a", None);
        (api, s)
    }

    pub fn add_stream(&self, label: &str) -> String {
        let arn = format!("{TABLE_ARN}/stream/{label}");
        self.state.lock().unwrap().streams.push(FakeStream {
            arn: arn.clone(),
            label: label.into(),
            status: StreamStatus::Enabled,
            shards: vec![],
        });
        arn
    }

    pub fn add_shard(&self, stream: &str, id: &str, parent: Option<&str>) {
        let mut s = self.state.lock().unwrap();
        let st = s.streams.iter_mut().find(|x| x.arn == stream).unwrap();
        st.shards.push(FakeShard {
            id: id.into(),
            parent: parent.map(Into::into),
            closed: false,
            records: vec![],
        });
    }

    pub fn close_shard(&self, stream: &str, id: &str) {
        let mut s = self.state.lock().unwrap();
        let st = s.streams.iter_mut().find(|x| x.arn == stream).unwrap();
        st.shards.iter_mut().find(|x| x.id == id).unwrap().closed = true;
    }

    pub fn set_status(&self, stream: &str, status: StreamStatus) {
        let mut s = self.state.lock().unwrap();
        s.streams
            .iter_mut()
            .find(|x| x.arn == stream)
            .unwrap()
            .status = status;
    }

    /// Appends a change of item `key` to a shard, created now; returns its
    /// event id.
    pub fn write(&self, stream: &str, shard: &str, key: &str, value: u32) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        self.write_at(stream, shard, key, value, now)
    }

    /// The same, created at `epoch_secs`.
    pub fn write_at(
        &self,
        stream: &str,
        shard: &str,
        key: &str,
        value: u32,
        epoch_secs: i64,
    ) -> String {
        let mut s = self.state.lock().unwrap();
        s.next_seq += 1;
        let seq = format!("{:021}", s.next_seq);
        let id = format!("ev-{}", s.next_seq);
        let record = Record::builder()
            .event_id(&id)
            .event_name(OperationType::Modify)
            .event_source("aws:dynamodb")
            .aws_region("us-east-1")
            .dynamodb(
                StreamRecord::builder()
                    .approximate_creation_date_time(DateTime::from_secs(epoch_secs))
                    .keys("pk", AttributeValue::S(key.into()))
                    .new_image("pk", AttributeValue::S(key.into()))
                    .new_image("v", AttributeValue::N(value.to_string()))
                    .sequence_number(seq)
                    .size_bytes(20)
                    .build(),
            )
            .build();
        let st = s.streams.iter_mut().find(|x| x.arn == stream).unwrap();
        st.shards
            .iter_mut()
            .find(|x| x.id == shard)
            .unwrap()
            .records
            .push(record);
        id
    }

    /// The next call of `op` answers `e`.
    pub fn fail(&self, op: Op, e: ApiError) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(op)
            .or_default()
            .push_back(Some(e));
    }

    /// The next call of `op` answers normally (to place a later fault).
    pub fn pass(&self, op: Op) {
        self.state
            .lock()
            .unwrap()
            .faults
            .entry(op)
            .or_default()
            .push_back(None);
    }

    pub fn remove_stream(&self, stream: &str) {
        self.state
            .lock()
            .unwrap()
            .streams
            .retain(|x| x.arn != stream);
    }

    pub fn count(&self, call: impl Fn(&Call) -> bool) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| call(c))
            .count()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    fn fault(s: &mut State, op: Op) -> Result<(), ApiError> {
        match s.faults.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(Some(e)) => Err(e),
            _ => Ok(()),
        }
    }
}

fn parse_token(t: &str) -> (String, String, usize) {
    let mut parts = t.split('|');
    let stream = parts.next().unwrap().to_owned();
    let shard = parts.next().unwrap().to_owned();
    let index = parts.next().unwrap().parse().unwrap();
    (stream, shard, index)
}

#[async_trait]
impl StreamsApi for FakeStreams {
    async fn list_streams(&self, _table: &str) -> Result<Vec<StreamSummary>, ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::ListStreams);
        FakeStreams::fault(&mut s, Op::List)?;
        Ok(s.streams
            .iter()
            .map(|x| StreamSummary {
                arn: x.arn.clone(),
                label: x.label.clone(),
            })
            .collect())
    }

    async fn describe_stream(
        &self,
        stream_arn: &str,
        start: Option<&str>,
        children_of: Option<&str>,
    ) -> Result<StreamDescription, ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::Describe {
            start: start.map(Into::into),
            children_of: children_of.map(Into::into),
        });
        FakeStreams::fault(&mut s, Op::Describe)?;
        let (page, honour) = (s.describe_page, s.honour_filter);
        let st = s
            .streams
            .iter()
            .find(|x| x.arn == stream_arn)
            .ok_or_else(|| ApiError::NotFound(format!("stream {stream_arn}")))?;
        let listed: Vec<&FakeShard> = st
            .shards
            .iter()
            .filter(|sh| !honour || children_of.is_none_or(|p| sh.parent.as_deref() == Some(p)))
            .collect();
        let from = start.map_or(0, |id| {
            listed
                .iter()
                .position(|x| x.id == id)
                .map_or(listed.len(), |i| i + 1)
        });
        let chunk: Vec<&FakeShard> = listed.iter().skip(from).take(page).copied().collect();
        let more = from + chunk.len() < listed.len();
        Ok(StreamDescription {
            status: st.status.clone(),
            key_schema: Some(KeySchema {
                hash: "pk".into(),
                range: None,
            }),
            last_evaluated_shard_id: more.then(|| chunk.last().unwrap().id.clone()),
            shards: chunk
                .into_iter()
                .map(|x| ShardInfo {
                    id: x.id.clone(),
                    parent: x.parent.clone(),
                    closed: x.closed,
                })
                .collect(),
        })
    }

    async fn get_shard_iterator(
        &self,
        stream_arn: &str,
        shard_id: &str,
        position: &IteratorPosition,
    ) -> Result<String, ApiError> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::Iterator {
            shard: shard_id.into(),
            position: position.clone(),
        });
        FakeStreams::fault(&mut s, Op::Iterator)?;
        let st = s
            .streams
            .iter()
            .find(|x| x.arn == stream_arn)
            .ok_or(ApiError::NotFound("stream".into()))?;
        let sh = st
            .shards
            .iter()
            .find(|x| x.id == shard_id)
            .ok_or(ApiError::NotFound("shard".into()))?;
        let index = match position {
            IteratorPosition::TrimHorizon => 0,
            IteratorPosition::Latest => sh.records.len(),
            IteratorPosition::AfterSequence(seq) => sh
                .records
                .iter()
                .position(|r| {
                    SequenceNumber::parse(r.dynamodb().unwrap().sequence_number().unwrap()).unwrap()
                        > *seq
                })
                .unwrap_or(sh.records.len()),
        };
        Ok(format!("{stream_arn}|{shard_id}|{index}"))
    }

    async fn get_records(&self, iterator: &str) -> Result<RecordsPage, ApiError> {
        let (stream, shard, index) = parse_token(iterator);
        let mut s = self.state.lock().unwrap();
        s.calls.push(Call::GetRecords {
            shard: shard.clone(),
        });
        FakeStreams::fault(&mut s, Op::GetRecords)?;
        let page = s.page_size;
        let st = s
            .streams
            .iter()
            .find(|x| x.arn == stream)
            .ok_or(ApiError::NotFound("stream".into()))?;
        let sh = st
            .shards
            .iter()
            .find(|x| x.id == shard)
            .ok_or(ApiError::NotFound("shard".into()))?;
        let records: Vec<Record> = sh.records.iter().skip(index).take(page).cloned().collect();
        let next = index + records.len();
        let next_iterator =
            (!(sh.closed && next >= sh.records.len())).then(|| format!("{stream}|{shard}|{next}"));
        Ok(RecordsPage {
            records,
            next_iterator,
        })
    }
}

/// An in-process sink that records what it accepts.
#[derive(Default)]
pub struct MemorySink {
    pub events: Mutex<Vec<CloudEvent>>,
    /// Statuses to answer, in order, before accepting.
    pub script: Mutex<VecDeque<u16>>,
    notify: Notify,
}

impl MemorySink {
    pub fn ids(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.id.clone())
            .collect()
    }

    /// Waits until `cond` holds for the received events, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&[CloudEvent]) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if cond(&self.events.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; got {:?}", self.ids());
            }
        }
    }
}

#[async_trait]
impl Sink for MemorySink {
    async fn send(&self, event: &CloudEvent) -> Result<(), SendError> {
        if let Some(status) = self.script.lock().unwrap().pop_front() {
            return Err(SendError::Status {
                status,
                retry_after: Some(Duration::from_millis(1)),
                body: String::new(),
                raw: Default::default(),
            });
        }
        self.events.lock().unwrap().push(event.clone());
        self.notify.notify_waiters();
        Ok(())
    }
}

/// An engine running on the model, and what tests look at.
pub struct Running {
    pub sink: Arc<MemorySink>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub shutdown: CancellationToken,
    pub handle: JoinHandle<()>,
}

/// Starts an engine on `api` with checkpoints in `store`, sending to
/// `sink`; `prepare` adds to it before it runs, given what was saved.
pub async fn start_engine(
    api: &FakeStreams,
    store: Arc<MemoryStore>,
    config: EngineConfig,
    sink: Arc<MemorySink>,
    prepare: impl FnOnce(Engine, &Checkpoints) -> Engine,
) -> Running {
    logs();
    let health = Arc::new(Health::default());
    let metrics = Arc::new(Metrics::new(&mut Default::default()));
    let checkpoints = Checkpointer::open(store, metrics.clone(), health.clone())
        .await
        .unwrap();
    let saved = checkpoints.snapshot();
    let engine = Engine::new(
        config,
        Arc::new(api.clone()),
        sink.clone(),
        checkpoints,
        health.clone(),
        metrics.clone(),
    );
    let engine = prepare(engine, &saved);
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(engine.run(shutdown.clone()));
    Running {
        sink,
        health,
        metrics,
        shutdown,
        handle,
    }
}

impl Running {
    /// Shuts the engine down (it must end within 10 s); its sink.
    pub async fn stop(self) -> Arc<MemorySink> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.handle)
            .await
            .expect("the engine stops")
            .unwrap();
        self.sink
    }
}
