//! `organism seeds`: the seed strategies and their genes.

use std::io::Write;

use anyhow::Result;
use organism::{genome::GeneKind, seeds::registry};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// One JSON array: each seed with its genes (kind, bounds, default, choices, meaning,
    /// whether it is a look-back period).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if args.json {
        let seeds: Vec<serde_json::Value> = registry()?
            .iter()
            .map(|e| {
                let s = &e.spec;
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
                serde_json::json!({"name": s.name, "description": s.description, "genes": genes})
            })
            .collect();
        writeln!(out, "{}", serde_json::Value::Array(seeds))?;
        return Ok(());
    }
    for (i, e) in registry()?.iter().enumerate() {
        let s = &e.spec;
        writeln!(out, "{:>2}. {} — {}", i + 1, s.name, s.description)?;
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
