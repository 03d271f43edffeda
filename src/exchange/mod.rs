//! Exchange connectivity. Only this module, `execution` and `cli` use tokio.
//!
//! * [`hyperliquid`]: the Hyperliquid REST info client, the WebSocket market feed and the
//!   history fetcher behind `organism data fetch`.
//! * [`local`]: a local test exchange speaking the same protocol, with fault injection, for
//!   tests and for `organism testnet-local`.
//! * [`sentiment`]: the alternative.me Fear & Greed index.

pub mod binance;
pub mod hyperliquid;
pub mod local;
pub mod sentiment;
