//! The null searches of a run (`evolve --null-searches K`): the same search on K copies of its
//! data with no edge ([`RunProblem::null_copy`](super::problem::RunProblem::null_copy)), each a
//! run of its own in `OUT/nulls/k`, and the real front placed among theirs
//! ([`SearchNulls`], `OUT/search_nulls.json`), which `runs show`, the run report and `promote`
//! read.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{checkpoint::Checkpoint, summary::Ranked};

/// The file in the run folder.
pub const FILE: &str = "search_nulls.json";

/// A search's result as the null searches compare it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchFigures {
    /// The best validation Sharpe of its first front.
    #[serde(deserialize_with = "crate::store::real")]
    pub best_validation_sharpe: f64,
    /// Its first front's hypervolume (training objectives) at the last generation.
    #[serde(deserialize_with = "crate::store::real")]
    pub hypervolume: f64,
}

impl SearchFigures {
    /// Of a search's ranked first front and its checkpoint.
    pub fn of(ranked: &[Ranked], ck: &Checkpoint) -> Self {
        Self {
            best_validation_sharpe: ranked
                .iter()
                .map(|r| r.validation.sharpe)
                .filter(|x| x.is_finite())
                .fold(f64::NEG_INFINITY, f64::max),
            hypervolume: ck.state.history.last().map_or(0.0, |g| g.hypervolume),
        }
    }
}

/// The run against its null searches (`search_nulls.json` in the run folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchNulls {
    /// Generations of each search (the run's).
    pub generations: u32,
    pub real: SearchFigures,
    /// Null search `k` at `nulls[k]`.
    pub nulls: Vec<SearchFigures>,
    /// The share of searches as good as the real one on no edge: `(1 + #nulls >= real) / (1 +
    /// K)`, for the best validation Sharpe and for the hypervolume.
    #[serde(deserialize_with = "crate::store::real")]
    pub p_value_sharpe: f64,
    #[serde(deserialize_with = "crate::store::real")]
    pub p_value_hypervolume: f64,
}

impl SearchNulls {
    /// The real search's figures among the nulls'.
    pub fn new(generations: u32, real: SearchFigures, nulls: Vec<SearchFigures>) -> Self {
        let p = |x: f64, of: &dyn Fn(&SearchFigures) -> f64| {
            let above = nulls.iter().filter(|n| of(n) >= x).count();
            (1 + above) as f64 / (1 + nulls.len()) as f64
        };
        Self {
            generations,
            p_value_sharpe: p(real.best_validation_sharpe, &|n| n.best_validation_sharpe),
            p_value_hypervolume: p(real.hypervolume, &|n| n.hypervolume),
            real,
            nulls,
        }
    }

    /// The null searches' best validation Sharpes.
    pub fn best_sharpes(&self) -> Vec<f64> {
        self.nulls
            .iter()
            .map(|n| n.best_validation_sharpe)
            .collect()
    }

    /// Writes `FILE` in `dir` (atomically).
    ///
    /// # Errors
    /// A message naming the file when it cannot be written.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(FILE);
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        crate::market::csv::write_atomic(&path, json.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The null searches of the run in `dir`: `None` when it has none.
    ///
    /// # Errors
    /// A message naming the file when it cannot be read or parsed.
    pub fn read(dir: &Path) -> Result<Option<Self>, String> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The summary's lines.
    pub fn lines(&self) -> Vec<String> {
        let k = self.nulls.len();
        let median = |of: &dyn Fn(&SearchFigures) -> f64| {
            let mut v: Vec<f64> = self.nulls.iter().map(of).collect();
            v.sort_by(f64::total_cmp);
            if v.is_empty() {
                f64::NAN
            } else {
                crate::market::membership::median_sorted(&v)
            }
        };
        let max = |of: &dyn Fn(&SearchFigures) -> f64| {
            self.nulls.iter().map(of).fold(f64::NEG_INFINITY, f64::max)
        };
        let sharpe = |n: &SearchFigures| n.best_validation_sharpe;
        let hv = |n: &SearchFigures| n.hypervolume;
        let mut v = vec![
            format!(
                "null searches: the same search ({} generations) on {k} copies of the data with \
                 no edge (returns permuted):",
                self.generations
            ),
            format!(
                "  best validation Sharpe {:.2} against the nulls' median {:.2}, max {:.2}: p = {:.3}",
                self.real.best_validation_sharpe,
                median(&sharpe),
                max(&sharpe),
                self.p_value_sharpe
            ),
            format!(
                "  front hypervolume      {:.3} against the nulls' median {:.3}, max {:.3}: p = {:.3}",
                self.real.hypervolume,
                median(&hv),
                max(&hv),
                self.p_value_hypervolume
            ),
        ];
        let above = self
            .nulls
            .iter()
            .filter(|n| n.best_validation_sharpe >= self.real.best_validation_sharpe)
            .count();
        let smallest = 1.0 / (1 + k) as f64;
        v.push(if above > 0 && self.p_value_sharpe > 0.05 {
            format!(
                "  {above} of {k} searches on data with no edge found as good a validation \
                 Sharpe: this run's best is not evidence of an edge"
            )
        } else if above > 0 {
            format!("  only {above} of {k} searches on data with no edge did as well")
        } else if smallest > 0.05 {
            format!(
                "  no search on data with no edge did as well, but with {k} the smallest p is \
                 {smallest:.3}: 19 or more can show p <= 0.05"
            )
        } else {
            format!("  none of {k} searches on data with no edge did as well")
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(best_validation_sharpe: f64, hypervolume: f64) -> SearchFigures {
        SearchFigures {
            best_validation_sharpe,
            hypervolume,
        }
    }

    #[test]
    fn p_values_count_the_nulls_at_least_as_good() {
        let n = SearchNulls::new(
            10,
            f(1.5, 0.4),
            vec![f(0.5, 0.5), f(1.5, 0.1), f(2.0, 0.4), f(1.0, 0.2)],
        );
        // Sharpe: 1.5 and 2.0 reach 1.5: (1 + 2) / 5. Hypervolume: 0.5 and 0.4: (1 + 2) / 5.
        assert_eq!(n.p_value_sharpe, 0.6);
        assert_eq!(n.p_value_hypervolume, 0.6);
        assert_eq!(n.best_sharpes(), vec![0.5, 1.5, 2.0, 1.0]);
        let lines = n.lines().join("\n");
        assert!(
            lines.contains("median 1.25, max 2.00: p = 0.600"),
            "{lines}"
        );
        assert!(lines.contains("2 of 4 searches"), "{lines}");
        // None as good, but too few for p <= 0.05; and enough.
        let few = SearchNulls::new(10, f(3.0, 0.9), vec![f(1.0, 0.1); 8]);
        assert_eq!(few.p_value_sharpe, 1.0 / 9.0);
        assert!(few.lines().join("\n").contains("the smallest p is 0.111"));
        let many = SearchNulls::new(10, f(3.0, 0.9), vec![f(1.0, 0.1); 19]);
        assert_eq!(many.p_value_sharpe, 0.05);
        assert!(many.lines().join("\n").contains("none of 19"));
    }

    #[test]
    fn the_file_reads_back_and_a_run_without_one_has_none() {
        let dir = std::env::temp_dir().join(format!("organism-nulls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(SearchNulls::read(&dir), Ok(None));
        let n = SearchNulls::new(3, f(1.0, 0.3), vec![f(0.2, 0.1), f(f64::NAN, 0.0)]);
        n.write(&dir).unwrap();
        let back = SearchNulls::read(&dir).unwrap().unwrap();
        assert_eq!(back.real, n.real);
        assert!(back.nulls[1].best_validation_sharpe.is_nan());
        std::fs::write(dir.join(FILE), "{").unwrap();
        let e = SearchNulls::read(&dir).unwrap_err();
        assert!(e.contains(FILE), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
