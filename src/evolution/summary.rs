//! A run's results, ranked: the first front with duplicates collapsed, each member with its
//! training and validation figures side by side, a stable id and a warning flag.
//!
//! **Ranking score.** `score = min(training Sharpe, validation Sharpe)`, both the aggregated
//! Sharpe objective of [`Figures`]. A member ranks high only when it did well on the data it was
//! selected on *and* on the validation segment that followed; a member that shines in training
//! and fails out of sample is pushed down by its validation figure. Feasible members (enough
//! trades) come before infeasible ones; ties go to the higher training Sharpe, then the id.
//!
//! **Flags.** A member is flagged when its validation Sharpe is negative (`val<0`) or below half
//! its training Sharpe (`val<train/2`): signs of a training fit that did not carry over.
//!
//! **Ids.** A member's id is its genome's ([`crate::seeds::Genome::id`]): the same genome has
//! the same id in every checkpoint, in `front.csv` and in the registry, and equal genomes
//! collapse into one row.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use super::{
    problem::{Figures, Scored},
    Member,
};
use crate::genome::{
    program::{print, Program, SpecLookup},
    SeedSpec,
};

/// Columns of `front.csv`, in order.
pub const FRONT_HEADER: &str = "id,seed,genes,program,copies,score,flag,feasible,\
train_sharpe,train_consistency,train_max_drawdown,train_turnover,train_total_return,train_trades,\
validation_sharpe,validation_consistency,validation_max_drawdown,validation_turnover,\
validation_total_return,validation_trades";

pub use crate::seeds::member_id;

/// A program on one line (the printer's layout without its line breaks).
pub fn program_line(p: &Program, specs: SpecLookup<'_>) -> String {
    print(p, specs).replace("\n  ", " ")
}

/// Why a member is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Validation Sharpe below 0.
    NegativeValidation,
    /// Validation Sharpe at least 0 but below half the training Sharpe.
    ValidationBelowHalfTraining,
}

impl Flag {
    /// The flag of a training / validation Sharpe pair, if any.
    pub fn of(train_sharpe: f64, validation_sharpe: f64) -> Option<Self> {
        if validation_sharpe < 0.0 {
            Some(Self::NegativeValidation)
        } else if validation_sharpe < 0.5 * train_sharpe {
            Some(Self::ValidationBelowHalfTraining)
        } else {
            None
        }
    }

    /// Short text for tables and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NegativeValidation => "val<0",
            Self::ValidationBelowHalfTraining => "val<train/2",
        }
    }
}

/// One distinct member of a run, with its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub id: String,
    /// Seed index in the run.
    #[serde(skip)]
    pub seed_index: u16,
    pub seed: String,
    #[serde(skip)]
    pub genes: Vec<f64>,
    /// Gene name → value as text (exact; choices by name); a program's risk genes.
    #[serde(rename = "genes")]
    pub gene_text: BTreeMap<String, String>,
    /// A program member's program.
    #[serde(skip)]
    pub program: Option<Program>,
    /// The program on one line.
    #[serde(rename = "program")]
    pub program_text: Option<String>,
    /// How many members of the population have this genome.
    pub copies: usize,
    /// The ranking score (see the module documentation).
    pub score: f64,
    pub flag: Option<Flag>,
    pub train: Figures,
    pub validation: Figures,
}

impl Ranked {
    /// `name=value` pairs in gene order, exact (`short`: floats to 6 significant digits).
    pub fn genes_line(&self, spec: &SeedSpec, short: bool) -> String {
        genes_line(spec, &self.genes, short)
    }

    /// The program (if any) then the genes to 6 significant digits, for tables and reports.
    pub fn short_text(&self, specs: &[&SeedSpec]) -> String {
        let genes = self.genes_line(specs[self.seed_index as usize], true);
        match &self.program_text {
            Some(p) => format!("{p} {genes}"),
            None => genes,
        }
    }
}

/// `name=value` pairs in gene order, exact (`short`: floats to 6 significant digits).
pub fn genes_line(spec: &SeedSpec, genes: &[f64], short: bool) -> String {
    spec.genes
        .iter()
        .zip(genes)
        .map(|(g, v)| {
            let text = if short {
                g.format_short(*v)
            } else {
                g.format(*v)
            };
            format!("{}={text}", g.name)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Orders ranked members: feasible first, then by score, training Sharpe and id.
pub fn order(rows: &mut [Ranked]) {
    rows.sort_by(|a, b| {
        b.train
            .feasible
            .cmp(&a.train.feasible)
            .then(b.score.total_cmp(&a.score))
            .then(b.train.sharpe.total_cmp(&a.train.sharpe))
            .then(a.id.cmp(&b.id))
    });
}

/// Collapses `members` into distinct genomes, evaluates each on training and validation (in
/// parallel) and ranks them.
pub fn rank<P: Scored>(problem: &P, members: &[&Member]) -> Vec<Ranked> {
    use rayon::prelude::*;
    let specs = problem.specs();
    let mut distinct: Vec<(&Member, super::CacheKey, usize)> = Vec::new();
    let mut seen: BTreeMap<super::CacheKey, usize> = BTreeMap::new();
    for m in members {
        let key = super::key(m.seed, &m.genes, m.program.as_ref(), &specs);
        match seen.get(&key) {
            Some(&i) => distinct[i].2 += 1,
            None => {
                seen.insert(key.clone(), distinct.len());
                distinct.push((m, key, 1));
            }
        }
    }
    let lookup = super::lookup(&specs);
    let mut rows: Vec<Ranked> = distinct
        .par_iter()
        .map(|(m, key, copies)| {
            let copies = *copies;
            let spec = specs[m.seed as usize];
            let p = m.program.as_ref();
            let train = problem.figures(m.seed, &m.genes, p, false);
            let validation = problem.figures(m.seed, &m.genes, p, true);
            Ranked {
                id: member_id(&spec.name, &m.genes, key.2.as_deref()),
                seed_index: m.seed,
                seed: spec.name.clone(),
                genes: m.genes.clone(),
                gene_text: spec
                    .genes
                    .iter()
                    .zip(&m.genes)
                    .map(|(g, v)| (g.name.clone(), g.format(*v)))
                    .collect(),
                program: m.program.clone(),
                program_text: p.map(|p| program_line(p, &lookup)),
                copies,
                score: train.sharpe.min(validation.sharpe),
                flag: Flag::of(train.sharpe, validation.sharpe),
                train,
                validation,
            }
        })
        .collect();
    order(&mut rows);
    rows
}

/// Columns a portfolio run's `front.csv` adds after [`FRONT_HEADER`].
pub const PORTFOLIO_HEADER: &str = "train_rank_ic,train_rank_ic_t,validation_rank_ic,\
validation_rank_ic_t,train_avg_held,validation_avg_held,validation_capacity_max,\
validation_capacity_median";

/// `front.csv`: [`FRONT_HEADER`] and one line per ranked member, in rank order; a portfolio
/// run's adds [`PORTFOLIO_HEADER`].
pub fn front_csv(rows: &[Ranked], specs: &[&SeedSpec]) -> String {
    let portfolio = rows.iter().any(|r| r.train.portfolio.is_some());
    let mut csv = String::from(FRONT_HEADER);
    if portfolio {
        csv.push(',');
        csv.push_str(PORTFOLIO_HEADER);
    }
    csv.push('\n');
    for r in rows {
        let (t, v) = (&r.train, &r.validation);
        let _ = writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.id,
            r.seed,
            r.genes_line(specs[r.seed_index as usize], false),
            r.program_text.as_deref().unwrap_or(""),
            r.copies,
            r.score,
            r.flag.map_or("", Flag::as_str),
            t.feasible,
            t.sharpe,
            t.consistency,
            t.max_drawdown,
            t.turnover,
            t.total_return,
            t.trades,
            v.sharpe,
            v.consistency,
            v.max_drawdown,
            v.turnover,
            v.total_return,
            v.trades
        );
        if portfolio {
            csv.pop();
            match (&t.portfolio, &v.portfolio) {
                (Some(dt), Some(dv)) => {
                    let _ = writeln!(
                        csv,
                        ",{},{},{},{},{},{},{},{}",
                        dt.rank_ic.mean,
                        dt.rank_ic.t,
                        dv.rank_ic.mean,
                        dv.rank_ic.t,
                        dt.avg_held,
                        dv.avg_held,
                        dv.capacity_max,
                        dv.capacity_median
                    );
                }
                // A single-coin member of a mixed run: the portfolio columns stay empty.
                _ => csv.push_str(",,,,,,,,\n"),
            }
        }
    }
    csv
}

/// `history.csv`: one line per generation (see the README for the columns).
pub fn history_csv(history: &[super::GenStats]) -> String {
    let mut hist = String::from(
        "generation,evaluations,best_sharpe,front_size,feasible,hypervolume,diversity,programs,mean_size\n",
    );
    for h in history {
        let _ = writeln!(
            hist,
            "{},{},{},{},{},{},{},{},{}",
            h.generation,
            h.evaluations,
            h.best_sharpe,
            h.front_size,
            h.feasible,
            h.hypervolume,
            h.diversity,
            h.programs,
            h.mean_size
        );
    }
    hist
}

/// One row of a `front.csv` as read back: enough to find and rebuild a genome.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontRow {
    pub id: String,
    pub seed: String,
    /// `name=value` pairs.
    pub genes: Vec<(String, String)>,
    /// A program member's program text.
    pub program: Option<String>,
    pub train_sharpe: f64,
    pub validation_sharpe: f64,
}

/// Reads the rows of a `front.csv` (from `file`, for messages).
///
/// # Errors
/// A message naming the file and line for a header or row that is not `front.csv`'s.
pub fn read_front_csv(file: &str, text: &str) -> Result<Vec<FrontRow>, String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").trim_end();
    let portfolio = format!("{FRONT_HEADER},{PORTFOLIO_HEADER}");
    if header != FRONT_HEADER && header != portfolio {
        return Err(format!(
            "{file}: line 1: not a front.csv of this organism (expected header `{FRONT_HEADER}`, \
             and for a portfolio run `,{PORTFOLIO_HEADER}` after it)"
        ));
    }
    let col = |name: &str| FRONT_HEADER.split(',').position(|c| c == name);
    let (ts, vs) = (
        col("train_sharpe").unwrap_or(0),
        col("validation_sharpe").unwrap_or(0),
    );
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let n = header.split(',').count();
        if f.len() != n {
            return Err(format!(
                "{file}: line {}: {} fields, expected {n}",
                i + 2,
                f.len()
            ));
        }
        let genes = f[2]
            .split_whitespace()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| format!("{file}: line {}: gene `{kv}` is not NAME=VALUE", i + 2))
            })
            .collect::<Result<_, _>>()?;
        let num = |j: usize| {
            f[j].parse::<f64>()
                .map_err(|_| format!("{file}: line {}: `{}` is not a number", i + 2, f[j]))
        };
        rows.push(FrontRow {
            id: f[0].to_string(),
            seed: f[1].to_string(),
            genes,
            program: Some(f[3].trim())
                .filter(|p| !p.is_empty())
                .map(str::to_string),
            train_sharpe: num(ts)?,
            validation_sharpe: num(vs)?,
        });
    }
    Ok(rows)
}

/// The one item whose id starts with `prefix` (ids are unique; at least 4 characters).
///
/// # Errors
/// A message when none or several match.
pub fn find_by_id<'a, T>(
    items: &'a [T],
    id: impl Fn(&T) -> &str,
    prefix: &str,
    place: &str,
) -> Result<&'a T, String> {
    let prefix = prefix.trim().to_ascii_lowercase();
    if prefix.len() < 4 {
        return Err(format!(
            "member id `{prefix}` is too short: give at least 4 of its 8 hex digits"
        ));
    }
    let hits: Vec<&T> = items
        .iter()
        .filter(|t| id(t).starts_with(&prefix))
        .collect();
    match hits.len() {
        1 => Ok(hits[0]),
        0 => Err(format!(
            "no member with id {prefix} in {place} ({} members; `organism runs show` lists them)",
            items.len()
        )),
        n => Err(format!(
            "{n} members of {place} have ids starting with {prefix}; give more digits"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(sharpe: f64, feasible: bool) -> Figures {
        Figures {
            sharpe,
            consistency: 0.5,
            max_drawdown: 0.1,
            turnover: 10.0,
            total_return: 0.0,
            trades: 20,
            feasible,
            portfolio: None,
        }
    }

    fn row(id: &str, train: f64, validation: f64, feasible: bool) -> Ranked {
        Ranked {
            id: id.into(),
            seed_index: 0,
            seed: "s".into(),
            genes: vec![],
            gene_text: BTreeMap::new(),
            program: None,
            program_text: None,
            copies: 1,
            score: train.min(validation),
            flag: Flag::of(train, validation),
            train: figures(train, feasible),
            validation: figures(validation, true),
        }
    }

    #[test]
    fn ranking_prefers_what_holds_out_of_sample() {
        let mut rows = vec![
            row("a", 3.0, -0.2, true), // score -0.2
            row("b", 1.0, 0.9, true),  // score 0.9
            row("c", 1.5, 1.2, true),  // score 1.2
            row("d", 5.0, 5.0, false), // infeasible: last
            row("e", 1.1, 0.9, true),  // score 0.9, higher train Sharpe than b
        ];
        order(&mut rows);
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["c", "e", "b", "a", "d"]);
        assert_eq!(rows[3].flag, Some(Flag::NegativeValidation));
        assert_eq!(Flag::of(2.0, 0.99), Some(Flag::ValidationBelowHalfTraining));
        assert_eq!(Flag::of(2.0, 1.0), None);
        assert_eq!(Flag::of(-1.0, 0.0), None);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the published test vector); with no genes
        // the id is its upper 32 bits.
        assert_eq!(member_id("a", &[], None), "af63dc4c");
        // A program's canonical text follows: "a" then "b" hashes as "ab" (0x089c4407b545986a).
        assert_eq!(member_id("a", &[], Some("b")), "089c4407");
        assert_eq!(member_id("ema_crossover", &[12.0, 26.0], None).len(), 8);
        assert_ne!(
            member_id("ema_crossover", &[12.0, 26.0], None),
            member_id("ema_crossover", &[12.0, 27.0], None)
        );
        assert_ne!(member_id("a", &[0.0], None), member_id("a", &[-0.0], None));
    }

    #[test]
    fn ids_resolve_by_unique_prefix() {
        let ids = ["ab12cd34", "ab12ff00", "0011aa22"];
        let get = |p: &str| find_by_id(&ids, |s| s, p, "x").copied();
        assert_eq!(get("0011"), Ok("0011aa22"));
        assert_eq!(get("AB12CD34"), Ok("ab12cd34"));
        assert!(get("ab12").unwrap_err().contains("2 members"));
        assert!(get("ffff").unwrap_err().contains("no member"));
        assert!(get("ab1").unwrap_err().contains("too short"));
    }

    #[test]
    fn front_csv_reads_back() {
        let text = format!(
            "{FRONT_HEADER}\nab12cd34,rsi_filter,period=14 band=12.5,,2,0.4,val<train/2,true,\
             1,0.5,0.1,10,0.2,30,0.4,0.5,0.1,10,0.1,12\n\
             00ff00ff,program,size=0.5,(program (enter-long true)),1,0.1,,true,\
             1,0.5,0.1,10,0.2,30,0.4,0.5,0.1,10,0.1,12\n"
        );
        let rows = read_front_csv("f.csv", &text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].seed, "rsi_filter");
        assert_eq!(rows[0].program, None);
        assert_eq!(
            rows[1].program.as_deref(),
            Some("(program (enter-long true))")
        );
        assert_eq!(
            rows[0].genes,
            [
                ("period".into(), "14".into()),
                ("band".into(), "12.5".into())
            ]
        );
        assert_eq!(
            (rows[0].train_sharpe, rows[0].validation_sharpe),
            (1.0, 0.4)
        );
        // A portfolio run's front.csv: eight more columns, read the same.
        let text = format!(
            "{FRONT_HEADER},{PORTFOLIO_HEADER}\naed90474,xs_funding_carry,lookback=151,,1,1.39,,\
             true,2.93,0.87,0.04,44.5,0.50,9432,1.39,0.68,0.05,43.8,0.12,3800,\
             0.02,3.1,0.018,2.1,14,14,0.135,0.02\n"
        );
        let rows = read_front_csv("f.csv", &text).unwrap();
        assert_eq!(
            (rows[0].train_sharpe, rows[0].validation_sharpe),
            (2.93, 1.39)
        );
        let e = read_front_csv("f.csv", "seed,genes\n").unwrap_err();
        assert!(e.contains("f.csv: line 1"), "{e}");
        let e = read_front_csv("f.csv", &format!("{FRONT_HEADER}\na,b\n")).unwrap_err();
        assert!(e.contains("line 2: 2 fields"), "{e}");
    }
}
