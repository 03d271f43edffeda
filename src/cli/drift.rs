//! `organism drift`: the drift ledger of a paper or live session (see
//! `organism::runner::drift`).

use anyhow::Result;
use organism::runner::drift::{self, Ledger};
use serde_json::json;

use super::{format_ts, paper::Where};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub at: Where,
    /// The journal account (default: paper.account; a live session's is live.account).
    #[arg(long, value_name = "A")]
    pub account: Option<String>,
    /// One JSON object: every order and request, the days, the distributions.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let (cfg, mut reg) = a.at.open_existing()?;
    let account = a.account.unwrap_or(cfg.paper.account);
    let ledger = drift::ledger(reg.connection(), &account)?;
    let dist = ledger.distributions();
    let (booked, venue) = ledger.funding();
    if a.json {
        outln!(
            "{}",
            json!({
                "account": ledger.account,
                "model": {"fee": ledger.fee, "slippage": ledger.slippage},
                "matching_slippage": ledger.matching_slippage(),
                "excess_slippage_bps": ledger.total().bps(),
                "funding": {"booked": booked, "venue": venue},
                "distributions": dist,
                "days": ledger.days,
                "orders": ledger.orders,
                "requests": ledger.requests,
            })
        );
        return Ok(());
    }
    print(&ledger, &dist);
    Ok(())
}

fn print(l: &Ledger, dist: &std::collections::BTreeMap<&'static str, drift::Dist>) {
    if l.orders.is_empty() && l.requests.is_empty() {
        outln!(
            "account `{}` has no orders in its journal yet: nothing to compare with the model",
            l.account
        );
        return;
    }
    outln!(
        "drift of account `{}`: {} orders filled, {} exchange requests, on {} days; model: \
         taker fee {:.2} bps, slippage {:.2} bps (the latest session's costs)",
        l.account,
        l.orders.len(),
        l.requests.len(),
        l.days.len(),
        l.fee * 1e4,
        l.slippage * 1e4
    );
    outln!();
    outln!(
        "{:<22} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "",
        "n",
        "mean",
        "p10",
        "median",
        "p90"
    );
    for (key, label) in [
        ("slippage_bps", "slippage (bps)"),
        ("excess_slippage_bps", "  beyond model (bps)"),
        ("fee_bps", "fee (bps)"),
        ("excess_fee_bps", "  beyond model (bps)"),
        ("latency_ms", "latency (ms)"),
    ] {
        let d = dist[key];
        if d.n == 0 {
            outln!("{label:<22} {:>6}", 0);
            continue;
        }
        outln!(
            "{label:<22} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            d.n,
            d.mean,
            d.p10,
            d.median,
            d.p90
        );
    }
    let count = |o: drift::Outcome| l.requests.iter().filter(|r| r.outcome == o).count();
    if !l.requests.is_empty() {
        outln!(
            "requests: {} filled, {} partial, {} rejected, {} answered with no fill, {} never \
             answered",
            count(drift::Outcome::Filled),
            count(drift::Outcome::Partial),
            count(drift::Outcome::Rejected),
            count(drift::Outcome::Unfilled),
            count(drift::Outcome::Unanswered)
        );
    }
    outln!();
    outln!(
        "{:<10} {:>6} {:>7} {:>6} {:>11} {:>11} {:>11} {:>10} {:>10} {:>12} {:>10} {:>8}",
        "day",
        "orders",
        "partial",
        "missed",
        "excess bps",
        "slip extra",
        "fee extra",
        "funding",
        "venue fund",
        "equity drift",
        "other",
        "lat ms"
    );
    let opt = |x: Option<f64>, p: usize| x.map_or("-".to_string(), |v| format!("{v:.p$}"));
    for d in &l.days {
        outln!(
            "{:<10} {:>6} {:>7} {:>6} {:>11} {:>11.2} {:>11.2} {:>10.2} {:>10} {:>12.2} {:>10.2} {:>8}",
            &format_ts(d.day_ms)[..10],
            d.orders,
            d.partial,
            d.missed,
            opt(d.excess_bps, 2),
            d.slippage_excess,
            d.fee_excess,
            d.funding,
            opt(d.venue_funding, 2),
            d.equity_drift,
            d.other,
            opt(d.latency_ms, 0)
        );
    }
    outln!();
    let (booked, venue) = l.funding();
    match venue {
        Some(v) => outln!(
            "funding: the books booked {booked:.2}, the exchange {v:.2} (difference {:.2})",
            v - booked
        ),
        None => {
            outln!("funding: the books booked {booked:.2} (no exchange funding journaled: paper)")
        }
    }
    if let Some(s) = l.matching_slippage() {
        outln!(
            "the slippage setting that would have matched these fills: costs.slippage = {:.6} \
             (the model's: {})",
            s.max(0.0),
            l.slippage
        );
    }
}
