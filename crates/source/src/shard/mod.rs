//! Shard reader: one task per shard, from its start position to its end.
//!
//! Owns the shard's read loop: fetch pages (at once while records come; after
//! an empty page, soon while the shard was active in the last seconds, else
//! after `POLL_INTERVAL`), turn records into events, deliver
//! them through the in-flight [`window`], and move the checkpoint over the
//! done prefix (the ordered finalizer). It never decides which shards to read
//! or in what order — that is `engine`'s job with `stream`'s lineage.

mod fetch;
mod window;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
pub use window::{Completed, DeliveryWindow, Pending};

use crate::checkpoint::{Checkpointer, ShardPosition};
use crate::engine::EngineConfig;
use crate::event::StreamEvent;
use crate::event::{EventBuilder, aws};
use crate::filter::RecordFilter;
use crate::health::Health;
use crate::metrics::{Metrics, ReasonLabel};
use crate::progress::ShardProgress;
use crate::record::{ChangeRecord, ItemKey, Record, RecordError, SequenceNumber};
use crate::sink::{Delivery, Sink, deliver};
use crate::stream::{IteratorPosition, StreamsApi};
use fetch::{Cursor, Fetched, next_page};

/// What every reader of a source shares.
pub struct ReaderContext {
    pub api: Arc<dyn StreamsApi>,
    pub sink: Arc<dyn Sink>,
    pub checkpoints: Checkpointer,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    /// The engine's configuration: deliveries at once, read-ahead, polling,
    /// retries, the filter and the dead-letter sink.
    pub config: Arc<EngineConfig>,
}

/// Where a reader begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardStart {
    pub position: IteratorPosition,
    /// Records created before this instant (Unix ms) are skipped (done, not
    /// sent): STARTING_POSITION as a timestamp.
    pub skip_before_ms: Option<i64>,
}

/// Why a reader returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardEnd {
    /// Closed, read to its end, every event done; its checkpoint says so.
    Finished,
    /// Asked to stop; its checkpoint covers what is done.
    Stopped,
    /// The shard or its stream is gone.
    Vanished(String),
}

pub struct ShardReader {
    ctx: Arc<ReaderContext>,
    stream: Arc<str>,
    shard: Arc<str>,
    start: ShardStart,
    events: EventBuilder,
}

/// The checkpoint's view of the shard's events: each with its record time
/// (Unix ms) and when it was read (ms on [`Progress`]'s clock), so that the
/// oldest one not done can be reported.
///
/// [`Progress`]: crate::progress::Progress
type OrderedFinalizer = crate::checkpoint::OrderedFinalizer<(Option<i64>, u64)>;

/// A page being fetched and turned into events, in a task of its own:
/// parsing and encoding a thousand records takes milliseconds, and
/// deliveries go on meanwhile on the reader's task. Dropping it (on stop)
/// aborts the fetch.
type Fetching = AbortOnDropHandle<(Cursor, Fetched<Result<Prepared, RecordError>>)>;

/// A record made ready off the reader's task: its place in the shard and,
/// unless it is skipped, its event.
struct Prepared {
    sequence: SequenceNumber,
    item: ItemKey,
    created_ms: Option<i64>,
    /// `None` when the record is older than the starting timestamp, or
    /// FILTER does not pass it.
    event: Option<StreamEvent>,
    filtered: bool,
}

impl Prepared {
    fn new(
        events: &EventBuilder,
        filter: Option<&RecordFilter>,
        skip_before_ms: Option<i64>,
        record: Record,
    ) -> Result<Self, RecordError> {
        let change = ChangeRecord::new(record)?;
        let created_ms = change.created().and_then(|t| t.to_millis().ok());
        let skipped = matches!((skip_before_ms, created_ms), (Some(before), Some(created)) if created < before);
        // Patterns match the record as Lambda gives it, whatever DATA_FORMAT.
        let filtered = !skipped
            && filter.is_some_and(|f| {
                let mut shape = Vec::with_capacity(512);
                aws::encode_aws(&change.record, events.stream(), &mut shape);
                serde_json::from_slice(&shape).is_ok_and(|record| !f.matches(&record))
            });
        let event = (!skipped && !filtered).then(|| events.build(&change));
        Ok(Prepared {
            sequence: change.sequence,
            item: change.item,
            created_ms,
            event,
            filtered,
        })
    }
}

impl ShardReader {
    pub fn new(
        ctx: Arc<ReaderContext>,
        stream: &str,
        shard: &str,
        start: ShardStart,
        events: EventBuilder,
    ) -> Self {
        ShardReader {
            ctx,
            stream: Arc::from(stream),
            shard: Arc::from(shard),
            events: events.for_shard(shard),
            start,
        }
    }

    /// Reads until the shard ends or `stop` fires; then lets deliveries in
    /// flight finish, until `give_up` fires.
    pub async fn run(self, stop: CancellationToken, give_up: CancellationToken) -> ShardEnd {
        let ctx = self.ctx.clone();
        ctx.health.shard_started(&self.shard);
        ctx.metrics.shards_owned.inc();
        let progress = ctx.metrics.progress.add_shard(&self.stream, &self.shard);
        tracing::info!(shard = %self.shard, start = ?self.start, "reading shard");
        let shard = self.shard.clone();
        let end = self.read(&progress, stop, give_up).await;
        ctx.metrics.progress.remove(&progress);
        ctx.metrics.shards_owned.dec();
        ctx.health.shard_stopped(&shard);
        end
    }

    async fn read(
        self,
        progress: &Arc<ShardProgress>,
        stop: CancellationToken,
        give_up: CancellationToken,
    ) -> ShardEnd {
        let ctx = self.ctx.clone();
        let mut finalizer = OrderedFinalizer::default();
        let mut window = {
            let ctx = ctx.clone();
            let give_up = give_up.clone();
            DeliveryWindow::new(ctx.config.max_in_flight, move |p: Pending| {
                let ctx = ctx.clone();
                let give_up = give_up.clone();
                Box::pin(async move {
                    let delivery = deliver(
                        &*ctx.sink,
                        ctx.config.dead_letter.as_ref(),
                        &p.event,
                        &ctx.config.retry,
                        &ctx.metrics,
                        &give_up,
                    )
                    .await;
                    Completed {
                        ticket: p.ticket,
                        item: p.item,
                        delivery,
                    }
                }) as Pin<Box<dyn Future<Output = Completed> + Send>>
            })
        };
        let mut cursor = Some(Cursor::new(self.start.position.clone()));
        let mut fetching: Option<Fetching> = None;
        let mut pause = Duration::ZERO;
        let mut last_records: Option<tokio::time::Instant> = None;
        let mut end: Option<ShardEnd> = None;
        loop {
            if end.is_none()
                && fetching.is_none()
                && window.outstanding() < ctx.config.read_ahead
                && let Some(c) = cursor.take()
            {
                let page = next_page(
                    ctx.clone(),
                    self.stream.clone(),
                    self.shard.clone(),
                    c,
                    pause,
                );
                let (events, skip_before_ms) = (self.events.clone(), self.start.skip_before_ms);
                let filter = ctx.config.filter.clone();
                fetching = Some(AbortOnDropHandle::new(tokio::spawn(async move {
                    let (c, fetched) = page.await;
                    (
                        c,
                        fetched
                            .map(|r| Prepared::new(&events, filter.as_deref(), skip_before_ms, r)),
                    )
                })));
            }
            if end.is_some() && window.in_flight() == 0 {
                break;
            }
            tokio::select! {
                biased;
                _ = stop.cancelled(), if end.is_none() => {
                    end = Some(ShardEnd::Stopped);
                    fetching = None;
                }
                Some(done) = window.next_completed(), if window.in_flight() > 0 => {
                    match done.delivery {
                        Delivery::Delivered
                        | Delivery::DeadLettered(_)
                        | Delivery::Dropped(..) => finalizer.done(done.ticket),
                        Delivery::Abandoned => {}
                    }
                    self.checkpoint(progress, &mut finalizer, &window);
                }
                joined = async { fetching.as_mut().expect("guarded").await }, if fetching.is_some() => {
                    fetching = None;
                    let (mut c, fetched) = match joined {
                        Ok(page) => page,
                        // A panic stays one; otherwise the runtime is
                        // shutting down.
                        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Err(_) => {
                            end = Some(ShardEnd::Stopped);
                            continue;
                        }
                    };
                    match fetched {
                        Fetched::Page { records, last } => {
                            let now = tokio::time::Instant::now();
                            if !records.is_empty() {
                                last_records = Some(now);
                            }
                            pause = match last_records {
                                _ if !records.is_empty() => Duration::ZERO,
                                Some(at) if now - at < ctx.config.active_window => ctx.config.active_poll_interval,
                                _ => ctx.config.poll_interval,
                            };
                            if let Some(seq) = self.accept(progress, records, &mut finalizer, &mut window) {
                                c.resume = IteratorPosition::AfterSequence(seq);
                            }
                            self.checkpoint(progress, &mut finalizer, &window);
                            if last {
                                end = Some(ShardEnd::Finished);
                            }
                            cursor = Some(c);
                        }
                        Fetched::Vanished(why) => end = Some(ShardEnd::Vanished(why)),
                    }
                }
            }
        }
        match end {
            Some(ShardEnd::Finished) if finalizer.is_empty() => {
                ctx.checkpoints
                    .set(&self.stream, &self.shard, ShardPosition::Finished);
                tracing::info!(shard = %self.shard, "shard read and delivered to its end");
                ShardEnd::Finished
            }
            Some(ShardEnd::Vanished(why)) => ShardEnd::Vanished(why),
            _ => ShardEnd::Stopped,
        }
    }

    /// Moves the checkpoint over the done prefix, and reports what waits.
    fn checkpoint<S>(
        &self,
        progress: &Arc<ShardProgress>,
        finalizer: &mut OrderedFinalizer,
        window: &DeliveryWindow<S>,
    ) where
        S: FnMut(Pending) -> Pin<Box<dyn Future<Output = Completed> + Send>>,
    {
        let covered_before = finalizer.covered();
        if let Some(seq) = finalizer.advance() {
            let events = finalizer.covered() - covered_before;
            self.ctx.checkpoints.advance(progress, seq, events);
        }
        let waiting = window.outstanding();
        progress.set_waiting(
            waiting,
            finalizer.oldest().copied(),
            finalizer.len().saturating_sub(waiting),
        );
    }

    /// Hands a page's records to delivery in order; returns the last
    /// sequence number read.
    fn accept<S>(
        &self,
        progress: &ShardProgress,
        records: Vec<Result<Prepared, RecordError>>,
        finalizer: &mut OrderedFinalizer,
        window: &mut DeliveryWindow<S>,
    ) -> Option<SequenceNumber>
    where
        S: FnMut(Pending) -> Pin<Box<dyn Future<Output = Completed> + Send>>,
    {
        let metrics = &self.ctx.metrics;
        if records.is_empty() {
            progress.set_behind(None);
            self.ctx.health.caught_up(&self.shard);
            return None;
        }
        metrics.records_read.inc_by(records.len() as u64);
        let read_at = metrics.progress.now();
        let mut last = None;
        let mut newest_ms = None;
        for record in records {
            let prepared = match record {
                Ok(prepared) => prepared,
                Err(e) => {
                    metrics
                        .events_dropped
                        .get_or_create(&ReasonLabel {
                            reason: "malformed".into(),
                        })
                        .inc();
                    tracing::error!(shard = %self.shard, error = %e, "skipping a malformed record");
                    continue;
                }
            };
            newest_ms = prepared.created_ms.or(newest_ms);
            if prepared.filtered {
                metrics.events_filtered.inc();
            }
            let ticket = finalizer.push(prepared.sequence.clone(), (prepared.created_ms, read_at));
            last = Some(prepared.sequence);
            match prepared.event {
                Some(event) => window.push(Pending {
                    ticket,
                    item: prepared.item,
                    event,
                }),
                None => finalizer.done(ticket),
            }
        }
        progress.set_behind(newest_ms);
        last
    }
}
