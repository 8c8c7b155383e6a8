//! A fault-injecting HTTP reverse proxy in front of DynamoDB Local.
//!
//! [`FaultProxy`] forwards every request upstream byte for byte and answers with upstream's
//! response, except where its state says otherwise. It owns three things:
//! - **faults** on the four DynamoDB Streams operations ([`Op`]): the next N calls, or a
//!   seeded deterministic ratio of calls, answer with a [`Fault`] shaped like the real
//!   service's error (so the SDK classifies it as it would in production), answer late, or
//!   close the connection unanswered;
//! - **counters** of calls per `X-Amz-Target`;
//! - **shard lineage virtualization** ([`FaultProxy::split`]): DynamoDB Local has one shard
//!   per stream and never splits it, so the proxy presents that shard as a tree of virtual
//!   shards (see [`lineage`]) by rewriting DescribeStream, GetShardIterator and GetRecords.
//!   The records themselves stay DynamoDB Local's, byte for byte; only which shard shows them
//!   is virtual. Iterators handed out are opaque proxy tokens wrapping the real iterator.
//! - **trimming** ([`FaultProxy::trim_through`]): the 24 h retention, on demand — records up
//!   to a sequence number disappear, and positions before them answer
//!   `TrimmedDataAccessException`, as the real service does.
//!
//! Anything the proxy cannot parse is forwarded unchanged.

pub(crate) mod lineage;
pub(crate) mod seq;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::server::{CloseConnection, Handler, Server, response};
use lineage::{Lineage, keys_hash};
use seq::SeqNo;

/// Largest request body the proxy reads.
const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;
/// How long a client may take to send its request body.
const REQUEST_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest shard page DescribeStream returns (the API's maximum Limit).
const DESCRIBE_MAX_LIMIT: usize = 100;
const TOKEN_PREFIX: &str = "tkproxy1|";
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.0";
const DUMMY_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 Credential=testkit/20240101/ddblocal/dynamodb/aws4_request, SignedHeaders=host;x-amz-target, Signature=0";

/// A DynamoDB Streams operation the proxy can fail and count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `DynamoDBStreams_20120810.ListStreams`
    ListStreams,
    /// `DynamoDBStreams_20120810.DescribeStream`
    DescribeStream,
    /// `DynamoDBStreams_20120810.GetShardIterator`
    GetShardIterator,
    /// `DynamoDBStreams_20120810.GetRecords`
    GetRecords,
    /// `DynamoDB_20120810.Scan` (a snapshot's reads of the table).
    Scan,
    /// `DynamoDB_20120810.DescribeTable`
    DescribeTable,
}

impl Op {
    /// Every operation the proxy tells apart: DynamoDB Streams' four and
    /// the table's two.
    pub const ALL: [Op; 6] = [
        Op::ListStreams,
        Op::DescribeStream,
        Op::GetShardIterator,
        Op::GetRecords,
        Op::Scan,
        Op::DescribeTable,
    ];

    /// The `X-Amz-Target` header value.
    pub fn target(self) -> &'static str {
        match self {
            Op::ListStreams => "DynamoDBStreams_20120810.ListStreams",
            Op::DescribeStream => "DynamoDBStreams_20120810.DescribeStream",
            Op::GetShardIterator => "DynamoDBStreams_20120810.GetShardIterator",
            Op::GetRecords => "DynamoDBStreams_20120810.GetRecords",
            Op::Scan => "DynamoDB_20120810.Scan",
            Op::DescribeTable => "DynamoDB_20120810.DescribeTable",
        }
    }

    /// The operation of an `X-Amz-Target` value.
    pub fn from_target(target: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.target() == target)
    }
}

/// What an injected fault does to one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 400 `ExpiredIteratorException`.
    ExpiredIterator,
    /// 400 `TrimmedDataAccessException`.
    TrimmedDataAccess,
    /// 400 `LimitExceededException` (the SDK treats it as throttling and retries it).
    LimitExceeded,
    /// 400 `ThrottlingException` (not modelled by the Streams SDK: an unhandled error with
    /// that code, retried by the SDK as throttling).
    Throttling,
    /// 400 `ResourceNotFoundException`.
    ResourceNotFound,
    /// 400 `AccessDeniedException` (unhandled error with that code; not retried).
    AccessDenied,
    /// 500 `InternalServerError`.
    Internal,
    /// 503 `ServiceUnavailableException`.
    Unavailable,
    /// Forward the call normally, but answer after this long.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
}

impl Fault {
    /// `(status, __type, message)` of an error answer, as the real service writes them.
    fn error(&self) -> Option<(u16, &'static str, &'static str)> {
        Some(match self {
            Fault::ExpiredIterator => (
                400,
                "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException",
                "Iterator expired",
            ),
            Fault::TrimmedDataAccess => (
                400,
                "com.amazonaws.dynamodb.v20120810#TrimmedDataAccessException",
                "The operation attempted to read past the oldest stream record in a shard.",
            ),
            Fault::LimitExceeded => (
                400,
                "com.amazonaws.dynamodb.v20120810#LimitExceededException",
                "Too many concurrent requests for this shard.",
            ),
            Fault::Throttling => (
                400,
                "com.amazon.coral.availability#ThrottlingException",
                "Rate of requests exceeds the allowed throughput.",
            ),
            Fault::ResourceNotFound => (
                400,
                "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                "Requested resource not found",
            ),
            Fault::AccessDenied => (
                400,
                "com.amazon.coral.service#AccessDeniedException",
                "User is not authorized to perform this action",
            ),
            Fault::Internal => (
                500,
                "com.amazonaws.dynamodb.v20120810#InternalServerError",
                "Internal server error",
            ),
            Fault::Unavailable => (
                503,
                "com.amazon.coral.availability#ServiceUnavailableException",
                "Service unavailable",
            ),
            Fault::Delay(_) | Fault::Drop => return None,
        })
    }
}

/// What [`FaultProxy::split`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitInfo {
    /// The new generation `k` (1 for the first split).
    pub generation: usize,
    /// `S_k`: the last sequence number of the closed generation, as DynamoDB Local wrote it
    /// (the children cover greater sequence numbers).
    pub boundary: String,
    /// The shards this split closed (generation `k-1`).
    pub closed_shard_ids: Vec<String>,
    /// The new open shards (generation `k`), parents' partitions first.
    pub child_shard_ids: Vec<String>,
}

#[derive(Default)]
struct OpFaults {
    queue: VecDeque<(Fault, u64)>,
    ratio: Option<(f64, Fault)>,
    index: u64,
}

struct Control {
    seed: u64,
    faults: HashMap<Op, OpFaults>,
    calls: HashMap<String, u64>,
    /// When each call of an operation came, while [`FaultProxy::record_call_times`] is on.
    call_times: Option<Vec<(Op, std::time::Instant)>>,
    describe_page_size: Option<usize>,
    honour_shard_filter: bool,
}

#[derive(Default)]
struct Lineages {
    list: Vec<Lineage>,
    by_arn: HashMap<String, usize>,
}

struct ProxyInner {
    upstream: String,
    http: reqwest::Client,
    control: Mutex<Control>,
    /// GetRecords filters under the read lock; a split registers under the write lock.
    lineages: tokio::sync::RwLock<Lineages>,
    request_ids: AtomicU64,
    /// Requests being answered now, and the most at once since the last reset.
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

/// The proxy handle (cheap to clone). The proxy stops when the last handle is dropped.
#[derive(Clone)]
pub struct FaultProxy {
    inner: Arc<ProxyInner>,
    server: Arc<Server>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint())
            .field("upstream", &self.inner.upstream)
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1 (free port) in front of `upstream` (e.g. DynamoDB Local's
    /// endpoint), on the current Tokio runtime.
    pub async fn start(upstream: &str) -> Result<FaultProxy> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("building the proxy's upstream client")?;
        let inner = Arc::new(ProxyInner {
            upstream: upstream.trim_end_matches('/').to_string(),
            http,
            control: Mutex::new(Control {
                seed: 0x5eed,
                faults: HashMap::new(),
                calls: HashMap::new(),
                call_times: None,
                describe_page_size: None,
                honour_shard_filter: true,
            }),
            lineages: tokio::sync::RwLock::new(Lineages::default()),
            request_ids: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            peak_in_flight: AtomicU64::new(0),
        });
        let for_handler = inner.clone();
        let handler: Handler = Arc::new(move |req| {
            let inner = for_handler.clone();
            Box::pin(async move { inner.handle(req).await })
        });
        let server = Server::start(handler).context("starting the proxy's listener")?;
        Ok(FaultProxy {
            inner,
            server: Arc::new(server),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The upstream endpoint.
    pub fn upstream(&self) -> &str {
        &self.inner.upstream
    }

    /// A DynamoDB Streams client that talks to this proxy.
    pub fn streams_client(&self, retries: crate::Retries) -> aws_sdk_dynamodbstreams::Client {
        crate::streams_client(&self.endpoint(), retries)
    }

    /// The next `n` calls of `op` get `fault` (queued after faults already queued).
    pub fn fail_next(&self, op: Op, n: u64, fault: Fault) {
        if n == 0 {
            return;
        }
        let mut c = self.inner.control.lock().unwrap();
        c.faults.entry(op).or_default().queue.push_back((fault, n));
    }

    /// About `ratio` of the calls of `op` (deterministic for the seed and the call's index
    /// among `op`'s calls) get `fault`, after any queued [`FaultProxy::fail_next`] faults.
    /// A ratio of 0 removes the rule.
    pub fn fail_ratio(&self, op: Op, ratio: f64, fault: Fault) {
        let mut c = self.inner.control.lock().unwrap();
        c.faults.entry(op).or_default().ratio = (ratio > 0.0).then_some((ratio, fault));
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        let mut c = self.inner.control.lock().unwrap();
        for f in c.faults.values_mut() {
            f.queue.clear();
            f.ratio = None;
        }
    }

    /// The seed of the ratio decisions (default 0x5eed).
    pub fn set_seed(&self, seed: u64) {
        self.inner.control.lock().unwrap().seed = seed;
    }

    /// Calls of `op` received (faulted ones included) since start or the last reset.
    pub fn calls(&self, op: Op) -> u64 {
        self.calls_target(op.target())
    }

    /// Calls with this `X-Amz-Target` (e.g. `DynamoDB_20120810.PutItem`).
    pub fn calls_target(&self, target: &str) -> u64 {
        let c = self.inner.control.lock().unwrap();
        c.calls.get(target).copied().unwrap_or(0)
    }

    /// Zeroes all counters.
    pub fn reset_counters(&self) {
        self.inner.control.lock().unwrap().calls.clear();
        self.inner.peak_in_flight.store(0, Ordering::SeqCst);
    }

    /// The most requests the proxy was answering at once (each on a connection of its own)
    /// since start or the last reset.
    pub fn peak_in_flight(&self) -> u64 {
        self.inner.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Starts (or, with false, stops) noting when each call of the four operations comes;
    /// starting forgets what was noted.
    pub fn record_call_times(&self, on: bool) {
        self.inner.control.lock().unwrap().call_times = on.then(Vec::new);
    }

    /// When the calls of `op` came since [`FaultProxy::record_call_times`] was turned on.
    pub fn call_times(&self, op: Op) -> Vec<std::time::Instant> {
        let c = self.inner.control.lock().unwrap();
        c.call_times
            .iter()
            .flatten()
            .filter(|(o, _)| *o == op)
            .map(|(_, at)| *at)
            .collect()
    }

    /// Forces DescribeStream pages of at most `n` shards (`None`: only the request's Limit).
    pub fn describe_page_size(&self, n: Option<usize>) {
        self.inner.control.lock().unwrap().describe_page_size = n.map(|n| n.max(1));
    }

    /// Whether DescribeStream honours `ShardFilter {Type: CHILD_SHARDS}` (default true, like
    /// the real service); false ignores it, like DynamoDB Local.
    pub fn honour_shard_filter(&self, honour: bool) {
        self.inner.control.lock().unwrap().honour_shard_filter = honour;
    }

    /// Splits the stream's current open generation: reads the real shard to its current end
    /// (last sequence number S), closes the open generation at S and opens one with `fanout`
    /// times as many shards for later records. `fanout = 1` is a plain shard rollover. Blocks
    /// GetRecords on this proxy while it runs, so no reader sees a record past S in a parent.
    pub async fn split(&self, stream_arn: &str, fanout: u32) -> Result<SplitInfo> {
        ensure!(fanout >= 1, "fanout must be at least 1");
        let inner = &self.inner;
        let index = inner
            .ensure_lineage(stream_arn)
            .await?
            .ok_or_else(|| anyhow!("stream {stream_arn} has no shard upstream"))?;
        let mut state = inner.lineages.write().await;
        let lineage = &mut state.list[index];
        let (_, shards) = match inner.describe_upstream(stream_arn).await? {
            Ok(found) => found,
            Err(up) => bail!(
                "DescribeStream {stream_arn} upstream: {} {}",
                up.status,
                String::from_utf8_lossy(&up.body)
            ),
        };
        let real = shards
            .iter()
            .find(|s| s.get("ShardId").and_then(Value::as_str) == Some(&lineage.real_shard_id))
            .ok_or_else(|| anyhow!("the real shard {} is gone", lineage.real_shard_id))?;
        if real
            .pointer("/SequenceNumberRange/EndingSequenceNumber")
            .is_some()
        {
            bail!("the real shard of {stream_arn} is closed (stream disabled?): cannot split it");
        }
        let from = lineage.gens.last().and_then(|g| g.after.clone());
        let last = inner.read_real_to_end(lineage, from.clone()).await?;
        let boundary = last
            .or(from)
            .or_else(|| lineage.real_start.as_ref().and_then(SeqNo::pred))
            .ok_or_else(|| anyhow!("cannot tell where the real shard of {stream_arn} starts"))?;
        lineage.split(boundary.clone(), u64::from(fanout));
        let generation = lineage.gens.len() - 1;
        Ok(SplitInfo {
            generation,
            boundary: boundary.padded(),
            closed_shard_ids: lineage.generation_ids(generation - 1),
            child_shard_ids: lineage.generation_ids(generation),
        })
    }

    /// Simulates the stream's 24 h retention trimming every record up to and including
    /// `last_trimmed` (a sequence number, best one of the stream's records). From now on, as
    /// the real service does:
    /// - TRIM_HORIZON iterators start at the first record after it (the trimmed records are
    ///   no longer visible through the proxy);
    /// - GetShardIterator AFTER_SEQUENCE_NUMBER a number below it, or AT_SEQUENCE_NUMBER one
    ///   up to it, answers `TrimmedDataAccessException` (the records between that position and
    ///   the first one kept are lost);
    /// - GetRecords on an iterator that has not passed it yet (taken before the trim) answers
    ///   `TrimmedDataAccessException` too.
    ///
    /// A trim never moves back: an earlier `last_trimmed` than the current one changes
    /// nothing. It applies to every shard the proxy shows for the stream, virtual ones of
    /// [`FaultProxy::split`] included (a closed generation that ends at or before the trim
    /// point reads as empty). Records stay in DynamoDB Local: reading it directly still shows
    /// them.
    pub async fn trim_through(&self, stream_arn: &str, last_trimmed: &str) -> Result<()> {
        ensure!(
            !last_trimmed.is_empty() && last_trimmed.bytes().all(|b| b.is_ascii_digit()),
            "{last_trimmed:?} is not a sequence number"
        );
        let index = self
            .inner
            .ensure_lineage(stream_arn)
            .await?
            .ok_or_else(|| anyhow!("stream {stream_arn} has no shard upstream"))?;
        self.inner.lineages.write().await.list[index].trim_through(SeqNo::new(last_trimmed));
        Ok(())
    }
}

/// A proxy iterator: the real iterator plus where this virtual shard reader stands.
#[derive(Clone, Debug, PartialEq)]
struct Token {
    lineage: usize,
    generation: usize,
    partition: u64,
    /// Every real record with a sequence number up to this one has been passed.
    pos: Option<SeqNo>,
    /// A reader with nothing left to read (LATEST on a closed shard).
    done: bool,
    real: String,
}

impl Token {
    fn encode(&self) -> String {
        format!(
            "{TOKEN_PREFIX}{}|{}|{}|{}|{}|{}",
            self.lineage,
            self.generation,
            self.partition,
            self.pos
                .as_ref()
                .map_or_else(|| "-".to_string(), SeqNo::padded),
            u8::from(self.done),
            self.real
        )
    }

    fn decode(text: &str) -> Option<Token> {
        let rest = text.strip_prefix(TOKEN_PREFIX)?;
        let mut it = rest.splitn(6, '|');
        let lineage = it.next()?.parse().ok()?;
        let generation = it.next()?.parse().ok()?;
        let partition = it.next()?.parse().ok()?;
        let pos = match it.next()? {
            "-" => None,
            p if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => Some(SeqNo::new(p)),
            _ => return None,
        };
        let done = match it.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        let real = it.next()?.to_string();
        Some(Token {
            lineage,
            generation,
            partition,
            pos,
            done,
            real,
        })
    }
}

/// An upstream answer.
struct Upstream {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Deserialize)]
struct RecordsPage<'a> {
    #[serde(rename = "Records", default, borrow)]
    records: Vec<&'a RawValue>,
    #[serde(rename = "NextShardIterator")]
    next: Option<String>,
}

#[derive(Deserialize)]
struct RecordHead {
    dynamodb: Option<StreamRecordHead>,
}

#[derive(Deserialize)]
struct StreamRecordHead {
    #[serde(rename = "SequenceNumber")]
    sequence_number: Option<String>,
    #[serde(rename = "Keys")]
    keys: Option<Value>,
}

/// `(sequence number, hash of Keys)` of a raw stream record.
fn record_head(raw: &RawValue) -> Option<(SeqNo, u64)> {
    let head: RecordHead = serde_json::from_str(raw.get()).ok()?;
    let d = head.dynamodb?;
    let seq = SeqNo::new(&d.sequence_number?);
    let hash = keys_hash(&d.keys.unwrap_or(Value::Null));
    Some((seq, hash))
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

impl ProxyInner {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, CloseConnection> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        let answer = self.clone().answer(req).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer
    }

    async fn answer(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, CloseConnection> {
        let (parts, body) = req.into_parts();
        let body = match tokio::time::timeout(
            REQUEST_BODY_TIMEOUT,
            Limited::new(body, MAX_REQUEST_BODY).collect(),
        )
        .await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) => {
                let status = if e.is::<http_body_util::LengthLimitError>() {
                    413
                } else {
                    400
                };
                return Ok(response(
                    status,
                    &[],
                    format!("cannot read the request body: {e}"),
                ));
            }
            Err(_) => return Ok(response(408, &[], "request body timed out")),
        };
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let op = Op::from_target(&target);
        let fault = self.count_and_pick_fault(&target, op);
        match fault {
            Some(Fault::Drop) => return Err(CloseConnection),
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            Some(f) => {
                let (status, ty, message) = f.error().expect("error faults have a body");
                return Ok(self.error_response(status, ty, message));
            }
            None => {}
        }
        let answer = match op {
            Some(Op::DescribeStream) => self.describe_stream(&parts, body).await,
            Some(Op::GetShardIterator) => self.get_shard_iterator(&parts, body).await,
            Some(Op::GetRecords) => self.get_records(&parts, body).await,
            _ => self.forward(&parts, body).await,
        };
        Ok(answer)
    }

    fn count_and_pick_fault(&self, target: &str, op: Option<Op>) -> Option<Fault> {
        let mut c = self.control.lock().unwrap();
        *c.calls.entry(target.to_string()).or_insert(0) += 1;
        let op = op?;
        if let Some(times) = &mut c.call_times {
            times.push((op, std::time::Instant::now()));
        }
        let seed = c.seed;
        let f = c.faults.entry(op).or_default();
        let index = f.index;
        f.index += 1;
        if let Some((fault, left)) = f.queue.front_mut() {
            let fault = fault.clone();
            *left -= 1;
            if *left == 0 {
                f.queue.pop_front();
            }
            return Some(fault);
        }
        match &f.ratio {
            Some((ratio, fault)) if crate::util::chance(seed, op as u64, index, *ratio) => {
                Some(fault.clone())
            }
            _ => None,
        }
    }

    fn request_id(&self) -> String {
        format!(
            "testkit-proxy-{}",
            self.request_ids.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn error_response(&self, status: u16, ty: &str, message: &str) -> Response<Full<Bytes>> {
        let body = json!({ "__type": ty, "message": message }).to_string();
        response(
            status,
            &[
                ("content-type", JSON_CONTENT_TYPE),
                ("x-amzn-requestid", &self.request_id()),
            ],
            body,
        )
    }

    /// `TrimmedDataAccessException`, as [`Fault::TrimmedDataAccess`] shapes it.
    fn trimmed_response(&self) -> Response<Full<Bytes>> {
        let (status, ty, message) = Fault::TrimmedDataAccess
            .error()
            .expect("an error fault has a body");
        self.error_response(status, ty, message)
    }

    fn json_response(&self, body: String) -> Response<Full<Bytes>> {
        response(
            200,
            &[
                ("content-type", JSON_CONTENT_TYPE),
                ("x-amzn-requestid", &self.request_id()),
            ],
            body,
        )
    }

    /// Upstream's answer, as is (headers other than framing kept).
    fn upstream_response(up: Upstream) -> Response<Full<Bytes>> {
        Self::upstream_response_with_body(up.status, &up.headers, up.body)
    }

    fn upstream_response_with_body(
        status: StatusCode,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(body));
        *resp.status_mut() = status;
        for (name, value) in headers {
            if !is_hop_by_hop(name.as_str()) && name.as_str() != "x-amz-crc32" {
                resp.headers_mut().append(name.clone(), value.clone());
            }
        }
        resp
    }

    async fn send_upstream(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Upstream, reqwest::Error> {
        let mut out = HeaderMap::new();
        for (name, value) in headers {
            if !is_hop_by_hop(name.as_str()) {
                out.append(name.clone(), value.clone());
            }
        }
        let resp = self
            .http
            .request(method, format!("{}{}", self.upstream, path_and_query))
            .headers(out)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?;
        Ok(Upstream {
            status,
            headers,
            body,
        })
    }

    async fn send_upstream_like(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Result<Upstream, Response<Full<Bytes>>> {
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        self.send_upstream(parts.method.clone(), &path, &parts.headers, body)
            .await
            .map_err(|e| response(502, &[], format!("upstream {}: {e}", self.upstream)))
    }

    /// Forwards the request unchanged and answers with upstream's answer.
    async fn forward(&self, parts: &http::request::Parts, body: Bytes) -> Response<Full<Bytes>> {
        match self.send_upstream_like(parts, body).await {
            Ok(up) => Self::upstream_response(up),
            Err(resp) => resp,
        }
    }

    /// An internal call (not counted, never faulted).
    async fn call_json(&self, target: &str, body: &Value) -> Result<Upstream> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(JSON_CONTENT_TYPE),
        );
        headers.insert("x-amz-target", HeaderValue::from_str(target)?);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(DUMMY_AUTHORIZATION),
        );
        self.send_upstream(Method::POST, "/", &headers, Bytes::from(body.to_string()))
            .await
            .with_context(|| format!("{target} upstream"))
    }

    /// Upstream's StreamDescription (every member as raw JSON) and all its shards, or
    /// upstream's error answer.
    #[allow(clippy::type_complexity)]
    async fn describe_upstream(
        &self,
        stream_arn: &str,
    ) -> Result<Result<(BTreeMap<String, Box<RawValue>>, Vec<Value>), Upstream>> {
        #[derive(Deserialize)]
        struct Out {
            #[serde(rename = "StreamDescription")]
            description: BTreeMap<String, Box<RawValue>>,
        }
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        for _ in 0..1000 {
            let mut req = json!({ "StreamArn": stream_arn });
            if let Some(s) = start.take() {
                req["ExclusiveStartShardId"] = Value::String(s);
            }
            let up = self.call_json(Op::DescribeStream.target(), &req).await?;
            if up.status != StatusCode::OK {
                return Ok(Err(up));
            }
            let out: Out = serde_json::from_slice(&up.body)
                .context("DescribeStream upstream: unexpected answer")?;
            if let Some(raw) = out.description.get("Shards") {
                let page: Vec<Value> = serde_json::from_str(raw.get())?;
                shards.extend(page);
            }
            let last = out
                .description
                .get("LastEvaluatedShardId")
                .and_then(|raw| serde_json::from_str::<Option<String>>(raw.get()).ok())
                .flatten();
            match last {
                Some(last) => start = Some(last),
                None => return Ok(Ok((out.description, shards))),
            }
        }
        bail!("DescribeStream {stream_arn} upstream: more than 1000 pages")
    }

    /// The lineage of `stream_arn`, registered on first sight (`None` when upstream does
    /// not know the stream or it has no shard).
    async fn ensure_lineage(&self, stream_arn: &str) -> Result<Option<usize>> {
        if let Some(i) = self.lineages.read().await.by_arn.get(stream_arn) {
            return Ok(Some(*i));
        }
        match self.describe_upstream(stream_arn).await? {
            Ok((_, shards)) => Ok(self.register_lineage(stream_arn, &shards).await),
            Err(_) => Ok(None),
        }
    }

    async fn register_lineage(&self, stream_arn: &str, shards: &[Value]) -> Option<usize> {
        let mut state = self.lineages.write().await;
        if let Some(i) = state.by_arn.get(stream_arn) {
            return Some(*i);
        }
        // DynamoDB Local has one shard per stream; prefer an open one if there are more.
        let real = shards
            .iter()
            .find(|s| {
                s.pointer("/SequenceNumberRange/EndingSequenceNumber")
                    .is_none()
            })
            .or_else(|| shards.last())?;
        let id = real.get("ShardId").and_then(Value::as_str)?;
        let start = real
            .pointer("/SequenceNumberRange/StartingSequenceNumber")
            .and_then(Value::as_str);
        let index = state.list.len();
        state.list.push(Lineage::new(stream_arn, id, start));
        state.by_arn.insert(stream_arn.to_string(), index);
        Some(index)
    }

    /// The upstream iterator request that starts right after `after` (or at the start).
    fn real_start_request(lineage: &Lineage, after: Option<&SeqNo>) -> Value {
        let mut req = json!({
            "StreamArn": lineage.stream_arn,
            "ShardId": lineage.real_shard_id,
            "ShardIteratorType": "TRIM_HORIZON",
        });
        // DynamoDB Local refuses AFTER_SEQUENCE_NUMBER below the shard's start.
        let before_start = |a: &SeqNo| lineage.real_start.as_ref().is_some_and(|s| a < s);
        if let Some(a) = after
            && !before_start(a)
        {
            req["ShardIteratorType"] = json!("AFTER_SEQUENCE_NUMBER");
            req["SequenceNumber"] = json!(a.padded());
        }
        req
    }

    /// Reads the real shard from after `from` to its current end; the last sequence number.
    async fn read_real_to_end(
        &self,
        lineage: &Lineage,
        from: Option<SeqNo>,
    ) -> Result<Option<SeqNo>> {
        #[derive(Deserialize)]
        struct IteratorOut {
            #[serde(rename = "ShardIterator")]
            iterator: Option<String>,
        }
        let req = Self::real_start_request(lineage, from.as_ref());
        let up = self.call_json(Op::GetShardIterator.target(), &req).await?;
        ensure!(
            up.status == StatusCode::OK,
            "GetShardIterator upstream: {} {}",
            up.status,
            String::from_utf8_lossy(&up.body)
        );
        let mut iterator = serde_json::from_slice::<IteratorOut>(&up.body)?.iterator;
        let mut last = None;
        for _ in 0..100_000 {
            let Some(it) = iterator.take() else {
                return Ok(last);
            };
            let up = self
                .call_json(Op::GetRecords.target(), &json!({ "ShardIterator": it }))
                .await?;
            ensure!(
                up.status == StatusCode::OK,
                "GetRecords upstream: {} {}",
                up.status,
                String::from_utf8_lossy(&up.body)
            );
            let page: RecordsPage = serde_json::from_slice(&up.body)?;
            if page.records.is_empty() {
                return Ok(last);
            }
            for raw in &page.records {
                if let Some((seq, _)) = record_head(raw) {
                    last = Some(seq);
                }
            }
            iterator = page.next;
        }
        bail!("reading the real shard: more than 100000 pages")
    }

    async fn describe_stream(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let Ok(req) = serde_json::from_slice::<Map<String, Value>>(&body) else {
            return self.forward(parts, body).await;
        };
        let Some(stream_arn) = req.get("StreamArn").and_then(Value::as_str) else {
            return self.forward(parts, body).await;
        };
        let (mut description, shards) = match self.describe_upstream(stream_arn).await {
            Ok(Ok(found)) => found,
            Ok(Err(up)) => return Self::upstream_response(up),
            Err(_) => return self.forward(parts, body).await,
        };
        let Some(index) = self.register_lineage(stream_arn, &shards).await else {
            // No shard at all: nothing to virtualize.
            return self.forward(parts, body).await;
        };
        let (page_size, honour_filter) = {
            let c = self.control.lock().unwrap();
            (c.describe_page_size, c.honour_shard_filter)
        };
        let state = self.lineages.read().await;
        let lineage = &state.list[index];
        let mut list: Vec<Value> = Vec::new();
        for shard in shards {
            if shard.get("ShardId").and_then(Value::as_str) == Some(&lineage.real_shard_id) {
                list.extend(lineage.virtual_shards(&shard));
            } else {
                list.push(shard);
            }
        }
        drop(state);
        let shard_id = |s: &Value| s.get("ShardId").and_then(Value::as_str).map(str::to_string);
        if honour_filter
            && let Some(filter) = req.get("ShardFilter")
            && filter.get("Type").and_then(Value::as_str) == Some("CHILD_SHARDS")
        {
            let parent = filter.get("ShardId").and_then(Value::as_str).unwrap_or("");
            list.retain(|s| s.get("ParentShardId").and_then(Value::as_str) == Some(parent));
        }
        if let Some(start) = req.get("ExclusiveStartShardId").and_then(Value::as_str) {
            list = match list
                .iter()
                .position(|s| shard_id(s).as_deref() == Some(start))
            {
                Some(i) => list.split_off(i + 1),
                None => Vec::new(),
            };
        }
        let limit = req
            .get("Limit")
            .and_then(Value::as_u64)
            .map_or(DESCRIBE_MAX_LIMIT, |l| {
                (l as usize).clamp(1, DESCRIBE_MAX_LIMIT)
            });
        let limit = page_size.map_or(limit, |p| p.min(limit));
        let more = list.len() > limit;
        list.truncate(limit);
        let last = if more {
            list.last().and_then(shard_id)
        } else {
            None
        };
        let raw = |v: &Value| RawValue::from_string(v.to_string()).expect("valid JSON");
        description.insert("Shards".into(), raw(&Value::Array(list)));
        match last {
            Some(last) => {
                description.insert("LastEvaluatedShardId".into(), raw(&Value::String(last)));
            }
            None => {
                description.remove("LastEvaluatedShardId");
            }
        }
        let out = json!({ "StreamDescription": description });
        self.json_response(out.to_string())
    }

    async fn get_shard_iterator(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let Ok(req) = serde_json::from_slice::<Map<String, Value>>(&body) else {
            return self.forward(parts, body).await;
        };
        let field = |name: &str| req.get(name).and_then(Value::as_str).map(str::to_string);
        let (Some(stream_arn), Some(shard_id), Some(kind)) = (
            field("StreamArn"),
            field("ShardId"),
            field("ShardIteratorType"),
        ) else {
            return self.forward(parts, body).await;
        };
        let sequence = field("SequenceNumber");
        let index = match self.ensure_lineage(&stream_arn).await {
            Ok(Some(index)) => index,
            _ => return self.forward(parts, body).await,
        };
        let state = self.lineages.read().await;
        let lineage = &state.list[index];
        let Some((generation, partition)) = lineage.parse_shard_id(&shard_id) else {
            if Lineage::looks_virtual(&shard_id) {
                return self.error_response(
                    400,
                    "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
                    "Requested resource not found: Shard does not exist",
                );
            }
            drop(state);
            return self.forward(parts, body).await;
        };
        let g = &lineage.gens[generation];
        let mut token = Token {
            lineage: index,
            generation,
            partition,
            pos: None,
            done: false,
            real: String::new(),
        };
        let mut upstream_req = req.clone();
        upstream_req.insert("ShardId".into(), json!(lineage.real_shard_id));
        let trimmed = lineage.trimmed_through.as_ref();
        match (kind.as_str(), sequence.as_deref()) {
            ("TRIM_HORIZON", _) => {
                // The generation's start, or the first record kept if that is later.
                let after = g.after.as_ref().max(trimmed);
                let start = Self::real_start_request(lineage, after);
                for key in ["ShardIteratorType", "SequenceNumber"] {
                    match start.get(key) {
                        Some(v) => upstream_req.insert(key.into(), v.clone()),
                        None => upstream_req.remove(key),
                    };
                }
                // Just before the real shard's start when nothing came before: a later trim
                // must find this iterator behind it.
                token.pos = after
                    .cloned()
                    .or_else(|| lineage.real_start.as_ref().and_then(SeqNo::pred));
            }
            ("AT_SEQUENCE_NUMBER", Some(s)) if trimmed.is_some_and(|t| &SeqNo::new(s) <= t) => {
                return self.trimmed_response();
            }
            ("AFTER_SEQUENCE_NUMBER", Some(s)) if lineage.behind_trim(Some(&SeqNo::new(s))) => {
                return self.trimmed_response();
            }
            ("AT_SEQUENCE_NUMBER", Some(s)) => token.pos = SeqNo::new(s).pred(),
            ("AFTER_SEQUENCE_NUMBER", Some(s)) => {
                let after = SeqNo::new(s);
                // After the boundary of a split made before the first record: that boundary
                // lies below the real shard's start, which DynamoDB Local refuses.
                if g.after.as_ref() == Some(&after)
                    && lineage
                        .real_start
                        .as_ref()
                        .is_some_and(|start| &after < start)
                {
                    upstream_req.insert("ShardIteratorType".into(), json!("TRIM_HORIZON"));
                    upstream_req.remove("SequenceNumber");
                }
                token.pos = Some(after);
            }
            ("LATEST", _) if g.end.is_some() => {
                token.done = true;
                return self.json_response(json!({ "ShardIterator": token.encode() }).to_string());
            }
            ("LATEST", _) => {}
            _ => {
                drop(state);
                return self.forward(parts, body).await;
            }
        }
        let up = match self
            .send_upstream_like(parts, Bytes::from(Value::Object(upstream_req).to_string()))
            .await
        {
            Ok(up) => up,
            Err(resp) => return resp,
        };
        drop(state);
        if up.status != StatusCode::OK {
            return Self::upstream_response(up);
        }
        let Some(real) = serde_json::from_slice::<Value>(&up.body)
            .ok()
            .and_then(|v| {
                v.get("ShardIterator")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        else {
            return Self::upstream_response(up);
        };
        token.real = real;
        let body = json!({ "ShardIterator": token.encode() }).to_string();
        Self::upstream_response_with_body(up.status, &up.headers, Bytes::from(body))
    }

    async fn get_records(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let Ok(mut req) = serde_json::from_slice::<Map<String, Value>>(&body) else {
            return self.forward(parts, body).await;
        };
        let Some(token) = req
            .get("ShardIterator")
            .and_then(Value::as_str)
            .and_then(Token::decode)
        else {
            return self.forward(parts, body).await;
        };
        let state = self.lineages.read().await;
        let Some(lineage) = state
            .list
            .get(token.lineage)
            .filter(|l| token.generation < l.gens.len())
        else {
            return self.error_response(
                400,
                "com.amazon.coral.validate#ValidationException",
                "Invalid ShardIterator",
            );
        };
        let g = &lineage.gens[token.generation];
        let reached_end = |pos: &Option<SeqNo>| match (&g.end, pos) {
            (Some(end), Some(pos)) => pos >= end,
            _ => false,
        };
        if token.done || reached_end(&token.pos) {
            return self.json_response(r#"{"Records":[]}"#.to_string());
        }
        if lineage.behind_trim(token.pos.as_ref()) {
            return self.trimmed_response();
        }
        req.insert("ShardIterator".into(), Value::String(token.real.clone()));
        let up = match self
            .send_upstream_like(parts, Bytes::from(Value::Object(req).to_string()))
            .await
        {
            Ok(up) => up,
            Err(resp) => return resp,
        };
        if up.status != StatusCode::OK {
            return Self::upstream_response(up);
        }
        let Ok(page) = serde_json::from_slice::<RecordsPage>(&up.body) else {
            return Self::upstream_response(up);
        };
        let mut pos = token.pos.clone();
        let mut kept: Vec<&RawValue> = Vec::new();
        let mut finished = false;
        for raw in &page.records {
            let Some((seq, hash)) = record_head(raw) else {
                // Not a record we understand: show it rather than lose it.
                kept.push(raw);
                continue;
            };
            if g.end.as_ref().is_some_and(|end| &seq > end) {
                finished = true;
                break;
            }
            if lineage.owns(token.generation, token.partition, &seq, hash) {
                kept.push(raw);
            }
            pos = Some(seq);
        }
        // DynamoDB Local answers with everything it has: an empty page is its current end,
        // which is past a closed generation's end.
        if g.end.is_some() && (page.records.is_empty() || reached_end(&pos)) {
            finished = true;
        }
        let next = match (finished, &page.next) {
            (false, Some(real)) => Some(
                Token {
                    pos,
                    real: real.clone(),
                    ..token
                }
                .encode(),
            ),
            _ => None,
        };
        drop(state);
        let mut out = String::with_capacity(up.body.len());
        out.push_str("{\"Records\":[");
        for (i, raw) in kept.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(raw.get());
        }
        out.push(']');
        if let Some(next) = next {
            out.push_str(",\"NextShardIterator\":");
            out.push_str(&Value::String(next).to_string());
        }
        out.push('}');
        Self::upstream_response_with_body(up.status, &up.headers, Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let t = Token {
            lineage: 3,
            generation: 2,
            partition: 5,
            pos: Some(SeqNo::new("000000000000000000042")),
            done: false,
            real: "arn:aws:dynamodb:ddblocal:000000000000:table/x/stream/y|001|abc==".into(),
        };
        assert_eq!(Token::decode(&t.encode()), Some(t.clone()));
        let none = Token {
            pos: None,
            done: true,
            real: String::new(),
            ..t
        };
        assert_eq!(Token::decode(&none.encode()), Some(none));
        assert_eq!(Token::decode("arn:aws:dynamodb:...|001|abc"), None);
        assert_eq!(Token::decode("tkproxy1|x|1|1|-|0|r"), None);
        assert_eq!(Token::decode("tkproxy1|1|1|1|12a|0|r"), None);
    }

    #[test]
    fn ops_and_targets() {
        for op in Op::ALL {
            assert_eq!(Op::from_target(op.target()), Some(op));
        }
        assert_eq!(Op::from_target("DynamoDB_20120810.Scan"), Some(Op::Scan));
        assert_eq!(Op::from_target("DynamoDB_20120810.PutItem"), None);
    }
}
