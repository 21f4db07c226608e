//! Two runs compared: the score difference of model A and model B per ε
//! and threshold, both estimators, with a paired standard error.
//!
//! Runs of one plan apart from the model (the same data seed, scales,
//! sample counts, ε, thresholds and probe) see the same synthetic samples,
//! and their jackknife groups hold the same samples (group g: the samples
//! `≡ g (mod 10)` of each split). So the replicate of the difference is the
//! difference of the replicates, `d_g = s_A(−g) − s_B(−g)`, and its
//! delete-a-group jackknife ([`synbench_probe::jackknife::standard_error`]
//! on the `d_g`; for the reference estimator `√(v_train + v_test)` of the
//! train and test replicates, as a run's own interval) measures the
//! difference's own sampling variability: what the two runs share cancels.
//! Two intervals that overlap can hide a difference the paired interval
//! resolves; the unpaired standard error `√(se_A² + se_B²)` is reported
//! beside it for that comparison. The interval is `d ± t₀.₉₇₅·se` with the
//! replicates' 9 degrees of freedom, as a run's own.

use std::fmt::Write as _;

use synbench_theory::ScoreMode;

use crate::error::{ExperimentError, Result};
use crate::options::Estimator;
use crate::resolved::PlanChange;
use crate::saved::SavedRun;
use crate::scoring::{Replicates, replicate_scores, replicate_standard_error};
use crate::table::csv_field;

/// One difference: estimator, ε and threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The estimator.
    pub estimator: Estimator,
    /// ε.
    pub epsilon: f64,
    /// The threshold.
    pub threshold: f64,
    /// Model A's score.
    pub a: f64,
    /// Model B's score.
    pub b: f64,
    /// The paired standard error of `a − b` (NaN without replicates).
    pub stderr: f64,
    /// `√(se_A² + se_B²)`: what the two runs' own intervals imply.
    pub unpaired_stderr: f64,
}

impl Difference {
    /// `a − b`.
    pub fn difference(&self) -> f64 {
        self.a - self.b
    }

    /// The paired 95 % interval of `a − b`.
    pub fn interval(&self) -> (f64, f64) {
        crate::scoring::interval(self.difference(), self.stderr)
    }

    /// Whether the paired interval excludes 0.
    pub fn significant(&self) -> bool {
        let (lo, hi) = self.interval();
        lo > 0.0 || hi < 0.0
    }
}

/// Model A against model B (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Model A's name (its folder's).
    pub a: String,
    /// Model B's.
    pub b: String,
    /// The runs' score mode (of the point differences; the replicates are
    /// scored in exact mode, as a run's own intervals).
    pub mode: ScoreMode,
    /// Thresholds.
    pub thresholds: Vec<f64>,
    /// ε values.
    pub epsilons: Vec<f64>,
    /// Every difference: per estimator both runs carry, per ε, per threshold.
    pub rows: Vec<Difference>,
}

/// The run's label: its folder's name, else its model's.
fn label(run: &SavedRun) -> String {
    run.dir.file_name().map_or_else(|| run.model.clone(), |n| n.to_string_lossy().into_owned())
}

/// Compares `a` with `b`: runs of one plan apart from the model (else an
/// error naming each differing field), with the same finished scales.
pub fn compare(a: &SavedRun, b: &SavedRun) -> Result<Comparison> {
    let (name_a, name_b) = (label(a), label(b));
    let changes: Vec<PlanChange> = b.plan.protocol_changes_from(&a.plan);
    if !changes.is_empty() {
        let listed: Vec<String> = changes.iter().map(ToString::to_string).collect();
        return Err(ExperimentError::Table(format!(
            "{} and {} are not runs of one protocol: a paired comparison needs the same data, probe and score \
             settings, and they differ in {}",
            a.dir.display(),
            b.dir.display(),
            listed.join("; ")
        )));
    }
    let scales = |r: &SavedRun| r.records.iter().map(|r| r.index).collect::<Vec<_>>();
    if scales(a) != scales(b) {
        return Err(ExperimentError::Table(format!(
            "{} has {} finished scales and {} has {}: compare runs with the same finished scales (finish both, \
             or compare partial runs at the same point)",
            a.dir.display(),
            a.records.len(),
            b.dir.display(),
            b.records.len()
        )));
    }
    if a.records.iter().zip(&b.records).any(|(x, y)| x.raw != y.raw || x.scale != y.scale) {
        return Err(ExperimentError::Table(format!(
            "{} and {} hold different raw-data references at the same scales: their scale files are not of one \
             protocol",
            a.dir.display(),
            b.dir.display()
        )));
    }
    let (sa, sb) = (a.scores()?, b.scores()?);
    let mode = a.mode;
    let thresholds = a.thresholds.clone();
    let mut rows = Vec::new();
    for estimator in Estimator::ALL {
        let (Some(ma), Some(mb)) = (sa.estimator(estimator), sb.estimator(estimator)) else { continue };
        let (ra, rb) = (
            replicate_scores(&a.records, &a.epsilons, &thresholds, a.averaging, estimator)?,
            replicate_scores(&b.records, &b.epsilons, &thresholds, b.averaging, estimator)?,
        );
        for (e, &epsilon) in a.epsilons.iter().enumerate() {
            let (xa, xb) = (&ma.of(mode)[e], &mb.of(mode)[e]);
            for (t, &threshold) in thresholds.iter().enumerate() {
                let stderr = match (&ra, &rb) {
                    (Some(ra), Some(rb)) => replicate_standard_error(estimator, &difference(&ra[e], &rb[e]), t),
                    _ => f64::NAN,
                };
                rows.push(Difference {
                    estimator,
                    epsilon,
                    threshold,
                    a: xa.scores[t],
                    b: xb.scores[t],
                    stderr,
                    unpaired_stderr: xa.stderr[t].hypot(xb.stderr[t]),
                });
            }
        }
    }
    Ok(Comparison { a: name_a, b: name_b, mode, thresholds, epsilons: a.epsilons.clone(), rows })
}

/// The replicates of `a − b`, group by group.
pub fn difference(a: &Replicates, b: &Replicates) -> Replicates {
    let minus = |x: &[Vec<f64>], y: &[Vec<f64>]| -> Vec<Vec<f64>> {
        x.iter().zip(y).map(|(p, q)| p.iter().zip(q).map(|(u, v)| u - v).collect()).collect()
    };
    Replicates { train: minus(&a.train, &b.train), test: minus(&a.test, &b.test) }
}

impl Comparison {
    fn of(&self, estimator: Estimator) -> impl Iterator<Item = &Difference> {
        self.rows.iter().filter(move |r| r.estimator == estimator)
    }

    /// One line per threshold: the verdict of the first estimator at each ε.
    pub fn verdicts(&self, estimator: Estimator) -> Vec<String> {
        self.thresholds
            .iter()
            .map(|&t| {
                let parts: Vec<String> = self
                    .of(estimator)
                    .filter(|r| r.threshold == t)
                    .map(|r| {
                        let (lo, hi) = r.interval();
                        let verdict = if !r.stderr.is_finite() {
                            "no interval".to_string()
                        } else if lo > 0.0 {
                            format!("{} higher", self.a)
                        } else if hi < 0.0 {
                            format!("{} higher", self.b)
                        } else {
                            "not distinguishable".to_string()
                        };
                        format!("ε = {}: {:+.4} [{:+.4}, {:+.4}] {verdict}", r.epsilon, r.difference(), lo, hi)
                    })
                    .collect();
                format!("t = {t}: {}", parts.join("; "))
            })
            .collect()
    }

    /// Markdown: per estimator, a table of the differences with their
    /// paired intervals beside the unpaired standard error, then the verdicts.
    pub fn markdown(&self) -> String {
        let mut out = format!("{} − {} ({} score mode)\n", self.a, self.b, self.mode.name());
        for estimator in Estimator::ALL {
            if self.of(estimator).next().is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "\n### {} estimator\n\n| ε | t | {} | {} | A − B | paired 95 % interval | paired se | unpaired se |\n\
                 |---:|---:|---:|---:|---:|---:|---:|---:|",
                estimator.name(),
                self.a,
                self.b
            );
            for r in self.of(estimator) {
                let (lo, hi) = r.interval();
                let _ = writeln!(
                    out,
                    "| {} | {} | {:.4} | {:.4} | {:+.4} | [{:+.4}, {:+.4}]{} | {:.4} | {:.4} |",
                    r.epsilon,
                    r.threshold,
                    r.a,
                    r.b,
                    r.difference(),
                    lo,
                    hi,
                    if r.significant() { " *" } else { "" },
                    r.stderr,
                    r.unpaired_stderr
                );
            }
            out.push('\n');
            for line in self.verdicts(estimator) {
                let _ = writeln!(out, "- {line}");
            }
        }
        out.push_str("\n`*`: the paired 95 % interval excludes 0. Paired over the runs' common jackknife groups.\n");
        out
    }

    /// CSV (pandas: `pd.read_csv`): one row per estimator, ε and threshold.
    pub fn csv(&self) -> String {
        let mut out = String::from(
            "model_a,model_b,estimator,epsilon,threshold,score_a,score_b,difference,stderr,ci_low,ci_high,unpaired_stderr,significant\n",
        );
        for r in &self.rows {
            let (lo, hi) = r.interval();
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{}",
                csv_field(&self.a),
                csv_field(&self.b),
                r.estimator.name(),
                r.epsilon,
                r.threshold,
                r.a,
                r.b,
                r.difference(),
                r.stderr,
                lo,
                hi,
                r.unpaired_stderr,
                r.significant()
            );
        }
        out
    }
}
