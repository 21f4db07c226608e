//! Score tables: one row per (model, ε), one column per threshold, as the
//! paper tabulates them, in Markdown (`table.md`) and long-format CSV
//! (`scores.csv`, one row per model, ε and threshold, for pandas); and the
//! rescoring of saved runs behind `synbench score`, `table` and `correlate`.

use std::fmt::Write as _;
use std::path::PathBuf;

use synbench_probe::jackknife::{reference_standard_error, standard_error};
use synbench_probe::{Averaging, JACKKNIFE_GROUPS, T975};
use synbench_theory::{ScaleOutcome, ScoreMode, synbench_scores};

use crate::error::{ExperimentError, Result};
use crate::saved::{RESULTS_FILE, RUN_FILE, SavedRun, scale_files};
use crate::schema::ScaleRecord;
use crate::sweep::{self, SWEEP_FILE};

/// One row of a score table: a model at one ε.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// The run's label (model name, or the folder for several runs of one model).
    pub model: String,
    /// Robustness level.
    pub epsilon: f64,
    /// SynBench-score per threshold.
    pub scores: Vec<f64>,
    /// Its jackknife standard error per threshold (NaN where unknown).
    pub stderr: Vec<f64>,
}

impl ScoreRow {
    /// The 95 % interval `(low, high)` at threshold index `t`.
    pub fn interval(&self, t: usize) -> (f64, f64) {
        let (s, se) = (self.scores[t], self.stderr[t]);
        (s - T975 * se, s + T975 * se)
    }
}

/// Scores of several models × ε × thresholds, as the paper tabulates them.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    /// Accuracy thresholds (columns).
    pub thresholds: Vec<f64>,
    /// Score mode used.
    pub mode: ScoreMode,
    /// Averaging used.
    pub averaging: Averaging,
    /// Estimator of the scores.
    pub estimator: Estimator,
    /// Rows, grouped by model.
    pub rows: Vec<ScoreRow>,
    /// Lines printed under the table (encoders, "random init", partial runs).
    pub notes: Vec<String>,
}

/// The ε with the highest score per threshold among `rows` (NaN never wins;
/// ties keep the smaller ε, listed first).
pub fn best_epsilons(rows: &[&ScoreRow], thresholds: usize) -> Vec<Option<f64>> {
    (0..thresholds)
        .map(|t| {
            let mut best: Option<(f64, f64)> = None;
            for row in rows {
                let s = row.scores[t];
                if !s.is_nan() && best.is_none_or(|(_, b)| s > b) {
                    best = Some((row.epsilon, s));
                }
            }
            best.map(|(e, _)| e)
        })
        .collect()
}

fn format_score(v: f64) -> String {
    if v.is_finite() { format!("{v:.4}") } else { format!("{v}") }
}

impl ScoreTable {
    /// Models in order of first appearance.
    fn models(&self) -> Vec<&str> {
        let mut models: Vec<&str> = Vec::new();
        for row in &self.rows {
            if !models.contains(&row.model.as_str()) {
                models.push(&row.model);
            }
        }
        models
    }

    /// The best ε per threshold of each model.
    pub fn best_epsilons(&self) -> Vec<(String, Vec<Option<f64>>)> {
        self.models()
            .into_iter()
            .map(|m| {
                let rows: Vec<&ScoreRow> = self.rows.iter().filter(|r| r.model == m).collect();
                (m.to_string(), best_epsilons(&rows, self.thresholds.len()))
            })
            .collect()
    }

    /// Markdown: one row per (model, ε), thresholds across, then per model the
    /// ε with the highest score at each threshold (the ε the paper suggests
    /// for robust probing).
    pub fn markdown(&self) -> String {
        let mut out = String::from("| model | ε |");
        for t in &self.thresholds {
            let _ = write!(out, " t={t} |");
        }
        out.push_str("\n|---|---:|");
        out.push_str(&"---:|".repeat(self.thresholds.len()));
        out.push('\n');
        for row in &self.rows {
            let _ = write!(out, "| {} | {} |", row.model, row.epsilon);
            for (s, se) in row.scores.iter().zip(&row.stderr) {
                if se.is_finite() {
                    let _ = write!(out, " {} ± {se:.4} |", format_score(*s));
                } else {
                    let _ = write!(out, " {} |", format_score(*s));
                }
            }
            out.push('\n');
        }
        for (model, best) in self.best_epsilons() {
            let _ = write!(out, "| {model} | best ε |");
            for b in best {
                let _ = write!(out, " {} |", b.map_or("—".to_string(), |e| e.to_string()));
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "\nSynBench-score, {} score mode, {} averaging, {} estimator.",
            self.mode.name(),
            self.averaging.name(),
            self.estimator.name()
        );
        if self.rows.iter().any(|r| r.stderr.iter().any(|s| s.is_finite())) {
            let _ = writeln!(
                out,
                "± is the delete-a-group jackknife standard error ({JACKKNIFE_GROUPS} groups); the 95 % interval is ± {T975:.3}·stderr."
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}");
        }
        out
    }

    /// CSV in long format, one row per (model, ε, threshold), for pandas.
    pub fn csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push_str(&self.csv_rows());
        out
    }

    /// [`Self::csv`] without its header, to append another estimator's table.
    pub fn csv_rows(&self) -> String {
        let mut out = String::new();
        let (mode, averaging, estimator) = (self.mode.name(), self.averaging.name(), self.estimator.name());
        for row in &self.rows {
            for (t, (threshold, score)) in self.thresholds.iter().zip(&row.scores).enumerate() {
                let (low, high) = row.interval(t);
                let _ = writeln!(
                    out,
                    "{},{},{threshold},{score},{},{low},{high},{estimator},{mode},{averaging}",
                    csv_field(&row.model),
                    row.epsilon,
                    row.stderr[t]
                );
            }
        }
        out
    }
}

/// The header of `scores.csv`.
pub const CSV_HEADER: &str = "model,epsilon,threshold,score,stderr,ci_low,ci_high,estimator,mode,averaging\n";

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// Which per-scale outcomes a score is computed from (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Estimator {
    /// The plug-in probe evaluated on the test split (SPEC §3, the reference).
    #[default]
    Reference,
    /// The estimated population outcome of the ε-robust probe.
    Population,
}

impl Estimator {
    /// Every estimator, the default first.
    pub const ALL: [Self; 2] = [Self::Reference, Self::Population];

    /// The config spelling.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Population => "population",
        }
    }
}

/// Scores per threshold with their jackknife standard errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The score per threshold.
    pub scores: Vec<f64>,
    /// Its standard error per threshold (NaN without replicates).
    pub stderr: Vec<f64>,
}

/// Which outcomes of a record a score is computed from.
#[derive(Debug, Clone, Copy)]
enum Draw {
    /// The run itself.
    Full,
    /// Train replicate g: the probe refitted without train group g.
    Train(usize),
    /// Test replicate g: the fitted probe without test group g.
    Test(usize),
}

/// The outcomes of ε index `e` per scale; `None` when a record lacks them.
fn outcomes_of(
    records: &[ScaleRecord],
    e: usize,
    averaging: Averaging,
    estimator: Estimator,
    draw: Draw,
) -> Option<Vec<ScaleOutcome>> {
    records
        .iter()
        .map(|r| match (estimator, draw) {
            (Estimator::Reference, Draw::Full) => r.epsilons.get(e).map(|o| o.outcome(averaging)),
            (Estimator::Reference, Draw::Train(g)) => r.replicates.get(g)?.train.get(e).copied(),
            (Estimator::Reference, Draw::Test(g)) => r.replicates.get(g)?.test.get(e).map(|o| o.outcome(averaging)),
            (Estimator::Population, Draw::Full) => r.population.as_ref().map(|p| p[e]),
            (Estimator::Population, Draw::Train(g)) => r.replicates.get(g)?.population.as_ref().map(|p| p[e]),
            // The population estimate reads no test sample.
            (Estimator::Population, Draw::Test(_)) => r.population.as_ref().map(|p| p[e]),
        })
        .collect()
}

/// Scores of per-scale records: per ε, per threshold, with standard errors
/// from the records' jackknife replicates (a replicate's score is the score
/// of its per-scale replicates, the same group left out at every scale).
/// The standard errors of both modes come from exact-mode replicate scores
/// ([`synbench_probe::jackknife`] says why). `None` when the records do not
/// carry that estimator's outcomes.
pub fn score_records(
    records: &[ScaleRecord],
    epsilons: &[f64],
    thresholds: &[f64],
    averaging: Averaging,
    mode: ScoreMode,
    estimator: Estimator,
) -> Result<Option<Vec<Scored>>> {
    let raw: Vec<ScaleOutcome> = records.iter().map(|r| r.raw).collect();
    let groups = records.iter().map(|r| r.replicates.len()).min().unwrap_or(0);
    let mut all = Vec::with_capacity(epsilons.len());
    for e in 0..epsilons.len() {
        let Some(rep) = outcomes_of(records, e, averaging, estimator, Draw::Full) else { return Ok(None) };
        let scores = synbench_scores(&rep, &raw, thresholds, mode)?;
        let replicate_scores = |draw: fn(usize) -> Draw| -> Result<Option<Vec<Vec<f64>>>> {
            let mut all = Vec::with_capacity(groups);
            for g in 0..groups {
                match outcomes_of(records, e, averaging, estimator, draw(g)) {
                    Some(outcomes) => all.push(synbench_scores(&outcomes, &raw, thresholds, ScoreMode::Exact)?),
                    None => return Ok(None),
                }
            }
            Ok((groups >= 2).then_some(all))
        };
        let (train, test) = (replicate_scores(Draw::Train)?, replicate_scores(Draw::Test)?);
        let at = |reps: &[Vec<f64>], t: usize| reps.iter().map(|r| r[t]).collect::<Vec<_>>();
        let stderr = (0..thresholds.len())
            .map(|t| match (estimator, &train, &test) {
                (Estimator::Reference, Some(train), Some(test)) => {
                    reference_standard_error(&at(train, t), &at(test, t))
                }
                (Estimator::Population, Some(train), _) => standard_error(&at(train, t)),
                _ => f64::NAN,
            })
            .collect();
        all.push(Scored { scores, stderr });
    }
    Ok(Some(all))
}

/// Overrides for rescoring saved runs; `None` keeps what the runs used.
#[derive(Debug, Clone, Default)]
pub struct ScoreOptions {
    /// Score mode.
    pub mode: Option<ScoreMode>,
    /// Averaging of the test outcomes.
    pub averaging: Option<Averaging>,
    /// Accuracy thresholds.
    pub thresholds: Option<Vec<f64>>,
}

fn agreed<T: PartialEq + Clone + std::fmt::Debug>(what: &str, flag: &str, values: Vec<T>) -> Result<T> {
    let first = values[0].clone();
    if values.iter().all(|v| *v == first) {
        Ok(first)
    } else {
        Err(ExperimentError::Table(format!("the runs use different {what} ({values:?}); choose one with {flag}")))
    }
}

/// Labels runs by model name; where a model occurs twice, by model and
/// folder name; where that repeats too, by model and the folder as given.
pub fn run_labels(runs: &[SavedRun]) -> Vec<String> {
    let folder = |run: &SavedRun| {
        run.dir.file_name().map_or_else(|| run.dir.display().to_string(), |n| n.to_string_lossy().into_owned())
    };
    runs.iter()
        .map(|run| {
            let same_model: Vec<&SavedRun> = runs.iter().filter(|r| r.model == run.model).collect();
            if same_model.len() == 1 {
                run.model.clone()
            } else if same_model.iter().filter(|r| folder(r) == folder(run)).count() == 1 {
                format!("{} ({})", run.model, folder(run))
            } else {
                format!("{} ({})", run.model, run.dir.display())
            }
        })
        .collect()
}

/// Loads run folders. A sweep folder (one holding `sweep.json`) stands for
/// its model folders. Among several folders, one that holds no run (a
/// sweep's `logs/`) or no finished scale yet (a model that failed before its
/// first) is skipped with a warning; a damaged run folder, or folders none
/// of which holds a scored run, are errors.
pub fn load_runs(dirs: &[PathBuf]) -> Result<Vec<SavedRun>> {
    if dirs.is_empty() {
        return Err(ExperimentError::Table("give at least one result folder".into()));
    }
    let mut expanded = Vec::new();
    for dir in dirs {
        if dir.join(SWEEP_FILE).is_file() {
            expanded.extend(sweep::model_names(dir)?.into_iter().map(|name| dir.join(name)));
        } else {
            expanded.push(dir.clone());
        }
    }
    if expanded.len() == 1 {
        return Ok(vec![SavedRun::load(&expanded[0])?]);
    }
    let mut runs = Vec::new();
    for dir in &expanded {
        let has_run = dir.join(RUN_FILE).is_file() || dir.join(RESULTS_FILE).is_file();
        if !has_run {
            tracing::warn!(dir = %dir.display(), "skipped: not a run folder (neither results.json nor run.json)");
        } else if !dir.join(RESULTS_FILE).is_file() && scale_files(dir)?.is_empty() {
            tracing::warn!(dir = %dir.display(), "skipped: the run has no finished scale yet");
        } else {
            runs.push(SavedRun::load(dir)?);
        }
    }
    if runs.is_empty() {
        return Err(ExperimentError::Table(format!(
            "none of the {} folders holds a run with a finished scale",
            expanded.len()
        )));
    }
    Ok(runs)
}

/// One paper-style table (models × ε × thresholds) over saved runs,
/// rescored from their per-scale outcomes (no encoder runs), of the
/// reference estimator.
pub fn score_table(runs: &[SavedRun], options: &ScoreOptions) -> Result<ScoreTable> {
    Ok(score_table_of(runs, options, Estimator::Reference)?.expect("every run carries the reference outcomes"))
}

/// The tables of every estimator all `runs` carry: the reference one, then
/// the population one where every run has its outcomes.
pub fn score_tables(runs: &[SavedRun], options: &ScoreOptions) -> Result<Vec<ScoreTable>> {
    let mut tables = Vec::new();
    for estimator in Estimator::ALL {
        tables.extend(score_table_of(runs, options, estimator)?);
    }
    Ok(tables)
}

/// [`score_table`] of `estimator`; `None` when a run does not carry it.
pub fn score_table_of(runs: &[SavedRun], options: &ScoreOptions, estimator: Estimator) -> Result<Option<ScoreTable>> {
    let mode = match options.mode {
        Some(m) => m,
        None => agreed("score modes", "--mode", runs.iter().map(|r| r.mode).collect())?,
    };
    let averaging = match options.averaging {
        Some(a) => a,
        None => agreed("averaging modes", "--averaging", runs.iter().map(|r| r.averaging).collect())?,
    };
    let thresholds = match &options.thresholds {
        Some(t) => t.clone(),
        None => agreed("thresholds", "--thresholds", runs.iter().map(|r| r.thresholds.clone()).collect())?,
    };
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for (run, label) in runs.iter().zip(run_labels(runs)) {
        let Some(scored) = run.scores(&thresholds, averaging, mode, estimator)? else { return Ok(None) };
        for mut row in scored {
            row.model.clone_from(&label);
            rows.push(row);
        }
        notes.push(format!("{label}: {} — {}", run.encoder, run.dir.display()));
        if run.records.len() < run.planned_scales || run.encoder.starts_with("partial") {
            tracing::warn!(dir = %run.dir.display(), scales = run.records.len(), "partial run: scored on its finished scales only");
            notes.push(format!("{label}: partial run, {} finished scale(s) only", run.records.len()));
        }
    }
    Ok(Some(ScoreTable { thresholds, mode, averaging, estimator, rows, notes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two models, one with a comma in its name, a NaN score, and a tie.
    fn table() -> ScoreTable {
        let row = |model: &str, epsilon: f64, scores: [f64; 3]| ScoreRow {
            model: model.into(),
            epsilon,
            scores: scores.to_vec(),
            stderr: if model == "vit_tiny" { vec![0.012, 0.0, f64::NAN] } else { vec![f64::NAN; 3] },
        };
        ScoreTable {
            thresholds: vec![0.6, 0.8, 0.99],
            mode: ScoreMode::Reference,
            averaging: Averaging::Exact,
            estimator: Estimator::Reference,
            rows: vec![
                row("vit_tiny", 0.0, [0.91, 0.875, f64::NAN]),
                row("vit_tiny", 0.2, [0.93, 0.875, 0.5]),
                row("my, \"model\"", 0.0, [0.1, 0.2, 0.3]),
            ],
            notes: vec!["vit_tiny: random init".into()],
        }
    }

    #[test]
    fn csv_layout() {
        insta::assert_snapshot!("scores_csv", table().csv());
    }

    #[test]
    fn markdown_layout() {
        insta::assert_snapshot!("table_md", table().markdown());
    }

    #[test]
    fn best_epsilon_skips_nan_and_keeps_the_smaller_on_ties() {
        let t = table();
        assert_eq!(t.best_epsilons()[0], ("vit_tiny".to_string(), vec![Some(0.2), Some(0.0), Some(0.2)]));
    }
}
