//! Who should hold what: from the leases of a stream as one replica sees
//! them, what that replica does next. Pure: no store, no clock of its own.
//!
//! - A lease is **readable** while its shard is not finished and every
//!   parent is finished (or has no lease left: trimmed), so parents are
//!   read and checkpointed to their end before any replica takes a child.
//! - A held lease is **alive** while its counter moves: [`Liveness`] notes
//!   when each counter was first seen, and a counter unchanged for a lease
//!   period means its holder is gone (KCL's rule; no clocks are compared).
//! - The **live replicas** are the holders of alive leases, the replicas
//!   whose own heartbeat has been seen to move (one that holds nothing must
//!   be counted too; one not seen moving yet may have died before this one
//!   started), and this one. Each should hold the readable leases divided among
//!   them, ± 1.
//! - This replica **takes** free and dead readable leases up to its share;
//!   still short of it, it **asks** the holders above their share for the
//!   rest, all at once (a new replica gets its share within a round or two);
//!   holding more than its share, it **hands over** the leases asked for,
//!   after checkpointing them.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::Lease;
use crate::checkpoint::ShardPosition;

/// What to do now.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Free or dead leases to take (as seen).
    pub take: Vec<Lease>,
    /// Leases to ask their holders for.
    pub want: Vec<Lease>,
    /// Shards this replica holds and should hand over.
    pub hand_over: Vec<String>,
}

/// When each lease's counter was first seen, to tell live holders from
/// dead ones.
#[derive(Debug, Default)]
pub struct Liveness {
    /// By shard: the counter, when it was first seen, and whether it has
    /// been seen to change at all.
    seen: HashMap<String, (u64, Instant, bool)>,
}

impl Liveness {
    /// Notes the leases as listed now; forgets shards no longer listed.
    pub fn observe(&mut self, leases: &[Lease], now: Instant) {
        let listed: HashSet<&str> = leases.iter().map(|l| l.shard.as_str()).collect();
        self.seen.retain(|shard, _| listed.contains(shard.as_str()));
        for lease in leases {
            let entry = self
                .seen
                .entry(lease.shard.clone())
                .or_insert((lease.counter, now, false));
            if entry.0 != lease.counter {
                *entry = (lease.counter, now, true);
            }
        }
    }

    /// When the lease's holder is gone unless it renews it before.
    pub fn expires(&self, lease: &Lease, period: Duration) -> Option<Instant> {
        self.seen
            .get(&lease.shard)
            .map(|(_, since, _)| *since + period)
    }

    /// Whether the lease's counter has been seen to change: its holder is
    /// known to run, not only not yet known to be gone (a replica that
    /// died before this one started looks alive for a lease period).
    pub fn moved(&self, lease: &Lease) -> bool {
        self.seen
            .get(&lease.shard)
            .is_some_and(|(_, _, moved)| *moved)
    }

    /// Whether the lease's holder has renewed it within `period`.
    pub fn alive(&self, lease: &Lease, period: Duration, now: Instant) -> bool {
        lease.owner.is_some()
            && self
                .seen
                .get(&lease.shard)
                .is_none_or(|(counter, since, _)| {
                    *counter != lease.counter || now - *since < period
                })
    }
}

/// The plan of replica `me` for a stream's `leases`; `alive` tells whether
/// a held lease's holder is alive, `replicas` are the other replicas the
/// shares are counted over (besides the holders of alive leases): those
/// whose heartbeat has been seen to move. A heartbeat not seen moving yet
/// may be a dead replica's: counting it would leave free leases unread for
/// a lease period; a new replica is counted from its first renewal.
pub fn plan(me: &str, leases: &[Lease], alive: impl Fn(&Lease) -> bool, replicas: &[&str]) -> Plan {
    let readable = readable(leases);
    let mut load: HashMap<&str, usize> = replicas.iter().map(|r| (*r, 0)).collect();
    load.insert(me, 0);
    let mut takeable = Vec::new();
    for lease in &readable {
        match lease.owner.as_deref() {
            Some(owner) if owner == me || alive(lease) => *load.entry(owner).or_default() += 1,
            _ => takeable.push((*lease).clone()),
        }
    }
    let view = View {
        me,
        share: readable.len() / load.len(),
        share_hi: readable.len().div_ceil(load.len()),
        readable,
        load,
    };
    let mine = view.load[me];
    takeable.truncate(view.share_hi.saturating_sub(mine));
    let asked = view
        .readable
        .iter()
        .filter(|l| view.asked_by(l) == Some(me))
        .count();
    let short = view.share.saturating_sub(mine + takeable.len() + asked);
    Plan {
        want: view.requests(short),
        hand_over: view.hand_over(mine),
        take: takeable,
    }
}

/// Leases whose shard is not finished and whose parents are.
fn readable(leases: &[Lease]) -> Vec<&Lease> {
    let finished: HashSet<&str> = leases
        .iter()
        .filter(|l| l.checkpoint == Some(ShardPosition::Finished))
        .map(|l| l.shard.as_str())
        .collect();
    let listed: HashSet<&str> = leases.iter().map(|l| l.shard.as_str()).collect();
    leases
        .iter()
        .filter(|l| l.checkpoint != Some(ShardPosition::Finished))
        .filter(|l| {
            l.parents
                .iter()
                .all(|p| finished.contains(p.as_str()) || !listed.contains(p.as_str()))
        })
        .collect()
}

/// The stream's readable leases and the live replicas' loads, as `me`
/// sees them.
struct View<'a> {
    me: &'a str,
    readable: Vec<&'a Lease>,
    load: HashMap<&'a str, usize>,
    /// Each replica's share: `share` or `share_hi` (one more).
    share: usize,
    share_hi: usize,
}

impl<'a> View<'a> {
    /// Who asked for a lease, if that replica is alive.
    fn asked_by(&self, lease: &'a Lease) -> Option<&'a str> {
        lease
            .wanted_by
            .as_deref()
            .filter(|by| self.load.contains_key(by))
    }

    /// `short` leases to ask for: each from the holder with the most
    /// (less what others asked of it already), so the givers end even.
    fn requests(&self, mut short: usize) -> Vec<Lease> {
        let mut load: HashMap<&str, usize> = self.load.clone();
        load.remove(self.me);
        // Each holder's leases not asked for yet, the lowest shard id last
        // (popped first).
        let mut offered: HashMap<&str, Vec<&Lease>> = HashMap::new();
        for lease in self.readable.iter().rev() {
            let Some(owner) = lease.owner.as_deref() else {
                continue;
            };
            match (load.get_mut(owner), self.asked_by(lease)) {
                (Some(n), Some(_)) => *n = n.saturating_sub(1),
                (Some(_), None) => offered.entry(owner).or_default().push(lease),
                _ => {}
            }
        }
        let mut want = Vec::new();
        while short > 0 {
            let giver = load
                .iter()
                .filter(|(owner, n)| {
                    **n > self.share && offered.get(**owner).is_some_and(|o| !o.is_empty())
                })
                .max_by_key(|(owner, n)| (**n, std::cmp::Reverse(**owner)))
                .map(|(owner, _)| *owner);
            let Some(lease) = giver.and_then(|g| offered.get_mut(g)).and_then(Vec::pop) else {
                break;
            };
            if let Some(n) = giver.and_then(|g| load.get_mut(g)) {
                *n -= 1;
            }
            want.push(lease.clone());
            short -= 1;
        }
        want
    }

    /// The leases `me` holds that live replicas asked for, as many as it
    /// holds above its share.
    fn hand_over(&self, mine: usize) -> Vec<String> {
        self.readable
            .iter()
            .filter(|l| l.owner.as_deref() == Some(self.me))
            .filter(|l| self.asked_by(l).is_some_and(|by| by != self.me))
            .take(mine.saturating_sub(self.share))
            .map(|l| l.shard.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SequenceNumber;

    fn lease(shard: &str, owner: Option<&str>) -> Lease {
        Lease {
            owner: owner.map(str::to_owned),
            ..Lease::new("s", shard, vec![])
        }
    }

    fn shards(leases: &[Lease]) -> Vec<&str> {
        leases.iter().map(|l| l.shard.as_str()).collect()
    }

    #[test]
    fn a_lone_replica_takes_every_readable_lease() {
        let mut child = lease("c", None);
        child.parents = vec!["p".into()];
        let leases = vec![lease("p", None), child.clone(), lease("q", None)];
        let p = plan("me", &leases, |_| true, &[]);
        assert_eq!(
            shards(&p.take),
            ["p", "q"],
            "the child waits for its parent"
        );

        let mut done = lease("p", Some("me"));
        done.checkpoint = Some(ShardPosition::Finished);
        let p = plan("me", &[done, child], |_| true, &[]);
        assert_eq!(shards(&p.take), ["c"], "its parent is finished");
    }

    /// One planning round of each replica, in turn, applied to the leases.
    fn round(leases: &mut [Lease], replicas: &[&str]) {
        for me in replicas {
            let p = plan(me, leases, |_| true, replicas);
            let find = |leases: &mut [Lease], shard: &str| {
                leases.iter().position(|l| l.shard == shard).unwrap()
            };
            for taken in p.take {
                let i = find(leases, &taken.shard);
                leases[i].owner = Some((*me).into());
            }
            for wanted in p.want {
                let i = find(leases, &wanted.shard);
                leases[i].wanted_by = Some((*me).into());
            }
            for shard in p.hand_over {
                let i = find(leases, &shard);
                (leases[i].owner, leases[i].wanted_by) = (None, None);
            }
        }
    }

    fn counts(leases: &[Lease], replicas: &[&str]) -> Vec<usize> {
        replicas
            .iter()
            .map(|r| {
                leases
                    .iter()
                    .filter(|l| l.owner.as_deref() == Some(*r))
                    .count()
            })
            .collect()
    }

    /// Two replicas share 32 leases, 16 each; a third joins and has its
    /// share after two rounds (ask, then take what was handed over): each
    /// holds 10 or 11, within ± 1, and nothing is held twice or dropped.
    #[test]
    fn leases_spread_evenly_and_a_new_replica_gets_its_share_in_two_rounds() {
        let mut leases: Vec<Lease> = (0..32).map(|i| lease(&format!("s{i:02}"), None)).collect();
        round(&mut leases, &["a", "b"]);
        assert_eq!(counts(&leases, &["a", "b"]), [16, 16]);
        let three = ["a", "b", "c"];
        round(&mut leases, &three);
        round(&mut leases, &three);
        let counts = counts(&leases, &three);
        assert!(counts.iter().all(|n| (10..=11).contains(n)), "{counts:?}");
        assert_eq!(counts.iter().sum::<usize>(), 32);
        round(&mut leases, &three);
        assert_eq!(
            super::tests::counts(&leases, &three),
            counts,
            "stable once even"
        );
    }

    /// A new replica asks the busiest one for a lease; the holder hands over
    /// only while it holds more than its share.
    #[test]
    fn a_new_replica_asks_and_the_busiest_hands_over() {
        let mut leases: Vec<Lease> = (0..4).map(|i| lease(&format!("s{i}"), Some("a"))).collect();
        let p = plan("b", &leases, |_| true, &["a", "b"]);
        assert!(p.take.is_empty());
        assert_eq!(
            shards(&p.want),
            ["s0", "s1"],
            "b asks for its share at once"
        );
        for l in &mut leases[..2] {
            l.wanted_by = Some("b".into());
        }
        assert!(
            plan("b", &leases, |_| true, &["a", "b"]).want.is_empty(),
            "asked already"
        );
        assert_eq!(
            plan("a", &leases, |_| true, &["a", "b"]).hand_over,
            ["s0", "s1"]
        );

        // A request from a replica that is gone (no lease alive) is not served.
        let mut gone = leases.clone();
        for l in &mut gone {
            l.wanted_by = Some("ghost".into());
        }
        assert!(plan("a", &gone, |_| true, &["a", "b"]).hand_over.is_empty());
    }

    #[test]
    fn dead_holders_leases_are_taken_and_finished_shards_never() {
        let mut finished = lease("f", Some("dead"));
        finished.checkpoint = Some(ShardPosition::Finished);
        let mut at = lease("x", Some("dead"));
        at.checkpoint = Some(ShardPosition::After(SequenceNumber::parse("7").unwrap()));
        let p = plan(
            "me",
            &[finished, at.clone(), lease("y", Some("alive"))],
            |l| l.owner.as_deref() == Some("alive"),
            &[],
        );
        assert_eq!(p.take, vec![at]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_counter_that_stands_still_for_a_period_means_the_holder_is_gone() {
        let period = Duration::from_secs(10);
        let mut liveness = Liveness::default();
        let mut l = lease("x", Some("a"));
        liveness.observe(std::slice::from_ref(&l), Instant::now());
        assert!(
            !liveness.moved(&l),
            "not seen to move: maybe a replica that died before"
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        l.counter += 1;
        liveness.observe(std::slice::from_ref(&l), Instant::now());
        assert!(liveness.moved(&l), "known to run");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(
            liveness.alive(&l, period, Instant::now()),
            "renewed 9 s ago"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(
            !liveness.alive(&l, period, Instant::now()),
            "not renewed for 10 s"
        );
        assert!(
            !liveness.alive(&lease("x", None), period, Instant::now()),
            "free"
        );
    }
}
