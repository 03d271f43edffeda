//! `organism promote`: the validation gauntlet on a run's first front, and the survivors into
//! the strategy registry. The library does the work (`promotion::gauntlet`,
//! `promotion::registry`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use organism::evolution::portfolio::UniverseDefinition;
use organism::{
    clock::{Clock, WallClock},
    evolution::{
        checkpoint::{self, RunSpec},
        nulls::SearchNulls,
        problem::{load_portfolio_holdout, load_run},
        summary, Member, Mode,
    },
    execution::risk::allocate,
    market::csv::write_atomic,
    promotion::{
        gauntlet::{self, Candidates, CoinCandidates, PortfolioCandidates, Setup, Trials, Verdict},
        registry::{Figures, PromotionRecord, Recorded, Registry, Status, Strategy},
        report::promotion_report,
    },
    seeds::Prepared,
};

use super::{
    format_ts,
    runs::{genome_toml, read_target, MemberRef},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config file laid over the built-in defaults (its [promotion] section sets the
    /// gauntlet's thresholds).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Checkpoint or run folder to judge (default: the newest checkpoint in evolution.out).
    #[arg(long, value_name = "FILE|DIR")]
    pub from: Option<PathBuf>,
    /// Most strategies admitted (default: promotion.top).
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// The strategy registry (default: promotion.registry).
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,
    /// Return-permuted copies for the null test (default: promotion.nulls).
    #[arg(long, value_name = "N")]
    pub nulls: Option<usize>,
    /// Cross-sectionally shuffled copies for a portfolio run's cross-sectional null (default:
    /// promotion.cross_nulls).
    #[arg(long, value_name = "N")]
    pub cross_nulls: Option<usize>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Also write an HTML report (gauntlet table, equity by segment, null distributions).
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

/// The registry id of a candidate: `{seed-or-program}_{generation}_{hash8}`.
pub fn strategy_id(seed: &str, generation: u32, hash: &str) -> String {
    format!("{seed}_{generation}_{hash}")
}

/// The gauntlet's setup for `candidates` of `run`.
fn setup<'a, C: Candidates>(
    candidates: &'a C,
    run: &RunSpec,
    cfg: &'a organism::config::Config,
    trials: Trials,
    search_nulls: &[f64],
) -> Setup<'a, C> {
    Setup {
        candidates,
        seed: run.seed,
        cfg: &cfg.promotion,
        trials,
        top: cfg.promotion.top,
        search_nulls: search_nulls.to_vec(),
    }
}

pub fn run(args: Args) -> Result<()> {
    let flags: Vec<organism::config::Flag> = [
        ("--top", "promotion.top", args.top),
        ("--nulls", "promotion.nulls", args.nulls),
        ("--cross-nulls", "promotion.cross_nulls", args.cross_nulls),
    ]
    .into_iter()
    .filter_map(|(flag, key, v)| v.map(|v| organism::config::Flag::new(flag, key, super::int(v))))
    .collect();
    let cfg = super::load_config_with(args.config.as_deref(), &flags)?;
    let registry_path = args
        .registry
        .clone()
        .unwrap_or_else(|| PathBuf::from(&cfg.promotion.registry));
    let target = args
        .from
        .clone()
        .unwrap_or_else(|| PathBuf::from(&cfg.evolution.out));
    if !target.exists() {
        bail!(
            "{}: no such run folder or checkpoint; evolve a run first (organism evolve) or name \
             one with --from",
            target.display()
        );
    }
    let (file, ck) = read_target(&target)?;
    if ck.run.portfolio.is_some() && ck.run.settings.mode != Mode::Portfolio {
        bail!(
            "{}: a mixed run with portfolio seeds; the gauntlet judges a run of one kind \
             (single-coin seeds and programs, or --mode portfolio): evolve the portfolio seeds \
             in a run of their own to promote them. `organism runs show {}` ranks its members \
             on training and validation.",
            file.display(),
            file.display()
        );
    }
    // Opened first: a registry that cannot be used stops the promotion before any work.
    let mut registry = Registry::open(&registry_path)?;
    let seed_set = ck.seed_set(&file)?;
    let say = |m: &str| {
        if !super::quiet() && !args.json {
            eprintln!("{m}");
        }
    };
    let loaded =
        load_run(&ck.run).with_context(|| format!("{}: the run's data", file.display()))?;
    if loaded.fingerprint != ck.fingerprint {
        bail!(
            "{}: the run's data changed since it was evolved (fingerprint {:016x}, now {:016x}); \
             the gauntlet judges a run on the data it was evolved on",
            file.display(),
            ck.fingerprint,
            loaded.fingerprint
        );
    }
    for note in &loaded.notes {
        say(&format!("note: {note}"));
    }
    let cache = checkpoint::read_cache(&file, ck.cache)?;
    let regime = ck
        .run
        .regime
        .map_or_else(|| cfg.regime.params(), |f| f.volatility);
    let coins = loaded
        .problem
        .coins()
        .map(|problem| CoinCandidates { problem, regime });
    let portfolio = loaded
        .problem
        .portfolio()
        .map(|problem| PortfolioCandidates { problem });
    let mut trials = Trials::of(cache.values(), ck.run.aggregation.sharpe);
    let keys: Vec<&organism::evolution::CacheKey> = cache.keys().collect();
    say(&format!(
        "clustering the training returns of {} of the {} trials",
        keys.len().min(cfg.promotion.cluster_sample),
        keys.len()
    ));
    let (sample, seed) = (cfg.promotion.cluster_sample, ck.run.seed);
    trials.effective = Some(match (&coins, &portfolio) {
        (Some(c), _) => gauntlet::cluster_trials(c, &keys, sample, seed),
        (None, Some(p)) => gauntlet::cluster_trials(p, &keys, sample, seed),
        (None, None) => bail!("{}: the run holds no strategies", file.display()),
    });
    trials.clustered = cfg.promotion.trials == gauntlet::TrialCount::Clustered;
    let members: Vec<&Member> = ck.state.population.iter().filter(|m| m.rank == 0).collect();
    let ranked = summary::rank(&loaded.problem, &members);
    let run_dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let run_name = std::fs::canonicalize(run_dir)
        .unwrap_or_else(|_| run_dir.to_path_buf())
        .display()
        .to_string();
    let generation = ck.state.generation;
    // The run's null searches, when it has them for this generation.
    let search_nulls = match SearchNulls::read(run_dir).map_err(anyhow::Error::msg)? {
        Some(n) if n.generations == generation => n.best_sharpes(),
        Some(n) => {
            say(&format!(
                "note: the run's null searches are of generation {}, not {generation}: the \
                 search_nulls stage is skipped (evolve resume {} --null-searches {} brings them \
                 up to date)",
                n.generations,
                run_dir.display(),
                n.nulls.len()
            ));
            Vec::new()
        }
        None => Vec::new(),
    };
    let clock = WallClock;
    let earlier_promotions = registry.promotions_reading_holdout(&run_name)?;
    let promotion = registry.begin_promotion(&PromotionRecord {
        at_ms: clock.now_ms(),
        run: run_name.clone(),
        checkpoint: file.display().to_string(),
        generation,
        data_fingerprint: format!("{:016x}", ck.fingerprint),
        trials: trials.count,
        trial_sharpe_var: trials.sharpe_var,
        pbo: None,
    })?;
    say(&format!(
        "promotion {promotion}: {} distinct candidates in the first front of {} (generation {generation}); \
         {} trials",
        ranked.len(),
        file.display(),
        trials.count
    ));
    let ids: Vec<String> = ranked
        .iter()
        .map(|r| strategy_id(&r.seed, generation, &r.id))
        .collect();
    let mut read_holdout = |i: usize| -> Result<usize> {
        let earlier = registry.holdout_reads(&ids[i], &run_name)?;
        registry.record_holdout_read(promotion, &ids[i], &run_name, clock.now_ms())?;
        Ok(earlier)
    };
    let progress = |m: &str| say(m);
    let verdict = match (&coins, &portfolio) {
        (Some(c), _) => gauntlet::run(
            &ranked,
            &setup(c, &ck.run, &cfg, trials, &search_nulls),
            &mut read_holdout,
            &mut || {
                let u = organism::market::load_universe(&ck.run.data)?;
                Ok(ck
                    .run
                    .split
                    .apply(&u)
                    .holdout
                    .into_iter()
                    .map(Prepared::new)
                    .collect())
            },
            &progress,
        )?,
        (None, Some(p)) => gauntlet::run(
            &ranked,
            &setup(p, &ck.run, &cfg, trials, &search_nulls),
            &mut read_holdout,
            &mut || Ok(load_portfolio_holdout(&ck.run)?),
            &progress,
        )?,
        (None, None) => unreachable!("refused above"),
    };
    let admitted: Vec<usize> = (0..verdict.candidates.len())
        .filter(|&i| verdict.candidates[i].admitted)
        .collect();
    let vols: Vec<f64> = admitted
        .iter()
        .map(|&i| {
            let j = &verdict.candidates[i];
            let r: Vec<f64> = j
                .validation
                .returns
                .iter()
                .chain(j.holdout.iter().flat_map(|h| &h.returns))
                .copied()
                .collect();
            organism::fitness::Moments::of(&r).std()
        })
        .collect();
    let shares = allocate(&vols, cfg.portfolio.method(), cfg.portfolio.max_weight);
    let weight_of = |rank: usize| {
        admitted
            .iter()
            .position(|&i| i == rank)
            .map_or(0.0, |k| shares[k])
    };
    let admitted = admitted.len();
    let now = clock.now_ms();
    let mut notes = Vec::new();
    // What became of each strategy that passed: newly promoted, or kept at a later status
    // (paper, live, promoted before) or retired.
    let mut kept: Vec<Status> = Vec::new();
    if earlier_promotions > 0 && verdict.holdout_read {
        notes.push(format!(
            "this run's holdout had been read by {earlier_promotions} earlier promotion(s): \
             a holdout consulted again and again is no longer an unseen test"
        ));
    }
    // A portfolio strategy's universe, its data folder made absolute (replays run from
    // anywhere).
    let universe_def = ck.run.portfolio.as_ref().map(|pr| {
        let mut d = UniverseDefinition::of(&ck.run.data, pr, ck.fingerprint);
        d.path = d.path.map(|p| std::fs::canonicalize(&p).unwrap_or(p));
        d
    });
    for (j, r) in verdict.candidates.iter().zip(&ranked) {
        let genome = seed_set.genome(r.seed_index, &r.genes, r.program.as_ref());
        let spec = genome.spec()?;
        let member = MemberRef {
            id: r.id.clone(),
            genome,
            run: Some(ck.run.clone()),
            origin: file.display().to_string(),
        };
        let stopped = j.stopped_at();
        let s = Strategy {
            id: ids[j.rank].clone(),
            name: r.seed.clone(),
            generation,
            hash: r.id.clone(),
            genome: genome_toml(&member)?,
            program: r.program_text.clone(),
            spec_fingerprint: format!("{:016x}", spec.fingerprint()),
            run: run_name.clone(),
            checkpoint: file.display().to_string(),
            data_fingerprint: format!("{:016x}", ck.fingerprint),
            promotion_id: promotion,
            verdict: match stopped {
                Some(o) => format!("failed: {}", o.stage.as_str()),
                None => "passed".into(),
            },
            stopped_at: stopped.map(|o| o.stage.as_str().to_string()),
            figures: Figures::of(j),
            weight: weight_of(j.rank),
            status: Status::Candidate,
            reason: stopped.map_or_else(String::new, |o| o.reason.clone()),
            created_ms: now,
            updated_ms: now,
            universe: universe_def.clone(),
        };
        match registry.record(&s, j.admitted, now)? {
            Recorded::Updated { before, now } if j.admitted && before != Status::Candidate => {
                kept.push(before);
                if before == Status::Retired {
                    notes.push(format!(
                        "{} passed but stays retired (a retired strategy is not promoted again)",
                        s.id
                    ));
                } else if now != Status::Promoted {
                    notes.push(format!(
                        "{} passed again and stays {before}: it is already past promotion",
                        s.id
                    ));
                }
            }
            Recorded::Updated { before, .. }
                if !j.admitted
                    && matches!(before, Status::Promoted | Status::Paper | Status::Live) =>
            {
                notes.push(format!(
                    "{} is {before} but did not pass today ({}); consider `organism strategies retire {} --reason ...`",
                    s.id, s.verdict, s.id
                ));
            }
            _ => {}
        }
    }
    let summary_line = summary_line(&verdict, admitted, &kept);
    registry.finish_promotion(
        promotion,
        verdict.candidates.len(),
        admitted,
        verdict.pbo.as_ref().map(|p| p.pbo),
        &summary_line,
    )?;
    if let Some(path) = &args.report {
        let intro = [
            format!(
                "promotion {promotion}: checkpoint {} at generation {generation}",
                file.display()
            ),
            format!(
                "trials {}, their training Sharpe variance {}; PBO of the front {}",
                trials.count,
                trials
                    .sharpe_var
                    .map_or("unknown".into(), |v| format!("{v:.3}")),
                verdict
                    .pbo
                    .as_ref()
                    .map_or("not computable".into(), |p| format!("{:.2}", p.pbo))
            ),
            format!(
                "validation from {} UTC, holdout from {} UTC{}",
                format_ts(loaded.validation_from),
                format_ts(loaded.holdout_from),
                if verdict.holdout_read {
                    " (read by this promotion)"
                } else {
                    " (not read: no candidate reached it)"
                }
            ),
            summary_line.clone(),
        ]
        .into_iter()
        .chain(
            universe_def
                .as_ref()
                .map(|d| format!("universe: {}", d.describe())),
        )
        .collect::<Vec<_>>();
        let html = promotion_report("organism promotion", &intro, &verdict);
        write_atomic(path, html.as_bytes())?;
        say(&format!("wrote {}", path.display()));
    }
    super::notify(
        &cfg,
        &registry_path,
        "promote",
        &format!("promotion of {}: {summary_line}", target.display()),
    );
    if args.json {
        let candidates: Vec<serde_json::Value> = verdict
            .candidates
            .iter()
            .zip(&ranked)
            .map(|(j, r)| {
                serde_json::json!({
                    "strategy": ids[j.rank],
                    "member": r.id,
                    "seed": r.seed,
                    "genes": r.gene_text,
                    "program": r.program_text,
                    "train": j.train.figures,
                    "validation": j.validation.figures,
                    "holdout": j.holdout.as_ref().and_then(|h| h.figures),
                    "sharpe_se": Figures::of(j).sharpe_se,
                    "stopped_at": j.stopped_at().map(|o| o.stage.as_str()),
                    "regimes": {
                        "train": j.train.regimes,
                        "validation": j.validation.regimes,
                        "holdout": j.holdout.as_ref().map(|h| &h.regimes),
                    },
                    "regime_policy": j.regime_policy,
                    "admitted": j.admitted,
                    "stages": j.stages,
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::json!({
                "promotion": promotion,
                "registry": registry_path.display().to_string(),
                "checkpoint": file.display().to_string(),
                "generation": generation,
                "run": run_name,
                "data_fingerprint": format!("{:016x}", ck.fingerprint),
                "universe": universe_def,
                "trials": verdict.trials,
                "noise_max_sharpe": verdict.noise,
                "pbo": verdict.pbo,
                "holdout_read": verdict.holdout_read,
                "thresholds": cfg.promotion,
                "candidates": candidates,
                "promoted": verdict.candidates.iter().filter(|j| j.admitted).map(|j| &ids[j.rank]).collect::<Vec<_>>(),
                "notes": notes,
                "summary": summary_line,
            })
        );
        return Ok(());
    }
    if let Some(d) = &universe_def {
        print_portfolio_table(&verdict, &ids);
        outln!("universe: {}", d.describe());
    } else {
        print_table(&verdict, &ids);
    }
    print_run_figures(&verdict);
    outln!();
    for n in &notes {
        outln!("note: {n}");
    }
    outln!("{summary_line}");
    if admitted > 0 {
        outln!(
            "registry: {} (organism strategies list --status promoted)",
            registry_path.display()
        );
    }
    Ok(())
}

/// One line saying what came of the promotion, plainly.
/// The promotion in one line. `kept` holds the earlier status of each strategy that passed but
/// was in the registry already at promoted or beyond (or retired).
fn summary_line(v: &Verdict, admitted: usize, kept: &[Status]) -> String {
    if admitted > 0 {
        let ids: Vec<&str> = v
            .candidates
            .iter()
            .filter(|j| j.admitted)
            .map(|j| j.id.as_str())
            .collect();
        if kept.is_empty() {
            return format!(
                "promoted {admitted} of {} candidates: {}",
                v.candidates.len(),
                ids.join(", ")
            );
        }
        let retired = kept.iter().filter(|s| **s == Status::Retired).count();
        let further = kept.len() - retired;
        return format!(
            "passed {admitted} of {} candidates ({}): {} newly promoted, {further} already \
             promoted, paper or live, {retired} retired (stay retired)",
            v.candidates.len(),
            ids.join(", "),
            admitted - kept.len()
        );
    }
    if v.candidates.is_empty() {
        return "nothing promoted: the front is empty".into();
    }
    let mut counts: std::collections::BTreeMap<usize, (&str, usize)> = Default::default();
    for o in v.candidates.iter().filter_map(|j| j.stopped_at()) {
        counts
            .entry(o.stage as usize)
            .or_insert((o.stage.as_str(), 0))
            .1 += 1;
    }
    let parts: Vec<String> = counts
        .values()
        .map(|(s, n)| format!("{n} at {s}"))
        .collect();
    format!(
        "nothing promoted: none of the {} candidates passed the gauntlet (stopped: {})",
        v.candidates.len(),
        parts.join(", ")
    )
}

/// Where a candidate stopped and why, or `PROMOTED`.
fn verdict_text(j: &gauntlet::Judged) -> String {
    match j.stopped_at() {
        Some(o) => format!("{}: {}", o.stage.as_str(), o.reason),
        None => "PROMOTED".into(),
    }
}

fn print_table(v: &Verdict, ids: &[String]) {
    let f = |x: Option<f64>| match x {
        Some(x) if x.is_finite() => format!("{x:>6.2}"),
        _ => format!("{:>6}", "-"),
    };
    outln!(
        "{:>3}  {:<34} {:>6} {:>6} {:>6}  verdict",
        "#",
        "strategy",
        "train",
        "valid",
        "hold"
    );
    for j in &v.candidates {
        let verdict = verdict_text(j);
        outln!(
            "{:>3}  {:<34} {} {} {}  {}",
            j.rank + 1,
            ids[j.rank],
            f(j.train.figures.map(|x| x.sharpe)),
            f(j.validation.figures.map(|x| x.sharpe)),
            f(j.holdout.as_ref().and_then(|h| h.figures).map(|x| x.sharpe)),
            verdict
        );
    }
}

/// Portfolio candidates: Sharpe ± standard error per segment, and out of sample (validation)
/// the rank IC ± its t, the coins held, the turnover and the capacity at 1 M USD.
fn print_portfolio_table(v: &Verdict, ids: &[String]) {
    let pm = |run: Option<&gauntlet::SegmentRun>| match run
        .and_then(|r| r.figures.map(|f| (f, r.sharpe_se)))
    {
        Some((f, Some(se))) if f.sharpe.is_finite() => format!("{:>5.2}±{:<4.2}", f.sharpe, se),
        Some((f, None)) if f.sharpe.is_finite() => format!("{:>5.2}     ", f.sharpe),
        _ => format!("{:>10}", "-"),
    };
    outln!(
        "{:>3}  {:<32} {:>10} {:>10} {:>10} {:>14} {:>5} {:>6} {:>7}  verdict",
        "#",
        "strategy",
        "train",
        "valid",
        "hold",
        "valid IC (t)",
        "held",
        "turn",
        "cap %"
    );
    for j in &v.candidates {
        let verdict = verdict_text(j);
        let d = j.validation.figures.and_then(|f| f.portfolio);
        let ic = d.map_or(format!("{:>14}", "-"), |d| {
            if d.rank_ic.mean.is_finite() {
                format!("{:>7.4} ({:>4.1})", d.rank_ic.mean, d.rank_ic.t)
            } else {
                format!("{:>14}", "-")
            }
        });
        outln!(
            "{:>3}  {:<32} {} {} {} {} {:>5.1} {:>6.1} {:>7.3}  {}",
            j.rank + 1,
            ids[j.rank],
            pm(Some(&j.train)),
            pm(Some(&j.validation)),
            pm(j.holdout.as_ref()),
            ic,
            d.map_or(f64::NAN, |d| d.avg_held),
            j.validation.figures.map_or(f64::NAN, |f| f.turnover),
            d.map_or(f64::NAN, |d| 100.0 * d.capacity_max),
            verdict
        );
    }
    outln!(
        "(held: coins on average; turn: notional traded a year / equity; cap %: the largest share \
         of a coin's bar volume one rebalance fill takes at 1 M USD; IC, held, turn and cap on \
         validation)"
    );
}

/// What the promotion found about the run as a whole: the front's PBO, the trials and the
/// Sharpe noise reaches.
fn print_run_figures(v: &Verdict) {
    if let Some(p) = &v.pbo {
        outln!(
            "PBO of the front: {:.2} ({} splits of {} strategies; probability of out-of-sample loss {:.2})",
            p.pbo,
            p.combinations,
            p.strategies,
            p.prob_oos_loss
        );
    }
    let t = &v.trials;
    outln!(
        "trials: {}{}",
        t.count,
        t.sharpe_var.map_or(String::new(), |v| format!(
            ", training Sharpe variance {v:.3}"
        ))
    );
    if let Some(e) = &t.effective {
        outln!(
            "effective trials: {} clusters of the training returns of {} trials{}{}",
            e.clusters,
            e.clustered,
            e.sharpe_var.map_or(String::new(), |v| format!(
                ", the clusters' Sharpe variance {v:.3}"
            )),
            if t.clustered {
                "; the deflated Sharpe counts these (promotion.trials = \"clustered\")"
            } else {
                "; the deflated Sharpe counts every trial (promotion.trials = \"raw\")"
            }
        );
    }
    if let Some(noise) = &v.noise {
        outln!(
            "expected best Sharpe of noise: {:.2} over every trial, {} over the clusters",
            noise.raw,
            noise
                .clustered
                .map_or("-".to_string(), |x| format!("{x:.2}"))
        );
    }
}
