//! `organism seeds`: the seed strategies and their genes.

use std::io::Write;

use anyhow::Result;
use organism::{genome::GeneKind, seeds::registry};

pub fn run() -> Result<()> {
    let mut out = std::io::stdout().lock();
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
