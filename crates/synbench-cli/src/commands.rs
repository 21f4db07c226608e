//! The subcommands that need no encoder, as library functions: `correlate`
//! and `probe`, and the `.npy` IO they and `encode` share (`score` and
//! `table` are synbench-experiment's [`score_table`]). The binary parses
//! arguments, calls these and prints what they return.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ndarray_npy::{ReadNpyError, read_npy, write_npy};
use serde_json::json;
use synbench_probe::ndarray::{Array1, Array2, ArrayD, Axis, Ix2};
use synbench_probe::{AttackNorm, Fit, LinearModel, ParamGuard, RobustLogisticParams};
use tracing::warn;

use synbench_experiment::runs::{run_labels, score_table};
use synbench_experiment::table::csv_field;
use synbench_experiment::{SavedRun, ScoreOptions};

use crate::analysis::{kendall_tau_b, pearson, spearman};

// ------------------------------------------------------------------ npy IO

/// Reads a float array from `.npy`, float32 as is, float64 narrowed.
pub fn read_float_array(path: &Path) -> Result<ArrayD<f32>> {
    match read_npy::<_, ArrayD<f32>>(path) {
        Ok(array) => Ok(array),
        Err(ReadNpyError::WrongDescriptor(_)) => {
            let wide: ArrayD<f64> = read_npy(path)
                .with_context(|| format!("{}: expected a float32 or float64 .npy array", path.display()))?;
            Ok(wide.mapv(|v| v as f32))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {} as a .npy array", path.display())),
    }
}

/// Reads binary labels (any integer, bool or float dtype holding 0 and 1).
pub fn read_labels(path: &Path) -> Result<Array1<u8>> {
    let values: Vec<f64> = if let Ok(a) = read_npy::<_, ArrayD<i64>>(path) {
        a.iter().map(|&v| v as f64).collect()
    } else if let Ok(a) = read_npy::<_, ArrayD<i32>>(path) {
        a.iter().map(|&v| f64::from(v)).collect()
    } else if let Ok(a) = read_npy::<_, ArrayD<u8>>(path) {
        a.iter().map(|&v| f64::from(v)).collect()
    } else if let Ok(a) = read_npy::<_, ArrayD<bool>>(path) {
        a.iter().map(|&v| f64::from(u8::from(v))).collect()
    } else {
        read_float_array(path)
            .with_context(|| format!("{}: expected labels as an integer, bool or float array", path.display()))?
            .iter()
            .map(|&v| f64::from(v))
            .collect()
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| match v {
            0.0 => Ok(0),
            1.0 => Ok(1),
            _ => bail!("{}: label {i} is {v}; the linear probes are binary and expect labels 0 and 1", path.display()),
        })
        .collect::<Result<Vec<u8>>>()
        .map(Array1::from)
}

/// Reads features `[n, D]`.
pub fn read_features(path: &Path) -> Result<Array2<f32>> {
    let array = read_float_array(path)?;
    let shape = array.shape().to_vec();
    array
        .into_dimensionality::<Ix2>()
        .map_err(|_| anyhow::anyhow!("{}: features must be a 2-D array [n, D]; found shape {shape:?}", path.display()))
}

/// Writes `array` to `.npy` atomically (temp file, then rename).
pub fn write_npy_atomic(path: &Path, array: &Array2<f32>) -> Result<()> {
    let tmp = path.with_extension("npy.tmp");
    write_npy(&tmp, array).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

// --------------------------------------------------------------- correlate

/// Downstream accuracies: one row per model, one column per task.
#[derive(Debug, Clone, PartialEq)]
pub struct Downstream {
    /// Task names (the header after the first column).
    pub tasks: Vec<String>,
    /// `(model label, accuracy per task)`.
    pub rows: Vec<(String, Vec<f64>)>,
}

/// Parses a downstream CSV (RFC 4180, quoted fields allowed): a header
/// `model,<task>,…`, then one row per model.
pub fn parse_downstream(path: &Path, text: &str) -> Result<Downstream> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}:1: cannot read the header `model,<task>,…`", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.len() < 2 || header.iter().all(String::is_empty) {
        bail!("{}:1: expected a header `model,<task>,…` with at least one task column", path.display());
    }
    let tasks = header[1..].to_vec();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{}: not valid CSV", path.display()))?;
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let values = record
            .iter()
            .skip(1)
            .zip(&tasks)
            .map(|(f, task)| {
                f.parse::<f64>().with_context(|| format!("{}:{line}: `{task}` is {f:?}, not a number", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push((record[0].to_string(), values));
    }
    Ok(Downstream { tasks, rows })
}

/// One line of `correlate`'s output.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// Downstream task.
    pub task: String,
    /// Robustness level of the scores.
    pub epsilon: f64,
    /// Score threshold.
    pub threshold: f64,
    /// Models paired.
    pub n: usize,
    /// Pearson's r.
    pub pearson: f64,
    /// Spearman's ρ.
    pub spearman: f64,
    /// Kendall's τ-b.
    pub kendall: f64,
}

/// Correlations between SynBench scores and downstream accuracies, per task,
/// ε (those every run has) and threshold. A run matches the downstream row
/// named after its folder or, failing that, its model.
pub fn correlate(
    runs: &[SavedRun],
    downstream: &Downstream,
    source: &Path,
    options: &ScoreOptions,
) -> Result<Vec<Correlation>> {
    let table = score_table(runs, options)?;
    let mut accuracy_rows = Vec::with_capacity(runs.len());
    for run in runs {
        let folder = run.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let found = downstream
            .rows
            .iter()
            .find(|(label, _)| *label == folder)
            .or_else(|| downstream.rows.iter().find(|(label, _)| *label == run.model));
        match found {
            Some((_, values)) => accuracy_rows.push(values.clone()),
            None => bail!(
                "{}: no row for the run in {} (looked for {folder:?}, then {:?})",
                source.display(),
                run.dir.display(),
                run.model
            ),
        }
    }
    if runs.len() < 3 {
        warn!(runs = runs.len(), "fewer than 3 models: the correlations say little");
    }
    let labels = run_labels(runs);
    let epsilons: Vec<f64> =
        runs[0].epsilons.iter().copied().filter(|e| runs.iter().all(|r| r.epsilons.contains(e))).collect();
    if epsilons.is_empty() {
        bail!("the runs share no ε, so their scores cannot be compared");
    }
    let mut out = Vec::new();
    for (k, task) in downstream.tasks.iter().enumerate() {
        let accuracy: Vec<f64> = accuracy_rows.iter().map(|r| r[k]).collect();
        for &epsilon in &epsilons {
            for (t, &threshold) in table.thresholds.iter().enumerate() {
                let scores: Vec<f64> = labels
                    .iter()
                    .map(|label| {
                        table
                            .rows
                            .iter()
                            .find(|r| r.model == *label && r.epsilon == epsilon)
                            .expect("row per run and ε")
                            .scores[t]
                    })
                    .collect();
                out.push(Correlation {
                    task: task.clone(),
                    epsilon,
                    threshold,
                    n: scores.len(),
                    pearson: pearson(&scores, &accuracy),
                    spearman: spearman(&scores, &accuracy),
                    kendall: kendall_tau_b(&scores, &accuracy),
                });
            }
        }
    }
    Ok(out)
}

/// Markdown table of correlations.
pub fn correlations_markdown(rows: &[Correlation]) -> String {
    let mut out = String::from(
        "| task | ε | t | n | Pearson r | Spearman ρ | Kendall τ-b |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.4} | {:.4} | {:.4} |",
            r.task, r.epsilon, r.threshold, r.n, r.pearson, r.spearman, r.kendall
        );
    }
    out
}

/// CSV of correlations, one row per (task, ε, threshold).
pub fn correlations_csv(rows: &[Correlation]) -> String {
    let mut out = String::from("task,epsilon,threshold,n,pearson,spearman,kendall\n");
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            csv_field(&r.task),
            r.epsilon,
            r.threshold,
            r.n,
            r.pearson,
            r.spearman,
            r.kendall
        );
    }
    out
}

// ------------------------------------------------------------------- probe

/// How `--epsilon` is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Radius {
    /// ε·‖(μ₁ − μ₀)/2‖_p of the train features, p the attack norm: the same
    /// relative ε as SynBench's probe (SPEC §3, δ = ε‖μ‖), so the ε a run
    /// suggests can be used as is.
    Relative,
    /// ε in feature units.
    Absolute,
}

/// Arguments of `probe`.
#[derive(Debug, Clone)]
pub struct ProbeArgs {
    /// Train features `[n, D]`.
    pub train: PathBuf,
    /// Train labels `[n]`, 0/1.
    pub train_labels: PathBuf,
    /// Test features `[m, D]`.
    pub test: PathBuf,
    /// Test labels `[m]`, 0/1.
    pub test_labels: PathBuf,
    /// Robustness level.
    pub epsilon: f64,
    /// How `epsilon` is measured.
    pub radius: Radius,
    /// Attack norm.
    pub norm: AttackNorm,
    /// L2 penalty of both probes.
    pub alpha: f64,
    /// Iteration budget of both probes.
    pub max_iterations: u64,
}

/// One probe's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// "standard" or "robust".
    pub probe: &'static str,
    /// Test accuracy without attack.
    pub clean_accuracy: f64,
    /// Exact test accuracy under the worst-case attack of the radius.
    pub attacked_accuracy: f64,
}

/// What `probe` measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeReport {
    /// The attack radius in feature units.
    pub radius: f64,
    /// Attack norm.
    pub norm: AttackNorm,
    /// Standard then robust probe.
    pub outcomes: Vec<ProbeOutcome>,
    /// Whether the robust probe's optimiser converged.
    pub robust_converged: bool,
}

impl ProbeReport {
    /// Markdown table.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "attack: {} ball of radius {:.6} (feature units)\n\n| probe | clean accuracy | attacked accuracy |\n|---|---:|---:|\n",
            self.norm.name(),
            self.radius
        );
        for o in &self.outcomes {
            let _ = writeln!(out, "| {} | {:.4} | {:.4} |", o.probe, o.clean_accuracy, o.attacked_accuracy);
        }
        if !self.robust_converged {
            out.push_str("\nwarning: the robust probe did not reach its gradient tolerance; raise --max-iterations\n");
        }
        out
    }

    /// JSON record.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "radius": self.radius,
            "norm": self.norm.name(),
            "robust_converged": self.robust_converged,
            "probes": self.outcomes.iter().map(|o| json!({
                "probe": o.probe,
                "clean_accuracy": o.clean_accuracy,
                "attacked_accuracy": o.attacked_accuracy,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Standard and ε-robust logistic probes on a user's features (SPEC §6),
/// each reported with clean and exact worst-case attacked test accuracy.
pub fn probe(args: &ProbeArgs) -> Result<ProbeReport> {
    if args.norm == AttackNorm::L1 {
        bail!("--norm l1 is not supported by the robust linear probe; use l2 or linf");
    }
    let train = read_features(&args.train)?;
    let test = read_features(&args.test)?;
    let train_labels = read_labels(&args.train_labels)?;
    let test_labels = read_labels(&args.test_labels)?;
    let pairs = [
        (&args.train, &train, &args.train_labels, &train_labels),
        (&args.test, &test, &args.test_labels, &test_labels),
    ];
    for (features_path, features, labels_path, labels) in pairs {
        if features.nrows() != labels.len() {
            bail!(
                "{} has {} labels but {} has {} rows",
                labels_path.display(),
                labels.len(),
                features_path.display(),
                features.nrows()
            );
        }
    }
    if test.ncols() != train.ncols() {
        bail!(
            "{} has {} features per row but {} has {}",
            args.test.display(),
            test.ncols(),
            args.train.display(),
            train.ncols()
        );
    }
    for class in [0u8, 1] {
        if !train_labels.iter().any(|&y| y == class) {
            bail!("{}: no train sample of class {class}; a binary probe needs both", args.train_labels.display());
        }
    }
    let dataset = synbench_probe::features_dataset(train.view(), train_labels.view())
        .with_context(|| format!("{}", args.train.display()))?;
    // Checked like the train split (finite values), and its f64 records reused.
    let test64 = synbench_probe::features_dataset(test.view(), test_labels.view())
        .with_context(|| format!("{}", args.test.display()))?
        .records;
    if !(args.epsilon.is_finite() && args.epsilon >= 0.0) {
        bail!("--epsilon {} must be a finite number >= 0", args.epsilon);
    }
    let radius = match args.radius {
        Radius::Absolute => args.epsilon,
        Radius::Relative => {
            let mean = |class: u8| {
                let rows: Vec<usize> = (0..train_labels.len()).filter(|&i| train_labels[i] == class).collect();
                dataset.records.select(Axis(0), &rows).mean_axis(Axis(0)).expect("class is not empty")
            };
            let half_gap = (mean(1) - mean(0)) / 2.0;
            args.epsilon * args.norm.norm(half_gap.as_slice().expect("contiguous"))
        }
    };
    let standard = synbench_probe::fit_logistic(&dataset, args.alpha, args.max_iterations)?;
    let robust = RobustLogisticParams::new(radius, args.norm)
        .alpha(args.alpha)
        .max_iterations(args.max_iterations.max(1))
        .check()?
        .fit(&dataset)?;
    let evaluate = |name: &'static str, model: &LinearModel| -> Result<ProbeOutcome> {
        Ok(ProbeOutcome {
            probe: name,
            clean_accuracy: model.clean_accuracy(test64.view(), test_labels.view())?,
            attacked_accuracy: model.robust_accuracy(test64.view(), test_labels.view(), radius, args.norm)?,
        })
    };
    Ok(ProbeReport {
        radius,
        norm: args.norm,
        outcomes: vec![evaluate("standard", &standard)?, evaluate("robust", &robust.model)?],
        robust_converged: robust.converged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downstream_csv_reads_quoted_fields() {
        let text = "model,\"ImageNet, top-1\",cifar10\n\"vit, tiny\",0.75,0.9\nvit_small , 0.8 ,0.95\n\n";
        let table = parse_downstream(Path::new("down.csv"), text).unwrap();
        assert_eq!(table.tasks, ["ImageNet, top-1", "cifar10"]);
        assert_eq!(
            table.rows,
            [("vit, tiny".to_string(), vec![0.75, 0.9]), ("vit_small".to_string(), vec![0.8, 0.95])]
        );
        let err = parse_downstream(Path::new("down.csv"), "model,task\nvit,high\n").unwrap_err().to_string();
        assert_eq!(err, "down.csv:2: `task` is \"high\", not a number");
        let err = parse_downstream(Path::new("down.csv"), "model,a,b\nvit,0.5\n").unwrap_err();
        assert!(format!("{err:#}").contains("down.csv: not valid CSV"), "{err:#}");
    }
}
