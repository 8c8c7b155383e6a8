//! Shard leases: which replica reads which shard, with the shard's
//! checkpoint in the same record, so that only the lease's holder can move
//! it.
//!
//! Owns the lease records and the rule every write follows: a write is
//! conditional on the holder and the lease's counter, as in KCL. Taking and
//! renewing bump the counter, so a replica that lost a lease (paused past
//! its lease time, cut off) can never renew it or move the new holder's
//! position back: its write names a counter that is gone. Liveness needs
//! no clocks: a lease whose counter stands still for a lease period, as
//! seen by the one looking, has lost its holder. It never reads records
//! and never decides who should hold what.
//!
//! - `balance`: who should hold what, from the leases as one replica sees
//!   them;
//! - `dynamodb`: leases in a DynamoDB table, one item per shard
//!   (`COORDINATION=dynamodb:<table>`);
//! - `contract`: what every store must do, as checks each store's tests
//!   run (the Kubernetes store lives in the `checkpoint-kube` crate);
//! - `keeper`: this replica's heartbeat, takes and hand-overs, and the
//!   checkpoints written into its leases; it tells the engine which shards
//!   to read.

mod balance;
pub mod contract;
mod dynamodb;
mod keeper;

use async_trait::async_trait;
pub use balance::{Liveness, Plan, plan};
pub use dynamodb::DynamoDbLeaseStore;
pub(crate) use keeper::Order;
pub use keeper::{LeaseDeadline, LeaseKeeper, LeaseSettings};

use crate::checkpoint::ShardPosition;

/// One shard's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub stream: String,
    pub shard: String,
    /// The replica reading the shard; none while the lease is free.
    pub owner: Option<String>,
    /// Bumped by every take and renewal.
    pub counter: u64,
    /// Where the shard resumes; none before anything was saved.
    pub checkpoint: Option<ShardPosition>,
    /// The shards that must be finished before this one is read.
    pub parents: Vec<String>,
    /// A replica that asked for this lease (balancing): the holder hands
    /// it over after checkpointing, instead of having it taken.
    pub wanted_by: Option<String>,
}

impl Lease {
    /// A free lease for a shard that nothing has read yet.
    pub fn new(stream: &str, shard: &str, parents: Vec<String>) -> Self {
        Lease {
            stream: stream.to_owned(),
            shard: shard.to_owned(),
            owner: None,
            counter: 0,
            checkpoint: None,
            parents,
            wanted_by: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The lease is not as the caller saw it: another replica took or
    /// renewed it, or it is gone. Not retried: the caller reads again.
    #[error("the lease of shard {shard} changed meanwhile")]
    Changed { shard: String },
    /// The store failed or refused the call (retried by the caller).
    #[error("lease store {location}: {message}")]
    Store { location: String, message: String },
}

/// Where leases live. Every write is one conditional write.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// Every lease of a stream, read consistently.
    async fn list(&self, stream: &str) -> Result<Vec<Lease>, LeaseError>;

    /// Adds `lease` unless the shard has one; false when it had. A shard's
    /// parents get their leases first: `balance` takes a parent without a
    /// lease for one trimmed away.
    async fn create(&self, lease: &Lease) -> Result<bool, LeaseError>;

    /// Takes a lease as `seen` (free, or its holder gone): it is held by
    /// `owner` from now on, with its counter bumped.
    async fn take(&self, seen: &Lease, owner: &str) -> Result<Lease, LeaseError>;

    /// Renews a held lease, and saves `checkpoint` with it when given: one
    /// write, only while `held` is still the lease's holder and counter.
    async fn renew(
        &self,
        held: &Lease,
        checkpoint: Option<&ShardPosition>,
    ) -> Result<Lease, LeaseError>;

    /// Asks the holder of `seen` to hand the lease to `owner` (its counter
    /// is left alone, so the holder's next renewal still works and sees it).
    async fn want(&self, seen: &Lease, owner: &str) -> Result<Lease, LeaseError>;

    /// Gives a held lease up with its final checkpoint (none: the saved one
    /// stays): free for the next taker, who starts exactly after it.
    async fn release(
        &self,
        held: &Lease,
        checkpoint: Option<&ShardPosition>,
    ) -> Result<Lease, LeaseError>;

    /// Where, for logs (`dynamodb:<table>`).
    fn location(&self) -> String;

    /// The least time between two checkpoint writes into one held lease
    /// (a shard's end and hand-overs are written at once). Zero: whenever
    /// the engine saves (once a second). A store whose writes are dear
    /// (an API server) spaces them out, at the price of more events sent
    /// again after a crash.
    fn checkpoint_interval(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}
