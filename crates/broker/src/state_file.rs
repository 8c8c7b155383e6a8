//! The state file: the events still held at shutdown and each trigger's position, so a
//! stop/start loses nothing.
//!
//! Owns the file format (JSON: events in the CloudEvents JSON format, data byte for byte) and
//! writing it atomically (temporary file, mode 0600, rename). It never decides what to save or
//! when; it never deletes a file it could not read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::event_log::{Entry, Snapshot};
use awsdynamodbsource_cloudevents::CloudEvent;

const VERSION: u32 = 1;

/// A state file problem (one line).
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// Reading, writing or removing failed.
    #[error("state file {}: cannot {action}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The content is not a state file this broker wrote.
    #[error("state file {}: {message} (the file is left as it is)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    version: u32,
    next_seq: u64,
    /// Trigger name → seq of the first entry it has not finished.
    cursors: BTreeMap<String, u64>,
    entries: Vec<StoredEntry>,
}

#[derive(Serialize, Deserialize)]
struct StoredEntry {
    seq: u64,
    event: Box<RawValue>,
}

/// Writes the snapshot to `path` atomically, readable by the owner only.
pub(crate) fn save(path: &Path, snapshot: &Snapshot) -> Result<(), StateFileError> {
    let io = |action: &'static str| {
        move |source| StateFileError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let entries = snapshot
        .entries
        .iter()
        .map(|e| {
            let text =
                String::from_utf8(e.event.to_structured_json()).map_err(std::io::Error::other)?;
            let event = RawValue::from_string(text).map_err(std::io::Error::other)?;
            Ok(StoredEntry { seq: e.seq, event })
        })
        .collect::<Result<Vec<_>, std::io::Error>>()
        .map_err(io("encode events"))?;
    let document = Document {
        version: VERSION,
        next_seq: snapshot.next_seq,
        cursors: snapshot.cursors.clone(),
        entries,
    };
    let text = serde_json::to_vec(&document).map_err(|e| io("encode")(std::io::Error::other(e)))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // tempfile creates it with mode 0600; rename keeps the mode.
    let mut temp = tempfile::Builder::new()
        .prefix(".broker-state.")
        .tempfile_in(dir)
        .map_err(io("create a temporary file"))?;
    temp.write_all(&text).map_err(io("write"))?;
    temp.as_file().sync_all().map_err(io("sync"))?;
    temp.persist(path)
        .map_err(|e| io("rename the temporary file")(e.error))?;
    // Make the rename itself durable; not every filesystem allows syncing a directory.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a state file; `None` when there is none.
pub(crate) fn load(path: &Path) -> Result<Option<Snapshot>, StateFileError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateFileError::Io {
                path: path.to_path_buf(),
                action: "read",
                source,
            });
        }
    };
    let invalid = |message: String| StateFileError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let document: Document =
        serde_json::from_slice(&text).map_err(|e| invalid(format!("not a state file: {e}")))?;
    if document.version != VERSION {
        return Err(invalid(format!(
            "version {} is not supported",
            document.version
        )));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(document.entries.len());
    for (i, stored) in document.entries.into_iter().enumerate() {
        // Entries are contiguous: each one's seq is one more than the previous one's.
        if let Some(previous) = entries.last()
            && Some(stored.seq) != previous.seq.checked_add(1)
        {
            return Err(invalid(format!(
                "entry {i} has seq {}, expected {}",
                stored.seq,
                previous.seq + 1
            )));
        }
        let event = CloudEvent::from_structured_json(stored.event.get().as_bytes())
            .map_err(|e| invalid(format!("entry {i}: {e}")))?;
        entries.push(Entry {
            seq: stored.seq,
            event: Arc::new(event),
        });
    }
    if entries.last().is_some_and(|e| e.seq >= document.next_seq) {
        return Err(invalid("nextSeq is not after the last entry".into()));
    }
    Ok(Some(Snapshot {
        entries,
        next_seq: document.next_seq,
        cursors: document.cursors,
    }))
}

/// Removes the file after its content was taken in.
pub(crate) fn remove(path: &Path) -> Result<(), StateFileError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateFileError::Io {
            path: path.to_path_buf(),
            action: "remove",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::os::unix::fs::PermissionsExt;

    fn entry(seq: u64, content_type: &str, data: &'static [u8]) -> Entry {
        let attrs = [
            ("specversion", "1.0"),
            ("id", &seq.to_string()),
            ("source", "s"),
            ("type", "t"),
            ("datacontenttype", content_type),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Entry {
            seq,
            event: Arc::new(
                CloudEvent::from_attributes(attrs, Some(Bytes::from_static(data))).unwrap(),
            ),
        }
    }

    #[test]
    fn save_and_load_keep_events_byte_for_byte_and_cursors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let snapshot = Snapshot {
            entries: vec![
                entry(4, "application/json", br#"{"b":1, "a":[2.50]}"#),
                entry(5, "application/json", b"{\"k\": 1}\n"),
                entry(6, "application/octet-stream", &[0, 255, 10]),
                entry(7, "text/plain", "plain é".as_bytes()),
            ],
            next_seq: 8,
            cursors: [("a".to_string(), 4), ("b".to_string(), 6)].into(),
        };
        save(&path, &snapshot).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(r#""data":{"b":1, "a":[2.50]}"#),
            "JSON data stays readable: {text}"
        );
        let loaded = load(&path).unwrap().unwrap();
        assert_eq!(loaded.next_seq, 8);
        assert_eq!(loaded.cursors, snapshot.cursors);
        let pairs = |s: &Snapshot| {
            s.entries
                .iter()
                .map(|e| (e.seq, (*e.event).clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(pairs(&loaded), pairs(&snapshot));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        remove(&path).unwrap();
        assert!(load(&path).unwrap().is_none());
        remove(&path).unwrap();
    }

    #[test]
    fn damaged_files_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let event = r#"{"specversion":"1.0","id":"1","source":"s","type":"t"}"#;
        let cases = [
            ("not json".to_string(), "not a state file"),
            (
                r#"{"version":2,"nextSeq":1,"cursors":{},"entries":[]}"#.to_string(),
                "version 2 is not supported",
            ),
            (
                format!(r#"{{"version":1,"nextSeq":9,"cursors":{{}},"entries":[{{"seq":1,"event":{event}}},{{"seq":3,"event":{event}}}]}}"#),
                "entry 1 has seq 3, expected 2",
            ),
            (
                format!(r#"{{"version":1,"nextSeq":1,"cursors":{{}},"entries":[{{"seq":1,"event":{event}}}]}}"#),
                "nextSeq is not after the last entry",
            ),
            (
                r#"{"version":1,"nextSeq":9,"cursors":{},"entries":[{"seq":1,"event":{"id":"x"}}]}"#.to_string(),
                "entry 0: missing specversion",
            ),
        ];
        for (text, want) in cases {
            std::fs::write(&path, &text).unwrap();
            let err = load(&path).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(path.exists(), "a file that cannot be read is left alone");
        }
    }
}
