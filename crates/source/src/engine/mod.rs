//! The engine: picks the table's stream, runs one reader per readable shard in
//! lineage order, moves from a drained stream to the next, and stops cleanly.
//!
//! Owns the order of things: which stream, which shards now, where each
//! starts (checkpoint or STARTING_POSITION), when a parent's children may
//! start. It never reads records or sends events itself (`shard` does), and
//! nothing from AWS ends it: problems make it unhealthy while it keeps
//! trying.
//!
//! - `config`: the settings and their defaults;
//! - `startup`: the checks before anything runs;
//! - this file: choosing the stream, and moving to the next one;
//! - `stream_run`: the shards of one stream, supervised;
//! - `snapshot_run`: the table's items (SNAPSHOT=initial), beside them.

pub(crate) mod config;
mod snapshot_run;
mod startup;
mod stream_run;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use config::{EngineConfig, StartingPosition, StartingPositionError};
pub use startup::{StartupBudget, StartupError, await_credentials, preflight};
use stream_run::StreamRun;

use crate::arn::TableArn;
use crate::checkpoint::{Checkpointer, Checkpoints};
use crate::event::EventBuilder;
use crate::health::Health;
use crate::lease::LeaseKeeper;
use crate::metrics::Metrics;
use crate::shard::ReaderContext;
use crate::sink::Sink;
use crate::snapshot::{SnapshotGate, TableScanner};
use crate::stream::{self, AWS_RETRY, ApiError, StreamSummary, StreamsApi};

pub struct Engine {
    /// Shared with the readers (`ctx.config`).
    config: Arc<EngineConfig>,
    ctx: Arc<ReaderContext>,
    events: EventBuilder,
    describe_pacer: stream::DescribePacer,
    /// With COORDINATION: which shards this replica reads.
    leases: Option<Arc<LeaseKeeper>>,
    /// With SNAPSHOT=initial.
    snapshot: Option<Snapshot>,
}

/// `SNAPSHOT=initial`: at the first start, every item of the table is sent
/// (operation `SNAPSHOT`), joined with the stream's changes so that no
/// item's state steps back.
pub struct Snapshot {
    pub scanner: TableScanner,
    /// How far a stream record's time may fall before its write: the
    /// record times' rounding (AWS: a second; DynamoDB Local: a minute)
    /// plus clock skew.
    pub margin: Duration,
    /// DescribeTable's item count, for progress.
    pub estimated_items: i64,
}

impl Snapshot {
    fn margin_ms(&self) -> i64 {
        self.margin.as_millis() as i64
    }
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
            fast_pollers: Default::default(),
            lease_deadline: None,
            snapshot: None,
        });
        Engine {
            config,
            ctx,
            events,
            describe_pacer: Default::default(),
            leases: None,
            snapshot: None,
        }
    }

    /// Takes a snapshot of the table at the first start (or finishes one
    /// begun). Not together with [`Engine::with_leases`] (the adapter
    /// refuses the two): the snapshot's watermark needs every shard.
    pub fn with_snapshot(mut self, snapshot: Snapshot) -> Self {
        let ctx = Arc::get_mut(&mut self.ctx)
            .expect("the readers share the context only once the engine runs");
        ctx.snapshot = Some(Arc::new(SnapshotGate::new(snapshot.margin_ms())));
        ctx.metrics
            .snapshot_items_estimated
            .set(snapshot.estimated_items);
        self.snapshot = Some(snapshot);
        self
    }

    /// Shares the stream with other replicas through `keeper`'s leases: it
    /// must also be the checkpoints' store (the positions live in the
    /// leases).
    pub fn with_leases(mut self, keeper: Arc<LeaseKeeper>) -> Self {
        Arc::get_mut(&mut self.ctx)
            .expect("the readers share the context only once the engine runs")
            .lease_deadline = Some(keeper.deadline());
        self.leases = Some(keeper);
        self
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
        let saved = self.ctx.checkpoints.snapshot();
        let mut first_start = is_first_start(&saved, &self.config.table);
        if let Some(gate) = &self.ctx.snapshot
            && !snapshot_due(&saved, &self.config.table)
        {
            // Only a first start takes a snapshot.
            gate.finish();
        }
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
            // Still the first start if the stream vanished before its
            // positions were saved.
            first_start = is_first_start(&self.ctx.checkpoints.snapshot(), &self.config.table);
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
        // The first description, retried until it works.
        let mut pauses = AWS_RETRY.pauses();
        let (description, listed_ms) = loop {
            let listed_ms = crate::unix_ms_now();
            match stream::describe_all(&*self.ctx.api, &self.describe_pacer, arn).await {
                Ok(d) => break (d, listed_ms),
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
        StreamRun::start(self, arn, description, listed_ms, first_start, shutdown).await
    }
}

/// No stream of `table` has a checkpoint yet.
fn is_first_start(saved: &Checkpoints, table: &TableArn) -> bool {
    let prefix = format!("{}/stream/", table.as_str());
    !saved.streams.keys().any(|k| k.starts_with(&prefix))
}

/// Whether `SNAPSHOT=initial` scans the table now: at the first start, or
/// to finish a snapshot begun and not done.
pub fn snapshot_due(saved: &Checkpoints, table: &TableArn) -> bool {
    match &saved.snapshot {
        Some(progress) => !progress.done(),
        None => is_first_start(saved, table),
    }
}

/// Sleeps unless shutdown comes first; false on shutdown.
async fn sleep_or_shutdown(pause: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(pause) => true,
    }
}
