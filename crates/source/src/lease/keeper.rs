//! The lease keeper: this replica's side of sharing a stream with others.
//!
//! Owns the leases this replica holds and is their only writer: the
//! heartbeat that keeps them, taking and handing over by the balance plan,
//! and the checkpoints saved into them (it is the engine's
//! [`CheckpointStore`] when leases are on). It tells the engine which
//! shards to start and stop ([`Order`]) and never reads a shard itself.
//!
//! Liveness is per replica, not per shard: each replica renews one
//! heartbeat lease (`~replica/<id>` among the stream's leases) every third
//! of the lease time, and the shard leases it holds live as long as that
//! heartbeat moves. So an idle replica holding a thousand shards writes one
//! item per renewal, not a thousand; a shard's lease is written when it is
//! taken, released, or its checkpoint moves, and each of those writes is
//! conditional on the holder and the counter.
//!
//! The heartbeat also bounds this replica's own right to deliver
//! ([`LeaseDeadline`]): the moment its last successful renewal was sent,
//! plus the lease time, comes before any other replica can have judged it
//! gone. Past it no delivery starts, and the readers are stopped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::{Mutex, Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Lease, LeaseError, LeaseStore, Liveness, plan};
use crate::checkpoint::{CheckpointError, CheckpointStore, Checkpoints, ShardPosition};
use crate::health::Health;
use crate::metrics::Metrics;

/// Heartbeat leases are named this, then the replica's id: no shard id
/// starts with `~`.
const HEARTBEAT: &str = "~replica/";

/// Lease writes in flight at once when many checkpoints moved together.
const WRITES_AT_ONCE: usize = 16;

/// What the engine does next for a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Order {
    /// The lease was taken: read the shard from `checkpoint` (none: from
    /// its start).
    Start {
        shard: String,
        checkpoint: Option<ShardPosition>,
    },
    /// Stop reading. `lost`: the lease is another replica's now (or may
    /// be), so deliveries in flight are abandoned and nothing is saved;
    /// otherwise it is being handed over: finish the deliveries in flight,
    /// then [`LeaseKeeper::release`] it.
    Stop { shard: String, lost: bool },
}

/// Until when this replica may start deliveries: its last heartbeat's send
/// time plus the lease time. Read before every send (a monotonic clock: it
/// runs on while the process is frozen).
#[derive(Debug)]
pub struct LeaseDeadline {
    base: std::time::Instant,
    /// Milliseconds after `base`; 0 until the first heartbeat.
    until_ms: AtomicU64,
}

impl LeaseDeadline {
    fn new() -> Self {
        LeaseDeadline {
            base: std::time::Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }

    fn extend_to(&self, until: Instant) {
        let ms = until
            .into_std()
            .saturating_duration_since(self.base)
            .as_millis() as u64;
        self.until_ms.fetch_max(ms, Relaxed);
    }

    pub fn passed(&self) -> bool {
        self.base.elapsed().as_millis() as u64 >= self.until_ms.load(Relaxed)
    }
}

/// How a replica takes part.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// This replica's name in the leases: unique among running replicas.
    pub replica: String,
    /// How long a replica whose heartbeat stands still keeps its leases.
    pub lease_time: Duration,
}

pub struct LeaseKeeper {
    store: Arc<dyn LeaseStore>,
    settings: LeaseSettings,
    /// Checkpoints kept before leases were used (CHECKPOINT_STORE, read
    /// once): where a shard without a lease yet starts.
    carried: Checkpoints,
    deadline: Arc<LeaseDeadline>,
    metrics: Arc<Metrics>,
    /// Told when this replica is idle.
    health: Arc<Health>,
    /// The held leases: locked only briefly, except by saves, which must
    /// not overlap a round's check of what is still held.
    state: Mutex<State>,
    /// What only the rounds use (and `end`, after them).
    rounds: Mutex<Rounds>,
    /// Every shard the engine knows, as the lease to create when it has
    /// none (parents first).
    known: SyncMutex<BTreeMap<String, Lease>>,
    /// Every listed shard lease was finished at the last round.
    all_finished: AtomicBool,
    wake: Notify,
    /// A save has written its leases.
    written: Notify,
    /// Shutting down: renew and release, take nothing more.
    closing: AtomicBool,
    /// Held nothing at the last round (said once).
    idle: AtomicBool,
}

#[derive(Default)]
struct State {
    stream: Option<String>,
    orders: Option<mpsc::UnboundedSender<Order>>,
    /// The leases held, as last written.
    held: BTreeMap<String, Lease>,
    /// Held leases being handed over: their reader is stopping.
    leaving: HashSet<String>,
    /// Held leases a save is writing now.
    writing: HashSet<String>,
    /// Leases given up and being written: still ours in the store, not
    /// free to take back.
    releasing: HashSet<String>,
    /// Held leases whose reader the engine has set to the lease's
    /// checkpoint: only their positions are written into the lease (until
    /// then the engine's position is an older holder's, or none).
    resumed: HashSet<String>,
    /// When each held lease's checkpoint was last written.
    saved_at: HashMap<String, Instant>,
}

#[derive(Default)]
struct Rounds {
    heartbeat: Option<Lease>,
    liveness: Liveness,
    /// The heartbeat failed since it last worked (one warning per streak).
    beat_failing: bool,
}

impl State {
    fn order(&self, order: Order) {
        if let Some(orders) = &self.orders {
            let _ = orders.send(order);
        }
    }

    /// No longer held: the lease, and whether its position was the
    /// engine's to write (resumed). Everything kept per held lease goes.
    fn forget(&mut self, shard: &str) -> Option<(Lease, bool)> {
        self.leaving.remove(shard);
        self.saved_at.remove(shard);
        let resumed = self.resumed.remove(shard);
        self.held.remove(shard).map(|lease| (lease, resumed))
    }

    /// Taken by another replica (or maybe): its reader stops and saves
    /// nothing.
    fn lose(&mut self, shard: String) {
        if self.forget(&shard).is_some() {
            self.order(Order::Stop { shard, lost: true });
        }
    }
}

impl LeaseKeeper {
    pub fn new(
        store: Arc<dyn LeaseStore>,
        settings: LeaseSettings,
        carried: Checkpoints,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Arc<Self> {
        Arc::new(LeaseKeeper {
            store,
            settings,
            carried,
            deadline: Arc::new(LeaseDeadline::new()),
            metrics,
            health,
            state: Mutex::default(),
            rounds: Mutex::default(),
            known: SyncMutex::default(),
            all_finished: AtomicBool::new(false),
            wake: Notify::new(),
            written: Notify::new(),
            closing: AtomicBool::new(false),
            idle: AtomicBool::new(false),
        })
    }

    pub fn replica(&self) -> &str {
        &self.settings.replica
    }

    pub(crate) fn deadline(&self) -> Arc<LeaseDeadline> {
        self.deadline.clone()
    }

    fn heartbeat_key(&self) -> String {
        format!("{HEARTBEAT}{}", self.settings.replica)
    }

    /// Starts keeping the leases of `stream`; the orders come on the
    /// receiver while [`keep`](Self::keep) runs.
    pub(crate) async fn begin(&self, stream: &str) -> mpsc::UnboundedReceiver<Order> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.rounds.lock().await = Rounds::default();
        *self.state.lock().await = State {
            stream: Some(stream.to_owned()),
            orders: Some(tx),
            ..State::default()
        };
        self.known.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.all_finished.store(false, Relaxed);
        self.idle.store(false, Relaxed);
        rx
    }

    /// Rounds until `stop`: every third of the lease time; sooner when
    /// another replica's heartbeat may have expired, when leases asked for
    /// may have been handed over, and at once when new shards are known.
    pub(crate) async fn keep(self: Arc<Self>, stop: CancellationToken) {
        let period = self.settings.lease_time / 3;
        loop {
            let expiry = self.round().await;
            let now = Instant::now();
            let next = expiry.map_or(now + period, |e| e.min(now + period));
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(next.max(now + Duration::from_millis(20))) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Shards the engine knows (with where each starts when it has no lease
    /// yet): their leases are created at the next round, which comes now.
    pub(crate) fn know(&self, shards: impl IntoIterator<Item = Lease>) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let before = known.len();
        for lease in shards {
            known.entry(lease.shard.clone()).or_insert(lease);
        }
        if known.len() != before {
            self.wake.notify_one();
        }
    }

    /// The engine has set `shard`'s position to its lease's checkpoint (and
    /// started its reader): from now on its position is saved into the
    /// lease. Unless the lease was lost or taken again meanwhile.
    pub(crate) async fn resumed(&self, shard: &str, checkpoint: Option<&ShardPosition>) {
        let mut st = self.state.lock().await;
        if st
            .held
            .get(shard)
            .is_some_and(|l| l.checkpoint.as_ref() == checkpoint)
        {
            st.resumed.insert(shard.to_owned());
        }
    }

    /// Shutdown has begun: the heartbeat goes on (deliveries may take
    /// longer than a lease), but nothing more is taken or asked for.
    pub(crate) fn close(&self) {
        self.closing.store(true, Relaxed);
    }

    /// Every shard lease of the stream is finished (the stream was read to
    /// its end, by whichever replicas).
    pub(crate) fn all_finished(&self) -> bool {
        self.all_finished.load(Relaxed)
    }

    /// Gives up a held lease whose reader has stopped, with its last
    /// position (none: the saved one stays), in one conditional write.
    pub(crate) async fn release(&self, shard: &str, checkpoint: Option<&ShardPosition>) {
        let (held, checkpoint) = {
            let mut st = self.settled(Some(shard)).await;
            let forgotten = st.forget(shard);
            if forgotten.is_some() {
                st.releasing.insert(shard.to_owned());
            }
            self.metrics.leases_held.set(st.held.len() as i64);
            match forgotten {
                Some((held, resumed)) => (Some(held), checkpoint.filter(|_| resumed)),
                None => (None, None),
            }
        };
        let Some(held) = held else {
            return;
        };
        let result = self.store.release(&held, checkpoint).await;
        self.state.lock().await.releasing.remove(shard);
        match result {
            Ok(_) => {
                self.metrics.leases_released.inc();
                tracing::debug!(shard, "lease released");
            }
            Err(LeaseError::Changed { .. }) => {}
            // It stays ours in the store: taken again (by us or, once our
            // heartbeat stops, by another) from its saved checkpoint.
            Err(e) => tracing::warn!(shard, error = %e, "cannot release a lease"),
        }
    }

    /// The stream is left (shutdown, drained, vanished): every held lease
    /// released with its position in `checkpoints`, and the heartbeat too,
    /// so the others take over at once instead of after the lease time.
    pub(crate) async fn end(&self, checkpoints: &Checkpoints) {
        let mut rounds = self.rounds.lock().await;
        let mut st = self.settled(None).await;
        let Some(stream) = st.stream.take() else {
            return;
        };
        let shards: Vec<String> = st.held.keys().cloned().collect();
        let held: Vec<(Lease, bool)> = shards.iter().filter_map(|s| st.forget(s)).collect();
        let count = held.len();
        let stream = &stream;
        let released = futures_util::stream::iter(held)
            .map(|(lease, resumed)| async move {
                let position = checkpoints.shard(stream, &lease.shard).filter(|_| resumed);
                self.store.release(&lease, position).await
            })
            .buffer_unordered(WRITES_AT_ONCE)
            .filter(|r| std::future::ready(r.is_ok()))
            .count()
            .await;
        self.metrics.leases_released.inc_by(released as u64);
        self.metrics.leases_held.set(0);
        if let Some(beat) = rounds.heartbeat.take() {
            let _ = self.store.release(&beat, None).await;
        }
        st.orders = None;
        tracing::info!(
            released,
            failed = count - released,
            "leases released for the next holders"
        );
    }

    /// One round: heartbeat, leases listed and created, lost ones stopped,
    /// the plan carried out. Returns when the next round should come
    /// before the usual period: when another replica's heartbeat expires
    /// unless renewed, or soon while leases asked for are not handed over
    /// yet. The store is called without holding the held leases' lock, so
    /// saves go on meanwhile.
    async fn round(&self) -> Option<Instant> {
        let mut rounds = self.rounds.lock().await;
        let stream = self.state.lock().await.stream.clone()?;
        // Past the deadline before this renewal (frozen, or renewals
        // failing): deliveries were abandoned and other replicas may have
        // taken any lease, so every held one is given up and taken again
        // (a take bumps the counter, and fails if another replica has it).
        let lapsed = rounds.heartbeat.is_some() && self.deadline.passed();
        let (_, listed) = tokio::join!(self.beat(&mut rounds, &stream), self.store.list(&stream));
        if lapsed || self.deadline.passed() {
            let mut st = self.state.lock().await;
            if !st.held.is_empty() {
                tracing::warn!(
                    shards = st.held.len(),
                    "no heartbeat within the lease time: stopped reading its shards, which other replicas may take"
                );
                let shards: Vec<String> = st.held.keys().cloned().collect();
                for shard in shards {
                    st.lose(shard);
                }
                self.metrics.leases_held.set(0);
            }
        }
        let listed = match listed {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the leases");
                return None;
            }
        };
        let now = Instant::now();
        rounds.liveness.observe(&listed, now);
        let (beats, mut leases): (Vec<Lease>, Vec<Lease>) = listed
            .into_iter()
            .partition(|l| l.shard.starts_with(HEARTBEAT));
        self.create_missing(&mut leases).await;
        self.all_finished.store(
            !leases.is_empty()
                && leases
                    .iter()
                    .all(|l| l.checkpoint == Some(ShardPosition::Finished)),
            Relaxed,
        );

        let lease_time = self.settings.lease_time;
        let me = self.replica();
        let others: Vec<&Lease> = beats
            .iter()
            .filter(|b| b.owner.as_deref() != Some(me))
            .filter(|b| rounds.liveness.alive(b, lease_time, now))
            .collect();
        let mut next_expiry = others
            .iter()
            .filter_map(|b| rounds.liveness.expires(b, lease_time))
            .min();
        if leases
            .iter()
            .any(|l| l.wanted_by.as_deref() == Some(me) && l.owner.as_deref() != Some(me))
        {
            let soon = now + lease_time / 12;
            next_expiry = Some(next_expiry.map_or(soon, |e| e.min(soon)));
        }
        let alive_owners: Vec<&str> = others.iter().filter_map(|b| b.owner.as_deref()).collect();
        let counted: Vec<&str> = others
            .iter()
            .filter(|b| rounds.liveness.moved(b))
            .filter_map(|b| b.owner.as_deref())
            .collect();
        let plan = {
            let mut st = self.state.lock().await;
            self.notice_lost(&mut st, &leases);
            if self.deadline.passed() || self.closing.load(Relaxed) {
                // Without a heartbeat, or shutting down: nothing more is
                // taken.
                return next_expiry;
            }
            // A lease in our name that we do not hold (given up when the
            // heartbeat lapsed, or a release that failed) is free to take.
            // One being released is neither: left out until written.
            let mut view: Vec<Lease> = leases
                .into_iter()
                .filter(|l| !st.releasing.contains(&l.shard))
                .map(|mut l| {
                    if l.owner.as_deref() == Some(me) && !st.held.contains_key(&l.shard) {
                        l.owner = None;
                    }
                    l
                })
                .collect();
            // Replicas taking at once start from different leases.
            fastrand::shuffle(&mut view);
            let plan = plan(
                me,
                &view,
                |l| {
                    l.owner
                        .as_deref()
                        .is_some_and(|o| alive_owners.contains(&o))
                },
                &counted,
            );
            let mut handing = 0;
            for shard in &plan.hand_over {
                if st.leaving.insert(shard.clone()) {
                    st.order(Order::Stop {
                        shard: shard.clone(),
                        lost: false,
                    });
                    handing += 1;
                }
            }
            if handing > 0 {
                tracing::info!(
                    handing_over = handing,
                    held = st.held.len(),
                    "handing shard leases over to replicas that asked"
                );
            }
            plan
        };
        let asked = !plan.want.is_empty();
        self.carry_out(plan).await;
        if asked {
            let soon = Instant::now() + lease_time / 12;
            next_expiry = Some(next_expiry.map_or(soon, |e| e.min(soon)));
        }
        next_expiry
    }

    /// Renews this replica's heartbeat (taking it at the first round) and,
    /// when that works, moves the delivery deadline on.
    async fn beat(&self, st: &mut Rounds, stream: &str) {
        let sent = Instant::now();
        let result = match &st.heartbeat {
            Some(beat) => self.store.renew(beat, None).await,
            None => self.take_heartbeat(stream).await,
        };
        match result {
            Ok(beat) => {
                st.heartbeat = Some(beat);
                self.deadline.extend_to(sent + self.settings.lease_time);
                if std::mem::take(&mut st.beat_failing) {
                    tracing::info!("the lease heartbeat works again");
                }
            }
            Err(e) => {
                self.metrics.lease_renewal_failures.inc();
                if matches!(e, LeaseError::Changed { .. }) {
                    st.heartbeat = None;
                }
                if !std::mem::replace(&mut st.beat_failing, true) {
                    tracing::warn!(error = %e, "cannot renew the lease heartbeat; retrying");
                }
            }
        }
    }

    async fn take_heartbeat(&self, stream: &str) -> Result<Lease, LeaseError> {
        let key = self.heartbeat_key();
        let fresh = Lease::new(stream, &key, Vec::new());
        let seen = if self.store.create(&fresh).await? {
            fresh
        } else {
            // A replica of the same name ran before.
            self.store
                .list(stream)
                .await?
                .into_iter()
                .find(|l| l.shard == key)
                .unwrap_or(fresh)
        };
        self.store.take(&seen, self.replica()).await
    }

    /// Creates the leases of known shards that have none, each after its
    /// parents' (a parent the engine does not know was trimmed).
    async fn create_missing(&self, leases: &mut Vec<Lease>) {
        let mut missing: Vec<Lease> = {
            let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            let listed: HashSet<&str> = leases.iter().map(|l| l.shard.as_str()).collect();
            known
                .values()
                .filter(|l| !listed.contains(l.shard.as_str()))
                .cloned()
                .collect()
        };
        let mut pending: HashSet<String> = missing.iter().map(|l| l.shard.clone()).collect();
        while !missing.is_empty() {
            let (ready, waiting): (Vec<Lease>, Vec<Lease>) = missing
                .into_iter()
                .partition(|l| l.parents.iter().all(|p| !pending.contains(p)));
            if ready.is_empty() {
                return;
            }
            for lease in ready {
                match self.store.create(&lease).await {
                    Ok(true) => {
                        leases.push(lease.clone());
                        pending.remove(&lease.shard);
                    }
                    // Another replica created it: listed at the next round.
                    // Its children wait for that round too, so that no
                    // plan sees a child whose parent is not listed (as if
                    // trimmed) and reads it first.
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot create shard leases");
                        return;
                    }
                }
            }
            missing = waiting;
        }
    }

    /// Held leases that another replica took stop being read at once; the
    /// others are updated (a replica may have asked for one). A listing
    /// read before one of our own writes shows a lower counter: still ours.
    fn notice_lost(&self, st: &mut State, leases: &[Lease]) {
        let mut lost = Vec::new();
        let writing = &st.writing;
        for (shard, held) in st.held.iter_mut().filter(|(s, _)| !writing.contains(*s)) {
            match leases.iter().find(|l| &l.shard == shard) {
                Some(l) if l.owner == held.owner && l.counter == held.counter => *held = l.clone(),
                Some(l) if l.owner == held.owner && l.counter < held.counter => {}
                _ => lost.push(shard.clone()),
            }
        }
        if lost.is_empty() {
            return;
        }
        tracing::warn!(
            shards = lost.len(),
            "leases taken by other replicas: stopped reading those shards"
        );
        for shard in lost {
            st.lose(shard);
        }
        self.metrics.leases_held.set(st.held.len() as i64);
    }

    /// Takes and asks for leases, several at once.
    async fn carry_out(&self, plan: super::Plan) {
        let me = self.replica();
        let store = &self.store;
        let taken: Vec<(Lease, Result<Lease, LeaseError>)> = futures_util::stream::iter(plan.take)
            .map(|seen| async move {
                let result = store.take(&seen, me).await;
                (seen, result)
            })
            .buffer_unordered(WRITES_AT_ONCE)
            .collect()
            .await;
        futures_util::stream::iter(plan.want)
            .map(|seen| async move { store.want(&seen, me).await })
            .buffer_unordered(WRITES_AT_ONCE)
            .for_each(|_| std::future::ready(()))
            .await;
        let mut st = self.state.lock().await;
        let mut took = 0;
        for (seen, result) in taken {
            match result {
                Ok(lease) if st.orders.is_some() => {
                    self.metrics.leases_taken.inc();
                    if seen.owner.as_deref().is_some_and(|o| o != me) {
                        self.metrics.leases_taken_over.inc();
                    }
                    st.resumed.remove(&lease.shard);
                    st.order(Order::Start {
                        shard: lease.shard.clone(),
                        checkpoint: lease.checkpoint.clone(),
                    });
                    st.held.insert(lease.shard.clone(), lease);
                    took += 1;
                }
                // The stream was left meanwhile.
                Ok(lease) => {
                    let _ = store.release(&lease, None).await;
                }
                // Another replica was quicker.
                Err(LeaseError::Changed { .. }) => {}
                Err(e) => tracing::warn!(error = %e, "cannot take a lease"),
            }
        }
        self.metrics.leases_held.set(st.held.len() as i64);
        if took > 0 {
            tracing::info!(taken = took, held = st.held.len(), "shard leases taken");
        }
        let idle = st.held.is_empty();
        self.health.set_idle(idle);
        if idle != self.idle.swap(idle, Relaxed) && idle {
            tracing::info!(
                "idle: this replica holds no shard lease (the others read every shard); it takes some when a replica leaves or shards are added"
            );
        }
    }

    /// Saves the moved positions of held shards into their leases.
    async fn save_positions(&self, checkpoints: &Checkpoints) -> Result<(), LeaseError> {
        let moved: Vec<(Lease, ShardPosition)> = {
            let mut st = self.state.lock().await;
            let Some(positions) = st
                .stream
                .as_ref()
                .and_then(|stream| checkpoints.streams.get(stream))
            else {
                return Ok(());
            };
            let spacing = self.store.checkpoint_interval();
            let due = |shard: &str, p: &ShardPosition| {
                *p == ShardPosition::Finished
                    || st
                        .saved_at
                        .get(shard)
                        .is_none_or(|at| at.elapsed() >= spacing)
            };
            let moved: Vec<(Lease, ShardPosition)> = st
                .held
                .values()
                .filter(|l| !st.writing.contains(&l.shard) && st.resumed.contains(&l.shard))
                .filter_map(|l| {
                    let p = positions.shards.get(&l.shard)?;
                    (l.checkpoint.as_ref() != Some(p)
                        && due(&l.shard, p)
                        && !behind(p, l.checkpoint.as_ref()))
                    .then(|| (l.clone(), p.clone()))
                })
                .collect();
            st.writing
                .extend(moved.iter().map(|(l, _)| l.shard.clone()));
            moved
        };
        // Written without the lock: rounds and releases go on meanwhile
        // (and leave these shards alone until they are written).
        let store = &self.store;
        let results: Vec<(String, Result<Lease, LeaseError>)> = futures_util::stream::iter(moved)
            .map(|(lease, p)| async move {
                let result = store.renew(&lease, Some(&p)).await;
                (lease.shard, result)
            })
            .buffer_unordered(WRITES_AT_ONCE)
            .collect()
            .await;
        let mut st = self.state.lock().await;
        let mut failed = None;
        for (shard, result) in results {
            st.writing.remove(&shard);
            match result {
                Ok(lease) => {
                    if let Some(held) = st.held.get_mut(&shard) {
                        *held = lease;
                    }
                    st.saved_at.insert(shard, Instant::now());
                }
                Err(LeaseError::Changed { .. }) => {
                    if st.held.contains_key(&shard) {
                        tracing::warn!(shard, "lease taken by another replica: stopped reading");
                        st.lose(shard);
                    }
                }
                Err(e) => failed = Some(e),
            }
        }
        self.metrics.leases_held.set(st.held.len() as i64);
        drop(st);
        self.written.notify_waiters();
        failed.map_or(Ok(()), Err)
    }

    /// The held leases once no save is writing `shard` (none: any shard).
    async fn settled(&self, shard: Option<&str>) -> tokio::sync::MutexGuard<'_, State> {
        loop {
            let written = self.written.notified();
            let st = self.state.lock().await;
            let busy = match shard {
                Some(shard) => st.writing.contains(shard),
                None => !st.writing.is_empty(),
            };
            if !busy {
                return st;
            }
            drop(st);
            written.await;
        }
    }
}

/// Whether `position` is behind the lease's `saved` one: never written
/// (a snapshot of positions taken before the shard was resumed from its
/// lease may hold an older holder's position).
fn behind(position: &ShardPosition, saved: Option<&ShardPosition>) -> bool {
    use ShardPosition::{After, Finished, Since};
    match (position, saved) {
        (_, None) | (Finished, _) => false,
        (_, Some(Finished)) => true,
        (After(p), Some(After(s))) => p < s,
        (Since(_), Some(After(_))) => true,
        (After(_), Some(Since(_))) => false,
        (Since(p), Some(Since(s))) => p < s,
    }
}

/// With leases on, checkpoints live in them: this store loads the carried
/// checkpoints and saves positions into the held leases.
#[async_trait]
impl CheckpointStore for LeaseKeeper {
    async fn load(&self) -> Result<Checkpoints, CheckpointError> {
        Ok(self.carried.clone())
    }

    async fn save(&self, checkpoints: &Checkpoints) -> Result<(), CheckpointError> {
        self.save_positions(checkpoints)
            .await
            .map_err(|e| CheckpointError::Io {
                location: self.location(),
                message: e.to_string(),
            })
    }

    fn location(&self) -> String {
        self.store.location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SequenceNumber;

    #[test]
    fn a_position_behind_the_leases_is_never_written() {
        let after = |n: &str| ShardPosition::After(SequenceNumber::parse(n).unwrap());
        assert!(
            behind(&after("10"), Some(&after("200"))),
            "by number, not text"
        );
        assert!(!behind(&after("200"), Some(&after("10"))));
        assert!(behind(&ShardPosition::Since(5), Some(&after("1"))));
        assert!(behind(&after("1"), Some(&ShardPosition::Finished)));
        assert!(!behind(&ShardPosition::Finished, Some(&after("1"))));
        assert!(!behind(&after("1"), None));
    }
}
