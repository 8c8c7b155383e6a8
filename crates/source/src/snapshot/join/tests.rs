//! The join's guarantee against a model: a table written to before and
//! during the snapshot, record times rounded (to the second or the minute)
//! on a clock skewed from the scanner's, chunks read over overlapping
//! windows and handed over late. Whatever the interleaving, per item the
//! delivered versions never go back, and a consumer applying them ends with
//! the table's content.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::{Chunk, SnapshotJoin};

const KEYS: usize = 8;
/// The snapshot begins (scanner's clock, ms).
const START: i64 = 10_000_000;

#[derive(Debug, Clone)]
struct Write {
    /// ms after the history begins (before START: some writes precede the
    /// snapshot, within the margin too).
    at: i64,
    key: usize,
    delete: bool,
    /// When its record is delivered (records go in write order, late).
    delivered_at: i64,
}

#[derive(Debug, Clone)]
struct ChunkPlan {
    /// Keys `from..to` of the partition.
    keys: std::ops::Range<usize>,
    read_from: i64,
    read_to: i64,
    /// Each key's moment of read, as a fraction of the window.
    reads: Vec<f64>,
    /// How long after its read the chunk reaches the join.
    handed_late: i64,
}

/// An item's state: `(version, exists)`; the version is the number of the
/// write that made it (0: it was there from the start).
type State = (usize, bool);

fn state_at(initial: &[bool], writes: &[Write], key: usize, at: i64) -> State {
    let mut state = (0, initial[key]);
    for (n, w) in writes.iter().enumerate() {
        if w.key == key && w.at <= at {
            state = (n + 1, !w.delete);
        }
    }
    state
}

fn scenario() -> impl Strategy<Value = (i64, i64, Vec<bool>, Vec<Write>, Vec<ChunkPlan>, bool, bool)>
{
    (
        prop_oneof![Just(1_000i64), Just(60_000i64)],
        -300i64..300,
        proptest::collection::vec(any::<bool>(), KEYS),
        proptest::collection::vec((0i64..10, 0..KEYS, any::<bool>(), 0i64..30), 0..40),
        proptest::collection::vec(1usize..KEYS, 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(
            |(rounding, skew, initial, steps, cuts, record_first, by_record_time)| {
                // Writes from 5 roundings before the start on, gaps up to one rounding.
                // Each record is delivered up to 3 roundings after its write.
                let mut at = START - 5 * rounding;
                let mut delivered_at = at;
                let writes: Vec<Write> = steps
                    .iter()
                    .map(|(gap, key, delete, lag)| {
                        at += gap * rounding / 10;
                        delivered_at = delivered_at.max(at + lag * rounding / 10);
                        Write {
                            at,
                            key: *key,
                            delete: *delete,
                            delivered_at,
                        }
                    })
                    .collect();
                let mut bounds: Vec<usize> = cuts;
                bounds.extend([0, KEYS]);
                bounds.sort();
                bounds.dedup();
                let ranges: Vec<std::ops::Range<usize>> =
                    bounds.windows(2).map(|w| w[0]..w[1]).collect();
                let span = 8 * rounding;
                let chunks = ranges
                    .into_iter()
                    .map(move |keys| {
                        let n = keys.len();
                        (
                            0..span,
                            0..3 * rounding,
                            proptest::collection::vec(0.0f64..=1.0, n),
                            0..2 * rounding,
                        )
                            .prop_map(move |(offset, len, reads, late)| {
                                ChunkPlan {
                                    keys: keys.clone(),
                                    read_from: START + offset,
                                    read_to: START + offset + len,
                                    reads,
                                    handed_late: late,
                                }
                            })
                    })
                    .collect::<Vec<_>>();
                (
                    Just(rounding),
                    Just(skew),
                    Just(initial),
                    Just(writes),
                    chunks,
                    Just(record_first),
                    Just(by_record_time),
                )
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_state_steps_back_and_the_consumer_ends_with_the_table(
        (rounding, skew, initial, writes, plans, record_first, by_record_time) in scenario()
    ) {
        // The margin covers the rounding and the skew.
        let margin = rounding + 500;
        // The stream's record time of a write (AWS's clock, rounded down).
        let record_time = |at: i64| (at + skew).div_euclid(rounding) * rounding;

        // What happens, in the order it happens: records, and chunks handed over.
        enum Step { Record(usize), Chunk(usize) }
        let mut timeline: Vec<(i64, Step)> = writes
            .iter()
            .enumerate()
            .map(|(n, w)| (w.delivered_at, Step::Record(n)))
            .collect();
        timeline.extend(
            plans.iter().enumerate().map(|(n, p)| (p.read_to + p.handed_late, Step::Chunk(n))),
        );
        timeline.sort_by_key(|(at, _)| *at);

        let mut join = SnapshotJoin::new(margin);
        let mut delivered: Vec<(usize, State)> = Vec::new();
        for (_, step) in timeline {
            match step {
                Step::Chunk(n) => {
                    let plan = &plans[n];
                    let rows = plan
                        .keys
                        .clone()
                        .zip(&plan.reads)
                        .filter_map(|(key, fraction)| {
                            let at = plan.read_from
                                + ((plan.read_to - plan.read_from) as f64 * fraction) as i64;
                            let state = state_at(&initial, &writes, key, at);
                            // A scan returns only items that exist.
                            state.1.then_some((key, state))
                        })
                        .collect();
                    join.add_chunk(Chunk {
                        read_from_ms: plan.read_from,
                        read_to_ms: plan.read_to,
                        rows,
                        then: (),
                    });
                }
                Step::Record(n) => {
                    let w = &writes[n];
                    let r = record_time(w.at);
                    // The stream is read from START - margin on.
                    if r < START - margin {
                        continue;
                    }
                    if record_first {
                        join.record(w.key, r);
                    }
                    // Every record before this one is delivered: every write
                    // before this one's, or (as a shard reader knows it)
                    // every record timed before this one's, so every write
                    // made a margin before that.
                    let passed = if by_record_time { r - 1 - margin } else { w.at - 1 };
                    while let Some((chunk, _)) = join.take_ready(passed) {
                        delivered.extend(chunk.rows);
                    }
                    if !record_first {
                        join.record(w.key, r);
                    }
                    delivered.push((w.key, (n + 1, !w.delete)));
                }
            }
        }
        while let Some((chunk, _)) = join.take_ready(i64::MAX) {
            delivered.extend(chunk.rows);
        }
        prop_assert_eq!(join.pending_rows(), 0);

        let mut consumer: BTreeMap<usize, State> = BTreeMap::new();
        for (key, state) in &delivered {
            if let Some(seen) = consumer.get(key) {
                prop_assert!(seen.0 <= state.0, "item {} went from {:?} back to {:?}", key, seen, state);
            }
            consumer.insert(*key, *state);
        }
        for key in 0..KEYS {
            let table = state_at(&initial, &writes, key, i64::MAX);
            let held = consumer.get(&key).map(|s| s.1).unwrap_or(false);
            prop_assert_eq!(held, table.1, "item {} exists in the table: {}", key, table.1);
            if table.1 {
                prop_assert_eq!(consumer[&key].0, table.0, "item {} is not the table's", key);
            }
            if state_at(&initial, &writes, key, START).1 {
                prop_assert!(consumer.contains_key(&key), "item {} present at the start never came", key);
            }
        }
    }
}

/// Records older than every chunk that is pending or to come are forgotten;
/// a pending chunk's window keeps its records.
#[test]
fn forgets_only_what_no_chunk_needs() {
    let mut join: SnapshotJoin<&str, u32> = SnapshotJoin::new(1_000);
    join.record("old", 1_000);
    join.record("kept", 8_500);
    join.add_chunk(Chunk {
        read_from_ms: 9_000,
        read_to_ms: 9_500,
        rows: vec![("kept", 1), ("old", 1)],
        then: (),
    });
    join.forget_before(20_000);
    assert!(join.take_ready(9_400).is_none());
    let (chunk, dropped) = join.take_ready(9_500).unwrap();
    assert_eq!((chunk.rows, dropped), (vec![("old", 1)], 1));
}
