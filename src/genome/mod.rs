//! Gene specs (read from the top-level `seeds/*.toml`), genomes, and the one repair function.
//!
//! A genome is a vector of `f64`, one value per gene of its seed's spec: integers are stored
//! as whole numbers, choices as the index of the choice. Bounds, defaults and meanings live only
//! in the TOML files; the code reads genes by name.

pub mod program;

use serde::{Deserialize, Serialize};

/// FNV-1a 64's offset basis: the hash of no bytes.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues an FNV-1a 64 hash `h` over `bytes` (what checksums, ids and fingerprints use).
pub fn fnv1a_update(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_update(FNV_OFFSET, bytes)
}

/// Errors in a gene spec file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenomeError {
    #[error("{file}: {message}")]
    Spec { file: String, message: String },
    #[error("seed {seed}: unknown gene `{gene}` (genes: {known})")]
    UnknownGene {
        seed: String,
        gene: String,
        known: String,
    },
    #[error("seed {seed}: gene {gene}: {message}")]
    BadValue {
        seed: String,
        gene: String,
        message: String,
    },
}

/// What values a gene takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneKind {
    Int,
    Float,
    Choice,
}

/// One gene: kind, bounds, default and meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneSpec {
    pub name: String,
    pub kind: GeneKind,
    /// Lower bound (0 for a choice).
    pub min: f64,
    /// Upper bound (number of choices − 1 for a choice).
    pub max: f64,
    /// Default value (index for a choice).
    pub default: f64,
    /// Names of the choices (empty unless `kind` is `Choice`).
    pub choices: Vec<String>,
    /// One line: what the gene means.
    pub meaning: String,
    /// An int gene that is a look-back period in bars (`lookback = true` in the spec): the
    /// strategy needs that many bars before its signal means anything.
    pub lookback: bool,
}

impl GeneSpec {
    /// Brings `v` into this gene's domain: `NaN` becomes the default, integers and choices are
    /// rounded (half away from zero), then everything is clamped to `[min, max]`.
    pub fn repair(&self, v: f64) -> f64 {
        if v.is_nan() {
            return self.default;
        }
        let v = match self.kind {
            GeneKind::Float => v,
            GeneKind::Int | GeneKind::Choice => v.round(),
        };
        v.clamp(self.min, self.max)
    }

    /// Human-readable value: the choice name for a choice, a whole number for an int.
    pub fn format(&self, v: f64) -> String {
        match self.kind {
            GeneKind::Choice => self
                .choices
                .get(v as usize)
                .cloned()
                .unwrap_or_else(|| v.to_string()),
            GeneKind::Int => format!("{}", v as i64),
            GeneKind::Float => format!("{v}"),
        }
    }

    /// Like [`GeneSpec::format`], floats to 6 significant digits (for tables and reports; files
    /// keep the exact value).
    pub fn format_short(&self, v: f64) -> String {
        match self.kind {
            GeneKind::Float => significant(v, 6),
            _ => self.format(v),
        }
    }

    /// Parses a value given on the command line (a number, or a choice name).
    ///
    /// # Errors
    /// A message when the text is not a number / not one of the choices, or is out of bounds.
    pub fn parse(&self, text: &str) -> Result<f64, String> {
        let v = match self.kind {
            GeneKind::Choice => self
                .choices
                .iter()
                .position(|c| c == text)
                .map(|i| i as f64)
                .ok_or_else(|| format!("`{text}` is not one of {}", self.choices.join(", ")))?,
            GeneKind::Int => text
                .parse::<i64>()
                .map(|i| i as f64)
                .map_err(|_| format!("`{text}` is not an integer"))?,
            GeneKind::Float => text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{text}` is not a number"))?,
        };
        if v < self.min || v > self.max {
            return Err(format!(
                "{text} is out of bounds [{}, {}]",
                self.format(self.min),
                self.format(self.max)
            ));
        }
        Ok(v)
    }
}

/// What a seed trades: one coin, or one account across the coins of a universe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedKind {
    /// One coin: per-bar targets (the twelve single-coin seeds, programs).
    #[default]
    Coin,
    /// A cross-sectional seed: per-coin scores become weights of one account.
    Portfolio,
}

impl SeedKind {
    /// `coin` or `portfolio`, as in the spec files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coin => "coin",
            Self::Portfolio => "portfolio",
        }
    }
}

/// A seed's description and genes (its own genes followed by the shared risk genes, or for a
/// portfolio seed the shared construction genes).
#[derive(Debug, Clone, PartialEq)]
pub struct SeedSpec {
    pub name: String,
    pub description: String,
    pub kind: SeedKind,
    pub genes: Vec<GeneSpec>,
}

impl SeedSpec {
    /// A fingerprint of what decides how a genome's values are read, over stable bytes: FNV-1a
    /// 64 of the seed's name, then per gene its name, its kind (`int`, `float`, `choice`), its
    /// bounds as little-endian f64 bits and its choice names, each text followed by a 0 byte.
    /// Defaults and meanings are left out: changing them does not change what a genome means.
    pub fn fingerprint(&self) -> u64 {
        let text = |h: u64, t: &str| fnv1a_update(fnv1a_update(h, t.as_bytes()), &[0]);
        let mut h = text(FNV_OFFSET, &self.name);
        for g in &self.genes {
            h = text(h, &g.name);
            h = text(
                h,
                match g.kind {
                    GeneKind::Int => "int",
                    GeneKind::Float => "float",
                    GeneKind::Choice => "choice",
                },
            );
            h = fnv1a_update(h, &g.min.to_bits().to_le_bytes());
            h = fnv1a_update(h, &g.max.to_bits().to_le_bytes());
            for c in &g.choices {
                h = text(h, c);
            }
        }
        h
    }

    /// Position of gene `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.genes.iter().position(|g| g.name == name)
    }

    /// The default genome.
    pub fn default_genome(&self) -> Vec<f64> {
        self.genes.iter().map(|g| g.default).collect()
    }

    /// Repairs every gene of `genome` into bounds (see [`GeneSpec::repair`]). The one repair
    /// function: variation operators and the command line all go through it.
    pub fn repair(&self, genome: &mut [f64]) {
        for (v, g) in genome.iter_mut().zip(&self.genes) {
            *v = g.repair(*v);
        }
    }

    /// Sets gene `name` from command-line text.
    ///
    /// # Errors
    /// [`GenomeError`] for an unknown gene or a bad value.
    pub fn set(&self, genome: &mut [f64], name: &str, text: &str) -> Result<(), GenomeError> {
        let i = self.index(name).ok_or_else(|| GenomeError::UnknownGene {
            seed: self.name.clone(),
            gene: name.into(),
            known: self
                .genes
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        genome[i] = self.genes[i]
            .parse(text)
            .map_err(|message| GenomeError::BadValue {
                seed: self.name.clone(),
                gene: name.into(),
                message,
            })?;
        Ok(())
    }

    /// Reads gene values by name. Panics on an unknown name: seeds only ask for genes their
    /// spec defines, and the registry test checks every seed against its spec.
    pub fn view<'a>(&'a self, genome: &'a [f64]) -> Genes<'a> {
        Genes { spec: self, genome }
    }

    /// The longest look-back period of `genome` in bars and its gene (`None` without look-back
    /// genes).
    pub fn longest_lookback(&self, genome: &[f64]) -> Option<(&str, usize)> {
        self.genes
            .iter()
            .zip(genome)
            .filter(|(g, _)| g.lookback)
            .map(|(g, v)| (g.name.as_str(), *v as usize))
            .max_by_key(|&(_, v)| v)
    }

    /// Parses a spec file. `risk` genes (shared by every seed) are appended.
    ///
    /// # Errors
    /// [`GenomeError::Spec`] naming the file and the gene for a malformed file, unordered
    /// bounds, a default outside its bounds, a duplicate gene or a missing field.
    pub fn parse(file: &str, text: &str, risk: &[GeneSpec]) -> Result<SeedSpec, GenomeError> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| GenomeError::Spec {
            file: file.into(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let mut genes = parse_genes(file, raw.genes)?;
        genes.extend(risk.iter().cloned());
        for (i, g) in genes.iter().enumerate() {
            if genes[..i].iter().any(|h| h.name == g.name) {
                return Err(GenomeError::Spec {
                    file: file.into(),
                    message: format!("gene `{}` is defined twice", g.name),
                });
            }
        }
        if raw.name.is_empty() {
            return Err(GenomeError::Spec {
                file: file.into(),
                message: "name must not be empty".into(),
            });
        }
        Ok(SeedSpec {
            name: raw.name,
            description: raw.description,
            kind: raw.kind,
            genes,
        })
    }
}

/// Parses the gene list of a file (used for the shared risk genes too).
///
/// # Errors
/// As [`SeedSpec::parse`].
pub fn parse_risk_genes(file: &str, text: &str) -> Result<Vec<GeneSpec>, GenomeError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct RawRisk {
        genes: Vec<RawGene>,
    }
    let raw: RawRisk = toml::from_str(text).map_err(|e| GenomeError::Spec {
        file: file.into(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    parse_genes(file, raw.genes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    description: String,
    #[serde(default)]
    kind: SeedKind,
    genes: Vec<RawGene>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGene {
    name: String,
    kind: GeneKind,
    min: Option<f64>,
    max: Option<f64>,
    default: toml::Value,
    choices: Option<Vec<String>>,
    meaning: String,
    #[serde(default)]
    lookback: bool,
}

fn parse_genes(file: &str, raw: Vec<RawGene>) -> Result<Vec<GeneSpec>, GenomeError> {
    raw.into_iter()
        .map(|g| {
            let err = |m: String| GenomeError::Spec {
                file: file.into(),
                message: format!("gene `{}`: {m}", g.name),
            };
            if g.meaning.trim().is_empty() {
                return Err(err("meaning must not be empty".into()));
            }
            if g.lookback && g.kind != GeneKind::Int {
                return Err(err("only an int gene can be a `lookback` period".into()));
            }
            let (min, max, default, choices) = match g.kind {
                GeneKind::Choice => {
                    let choices = g.choices.clone().unwrap_or_default();
                    if choices.is_empty() {
                        return Err(err("a choice gene needs `choices`".into()));
                    }
                    if g.min.is_some() || g.max.is_some() {
                        return Err(err("a choice gene has no min/max".into()));
                    }
                    let d = g
                        .default
                        .as_str()
                        .and_then(|d| choices.iter().position(|c| c == d))
                        .ok_or_else(|| {
                            err(format!("default must be one of {}", choices.join(", ")))
                        })?;
                    (0.0, (choices.len() - 1) as f64, d as f64, choices)
                }
                GeneKind::Int | GeneKind::Float => {
                    let (Some(min), Some(max)) = (g.min, g.max) else {
                        return Err(err("needs min and max".into()));
                    };
                    if g.choices.is_some() {
                        return Err(err("only a choice gene has `choices`".into()));
                    }
                    let d = match &g.default {
                        toml::Value::Integer(i) => *i as f64,
                        toml::Value::Float(f) => *f,
                        _ => return Err(err("default must be a number".into())),
                    };
                    if g.kind == GeneKind::Int && [min, max, d].iter().any(|v| v.fract() != 0.0) {
                        return Err(err(
                            "an int gene needs whole-number min, max and default".into()
                        ));
                    }
                    if !(min.is_finite() && max.is_finite() && min < max) {
                        return Err(err(format!(
                            "bounds must be ordered: min {min} < max {max}"
                        )));
                    }
                    if !(d >= min && d <= max) {
                        return Err(err(format!("default {d} is outside [{min}, {max}]")));
                    }
                    (min, max, d, Vec::new())
                }
            };
            Ok(GeneSpec {
                name: g.name.clone(),
                kind: g.kind,
                min,
                max,
                default,
                choices,
                meaning: g.meaning.clone(),
                lookback: g.lookback,
            })
        })
        .collect()
}

/// Gene values of one genome, read by name.
#[derive(Clone, Copy)]
pub struct Genes<'a> {
    spec: &'a SeedSpec,
    genome: &'a [f64],
}

impl Genes<'_> {
    fn at(&self, name: &str) -> f64 {
        match self.spec.index(name) {
            Some(i) => self.genome[i],
            None => panic!("seed {} has no gene `{name}`", self.spec.name),
        }
    }

    /// A float gene.
    pub fn float(&self, name: &str) -> f64 {
        self.at(name)
    }

    /// An int gene as a count/period (at least 1).
    pub fn period(&self, name: &str) -> usize {
        self.at(name).max(1.0) as usize
    }

    /// A choice gene's name.
    pub fn choice(&self, name: &str) -> &str {
        let i = self.spec.index(name).unwrap_or(usize::MAX);
        self.spec
            .genes
            .get(i)
            .and_then(|g| g.choices.get(self.genome[i] as usize))
            .map(String::as_str)
            .unwrap_or_else(|| panic!("seed {} has no choice gene `{name}`", self.spec.name))
    }
}

/// `v` rounded to `digits` significant digits, without trailing zeros (`0.706812`, `37.3742`,
/// `1234570`).
pub fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return if v.is_finite() {
            "0".into()
        } else {
            v.to_string()
        };
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = digits - 1 - magnitude;
    let s = if decimals >= 0 {
        format!("{v:.*}", decimals as usize)
    } else {
        let unit = 10f64.powi(-decimals);
        format!("{:.0}", (v / unit).round() * unit)
    };
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn six_significant_digits() {
        use super::significant;
        assert_eq!(significant(37.374_212_34, 6), "37.3742");
        assert_eq!(significant(0.706_812_34, 6), "0.706812");
        assert_eq!(significant(0.000_123_456_789, 6), "0.000123457");
        assert_eq!(significant(1_234_567.8, 6), "1234570");
        assert_eq!(significant(2.0, 6), "2");
        assert_eq!(significant(-0.5, 6), "-0.5");
        assert_eq!(significant(0.0, 6), "0");
        assert_eq!(significant(-0.000_000_1, 2), "-0.0000001");
        assert_eq!(significant(9.999_999_9, 6), "10");
    }

    use super::*;

    const SPEC: &str = r#"
name = "t"
description = "test"
[[genes]]
name = "p"
kind = "int"
min = 2
max = 10
default = 5
meaning = "a period"
[[genes]]
name = "x"
kind = "float"
min = 0.5
max = 1.5
default = 1.0
meaning = "a level"
[[genes]]
name = "mode"
kind = "choice"
choices = ["a", "b", "c"]
default = "b"
meaning = "a mode"
"#;

    #[test]
    fn parses_and_repairs() {
        let s = SeedSpec::parse("t.toml", SPEC, &[]).unwrap();
        assert_eq!(s.default_genome(), vec![5.0, 1.0, 1.0]);
        let mut g = vec![10.6, -3.0, 7.2];
        s.repair(&mut g);
        assert_eq!(g, vec![10.0, 0.5, 2.0]);
        let mut g = vec![f64::NAN, 1.49, 0.4];
        s.repair(&mut g);
        assert_eq!(g, vec![5.0, 1.49, 0.0]);
        let mut g = vec![3.5, 1.0, 1.0];
        s.repair(&mut g);
        assert_eq!(g[0], 4.0);
        assert_eq!(s.view(&g).choice("mode"), "b");
        assert_eq!(s.view(&g).period("p"), 4);
        s.set(&mut g, "mode", "c").unwrap();
        assert_eq!(g[2], 2.0);
        let e = s.set(&mut g, "p", "11").unwrap_err().to_string();
        assert_eq!(e, "seed t: gene p: 11 is out of bounds [2, 10]");
        let e = s.set(&mut g, "q", "1").unwrap_err().to_string();
        assert!(e.contains("unknown gene `q`"), "{e}");
    }

    #[test]
    fn bad_specs_are_named() {
        let bad = |from: &str, to: &str| {
            SeedSpec::parse("s.toml", &SPEC.replacen(from, to, 1), &[])
                .unwrap_err()
                .to_string()
        };
        assert!(bad("max = 10", "max = 1").contains("s.toml: gene `p`: bounds must be ordered"));
        assert!(bad("default = 5", "default = 50").contains("gene `p`: default 50 is outside"));
        assert!(bad("default = \"b\"", "default = \"z\"")
            .contains("gene `mode`: default must be one of"));
        assert!(bad("default = 5", "default = 5.5").contains("whole-number"));
        assert!(bad("meaning = \"a level\"", "").contains("s.toml"));
        assert!(bad("name = \"x\"", "name = \"p\"").contains("gene `p` is defined twice"));
    }
}
