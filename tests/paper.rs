//! Paper trading: `paper replay` books exactly what `backtest` books (every seed and a program),
//! the risk manager and the kill switch flatten and pause as documented, and a session rebuilt
//! from its journal after a crash continues exactly as one that never stopped.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Output,
};

use std::sync::Arc;

use organism::{
    execution::EngineConfig,
    market::{
        synthetic::{generate, SyntheticParams},
        Candles, FundingSeries, Market, HOUR_MS,
    },
    runner::history::Histories,
    runner::paper::{BookSpec, Lifecycle, Limits, Session, SessionConfig},
    seeds::{self, Genome},
};
use rust_decimal::Decimal;

mod common;

use common::{organism, s};
use organism::runner::journal::{self, Entry, Kind, PORTFOLIO};

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn scratch(name: &str) -> PathBuf {
    common::scratch("paper", name)
}

/// Sum of one column of a trades CSV, as exact decimals.
fn column_sum(csv: &str, name: &str) -> Decimal {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').nth(k).unwrap().parse::<Decimal>().unwrap())
        .sum()
}

#[test]
fn replay_books_exactly_what_backtest_books_for_every_seed_and_a_program() {
    let dir = scratch("parity");
    let data = dir.join("data");
    ok(organism(&["data", "generate", "--out", s(&data)]));
    let mut genomes: Vec<(String, String)> = seeds::registry()
        .unwrap()
        .iter()
        .map(|e| (e.spec.name.clone(), format!("seed = \"{}\"\n", e.spec.name)))
        .collect();
    // A program with an ATR stop and a take-profit (intrabar exits), and a seed with them.
    genomes.push((
        "program".into(),
        "seed = \"program\"\nprogram = '(program (enter-long (gt close (ema 50))) (exit-long (lt close (ema 50))))'\n\n[genes]\nstop_kind = \"atr\"\nstop_value = 2.0\ntake_kind = \"pct\"\ntake_value = 3.0\n".into(),
    ));
    genomes.push((
        "donchian_with_stops".into(),
        "seed = \"donchian_breakout\"\n\n[genes]\nstop_kind = \"atr\"\nstop_value = 1.5\ntake_kind = \"pct\"\ntake_value = 2.0\n".into(),
    ));
    let mut total_trades = 0;
    for (name, text) in &genomes {
        let g = dir.join(format!("{name}.toml"));
        std::fs::write(&g, text).unwrap();
        let (bt, be, pt, pe) = (
            dir.join(format!("{name}.bt.csv")),
            dir.join(format!("{name}.be.csv")),
            dir.join(format!("{name}.pt.csv")),
            dir.join(format!("{name}.pe.csv")),
        );
        let common = [
            "--data",
            s(&data),
            "--source",
            "synthetic",
            "--coin",
            "ETH",
            "--genome",
            s(&g),
        ];
        let mut a: Vec<&str> = vec!["backtest"];
        a.extend(common);
        a.extend([
            "--timerange",
            "20240201-20240415",
            "--trades",
            s(&bt),
            "--equity",
            s(&be),
            "-q",
        ]);
        ok(organism(&a));
        let mut a: Vec<&str> = vec!["paper", "replay"];
        a.extend(common);
        a.extend([
            "--from",
            "20240201",
            "--to",
            "20240415",
            "--trades",
            s(&pt),
            "--equity",
            s(&pe),
            "--json",
        ]);
        // The two with intrabar exits keep their journal for the drift ledger below.
        let kept = dir.join(format!("{name}.db"));
        let keep = name.contains("stops") || name == "program";
        if keep {
            a.extend(["--journal", s(&kept)]);
        }
        let out = ok(organism(&a));
        let v: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
        if keep {
            paper_fills_are_the_models(&kept, v["account"].as_str().unwrap(), name);
        }
        let (bts, pts) = (
            std::fs::read_to_string(&bt).unwrap(),
            std::fs::read_to_string(&pt).unwrap(),
        );
        assert_eq!(bts, pts, "{name}: trades differ");
        assert_eq!(
            std::fs::read_to_string(&be).unwrap(),
            std::fs::read_to_string(&pe).unwrap(),
            "{name}: equity differs"
        );
        // 74 days of hourly bars.
        assert_eq!(v["bars"], 74 * 24, "{name}");
        let trades = bts.lines().count() - 1;
        assert_eq!(v["trades"], trades, "{name}");
        assert!(trades >= 2, "{name}: only {trades} trades");
        total_trades += trades;
        // Each closed trade is two fills, an open one is one.
        let closed = v["closed_trades"].as_u64().unwrap() as usize;
        assert_eq!(
            v["fills"].as_u64().unwrap() as usize,
            2 * closed + (trades - closed),
            "{name}"
        );
        // The journal's fills and funding rows, summed in Decimal, equal the trades' fees and
        // funding to the cent.
        let fees: Decimal = v["fees"].as_str().unwrap().parse().unwrap();
        let funding: Decimal = v["funding"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            fees.round_dp(2),
            column_sum(&bts, "fees").round_dp(2),
            "{name}: fees"
        );
        assert_eq!(
            funding.round_dp(2),
            column_sum(&bts, "funding").round_dp(2),
            "{name}: funding"
        );
        // The final equity is the last equity row.
        let last_equity = std::fs::read_to_string(&be)
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .split(',')
            .nth(1)
            .unwrap()
            .to_string();
        assert_eq!(v["final_equity"], last_equity, "{name}");
    }
    assert!(total_trades > 100, "{total_trades}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// On paper every fill is the model's: the drift ledger of a replay's journal finds no order
/// whose slippage or fee differs from the backtest's fill of it by a single bit, no exchange
/// request, and no day whose equity strays from the replay's; the slippage setting that would
/// have matched is the model's, 1 bp.
fn paper_fills_are_the_models(db: &Path, account: &str, name: &str) {
    let out = ok(organism(&[
        "drift",
        "--registry",
        s(db),
        "--account",
        account,
        "--json",
    ]));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let orders = v["orders"].as_array().unwrap();
    assert!(orders.len() >= 4, "{name}: {} orders", orders.len());
    for o in orders {
        assert_eq!(o["price"], o["model_price"], "{name}: {o}");
        assert_eq!(o["fee"], o["model_fee"], "{name}: {o}");
        assert_eq!(o["slippage_excess"], 0.0, "{name}: {o}");
    }
    assert_eq!(v["excess_slippage_bps"], 0.0, "{name}");
    assert!(v["requests"].as_array().unwrap().is_empty());
    let days = v["days"].as_array().unwrap();
    // 74 days of bars.
    assert_eq!(days.len(), 74, "{name}");
    for d in days {
        assert_eq!(d["equity_drift"], 0.0, "{name}: {d}");
    }
    let matching = v["matching_slippage"].as_f64().unwrap();
    assert!((matching - 0.0001).abs() < 1e-12, "{name}: {matching}");
}

const DAY: i64 = 86_400_000;

/// Hourly bars from midnight of day 19_700 (2023-12-09): 30 falling, 30 rising, a 12 % drop
/// in the bar opening at 12:00 of the third day (bar 60), then flat.
fn crash_market() -> Market {
    let mut c = Candles::default();
    let mut px: f64 = 100.0;
    for i in 0..120i64 {
        let open = px;
        let close = match i {
            0..30 => px * 0.998,
            30..60 => px * 1.005,
            60 => px * 0.88,
            _ => px,
        };
        let (hi, lo) = (open.max(close), open.min(close));
        c.push(19_700 * DAY + i * HOUR_MS, open, hi, lo, close, 1.0);
        px = close;
    }
    Market::new("BTC", c, FundingSeries::default())
}

fn long_ema() -> Genome {
    let e = seeds::find("ema_crossover").unwrap();
    let mut g = e.spec.default_genome();
    for (k, v) in [("fast", "3"), ("slow", "8"), ("direction", "long")] {
        e.spec.set(&mut g, k, v).unwrap();
    }
    Genome::seed(e, g)
}

fn cfg(book: Limits) -> SessionConfig {
    SessionConfig {
        engine: EngineConfig::default(),
        book_limits: book,
        portfolio_limits: Limits::NONE,
        interval_ms: HOUR_MS,
        gap_pause_bars: 2,
        lifecycle: Lifecycle::NONE,
    }
}

fn spec(strategy: &str, coin: &str, genome: Genome, cash: f64) -> BookSpec {
    BookSpec {
        strategy: strategy.into(),
        coin: coin.into(),
        genome,
        regime: None,
        cash,
        validation_sharpe: None,
    }
}

/// Runs `session` over bars `from..to` of `markets` (all the same length), journaling into
/// `conn`.
fn feed(
    session: &mut Session,
    conn: &mut rusqlite::Connection,
    markets: &[Market],
    bars: std::ops::Range<usize>,
) {
    for t in bars {
        let h: Histories = markets
            .iter()
            .map(|m| (m.coin.clone(), Arc::new(m.slice(0..t + 1))))
            .collect();
        let rows = session.on_bar(markets[0].candles.ts[t], &h);
        journal::append(conn, session.account(), &rows, 0).unwrap();
    }
}

fn db() -> rusqlite::Connection {
    organism::store::open_in_memory().unwrap()
}

fn rows(conn: &rusqlite::Connection, account: &str) -> Vec<Entry> {
    journal::entries(conn, account)
        .unwrap()
        .into_iter()
        .map(|x| x.1)
        .collect()
}

#[test]
fn a_daily_loss_breach_flattens_at_the_close_and_pauses_until_the_next_day() {
    let m = crash_market();
    let limits = Limits {
        max_gross_leverage: f64::INFINITY,
        daily_loss: 0.05,
        max_drawdown: f64::INFINITY,
    };
    let mut conn = db();
    let (mut session, start) = Session::start(
        "t",
        cfg(limits),
        vec![spec("ema", "BTC", long_ema(), 1000.0)],
        0.0,
        &BTreeMap::new(),
    );
    journal::append(&mut conn, "t", &start, 0).unwrap();
    feed(
        &mut session,
        &mut conn,
        std::slice::from_ref(&m),
        0..m.candles.len(),
    );
    let all = rows(&conn, "t");
    let at = |i: usize| m.candles.ts[i];
    let of = |kind: Kind| -> Vec<&Entry> { all.iter().filter(|e| e.kind() == kind).collect() };
    // Long before the drop.
    let eq59 = all
        .iter()
        .find(|e| e.kind() == Kind::Equity && e.book == "ema/BTC" && e.bar_ts == at(59))
        .unwrap();
    assert!(
        eq59.body()["position"]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
    // One breach, at the drop bar's close: the loss since the previous day's last close is
    // over 5 %.
    let breaches = of(Kind::Breach);
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0].bar_ts, at(60));
    let body = breaches[0].body();
    let reason = body["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("daily loss ") && reason.ends_with(" % is over the limit 5.00 %"),
        "{reason}"
    );
    // The exit: a sell at the drop bar's close less slippage, reason `risk`.
    let trades = of(Kind::Trade);
    let last = trades.last().unwrap();
    assert_eq!(last.bar_ts, at(60));
    assert_eq!(last.body()["exit_reason"], "risk");
    let close60 = m.candles.close[60];
    assert_eq!(
        last.body()["exit_price"],
        serde_json::to_value(journal::Money(
            close60 * (1.0 - EngineConfig::default().slippage)
        ))
        .unwrap()
    );
    // Paused (flat decisions) until midnight, then resumed by itself at the first bar of the
    // next day (bar 72).
    let pause = of(Kind::Pause);
    assert_eq!(pause.len(), 1);
    assert_eq!(pause[0].body()["until_ts"], 19_703 * DAY);
    assert_eq!(at(72), 19_703 * DAY);
    for d in of(Kind::Decision) {
        let i = ((d.bar_ts - at(0)) / HOUR_MS) as usize;
        assert_eq!(d.body()["paused"], (61..72).contains(&i), "bar {i}");
    }
    let resumed = of(Kind::Resume);
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].bar_ts, at(72));
    // Flat from the drop on.
    let eq = all
        .iter()
        .rev()
        .find(|e| e.kind() == Kind::Equity && e.book == "ema/BTC")
        .unwrap();
    assert_eq!(eq.body()["position"], "0");
}

#[test]
fn a_drawdown_breach_waits_for_resume_and_the_kill_switch_flattens_everything() {
    let m = crash_market();
    let limits = Limits {
        max_gross_leverage: f64::INFINITY,
        daily_loss: f64::INFINITY,
        max_drawdown: 0.10,
    };
    let mut conn = db();
    let (mut session, start) = Session::start(
        "t",
        cfg(limits),
        vec![spec("ema", "BTC", long_ema(), 1000.0)],
        500.0,
        &BTreeMap::new(),
    );
    journal::append(&mut conn, "t", &start, 0).unwrap();
    feed(&mut session, &mut conn, std::slice::from_ref(&m), 0..100);
    let pauses = journal::of_kind(&conn, "t", Kind::Pause).unwrap();
    assert_eq!(pauses.len(), 1);
    assert!(pauses[0].body()["reason"]
        .as_str()
        .unwrap()
        .starts_with("drawdown "));
    assert_eq!(pauses[0].body()["until_ts"], serde_json::Value::Null);
    // Still paused 40 bars later: a drawdown pause needs an operator.
    let last = journal::latest(&conn, "t", "ema/BTC", Kind::Decision)
        .unwrap()
        .unwrap();
    assert_eq!(last.body()["paused"], true);
    let h: Histories = [("BTC".to_string(), Arc::new(m.slice(0..100)))].into();
    let rows = session.resume(None, "operator", &h);
    assert_eq!(rows.iter().filter(|e| e.kind() == Kind::Resume).count(), 1);
    journal::append(&mut conn, "t", &rows, 0).unwrap();
    feed(&mut session, &mut conn, std::slice::from_ref(&m), 100..110);
    let last = journal::latest(&conn, "t", "ema/BTC", Kind::Decision)
        .unwrap()
        .unwrap();
    assert_eq!(last.body()["paused"], false);
    // The kill switch, with the portfolio's reserve untouched.
    let h: Histories = [("BTC".to_string(), Arc::new(m.slice(0..110)))].into();
    let rows = session.kill("test", &h);
    assert_eq!(rows[0].kind(), Kind::Kill);
    assert!(session.killed());
    journal::append(&mut conn, "t", &rows, 0).unwrap();
    let eq = journal::latest(&conn, "t", "ema/BTC", Kind::Equity)
        .unwrap()
        .unwrap();
    assert_eq!(eq.body()["position"], "0");
    assert!(eq.body()["paused"]
        .as_str()
        .unwrap()
        .starts_with("kill switch: test"));
    let p = journal::latest(&conn, "t", PORTFOLIO, Kind::Equity)
        .unwrap()
        .unwrap();
    assert_eq!(p.body()["killed"], true);
    let total: f64 = p.body()["equity"].as_str().unwrap().parse().unwrap();
    let book: f64 = eq.body()["equity"].as_str().unwrap().parse().unwrap();
    assert_eq!(total, 500.0 + book);
    // After the kill every decision is flat.
    feed(&mut session, &mut conn, std::slice::from_ref(&m), 110..115);
    for d in journal::of_kind(&conn, "t", Kind::Decision)
        .unwrap()
        .iter()
        .filter(|d| d.bar_ts > m.candles.ts[109])
    {
        assert_eq!(d.body()["paused"], true);
        assert_eq!(d.body()["target"]["position"], 0.0);
    }
}

fn two_coin_markets(bars: usize) -> Vec<Market> {
    let u = generate(&SyntheticParams {
        bars,
        ..SyntheticParams::default()
    });
    u.markets.into_iter().take(2).collect()
}

fn two_strategies(coins: &[Market]) -> Vec<BookSpec> {
    let donchian = seeds::find("donchian_breakout").unwrap();
    let rsi = seeds::find("rsi_filter").unwrap();
    let mut out = Vec::new();
    for m in coins {
        out.push(spec(
            "donchian",
            &m.coin,
            Genome::seed(donchian, donchian.spec.default_genome()),
            3000.0,
        ));
        out.push(spec(
            "rsi",
            &m.coin,
            Genome::seed(rsi, rsi.spec.default_genome()),
            2000.0,
        ));
    }
    out
}

#[test]
fn a_session_rebuilt_from_its_journal_continues_as_if_it_never_stopped() {
    let markets = two_coin_markets(900);
    let warm = 300;
    let limits = Limits {
        max_gross_leverage: 1.5,
        daily_loss: 0.03,
        max_drawdown: 0.08,
    };
    let warmup: Histories = markets
        .iter()
        .map(|m| (m.coin.clone(), Arc::new(m.slice(0..warm))))
        .collect();
    // Uninterrupted.
    let mut a = db();
    let (mut sa, start) =
        Session::start("p", cfg(limits), two_strategies(&markets), 1000.0, &warmup);
    journal::append(&mut a, "p", &start, 0).unwrap();
    feed(&mut sa, &mut a, &markets, warm..900);
    // Stopped at three points and rebuilt from the journal each time.
    let mut b = db();
    let (mut sb, start) =
        Session::start("p", cfg(limits), two_strategies(&markets), 1000.0, &warmup);
    journal::append(&mut b, "p", &start, 0).unwrap();
    let mut at = warm;
    for stop in [450, 451, 700, 900] {
        feed(&mut sb, &mut b, &markets, at..stop);
        at = stop;
        let h: Histories = markets
            .iter()
            .map(|m| (m.coin.clone(), Arc::new(m.slice(0..stop))))
            .collect();
        drop(sb);
        sb = Session::restore(&b, "p", cfg(limits), two_strategies(&markets), &h)
            .unwrap()
            .expect("a session in the journal");
        assert_eq!(sb.last_ts(), Some(markets[0].candles.ts[stop - 1]));
    }
    let (ra, rb) = (rows(&a, "p"), rows(&b, "p"));
    assert_eq!(ra.len(), rb.len());
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x, y);
    }
    // The run did something worth comparing: trades on both coins, and risk events.
    let kinds = |k: Kind| ra.iter().filter(|e| e.kind() == k).count();
    assert!(kinds(Kind::Trade) >= 10, "{}", kinds(Kind::Trade));
    assert!(kinds(Kind::Funding) > 0);
    assert_eq!(kinds(Kind::Bar), 2 * 600);
    assert_eq!(kinds(Kind::Decision), 4 * 600);
    // With these limits the synthetic market breaches: the risk state (peaks, day starts,
    // pauses) is part of what the journal must carry across the restarts.
    assert!(kinds(Kind::Breach) >= 3, "{}", kinds(Kind::Breach));
    assert!(kinds(Kind::Resume) >= 2, "{}", kinds(Kind::Resume));
}

#[test]
fn a_bar_the_feed_never_delivered_flattens_and_pauses_that_coins_books() {
    let markets = two_coin_markets(400);
    let mut conn = db();
    let (mut s, start) = Session::start(
        "g",
        cfg(Limits::NONE),
        two_strategies(&markets),
        0.0,
        &BTreeMap::new(),
    );
    journal::append(&mut conn, "g", &start, 0).unwrap();
    let gap = 250usize;
    let mut h: Histories = BTreeMap::new();
    for t in 0..300 {
        for m in &markets {
            // The second coin's bar `gap` never arrives.
            let hist = if m.coin == markets[1].coin && t >= gap {
                let mut c = m.candles.slice(0..gap);
                for k in gap + 1..=t {
                    let x = &m.candles;
                    c.push(
                        x.ts[k],
                        x.open[k],
                        x.high[k],
                        x.low[k],
                        x.close[k],
                        x.volume[k],
                    );
                }
                Market::new(m.coin.clone(), c, m.funding.clone())
            } else {
                m.slice(0..t + 1)
            };
            h.insert(m.coin.clone(), Arc::new(hist));
        }
        let rows = s.on_bar(markets[0].candles.ts[t], &h);
        journal::append(&mut conn, "g", &rows, 0).unwrap();
    }
    let gaps = journal::of_kind(&conn, "g", Kind::Gap).unwrap();
    let coin = &markets[1].coin;
    assert_eq!(gaps.len(), 2, "both strategies of {coin}");
    for g in &gaps {
        assert!(g.book.ends_with(&format!("/{coin}")));
        assert_eq!(g.bar_ts, markets[0].candles.ts[gap]);
        // Paused for gap_pause_bars (2) bars after the gap.
        assert_eq!(g.body()["until_ts"], markets[0].candles.ts[gap + 3]);
    }
    // The first coin's books never paused; the second's decide flat right after the gap.
    for d in journal::of_kind(&conn, "g", Kind::Decision).unwrap() {
        let t = ((d.bar_ts - markets[0].candles.ts[0]) / HOUR_MS) as usize;
        let want = d.book.ends_with(&format!("/{coin}")) && (gap + 1..gap + 3).contains(&t);
        assert_eq!(d.body()["paused"], want, "{} bar {t}", d.book);
    }
}

fn lifecycle_session(
    validation_sharpe: Option<f64>,
    lifecycle: Lifecycle,
    markets: &[Market],
    days: usize,
) -> (rusqlite::Connection, Session) {
    let mut conn = db();
    let e = seeds::find("ema_crossover").unwrap();
    let specs = markets
        .iter()
        .map(|m| BookSpec {
            validation_sharpe,
            ..spec(
                "ema",
                &m.coin,
                Genome::seed(e, e.spec.default_genome()),
                5000.0,
            )
        })
        .collect();
    let c = SessionConfig {
        lifecycle,
        ..cfg(Limits::NONE)
    };
    let (mut s, start) = Session::start("l", c, specs, 0.0, &BTreeMap::new());
    journal::append(&mut conn, "l", &start, 0).unwrap();
    feed(&mut s, &mut conn, markets, 0..days * 24);
    (conn, s)
}

#[test]
fn a_strategy_within_tolerance_for_min_days_becomes_eligible_once() {
    // The synthetic market starts at midnight: each day ends at bar 24k + 23.
    let markets = two_coin_markets(24 * 5);
    let lc = Lifecycle {
        min_days: 3.0,
        max_tracking: 0.001,
        min_sharpe_z: -3.0,
        // Paper fills are the model's: not a bit of drift, so even no allowance retires nothing.
        max_fill_drift_bps: 0.0,
        min_drift_orders: 1,
    };
    let (conn, s) = lifecycle_session(None, lc, &markets, 5);
    let checks = journal::of_kind(&conn, "l", Kind::Lifecycle).unwrap();
    // One check per day end, for the one strategy.
    assert_eq!(checks.len(), 5);
    let verdicts: Vec<String> = checks
        .iter()
        .map(|c| c.body()["verdict"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(verdicts, ["ok", "ok", "eligible", "ok", "ok"]);
    assert_eq!(checks[2].bar_ts, markets[0].candles.ts[3 * 24 - 1]);
    assert_eq!(checks[2].body()["days"], 3.0);
    // Without interventions paper and replay are the same engine on the same targets: the
    // tracking difference is exactly zero.
    for c in &checks {
        assert_eq!(c.body()["tracking"], "0");
        assert_eq!(c.body()["paper_return"], c.body()["replay_return"]);
        assert_eq!(c.body()["interventions"], 0);
        // Absent before the strategy's first order.
        let drift = &c.body()["fill_drift_bps"];
        assert!(drift.is_null() || *drift == 0.0, "{drift}");
    }
    assert_eq!(checks[4].body()["fill_drift_bps"], 0.0);
    assert_eq!(s.eligible(), vec!["ema".to_string()]);
    assert!(s.retired().is_empty());
}

#[test]
fn a_paper_sharpe_far_below_validation_retires_the_strategy_for_good() {
    let markets = two_coin_markets(24 * 40);
    let lc = Lifecycle {
        min_days: 30.0,
        max_tracking: 0.02,
        min_sharpe_z: -3.0,
        max_fill_drift_bps: 20.0,
        min_drift_orders: 20,
    };
    let validation = 25.0;
    let (conn, mut s) = lifecycle_session(Some(validation), lc, &markets, 40);
    let checks = journal::of_kind(&conn, "l", Kind::Lifecycle).unwrap();
    let retired = checks
        .iter()
        .position(|c| c.body()["verdict"] == "retire")
        .expect("retired");
    // Not before min_days, and on the first check after it.
    assert_eq!(retired, 29);
    let c = &checks[retired];
    // The z, recomputed from the journal's own equity rows: per-bar returns of the strategy's
    // two books summed, annualized Sharpe, Lo's standard error.
    let eq = journal::of_kind(&conn, "l", Kind::Equity).unwrap();
    let mut total: BTreeMap<i64, f64> = BTreeMap::new();
    for e in eq
        .iter()
        .filter(|e| e.book.starts_with("ema/") && e.bar_ts <= c.bar_ts)
    {
        *total.entry(e.bar_ts).or_default() +=
            e.body()["equity"].as_str().unwrap().parse::<f64>().unwrap();
    }
    let mut v: Vec<f64> = total.values().copied().collect();
    // At the retiring bar the equity rows are after the flattening; the check marked the
    // equity before it: the paper return it reports.
    let ret: f64 = c.body()["paper_return"].as_str().unwrap().parse().unwrap();
    *v.last_mut().unwrap() = 10_000.0 * (1.0 + ret);
    // The first row is the session's start (10 000).
    assert_eq!(v[0], 10_000.0);
    let r: Vec<f64> = v.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let n = r.len() as f64;
    assert_eq!(r.len(), 30 * 24);
    let mean = r.iter().sum::<f64>() / n;
    let sd = (r.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0)).sqrt();
    let bpy = 8760.0f64;
    let sharpe = mean / sd * bpy.sqrt();
    let pb = validation / bpy.sqrt();
    let z = (sharpe - validation) / (((1.0 + pb * pb / 2.0) / n).sqrt() * bpy.sqrt());
    assert!(
        (c.body()["sharpe"].as_f64().unwrap() - sharpe).abs() < 1e-9,
        "{} {sharpe}",
        c.body()["sharpe"]
    );
    assert!((c.body()["z"].as_f64().unwrap() - z).abs() < 1e-9, "{z}");
    assert!(z < -3.0);
    assert!(c.body()["reason"]
        .as_str()
        .unwrap()
        .contains("standard errors below the validation Sharpe 25.00"));
    assert_eq!(s.retired().len(), 1);
    // Flat and paused for good: no more checks, resume does not lift it.
    assert_eq!(checks.len(), 30);
    let h: Histories = markets
        .iter()
        .map(|m| (m.coin.clone(), Arc::new(m.slice(0..40 * 24))))
        .collect();
    let rows = s.resume(None, "operator", &h);
    assert!(rows.iter().all(|e| e.kind() != Kind::Resume));
    for m in &markets {
        let b = &format!("ema/{}", m.coin);
        let e = journal::latest(&conn, "l", b, Kind::Equity)
            .unwrap()
            .unwrap();
        assert_eq!(e.body()["position"], "0");
        assert!(e.body()["paused"]
            .as_str()
            .unwrap()
            .starts_with("retired: "));
    }
}

#[test]
fn warm_ups_of_different_lengths_start_trading_at_the_same_bar() {
    // A coin fetched a moment later may bring one more closed bar: the warm-up ends at the
    // last bar every coin has, and every book steps every bar after it.
    let markets = two_coin_markets(400);
    let warmup: Histories = markets
        .iter()
        .enumerate()
        .map(|(i, m)| (m.coin.clone(), Arc::new(m.slice(0..300 + i))))
        .collect();
    let mut conn = db();
    let (mut s, start) = Session::start(
        "w",
        cfg(Limits::NONE),
        two_strategies(&markets),
        0.0,
        &warmup,
    );
    assert_eq!(s.last_ts(), Some(markets[0].candles.ts[299]));
    journal::append(&mut conn, "w", &start, 0).unwrap();
    feed(&mut s, &mut conn, &markets, 300..400);
    let decisions = journal::of_kind(&conn, "w", Kind::Decision).unwrap();
    assert_eq!(decisions.len(), 4 * 100);
    assert!(journal::of_kind(&conn, "w", Kind::Gap).unwrap().is_empty());
}

/// An exchange that answers an order only once `books` orders are waiting at once (or after
/// a 20 s deadline), filling each at its reference price; it counts the most in flight.
struct Gathering {
    books: usize,
    waiting: std::sync::Mutex<(usize, usize)>,
    all_here: std::sync::Condvar,
}

impl organism::execution::paper::ExecutionClient for Gathering {
    fn submit_order(
        &self,
        cmd: &organism::execution::paper::SubmitOrder<'_>,
        on_fill: &mut dyn FnMut(organism::execution::paper::FillEvent),
    ) -> Result<(), organism::execution::VenueError> {
        let mut g = self.waiting.lock().unwrap();
        g.0 += 1;
        g.1 = g.1.max(g.0);
        self.all_here.notify_all();
        let (mut g, _) = self
            .all_here
            .wait_timeout_while(g, std::time::Duration::from_secs(20), |g| g.1 < self.books)
            .unwrap();
        g.0 -= 1;
        on_fill(organism::execution::paper::FillEvent {
            id: 1,
            fill: organism::execution::Fill {
                side: cmd.order.side,
                qty: cmd.order.qty,
                price: cmd.order.price,
                fee: 0.0,
            },
        });
        Ok(())
    }
}

#[test]
fn the_orders_of_live_books_are_in_flight_at_once_and_journaled_in_book_order() {
    // Eight books of one genome on one coin: they decide the same orders on the same bars.
    let m = crash_market();
    let specs: Vec<BookSpec> = (0..8)
        .map(|i| spec(&format!("s{i}"), "BTC", long_ema(), 1000.0))
        .collect();
    let warm: Histories = [("BTC".to_string(), Arc::new(m.slice(0..10)))]
        .into_iter()
        .collect();
    let (mut session, _) = Session::start("live", cfg(Limits::NONE), specs, 0.0, &warm);
    let exchange = Arc::new(Gathering {
        books: 8,
        waiting: std::sync::Mutex::new((0, 0)),
        all_here: std::sync::Condvar::new(),
    });
    session.link(exchange.clone());
    let mut orders = Vec::new();
    for t in 10..120 {
        let h: Histories = [("BTC".to_string(), Arc::new(m.slice(0..t + 1)))]
            .into_iter()
            .collect();
        let rows = session.on_bar(m.candles.ts[t], &h);
        let books: Vec<String> = rows
            .iter()
            .filter(|e| e.kind() == Kind::Order)
            .map(|e| e.book.clone())
            .collect();
        if !books.is_empty() {
            orders.push(books);
        }
    }
    // The long EMA enters once the market turns up and leaves in the crash: every book sends
    // its order on the same bars, all eight waiting on the exchange together (a session that
    // sent them one after another would have at most one in flight).
    assert!(orders.len() >= 2, "{orders:?}");
    assert_eq!(
        exchange.waiting.lock().unwrap().1,
        8,
        "orders in flight at once"
    );
    let expected: Vec<String> = (0..8).map(|i| format!("s{i}/BTC")).collect();
    for books in &orders {
        assert_eq!(books, &expected, "rows in book order");
    }
    // The long EMA closed its position in the crash: every book is flat again.
    assert_eq!(session.net_positions().get("BTC").copied(), Some(0.0));
}
