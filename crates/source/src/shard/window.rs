//! The in-flight window of one shard: up to `max_in_flight` deliveries at
//! once, but never two of the same item, so each item's changes reach the
//! sink in stream order while different items overtake each other.
//!
//! The window also bounds how far delivery runs ahead of the shard's oldest
//! event not yet done: an event starts only while it is fewer than
//! `max_in_flight` events after that one. Events done out of order wait for
//! the checkpoint behind the oldest, and after a crash they are sent again;
//! this bound keeps them, per shard, under `max_in_flight` whatever the sink
//! does (a request that hangs stops the shard's delivery after that many).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::checkpoint::Ticket;
use crate::event::StreamEvent;
use crate::record::ItemKey;
use crate::sink::Delivery;

/// An event waiting for its turn.
#[derive(Debug)]
pub struct Pending {
    pub ticket: Ticket,
    pub item: ItemKey,
    pub event: StreamEvent,
}

/// A delivery that ended.
#[derive(Debug)]
pub struct Completed {
    pub ticket: Ticket,
    pub item: ItemKey,
    pub delivery: Delivery,
}

type InFlight = Pin<Box<dyn Future<Output = Completed> + Send>>;

/// A delivery with its place among the window's events.
struct Placed {
    place: u64,
    delivery: InFlight,
}

impl Future for Placed {
    type Output = (u64, Completed);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let place = self.place;
        self.delivery.as_mut().poll(cx).map(|done| (place, done))
    }
}

#[derive(Default)]
struct ItemQueue {
    waiting: VecDeque<(u64, Pending)>,
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
    in_flight: FuturesUnordered<Placed>,
    /// Whether each event from `first_place` on has completed; the front is
    /// the oldest event not completed (completed ones are popped).
    completed: VecDeque<bool>,
    /// The place of `completed[0]`; places number the pushed events.
    first_place: u64,
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
            completed: VecDeque::new(),
            first_place: 0,
            outstanding: 0,
        }
    }

    /// Queues an event; it starts as soon as the window and its item allow.
    pub fn push(&mut self, pending: Pending) {
        let (item, ticket) = (pending.item, pending.ticket);
        let place = self.first_place + self.completed.len() as u64;
        self.completed.push_back(false);
        self.outstanding += 1;
        let queue = self.items.entry(item).or_default();
        queue.waiting.push_back((place, pending));
        if !queue.running && queue.waiting.len() == 1 {
            self.runnable.insert(ticket, item);
        }
        self.fill();
    }

    fn fill(&mut self) {
        // Places increase with tickets, so once the oldest runnable event is
        // too far ahead, every other one is too.
        let horizon = self.first_place + self.max_in_flight as u64;
        while self.in_flight.len() < self.max_in_flight {
            let Some((_, &item)) = self.runnable.first_key_value() else {
                return;
            };
            let Some(queue) = self.items.get_mut(&item) else {
                self.runnable.pop_first();
                continue;
            };
            if queue
                .waiting
                .front()
                .is_some_and(|(place, _)| *place >= horizon)
            {
                return;
            }
            self.runnable.pop_first();
            let Some((place, next)) = queue.waiting.pop_front() else {
                continue;
            };
            queue.running = true;
            self.in_flight.push(Placed {
                place,
                delivery: (self.start)(next),
            });
        }
    }

    /// The next delivery to end. Call only while [`in_flight`](Self::in_flight)
    /// is non-zero (otherwise it returns `None` at once). Cancel-safe.
    pub async fn next_completed(&mut self) -> Option<Completed> {
        let (place, done) = self.in_flight.next().await?;
        self.outstanding -= 1;
        if let Some(flag) = self.completed.get_mut((place - self.first_place) as usize) {
            *flag = true;
        }
        while self.completed.front() == Some(&true) {
            self.completed.pop_front();
            self.first_place += 1;
        }
        if let Some(queue) = self.items.get_mut(&done.item) {
            queue.running = false;
            match queue.waiting.front() {
                Some((_, next)) => {
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
            let ticket = finalizer.push(SequenceNumber::parse(&(n + 1).to_string()).unwrap(), ());
            window.push(Pending {
                ticket,
                item: key(item_of(n)),
                event: StreamEvent::with_id(id.clone()),
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
            let ticket = finalizer.push(SequenceNumber::parse(&(n + 1).to_string()).unwrap(), ());
            window.push(Pending {
                ticket,
                item: items[item],
                event: StreamEvent::with_id(format!("{item}-{n}")),
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

    /// A delivery that does not end holds the window's left edge: events
    /// run at most `max_in_flight` places ahead of it, so no more than that
    /// many are done out of order (and re-sent after a crash) behind it.
    /// When it ends, the rest go.
    #[tokio::test]
    async fn a_hung_delivery_stops_the_shard_after_max_in_flight_events() {
        let max = 4;
        let started: Arc<Mutex<Vec<String>>> = Arc::default();
        let release = Arc::new(tokio::sync::Notify::new());
        let (started_in, release_in) = (started.clone(), release.clone());
        let mut window = DeliveryWindow::new(max, move |p: Pending| {
            started_in.lock().unwrap().push(p.event.id.clone());
            let release = release_in.clone();
            Box::pin(async move {
                if p.event.id == "0" {
                    release.notified().await;
                }
                Completed {
                    ticket: p.ticket,
                    item: p.item,
                    delivery: Delivery::Delivered,
                }
            }) as InFlight
        });
        let mut finalizer = OrderedFinalizer::default();
        for n in 0..20u32 {
            let ticket = finalizer.push(SequenceNumber::parse(&(n + 1).to_string()).unwrap(), ());
            let item = ItemKey::of(Some(
                &[(
                    "k".to_string(),
                    crate::record::AttributeValue::N(n.to_string()),
                )]
                .into(),
            ));
            window.push(Pending {
                ticket,
                item,
                event: StreamEvent::with_id(n.to_string()),
            });
        }
        // Events 1, 2 and 3 complete; 4 may not start while 0 is undone.
        for _ in 0..3 {
            let done = window.next_completed().await.unwrap();
            finalizer.done(done.ticket);
        }
        assert_eq!(*started.lock().unwrap(), ["0", "1", "2", "3"]);
        assert_eq!(window.in_flight(), 1);
        assert_eq!(window.outstanding(), 17);
        assert_eq!(finalizer.advance(), None, "the checkpoint waits for 0");

        release.notify_one();
        while window.in_flight() > 0 {
            let done = window.next_completed().await.unwrap();
            finalizer.done(done.ticket);
        }
        assert_eq!(started.lock().unwrap().len(), 20);
        assert_eq!(finalizer.advance().unwrap().as_str(), "20");
    }
}
