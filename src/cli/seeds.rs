//! `organism seeds`: the seed strategies and their genes — the single-coin seeds, then the
//! portfolio (cross-sectional) seeds.

use std::io::Write;

use anyhow::Result;
use organism::{
    genome::{GeneKind, SeedSpec},
    seeds::{portfolio, registry},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON array: each seed with its kind (coin or portfolio) and genes (kind, bounds,
    /// default, choices, meaning, whether it is a look-back period).
    #[arg(long)]
    pub json: bool,
}

/// Every spec: the coin seeds, then the portfolio seeds.
fn specs() -> Result<Vec<&'static SeedSpec>> {
    let mut all: Vec<&'static SeedSpec> = registry()?.iter().map(|e| &e.spec).collect();
    all.extend(portfolio::registry()?.iter().map(|e| &e.spec));
    Ok(all)
}

pub fn run(args: Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        let seeds: Vec<serde_json::Value> = specs()?
            .iter()
            .map(|s| {
                let genes: Vec<serde_json::Value> = s
                    .genes
                    .iter()
                    .map(|g| {
                        serde_json::json!({"name": g.name, "kind": g.kind,
                            "min": g.format(g.min), "max": g.format(g.max),
                            "default": g.format(g.default), "choices": g.choices,
                            "meaning": g.meaning, "lookback": g.lookback})
                    })
                    .collect();
                serde_json::json!({"name": s.name, "kind": s.kind, "description": s.description,
                    "genes": genes})
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(seeds))?;
        return Ok(());
    }
    writeln!(out, "    kind      name — description")?;
    for (i, s) in specs()?.iter().enumerate() {
        writeln!(
            out,
            "{:>2}. {:<9} {} — {}",
            i + 1,
            s.kind.as_str(),
            s.name,
            s.description
        )?;
        for g in &s.genes {
            let domain = match g.kind {
                GeneKind::Choice => g.choices.join(" | "),
                _ => format!("{} .. {}", g.format(g.min), g.format(g.max)),
            };
            let kind = match g.kind {
                GeneKind::Int => "int",
                GeneKind::Float => "float",
                GeneKind::Choice => "choice",
            };
            writeln!(
                out,
                "      {:<16} {:<6} {:<22} default {:<8} {}",
                g.name,
                kind,
                domain,
                g.format(g.default),
                g.meaning
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}
