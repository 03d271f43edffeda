//! The drift ledger: how far a session's fills stray from the model that promoted its
//! strategies.
//!
//! Each order a book sent is set against the fill the backtest's own rule gives that very order
//! ([`simulated_fill`]: its reference price moved by the session's slippage, the session's taker
//! fee) — the model every backtest, and so every promotion, assumed. Everything is read from the
//! journal:
//!
//! - an order's `order` row (side, size, reference price) and its `fill` rows (the venue's
//!   prices and fees; on paper the simulated venue's own, so paper drifts by exactly nothing),
//!   with the costs of the `session` row in force when it was sent;
//! - live, each exchange request's `intent` and `ack` rows: the size sent and the size filled
//!   (partial and missed fills) and when each row was written (the latency from the decision,
//!   written just before the request is signed, to the exchange's answer). Trigger orders that
//!   rest on the exchange (stop-loss, take-profit) are left out of the requests: their wait is
//!   the market's, not the venue's;
//! - live, the exchange's own funding payments (`venue-funding` rows, read at each
//!   reconciliation) against the funding the books booked by the model's rule;
//! - the books' `equity` rows: each day's change of equity against the change of the replay of
//!   the same bars through the backtest engine (no risk interventions), which the per-order
//!   slippage and fee excess explain in part; the rest ("other") is what positions of other
//!   sizes (partial and missed fills), funding on them and risk interventions did.
//!
//! The same per-order arithmetic ([`OrderDrift::of`]) feeds the session's lifecycle, which
//! retires a strategy whose fills drift past `paper.max_fill_drift_bps`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::journal::{self, Entry, EquityRow, FillRow, JournalError, OrderRow, Row};
use crate::{
    exchange::hyperliquid::adapter::AckRow,
    execution::{simulated_fill, Costs, Order, OrderSide},
    fitness::quantile,
    market::membership::DAY_MS,
};

/// One order against the model's fill of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrderDrift {
    pub book: String,
    /// The bar it was decided at (open time, ms).
    pub bar_ts: i64,
    pub id: u64,
    pub side: OrderSide,
    /// Coins asked and filled.
    pub qty: f64,
    pub filled: f64,
    /// The price the engine decided at.
    pub reference: f64,
    /// The venue's average fill price and its fees.
    pub price: f64,
    pub fee: f64,
    /// The model's fill price of the order and its fee on the size filled.
    pub model_price: f64,
    pub model_fee: f64,
    /// Adverse slippage from the reference, the venue's and the model's, basis points.
    pub slippage_bps: f64,
    pub model_slippage_bps: f64,
    /// Fee over notional, the venue's and the model's, basis points.
    pub fee_bps: f64,
    pub model_fee_bps: f64,
    /// What the venue's price cost beyond the model's on the size filled, and its fee beyond
    /// the model's (money; negative when the venue did better).
    pub slippage_excess: f64,
    pub fee_excess: f64,
}

impl OrderDrift {
    /// `order` (its row) and its fills against the model of `costs`; `None` when nothing filled.
    pub fn of(
        book: &str,
        bar_ts: i64,
        order: &OrderRow,
        fills: &[FillRow],
        costs: Costs,
    ) -> Option<Self> {
        let filled: f64 = fills.iter().map(|f| f.qty.0).sum();
        let value: f64 = fills.iter().map(|f| f.qty.0 * f.price.0).sum();
        let fee: f64 = fills.iter().map(|f| f.fee.0).sum();
        if filled <= 0.0 || value <= 0.0 {
            return None;
        }
        // The average price (one fill's own, not its size times price over its size).
        let price = match fills {
            [one] => one.price.0,
            _ => value / filled,
        };
        let reference = order.reference_price.0;
        let model = simulated_fill(
            &costs,
            &Order {
                side: order.side,
                qty: filled,
                price: reference,
            },
        );
        let sign = order.side.sign();
        let bps = |p: f64| sign * (p / reference - 1.0) * 1e4;
        Some(Self {
            book: book.to_string(),
            bar_ts,
            id: order.id,
            side: order.side,
            qty: order.qty.0,
            filled,
            reference,
            price,
            fee,
            model_price: model.price,
            model_fee: model.fee,
            slippage_bps: bps(price),
            model_slippage_bps: bps(model.price),
            fee_bps: fee / value * 1e4,
            model_fee_bps: model.fee / (filled * model.price) * 1e4,
            slippage_excess: sign * (price - model.price) * filled,
            fee_excess: fee - model.fee,
        })
    }

    /// Notional filled at the venue's price.
    pub fn notional(&self) -> f64 {
        self.filled * self.price
    }

    /// The venue's slippage beyond the model's, basis points.
    pub fn excess_bps(&self) -> f64 {
        self.slippage_bps - self.model_slippage_bps
    }
}

/// Pairs `order` rows with the `fill` rows that follow them (a fill carries its order's id,
/// within its book), in journal order.
#[derive(Debug, Default)]
pub struct Orders {
    open: Vec<(String, i64, OrderRow, Vec<FillRow>, Costs)>,
    index: BTreeMap<(String, u64), usize>,
}

impl Orders {
    /// Takes `e` if it is an order or a fill; orders are judged against `costs`.
    pub fn push(&mut self, e: &Entry, costs: Costs) {
        match &e.row {
            Row::Order(o) => {
                self.index.insert((e.book.clone(), o.id), self.open.len());
                self.open
                    .push((e.book.clone(), e.bar_ts, o.clone(), Vec::new(), costs));
            }
            Row::Fill(f) => {
                if let Some(&i) = self.index.get(&(e.book.clone(), f.id)) {
                    self.open[i].3.push(f.clone());
                }
            }
            _ => {}
        }
    }

    /// The orders taken, each against the model (orders with no fill left out).
    pub fn finish(self) -> Vec<OrderDrift> {
        self.open
            .iter()
            .filter_map(|(book, ts, o, fills, costs)| OrderDrift::of(book, *ts, o, fills, *costs))
            .collect()
    }
}

/// A strategy's fills against the model so far: what the lifecycle judges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct FillDrift {
    pub orders: usize,
    /// Notional filled, and the sum of each order's excess slippage (bps) times its notional.
    pub notional: f64,
    pub excess: f64,
}

impl FillDrift {
    pub fn add(&mut self, o: &OrderDrift) {
        self.orders += 1;
        self.notional += o.notional();
        self.excess += o.excess_bps() * o.notional();
    }

    /// The notional-weighted mean excess slippage, basis points (`None` before any fill).
    pub fn bps(&self) -> Option<f64> {
        (self.notional > 0.0).then(|| self.excess / self.notional)
    }

    pub fn is_empty(&self) -> bool {
        self.orders == 0
    }
}

/// How an exchange request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Filled,
    Partial,
    /// Refused by the exchange.
    Rejected,
    /// Answered with nothing filled.
    Unfilled,
    /// Never answered (the journal has its intent only).
    Unanswered,
}

impl Outcome {
    fn missed(self) -> bool {
        matches!(self, Self::Rejected | Self::Unfilled | Self::Unanswered)
    }
}

/// One exchange request (a cloid): live only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Request {
    pub book: String,
    pub bar_ts: i64,
    pub cloid: String,
    /// Size sent and filled, as the exchange reads them.
    pub sent: String,
    pub filled: String,
    pub outcome: Outcome,
    /// From the first intent row (written just before signing) to the answer's row.
    pub latency_ms: Option<i64>,
}

/// A distribution's summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Dist {
    pub n: usize,
    pub mean: f64,
    pub p10: f64,
    pub median: f64,
    pub p90: f64,
}

impl Dist {
    pub fn of(x: &[f64]) -> Self {
        let n = x.len();
        Self {
            n,
            mean: if n == 0 {
                f64::NAN
            } else {
                x.iter().sum::<f64>() / n as f64
            },
            p10: quantile(x, 0.1),
            median: quantile(x, 0.5),
            p90: quantile(x, 0.9),
        }
    }
}

/// One UTC day of the ledger (by the bars' open times).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Day {
    /// The day's first millisecond.
    pub day_ms: i64,
    pub orders: usize,
    pub requests: usize,
    pub partial: usize,
    pub missed: usize,
    /// Notional-weighted mean excess slippage, bps (`None` without fills).
    pub excess_bps: Option<f64>,
    pub slippage_excess: f64,
    pub fee_excess: f64,
    /// Funding the books booked (the bar's rate on the position held: the model's rule), and,
    /// live, what the exchange booked on the account (`None` on paper).
    pub funding: f64,
    pub venue_funding: Option<f64>,
    /// The books' change of equity less the replay's; and what the slippage and fee excess do
    /// not explain of it.
    pub equity_drift: f64,
    pub other: f64,
    pub latency_ms: Option<f64>,
}

/// The whole ledger of one journal account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ledger {
    pub account: String,
    /// The model's costs (the latest session's).
    pub fee: f64,
    pub slippage: f64,
    pub orders: Vec<OrderDrift>,
    pub requests: Vec<Request>,
    pub days: Vec<Day>,
}

impl Ledger {
    /// The slippage setting (`costs.slippage`, a fraction) under which the model's fills would
    /// have cost what the venue's did: the venue's notional-weighted mean adverse slippage.
    pub fn matching_slippage(&self) -> Option<f64> {
        let notional: f64 = self.orders.iter().map(OrderDrift::notional).sum();
        (notional > 0.0).then(|| {
            let w: f64 = self
                .orders
                .iter()
                .map(|o| o.slippage_bps * o.notional())
                .sum();
            w / notional / 1e4
        })
    }

    /// The funding the books booked and, live, what the exchange booked (`None` on paper).
    pub fn funding(&self) -> (f64, Option<f64>) {
        let booked = self.days.iter().map(|d| d.funding).sum();
        let venue = self
            .days
            .iter()
            .map(|d| d.venue_funding)
            .sum::<Option<f64>>();
        (booked, venue)
    }

    /// Every order's drift, as [`FillDrift`].
    pub fn total(&self) -> FillDrift {
        let mut d = FillDrift::default();
        for o in &self.orders {
            d.add(o);
        }
        d
    }

    /// The distributions: venue slippage, its excess, fee, fee excess (bps) and latency (ms).
    pub fn distributions(&self) -> BTreeMap<&'static str, Dist> {
        let of =
            |f: fn(&OrderDrift) -> f64| Dist::of(&self.orders.iter().map(f).collect::<Vec<_>>());
        let latency: Vec<f64> = self
            .requests
            .iter()
            .filter_map(|r| r.latency_ms.map(|x| x as f64))
            .collect();
        BTreeMap::from([
            ("slippage_bps", of(|o| o.slippage_bps)),
            ("excess_slippage_bps", of(OrderDrift::excess_bps)),
            ("fee_bps", of(|o| o.fee_bps)),
            ("excess_fee_bps", of(|o| o.fee_bps - o.model_fee_bps)),
            ("latency_ms", Dist::of(&latency)),
        ])
    }
}

/// An exchange request as its rows tell it: its book and bar, the size sent (the last
/// attempt's), when its first intent was written, and its answer with when it was written.
struct Asked {
    book: String,
    bar_ts: i64,
    sent: String,
    at: i64,
    answer: Option<(i64, AckRow)>,
}

/// The drift ledger of journal `account`.
///
/// # Errors
/// [`JournalError`] when the journal cannot be read.
pub fn ledger(conn: &rusqlite::Connection, account: &str) -> Result<Ledger, JournalError> {
    let rows = journal::entries_written(conn, account)?;
    let mut costs = Costs {
        fee: f64::NAN,
        slippage: f64::NAN,
    };
    let mut orders = Orders::default();
    let mut asked: BTreeMap<String, Asked> = BTreeMap::new();
    let mut order_of: Vec<String> = Vec::new();
    // Per day: funding; the books' last (equity, replay), and the totals at each day's end.
    let mut funding: BTreeMap<i64, f64> = BTreeMap::new();
    let mut venue_funding: BTreeMap<i64, f64> = BTreeMap::new();
    let mut venue_reported = false;
    let mut marks: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut base: Option<(f64, f64)> = None;
    let mut day_end: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    let day = |ts: i64| ts.div_euclid(DAY_MS) * DAY_MS;
    for (_, written, e) in &rows {
        match &e.row {
            Row::Session(s) => {
                costs = Costs {
                    fee: s.fee,
                    slippage: s.slippage,
                }
            }
            Row::Order(_) | Row::Fill(_) => orders.push(e, costs),
            Row::Funding(f) => *funding.entry(day(e.bar_ts)).or_default() += f.amount.0,
            Row::VenueFunding(v) => {
                venue_reported = true;
                *venue_funding.entry(day(e.bar_ts)).or_default() +=
                    rust_decimal::prelude::ToPrimitive::to_f64(&v.usdc).unwrap_or(f64::NAN);
            }
            Row::Equity(EquityRow::Book(b)) => {
                let first = marks
                    .insert(e.book.clone(), (b.equity.0, b.replay_equity.0))
                    .is_none();
                let total = marks
                    .values()
                    .fold((0.0, 0.0), |t, m| (t.0 + m.0, t.1 + m.1));
                // The books' starts are the base; a book that joins later starts its paper and
                // replay equity at the same cash, which cancels in the day's drift.
                if first && day_end.is_empty() {
                    base = Some(total);
                } else {
                    day_end.insert(day(e.bar_ts), total);
                }
            }
            Row::Intent(i) => {
                let entry = asked.entry(i.cloid.clone()).or_insert_with(|| {
                    order_of.push(i.cloid.clone());
                    Asked {
                        book: e.book.clone(),
                        bar_ts: e.bar_ts,
                        sent: i.sz.clone(),
                        at: *written,
                        answer: None,
                    }
                });
                entry.sent.clone_from(&i.sz);
            }
            Row::Ack(a) => {
                let cloid = match a {
                    AckRow::Done { cloid, .. } | AckRow::Rejected { cloid, .. } => cloid,
                };
                if let Some(x) = asked.get_mut(cloid) {
                    if x.answer.is_none() {
                        x.answer = Some((*written, a.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    let mut requests = Vec::new();
    for cloid in order_of {
        let Some(Asked {
            book,
            bar_ts,
            sent,
            at,
            answer,
        }) = asked.remove(&cloid)
        else {
            continue;
        };
        let (outcome, filled, latency) = match &answer {
            None => (Outcome::Unanswered, "0".to_string(), None),
            Some((_, AckRow::Done { how, .. })) if how == "resting" => continue,
            Some((w, AckRow::Rejected { .. })) => (Outcome::Rejected, "0".into(), Some(w - at)),
            Some((w, AckRow::Done { qty, .. })) => {
                let sz: rust_decimal::Decimal = sent.parse().unwrap_or_default();
                let outcome = if qty.is_zero() {
                    Outcome::Unfilled
                } else if *qty < sz {
                    Outcome::Partial
                } else {
                    Outcome::Filled
                };
                (outcome, qty.normalize().to_string(), Some(w - at))
            }
        };
        requests.push(Request {
            book,
            bar_ts,
            cloid,
            sent,
            filled,
            outcome,
            latency_ms: latency,
        });
    }
    let orders = orders.finish();
    // The days: every day with an order, a request, funding or an equity mark.
    let mut days: BTreeMap<i64, Day> = BTreeMap::new();
    let blank = |d: i64| Day {
        day_ms: d,
        orders: 0,
        requests: 0,
        partial: 0,
        missed: 0,
        excess_bps: None,
        slippage_excess: 0.0,
        fee_excess: 0.0,
        funding: 0.0,
        venue_funding: None,
        equity_drift: 0.0,
        other: 0.0,
        latency_ms: None,
    };
    let mut excess: BTreeMap<i64, FillDrift> = BTreeMap::new();
    for o in &orders {
        let d = days
            .entry(day(o.bar_ts))
            .or_insert_with(|| blank(day(o.bar_ts)));
        d.orders += 1;
        d.slippage_excess += o.slippage_excess;
        d.fee_excess += o.fee_excess;
        excess.entry(d.day_ms).or_default().add(o);
    }
    let mut latency: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for r in &requests {
        let d = days
            .entry(day(r.bar_ts))
            .or_insert_with(|| blank(day(r.bar_ts)));
        d.requests += 1;
        d.partial += usize::from(r.outcome == Outcome::Partial);
        d.missed += usize::from(r.outcome.missed());
        if let Some(l) = r.latency_ms {
            latency.entry(d.day_ms).or_default().push(l as f64);
        }
    }
    for (&d, &f) in &funding {
        days.entry(d).or_insert_with(|| blank(d)).funding = f;
    }
    for &d in venue_funding.keys() {
        days.entry(d).or_insert_with(|| blank(d));
    }
    let mut prev = base.unwrap_or((0.0, 0.0));
    for (&d, &(eq, rep)) in &day_end {
        let x = days.entry(d).or_insert_with(|| blank(d));
        x.equity_drift = (eq - prev.0) - (rep - prev.1);
        prev = (eq, rep);
    }
    for d in days.values_mut() {
        d.excess_bps = excess.get(&d.day_ms).and_then(FillDrift::bps);
        d.latency_ms = latency.get(&d.day_ms).map(|l| quantile(l, 0.5));
        d.other = d.equity_drift + d.slippage_excess + d.fee_excess;
        if venue_reported {
            d.venue_funding = Some(venue_funding.get(&d.day_ms).copied().unwrap_or(0.0));
        }
    }
    Ok(Ledger {
        account: account.to_string(),
        fee: costs.fee,
        slippage: costs.slippage,
        orders,
        requests,
        days: days.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::journal::Money;

    fn fill(id: u64, qty: f64, price: f64, fee: f64) -> FillRow {
        FillRow {
            fee: Money(fee),
            id,
            notional: Money(qty * price),
            price: Money(price),
            qty: Money(qty),
            side: OrderSide::Buy,
        }
    }

    fn order(id: u64, side: OrderSide, qty: f64, reference: f64) -> OrderRow {
        OrderRow {
            id,
            qty: Money(qty),
            reference_price: Money(reference),
            side,
            order_type: "market".into(),
        }
    }

    const COSTS: Costs = Costs {
        fee: 0.001,
        slippage: 0.0005,
    };

    #[test]
    fn an_order_is_set_against_the_models_fill_of_it() {
        // Buy 2 at reference 100, filled 1 at 100.2 and 1 at 100.4 with fees 0.1 each: average
        // 100.3, 30 bps of slippage; the model fills at 100.05 (5 bps) with fee 0.2001.
        let o = OrderDrift::of(
            "s/BTC",
            7,
            &order(3, OrderSide::Buy, 2.0, 100.0),
            &[fill(3, 1.0, 100.2, 0.1), fill(3, 1.0, 100.4, 0.1)],
            COSTS,
        )
        .unwrap();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(near(o.price, 100.3));
        assert!(near(o.slippage_bps, 30.0), "{}", o.slippage_bps);
        assert!(near(o.model_price, 100.05));
        assert!(near(o.model_slippage_bps, 5.0));
        assert!(near(o.excess_bps(), 25.0));
        // (100.3 − 100.05) · 2 paid beyond the model; 0.2 − 0.2001 of fee.
        assert!(near(o.slippage_excess, 0.5));
        assert!(near(o.fee_excess, -0.0001));
        assert!(near(o.fee_bps, 0.2 / 200.6 * 1e4));
        assert!(near(o.model_fee_bps, 10.0));
        // A sell's adverse slippage is below the reference: 99.9 is 10 bps against it.
        let s = OrderDrift::of(
            "s/BTC",
            7,
            &order(4, OrderSide::Sell, 1.0, 100.0),
            &[FillRow {
                side: OrderSide::Sell,
                ..fill(4, 1.0, 99.9, 0.0)
            }],
            COSTS,
        )
        .unwrap();
        assert!(near(s.slippage_bps, 10.0));
        assert!(near(s.excess_bps(), 5.0));
        assert!(near(s.slippage_excess, 0.05));
        // Nothing filled: nothing to compare.
        assert!(OrderDrift::of(
            "s/BTC",
            7,
            &order(5, OrderSide::Buy, 1.0, 100.0),
            &[],
            COSTS
        )
        .is_none());
    }

    #[test]
    fn fills_join_their_own_books_order_and_the_mean_weighs_by_notional() {
        let mut orders = Orders::default();
        let e = |book: &str, row: Row| Entry::new(book, 0, row);
        // Two books whose orders share id 1.
        orders.push(
            &e("a/BTC", order(1, OrderSide::Buy, 1.0, 100.0).into()),
            COSTS,
        );
        orders.push(
            &e("b/ETH", order(1, OrderSide::Buy, 3.0, 10.0).into()),
            COSTS,
        );
        orders.push(&e("b/ETH", fill(1, 3.0, 10.02, 0.0).into()), COSTS);
        orders.push(&e("a/BTC", fill(1, 1.0, 100.05, 0.0).into()), COSTS);
        let done = orders.finish();
        assert_eq!(done.len(), 2);
        assert_eq!((done[0].book.as_str(), done[0].filled), ("a/BTC", 1.0));
        assert_eq!((done[1].book.as_str(), done[1].filled), ("b/ETH", 3.0));
        let mut d = FillDrift::default();
        done.iter().for_each(|o| d.add(o));
        // a: 5 bps, exactly the model's (excess 0) on 100.05; b: 20 bps, 15 beyond, on 30.06.
        let want = 15.0 * 30.06 / (100.05 + 30.06);
        assert!((d.bps().unwrap() - want).abs() < 1e-9, "{:?}", d.bps());
        assert_eq!(d.orders, 2);
        assert_eq!(FillDrift::default().bps(), None);
    }

    #[test]
    fn distributions_summarise_with_the_gauntlets_quantile() {
        let d = Dist::of(&[4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!((d.n, d.mean, d.median), (5, 3.0, 3.0));
        // Linear between order statistics: 0.1 · 4 = 0.4 of the way from 1 to 2.
        assert!((d.p10 - 1.4).abs() < 1e-12);
        assert!((d.p90 - 4.6).abs() < 1e-12);
        assert_eq!(Dist::of(&[]).n, 0);
    }
}
