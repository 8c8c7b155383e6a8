//! The seam between delivery and where events are kept: what a trigger's delivery task
//! needs of a store. The in-memory [`EventLog`](crate::event_log::EventLog) is one; a
//! store kept elsewhere (Redis, say) is another, with delivery unchanged.
//!
//! Owns the contract only. A store that can fail (a remote one) retries inside these calls
//! until it succeeds or the task is aborted: delivery cannot progress without its store, so
//! it has nothing better to do than wait.

use std::sync::Arc;

use async_trait::async_trait;
use awsdynamodbsource_cloudevents::CloudEvent;

/// One held event and its place in the store.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub seq: u64,
    pub event: Arc<CloudEvent>,
}

/// What a delivery task reads and moves: events in order, and its trigger's cursor.
#[async_trait]
pub(crate) trait EventStore: Send + Sync + 'static {
    /// Where the trigger resumes: the seq of the first entry it has not finished; `None`
    /// once the trigger is gone.
    async fn cursor(&self, trigger: &str) -> Option<u64>;

    /// The first held entry at or after `from`, waiting for one to arrive.
    async fn next_entry(&self, from: u64) -> Entry;

    /// The trigger has finished every entry before `to` (the store may let them go).
    async fn advance(&self, trigger: &str, to: u64);
}
