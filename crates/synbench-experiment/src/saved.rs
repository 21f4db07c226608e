//! A run folder read back ([`SavedRun`]): what `synbench score`, `table` and
//! `correlate` need, from the saved per-scale outcomes alone (no encoder).
//! A run killed before its end is read from `run.json` and its finished
//! scales, scored with the run's own averaging, thresholds and mode.

use std::fs;
use std::path::{Path, PathBuf};

use synbench_probe::Averaging;
use synbench_theory::{ScaleOutcome, ScoreMode};

use crate::config::Named;
use crate::error::{ExperimentError, Result};
use crate::io::{read_json, write_atomic, write_json};
use crate::plot;
use crate::resolved::{RUN_SCHEMA, ResolvedPlan, RunFile};
use crate::schema::{
    READABLE_RESULT_SCHEMAS, READABLE_SCALE_SCHEMAS, RESULT_SCHEMA, ResultsFile, SCALE_SCHEMA, ScaleFile, ScaleRecord,
};
use crate::table::{Estimator, ScoreRow, ScoreTable, score_records};

/// `run.json` in a run folder.
pub const RUN_FILE: &str = "run.json";
/// `results.json` in a run folder.
pub const RESULTS_FILE: &str = "results.json";
/// The folder of the per-scale files.
pub const SCALES_DIR: &str = "scales";

/// The file of scale `index` in `dir`.
pub fn scale_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(SCALES_DIR).join(format!("scale_{index:03}.json"))
}

/// The finished scale files in `dir/scales`, sorted by name.
pub fn scale_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let scale_dir = dir.join(SCALES_DIR);
    if !scale_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<PathBuf> = fs::read_dir(&scale_dir)
        .map_err(|e| ExperimentError::io(&scale_dir, "cannot list", e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("scale_"))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads one finished scale of the plan `plan_hash`, whose grid is `scales`.
pub fn read_scale(path: &Path, plan_hash: &str, scales: &[f64]) -> Result<ScaleRecord> {
    let corrupt =
        |message: String| ExperimentError::CorruptScale { path: path.to_path_buf(), message, recompute: None };
    let file: ScaleFile = read_json(path).map_err(|e| corrupt(e.to_string()))?;
    if !READABLE_SCALE_SCHEMAS.contains(&file.schema.as_str()) {
        return Err(corrupt(format!("`schema` is {:?}, expected {SCALE_SCHEMA:?}", file.schema)));
    }
    if file.plan_hash != plan_hash {
        return Err(corrupt(format!(
            "`plan_hash` is {:?} but the folder's run.json is of plan {plan_hash:?}",
            file.plan_hash
        )));
    }
    let expected_name = format!("scale_{:03}.json", file.index);
    if path.file_name().is_none_or(|n| n.to_string_lossy() != expected_name)
        || scales.get(file.index) != Some(&file.scale)
    {
        return Err(corrupt(format!(
            "holds scale {} (s = {}), which is not that file's place in the plan's grid",
            file.index, file.scale
        )));
    }
    Ok(file.record())
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
}

/// Scores of one train size: a nested prefix of the train split, or all of it.
#[derive(Debug, Clone, PartialEq)]
pub struct FiniteN {
    /// Train samples per scale.
    pub n_train: u64,
    /// The reference estimator's rows (stderr only at the full size).
    pub reference: Vec<ScoreRow>,
    /// The population estimator's rows.
    pub population: Option<Vec<ScoreRow>>,
}

impl FiniteN {
    /// The rows of `estimator`, if the run carries it.
    pub fn rows(&self, estimator: Estimator) -> Option<&[ScoreRow]> {
        match estimator {
            Estimator::Reference => Some(&self.reference),
            Estimator::Population => self.population.as_deref(),
        }
    }
}

fn parse_named<T: Named>(path: &Path, field: &str, name: &str) -> Result<T> {
    T::from_name(name).map_err(|m| ExperimentError::schema(path, format!("`{field}`: {m}")))
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
            let file: ResultsFile = read_json(&results)?;
            if !READABLE_RESULT_SCHEMAS.contains(&file.schema.as_str()) {
                return Err(ExperimentError::schema(
                    &results,
                    format!("`schema` is {:?}, expected {RESULT_SCHEMA:?}", file.schema),
                ));
            }
            let records = read_all(dir, &file.provenance.plan_hash, &file.plan.data.scales)?;
            if records.len() != file.scales.len() {
                return Err(ExperimentError::schema(
                    &results,
                    format!(
                        "{} scales are recorded but {} finished scale files of this run are in {}",
                        file.scales.len(),
                        records.len(),
                        dir.join(SCALES_DIR).display()
                    ),
                ));
            }
            let mut saved = Self::from_plan(dir.to_path_buf(), &file.plan, file.encoder, records)?;
            saved.planned_scales = file.scales.len();
            Ok(saved)
        } else if run.is_file() {
            let file: RunFile = read_json(&run)?;
            if file.schema != RUN_SCHEMA {
                return Err(ExperimentError::schema(
                    &run,
                    format!("`schema` is {:?}, expected {RUN_SCHEMA:?}", file.schema),
                ));
            }
            let records = read_all(dir, &file.plan_hash, &file.plan.data.scales)?;
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

    /// Scores per ε at `thresholds`, in `mode`, with `averaging`, of
    /// `estimator`, with their standard errors; `None` when the run does not
    /// carry that estimator's outcomes (population: ℓ∞/ℓ1 attacks, runs of
    /// an earlier version).
    pub fn scores(
        &self,
        thresholds: &[f64],
        averaging: Averaging,
        mode: ScoreMode,
        estimator: Estimator,
    ) -> Result<Option<Vec<ScoreRow>>> {
        let Some(scores) = score_records(&self.records, &self.epsilons, thresholds, averaging, mode, estimator)? else {
            return Ok(None);
        };
        Ok(Some(
            self.epsilons
                .iter()
                .zip(scores)
                .map(|(&epsilon, s)| ScoreRow {
                    model: self.model.clone(),
                    epsilon,
                    scores: s.scores,
                    stderr: s.stderr,
                })
                .collect(),
        ))
    }

    /// The scores, in the run's own configuration, at each nested train
    /// size the scales carry (n/4, n/2 where the covariance is not singular)
    /// and at the full size: how far from converged in n each estimator is.
    pub fn finite_n(&self) -> Result<Vec<FiniteN>> {
        let sizes: Vec<u64> =
            self.records.first().map(|r| r.nested.iter().map(|n| n.n_train).collect()).unwrap_or_default();
        let mut out = Vec::new();
        for (k, &n_train) in sizes.iter().enumerate() {
            if !self.records.iter().all(|r| r.nested.get(k).is_some_and(|n| n.n_train == n_train)) {
                continue;
            }
            let prefix = SavedRun {
                records: self
                    .records
                    .iter()
                    .map(|r| ScaleRecord {
                        epsilons: r.nested[k].epsilons.clone(),
                        population: r.nested[k].population.clone(),
                        replicates: Vec::new(),
                        nested: Vec::new(),
                        ..r.clone()
                    })
                    .collect(),
                ..self.clone()
            };
            let scores = |e| prefix.scores(&self.thresholds, self.averaging, self.mode, e);
            out.push(FiniteN {
                n_train,
                reference: scores(Estimator::Reference)?.expect("every run carries the reference outcomes"),
                population: scores(Estimator::Population)?,
            });
        }
        let scores = |e| self.scores(&self.thresholds, self.averaging, self.mode, e);
        out.push(FiniteN {
            n_train: self.n_train,
            reference: scores(Estimator::Reference)?.expect("every run carries the reference outcomes"),
            population: scores(Estimator::Population)?,
        });
        Ok(out)
    }

    /// [`Self::finite_n`] at the first threshold as a Markdown table: one
    /// row per ε and estimator, one column per train size (empty without
    /// nested sizes).
    pub fn finite_n_markdown(&self) -> Result<String> {
        let sizes = self.finite_n()?;
        let Some(threshold) = self.thresholds.first().filter(|_| sizes.len() > 1) else { return Ok(String::new()) };
        let mut out = String::from("| ε | estimator |");
        for s in &sizes {
            out.push_str(&format!(" n_train={} |", s.n_train));
        }
        out.push_str("\n|---:|---|");
        out.push_str(&"---:|".repeat(sizes.len()));
        out.push('\n');
        for (e, &epsilon) in self.epsilons.iter().enumerate() {
            for estimator in Estimator::ALL {
                let cells: Option<Vec<String>> = sizes
                    .iter()
                    .map(|s| {
                        let rows = s.rows(estimator)?;
                        let (v, se) = (rows[e].scores[0], rows[e].stderr[0]);
                        Some(if se.is_finite() { format!("{v:.4} ± {se:.4}") } else { format!("{v:.4}") })
                    })
                    .collect();
                if let Some(cells) = cells {
                    out.push_str(&format!("| {epsilon} | {} | {} |\n", estimator.name(), cells.join(" | ")));
                }
            }
        }
        out.push_str(&format!(
            "\nSynBench-score at t = {threshold} with the probe fitted on the first n_train train samples of each scale \
             (the test split whole); ± at the full size only. A reference score that still climbs with n_train is not \
             converged; the population estimate should stay flat within its interval.\n"
        ));
        Ok(out)
    }

    /// The table of this run in its own configuration, of `estimator`
    /// (`None` when the run does not carry it).
    pub fn table_of(&self, estimator: Estimator) -> Result<Option<ScoreTable>> {
        let mut notes = vec![format!("{}: {}", self.model, self.encoder)];
        if self.is_partial() {
            notes.push(format!("{}: partial run, {} finished scale(s) only", self.model, self.records.len()));
        }
        let Some(rows) = self.scores(&self.thresholds, self.averaging, self.mode, estimator)? else {
            return Ok(None);
        };
        Ok(Some(ScoreTable {
            thresholds: self.thresholds.clone(),
            mode: self.mode,
            averaging: self.averaging,
            estimator,
            rows,
            notes,
        }))
    }

    /// The table of this run in its own configuration: of its headline
    /// estimator, or the reference one where the run does not carry that.
    pub fn table(&self) -> Result<ScoreTable> {
        match self.table_of(self.estimator)? {
            Some(table) => Ok(table),
            None => Ok(self.table_of(Estimator::Reference)?.expect("every run carries the reference outcomes")),
        }
    }

    /// Draws the figures into the run folder: the paper's two (the bound
    /// curve with its jackknife band) and, with nested train sizes, `score_vs_n`.
    pub fn write_figures(&self) -> Result<Vec<PathBuf>> {
        let scales: Vec<f64> = self.records.iter().map(|r| r.scale).collect();
        let raw: Vec<ScaleOutcome> = self.records.iter().map(|r| r.raw).collect();
        let groups = self.records.iter().map(|r| r.replicates.len()).min().unwrap_or(0);
        let series: Vec<plot::Series> = self
            .epsilons
            .iter()
            .enumerate()
            .map(|(e, eps)| plot::Series {
                label: format!("{} ε = {eps}", self.model),
                outcomes: self.records.iter().map(|r| r.epsilons[e].outcome(self.averaging)).collect(),
                replicates: (0..groups)
                    .map(|g| {
                        let train = self.records.iter().map(|r| r.replicates[g].train[e]).collect();
                        let test =
                            self.records.iter().map(|r| r.replicates[g].test[e].outcome(self.averaging)).collect();
                        (train, test)
                    })
                    .collect(),
            })
            .collect();
        let sizes = self.finite_n()?;
        let mut by_size = Vec::new();
        for (e, eps) in self.epsilons.iter().enumerate() {
            for estimator in Estimator::ALL {
                let points: Option<Vec<(f64, f64, f64)>> = sizes
                    .iter()
                    .map(|s| {
                        let rows = s.rows(estimator)?;
                        Some((s.n_train as f64, rows[e].scores[0], rows[e].stderr[0]))
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
        plot::write_figures(
            &self.dir,
            &plot::Figure {
                title: &self.model,
                subtitle: &self.encoder,
                scales: &scales,
                raw: &raw,
                representation: &series,
                by_size: &by_size,
                size_threshold: self.thresholds.first().copied().unwrap_or(f64::NAN),
            },
        )
    }

    /// scores.csv and table.md as text: `table` (the reference estimator's)
    /// and, where the run carries it, the population estimator's.
    pub fn texts(&self, table: &ScoreTable) -> Result<(String, String)> {
        let mut csv = table.csv();
        let mut markdown = format!("## SynBench-score: {}\n\n{}", self.model, table.markdown());
        for estimator in Estimator::ALL.into_iter().filter(|&e| e != table.estimator) {
            let Some(other) = self.table_of(estimator)? else { continue };
            csv.push_str(&other.csv_rows());
            let about = match estimator {
                Estimator::Population => {
                    "The score of the ε-robust probe built from the features' population moments, estimated from \
                     the train split (SPEC §7); not biased by the feature width as the reference estimator is."
                }
                Estimator::Reference => {
                    "The reference protocol's score (SPEC §3): the probe fitted on the train split, evaluated on \
                     the test split."
                }
            };
            markdown.push_str(&format!(
                "\n## {} estimator: {}\n\n{about}\n\n{}",
                estimator.name(),
                self.model,
                other.markdown()
            ));
        }
        let by_size = self.finite_n_markdown()?;
        if !by_size.is_empty() {
            markdown.push_str(&format!("\n## Score vs train size: {}\n\n{by_size}", self.model));
        }
        Ok((csv, markdown))
    }

    /// Writes scores.csv and table.md (from `table`), the figures, then
    /// `results` last: a folder with results.json is complete.
    pub fn write_outputs(&self, table: &ScoreTable, results: &ResultsFile) -> Result<Vec<PathBuf>> {
        let dir = &self.dir;
        crate::io::create_dir_all(dir)?;
        let (csv, markdown) = self.texts(table)?;
        write_atomic(&dir.join("scores.csv"), csv.as_bytes())?;
        write_atomic(&dir.join("table.md"), markdown.as_bytes())?;
        let mut written = vec![dir.join("scores.csv"), dir.join("table.md")];
        written.extend(self.write_figures()?);
        write_json(&dir.join(RESULTS_FILE), results)?;
        written.push(dir.join(RESULTS_FILE));
        Ok(written)
    }
}

/// Every finished scale file of plan `plan_hash` in `dir`, in grid order.
pub fn read_all(dir: &Path, plan_hash: &str, scales: &[f64]) -> Result<Vec<ScaleRecord>> {
    let mut records = scale_files(dir)?.iter().map(|p| read_scale(p, plan_hash, scales)).collect::<Result<Vec<_>>>()?;
    records.sort_by_key(|r| r.index);
    Ok(records)
}
