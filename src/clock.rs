//! Time, injected: the core (strategies, the engine, evolution) never reads a clock; the runner
//! and the exchange edge read one through [`Clock`], a [`WallClock`] live and a [`SimClock`] in
//! tests, replays and the local test exchange. `clippy.toml` bans direct clock reads elsewhere.

use std::sync::{
    atomic::{AtomicI64, Ordering},
    Arc,
};

/// A source of time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    #[allow(clippy::disallowed_methods)] // the one place that reads the wall clock
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A simulated clock: a shared counter that only moves when told to.
#[derive(Debug, Clone, Default)]
pub struct SimClock(pub Arc<AtomicI64>);

impl SimClock {
    /// A clock at `ms`.
    pub fn at(ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(ms)))
    }
    /// Sets the time.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    /// Moves the time forward by `ms`.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_clock_moves_only_when_told() {
        let c = SimClock::at(1_000);
        let shared = c.clone();
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(shared.now_ms(), 1_500);
        shared.set(42);
        assert_eq!(c.now_ms(), 42);
        // 2020-01-01 is long past.
        assert!(WallClock.now_ms() > 1_577_836_800_000);
    }
}
