//! Who may run a batch sync now (issue 15, "back-pressure instead of time-outs"): at most
//! `storage.max_syncs_in_flight` at once, the rest wait in line first come, first served (tokio's
//! semaphore is fair), and the line is bounded by what the server can serve within
//! `storage.max_sync_wait_ms`, well under the handheld's request timeout. A request the line cannot
//! take is answered `503` at once with a `Retry-After` from the measured service rate, so a fleet
//! coming back is spread over the time the server needs for it, not sent back in one wave.
//!
//! # Layout
//! - [`Admission`]: the permits, the line's length, the measured service time, the promised returns.
//! - [`Admission::admit`]: wait in line or be refused; the [`Slot`] it answers measures the sync.
//!
//! Nothing is done for a request before it holds a slot, and a request whose client hung up while it
//! waited leaves the line with its future (the wait is cancelled with it), so nothing is committed
//! for a handheld that gave up waiting.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The service time assumed before the first sync was measured.
const FIRST_GUESS: Duration = Duration::from_millis(500);

/// The longest `Retry-After` handed out: the handheld caps its wait at 30 s anyway.
const MAX_RETRY_AFTER_SECS: u64 = 30;

pub struct Admission {
    permits: Arc<Semaphore>,
    slots: usize,
    max_wait: Duration,
    waiting: AtomicUsize,
    state: Mutex<Measured>,
}

struct Measured {
    /// Moving average of how long one admitted sync holds its slot.
    service: Duration,
    /// When the last handheld told to come back is due: the next one is told to come after it.
    promised_until: Instant,
}

/// A held place: dropping it frees the place and counts the sync's duration into the service time.
pub struct Slot<'a> {
    admission: &'a Admission,
    _permit: OwnedSemaphorePermit,
    since: Instant,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let took = self.since.elapsed();
        let mut m = self.admission.state.lock().unwrap_or_else(|p| p.into_inner());
        // One eighth of each new sync: follows a change of load within a few dozen syncs.
        m.service = (m.service * 7 + took) / 8;
    }
}

/// Leaves the line however the wait ends (admitted, timed out, or the request dropped).
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    /// `slots` syncs at once (0 refuses every sync: maintenance), waits of at most `max_wait`.
    pub fn new(slots: usize, max_wait: Duration) -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(slots)),
            slots,
            max_wait,
            waiting: AtomicUsize::new(0),
            state: Mutex::new(Measured { service: FIRST_GUESS, promised_until: Instant::now() }),
        }
    }

    /// How often a slot frees up, as measured: one sync's service time over the number of slots.
    fn interval(&self) -> Duration {
        let m = self.state.lock().unwrap_or_else(|p| p.into_inner());
        m.service / self.slots.max(1) as u32
    }

    /// Requests waiting in line now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// A slot, after waiting in line if all are taken; `503 saturated` with `Retry-After` when the line
    /// is longer than the server can serve within the longest wait, or the wait ran out.
    pub async fn admit(&self) -> Result<Slot<'_>, Saturated> {
        if self.slots == 0 {
            // Maintenance: no rate to measure; the handheld's own bound on waits ends its sync.
            return Err(Saturated { retry_after_secs: 1 });
        }
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(Slot { admission: self, _permit: permit, since: Instant::now() });
        }
        let interval = self.interval();
        let ahead = self.waiting.fetch_add(1, Ordering::SeqCst);
        let _in_line = InLine(&self.waiting);
        let expected = interval * (ahead as u32 + 1);
        if expected > self.max_wait {
            return Err(self.refuse(expected));
        }
        match tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Slot { admission: self, _permit: permit, since: Instant::now() }),
            Ok(Err(_closed)) => Err(self.refuse(self.max_wait)),
            Err(_elapsed) => Err(self.refuse(self.max_wait)),
        }
    }

    /// The `503`: come back when the line ahead (`wait`) has been served, after the handhelds already
    /// told to come back, one slot's interval apart.
    fn refuse(&self, wait: Duration) -> Saturated {
        let interval = self.interval();
        let now = Instant::now();
        let due = {
            let mut m = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let due = m.promised_until.max(now + wait.saturating_sub(self.max_wait / 2)) + interval;
            m.promised_until = due;
            due
        };
        let secs = (due - now).as_millis().div_ceil(1000) as u64;
        Saturated { retry_after_secs: secs.clamp(1, MAX_RETRY_AFTER_SECS) }
    }
}

/// The line is too long to be served in time: nothing was done; come back after `retry_after_secs`
/// (`error.rs` answers it as `503 saturated` with `Retry-After`).
#[derive(Debug, thiserror::Error)]
#[error("the server is busy with other handhelds' syncs; nothing was done, sync again after `Retry-After`")]
pub struct Saturated {
    pub retry_after_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(e: Saturated) -> u64 {
        e.retry_after_secs
    }

    #[tokio::test]
    async fn waiting_requests_are_admitted_in_the_order_they_came() {
        let admission = Arc::new(Admission::new(1, Duration::from_secs(60)));
        let first = admission.admit().await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for n in 0..5 {
            let (a, tx) = (admission.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = a.admit().await.unwrap();
                tx.send(n).unwrap();
            }));
            // Each in line before the next comes.
            while admission.waiting() < n + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        let order: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4]);
        assert_eq!(admission.waiting(), 0);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_longest_wait_is_refused_at_once_with_spread_out_returns() {
        // Ten seconds per sync, one slot: a 25 s wait takes two in line.
        let admission = Arc::new(Admission::new(1, Duration::from_secs(25)));
        admission.state.lock().unwrap().service = Duration::from_secs(10);
        let _held = admission.admit().await.unwrap();
        let mut waiters = Vec::new();
        for n in 0..2 {
            let a = admission.clone();
            waiters.push(tokio::spawn(async move { a.admit().await.map(|_| ()) }));
            while admission.waiting() < n + 1 {
                tokio::task::yield_now().await;
            }
        }
        let first = retry_after(admission.admit().await.err().expect("the line is full"));
        let second = retry_after(admission.admit().await.err().expect("the line is full"));
        assert!(first >= 1 && second >= first, "later refusals come back later: {first}, {second}");
        assert_eq!(admission.waiting(), 2, "a refused request leaves the line");
        for w in waiters {
            w.abort();
        }
    }

    #[tokio::test]
    async fn a_request_dropped_while_waiting_leaves_the_line_and_takes_no_slot() {
        let admission = Arc::new(Admission::new(1, Duration::from_secs(60)));
        let held = admission.admit().await.unwrap();
        let a = admission.clone();
        let waiter = tokio::spawn(async move { a.admit().await.map(|_| ()) });
        while admission.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        assert!(waiter.await.unwrap_err().is_cancelled());
        assert_eq!(admission.waiting(), 0);
        drop(held);
        assert!(admission.admit().await.is_ok(), "the slot went to nobody who left");
    }

    #[tokio::test]
    async fn no_slots_refuses_every_sync() {
        let admission = Admission::new(0, Duration::from_secs(5));
        assert!(retry_after(admission.admit().await.err().unwrap()) >= 1);
    }
}
