//! The paper venue: a book's ledger (the [simulated venue](super::SimulatedVenue)'s cash,
//! position and funding, the very same code, not a copy), the [`ExecutionClient`] its orders go
//! to, and a record of every order, fill and funding payment so the runner can journal them.
//!
//! Each order goes to the client as a command and its fills come back as events, booked with
//! the simulated venue's ledger rule ([`SimulatedVenue::book`]) as they arrive. On paper the
//! client is [`PaperClient`], which fills as the simulated venue does, so paper trading books
//! exactly what a backtest books; linked (live trading), it is the Hyperliquid adapter. Each
//! order carries an intent name (the bar, the phase and its number within them) that is the
//! same when a restart replays the same decisions, so a live client can recognise an order it
//! already sent.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    simulated_fill, Ack, Costs, ExitReason, Fill, Order, OrderId, Side, SimulatedVenue, Venue,
    VenueError,
};

/// What the paper venue did, in order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum VenueEvent {
    /// An order was sent.
    Order { id: u64, order: Order },
    /// It was filled.
    Fill { id: u64, fill: Fill },
    /// Funding was booked for the held position (received when positive).
    Funding { amount: f64 },
}

/// A command to an [`ExecutionClient`]: send `order` for `book` on `coin`.
#[derive(Debug, Clone, Copy)]
pub struct SubmitOrder<'a> {
    pub book: &'a str,
    pub coin: &'a str,
    /// The book's running number for it (its client order id; the paper venue's order id).
    pub number: u64,
    /// Unique within the book, and the same when a restart replays the same decision: a live
    /// order's cloid derives from it.
    pub intent: Intent,
    pub order: Order,
}

/// One fill of a submitted order, as the client reports it back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FillEvent {
    /// The venue's order id (an IOC order's remainder is an order of its own).
    pub id: u64,
    pub fill: Fill,
}

/// Where a book's orders go, in the shape of nautilus_trader's `ExecutionClient`: an order goes
/// out as a command, and its fills come back as events. Implemented by the paper client
/// ([`PaperClient`], the simulated venue's fills) and the Hyperliquid adapter (live); the
/// [paper venue](PaperVenue) drives either the same way.
pub trait ExecutionClient: Send + Sync {
    /// Sends `cmd`'s market order. Returns no fill: each fill is passed to `on_fill` as it
    /// comes back (an order filled in part, then its remainder's), and the call returns once
    /// the order is done (filled, or what did not fill is cancelled).
    ///
    /// # Errors
    /// [`VenueError`] when nothing filled; no fill was then reported.
    fn submit_order(
        &self,
        cmd: &SubmitOrder<'_>,
        on_fill: &mut dyn FnMut(FillEvent),
    ) -> Result<(), VenueError>;

    /// Places `stops` as reduce-only trigger orders resting on the exchange (idempotent: the
    /// same `stops.intent` after a restart finds the orders it placed).
    ///
    /// # Errors
    /// [`VenueError`] when they do not rest; the engine then watches each bar's range for
    /// them, as on paper.
    fn place_stops(&self, book: &str, coin: &str, stops: &Stops) -> Result<(), VenueError> {
        let _ = (book, coin, stops);
        Err(VenueError::NotSent(
            "this venue keeps no resting stops".into(),
        ))
    }

    /// Whether one of `stops` filled: why, its order id and its fill (the other is then
    /// withdrawn). `Ok(None)` while both rest.
    ///
    /// # Errors
    /// [`VenueError`] when the exchange cannot be asked.
    fn stop_fill(
        &self,
        book: &str,
        coin: &str,
        stops: &Stops,
    ) -> Result<Option<(ExitReason, u64, Fill)>, VenueError> {
        let _ = (book, coin, stops);
        Ok(None)
    }

    /// Withdraws `stops`; returns the fill of one that filled before it could be withdrawn.
    ///
    /// # Errors
    /// [`VenueError`] when the exchange cannot be asked.
    fn cancel_stops(
        &self,
        book: &str,
        coin: &str,
        stops: &Stops,
    ) -> Result<Option<(ExitReason, u64, Fill)>, VenueError> {
        let _ = (book, coin, stops);
        Ok(None)
    }
}

/// A position's stop-loss and take-profit resting on the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stops {
    /// The position's side (the orders close it).
    pub side: Side,
    /// Its size, coins.
    pub qty: f64,
    pub stop: Option<f64>,
    pub take: Option<f64>,
    /// The intent they were placed under: their cloids derive from it.
    pub intent: Intent,
}

/// The paper execution client: every market order fills at once at its reference price with
/// the costs' slippage and fee ([`simulated_fill`], as the simulated venue fills it), under
/// the book's own number.
#[derive(Debug, Clone, Copy)]
pub struct PaperClient {
    pub costs: Costs,
}

impl ExecutionClient for PaperClient {
    fn submit_order(
        &self,
        cmd: &SubmitOrder<'_>,
        on_fill: &mut dyn FnMut(FillEvent),
    ) -> Result<(), VenueError> {
        on_fill(FillEvent {
            id: cmd.number,
            fill: simulated_fill(&self.costs, &cmd.order),
        });
        Ok(())
    }
}

/// Where a live book's orders go.
#[derive(Clone)]
pub struct Link {
    pub executor: Arc<dyn ExecutionClient>,
    pub book: String,
    pub coin: String,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("book", &self.book)
            .field("coin", &self.coin)
            .finish_non_exhaustive()
    }
}

/// What an order is sent for: a bar's decisions or the kill switch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// No order yet (a venue that has not begun a bar; written as `""`).
    #[default]
    #[serde(rename = "")]
    Idle,
    Bar,
    Kill,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "",
            Self::Bar => "bar",
            Self::Kill => "kill",
        }
    }
}

/// One order's intent: the bar it belongs to, its phase and its number within them. Its name
/// ([`Display`](std::fmt::Display): `phase|ts|seq`, e.g. `bar|1796616000000|0`, or
/// `kill|ts|residue SIZE` for the kill switch's order for a position found on the exchange) is
/// a stable encoding: a live order's cloid is derived from it, so the same decision after a
/// restart gets the same cloid. It is only ever written, never parsed back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The bar's open time.
    pub ts: i64,
    pub phase: Phase,
    /// Orders before it in this bar and phase.
    pub seq: u32,
    /// The kill switch's order closing `residue` (the position on the exchange) rather than a
    /// numbered one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residue: Option<rust_decimal::Decimal>,
}

impl Intent {
    /// The `seq`-th order of `phase` in bar `ts`.
    pub fn new(ts: i64, phase: Phase, seq: u32) -> Self {
        Self {
            ts,
            phase,
            seq,
            residue: None,
        }
    }
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.residue {
            Some(held) => write!(f, "{}|{}|residue {held}", self.phase.as_str(), self.ts),
            None => write!(f, "{}|{}|{}", self.phase.as_str(), self.ts, self.seq),
        }
    }
}

/// The paper venue (see the module documentation). Its state is the simulated venue's: cash,
/// position and the last order id, and the intent counter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaperVenue {
    sim: SimulatedVenue,
    /// The next order's intent.
    #[serde(default)]
    intents: Intent,
    /// The stops resting on the exchange (live).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stops: Option<Stops>,
    #[serde(skip)]
    link: Option<Link>,
    #[serde(skip)]
    events: Vec<VenueEvent>,
}

impl PartialEq for PaperVenue {
    fn eq(&self, other: &Self) -> bool {
        self.sim == other.sim && self.intents == other.intents && self.stops == other.stops
    }
}

impl PaperVenue {
    /// A paper account with `cash` and `costs`.
    pub fn new(costs: Costs, cash: f64) -> Self {
        Self {
            sim: SimulatedVenue::new(costs, cash),
            intents: Intent::default(),
            stops: None,
            link: None,
            events: Vec::new(),
        }
    }

    /// Sends orders to `link` from now on (live).
    pub fn link(&mut self, link: Link) {
        self.link = Some(link);
    }

    /// Whether orders go to an exchange.
    pub fn is_live(&self) -> bool {
        self.link.is_some()
    }

    /// Orders from now on belong to bar `ts` and `phase`, numbered from 0.
    pub fn begin(&mut self, ts: i64, phase: Phase) {
        self.intents = Intent::new(ts, phase, 0);
    }

    /// The events since the last call.
    pub fn drain(&mut self) -> Vec<VenueEvent> {
        std::mem::take(&mut self.events)
    }

    /// The stops resting on the exchange.
    pub fn stops(&self) -> Option<&Stops> {
        self.stops.as_ref()
    }

    /// Books the fill of resting order `id` of `stops` (a stop-loss or take-profit).
    fn book_stop(&mut self, id: u64, why: ExitReason, stops: Stops, fill: Fill) -> Fill {
        self.sim.book(&fill);
        let level = match why {
            ExitReason::TakeProfit => stops.take,
            _ => stops.stop,
        };
        let order = Order {
            side: stops.side.closing(),
            qty: stops.qty,
            price: level.unwrap_or(fill.price),
        };
        self.events.push(VenueEvent::Order { id, order });
        self.events.push(VenueEvent::Fill { id, fill });
        fill
    }

    /// What the executor said of the resting stops: a fill is booked and ends them; an error
    /// leaves them as they were (asked again at the next bar).
    fn resolve_stops(
        &mut self,
        answer: Result<Option<(ExitReason, u64, Fill)>, VenueError>,
        stops: Stops,
        done: bool,
    ) -> Option<(ExitReason, Fill)> {
        match answer {
            Ok(Some((why, id, fill))) => {
                self.stops = None;
                Some((why, self.book_stop(id, why, stops, fill)))
            }
            Ok(None) => {
                if done {
                    self.stops = None;
                }
                None
            }
            Err(e) => {
                if let Some(l) = &self.link {
                    tracing::warn!(book = l.book, "resting stops: {e}");
                }
                // Refused (gone from the exchange) or withdrawn: no longer resting. Any other
                // error leaves them as they were, asked again at the next bar.
                if done || matches!(e, VenueError::Rejected { .. }) {
                    self.stops = None;
                }
                None
            }
        }
    }
}

impl Venue for PaperVenue {
    fn submit(&mut self, order: &Order) -> Result<Ack, VenueError> {
        let intent = self.intents;
        self.intents.seq += 1;
        let number = self.sim.next_order_id();
        let paper = PaperClient {
            costs: self.sim.costs(),
        };
        let (client, book, coin): (&dyn ExecutionClient, &str, &str) = match &self.link {
            Some(l) => (l.executor.as_ref(), &l.book, &l.coin),
            None => (&paper, "", ""),
        };
        let cmd = SubmitOrder {
            book,
            coin,
            number,
            intent,
            order: *order,
        };
        // Each fill is booked as it comes back; the engine is answered with their sum.
        let (sim, events) = (&mut self.sim, &mut self.events);
        let mut first: Option<Ack> = None;
        let (mut qty, mut value, mut fee) = (0.0, 0.0, 0.0);
        client.submit_order(&cmd, &mut |ev: FillEvent| {
            sim.book(&ev.fill);
            if first.is_none() {
                events.push(VenueEvent::Order {
                    id: ev.id,
                    order: *order,
                });
                first = Some(Ack {
                    id: OrderId(ev.id),
                    fill: ev.fill,
                });
            }
            // Journaled under the order's id (its remainder's venue ids are in the client's
            // own records).
            if let Some(a) = &first {
                events.push(VenueEvent::Fill {
                    id: a.id.0,
                    fill: ev.fill,
                });
            }
            qty += ev.fill.qty;
            value += ev.fill.qty * ev.fill.price;
            fee += ev.fill.fee;
        })?;
        let Some(mut ack) = first else {
            return Err(VenueError::Rejected {
                reason: "nothing filled".into(),
            });
        };
        if qty != ack.fill.qty {
            ack.fill = Fill {
                side: order.side,
                qty,
                price: value / qty,
                fee,
            };
        }
        Ok(ack)
    }
    fn balance(&self) -> f64 {
        self.sim.balance()
    }
    fn book_funding(&mut self, amount: f64) {
        self.sim.book_funding(amount);
        self.events.push(VenueEvent::Funding { amount });
    }
    fn place_stops(&mut self, side: Side, qty: f64, stop: f64, take: f64) -> bool {
        let Some(link) = &self.link else {
            return false;
        };
        if stop.is_nan() && take.is_nan() {
            return false;
        }
        let intent = self.intents;
        self.intents.seq += 1;
        let level = |x: f64| (!x.is_nan()).then_some(x);
        let stops = Stops {
            side,
            qty,
            stop: level(stop),
            take: level(take),
            intent,
        };
        match link.executor.place_stops(&link.book, &link.coin, &stops) {
            Ok(()) => {
                self.stops = Some(stops);
                true
            }
            Err(e) => {
                tracing::warn!(
                    book = link.book,
                    "stops not resting on the exchange ({e}); the session watches each bar's \
                     range for them"
                );
                self.stops = None;
                false
            }
        }
    }
    fn stops_rest(&self) -> bool {
        self.link.is_some() && self.stops.is_some()
    }
    fn stop_filled(&mut self) -> Option<(ExitReason, Fill)> {
        let (Some(link), Some(stops)) = (&self.link, self.stops) else {
            return None;
        };
        let answer = link.executor.stop_fill(&link.book, &link.coin, &stops);
        self.resolve_stops(answer, stops, false)
    }
    fn cancel_stops(&mut self) -> Option<(ExitReason, Fill)> {
        let (Some(link), Some(stops)) = (&self.link, self.stops) else {
            return None;
        };
        let answer = link.executor.cancel_stops(&link.book, &link.coin, &stops);
        self.resolve_stops(answer, stops, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::OrderSide;

    #[test]
    fn books_as_the_simulated_venue_and_records_what_it_did() {
        let costs = Costs {
            fee: 0.001,
            slippage: 0.01,
        };
        let mut p = PaperVenue::new(costs, 1000.0);
        let order = Order {
            side: OrderSide::Buy,
            qty: 2.0,
            price: 100.0,
        };
        let fill = p.submit(&order).expect("a paper order fills at once").fill;
        // 100 · 1.01 = 101; notional 202; fee 0.202.
        assert_eq!(fill.price, 101.0);
        assert!((fill.fee - 0.202).abs() < 1e-12);
        assert!((p.balance() - (1000.0 - 202.0 - 0.202)).abs() < 1e-9);
        assert_eq!(p.sim.position(), 2.0);
        p.book_funding(-1.5);
        let ev = p.drain();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0], VenueEvent::Order { id: 1, order });
        assert_eq!(ev[1], VenueEvent::Fill { id: 1, fill });
        assert_eq!(ev[2], VenueEvent::Funding { amount: -1.5 });
        assert!(p.drain().is_empty());
        // The state survives JSON exactly (the journal's snapshots).
        let back: PaperVenue = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    /// An exchange that fills only half of the first sell.
    struct HalfFirstSell(std::sync::Mutex<bool>);

    impl ExecutionClient for HalfFirstSell {
        fn submit_order(
            &self,
            cmd: &SubmitOrder<'_>,
            on_fill: &mut dyn FnMut(FillEvent),
        ) -> Result<(), VenueError> {
            let order = cmd.order;
            let mut halved = self.0.lock().expect("not poisoned");
            let qty = if order.side == OrderSide::Sell && !*halved {
                *halved = true;
                order.qty / 2.0
            } else {
                order.qty
            };
            on_fill(FillEvent {
                id: 7,
                fill: Fill {
                    side: order.side,
                    qty,
                    price: order.price,
                    fee: 0.0,
                },
            });
            Ok(())
        }
    }

    #[test]
    fn a_linked_book_holds_what_the_exchange_filled_after_a_partial_exit() {
        use crate::execution::{Bar, Engine, EngineConfig, FillMode};
        use crate::strategy::Target;
        let cfg = EngineConfig {
            fill: FillMode::NextOpen,
            fee: 0.0,
            slippage: 0.0,
            cash: 1000.0,
            funding: false,
            ..EngineConfig::default()
        };
        let mut venue = PaperVenue::new(cfg.costs(), cfg.cash);
        venue.link(Link {
            executor: Arc::new(HalfFirstSell(std::sync::Mutex::new(false))),
            book: "s/BTC".into(),
            coin: "BTC".into(),
        });
        let mut e = Engine::new(&cfg, venue);
        let bar = |index: usize, p: f64| Bar {
            index,
            ts: index as i64,
            open: p,
            high: p,
            low: p,
            close: p,
        };
        let (long, flat) = (
            Target {
                position: 0.5,
                stop: None,
                take: None,
            },
            Target {
                position: 0.0,
                stop: None,
                take: None,
            },
        );
        e.step_bar(bar(0, 100.0), 0.0, long);
        e.step_bar(bar(1, 100.0), 0.0, flat);
        // 0.5 · 1000 / 100 = 5 coins bought.
        assert_eq!(e.signed_size(), 5.0);
        e.step_bar(bar(2, 110.0), 0.0, flat);
        // 2.5 sold of 5: the engine, the venue's ledger and the exchange all hold 2.5.
        assert_eq!(e.signed_size(), 2.5);
        assert_eq!(e.venue().sim.position(), 2.5);
        let fills: Vec<f64> = e
            .venue_mut()
            .drain()
            .iter()
            .filter_map(|v| match v {
                VenueEvent::Fill { fill, .. } => Some(fill.side.sign() * fill.qty),
                _ => None,
            })
            .collect();
        assert_eq!(fills, vec![5.0, -2.5], "the journal's fills");
        assert_eq!(e.trades().len(), 1);
        assert_eq!(e.trades()[0].size, 2.5);
        // The rest is sold at the next open.
        e.step_bar(bar(3, 120.0), 0.0, flat);
        assert_eq!(e.signed_size(), 0.0);
        assert_eq!(e.venue().sim.position(), 0.0);
        // 1000 − 500 + 275 + 300.
        assert_eq!(e.venue().balance(), 1075.0);
    }
}
