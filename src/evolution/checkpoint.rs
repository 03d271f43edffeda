//! Checkpoints: `populations/genN.bin`, written atomically after every generation, and the run's
//! fitness cache in one append-only side file, `populations/cache.log`.
//!
//! `genN.bin`: the magic tag `ORGNSMCK`, the format version (u32 little-endian), the payload
//! length (u64 LE), the payload (serde + bincode 2, standard config), and an FNV-1a 64 checksum
//! of the payload (u64 LE). The payload holds the run's settings and data selection, a
//! fingerprint of the data, every seed's gene spec, the [`State`] without its fitness cache, and
//! a [`CacheRef`]: the length and FNV-1a digest of the cache log as it stood at that generation.
//!
//! `cache.log`: one block per generation — `CBLK`, the generation (u32 LE), the payload length
//! (u64 LE), the payload (the generation's fresh cache entries, bincode) and its FNV-1a 64
//! checksum. A checkpoint reads exactly its prefix of the log, so the disk a run uses grows
//! linearly with generations while a resumed run continues exactly.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::problem::PROGRAM_NAME;
use super::{
    problem::{Aggregation, Split},
    CacheKey, Evaluation, Settings, State,
};
use crate::{
    execution::EngineConfig,
    genome::{
        program::{self, Program},
        GeneKind, SeedSpec,
    },
    market::{csv::write_atomic, DataSelection, Market},
};

/// Magic tag at the start of every checkpoint.
pub const MAGIC: &[u8; 8] = b"ORGNSMCK";
/// Format version this build reads and writes. 3: the data selection holds a time range.
/// 4: strategy programs (members, settings, the programs' risk genes among the specs).
/// 5: the survival algorithm among the settings. 6: the regime filter in the run spec.
/// 7: the synthetic market's planted cross-sectional factor (`xs_edge`, `xs_edge_hours`).
/// 8: portfolio runs (the mode, and the universe's pick, exclusions, membership and book caps).
/// 9: leverage and maintenance margin among the costs. 10: the perturbed worlds.
/// 11: island runs (the islands in the run spec).
pub const FORMAT_VERSION: u32 = 11;
/// Name of the fitness-cache log in a run folder.
pub const CACHE_FILE: &str = "cache.log";
const BLOCK_MAGIC: &[u8; 4] = b"CBLK";

/// Checkpoint errors; each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not an organism checkpoint (no ORGNSMCK tag)")]
    Foreign { file: PathBuf },
    #[error("{file}: not the organism file expected here (no {tag} tag)")]
    ForeignKind { file: PathBuf, tag: String },
    #[error("{file}: truncated checkpoint ({len} bytes; expected {expected})")]
    Truncated {
        file: PathBuf,
        len: usize,
        expected: usize,
    },
    #[error("{file}: checkpoint format version {found}; this build reads version {expected} (continue the run with the organism that made it, or start a new one)")]
    Version {
        file: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{file}: corrupted checkpoint (checksum mismatch)")]
    Checksum { file: PathBuf },
    #[error("{file}: this build cannot read the checkpoint ({message}); its checksum is intact, so another build of organism with the same format version wrote it: use that build, or start a new run")]
    Decode { file: PathBuf, message: String },
    #[error("{file}: impossible checkpoint content: {message}")]
    Content { file: PathBuf, message: String },
    #[error("{file}: {message}")]
    Cache { file: PathBuf, message: String },
    #[error("{file}: cannot write: {source}")]
    WriteIo {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
    #[error(transparent)]
    Write(#[from] crate::market::DataError),
    #[error(transparent)]
    Folder(#[from] super::folder::FolderError),
    #[error("{file}: the seeds' gene specs changed since this run was made ({message}); this build cannot continue or inspect the run")]
    Specs { file: PathBuf, message: String },
}

/// Everything that defines a run besides its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The run's RNG seed.
    pub seed: u64,
    pub settings: Settings,
    pub split: Split,
    pub aggregation: Aggregation,
    pub backtest: EngineConfig,
    pub data: DataSelection,
    /// Seed names, in seed-index order.
    pub seeds: Vec<String>,
    /// The regime filter applied to every strategy's targets, if any.
    pub regime: Option<crate::strategy::regime::RegimeFilter>,
    /// A portfolio run's universe and book (`--mode portfolio`); `seeds` then names portfolio
    /// seeds.
    pub portfolio: Option<super::portfolio::PortfolioRun>,
    /// The perturbed worlds each genome is also scored on (`evolution.worlds`).
    pub worlds: super::worlds::WorldSpec,
    /// An island run's islands ([`super::islands`]): its checkpoint holds every island's
    /// population, one after another. `None` for one population (and for each island's own
    /// checkpoints).
    pub islands: Option<super::islands::IslandSpec>,
}

/// One gene of a recorded spec: what decides how a genome's values are read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenePrint {
    pub name: String,
    pub kind: GeneKind,
    pub min: f64,
    pub max: f64,
    pub choices: Vec<String>,
}

/// A seed's gene spec as a run recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedPrint {
    pub name: String,
    pub genes: Vec<GenePrint>,
}

impl SeedPrint {
    pub fn of(spec: &SeedSpec) -> Self {
        Self {
            name: spec.name.clone(),
            genes: spec
                .genes
                .iter()
                .map(|g| GenePrint {
                    name: g.name.clone(),
                    kind: g.kind,
                    min: g.min,
                    max: g.max,
                    choices: g.choices.clone(),
                })
                .collect(),
        }
    }
}

fn describe(g: &GenePrint) -> String {
    match g.kind {
        GeneKind::Choice => format!("choice of {}", g.choices.join("/")),
        GeneKind::Int => format!("int {}..{}", g.min, g.max),
        GeneKind::Float => format!("float {}..{}", g.min, g.max),
    }
}

/// Checks that the specs a run recorded are those of this build.
///
/// # Errors
/// A message naming the first seed and gene that differ.
pub fn check_specs(recorded: &[SeedPrint], current: &[&SeedSpec]) -> Result<(), String> {
    if recorded.len() != current.len() {
        return Err(format!(
            "the run has {} seeds, this build {}",
            recorded.len(),
            current.len()
        ));
    }
    for (r, c) in recorded.iter().zip(current) {
        let c = SeedPrint::of(c);
        if r.name != c.name {
            return Err(format!("seed `{}` is now `{}`", r.name, c.name));
        }
        for (i, rg) in r.genes.iter().enumerate() {
            match c.genes.get(i) {
                None => {
                    return Err(format!(
                        "seed {}: gene `{}` no longer exists",
                        r.name, rg.name
                    ))
                }
                Some(cg) if cg != rg => {
                    return Err(format!(
                        "seed {}: gene `{}` ({}) is now `{}` ({})",
                        r.name,
                        rg.name,
                        describe(rg),
                        cg.name,
                        describe(cg)
                    ))
                }
                Some(_) => {}
            }
        }
        if let Some(extra) = c.genes.get(r.genes.len()) {
            return Err(format!("seed {}: gene `{}` is new", r.name, extra.name));
        }
    }
    Ok(())
}

/// The prefix of the cache log a checkpoint belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CacheRef {
    /// Length in bytes.
    pub bytes: u64,
    /// FNV-1a 64 of those bytes.
    pub digest: u64,
}

impl RunSpec {
    /// What of the run's definition differs in `other` besides the seed and seed list: evolution
    /// settings, split or aggregation, costs or fills, data selection.
    /// The run's single-coin seed names and its portfolio seed names, in order (a mixed run
    /// with portfolio seeds lists the single-coin ones first).
    pub fn seed_kinds(&self) -> (Vec<String>, Vec<String>) {
        self.seeds
            .iter()
            .cloned()
            .partition(|n| !crate::seeds::portfolio::is_portfolio_seed(n))
    }

    /// The recorded specs' names a checkpoint of this run holds, in seed-index order: the
    /// single-coin seeds, `program` (unless a portfolio run), then the portfolio seeds.
    pub fn spec_names(&self) -> Vec<String> {
        let (coins, xs) = self.seed_kinds();
        let mut v = coins;
        if self.settings.mode != super::Mode::Portfolio {
            v.push(PROGRAM_NAME.to_string());
        }
        v.extend(xs);
        v
    }

    /// The programs' seed index, unless a portfolio run.
    pub fn program_index(&self) -> Option<usize> {
        (self.settings.mode != super::Mode::Portfolio).then(|| self.seed_kinds().0.len())
    }

    pub fn differences(&self, other: &RunSpec) -> Vec<&'static str> {
        let mut d = Vec::new();
        if self.settings != other.settings {
            d.push(SETTINGS_DIFFER);
        }
        if self.split != other.split || self.aggregation != other.aggregation {
            d.push("data split or aggregation");
        }
        if self.backtest != other.backtest {
            d.push("costs or fills");
        }
        if self.data != other.data {
            d.push("data selection");
        }
        if self.regime != other.regime {
            d.push("regime filter");
        }
        if self.portfolio != other.portfolio {
            d.push("universe or book");
        }
        if self.worlds != other.worlds {
            d.push("perturbed worlds");
        }
        if self.islands != other.islands {
            d.push("islands");
        }
        d
    }
}

/// What [`RunSpec::differences`] says of other evolution settings: the one difference that
/// leaves every member's score as it was.
pub const SETTINGS_DIFFER: &str = "evolution settings";

/// A checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub run: RunSpec,
    /// [`fingerprint`] of the data the run evolves on.
    pub fingerprint: u64,
    /// Gene specs of the run's seeds, in seed-index order, then the programs' risk genes
    /// (named `program`).
    pub specs: Vec<SeedPrint>,
    /// The cache log prefix of this generation.
    pub cache: CacheRef,
    pub state: State,
}

impl Checkpoint {
    /// The run's seeds in this build, checked against the gene specs the run recorded.
    ///
    /// # Errors
    /// [`CheckpointError::Specs`] naming `file` and the first seed or gene that differs.
    pub fn seed_entries(
        &self,
        file: &Path,
    ) -> Result<Vec<&'static crate::seeds::SeedEntry>, CheckpointError> {
        let err = |message| CheckpointError::Specs {
            file: file.to_path_buf(),
            message,
        };
        if self.run.portfolio.is_some() {
            return Err(err(
                "a run with portfolio seeds: its members are not all single-coin strategies".into(),
            ));
        }
        let entries = crate::seeds::select(&self.run.seeds).map_err(err)?;
        let mut specs: Vec<&SeedSpec> = entries.iter().map(|e| &e.spec).collect();
        specs.push(crate::seeds::program::risk_spec().map_err(|e| err(e.to_string()))?);
        check_specs(&self.specs, &specs).map_err(err)?;
        Ok(entries)
    }

    /// The run's seeds — single-coin, or portfolio for a portfolio run — checked against the
    /// gene specs the run recorded.
    ///
    /// # Errors
    /// As [`Checkpoint::seed_entries`].
    pub fn seed_set(&self, file: &Path) -> Result<super::SeedSet, CheckpointError> {
        if self.run.portfolio.is_none() {
            return self.seed_entries(file).map(super::SeedSet::Coins);
        }
        let err = |message| CheckpointError::Specs {
            file: file.to_path_buf(),
            message,
        };
        let (coins, xs) = self.run.seed_kinds();
        let entries = xs
            .iter()
            .map(|n| crate::seeds::portfolio::find_portfolio(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        if self.run.settings.mode == super::Mode::Portfolio {
            let specs: Vec<&SeedSpec> = entries.iter().map(|e| &e.spec).collect();
            check_specs(&self.specs, &specs).map_err(err)?;
            return Ok(super::SeedSet::Portfolio(entries));
        }
        let singles = crate::seeds::select(&coins).map_err(err)?;
        let mut specs: Vec<&SeedSpec> = singles.iter().map(|e| &e.spec).collect();
        specs.push(crate::seeds::program::risk_spec().map_err(|e| err(e.to_string()))?);
        specs.extend(entries.iter().map(|e| &e.spec));
        check_specs(&self.specs, &specs).map_err(err)?;
        Ok(super::SeedSet::Mixed(singles, entries))
    }

    /// Checks that the content is possible: seeds, genes and indices within the recorded specs,
    /// population and history sizes consistent. (The checksum only proves the bytes are those
    /// that were written.)
    ///
    /// # Errors
    /// [`CheckpointError::Content`] naming `file` and the first impossible value.
    pub fn validate(&self, file: &Path) -> Result<(), CheckpointError> {
        let bad = |message: String| CheckpointError::Content {
            file: file.to_path_buf(),
            message,
        };
        let s = &self.state;
        let n_seeds = self.specs.len();
        // Single-coin seeds, the programs' risk genes (not in a portfolio run), portfolio seeds.
        let names = self.run.spec_names();
        let program = self.run.program_index();
        if self.specs.len() != names.len()
            || self.specs.iter().zip(&names).any(|(p, n)| &p.name != n)
        {
            return Err(bad(
                "the recorded gene specs do not match the run's seeds".into()
            ));
        }
        let pop = self.run.settings.population;
        let islands = self.run.islands.map_or(1, |i| i.count as usize);
        if pop < 2 || s.population.len() != pop * islands {
            return Err(bad(format!(
                "population of {} members, settings say {}",
                s.population.len(),
                if islands == 1 {
                    pop.to_string()
                } else {
                    format!("{islands} islands of {pop}")
                }
            )));
        }
        if s.history.len() != s.generation as usize + 1 {
            return Err(bad(format!(
                "{} history rows for generation {}",
                s.history.len(),
                s.generation
            )));
        }
        for (i, m) in s.population.iter().enumerate() {
            let Some(spec) = self.specs.get(m.seed as usize) else {
                return Err(bad(match program {
                    Some(p) if p + 1 == n_seeds => format!(
                        "member {i}: seed index {} past the {p} seeds (index {p} is a program)",
                        m.seed
                    ),
                    _ => format!(
                        "member {i}: seed index {} past the {n_seeds} recorded gene specs",
                        m.seed
                    ),
                }));
            };
            let is_program = program == Some(usize::from(m.seed));
            match (&m.program, is_program) {
                (Some(p), true) => self.check_program(p).map_err(|e| {
                    bad(format!(
                        "member {i}: its program is not a valid program: {e}"
                    ))
                })?,
                (None, false) => {}
                (Some(_), false) => {
                    return Err(bad(format!(
                        "member {i} ({}): a seed's genome carries a program",
                        spec.name
                    )))
                }
                (None, true) => {
                    return Err(bad(format!(
                        "member {i}: a program member without a program"
                    )))
                }
            }
            if m.genes.len() != spec.genes.len() {
                return Err(bad(format!(
                    "member {i} ({}): {} genes, the spec has {}",
                    spec.name,
                    m.genes.len(),
                    spec.genes.len()
                )));
            }
            for (v, g) in m.genes.iter().zip(&spec.genes) {
                let whole = g.kind == GeneKind::Float || v.fract() == 0.0;
                if !(v.is_finite() && *v >= g.min && *v <= g.max && whole) {
                    return Err(bad(format!(
                        "member {i} ({}): gene `{}` = {v} outside its spec ({})",
                        spec.name,
                        g.name,
                        describe(g)
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Checkpoint {
    /// A stored program is one this build reads: its text parses back (types, operators, the
    /// run's seeds and their genes) to the same program, within the run's limits.
    fn check_program(&self, p: &Program) -> Result<(), String> {
        let lookup = |name: &str| -> Option<SeedSpec> {
            self.run
                .seeds
                .iter()
                .any(|n| n == name)
                .then(|| crate::seeds::find(name).ok().map(|e| e.spec.clone()))
                .flatten()
        };
        let text = program::print(p, &lookup);
        let back = program::parse(&text, &lookup).map_err(|e| e.to_string())?;
        if !same_program(&back, p) {
            return Err(format!("it does not read back as itself: {text}"));
        }
        if !self.run.settings.limits.allow(p) {
            return Err(format!(
                "{} nodes, depth {}: over the run's limits",
                p.size(),
                p.roots
                    .iter()
                    .flatten()
                    .map(|r| r.depth())
                    .max()
                    .unwrap_or(0)
            ));
        }
        Ok(())
    }
}

/// Programs equal up to the bits of their numbers.
fn same_program(a: &Program, b: &Program) -> bool {
    fn node(a: &program::Node, b: &program::Node) -> bool {
        a.op == b.op
            && a.ty == b.ty
            && a.value.to_bits() == b.value.to_bits()
            && match (&a.seed, &b.seed) {
                (None, None) => true,
                (Some(x), Some(y)) => {
                    x.seed == y.seed
                        && x.long == y.long
                        && x.genes.len() == y.genes.len()
                        && x.genes
                            .iter()
                            .zip(&y.genes)
                            .all(|(u, v)| u.to_bits() == v.to_bits())
                }
                _ => false,
            }
            && a.args.len() == b.args.len()
            && a.args.iter().zip(&b.args).all(|(x, y)| node(x, y))
    }
    a.roots.iter().zip(&b.roots).all(|(x, y)| match (x, y) {
        (None, None) => true,
        (Some(x), Some(y)) => node(x, y),
        _ => false,
    })
}

pub use crate::genome::{fnv1a, fnv1a_update, FNV_OFFSET};

/// A fingerprint of market data: coin names, every candle field, the per-bar funding and the
/// per-bar Fear & Greed values when the data has them.
pub fn fingerprint(markets: &[Market]) -> u64 {
    let mut bytes = Vec::new();
    for m in markets {
        bytes.extend_from_slice(m.coin.as_bytes());
        bytes.push(0);
        let c = &m.candles;
        for i in 0..c.len() {
            bytes.extend_from_slice(&c.ts[i].to_le_bytes());
            for v in [
                c.open[i],
                c.high[i],
                c.low[i],
                c.close[i],
                c.volume[i],
                m.funding_per_bar[i],
            ] {
                bytes.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
        if let Some(fg) = &m.fear_greed {
            bytes.extend_from_slice(b"fear_greed");
            for v in fg {
                bytes.extend_from_slice(&v.to_bits().to_le_bytes());
            }
        }
    }
    fnv1a(&bytes)
}

/// Serializes a checkpoint with header and checksum.
///
/// # Errors
/// [`CheckpointError::Encode`] if serialization fails.
pub fn encode(ck: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    seal(MAGIC, ck)
}

/// `value` in the checkpoints' envelope: the 8-byte `magic` tag, [`FORMAT_VERSION`], the
/// payload's length, the payload (serde + bincode 2) and its FNV-1a 64 checksum. The island
/// run's files use it with tags of their own.
///
/// # Errors
/// [`CheckpointError::Encode`] if serialization fails.
pub fn seal<T: Serialize>(magic: &[u8; 8], value: &T) -> Result<Vec<u8>, CheckpointError> {
    let payload = bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| CheckpointError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(payload.len() + 28);
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&fnv1a(&payload).to_le_bytes());
    Ok(out)
}

/// Parses checkpoint bytes read from `file`.
///
/// # Errors
/// [`CheckpointError`] for a foreign, truncated, other-version or corrupted file.
pub fn decode(bytes: &[u8], file: &Path) -> Result<Checkpoint, CheckpointError> {
    if bytes.len() < 8 || &bytes[..8] != MAGIC {
        return Err(CheckpointError::Foreign {
            file: file.to_path_buf(),
        });
    }
    open(MAGIC, bytes, file)
}

/// Reads a value sealed by [`seal`] with `magic` from the bytes of `file`.
///
/// # Errors
/// [`CheckpointError`] for a foreign ([`CheckpointError::ForeignKind`]), truncated,
/// other-version or corrupted file.
pub fn open<T: serde::de::DeserializeOwned>(
    magic: &[u8; 8],
    bytes: &[u8],
    file: &Path,
) -> Result<T, CheckpointError> {
    let file = file.to_path_buf();
    if bytes.len() < 8 || &bytes[..8] != magic {
        return Err(CheckpointError::ForeignKind {
            file,
            tag: String::from_utf8_lossy(magic).into_owned(),
        });
    }
    if bytes.len() < 20 {
        return Err(CheckpointError::Truncated {
            file,
            len: bytes.len(),
            expected: 28,
        });
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != FORMAT_VERSION {
        return Err(CheckpointError::Version {
            file,
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[12..20]);
    let len = u64::from_le_bytes(len8);
    let expected = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(28))
        .unwrap_or(usize::MAX);
    if bytes.len() != expected {
        return Err(CheckpointError::Truncated {
            file,
            len: bytes.len(),
            expected,
        });
    }
    let payload = &bytes[20..expected - 8];
    let mut sum8 = [0u8; 8];
    sum8.copy_from_slice(&bytes[expected - 8..]);
    if u64::from_le_bytes(sum8) != fnv1a(payload) {
        return Err(CheckpointError::Checksum { file });
    }
    let (value, used): (T, usize) =
        bincode::serde::decode_from_slice(payload, bincode::config::standard()).map_err(|e| {
            CheckpointError::Decode {
                file: file.clone(),
                message: e.to_string(),
            }
        })?;
    if used != payload.len() {
        return Err(CheckpointError::Decode {
            file,
            message: format!("{} trailing bytes", payload.len() - used),
        });
    }
    Ok(value)
}

/// Writes `ck` to `path` atomically (temporary file, flush, rename).
///
/// # Errors
/// [`CheckpointError`] when encoding or writing fails; an existing file is left intact.
pub fn write(path: &Path, ck: &Checkpoint) -> Result<(), CheckpointError> {
    write_atomic(path, &encode(ck)?)?;
    Ok(())
}

/// Reads and verifies a checkpoint (checksum and content); its fitness cache is not loaded (see
/// [`CacheLog::resume`]).
///
/// # Errors
/// [`CheckpointError`] naming the file.
pub fn read(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    let ck = decode(&bytes, path)?;
    ck.validate(path)?;
    Ok(ck)
}

/// The append-only fitness-cache log of a run folder.
#[derive(Debug)]
pub struct CacheLog {
    path: PathBuf,
    file: File,
    at: CacheRef,
}

fn cache_error(file: &Path, message: String) -> CheckpointError {
    CheckpointError::Cache {
        file: file.to_path_buf(),
        message,
    }
}

/// Parses log blocks into a cache.
fn parse_blocks(
    file: &Path,
    bytes: &[u8],
) -> Result<BTreeMap<CacheKey, Evaluation>, CheckpointError> {
    let mut cache = BTreeMap::new();
    let mut i = 0usize;
    while i < bytes.len() {
        let bad = |m: &str| cache_error(file, format!("corrupted block at byte {i}: {m}"));
        if bytes.len() - i < 16 || &bytes[i..i + 4] != BLOCK_MAGIC {
            return Err(bad("no block header"));
        }
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&bytes[i + 8..i + 16]);
        let len = usize::try_from(u64::from_le_bytes(len8)).unwrap_or(usize::MAX);
        let end = i
            .checked_add(16)
            .and_then(|a| a.checked_add(len))
            .and_then(|a| a.checked_add(8))
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("block runs past the end"))?;
        let payload = &bytes[i + 16..end - 8];
        let mut sum8 = [0u8; 8];
        sum8.copy_from_slice(&bytes[end - 8..end]);
        if u64::from_le_bytes(sum8) != fnv1a(payload) {
            return Err(bad("checksum mismatch"));
        }
        let (entries, used): (Vec<(CacheKey, Evaluation)>, usize) =
            bincode::serde::decode_from_slice(payload, bincode::config::standard())
                .map_err(|e| bad(&e.to_string()))?;
        if used != payload.len() {
            return Err(bad("trailing bytes"));
        }
        cache.extend(entries);
        i = end;
    }
    Ok(cache)
}

/// A run's fitness cache: every distinct genome or program evaluated, with its evaluation.
pub type Cache = BTreeMap<CacheKey, Evaluation>;

/// The fitness cache of checkpoint `ck_file`: its prefix `at` of the `cache.log` beside it,
/// checked against the digest. Also returns the log's path and the prefix's bytes.
fn read_prefix(ck_file: &Path, at: CacheRef) -> Result<(PathBuf, Vec<u8>, Cache), CheckpointError> {
    let dir = ck_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let src = dir.join(CACHE_FILE);
    let mut bytes = fs::read(&src).map_err(|e| {
            cache_error(
                &src,
                format!(
                    "cannot read the fitness cache of {} ({e}); a checkpoint needs the {CACHE_FILE} of its run folder",
                    ck_file.display()
                ),
            )
        })?;
    let len = usize::try_from(at.bytes).unwrap_or(usize::MAX);
    if bytes.len() < len {
        return Err(cache_error(
            &src,
            format!(
                "{} bytes, but {} needs the first {}; the log was truncated",
                bytes.len(),
                ck_file.display(),
                at.bytes
            ),
        ));
    }
    bytes.truncate(len);
    if fnv1a(&bytes) != at.digest {
        return Err(cache_error(
                &src,
                format!(
                    "does not match {} (digest differs): the log belongs to another run or was rewritten",
                    ck_file.display()
                ),
            ));
    }
    let cache = parse_blocks(&src, &bytes)?;
    Ok((src, bytes, cache))
}

/// Every evaluation checkpoint `ck_file` knows (the run's trials), read without writing.
///
/// # Errors
/// As [`CacheLog::resume`].
pub fn read_cache(ck_file: &Path, at: CacheRef) -> Result<Cache, CheckpointError> {
    Ok(read_prefix(ck_file, at)?.2)
}

impl CacheLog {
    /// Starts an empty log in `dir`, replacing any there.
    ///
    /// # Errors
    /// [`CheckpointError::WriteIo`] when the file cannot be created.
    pub fn create(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(CACHE_FILE);
        let io = |source| CheckpointError::WriteIo {
            file: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let file = File::create(&path).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Self {
            path,
            file,
            at: CacheRef {
                bytes: 0,
                digest: FNV_OFFSET,
            },
        })
    }

    /// Reads the cache of checkpoint `ck_file` (its prefix of the log beside it) and continues
    /// the log in `out_dir` from exactly that prefix: later blocks of the same log are cut off,
    /// and a log in another folder is started as a copy of the prefix.
    ///
    /// # Errors
    /// [`CheckpointError::Cache`] when the log is missing, shorter than the checkpoint says, or
    /// does not match its digest (another run's log); write errors.
    pub fn resume(
        ck_file: &Path,
        at: CacheRef,
        out_dir: &Path,
    ) -> Result<(Self, BTreeMap<CacheKey, Evaluation>), CheckpointError> {
        let (src, prefix, cache) = read_prefix(ck_file, at)?;
        let prefix = &prefix[..];
        let path = out_dir.join(CACHE_FILE);
        let io = |source| CheckpointError::WriteIo {
            file: path.clone(),
            source,
        };
        fs::create_dir_all(out_dir).map_err(io)?;
        let same = fs::canonicalize(&src).ok() == fs::canonicalize(&path).ok();
        let file = if same {
            let f = OpenOptions::new().write(true).open(&path).map_err(io)?;
            f.set_len(at.bytes).map_err(io)?;
            f
        } else {
            let mut f = File::create(&path).map_err(io)?;
            f.write_all(prefix).map_err(io)?;
            f
        };
        file.sync_all().map_err(io)?;
        let mut file = file;
        use std::io::Seek as _;
        file.seek(std::io::SeekFrom::End(0)).map_err(io)?;
        Ok((Self { path, file, at }, cache))
    }

    /// Appends generation `generation`'s fresh entries as one block, synced to disk; returns the
    /// new prefix for the generation's checkpoint.
    ///
    /// # Errors
    /// [`CheckpointError`] when encoding or writing fails.
    pub fn append(
        &mut self,
        generation: u32,
        entries: &[(CacheKey, Evaluation)],
    ) -> Result<CacheRef, CheckpointError> {
        let payload = bincode::serde::encode_to_vec(entries, bincode::config::standard())
            .map_err(|e| CheckpointError::Encode(e.to_string()))?;
        let mut block = Vec::with_capacity(payload.len() + 24);
        block.extend_from_slice(BLOCK_MAGIC);
        block.extend_from_slice(&generation.to_le_bytes());
        block.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        block.extend_from_slice(&payload);
        block.extend_from_slice(&fnv1a(&payload).to_le_bytes());
        let io = |source| CheckpointError::WriteIo {
            file: self.path.clone(),
            source,
        };
        self.file.write_all(&block).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.at = CacheRef {
            bytes: self.at.bytes + block.len() as u64,
            digest: fnv1a_update(self.at.digest, &block),
        };
        Ok(self.at)
    }
}

/// The checkpoint file of generation `g` in `dir`.
pub fn path_for(dir: &Path, g: u32) -> PathBuf {
    dir.join(format!("gen{g}.bin"))
}
