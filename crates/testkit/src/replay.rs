//! What a crash re-sends, measured from outside the adapter.
//!
//! [`Kill`] is observed right after the adapter died: how many events the
//! sink had received, the saved positions in the adapter's `file:`
//! checkpoint folder, and how many distinct events arrived in the 2 s
//! before. Afterwards it tells which of the events received before the kill
//! lie beyond the saved positions (what the restart must send again) and
//! which were in fact received again. Events must carry the `sequence` and
//! `dynamodbshard` extensions (`EXTENSIONS=sequence,dynamodbshard`). It
//! never reads the adapter's own figures: only the sink and the file.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::ReceivedEvent;

/// The window before a kill whose arrivals [`Kill::recent`] counts.
pub const RECENT: Duration = Duration::from_secs(2);

/// A shard's saved position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Everything up to this sequence number, zero-padded to 40 digits.
    After(String),
    Finished,
}

/// One kill, as seen from outside right after the process died.
#[derive(Debug, Clone)]
pub struct Kill {
    /// Events the sink had received: a prefix of its log.
    pub received: usize,
    /// Saved positions by shard id.
    pub saved: HashMap<String, Saved>,
    /// Distinct events received in the [`RECENT`] seconds before the kill.
    pub recent: usize,
}

impl Kill {
    /// `events` is the sink's log once the process is gone, `checkpoints`
    /// the adapter's `file:` folder, `killed_at` when the signal was sent.
    pub fn observe(
        events: &[ReceivedEvent],
        checkpoints: &Path,
        killed_at: Instant,
    ) -> Result<Kill> {
        let recent: HashSet<&str> = events
            .iter()
            .filter(|e| killed_at.saturating_duration_since(e.received_at) <= RECENT)
            .map(|e| e.id.as_str())
            .collect();
        Ok(Kill {
            received: events.len(),
            saved: saved_positions(checkpoints)?,
            recent: recent.len(),
        })
    }

    /// Events received before the kill that lie beyond their shard's saved
    /// position: exactly what the restart must send again.
    pub fn beyond_saved<'a>(&self, received: &'a [ReceivedEvent]) -> HashSet<&'a str> {
        received[..self.received.min(received.len())]
            .iter()
            .filter(|e| {
                let extension = |name| e.extensions.get(name).map(String::as_str);
                match self
                    .saved
                    .get(extension("dynamodbshard").unwrap_or_default())
                {
                    Some(Saved::Finished) => false,
                    Some(Saved::After(saved)) => {
                        extension("sequence").unwrap_or_default() > saved.as_str()
                    }
                    None => true,
                }
            })
            .map(|e| e.id.as_str())
            .collect()
    }

    /// Events received before the kill and again after it.
    pub fn resent<'a>(&self, received: &'a [ReceivedEvent]) -> HashSet<&'a str> {
        let (before, after) = received.split_at(self.received.min(received.len()));
        let before: HashSet<&str> = before.iter().map(|e| e.id.as_str()).collect();
        after
            .iter()
            .map(|e| e.id.as_str())
            .filter(|id| before.contains(id))
            .collect()
    }
}

/// Every shard's position in `<folder>/checkpoints.json` (none before the
/// first save). The file must be whole: the adapter writes it atomically.
pub fn saved_positions(folder: &Path) -> Result<HashMap<String, Saved>> {
    let path = folder.join("checkpoints.json");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{} is torn", path.display()))?;
    let mut saved = HashMap::new();
    let streams = json["streams"]
        .as_object()
        .into_iter()
        .flat_map(|s| s.values());
    for stream in streams {
        for (shard, position) in stream["shards"].as_object().into_iter().flatten() {
            let position = match (position.as_str(), position["after"].as_str()) {
                (Some("finished"), _) => Saved::Finished,
                (_, Some(sequence)) => Saved::After(format!("{sequence:0>40}")),
                // `since`: nothing delivered yet.
                _ => continue,
            };
            saved.insert(shard.clone(), position);
        }
    }
    Ok(saved)
}
