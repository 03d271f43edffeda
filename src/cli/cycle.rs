//! `organism cycle`: the improvement cycle on a schedule (see `organism::runner::cycle`). The
//! fetch, evolve and promote steps run as child processes of this binary, each writing its
//! output to a log file; the cycle journals each step's outcome.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{bail, Context, Result};
use organism::{
    clock::{Clock, WallClock},
    config::Config,
    evolution::folder::{FolderError, RunLock},
    promotion::registry::Registry,
    runner::cycle::{self, Plan, Step, DONE},
    serve::alerts::{self, Target},
};

use super::{format_ts, load_config};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Config file laid over the built-in defaults ([cycle], and everything the steps read);
    /// passed on to each step.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run the current period's cycle (unless it is done) and exit, non-zero when a step
    /// failed: for cron or a systemd timer. Without it, the cycle runs each period in turn.
    #[arg(long)]
    pub once: bool,
    /// The time to act as now (UTC ms; default: the clock): for tests and for catching up.
    #[arg(long, value_name = "MS")]
    pub now_ms: Option<i64>,
    /// Hyperliquid API base URL of the fetch (default: HYPERLIQUID_API_URL, then
    /// exchange.api_url).
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
}

pub fn run(a: Args) -> Result<()> {
    let cfg = load_config(a.config.as_deref())?;
    let runs = PathBuf::from(&cfg.cycle.runs);
    let _lock = RunLock::acquire(&runs).map_err(|e| match e {
        FolderError::Locked { dir, pid } => anyhow::anyhow!(
            "{}: another `organism cycle` (pid {pid}) is running; it does this period's steps",
            dir.display()
        ),
        other => other.into(),
    })?;
    let now = || a.now_ms.unwrap_or_else(|| WallClock.now_ms());
    let targets = cfg.alerts.targets().map_err(anyhow::Error::msg)?;
    // Each period's steps, then their alerts.
    let cycle_at = |t: i64| {
        let ok = period(&cfg, &a, &targets, t);
        super::send_alerts(&cfg, Path::new(&cfg.promotion.registry), &targets);
        ok
    };
    if a.once {
        if !cycle_at(now())? {
            bail!("a step of the cycle failed (see above); the next run of this period carries on from it");
        }
        return Ok(());
    }
    loop {
        let t = now();
        let ok = cycle_at(t).unwrap_or_else(|e| {
            eprintln!("cycle: {e:#}");
            false
        });
        // The next period's cycle; after a failure this period's again a quarter of an hour
        // later, carrying on from the step that failed.
        let next = cfg.cycle.period.next(cfg.cycle.period.start(t))
            + cfg.cycle.delay_minutes as i64 * 60_000;
        let next = if ok { next } else { next.min(t + 15 * 60_000) };
        outln!("next cycle at {} UTC", format_ts(next));
        if a.now_ms.is_some() {
            // A fixed clock never reaches the next period.
            return Ok(());
        }
        while WallClock.now_ms() < next {
            std::thread::sleep(Duration::from_millis(
                (next - WallClock.now_ms()).clamp(1, 60_000) as u64,
            ));
        }
    }
}

/// Runs the steps of the period holding `now_ms` that are not done yet; whether all are.
fn period(cfg: &Config, a: &Args, targets: &[Target], now_ms: i64) -> Result<bool> {
    let plan = Plan::of(
        &cfg.cycle,
        &cfg.paper.coins,
        cfg.paper.interval.as_str(),
        now_ms,
    );
    let registry = PathBuf::from(&cfg.promotion.registry);
    if let Some(dir) = registry.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    let mut reg = Registry::open(&registry)?;
    alerts::register(reg.connection(), targets)?;
    let done = cycle::outcomes(reg.connection(), &plan.label)?;
    if done.get(DONE).is_some_and(|r| r.outcome == "ok") {
        outln!(
            "cycle {}: already done (journal account `{}` in {}); nothing to do",
            plan.label,
            cycle::ACCOUNT,
            registry.display()
        );
        return Ok(true);
    }
    fs::create_dir_all(&plan.logs).with_context(|| format!("{}", plan.logs.display()))?;
    outln!(
        "cycle {} ({}): window {} days, run folder {}",
        plan.label,
        cfg.cycle.period.as_str(),
        plan.window_days,
        plan.run_dir.display()
    );
    let config = a.config.as_ref().map(|c| c.display().to_string());
    // The last whole period, whose retirements this one reports (each once).
    let previous_start = plan.start - (cfg.cycle.period.next(plan.start) - plan.start);
    for step in Step::ALL {
        if done.get(step.as_str()).is_some_and(|r| r.outcome == "ok") {
            outln!("  {:<8} done earlier", step.as_str());
            continue;
        }
        let (ok, detail) = match step {
            Step::Fetch if !cfg.cycle.fetch => (true, "skipped (cycle.fetch = false)".into()),
            Step::Paper => (true, cycle::paper_report(&reg)?),
            Step::Retire => {
                let r = cycle::retired_between(&reg, previous_start, plan.start)?;
                let text: Vec<String> = r.iter().map(|(id, why)| format!("{id} ({why})")).collect();
                (
                    true,
                    if text.is_empty() {
                        "none retired in the last period".into()
                    } else {
                        format!("retired in the last period: {}", text.join("; "))
                    },
                )
            }
            _ => {
                let args = plan
                    .args(step, config.as_deref(), a.api_url.as_deref(), now_ms)
                    .unwrap_or_default();
                child(&args, &plan.log(step))?
            }
        };
        cycle::record(
            reg.connection(),
            &plan,
            step.as_str(),
            ok,
            &detail,
            WallClock.now_ms(),
        )?;
        outln!(
            "  {:<8} {} {detail}",
            step.as_str(),
            if ok { "ok    " } else { "FAILED" }
        );
        if !ok {
            return Ok(false);
        }
    }
    cycle::record(reg.connection(), &plan, DONE, true, "", WallClock.now_ms())?;
    Ok(true)
}

/// Runs `organism args` with its output in `log`; whether it succeeded and its last line (on
/// failure the last lines, where the error is).
fn child(args: &[String], log: &Path) -> Result<(bool, String)> {
    let exe = std::env::current_exe().context("the path of this program")?;
    let out = fs::File::create(log).with_context(|| format!("{}", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("{}", log.display()))?;
    let status = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .with_context(|| format!("starting organism {}", args.join(" ")))?;
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let keep = if status.success() { 1 } else { 3 };
    let tail = lines[lines.len().saturating_sub(keep)..].join(" | ");
    let detail = if status.success() {
        tail
    } else {
        format!("{status}: {tail} (log {})", log.display())
    };
    Ok((status.success(), detail))
}
