//! One strategy identity. A [`Genome`] is a single-coin seed with its genes, a strategy program
//! with the shared risk genes, or a portfolio seed with its own and the construction genes; a
//! [`Traded`] strategy is a genome with the regime filter it trades behind. Evolution (which
//! stores members compactly, by seed index), the gauntlet, `backtest` and the runner all put a
//! strategy's targets behind its filter through [`apply_regime`], and name it by
//! [`Genome::id`] and [`Genome::to_toml`].
//!
//! **Id.** The first 8 hex digits of the FNV-1a 64 hash of the seed's name (`program` for a
//! program), the little-endian bits of each gene and, for a program, its canonical text: the
//! same genome has the same id in every checkpoint, `front.csv` and the registry.

use std::sync::Arc;

use super::{find, portfolio::PortfolioGenome, program, GenomeFields, Prepared, RawBar, SeedEntry};
use crate::{
    genome::{
        fnv1a_update,
        program::{canonical, print, Program},
        GeneKind, GenomeError, SeedSpec, FNV_OFFSET,
    },
    strategy::{
        regime::{RegimeFilter, Regimes},
        Target, Targets,
    },
};

/// A strategy's genes: what evolution varies and the registry stores.
#[derive(Debug, Clone)]
pub enum Genome {
    /// A single-coin seed and its genome (its own genes, then the shared risk genes).
    Seed {
        entry: &'static SeedEntry,
        genes: Vec<f64>,
    },
    /// A strategy program and the shared risk genes.
    Program { program: Program, genes: Vec<f64> },
    /// A portfolio (cross-sectional) seed: one account over a universe.
    Portfolio(PortfolioGenome),
}

/// The id of a genome named `seed` with `genes` and, for a program, its canonical text (see the
/// module documentation).
pub fn member_id(seed: &str, genes: &[f64], canonical: Option<&str>) -> String {
    let mut h = fnv1a_update(FNV_OFFSET, seed.as_bytes());
    for g in genes {
        h = fnv1a_update(h, &g.to_bits().to_le_bytes());
    }
    if let Some(c) = canonical {
        h = fnv1a_update(h, c.as_bytes());
    }
    format!("{:08x}", h >> 32)
}

/// A seed's gene spec by name (for programs' `seed` terminals).
pub fn spec_of(name: &str) -> Option<SeedSpec> {
    find(name).ok().map(|e| e.spec.clone())
}

impl Genome {
    /// A single-coin seed with its genome.
    pub fn seed(entry: &'static SeedEntry, genes: Vec<f64>) -> Self {
        Self::Seed { entry, genes }
    }

    /// The spec `genes` follow: the seed's, the programs' risk genes, or the portfolio seed's.
    ///
    /// # Errors
    /// When the built-in risk spec does not parse (a build defect).
    pub fn spec(&self) -> Result<&'static SeedSpec, GenomeError> {
        match self {
            Self::Seed { entry, .. } => Ok(&entry.spec),
            Self::Program { .. } => program::risk_spec(),
            Self::Portfolio(g) => Ok(&g.entry.spec),
        }
    }

    /// The seed's name; `program` for a program.
    pub fn name(&self) -> &str {
        match self {
            Self::Seed { entry, .. } => &entry.spec.name,
            Self::Program { .. } => PROGRAM,
            Self::Portfolio(g) => &g.entry.spec.name,
        }
    }

    /// The genes (in the order of [`Genome::spec`]).
    pub fn genes(&self) -> &[f64] {
        match self {
            Self::Seed { genes, .. } | Self::Program { genes, .. } => genes,
            Self::Portfolio(g) => &g.genes,
        }
    }

    /// The genes, to change (keep them in bounds: [`SeedSpec::set`], [`SeedSpec::repair`]).
    pub fn genes_mut(&mut self) -> &mut Vec<f64> {
        match self {
            Self::Seed { genes, .. } | Self::Program { genes, .. } => genes,
            Self::Portfolio(g) => &mut g.genes,
        }
    }

    /// The program of a program genome.
    pub fn program(&self) -> Option<&Program> {
        match self {
            Self::Program { program, .. } => Some(program),
            _ => None,
        }
    }

    /// The portfolio genome, when this is one.
    pub fn portfolio(&self) -> Option<&PortfolioGenome> {
        match self {
            Self::Portfolio(g) => Some(g),
            _ => None,
        }
    }

    /// A program on one line (the printer's layout without its line breaks).
    pub fn program_line(&self) -> Option<String> {
        self.program()
            .map(|p| print(p, &spec_of).replace("\n  ", " "))
    }

    /// The id (see the module documentation).
    pub fn id(&self) -> String {
        let c = self.program().map(|p| canonical(p, &spec_of));
        member_id(self.name(), self.genes(), c.as_deref())
    }

    /// A genome of seed `name` — a single-coin seed, `program` (with `program_text`) or a
    /// portfolio seed: the defaults, then `genes` (name, value as text). Errors name `origin`.
    ///
    /// # Errors
    /// A message for an unknown seed, a program that does not parse, a program given to a seed
    /// (or missing for `program`), or a gene that does not exist or is out of bounds.
    pub fn of(
        name: &str,
        program_text: Option<&str>,
        genes: &[(String, String)],
        origin: &str,
    ) -> Result<Genome, String> {
        if name != PROGRAM && program_text.is_some() {
            return Err(format!(
                "{origin}: a program is given but the seed is `{name}`; a program's genome has seed `program`"
            ));
        }
        let mut g = if name == PROGRAM {
            let Some(text) = program_text else {
                return Err(format!(
                    "{origin}: a program's genome needs its program (`program = '(program ...)'`)"
                ));
            };
            let p = crate::genome::program::parse(text, &spec_of)
                .map_err(|e| format!("{origin}: program: {e}"))?;
            Genome::Program {
                program: p,
                genes: Vec::new(),
            }
        } else if let Ok(e) = super::portfolio::find_portfolio(name) {
            Genome::Portfolio(PortfolioGenome {
                entry: e,
                genes: Vec::new(),
            })
        } else {
            Genome::seed(
                find(name).map_err(|m| format!("{origin}: {m}"))?,
                Vec::new(),
            )
        };
        let spec = g.spec().map_err(|e| e.to_string())?;
        *g.genes_mut() = spec.default_genome();
        for (k, v) in genes {
            spec.set(g.genes_mut(), k, v)
                .map_err(|e| format!("{origin}: genes.{k}: {e}"))?;
        }
        Ok(g)
    }

    /// Reads a genome TOML (`seed = "..."`, `program = '...'` for a program, and a `[genes]`
    /// table; what [`Genome::to_toml`] writes). Errors name `origin`.
    ///
    /// # Errors
    /// A message naming the key or gene that is wrong.
    pub fn from_toml(text: &str, origin: &str) -> Result<Genome, String> {
        let f = GenomeFields::parse(text, origin)?;
        Genome::of(&f.seed, f.program.as_deref(), &f.genes, origin)
    }

    /// The genome TOML [`Genome::from_toml`] reads back to the same genome: the seed, a
    /// program's text, and every gene — a float with the shortest text that reads back to the
    /// same bits, a choice by name.
    ///
    /// # Errors
    /// When the built-in risk spec does not parse (a build defect).
    pub fn to_toml(&self) -> Result<String, GenomeError> {
        let spec = self.spec()?;
        let mut s = format!("seed = \"{}\"\n", self.name());
        if let Some(text) = self.program_line() {
            // A TOML literal string: programs hold no single quotes.
            s.push_str(&format!("program = '{text}'\n"));
        }
        s.push_str("\n[genes]\n");
        for (gs, v) in spec.genes.iter().zip(self.genes()) {
            let value = match gs.kind {
                GeneKind::Choice => format!("\"{}\"", gs.format(*v)),
                GeneKind::Int => gs.format(*v),
                // Debug prints the shortest text that reads back to the same bits, always with a
                // `.` or an exponent, so TOML reads a float.
                GeneKind::Float => format!("{v:?}"),
            };
            s.push_str(&format!("{} = {value}\n", gs.name));
        }
        Ok(s)
    }

    /// This genome, if it trades one coin at a time; for a portfolio genome a message naming
    /// `origin` (paper and live trading run single-coin strategies only, so far).
    ///
    /// # Errors
    /// For a portfolio genome.
    pub fn single_coin(self, origin: &str) -> Result<Self, String> {
        match self {
            Self::Portfolio(g) => Err(format!(
                "{origin}: `{}` is a portfolio strategy; `paper run` and live trading run \
                 single-coin strategies only so far (`backtest` and `paper replay` run it)",
                g.entry.spec.name
            )),
            g => Ok(g),
        }
    }

    /// Per-bar targets of a single-coin strategy over `data` (without a regime filter; see
    /// [`apply_regime`]). A portfolio genome has no single-coin targets: flat.
    pub fn targets(&self, data: &Prepared) -> Targets {
        match self {
            Self::Seed { entry, genes } => super::targets(entry, genes, data),
            Self::Program { program: p, genes } => program::targets(p, genes, data),
            Self::Portfolio(_) => Targets::flat(data.market.candles.len()),
        }
    }

    /// The raw signals at every bar, before the risk genes (a portfolio genome: flat).
    pub fn signals(&self, data: &Prepared) -> Targets {
        match self {
            Self::Seed { entry, genes } => super::signals(entry, genes, data),
            Self::Program { program: p, .. } => program::raw_signals(p, data),
            Self::Portfolio(_) => Targets::flat(data.market.candles.len()),
        }
    }

    /// The raw signal at bar `t` alone, from the raw position wanted after bar `t − 1`
    /// ([`super::Seed::next`]): for a seed that decides bar by bar, `None` otherwise.
    pub fn next(&self, data: &Prepared, t: usize, state: f64) -> Option<RawBar> {
        match self {
            Self::Seed { entry, genes } => entry.seed.next(entry.spec.view(genes), data, t, state),
            _ => None,
        }
    }

    /// The target at bar `t` of the raw signal `raw` there: the risk genes applied to that bar
    /// alone, as [`Genome::targets`] applies them to every bar.
    pub fn risk_at(&self, data: &Prepared, t: usize, raw: RawBar) -> Target {
        match self {
            Self::Seed { entry, genes } => super::risk_at(entry.spec.view(genes), data, t, raw),
            Self::Program { genes, .. } => super::risk_at(program::risk_view(genes), data, t, raw),
            Self::Portfolio(_) => Target::FLAT,
        }
    }
}

/// The name under which programs appear among the seeds (genome files, checkpoints' specs,
/// tables).
pub const PROGRAM: &str = "program";

/// A strategy as it trades: its genome and the regime filter in front of it.
#[derive(Debug, Clone)]
pub struct Traded {
    pub genome: Genome,
    pub regime: Option<RegimeFilter>,
}

/// Puts a strategy's `targets` over `data` behind `regime`, if any, and returns the regimes:
/// the one definition of the regime filter's place between a strategy and the engine.
pub fn apply_regime(
    regime: Option<&RegimeFilter>,
    data: &Prepared,
    targets: &mut Targets,
) -> Option<Arc<Regimes>> {
    regime.map(|f| {
        let r = data.regimes(&f.volatility);
        r.apply(&f.policy, targets);
        r
    })
}

/// [`apply_regime`] at bar `t` alone: the target behind `regime`, and the regimes.
pub fn apply_regime_at(
    regime: Option<&RegimeFilter>,
    data: &Prepared,
    t: usize,
    target: Target,
) -> (Target, Option<Arc<Regimes>>) {
    match regime {
        Some(f) => {
            let r = data.regimes(&f.volatility);
            let position = r.apply_at(&f.policy, t, target.position);
            (Target { position, ..target }, Some(r))
        }
        None => (target, None),
    }
}
