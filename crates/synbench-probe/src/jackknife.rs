//! Delete-a-group jackknife replicates of one scale (SPEC §7).
//!
//! Sample `i` of a split belongs to group `i mod G`. For each group `g` a
//! replicate holds
//!
//! * the **test replicate**: the fitted probe on the test split without
//!   group `g`, tallied in the evaluation's own batches
//!   ([`crate::ProbeEvaluator::with_groups`]);
//! * the **train replicate**: the probe refitted without group `g` of the
//!   train split (its statistics are the full ones with the group's
//!   removed, [`ClassStatistics::without`], so nothing is refolded),
//!   evaluated as a smooth function of the test split's class moments
//!   ([`BayesProbe::gaussian_outcomes`]);
//! * the population estimate without group `g` of the train split.
//!
//! The experiment deletes the same group at every scale; a score's replicate
//! is the score of those per-scale replicates, and the spread of the G
//! replicate scores gives a variance (Quenouille–Tukey):
//! `v = (G − 1)/G · Σ_g (θ₋g − θ̄)²`.
//!
//! # Why the reference estimator's variance is `v_test + v_train` so
//!
//! Write the score `θ(train, test)` as a main effect of each split and
//! their interaction: `Var θ = V_train + V_test + V_×`. Given the probe, the
//! test replicates see `V_test + V_×` — the test samples' own noise and how
//! the probe's direction moves the boundary across them — and estimate it
//! without bias, as for any smooth function of test means. What remains is
//! `V_train`, the spread of the probe's *expected* outcome over train
//! samples. Refitted probes evaluated on the same test samples would count
//! `V_×` a second time (measured on the linear-Gaussian oracle at D = 64:
//! `V_×` is about half the variance, `V_train` a fifth), so each refit is
//! evaluated instead on Gaussian projections with the test split's class
//! moments, which move with the direction but not with individual test
//! samples. Both parts are taken from the exact-mode (integral) score: the
//! reference mode's grid of 100 thresholds makes the score a step function
//! of each accuracy, with steps (0.004) wider than a replicate's shift of
//! it, and the jackknife of a step function overstates its variance (as
//! for the median); the two modes' scores differ by the discretisation only,
//! and their seed-to-seed spreads within a few per cent.
//!
//! On the oracle (D = 64, flat and decaying spectra, 100 seeds, ε = 0,
//! t = 0.6–0.9) the seed-to-seed sd over the mean standard error so formed
//! is 0.93–1.13; re-cut test batches and the refits' test outcomes with the
//! Efron–Stein factor on them gave 0.70–0.90.
//!
//! The population estimate reads no test sample and is a smooth function
//! of the train moments: its standard error is `√v_train` of its own
//! replicates.
//!
//! The refits of [`replicates`] and [`nested`] are independent: they run in
//! parallel on the calling rayon pool, each computed exactly as alone and
//! collected in order, so the results do not depend on the thread count.

use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;
use synbench_theory::ScaleOutcome;

use crate::bayes::{BayesProbe, BayesProbeValidParams, EpsilonOutcome};
use crate::error::Result;
use crate::stats::ClassStatistics;

/// Groups of the jackknife. Ten replicates cost ten eigendecompositions per
/// scale (≈ 1 s at D = 768 on two cores, 49 scales: ≈ 50 s).
pub const JACKKNIFE_GROUPS: usize = 10;

/// Student's t quantile t₀.₉₇₅ with `JACKKNIFE_GROUPS − 1` = 9 degrees of
/// freedom: the 95 % interval is `estimate ± T975·se`.
pub const T975: f64 = 2.262_157_162_740_992;

/// Samples left in the smallest delete-a-group replicate of `n` samples:
/// group 0 (the samples `≡ 0 (mod groups)`) is the largest, `⌈n/groups⌉`.
pub fn smallest_replicate(n: u64, groups: usize) -> u64 {
    n - n.div_ceil(groups as u64)
}

/// One split's features, row `i` being sample `i` of the split.
#[derive(Debug, Clone)]
pub struct HeldSplit {
    /// `[n, d]` features.
    pub features: Array2<f32>,
    /// Labels in {0, 1}.
    pub labels: Array1<u8>,
}

impl HeldSplit {
    fn rows(&self, keep: impl Fn(usize) -> bool) -> (Array2<f32>, Array1<u8>) {
        let rows: Vec<usize> = (0..self.labels.len()).filter(|&i| keep(i)).collect();
        (self.features.select(Axis(0), &rows), self.labels.select(Axis(0), &rows))
    }
}

/// What one replicate measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Replicate {
    /// The probe refitted without the group, as Gaussian projections with the
    /// test split's class moments, per ε (module doc).
    pub train: Vec<ScaleOutcome>,
    /// The fitted probe on the test split without the group, per ε.
    pub test: Vec<EpsilonOutcome>,
    /// The population estimate per ε without the group's train samples (ℓ2 only).
    pub population: Option<Vec<ScaleOutcome>>,
}

/// The delete-a-group replicates of one scale whose full train statistics
/// are `train_stats` (folded from exactly the rows of `train`) and whose
/// probe fitted on them is `probe`, given the test replicates `tests` of
/// that probe: what [`crate::ProbeEvaluator::finish_with_groups`] returns
/// for an evaluator [`with_groups`](crate::ProbeEvaluator::with_groups)
/// that folded `test` (the run's own evaluation pass; [`test_replicates`]
/// makes one). The population replicates come calibrated
/// ([`calibrate_population`]).
pub fn replicates(
    params: &BayesProbeValidParams,
    probe: &BayesProbe,
    train_stats: &ClassStatistics,
    train: &HeldSplit,
    test: &HeldSplit,
    tests: Vec<Vec<EpsilonOutcome>>,
) -> Result<Vec<Replicate>> {
    let groups = tests.len();
    let test_moments = ClassStatistics::from_batch(test.features.view(), test.labels.view())?;
    let (mut replicates, at_zero): (Vec<Replicate>, Vec<Option<ScaleOutcome>>) = tests
        .into_par_iter()
        .enumerate()
        .map(|(g, test)| {
            let (features, labels) = train.rows(|i| i % groups == g);
            let part = ClassStatistics::from_batch(features.view(), labels.view())?;
            let refit = params.fit(&train_stats.without(&part)?)?;
            // The probe's ε and ε = 0 for the calibration, from one gathering of the moments.
            let epsilons: Vec<f64> = params.epsilons().iter().copied().chain([0.0]).collect();
            let mut population = refit.population_outcomes_at(&epsilons);
            let at_zero = population.as_mut().and_then(Vec::pop);
            Ok((Replicate { train: refit.gaussian_outcomes(&test_moments)?, test, population }, at_zero))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let full = probe.population_outcomes_at(&[0.0]).and_then(|o| o.first().copied());
    if let (Some(full), Some(at_zero)) = (full, at_zero.into_iter().collect::<Option<Vec<_>>>()) {
        let factor = population_calibration(full.accuracy, &at_zero, probe.counts(), probe.dim());
        calibrate_population(&mut replicates, factor);
    }
    Ok(replicates)
}

/// The factor `c = V/v_J` of the population replicates at one scale: `V`
/// the closed-form variance
/// of the ε = 0 estimate `f̂` of the squared Mahalanobis half-distance
/// ([`synbench_theory::mahalanobis_estimate_variance`], `f̂ = Φ⁻¹(a)²`
/// from the estimated accuracy `a`), `v_J` the jackknife variance of the
/// replicates' `f̂` (`at_zero`: each replicate's ε = 0 population
/// outcome). `1` (no calibration) where the scale is at chance in any of
/// them, or either variance is not finite and positive.
pub fn population_calibration(accuracy: f64, at_zero: &[ScaleOutcome], counts: [u64; 2], dim: usize) -> f64 {
    let signal = |a: f64| (a > 0.5).then(|| synbench_theory::normal::quantile(a).powi(2));
    let Some(replicated) = at_zero.iter().map(|o| signal(o.accuracy)).collect::<Option<Vec<f64>>>() else {
        return 1.0;
    };
    let Some(closed) = signal(accuracy).and_then(|f| synbench_theory::mahalanobis_estimate_variance(f, counts, dim))
    else {
        return 1.0;
    };
    let jackknife = standard_error(&replicated).powi(2);
    let factor = closed / jackknife;
    if factor.is_finite() && factor > 0.0 { factor } else { 1.0 }
}

/// Scales every population replicate's deviation from the replicates' mean
/// by `√factor`, per ε, in accuracy and bound: their jackknife variance
/// becomes `factor` times what it was, their mean stays.
pub fn calibrate_population(replicates: &mut [Replicate], factor: f64) {
    if factor == 1.0 {
        return;
    }
    let shrink = factor.sqrt();
    let Some(mut populations) = replicates.iter_mut().map(|r| r.population.as_mut()).collect::<Option<Vec<_>>>() else {
        return;
    };
    let g = populations.len() as f64;
    let epsilons = populations.first().map_or(0, |p| p.len());
    for e in 0..epsilons {
        let accuracy = populations.iter().map(|p| p[e].accuracy).sum::<f64>() / g;
        let bound = populations.iter().map(|p| p[e].scaled_bound).sum::<f64>() / g;
        for p in populations.iter_mut() {
            p[e].accuracy = accuracy + shrink * (p[e].accuracy - accuracy);
            p[e].scaled_bound = bound + shrink * (p[e].scaled_bound - bound);
        }
    }
}

/// The full evaluation of `probe` on `test` and its `groups` test
/// replicates, in one pass.
pub fn test_replicates(
    probe: &BayesProbe,
    test: &HeldSplit,
    groups: usize,
) -> Result<(Vec<EpsilonOutcome>, Vec<Vec<EpsilonOutcome>>)> {
    let mut evaluator = probe.evaluator().with_groups(groups);
    evaluator.fold(test.features.view(), test.labels.view())?;
    Ok(evaluator.finish_with_groups())
}

/// The probe fitted on a prefix of the train split.
#[derive(Debug, Clone, PartialEq)]
pub struct Nested {
    /// Train samples used (the first `n_train` of the split).
    pub n_train: u64,
    /// The plug-in probe per ε, on the whole test split.
    pub epsilons: Vec<EpsilonOutcome>,
    /// The population estimate per ε from those train samples.
    pub population: Option<Vec<ScaleOutcome>>,
}

/// The nested train sizes `n/4` and `n/2` of a split of `n` samples at
/// feature width `dim` whose pooled covariance is not singular
/// ([`synbench_theory::population_estimable`]), smallest first; the full
/// split is the run itself.
pub fn nested_sizes(n: u64, dim: usize) -> Vec<u64> {
    [n / 4, n / 2].into_iter().filter(|&m| m >= 4 && m < n && synbench_theory::population_estimable(m, dim)).collect()
}

/// The probe refitted on the first `size` train samples for each of
/// `sizes`, evaluated on the whole test split: how far from converged in n
/// the reference estimator is, beside the population estimate.
pub fn nested(
    params: &BayesProbeValidParams,
    train: &HeldSplit,
    test: &HeldSplit,
    sizes: &[u64],
) -> Result<Vec<Nested>> {
    sizes
        .par_iter()
        .map(|&size| {
            let (features, labels) = train.rows(|i| (i as u64) < size);
            let probe = params.fit(&ClassStatistics::from_batch(features.view(), labels.view())?)?;
            let epsilons = probe.evaluate(test.features.view(), test.labels.view())?;
            Ok(Nested { n_train: size, epsilons, population: probe.population_outcomes() })
        })
        .collect()
}

/// The reference estimator's standard error from its train and test
/// replicate scores (module doc): `√(v_train + v_test)`.
pub fn reference_standard_error(train: &[f64], test: &[f64]) -> f64 {
    standard_error(train).hypot(standard_error(test))
}

/// The jackknife standard error of `estimate` from its replicates (NaN when
/// any replicate is NaN or there are fewer than two).
pub fn standard_error(replicates: &[f64]) -> f64 {
    let g = replicates.len() as f64;
    if replicates.len() < 2 {
        return f64::NAN;
    }
    let mean = replicates.iter().sum::<f64>() / g;
    ((g - 1.0) / g * replicates.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>()).sqrt()
}
