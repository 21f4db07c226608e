//! A run folder read back ([`SavedRun`]): what `synbench score`, `table`,
//! `collect` and `synbench.load` need, from the saved per-scale outcomes
//! alone (no encoder). Every file is checked against the run's plan as it is
//! read ([`crate::validate`]): a file that does not fit is an error naming the
//! file and the field, never a panic and never a silent score. A run killed
//! before its end is read from `run.json` and its finished scales, scored with
//! the run's own averaging, thresholds and mode.

use std::path::{Path, PathBuf};

use synbench_probe::Averaging;
use synbench_theory::ScoreMode;

use crate::error::{ExperimentError, Result};
use crate::io::{read_json, write_atomic};
use crate::layout::{RESULTS_FILE, RUN_FILE, SCALES_DIR, SCORES_CSV, TABLE_MD, scale_file_name, scale_files};
use crate::options::{Estimator, Named};
use crate::plot;
use crate::resolved::{ResolvedPlan, RunFile};
use crate::schema::{ResultsFile, ScaleFile, ScaleRecord};
use crate::scoring::{RunScores, Scoring};
use crate::table::{RunTables, ScoreTable};
use crate::validate;

/// Reads one finished scale of the plan `plan` (whose hash is `plan_hash`),
/// checked against it.
pub fn read_scale(path: &Path, plan: &ResolvedPlan, plan_hash: &str) -> Result<ScaleRecord> {
    Ok(read_scale_file(path, plan, plan_hash)?.record())
}

fn read_scale_file(path: &Path, plan: &ResolvedPlan, plan_hash: &str) -> Result<ScaleFile> {
    let corrupt = |field: Option<String>, message: String| ExperimentError::CorruptScale {
        path: path.to_path_buf(),
        field,
        message,
        recompute: None,
    };
    let file: ScaleFile = read_json(path).map_err(|e| match e {
        ExperimentError::Schema { field, message, .. } => corrupt(field, message),
        other => corrupt(None, other.to_string()),
    })?;
    if file.plan_hash != plan_hash {
        return Err(corrupt(
            Some("plan_hash".into()),
            format!("is {:?} but the folder's run.json is of plan {plan_hash:?}", file.plan_hash),
        ));
    }
    if path.file_name().is_none_or(|n| n.to_string_lossy() != scale_file_name(file.index))
        || plan.data.scales.get(file.index) != Some(&file.scale)
    {
        return Err(corrupt(
            Some("index".into()),
            format!(
                "holds scale {} (s = {}), which is not that file's place in the plan's grid",
                file.index, file.scale
            ),
        ));
    }
    validate::scale_file(&file, plan).map_err(|(field, message)| corrupt(Some(field), message))?;
    Ok(file)
}

/// Every finished scale file of `plan` (hash `plan_hash`) in `dir`, in grid
/// order, checked against the plan and against each other.
pub fn read_all(dir: &Path, plan: &ResolvedPlan, plan_hash: &str) -> Result<Vec<ScaleRecord>> {
    let paths = scale_files(dir)?;
    let files = paths.iter().map(|p| read_scale_file(p, plan, plan_hash)).collect::<Result<Vec<_>>>()?;
    let first = paths.first().cloned().unwrap_or_default();
    validate::scales_agree(&files, &first).map_err(|(i, field, message)| ExperimentError::CorruptScale {
        path: paths[i].clone(),
        field: Some(field),
        message,
        recompute: None,
    })?;
    let mut records: Vec<ScaleRecord> = files.iter().map(ScaleFile::record).collect();
    records.sort_by_key(|r| r.index);
    Ok(records)
}

/// Reads `run.json`, checked.
pub fn read_run_file(path: &Path) -> Result<RunFile> {
    let file: RunFile = read_json(path)?;
    validate::run_file(&file).map_err(|(field, message)| ExperimentError::schema_field(path, field, message))?;
    Ok(file)
}

/// Reads `results.json`, checked for its own consistency.
pub fn read_results_file(path: &Path) -> Result<ResultsFile> {
    let file: ResultsFile = read_json(path)?;
    validate::results_file(&file).map_err(|(field, message)| ExperimentError::schema_field(path, field, message))?;
    Ok(file)
}

/// A run folder read back.
#[derive(Debug, Clone)]
pub struct SavedRun {
    /// The folder.
    pub dir: PathBuf,
    /// The model's name (timm preset or arch).
    pub model: String,
    /// The encoder in words ("random init" when no weights were loaded).
    pub encoder: String,
    /// Averaging the run was configured with.
    pub averaging: Averaging,
    /// Score mode the run was configured with.
    pub mode: ScoreMode,
    /// Estimator of the run's headline scores.
    pub estimator: Estimator,
    /// Thresholds the run was configured with.
    pub thresholds: Vec<f64>,
    /// Robustness levels.
    pub epsilons: Vec<f64>,
    /// Finished scales, in grid order.
    pub records: Vec<ScaleRecord>,
    /// Scales in the plan (more than `records` for a partial run).
    pub planned_scales: usize,
    /// Train samples per scale.
    pub n_train: u64,
    /// The features' width, where `results.json` records it.
    pub feature_dim: Option<usize>,
    /// `results.json`, for a finished run read back.
    pub results: Option<ResultsFile>,
    /// The run's resolved plan.
    pub plan: ResolvedPlan,
}

fn parse_named<T: Named>(path: &Path, field: &str, name: &str) -> Result<T> {
    T::from_name(name).map_err(|m| ExperimentError::schema_field(path, field, m))
}

impl SavedRun {
    /// A run from its plan and records (finished in this process, or partial).
    pub fn from_plan(dir: PathBuf, plan: &ResolvedPlan, encoder: String, records: Vec<ScaleRecord>) -> Result<Self> {
        let path = dir.join(RUN_FILE);
        Ok(Self {
            model: plan.model.name.clone(),
            encoder,
            averaging: parse_named(&path, "plan.probe.averaging", &plan.probe.averaging)?,
            mode: parse_named(&path, "plan.score.mode", &plan.score.mode)?,
            estimator: parse_named(&path, "plan.score.estimator", &plan.score.estimator)?,
            thresholds: plan.score.thresholds.clone(),
            epsilons: plan.probe.epsilons.clone(),
            planned_scales: plan.data.scales.len(),
            n_train: plan.data.n_train,
            feature_dim: None,
            results: None,
            plan: plan.clone(),
            records,
            dir,
        })
    }

    /// Reads `dir/results.json` and the scales of that run, or — for a run
    /// killed before its end — `dir/run.json` and its finished scales.
    pub fn load(dir: &Path) -> Result<Self> {
        let results = dir.join(RESULTS_FILE);
        let run = dir.join(RUN_FILE);
        if results.is_file() {
            let file = read_results_file(&results)?;
            // run.json, written before the first scale, names the plan the scale files are of.
            if run.is_file() {
                let started: RunFile = read_json(&run)?;
                if started.plan_hash != file.provenance.plan_hash {
                    return Err(ExperimentError::schema_field(
                        &results,
                        "provenance.plan_hash",
                        format!(
                            "is {:?}, but the run's run.json is of plan {:?}",
                            file.provenance.plan_hash, started.plan_hash
                        ),
                    ));
                }
            }
            let records = read_all(dir, &file.plan, &file.provenance.plan_hash)?;
            if records.len() != file.scales.len() {
                return Err(ExperimentError::schema_field(
                    &results,
                    "scales",
                    format!(
                        "{} scales are recorded but {} finished scale files of this run are in {}",
                        file.scales.len(),
                        records.len(),
                        dir.join(SCALES_DIR).display()
                    ),
                ));
            }
            let mut saved = Self::from_plan(dir.to_path_buf(), &file.plan, file.encoder.clone(), records)?;
            saved.planned_scales = file.scales.len();
            saved.feature_dim = file.feature_dim;
            saved.results = Some(file);
            Ok(saved)
        } else if run.is_file() {
            let file = read_run_file(&run)?;
            let records = read_all(dir, &file.plan, &file.plan_hash)?;
            if records.is_empty() {
                return Err(ExperimentError::schema(&run, "the run has no finished scale yet: nothing to score"));
            }
            let encoder = format!("partial run ({} of {} scales)", records.len(), file.plan.data.scales.len());
            Self::from_plan(dir.to_path_buf(), &file.plan, encoder, records)
        } else if !scale_files(dir)?.is_empty() {
            Err(ExperimentError::schema(
                dir,
                "has scale files but neither results.json nor run.json: a folder of an older synbench (schema 1); rerun it",
            ))
        } else {
            Err(ExperimentError::schema(dir, "is not a synbench run folder: it has neither results.json nor run.json"))
        }
    }

    /// Whether some planned scales are not finished.
    pub fn is_partial(&self) -> bool {
        self.records.len() < self.planned_scales
    }

    /// How the run itself was configured to be scored.
    pub fn scoring(&self) -> Scoring {
        Scoring {
            thresholds: self.thresholds.clone(),
            averaging: self.averaging,
            mode: self.mode,
            estimator: self.estimator,
        }
    }

    /// Every score of the run, in its own configuration.
    pub fn scores(&self) -> Result<RunScores> {
        self.rescored(self.scoring())
    }

    /// Every score of the run, scored as `scoring` says.
    pub fn rescored(&self, scoring: Scoring) -> Result<RunScores> {
        RunScores::compute(&self.records, &self.epsilons, self.n_train, scoring)
    }

    /// The lines under the run's tables: the encoder, and whether the run is partial.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!("{}: {}", self.model, self.encoder)];
        if self.is_partial() {
            notes.push(format!("{}: partial run, {} finished scale(s) only", self.model, self.records.len()));
        }
        notes
    }

    /// The headline table of `scores`.
    pub fn table_of(&self, scores: &RunScores) -> ScoreTable {
        ScoreTable::headline(&self.model, scores, self.notes())
    }

    /// The headline table of the run in its own configuration.
    pub fn table(&self) -> Result<ScoreTable> {
        Ok(self.table_of(&self.scores()?))
    }

    /// `table.md` and `scores.csv` of `scores`.
    pub fn texts(&self, scores: &RunScores) -> RunTables {
        RunTables::new(&self.model, scores, &self.notes())
    }

    /// What the run's figures show: the paper's two (the bound curve with
    /// its jackknife band) and, with nested train sizes, `score_vs_n`.
    pub fn figure(&self, scores: &RunScores) -> plot::Figure {
        let series: Vec<plot::Series> = self
            .epsilons
            .iter()
            .enumerate()
            .map(|(e, eps)| plot::Series {
                label: format!("{} ε = {eps}", self.model),
                colour: e,
                outcomes: self.records.iter().map(|r| r.epsilons[e].outcome(self.averaging)).collect(),
                band: scores.bands.get(e).cloned().flatten(),
            })
            .collect();
        let mut by_size = Vec::new();
        for (e, eps) in self.epsilons.iter().enumerate() {
            for estimator in Estimator::ALL {
                let points: Option<Vec<(f64, f64, f64)>> = scores
                    .finite_n
                    .iter()
                    .map(|s| {
                        let scored = &s.of(estimator)?[e];
                        Some((s.n_train as f64, scored.scores[0], scored.stderr[0]))
                    })
                    .collect();
                if let Some(points) = points {
                    by_size.push(plot::SizeSeries {
                        label: format!("{} ε = {eps}", estimator.name()),
                        population: estimator == Estimator::Population,
                        epsilon_index: e,
                        points,
                    });
                }
            }
        }
        plot::Figure {
            title: self.model.clone(),
            subtitle: self.encoder.clone(),
            scales: self.records.iter().map(|r| r.scale).collect(),
            raw: self.records.iter().map(|r| r.raw).collect(),
            representation: series,
            by_size,
            size_threshold: scores.scoring.thresholds.first().copied().unwrap_or(f64::NAN),
        }
    }

    /// Draws the figures into the run folder.
    pub fn write_figures(&self, scores: &RunScores) -> Result<Vec<PathBuf>> {
        plot::write_figures(&self.dir, &self.figure(scores))
    }

    /// Writes scores.csv, table.md and the figures (what comes before
    /// `results.json`, which [`crate::io::write_json`] writes last: a folder
    /// with results.json is complete); their paths.
    pub fn write_tables_and_figures(&self, scores: &RunScores) -> Result<Vec<PathBuf>> {
        let dir = &self.dir;
        crate::io::create_dir_all(dir)?;
        let texts = self.texts(scores);
        write_atomic(&dir.join(SCORES_CSV), texts.csv.as_bytes())?;
        write_atomic(&dir.join(TABLE_MD), texts.markdown.as_bytes())?;
        let mut written = vec![dir.join(SCORES_CSV), dir.join(TABLE_MD)];
        written.extend(self.write_figures(scores)?);
        Ok(written)
    }
}
