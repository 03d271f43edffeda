//! `organism bench`: the speed workloads of BENCHMARKS.md, so a user can measure a machine.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result};
use organism::{
    backtest::{
        fast::{sweep, workload_a_grid, FastData},
        BacktestConfig, FillMode,
    },
    market::csv::load_candles,
};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Workload A: 890 EMA-crossover combos (fast 2..=51, slow 10..=200 step 10), long only,
    /// close fills, fee 0.045 %, slippage 0.01 %, cash 10,000; EMAs, signals, simulation,
    /// Sharpe, drawdown and trades for every combo. Data loading is not timed.
    Sweep {
        /// Candle CSV (timestamp_ms,open,high,low,close,volume).
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: Option<u32>,
        /// Timed repetitions; the median is reported.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
        repeat: u32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Sweep {
            data,
            threads,
            repeat,
            json,
        } => bench_sweep(&data, threads, repeat, json),
    }
}

fn bench_sweep(path: &Path, threads: Option<u32>, repeat: u32, json: bool) -> Result<()> {
    let candles = load_candles(path)?;
    let cfg = BacktestConfig {
        fill: FillMode::Close,
        fee: 0.00045,
        slippage: 0.0001,
        cash: 10_000.0,
        funding: false,
    };
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n as usize);
    }
    let pool = builder.build().context("starting the thread pool")?;
    let grid = workload_a_grid();
    let data = FastData::new(&candles, &cfg);
    // Warm-up run (page faults, thread start-up), not timed.
    let results = pool.install(|| sweep(&data, &grid));
    let mut times = Vec::with_capacity(repeat as usize);
    for _ in 0..repeat {
        let start = Instant::now();
        let r = pool.install(|| sweep(&data, &grid));
        times.push(start.elapsed().as_secs_f64());
        std::hint::black_box(r);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let cc = grid.len() as f64 * candles.len() as f64;
    let rate = cc / median;
    let (best_i, best) = results
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.sharpe.total_cmp(&b.1.sharpe))
        .context("empty grid")?;
    if json {
        let v = serde_json::json!({
            "workload": "A",
            "combos": grid.len(),
            "candles": candles.len(),
            "threads": pool.current_num_threads(),
            "repeat": repeat,
            "seconds": median,
            "candle_combos_per_sec": rate,
            "best": { "fast": grid[best_i].0, "slow": grid[best_i].1, "sharpe": best.sharpe },
        });
        println!("{v}");
    } else {
        println!("workload A: EMA-crossover sweep on {}", path.display());
        println!("combos            {:>14}", grid.len());
        println!("candles           {:>14}", candles.len());
        println!("threads           {:>14}", pool.current_num_threads());
        println!("seconds (median)  {:>14.4}", median);
        println!("candle-combos/s   {:>14.3e}", rate);
        println!(
            "best by Sharpe    {:>14}",
            format!("{}/{} {:.3}", grid[best_i].0, grid[best_i].1, best.sharpe)
        );
    }
    Ok(())
}
