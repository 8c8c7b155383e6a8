//! The ordered finalizer: events of a shard are handed out in sequence order
//! and acknowledged in any order; the checkpoint may only move over the
//! contiguous prefix of done events (Vector's `OrderedFinalizer` idea). Each
//! event may carry a note (`T`), so that the oldest event not yet done can be
//! described (when it was read, how old its record is).

use std::collections::VecDeque;

use crate::record::SequenceNumber;

/// Names one event handed out by [`OrderedFinalizer::push`]; tickets order
/// as their events do in the shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// Sequence numbers in hand-out order, each done or not, with its note.
#[derive(Debug)]
pub struct OrderedFinalizer<T = ()> {
    /// Ticket number of `pending[0]`; also how many events the checkpoint
    /// has moved over so far.
    front: u64,
    pending: VecDeque<(SequenceNumber, bool, T)>,
}

impl<T> Default for OrderedFinalizer<T> {
    fn default() -> Self {
        OrderedFinalizer {
            front: 0,
            pending: VecDeque::new(),
        }
    }
}

impl<T> OrderedFinalizer<T> {
    /// Registers the next event of the shard; sequence numbers must come in
    /// stream order.
    pub fn push(&mut self, sequence: SequenceNumber, note: T) -> Ticket {
        self.pending.push_back((sequence, false, note));
        Ticket(self.front + self.pending.len() as u64 - 1)
    }

    /// Marks an event done (delivered, dropped or skipped).
    pub fn done(&mut self, ticket: Ticket) {
        if let Some(index) = ticket.0.checked_sub(self.front)
            && let Some(entry) = self.pending.get_mut(index as usize)
        {
            entry.1 = true;
        }
    }

    /// Drops the done prefix and returns the sequence number the checkpoint
    /// may now cover, if it moved.
    pub fn advance(&mut self) -> Option<SequenceNumber> {
        let mut last = None;
        while self.pending.front().is_some_and(|(_, done, _)| *done) {
            last = self.pending.pop_front().map(|(seq, ..)| seq);
            self.front += 1;
        }
        last
    }

    /// The note of the oldest event not yet behind the checkpoint: after
    /// [`advance`](Self::advance), the oldest event not done.
    pub fn oldest(&self) -> Option<&T> {
        self.pending.front().map(|(_, _, note)| note)
    }

    /// Events the checkpoint has moved over since this finalizer began.
    pub fn covered(&self) -> u64 {
        self.front
    }

    /// Events handed out and not yet behind the checkpoint.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(n: u32) -> SequenceNumber {
        SequenceNumber::parse(&format!("{n:021}")).unwrap()
    }

    #[test]
    fn moves_only_over_the_done_prefix() {
        let mut f = OrderedFinalizer::default();
        let t: Vec<Ticket> = (1..=5).map(|n| f.push(seq(n), ())).collect();
        f.done(t[1]);
        f.done(t[2]);
        assert_eq!(f.advance(), None, "1 is not done, so nothing is");
        f.done(t[0]);
        assert_eq!(f.advance(), Some(seq(3)));
        assert_eq!(f.advance(), None);
        f.done(t[4]);
        assert_eq!(f.advance(), None);
        f.done(t[3]);
        assert_eq!(f.advance(), Some(seq(5)));
        assert!(f.is_empty());
    }

    #[test]
    fn any_acknowledgement_order_ends_at_the_last() {
        // Every permutation of 6 acknowledgements: the checkpoint never
        // passes an unacknowledged event and ends at the last one.
        fn permutations(items: Vec<usize>) -> Vec<Vec<usize>> {
            if items.len() <= 1 {
                return vec![items];
            }
            let mut out = Vec::new();
            for i in 0..items.len() {
                let mut rest = items.clone();
                let x = rest.remove(i);
                for mut p in permutations(rest) {
                    p.insert(0, x);
                    out.push(p);
                }
            }
            out
        }
        for order in permutations((0..6).collect()) {
            let mut f = OrderedFinalizer::default();
            let tickets: Vec<Ticket> = (0..6).map(|n| f.push(seq(n + 1), ())).collect();
            let mut acked = [false; 6];
            let mut checkpoint = 0;
            for &i in &order {
                f.done(tickets[i]);
                acked[i] = true;
                if let Some(s) = f.advance() {
                    checkpoint = s.as_str().parse::<usize>().unwrap();
                }
                assert!(
                    acked[..checkpoint].iter().all(|a| *a),
                    "{order:?}: checkpoint {checkpoint} passes a pending event"
                );
                let prefix = acked.iter().take_while(|a| **a).count();
                assert_eq!(checkpoint, prefix, "{order:?}");
            }
            assert_eq!(checkpoint, 6);
        }
    }

    /// The note of the oldest event not done, and the count of events the
    /// checkpoint moved over: what progress reports per shard.
    #[test]
    fn the_oldest_event_not_done_and_the_events_covered() {
        let mut f = OrderedFinalizer::default();
        let t: Vec<Ticket> = (1..=3)
            .map(|n| f.push(seq(n), format!("read {n}")))
            .collect();
        f.done(t[0]);
        f.done(t[2]);
        f.advance();
        assert_eq!(f.oldest().map(String::as_str), Some("read 2"));
        assert_eq!((f.covered(), f.len()), (1, 2));
        f.done(t[1]);
        f.advance();
        assert_eq!((f.oldest(), f.covered()), (None, 3));
    }
}
