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
    /// Accelerated bars: a new hourly bar every this many seconds instead of every UTC hour
    /// (the exchange's clock then runs ahead of the wall clock), e.g. for `paper run`.
    #[arg(long, value_name = "SECS")]
    pub bar_secs: Option<f64>,
    /// An account with USDC to trade with (`0xADDRESS=USD`; repeat for more): `live run`
    /// against this exchange signs for it.
    #[arg(long, value_name = "ADDRESS=USD")]
    pub fund: Vec<String>,
    /// Extra adverse slippage of every taker fill, in basis points of the price (a market worse
    /// than the model assumes, to see the drift a session measures).
    #[arg(long, value_name = "BPS", default_value_t = 0.0)]
    pub extra_slippage_bps: f64,
    /// Every order is answered this many milliseconds after it is acted on.
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub latency_ms: u64,
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
        if let Some(b) = args.bar_secs {
            if !(b.is_finite() && (0.01..=3600.0).contains(&b)) {
                anyhow::bail!("--bar-secs {b}: must be in [0.01, 3600]");
            }
        }
        // Accelerated, the clock starts half way into the current hour and moves a whole hour
        // per tick, always ahead of the wall clock (so a bar closes when the next one starts).
        let start = match args.bar_secs {
            Some(_) => now.div_euclid(HOUR_MS) * HOUR_MS + HOUR_MS / 2,
            None => now,
        };
        let mut funds = Vec::new();
        for f in &args.fund {
            let parsed = f.split_once('=').and_then(|(a, u)| {
                organism::exchange::hyperliquid::signing::address_bytes(a).ok()?;
                Some((a.to_ascii_lowercase(), u.parse::<rust_decimal::Decimal>().ok()?))
            });
            match parsed {
                Some(x) => funds.push(x),
                None => anyhow::bail!("--fund {f}: expected 0xADDRESS=USD (40 hex digits, a number)"),
            }
        }
        let bps = args.extra_slippage_bps;
        if !(bps.is_finite() && (0.0..=1000.0).contains(&bps)) {
            anyhow::bail!("--extra-slippage-bps {bps}: must be in [0, 1000]");
        }
        let ex = LocalExchange::start(addr, &params, start)
            .await
            .with_context(|| format!("binding {addr}"))?;
        ex.set_trading_faults(|f| {
            f.extra_slippage = organism::execution::types::decimal(bps / 10_000.0);
            f.latency = Duration::from_millis(args.latency_ms);
        });
        for (a, usd) in &funds {
            ex.fund(a, *usd);
            outln!("funded {a} with {usd} USDC");
        }
        outln!(
            "local test exchange on {} (REST {} , WebSocket {}); {}; Ctrl-C stops",
            ex.addr,
            ex.http_url(),
            ex.ws_url(),
            match args.bar_secs {
                Some(b) => format!("accelerated: a new hourly bar every {b} s"),
                None => "bars follow the real clock (a new hourly bar on every UTC hour)".into(),
            }
        );
        outln!(
            "try: HYPERLIQUID_API_URL={} organism data fetch --coins BTC,ETH --interval 1h,4h --days 30 --out data/local",
            ex.http_url()
        );
        if let Some(b) = args.bar_secs {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(b));
            tick.tick().await;
            loop {
                tick.tick().await;
                ex.advance();
            }
        }
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
