//! The checkpoint file: whatever `checkpoints.json` holds, loading gives
//! the positions or says the file is corrupt, naming it; it never panics,
//! never starts over silently, and never touches the file.

use std::path::Path;

use awsdynamodb_source::test_support::SequenceNumber;
use awsdynamodb_source::test_support::{
    CheckpointError, CheckpointStore, Checkpoints, FileStore, ShardPosition, StreamCheckpoint,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestRunner;

use crate::arbitrary::odd_string;
use crate::config;

fn position() -> impl Strategy<Value = ShardPosition> {
    prop_oneof![
        "[0-9]{1,40}"
            .prop_map(|s| ShardPosition::After(SequenceNumber::parse(&s).expect("1 to 40 digits"))),
        any::<i64>().prop_map(ShardPosition::Since),
        Just(ShardPosition::Finished),
    ]
}

/// Positions as the adapter saves them, with any stream and shard names.
fn checkpoints() -> impl Strategy<Value = Checkpoints> {
    let stream = (any::<bool>(), btree_map(odd_string(), position(), 0..4))
        .prop_map(|(finished, shards)| StreamCheckpoint { finished, shards });
    btree_map(odd_string(), stream, 0..3).prop_map(|streams| Checkpoints {
        streams,
        snapshot: None,
    })
}

/// One change to a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Remove(Index, usize),
    Insert(Index, Vec<u8>),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Bytes that JSON and serde's messages treat specially.
    let special = prop_oneof![
        any::<u8>(),
        select(b"{}[]\":,\\-0123456789eE.\n\x00\xff".as_slice()),
    ];
    prop_oneof![
        (any::<Index>(), special.clone()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<Index>(), 1usize..8).prop_map(|(at, n)| Mutation::Remove(at, n)),
        (any::<Index>(), vec(special, 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        // Text that serde repeats in its messages: an unknown variant, a
        // bad sequence number, each with a line break.
        any::<Index>().prop_map(|at| Mutation::Insert(at, b"{\"a\\nb\":1}".to_vec())),
        any::<Index>().prop_map(|at| Mutation::Insert(at, b"\"1\\n2\"".to_vec())),
    ]
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match self {
            Mutation::Flip(at, b) if len > 0 => bytes[at.index(len)] = *b,
            Mutation::Flip(..) => {}
            Mutation::Remove(at, n) => {
                let start = at.index(len + 1);
                bytes.drain(start..(start + n).min(len));
            }
            Mutation::Insert(at, b) => {
                let at = at.index(len + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(len + 1)),
        }
    }
}

/// A store on a folder of its own, and a runtime to drive it.
struct Store {
    _dir: tempfile::TempDir,
    store: FileStore,
    runtime: tokio::runtime::Runtime,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = FileStore::open(dir.path()).expect("a store");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        Store {
            _dir: dir,
            store,
            runtime,
        }
    }

    /// Writes `bytes` as the checkpoint file, loads it, and checks the
    /// outcome: positions that save and load back the same, or `Corrupt`
    /// naming the file on one line; the file as it was either way.
    fn load(&self, bytes: &[u8]) -> Result<Option<Checkpoints>, TestCaseError> {
        let path = self.store.path();
        std::fs::write(&path, bytes).expect("write the checkpoint file");
        let loaded = self.runtime.block_on(self.store.load());
        prop_assert_eq!(read(&path), bytes, "loading changed the file");
        match loaded {
            Ok(checkpoints) => {
                self.runtime
                    .block_on(self.store.save(&checkpoints))
                    .map_err(|e| TestCaseError::fail(format!("save: {e}")))?;
                let again = self
                    .runtime
                    .block_on(self.store.load())
                    .map_err(|e| TestCaseError::fail(format!("load what was saved: {e}")))?;
                prop_assert_eq!(&again, &checkpoints, "saved and loaded back differently");
                Ok(Some(checkpoints))
            }
            Err(CheckpointError::Corrupt { location, message }) => {
                prop_assert_eq!(location, path.display().to_string());
                let shown = CheckpointError::Corrupt {
                    location: path.display().to_string(),
                    message,
                }
                .to_string();
                prop_assert!(shown.contains(&path.display().to_string()), "{shown}");
                prop_assert!(!shown.contains(['\n', '\r']), "not one line: {shown:?}");
                Ok(None)
            }
            Err(other) => Err(TestCaseError::fail(format!("not Corrupt: {other}"))),
        }
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("the checkpoint file is still there")
}

/// Runs `test` on `strategy`'s values, reporting the smallest failing one.
fn run<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    if let Err(e) = TestRunner::new(config(cases)).run(&strategy, test) {
        panic!("{e}");
    }
}

/// Any bytes at all in `checkpoints.json`: positions, or `Corrupt` naming
/// the file on one line, and the file left as it was.
#[test]
fn any_bytes_load_as_positions_or_as_corrupt_naming_the_file() {
    let store = Store::new();
    let text = prop_oneof![
        vec(any::<u8>(), 0..256),
        odd_string().prop_map(String::into_bytes),
        select(
            &[
                "",
                "null",
                "{}",
                "[]",
                "{\"streams\":null}",
                "{\"streams\":{\"s\":{\"shards\":{\"a\":\"after\"}}}}",
                "{\"streams\":{\"s\":{\"shards\":{\"a\":{\"since\":1e3}}}}}",
            ][..]
        )
        .prop_map(|s| s.as_bytes().to_vec()),
    ];
    run(256, text, |bytes| store.load(&bytes).map(drop));
}

/// A valid file loads as what was saved; a valid file changed a little
/// (bytes flipped, cut, removed or added) loads as some positions or as
/// `Corrupt` naming the file, and is left as it was.
#[test]
fn a_damaged_file_loads_as_positions_or_as_corrupt_naming_the_file() {
    let store = Store::new();
    let cases = (checkpoints(), any::<bool>(), vec(mutation(), 0..3));
    run(256, cases, |(saved, pretty, mutations)| {
        let mut bytes = if pretty {
            serde_json::to_vec_pretty(&saved)
        } else {
            serde_json::to_vec(&saved)
        }
        .expect("checkpoints serialize");
        if mutations.is_empty() {
            let loaded = store.load(&bytes)?;
            prop_assert_eq!(loaded.as_ref(), Some(&saved));
            return Ok(());
        }
        for m in &mutations {
            m.apply(&mut bytes);
        }
        store.load(&bytes).map(drop)
    });
}
