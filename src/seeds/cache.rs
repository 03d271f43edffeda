//! A market prepared for evaluating many genomes: the market plus a cache of indicator series
//! keyed by indicator and parameters. Each series is computed once per data set and shared by
//! every genome (and thread) that asks for it. Beside them it keeps seeds' signals (for
//! programs' `seed` terminals) and program node values by canonical key, so a subtree that
//! several programs share is computed once (see [`super::program`]); each kind has its own
//! bound. The runner's market ([`Prepared::resume`]) also keeps each line's state, to continue
//! it over the next bar ([`super::lines`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, RwLock},
};

use super::{
    lines::{dependency, Carried, Carry, Ctx, State},
    ml::ModelCache,
    program::Val,
};
use crate::{
    indicators as ind,
    market::{bars_per_year_at, Market},
    strategy::regime::{Regimes, VolatilityParams, VolatilityRanks},
};

/// An indicator line and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Ema(usize),
    Sma(usize),
    Rsi(usize),
    Atr(usize),
    /// Donchian upper / lower over the previous `p` bars.
    DonchianUpper(usize),
    DonchianLower(usize),
    /// Stochastic %K / %D for `(k, d)`.
    StochK(usize, usize),
    StochD(usize, usize),
    /// `(highest high + lowest low) / 2` over `p` bars: Ichimoku's tenkan, kijun and span B
    /// source lines.
    Midpoint(usize),
    /// Rolling VWAP over `p` bars.
    Vwap(usize),
    /// Annualized rolling volatility of log returns over `p` bars.
    RealizedVol(usize),
    /// The per-bar funding rate smoothed by an SMA of `p` bars.
    FundingSma(usize),
    /// The close's z-score over `p` bars.
    Zscore(usize),
    /// The z-score over `z` bars of the funding SMA of `s` bars: `FundingZ(s, z)`.
    FundingZ(usize, usize),
    /// The z-score over `z` bars of the close's distance from its VWAP of `w` bars:
    /// `VwapZ(w, z)`.
    VwapZ(usize, usize),
    /// The `p`-bar return of the close, `close[t] / close[t − p] − 1`.
    Ret(usize),
    /// The close itself.
    Close,
    /// The per-bar funding rate itself.
    Funding,
    /// The MACD histogram `MacdHist(fast, slow, signal)` of the close.
    MacdHist(usize, usize, usize),
    /// The Fear & Greed index per bar (`NaN` where the data has none).
    FearGreed,
}

impl From<ind::Line> for Key {
    fn from(l: ind::Line) -> Key {
        match l {
            ind::Line::Ema(p) => Key::Ema(p),
            ind::Line::Sma(p) => Key::Sma(p),
        }
    }
}

/// Most series one prepared market keeps; beyond it new series are computed but not kept, so
/// a long run over many parameter values cannot exhaust memory.
pub const MAX_CACHED_SERIES: usize = 4096;
/// Most bytes of series one prepared market keeps (programs ask for every period of every
/// indicator): with long histories fewer than [`MAX_CACHED_SERIES`] series are kept.
pub const MAX_CACHED_BYTES: usize = 128 << 20;

/// Most seed signals one prepared market keeps (see [`Prepared::seed_sides`]).
pub const MAX_CACHED_SIGNALS: usize = 1024;

/// Most bytes of program node values one prepared market keeps (see [`Prepared::node`]); when
/// a new value would pass it, the kept ones are dropped and keeping starts again.
pub const MAX_CACHED_NODE_BYTES: usize = 16 << 20;

/// A seed's name and the bits of its genome.
type SignalKey = (String, Vec<u64>);

/// Program node values by node key, and the bytes they hold.
#[derive(Debug, Default)]
struct Nodes {
    map: HashMap<Vec<u64>, Val>,
    bytes: usize,
}

/// A line's state after its last bar and, for a line of the funding, before it (see
/// [`super::lines`]).
type LineState = (State, Option<State>);

/// A computed line: its key, values and, where known, state.
type Computed = (Key, Vec<f64>, Option<LineState>);

/// A market with its indicator cache.
#[derive(Debug)]
pub struct Prepared {
    /// The history, shared (a session's store hands the same history to every book of a coin).
    pub market: Arc<Market>,
    series: RwLock<HashMap<Key, Arc<Vec<f64>>>>,
    /// The lines' states, kept for the next bar by a runner's market ([`Prepared::resume`]).
    states: Option<Mutex<HashMap<Key, LineState>>>,
    /// The smallest step between consecutive bars, known ahead for a resumed market.
    min_step: OnceLock<Option<i64>>,
    /// Whether [`Prepared::resume`] continued a carry (the history extends the one before).
    resumed: bool,
    signals: RwLock<HashMap<SignalKey, Arc<Vec<i8>>>>,
    nodes: RwLock<Nodes>,
    pub(crate) features: OnceLock<Arc<super::ml::Features>>,
    pub(crate) models: Arc<ModelCache>,
    /// Regimes computed so far, by how volatility was measured (one entry in practice).
    regimes: RwLock<Vec<(VolatilityParams, Arc<Regimes>)>>,
    /// Their volatility rankings' states, kept for the next bar by a runner's market.
    ranks: Option<Mutex<Vec<(VolatilityParams, VolatilityRanks)>>>,
}

impl Prepared {
    pub fn new(market: impl Into<Arc<Market>>) -> Self {
        Self::with_models(market, Arc::default())
    }

    /// A prepared market that shares `models`: fits made on an earlier, shorter history with the
    /// same first bar (the runner, after each new bar) are reused.
    pub fn with_models(market: impl Into<Arc<Market>>, models: Arc<ModelCache>) -> Self {
        Self {
            market: market.into(),
            series: RwLock::new(HashMap::new()),
            states: None,
            min_step: OnceLock::new(),
            resumed: false,
            signals: RwLock::new(HashMap::new()),
            nodes: RwLock::default(),
            features: OnceLock::new(),
            models,
            regimes: RwLock::new(Vec::new()),
            ranks: None,
        }
    }

    /// A market for the runner's newest bar: `carry` (the lines with their states, the
    /// regimes and the ML feature rows of the market before it, see
    /// [`Prepared::into_carry`]) continued over `market`'s new bars when `market` extends it,
    /// computed afresh otherwise; the states are kept again for the next bar. Every value is
    /// the bits [`Prepared::new`] gives.
    pub fn resume(market: Arc<Market>, models: Arc<ModelCache>, carry: Option<Carry>) -> Self {
        let mut carry = carry.unwrap_or_default();
        let extends = carry.extends(&market);
        let features = carry.features.take().filter(|_| extends);
        let min_step = carry.min_step(&market, extends);
        let (lines, regimes) = if extends {
            carry.resume(&market, bars_per_year_at(min_step))
        } else {
            (HashMap::new(), Vec::new())
        };
        let (mut kept, mut ranks) = (Vec::new(), Vec::new());
        for (p, r, rk) in regimes {
            kept.push((p, Arc::new(r)));
            ranks.push((p, rk));
        }
        let mut series = HashMap::with_capacity(lines.len());
        let mut states = HashMap::with_capacity(lines.len());
        for (k, l) in lines {
            series.insert(k, Arc::new(l.values));
            states.insert(k, (l.state, l.before_last));
        }
        let mut p = Self::with_models(market, models);
        p.series = RwLock::new(series);
        p.states = Some(Mutex::new(states));
        p.min_step = OnceLock::from(min_step);
        p.resumed = extends;
        p.regimes = RwLock::new(kept);
        p.ranks = Some(Mutex::new(ranks));
        if let Some(mut f) = features {
            // The feature rows of the new bars, from the lines just continued.
            f.extend(&p);
            p.features = OnceLock::from(Arc::new(f));
        }
        p
    }

    /// Whether this market continued the carry it was resumed from ([`Prepared::resume`]):
    /// its history extends the one before, whose bars are unchanged.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// The lines and their states, to resume on the next bar ([`Prepared::resume`]); `None`
    /// for a market that does not keep states.
    pub fn into_carry(self) -> Option<Carry> {
        let states = self.states?.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut series = self.series.into_inner().unwrap_or_else(|e| e.into_inner());
        let lines = states
            .into_iter()
            .filter_map(|(k, (state, before_last))| {
                let v = series.remove(&k)?;
                Some((
                    k,
                    Carried {
                        values: Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
                        state,
                        before_last,
                    },
                ))
            })
            .collect();
        let min_step = self
            .min_step
            .into_inner()
            .unwrap_or_else(|| self.market.candles.interval_ms());
        let mut ranks = self
            .ranks
            .map(|r| r.into_inner().unwrap_or_else(|e| e.into_inner()))
            .unwrap_or_default();
        let regimes = self
            .regimes
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_iter()
            .filter_map(|(p, r)| {
                let at = ranks.iter().position(|(q, _)| *q == p)?;
                let (_, rk) = ranks.swap_remove(at);
                Some((p, Arc::try_unwrap(r).unwrap_or_else(|r| (*r).clone()), rk))
            })
            .collect();
        let features = self
            .features
            .into_inner()
            .map(|f| Arc::try_unwrap(f).unwrap_or_else(|f| (*f).clone()));
        Some(Carry::new(&self.market, min_step, lines, regimes, features))
    }

    /// Bars per year of the market's interval.
    fn bars_per_year(&self) -> f64 {
        bars_per_year_at(
            *self
                .min_step
                .get_or_init(|| self.market.candles.interval_ms()),
        )
    }

    /// The market's regimes under `p` (see [`crate::strategy::regime`]), computed on first use.
    pub fn regimes(&self, p: &VolatilityParams) -> Arc<Regimes> {
        if let Ok(v) = self.regimes.read() {
            if let Some((_, r)) = v.iter().find(|(q, _)| q == p) {
                return Arc::clone(r);
            }
        }
        let r = match &self.ranks {
            // A runner's market keeps the ranking's state for the next bar.
            Some(ranks) => {
                let (r, rk) = Regimes::ranked(&self.market, p);
                let mut ranks = ranks.lock().unwrap_or_else(|e| e.into_inner());
                if !ranks.iter().any(|(q, _)| q == p) {
                    ranks.push((*p, rk));
                }
                Arc::new(r)
            }
            None => Arc::new(Regimes::of(&self.market, p)),
        };
        if let Ok(mut v) = self.regimes.write() {
            if let Some((_, old)) = v.iter().find(|(q, _)| q == p) {
                return Arc::clone(old);
            }
            v.push((*p, Arc::clone(&r)));
        }
        r
    }

    /// How many series this market keeps: [`MAX_CACHED_BYTES`] of them, at least 16 and at
    /// most [`MAX_CACHED_SERIES`].
    pub fn capacity(&self) -> usize {
        let per_series = 8 * self.market.candles.len().max(1);
        (MAX_CACHED_BYTES / per_series).clamp(16, MAX_CACHED_SERIES)
    }

    /// Number of distinct series computed so far.
    pub fn cached(&self) -> usize {
        self.series.read().map(|m| m.len()).unwrap_or(0)
    }

    /// The series for `key`, computed on first use.
    pub fn get(&self, key: Key) -> Arc<Vec<f64>> {
        if let Some(s) = self.series.read().ok().and_then(|m| m.get(&key).cloned()) {
            return s;
        }
        let lines = self.compute(key);
        self.keep(lines, key)
            .unwrap_or_else(|| unreachable!("compute always returns the requested key"))
    }

    /// Whether the series for `key` is kept.
    pub fn has(&self, key: Key) -> bool {
        self.series.read().is_ok_and(|m| m.contains_key(&key))
    }

    /// Computes two EMA / SMA lines of the close in one pass ([`ind::ema_sma_pair`]) and keeps
    /// them, unless one of them is kept already: then nothing is done (each comes from
    /// [`Prepared::get`] as usual).
    pub fn prefetch_pair(&self, lines: [ind::Line; 2]) {
        let [a, b] = lines.map(Key::from);
        // A market that keeps states steps each line on its own.
        if a == b || self.states.is_some() || self.has(a) || self.has(b) {
            return;
        }
        let [x, y] = ind::ema_sma_pair(&self.market.candles.close, lines);
        self.keep(vec![(a, x, None), (b, y, None)], a);
    }

    /// Two EMA / SMA lines of the close, computed in one pass when neither is kept yet
    /// ([`Prepared::prefetch_pair`]).
    pub fn lines(&self, lines: [ind::Line; 2]) -> [Arc<Vec<f64>>; 2] {
        self.prefetch_pair(lines);
        lines.map(|l| self.get(l.into()))
    }

    /// Keeps `lines` (within [`Prepared::capacity`]; a line kept already stays as it was) and,
    /// in a market that keeps states, their states; returns the kept series for `key`, if it
    /// is among them.
    fn keep(&self, lines: Vec<Computed>, key: Key) -> Option<Arc<Vec<f64>>> {
        let mut map = match self.series.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut wanted = None;
        let room = self.capacity();
        for (k, v, state) in lines {
            let kept = map.contains_key(&k);
            let v = if kept || map.len() < room {
                if let (false, Some(states), Some(st)) = (kept, &self.states, state) {
                    states
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(k, st);
                }
                map.entry(k).or_insert_with(|| Arc::new(v)).clone()
            } else {
                Arc::new(v)
            };
            if k == key {
                wanted = Some(v);
            }
        }
        wanted
    }

    /// The side a seed wants to hold at each bar for one genome (+1 long, −1 short, 0 flat):
    /// what a program's `seed` terminal reads. Computed once per genome and market; at most
    /// [`MAX_CACHED_SIGNALS`] are kept.
    pub fn seed_sides(&self, entry: &super::SeedEntry, genes: &[f64]) -> Arc<Vec<i8>> {
        let key: SignalKey = (
            entry.spec.name.clone(),
            genes.iter().map(|g| g.to_bits()).collect(),
        );
        if let Some(s) = self.signals.read().ok().and_then(|m| m.get(&key).cloned()) {
            return s;
        }
        let mut raw = crate::strategy::Targets::flat(self.market.candles.len());
        entry.seed.signals(entry.spec.view(genes), self, &mut raw);
        let sides: Arc<Vec<i8>> = Arc::new(
            raw.position
                .iter()
                .map(|&x| {
                    if x > 0.0 {
                        1
                    } else if x < 0.0 {
                        -1
                    } else {
                        0
                    }
                })
                .collect(),
        );
        let mut map = match self.signals.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if map.len() < MAX_CACHED_SIGNALS || map.contains_key(&key) {
            map.entry(key).or_insert(sides).clone()
        } else {
            sides
        }
    }

    /// The value of the program node whose key ([`super::program::node_key`]) is `key`, if it
    /// was kept.
    pub fn node(&self, key: &[u64]) -> Option<Val> {
        self.nodes.read().ok()?.map.get(key).cloned()
    }

    /// Keeps a program node's value under its key, within [`MAX_CACHED_NODE_BYTES`].
    pub fn keep_node(&self, key: &[u64], v: &Val) {
        let size = v.bytes();
        if size == 0 || size > MAX_CACHED_NODE_BYTES {
            return;
        }
        let mut nodes = match self.nodes.write() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if nodes.map.contains_key(key) {
            return;
        }
        if nodes.bytes + size > MAX_CACHED_NODE_BYTES {
            nodes.map.clear();
            nodes.bytes = 0;
        }
        nodes.map.insert(key.to_vec(), v.clone());
        nodes.bytes += size;
    }

    /// Drops every kept program node value (the indicator series stay).
    pub fn forget_nodes(&self) {
        if let Ok(mut nodes) = self.nodes.write() {
            *nodes = Nodes::default();
        }
    }

    /// Computes `key`'s line bar by bar ([`super::lines`]), with %K beside %D, and their
    /// states.
    fn compute(&self, key: Key) -> Vec<Computed> {
        let dep = dependency(key).map(|d| self.get(d));
        let ctx = Ctx::new(
            &self.market,
            self.bars_per_year(),
            dep.as_deref().map_or(&[], |v| v.as_slice()),
        );
        let line = Carried::compute(key, &ctx, self.market.candles.len());
        let mut out = Vec::with_capacity(2);
        if let (Key::StochD(k, d), Some((state, kline))) = (key, line.state.stoch_k()) {
            out.push((Key::StochK(k, d), kline.to_vec(), Some((state, None))));
        }
        out.push((key, line.values, Some((line.state, line.before_last))));
        out
    }
}
