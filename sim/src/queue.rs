//! The future-event list.
//!
//! [`EventQueue`] is a priority queue of `(SimTime, event)` pairs that pops the earliest instant first and,
//! among events at the same instant, the one pushed first (FIFO tie-break by a sequence number, as in
//! nexosim and OpenDC). It is what makes a run deterministic when a model schedules simultaneous events:
//! their order is the order in which the model scheduled them, never an accident of the heap layout.
//!
//! Implementation: a binary min-heap (std's [`BinaryHeap`] over reversed keys) whose key packs the time's
//! bit pattern and the sequence number into one `u128`, so each comparison is a single integer compare.
//! This relies on [`SimTime`]'s invariant (finite, non-negative, no `-0.0`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::time::SimTime;

struct Entry<E> {
    /// `time_bits << 64 | seq`: orders by time, then by insertion.
    key: u128,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed, so that std's max-heap pops the smallest key.
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// Pending events, earliest first, same-instant events in insertion order.
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue { heap: BinaryHeap::new(), next_seq: 0 }
    }
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty queue with room for `capacity` events before it reallocates.
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue { heap: BinaryHeap::with_capacity(capacity), next_seq: 0 }
    }

    /// Adds `event` at instant `at`. Among events at the same instant it leaves after all that were pushed
    /// before it.
    #[inline]
    pub fn push(&mut self, at: SimTime, event: E) {
        let key = ((at.order_key() as u128) << 64) | self.next_seq as u128;
        self.next_seq += 1;
        self.heap.push(Entry { key, event });
    }

    /// Removes and returns the earliest event (the first pushed among the earliest).
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        self.heap.pop().map(|e| (key_time(e.key), e.event))
    }

    /// The instant of the event that [`EventQueue::pop`] would return.
    #[inline]
    pub fn peek_time(&self) -> Option<SimTime> {
        self.heap.peek().map(|e| key_time(e.key))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Number of events ever pushed (the next sequence number).
    pub fn pushed(&self) -> u64 {
        self.next_seq
    }
}

#[inline]
fn key_time(key: u128) -> SimTime {
    // The key was built from a valid SimTime, so its upper half is a valid SimTime again.
    SimTime::from_order_key((key >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_then_insertion_order() {
        let mut q = EventQueue::new();
        for (t, id) in [(2.0, 'a'), (1.0, 'b'), (2.0, 'c'), (0.5, 'd'), (1.0, 'e'), (2.0, 'f')] {
            q.push(SimTime::from_secs(t), id);
        }
        let order: String = std::iter::from_fn(|| q.pop().map(|(_, e)| e)).collect();
        assert_eq!(order, "dbeacf");
    }

    #[test]
    fn peek_matches_pop() {
        let mut q = EventQueue::new();
        q.push(SimTime::from_secs(3.0), 1);
        q.push(SimTime::from_secs(0.25), 2);
        assert_eq!(q.peek_time(), Some(SimTime::from_secs(0.25)));
        assert_eq!(q.pop(), Some((SimTime::from_secs(0.25), 2)));
        assert_eq!(q.len(), 1);
    }
}
