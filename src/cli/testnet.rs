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
            "local test exchange on {} (REST {} , WebSocket {}); bars follow the real clock \
             (a new hourly bar on every UTC hour); Ctrl-C stops",
            ex.addr,
            ex.http_url(),
            ex.ws_url()
        );
        outln!(
            "try: HYPERLIQUID_API_URL={} organism data fetch --coins BTC,ETH --interval 1h,4h --days 30 --out data/local",
            ex.http_url()
        );
        // The exchange's clock is the wall clock, moved on when a new hour starts, so a fetch
        // (which counts closed bars by the wall clock) sees each new bar once it has closed.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut hour = now.div_euclid(HOUR_MS);
        loop {
            tick.tick().await;
            let t = WallClock.now_ms();
            if t.div_euclid(HOUR_MS) > hour {
                hour = t.div_euclid(HOUR_MS);
                ex.set_now(t);
            }
        }
    })
}
