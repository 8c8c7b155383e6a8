//! The engine: picks the table's stream, runs one reader per readable shard in
//! lineage order, moves from a drained stream to the next, and stops cleanly.
//!
//! Owns the order of things: which stream, which shards now, where each
//! starts (checkpoint or STARTING_POSITION), when a parent's children may
//! start. It never reads records or sends events itself (`shard` does), and
//! nothing from AWS ends it: problems make it unhealthy while it keeps
//! trying.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::arn::TableArn;
use crate::checkpoint::{Checkpointer, ShardPosition};
use crate::event::{CeOverrides, EventBuilder, EventOptions};
use crate::filter::RecordFilter;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::shard::{ReaderContext, ShardEnd, ShardReader, ShardStart};
use crate::sink::{DeadLetter, RetryPolicy, Sink};
use crate::stream::{
    self, AWS_RETRY, ApiError, IteratorPosition, ShardState, ShardTree, StreamStatus,
    StreamSummary, StreamsApi,
};

/// `STARTING_POSITION`: where shards that exist at the first start, and
/// have no checkpoint, begin. Shards and streams that appear later are
/// always read from their beginning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartingPosition {
    Latest,
    TrimHorizon,
    /// From the oldest record, skipping records created before this time.
    At(time::OffsetDateTime),
}

#[derive(Debug, thiserror::Error)]
#[error(
    "STARTING_POSITION {0:?} is not LATEST, TRIM_HORIZON or an RFC 3339 timestamp (e.g. 2024-01-01T00:00:00Z)"
)]
pub struct StartingPositionError(String);

impl FromStr for StartingPosition {
    type Err = StartingPositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "LATEST" | "latest" => Ok(StartingPosition::Latest),
            "TRIM_HORIZON" | "trim_horizon" => Ok(StartingPosition::TrimHorizon),
            t => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map(StartingPosition::At)
                .map_err(|_| StartingPositionError(s.to_owned())),
        }
    }
}

/// How the engine runs; [`EngineConfig::new`] gives the documented defaults.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub table: TableArn,
    pub starting_position: StartingPosition,
    pub overrides: CeOverrides,
    /// Deliveries at once per shard.
    pub max_in_flight: usize,
    /// Undone events per shard below which the next page is fetched.
    pub read_ahead: usize,
    /// Pause after an empty page once the shard is idle.
    pub poll_interval: Duration,
    /// Pause after an empty page while the shard is active (had records in
    /// the last `active_window`): changes arriving now are sent within it.
    /// [`Engine::new`] caps it at `poll_interval`.
    pub active_poll_interval: Duration,
    pub active_window: Duration,
    /// How often the shard list is refreshed (new shards are found within it).
    pub discovery_interval: Duration,
    /// How often changed checkpoints are saved...
    pub checkpoint_interval: Duration,
    /// ...or sooner, once this many events are done and unsaved.
    pub checkpoint_after_events: u64,
    /// On shutdown, how long deliveries in flight may take to finish.
    pub shutdown_timeout: Duration,
    pub retry: RetryPolicy,
    /// The data format, subject, extensions and dataschema of events.
    pub events: EventOptions,
    /// Only records that match are sent (FILTER); the others are done.
    pub filter: Option<Arc<RecordFilter>>,
    /// Where events go that the sink refuses for good, that exhaust
    /// `retry.max_attempts` or outgrow `retry.max_record_age`.
    pub dead_letter: Option<DeadLetter>,
}

impl EngineConfig {
    pub fn new(table: TableArn) -> Self {
        EngineConfig {
            table,
            starting_position: StartingPosition::Latest,
            overrides: CeOverrides::default(),
            max_in_flight: 64,
            read_ahead: 1000,
            poll_interval: Duration::from_millis(250),
            active_poll_interval: Duration::from_millis(20),
            active_window: Duration::from_secs(5),
            discovery_interval: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(1),
            checkpoint_after_events: 5000,
            shutdown_timeout: Duration::from_secs(20),
            retry: RetryPolicy::default(),
            events: EventOptions::default(),
            filter: None,
            dead_letter: None,
        }
    }
}

/// Why the source cannot start. Each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("table {table} not found ({detail})")]
    TableNotFound { table: String, detail: String },
    #[error("table {table} has no stream: enable a stream on it (or check that the table exists)")]
    NoStream { table: String },
    #[error(
        "permission denied: {detail}. The policy must allow dynamodb:ListStreams, DescribeStream, GetShardIterator and GetRecords"
    )]
    Denied { detail: String },
    #[error(
        "no usable AWS credentials ({0}). Give the adapter some: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, an IAM role for its service account, or a profile"
    )]
    Credentials(String),
    #[error("{action} was refused: {detail}")]
    Rejected {
        action: &'static str,
        detail: String,
    },
    #[error("cannot reach DynamoDB Streams within {timeout:?}: {last}")]
    Unreachable { timeout: Duration, last: String },
}

/// Checks, before anything runs, that the table has a stream and that the
/// four actions are allowed: ListStreams, then DescribeStream on the newest
/// stream and GetShardIterator(LATEST)/GetRecords on one of its open shards
/// (which reads nothing that matters). Transient failures are retried until
/// `timeout`.
pub async fn preflight(
    api: &dyn StreamsApi,
    table: &TableArn,
    timeout: Duration,
) -> Result<(), StartupError> {
    let deadline = Instant::now() + timeout;
    let mut pauses = AWS_RETRY.pauses();
    loop {
        let (action, e) = match try_preflight(api, table).await {
            Ok(()) => return Ok(()),
            Err(Failure::NoStream) => {
                return Err(StartupError::NoStream {
                    table: table.table().to_owned(),
                });
            }
            Err(Failure::Api(action, e)) => (action, e),
        };
        let pause = pauses.next_pause();
        if e.is_transient() && Instant::now() + pause < deadline {
            tracing::warn!(error = %e, "DynamoDB Streams not reachable yet; retrying");
            tokio::time::sleep(pause).await;
            continue;
        }
        return Err(match e {
            ApiError::NotFound(detail) if action == "ListStreams" => StartupError::TableNotFound {
                table: table.table().to_owned(),
                detail,
            },
            ApiError::AccessDenied(detail) => StartupError::Denied {
                detail: format!("{action}: {detail}"),
            },
            ApiError::Credentials(detail) => StartupError::Credentials(detail),
            ApiError::NotFound(detail) | ApiError::Rejected(detail) => {
                StartupError::Rejected { action, detail }
            }
            // The stream is there and readable; the reader handles these.
            ApiError::ExpiredIterator | ApiError::TrimmedData(_) => return Ok(()),
            ApiError::Throttled(last) | ApiError::Transient(last) => {
                StartupError::Unreachable { timeout, last }
            }
        });
    }
}

async fn try_preflight(api: &dyn StreamsApi, table: &TableArn) -> Result<(), Failure> {
    let streams = api
        .list_streams(table.table())
        .await
        .map_err(|e| Failure::Api("ListStreams", e))?;
    let newest = stream::newest(&streams).ok_or(Failure::NoStream)?;
    let page = api
        .describe_stream(&newest.arn, None, None)
        .await
        .map_err(|e| Failure::Api("DescribeStream", e))?;
    if let Some(open) = page.shards.iter().find(|s| !s.closed) {
        let iterator = api
            .get_shard_iterator(&newest.arn, &open.id, &IteratorPosition::Latest)
            .await
            .map_err(|e| Failure::Api("GetShardIterator", e))?;
        api.get_records(&iterator)
            .await
            .map_err(|e| Failure::Api("GetRecords", e))?;
    }
    Ok(())
}

enum Failure {
    NoStream,
    Api(&'static str, ApiError),
}

pub struct Engine {
    /// Shared with the readers (`ctx.config`).
    config: Arc<EngineConfig>,
    ctx: Arc<ReaderContext>,
    events: EventBuilder,
}

/// How reading one stream ended.
enum StreamEnd {
    /// Disabled, and every shard read to its end.
    Drained,
    /// The stream no longer exists.
    Vanished(String),
    /// Shutdown.
    Stopped,
}

impl Engine {
    pub fn new(
        mut config: EngineConfig,
        api: Arc<dyn StreamsApi>,
        sink: Arc<dyn Sink>,
        checkpoints: Checkpointer,
        health: Arc<Health>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let events = EventBuilder::new(&config.table, &config.overrides, config.events.clone());
        health.watch(metrics.progress.clone());
        // An active shard is never polled more slowly than an idle one.
        config.active_poll_interval = config.active_poll_interval.min(config.poll_interval);
        let config = Arc::new(config);
        let ctx = Arc::new(ReaderContext {
            api: Arc::new(stream::CountedApi::new(api, metrics.clone())),
            sink,
            checkpoints,
            health,
            metrics,
            config: config.clone(),
        });
        Engine {
            config,
            ctx,
            events,
        }
    }

    /// Runs until `shutdown` fires, then lets deliveries in flight finish
    /// (up to the shutdown timeout) and saves the checkpoints.
    pub async fn run(self, shutdown: CancellationToken) {
        let writer_stop = CancellationToken::new();
        let writer = tokio::spawn({
            let checkpoints = self.ctx.checkpoints.clone();
            let interval = self.config.checkpoint_interval;
            let after_events = self.config.checkpoint_after_events;
            let stop = writer_stop.clone();
            async move { checkpoints.run(interval, after_events, stop).await }
        });
        let prefix = format!("{}/stream/", self.config.table.as_str());
        let mut first_start = !self
            .ctx
            .checkpoints
            .snapshot()
            .streams
            .keys()
            .any(|k| k.starts_with(&prefix));
        let mut pauses = AWS_RETRY.pauses();
        while !shutdown.is_cancelled() {
            let streams = match self.ctx.api.list_streams(self.config.table.table()).await {
                Ok(streams) => streams,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the table's streams; retrying");
                    self.ctx
                        .health
                        .set_stream_problem(Some(format!("cannot list the table's streams: {e}")));
                    sleep_or_shutdown(pauses.next_pause(), &shutdown).await;
                    continue;
                }
            };
            pauses = AWS_RETRY.pauses();
            self.forget_vanished_streams(&streams, &prefix);
            let Some(stream) = self.choose_stream(&streams, first_start) else {
                self.ctx.health.set_stream_problem(Some(format!(
                    "table {} has no stream to read; waiting for one to be enabled",
                    self.config.table.table()
                )));
                sleep_or_shutdown(self.config.discovery_interval, &shutdown).await;
                continue;
            };
            tracing::info!(stream = %stream.arn, first_start, "reading stream");
            let end = self.read_stream(&stream.arn, first_start, &shutdown).await;
            first_start = false;
            match end {
                StreamEnd::Drained => {
                    tracing::info!(stream = %stream.arn, "stream disabled and read to its end; moving to the next");
                    self.ctx.checkpoints.update(|c| {
                        let s = c.streams.entry(stream.arn.clone()).or_default();
                        s.finished = true;
                        s.shards.clear();
                    });
                    self.ctx.checkpoints.flush_durably(&shutdown).await;
                }
                StreamEnd::Vanished(why) => {
                    tracing::warn!(stream = %stream.arn, %why, "stream vanished; looking for a new one");
                    self.ctx.health.set_stream_problem(Some(format!(
                        "stream {} vanished ({why}); looking for a new stream",
                        stream.arn
                    )));
                    sleep_or_shutdown(self.config.discovery_interval, &shutdown).await;
                }
                StreamEnd::Stopped => break,
            }
        }
        if let Err(e) = self.ctx.checkpoints.flush().await {
            tracing::error!(error = %e, "cannot save checkpoints at shutdown");
        }
        writer_stop.cancel();
        let _ = writer.await;
    }

    /// Checkpoints of this table's streams that ListStreams no longer lists
    /// (older than 24 hours) are forgotten.
    fn forget_vanished_streams(&self, listed: &[StreamSummary], prefix: &str) {
        let known: Vec<String> = self
            .ctx
            .checkpoints
            .snapshot()
            .streams
            .into_keys()
            .filter(|arn| arn.starts_with(prefix) && !listed.iter().any(|s| &s.arn == arn))
            .collect();
        if !known.is_empty() {
            self.ctx
                .checkpoints
                .update(|c| known.iter().for_each(|arn| drop(c.streams.remove(arn))));
        }
    }

    /// The stream to read now: at the first start the newest; later, the
    /// oldest known stream not yet drained, else the oldest stream newer than
    /// every known one.
    fn choose_stream(&self, streams: &[StreamSummary], first_start: bool) -> Option<StreamSummary> {
        if first_start {
            return stream::newest(streams).cloned();
        }
        let mut sorted: Vec<&StreamSummary> = streams.iter().collect();
        sorted.sort_by(|a, b| a.label.cmp(&b.label));
        let known = self.ctx.checkpoints.snapshot().streams;
        if let Some(unfinished) = sorted
            .iter()
            .find(|s| known.get(&s.arn).is_some_and(|k| !k.finished))
        {
            return Some((*unfinished).clone());
        }
        let newest_known = sorted
            .iter()
            .filter(|s| known.contains_key(&s.arn))
            .map(|s| &s.label)
            .max();
        sorted
            .into_iter()
            .find(|s| !known.contains_key(&s.arn) && newest_known.is_none_or(|k| &s.label > k))
            .cloned()
    }

    async fn read_stream(
        &self,
        arn: &str,
        first_start: bool,
        shutdown: &CancellationToken,
    ) -> StreamEnd {
        let mut run = StreamRun {
            engine: self,
            arn,
            tree: ShardTree::default(),
            readers: JoinSet::new(),
            reader_ids: HashMap::new(),
            latest_now: HashSet::new(),
            events: self.events.clone(),
            stop: shutdown.child_token(),
            give_up: CancellationToken::new(),
            status: StreamStatus::Enabled,
            describe_failures: 0,
        };
        // The first description, retried until it works.
        let mut pauses = AWS_RETRY.pauses();
        let description = loop {
            match stream::describe_all(&*self.ctx.api, arn).await {
                Ok(d) => break d,
                Err(ApiError::NotFound(why)) => return StreamEnd::Vanished(why),
                Err(e) => {
                    tracing::warn!(stream = arn, error = %e, "cannot describe the stream; retrying");
                    self.ctx
                        .health
                        .set_stream_problem(Some(format!("cannot describe stream {arn}: {e}")));
                    if !sleep_or_shutdown(pauses.next_pause(), shutdown).await {
                        return StreamEnd::Stopped;
                    }
                }
            }
        };
        run.events = self.events.for_stream(arn, description.key_schema.clone());
        run.status = description.status.clone();
        run.tree.merge(&description.shards, true);
        run.forget_trimmed_shards();
        let known = self.ctx.checkpoints.snapshot();
        let stream_known = known.streams.contains_key(arn);
        self.ctx.checkpoints.update(|c| {
            c.streams.entry(arn.to_owned()).or_default();
        });
        for id in run.tree.ids().map(str::to_owned).collect::<Vec<_>>() {
            if known.shard(arn, &id) == Some(&ShardPosition::Finished) {
                run.tree.set_state(&id, ShardState::Finished);
            }
        }
        if first_start && !stream_known {
            run.apply_starting_position();
        }
        if !self.ctx.checkpoints.flush_durably(shutdown).await {
            return StreamEnd::Stopped;
        }
        self.ctx.health.set_stream_problem(None);
        run.start_readable();
        self.ctx.health.set_started();
        run.run(shutdown).await
    }
}

/// The state of reading one stream.
struct StreamRun<'a> {
    engine: &'a Engine,
    arn: &'a str,
    tree: ShardTree,
    readers: JoinSet<(String, ShardEnd)>,
    reader_ids: HashMap<tokio::task::Id, String>,
    /// Shards that start at LATEST in this run (first start with LATEST).
    latest_now: HashSet<String>,
    events: EventBuilder,
    /// Tells readers to stop reading.
    stop: CancellationToken,
    /// Tells readers to abandon deliveries in flight.
    give_up: CancellationToken,
    status: StreamStatus,
    describe_failures: u32,
}

/// Pauses between looks for the children of a finished shard that had none
/// yet; after these, the periodic refresh finds them.
const CHILD_CHECKS: [Duration; 4] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

impl StreamRun<'_> {
    fn ctx(&self) -> &ReaderContext {
        &self.engine.ctx
    }

    /// STARTING_POSITION for the shards that exist now and have no checkpoint.
    fn apply_starting_position(&mut self) {
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        let ids: Vec<String> = self
            .tree
            .ids()
            .filter(|id| self.tree.state(id) != Some(ShardState::Finished))
            .map(str::to_owned)
            .collect();
        for id in ids {
            if self.ctx().checkpoints.position(self.arn, &id).is_some() {
                continue;
            }
            let closed = self.tree.info(&id).is_some_and(|s| s.closed);
            match &self.engine.config.starting_position {
                StartingPosition::TrimHorizon => {}
                StartingPosition::Latest if closed => {
                    // Nothing will be added to it: LATEST means nothing to read.
                    self.ctx()
                        .checkpoints
                        .set(self.arn, &id, ShardPosition::Finished);
                    self.tree.set_state(&id, ShardState::Finished);
                }
                StartingPosition::Latest => {
                    // A LATEST iterator has no sequence number to save. If we
                    // stop before the first event is done, the restart reads
                    // from the shard's start and skips what is older than a
                    // minute before this start (a margin for the coarse
                    // record times), so nothing written after it is lost.
                    self.ctx().checkpoints.set(
                        self.arn,
                        &id,
                        ShardPosition::Since(now_ms - 60_000),
                    );
                    self.latest_now.insert(id);
                }
                StartingPosition::At(t) => {
                    let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
                    self.ctx()
                        .checkpoints
                        .set(self.arn, &id, ShardPosition::Since(ms));
                }
            }
        }
    }

    /// Starts a reader on every shard that may be read now.
    fn start_readable(&mut self) {
        loop {
            let mut finished_some = false;
            for id in self.tree.readable() {
                let start = match self.ctx().checkpoints.position(self.arn, &id) {
                    Some(ShardPosition::Finished) => {
                        // Its children may now be readable: look again.
                        self.tree.set_state(&id, ShardState::Finished);
                        finished_some = true;
                        continue;
                    }
                    Some(ShardPosition::After(seq)) => ShardStart {
                        position: IteratorPosition::AfterSequence(seq),
                        skip_before_ms: None,
                    },
                    Some(ShardPosition::Since(_)) if self.latest_now.remove(&id) => ShardStart {
                        position: IteratorPosition::Latest,
                        skip_before_ms: None,
                    },
                    Some(ShardPosition::Since(ms)) => ShardStart {
                        position: IteratorPosition::TrimHorizon,
                        skip_before_ms: Some(ms),
                    },
                    None => ShardStart {
                        position: IteratorPosition::TrimHorizon,
                        skip_before_ms: None,
                    },
                };
                self.tree.set_state(&id, ShardState::Reading);
                let reader = ShardReader::new(
                    self.engine.ctx.clone(),
                    self.arn,
                    &id,
                    start,
                    self.events.clone(),
                );
                let (stop, give_up) = (self.stop.clone(), self.give_up.clone());
                let shard = id.clone();
                let handle = self
                    .readers
                    .spawn(async move { (shard, reader.run(stop, give_up).await) });
                self.reader_ids.insert(handle.id(), id);
            }
            if !finished_some {
                return;
            }
        }
    }

    /// Shard checkpoints of shards the stream no longer lists are forgotten.
    fn forget_trimmed_shards(&self) {
        let tree = &self.tree;
        self.ctx().checkpoints.update(|c| {
            if let Some(s) = c.streams.get_mut(self.arn) {
                s.shards.retain(|id, _| tree.state(id).is_some());
            }
        });
    }

    /// Re-reads the whole shard list; false when the stream is gone.
    async fn refresh(&mut self) -> Result<(), String> {
        match stream::describe_all(&*self.engine.ctx.api, self.arn).await {
            Ok(d) => {
                self.describe_failures = 0;
                self.status = d.status;
                self.tree.merge(&d.shards, true);
                self.forget_trimmed_shards();
                self.ctx().health.set_stream_problem(None);
                self.start_readable();
                Ok(())
            }
            Err(ApiError::NotFound(why)) => Err(why),
            Err(e) => {
                self.describe_failures += 1;
                tracing::warn!(stream = self.arn, error = %e, "cannot refresh the shard list");
                if self.describe_failures >= 3 {
                    self.ctx().health.set_stream_problem(Some(format!(
                        "cannot describe stream {}: {e}",
                        self.arn
                    )));
                }
                Ok(())
            }
        }
    }

    async fn run(mut self, shutdown: &CancellationToken) -> StreamEnd {
        let interval = self.engine.config.discovery_interval;
        let mut next_refresh = Instant::now() + interval;
        // Finished shards whose children were not listed yet, and when and
        // how often to look again.
        let mut orphans: Vec<String> = Vec::new();
        let mut child_check: Option<(Instant, usize)> = None;
        let mut vanished: Option<String> = None;
        loop {
            if self.readers.is_empty() {
                if let Some(why) = vanished.take() {
                    return StreamEnd::Vanished(why);
                }
                if self.status == StreamStatus::Disabled && self.tree.all_finished() {
                    return StreamEnd::Drained;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.shut_down().await;
                    return StreamEnd::Stopped;
                }
                Some(joined) = self.readers.join_next_with_id() => {
                    let (id, end) = match joined {
                        Ok((task, (id, end))) => {
                            self.reader_ids.remove(&task);
                            (id, end)
                        }
                        Err(e) => {
                            let id = self.reader_ids.remove(&e.id()).unwrap_or_default();
                            tracing::error!(shard = %id, error = %e, "a shard reader failed; it will restart from its checkpoint");
                            (id, ShardEnd::Stopped)
                        }
                    };
                    match end {
                        ShardEnd::Finished => {
                            // The parent's end must be saved before a child
                            // starts, or a crash could re-send the parent's
                            // tail after the children's changes.
                            if !self.ctx().checkpoints.flush_durably(shutdown).await {
                                continue;
                            }
                            self.tree.set_state(&id, ShardState::Finished);
                            if !self.adopt_children(&id).await {
                                // No child listed yet: the full list also
                                // tells whether the stream was disabled.
                                if let Err(why) = self.refresh().await {
                                    vanished = Some(why);
                                }
                                if !self.tree.has_children(&id) && self.status != StreamStatus::Disabled {
                                    orphans.push(id);
                                    child_check.get_or_insert((Instant::now() + CHILD_CHECKS[0], 0));
                                }
                            }
                        }
                        ShardEnd::Stopped | ShardEnd::Vanished(_) => {
                            // Restarted from its checkpoint by the next
                            // refresh, if the stream still lists it; not at
                            // once, so a shard that keeps vanishing cannot
                            // hammer DescribeStream.
                            self.tree.set_state(&id, ShardState::Waiting);
                            if let ShardEnd::Vanished(why) = &end {
                                tracing::warn!(shard = %id, %why, "shard vanished");
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(child_check.map_or(next_refresh, |c| c.0)), if child_check.is_some() => {
                    let attempt = child_check.take().map_or(0, |c| c.1);
                    let mut still = Vec::new();
                    for parent in std::mem::take(&mut orphans) {
                        if !self.adopt_children(&parent).await {
                            still.push(parent);
                        }
                    }
                    orphans = still;
                    if !orphans.is_empty() && attempt + 1 < CHILD_CHECKS.len() {
                        child_check = Some((Instant::now() + CHILD_CHECKS[attempt + 1], attempt + 1));
                    } else {
                        orphans.clear();
                    }
                }
                _ = tokio::time::sleep_until(next_refresh) => {
                    next_refresh = Instant::now() + interval;
                    if let Err(why) = self.refresh().await {
                        self.ctx().health.set_stream_problem(Some(format!("stream {} not found: {why}", self.arn)));
                        vanished = Some(why);
                    }
                }
            }
        }
    }

    /// Looks up a finished shard's children and starts those now readable;
    /// false when it has none listed yet.
    async fn adopt_children(&mut self, parent: &str) -> bool {
        match stream::describe_children(&*self.engine.ctx.api, self.arn, parent).await {
            Ok(children) if !children.is_empty() => {
                tracing::info!(shard = parent, children = ?children.iter().map(|c| &c.id).collect::<Vec<_>>(), "starting the children of a finished shard");
                self.tree.merge(&children, false);
                self.start_readable();
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(shard = parent, error = %e, "cannot list the children of a finished shard");
                false
            }
        }
    }

    /// Stops reading, gives deliveries in flight the shutdown timeout, then
    /// abandons them (they stay unacknowledged and are sent again after the
    /// restart).
    async fn shut_down(&mut self) {
        self.stop.cancel();
        let deadline = tokio::time::sleep(self.engine.config.shutdown_timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                joined = self.readers.join_next() => if joined.is_none() { break },
                _ = &mut deadline, if !self.give_up.is_cancelled() => {
                    tracing::warn!("shutdown timeout: abandoning deliveries in flight; they will be sent again after a restart");
                    self.give_up.cancel();
                }
            }
        }
    }
}

/// Sleeps unless shutdown comes first; false on shutdown.
async fn sleep_or_shutdown(pause: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(pause) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_positions() {
        assert_eq!(
            "LATEST".parse::<StartingPosition>().unwrap(),
            StartingPosition::Latest
        );
        assert_eq!(
            "TRIM_HORIZON".parse::<StartingPosition>().unwrap(),
            StartingPosition::TrimHorizon
        );
        assert!(matches!(
            "2024-01-01T00:00:00Z".parse::<StartingPosition>().unwrap(),
            StartingPosition::At(_)
        ));
        assert!(matches!(
            "2024-01-01T01:00:00+01:00"
                .parse::<StartingPosition>()
                .unwrap(),
            StartingPosition::At(_)
        ));
        for bad in ["", "EARLIEST", "2024-01-01", "yesterday"] {
            let err = bad.parse::<StartingPosition>().unwrap_err().to_string();
            assert!(err.starts_with("STARTING_POSITION"), "{err}");
        }
    }
}
