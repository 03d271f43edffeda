//! `organism testnet-local`: the local test exchange for manual use.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result};
use organism::{
    clock::{Clock, WallClock},
    exchange::local::LocalExchange,
    market::{synthetic::SyntheticParams, HOUR_MS},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Real milliseconds per simulated hourly bar.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub bar_ms: u64,
    /// Hours of history before now (the synthetic market is placed to end its history now).
    #[arg(long, default_value_t = 6000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub history_bars: u32,
}

pub fn run(args: Args) -> Result<()> {
    super::data::runtime()?.block_on(async move {
        let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
        let now = WallClock.now_ms();
        let history = i64::from(args.history_bars);
        let params = SyntheticParams {
            start_ms: now.div_euclid(HOUR_MS) * HOUR_MS - history * HOUR_MS,
            bars: args.history_bars as usize + 100_000,
            ..SyntheticParams::default()
        };
        let ex = LocalExchange::start(addr, &params, now)
            .await
            .with_context(|| format!("binding {addr}"))?;
        outln!(
            "local test exchange on {} (REST {} , WebSocket {}); one hourly bar every {} ms; Ctrl-C stops",
            ex.addr,
            ex.http_url(),
            ex.ws_url(),
            args.bar_ms
        );
        outln!(
            "try: HYPERLIQUID_API_URL={} organism data fetch --coins BTC,ETH --interval 1h,4h --days 30 --out data/local",
            ex.http_url()
        );
        let mut tick = tokio::time::interval(Duration::from_millis(args.bar_ms));
        tick.tick().await;
        loop {
            tick.tick().await;
            ex.advance();
        }
    })
}
