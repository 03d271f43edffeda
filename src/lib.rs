//! organism — evolves trading strategies for crypto perpetual futures.
//!
//! The crate is laid out as a one-way pipeline (see `DESIGN.md` in the shared folder):
//!
//! ```text
//! market ─▶ indicators ─▶ seeds ─▶ backtest ─▶ fitness ─▶ (evolution ─▶ promotion ─▶ execution)
//! ```
//!
//! Each module only knows the stages before it. The simulator, indicators and metrics are
//! synchronous, pure and use `f64`; they never read a clock or touch the network.
#![forbid(unsafe_code)]

pub mod backtest;
pub mod config;
pub mod evolution;
pub mod exchange;
pub mod fitness;
pub mod genome;
pub mod indicators;
pub mod market;
pub mod seeds;
