//! The twelve seed strategies. Each turns a genome (genes described in the top-level
//! `seeds/<name>.toml`, plus the shared risk genes of `seeds/risk.toml`) and a prepared market
//! into per-bar [`Targets`] for the backtester.
//!
//! A seed's [`Seed::signals`] writes the side it wants after each bar (`+1`, `−1`, `0`, or a
//! scaled fraction) and any stop levels of its own; [`targets`] then applies the shared risk
//! genes: direction filter, position size, and stop-loss / take-profit as ATR multiples or
//! percentages (the tighter of the seed's own level and the risk gene's level wins).
//! Signals at bar `t` use data up to `t` only.

pub mod bits;
pub mod cache;
pub mod genome;
pub mod lines;
pub mod ml;
pub mod portfolio;
pub mod program;
pub mod rules;
pub mod svc;
pub mod tree;

use std::sync::OnceLock;

pub use cache::{Key, Prepared};
pub use genome::{apply_regime, apply_regime_at, member_id, spec_of, Genome, Traded, PROGRAM};
pub use lines::Carry;

use crate::{
    genome::{parse_risk_genes, Genes, GenomeError, SeedSpec},
    strategy::{Target, Targets},
};

/// A seed strategy.
pub trait Seed: Send + Sync {
    /// The seed's name, as in its TOML file.
    fn name(&self) -> &'static str;
    /// Writes raw signals for every bar into `out` (initially flat, no stops).
    fn signals(&self, genes: Genes<'_>, data: &Prepared, out: &mut Targets);
    /// The raw signal at bar `t` alone, from the raw position the seed wanted after bar
    /// `t − 1` (`state`; 0 before the first bar): what [`Seed::signals`] writes at `t`, at a
    /// cost that does not grow with the history. `None` for a seed that needs the whole
    /// history for a bar (the ML seeds' fits).
    fn next(&self, genes: Genes<'_>, data: &Prepared, t: usize, state: f64) -> Option<RawBar> {
        let _ = (genes, data, t, state);
        None
    }
}

/// A seed's raw signal at one bar: the position it wants (before the risk genes) and its own
/// stop and take-profit levels (`NaN` for none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawBar {
    pub position: f64,
    pub stop: f64,
    pub take: f64,
}

impl RawBar {
    /// A position without levels of the seed's own.
    pub fn side(position: f64) -> Self {
        RawBar {
            position,
            stop: f64::NAN,
            take: f64::NAN,
        }
    }

    /// Bar `t` of `raw` signals.
    pub fn of(raw: &Targets, t: usize) -> Self {
        RawBar {
            position: raw.position[t],
            stop: raw.stop[t],
            take: raw.take[t],
        }
    }
}

/// A seed with its gene spec.
pub struct SeedEntry {
    pub spec: SeedSpec,
    pub seed: Box<dyn Seed>,
}

impl std::fmt::Debug for SeedEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedEntry")
            .field("spec", &self.spec)
            .finish()
    }
}

/// The fields of a genome TOML (`seed = "..."`, `program = '...'` for a program, and a
/// `[genes]` table of values as text), before they are checked against a seed's spec.
#[derive(Debug, Clone, PartialEq)]
pub struct GenomeFields {
    pub seed: String,
    pub program: Option<String>,
    pub genes: Vec<(String, String)>,
}

impl GenomeFields {
    /// Reads the fields; errors name `origin` and the key.
    ///
    /// # Errors
    /// A message for TOML that does not parse, an unknown key, a missing seed or a value of the
    /// wrong type.
    pub fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            format!("{origin}: {}", crate::settings::toml_error(text, &e))
        })?;
        if let Some(key) = table
            .keys()
            .find(|k| !["seed", "program", "genes"].contains(&k.as_str()))
        {
            return Err(format!(
                "{origin}: unknown key `{key}` (a genome file has `seed`, `program` for a program, and `[genes]`)"
            ));
        }
        let Some(seed) = table.get("seed").and_then(|v| v.as_str()) else {
            return Err(format!("{origin}: `seed = \"NAME\"` is missing"));
        };
        let program = match table.get("program") {
            None => None,
            Some(toml::Value::String(p)) => Some(p.clone()),
            Some(other) => {
                return Err(format!(
                    "{origin}: `program` must be a string, found {}",
                    other.type_str()
                ))
            }
        };
        let mut genes = Vec::new();
        if let Some(g) = table.get("genes") {
            let Some(g) = g.as_table() else {
                return Err(format!("{origin}: `genes` must be a table ([genes])"));
            };
            for (k, v) in g {
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Float(f) => format!("{f:?}"),
                    other => {
                        return Err(format!(
                            "{origin}: genes.{k}: expected a number or a choice name, found {}",
                            other.type_str()
                        ))
                    }
                };
                genes.push((k.clone(), text));
            }
        }
        Ok(Self {
            seed: seed.to_string(),
            program,
            genes,
        })
    }
}

impl SeedEntry {
    /// Whether the seed fits ML models (walk-forward, on long windows): `linear_svc_classifier`
    /// and `pca_tree_quantile`.
    pub fn is_ml(&self) -> bool {
        ml::SEEDS.contains(&self.spec.name.as_str())
    }

    /// Per-bar targets of `genome` (which must be in bounds; see [`SeedSpec::repair`]).
    pub fn targets(&self, genome: &[f64], data: &Prepared) -> Targets {
        targets(self, genome, data)
    }
}

pub(crate) const RISK_FILE: (&str, &str) =
    ("seeds/risk.toml", include_str!("../../seeds/risk.toml"));

/// The spec files, built into the binary so it runs from anywhere.
const SPEC_FILES: [(&str, &str); 12] = [
    (
        "seeds/ema_crossover.toml",
        include_str!("../../seeds/ema_crossover.toml"),
    ),
    (
        "seeds/donchian_breakout.toml",
        include_str!("../../seeds/donchian_breakout.toml"),
    ),
    (
        "seeds/rsi_filter.toml",
        include_str!("../../seeds/rsi_filter.toml"),
    ),
    (
        "seeds/stochastic_oscillator.toml",
        include_str!("../../seeds/stochastic_oscillator.toml"),
    ),
    (
        "seeds/sma_trend_filter.toml",
        include_str!("../../seeds/sma_trend_filter.toml"),
    ),
    (
        "seeds/atr_stop_loss.toml",
        include_str!("../../seeds/atr_stop_loss.toml"),
    ),
    (
        "seeds/ichimoku_cloud.toml",
        include_str!("../../seeds/ichimoku_cloud.toml"),
    ),
    (
        "seeds/vwap_reversion.toml",
        include_str!("../../seeds/vwap_reversion.toml"),
    ),
    (
        "seeds/volatility_scaling.toml",
        include_str!("../../seeds/volatility_scaling.toml"),
    ),
    (
        "seeds/funding_rate_carry.toml",
        include_str!("../../seeds/funding_rate_carry.toml"),
    ),
    (
        "seeds/linear_svc_classifier.toml",
        include_str!("../../seeds/linear_svc_classifier.toml"),
    ),
    (
        "seeds/pca_tree_quantile.toml",
        include_str!("../../seeds/pca_tree_quantile.toml"),
    ),
];

fn implementations() -> Vec<Box<dyn Seed>> {
    vec![
        Box::new(rules::EmaCrossover),
        Box::new(rules::DonchianBreakout),
        Box::new(rules::RsiFilter),
        Box::new(rules::StochasticOscillator),
        Box::new(rules::SmaTrendFilter),
        Box::new(rules::AtrStopLoss),
        Box::new(rules::IchimokuCloud),
        Box::new(rules::VwapReversion),
        Box::new(rules::VolatilityScaling),
        Box::new(rules::FundingRateCarry),
        Box::new(ml::LinearSvcClassifier),
        Box::new(ml::PcaTreeQuantile),
    ]
}

/// Loads and validates every spec and pairs it with its implementation.
///
/// # Errors
/// [`GenomeError`] naming the file for a malformed spec, or a spec whose name does not match
/// its implementation.
pub fn load_registry() -> Result<Vec<SeedEntry>, GenomeError> {
    let risk = parse_risk_genes(RISK_FILE.0, RISK_FILE.1)?;
    SPEC_FILES
        .iter()
        .zip(implementations())
        .map(|(&(file, text), seed)| {
            let spec = SeedSpec::parse(file, text, &risk)?;
            if spec.name != seed.name() {
                return Err(GenomeError::Spec {
                    file: file.into(),
                    message: format!("name `{}` does not match seed `{}`", spec.name, seed.name()),
                });
            }
            Ok(SeedEntry { spec, seed })
        })
        .collect()
}

/// The registry, loaded once.
///
/// # Errors
/// As [`load_registry`].
pub fn registry() -> Result<&'static [SeedEntry], GenomeError> {
    static REGISTRY: OnceLock<Vec<SeedEntry>> = OnceLock::new();
    if let Some(r) = REGISTRY.get() {
        return Ok(r);
    }
    let loaded = load_registry()?;
    Ok(REGISTRY.get_or_init(|| loaded))
}

/// The seed called `name`.
///
/// # Errors
/// A message listing the seeds when there is none of that name.
pub fn find(name: &str) -> Result<&'static SeedEntry, String> {
    let reg = registry().map_err(|e| e.to_string())?;
    by_name(reg, name, "seed", |e| &e.spec)
}

/// The entry of `entries` whose spec is called `name`, or a message listing them all
/// ("unknown `kind` `name` (`kind`s: …)").
fn by_name<'a, T>(
    entries: &'a [T],
    name: &str,
    kind: &str,
    spec: impl Fn(&T) -> &SeedSpec,
) -> Result<&'a T, String> {
    entries
        .iter()
        .find(|e| spec(e).name == name)
        .ok_or_else(|| {
            format!(
                "unknown {kind} `{name}` ({kind}s: {})",
                entries
                    .iter()
                    .map(|e| spec(e).name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// The seeds called `names`, in that order; every seed for an empty list.
///
/// # Errors
/// As [`find`], for the first unknown name.
pub fn select(names: &[String]) -> Result<Vec<&'static SeedEntry>, String> {
    if names.is_empty() {
        return Ok(registry().map_err(|e| e.to_string())?.iter().collect());
    }
    names.iter().map(|n| find(n)).collect()
}

/// Raw signals of `entry` for `genome`, then the shared risk genes applied.
pub fn targets(entry: &SeedEntry, genome: &[f64], data: &Prepared) -> Targets {
    let mut out = signals(entry, genome, data);
    apply_risk(entry.spec.view(genome), data, &mut out);
    out
}

/// Raw signals of `entry` for `genome` at every bar, before the risk genes.
pub fn signals(entry: &SeedEntry, genome: &[f64], data: &Prepared) -> Targets {
    let mut out = Targets::flat(data.market.candles.len());
    entry.seed.signals(entry.spec.view(genome), data, &mut out);
    out
}

/// Which sides a genome may trade (the `direction` gene).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Both,
    Long,
    Short,
}

impl Direction {
    /// Whether longs and shorts are kept.
    fn keeps(self) -> (bool, bool) {
        match self {
            Direction::Long => (true, false),
            Direction::Short => (false, true),
            Direction::Both => (true, true),
        }
    }
}

/// The shared risk genes of one genome, decoded once (choice genes become enums).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskGenes {
    /// Fraction of equity per position.
    pub size: f64,
    pub direction: Direction,
    pub stop: Distance,
    pub take: Distance,
    /// ATR period of ATR-multiple levels.
    pub atr_period: usize,
}

impl RiskGenes {
    /// Decodes `direction` (both / long / short), `size`, `stop_kind`/`stop_value` and
    /// `take_kind`/`take_value` (none, ATR multiple of ATR(`risk_atr_period`), or percent of the
    /// signal bar's close).
    pub fn decode(g: Genes<'_>) -> Self {
        let distance = |kind: &str, value: f64| match kind {
            "atr" => Distance::Atr(value),
            "pct" => Distance::Pct(value / 100.0),
            _ => Distance::None,
        };
        Self {
            size: g.float("size"),
            direction: match g.choice("direction") {
                "long" => Direction::Long,
                "short" => Direction::Short,
                _ => Direction::Both,
            },
            stop: distance(g.choice("stop_kind"), g.float("stop_value")),
            take: distance(g.choice("take_kind"), g.float("take_value")),
            atr_period: g.period("risk_atr_period"),
        }
    }

    /// The ATR line the levels read, when either is an ATR multiple.
    fn atr(&self, data: &Prepared) -> Option<std::sync::Arc<Vec<f64>>> {
        let uses_atr =
            matches!(self.stop, Distance::Atr(_)) || matches!(self.take, Distance::Atr(_));
        uses_atr.then(|| data.get(Key::Atr(self.atr_period)))
    }
}

/// The shared risk genes applied to a seed's raw signals (each bar on its own, [`risk_bar`]):
/// direction filter, position size, and stop-loss / take-profit levels (the tighter of
/// the seed's own and the risk gene's).
pub(crate) fn apply_risk(g: Genes<'_>, data: &Prepared, out: &mut Targets) {
    let close = &data.market.candles.close;
    let r = RiskGenes::decode(g);
    let RiskGenes {
        size,
        direction,
        stop,
        take,
        ..
    } = r;
    let keep = direction.keeps();
    let atr = r.atr(data);
    let level = |d: Distance, t: usize| distance(d, atr.as_deref(), close, t);
    // Without risk levels (the default genes) the loop is compiled with both distances known
    // to be NaN: the same values, without a level's arithmetic and branches per bar.
    if stop == Distance::None && take == Distance::None {
        risk_levels(out, close, size, keep, |_| f64::NAN, |_| f64::NAN);
    } else {
        let (stop_at, take_at) = (|t| level(stop, t), |t| level(take, t));
        risk_levels(out, close, size, keep, stop_at, take_at);
    }
}

/// The shared risk genes applied to one bar's raw signal: [`apply_risk`] at bar `t` alone.
pub(crate) fn risk_at(g: Genes<'_>, data: &Prepared, t: usize, raw: RawBar) -> Target {
    let close = &data.market.candles.close;
    let r = RiskGenes::decode(g);
    let atr = r.atr(data);
    let level = |d: Distance| distance(d, atr.as_deref(), close, t);
    let (p, stop, take) = risk_bar(
        raw,
        close[t],
        r.size,
        r.direction.keeps(),
        || level(r.stop),
        || level(r.take),
    );
    Target::of(p, stop, take)
}

/// A stop or take-profit distance at bar `t` (`NaN` for none).
fn distance(d: Distance, atr: Option<&Vec<f64>>, close: &[f64], t: usize) -> f64 {
    match (d, atr) {
        (Distance::Atr(m), Some(a)) => m * a[t],
        (Distance::Pct(f), _) => f * close[t],
        _ => f64::NAN,
    }
}

/// [`apply_risk`]'s pass over the bars, with the stop and take-profit distances at bar `t`
/// (`NaN` for none).
#[inline(always)]
fn risk_levels(
    out: &mut Targets,
    close: &[f64],
    size: f64,
    keep: (bool, bool),
    stop: impl Fn(usize) -> f64,
    take: impl Fn(usize) -> f64,
) {
    let n = close.len();
    let (position, stops, takes) = (
        &mut out.position[..n],
        &mut out.stop[..n],
        &mut out.take[..n],
    );
    for t in 0..n {
        let raw = RawBar {
            position: position[t],
            stop: stops[t],
            take: takes[t],
        };
        (position[t], stops[t], takes[t]) =
            risk_bar(raw, close[t], size, keep, || stop(t), || take(t));
    }
}

/// One bar of the risk genes: the position filtered by direction and sized, and the tighter
/// of the seed's own levels and the risk genes' (from the distances `stop` and `take`, read
/// only for a position).
#[inline(always)]
fn risk_bar(
    raw: RawBar,
    close: f64,
    size: f64,
    (keep_long, keep_short): (bool, bool),
    stop: impl FnOnce() -> f64,
    take: impl FnOnce() -> f64,
) -> (f64, f64, f64) {
    let mut p = raw.position;
    if p.is_nan() || (p > 0.0 && !keep_long) || (p < 0.0 && !keep_short) {
        p = 0.0;
    }
    if p == 0.0 {
        return (p * size, f64::NAN, f64::NAN);
    }
    let s = p.signum();
    let stop_px = close - s * stop();
    let take_px = close + s * take();
    // Tighter of the seed's own level and the risk gene's: the higher stop for a long.
    (
        p * size,
        tighter(raw.stop, stop_px, s),
        tighter(raw.take, take_px, -s),
    )
}

/// A stop or take-profit distance from the signal bar's close.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distance {
    None,
    /// A multiple of the ATR.
    Atr(f64),
    /// A fraction of the close.
    Pct(f64),
}

/// The higher of two levels for `s > 0`, the lower for `s < 0`; `NaN` counts as absent.
fn tighter(a: f64, b: f64, s: f64) -> f64 {
    match (a.is_nan(), b.is_nan()) {
        (true, _) => b,
        (_, true) => a,
        _ if s > 0.0 => a.max(b),
        _ => a.min(b),
    }
}
