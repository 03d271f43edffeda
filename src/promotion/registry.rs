//! The strategy registry: an embedded SQLite database (bundled SQLite, WAL journal,
//! `synchronous=FULL`) of every strategy a promotion judged, the promotions themselves and each
//! read of a run's sealed holdout.
//!
//! A strategy's status moves `candidate → promoted → paper → live`, and any of them to `retired`
//! (final); every change is a row of `status_changes` with its time and reason. The database is
//! [`crate::store`]'s: opened, configured and migrated there.
//!
//! Times are UTC milliseconds, given by the caller (the library reads no clock).

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::{
    evolution::{portfolio::UniverseDefinition, problem},
    fitness::regime::RegimeFigure,
    promotion::gauntlet::{Judged, Outcome},
    strategy::regime::Policy,
};

/// Why the registry could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The database could not be opened (not one, newer, I/O).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{file}: {source}")]
    Sql {
        file: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no strategy `{0}` in the registry (`organism strategies list` shows them)")]
    Unknown(String),
    #[error("`{id}` matches {count} strategies; give more of the id")]
    Ambiguous { id: String, count: usize },
    #[error("strategy {id} is {from}; it cannot become {to}")]
    Transition {
        id: String,
        from: Status,
        to: Status,
    },
    #[error("{file}: strategy {id}: {message}")]
    Corrupt {
        file: PathBuf,
        id: String,
        message: String,
    },
}

/// Where a strategy is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Candidate,
    Promoted,
    Paper,
    Live,
    Retired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Candidate => "candidate",
            Self::Promoted => "promoted",
            Self::Paper => "paper",
            Self::Live => "live",
            Self::Retired => "retired",
        }
    }

    /// Whether a strategy may move from `self` to `to`: one step forward, or to `retired` from
    /// anything but `retired`.
    pub fn may_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Candidate, Promoted) | (Promoted, Paper) | (Paper, Live)
        ) || (to == Retired && self != Retired)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "candidate" => Self::Candidate,
            "promoted" => Self::Promoted,
            "paper" => Self::Paper,
            "live" => Self::Live,
            "retired" => Self::Retired,
            other => {
                return Err(format!(
                    "`{other}` is not a status: candidate, promoted, paper, live or retired"
                ))
            }
        })
    }
}

/// One promotion: which run and checkpoint it read, and what it found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromotionRecord {
    pub at_ms: i64,
    /// The run folder.
    pub run: String,
    pub checkpoint: String,
    pub generation: u32,
    /// The data fingerprint (hex).
    pub data_fingerprint: String,
    /// Distinct genomes and programs the run evaluated.
    pub trials: usize,
    /// Variance (ddof 1) of their annualized training Sharpe ratios.
    pub trial_sharpe_var: Option<f64>,
    pub pbo: Option<f64>,
}

/// A strategy as the registry holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Strategy {
    /// `{seed-or-program}_{generation}_{hash8}`.
    pub id: String,
    /// The seed's name, or `program`.
    pub name: String,
    /// The generation of the checkpoint it was judged from.
    pub generation: u32,
    /// The member hash (8 hex digits) of `runs show`.
    pub hash: String,
    /// The genome as TOML (what `runs export` writes; `backtest --genome` reads it).
    pub genome: String,
    /// A program's text on one line.
    pub program: Option<String>,
    /// Fingerprint (hex) of the gene spec the genome follows.
    pub spec_fingerprint: String,
    pub run: String,
    pub checkpoint: String,
    pub data_fingerprint: String,
    /// The promotion that last judged it.
    pub promotion_id: i64,
    /// `passed`, or `failed: <stage>`.
    pub verdict: String,
    /// The stage where it stopped (`None` when it passed every one).
    pub stopped_at: Option<String>,
    /// What the gauntlet measured.
    #[serde(serialize_with = "crate::store::sorted")]
    pub figures: Figures,
    /// Share of capital among the strategies one promotion admits (`[portfolio]`,
    /// [`crate::execution::risk::allocate`]); 0 for those not admitted.
    pub weight: f64,
    pub status: Status,
    /// Why it has its status.
    pub reason: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// A portfolio strategy's universe: where it trades and the data it was validated on;
    /// `None` for single-coin ones.
    #[serde(serialize_with = "crate::store::sorted")]
    pub universe: Option<UniverseDefinition>,
}

/// What the gauntlet measured of a strategy: the `figures` column, as JSON with its keys in
/// sorted order ([`crate::store::sorted_json`]). Fields later releases added are optional, so
/// a registry written before them reads (and prints) as it was written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Figures {
    /// Each segment's figures, `None` where not measured (the holdout of one stopped before it).
    pub holdout: Option<problem::Figures>,
    /// The regime policy its validation figures suggest (`paper.regime_policy = "suggested"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regime_policy: Option<Policy>,
    /// The Sharpe of each regime's bars, per segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regimes: Option<RegimeFigures>,
    /// The standard error of each segment's Sharpe where it is one return series's (portfolio
    /// strategies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpe_se: Option<SharpeErrors>,
    /// Each stage's outcome, up to the one that stopped it.
    pub stages: Vec<Outcome>,
    pub train: Option<problem::Figures>,
    pub validation: Option<problem::Figures>,
}

/// The Sharpe of each regime's bars on each segment (`holdout`: `None` where it was not read).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RegimeFigures {
    pub holdout: Option<Vec<RegimeFigure>>,
    pub train: Vec<RegimeFigure>,
    pub validation: Vec<RegimeFigure>,
}

/// The standard error of each segment's Sharpe (`None` where it is not one series's).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SharpeErrors {
    pub holdout: Option<f64>,
    pub train: Option<f64>,
    pub validation: Option<f64>,
}

impl Figures {
    /// What the gauntlet measured of `j`.
    pub fn of(j: &Judged) -> Self {
        Self {
            holdout: j.holdout.as_ref().and_then(|h| h.figures),
            regime_policy: Some(j.regime_policy),
            regimes: Some(RegimeFigures {
                holdout: j.holdout.as_ref().map(|h| h.regimes.clone()),
                train: j.train.regimes.clone(),
                validation: j.validation.regimes.clone(),
            }),
            sharpe_se: Some(SharpeErrors {
                holdout: j.holdout.as_ref().and_then(|h| h.sharpe_se),
                train: j.train.sharpe_se,
                validation: j.validation.sharpe_se,
            }),
            stages: j.stages.clone(),
            train: j.train.figures,
            validation: j.validation.figures,
        }
    }

    /// The figures of `segment` (`train`, `validation`, `holdout`).
    pub fn segment(&self, segment: Segment) -> Option<&problem::Figures> {
        match segment {
            Segment::Train => self.train.as_ref(),
            Segment::Validation => self.validation.as_ref(),
            Segment::Holdout => self.holdout.as_ref(),
        }
    }

    /// The standard error of `segment`'s Sharpe, where known.
    pub fn sharpe_se(&self, segment: Segment) -> Option<f64> {
        let e = self.sharpe_se?;
        match segment {
            Segment::Train => e.train,
            Segment::Validation => e.validation,
            Segment::Holdout => e.holdout,
        }
    }
}

/// A segment of a run's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Train,
    Validation,
    Holdout,
}

/// One status change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusChange {
    pub from: Option<Status>,
    pub to: Status,
    pub at_ms: i64,
    pub reason: String,
}

/// What [`Registry::record`] did with a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// New row, with this status.
    New(Status),
    /// Known before; its status is now this (changed or not).
    Updated { before: Status, now: Status },
}

/// An open registry.
pub struct Registry {
    conn: Connection,
    file: PathBuf,
}

const STRATEGY_COLUMNS: &str = "id, name, generation, hash, genome, program, spec_fingerprint, \
    run, checkpoint, data_fingerprint, promotion_id, verdict, stopped_at, figures, weight, status, \
    reason, created_ms, updated_ms, universe";

impl Registry {
    /// Opens (creating it and its folder if needed) the registry at `file`, in WAL mode with
    /// full syncs, and brings its schema up to date.
    ///
    /// # Errors
    /// [`RegistryError`] naming the file: not a database, written by a newer build, or I/O.
    pub fn open(file: &Path) -> Result<Self, RegistryError> {
        Ok(Self {
            conn: crate::store::open(file)?,
            file: file.to_path_buf(),
        })
    }

    /// Opens the registry at `file` read-only: nothing is written to it (see
    /// [`crate::store::open_read_only`]).
    ///
    /// # Errors
    /// [`RegistryError`] naming the file.
    pub fn open_read_only(file: &Path) -> Result<Self, RegistryError> {
        Ok(Self {
            conn: crate::store::open_read_only(file)?,
            file: file.to_path_buf(),
        })
    }

    fn sql(&self, source: rusqlite::Error) -> RegistryError {
        RegistryError::Sql {
            file: self.file.clone(),
            source,
        }
    }

    /// The connection, for the journal (same database, same settings).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The connection alone (for a journal kept apart from the registry's other uses).
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    /// The file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The schema version of the database.
    pub fn version(&self) -> Result<usize, RegistryError> {
        crate::store::version(&self.conn).map_err(|e| self.sql(e))
    }

    /// Runs `f` in one transaction: all of it is written, or none.
    fn in_transaction(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), RegistryError> {
        let file = &self.file;
        let sql = |source| RegistryError::Sql {
            file: file.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        f(&tx).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Records the start of a promotion; returns its id.
    ///
    /// # Errors
    /// [`RegistryError::Sql`].
    pub fn begin_promotion(&mut self, p: &PromotionRecord) -> Result<i64, RegistryError> {
        self.conn
            .execute(
                "INSERT INTO promotions (at_ms, run, checkpoint, generation, data_fingerprint, \
                 trials, trial_sharpe_var, pbo) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    p.at_ms,
                    p.run,
                    p.checkpoint,
                    p.generation,
                    p.data_fingerprint,
                    p.trials as i64,
                    p.trial_sharpe_var,
                    p.pbo
                ],
            )
            .map_err(|e| self.sql(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the outcome of promotion `id` (and the run's PBO, known only at the end).
    ///
    /// # Errors
    /// [`RegistryError::Sql`].
    pub fn finish_promotion(
        &mut self,
        id: i64,
        candidates: usize,
        promoted: usize,
        pbo: Option<f64>,
        summary: &str,
    ) -> Result<(), RegistryError> {
        self.conn
            .execute(
                "UPDATE promotions SET candidates = ?2, promoted = ?3, pbo = ?4, summary = ?5 \
                 WHERE id = ?1",
                params![id, candidates as i64, promoted as i64, pbo, summary],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// Records that promotion `promotion` is about to read run `run`'s holdout for `strategy`
    /// (written and synced before the read).
    ///
    /// # Errors
    /// [`RegistryError::Sql`].
    pub fn record_holdout_read(
        &mut self,
        promotion: i64,
        strategy: &str,
        run: &str,
        at_ms: i64,
    ) -> Result<(), RegistryError> {
        self.conn
            .execute(
                "INSERT INTO holdout_reads (promotion_id, strategy_id, run, at_ms) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![promotion, strategy, run, at_ms],
            )
            .map_err(|e| self.sql(e))?;
        Ok(())
    }

    /// How many times run `run`'s holdout has been read for `strategy`.
    ///
    /// # Errors
    /// [`RegistryError::Sql`].
    pub fn holdout_reads(&self, strategy: &str, run: &str) -> Result<usize, RegistryError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM holdout_reads WHERE strategy_id = ?1 AND run = ?2",
                params![strategy, run],
                |row| row.get(0),
            )
            .map_err(|e| self.sql(e))?;
        Ok(n as usize)
    }

    /// How many earlier promotions read run `run`'s holdout (for any strategy).
    ///
    /// # Errors
    /// [`RegistryError::Sql`].
    pub fn promotions_reading_holdout(&self, run: &str) -> Result<usize, RegistryError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(DISTINCT promotion_id) FROM holdout_reads WHERE run = ?1",
                params![run],
                |row| row.get(0),
            )
            .map_err(|e| self.sql(e))?;
        Ok(n as usize)
    }

    /// Stores a judged strategy (figures, verdict, weight) and, with `admit`, promotes it.
    ///
    /// A new strategy becomes `candidate`, or `promoted` when admitted. A known one keeps its
    /// row's creation time and status, except that an admitted `candidate` becomes
    /// `promoted`; a `retired` strategy is never promoted again.
    ///
    /// # Errors
    /// [`RegistryError::Sql`].
    pub fn record(
        &mut self,
        s: &Strategy,
        admit: bool,
        at_ms: i64,
    ) -> Result<Recorded, RegistryError> {
        let before = self.find_exact(&s.id)?.map(|old| old.status);
        let now = match before {
            None if admit => Status::Promoted,
            None => Status::Candidate,
            Some(Status::Candidate) if admit => Status::Promoted,
            Some(b) => b,
        };
        let reason = if now == Status::Promoted && before != Some(Status::Promoted) {
            format!("passed the gauntlet (promotion {})", s.promotion_id)
        } else {
            s.reason.clone()
        };
        let json = |e: serde_json::Error| RegistryError::Corrupt {
            file: self.file.clone(),
            id: s.id.clone(),
            message: format!("cannot be written as JSON ({e})"),
        };
        let figures = crate::store::sorted_json(&s.figures).map_err(json)?;
        let universe = s
            .universe
            .as_ref()
            .map(crate::store::sorted_json)
            .transpose()
            .map_err(json)?;
        self.in_transaction(|tx| {
            match before {
                None => {
                    tx.execute(
                        &format!(
                            "INSERT INTO strategies ({STRATEGY_COLUMNS}) VALUES \
                             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                             ?16, ?17, ?18, ?18, ?19)"
                        ),
                        params![
                            s.id,
                            s.name,
                            s.generation,
                            s.hash,
                            s.genome,
                            s.program,
                            s.spec_fingerprint,
                            s.run,
                            s.checkpoint,
                            s.data_fingerprint,
                            s.promotion_id,
                            s.verdict,
                            s.stopped_at,
                            figures,
                            s.weight,
                            now.as_str(),
                            reason,
                            at_ms,
                            universe
                        ],
                    )?;
                    log_change(tx, &s.id, None, now, at_ms, &reason)?;
                }
                Some(b) => {
                    let weight = if now == Status::Promoted && admit {
                        s.weight
                    } else {
                        0.0
                    };
                    tx.execute(
                        "UPDATE strategies SET checkpoint = ?2, generation = ?3, \
                         data_fingerprint = ?4, promotion_id = ?5, verdict = ?6, stopped_at = ?7, \
                         figures = ?8, weight = CASE WHEN ?9 THEN ?10 ELSE weight END, \
                         status = ?11, reason = CASE WHEN ?12 THEN ?13 ELSE reason END, \
                         updated_ms = ?14, universe = ?15 WHERE id = ?1",
                        params![
                            s.id,
                            s.checkpoint,
                            s.generation,
                            s.data_fingerprint,
                            s.promotion_id,
                            s.verdict,
                            s.stopped_at,
                            figures,
                            admit && now == Status::Promoted,
                            weight,
                            now.as_str(),
                            b != now,
                            reason,
                            at_ms,
                            universe
                        ],
                    )?;
                    if b != now {
                        log_change(tx, &s.id, Some(b), now, at_ms, &reason)?;
                    }
                }
            }
            Ok(())
        })?;
        Ok(match before {
            None => Recorded::New(now),
            Some(b) => Recorded::Updated { before: b, now },
        })
    }

    /// Moves strategy `id` (exact) to `to`, recording `reason`.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`], [`RegistryError::Transition`] for a move the lifecycle does
    /// not allow, [`RegistryError::Sql`].
    pub fn set_status(
        &mut self,
        id: &str,
        to: Status,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), RegistryError> {
        let s = self
            .find_exact(id)?
            .ok_or_else(|| RegistryError::Unknown(id.to_string()))?;
        if !s.status.may_become(to) {
            return Err(RegistryError::Transition {
                id: id.to_string(),
                from: s.status,
                to,
            });
        }
        self.in_transaction(|tx| {
            tx.execute(
                "UPDATE strategies SET status = ?2, reason = ?3, updated_ms = ?4 WHERE id = ?1",
                params![id, to.as_str(), reason, at_ms],
            )?;
            log_change(tx, id, Some(s.status), to, at_ms, reason)
        })
    }

    fn row(&self, row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Strategy, RegistryError>> {
        let id: String = row.get(0)?;
        let status: String = row.get(15)?;
        let figures: String = row.get(13)?;
        let corrupt = |message: String| RegistryError::Corrupt {
            file: self.file.clone(),
            id: id.clone(),
            message,
        };
        let status = match status.parse::<Status>() {
            Ok(s) => s,
            Err(m) => return Ok(Err(corrupt(m))),
        };
        let figures = match serde_json::from_str(&figures) {
            Ok(f) => f,
            Err(e) => return Ok(Err(corrupt(format!("figures do not read ({e})")))),
        };
        let universe: Option<String> = row.get(19)?;
        let universe = match universe.as_deref().map(serde_json::from_str) {
            None => None,
            Some(Ok(u)) => Some(u),
            Some(Err(e)) => return Ok(Err(corrupt(format!("universe does not read ({e})")))),
        };
        Ok(Ok(Strategy {
            id: id.clone(),
            name: row.get(1)?,
            generation: row.get(2)?,
            hash: row.get(3)?,
            genome: row.get(4)?,
            program: row.get(5)?,
            spec_fingerprint: row.get(6)?,
            run: row.get(7)?,
            checkpoint: row.get(8)?,
            data_fingerprint: row.get(9)?,
            promotion_id: row.get(10)?,
            verdict: row.get(11)?,
            stopped_at: row.get(12)?,
            figures,
            weight: row.get(14)?,
            status,
            reason: row.get(16)?,
            created_ms: row.get(17)?,
            updated_ms: row.get(18)?,
            universe,
        }))
    }

    fn query(&self, sql: &str, arg: Option<&str>) -> Result<Vec<Strategy>, RegistryError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(arg.iter()), |r| self.row(r))
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(|e| self.sql(e))??);
        }
        Ok(out)
    }

    fn find_exact(&self, id: &str) -> Result<Option<Strategy>, RegistryError> {
        let mut v = self.query(
            &format!("SELECT {STRATEGY_COLUMNS} FROM strategies WHERE id = ?1"),
            Some(id),
        )?;
        Ok(v.pop())
    }

    /// Strategies, newest change first; only those with `status` when given.
    ///
    /// # Errors
    /// [`RegistryError::Sql`], [`RegistryError::Corrupt`].
    pub fn list(&self, status: Option<Status>) -> Result<Vec<Strategy>, RegistryError> {
        match status {
            Some(s) => self.query(
                &format!(
                    "SELECT {STRATEGY_COLUMNS} FROM strategies WHERE status = ?1 \
                     ORDER BY updated_ms DESC, id"
                ),
                Some(s.as_str()),
            ),
            None => self.query(
                &format!("SELECT {STRATEGY_COLUMNS} FROM strategies ORDER BY updated_ms DESC, id"),
                None,
            ),
        }
    }

    /// The strategy whose id is `id` or, failing that, the only one whose id starts with it.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`], [`RegistryError::Ambiguous`], [`RegistryError::Sql`].
    pub fn get(&self, id: &str) -> Result<Strategy, RegistryError> {
        if let Some(s) = self.find_exact(id)? {
            return Ok(s);
        }
        let escaped = id
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let mut v = self.query(
            &format!(
                "SELECT {STRATEGY_COLUMNS} FROM strategies WHERE id LIKE ?1 || '%' ESCAPE '\\'"
            ),
            Some(&escaped),
        )?;
        match v.len() {
            0 => Err(RegistryError::Unknown(id.to_string())),
            1 => Ok(v.remove(0)),
            count => Err(RegistryError::Ambiguous {
                id: id.to_string(),
                count,
            }),
        }
    }

    /// The status changes of strategy `id`, oldest first.
    ///
    /// # Errors
    /// [`RegistryError::Sql`], [`RegistryError::Corrupt`].
    pub fn history(&self, id: &str) -> Result<Vec<StatusChange>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT from_status, to_status, at_ms, reason FROM status_changes \
                 WHERE strategy_id = ?1 ORDER BY id",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map(params![id], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(|e| self.sql(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (from, to, at_ms, reason) = r.map_err(|e| self.sql(e))?;
            let parse = |s: &str| {
                s.parse::<Status>().map_err(|m| RegistryError::Corrupt {
                    file: self.file.clone(),
                    id: id.to_string(),
                    message: m,
                })
            };
            out.push(StatusChange {
                from: from.as_deref().map(parse).transpose()?,
                to: parse(&to)?,
                at_ms,
                reason,
            });
        }
        Ok(out)
    }

    /// The promotion with id `id`, if any.
    ///
    /// # Errors
    /// [`RegistryError::Sql`].
    pub fn promotion(&self, id: i64) -> Result<Option<PromotionRecord>, RegistryError> {
        self.conn
            .query_row(
                "SELECT at_ms, run, checkpoint, generation, data_fingerprint, trials, \
                 trial_sharpe_var, pbo FROM promotions WHERE id = ?1",
                params![id],
                |r| {
                    Ok(PromotionRecord {
                        at_ms: r.get(0)?,
                        run: r.get(1)?,
                        checkpoint: r.get(2)?,
                        generation: r.get(3)?,
                        data_fingerprint: r.get(4)?,
                        trials: r.get::<_, i64>(5)? as usize,
                        trial_sharpe_var: r.get(6)?,
                        pbo: r.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.sql(e))
    }
}

/// Appends one row to `status_changes`.
fn log_change(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    from: Option<Status>,
    to: Status,
    at_ms: i64,
    reason: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO status_changes (strategy_id, from_status, to_status, at_ms, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, from.map(Status::as_str), to.as_str(), at_ms, reason],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promotion::gauntlet::StageFigures;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("organism-registry-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d.join("sub").join("registry.db")
    }

    fn sensitivity() -> crate::promotion::gauntlet::CostSensitivity {
        use crate::promotion::gauntlet::{CostPoint, DelayPoint, SegmentSensitivity};
        let segment = |sharpe: f64, break_even_multiple| SegmentSensitivity {
            break_even_multiple,
            costs: [0.5, 1.0, 2.0, 3.0]
                .map(|multiple| CostPoint {
                    multiple,
                    sharpe: sharpe - 0.25 * multiple,
                })
                .to_vec(),
            delays: vec![
                DelayPoint {
                    bars: 1,
                    sharpe: sharpe - 0.5,
                },
                DelayPoint {
                    bars: 2,
                    sharpe: sharpe - 0.75,
                },
            ],
        };
        crate::promotion::gauntlet::CostSensitivity {
            train: segment(1.5, None),
            validation: segment(0.75, Some(3.0)),
        }
    }

    fn strategy(id: &str, promotion: i64) -> Strategy {
        Strategy {
            id: id.into(),
            name: "ema_crossover".into(),
            generation: 7,
            hash: "0123abcd".into(),
            genome: "seed = \"ema_crossover\"\n".into(),
            program: None,
            spec_fingerprint: "00ff".into(),
            run: "populations".into(),
            checkpoint: "populations/gen7.bin".into(),
            data_fingerprint: "abcd".into(),
            promotion_id: promotion,
            verdict: "passed".into(),
            stopped_at: None,
            figures: Figures {
                stages: vec![crate::promotion::gauntlet::costs(
                    &problem::Figures {
                        sharpe: 1.5,
                        consistency: 1.0,
                        max_drawdown: 0.1,
                        turnover: 12.0,
                        total_return: 0.25,
                        trades: 40,
                        feasible: true,
                        portfolio: None,
                    },
                    0.00045,
                    0.0001,
                    true,
                    Some(sensitivity()),
                    true,
                )],
                ..Figures::default()
            },
            weight: 0.5,
            status: Status::Candidate,
            reason: String::new(),
            created_ms: 0,
            updated_ms: 0,
            universe: None,
        }
    }

    fn promotion(r: &mut Registry) -> i64 {
        r.begin_promotion(&PromotionRecord {
            at_ms: 1000,
            run: "populations".into(),
            checkpoint: "populations/gen7.bin".into(),
            generation: 7,
            data_fingerprint: "abcd".into(),
            trials: 640,
            trial_sharpe_var: Some(0.8),
            pbo: Some(0.25),
        })
        .unwrap()
    }

    #[test]
    fn lifecycle_and_history() {
        let file = scratch("life");
        let mut r = Registry::open(&file).unwrap();
        assert_eq!(r.version().unwrap(), crate::store::MIGRATIONS.len());
        let p = promotion(&mut r);
        assert_eq!(r.promotion(p).unwrap().unwrap().trials, 640);
        let id = "ema_crossover_7_0123abcd";
        assert_eq!(
            r.record(&strategy(id, p), true, 2000).unwrap(),
            Recorded::New(Status::Promoted)
        );
        let mut failed = strategy("rsi_filter_7_ffff0000", p);
        failed.verdict = "failed: nulls".into();
        failed.stopped_at = Some("nulls".into());
        assert_eq!(
            r.record(&failed, false, 2000).unwrap(),
            Recorded::New(Status::Candidate)
        );
        // Lifecycle: promoted -> paper -> live -> retired; no skipping, nothing after retired.
        assert!(matches!(
            r.set_status(id, Status::Live, "skip", 3000),
            Err(RegistryError::Transition { .. })
        ));
        r.set_status(id, Status::Paper, "paper run", 3000).unwrap();
        r.set_status(id, Status::Live, "7 days in tolerance", 4000)
            .unwrap();
        r.set_status(id, Status::Retired, "drawdown", 5000).unwrap();
        assert!(r.set_status(id, Status::Retired, "again", 6000).is_err());
        let h = r.history(id).unwrap();
        let steps: Vec<(Option<Status>, Status, i64)> =
            h.iter().map(|c| (c.from, c.to, c.at_ms)).collect();
        assert_eq!(
            steps,
            vec![
                (None, Status::Promoted, 2000),
                (Some(Status::Promoted), Status::Paper, 3000),
                (Some(Status::Paper), Status::Live, 4000),
                (Some(Status::Live), Status::Retired, 5000),
            ]
        );
        // A retired strategy that passes again stays retired.
        assert_eq!(
            r.record(&strategy(id, p), true, 7000).unwrap(),
            Recorded::Updated {
                before: Status::Retired,
                now: Status::Retired
            }
        );
        let s = r.get(id).unwrap();
        assert_eq!(s.reason, "drawdown");
        assert_eq!(s.created_ms, 2000);
        assert_eq!(s.updated_ms, 7000);
        let StageFigures::Costs(c) = &s.figures.stages[0].figures else {
            panic!("{:?}", s.figures)
        };
        assert_eq!(c.train_sharpe, 1.5);
        assert_eq!(c.train_trades, 40);
        // The sensitivity comes back as written, a break-even above the search's top as none.
        assert_eq!(c.sensitivity, Some(sensitivity()));
        // Prefixes, filters.
        assert_eq!(r.get("rsi").unwrap().id, "rsi_filter_7_ffff0000");
        assert!(matches!(r.get("nope"), Err(RegistryError::Unknown(_))));
        // `_` in a prefix is literal, not a LIKE wildcard: "ema_" matches, "emaX" does not.
        assert!(r.get("ema_").is_ok());
        assert!(r.get("emaX").is_err());
        assert_eq!(r.list(Some(Status::Candidate)).unwrap().len(), 1);
        assert_eq!(r.list(None).unwrap().len(), 2);
        // Holdout reads are counted per strategy and run.
        r.record_holdout_read(p, id, "populations", 1500).unwrap();
        r.record_holdout_read(p, id, "populations", 1600).unwrap();
        assert_eq!(r.holdout_reads(id, "populations").unwrap(), 2);
        assert_eq!(r.holdout_reads(id, "elsewhere").unwrap(), 0);
        assert_eq!(r.promotions_reading_holdout("populations").unwrap(), 1);
        drop(r);
        // Reopening keeps everything and does not migrate twice.
        let r = Registry::open(&file).unwrap();
        assert_eq!(r.list(None).unwrap().len(), 2);
        let _ = std::fs::remove_dir_all(file.parent().unwrap().parent().unwrap());
    }

    #[test]
    fn foreign_and_newer_files_are_refused_untouched() {
        let file = scratch("foreign");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let junk = b"this is not a database, it is a note that must survive".repeat(100);
        std::fs::write(&file, &junk).unwrap();
        let e = Registry::open(&file).err().unwrap().to_string();
        assert!(
            e.contains("registry.db") && e.contains("not a usable SQLite"),
            "{e}"
        );
        assert_eq!(std::fs::read(&file).unwrap(), junk);
        std::fs::remove_file(&file).unwrap();
        {
            let c = Connection::open(&file).unwrap();
            c.execute_batch("PRAGMA user_version = 99").unwrap();
        }
        let e = Registry::open(&file).err().unwrap().to_string();
        assert!(
            e.contains("schema version 99") && e.contains("knows (6)"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(file.parent().unwrap().parent().unwrap());
    }
}
