//! Exchange connectivity. Only this module, `execution` and `cli` use tokio.
//!
//! * [`hyperliquid`]: the Hyperliquid REST info client, the WebSocket market feed and the
//!   history fetcher behind `organism data fetch`.
//! * [`local`]: a local test exchange speaking the same protocol, with fault injection, for
//!   tests and for `organism testnet-local`.
//! * [`sentiment`]: the alternative.me Fear & Greed index.

pub mod hyperliquid;
pub mod local;
pub mod sentiment;

/// A source of wall-clock time, injected so that time-dependent logic is testable.
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

/// A clock that reads a shared counter (tests, the local exchange's simulated time).
#[derive(Debug, Clone, Default)]
pub struct SharedClock(pub std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Clock for SharedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
