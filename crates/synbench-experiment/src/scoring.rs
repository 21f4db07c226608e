//! Scoring, in one place: per-scale records → SynBench-scores per ε and
//! threshold for each estimator and score mode, their jackknife standard
//! errors and 95 % intervals, the best ε, the score by train size
//! (finite-n) and the jackknife band of the bound curve. [`RunScores`] holds
//! every one of them, computed once per run; the table, `results.json`, the
//! figures, the CLI and the Python package all read it.
//!
//! The standard errors of both modes come from exact-mode replicate scores
//! ([`synbench_probe::jackknife`] says why): the reference estimator's is
//! `√(v_train + v_test)` of its train and test replicates, the population
//! estimator's `√v_train` (it reads no test sample).

use synbench_probe::jackknife::{reference_standard_error, standard_error};
use synbench_probe::{Averaging, T975};
use synbench_theory::{ScaleOutcome, ScoreMode, expected_bound_curve, reference_threshold_grid, synbench_scores};

use crate::error::{ExperimentError, Result};
use crate::options::Estimator;
use crate::schema::ScaleRecord;

/// Scores per threshold with their jackknife standard errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The score per threshold.
    pub scores: Vec<f64>,
    /// Its standard error per threshold (NaN without replicates).
    pub stderr: Vec<f64>,
}

impl Scored {
    /// The 95 % interval `(low, high)` at threshold index `t`.
    pub fn interval(&self, t: usize) -> (f64, f64) {
        interval(self.scores[t], self.stderr[t])
    }

    /// Whether any threshold has a standard error.
    pub fn has_stderr(&self) -> bool {
        self.stderr.iter().any(|s| s.is_finite())
    }
}

/// The 95 % interval `score ± t₀.₉₇₅·stderr` (t with G − 1 degrees of freedom).
pub fn interval(score: f64, stderr: f64) -> (f64, f64) {
    (score - T975 * stderr, score + T975 * stderr)
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
            (Estimator::Population, Draw::Full) => r.population.as_ref()?.get(e).copied(),
            (Estimator::Population, Draw::Train(g)) => r.replicates.get(g)?.population.as_ref()?.get(e).copied(),
            // The population estimate reads no test sample.
            (Estimator::Population, Draw::Test(_)) => r.population.as_ref()?.get(e).copied(),
        })
        .collect()
}

/// The exact-mode scores of one ε's delete-a-group replicates, each
/// `[group][threshold]`: `train` (the probe refitted without train group g)
/// and `test` (the fitted probe without test group g; for the population
/// estimator, which reads no test sample, the full estimate).
#[derive(Debug, Clone, PartialEq)]
pub struct Replicates {
    /// Per group, the train replicate's scores per threshold.
    pub train: Vec<Vec<f64>>,
    /// Per group, the test replicate's.
    pub test: Vec<Vec<f64>>,
}

/// Every ε's replicate scores ([`Replicates`]) of `estimator`; `None` when
/// the records carry fewer than two replicates or lack that estimator's.
/// Runs of one plan share their groups (the same samples), so the
/// difference of two runs' replicates is the replicate of their difference
/// ([`crate::compare`]).
pub fn replicate_scores(
    records: &[ScaleRecord],
    epsilons: &[f64],
    thresholds: &[f64],
    averaging: Averaging,
    estimator: Estimator,
) -> Result<Option<Vec<Replicates>>> {
    let raw: Vec<ScaleOutcome> = records.iter().map(|r| r.raw).collect();
    let groups = records.iter().map(|r| r.replicates.len()).min().unwrap_or(0);
    if groups < 2 {
        return Ok(None);
    }
    let mut all = Vec::with_capacity(epsilons.len());
    for e in 0..epsilons.len() {
        let scores = |draw: fn(usize) -> Draw| -> Result<Option<Vec<Vec<f64>>>> {
            let mut reps = Vec::with_capacity(groups);
            for g in 0..groups {
                match outcomes_of(records, e, averaging, estimator, draw(g)) {
                    Some(outcomes) => reps.push(synbench_scores(&outcomes, &raw, thresholds, ScoreMode::Exact)?),
                    None => return Ok(None),
                }
            }
            Ok(Some(reps))
        };
        let (Some(train), Some(test)) = (scores(Draw::Train)?, scores(Draw::Test)?) else { return Ok(None) };
        all.push(Replicates { train, test });
    }
    Ok(Some(all))
}

/// The standard error of `estimator` at threshold `t` from its replicates:
/// `√(v_train + v_test)` for the reference estimator, `√v_train` for the
/// population estimator (module doc).
pub fn replicate_standard_error(estimator: Estimator, replicates: &Replicates, t: usize) -> f64 {
    let at = |reps: &[Vec<f64>]| reps.iter().map(|r| r[t]).collect::<Vec<_>>();
    match estimator {
        Estimator::Reference => reference_standard_error(&at(&replicates.train), &at(&replicates.test)),
        Estimator::Population => standard_error(&at(&replicates.train)),
    }
}

/// Scores of per-scale records: per ε, per threshold, with standard errors
/// from the records' jackknife replicates (a replicate's score is the score
/// of its per-scale replicates, the same group left out at every scale).
/// `None` when the records do not carry that estimator's outcomes.
pub fn score_records(
    records: &[ScaleRecord],
    epsilons: &[f64],
    thresholds: &[f64],
    averaging: Averaging,
    mode: ScoreMode,
    estimator: Estimator,
) -> Result<Option<Vec<Scored>>> {
    let raw: Vec<ScaleOutcome> = records.iter().map(|r| r.raw).collect();
    let replicates = replicate_scores(records, epsilons, thresholds, averaging, estimator)?;
    let mut all = Vec::with_capacity(epsilons.len());
    for e in 0..epsilons.len() {
        let Some(rep) = outcomes_of(records, e, averaging, estimator, Draw::Full) else { return Ok(None) };
        let scores = synbench_scores(&rep, &raw, thresholds, mode)?;
        let stderr = (0..thresholds.len())
            .map(|t| replicates.as_ref().map_or(f64::NAN, |r| replicate_standard_error(estimator, &r[e], t)))
            .collect();
        all.push(Scored { scores, stderr });
    }
    Ok(Some(all))
}

/// How a run is scored: its `[probe] averaging` and `[score]` section, or
/// the overrides of `synbench score`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    /// Accuracy thresholds.
    pub thresholds: Vec<f64>,
    /// Averaging of the test outcomes.
    pub averaging: Averaging,
    /// The headline score mode (both are computed).
    pub mode: ScoreMode,
    /// The headline estimator (both are computed where the records carry them).
    pub estimator: Estimator,
}

/// One estimator's scores per ε in both modes.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeScores {
    /// Grid mode (the reference protocol's), per ε.
    pub reference: Vec<Scored>,
    /// Integral mode, per ε.
    pub exact: Vec<Scored>,
}

impl ModeScores {
    /// The scores of `mode`, per ε.
    pub fn of(&self, mode: ScoreMode) -> &[Scored] {
        match mode {
            ScoreMode::Reference => &self.reference,
            ScoreMode::Exact => &self.exact,
        }
    }
}

/// The scores at one train size: a nested prefix of the train split, or all
/// of it, in the headline mode.
#[derive(Debug, Clone, PartialEq)]
pub struct FiniteN {
    /// Train samples per scale.
    pub n_train: u64,
    /// The reference estimator's, per ε (standard errors at the full size only).
    pub reference: Vec<Scored>,
    /// The population estimator's, per ε, where the records carry it.
    pub population: Option<Vec<Scored>>,
}

impl FiniteN {
    /// The scores of `estimator`, if carried.
    pub fn of(&self, estimator: Estimator) -> Option<&[Scored]> {
        match estimator {
            Estimator::Reference => Some(&self.reference),
            Estimator::Population => self.population.as_deref(),
        }
    }
}

/// A point of a bound curve's band: `(threshold accuracy, low, high)`.
pub type BandPoint = (f64, f64, f64);

/// Everything scored of one run, each computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct RunScores {
    /// How it was scored.
    pub scoring: Scoring,
    /// Robustness levels (rows).
    pub epsilons: Vec<f64>,
    /// The estimator of the headline: the configured one, or the reference
    /// estimator where the records do not carry the configured one.
    pub headline: Estimator,
    /// The reference estimator's scores.
    pub reference: ModeScores,
    /// The population estimator's, where every record carries it (ℓ2
    /// attacks with `n_train − 2 > D`, scale files from version 3).
    pub population: Option<ModeScores>,
    /// The headline mode's scores at each nested train size the records
    /// carry, then at the full size (empty: the records carry no scales).
    pub finite_n: Vec<FiniteN>,
    /// Per ε: the pointwise 95 % band of the expected-bound curve on the
    /// reference threshold grid, from the jackknife replicates (`None`
    /// without replicates).
    pub bands: Vec<Option<Vec<BandPoint>>>,
}

impl RunScores {
    /// Scores `records` (in grid order, each complete for `epsilons`: the
    /// readers check that) of a run with `n_train` train samples per scale,
    /// as `scoring` says.
    pub fn compute(records: &[ScaleRecord], epsilons: &[f64], n_train: u64, scoring: Scoring) -> Result<Self> {
        let modes = |records: &[ScaleRecord], estimator| -> Result<Option<ModeScores>> {
            let score =
                |mode| score_records(records, epsilons, &scoring.thresholds, scoring.averaging, mode, estimator);
            Ok(match (score(ScoreMode::Reference)?, score(ScoreMode::Exact)?) {
                (Some(reference), Some(exact)) => Some(ModeScores { reference, exact }),
                _ => None,
            })
        };
        let reference = modes(records, Estimator::Reference)?.ok_or_else(|| {
            ExperimentError::Table(format!(
                "a scale record lacks the reference outcomes of one of the {} ε values: it was not read through \
                 the run folder's checks",
                epsilons.len()
            ))
        })?;
        let population = modes(records, Estimator::Population)?;
        let headline = if scoring.estimator == Estimator::Population && population.is_some() {
            Estimator::Population
        } else {
            Estimator::Reference
        };
        let mut finite_n = nested_scores(records, epsilons, &scoring)?;
        if !records.is_empty() {
            finite_n.push(FiniteN {
                n_train,
                reference: reference.of(scoring.mode).to_vec(),
                population: population.as_ref().map(|p| p.of(scoring.mode).to_vec()),
            });
        }
        let bands = (0..epsilons.len()).map(|e| bound_band(records, e, scoring.averaging)).collect::<Result<_>>()?;
        Ok(Self { scoring, epsilons: epsilons.to_vec(), headline, reference, population, finite_n, bands })
    }

    /// One estimator's scores in both modes, if carried.
    pub fn estimator(&self, estimator: Estimator) -> Option<&ModeScores> {
        match estimator {
            Estimator::Reference => Some(&self.reference),
            Estimator::Population => self.population.as_ref(),
        }
    }

    /// `estimator`'s scores per ε in the headline mode, if carried.
    pub fn scored(&self, estimator: Estimator) -> Option<&[Scored]> {
        self.estimator(estimator).map(|m| m.of(self.scoring.mode))
    }

    /// The headline scores per ε (headline estimator and mode).
    pub fn headline_scores(&self) -> &[Scored] {
        self.scored(self.headline).unwrap_or(self.reference.of(self.scoring.mode))
    }

    /// The ε with the highest headline score per threshold.
    pub fn best_epsilons(&self) -> Vec<Option<f64>> {
        let scores: Vec<&[f64]> = self.headline_scores().iter().map(|s| s.scores.as_slice()).collect();
        best_epsilons(&self.epsilons, &scores, self.scoring.thresholds.len())
    }
}

/// The ε with the highest score per threshold, `scores[e][t]` being ε index
/// `e`'s at threshold `t` (NaN never wins; ties keep the smaller ε, listed
/// first).
pub fn best_epsilons(epsilons: &[f64], scores: &[&[f64]], thresholds: usize) -> Vec<Option<f64>> {
    (0..thresholds)
        .map(|t| {
            let mut best: Option<(f64, f64)> = None;
            for (&epsilon, s) in epsilons.iter().zip(scores) {
                let s = s[t];
                if !s.is_nan() && best.is_none_or(|(_, b)| s > b) {
                    best = Some((epsilon, s));
                }
            }
            best.map(|(e, _)| e)
        })
        .collect()
}

/// The scores at each nested train size every record carries (in the
/// headline mode; no replicates, so no standard errors).
fn nested_scores(records: &[ScaleRecord], epsilons: &[f64], scoring: &Scoring) -> Result<Vec<FiniteN>> {
    let sizes: Vec<u64> = records.first().map(|r| r.nested.iter().map(|n| n.n_train).collect()).unwrap_or_default();
    let mut out = Vec::new();
    for (k, &n_train) in sizes.iter().enumerate() {
        if !records.iter().all(|r| r.nested.get(k).is_some_and(|n| n.n_train == n_train)) {
            continue;
        }
        let prefix: Vec<ScaleRecord> = records
            .iter()
            .map(|r| ScaleRecord {
                epsilons: r.nested[k].epsilons.clone(),
                population: r.nested[k].population.clone(),
                replicates: Vec::new(),
                nested: Vec::new(),
                ..r.clone()
            })
            .collect();
        let score = |estimator| {
            score_records(&prefix, epsilons, &scoring.thresholds, scoring.averaging, scoring.mode, estimator)
        };
        let Some(reference) = score(Estimator::Reference)? else { continue };
        out.push(FiniteN { n_train, reference, population: score(Estimator::Population)? });
    }
    Ok(out)
}

/// The pointwise 95 % band of ε index `e`'s expected-bound curve on the
/// reference threshold grid: `centre ± t₀.₉₇₅·se` (the low end clipped at 0)
/// where both are finite, `se` from the train and test replicates' curves.
fn bound_band(records: &[ScaleRecord], e: usize, averaging: Averaging) -> Result<Option<Vec<BandPoint>>> {
    let groups = records.iter().map(|r| r.replicates.len()).min().unwrap_or(0);
    if groups < 2 {
        return Ok(None);
    }
    let grid = reference_threshold_grid();
    let curve = |draw| -> Result<Option<Vec<f64>>> {
        match outcomes_of(records, e, averaging, Estimator::Reference, draw) {
            Some(outcomes) => Ok(Some(expected_bound_curve(&outcomes, &grid)?)),
            None => Ok(None),
        }
    };
    let Some(centre) = curve(Draw::Full)? else { return Ok(None) };
    let (mut train, mut test) = (Vec::with_capacity(groups), Vec::with_capacity(groups));
    for g in 0..groups {
        let (Some(a), Some(b)) = (curve(Draw::Train(g))?, curve(Draw::Test(g))?) else { return Ok(None) };
        train.push(a);
        test.push(b);
    }
    Ok(Some(
        (0..grid.len())
            .filter_map(|k| {
                let at = |reps: &[Vec<f64>]| reps.iter().map(|r| r[k]).collect::<Vec<_>>();
                let se = reference_standard_error(&at(&train), &at(&test));
                let c = centre[k];
                (c.is_finite() && se.is_finite()).then(|| (grid[k], (c - T975 * se).max(0.0), c + T975 * se))
            })
            .collect(),
    ))
}
