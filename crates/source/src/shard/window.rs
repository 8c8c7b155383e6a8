//! The in-flight window of one shard: up to `max_in_flight` deliveries at
//! once, but never two of the same item, so each item's changes reach the
//! sink in stream order while different items overtake each other.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::checkpoint::Ticket;
use crate::event::CloudEvent;
use crate::record::ItemKey;
use crate::sink::Delivery;

/// An event waiting for its turn.
#[derive(Debug)]
pub struct Pending {
    pub ticket: Ticket,
    pub item: ItemKey,
    pub event: CloudEvent,
}

/// A delivery that ended.
#[derive(Debug)]
pub struct Completed {
    pub ticket: Ticket,
    pub item: ItemKey,
    pub delivery: Delivery,
}

type InFlight = Pin<Box<dyn Future<Output = Completed> + Send>>;

#[derive(Default)]
struct ItemQueue {
    waiting: VecDeque<Pending>,
    /// An event of this item is in flight.
    running: bool,
}

/// Starts deliveries with `start`, in order per item, `max_in_flight` at most.
pub struct DeliveryWindow<S> {
    max_in_flight: usize,
    start: S,
    items: HashMap<ItemKey, ItemQueue>,
    /// Items whose next event may start, by that event's place in the shard:
    /// the oldest event that may go goes first (with one in flight, the sink
    /// sees exactly the stream's order).
    runnable: BTreeMap<Ticket, ItemKey>,
    in_flight: FuturesUnordered<InFlight>,
    outstanding: usize,
}

impl<S> DeliveryWindow<S>
where
    S: FnMut(Pending) -> InFlight,
{
    pub fn new(max_in_flight: usize, start: S) -> Self {
        DeliveryWindow {
            max_in_flight: max_in_flight.max(1),
            start,
            items: HashMap::new(),
            runnable: BTreeMap::new(),
            in_flight: FuturesUnordered::new(),
            outstanding: 0,
        }
    }

    /// Queues an event; it starts as soon as the window and its item allow.
    pub fn push(&mut self, pending: Pending) {
        let (item, ticket) = (pending.item, pending.ticket);
        let queue = self.items.entry(item).or_default();
        queue.waiting.push_back(pending);
        if !queue.running && queue.waiting.len() == 1 {
            self.runnable.insert(ticket, item);
        }
        self.outstanding += 1;
        self.fill();
    }

    fn fill(&mut self) {
        while self.in_flight.len() < self.max_in_flight {
            let Some((_, item)) = self.runnable.pop_first() else {
                return;
            };
            let Some(queue) = self.items.get_mut(&item) else {
                continue;
            };
            let Some(next) = queue.waiting.pop_front() else {
                continue;
            };
            queue.running = true;
            self.in_flight.push((self.start)(next));
        }
    }

    /// The next delivery to end. Call only while [`in_flight`](Self::in_flight)
    /// is non-zero (otherwise it returns `None` at once). Cancel-safe.
    pub async fn next_completed(&mut self) -> Option<Completed> {
        let done = self.in_flight.next().await?;
        self.outstanding -= 1;
        if let Some(queue) = self.items.get_mut(&done.item) {
            queue.running = false;
            match queue.waiting.front() {
                Some(next) => {
                    self.runnable.insert(next.ticket, done.item);
                }
                None => {
                    self.items.remove(&done.item);
                }
            }
        }
        self.fill();
        Some(done)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Events pushed and not yet completed (in flight or waiting).
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::checkpoint::OrderedFinalizer;
    use crate::record::SequenceNumber;

    /// With one in flight, events go in exactly the order they came, items
    /// mixed.
    #[tokio::test]
    async fn one_in_flight_keeps_the_shards_order() {
        let sent: Arc<Mutex<Vec<String>>> = Arc::default();
        let sent_in = sent.clone();
        let mut window = DeliveryWindow::new(1, move |p: Pending| {
            sent_in.lock().unwrap().push(p.event.id.clone());
            Box::pin(async move {
                tokio::task::yield_now().await;
                Completed {
                    ticket: p.ticket,
                    item: p.item,
                    delivery: Delivery::Delivered,
                }
            }) as InFlight
        });
        let mut finalizer = OrderedFinalizer::default();
        let key = |k: u8| {
            ItemKey::of(Some(
                &[(
                    "k".to_string(),
                    crate::record::AttributeValue::N(k.to_string()),
                )]
                .into(),
            ))
        };
        // Every other event changes item 0; the others each a new item.
        let item_of = |n: usize| if n.is_multiple_of(2) { 0 } else { n as u8 };
        let pushed: Vec<String> = (0..40usize)
            .map(|n| format!("{}-{n}", item_of(n)))
            .collect();
        for (n, id) in pushed.iter().enumerate() {
            let ticket = finalizer.push(SequenceNumber::parse(&(n + 1).to_string()).unwrap());
            window.push(Pending {
                ticket,
                item: key(item_of(n)),
                event: CloudEvent::with_id(id.clone()),
            });
        }
        while window.in_flight() > 0 {
            window.next_completed().await.unwrap();
        }
        assert_eq!(*sent.lock().unwrap(), pushed);
    }

    /// 300 events over 7 items with random delivery times: at most
    /// `max` in flight, never two of one item at once, each item's events
    /// completed in push order, and everything completes.
    #[tokio::test(start_paused = true)]
    async fn per_item_order_under_random_latency() {
        let log: Arc<Mutex<Vec<(String, &'static str)>>> = Arc::default();
        let max = 5;
        let log_in = log.clone();
        let mut window = DeliveryWindow::new(max, move |p: Pending| {
            let log = log_in.clone();
            Box::pin(async move {
                log.lock().unwrap().push((p.event.id.clone(), "start"));
                let ms = rand::random_range(1..50);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                log.lock().unwrap().push((p.event.id.clone(), "end"));
                Completed {
                    ticket: p.ticket,
                    item: p.item,
                    delivery: Delivery::Delivered,
                }
            }) as InFlight
        });
        let mut finalizer = OrderedFinalizer::default();
        let items: Vec<ItemKey> = (0..7u8)
            .map(|i| {
                ItemKey::of(Some(
                    &[(
                        "k".to_string(),
                        crate::record::AttributeValue::N(i.to_string()),
                    )]
                    .into(),
                ))
            })
            .collect();
        let mut completed = 0;
        for n in 0..300u32 {
            let item = rand::random_range(0..items.len());
            let ticket = finalizer.push(SequenceNumber::parse(&(n + 1).to_string()).unwrap());
            window.push(Pending {
                ticket,
                item: items[item],
                event: CloudEvent::with_id(format!("{item}-{n}")),
            });
            assert!(window.in_flight() <= max);
            while window.outstanding() > 20 {
                let c = window.next_completed().await.unwrap();
                finalizer.done(c.ticket);
                completed += 1;
            }
        }
        while window.in_flight() > 0 {
            let c = window.next_completed().await.unwrap();
            finalizer.done(c.ticket);
            completed += 1;
        }
        assert_eq!(completed, 300);
        assert_eq!(window.outstanding(), 0);
        assert_eq!(finalizer.advance().unwrap().as_str(), "300");

        let log = log.lock().unwrap();
        let mut running: HashMap<&str, usize> = HashMap::new();
        let mut last_end: HashMap<&str, u32> = HashMap::new();
        let mut concurrent = 0usize;
        let mut max_seen = 0;
        for (id, what) in log.iter() {
            let (item, n) = id.split_once('-').unwrap();
            let n: u32 = n.parse().unwrap();
            match *what {
                "start" => {
                    let r = running.entry(item).or_default();
                    *r += 1;
                    assert_eq!(*r, 1, "two events of item {item} in flight");
                    concurrent += 1;
                    max_seen = max_seen.max(concurrent);
                }
                _ => {
                    *running.get_mut(item).unwrap() -= 1;
                    concurrent -= 1;
                    if let Some(prev) = last_end.insert(item, n) {
                        assert!(prev < n, "item {item}: {n} completed after {prev}");
                    }
                }
            }
        }
        assert!(max_seen <= max);
        assert!(max_seen > 1, "different items overtake each other");
    }
}
