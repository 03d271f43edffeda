//! Subcommands: argument handling, progress and printing. The library does the work.

/// `println!` for results on stdout that never panics: when stdout is a closed pipe
/// (`organism seeds | head`) the process ends quietly with exit status 0; any other write error
/// ends it with a message on stderr and status 1.
macro_rules! outln {
    () => {
        $crate::cli::out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub mod backtest;
pub mod bench;
pub mod calibrate;
pub mod cycle;
pub mod dashboard;
pub mod data;
pub mod drift;
pub mod evolve;
pub mod island;
pub mod live;
pub mod paper;
pub mod portfolio;
pub mod promote;
pub mod runs;
pub mod seeds;
pub mod strategies;
pub mod testnet;
pub mod walkforward;

use std::path::PathBuf;

use anyhow::{Context, Result};
use organism::{
    config::{Config, Flag},
    market::{load_universe, Universe},
};

/// `n` as a TOML integer (saturating: a count too large for one is out of every key's range).
pub fn int(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

/// The evolution flags shared by `evolve` and `walkforward`.
#[derive(clap::Args, Debug, Clone)]
pub struct EvolutionArgs {
    /// Last generation (default: evolution.generations); for walkforward, of each window's run.
    #[arg(long)]
    pub generations: Option<u32>,
    /// Individuals per generation (default: evolution.population).
    #[arg(long)]
    pub population: Option<usize>,
    /// RNG seed (default: evolution.seed); walkforward's window k uses seed + k. `--seed` is
    /// accepted too.
    #[arg(long, alias = "seed", value_name = "N")]
    pub rng_seed: Option<u64>,
    /// Only bars in this span, freqtrade's format: 20250101-20250601, 20250101- or -20250601
    /// (start inclusive, end exclusive, UTC; default: data.timerange).
    #[arg(long, value_name = "START-END", allow_hyphen_values = true)]
    pub timerange: Option<String>,
    /// What evolves: params, programs, mixed or portfolio (default: evolution.mode).
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// Survival rule: theta-dea, nsga3 or nsga2 (default: evolution.algorithm).
    #[arg(long, value_name = "NAME")]
    pub algorithm: Option<String>,
    /// Seeds in the starting population, comma-separated (default: evolution.seeds, all).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// Apply the regime filter ([regime] in the config) to every strategy's targets.
    #[arg(long)]
    pub regime: bool,
    /// Coins of the universe (default: data.coins): a list; for --mode portfolio also `all`
    /// or `top:N` (the N largest by trailing volume at each rebalance).
    #[arg(long, value_delimiter = ',', value_name = "all|top:N|A,B,C")]
    pub coins: Option<Vec<String>>,
    /// Coins left out of a portfolio's universe, comma-separated (added to universe.exclude).
    #[arg(long, value_delimiter = ',', value_name = "A,B")]
    pub exclude: Vec<String>,
    /// Also score every genome on M perturbed copies of its training data, each objective at
    /// evolution.worlds_quantile across them (default: evolution.worlds).
    #[arg(long, value_name = "M")]
    pub worlds: Option<usize>,
    /// Islands: N populations evolving apart and exchanging migrants (default:
    /// evolution.islands; 1 is one population).
    #[arg(long, value_name = "N")]
    pub islands: Option<u32>,
    /// Generations per epoch of an island run (default: evolution.epoch).
    #[arg(long, value_name = "G")]
    pub epoch: Option<u32>,
    /// Members each island sends per epoch (default: evolution.migrants).
    #[arg(long, value_name = "K")]
    pub migrants: Option<u32>,
    /// Where migrants go: ring or full (default: evolution.topology).
    #[arg(long, value_name = "ring|full")]
    pub topology: Option<String>,
}

impl EvolutionArgs {
    /// These flags as config layers, held to their keys' types and ranges when the config
    /// loads; `--exclude` adds to the file's `universe.exclude`.
    ///
    /// # Errors
    /// A `--rng-seed` beyond a TOML integer (the largest `evolution.seed` a file can hold).
    pub fn flags(&self) -> Result<Vec<Flag>> {
        let mut f = Vec::new();
        if let Some(s) = self.rng_seed {
            let seed = i64::try_from(s).map_err(|_| {
                anyhow::anyhow!(
                    "--rng-seed: evolution.seed: {s} is out of range: must be in [0, {}]",
                    i64::MAX
                )
            })?;
            f.push(Flag::new("--rng-seed", "evolution.seed", seed));
        }
        if let Some(p) = self.population {
            f.push(Flag::new("--population", "evolution.population", int(p)));
        }
        if let Some(g) = self.generations {
            f.push(Flag::new("--generations", "evolution.generations", int(g)));
        }
        if let Some(t) = &self.timerange {
            f.push(Flag::new("--timerange", "data.timerange", t.as_str()));
        }
        if let Some(m) = &self.mode {
            f.push(Flag::new("--mode", "evolution.mode", m.as_str()));
        }
        if let Some(a) = &self.algorithm {
            f.push(Flag::new("--algorithm", "evolution.algorithm", a.as_str()));
        }
        if let Some(s) = &self.seeds {
            f.push(Flag::new("--seeds", "evolution.seeds", s.clone()));
        }
        if self.regime {
            f.push(Flag::new("--regime", "regime.enabled", true));
        }
        if let Some(c) = &self.coins {
            let coins: Vec<String> = c.iter().map(|x| x.trim().to_string()).collect();
            f.push(Flag::new("--coins", "data.coins", coins));
        }
        if !self.exclude.is_empty() {
            let coins = self.exclude.iter().map(|x| x.trim().to_string()).collect();
            f.push(Flag::append("--exclude", "universe.exclude", coins));
        }
        if let Some(w) = self.worlds {
            f.push(Flag::new("--worlds", "evolution.worlds", int(w)));
        }
        if let Some(n) = self.islands {
            f.push(Flag::new("--islands", "evolution.islands", int(n)));
        }
        if let Some(g) = self.epoch {
            f.push(Flag::new("--epoch", "evolution.epoch", int(g)));
        }
        if let Some(k) = self.migrants {
            f.push(Flag::new("--migrants", "evolution.migrants", int(k)));
        }
        if let Some(t) = &self.topology {
            f.push(Flag::new("--topology", "evolution.topology", t.as_str()));
        }
        Ok(f)
    }
}

/// Options shared by every command that reads market data.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Config file laid over the built-in defaults (config/default.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory, candles folder or single candle CSV (default: data.path, or the
    /// built-in synthetic market).
    #[arg(long, value_name = "DIR|FILE")]
    pub data: Option<PathBuf>,
    /// Source prefix of candle files, e.g. hyperliquid or binance (default: data.source).
    #[arg(long)]
    pub source: Option<String>,
    /// Candle interval in file names, e.g. 1h (default: data.interval).
    #[arg(long)]
    pub interval: Option<String>,
}

/// The built-in defaults with `file` (a `--config`) laid over them.
pub fn load_config(file: Option<&std::path::Path>) -> Result<Config> {
    load_config_with(file, &[])
}

/// The built-in defaults, `file` (a `--config`), then `flags`: checked once, as one config.
pub fn load_config_with(file: Option<&std::path::Path>, flags: &[Flag]) -> Result<Config> {
    Ok(Config::load_with(file, flags)?)
}

impl DataArgs {
    /// The configuration with this command's data flags applied.
    pub fn config(&self) -> Result<Config> {
        self.config_with(Vec::new())
    }

    /// The configuration with this command's data flags and `more` applied.
    pub fn config_with(&self, mut more: Vec<Flag>) -> Result<Config> {
        let mut flags = Vec::new();
        if let Some(d) = &self.data {
            flags.push(Flag::new("--data", "data.path", d.display().to_string()));
        }
        if let Some(s) = &self.source {
            flags.push(Flag::new("--source", "data.source", s.as_str()));
        }
        if let Some(i) = &self.interval {
            flags.push(Flag::new("--interval", "data.interval", i.as_str()));
        }
        flags.append(&mut more);
        load_config_with(self.config.as_deref(), &flags)
    }
}

/// A portfolio's universe from `cfg` (`[universe]`, `[book]`) and `data.coins` (`all`, `top:N`
/// or a list; empty is all), which it clears: the coins are the pick's to choose.
pub fn portfolio_universe(
    cfg: &Config,
    data: &mut organism::market::DataSelection,
) -> Result<organism::evolution::portfolio::PortfolioRun> {
    use organism::market::universe::CoinPick;
    let pick: CoinPick = if data.coins.is_empty() {
        CoinPick::All
    } else {
        data.coins
            .join(",")
            .parse()
            .map_err(|m| anyhow::anyhow!("--coins (data.coins): {m}"))?
    };
    data.coins.clear();
    let top = match pick {
        CoinPick::Top(n) => Some(n),
        _ => None,
    };
    let membership = cfg.universe.rule(top);
    membership.validate().map_err(anyhow::Error::msg)?;
    Ok(organism::evolution::portfolio::PortfolioRun {
        pick,
        exclude: cfg.universe.exclude.clone(),
        membership,
        limits: cfg.book,
    })
}

/// The portfolio seeds of `evolution.seeds` (every one when empty).
pub fn portfolio_seeds(
    cfg: &Config,
) -> Result<Vec<&'static organism::seeds::portfolio::PortfolioEntry>> {
    use organism::seeds::portfolio::{find_portfolio, registry};
    if cfg.evolution.seeds.is_empty() {
        return Ok(registry()?.iter().collect());
    }
    cfg.evolution
        .seeds
        .iter()
        .map(|n| find_portfolio(n).map_err(|m| anyhow::anyhow!("--seeds: {m}")))
        .collect()
}

/// Loads the configured universe and prints its notes (gaps, missing funding) once to stderr.
pub fn load_data(sel: &organism::market::DataSelection) -> Result<Universe> {
    let u = load_universe(sel).context("loading market data")?;
    say_notes(&u.notes);
    Ok(u)
}

/// Prints notes about the data to stderr, one line each (none with `-q`).
pub fn say_notes(notes: &[String]) {
    if !quiet() {
        for note in notes {
            eprintln!("note: {note}");
        }
    }
}

/// Loads many coins onto one grid with a progress bar on stderr (none with `-q`); the notes
/// are the caller's to print.
pub fn load_panel(
    sel: &organism::market::universe::PanelSelection,
) -> Result<organism::market::universe::LoadedPanel> {
    with_progress(|p| organism::market::universe::load_panel(sel, p))
}

/// A portfolio's universe ([`organism::evolution::portfolio::load_universe_panel`]) with a
/// progress bar; the notes are the caller's to print.
pub fn load_universe_panel(
    data: &organism::market::DataSelection,
    universe: &organism::evolution::portfolio::PortfolioRun,
) -> Result<organism::evolution::portfolio::UniversePanel> {
    with_progress(|p| organism::evolution::portfolio::load_universe_panel(data, universe, p))
}

/// Runs `load` with a `loading N/M coins` bar on stderr (none with `-q`).
fn with_progress<T>(
    load: impl FnOnce(
        &mut dyn FnMut(usize, usize),
    ) -> std::result::Result<T, organism::market::DataError>,
) -> Result<T> {
    let bar = if quiet() {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("loading {pos}/{len} coins {wide_bar}")
                .expect("a valid template"),
        )
    };
    let loaded = load(&mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .context("loading the universe");
    bar.finish_and_clear();
    loaded
}

static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The journal account of the pipeline's notices (a promotion's result, a finished run).
pub const PIPELINE: &str = "pipeline";

/// Journals `event` (`promote`, `evolve`) with `text` under [`PIPELINE`] in the database at
/// `registry` (made when there is none only if alerts have a target) and sends the alerts
/// due, for at most twice `alerts.timeout_secs`. A failure is a warning: the command's work is
/// done.
pub fn notify(cfg: &organism::config::Config, registry: &std::path::Path, event: &str, text: &str) {
    use organism::{clock::Clock, runner::journal, serve::alerts};
    let go = || -> anyhow::Result<()> {
        let targets = cfg.alerts.targets().map_err(anyhow::Error::msg)?;
        if targets.is_empty() && !registry.exists() {
            return Ok(());
        }
        let mut conn = organism::store::open(registry)?;
        alerts::register(&conn, &targets)?;
        let now = organism::clock::WallClock.now_ms();
        let row = journal::NoticeRow {
            event: event.into(),
            text: text.into(),
        };
        journal::append(
            &mut conn,
            PIPELINE,
            &[journal::Entry::new(PIPELINE, now, row)],
            now,
        )?;
        send_alerts(cfg, registry, &targets);
        Ok(())
    };
    if let Err(e) = go() {
        eprintln!("alerts: {e:#}");
    }
}

/// Sends the alerts due to `targets` from the database at `registry`, for at most
/// [`AlertsConfig::last_wait`](organism::serve::alerts::AlertsConfig::last_wait) (a one-shot
/// command's last act; what is left goes with the next sender). A failure is a warning.
pub fn send_alerts(
    cfg: &organism::config::Config,
    registry: &std::path::Path,
    targets: &[organism::serve::alerts::Target],
) {
    if targets.is_empty() {
        return;
    }
    let sent = data::runtime().and_then(|rt| {
        Ok(rt.block_on(organism::serve::alerts::flush(
            registry,
            &cfg.alerts,
            targets,
            &organism::clock::WallClock,
            cfg.alerts.last_wait(),
        ))?)
    });
    if let Err(e) = sent {
        eprintln!("alerts: {e:#}");
    }
}

/// Sets the global `-q` level: no notes, progress or per-generation lines, only results and
/// errors.
pub fn set_quiet(q: bool) {
    QUIET.store(q, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `-q` was given.
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// The CPU seconds (user + system, every thread) this process has used so far, from
/// `/proc/self/stat` (Linux; its times are in USER_HZ = 100 ticks a second); `None` elsewhere or
/// when the file cannot be read.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    cpu_seconds_of(&stat)
}

/// The `utime + stime` of a `/proc/PID/stat` line, in seconds. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted from its closing parenthesis: `utime`
/// and `stime` are fields 14 and 15.
fn cpu_seconds_of(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// How busy a run kept its threads: `cpu / (wall · threads)`, 1 when every thread computed for
/// the whole run. An upper bound on the parallel efficiency (the speed-up over one thread per
/// thread), which `bench evolve --threads N` measures against a one-thread run.
pub fn utilization(cpu: f64, wall: f64, threads: usize) -> f64 {
    if wall > 0.0 && threads > 0 {
        cpu / (wall * threads as f64)
    } else {
        0.0
    }
}

/// Writes `args` to stdout; see [`outln!`].
pub fn out(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.flush()) {
        exit_on_write_error(&e);
    }
}

/// Ends the process after a failed write to stdout: quietly with status 0 for a closed pipe,
/// else with the cause and status 1.
pub fn exit_on_write_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {e}");
    std::process::exit(1);
}

pub use organism::market::format_ts;

/// `, leverage 3x (maintenance margin 1.25 % of notional)` when the engine trades on margin,
/// else nothing (costs lines stay as they were at 1x).
pub fn leverage_text(bt: &organism::execution::EngineConfig) -> String {
    if bt.leverage == 1.0 {
        return String::new();
    }
    format!(
        ", leverage {}x (maintenance margin {} % of notional)",
        organism::genome::significant(bt.leverage, 4),
        organism::genome::significant(100.0 * bt.maintenance_margin, 4)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_of_a_stat_line() {
        // A command name with spaces and a parenthesis; utime 851, stime 37 ticks.
        let line =
            "4242 (organism (x) y) R 1 4242 4242 0 -1 4194304 9000 0 0 0 851 37 0 0 20 0 3 0";
        assert_eq!(cpu_seconds_of(line), Some(8.88));
        assert_eq!(cpu_seconds_of("4242 (organism) R 1"), None);
        assert_eq!(utilization(8.8, 4.8, 2), 8.8 / 9.6);
        assert_eq!(utilization(1.0, 0.0, 2), 0.0);
        // This process has a stat file and has used some CPU by now.
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
    }
}
