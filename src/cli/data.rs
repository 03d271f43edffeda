//! `organism data`: market data utilities.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use organism::{
    clock::{Clock, WallClock},
    exchange::{
        binance::{self, BinanceClient},
        hyperliquid::{
            fetch::{fetch, FetchRequest, Progress, Source as _},
            info::{InfoClient, RetryPolicy},
        },
        sentiment::fetch_fear_greed,
    },
    market::{
        csv::{candles_to_csv, fear_greed_to_csv, funding_to_csv, write_atomic},
        format_ts, synthetic,
        universe::{self, CoinPick, PanelSelection},
    },
};

use super::DataArgs;

#[derive(clap::Subcommand, Debug)]
pub enum DataCommand {
    /// Write the built-in synthetic market ([synthetic] in the config) as CSV files in the data
    /// layout: OUT/candles/synthetic_<COIN>_1h.csv and OUT/funding/synthetic_<COIN>.csv.
    Generate {
        #[command(flatten)]
        data: DataArgs,
        /// A universe of N coins (X01, X02, …; annual volatility 0.5–1.2) instead of
        /// synthetic.coins; `--coins` alone is 40.
        #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "40",
              value_parser = clap::value_parser!(u32).range(2..=1000))]
        coins: Option<u32>,
        /// Output data directory.
        #[arg(long, value_name = "DIR", default_value = "data/synthetic")]
        out: PathBuf,
    },
    /// Write a return-permuted copy of the data (the null hypothesis: every bar's move and
    /// shape kept, their order shuffled with a seeded RNG, prices rebuilt, timestamps, funding
    /// and Fear & Greed kept) as OUT/candles/permuted_<COIN>_<interval>.csv and
    /// OUT/funding/permuted_<COIN>.csv. Evolution that finds as much on it as on the real
    /// data is finding luck.
    Permute {
        #[command(flatten)]
        data: DataArgs,
        /// RNG seed of the permutation; each seed is another copy.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Shuffle across coins instead of in time: at each bar the moves of the coins that
        /// trade there are dealt out among them at random (the market's move kept, which coin
        /// made it lost), written as xshuffled_<COIN>_<interval>.csv: the null of a portfolio
        /// strategy that claims to pick coins.
        #[arg(long)]
        cross_section: bool,
        /// Permute the universe's bars together: one shuffled order of the bar times, every
        /// coin's moves in it, so the coins keep their correlation (the return-permuted null
        /// of a portfolio strategy, as `promote` draws it). Without it each coin is permuted on
        /// its own.
        #[arg(long, conflicts_with = "cross_section")]
        together: bool,
        /// Output data directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Download candles and funding into a data directory, incrementally: a second run fetches
    /// only what is new. From Hyperliquid (hourly funding; only the most recent 5,000 candles per
    /// coin and interval, so run it regularly to build up longer history) or Binance's public
    /// data (USD-M perpetuals with 8-hourly funding, or spot; the whole history).
    Fetch {
        /// Config file laid over the built-in defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Where from: hyperliquid (files `hyperliquid_*`), binance (USD-M perpetuals against
        /// USDT, `binanceusdm_*`) or binance-spot (spot against USDT, `binancespot_*`, no funding).
        #[arg(long, value_enum, default_value = "hyperliquid")]
        exchange: FetchExchange,
        /// Coins, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        coins: Vec<String>,
        /// Candle intervals, comma-separated (1m 3m 5m 15m 30m 1h 2h 4h 8h 12h 1d 3d 1w).
        #[arg(long, value_delimiter = ',', default_value = "1h")]
        interval: Vec<String>,
        /// Days of history for files that do not exist yet.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        days: u32,
        /// Data directory (candles/ and funding/ are created inside).
        #[arg(long, value_name = "DIR", default_value = "data")]
        out: PathBuf,
        /// Skip funding.
        #[arg(long)]
        no_funding: bool,
        /// API base URL (Hyperliquid's default: HYPERLIQUID_API_URL, then exchange.api_url;
        /// Binance's: https://fapi.binance.com, spot https://api.binance.com).
        #[arg(long, value_name = "URL")]
        api_url: Option<String>,
        /// One JSON object: every file with its rows before and after, gaps and rejected rows.
        #[arg(long)]
        json: bool,
        /// The time to fetch up to (UTC ms; default: the clock): `organism cycle --now-ms`.
        #[arg(long, value_name = "MS", hide = true)]
        now_ms: Option<i64>,
    },
    /// What a data directory covers, per coin: first and last bar, bars, gaps, funding
    /// coverage, median daily notional volume and bars the plausibility check doubts. Reads
    /// every coin of one source and interval; one unreadable file is a note, not an error.
    Coverage {
        /// Data directory (candles/ and funding/) or candles folder.
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Source prefix in file names (empty: any, as long as each coin has one).
        #[arg(long, default_value = "hyperliquid")]
        source: String,
        /// Candle interval in file names.
        #[arg(long, default_value = "1h")]
        interval: String,
        /// One JSON object: the coins and the notes.
        #[arg(long)]
        json: bool,
    },
    /// Download the alternative.me Fear & Greed index as `date,value` CSV.
    FetchSentiment {
        /// Config file laid over the built-in defaults.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Output file.
        #[arg(long, value_name = "FILE", default_value = "data/fear_greed.csv")]
        out: PathBuf,
        /// Index API base URL (default: exchange.sentiment_url).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
}

/// The venues `data fetch` reads.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchExchange {
    Hyperliquid,
    Binance,
    BinanceSpot,
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Fetch {
            config,
            exchange,
            coins,
            interval,
            days,
            out,
            no_funding,
            api_url,
            json,
            now_ms,
        } => {
            let cfg = super::load_config(config.as_deref())?;
            let coins: Vec<String> = coins
                .iter()
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            if coins.is_empty() {
                bail!("--coins: give at least one coin, e.g. --coins BTC,ETH");
            }
            let req = FetchRequest {
                coins,
                intervals: interval,
                days,
                out: out.clone(),
                now_ms: now_ms.unwrap_or_else(|| WallClock.now_ms()),
                funding: !no_funding,
            };
            let quiet = super::quiet() || json;
            let bar = if quiet {
                ProgressBar::hidden()
            } else {
                ProgressBar::new_spinner()
            };
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
                bar.set_style(style);
            }
            // Not a terminal: a `progress:` line on stderr at most every 5 seconds instead.
            let lines = !quiet && !std::io::IsTerminal::is_terminal(&std::io::stderr());
            #[allow(clippy::disallowed_methods)] // progress timing at the CLI edge
            let last_line = std::sync::Mutex::new(std::time::Instant::now());
            let rows = std::sync::atomic::AtomicUsize::new(0);
            let progress = |p: Progress| match p {
                Progress::Page { what, rows: n } => {
                    let total = rows.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
                    let msg = format!("{what}: {total} rows received");
                    if lines {
                        #[allow(clippy::disallowed_methods)]
                        let now = std::time::Instant::now();
                        if let Ok(mut last) = last_line.lock() {
                            if now.duration_since(*last).as_secs_f64() >= 5.0 {
                                *last = now;
                                eprintln!("progress: {msg}");
                            }
                        }
                    }
                    bar.set_message(msg);
                    bar.tick();
                }
            };
            let rt = runtime()?;
            let (reports, url, source) = match exchange {
                FetchExchange::Hyperliquid => {
                    let url = cfg.exchange.api_url(api_url.as_deref());
                    let client = InfoClient::with_timeouts(
                        &url,
                        RetryPolicy::default(),
                        cfg.exchange.weight_per_minute,
                        cfg.exchange.timeouts(),
                    )?;
                    let r = rt.block_on(fetch(&client, &req, &progress));
                    (r, url, client.prefix())
                }
                FetchExchange::Binance | FetchExchange::BinanceSpot => {
                    let market = if exchange == FetchExchange::Binance {
                        binance::Market::UsdM
                    } else {
                        binance::Market::Spot
                    };
                    let url = api_url.unwrap_or_else(|| market.default_url().to_string());
                    let client = BinanceClient::new(market, &url, cfg.exchange.timeouts())?;
                    let r = rt.block_on(fetch(&client, &req, &progress));
                    (r, url, client.prefix())
                }
            };
            let reports = reports.with_context(|| format!("fetching from {url}"))?;
            bar.finish_and_clear();
            if json {
                let files: Vec<serde_json::Value> = reports
                    .iter()
                    .map(|r| {
                        serde_json::json!({"path": r.path, "before": r.before, "after": r.after,
                            "added": r.after - r.before, "gaps": r.gaps.gaps,
                            "missing_bars": r.gaps.missing_bars, "rejected": r.rejected})
                    })
                    .collect();
                outln!("{}", serde_json::json!({"out": out, "files": files}));
                return Ok(());
            }
            for r in &reports {
                let gaps = if r.gaps.gaps > 0 {
                    format!(
                        ", {} gap(s), {} missing (not filled)",
                        r.gaps.gaps, r.gaps.missing_bars
                    )
                } else {
                    String::new()
                };
                let rejected = if r.rejected > 0 {
                    format!(
                        "; {} row(s) the server sent outside the requested window or dated in the future were rejected",
                        r.rejected
                    )
                } else {
                    String::new()
                };
                outln!(
                    "{}: {} rows (+{}){gaps}{rejected}",
                    r.path.display(),
                    r.after,
                    r.after - r.before
                );
            }
            let flag = if source == "hyperliquid" {
                String::new()
            } else {
                format!(" --source {source}")
            };
            outln!(
                "use it with: organism evolve --data {}{flag}   (or backtest --data {}{flag})",
                out.display(),
                out.display()
            );
            Ok(())
        }
        DataCommand::Coverage {
            dir,
            source,
            interval,
            json,
        } => coverage(dir, source, interval, json),
        DataCommand::FetchSentiment { config, out, url } => {
            let cfg = super::load_config(config.as_deref())?;
            let url = url.unwrap_or(cfg.exchange.sentiment_url);
            let rows = runtime()?
                .block_on(fetch_fear_greed(&url))
                .with_context(|| format!("fetching the Fear & Greed index from {url}"))?;
            if rows.is_empty() {
                bail!("{url}: the index came back empty");
            }
            write_atomic(&out, fear_greed_to_csv(&rows).as_bytes())?;
            outln!(
                "{}: {} days, {} .. {}",
                out.display(),
                rows.len(),
                rows[0].0,
                rows[rows.len() - 1].0
            );
            Ok(())
        }
        DataCommand::Permute {
            data,
            seed,
            out,
            cross_section,
            together,
        } => {
            let cfg = data.config()?;
            let sel = cfg.data_selection();
            let (markets, origin, source, how) = if cross_section || together {
                let mut d = sel.clone();
                let universe = super::portfolio_universe(&cfg, &mut d)?;
                let loaded = super::load_universe_panel(&d, &universe)?;
                super::say_notes(&loaded.notes);
                if cross_section {
                    (
                        organism::market::permute::shuffle_cross_section(&loaded.panel, seed),
                        loaded.origin,
                        "xshuffled",
                        "shuffled across coins",
                    )
                } else {
                    (
                        organism::market::permute::permute_panel(&loaded.panel, seed),
                        loaded.origin,
                        "permuted",
                        "returns permuted with the bars together",
                    )
                }
            } else {
                let u = super::load_data(&sel)?;
                let p = organism::market::permute::permute(&u, seed);
                (p.markets, u.origin, "permuted", "returns permuted")
            };
            for m in &markets {
                let c = out
                    .join("candles")
                    .join(format!("{source}_{}_{}.csv", m.coin, sel.interval));
                write_atomic(&c, candles_to_csv(&m.candles).as_bytes())?;
                let f = out.join("funding").join(format!("{source}_{}.csv", m.coin));
                write_atomic(&f, funding_to_csv(&m.funding).as_bytes())?;
            }
            let fg = sel
                .path
                .as_deref()
                .and_then(organism::market::universe::fear_greed_file);
            if let Some(fg) = fg {
                let body =
                    std::fs::read(&fg).with_context(|| format!("{}: cannot read", fg.display()))?;
                write_atomic(
                    &out.join(organism::market::universe::FEAR_GREED_FILE),
                    &body,
                )?;
            }
            outln!(
                "wrote {} coins of {origin}, {how} with seed {seed}, to {} (use it with --data {} --source {source})",
                markets.len(),
                out.display(),
                out.display()
            );
            Ok(())
        }
        DataCommand::Generate { data, coins, out } => {
            let cfg = data.config()?;
            let mut params = cfg.synthetic.clone();
            if let Some(n) = coins {
                params.coins = (1..=n).map(|i| format!("X{i:02}")).collect();
                params.annual_vol = (0..n).map(|i| 0.5 + 0.7 * f64::from(i % 8) / 7.0).collect();
                params.start_price = (0..n).map(|i| 1.0 + f64::from(i % 10) * 11.0).collect();
            }
            let u = synthetic::generate(&params);
            for m in &u.markets {
                let c = out
                    .join("candles")
                    .join(format!("synthetic_{}_1h.csv", m.coin));
                write_atomic(&c, candles_to_csv(&m.candles).as_bytes())?;
                let f = out
                    .join("funding")
                    .join(format!("synthetic_{}.csv", m.coin));
                write_atomic(&f, funding_to_csv(&m.funding).as_bytes())?;
            }
            outln!(
                "wrote {} coins x {} bars to {} (use it with --data {} --source synthetic)",
                u.markets.len(),
                params.bars,
                out.display(),
                out.display()
            );
            if let Some(s) = synthetic::xs_oracle_sharpe(&params, &u) {
                outln!(
                    "planted cross-sectional factor xs_edge = {}: the factor-sorted long-short \
                     portfolio (top and bottom fifth by the latent score, rebalanced every bar, \
                     before costs) has Sharpe {s:.2}",
                    params.xs_edge
                );
            }
            Ok(())
        }
    }
}

fn coverage(dir: PathBuf, source: String, interval: String, json: bool) -> Result<()> {
    let sel = PanelSelection {
        path: dir,
        source,
        interval,
        pick: CoinPick::All,
        exclude: Vec::new(),
        timerange: None,
        keep_not_crypto: true,
    };
    let loaded = super::load_panel(&sel)?;
    let rows = universe::coverage(&loaded);
    if json {
        outln!(
            "{}",
            serde_json::json!({"origin": loaded.origin, "coins": rows, "notes": loaded.notes})
        );
        return Ok(());
    }
    let day = |ms: i64| format_ts(ms)[..10].to_string();
    outln!(
        "{:<10} {:>10} {:>10} {:>7} {:>12} {:>23} {:>6} {:>14} {:>7}",
        "coin",
        "first",
        "last",
        "bars",
        "gaps (bars)",
        "funding",
        "cover",
        "median $/day",
        "doubted"
    );
    for r in &rows {
        let funding = match (r.funding_first_ms, r.funding_last_ms) {
            (Some(a), Some(b)) => format!("{}..{}", day(a), day(b)),
            _ => "none".to_string(),
        };
        outln!(
            "{:<10} {:>10} {:>10} {:>7} {:>12} {:>23} {:>5.0}% {:>14} {:>7}",
            r.coin,
            day(r.first_ms),
            day(r.last_ms),
            r.bars,
            format!("{} ({})", r.gaps, r.missing_bars),
            funding,
            100.0 * r.funding_coverage,
            r.median_daily_volume
                .map_or("-".to_string(), |v| format!("{v:.0}")),
            r.doubted
        );
    }
    let (first, last) = (
        rows.iter().map(|r| r.first_ms).min().unwrap_or(0),
        rows.iter().map(|r| r.last_ms).max().unwrap_or(0),
    );
    outln!(
        "{} coins from {}, {} to {}",
        rows.len(),
        loaded.origin,
        day(first),
        day(last)
    );
    super::say_notes(&loaded.notes);
    Ok(())
}
