//! `organism strategies list | show | retire`: the strategy registry.

use std::path::PathBuf;

use anyhow::Result;
use organism::{
    clock::{Clock, WallClock},
    promotion::registry::{Registry, Segment, Status, Strategy},
};

use super::format_ts;

#[derive(clap::Subcommand, Debug)]
pub enum StrategiesCommand {
    /// Every strategy in the registry, newest change first.
    List {
        #[command(flatten)]
        place: Place,
        /// Only strategies with this status: candidate, promoted, paper, live or retired.
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One strategy: genome, figures per gauntlet stage, status history.
    Show {
        #[command(flatten)]
        place: Place,
        /// Strategy id, or a unique prefix of one.
        id: String,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Retires a strategy (final): it is no longer traded or promoted again.
    Retire {
        #[command(flatten)]
        place: Place,
        /// Strategy id, or a unique prefix of one.
        id: String,
        /// Why, recorded with the change.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Print the retired strategy as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Where the registry is.
#[derive(clap::Args, Debug)]
pub struct Place {
    /// Config file laid over the built-in defaults (for promotion.registry).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The registry (default: promotion.registry).
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
}

impl Place {
    fn open(&self) -> Result<Registry> {
        let path = match &self.registry {
            Some(p) => p.clone(),
            None => PathBuf::from(
                super::load_config(self.config.as_deref())?
                    .promotion
                    .registry,
            ),
        };
        if !path.exists() {
            anyhow::bail!(
                "{}: no registry yet; `organism promote` creates it",
                path.display()
            );
        }
        Ok(Registry::open(&path)?)
    }
}

/// The Sharpe of a segment as the gauntlet measured it (`None` where not measured or not a
/// number).
fn sharpe(s: &Strategy, segment: Segment) -> Option<f64> {
    finite(s.figures.segment(segment)?.sharpe)
}

/// `x` where it is a number (`None` for NaN and infinities, which the registry stores as null).
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn cell(x: Option<f64>) -> String {
    x.map_or_else(|| format!("{:>6}", "-"), |v| format!("{v:>6.2}"))
}

pub fn run(cmd: StrategiesCommand) -> Result<()> {
    match cmd {
        StrategiesCommand::List {
            place,
            status,
            json,
        } => {
            let status = status
                .map(|s| {
                    s.parse::<Status>()
                        .map_err(|e| anyhow::anyhow!("--status: {e}"))
                })
                .transpose()?;
            let r = place.open()?;
            let list = r.list(status)?;
            if json {
                outln!("{}", serde_json::to_string(&list)?);
                return Ok(());
            }
            if list.is_empty() {
                outln!(
                    "no strategies{}",
                    status.map_or(String::new(), |s| format!(" with status {s}"))
                );
                return Ok(());
            }
            outln!(
                "{:<36} {:<9} {:>6} {:>6} {:>6} {:>6}  {:<16}  verdict",
                "id",
                "status",
                "train",
                "valid",
                "hold",
                "weight",
                "updated (UTC)"
            );
            for s in &list {
                outln!(
                    "{:<36} {:<9} {} {} {} {:>6.2}  {:<16}  {}",
                    s.id,
                    s.status.as_str(),
                    cell(sharpe(s, Segment::Train)),
                    cell(sharpe(s, Segment::Validation)),
                    cell(sharpe(s, Segment::Holdout)),
                    s.weight,
                    format_ts(s.updated_ms),
                    s.verdict
                );
            }
            Ok(())
        }
        StrategiesCommand::Show { place, id, json } => {
            let r = place.open()?;
            let s = r.get(&id)?;
            let history = r.history(&s.id)?;
            let promotion = r.promotion(s.promotion_id)?;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({
                        "strategy": s,
                        "history": history,
                        "promotion": promotion,
                    })
                );
                return Ok(());
            }
            outln!("strategy {} ({})", s.id, s.status);
            outln!(
                "from {} (generation {}), run {}, data fingerprint {}",
                s.checkpoint,
                s.generation,
                s.run,
                s.data_fingerprint
            );
            if let Some(p) = &promotion {
                outln!(
                    "judged by promotion {} at {} UTC: {} trials{}",
                    s.promotion_id,
                    format_ts(p.at_ms),
                    p.trials,
                    p.pbo
                        .map_or(String::new(), |v| format!(", PBO of the front {v:.2}"))
                );
            }
            if let Some(u) = &s.universe {
                outln!("universe: {}", u.describe());
                let seg = |k: Segment| {
                    let se = s.figures.sharpe_se(k);
                    match (sharpe(&s, k), se) {
                        (Some(x), Some(se)) => format!("{x:.2} ± {se:.2}"),
                        (Some(x), None) => format!("{x:.2}"),
                        _ => "-".into(),
                    }
                };
                let v = s.figures.validation.and_then(|f| f.portfolio);
                let num = |x: Option<f64>, digits: usize| {
                    x.and_then(finite)
                        .map_or("-".to_string(), |x| format!("{x:.digits$}"))
                };
                outln!(
                    "Sharpe: training {}, validation {}, holdout {}; validation rank IC {} (t {}), \
                     {} coins held, turnover {} a year, capacity {} % of a bar's volume at 1 M USD",
                    seg(Segment::Train),
                    seg(Segment::Validation),
                    seg(Segment::Holdout),
                    num(v.map(|p| p.rank_ic.mean), 4),
                    num(v.map(|p| p.rank_ic.t), 1),
                    num(v.map(|p| p.avg_held), 1),
                    num(s.figures.validation.map(|f| f.turnover), 1),
                    num(v.map(|p| 100.0 * p.capacity_max), 3),
                );
            }
            outln!("verdict: {}  weight {:.3}", s.verdict, s.weight);
            if !s.reason.is_empty() {
                outln!("reason: {}", s.reason);
            }
            outln!();
            outln!("gauntlet:");
            for o in &s.figures.stages {
                outln!(
                    "  {:<16} {:<5} {}",
                    o.stage.as_str(),
                    if o.passed { "pass" } else { "FAIL" },
                    o.reason
                );
            }
            outln!();
            outln!("history:");
            for c in &history {
                outln!(
                    "  {} UTC  {} -> {}  {}",
                    format_ts(c.at_ms),
                    c.from.map_or("(new)", |f| f.as_str()),
                    c.to,
                    c.reason
                );
            }
            outln!();
            outln!("genome (spec fingerprint {}):", s.spec_fingerprint);
            for line in s.genome.lines() {
                outln!("  {line}");
            }
            Ok(())
        }
        StrategiesCommand::Retire {
            place,
            id,
            reason,
            json,
        } => {
            if reason.trim().is_empty() {
                anyhow::bail!("--reason must say why");
            }
            let mut r = place.open()?;
            let s = r.get(&id)?;
            r.set_status(&s.id, Status::Retired, reason.trim(), WallClock.now_ms())?;
            let s = r.get(&s.id)?;
            if json {
                outln!("{}", serde_json::to_string(&s)?);
            } else {
                outln!("retired {}: {}", s.id, s.reason);
            }
            Ok(())
        }
    }
}
