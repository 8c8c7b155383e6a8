//! Shard lineage: which shards of a stream may be read now.
//!
//! A child holds the changes that follow its parent's, so it may be read only
//! once its parent has been read and delivered to the end — or when the
//! parent is no longer listed (trimmed after 24 hours).

use std::collections::BTreeMap;

use super::api::ShardInfo;

/// Where a shard stands with this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    /// Known, not started: its parent is unfinished, or it was just found.
    Waiting,
    /// A reader owns it.
    Reading,
    /// Read and delivered to its end (or nothing to read, e.g. a closed shard
    /// skipped by LATEST). Never polled again.
    Finished,
}

#[derive(Debug, Clone)]
struct Entry {
    info: ShardInfo,
    state: ShardState,
}

/// The shards of one stream and their state.
#[derive(Debug, Default, Clone)]
pub struct ShardTree {
    shards: BTreeMap<String, Entry>,
}

impl ShardTree {
    /// Adds the shards not yet known, updates what is known of the others,
    /// and returns the ids of the new ones. When `listing` is the stream's
    /// complete shard list, shards missing from it (trimmed) are forgotten,
    /// unless a reader still owns them.
    pub fn merge(&mut self, listing: &[ShardInfo], complete: bool) -> Vec<String> {
        let mut added = Vec::new();
        for info in listing {
            match self.shards.get_mut(&info.id) {
                Some(entry) => entry.info.closed |= info.closed,
                None => {
                    added.push(info.id.clone());
                    self.shards.insert(
                        info.id.clone(),
                        Entry {
                            info: info.clone(),
                            state: ShardState::Waiting,
                        },
                    );
                }
            }
        }
        if complete {
            self.shards.retain(|id, e| {
                e.state == ShardState::Reading || listing.iter().any(|s| &s.id == id)
            });
        }
        added
    }

    pub fn state(&self, id: &str) -> Option<ShardState> {
        self.shards.get(id).map(|e| e.state)
    }

    pub fn info(&self, id: &str) -> Option<&ShardInfo> {
        self.shards.get(id).map(|e| &e.info)
    }

    pub fn set_state(&mut self, id: &str, state: ShardState) {
        if let Some(e) = self.shards.get_mut(id) {
            e.state = state;
        }
    }

    /// Waiting shards whose parent is finished or gone: these may be read now.
    pub fn readable(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter(|(_, e)| e.state == ShardState::Waiting)
            .filter(|(_, e)| match &e.info.parent {
                None => true,
                Some(parent) => self
                    .shards
                    .get(parent)
                    .is_none_or(|p| p.state == ShardState::Finished),
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Some known shard names `id` as its parent.
    pub fn has_children(&self, id: &str) -> bool {
        self.shards
            .values()
            .any(|e| e.info.parent.as_deref() == Some(id))
    }

    /// Every known shard is finished (and at least one is known).
    pub fn all_finished(&self) -> bool {
        !self.shards.is_empty()
            && self
                .shards
                .values()
                .all(|e| e.state == ShardState::Finished)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.shards.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parent: Option<&str>, closed: bool) -> ShardInfo {
        ShardInfo {
            id: id.into(),
            parent: parent.map(Into::into),
            closed,
        }
    }

    #[test]
    fn children_wait_for_their_parent() {
        let mut tree = ShardTree::default();
        let added = tree.merge(
            &[
                shard("p", None, true),
                shard("c1", Some("p"), false),
                shard("c2", Some("p"), false),
                shard("x", Some("gone"), false),
            ],
            true,
        );
        assert_eq!(added.len(), 4);
        assert_eq!(
            tree.readable(),
            vec!["p".to_string(), "x".to_string()],
            "x's parent is trimmed"
        );
        tree.set_state("p", ShardState::Reading);
        assert_eq!(tree.readable(), vec!["x".to_string()]);
        tree.set_state("p", ShardState::Finished);
        assert_eq!(
            tree.readable(),
            vec!["c1".to_string(), "c2".to_string(), "x".to_string()]
        );
    }

    #[test]
    fn a_complete_listing_forgets_trimmed_shards_but_not_owned_ones() {
        let mut tree = ShardTree::default();
        tree.merge(
            &[
                shard("a", None, true),
                shard("b", Some("a"), true),
                shard("c", Some("b"), false),
            ],
            true,
        );
        tree.set_state("a", ShardState::Finished);
        tree.set_state("b", ShardState::Reading);
        assert!(tree.merge(&[shard("c", Some("b"), false)], true).is_empty());
        assert_eq!(tree.state("a"), None);
        assert_eq!(tree.state("b"), Some(ShardState::Reading));
        assert!(tree.readable().is_empty(), "c waits for b");
        // A partial listing (children of a shard) forgets nothing.
        tree.merge(&[shard("d", Some("c"), false)], false);
        assert_eq!(tree.state("b"), Some(ShardState::Reading));
    }

    #[test]
    fn all_finished_needs_every_shard_finished() {
        let mut tree = ShardTree::default();
        assert!(!tree.all_finished());
        tree.merge(&[shard("a", None, true), shard("b", Some("a"), true)], true);
        tree.set_state("a", ShardState::Finished);
        assert!(!tree.all_finished());
        tree.set_state("b", ShardState::Finished);
        assert!(tree.all_finished());
    }
}
