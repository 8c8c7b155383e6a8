//! Supervising one stream's shards: a reader per readable shard, in lineage
//! order, children started as soon as their parent is done and saved, the
//! shard list refreshed, readers stopped at shutdown.
//!
//! With leases (COORDINATION), the lease keeper decides which shards this
//! replica reads: every shard this run knows is offered to it as a lease,
//! and its orders start and stop readers; a reader that ends releases its
//! lease after its position is saved.
//!
//! Owns which shards run now and where each starts. It never reads records
//! or sends events (`shard` does), and never writes a lease (the keeper
//! does).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::snapshot_run::SnapshotRun;
use super::{Engine, StartingPosition, StreamEnd};
use crate::checkpoint::ShardPosition;
use crate::event::EventBuilder;
use crate::lease::{Lease, LeaseKeeper, Order};
use crate::prepare::Preparer;
use crate::shard::{ReaderContext, ShardEnd, ShardReader, ShardStart};
use crate::snapshot::SnapshotProgress;
use crate::stream::{
    self, ApiError, IteratorPosition, KeySchema, ShardState, ShardTree, StreamDescription,
    StreamStatus,
};

/// The state of reading one stream.
pub(super) struct StreamRun<'a> {
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
    /// When the whole shard list is read again.
    next_refresh: Instant,
    /// Each reader's own stop and give-up tokens (children of the run's).
    tokens: HashMap<String, (CancellationToken, CancellationToken)>,
    /// With COORDINATION.
    leased: Option<Leased>,
    /// The snapshot's run, while one runs beside the readers.
    snapshot: JoinSet<()>,
}

/// A run's side of the lease keeper.
struct Leased {
    keeper: Arc<LeaseKeeper>,
    /// Taken by `run`.
    orders: Option<mpsc::UnboundedReceiver<Order>>,
    /// Ends the keeper's rounds.
    stop_keeping: CancellationToken,
    /// Shards whose lease was lost: their reader ends without saving or
    /// releasing anything.
    lost: HashSet<String>,
    /// Starts ordered while the shard's previous reader was still ending.
    queued: HashMap<String, Option<ShardPosition>>,
    /// Releases under way (awaited before the keeper ends).
    releasing: JoinSet<()>,
}

impl Leased {
    /// Releases a shard's lease with its position, without holding up the
    /// other shards.
    fn release(&mut self, shard: String, position: Option<ShardPosition>) {
        let keeper = self.keeper.clone();
        self.releasing
            .spawn(async move { keeper.release(&shard, position.as_ref()).await });
    }
}

/// Pauses between looks for the children of a finished shard that had none
/// yet; after these, the periodic refresh finds them.
const CHILD_CHECKS: [Duration; 7] = [
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// How often the shard list is read while a snapshot runs: a chunk waits
/// for a list asked for 2 s after its read.
const SNAPSHOT_LIST_INTERVAL: Duration = Duration::from_secs(2);

/// Finished shards whose children were not listed yet, and when (and how
/// many times already) to look again.
#[derive(Default)]
struct Orphans {
    parents: Vec<String>,
    next_check: Option<(Instant, usize)>,
}

impl Orphans {
    fn add(&mut self, parent: String) {
        self.parents.push(parent);
        self.next_check
            .get_or_insert((Instant::now() + CHILD_CHECKS[0], 0));
    }
}

impl<'a> StreamRun<'a> {
    /// Reads a described stream until it is drained, vanishes or shutdown
    /// comes: finished shards marked, STARTING_POSITION applied at the first
    /// start, the positions saved, then the readable shards started.
    /// `listed_ms`: when `description` was asked for.
    pub(super) async fn start(
        engine: &'a Engine,
        arn: &'a str,
        description: StreamDescription,
        listed_ms: i64,
        first_start: bool,
        shutdown: &CancellationToken,
    ) -> StreamEnd {
        let ctx = &engine.ctx;
        let mut run = StreamRun {
            engine,
            arn,
            tree: ShardTree::default(),
            readers: JoinSet::new(),
            reader_ids: HashMap::new(),
            latest_now: HashSet::new(),
            events: engine
                .events
                .for_stream(arn, description.key_schema.clone()),
            stop: shutdown.child_token(),
            give_up: CancellationToken::new(),
            status: description.status.clone(),
            describe_failures: 0,
            next_refresh: Instant::now() + engine.config.shard_list_interval,
            tokens: HashMap::new(),
            leased: None,
            snapshot: JoinSet::new(),
        };
        run.next_refresh = Instant::now() + run.shard_list_interval();
        if let Some(keeper) = &engine.leases {
            let orders = keeper.begin(arn).await;
            let stop_keeping = CancellationToken::new();
            tokio::spawn(keeper.clone().keep(stop_keeping.clone()));
            run.leased = Some(Leased {
                keeper: keeper.clone(),
                orders: Some(orders),
                stop_keeping,
                lost: HashSet::new(),
                queued: HashMap::new(),
                releasing: JoinSet::new(),
            });
        }
        run.tree.merge(&description.shards, true);
        run.forget_trimmed_shards();
        let known = ctx.checkpoints.snapshot();
        let stream_known = known.streams.contains_key(arn);
        ctx.checkpoints.update(|c| {
            c.streams.entry(arn.to_owned()).or_default();
        });
        for id in run.tree.ids().map(str::to_owned).collect::<Vec<_>>() {
            if known.shard(arn, &id) == Some(&ShardPosition::Finished) {
                run.tree.set_state(&id, ShardState::Finished);
            }
        }
        if first_start && !stream_known {
            let mut position = engine.config.starting_position.clone();
            // A minute; with a snapshot, its margin: what was written before
            // is in the scan, and sent again it could follow a newer row.
            let mut latest_margin_ms = 60_000;
            if let Some(snapshot) = &engine.snapshot
                && known.snapshot.is_none()
            {
                let progress =
                    SnapshotProgress::new(crate::unix_ms_now(), snapshot.scanner.total_segments());
                tracing::info!(
                    segments = progress.total_segments,
                    "taking a snapshot of the table: every item is sent, then changes follow"
                );
                ctx.checkpoints.update(|c| c.snapshot = Some(progress));
                // The scan begins once every reader holds its iterator: what
                // was written before is in the scan, what comes after in
                // the stream.
                position = StartingPosition::Latest;
                latest_margin_ms = snapshot.margin_ms();
            }
            run.apply_starting_position(&position, latest_margin_ms);
        }
        let end = if ctx.checkpoints.flush_durably(shutdown).await {
            ctx.health.set_stream_problem(None);
            if let Some(gate) = &ctx.snapshot {
                gate.listed(listed_ms);
            }
            run.track_shards();
            run.start_snapshot(description.key_schema.clone());
            run.start_readable();
            ctx.health.set_started();
            run.run(shutdown).await
        } else {
            StreamEnd::Stopped
        };
        // A snapshot not done goes on with the next run, from its progress.
        run.snapshot.abort_all();
        while run.snapshot.join_next().await.is_some() {}
        if let Some(gate) = &ctx.snapshot {
            gate.end_run();
        }
        if let Some(leased) = &mut run.leased {
            // Every reader has ended: their positions are final, and go to
            // the next holders with the leases.
            leased.stop_keeping.cancel();
            while leased.releasing.join_next().await.is_some() {}
            if let Err(e) = ctx.checkpoints.flush().await {
                tracing::error!(error = %e, "cannot save checkpoints before releasing the leases");
            }
            // Bounded: a lease store that does not answer must not hold the
            // process; the leases then pass on when the heartbeat expires.
            let snapshot = ctx.checkpoints.snapshot();
            let within = run.engine.config.shutdown_timeout;
            if tokio::time::timeout(within, leased.keeper.end(&snapshot))
                .await
                .is_err()
            {
                tracing::warn!(
                    within = %crate::duration_text(within),
                    "the leases could not be released in time: other replicas take them when this replica's heartbeat expires"
                );
            }
        }
        end
    }
}

impl StreamRun<'_> {
    fn ctx(&self) -> &ReaderContext {
        &self.engine.ctx
    }

    /// While a snapshot runs, which shards count in its watermark: those
    /// not finished, and finished ones whose children are not known yet
    /// (unless the stream is disabled: they have none).
    fn track_shards(&self) {
        let Some(gate) = &self.ctx().snapshot else {
            return;
        };
        let finished = |id: &&str| self.tree.state(id) == Some(ShardState::Finished);
        let awaiting = |id: &&str| {
            finished(id) && !self.tree.has_children(id) && self.status != StreamStatus::Disabled
        };
        gate.track_shards(
            self.tree.ids().filter(|id| !finished(id)),
            self.tree.ids().filter(awaiting),
        );
    }

    /// Runs the snapshot beside the readers, if one is due.
    fn start_snapshot(&mut self, key_schema: Option<KeySchema>) {
        let (Some(snapshot), Some(gate)) = (&self.engine.snapshot, &self.ctx().snapshot) else {
            return;
        };
        if !gate.is_active() {
            return;
        }
        let progress = match self.ctx().checkpoints.snapshot().snapshot {
            Some(progress) if !progress.done() => progress,
            // Not due after all (the engine decides before the first run).
            _ => return gate.finish(),
        };
        let Some(key_schema) = key_schema else {
            let problem = format!(
                "the snapshot cannot run: stream {} does not say the table's key schema",
                self.arn
            );
            tracing::error!("{problem}");
            gate.finish();
            return self.ctx().health.set_snapshot_problem(Some(problem));
        };
        let run = SnapshotRun {
            ctx: self.engine.ctx.clone(),
            gate: gate.clone(),
            scanner: snapshot.scanner.clone(),
            preparer: Preparer::new(
                self.events.clone(),
                self.engine.config.filter.clone(),
                None,
                None,
            ),
            table: self.engine.config.table.clone(),
            key_schema,
            await_readers: !self.latest_now.is_empty(),
        };
        let (stop, give_up) = (self.stop.child_token(), self.give_up.child_token());
        self.snapshot
            .spawn(async move { run.run(progress, stop, give_up).await });
    }

    /// `position` (STARTING_POSITION, or LATEST for a new snapshot) for the
    /// shards that exist now and have no checkpoint. A LATEST shard's
    /// restart before its first event skips what is older than
    /// `latest_margin_ms` before now.
    fn apply_starting_position(&mut self, position: &StartingPosition, latest_margin_ms: i64) {
        let now_ms = crate::unix_ms_now();
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
            match position {
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
                    // from the shard's start and skips what is older than the
                    // margin before this start (for the coarse record times),
                    // so nothing written after it is lost.
                    self.ctx().checkpoints.set(
                        self.arn,
                        &id,
                        ShardPosition::Since(now_ms - latest_margin_ms),
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

    /// Starts a reader on every shard that may be read now; one log line
    /// says how many (a stream may have thousands). With leases, offers
    /// every known shard to the keeper instead, as the lease to create
    /// when it has none: it starts where the checkpoints (carried over, or
    /// STARTING_POSITION) say.
    fn start_readable(&mut self) {
        if let Some(leased) = &self.leased {
            let checkpoints = &self.engine.ctx.checkpoints;
            leased.keeper.know(self.tree.ids().map(|id| {
                let parents = self.tree.info(id).and_then(|i| i.parent.clone());
                Lease {
                    checkpoint: checkpoints.position(self.arn, id),
                    ..Lease::new(self.arn, id, parents.into_iter().collect())
                }
            }));
            return;
        }
        let mut started: Vec<String> = Vec::new();
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
                self.spawn_reader(&id, start);
                started.push(id);
            }
            if !finished_some {
                break;
            }
            self.track_shards();
        }
        if !started.is_empty() {
            tracing::info!(
                stream = self.arn,
                started = started.len(),
                reading = self.readers.len(),
                shards = %some_of(&started),
                "reading shards"
            );
        }
    }

    fn spawn_reader(&mut self, id: &str, start: ShardStart) {
        self.tree.set_state(id, ShardState::Reading);
        let reader = ShardReader::new(
            self.engine.ctx.clone(),
            self.arn,
            id,
            start,
            self.events.clone(),
        );
        let (stop, give_up) = (self.stop.child_token(), self.give_up.child_token());
        self.tokens
            .insert(id.to_owned(), (stop.clone(), give_up.clone()));
        let shard = id.to_owned();
        let handle = self
            .readers
            .spawn(async move { (shard, reader.run(stop, give_up).await) });
        self.reader_ids.insert(handle.id(), id.to_owned());
    }

    /// Carries out the lease keeper's order.
    async fn obey(&mut self, order: Order) {
        let Some(leased) = &mut self.leased else {
            return;
        };
        match order {
            Order::Start { shard, checkpoint } => {
                if self.tokens.contains_key(&shard) {
                    leased.queued.insert(shard, checkpoint);
                } else {
                    self.start_leased(shard, checkpoint).await;
                }
            }
            Order::Stop { shard, lost } => {
                leased.queued.remove(&shard);
                match self.tokens.get(&shard) {
                    Some((stop, give_up)) => {
                        stop.cancel();
                        if lost {
                            // Another replica may be sending these now.
                            give_up.cancel();
                            leased.lost.insert(shard);
                        }
                    }
                    None if !lost => {
                        let position = self.engine.ctx.checkpoints.position(self.arn, &shard);
                        leased.release(shard, position);
                    }
                    None => {}
                }
            }
        }
    }

    /// Starts reading a shard whose lease was just taken, from the lease's
    /// checkpoint.
    async fn start_leased(&mut self, shard: String, checkpoint: Option<ShardPosition>) {
        let start = match &checkpoint {
            Some(ShardPosition::After(seq)) => ShardStart {
                position: IteratorPosition::AfterSequence(seq.clone()),
                skip_before_ms: None,
            },
            Some(ShardPosition::Since(ms)) => ShardStart {
                position: IteratorPosition::TrimHorizon,
                skip_before_ms: Some(*ms),
            },
            None => ShardStart {
                position: IteratorPosition::TrimHorizon,
                skip_before_ms: None,
            },
            // Never taken: a finished lease is not readable.
            Some(ShardPosition::Finished) => return,
        };
        self.ctx()
            .checkpoints
            .reset(self.arn, &shard, checkpoint.clone());
        self.spawn_reader(&shard, start);
        if let Some(leased) = &self.leased {
            leased.keeper.resumed(&shard, checkpoint.as_ref()).await;
        }
    }

    /// A start ordered while the shard's previous reader was ending.
    async fn start_queued(&mut self, id: &str) {
        if let Some(checkpoint) = self.leased.as_mut().and_then(|l| l.queued.remove(id)) {
            self.start_leased(id.to_owned(), checkpoint).await;
        }
    }

    /// How often the whole shard list is read again: more often while a
    /// snapshot runs, since its chunks wait for a list newer than their read.
    fn shard_list_interval(&self) -> Duration {
        let interval = self.engine.config.shard_list_interval;
        match &self.ctx().snapshot {
            Some(gate) if gate.is_active() => interval.min(SNAPSHOT_LIST_INTERVAL),
            _ => interval,
        }
    }

    /// Every shard is read to its end (by any replica, with leases).
    fn all_finished(&self) -> bool {
        match &self.leased {
            Some(leased) => leased.keeper.all_finished(),
            None => self.tree.all_finished(),
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
        let listed_ms = crate::unix_ms_now();
        match stream::describe_all(&*self.engine.ctx.api, &self.engine.describe_pacer, self.arn)
            .await
        {
            Ok(d) => {
                self.describe_failures = 0;
                self.status = d.status;
                self.tree.merge(&d.shards, true);
                self.forget_trimmed_shards();
                self.track_shards();
                if let Some(gate) = &self.ctx().snapshot {
                    gate.listed(listed_ms);
                }
                self.ctx().health.set_stream_problem(None);
                self.start_readable();
                Ok(())
            }
            Err(ApiError::NotFound(why)) => Err(why),
            Err(e) => {
                self.describe_failures += 1;
                // Readers waiting for a refresh wait no longer than usual.
                self.next_refresh = Instant::now() + self.engine.config.discovery_interval;
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

    async fn run(&mut self, shutdown: &CancellationToken) -> StreamEnd {
        let mut orphans = Orphans::default();
        let mut vanished: Option<String> = None;
        let mut orders = self.leased.as_mut().and_then(|l| l.orders.take());
        loop {
            if self.readers.is_empty() {
                if let Some(why) = vanished.take() {
                    return StreamEnd::Vanished(why);
                }
                if self.status == StreamStatus::Disabled && self.all_finished() {
                    return StreamEnd::Drained;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    if let Some(leased) = &self.leased {
                        leased.keeper.close();
                    }
                    self.shut_down().await;
                    return StreamEnd::Stopped;
                }
                Some(order) = async {
                    match orders.as_mut() {
                        Some(orders) => orders.recv().await,
                        None => std::future::pending().await,
                    }
                } => self.obey(order).await,
                Some(Err(e)) = self.snapshot.join_next() => {
                    let problem = format!("the snapshot stopped: {e}; it resumes where it was after a restart");
                    tracing::error!("{problem}");
                    self.ctx().health.set_snapshot_problem(Some(problem));
                    if let Some(gate) = &self.ctx().snapshot {
                        // Readers must not wait for rows that will not come,
                        // nor note records for a join that will not run. The
                        // progress saved stays: a restart resumes it.
                        gate.finish();
                    }
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
                    if let Some(why) = self.reader_ended(id, end, shutdown, &mut orphans).await {
                        vanished = Some(why);
                    }
                }
                _ = tokio::time::sleep_until(orphans.next_check.map_or(self.next_refresh, |c| c.0)), if orphans.next_check.is_some() => {
                    self.look_for_children(&mut orphans).await;
                }
                _ = tokio::time::sleep_until(self.next_refresh) => {
                    self.next_refresh = Instant::now() + self.shard_list_interval();
                    if let Err(why) = self.refresh().await {
                        self.ctx().health.set_stream_problem(Some(format!("stream {} not found: {why}", self.arn)));
                        vanished = Some(why);
                    }
                }
            }
        }
    }

    /// A reader has ended: a finished shard's end is saved and its children
    /// started (or looked for again soon); a stopped or vanished one waits
    /// for the next refresh. Returns why the stream vanished, if a refresh
    /// found that.
    async fn reader_ended(
        &mut self,
        id: String,
        end: ShardEnd,
        shutdown: &CancellationToken,
        orphans: &mut Orphans,
    ) -> Option<String> {
        self.tokens.remove(&id);
        if let Some(leased) = &mut self.leased {
            if leased.lost.remove(&id) {
                self.tree.set_state(&id, ShardState::Waiting);
                self.start_queued(&id).await;
                return None;
            }
            // The position goes into the lease with its release, one
            // conditional write: whoever takes it next (this replica, unless
            // it was handed over) starts exactly after.
            let position = self.engine.ctx.checkpoints.position(self.arn, &id);
            leased.release(id.clone(), position);
            if !matches!(end, ShardEnd::Finished) {
                self.tree.set_state(&id, ShardState::Waiting);
                if let ShardEnd::Vanished(why) = &end {
                    tracing::warn!(shard = %id, %why, "shard vanished");
                }
                self.start_queued(&id).await;
                return None;
            }
            self.tree.set_state(&id, ShardState::Finished);
            return self.after_finished(id, orphans).await;
        }
        match end {
            ShardEnd::Finished => {
                // The parent's end must be saved before a child starts, or a
                // crash could re-send the parent's tail after the children's
                // changes.
                if !self.ctx().checkpoints.flush_durably(shutdown).await {
                    return None;
                }
                self.tree.set_state(&id, ShardState::Finished);
                self.track_shards();
                self.after_finished(id, orphans).await
            }
            ShardEnd::Stopped | ShardEnd::Vanished(_) => {
                // Restarted from its checkpoint by a refresh soon, if the
                // stream still lists it; not at once, so a shard that keeps
                // vanishing cannot hammer DescribeStream.
                self.tree.set_state(&id, ShardState::Waiting);
                self.next_refresh = self
                    .next_refresh
                    .min(Instant::now() + self.engine.config.discovery_interval);
                if let ShardEnd::Vanished(why) = &end {
                    tracing::warn!(shard = %id, %why, "shard vanished");
                }
                None
            }
        }
    }

    /// A finished shard's children are started (with leases: offered to the
    /// keeper), or looked for again soon. Returns why the stream vanished,
    /// if the refresh found that.
    async fn after_finished(&mut self, id: String, orphans: &mut Orphans) -> Option<String> {
        if self.adopt_children(&id).await {
            return None;
        }
        // No child listed yet: the full list also tells whether the stream
        // was disabled.
        let vanished = self.refresh().await.err();
        if !self.tree.has_children(&id) && self.status != StreamStatus::Disabled {
            orphans.add(id);
        }
        vanished
    }

    /// Looks again for the children of finished shards that had none, a few
    /// times (then the periodic refresh finds them).
    async fn look_for_children(&mut self, orphans: &mut Orphans) {
        let attempt = orphans.next_check.take().map_or(0, |c| c.1);
        let mut still = Vec::new();
        for parent in std::mem::take(&mut orphans.parents) {
            if !self.adopt_children(&parent).await {
                still.push(parent);
            }
        }
        orphans.parents = still;
        if !orphans.parents.is_empty() && attempt + 1 < CHILD_CHECKS.len() {
            orphans.next_check = Some((Instant::now() + CHILD_CHECKS[attempt + 1], attempt + 1));
        } else {
            orphans.parents.clear();
        }
    }

    /// Looks up a finished shard's children and starts those now readable;
    /// false when it has none listed yet.
    async fn adopt_children(&mut self, parent: &str) -> bool {
        match stream::describe_children(
            &*self.engine.ctx.api,
            &self.engine.describe_pacer,
            self.arn,
            parent,
        )
        .await
        {
            Ok(children) if !children.is_empty() => {
                let ids: Vec<String> = children.iter().map(|c| c.id.clone()).collect();
                tracing::info!(
                    shard = parent,
                    children = ids.len(),
                    child_shards = %some_of(&ids),
                    "a shard ended; its children are known"
                );
                self.tree.merge(&children, false);
                self.track_shards();
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
        while !self.readers.is_empty() || !self.snapshot.is_empty() {
            tokio::select! {
                Some(_) = self.readers.join_next() => {}
                Some(_) = self.snapshot.join_next() => {}
                _ = &mut deadline, if !self.give_up.is_cancelled() => {
                    tracing::warn!("shutdown timeout: abandoning deliveries in flight; they will be sent again after a restart");
                    self.give_up.cancel();
                }
            }
        }
    }
}

/// Up to four ids, and how many more: log lines stay short at thousands of
/// shards.
fn some_of(ids: &[String]) -> String {
    const SHOWN: usize = 4;
    let mut text = ids[..ids.len().min(SHOWN)].join(",");
    if ids.len() > SHOWN {
        text.push_str(&format!(" and {} more", ids.len() - SHOWN));
    }
    text
}
