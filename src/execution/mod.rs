//! The one execution engine: DESIGN.md's per-bar semantics as a sync state machine fed one event
//! at a time. `backtest::run` is a loop over it; the paper and live runners drive the same
//! engine, so the code that was backtested is the code that trades.
//!
//! Events of one bar, in order ([`Engine::step_bar`] sends them for a whole bar):
//!
//! * [`FillMode::NextOpen`] (default): [`Engine::on_open`] (the target of the previous close
//!   is traded at this open), [`Engine::on_funding`], [`Engine::on_range`] (intrabar stop-loss /
//!   take-profit with the bar's high and low), [`Engine::on_close`] (mark, liquidation), then
//!   [`Engine::on_target`] with the target computed from this bar.
//! * [`FillMode::Close`] (vectorbt-compatible): funding, [`Engine::on_target`], then
//!   [`Engine::on_close`], which checks stops on the close and trades the target at it.
//!
//! Rules:
//!
//! * **Targets.** The position follows the target's *side*: a change of side closes the position
//!   and opens the new one; a different fraction on the same side does not resize an open
//!   position (size is set at entry). A target's stop / take-profit levels attach to an entry
//!   made on it and stay fixed for the life of the position.
//! * **Fills and costs.** Orders are market orders sent to a [`Venue`]; the simulated venue fills
//!   them at the event's price with adverse slippage (buys at `price·(1+s)`, sells at
//!   `price·(1−s)`) and charges the taker fee on the notional ([`Costs`]). Entries size all-in net
//!   of fees: `size = (fraction·cash/(1+fee)) / fill`.
//! * **Stops.** Next-open mode checks levels inside each bar: a bar that touches both counts as
//!   the stop (the conservative case); a gap through a level fills at the open. Close mode checks
//!   them on the close (`close < stop` for a long, `close > take`; mirrored for a short), from the
//!   bar after entry. After a stop or take-profit exit the same side is not re-entered until the
//!   target leaves that side.
//! * **Funding.** The position held at a bar's open (after any fill there) pays
//!   `size · open · rate` for the funding of that bar (a long pays a positive rate, a short
//!   receives it).
//! * **Liquidation.** If equity (`cash + size·close`) falls to zero or below, the position is
//!   closed at that close and the engine trades no more.
//!
//! The engine never reads a clock and allocates only when it books a trade.

pub mod paper;
pub mod portfolio;
pub mod risk;
pub mod types;

use serde::{Deserialize, Serialize};

use crate::{
    market::Candles,
    settings::{range, Invalid},
    strategy::Target,
};

/// `[costs]`: what trading costs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostsConfig {
    pub taker_fee: f64,
    pub maker_fee: f64,
    pub slippage: f64,
    pub funding: bool,
}

impl CostsConfig {
    /// Checks every key of the section.
    ///
    /// # Errors
    /// [`Invalid`] naming the first key refused.
    pub fn validate(&self) -> Result<(), Invalid> {
        range("costs.taker_fee", self.taker_fee, 0.0, 0.01)?;
        range("costs.maker_fee", self.maker_fee, -0.001, 0.01)?;
        range("costs.slippage", self.slippage, 0.0, 0.05)
    }
}

/// `[backtest]`: the account a backtest starts with and how it fills.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacktestSection {
    pub cash: f64,
    pub leverage: f64,
    pub maintenance_margin: f64,
    #[serde(deserialize_with = "crate::settings::named")]
    pub fill: FillMode,
    pub coin: String,
}

impl BacktestSection {
    /// Checks every key of the section.
    ///
    /// # Errors
    /// [`Invalid`] naming the first key refused.
    pub fn validate(&self) -> Result<(), Invalid> {
        range("backtest.cash", self.cash, 1e-6, 1e15)?;
        range("backtest.leverage", self.leverage, 1.0, 50.0)?;
        range(
            "backtest.maintenance_margin",
            self.maintenance_margin,
            0.0,
            0.5,
        )?;
        if self.maintenance_margin * self.leverage >= 1.0 {
            return Err(Invalid::new(
                "backtest.maintenance_margin",
                format!(
                    "{} at backtest.leverage {} liquidates every position as it opens (their \
                     product must stay below 1)",
                    self.maintenance_margin, self.leverage
                ),
            ));
        }
        Ok(())
    }
}

/// When orders fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum FillMode {
    /// At the next bar's open (default; no look-ahead by construction).
    #[default]
    NextOpen,
    /// At the signal bar's close (vectorbt-compatible; stops checked on the close).
    Close,
}

impl FillMode {
    /// `next-open` or `close`, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NextOpen => "next-open",
            Self::Close => "close",
        }
    }
}

impl std::str::FromStr for FillMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "next-open" => Ok(Self::NextOpen),
            "close" => Ok(Self::Close),
            other => Err(format!(
                "unknown fill mode `{other}` (expected next-open or close)"
            )),
        }
    }
}

/// Costs and execution settings of one engine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EngineConfig {
    pub fill: FillMode,
    /// Taker fee as a fraction of traded notional (0.00045 = 0.045 %).
    pub fee: f64,
    /// Adverse slippage as a fraction of price.
    pub slippage: f64,
    /// Initial cash.
    pub cash: f64,
    /// Whether funding is charged.
    pub funding: bool,
    /// Notional of a full-size position as a multiple of equity (1 = no leverage): a target of
    /// `x` opens `x × leverage × equity` of notional, the rest borrowed on margin.
    #[serde(default = "one")]
    pub leverage: f64,
    /// Maintenance margin as a fraction of the position's notional: at a close where equity is
    /// at or below it, the position is liquidated there and trading stops (0: at zero equity).
    #[serde(default)]
    pub maintenance_margin: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            fill: FillMode::NextOpen,
            fee: 0.00045,
            slippage: 0.0001,
            cash: 10_000.0,
            funding: true,
            leverage: 1.0,
            maintenance_margin: 0.0,
        }
    }
}

impl EngineConfig {
    /// The same engine with fees and slippage `multiple` times as high (funding unchanged: it
    /// is the market's, not the execution's).
    pub fn costs_scaled(&self, multiple: f64) -> Self {
        Self {
            fee: self.fee * multiple,
            slippage: self.slippage * multiple,
            ..*self
        }
    }

    /// The engine of `[costs]` and `[backtest]`: taker fee, slippage, funding, cash, fill,
    /// leverage and maintenance margin.
    pub fn of(costs: &CostsConfig, backtest: &BacktestSection) -> Self {
        Self {
            fill: backtest.fill,
            fee: costs.taker_fee,
            slippage: costs.slippage,
            cash: backtest.cash,
            funding: costs.funding,
            leverage: backtest.leverage,
            maintenance_margin: backtest.maintenance_margin,
        }
    }

    /// The fee and slippage models of this config.
    pub fn costs(&self) -> Costs {
        Costs {
            fee: self.fee,
            slippage: self.slippage,
        }
    }
}

/// Side of a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Long,
    Short,
}

impl Side {
    /// `+1` for long, `−1` for short.
    pub fn sign(self) -> f64 {
        match self {
            Side::Long => 1.0,
            Side::Short => -1.0,
        }
    }
    /// The side of a signed fraction (`None` for zero and `NaN`).
    pub fn of(x: f64) -> Option<Side> {
        if x > 0.0 {
            Some(Side::Long)
        } else if x < 0.0 {
            Some(Side::Short)
        } else {
            None
        }
    }
    /// `long` or `short`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Long => "long",
            Side::Short => "short",
        }
    }
    /// The order side that opens this side.
    pub fn opening(self) -> OrderSide {
        match self {
            Side::Long => OrderSide::Buy,
            Side::Short => OrderSide::Sell,
        }
    }
    /// The order side that closes this side.
    pub fn closing(self) -> OrderSide {
        match self {
            Side::Long => OrderSide::Sell,
            Side::Short => OrderSide::Buy,
        }
    }
}

/// Direction of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderSide {
    Buy,
    Sell,
}

impl OrderSide {
    /// `+1` for a buy, `−1` for a sell.
    pub fn sign(self) -> f64 {
        match self {
            OrderSide::Buy => 1.0,
            OrderSide::Sell => -1.0,
        }
    }
}

/// Why a trade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitReason {
    Signal,
    StopLoss,
    TakeProfit,
    Liquidation,
    /// Closed by the risk manager or the kill switch (paper and live only).
    Risk,
    /// Still open at the end of the data (marked at the last close, not closed).
    Open,
}

impl ExitReason {
    /// The name used in trade files.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::Signal => "signal",
            ExitReason::StopLoss => "stop-loss",
            ExitReason::TakeProfit => "take-profit",
            ExitReason::Liquidation => "liquidation",
            ExitReason::Risk => "risk",
            ExitReason::Open => "open",
        }
    }
}

/// One round trip (or a position still open at the end).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trade {
    pub side: Side,
    pub entry_bar: usize,
    pub entry_ts: i64,
    /// Fill price including slippage.
    pub entry_price: f64,
    /// Bar of the exit (the last bar for an open trade).
    pub exit_bar: usize,
    pub exit_ts: i64,
    /// Fill price including slippage (the last close for an open trade).
    pub exit_price: f64,
    /// Position size in coins (positive).
    pub size: f64,
    /// Fees paid on entry and exit.
    pub fees: f64,
    /// Net funding received (negative when paid).
    pub funding: f64,
    /// Net PnL: price PnL − fees + funding (unrealized for an open trade, entry fee only).
    pub pnl: f64,
    pub exit_reason: ExitReason,
}

impl Trade {
    /// Hours from entry to exit (to the last bar for an open trade).
    pub fn hours(&self) -> f64 {
        (self.exit_ts - self.entry_ts) as f64 / 3_600_000.0
    }

    /// Net P&L as a fraction of the entry notional.
    pub fn notional_return(&self) -> f64 {
        self.pnl / (self.entry_price * self.size)
    }
}

/// The fee and slippage models: taker fee on notional, adverse slippage on price.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Costs {
    /// Taker fee as a fraction of notional.
    pub fee: f64,
    /// Adverse slippage as a fraction of price.
    pub slippage: f64,
}

impl Costs {
    /// The fill price of a market order of `side` against reference `price`.
    #[inline(always)]
    pub fn fill_price(&self, side: OrderSide, price: f64) -> f64 {
        price * (1.0 + side.sign() * self.slippage)
    }
    /// The fee on `notional`.
    #[inline(always)]
    pub fn fee(&self, notional: f64) -> f64 {
        notional * self.fee
    }
    /// The size an all-in entry of `fraction` of `cash` buys at fill price `fill`.
    #[inline(always)]
    pub fn entry_size(&self, fraction: f64, cash: f64, fill: f64) -> f64 {
        (fraction * cash / (1.0 + self.fee)) / fill
    }
}

/// A market order. `price` is the reference price it is sent against (the bar's open, a stop
/// level or the close); a simulated venue fills at it with slippage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub side: OrderSide,
    /// Size in coins (positive).
    pub qty: f64,
    pub price: f64,
}

/// One execution of an order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fill {
    pub side: OrderSide,
    pub qty: f64,
    /// Execution price, slippage included.
    pub price: f64,
    /// Fee paid.
    pub fee: f64,
}

/// Identifier of an order at a venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(pub u64);

/// What a venue did with an order: its id and the fill (whose size may be short of the
/// order's on a live exchange).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ack {
    pub id: OrderId,
    pub fill: Fill,
}

/// Why a venue filled nothing, kept as the exchange said it: whether the order left, whether
/// its outcome is known, and the exchange's reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VenueError {
    /// Nothing was sent (a local rule or limit refused it, or it could not be signed or
    /// recorded): sending it again is safe.
    #[error("not sent: {0}")]
    NotSent(String),
    /// It was sent and no answer tells what became of it: the venue may have acted on it.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The venue refused it, with the venue's reason.
    #[error("rejected: {reason}")]
    Rejected { reason: String },
    /// The venue was busy (rate limit, server error) and did not act on it: try later.
    #[error("venue busy: {0}")]
    Busy(String),
}

/// Where orders go: the simulated venue here; the paper venue (and through it the Hyperliquid
/// execution adapter) implements the same trait.
pub trait Venue {
    /// Sends a market order: what filled, or why nothing did.
    ///
    /// # Errors
    /// [`VenueError`] when nothing was filled.
    fn submit(&mut self, order: &Order) -> Result<Ack, VenueError>;
    /// Cash balance.
    fn balance(&self) -> f64;
    /// Books funding `amount` (received when positive) for the held position.
    fn book_funding(&mut self, amount: f64);

    /// Places the stop-loss and take-profit of a `side` position of `qty` just entered as
    /// orders resting on the venue (levels `NaN` when absent). True when they rest: the engine
    /// then no longer watches each bar's range for them (next-open fills, live). The simulated
    /// venue rests nothing.
    #[inline(always)]
    fn place_stops(&mut self, _side: Side, _qty: f64, _stop: f64, _take: f64) -> bool {
        false
    }
    /// Whether resting orders protect the position.
    #[inline(always)]
    fn stops_rest(&self) -> bool {
        false
    }
    /// A resting stop-loss or take-profit that filled since they were placed (the other is
    /// then withdrawn): why, and its fill.
    fn stop_filled(&mut self) -> Option<(ExitReason, Fill)> {
        None
    }
    /// Withdraws the resting orders before the position is closed otherwise; returns the fill
    /// of one that filled before it could be withdrawn (the position is then already closed).
    fn cancel_stops(&mut self) -> Option<(ExitReason, Fill)> {
        None
    }
}

/// The one ledger rule, for one coin's position and the account's cash: a buy pays notional
/// and fee, a sell receives notional less fee; the position moves by the signed quantity. The
/// single-coin venue and the [portfolio book](portfolio) both book with it.
#[inline(always)]
pub fn book_fill(cash: &mut f64, position: &mut f64, fill: &Fill) {
    let notional = fill.qty * fill.price;
    match fill.side {
        OrderSide::Buy => *cash -= notional + fill.fee,
        OrderSide::Sell => *cash += notional - fill.fee,
    }
    *position += fill.side.sign() * fill.qty;
}

/// Funding on a signed position of `qty` coins at reference price `price` for a funding rate
/// `rate`: received when positive (a long pays a positive rate, a short receives it). The
/// engine and the portfolio book both charge it.
#[inline(always)]
pub fn funding_amount(qty: f64, price: f64, rate: f64) -> f64 {
    -qty * price * rate
}

/// Fills a market order at its reference price with slippage and the fee ([`Costs`]): what a
/// simulated venue does with every order.
#[inline(always)]
pub fn simulated_fill(costs: &Costs, order: &Order) -> Fill {
    let price = costs.fill_price(order.side, order.price);
    Fill {
        side: order.side,
        qty: order.qty,
        price,
        fee: costs.fee(order.qty * price),
    }
}

/// The simulated venue: every market order fills at once at its reference price with the
/// configured slippage and fee.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedVenue {
    costs: Costs,
    cash: f64,
    position: f64,
    next_id: u64,
}

impl SimulatedVenue {
    pub fn new(costs: Costs, cash: f64) -> Self {
        Self {
            costs,
            cash,
            position: 0.0,
            next_id: 0,
        }
    }

    /// Books a fill into cash and position ([`book_fill`]). The live venue books the
    /// exchange's fills with it.
    #[inline]
    pub fn book(&mut self, fill: &Fill) {
        book_fill(&mut self.cash, &mut self.position, fill);
    }

    /// Numbers the next order.
    #[inline(always)]
    pub fn next_order_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The costs simulated fills pay.
    pub fn costs(&self) -> Costs {
        self.costs
    }

    /// Signed position in coins.
    pub fn position(&self) -> f64 {
        self.position
    }
}

impl Venue for SimulatedVenue {
    #[inline]
    fn submit(&mut self, order: &Order) -> Result<Ack, VenueError> {
        let fill = simulated_fill(&self.costs, order);
        self.book(&fill);
        Ok(Ack {
            id: OrderId(self.next_order_id()),
            fill,
        })
    }
    fn balance(&self) -> f64 {
        self.cash
    }
    #[inline]
    fn book_funding(&mut self, amount: f64) {
        self.cash += amount;
    }
}

/// The open position as the engine books it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Position {
    side: Side,
    entry_bar: usize,
    entry_ts: i64,
    entry_price: f64,
    size: f64,
    fees: f64,
    funding: f64,
    /// Levels; `NaN` = none (never compares true).
    stop: f64,
    take: f64,
}

/// One bar as the engine sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// Bar number from the first bar of the history (0-based).
    pub index: usize,
    /// Open time, UTC ms.
    pub ts: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
}

impl Bar {
    /// Bar `t` of `candles`.
    ///
    /// # Panics
    /// When `t` is past the end.
    #[inline]
    pub fn of(candles: &Candles, t: usize) -> Bar {
        Bar {
            index: t,
            ts: candles.ts[t],
            open: candles.open[t],
            high: candles.high[t],
            low: candles.low[t],
            close: candles.close[t],
        }
    }
}

/// What the engine reads of a bar. Reads are lazy: a step reads the high and low only with a
/// position open and the timestamp only when it books a fill, so a whole-history loop over
/// [`CandleAt`] streams no column it does not need.
pub trait BarView: Copy {
    fn index(self) -> usize;
    fn ts(self) -> i64;
    fn open(self) -> f64;
    fn high(self) -> f64;
    fn low(self) -> f64;
    fn close(self) -> f64;
}

impl BarView for Bar {
    #[inline(always)]
    fn index(self) -> usize {
        self.index
    }
    #[inline(always)]
    fn ts(self) -> i64 {
        self.ts
    }
    #[inline(always)]
    fn open(self) -> f64 {
        self.open
    }
    #[inline(always)]
    fn high(self) -> f64 {
        self.high
    }
    #[inline(always)]
    fn low(self) -> f64 {
        self.low
    }
    #[inline(always)]
    fn close(self) -> f64 {
        self.close
    }
}

/// The open of a bar that has just started (live, [`Engine::step_closed`]): only its index,
/// time and opening price are known, and only they are read (a trade at the open reads no
/// range).
#[derive(Debug, Clone, Copy)]
struct Opening {
    index: usize,
    ts: i64,
    price: f64,
}

impl BarView for Opening {
    fn index(self) -> usize {
        self.index
    }
    fn ts(self) -> i64 {
        self.ts
    }
    fn open(self) -> f64 {
        self.price
    }
    fn high(self) -> f64 {
        self.price
    }
    fn low(self) -> f64 {
        self.price
    }
    fn close(self) -> f64 {
        self.price
    }
}

/// Bar `t` of a candle history, read in place.
#[derive(Debug, Clone, Copy)]
pub struct CandleAt<'a> {
    pub candles: &'a Candles,
    pub t: usize,
}

impl BarView for CandleAt<'_> {
    #[inline(always)]
    fn index(self) -> usize {
        self.t
    }
    #[inline(always)]
    fn ts(self) -> i64 {
        self.candles.ts[self.t]
    }
    #[inline(always)]
    fn open(self) -> f64 {
        self.candles.open[self.t]
    }
    #[inline(always)]
    fn high(self) -> f64 {
        self.candles.high[self.t]
    }
    #[inline(always)]
    fn low(self) -> f64 {
        self.candles.low[self.t]
    }
    #[inline(always)]
    fn close(self) -> f64 {
        self.candles.close[self.t]
    }
}

/// What the engine reads of a target: the position every bar, the levels only at an entry.
/// Levels are `NaN` when absent (inside the engine only); an undefined position is flat.
pub(crate) trait TargetView: Copy {
    fn position(self) -> f64;
    fn stop(self) -> f64;
    fn take(self) -> f64;
}

/// A target as the engine keeps it between events.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pending {
    position: f64,
    stop: f64,
    take: f64,
}

impl Pending {
    const FLAT: Pending = Pending {
        position: 0.0,
        stop: f64::NAN,
        take: f64::NAN,
    };

    fn of(t: Target) -> Self {
        Pending {
            position: t.position,
            stop: t.stop.unwrap_or(f64::NAN),
            take: t.take.unwrap_or(f64::NAN),
        }
    }
}

impl TargetView for Pending {
    #[inline(always)]
    fn position(self) -> f64 {
        self.position
    }
    #[inline(always)]
    fn stop(self) -> f64 {
        self.stop
    }
    #[inline(always)]
    fn take(self) -> f64 {
        self.take
    }
}

/// Bar `t` of whole-history targets, read in place.
#[derive(Clone, Copy)]
pub(crate) struct TargetsAt<'a> {
    pub targets: &'a crate::strategy::Targets,
    pub t: usize,
}

impl TargetView for TargetsAt<'_> {
    #[inline(always)]
    fn position(self) -> f64 {
        self.targets.position[self.t]
    }
    #[inline(always)]
    fn stop(self) -> f64 {
        self.targets.stop[self.t]
    }
    #[inline(always)]
    fn take(self) -> f64 {
        self.targets.take[self.t]
    }
}

/// The open position of an [`EngineState`] (levels `None` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PositionState {
    pub side: Side,
    pub entry_bar: usize,
    pub entry_ts: i64,
    pub entry_price: f64,
    pub size: f64,
    pub fees: f64,
    pub funding: f64,
    pub stop: Option<f64>,
    pub take: Option<f64>,
}

/// Everything an engine carries from one bar to the next, apart from its venue and the trades
/// already booked: what a journal stores so that a restarted runner continues exactly where it
/// stopped. (`f64`s round-trip exactly through JSON: serde_json's `float_roundtrip`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    pub position: Option<PositionState>,
    pub blocked: Option<Side>,
    pub ruined: bool,
    /// The latest target (traded at the next open in next-open mode).
    pub target: Target,
    /// Index and close of the last bar stepped.
    pub last: Option<(usize, f64)>,
    pub bars_in_market: usize,
}

fn level(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

/// The step-driven engine over a venue.
#[derive(Debug, Clone)]
pub struct Engine<V: Venue> {
    fill: FillMode,
    /// Whether funding is charged.
    funding: bool,
    costs: Costs,
    /// See [`EngineConfig::leverage`] and [`EngineConfig::maintenance_margin`].
    leverage: f64,
    maintenance: f64,
    venue: V,
    pos: Option<Position>,
    /// Side whose re-entry is blocked after a stop or take-profit.
    blocked: Option<Side>,
    ruined: bool,
    /// The latest target given by [`Engine::step_bar`] / [`Engine::step_closed`] (traded at
    /// the next open, or at this close in close mode); flat until the first one arrives.
    target: Pending,
    /// Index and close of the last bar stepped (for [`Engine::finish`]).
    last: Option<(usize, f64)>,
    trades: Vec<Trade>,
    bars_in_market: usize,
}

impl Engine<SimulatedVenue> {
    /// An engine over a fresh simulated venue with `cfg`'s costs and cash.
    pub fn simulated(cfg: &EngineConfig) -> Self {
        Engine::new(cfg, SimulatedVenue::new(cfg.costs(), cfg.cash))
    }
}

/// The fill of an order, or `None` when the venue filled nothing: the engine then leaves its
/// books as they were. The simulated venue always fills in whole.
fn filled(ack: Result<Ack, VenueError>) -> Option<Fill> {
    ack.ok().map(|a| a.fill)
}

impl<V: Venue> Engine<V> {
    pub fn new(cfg: &EngineConfig, venue: V) -> Self {
        Self {
            fill: cfg.fill,
            funding: cfg.funding,
            costs: cfg.costs(),
            leverage: cfg.leverage,
            maintenance: cfg.maintenance_margin,
            venue,
            pos: None,
            blocked: None,
            ruined: false,
            target: Pending::FLAT,
            last: None,
            trades: Vec::new(),
            bars_in_market: 0,
        }
    }

    /// The venue.
    pub fn venue(&self) -> &V {
        &self.venue
    }

    /// The venue, to drain what it recorded.
    pub fn venue_mut(&mut self) -> &mut V {
        &mut self.venue
    }

    /// The state to continue from (see [`Engine::restore`]).
    pub fn state(&self) -> EngineState {
        EngineState {
            position: self.pos.map(|p| PositionState {
                side: p.side,
                entry_bar: p.entry_bar,
                entry_ts: p.entry_ts,
                entry_price: p.entry_price,
                size: p.size,
                fees: p.fees,
                funding: p.funding,
                stop: level(p.stop),
                take: level(p.take),
            }),
            blocked: self.blocked,
            ruined: self.ruined,
            target: Target {
                // An undefined position is flat to the engine; JSON has no NaN.
                position: if self.target.position.is_nan() {
                    0.0
                } else {
                    self.target.position
                },
                stop: level(self.target.stop),
                take: level(self.target.take),
            },
            last: self.last,
            bars_in_market: self.bars_in_market,
        }
    }

    /// An engine that continues from `state` over `venue` (whose own state must be the one
    /// saved with it), with no trades booked yet.
    pub fn restore(cfg: &EngineConfig, venue: V, state: &EngineState) -> Self {
        let mut e = Engine::new(cfg, venue);
        e.pos = state.position.map(|p| Position {
            side: p.side,
            entry_bar: p.entry_bar,
            entry_ts: p.entry_ts,
            entry_price: p.entry_price,
            size: p.size,
            fees: p.fees,
            funding: p.funding,
            stop: p.stop.unwrap_or(f64::NAN),
            take: p.take.unwrap_or(f64::NAN),
        });
        e.blocked = state.blocked;
        e.ruined = state.ruined;
        e.target = Pending::of(state.target);
        e.last = state.last;
        e.bars_in_market = state.bars_in_market;
        e
    }

    /// The trades closed since the last call (they leave the engine's list).
    pub fn take_trades(&mut self) -> Vec<Trade> {
        std::mem::take(&mut self.trades)
    }

    /// Closes any open position at `price` (a market order, reason [`ExitReason::Risk`]) and
    /// forgets the pending target, so nothing is traded at the next open. `bar` is the bar the
    /// exit is booked at. The risk manager and the kill switch use this.
    pub fn flatten(&mut self, bar: Bar, price: f64) {
        self.exit(bar, price, ExitReason::Risk);
        self.target = Pending::FLAT;
        self.blocked = None;
    }

    /// Trades closed so far, in entry order.
    pub fn trades(&self) -> &[Trade] {
        &self.trades
    }

    /// Bars at whose close a position was open.
    pub fn bars_in_market(&self) -> usize {
        self.bars_in_market
    }

    /// Signed position size in coins.
    pub fn signed_size(&self) -> f64 {
        self.pos.as_ref().map_or(0.0, |p| p.side.sign() * p.size)
    }

    /// Equity marked at `price`.
    pub fn equity_at(&self, price: f64) -> f64 {
        self.venue.balance() + self.signed_size() * price
    }

    /// Sends all events of one bar in the fill mode's order, then records `target` (the target
    /// computed at this bar's close). `funding` is the rate of the bar's funding events (0 for
    /// none). Returns the equity after the bar.
    #[inline]
    pub fn step_bar(&mut self, bar: Bar, funding: f64, target: Target) -> f64 {
        let target = Pending::of(target);
        match self.fill {
            FillMode::NextOpen => {
                let v = self.step(bar, funding, self.target);
                self.target = target;
                v
            }
            FillMode::Close => {
                self.target = target;
                self.step(bar, funding, target)
            }
        }
    }

    /// [`Engine::step_bar`] for bar `t` of a whole history whose targets are all known: the
    /// bar and the targets are read in place, only as far as the step needs them.
    #[inline(always)]
    pub(crate) fn step_history(
        &mut self,
        candles: &Candles,
        t: usize,
        funding: f64,
        targets: &crate::strategy::Targets,
    ) -> f64 {
        let bar = CandleAt { candles, t };
        match self.fill {
            // The target of the previous close is traded at this open (none before bar 1).
            FillMode::NextOpen if t == 0 => self.step(bar, funding, Pending::FLAT),
            FillMode::NextOpen => self.step(bar, funding, TargetsAt { targets, t: t - 1 }),
            FillMode::Close => self.step(bar, funding, TargetsAt { targets, t }),
        }
    }

    /// One bar's events with `target` the target traded in it (the previous close's in
    /// next-open mode, this close's in close mode).
    #[inline(always)]
    fn step<B: BarView, T: TargetView>(&mut self, bar: B, funding: f64, target: T) -> f64 {
        match self.fill {
            FillMode::NextOpen => {
                self.trade_target(bar, bar.open(), target);
                self.funding_at(bar.open(), funding);
                self.range_stops(bar);
                self.close_at(bar, target)
            }
            FillMode::Close => {
                self.funding_at(bar.open(), funding);
                self.close_at(bar, target)
            }
        }
    }

    /// The fill mode.
    pub fn fill_mode(&self) -> FillMode {
        self.fill
    }

    /// Live: `bar` is over and the orders it decided leave now. Its events after its open are
    /// applied (funding, the intrabar stops on its range in next-open mode, the close; in close
    /// mode `target` is traded at the close), then, in next-open mode, `target` is traded at once
    /// as the open of the bar that starts at `next_ts`, with the close as the reference price:
    /// that is when the backtest trades it, so the order leaves when the bar it belongs to
    /// opens, not a bar later. The open of `bar` was traded by the previous call. Returns the
    /// equity marked at the close.
    pub fn step_closed(&mut self, bar: Bar, funding: f64, target: Target, next_ts: i64) -> f64 {
        self.funding_at(bar.open, funding);
        if self.fill == FillMode::NextOpen {
            if self.venue.stops_rest() {
                // The venue holds the stops: one that filled in this bar is booked at it.
                if let Some((reason, fill)) = self.venue.stop_filled() {
                    if let Some(p) = self.pos.take() {
                        self.book_exit(bar, p, &fill, reason);
                    }
                } else if !self.venue.stops_rest() {
                    // Found gone (cancelled behind the session's back): nothing protected the
                    // position on the exchange, so this bar's range is watched for them too.
                    self.range_stops(bar);
                }
            } else {
                self.range_stops(bar);
            }
        }
        self.target = Pending::of(target);
        self.close_at(bar, self.target);
        if self.fill == FillMode::NextOpen {
            let open = Opening {
                index: bar.index + 1,
                ts: next_ts,
                price: bar.close,
            };
            self.trade_target(open, bar.close, self.target);
        }
        self.equity_at(bar.close)
    }

    #[inline(always)]
    fn funding_at(&mut self, open: f64, rate: f64) {
        if !self.funding || rate == 0.0 {
            return;
        }
        let q = self.signed_size();
        if let Some(p) = self.pos.as_mut() {
            let amount = funding_amount(q, open, rate);
            self.venue.book_funding(amount);
            p.funding += amount;
        }
    }

    /// Trades `target` at `price` when it asks for a change: another side than the one held,
    /// or a blocked side to clear. (Holding the wanted side is the common case and stays
    /// inline.)
    #[inline(always)]
    fn trade_target<B: BarView, T: TargetView>(&mut self, bar: B, price: f64, target: T) {
        let held = self.pos.as_ref().map(|p| p.side);
        if self.blocked.is_some() || Side::of(target.position()) != held {
            self.act(bar, price, target);
        }
    }

    /// Intrabar stop-loss / take-profit with the bar's open, high and low.
    #[inline(always)]
    fn range_stops<B: BarView>(&mut self, bar: B) {
        let Some(p) = self.pos.as_ref() else { return };
        let o = bar.open();
        let (stop, take) = (p.stop, p.take);
        // Gap through a level: at the open; else the stop first (a bar touching both levels
        // counts as the stop), then the take-profit.
        match p.side {
            Side::Long => {
                if stop >= o {
                    self.exit(bar, o, ExitReason::StopLoss);
                } else if take <= o {
                    self.exit(bar, o, ExitReason::TakeProfit);
                } else if bar.low() <= stop {
                    self.exit(bar, stop, ExitReason::StopLoss);
                } else if bar.high() >= take {
                    self.exit(bar, take, ExitReason::TakeProfit);
                }
            }
            Side::Short => {
                if stop <= o {
                    self.exit(bar, o, ExitReason::StopLoss);
                } else if take >= o {
                    self.exit(bar, o, ExitReason::TakeProfit);
                } else if bar.high() >= stop {
                    self.exit(bar, stop, ExitReason::StopLoss);
                } else if bar.low() <= take {
                    self.exit(bar, take, ExitReason::TakeProfit);
                }
            }
        }
    }

    /// The close: stops on the close and the target traded at it (close mode), then the mark,
    /// liquidation and the bar count.
    #[inline(always)]
    fn close_at<B: BarView, T: TargetView>(&mut self, bar: B, target: T) -> f64 {
        let close = bar.close();
        self.last = Some((bar.index(), close));
        if self.fill == FillMode::Close {
            self.close_stops(bar, close);
            self.trade_target(bar, close, target);
        }
        let v = self.equity_at(close);
        if let Some(p) = &self.pos {
            if v <= self.maintenance * p.size * close {
                return self.liquidate(bar, close);
            }
            self.bars_in_market += 1;
        }
        v
    }

    /// Equity fell to the maintenance margin (zero without one) or below: the position is
    /// closed at `close` and trading stops. Returns the equity left.
    #[cold]
    fn liquidate<B: BarView>(&mut self, bar: B, close: f64) -> f64 {
        self.exit(bar, close, ExitReason::Liquidation);
        self.ruined = true;
        self.venue.balance()
    }

    /// Ends the history: a position still open is reported as a trade with reason `open`,
    /// marked at the last close (not closed, no exit fee); `last_ts` is the last bar's open
    /// time. Returns the trades and the bars in the market.
    pub fn finish(mut self, last_ts: i64) -> (Vec<Trade>, usize) {
        if let (Some(p), Some((index, mark))) = (self.pos.take(), self.last) {
            let gross = p.side.sign() * p.size * (mark - p.entry_price);
            self.trades.push(Trade {
                side: p.side,
                entry_bar: p.entry_bar,
                entry_ts: p.entry_ts,
                entry_price: p.entry_price,
                exit_bar: index,
                exit_ts: last_ts,
                exit_price: mark,
                size: p.size,
                fees: p.fees,
                funding: p.funding,
                pnl: gross - p.fees + p.funding,
                exit_reason: ExitReason::Open,
            });
        }
        (self.trades, self.bars_in_market)
    }

    #[inline(never)]
    fn exit<B: BarView>(&mut self, bar: B, price: f64, reason: ExitReason) {
        let Some(p) = self.pos.take() else { return };
        let rested = self.venue.stops_rest();
        if rested {
            // Withdrawn first, so the exit cannot meet a stop that fills as well; one that has
            // filled already closed the position.
            if let Some((why, fill)) = self.venue.cancel_stops() {
                self.book_exit(bar, p, &fill, why);
                return;
            }
        }
        let order = Order {
            side: p.side.closing(),
            qty: p.size,
            price,
        };
        let Some(fill) = filled(self.venue.submit(&order)) else {
            if rested {
                // Withdrawn for nothing: the position rests protected again.
                self.venue.place_stops(p.side, p.size, p.stop, p.take);
            }
            self.pos = Some(p);
            return;
        };
        self.book_exit(bar, p, &fill, reason);
    }

    /// Books the exit `fill` of position `p` as a trade.
    fn book_exit<B: BarView>(&mut self, bar: B, p: Position, fill: &Fill, reason: ExitReason) {
        // A live exchange may fill part of it: the filled quantity is booked as a closed trade
        // with its share of the entry fees and the funding, and the rest stays the position
        // (the next bar's target or stop sends it again), so the engine holds what the
        // exchange holds. A whole fill has share 1: the trade is the whole position.
        let share = fill.qty / p.size;
        let (entry_fees, funding) = (p.fees * share, p.funding * share);
        let fees = entry_fees + fill.fee;
        let gross = p.side.sign() * fill.qty * (fill.price - p.entry_price);
        self.trades.push(Trade {
            side: p.side,
            entry_bar: p.entry_bar,
            entry_ts: p.entry_ts,
            entry_price: p.entry_price,
            exit_bar: bar.index(),
            exit_ts: bar.ts(),
            exit_price: fill.price,
            size: fill.qty,
            fees,
            funding,
            pnl: gross - fees + funding,
            exit_reason: reason,
        });
        if fill.qty < p.size {
            let rest = p.size - fill.qty;
            if self.fill == FillMode::NextOpen {
                // What is left rests protected again.
                self.venue.place_stops(p.side, rest, p.stop, p.take);
            }
            self.pos = Some(Position {
                size: rest,
                fees: p.fees - entry_fees,
                funding: p.funding - funding,
                ..p
            });
        } else if matches!(reason, ExitReason::StopLoss | ExitReason::TakeProfit) {
            // Re-entry on the stopped side waits for a target that leaves it.
            self.blocked = Some(p.side);
        }
    }

    /// Moves the position to the side of `target` at `price`.
    #[inline(never)]
    fn act<B: BarView, T: TargetView>(&mut self, bar: B, price: f64, target: T) {
        let position = target.position();
        let want = Side::of(position);
        if self.blocked.is_some() && self.blocked != want {
            self.blocked = None;
        }
        let have = self.pos.as_ref().map(|p| p.side);
        if have.is_some() && have != want {
            self.exit(bar, price, ExitReason::Signal);
        }
        let Some(side) = want else { return };
        if self.pos.is_some() || self.blocked == Some(side) || self.ruined {
            return;
        }
        let cash = self.venue.balance();
        if cash <= 0.0 {
            return;
        }
        let order_side = side.opening();
        let fill_estimate = self.costs.fill_price(order_side, price);
        let size = self
            .costs
            .entry_size(position.abs() * self.leverage, cash, fill_estimate);
        let order = Order {
            side: order_side,
            qty: size,
            price,
        };
        let Some(fill) = filled(self.venue.submit(&order)) else {
            return;
        };
        let (stop, take) = (target.stop(), target.take());
        if self.fill == FillMode::NextOpen && !(stop.is_nan() && take.is_nan()) {
            self.venue.place_stops(side, fill.qty, stop, take);
        }
        self.pos = Some(Position {
            side,
            entry_bar: bar.index(),
            entry_ts: bar.ts(),
            entry_price: fill.price,
            size: fill.qty,
            fees: fill.fee,
            funding: 0.0,
            stop,
            take,
        });
    }

    /// Stop / take-profit on the close (close fill mode), from the bar after entry.
    #[inline(always)]
    fn close_stops<B: BarView>(&mut self, bar: B, c: f64) {
        let Some(p) = self.pos.as_ref() else { return };
        if p.entry_bar >= bar.index() {
            return;
        }
        let s = p.side.sign();
        // For a long: close < stop, close > take; mirrored for a short.
        if s * (p.stop - c) > 0.0 {
            self.exit(bar, c, ExitReason::StopLoss);
        } else if s * (c - p.take) > 0.0 {
            self.exit(bar, c, ExitReason::TakeProfit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulated venue, except that the first sell fills only half its size (a live
    /// exchange's short fill).
    struct HalfFirstSell {
        sim: SimulatedVenue,
        halved: bool,
    }

    impl Venue for HalfFirstSell {
        fn submit(&mut self, order: &Order) -> Result<Ack, VenueError> {
            let mut o = *order;
            if o.side == OrderSide::Sell && !self.halved {
                self.halved = true;
                o.qty /= 2.0;
            }
            self.sim.submit(&o)
        }
        fn balance(&self) -> f64 {
            self.sim.balance()
        }
        fn book_funding(&mut self, amount: f64) {
            self.sim.book_funding(amount);
        }
    }

    fn bar(index: usize, price: f64) -> Bar {
        Bar {
            index,
            ts: index as i64 * 3_600_000,
            open: price,
            high: price,
            low: price,
            close: price,
        }
    }

    #[test]
    fn a_partial_exit_fill_books_what_was_filled_and_keeps_the_rest() {
        let cfg = EngineConfig {
            fill: FillMode::NextOpen,
            fee: 0.01,
            slippage: 0.0,
            cash: 1000.0,
            funding: false,
            ..EngineConfig::default()
        };
        let venue = HalfFirstSell {
            sim: SimulatedVenue::new(cfg.costs(), cfg.cash),
            halved: false,
        };
        let mut e = Engine::new(&cfg, venue);
        let long = Target {
            position: 0.505,
            stop: None,
            take: None,
        };
        let flat = Target {
            position: 0.0,
            ..long
        };
        e.step_bar(bar(0, 100.0), 0.0, long);
        // Entry at 100: 0.505 · 1000 / 1.01 / 100 = 5 coins, fee 5; cash 1000 − 500 − 5 = 495.
        e.step_bar(bar(1, 100.0), 0.0, flat);
        assert!((e.signed_size() - 5.0).abs() < 1e-12);
        // Exit at 110, half filled: 2.5 coins, fee 2.75; cash 495 + 275 − 2.75 = 767.25. The
        // trade carries half the entry fee: fees 2.5 + 2.75, PnL 2.5 · 10 − 5.25 = 19.75.
        let eq = e.step_bar(bar(2, 110.0), 0.0, flat);
        assert!((e.signed_size() - 2.5).abs() < 1e-12, "the rest stays open");
        assert!(
            (e.venue().sim.position() - 2.5).abs() < 1e-12,
            "as the venue holds"
        );
        assert!((eq - (767.25 + 2.5 * 110.0)).abs() < 1e-9);
        let t = &e.trades()[0];
        assert_eq!((t.exit_bar, t.exit_reason), (2, ExitReason::Signal));
        assert!((t.size - 2.5).abs() < 1e-12);
        assert!((t.fees - 5.25).abs() < 1e-9);
        assert!((t.pnl - 19.75).abs() < 1e-9);
        // The rest goes at the next open, 120: fee 3, PnL 2.5 · 20 − (2.5 + 3) = 44.5.
        let eq = e.step_bar(bar(3, 120.0), 0.0, flat);
        assert_eq!(e.signed_size(), 0.0);
        assert!((eq - 1064.25).abs() < 1e-9);
        let t = &e.trades()[1];
        assert!((t.size - 2.5).abs() < 1e-12);
        assert!((t.fees - 5.5).abs() < 1e-9);
        assert!((t.pnl - 44.5).abs() < 1e-9);
        // Both parts add up to the account's gain.
        let pnl: f64 = e.trades().iter().map(|t| t.pnl).sum();
        assert!((pnl - 64.25).abs() < 1e-9);
    }
}
