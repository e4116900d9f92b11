//! The server's notion of "now".
//!
//! Deadlines, token expiry, delegation validity and booking cut-offs all read this clock, never the system
//! time directly, so tests can move time forward instead of sleeping. The manual clock exists only when
//! `testing.manual_clock` is on; production always runs on the system clock.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use jiff::Timestamp;

#[derive(Clone, Debug)]
pub enum Clock {
    System,
    /// Unix milliseconds set by a test through `PUT /api/v1/testing/clock`.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual_at(now: Timestamp) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(now.as_millisecond())))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Manual(ms) => Timestamp::from_millisecond(ms.load(Ordering::SeqCst))
                .expect("manual clock holds a valid timestamp"),
        }
    }

    /// Unix milliseconds, the form every time column in the database uses.
    pub fn now_ms(&self) -> i64 {
        self.now().as_millisecond()
    }

    /// Moves a manual clock; `false` on the system clock, which cannot be moved.
    pub fn set(&self, to: Timestamp) -> bool {
        match self {
            Clock::System => false,
            Clock::Manual(ms) => {
                ms.store(to.as_millisecond(), Ordering::SeqCst);
                true
            }
        }
    }
}
