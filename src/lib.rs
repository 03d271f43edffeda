//! organism — evolves trading strategies for crypto perpetual futures.
//!
//! The crate is laid out as a one-way pipeline (see `DESIGN.md` in the shared folder):
//!
//! ```text
//! clock, market ─▶ indicators ─▶ genome ─▶ strategy ─▶ seeds ─▶ execution ─▶ backtest ─▶ fitness
//!     ─▶ bench ─▶ evolution ─▶ promotion ─▶ exchange ─▶ runner          (config: the CLI's layering)
//! ```
//!
//! `strategy` holds what every strategy produces (targets); `seeds` the twelve strategies;
//! `execution` the one engine (fills, fees, stops, funding) that `backtest`, the paper runner and
//! the live runner all drive; `bench` the fused benchmark kernels, which use `fitness`'s metric
//! definitions. `exchange` (Hyperliquid, async) sits at the edge beside `runner`, which owns the
//! paper / live session loop (`runner::driver`) that the CLI only starts.
//!
//! Each module only knows the stages before it, and nothing below the CLI should know `config`:
//! `tests/layering.rs` reads every `crate::` import and fails on a new one against this order.
//! One old one remains and is listed there (`runner` → `config`: the session's settings are
//! still read from the whole config).
//! The simulator, indicators and metrics are synchronous, pure and use `f64`; they never read a
//! clock or touch the network.
#![forbid(unsafe_code)]

pub mod backtest;
pub mod bench;
pub mod clock;
pub mod config;
pub mod evolution;
pub mod exchange;
pub mod execution;
pub mod fitness;
pub mod genome;
pub mod indicators;
pub mod market;
pub mod promotion;
pub mod runner;
pub mod seeds;
pub mod serve;
pub mod settings;
pub mod store;
pub mod strategy;
