//! Sweeps: one protocol, many models, one run folder each (`DIR/<model>/`,
//! an ordinary run folder that `synbench table` reads), and the files that
//! tie them together:
//!
//! * `DIR/sweep.json` ([`SweepFile`], `synbench-sweep/1`) — the model list as
//!   the driver parsed it, with each model's folder and shard;
//! * `DIR/failures.json` ([`FailuresFile`], `synbench-failures/1`) — the
//!   models whose last attempt failed, with the error. Shards of one sweep
//!   run at once (a Slurm array), so it is only changed under an exclusive
//!   lock on `DIR/.sweep.lock` ([`record_failure`], [`clear_failure`]);
//! * `DIR/leaderboard.csv` and `DIR/leaderboard.md` ([`Leaderboard`]) — one
//!   row per model and ε, ranked by the score at one threshold, with each
//!   model's width, throughput, device and state, its paired difference to
//!   the top row ([`crate::compare`]: the same samples in the same jackknife
//!   groups) and its rank group: the best row and every row not
//!   distinguishable from it by a paired t-test at 95 % after Holm's
//!   step-down correction (Holm, *Scand. J. Statist.* 6, 1979: it controls
//!   the family-wise error of the group's comparisons, and is uniformly more
//!   powerful than Bonferroni), then the best of the rest and its peers, and
//!   so on. Runs of plans that differ apart from the model form tables of
//!   their own (ranked and compared among themselves, the differing fields
//!   named); runs must share thresholds, mode and averaging.
//!
//! The driver (the Python package's `python -m synbench sweep`) resolves the
//! models and runs them; everything written or read here is this crate's.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use synbench_probe::Averaging;
use synbench_theory::ScoreMode;

use crate::config::Plan;
use crate::error::{ExperimentError, Result};
use crate::io::{read_json, write_atomic, write_json};
use crate::layout::{
    FAILURES_FILE, FAILURES_SCHEMA, LEADERBOARD_CSV, LEADERBOARD_MD, RESULTS_FILE, RUN_FILE, SWEEP_FILE, is_run_folder,
};
use crate::resolved::{PlanChange, ResolvedPlan};
use crate::saved::{SavedRun, read_results_file, read_run_file};
pub use crate::schema::{Failure, FailuresFile, SweepFile, SweepModel};
use crate::scoring::{Replicates, RunScores, replicate_scores, replicate_standard_error};
use crate::table::csv_field;
use crate::validate;

/// The lock the shards of a sweep take to change its shared files.
const LOCK_FILE: &str = ".sweep.lock";

/// Runs `f` holding the sweep folder's failures lock (an exclusive advisory
/// lock, released when the file closes — also when the process dies).
fn with_lock<T>(dir: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = File::create(&lock_path).map_err(|e| ExperimentError::io(&lock_path, "cannot create", e))?;
    lock.lock().map_err(|e| ExperimentError::io(&lock_path, "cannot lock", e))?;
    let out = f();
    drop(lock);
    out
}

/// The failures recorded in `dir` (none when it has no `failures.json`).
pub fn read_failures(dir: &Path) -> Result<Vec<Failure>> {
    let path = dir.join(FAILURES_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let file: FailuresFile = read_json(&path)?;
    validate::failures_file(&file).map_err(|(field, message)| ExperimentError::schema_field(&path, field, message))?;
    Ok(file.failures)
}

fn write_failures(path: &Path, mut failures: Vec<Failure>) -> Result<()> {
    failures.sort_by(|a, b| a.model.cmp(&b.model));
    write_json(path, &FailuresFile { schema: FAILURES_SCHEMA.into(), failures })
}

/// Records a failed attempt of `failure.model` in `dir/failures.json`,
/// replacing its earlier entry; `attempts` counts on from that entry.
/// Returns the entry as written.
pub fn record_failure(dir: &Path, mut failure: Failure) -> Result<Failure> {
    with_lock(dir, || {
        let path = &dir.join(FAILURES_FILE);
        let mut failures = read_failures(dir)?;
        let earlier = failures.iter().position(|f| f.model == failure.model).map(|i| failures.remove(i));
        failure.attempts = earlier.map_or(0, |f| f.attempts) + 1;
        failures.push(failure.clone());
        write_failures(path, failures)?;
        Ok(failure)
    })
}

/// Removes `model`'s entry from `dir/failures.json` (it has just finished);
/// whether there was one.
pub fn clear_failure(dir: &Path, model: &str) -> Result<bool> {
    with_lock(dir, || {
        let path = &dir.join(FAILURES_FILE);
        let mut failures = read_failures(dir)?;
        let before = failures.len();
        failures.retain(|f| f.model != model);
        if failures.len() == before {
            return Ok(false);
        }
        write_failures(path, failures)?;
        Ok(true)
    })
}

/// Whether the run of `plan` in `folder` is finished: `None` when it has
/// no `results.json`; else the fields in which the finished run's plan
/// differs from `plan` (empty: the same plan — a sweep skips it).
/// `model.batch_size` is not among them: a sweep rerun with another batch
/// size (a bigger GPU) keeps the models it has finished, whose scores
/// differ from a rerun's only in the last bits of the folded sums.
pub fn finished_changes(folder: &Path, plan: &Plan) -> Result<Option<Vec<PlanChange>>> {
    let path = folder.join(RESULTS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let results = read_results_file(&path)?;
    let changes = ResolvedPlan::of(plan).changes_from(&results.plan);
    Ok(Some(changes.into_iter().filter(|c| c.field != PlanChange::BATCH_SIZE).collect()))
}

/// Writes `dir/sweep.json` (under the sweep's lock: every shard of an
/// array writes the same file when it starts).
pub fn write_sweep_file(dir: &Path, file: &SweepFile) -> Result<()> {
    with_lock(dir, || write_json(&dir.join(SWEEP_FILE), file))
}

/// Where a model of a sweep stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelState {
    /// Every scale scored: `results.json` is written.
    Finished,
    /// Killed (or running): this many of the planned scales are finished.
    Partial {
        /// Finished scales.
        finished: usize,
        /// Scales in the plan.
        planned: usize,
    },
    /// Its last attempt failed.
    Failed {
        /// The error, in one line.
        error: String,
        /// Failed attempts.
        attempts: u32,
    },
    /// Listed, never started.
    Pending,
}

impl ModelState {
    /// The state in one word, as the leaderboard writes it.
    pub fn name(&self) -> &'static str {
        match self {
            ModelState::Finished => "finished",
            ModelState::Partial { .. } => "partial",
            ModelState::Failed { .. } => "failed",
            ModelState::Pending => "pending",
        }
    }
}

/// One row of the leaderboard: a model at one ε, or a model with no scores
/// (failed before its first scale, or pending) with `epsilon: None`.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderboardRow {
    /// The model's folder name.
    pub model: String,
    /// ε.
    pub epsilon: Option<f64>,
    /// Scores per threshold (empty without an ε).
    pub scores: Vec<f64>,
    /// Output width of the encoder.
    pub feature_dim: Option<usize>,
    /// Encoder throughput (inputs per second) of the process that finished it.
    pub images_per_second: Option<f64>,
    /// Where it ran.
    pub device: Option<String>,
    /// Its state.
    pub state: ModelState,
    /// Its protocol group ([`Leaderboard::protocols`]): rows of one group
    /// are ranked and compared among themselves.
    pub protocol: usize,
    /// The paired difference to the top row of its protocol group at the
    /// ranking threshold, and its standard error (module [`crate::compare`];
    /// NaN without replicates).
    pub to_top: Option<(f64, f64)>,
    /// Its rank group: 1 for the top row and every row not distinguishable
    /// from it (paired t-tests, Holm's correction, 95 %), 2 for the best of
    /// the others and those not distinguishable from it, and so on.
    pub rank_group: Option<usize>,
}

/// A sweep's leaderboard (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    /// Thresholds (columns).
    pub thresholds: Vec<f64>,
    /// The threshold ranked by.
    pub sort_by: f64,
    /// The runs' score mode.
    pub mode: ScoreMode,
    /// The runs' averaging.
    pub averaging: Averaging,
    /// Rows, ranked: per protocol group, scored rows by their score at
    /// `sort_by` (highest first; NaN after every number), then rows without
    /// scores.
    pub rows: Vec<LeaderboardRow>,
    /// Per protocol group: the plan fields in which it differs from the
    /// first (empty for the first). Runs of one protocol see the same
    /// samples; runs of others are never compared with them.
    pub protocols: Vec<Vec<String>>,
}

/// One model of a collected sweep: its state, its run read back and
/// scored (where it has a finished scale), its recorded failure.
#[derive(Debug, Clone)]
pub struct CollectedModel {
    /// The model's folder name.
    pub name: String,
    /// Its state.
    pub state: ModelState,
    /// Its run read back, and every score of it.
    pub run: Option<(SavedRun, RunScores)>,
    /// Its entry in `failures.json`.
    pub failure: Option<Failure>,
}

/// A sweep folder read back: the leaderboard, and every model as it was
/// read for it (a report needs both, read once).
#[derive(Debug, Clone)]
pub struct Collected {
    /// The leaderboard.
    pub board: Leaderboard,
    /// Every model, in the sweep's order (`sweep.json`'s, then the other
    /// run folders by name, then failures of models with no folder).
    pub models: Vec<CollectedModel>,
}

/// The sweep's model folders: those `sweep.json` lists (in its order), then
/// any other sub-folder holding a run, by name.
pub fn model_names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    let sweep = dir.join(SWEEP_FILE);
    if sweep.is_file() {
        let file: SweepFile = read_json(&sweep)?;
        validate::sweep_file(&file)
            .map_err(|(field, message)| ExperimentError::schema_field(&sweep, field, message))?;
        names.extend(file.models.into_iter().map(|m| m.name));
    }
    let mut others = BTreeSet::new();
    for entry in fs::read_dir(dir).map_err(|e| ExperimentError::io(dir, "cannot list", e))? {
        let path = entry.map_err(|e| ExperimentError::io(dir, "cannot list", e))?.path();
        if is_run_folder(&path)
            && let Some(name) = path.file_name()
        {
            others.insert(name.to_string_lossy().into_owned());
        }
    }
    for name in others {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Scales planned by the run in `folder`, from its `run.json`.
fn planned_scales(folder: &Path) -> Result<usize> {
    Ok(read_run_file(&folder.join(RUN_FILE))?.plan.data.scales.len())
}

impl Leaderboard {
    /// Collects the sweep folder `dir`: every model's run folder, scored in
    /// its own configuration (the sweep's protocol: they must agree on
    /// thresholds, mode and averaging), and `failures.json`. `sort_by`
    /// must be one of the thresholds; by default 0.7 when it is one, else
    /// the first.
    pub fn collect(dir: &Path, sort_by: Option<f64>) -> Result<Self> {
        Ok(collect(dir, sort_by)?.board)
    }

    /// Each row's rank in its protocol group (none for a row without scores).
    pub fn ranks(&self) -> Vec<Option<usize>> {
        let mut next = vec![0; self.protocols.len().max(1)];
        self.rows
            .iter()
            .map(|row| {
                row.epsilon.map(|_| {
                    next[row.protocol] += 1;
                    next[row.protocol]
                })
            })
            .collect()
    }

    /// CSV, one row per model and ε (pandas: `pd.read_csv`): rank (in its
    /// protocol group), model, ε, one `score_T` column per threshold, then
    /// width, throughput, device, state, finished and planned scales, failed
    /// attempts and the error, then the protocol group, the paired
    /// difference to the group's top row at the ranking threshold with its
    /// standard error and 95 % interval, and the rank group.
    pub fn csv(&self) -> String {
        let mut out = String::from("rank,model,epsilon");
        for t in &self.thresholds {
            let _ = write!(out, ",score_{t}");
        }
        out.push_str(
            ",feature_dim,images_per_second,device,state,scales_finished,scales_planned,attempts,error,protocol,\
             diff_to_top,diff_to_top_stderr,diff_to_top_ci_low,diff_to_top_ci_high,rank_group\n",
        );
        let opt = |v: Option<String>| v.unwrap_or_default();
        for (row, rank) in self.rows.iter().zip(self.ranks()) {
            let _ = write!(
                out,
                "{},{},{}",
                opt(rank.map(|r| r.to_string())),
                csv_field(&row.model),
                opt(row.epsilon.map(|e| e.to_string()))
            );
            for t in 0..self.thresholds.len() {
                let _ = write!(out, ",{}", opt(row.scores.get(t).map(|s| s.to_string())));
            }
            let (finished, planned, attempts, error) = match &row.state {
                ModelState::Partial { finished, planned } => (Some(*finished), Some(*planned), None, String::new()),
                ModelState::Failed { error, attempts } => (None, None, Some(*attempts), error.clone()),
                _ => (None, None, None, String::new()),
            };
            let interval = row.to_top.map(|(d, se)| crate::scoring::interval(d, se));
            let _ = writeln!(
                out,
                ",{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                opt(row.feature_dim.map(|d| d.to_string())),
                opt(row.images_per_second.map(|v| format!("{v:.1}"))),
                csv_field(&opt(row.device.clone())),
                row.state.name(),
                opt(finished.map(|v| v.to_string())),
                opt(planned.map(|v| v.to_string())),
                opt(attempts.map(|v| v.to_string())),
                csv_field(&error),
                row.epsilon.map_or(String::new(), |_| row.protocol.to_string()),
                opt(row.to_top.map(|(d, _)| d.to_string())),
                opt(row.to_top.map(|(_, se)| se.to_string())),
                opt(interval.map(|(lo, _)| lo.to_string())),
                opt(interval.map(|(_, hi)| hi.to_string())),
                opt(row.rank_group.map(|g| g.to_string())),
            );
        }
        out
    }

    /// Markdown: one ranked table per protocol group (the later ones headed
    /// by the plan fields they differ in), then one line per model that is
    /// not finished.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let ranks = self.ranks();
        let dash = || "—".to_string();
        for (protocol, differs) in self.protocols.iter().enumerate() {
            if protocol > 0 {
                let _ = writeln!(
                    out,
                    "\n### Protocol {}: runs of another plan (ranked apart; they differ in {})\n",
                    protocol + 1,
                    differs.join("; ")
                );
            }
            out.push_str("| rank | model | ε |");
            for t in &self.thresholds {
                let _ = write!(out, " t={t} |");
            }
            let _ = write!(
                out,
                " Δ top at t={} (95 %) | group | width | img/s | device | state |\n|---:|---|---:|",
                self.sort_by
            );
            out.push_str(&"---:|".repeat(self.thresholds.len()));
            out.push_str("---:|---:|---:|---:|---|---|\n");
            // Rows without scores go with the first table.
            let in_table = |row: &LeaderboardRow| {
                if row.epsilon.is_some() { row.protocol == protocol } else { protocol == 0 }
            };
            for (row, rank) in self.rows.iter().zip(&ranks).filter(|(r, _)| in_table(r)) {
                let rank = rank.map_or_else(dash, |r| r.to_string());
                let epsilon = row.epsilon.map_or_else(dash, |e| e.to_string());
                let _ = write!(out, "| {rank} | {} | {epsilon} |", row.model);
                for t in 0..self.thresholds.len() {
                    let s = row
                        .scores
                        .get(t)
                        .map_or_else(dash, |&s| if s.is_finite() { format!("{s:.4}") } else { s.to_string() });
                    let _ = write!(out, " {s} |");
                }
                let to_top = match row.to_top {
                    Some((d, se)) if se.is_finite() => {
                        let (lo, hi) = crate::scoring::interval(d, se);
                        format!("{d:+.4} [{lo:+.4}, {hi:+.4}]")
                    }
                    Some((d, _)) => format!("{d:+.4}"),
                    None => dash(),
                };
                let state = match &row.state {
                    ModelState::Partial { finished, planned } => format!("partial ({finished}/{planned} scales)"),
                    other => other.name().to_string(),
                };
                let _ = writeln!(
                    out,
                    " {to_top} | {} | {} | {} | {} | {state} |",
                    row.rank_group.map_or_else(dash, |g| g.to_string()),
                    row.feature_dim.map_or_else(dash, |d| d.to_string()),
                    row.images_per_second.map_or_else(dash, |v| format!("{v:.1}")),
                    row.device.clone().unwrap_or_else(dash),
                );
            }
        }
        let _ = writeln!(
            out,
            "\nRanked by the SynBench-score at t = {}; {} score mode, {} averaging. Partial runs are scored on their \
             finished scales only. Δ top: the paired difference to the table's top row with its 95 % interval (the \
             runs' common jackknife groups); group: rank group, the rows not distinguishable from its best row \
             (paired t-tests at 95 %, Holm's step-down correction).",
            self.sort_by,
            self.mode.name(),
            self.averaging.name()
        );
        let mut seen = BTreeSet::new();
        for row in &self.rows {
            if let ModelState::Failed { error, attempts } = &row.state
                && seen.insert(row.model.as_str())
            {
                let _ = writeln!(out, "- {} failed ({attempts} attempt(s)): {error}", row.model);
            }
        }
        out
    }

    /// Writes `dir/leaderboard.csv` and `dir/leaderboard.md`; their paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let csv = dir.join(LEADERBOARD_CSV);
        let md = dir.join(LEADERBOARD_MD);
        write_atomic(&csv, self.csv().as_bytes())?;
        write_atomic(&md, self.markdown().as_bytes())?;
        Ok(vec![csv, md])
    }
}

/// Collects the sweep folder `dir` ([`Leaderboard::collect`]), keeping every
/// model's run as it was read and scored.
pub fn collect(dir: &Path, sort_by: Option<f64>) -> Result<Collected> {
    if !dir.is_dir() {
        return Err(ExperimentError::Table(format!("{}: is not a sweep folder (no such folder)", dir.display())));
    }
    let names = model_names(dir)?;
    let failures = read_failures(dir)?;
    if names.is_empty() && failures.is_empty() {
        return Err(ExperimentError::Table(format!(
            "{}: holds no sweep: neither {SWEEP_FILE}, {FAILURES_FILE} nor a run folder",
            dir.display()
        )));
    }
    let extra = failures.iter().filter(|f| !names.contains(&f.model)).map(|f| f.model.clone());
    let all: Vec<String> = names.iter().cloned().chain(extra).collect();
    let mut models = Vec::with_capacity(all.len());
    for name in all {
        let folder = dir.join(&name);
        let has_run = is_run_folder(&folder);
        let failure = failures.iter().find(|f| f.model == name);
        let finished = folder.join(RESULTS_FILE).is_file();
        // A run with no finished scale has nothing to score; any other
        // folder that cannot be read is an error naming its file.
        let scored = finished || !crate::layout::scale_files(&folder)?.is_empty();
        let run = if has_run && scored { Some(SavedRun::load(&folder)?) } else { None };
        let state = match (finished, failure) {
            (true, _) => ModelState::Finished,
            (false, Some(f)) => ModelState::Failed { error: f.error.clone(), attempts: f.attempts },
            (false, None) => match &run {
                Some(r) => ModelState::Partial { finished: r.records.len(), planned: r.planned_scales },
                None if has_run => ModelState::Partial { finished: 0, planned: planned_scales(&folder)? },
                None => ModelState::Pending,
            },
        };
        let run = match run {
            Some(run) => {
                let scores = run.scores()?;
                Some((run, scores))
            }
            None => None,
        };
        models.push(CollectedModel { name, state, run, failure: failure.cloned() });
    }
    Ok(Collected { board: collect_rows(&models, sort_by)?, models })
}

/// The significance level of the rank groups.
const RANK_ALPHA: f64 = 0.05;

/// The leaderboard of collected models: every scored model's rows (one per
/// ε, its reference scores in its mode), grouped by protocol (plans equal
/// but for the model, [`ResolvedPlan::protocol_changes_from`]), ranked in
/// each group at `sort_by` (default 0.7 when the runs have it, else their
/// first threshold) with the paired difference to the group's top row and
/// the rank groups; then the models with no scores. The runs must share
/// thresholds, mode and averaging (the table's columns).
pub fn collect_rows(models: &[CollectedModel], sort_by: Option<f64>) -> Result<Leaderboard> {
    let mut setup: Option<(&Path, &[f64], ScoreMode, Averaging)> = None;
    let mut rows = Vec::new();
    let mut unscored = Vec::new();
    // Each protocol group's first plan; each row's model (index into `models`).
    let mut firsts: Vec<&crate::resolved::ResolvedPlan> = Vec::new();
    let mut protocols: Vec<Vec<String>> = Vec::new();
    let mut row_models = Vec::new();
    for (m, model) in models.iter().enumerate() {
        let results = model.run.as_ref().and_then(|(r, _)| r.results.as_ref());
        let (feature_dim, images_per_second, device) = match results {
            Some(results) => {
                let p = &results.provenance;
                (results.feature_dim, p.encoder_images_per_second, Some(p.device.clone()))
            }
            None => (None, None, None),
        };
        let row = |epsilon, scores, protocol| LeaderboardRow {
            model: model.name.clone(),
            epsilon,
            scores,
            feature_dim,
            images_per_second,
            device: device.clone(),
            state: model.state.clone(),
            protocol,
            to_top: None,
            rank_group: None,
        };
        let Some((run, scores)) = &model.run else {
            unscored.push(row(None, Vec::new(), 0));
            continue;
        };
        match setup {
            None => setup = Some((&run.dir, &run.thresholds, run.mode, run.averaging)),
            Some((first, thresholds, mode, averaging)) => {
                if (thresholds, mode, averaging) != (run.thresholds.as_slice(), run.mode, run.averaging) {
                    return Err(ExperimentError::Table(format!(
                        "{} and {} were run with different protocols (thresholds {:?} vs {:?}, {} vs {} score \
                         mode, {} vs {} averaging); a leaderboard ranks runs of one protocol",
                        first.display(),
                        run.dir.display(),
                        thresholds,
                        run.thresholds,
                        mode.name(),
                        run.mode.name(),
                        averaging.name(),
                        run.averaging.name()
                    )));
                }
            }
        }
        let protocol = match firsts.iter().position(|p| run.plan.protocol_changes_from(p).is_empty()) {
            Some(k) => k,
            None => {
                protocols.push(match firsts.first() {
                    Some(first) => run.plan.protocol_changes_from(first).iter().map(ToString::to_string).collect(),
                    None => Vec::new(),
                });
                firsts.push(&run.plan);
                firsts.len() - 1
            }
        };
        for (&epsilon, scored) in run.epsilons.iter().zip(scores.reference.of(run.mode)) {
            rows.push(row(Some(epsilon), scored.scores.clone(), protocol));
            row_models.push(m);
        }
    }
    let (thresholds, mode, averaging) = match setup {
        Some((_, t, m, a)) => (t.to_vec(), m, a),
        None => (synbench_theory::PAPER_THRESHOLDS.to_vec(), ScoreMode::Reference, Averaging::Reference),
    };
    let sort_by = match sort_by {
        Some(t) => t,
        None if thresholds.contains(&0.7) => 0.7,
        None => thresholds[0],
    };
    let Some(column) = thresholds.iter().position(|&t| t == sort_by) else {
        return Err(ExperimentError::Table(format!(
            "--sort-by {sort_by}: the runs' thresholds are {thresholds:?}; rank by one of them"
        )));
    };
    // Per protocol, highest score first, NaN after every number; ties by model, then ε.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&rows[i], &rows[j]);
        let (x, y) = (a.scores[column], b.scores[column]);
        let by_score = match (x.is_nan(), y.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            (false, false) => y.total_cmp(&x),
        };
        a.protocol
            .cmp(&b.protocol)
            .then(by_score)
            .then_with(|| a.model.cmp(&b.model))
            .then_with(|| a.epsilon.partial_cmp(&b.epsilon).unwrap())
    });
    let mut rows: Vec<LeaderboardRow> = order.iter().map(|&i| rows[i].clone()).collect();
    let row_models: Vec<usize> = order.iter().map(|&i| row_models[i]).collect();
    // Each model's replicate scores of the ranking estimator, once.
    let mut replicates: Vec<Option<Option<Vec<Replicates>>>> = vec![None; models.len()];
    for &m in &row_models {
        if replicates[m].is_none() {
            let (run, _) = models[m].run.as_ref().expect("a scored row's model has a run");
            replicates[m] = Some(replicate_scores(
                &run.records,
                &run.epsilons,
                &thresholds,
                averaging,
                crate::options::Estimator::Reference,
            )?);
        }
    }
    let replicate_of = |i: usize| -> Option<&Replicates> {
        let m = row_models[i];
        let (run, _) = models[m].run.as_ref()?;
        let e = run.epsilons.iter().position(|&x| Some(x) == rows[i].epsilon)?;
        replicates[m].as_ref()?.as_ref().map(|r| &r[e])
    };
    // (difference, paired se) of row i against row j at the ranking threshold.
    let paired = |i: usize, j: usize| -> (f64, f64) {
        let d = rows[i].scores[column] - rows[j].scores[column];
        let se = match (replicate_of(i), replicate_of(j)) {
            (Some(a), Some(b)) => replicate_standard_error(
                crate::options::Estimator::Reference,
                &crate::compare::difference(a, b),
                column,
            ),
            _ => f64::NAN,
        };
        (d, se)
    };
    let mut to_top = vec![None; rows.len()];
    let mut rank_group = vec![None; rows.len()];
    for protocol in 0..firsts.len() {
        let members: Vec<usize> =
            (0..rows.len()).filter(|&i| rows[i].protocol == protocol && rows[i].scores[column].is_finite()).collect();
        let Some(&top) = members.first() else { continue };
        for &i in &members {
            to_top[i] = Some(paired(i, top));
        }
        for (group, rows_of_group) in rank_groups(&members, paired).into_iter().enumerate() {
            for i in rows_of_group {
                rank_group[i] = Some(group + 1);
            }
        }
    }
    for (i, row) in rows.iter_mut().enumerate() {
        row.to_top = to_top[i];
        row.rank_group = rank_group[i];
    }
    rows.extend(unscored);
    if protocols.is_empty() {
        protocols.push(Vec::new());
    }
    Ok(Leaderboard { thresholds, sort_by, mode, averaging, rows, protocols })
}

/// Rank groups of `ranked` (best first), `paired(i, j)` being the
/// difference of `i` minus `j` and its paired standard error: the best row
/// leads group 1, which holds every row whose difference to it is not
/// significant at 95 % after Holm's step-down correction over the group's
/// comparisons; the best of the rest leads group 2, and so on. A row whose
/// difference has no standard error is not distinguishable.
fn rank_groups(ranked: &[usize], paired: impl Fn(usize, usize) -> (f64, f64)) -> Vec<Vec<usize>> {
    let dof = (synbench_probe::JACKKNIFE_GROUPS - 1) as f64;
    let mut remaining = ranked.to_vec();
    let mut groups = Vec::new();
    while let Some((&leader, others)) = remaining.split_first() {
        let mut tests: Vec<(usize, f64)> = others
            .iter()
            .map(|&i| {
                let (d, se) = paired(i, leader);
                let p = if se > 0.0 {
                    synbench_theory::normal::students_t_two_sided(d / se, dof)
                } else if se == 0.0 && d != 0.0 {
                    0.0
                } else {
                    1.0
                };
                (i, if p.is_nan() { 1.0 } else { p })
            })
            .collect();
        tests.sort_by(|a, b| a.1.total_cmp(&b.1));
        let m = tests.len();
        let rejected: Vec<usize> = tests
            .iter()
            .enumerate()
            .take_while(|(k, (_, p))| *p <= RANK_ALPHA / (m - k) as f64)
            .map(|(_, (i, _))| *i)
            .collect();
        let (outside, inside): (Vec<usize>, Vec<usize>) = others.iter().partition(|i| rejected.contains(i));
        groups.push(std::iter::once(leader).chain(inside).collect());
        remaining = outside;
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::rank_groups;

    #[test]
    fn rank_groups_follow_holms_step_down() {
        // se 0.01 for every difference: t = Δ/0.01 with 9 degrees of freedom.
        let score = [0.9, 0.899, 0.87, 0.80];
        let paired = |i: usize, j: usize| (score[i] - score[j], 0.01);
        // Against row 0: row 3 (t = −10, p ≈ 4e-6 ≤ 0.05/3) and row 2 (t = −3,
        // p ≈ 0.015 ≤ 0.05/2) differ, row 1 (t = −0.1) does not; then row 3
        // differs from row 2 (t = −7).
        assert_eq!(rank_groups(&[0, 1, 2, 3], paired), vec![vec![0, 1], vec![2], vec![3]]);
        // Bonferroni would keep row 2 (0.015 > 0.05/3); Holm's step-down does not.
        let score2 = [0.9, 0.899, 0.87, 0.80];
        let wider = |i: usize, j: usize| (score2[i] - score2[j], 0.0125);
        // t = −2.4 for row 2: p ≈ 0.040 > 0.05/2: row 2 joins group 1.
        assert_eq!(rank_groups(&[0, 1, 2, 3], wider), vec![vec![0, 1, 2], vec![3]]);
        // No standard error: not distinguishable.
        assert_eq!(rank_groups(&[0, 1], |_, _| (-0.5, f64::NAN)), vec![vec![0, 1]]);
    }
}
