//! Strategies that turn market data into per-bar targets for the backtester.
//!
//! For now this holds the built-in EMA crossover used by `organism backtest`; the twelve
//! genome-driven seeds build on the same [`crate::backtest::Targets`] contract.

pub mod ema_crossover;
