//! `organism bench`: the speed workloads of BENCHMARKS.md, so a user can measure a machine.
#![allow(clippy::disallowed_methods)] // `bench` measures wall time: that is its job

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, Result};
use organism::{
    bench::{benchmark_config, sweep, workload_a_grid, FastData},
    evolution::{
        problem::{workload_b_settings, WorkloadB},
        Evolver,
    },
    genome::program::Program,
    market::{csv::load_candles, FundingSeries, Market},
    seeds::{program, Prepared},
    strategy::Targets,
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
    /// Workload B: NSGA-II, population 256, 30 generations, the 4-gene EMA crossover + ATR
    /// stop genome (close fills, long only, fee 0.045 %, slippage 0.01 %), four objectives.
    /// Prints the median seconds per generation, evaluations per second end to end, and the
    /// first front's size and best Sharpe.
    Evolve {
        /// Candle CSV (timestamp_ms,open,high,low,close,volume).
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
        threads: Option<u32>,
        /// Whole runs; medians over all of them are reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Workload C2: typed GP programs. Each program of FILE (one a line, organism's program
    /// text) is evaluated over every bar of the CSV — its long / short signal from its roots —
    /// cold (no cached series: a fresh market per program) and warm (the indicator cache
    /// filled by a pass before, as in evolution; the programs of a pass share their common
    /// subtrees, as a generation's do); with --backtest, its targets and a backtest
    /// too. Prints the median over the repetitions of µs per program and of ns per node × bar
    /// (the nodes of the enter-long expression, as BENCHMARKS.md counts them). One thread.
    Programs {
        /// Candle CSV (timestamp_ms,open,high,low,close,volume).
        #[arg(long, value_name = "FILE")]
        data: PathBuf,
        /// Programs, one a line (blank lines and lines starting with `#` skipped).
        #[arg(long, value_name = "FILE")]
        programs: PathBuf,
        /// Timed repetitions (at least 3); medians are reported.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(3..=1000))]
        repeat: u32,
        /// Include the targets (risk genes at their defaults) and a backtest per program.
        #[arg(long)]
        backtest: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// A rayon pool of `threads` workers (default: all cores).
fn thread_pool(threads: Option<u32>) -> Result<rayon::ThreadPool> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        builder = builder.num_threads(n as usize);
    }
    builder.build().context("starting the thread pool")
}

/// Workload B timed on `pool`, `repeat` whole runs: medians of seconds per generation, total,
/// the indicator precompute and fresh evaluations per second, and the last run's state.
struct Timed {
    per_gen: f64,
    total: f64,
    prep: f64,
    fresh_rate: f64,
    state: organism::evolution::State,
}

fn time_workload_b(
    pool: &rayon::ThreadPool,
    market: &Market,
    cfg: &organism::execution::EngineConfig,
    generations: u32,
    repeat: u32,
) -> Result<Timed> {
    let (mut per_gen, mut totals, mut fresh_rates) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = None;
    let mut prep_secs = Vec::new();
    for _ in 0..repeat {
        let t0 = Instant::now();
        let problem = pool.install(|| WorkloadB::new(market, cfg))?;
        prep_secs.push(t0.elapsed().as_secs_f64());
        let evolver = Evolver::new(&problem, workload_b_settings());
        let start = Instant::now();
        let mut state = pool.install(|| evolver.init(42, &|| {}));
        for _ in 0..generations {
            let g0 = Instant::now();
            pool.install(|| evolver.step(&mut state, &|| {}));
            per_gen.push(g0.elapsed().as_secs_f64());
        }
        let total = start.elapsed().as_secs_f64();
        totals.push(total);
        let fresh: usize = state.history.iter().map(|h| h.evaluations).sum();
        fresh_rates.push(fresh as f64 / total);
        last = Some(state);
    }
    Ok(Timed {
        per_gen: median(&mut per_gen),
        total: median(&mut totals),
        prep: median(&mut prep_secs),
        fresh_rate: median(&mut fresh_rates),
        state: last.context("no run")?,
    })
}

fn bench_evolve(path: &Path, threads: Option<u32>, repeat: u32, json: bool) -> Result<()> {
    let candles = load_candles(path)?;
    let cfg = benchmark_config();
    let pool = thread_pool(threads)?;
    let market = Market::new("bench", candles, FundingSeries::default());
    let generations = 30u32;
    let n = pool.current_num_threads();
    let Timed {
        per_gen,
        total,
        prep,
        fresh_rate,
        state,
    } = time_workload_b(&pool, &market, &cfg, generations, repeat)?;
    // Parallel efficiency: the same runs on one thread.
    let one = if n > 1 {
        Some(time_workload_b(&thread_pool(Some(1))?, &market, &cfg, generations, repeat)?.per_gen)
    } else {
        None
    };
    let speedup = one.map(|o| o / per_gen);
    let individuals = 256 * (u64::from(generations) + 1);
    let front = state.population.iter().filter(|m| m.rank == 0).count();
    let best = state
        .population
        .iter()
        .map(|m| m.eval.sharpe())
        .fold(f64::NEG_INFINITY, f64::max);
    let rate = individuals as f64 / total;
    if json {
        let v = serde_json::json!({
            "workload": "B",
            "population": 256,
            "generations": generations,
            "threads": n,
            "repeat": repeat,
            "seconds_per_generation": per_gen,
            "seconds_total": total,
            "seconds_indicator_precompute": prep,
            "individuals": individuals,
            "evaluations_per_sec": rate,
            "fresh_evaluations_per_sec": fresh_rate,
            "front_size": front,
            "best_sharpe": best,
            "one_thread_seconds_per_generation": one,
            "speedup": speedup,
            "parallel_efficiency": speedup.map(|x| x / n as f64),
        });
        outln!("{v}");
    } else {
        outln!("workload B: NSGA-II on {}", path.display());
        outln!("population x gens      {:>12}", "256 x 30");
        outln!("threads                {:>12}", n);
        outln!("s / generation (med.)  {:>12.5}", per_gen);
        outln!("total s (init + 30)    {:>12.4}", total);
        outln!("EMA/ATR precompute s   {:>12.4}", prep);
        outln!("evaluations / s        {:>12.0}", rate);
        outln!("  (fresh, not cached)  {:>12.0}", fresh_rate);
        outln!("first front size       {:>12}", front);
        outln!("best Sharpe            {:>12.4}", best);
        if let (Some(o), Some(x)) = (one, speedup) {
            outln!("1 thread s / gen       {:>12.5}", o);
            outln!(
                "speedup, efficiency    {:>12}",
                format!("{x:.2}x, {:.0} %", 100.0 * x / n as f64)
            );
        }
    }
    Ok(())
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Evolve {
            data,
            threads,
            repeat,
            json,
        } => bench_evolve(&data, threads, repeat, json),
        BenchCommand::Sweep {
            data,
            threads,
            repeat,
            json,
        } => bench_sweep(&data, threads, repeat, json),
        BenchCommand::Programs {
            data,
            programs,
            repeat,
            backtest,
            json,
        } => bench_programs(&data, &programs, repeat, backtest, json),
    }
}

/// Reads a file of programs, one a line; an error names the line.
fn read_programs(path: &Path) -> Result<Vec<Program>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(super::runs::parse_program_text(
            line,
            &format!("{}:{}", path.display(), i + 1),
        )?);
    }
    if out.is_empty() {
        anyhow::bail!("{}: no programs in it", path.display());
    }
    Ok(out)
}

/// The median of `x` (sorted in place).
fn median(x: &mut [f64]) -> f64 {
    x.sort_by(f64::total_cmp);
    x[x.len() / 2]
}

fn bench_programs(data: &Path, file: &Path, repeat: u32, backtest: bool, json: bool) -> Result<()> {
    let candles = load_candles(data)?;
    let bars = candles.len();
    let market = std::sync::Arc::new(Market::new("bench", candles, FundingSeries::default()));
    let programs = read_programs(file)?;
    let nodes: usize = programs
        .iter()
        .map(|p| p.roots[0].as_ref().map_or(0, |r| r.size()))
        .sum();
    let cfg = benchmark_config();
    let risk = program::risk_spec()
        .map_err(|e| anyhow::anyhow!("the built-in risk genes: {e}"))?
        .default_genome();
    // One program over `data`: its signal, or its targets and a backtest.
    let eval = |p: &Program, data: &Prepared| {
        if backtest {
            let t = program::targets(p, &risk, data);
            let r = organism::backtest::run(
                &data.market.candles,
                &data.market.funding_per_bar,
                &t,
                &cfg,
            );
            std::hint::black_box(r);
        } else {
            let mut t = Targets::flat(bars);
            program::signals(p, data, &mut t);
            std::hint::black_box(t);
        }
    };
    let warm = Prepared::new(market.clone());
    for p in &programs {
        eval(p, &warm);
    }
    let (mut cold_s, mut warm_s) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        let start = Instant::now();
        for p in &programs {
            eval(p, &Prepared::new(market.clone()));
        }
        cold_s.push(start.elapsed().as_secs_f64());
        // Warm as in evolution: the indicator series are kept; the programs share their common
        // subtrees within the pass, as a generation does, but not with earlier passes.
        warm.forget_nodes();
        let start = Instant::now();
        for p in &programs {
            eval(p, &warm);
        }
        warm_s.push(start.elapsed().as_secs_f64());
    }
    let n = programs.len() as f64;
    let per = |secs: f64| (secs / n * 1e6, secs / (nodes as f64 * bars as f64) * 1e9);
    let (cold_us, cold_ns) = per(median(&mut cold_s));
    let (warm_us, warm_ns) = per(median(&mut warm_s));
    let what = if backtest {
        "signal, targets and backtest"
    } else {
        "signal"
    };
    if json {
        let v = serde_json::json!({
            "workload": "C2",
            "programs": programs.len(),
            "bars": bars,
            "nodes": nodes,
            "repeat": repeat,
            "backtest": backtest,
            "cold": {"us_per_program": cold_us, "ns_per_node_bar": cold_ns},
            "warm": {"us_per_program": warm_us, "ns_per_node_bar": warm_ns},
        });
        outln!("{v}");
    } else {
        outln!(
            "workload C2: {} programs ({} nodes in their enter-long expressions) on {} ({} bars), {what}, median of {repeat}",
            programs.len(),
            nodes,
            data.display(),
            bars
        );
        outln!(
            "{:<6} {:>14} {:>16}",
            "",
            "µs per program",
            "ns per node×bar"
        );
        outln!("{:<6} {:>14.1} {:>16.3}", "cold", cold_us, cold_ns);
        outln!("{:<6} {:>14.1} {:>16.3}", "warm", warm_us, warm_ns);
    }
    Ok(())
}

fn bench_sweep(path: &Path, threads: Option<u32>, repeat: u32, json: bool) -> Result<()> {
    let candles = load_candles(path)?;
    let cfg = benchmark_config();
    let pool = thread_pool(threads)?;
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
    let median = median(&mut times);
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
        outln!("{v}");
    } else {
        outln!("workload A: EMA-crossover sweep on {}", path.display());
        outln!("combos            {:>14}", grid.len());
        outln!("candles           {:>14}", candles.len());
        outln!("threads           {:>14}", pool.current_num_threads());
        outln!("seconds (median)  {:>14.4}", median);
        outln!("candle-combos/s   {:>14.3e}", rate);
        outln!(
            "best by Sharpe    {:>14}",
            format!("{}/{} {:.3}", grid[best_i].0, grid[best_i].1, best.sharpe)
        );
    }
    Ok(())
}
