//! Live orders, decision to acknowledgement, against the local exchange (what `organism
//! testnet-local` serves): a live session of 1, 10 and 50 books that all decide on the same bars
//! (one EMA-crossover genome on BTC, each book its own strategy), each order sent through the
//! live executor (signed, journaled, IOC, its fill taken from the account's fill stream as
//! `live run` takes it), over 60 bars. For every bar with
//! orders it reports the bar's time from its decisions to its last acknowledgement, and each
//! order's time from the bar's start to its own acknowledgement: median and max.
//!
//! `cargo bench --bench orders` (release). Optional: `ORDERS_BOOKS=1,10,50 ORDERS_BARS=60`.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use organism::{
    clock::WallClock,
    exchange::{
        hyperliquid::{
            adapter::{stream_fills, ExecLimits, LiveExecutor},
            exchange::{ExchangeClient, MemoryNonces},
            info::{InfoClient, RetryPolicy, Timeouts},
            signing::Signer,
        },
        local::LocalExchange,
    },
    execution::{
        paper::{ExecutionClient, FillEvent, SubmitOrder},
        types::VenueRules,
        EngineConfig, VenueError,
    },
    market::{synthetic::SyntheticParams, Market, HOUR_MS},
    runner::{
        history::Histories,
        journal::Kind,
        live::JournalLog,
        paper::{BookSpec, Lifecycle, Limits, Session, SessionConfig},
    },
    seeds::{self, Genome},
};
use rust_decimal::Decimal;

const KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";
const WARMUP: usize = 200;

/// The live executor, with the time each order is acknowledged (since the bar began).
struct Timed {
    inner: Arc<LiveExecutor>,
    bar_start: Mutex<Instant>,
    acks: Mutex<Vec<Duration>>,
}

impl ExecutionClient for Timed {
    fn submit_order(
        &self,
        cmd: &SubmitOrder<'_>,
        on_fill: &mut dyn FnMut(FillEvent),
    ) -> Result<(), VenueError> {
        let r = self.inner.submit_order(cmd, on_fill);
        #[allow(clippy::disallowed_methods)] // a benchmark times things
        let now = Instant::now();
        let start = *self.bar_start.lock().expect("lock");
        self.acks.lock().expect("lock").push(now - start);
        r
    }
}

fn genome() -> Genome {
    let e = seeds::find("ema_crossover").expect("seed");
    let mut g = e.spec.default_genome();
    for (k, v) in [("fast", "2"), ("slow", "5")] {
        e.spec.set(&mut g, k, v).expect("gene");
    }
    Genome::seed(e, g)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// One session of `books` books over `bars` bars: (bar times, order times), ms.
fn run(rt: &tokio::runtime::Runtime, books: usize, bars: usize) -> (Vec<f64>, Vec<f64>) {
    let t0 = 1_767_225_600_000 + (WARMUP as i64 + 20) * HOUR_MS;
    let params = SyntheticParams {
        seed: 3,
        bars: WARMUP + bars + 100,
        start_ms: t0 - (WARMUP as i64 + 20) * HOUR_MS,
        coins: vec!["BTC".into()],
        annual_vol: vec![0.9],
        start_price: vec![42_000.0],
        ..Default::default()
    };
    let market: Market = organism::market::synthetic::generate(&params).markets[0].clone();
    let dir = std::env::temp_dir().join(format!(
        "organism-bench-orders-{}-{books}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench folder");
    let db = dir.join("reg.db");
    let signer = Signer::from_hex(KEY).expect("key");
    let signer_address = signer.address();
    let (ex, executor) = rt.block_on(async {
        let ex = LocalExchange::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            &params,
            market.candles.ts[WARMUP],
        )
        .await
        .expect("local exchange");
        ex.fund(&signer.address(), Decimal::from(10_000_000));
        let info = Arc::new(
            InfoClient::with_timeouts(
                &ex.http_url(),
                RetryPolicy::default(),
                1e7,
                Timeouts::default(),
            )
            .expect("client"),
        );
        let meta = info.meta().await.expect("meta");
        let mut assets = BTreeMap::new();
        for (i, a) in meta.universe.iter().enumerate() {
            assets.insert(
                a.name.clone(),
                (i as u32, VenueRules::hyperliquid_perp(a.sz_decimals)),
            );
        }
        let client = Arc::new(ExchangeClient::new(
            info.clone(),
            signer,
            None,
            None,
            false,
            Box::new(MemoryNonces::default()),
        ));
        let log = JournalLog::open(&db, "bench", Arc::new(WallClock)).expect("journal");
        let executor = LiveExecutor::new(
            client,
            tokio::runtime::Handle::current(),
            Arc::new(log),
            assets,
            ExecLimits {
                max_order_notional: 1e9,
                max_slippage: 0.01,
                expiry_ms: 15_000,
                attempts: 5,
                backoff: Duration::from_millis(100),
            },
            Arc::new(WallClock),
            None,
        );
        // As `live run` does: orders' fills come back on the account's stream.
        let account = signer_address.clone();
        let events = stream_fills(&ex.http_url(), info, &account, Arc::new(WallClock));
        tokio::time::sleep(Duration::from_millis(500)).await;
        (ex, executor.with_fill_events(events))
    });
    #[allow(clippy::disallowed_methods)] // a benchmark times things
    let timed = Arc::new(Timed {
        inner: Arc::new(executor),
        bar_start: Mutex::new(Instant::now()),
        acks: Mutex::new(Vec::new()),
    });
    let cfg = SessionConfig {
        engine: EngineConfig::default(),
        book_limits: Limits::NONE,
        portfolio_limits: Limits::NONE,
        interval_ms: HOUR_MS,
        gap_pause_bars: 2,
        lifecycle: Lifecycle::NONE,
    };
    let specs: Vec<BookSpec> = (0..books)
        .map(|i| BookSpec {
            strategy: format!("s{i:02}"),
            coin: "BTC".into(),
            genome: genome(),
            regime: None,
            cash: 10_000.0,
            validation_sharpe: None,
        })
        .collect();
    let upto = |t: usize| -> Histories {
        [("BTC".to_string(), Arc::new(market.slice(0..t + 1)))]
            .into_iter()
            .collect()
    };
    let (mut session, _) = Session::start("bench", cfg, specs, 0.0, &upto(WARMUP - 1));
    session.link(timed.clone());
    let (mut bar_ms, mut order_ms) = (Vec::new(), Vec::new());
    // The session runs where `live run` runs it: in the runtime's `block_on`.
    rt.block_on(async {
        for t in WARMUP..WARMUP + bars {
            let ts = market.candles.ts[t];
            // The bar has closed; the exchange trades the next one's open.
            ex.set_now(ts + HOUR_MS);
            timed.acks.lock().expect("lock").clear();
            #[allow(clippy::disallowed_methods)] // a benchmark times things
            let start = Instant::now();
            *timed.bar_start.lock().expect("lock") = start;
            let rows = session.on_bar(ts, &upto(t));
            let took = start.elapsed();
            if rows.iter().any(|e| e.kind() == Kind::Order) {
                bar_ms.push(took.as_secs_f64() * 1e3);
                order_ms.extend(
                    timed
                        .acks
                        .lock()
                        .expect("lock")
                        .iter()
                        .map(|d| d.as_secs_f64() * 1e3),
                );
            }
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    (bar_ms, order_ms)
}

fn main() {
    let books: Vec<usize> = std::env::var("ORDERS_BOOKS")
        .unwrap_or_else(|_| "1,10,50".into())
        .split(',')
        .map(|s| s.trim().parse().expect("ORDERS_BOOKS: numbers"))
        .collect();
    let bars: usize = std::env::var("ORDERS_BARS")
        .ok()
        .map_or(60, |s| s.parse().expect("ORDERS_BARS: a number"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "{:>6} {:>10} {:>14} {:>14} {:>16} {:>16}",
        "books", "bars", "bar median ms", "bar max ms", "order median ms", "order max ms"
    );
    for n in books {
        let (bar, order) = run(&rt, n, bars);
        println!(
            "{n:>6} {:>10} {:>14.2} {:>14.2} {:>16.2} {:>16.2}",
            bar.len(),
            median(bar.clone()),
            max(&bar),
            median(order.clone()),
            max(&order)
        );
    }
}
