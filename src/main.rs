//! The `organism` command line: parsing and dispatch only; each subcommand lives in `cli/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// organism — evolves trading strategies for crypto perpetual futures.
#[derive(Parser)]
#[command(name = "organism", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output on stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less output: no notes, progress or per-generation lines; results and errors only.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Evolve the seed population (theta-DEA, NSGA-III or NSGA-II), checkpointing every generation; `evolve resume
    /// FILE` continues a run.
    Evolve(Box<cli::evolve::Args>),
    /// An island run's steps as commands for a scheduler: plan, run, migrate, status, submit.
    #[command(subcommand)]
    Island(cli::island::IslandCommand),
    /// Backtest one strategy on the configured data and print its metrics.
    Backtest(Box<cli::backtest::Args>),
    /// Walk-forward: evolve on rolling training windows and trade the selected members on the
    /// window after each; does evolution find edges on this market at all?
    Walkforward(Box<cli::walkforward::Args>),
    /// Run the validation gauntlet on a run's first front and promote the survivors into the
    /// strategy registry.
    Promote(Box<cli::promote::Args>),
    /// How often the pipeline (evolve + promote, your settings) promotes noise, and how often it
    /// finds planted edges of known true Sharpe: share promoted per row with a 95 % interval.
    Calibrate(Box<cli::calibrate::Args>),
    /// The strategy registry: list, show, retire.
    #[command(subcommand)]
    Strategies(cli::strategies::StrategiesCommand),
    /// Paper trading of the promoted strategies: run, replay, status, stop, resume.
    #[command(subcommand)]
    Paper(cli::paper::PaperCommand),
    /// Live trading on Hyperliquid (real money; explicit opt-in): run, status, stop, resume.
    #[command(subcommand)]
    Live(cli::live::LiveCommand),
    /// The improvement cycle on a schedule: each period fetch, evolve on a rolling window,
    /// promote; a running paper session takes the new strategies at its next bar.
    Cycle(cli::cycle::Args),
    /// A read-only web UI: runs, strategies, paper and live sessions, reports.
    Dashboard(cli::dashboard::Args),
    /// The drift ledger of a paper or live session: its fills against the model's (slippage,
    /// fees, partial and missed fills, latency, equity against the replay), per day.
    Drift(cli::drift::Args),
    /// Inspect runs: list them, show one ranked, export a member's genome.
    #[command(subcommand)]
    Runs(cli::runs::RunsCommand),
    /// List the seed strategies and their genes.
    Seeds(cli::seeds::Args),
    /// Measure this machine's speed on the standard workloads.
    #[command(subcommand)]
    Bench(cli::bench::BenchCommand),
    /// Market data: fetch from Hyperliquid, the Fear & Greed index, the synthetic market.
    #[command(subcommand)]
    Data(cli::data::DataCommand),
    /// Run the local test exchange (Hyperliquid protocol, synthetic market) on 127.0.0.1.
    TestnetLocal(cli::testnet::Args),
}

/// Structured logs on stderr, filtered by `RUST_LOG` (default: warnings and errors only), e.g.
/// `RUST_LOG=organism=debug organism evolve`.
fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "organism=info,warn",
        (false, 2) => "organism=debug,info",
        _ => "organism=trace,debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    cli::set_quiet(cli.quiet);
    let result = match cli.command {
        Command::Evolve(args) => cli::evolve::run(*args),
        Command::Island(cmd) => cli::island::run(cmd),
        Command::Backtest(args) => cli::backtest::run(*args),
        Command::Walkforward(args) => cli::walkforward::run(*args),
        Command::Promote(args) => cli::promote::run(*args),
        Command::Calibrate(args) => cli::calibrate::run(*args),
        Command::Strategies(cmd) => cli::strategies::run(cmd),
        Command::Paper(cmd) => cli::paper::run(cmd),
        Command::Live(cmd) => cli::live::run(cmd),
        Command::Cycle(args) => cli::cycle::run(args),
        Command::Dashboard(args) => cli::dashboard::run(args),
        Command::Drift(args) => cli::drift::run(args),
        Command::Runs(cmd) => cli::runs::run(cmd),
        Command::Seeds(args) => cli::seeds::run(args),
        Command::Bench(cmd) => cli::bench::run(cmd),
        Command::Data(cmd) => cli::data::run(cmd),
        Command::TestnetLocal(args) => cli::testnet::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`organism seeds | head`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The chain of causes, each said once (an error that already quotes its source
            // does not get it appended again).
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg.push_str(": ");
                    msg.push_str(&c);
                }
            }
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}
