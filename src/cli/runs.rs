//! `organism runs`: what a run found. `list` the runs in a folder, `show` one run's settings,
//! history and ranked members, `export` a member's genome as a TOML file that
//! `backtest --genome` reads back.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use organism::{
    evolution::{
        checkpoint::{self, path_for, Checkpoint, RunSpec},
        folder,
        nulls::SearchNulls,
        problem::{load_run, RunProblem},
        summary::{self, Ranked},
        GenStats, Member, Problem as _,
    },
    genome::{
        program::{self, Program},
        SeedSpec,
    },
    market::csv::write_atomic,
    seeds,
};

use super::format_ts;

#[derive(clap::Subcommand, Debug)]
pub enum RunsCommand {
    /// List the runs in a folder (default: evolution.out, `populations/`) and in the folders
    /// below it, up to four levels down: when started, seeds, data, generations done, best
    /// training and validation Sharpe.
    List {
        /// Folder to look in.
        dir: Option<PathBuf>,
        /// One JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show a run: settings, data fingerprint, per-generation history and its first front
    /// ranked (duplicates collapsed; training and validation figures side by side; flags on
    /// members whose validation Sharpe is negative or below half their training Sharpe).
    Show {
        /// A checkpoint (populations/gen42.bin) or a run folder (its newest checkpoint).
        target: Option<PathBuf>,
        /// Rank the whole population, not only the first front.
        #[arg(long)]
        all: bool,
        /// Print at most this many members (0: all).
        #[arg(long, default_value_t = 0)]
        top: usize,
        /// One JSON object.
        #[arg(long)]
        json: bool,
        /// Also write an HTML report with charts.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
    /// Print a member's genome as TOML (for `backtest --genome FILE`).
    Export {
        /// `[CHECKPOINT|front.csv|DIR:]ID`; a bare ID is looked up in the newest checkpoint of
        /// evolution.out.
        member: String,
        /// Write the TOML to this file instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub fn run(cmd: RunsCommand) -> Result<()> {
    match cmd {
        RunsCommand::List { dir, json } => list(dir, json),
        RunsCommand::Show {
            target,
            all,
            top,
            json,
            report,
        } => show(target, all, top, json, report),
        RunsCommand::Export { member, out } => {
            let m = resolve_member(&member)?;
            let text = genome_toml(&m)?;
            match out {
                Some(p) => {
                    write_atomic(&p, text.as_bytes())?;
                    eprintln!(
                        "wrote {} (backtest it with: organism backtest --genome {})",
                        p.display(),
                        p.display()
                    );
                }
                None => outln!("{}", text.trim_end()),
            }
            Ok(())
        }
    }
}

fn default_dir() -> Result<PathBuf> {
    Ok(PathBuf::from(
        organism::config::Config::defaults()?.evolution.out,
    ))
}

/// The newest checkpoint of a run folder.
pub fn newest_checkpoint(dir: &Path) -> Result<PathBuf> {
    match folder::generations(dir).last() {
        Some(&g) => Ok(path_for(dir, g)),
        None => bail!(
            "{}: no checkpoints (genN.bin) here; a run folder is what `organism evolve --out DIR` writes",
            dir.display()
        ),
    }
}

/// Reads a checkpoint or the newest of a folder.
pub fn read_target(target: &Path) -> Result<(PathBuf, Checkpoint)> {
    let file = if target.is_dir() {
        newest_checkpoint(target)?
    } else {
        target.to_path_buf()
    };
    let ck = checkpoint::read(&file)?;
    Ok((file, ck))
}

/// `synthetic market` or the data path with source and interval, plus the time range.
/// The data a run or walk reads: folder (source interval) [timerange], or the synthetic market.
pub(super) fn data_label(d: &organism::market::universe::DataSelection) -> String {
    let base = match &d.path {
        None => format!("synthetic (seed {})", d.synthetic.seed),
        Some(p) => format!(
            "{} ({} {})",
            p.display(),
            if d.source.is_empty() { "*" } else { &d.source },
            d.interval
        ),
    };
    match d.timerange {
        Some(r) => format!("{base} [{r}]"),
        None => base,
    }
}

fn best_train_sharpe(history: &[GenStats]) -> Option<f64> {
    history
        .iter()
        .map(|h| h.best_sharpe)
        .filter(|v| v.is_finite())
        .max_by(f64::total_cmp)
}

/// The run folders at or below `dir`, at most `depth` levels down, in path order: a folder
/// with checkpoints is a run (and not searched further); hidden folders are skipped.
fn run_folders(dir: &Path, depth: usize) -> Vec<PathBuf> {
    if !folder::generations(dir).is_empty() {
        return vec![dir.to_path_buf()];
    }
    if depth == 0 {
        return Vec::new();
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    subs.sort();
    subs.iter()
        .flat_map(|s| run_folders(s, depth - 1))
        .collect()
}

fn list(dir: Option<PathBuf>, json: bool) -> Result<()> {
    let dir = match dir {
        Some(d) => d,
        None => default_dir()?,
    };
    if !dir.is_dir() {
        bail!("{}: no such folder", dir.display());
    }
    std::fs::read_dir(&dir).with_context(|| format!("{}: cannot read", dir.display()))?;
    let folders = run_folders(&dir, 4);
    let mut rows = Vec::new();
    for f in folders {
        let gens = folder::generations(&f);
        let (Some(&first), Some(&last)) = (gens.first(), gens.last()) else {
            continue;
        };
        let file = path_for(&f, last);
        let ck = match checkpoint::read(&file) {
            Ok(ck) => ck,
            Err(e) => {
                eprintln!("warning: skipping {}: {e}", f.display());
                continue;
            }
        };
        let started = std::fs::metadata(path_for(&f, first))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64);
        let validation = std::fs::read_to_string(f.join("front.csv"))
            .ok()
            .and_then(|t| summary::read_front_csv("front.csv", &t).ok())
            .and_then(|rows| {
                rows.iter()
                    .map(|r| r.validation_sharpe)
                    .filter(|v| v.is_finite())
                    .max_by(f64::total_cmp)
            });
        rows.push(serde_json::json!({
            "run": f.display().to_string(),
            "started": started.map(format_ts),
            "seeds": ck.run.seeds.len(),
            "mode": ck.run.settings.mode.as_str(),
            "data": data_label(&ck.run.data),
            "generations": ck.state.generation,
            "checkpoint": file.display().to_string(),
            "best_train_sharpe": best_train_sharpe(&ck.state.history),
            "best_validation_sharpe": validation,
        }));
    }
    if json {
        outln!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    if rows.is_empty() {
        outln!(
            "no runs in {} or its subfolders (a run is a folder of genN.bin checkpoints written by `organism evolve`)",
            dir.display()
        );
        return Ok(());
    }
    outln!(
        "{:<28} {:<16} {:>5} {:>5} {:>11} {:>11}  data",
        "run",
        "started (UTC)",
        "seeds",
        "gens",
        "best train",
        "best valid."
    );
    let num = |v: &serde_json::Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.3}"));
    for r in &rows {
        outln!(
            "{:<28} {:<16} {:>5} {:>5} {:>11} {:>11}  {}",
            r["run"].as_str().unwrap_or(""),
            r["started"].as_str().unwrap_or("-"),
            r["seeds"].to_string(),
            r["generations"].to_string(),
            num(&r["best_train_sharpe"]),
            num(&r["best_validation_sharpe"]),
            r["data"].as_str().unwrap_or("")
        );
    }
    outln!("(best validation Sharpe is read from each run's front.csv, written when a run ends)");
    Ok(())
}

/// The ranked-members table (at most `limit` rows; 0: all) of `what` (e.g. "first front after
/// generation 100").
pub fn print_ranked(rows: &[Ranked], specs: &[&SeedSpec], limit: usize, what: &str) {
    let shown = if limit == 0 {
        rows.len()
    } else {
        limit.min(rows.len())
    };
    outln!(
        "{what}: {} distinct members, ranked by score = min(train, validation Sharpe){}",
        rows.len(),
        if shown < rows.len() {
            format!("; top {shown}")
        } else {
            String::new()
        }
    );
    outln!(
        "{:>3} {:<8} {:<20} {:>6} | {:>6} {:>8} {:>6} {:>6} | {:>6} {:>8} {:>6} {:>6} | {:<11} genes",
        "#", "id", "seed", "score", "sharpe", "return", "mdd", "trades", "sharpe", "return", "mdd",
        "trades", "flag"
    );
    outln!(
        "{:>3} {:<8} {:<20} {:>6} | {:^29} | {:^29} |",
        "",
        "",
        "",
        "",
        "training",
        "validation"
    );
    for (i, r) in rows.iter().take(shown).enumerate() {
        let (t, v) = (&r.train, &r.validation);
        let mut flag = r.flag.map_or("", summary::Flag::as_str).to_string();
        if !t.feasible {
            flag = if flag.is_empty() {
                "infeasible".into()
            } else {
                format!("{flag},infeasible")
            };
        }
        let copies = if r.copies > 1 {
            format!(" (x{})", r.copies)
        } else {
            String::new()
        };
        outln!(
            "{:>3} {:<8} {:<20} {:>6.3} | {:>6.3} {:>7.1}% {:>5.1}% {:>6} | {:>6.3} {:>7.1}% {:>5.1}% {:>6} | {:<11} {}{copies}",
            i + 1,
            r.id,
            r.seed,
            r.score,
            t.sharpe,
            t.total_return * 100.0,
            t.max_drawdown * 100.0,
            t.trades,
            v.sharpe,
            v.total_return * 100.0,
            v.max_drawdown * 100.0,
            v.trades,
            flag,
            r.short_text(specs)
        );
        if let (Some(dt), Some(dv)) = (&t.portfolio, &v.portfolio) {
            outln!(
                "{:>33} rank IC {} train, {} validation; coins held {:.1} / {:.1}; capacity at 1 M USD: \
                 {} of a bar's volume at most, {} median (validation)",
                "",
                ic_text(&dt.rank_ic),
                ic_text(&dv.rank_ic),
                dt.avg_held,
                dv.avg_held,
                percent(dv.capacity_max),
                percent(dv.capacity_median)
            );
        }
    }
    if rows.iter().any(|r| r.train.portfolio.is_some()) {
        outln!(
            "(a portfolio's trades are its fills; rank IC: mean over rebalances of the scores' rank \
             correlation with the next period's returns, t = mean / standard error)"
        );
    }
    let flagged = rows.iter().filter(|r| r.flag.is_some()).count();
    if flagged > 0 {
        outln!(
            "{flagged} of {} flagged: validation Sharpe negative (val<0) or below half the training Sharpe (val<train/2)",
            rows.len()
        );
    }
}

/// A rank IC as `0.031 (t 3.4, 120 rebalances)`.
pub fn ic_text(ic: &organism::fitness::portfolio::RankIc) -> String {
    match ic.count {
        0 => "none".into(),
        1 => format!("{:.3} (one rebalance)", ic.mean),
        n => format!("{:.3} (t {:.1}, {n} rebalances)", ic.mean, ic.t),
    }
}

/// A share as a percentage with the digits it needs.
pub fn percent(x: f64) -> String {
    let p = x * 100.0;
    if !p.is_finite() {
        "unbounded (a bar without volume)".into()
    } else if p >= 1.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.3} %")
    }
}

fn show(
    target: Option<PathBuf>,
    all: bool,
    top: usize,
    json: bool,
    report: Option<PathBuf>,
) -> Result<()> {
    let target = match target {
        Some(t) => t,
        None => default_dir()?,
    };
    let (file, ck) = read_target(&target)?;
    ck.seed_set(&file)?;
    let loaded =
        load_run(&ck.run).with_context(|| format!("{}: the run's data", file.display()))?;
    if !super::quiet() && !json {
        for note in &loaded.notes {
            eprintln!("note: {note}");
        }
    }
    let problem = &loaded.problem;
    let specs = problem.specs();
    let members: Vec<&Member> = ck
        .state
        .population
        .iter()
        .filter(|m| all || m.rank == 0)
        .collect();
    let ranked = summary::rank(problem, &members);
    let run = &ck.run;
    let nulls = search_nulls(&file, &ck)?;
    if let Some(path) = &report {
        let html = run_report_html(&file, &ck, &ranked, &loaded, top);
        write_atomic(path, html.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    if json {
        outln!(
            "{}",
            serde_json::json!({
                "checkpoint": file.display().to_string(),
                "generation": ck.state.generation,
                "run": run,
                "fingerprint": format!("{:016x}", ck.fingerprint),
                "data_fingerprint_now": format!("{:016x}", loaded.fingerprint),
                "validation_from": format_ts(loaded.validation_from),
                "holdout_from": format_ts(loaded.holdout_from),
                "history": ck.state.history,
                "ranking": "score = min(train sharpe, validation sharpe); feasible first",
                "members": ranked,
                "null_searches": nulls,
            })
        );
        return Ok(());
    }
    let s = &run.settings;
    outln!(
        "run {} at generation {}",
        file.display(),
        ck.state.generation
    );
    outln!(
        "settings: mode {}, rng seed {}, population {}, crossover {} (eta {}), mutation {} per gene (eta {})",
        s.mode.as_str(), run.seed, s.population, s.crossover_prob, s.eta_crossover, s.mutation_prob, s.eta_mutation
    );
    if let Some(i) = run.islands {
        outln!(
            "islands: {} of {} members each, {} migrants per island every {} generations ({}); \
             the front is the union of the islands' first fronts, each generation's figures \
             the islands' summed (best Sharpe and HV: the best island's)",
            i.count,
            s.population,
            i.migrants,
            i.epoch,
            i.topology.as_str()
        );
    }
    if run.worlds.count > 0 {
        outln!(
            "fitness across {} perturbed worlds besides the real one, each objective at their {} \
             quantile (bootstrap blocks of {} bars)",
            run.worlds.count,
            run.worlds.quantile,
            run.worlds.block
        );
    }
    if matches!(
        s.mode,
        organism::evolution::Mode::Programs | organism::evolution::Mode::Mixed
    ) {
        outln!(
            "programs: depth <= {}, nodes <= {}, mutation {} per offspring",
            s.limits.max_depth,
            s.limits.max_nodes,
            s.program_mutation_prob
        );
    }
    outln!(
        "split: train {:.0} %, validation {:.0} % (from {} UTC), holdout from {} UTC; {}",
        run.split.train * 100.0,
        run.split.validation * 100.0,
        format_ts(loaded.validation_from),
        format_ts(loaded.holdout_from),
        if run.settings.mode == organism::evolution::Mode::Portfolio {
            format!(
                "min trades {} fills of the account",
                run.aggregation.min_trades
            )
        } else if run.portfolio.is_some() {
            format!(
                "min trades {} per coin, worst-coin weight {} (a portfolio member: {} fills of \
                 the account)",
                run.aggregation.min_trades,
                run.aggregation.worst_coin_weight,
                run.aggregation.min_trades
            )
        } else {
            format!(
                "min trades {} per coin, worst-coin weight {}",
                run.aggregation.min_trades, run.aggregation.worst_coin_weight
            )
        }
    );
    let b = &run.backtest;
    outln!(
        "costs: fee {:.4} %, slippage {:.4} %, funding {}, fill {}, cash {}{}",
        b.fee * 100.0,
        b.slippage * 100.0,
        if b.funding { "on" } else { "off" },
        b.fill.as_str(),
        b.cash,
        super::leverage_text(b)
    );
    let same = if loaded.fingerprint == ck.fingerprint {
        "unchanged"
    } else {
        "CHANGED since the run: figures below are on today's data"
    };
    let coins: Vec<&str> = match problem {
        RunProblem::Coins(p) | RunProblem::Mixed(p, _) => {
            p.train.iter().map(|p| p.market.coin.as_str()).collect()
        }
        RunProblem::Portfolio(p) => p.train.panel.names(),
    };
    outln!(
        "data: {}, {} coins {}, fingerprint {:016x} ({same})",
        data_label(&run.data),
        coins.len(),
        coins.join(","),
        ck.fingerprint
    );
    if let Some(p) = &run.portfolio {
        outln!("{}", universe_label(p));
    }
    outln!("seeds: {}", seeds_label(&problem.seed_names()));
    outln!();
    print_history(&ck.state.history);
    outln!();
    let what = if all {
        format!("population after generation {}", ck.state.generation)
    } else {
        format!("first front after generation {}", ck.state.generation)
    };
    print_ranked(&ranked, &specs, top, &what);
    if let Some(n) = &nulls {
        outln!();
        for line in n.lines() {
            outln!("{line}");
        }
    }
    if let Some(r) = ranked.first() {
        outln!();
        outln!(
            "backtest one: organism backtest --member {}:{}   |   export: organism runs export {}:{}",
            file.display(),
            r.id,
            file.display(),
            r.id
        );
    }
    Ok(())
}

/// The null searches of the run of checkpoint `file`, when they are of its generation.
fn search_nulls(file: &Path, ck: &Checkpoint) -> Result<Option<SearchNulls>> {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok(SearchNulls::read(dir)
        .map_err(anyhow::Error::msg)?
        .filter(|n| n.generations == ck.state.generation))
}

fn seeds_label(names: &[&str]) -> String {
    format!("{} ({})", names.len(), names.join(", "))
}

/// A portfolio run's universe and book on one line.
pub fn universe_label(p: &organism::evolution::portfolio::PortfolioRun) -> String {
    let m = &p.membership;
    let l = &p.limits;
    format!(
        "universe: coins {}{}; members: {} days of history, {} USD median daily volume over {} days; \
         book: max weight {}, max gross {}, max net {}, min trade {}",
        p.pick,
        if p.exclude.is_empty() {
            String::new()
        } else {
            format!(" less {}", p.exclude.join(","))
        },
        m.min_history,
        m.min_volume_usd,
        m.volume_days,
        l.max_weight,
        l.max_gross,
        l.max_net,
        l.min_trade
    )
}

/// The HTML report of a run at checkpoint `file`, its table at most `top` members (0: all).
pub fn run_report_html(
    file: &Path,
    ck: &Checkpoint,
    ranked: &[Ranked],
    loaded: &organism::evolution::problem::LoadedRun,
    top: usize,
) -> String {
    let run = &ck.run;
    let b = &run.backtest;
    let intro = [
        format!("checkpoint {} at generation {}", file.display(), ck.state.generation),
        format!(
            "data: {}, fingerprint {:016x}; training to {} UTC, validation to {} UTC, holdout not read",
            data_label(&run.data),
            ck.fingerprint,
            format_ts(loaded.validation_from),
            format_ts(loaded.holdout_from)
        ),
        format!(
            "population {}, rng seed {}; costs: fee {:.4} %, slippage {:.4} %, funding {}, fill {}{}",
            run.settings.population,
            run.seed,
            b.fee * 100.0,
            b.slippage * 100.0,
            if b.funding { "on" } else { "off" },
            b.fill.as_str(),
            super::leverage_text(b)
        ),
        format!("seeds: {}", seeds_label(&loaded.problem.seed_names())),
    ];
    // The null searches, when the run has them for this generation.
    let nulls = search_nulls(file, ck).ok().flatten();
    let intro: Vec<String> = intro
        .into_iter()
        .chain(nulls.iter().flat_map(SearchNulls::lines))
        .collect();
    organism::promotion::report::run_report(
        &format!("organism run: {}", file.display()),
        &intro,
        &ck.state.history,
        ranked,
        &loaded.problem.specs(),
        top,
    )
}

/// The history, at most about 20 rows (evenly spaced, first and last always).
fn print_history(history: &[GenStats]) {
    outln!(
        "{:>5} {:>6} {:>11} {:>6} {:>9} {:>8} {:>9}",
        "gen",
        "evals",
        "best sharpe",
        "front",
        "feasible",
        "HV",
        "diversity"
    );
    let step = history.len().div_ceil(20).max(1);
    for (i, h) in history.iter().enumerate() {
        if i % step != 0 && i + 1 != history.len() {
            continue;
        }
        outln!(
            "{:>5} {:>6} {:>11.3} {:>6} {:>9} {:>8.4} {:>9.2}",
            h.generation,
            h.evaluations,
            h.best_sharpe,
            h.front_size,
            h.feasible,
            h.hypervolume,
            h.diversity
        );
    }
    if step > 1 {
        outln!("(every {step}th generation; --json has all, and history.csv)");
    }
}

/// A member found by `[FILE|DIR:]ID`.
pub struct MemberRef {
    pub id: String,
    pub genome: Genome,
    /// The run it came from, when known (a checkpoint, or a checkpoint beside a front.csv).
    pub run: Option<RunSpec>,
    /// Where it was found, for messages.
    pub origin: String,
}

pub use organism::seeds::Genome;

/// A seed's gene spec by name (for programs' `seed` terminals).
pub fn seed_spec(name: &str) -> Option<SeedSpec> {
    seeds::spec_of(name)
}

/// Reads a program's text (from `origin`, for messages).
pub fn parse_program_text(text: &str, origin: &str) -> Result<Program> {
    program::parse(text, &seed_spec).map_err(|e| anyhow::anyhow!("{origin}: {e}"))
}

/// Finds a member: `populations/gen42.bin:ID`, `populations/front.csv:ID`, `DIR:ID`, or a bare
/// `ID` in the newest checkpoint of evolution.out. The id may be shortened to a unique prefix.
pub fn resolve_member(text: &str) -> Result<MemberRef> {
    let (place, id) = match text.rsplit_once(':') {
        Some((p, id)) if !p.is_empty() && !p.ends_with(')') => (PathBuf::from(p), id),
        _ => (default_dir()?, text.trim_start_matches(':')),
    };
    let is_csv = place.extension().is_some_and(|e| e == "csv");
    if is_csv {
        let body = std::fs::read_to_string(&place)
            .with_context(|| format!("{}: cannot read", place.display()))?;
        let rows = summary::read_front_csv(&place.display().to_string(), &body)
            .map_err(anyhow::Error::msg)?;
        let row = summary::find_by_id(&rows, |r| &r.id, id, &place.display().to_string())
            .map_err(anyhow::Error::msg)?;
        let origin = format!("{}: member {}", place.display(), row.id);
        let genome = Genome::of(&row.seed, row.program.as_deref(), &row.genes, &origin)
            .map_err(anyhow::Error::msg)?;
        if genome.id() != row.id {
            bail!(
                "{}: member {}'s genes do not match its id (the file was edited?); \
                 use the checkpoint instead",
                place.display(),
                row.id
            );
        }
        let dir = place
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let run = folder::generations(dir)
            .last()
            .and_then(|&g| checkpoint::read(&path_for(dir, g)).ok())
            .map(|ck| ck.run);
        return Ok(MemberRef {
            id: row.id.clone(),
            genome,
            run,
            origin: place.display().to_string(),
        });
    }
    let (file, ck) = read_target(&place)?;
    let seeds = ck.seed_set(&file)?;
    let mut found: Vec<(String, Genome)> = ck
        .state
        .population
        .iter()
        .map(|m| {
            let g = seeds.member(m);
            (g.id(), g)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    let i = summary::find_by_id(&found, |f| &f.0, id, &file.display().to_string())
        .map_err(anyhow::Error::msg)?
        .0
        .clone();
    let Some(pos) = found.iter().position(|f| f.0 == i) else {
        bail!("{}: member {i} vanished", file.display());
    };
    let (id, genome) = found.swap_remove(pos);
    Ok(MemberRef {
        id,
        genome,
        run: Some(ck.run.clone()),
        origin: file.display().to_string(),
    })
}

/// A genome as TOML: `seed = "..."` (for a program, `seed = "program"` and `program = "..."`) and
/// a `[genes]` table, values exact.
pub fn genome_toml(m: &MemberRef) -> Result<String> {
    Ok(format!(
        "# organism genome: member {} of {}\n# backtest it with: organism backtest --genome FILE\n{}",
        m.id,
        m.origin,
        m.genome.to_toml()?
    ))
}

/// Reads a genome TOML file (see [`genome_toml`]): the seed (or program), its defaults, then the
/// genes given.
pub fn read_genome(path: &Path) -> Result<Genome> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    parse_genome(&text, &path.display().to_string())
}

/// Reads a genome from its TOML `text` (see [`genome_toml`]); errors name `origin`.
pub fn parse_genome(text: &str, origin: &str) -> Result<Genome> {
    Genome::from_toml(text, origin).map_err(anyhow::Error::msg)
}
