//! The improvement cycle (`organism cycle`): once a period — a UTC day, or a week from Monday
//! 00:00 UTC — fetch the new bars, evolve on a rolling window into a dated run folder, promote
//! its survivors; a running paper session takes the newly promoted strategies at its next bar
//! (`paper run` adopts them) and its lifecycle retires the ones that stray.
//!
//! The cycle's memory is the journal (account [`ACCOUNT`], book: the period): one row per step
//! and period, so a second run in the same period does nothing and a run after a failure
//! carries on from the step that failed. A lock on the runs folder keeps a second cycle out
//! (one left by a dead process is taken over).
//!
//! The fetch, evolve and promote steps are the commands a person would type, which the CLI
//! starts as child processes of its own binary ([`Plan::args`]): one code path, and a step that
//! dies takes nothing of the cycle's bookkeeping with it. The paper and retire steps read the
//! registry ([`paper_report`], [`retired_between`]).

use std::{collections::BTreeMap, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::journal::{self, CycleRow, Entry, JournalError, Kind, Row};
use crate::{
    market::{civil, membership::DAY_MS},
    promotion::registry::{Registry, RegistryError, Status},
    settings::{count, Invalid},
};

/// The journal account of the cycle's rows.
pub const ACCOUNT: &str = "cycle";

/// `[cycle]`: the improvement cycle.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CycleConfig {
    pub period: Period,
    /// Minutes after a period starts before its cycle runs (the last bar has closed, the
    /// exchange has it).
    pub delay_minutes: usize,
    /// Days of bars before the period's start that evolution trains and validates on.
    pub window_days: usize,
    /// The data folder the fetch fills and evolution reads (Hyperliquid files).
    pub data: String,
    /// Where the dated run folders go (`RUNS/2026-12-07`), with the steps' logs in `RUNS/logs`.
    pub runs: String,
    /// Fetch new bars first (`paper.coins` at `paper.interval`).
    pub fetch: bool,
}

impl CycleConfig {
    /// Checks every key.
    ///
    /// # Errors
    /// [`Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        count("cycle.delay_minutes", self.delay_minutes, 0, 1440, "")?;
        count("cycle.window_days", self.window_days, 1, 3650, "")?;
        for (key, v) in [("cycle.data", &self.data), ("cycle.runs", &self.runs)] {
            if v.trim().is_empty() {
                return Err(Invalid::new(key, "must not be empty"));
            }
        }
        Ok(())
    }
}

/// How often the cycle runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Daily,
    /// Weeks start on Monday, 00:00 UTC.
    Weekly,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
        }
    }

    /// The start (UTC ms) of the period holding `ms`.
    pub fn start(self, ms: i64) -> i64 {
        let day = ms.div_euclid(DAY_MS);
        match self {
            Period::Daily => day * DAY_MS,
            // 1970-01-01 was a Thursday: Monday is 3 days before it.
            Period::Weekly => (day - (day + 3).rem_euclid(7)) * DAY_MS,
        }
    }

    /// The start of the period after the one starting at `start`.
    pub fn next(self, start: i64) -> i64 {
        start
            + match self {
                Period::Daily => DAY_MS,
                Period::Weekly => 7 * DAY_MS,
            }
    }
}

/// A period's name: the UTC date it starts on, `YYYY-MM-DD`.
pub fn label(start: i64) -> String {
    let (y, m, d, _, _) = civil(start);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A step of the cycle, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Fetch,
    Evolve,
    Promote,
    Paper,
    Retire,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::Fetch,
        Step::Evolve,
        Step::Promote,
        Step::Paper,
        Step::Retire,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Fetch => "fetch",
            Step::Evolve => "evolve",
            Step::Promote => "promote",
            Step::Paper => "paper",
            Step::Retire => "retire",
        }
    }
}

/// The row written once every step of a period is done.
pub const DONE: &str = "done";

/// One period's cycle: its folders and the commands of its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub start: i64,
    pub label: String,
    /// The run folder evolution writes.
    pub run_dir: PathBuf,
    pub logs: PathBuf,
    pub data: PathBuf,
    /// `paper.coins` and `paper.interval`.
    pub coins: Vec<String>,
    pub interval: String,
    pub window_days: usize,
}

impl Plan {
    /// The cycle of the period holding `now_ms`.
    pub fn of(cfg: &CycleConfig, coins: &[String], interval: &str, now_ms: i64) -> Self {
        let start = cfg.period.start(now_ms);
        let label = label(start);
        let runs = PathBuf::from(&cfg.runs);
        Plan {
            start,
            run_dir: runs.join(&label),
            logs: runs.join("logs"),
            label,
            data: PathBuf::from(&cfg.data),
            coins: coins.to_vec(),
            interval: interval.to_string(),
            window_days: cfg.window_days,
        }
    }

    /// The window evolution runs on: the `window_days` days before the period starts, as
    /// `--timerange` reads it (Unix seconds).
    pub fn timerange(&self) -> String {
        let to = self.start / 1000;
        let from = to - self.window_days as i64 * 86_400;
        format!("{from}-{to}")
    }

    /// The log file of `step`.
    pub fn log(&self, step: Step) -> PathBuf {
        self.logs
            .join(format!("{}-{}.log", self.label, step.as_str()))
    }

    /// The arguments of `organism` for `step` (the fetch, evolve and promote steps): `config`
    /// is forwarded to each; the fetch goes to `api_url` (when given) up to `now_ms`; evolution
    /// continues the run folder when an earlier attempt left checkpoints in it.
    pub fn args(
        &self,
        step: Step,
        config: Option<&str>,
        api_url: Option<&str>,
        now_ms: i64,
    ) -> Option<Vec<String>> {
        let s = |x: &str| x.to_string();
        let path = |p: &std::path::Path| p.display().to_string();
        let mut a: Vec<String> = match step {
            Step::Fetch => {
                let mut a = vec![
                    s("data"),
                    s("fetch"),
                    s("--coins"),
                    self.coins.join(","),
                    s("--interval"),
                    self.interval.clone(),
                    s("--out"),
                    path(&self.data),
                    s("--days"),
                    (self.window_days + 1).to_string(),
                    s("--now-ms"),
                    now_ms.to_string(),
                ];
                if let Some(u) = api_url {
                    a.extend([s("--api-url"), s(u)]);
                }
                a
            }
            Step::Evolve if !crate::evolution::folder::generations(&self.run_dir).is_empty() => {
                vec![s("evolve"), s("resume"), path(&self.run_dir)]
            }
            Step::Evolve => vec![
                s("evolve"),
                s("--data"),
                path(&self.data),
                s("--source"),
                s("hyperliquid"),
                s("--interval"),
                self.interval.clone(),
                s("--timerange"),
                self.timerange(),
                s("--out"),
                path(&self.run_dir),
            ],
            Step::Promote => vec![s("promote"), s("--from"), path(&self.run_dir)],
            Step::Paper | Step::Retire => return None,
        };
        if let Some(c) = config {
            a.extend([s("--config"), s(c)]);
        }
        Some(a)
    }
}

/// The last outcome of each step of the period `label` (and of [`DONE`]).
///
/// # Errors
/// [`JournalError`] when the journal cannot be read.
pub fn outcomes(
    conn: &rusqlite::Connection,
    label: &str,
) -> Result<BTreeMap<String, CycleRow>, JournalError> {
    let mut out = BTreeMap::new();
    for e in journal::with_field(conn, ACCOUNT, Kind::Cycle, "period", label)? {
        if let Row::Cycle(c) = e.row {
            out.insert(c.step.clone(), c);
        }
    }
    Ok(out)
}

/// Journals the outcome of `step` (a [`Step`]'s name or [`DONE`]) of `plan`'s period.
///
/// # Errors
/// [`JournalError`] when the journal refuses the write.
pub fn record(
    conn: &mut rusqlite::Connection,
    plan: &Plan,
    step: &str,
    ok: bool,
    detail: &str,
    written_ms: i64,
) -> Result<(), JournalError> {
    let row = CycleRow {
        period: plan.label.clone(),
        step: step.to_string(),
        outcome: if ok { "ok" } else { "failed" }.to_string(),
        detail: detail.to_string(),
    };
    journal::append(
        conn,
        ACCOUNT,
        &[Entry::new(plan.label.clone(), plan.start, row)],
        written_ms,
    )
}

/// The paper step: the promoted strategies waiting for a paper session's next bar, and those
/// on paper.
///
/// # Errors
/// [`RegistryError`] when the registry cannot be read.
pub fn paper_report(reg: &Registry) -> Result<String, RegistryError> {
    let waiting = reg.list(Some(Status::Promoted))?;
    let on_paper = reg.list(Some(Status::Paper))?.len();
    let ids: Vec<&str> = waiting.iter().map(|s| s.id.as_str()).collect();
    Ok(if ids.is_empty() {
        format!("nothing new for paper; {on_paper} on paper")
    } else {
        format!(
            "{} promoted, joining a running paper session at its next bar ({}); {on_paper} on \
             paper",
            ids.len(),
            ids.join(", ")
        )
    })
}

/// The strategies retired in `[from_ms, to_ms)`, with the reason.
///
/// # Errors
/// [`RegistryError`] when the registry cannot be read.
pub fn retired_between(
    reg: &Registry,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(String, String)>, RegistryError> {
    let mut out = Vec::new();
    for s in reg.list(Some(Status::Retired))? {
        if let Some(c) = reg
            .history(&s.id)?
            .into_iter()
            .rev()
            .find(|c| c.to == Status::Retired)
            .filter(|c| (from_ms..to_ms).contains(&c.at_ms))
        {
            out.push((s.id.clone(), c.reason));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_midnight_and_on_mondays() {
        // 2026-12-07 is a Monday; 15:30 that day.
        let monday = 1_796_601_600_000;
        assert_eq!(label(monday), "2026-12-07");
        let t = monday + 15 * 3_600_000 + 1_800_000;
        assert_eq!(Period::Daily.start(t), monday);
        assert_eq!(Period::Weekly.start(t), monday);
        // Sunday 2026-12-13 23:59 is still that week; Monday 00:00 starts the next.
        let sunday_night = monday + 7 * DAY_MS - 60_000;
        assert_eq!(Period::Weekly.start(sunday_night), monday);
        assert_eq!(Period::Daily.start(sunday_night), monday + 6 * DAY_MS);
        assert_eq!(
            Period::Weekly.start(monday + 7 * DAY_MS),
            monday + 7 * DAY_MS
        );
        assert_eq!(Period::Weekly.next(monday), monday + 7 * DAY_MS);
        assert_eq!(label(Period::Daily.next(monday)), "2026-12-08");
        // Before 1970: Monday 1969-12-29.
        assert_eq!(label(Period::Weekly.start(0)), "1969-12-29");
    }

    #[test]
    fn the_plan_names_the_window_and_the_commands() {
        let cfg = CycleConfig {
            period: Period::Daily,
            delay_minutes: 5,
            window_days: 30,
            data: "cyc/data".into(),
            runs: "cyc/runs".into(),
            fetch: true,
        };
        let monday = 1_796_601_600_000;
        let p = Plan::of(
            &cfg,
            &["BTC".into(), "ETH".into()],
            "1h",
            monday + 3_600_000,
        );
        assert_eq!(p.run_dir, PathBuf::from("cyc/runs/2026-12-07"));
        // 30 days before the period's start, in seconds.
        assert_eq!(p.timerange(), "1794009600-1796601600");
        assert_eq!(
            p.log(Step::Promote),
            PathBuf::from("cyc/runs/logs/2026-12-07-promote.log")
        );
        let fetch = p
            .args(Step::Fetch, Some("c.toml"), Some("http://127.0.0.1:1"), 5)
            .unwrap()
            .join(" ");
        assert_eq!(
            fetch,
            "data fetch --coins BTC,ETH --interval 1h --out cyc/data --days 31 --now-ms 5 \
             --api-url http://127.0.0.1:1 --config c.toml"
        );
        let evolve = p.args(Step::Evolve, None, None, 5).unwrap().join(" ");
        assert_eq!(
            evolve,
            "evolve --data cyc/data --source hyperliquid --interval 1h --timerange \
             1794009600-1796601600 --out cyc/runs/2026-12-07"
        );
        assert_eq!(
            p.args(Step::Promote, None, None, 5).unwrap().join(" "),
            "promote --from cyc/runs/2026-12-07"
        );
        assert!(p.args(Step::Paper, None, None, 5).is_none());
    }
}
