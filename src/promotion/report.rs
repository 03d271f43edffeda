//! HTML reports: one self-contained file (inline SVG, inline CSS, no JavaScript, no network).
//!
//! A backtest report has, per coin, the price with entries and exits, equity and drawdown with
//! the train / validation / holdout boundaries marked, the monthly returns as a heat map and the
//! metrics. A run report has the hypervolume and the best Sharpe per generation, the first front
//! as a Sharpe-vs-drawdown scatter (training and validation) and the ranked members. A
//! promotion report has the gauntlet's table and, for each candidate that reached the nulls,
//! its equity over training, validation and (when read) the holdout with the segments marked,
//! the distribution of its Sharpe on the permuted copies with its own marked, and its Sharpe per
//! market regime with the regime policy its validation figures suggest.

use std::fmt::Write as _;

use super::svg::{esc, histogram, monthly_heatmap, scatter, LineChart, Marker, Series};
use crate::{
    backtest::portfolio::PortfolioReport,
    backtest::BacktestReport,
    evolution::{
        problem::Figures,
        summary::Ranked,
        walkforward::{Summary, Window},
        GenStats,
    },
    execution::{ExitReason, Side},
    fitness::{
        monthly_returns,
        portfolio::{MonthlyIc, PortfolioFigures},
        trades::TradeStats,
        Metrics,
    },
    genome::SeedSpec,
    market::{panel::Panel, Candles},
};

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1320px}\
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;\
text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}h2{margin-top:32px}\
p.note{color:#555}svg{display:block;margin:8px 0}tr.why td{color:#555;font-size:90%;\
border-top:none}td.fail{color:#b00;font-weight:bold}td.v{white-space:nowrap}td.pass{color:#176}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n{body}</body></html>\n",
        esc(title),
        esc(title)
    )
}

/// One coin's backtest, as a report shows it.
pub struct CoinBacktest<'a> {
    pub coin: &'a str,
    pub candles: &'a Candles,
    pub report: &'a BacktestReport,
    pub metrics: &'a Metrics,
}

/// Peak-to-date drawdown of each bar, as a negative fraction (0 at a new high).
pub fn drawdown_series(equity: &[f64]) -> Vec<f64> {
    let mut peak = f64::NEG_INFINITY;
    equity
        .iter()
        .map(|&v| {
            peak = peak.max(v);
            if peak > 0.0 {
                v / peak - 1.0
            } else {
                0.0
            }
        })
        .collect()
}

fn metrics_table(m: &Metrics) -> String {
    let mut s = String::from("<table>");
    let exits = ("exits", m.exits.describe());
    for (k, v) in m.rows().into_iter().chain([exits]) {
        let _ = write!(s, "<tr><th class=\"l\">{k}</th><td>{}</td></tr>", esc(&v));
    }
    s.push_str("</table>");
    s
}

/// A chart of one series over time with the segment boundaries.
fn time_chart(
    title: String,
    name: &str,
    color: &'static str,
    x: &[f64],
    y: Vec<f64>,
    bounds: &[(f64, String)],
) -> LineChart {
    LineChart {
        title,
        series: vec![Series {
            name: name.into(),
            color,
            x: x.to_vec(),
            y,
        }],
        boundaries: bounds.to_vec(),
        time_axis: true,
        ..LineChart::default()
    }
}

/// The trade statistics of a coin, as a table.
fn trade_stats_table(stats: &TradeStats) -> String {
    let mut s = String::from("<table class=\"stats\">");
    for (k, v) in stats.rows() {
        let _ = write!(s, "<tr><th class=\"l\">{k}</th><td>{}</td></tr>", esc(&v));
    }
    s.push_str("</table>");
    s
}

/// Every trade of a coin, in a table folded under a summary line.
fn trade_table(coin: &str, trades: &[crate::execution::Trade]) -> String {
    let mut s = format!(
        "<details class=\"trades\"><summary>{}: all {} trades (fees paid; funding + received, − \
         paid; P&amp;L net of both)</summary>\n<table><tr><th>#</th><th class=\"l\">side</th>\
         <th class=\"l\">entry (UTC)</th><th>entry price</th><th class=\"l\">exit (UTC)</th>\
         <th>exit price</th><th>size</th><th>hours</th><th>fees paid</th><th>funding (+ received)</th>\
         <th>P&amp;L</th><th>return</th><th class=\"l\">exit</th></tr>\n",
        esc(coin),
        trades.len()
    );
    for (i, t) in trades.iter().enumerate() {
        let _ = writeln!(
            s,
            "<tr class=\"trade\"><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td>\
             <td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td><td>{:+.2}</td>\
             <td>{:+.2}</td><td>{:+.2} %</td><td class=\"l\">{}</td></tr>",
            i + 1,
            t.side.as_str(),
            crate::market::format_ts(t.entry_ts),
            crate::genome::significant(t.entry_price, 6),
            crate::market::format_ts(t.exit_ts),
            crate::genome::significant(t.exit_price, 6),
            crate::genome::significant(t.size, 6),
            t.hours(),
            t.fees,
            t.funding,
            t.pnl,
            100.0 * t.notional_return(),
            t.exit_reason.as_str()
        );
    }
    s.push_str("</table></details>\n");
    s
}

/// The section of a backtest on several coins: each coin's figures beside the aggregate that
/// evolve scores, and every coin's equity on one chart (as a share of its starting cash).
fn aggregate_section(
    coins: &[CoinBacktest<'_>],
    aggregate: &Figures,
    note: &str,
    bounds: &[(f64, String)],
) -> String {
    let mut s = String::from(
        "<h2>All coins</h2>\n<table class=\"aggregate\"><tr><th class=\"l\">coin</th><th>return</th>\
         <th>Sharpe</th><th>max drawdown</th><th>trades</th><th>win rate</th><th>consistency</th>\
         <th>turnover / year</th></tr>\n",
    );
    for c in coins {
        let m = c.metrics;
        let _ = writeln!(
            s,
            "<tr><td class=\"l\">{}</td><td>{:+.2} %</td><td>{:.3}</td><td>{:.2} %</td><td>{}</td>\
             <td>{:.1} %</td><td>{:.0} %</td><td>{:.1}</td></tr>",
            esc(c.coin),
            100.0 * m.total_return,
            m.sharpe,
            100.0 * m.max_drawdown,
            m.trades,
            100.0 * m.win_rate,
            100.0 * m.consistency,
            m.turnover
        );
    }
    let _ = writeln!(
        s,
        "<tr class=\"total\"><th class=\"l\">aggregate</th><th>{:+.2} %</th><th>{:.3}</th>\
         <th>{:.2} %</th><th>{}</th><th></th><th>{:.0} %</th><th>{:.1}</th></tr>\n</table>\n\
         <p class=\"note\">{}</p>",
        100.0 * aggregate.total_return,
        aggregate.sharpe,
        100.0 * aggregate.max_drawdown,
        aggregate.trades,
        100.0 * aggregate.consistency,
        aggregate.turnover,
        esc(note)
    );
    const COLORS: [&str; 6] = [
        "#0969da", "#bc4c00", "#1a7f37", "#8250df", "#cf222e", "#555",
    ];
    let series: Vec<Series> = coins
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            name: c.coin.to_string(),
            color: COLORS[i % COLORS.len()],
            x: c.candles.ts.iter().map(|&t| t as f64).collect(),
            y: c.report
                .equity
                .iter()
                .map(|v| v / c.report.cash - 1.0)
                .collect(),
        })
        .collect();
    let chart = LineChart {
        title: "every coin's equity: return on its starting cash".into(),
        series,
        markers: Vec::new(),
        boundaries: bounds.to_vec(),
        time_axis: true,
        percent: true,
    };
    s.push_str(&chart.svg());
    s.push('\n');
    s
}

/// The HTML report of a backtest on one or more coins. `intro` lines are printed first (the
/// strategy, the data, the costs); `boundaries` are segment starts (UTC ms) with their names;
/// with several coins, `aggregate` is what evolve scores, with a note saying how.
pub fn backtest_report(
    title: &str,
    intro: &[String],
    coins: &[CoinBacktest<'_>],
    boundaries: &[(i64, String)],
    aggregate: Option<(&Figures, &str)>,
) -> String {
    let mut body = String::new();
    for line in intro {
        let _ = writeln!(body, "<p>{}</p>", esc(line));
    }
    let bounds: Vec<(f64, String)> = boundaries
        .iter()
        .map(|(t, n)| (*t as f64, n.clone()))
        .collect();
    if let (Some((a, note)), true) = (aggregate, coins.len() > 1) {
        body.push_str(&aggregate_section(coins, a, note, &bounds));
    }
    for c in coins {
        let ts: Vec<f64> = c.candles.ts.iter().map(|&t| t as f64).collect();
        let mut markers = Vec::new();
        for t in &c.report.trades {
            let long = t.side == Side::Long;
            markers.push(Marker {
                x: t.entry_ts as f64,
                y: t.entry_price,
                entry: true,
                long,
            });
            if t.exit_reason != ExitReason::Open {
                markers.push(Marker {
                    x: t.exit_ts as f64,
                    y: t.exit_price,
                    entry: false,
                    long,
                });
            }
        }
        let price = LineChart {
            markers,
            ..time_chart(
                format!("{}: close, entries (▲ long, ▼ short) and exits (○)", c.coin),
                "close",
                "#555",
                &ts,
                c.candles.close.clone(),
                &bounds,
            )
        };
        let mut equity = time_chart(
            format!(
                "{}: equity, and buy & hold of the coin from the first close (no costs)",
                c.coin
            ),
            "equity",
            "#0969da",
            &ts,
            c.report.equity.clone(),
            &bounds,
        );
        if let Some(&first) = c.candles.close.first() {
            equity.series.push(Series {
                name: "buy & hold".into(),
                color: "#999",
                x: ts.clone(),
                y: c.candles
                    .close
                    .iter()
                    .map(|p| c.report.cash * p / first)
                    .collect(),
            });
        }
        let dd = LineChart {
            percent: true,
            ..time_chart(
                format!("{}: drawdown", c.coin),
                "drawdown",
                "#cf222e",
                &ts,
                drawdown_series(&c.report.equity),
                &bounds,
            )
        };
        let months: Vec<(i64, u32, f64)> =
            monthly_returns(&c.report.equity, &c.candles.ts, c.report.cash)
                .into_iter()
                .map(|m| (m.year, m.month, m.r#return))
                .collect();
        let _ = write!(
            body,
            "<h2>{}</h2>\n{}\n<h3>Trades</h3>\n{}\n{}\n{}\n{}\n{}\n{}\n",
            esc(c.coin),
            metrics_table(c.metrics),
            trade_stats_table(&TradeStats::of(&c.report.trades)),
            price.svg(),
            equity.svg(),
            dd.svg(),
            monthly_heatmap(&format!("{}: monthly returns", c.coin), &months),
            trade_table(c.coin, &c.report.trades)
        );
    }
    page(title, &body)
}

/// The HTML report of a portfolio backtest: the figures; equity and drawdown; gross and net
/// exposure and coins held over time; each coin's contribution (the 15 best and the 15 worst);
/// the monthly returns; and the monthly rank IC of the scores against the next period's returns.
pub fn portfolio_report(
    title: &str,
    genes: &str,
    panel: &Panel,
    report: &PortfolioReport,
    f: &PortfolioFigures,
    monthly_ic: &[MonthlyIc],
) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "<p>{}</p>", esc(genes));
    let rows: Vec<(&str, String)> = vec![
        ("bars", f.bars.to_string()),
        ("years", format!("{:.2}", f.years)),
        (
            "sharpe ± standard error (Lo)",
            format!("{:.2} ± {:.2}", f.sharpe, f.sharpe_se),
        ),
        ("P(sharpe > 0)", format!("{:.3}", f.psr)),
        ("total return", format!("{:.2} %", 100.0 * f.total_return)),
        ("cagr", format!("{:.2} %", 100.0 * f.cagr)),
        ("max drawdown", format!("{:.2} %", 100.0 * f.max_drawdown)),
        ("turnover (× equity a year)", format!("{:.1}", f.turnover)),
        (
            "cost drag (a year)",
            format!("{:.2} %", 100.0 * f.cost_drag),
        ),
        (
            "funding (a year; + received, − paid)",
            format!("{:+.2} %", 100.0 * f.funding),
        ),
        ("coins held (average)", format!("{:.1}", f.avg_held)),
        (
            "gross / net (average)",
            format!("{:.2} / {:+.2}", f.avg_gross, f.avg_net),
        ),
        (
            "rebalances / fills / delisted",
            format!("{} / {} / {}", f.rebalances, f.fills, f.delisted),
        ),
    ];
    body.push_str("<table>");
    for (k, v) in rows {
        let _ = write!(
            body,
            "<tr><th class=\"l\">{}</th><td>{}</td></tr>",
            esc(k),
            esc(&v)
        );
    }
    body.push_str("</table>");
    let ts: Vec<f64> = panel.ts.iter().map(|&t| t as f64).collect();
    let equity = time_chart(
        "equity".into(),
        "equity",
        "#0969da",
        &ts,
        report.equity.clone(),
        &[],
    );
    let dd = LineChart {
        percent: true,
        ..time_chart(
            "drawdown".into(),
            "drawdown",
            "#cf222e",
            &ts,
            drawdown_series(&report.equity),
            &[],
        )
    };
    let exposure = LineChart {
        title: "gross and net exposure (fractions of equity)".into(),
        series: vec![
            Series {
                name: "gross".into(),
                color: "#0969da",
                x: ts.clone(),
                y: report.gross.clone(),
            },
            Series {
                name: "net".into(),
                color: "#bf8700",
                x: ts.clone(),
                y: report.net.clone(),
            },
        ],
        time_axis: true,
        ..LineChart::default()
    };
    let held = time_chart(
        "coins held".into(),
        "coins",
        "#555",
        &ts,
        report.held.iter().map(|&h| h as f64).collect(),
        &[],
    );
    let _ = write!(
        body,
        "{}\n{}\n{}\n{}\n",
        equity.svg(),
        dd.svg(),
        exposure.svg(),
        held.svg()
    );
    let coins = report.by_pnl();
    let table = |title: &str, list: &mut dyn Iterator<Item = &(usize, f64)>| {
        let mut t = format!(
            "<h2>{}</h2><table><tr><th class=\"l\">coin</th><th>P&amp;L</th><th>fees</th>\
             <th>slippage</th><th>funding (+ received)</th><th>traded</th><th>fills</th></tr>",
            esc(title)
        );
        for &(i, pnl) in list {
            let c = &report.coins[i];
            let _ = write!(
                t,
                "<tr><td class=\"l\">{}</td><td>{pnl:.2}</td><td>{:.2}</td><td>{:.2}</td>\
                 <td>{:+.2}</td><td>{:.0}</td><td>{}</td></tr>",
                esc(&panel.coins[i].market.coin),
                c.fees,
                c.slippage,
                c.funding,
                c.traded,
                c.fills
            );
        }
        t.push_str("</table>");
        t
    };
    body.push_str(&table(
        "the 15 coins that contributed most",
        &mut coins.iter().take(15),
    ));
    body.push_str(&table(
        "the 15 coins that contributed least",
        &mut coins.iter().rev().take(15),
    ));
    let months: Vec<(i64, u32, f64)> = f
        .monthly
        .iter()
        .map(|m| (m.year, m.month, m.r#return))
        .collect();
    body.push_str(&monthly_heatmap("monthly returns", &months));
    let ic: Vec<(i64, u32, f64)> = monthly_ic.iter().map(|m| (m.year, m.month, m.ic)).collect();
    body.push_str(&monthly_heatmap(
        "monthly rank IC: score against the return to the next rebalance",
        &ic,
    ));
    page(title, &body)
}

/// The HTML report of a run: `intro` lines (settings, data), the history and the ranked members.
pub fn run_report(
    title: &str,
    intro: &[String],
    history: &[GenStats],
    ranked: &[Ranked],
    specs: &[&SeedSpec],
    top: usize,
) -> String {
    let mut body = String::new();
    for line in intro {
        let _ = writeln!(body, "<p>{}</p>", esc(line));
    }
    let gens: Vec<f64> = history.iter().map(|h| f64::from(h.generation)).collect();
    let hv = LineChart {
        title: "hypervolume of the feasible first front, per generation".into(),
        series: vec![Series {
            name: "hypervolume".into(),
            color: "#0969da",
            x: gens.clone(),
            y: history.iter().map(|h| h.hypervolume).collect(),
        }],
        ..LineChart::default()
    };
    let best = LineChart {
        title: "best training Sharpe (feasible members), per generation".into(),
        series: vec![Series {
            name: "best Sharpe".into(),
            color: "#1a7f37",
            x: gens,
            y: history.iter().map(|h| h.best_sharpe).collect(),
        }],
        ..LineChart::default()
    };
    let mut points = Vec::new();
    for r in ranked {
        points.push((
            r.train.max_drawdown,
            r.train.sharpe,
            format!("{} training", r.id),
            "#0969da",
        ));
    }
    for r in ranked {
        points.push((
            r.validation.max_drawdown,
            r.validation.sharpe,
            format!("{} validation", r.id),
            "#bc4c00",
        ));
    }
    let front = scatter(
        "first front: Sharpe vs max drawdown (blue training, orange validation)",
        "max drawdown",
        "Sharpe",
        &points,
    );
    let _ = write!(
        body,
        "{}\n{}\n<h2>First front</h2>\n{front}\n",
        hv.svg(),
        best.svg()
    );
    let shown = if top == 0 {
        ranked.len()
    } else {
        top.min(ranked.len())
    };
    if shown < ranked.len() {
        let _ = writeln!(
            body,
            "<p class=\"note\">The top {shown} of {} distinct members.</p>",
            ranked.len()
        );
    }
    body.push_str(
        "<p class=\"note\">Ranked by score = min(training Sharpe, validation Sharpe); flags mark a \
         validation Sharpe below 0 or below half the training Sharpe; genes to 6 significant digits \
         (front.csv keeps them exact).</p>\n<table><tr><th>#</th>\
         <th class=\"l\">id</th><th class=\"l\">seed</th><th>score</th><th>train Sharpe</th>\
         <th>train return</th><th>train mdd</th><th>train trades</th><th>val. Sharpe</th>\
         <th>val. return</th><th>val. mdd</th><th>val. trades</th><th class=\"l\">flag</th>\
         <th class=\"l\">genes</th></tr>\n",
    );
    for (i, r) in ranked.iter().take(shown).enumerate() {
        let _ = writeln!(
            body,
            "<tr class=\"member\"><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.1} %</td><td>{:.1} %</td><td>{}</td><td>{:.3}</td><td>{:.1} %</td><td>{:.1} %</td><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            i + 1,
            esc(&r.id),
            esc(&r.seed),
            r.score,
            r.train.sharpe,
            r.train.total_return * 100.0,
            r.train.max_drawdown * 100.0,
            r.train.trades,
            r.validation.sharpe,
            r.validation.total_return * 100.0,
            r.validation.max_drawdown * 100.0,
            r.validation.trades,
            r.flag.map_or("", |f| f.as_str()),
            esc(&r.short_text(specs))
        );
    }
    body.push_str("</table>\n");
    page(title, &body)
}

/// The HTML report of a walk-forward: `intro` lines, the stitched out-of-sample equity of the
/// selected members beside buy & hold (compounded from 1, test windows marked), and the
/// windows' table.
pub fn walkforward_report(
    title: &str,
    intro: &[String],
    windows: &[Window],
    summary: &Summary,
) -> String {
    let mut body = String::new();
    for line in intro {
        let _ = writeln!(body, "<p>{}</p>", esc(line));
    }
    let compound = |r: &mut dyn Iterator<Item = f64>| {
        let mut v = 1.0;
        r.map(|x| {
            v *= 1.0 + x;
            v
        })
        .collect::<Vec<f64>>()
    };
    let x: Vec<f64> = windows
        .iter()
        .flat_map(|w| w.ts.iter().map(|&t| t as f64))
        .collect();
    let oos = compound(&mut windows.iter().flat_map(|w| w.returns.iter().copied()));
    let hold = compound(&mut windows.iter().flat_map(|w| w.buy_hold.iter().copied()));
    let tests: Vec<(f64, String)> = windows
        .iter()
        .map(|w| (w.span.test_from as f64, format!("test {}", w.index)))
        .collect();
    // Each on its own axis: buy & hold's range would flatten the strategy's line.
    let line = |title: &str, name: &str, color: &'static str, y: Vec<f64>, percent: bool| {
        LineChart {
            title: title.into(),
            series: vec![Series {
                name: name.into(),
                color,
                x: x.clone(),
                y,
            }],
            boundaries: tests.clone(),
            time_axis: true,
            percent,
            ..LineChart::default()
        }
        .svg()
    };
    let chart = [
        line(
            "stitched out-of-sample equity (selected members, equal weight; 1 = the start)",
            "out of sample",
            "#0969da",
            oos.clone(),
            false,
        ),
        line(
            "its drawdown",
            "drawdown",
            "#cf222e",
            drawdown_series(&oos),
            true,
        ),
        line(
            "buy & hold over the same test windows (its own axis)",
            "buy & hold",
            "#888",
            hold,
            false,
        ),
    ]
    .join("\n");
    let f = |v: f64| {
        if v.is_finite() {
            format!("{v:.2}")
        } else {
            "n/a".into()
        }
    };
    let _ = write!(
        body,
        "{}\n<table><tr><th class=\"l\">stitched out-of-sample Sharpe</th><td>{}</td></tr>\
         <tr><th class=\"l\">mean in-sample Sharpe</th><td>{}</td></tr>\
         <tr><th class=\"l\">out-of-sample / in-sample</th><td>{}</td></tr>\
         <tr><th class=\"l\">windows with positive out-of-sample Sharpe</th><td>{} of {}</td></tr>\
         <tr><th class=\"l\">buy &amp; hold Sharpe, same windows</th><td>{}</td></tr></table>\n",
        chart,
        f(summary.stitched_oos_sharpe),
        f(summary.mean_in_sample_sharpe),
        f(summary.oos_is_ratio),
        summary.positive_windows,
        summary.windows,
        f(summary.stitched_buy_hold_sharpe)
    );
    body.push_str(
        "<h2>Windows</h2>\n<table><tr><th>#</th><th class=\"l\">train from</th>\
         <th class=\"l\">test from</th><th class=\"l\">test to</th><th>in-sample Sharpe</th>\
         <th>out-of-sample Sharpe</th><th>buy &amp; hold Sharpe</th><th class=\"l\">selected</th></tr>\n",
    );
    let day = |ms: i64| {
        let (y, m, dd, _, _) = crate::market::civil(ms);
        format!("{y:04}-{m:02}-{dd:02}")
    };
    for w in windows {
        let sel = if w.selected.is_empty() {
            "none: flat".to_string()
        } else {
            w.selected
                .iter()
                .map(|s| format!("{} ({}, test {})", s.id, s.seed, f(s.test_sharpe)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            w.index,
            day(w.span.train_from),
            day(w.span.test_from),
            day(w.span.test_to),
            f(w.in_sample_sharpe),
            f(w.out_of_sample_sharpe),
            f(w.buy_hold_sharpe),
            esc(&sel)
        );
    }
    body.push_str("</table>\n");
    page(title, &body)
}

/// Equity compounded from 1 over consecutive return series.
fn compounded(parts: &[&[f64]]) -> Vec<f64> {
    let mut v = 1.0;
    parts
        .iter()
        .flat_map(|p| p.iter())
        .map(|x| {
            v *= 1.0 + x;
            v
        })
        .collect()
}

/// The HTML report of a promotion: `intro` lines, the gauntlet table, and per candidate that
/// reached the nulls its equity by segment and its null distribution.
pub fn promotion_report(
    title: &str,
    intro: &[String],
    verdict: &crate::promotion::gauntlet::Verdict,
) -> String {
    use crate::promotion::gauntlet::Stage;
    let mut body = String::new();
    for line in intro {
        let _ = writeln!(body, "<p>{}</p>", esc(line));
    }
    let f = |v: Option<f64>| match v {
        Some(v) if v.is_finite() => format!("{v:.2}"),
        _ => "".into(),
    };
    let f4 = |v: Option<f64>| match v {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "".into(),
    };
    // A segment's Sharpe, with its standard error where it is one series's.
    let pm = |r: &crate::promotion::gauntlet::SegmentRun| {
        let x = f(r.figures.map(|x| x.sharpe));
        match r.sharpe_se {
            Some(se) if !x.is_empty() => format!("{x} ± {se:.2}"),
            _ => x,
        }
    };
    let portfolio = verdict
        .candidates
        .iter()
        .any(|j| j.validation.sharpe_se.is_some());

    // The cross-sectional null is a portfolio strategy's stage.
    let stages: Vec<Stage> = Stage::ALL
        .into_iter()
        .filter(|st| portfolio || *st != Stage::CrossSection)
        .collect();
    body.push_str("<h2>Gauntlet</h2>\n<table><tr><th>#</th><th class=\"l\">id</th><th class=\"l\">seed</th><th>train Sharpe</th><th>validation Sharpe</th><th>holdout Sharpe</th>");
    if portfolio {
        body.push_str(
            "<th>validation rank IC (t)</th><th>coins held</th><th>turnover / year</th>\
             <th>capacity (% of a bar's volume at 1 M USD)</th>",
        );
    }
    for st in &stages {
        let _ = write!(body, "<th>{}</th>", st.as_str().replace('_', " "));
    }
    body.push_str("<th class=\"l\">verdict</th></tr>\n");
    for j in &verdict.candidates {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td>",
            j.rank + 1,
            esc(&j.id),
            esc(&j.seed),
            pm(&j.train),
            pm(&j.validation),
            j.holdout.as_ref().map_or(String::new(), pm),
        );
        if portfolio {
            let v = j.validation.figures;
            let d = v.and_then(|x| x.portfolio);
            let _ = write!(
                body,
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                d.map_or(String::new(), |d| format!(
                    "{} ({})",
                    f4(Some(d.rank_ic.mean)),
                    f(Some(d.rank_ic.t))
                )),
                f(d.map(|d| d.avg_held)),
                f(v.map(|x| x.turnover)),
                f4(d.map(|d| 100.0 * d.capacity_max)),
            );
        }
        for &st in &stages {
            let cell = match j.stages.iter().find(|o| o.stage == st) {
                Some(o) if o.passed => "<td class=\"pass\">pass</td>",
                Some(_) => "<td class=\"fail\">FAIL</td>",
                None => "<td></td>",
            };
            body.push_str(cell);
        }
        // The reason on a row of its own below, so the table stays narrow.
        let (verdict_text, why) = match j.stopped_at() {
            Some(o) => (
                format!("stopped at {}", o.stage.as_str().replace('_', " ")),
                o.reason.clone(),
            ),
            None => ("promoted".to_string(), String::new()),
        };
        let _ = writeln!(body, "<td class=\"l v\">{}</td></tr>", esc(&verdict_text));
        if !why.is_empty() {
            let _ = writeln!(
                body,
                "<tr class=\"why\"><td></td><td class=\"l\" colspan=\"{}\">{}</td></tr>",
                6 + if portfolio { 4 } else { 0 } + stages.len(),
                esc(&why)
            );
        }
    }
    body.push_str("</table>\n");
    body.push_str(&sensitivity_table(verdict));
    for j in verdict
        .candidates
        .iter()
        .filter(|j| !j.null_sharpes.is_empty() || !j.cross_sharpes.is_empty())
    {
        let _ = writeln!(
            body,
            "<h2>#{} {} ({})</h2>",
            j.rank + 1,
            esc(&j.id),
            esc(&j.seed)
        );
        let hold: &[f64] = j.holdout.as_ref().map_or(&[], |h| &h.returns);
        let x: Vec<f64> = j
            .train
            .ts
            .iter()
            .chain(&j.validation.ts)
            .chain(j.holdout.iter().flat_map(|h| &h.ts))
            .map(|&t| t as f64)
            .collect();
        let mut boundaries = Vec::new();
        if let Some(&t) = j.validation.ts.first() {
            boundaries.push((t as f64, "validation".to_string()));
        }
        if let Some(&t) = j.holdout.as_ref().and_then(|h| h.ts.first()) {
            boundaries.push((t as f64, "holdout".to_string()));
        }
        let chart = LineChart {
            title: if portfolio {
                "equity of the account (each segment backtested on its own)".into()
            } else {
                "equity of the coins' equal-weight portfolio (each segment backtested on its own)"
                    .into()
            },
            series: vec![Series {
                name: "equity".into(),
                color: "#0969da",
                x,
                y: compounded(&[&j.train.returns, &j.validation.returns, hold]),
            }],
            boundaries,
            time_axis: true,
            ..LineChart::default()
        };
        body.push_str(&chart.svg());
        let own = j.validation.figures.map_or(f64::NAN, |x| x.sharpe);
        for (copies, what) in [
            (
                &j.cross_sharpes,
                "cross-sectionally shuffled copies (the market's move kept, which coin made it \
                 lost)",
            ),
            (&j.null_sharpes, "return-permuted copies"),
        ] {
            if !copies.is_empty() {
                body.push_str(&histogram(
                    &format!(
                        "validation Sharpe on {} {what}; the candidate's own marked",
                        copies.len()
                    ),
                    copies,
                    30,
                    (own, &format!("candidate {own:.2}")),
                ));
            }
        }
        if !j.validation.regimes.is_empty() {
            body.push_str(
                "<table><tr><th class=\"l\">regime</th><th>train Sharpe</th><th>validation Sharpe</th>\
                 <th>holdout Sharpe</th><th>validation bars</th></tr>\n",
            );
            let find = |v: &[crate::fitness::regime::RegimeFigure], name: &str| {
                v.iter().find(|f| f.regime == name).map(|f| f.sharpe)
            };
            for v in &j.validation.regimes {
                let _ = writeln!(
                    body,
                    "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    v.regime.replace('_', " "),
                    f(find(&j.train.regimes, v.regime)),
                    f(Some(v.sharpe)),
                    f(j.holdout.as_ref().and_then(|h| find(&h.regimes, v.regime))),
                    v.bars
                );
            }
            let p = &j.regime_policy;
            let _ = writeln!(
                body,
                "</table>\n<p class=\"note\">policy from the validation figures (flat where it lost over a month of bars or more): volatility low / normal / high {} / {} / {}; extreme fear / fear / greed / extreme greed {} / {} / {} / {}</p>",
                p.volatility[0], p.volatility[1], p.volatility[2],
                p.sentiment[0], p.sentiment[1], p.sentiment[2], p.sentiment[3]
            );
        }
        body.push_str("<table>");
        for o in &j.stages {
            let _ = writeln!(
                body,
                "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
                o.stage.as_str(),
                if o.passed { "pass" } else { "FAIL" },
                esc(&format!("{} (rule: {})", o.reason, o.rule))
            );
        }
        body.push_str("</table>\n");
    }
    page(title, &body)
}

/// The candidates' Sharpe under other costs and delays (the `costs` stage's figures): one row
/// per candidate and segment.
fn sensitivity_table(verdict: &crate::promotion::gauntlet::Verdict) -> String {
    use crate::promotion::gauntlet::{StageFigures, COST_MULTIPLES, DELAYS, MAX_BREAK_EVEN};
    let mut t = String::from(
        "<h2>Costs and delay</h2>\n<p class=\"note\">Sharpe with the run's fees and slippage \
         scaled, with every decision acted on one or two bars late (at the run's costs), and \
         the multiple of the costs at which it earns nothing.</p>\n<table><tr><th>#</th>\
         <th class=\"l\">id</th><th class=\"l\">segment</th>",
    );
    for m in COST_MULTIPLES {
        let _ = write!(t, "<th>{m}x costs</th>");
    }
    for d in DELAYS {
        let _ = write!(t, "<th>{d} bar{} late</th>", if d == 1 { "" } else { "s" });
    }
    t.push_str("<th>break-even costs</th></tr>\n");
    let mut rows = 0;
    for j in &verdict.candidates {
        let Some(sens) = j.stages.iter().find_map(|o| match &o.figures {
            StageFigures::Costs(c) => c.sensitivity.as_ref(),
            _ => None,
        }) else {
            continue;
        };
        for (name, seg) in [("training", &sens.train), ("validation", &sens.validation)] {
            rows += 1;
            let _ = write!(
                t,
                "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{name}</td>",
                j.rank + 1,
                esc(&j.id)
            );
            for p in seg
                .costs
                .iter()
                .map(|p| p.sharpe)
                .chain(seg.delays.iter().map(|p| p.sharpe))
            {
                let _ = write!(t, "<td>{p:.2}</td>");
            }
            let _ = writeln!(
                t,
                "<td>{}</td></tr>",
                match seg.break_even_multiple {
                    Some(m) => format!("{m:.2}x"),
                    None => format!("&gt; {MAX_BREAK_EVEN}x"),
                }
            );
        }
    }
    t.push_str("</table>\n");
    if rows == 0 {
        return String::new();
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawdown_is_against_the_running_peak() {
        let d = drawdown_series(&[100.0, 110.0, 99.0, 121.0]);
        assert_eq!(d[0], 0.0);
        assert_eq!(d[1], 0.0);
        assert!((d[2] + 0.1).abs() < 1e-12);
        assert_eq!(d[3], 0.0);
    }
}
