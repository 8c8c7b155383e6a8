//! Whether the source is capturing, and if not, why — what `/health` says.
//!
//! Capturing means: the stream is known, checkpoints save, and every shard
//! that may be read now (no unfinished parent) has a reader holding an
//! iterator. Each stage reports its part here; this module decides nothing
//! else.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct Health {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The engine has resolved a stream and started its readers.
    started: bool,
    stream_problem: Option<String>,
    checkpoint_problem: Option<String>,
    /// Readers, by shard: `None` when holding an iterator, else why not.
    shards: BTreeMap<String, Option<String>>,
    /// Shards that lost records to trimming, until their reader catches up.
    data_loss: BTreeMap<String, String>,
}

impl Default for State {
    fn default() -> Self {
        State {
            started: false,
            stream_problem: Some("starting".into()),
            checkpoint_problem: None,
            shards: BTreeMap::new(),
            data_loss: BTreeMap::new(),
        }
    }
}

impl Health {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Ok` when capturing, else a one-line reason.
    pub fn check(&self) -> Result<(), String> {
        let s = self.state();
        if let Some(p) = &s.stream_problem {
            return Err(p.clone());
        }
        if !s.started {
            return Err("starting".into());
        }
        if let Some(p) = &s.checkpoint_problem {
            return Err(p.clone());
        }
        if let Some((shard, why)) = s
            .shards
            .iter()
            .find_map(|(k, v)| v.as_ref().map(|why| (k, why)))
        {
            return Err(format!("shard {shard} is not being read: {why}"));
        }
        if let Some((shard, what)) = s.data_loss.iter().next() {
            return Err(format!("shard {shard} lost records: {what}"));
        }
        Ok(())
    }

    pub fn set_started(&self) {
        self.state().started = true;
    }

    /// A problem with the stream as a whole (none found, vanished, disabled).
    pub fn set_stream_problem(&self, problem: Option<String>) {
        self.state().stream_problem = problem;
    }

    pub fn set_checkpoint_problem(&self, problem: Option<String>) {
        self.state().checkpoint_problem = problem;
    }

    /// A reader took the shard; it has no iterator yet.
    pub fn shard_started(&self, shard: &str) {
        self.state()
            .shards
            .insert(shard.to_owned(), Some("getting a shard iterator".into()));
    }

    /// The reader holds an iterator (`None`), or lost it and why.
    pub fn shard_reading(&self, shard: &str, problem: Option<String>) {
        if let Some(entry) = self.state().shards.get_mut(shard) {
            *entry = problem;
        }
    }

    /// The reader is done with the shard (finished, or stopped).
    pub fn shard_stopped(&self, shard: &str) {
        let mut s = self.state();
        s.shards.remove(shard);
        s.data_loss.remove(shard);
    }

    pub fn data_lost(&self, shard: &str, what: String) {
        self.state().data_loss.insert(shard.to_owned(), what);
    }

    pub fn caught_up(&self, shard: &str) {
        let mut s = self.state();
        if !s.data_loss.is_empty() {
            s.data_loss.remove(shard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capturing_needs_a_stream_and_an_iterator_on_every_reader() {
        let h = Health::default();
        assert_eq!(h.check(), Err("starting".into()));
        h.set_stream_problem(None);
        h.shard_started("a");
        h.set_started();
        assert!(h.check().unwrap_err().contains("shard a"));
        h.shard_reading("a", None);
        assert_eq!(h.check(), Ok(()));
        h.data_lost("a", "trimmed".into());
        assert!(h.check().unwrap_err().contains("lost records"));
        h.caught_up("a");
        assert_eq!(h.check(), Ok(()));
        h.set_checkpoint_problem(Some("disk full".into()));
        assert_eq!(h.check(), Err("disk full".into()));
        h.set_checkpoint_problem(None);
        h.set_stream_problem(Some("stream vanished".into()));
        assert_eq!(h.check(), Err("stream vanished".into()));
    }
}
