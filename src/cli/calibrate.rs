//! `organism calibrate`: how often the whole pipeline (evolve, then promote, with the user's
//! settings) promotes noise, and how often it finds an edge of known size. Each row is R
//! generated markets: nulls (return-permuted copies of a market without a planted edge) or a
//! planted edge set by its true Sharpe ([`trend_edge_for_sharpe`]). Every market runs in its own
//! folder as `organism` subprocesses (`data permute` for a null, `evolve`, `promote --json`);
//! its result is written when it ends, so a killed calibration continues where it stopped, and
//! markets run in parallel.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Mutex,
    },
};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use organism::market::{csv::write_atomic, synthetic::trend_edge_for_sharpe};
use serde::{Deserialize, Serialize};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config file laid over the built-in defaults: the evolution and promotion settings
    /// calibrated (its data and market settings are replaced by the generated markets').
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Markets per row.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub markets: u32,
    /// True Sharpe ratios of the planted edges, comma-separated (one row each, after the nulls);
    /// 0 is the generated market without a planted edge (its regimes' trends are still there).
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,1.5,2,3")]
    pub sharpe: Vec<f64>,
    /// Years of hourly bars per market.
    #[arg(long, default_value_t = 3.0)]
    pub years: f64,
    /// Coins per market.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub coins: u32,
    /// Markets run at once (default: the cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// The calibration's folder: one sub-folder per market, kept, so a rerun continues.
    #[arg(long, value_name = "DIR", default_value = "calibration")]
    pub out: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// One market of one row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Outcome {
    /// `null` or the planted true Sharpe.
    row: String,
    market: u32,
    /// Strategies the promotion admitted.
    promoted: usize,
}

/// A row's share promoted with its Wilson 95 % interval.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub row: String,
    pub markets: usize,
    pub promoted: usize,
    pub share: f64,
    pub low: f64,
    pub high: f64,
}

/// The Wilson score interval (95 %) of `k` successes in `n` trials.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let den = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / den;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / den;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The per-market config: the user's file (or the defaults) with the market, the run folder
/// and the registry of this market.
fn market_config(user: &toml::Table, dir: &Path, seed: u64, args: &Args, edge: f64) -> String {
    let mut t = user.clone();
    let section = |t: &mut toml::Table, name: &str| -> toml::Table {
        t.remove(name)
            .and_then(|v| v.as_table().cloned())
            .unwrap_or_default()
    };
    let coins: Vec<String> = (0..args.coins).map(|i| format!("C{i}")).collect();
    let mut syn = section(&mut t, "synthetic");
    syn.insert("seed".into(), toml::Value::Integer(seed as i64));
    syn.insert(
        "bars".into(),
        toml::Value::Integer((args.years * 8760.0).round() as i64),
    );
    syn.insert(
        "coins".into(),
        toml::Value::Array(
            coins
                .iter()
                .map(|c| toml::Value::String(c.clone()))
                .collect(),
        ),
    );
    let vol: Vec<toml::Value> = (0..args.coins)
        .map(|i| toml::Value::Float(0.5 + 0.1 * f64::from(i % 6)))
        .collect();
    let price: Vec<toml::Value> = (0..args.coins)
        .map(|i| toml::Value::Float(100.0 * f64::from(i + 1)))
        .collect();
    syn.insert("annual_vol".into(), toml::Value::Array(vol));
    syn.insert("start_price".into(), toml::Value::Array(price));
    syn.insert("trend_edge".into(), toml::Value::Float(edge));
    t.insert("synthetic".into(), toml::Value::Table(syn));
    let mut data = section(&mut t, "data");
    data.insert("path".into(), toml::Value::String(String::new()));
    data.insert("coins".into(), toml::Value::Array(Vec::new()));
    data.insert("timerange".into(), toml::Value::String(String::new()));
    t.insert("data".into(), toml::Value::Table(data));
    let mut evo = section(&mut t, "evolution");
    evo.insert(
        "out".into(),
        toml::Value::String(dir.join("pop").display().to_string()),
    );
    t.insert("evolution".into(), toml::Value::Table(evo));
    let mut pro = section(&mut t, "promotion");
    pro.insert(
        "registry".into(),
        toml::Value::String(dir.join("registry.db").display().to_string()),
    );
    t.insert("promotion".into(), toml::Value::Table(pro));
    t.to_string()
}

/// Runs `organism args` quietly with one thread; its stderr on failure.
fn organism(args: &[&str]) -> Result<String> {
    let exe = std::env::current_exe().context("finding the organism binary")?;
    let o = Command::new(exe)
        .args(args)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .context("starting organism")?;
    if !o.status.success() {
        bail!(
            "organism {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// One market: its result file if it has one, else the pipeline run now.
fn one(
    root: &Path,
    user: &toml::Table,
    args: &Args,
    row: &str,
    edge: f64,
    m: u32,
) -> Result<Outcome> {
    let dir = root.join(format!("{row}-{m:03}"));
    let result = dir.join("result.json");
    if let Ok(text) = std::fs::read_to_string(&result) {
        if let Ok(o) = serde_json::from_str::<Outcome>(&text) {
            return Ok(o);
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    // The same base market for every row (a paired design): seed 1000 + m.
    let seed = 1000 + u64::from(m);
    let cfg = dir.join("config.toml");
    write_atomic(&cfg, market_config(user, &dir, seed, args, edge).as_bytes())?;
    let cfg_s = cfg.display().to_string();
    let pop = dir.join("pop").display().to_string();
    let mut evolve = vec![
        "evolve",
        "-q",
        "--config",
        &cfg_s,
        "--out",
        &pop,
        "--overwrite",
    ];
    let null_dir = dir.join("null").display().to_string();
    let seed_s = m.to_string();
    if row == "null" {
        organism(&[
            "data", "permute", "-q", "--config", &cfg_s, "--seed", &seed_s, "--out", &null_dir,
        ])?;
        evolve.extend(["--data", &null_dir, "--source", "permuted"]);
    }
    organism(&evolve)?;
    let _ = std::fs::remove_file(dir.join("registry.db"));
    let out = organism(&[
        "promote", "-q", "--config", &cfg_s, "--from", &pop, "--json",
    ])?;
    let v: serde_json::Value = serde_json::from_str(out.trim())
        .with_context(|| format!("{}: promote printed no JSON", dir.display()))?;
    let o = Outcome {
        row: row.to_string(),
        market: m,
        promoted: v["promoted"].as_array().map_or(0, Vec::len),
    };
    write_atomic(&result, serde_json::to_string(&o)?.as_bytes())?;
    Ok(o)
}

pub fn run(args: Args) -> Result<()> {
    if !(0.1..=50.0).contains(&args.years) {
        bail!(
            "--years {} is out of range: must be in [0.1, 50]",
            args.years
        );
    }
    if let Some(bad) = args
        .sharpe
        .iter()
        .find(|s| !(s.is_finite() && **s >= 0.0 && **s <= 20.0))
    {
        bail!("--sharpe {bad}: each true Sharpe must be in [0, 20] (0: the market as generated, no planted edge)");
    }
    // The user's settings, checked once, then laid into each market's config.
    super::load_config(args.config.as_deref())?;
    let user: toml::Table = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("{}: cannot read", p.display()))?;
            text.parse().map_err(|e: toml::de::Error| {
                anyhow::anyhow!(
                    "{}: {}",
                    p.display(),
                    organism::settings::toml_error(&text, &e)
                )
            })?
        }
        None => toml::Table::new(),
    };
    let mut rows: Vec<(String, f64)> = vec![("null".into(), 0.0)];
    rows.extend(
        args.sharpe
            .iter()
            .map(|s| (format!("sharpe{s}"), trend_edge_for_sharpe(*s))),
    );
    let tasks: Vec<(usize, u32)> = (0..rows.len())
        .flat_map(|r| (0..args.markets).map(move |m| (r, m)))
        .collect();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create", args.out.display()))?;
    let bar = if super::quiet() || args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(tasks.len() as u64).with_style(
            ProgressStyle::with_template("calibrating {pos}/{len} markets {wide_bar} eta {eta}")
                .expect("a valid template"),
        )
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Result<Outcome>>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(r, m)) = tasks.get(i) else { break };
                let (row, edge) = &rows[r];
                let o = one(&args.out, &user, &args, row, *edge, m);
                bar.inc(1);
                results.lock().expect("results").push(o);
            });
        }
    });
    bar.finish_and_clear();
    let mut outcomes = Vec::new();
    for r in results.into_inner().expect("results") {
        outcomes.push(r?);
    }
    let table: Vec<Row> = rows
        .iter()
        .map(|(row, _)| {
            let mine: Vec<&Outcome> = outcomes.iter().filter(|o| &o.row == row).collect();
            let k = mine.iter().filter(|o| o.promoted > 0).count();
            let (low, high) = wilson(k, mine.len());
            Row {
                row: row.clone(),
                markets: mine.len(),
                promoted: k,
                share: k as f64 / mine.len().max(1) as f64,
                low,
                high,
            }
        })
        .collect();
    if args.json {
        outln!(
            "{}",
            serde_json::json!({"years": args.years, "coins": args.coins, "rows": table})
        );
        return Ok(());
    }
    outln!(
        "{:<12} {:>7} {:>9} {:>7}  {}",
        "row",
        "markets",
        "promoted",
        "share",
        "95 % interval (Wilson)"
    );
    for r in &table {
        outln!(
            "{:<12} {:>7} {:>9} {:>6.0}%  {:.0}–{:.0} %{}",
            r.row,
            r.markets,
            r.promoted,
            100.0 * r.share,
            100.0 * r.low,
            100.0 * r.high,
            match r.row.as_str() {
                "null" => "  (false positives)",
                "sharpe0" => "  (no planted edge; the regimes' trends remain)",
                _ => "  (power)",
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_by_hand() {
        // 0 of 20: upper z²/(n + z²) = 3.8415/23.8415 = 0.16113.
        let (lo, hi) = wilson(0, 20);
        assert_eq!(lo, 0.0);
        assert!((hi - 3.841_458_820_694_124 / 23.841_458_820_694_124).abs() < 1e-12);
        // 10 of 20: 0.5 ± z·√(0.0125 + z²/1600)/(1 + z²/20) = 0.5 ± 0.2007.
        let (lo, hi) = wilson(10, 20);
        assert!(
            (lo - 0.2993).abs() < 1e-4 && (hi - 0.7007).abs() < 1e-4,
            "{lo} {hi}"
        );
    }
}
