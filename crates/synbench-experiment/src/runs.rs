//! Several saved runs at once: loading folders (a sweep folder standing for
//! its model folders), labelling runs of one model apart, and the
//! paper-style table over them behind `synbench table` and `correlate`.

use std::path::PathBuf;

use synbench_probe::Averaging;
use synbench_theory::ScoreMode;

use crate::error::{ExperimentError, Result};
use crate::layout::{RESULTS_FILE, SWEEP_FILE, is_run_folder, scale_files};
use crate::options::Estimator;
use crate::saved::SavedRun;
use crate::scoring::Scoring;
use crate::sweep;
use crate::table::{ScoreRow, ScoreTable};

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

impl ScoreOptions {
    /// How `run` is scored with these overrides.
    pub fn scoring_of(&self, run: &SavedRun) -> Scoring {
        let own = run.scoring();
        Scoring {
            thresholds: self.thresholds.clone().unwrap_or(own.thresholds),
            averaging: self.averaging.unwrap_or(own.averaging),
            mode: self.mode.unwrap_or(own.mode),
            estimator: own.estimator,
        }
    }
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
        if !is_run_folder(dir) {
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
    let (table, _) = tables(runs, options)?;
    Ok(table)
}

/// The tables of every estimator all `runs` carry: the reference one, then
/// the population one where every run has its outcomes.
pub fn score_tables(runs: &[SavedRun], options: &ScoreOptions) -> Result<Vec<ScoreTable>> {
    let (reference, population) = tables(runs, options)?;
    Ok(std::iter::once(reference).chain(population).collect())
}

/// The reference table, and the population one where every run carries it;
/// each run scored once.
fn tables(runs: &[SavedRun], options: &ScoreOptions) -> Result<(ScoreTable, Option<ScoreTable>)> {
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
    let table = |estimator| ScoreTable {
        thresholds: thresholds.clone(),
        mode,
        averaging,
        estimator,
        rows: Vec::new(),
        notes: Vec::new(),
    };
    let (mut reference, mut population) = (table(Estimator::Reference), Some(table(Estimator::Population)));
    for (run, label) in runs.iter().zip(run_labels(runs)) {
        let scoring = Scoring { thresholds: thresholds.clone(), averaging, mode, estimator: Estimator::Reference };
        let scores = run.rescored(scoring)?;
        let rows = |estimator| {
            scores.scored(estimator).map(|scored| {
                run.epsilons.iter().zip(scored).map(|(&e, s)| ScoreRow::new(&label, e, s)).collect::<Vec<_>>()
            })
        };
        reference.rows.extend(rows(Estimator::Reference).unwrap_or_default());
        population = match (population, rows(Estimator::Population)) {
            (Some(mut table), Some(rows)) => {
                table.rows.extend(rows);
                Some(table)
            }
            _ => None,
        };
        let mut notes = vec![format!("{label}: {} — {}", run.encoder, run.dir.display())];
        if run.is_partial() || run.encoder.starts_with("partial") {
            tracing::warn!(dir = %run.dir.display(), scales = run.records.len(), "partial run: scored on its finished scales only");
            notes.push(format!("{label}: partial run, {} finished scale(s) only", run.records.len()));
        }
        reference.notes.extend(notes.iter().cloned());
        if let Some(table) = &mut population {
            table.notes.extend(notes);
        }
    }
    Ok((reference, population))
}
