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
//! replicates, calibrated per scale as follows.
//!
//! # Why the population replicates are calibrated by a closed form
//!
//! The delete-a-group jackknife variance is biased upward (Efron & Stein,
//! *The jackknife estimate of variance*, Ann. Statist. 9, 1981): by the
//! variance of the estimator's interaction terms, which for the population
//! estimate grow with the random-matrix correction, that is with D/n.
//! Measured on Gaussian features (n = 2048, accuracy 0.80, one scale,
//! 50–300 seeds), the seed-to-seed sd over the jackknife's se is 0.83 at
//! D/n = 0.1, 0.86 at 0.25 and 0.62 at 0.5. The second-order
//! (delete-two) correction does not repair it: the share of the delete-two
//! interactions that would make the jackknife right is 0.95, 0.26, 0.28 at
//! those widths, not one constant, and it needs 45 more refits.
//!
//! At ε = 0 the estimate's variance has a closed form for Gaussian
//! features ([`synbench_theory::mahalanobis_estimate_variance`], from
//! the Wishart distribution of the pooled covariance, Muirhead 1982,
//! Thm 3.2.12): for the estimator's signal `f̂`, the squared Mahalanobis
//! half-distance before it is clipped at chance (the ε = 0 accuracy is
//! `Φ(√f̂)`, [`BayesProbe::population_signal`]), the accuracy's sd over
//! seeds over the closed form's se is 0.91 (300 seeds), 1.06 (300) and
//! 0.98 (50) at those widths. Each scale's population replicates are
//! therefore rescaled about their mean so that the jackknife variance of
//! their `f̂` equals the closed form at the full `f̂` ([`calibrate`]); the
//! same factor applies at every ε, whose estimates move with the same
//! train moments. The jackknife keeps what the closed form lacks: the
//! shape of the replicates across scales, thresholds and ε, and the
//! score's dependence on them. The cost is one pass over each refit's
//! spectrum (no eigendecomposition). Where the features are not Gaussian
//! the factor is the Gaussian model's; where the closed form does not
//! exist (`ν − D + 1 ≤ 4`) the replicates stay as they are. The signal is
//! taken unclipped so that scales near chance, where some replicates are
//! clipped, are calibrated too.
//!
//! # Why the train replicates are calibrated the same way
//!
//! The reference estimator's `v_train` is biased upward more still: the
//! plug-in probe's conditional accuracy concentrates in high dimension,
//! while a refit without a tenth of the samples moves it by its
//! higher-order terms. Measured per scale (n = 512, ε = 0, 50–300 seeds),
//! the train replicates' jackknife variance is 4.3× the plug-in accuracy's
//! actual train variance at D/n = 0.1 and 6.9× at 0.5, which puts the
//! reference interval's sd/se at 0.68 at D/n = 0.5. The actual variance
//! has no simple closed form, but it depends only on `(f, D, n₁, n₀)`
//! (the ε = 0 probe is affine invariant), and in the white frame reduces
//! exactly to a few scalars per draw
//! ([`synbench_theory::plug_in_accuracy_variance`]: O(D) a draw, 2048
//! draws; the seed-to-seed variance over it is 0.96 at D/n = 0.5 and
//! 1.11–1.20 at D/n = 0.1, D ≤ 51, where the spectrum's own fluctuation
//! that it leaves out is not negligible). Where the probe has ε = 0 and the pooled
//! covariance, each scale's train replicates are rescaled so that their
//! ε = 0 accuracy's jackknife variance is that value at the population
//! estimate's `f̂`; `v_test` is left as it is (a test mean's jackknife is
//! unbiased). The interval keeps its meaning: the reference estimate's own
//! sampling variability. Per scale the reference sd/se becomes 1.07
//! (D/n = 0.1, 300 seeds), 1.09 (0.25) and 1.02 (0.5), from 0.95, 0.86,
//! 0.68.
//!
//! The refits of [`replicates`] and [`nested`] are independent: they run in
//! parallel on the calling rayon pool, each computed exactly as alone and
//! collected in order, so the results do not depend on the thread count.

use ndarray::{Array1, Array2, Axis};
use rayon::prelude::*;
use synbench_theory::ScaleOutcome;

use crate::bayes::{BayesProbe, BayesProbeValidParams, CovarianceEstimator, EpsilonOutcome};
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
/// makes one), [`calibrate`]d.
pub fn replicates(
    params: &BayesProbeValidParams,
    probe: &BayesProbe,
    train_stats: &ClassStatistics,
    train: &HeldSplit,
    test: &HeldSplit,
    tests: Vec<Vec<EpsilonOutcome>>,
) -> Result<Vec<Replicate>> {
    let (mut replicates, signals) = uncalibrated_replicates(params, train_stats, train, test, tests)?;
    calibrate(&ClosedForms::of(params, probe), &mut replicates, &signals);
    Ok(replicates)
}

/// The train-sampling variances that [`calibrate`] gives one scale's
/// replicates, at the full probe's population signal `f̂` (clipped at 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClosedForms {
    /// [`synbench_theory::mahalanobis_estimate_variance`]: of `f̂`.
    pub population: Option<f64>,
    /// [`synbench_theory::plug_in_accuracy_variance`]: of the ε = 0
    /// accuracy, with the index of ε = 0 among the probe's; `None` unless
    /// the probe has ε = 0 and the pooled covariance.
    pub train: Option<(usize, f64)>,
}

impl ClosedForms {
    /// The closed forms of `probe`, fitted with `params`; both `None` where
    /// its population estimate is not defined.
    pub fn of(params: &BayesProbeValidParams, probe: &BayesProbe) -> Self {
        let Some(full) = probe.population_signal().map(|f| f.max(0.0)) else {
            return ClosedForms { population: None, train: None };
        };
        let (counts, dim) = (probe.counts(), probe.dim());
        let zero = params.epsilons().iter().position(|&e| e == 0.0);
        let train = match (zero, params.estimator()) {
            (Some(zero), CovarianceEstimator::Pooled) => {
                synbench_theory::plug_in_accuracy_variance(full, counts, dim).map(|v| (zero, v))
            }
            _ => None,
        };
        ClosedForms { population: synbench_theory::mahalanobis_estimate_variance(full, counts, dim), train }
    }
}

/// The replicates of [`replicates`] as the refits give them, each with
/// its population signal `f̂` (what [`calibrate`] reads; `None` where the
/// population estimate is not defined).
pub fn uncalibrated_replicates(
    params: &BayesProbeValidParams,
    train_stats: &ClassStatistics,
    train: &HeldSplit,
    test: &HeldSplit,
    tests: Vec<Vec<EpsilonOutcome>>,
) -> Result<(Vec<Replicate>, Vec<Option<f64>>)> {
    let groups = tests.len();
    let test_moments = ClassStatistics::from_batch(test.features.view(), test.labels.view())?;
    Ok(tests
        .into_par_iter()
        .enumerate()
        .map(|(g, test)| {
            let (features, labels) = train.rows(|i| i % groups == g);
            let part = ClassStatistics::from_batch(features.view(), labels.view())?;
            let refit = params.fit(&train_stats.without(&part)?)?;
            let (population, signal) = refit.population_estimate().unzip();
            Ok((Replicate { train: refit.gaussian_outcomes(&test_moments)?, test, population }, signal))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip())
}

/// Calibrates one scale's replicates (module doc): the population
/// replicates so that the jackknife variance of their signals `signals`
/// (each replicate's [`BayesProbe::population_signal`]) is
/// `closed.population`, the train replicates so that the jackknife
/// variance of their ε = 0 accuracy is `closed.train`. Nothing changes
/// where a closed form or a signal is missing.
pub fn calibrate(closed: &ClosedForms, replicates: &mut [Replicate], signals: &[Option<f64>]) {
    if let Some(signals) = signals.iter().copied().collect::<Option<Vec<f64>>>() {
        let factor = calibration(closed.population, &signals);
        rescale(replicates.iter_mut().filter_map(|r| r.population.as_mut()).collect(), factor);
    }
    if let Some((zero, variance)) = closed.train {
        let accuracies: Vec<f64> = replicates.iter().map(|r| r.train[zero].accuracy).collect();
        let factor = calibration(Some(variance), &accuracies);
        rescale(replicates.iter_mut().map(|r| &mut r.train).collect(), factor);
    }
}

/// The factor `V/v_J` that makes the jackknife variance of the replicate
/// values `replicated` the closed form `closed` (module doc); `1` (no
/// calibration) where either is not finite and positive.
pub fn calibration(closed: Option<f64>, replicated: &[f64]) -> f64 {
    let factor = closed.map_or(f64::NAN, |c| c / standard_error(replicated).powi(2));
    if factor.is_finite() && factor > 0.0 { factor } else { 1.0 }
}

/// Scales every replicate's deviation from the replicates' mean by
/// `√factor`, per ε, in accuracy and bound: their jackknife variance
/// becomes `factor` times what it was, their mean stays. `replicates` holds
/// one estimator's per-ε outcomes of each replicate. A widened replicate
/// stays an outcome: its accuracy within [0, 1], its bound at or above 0
/// (a replicate at chance, (0.5, 0), next to ones above it would otherwise
/// be pushed below).
pub fn rescale(mut replicates: Vec<&mut Vec<ScaleOutcome>>, factor: f64) {
    if factor == 1.0 || replicates.is_empty() {
        return;
    }
    let shrink = factor.sqrt();
    let g = replicates.len() as f64;
    for e in 0..replicates[0].len() {
        let accuracy = replicates.iter().map(|p| p[e].accuracy).sum::<f64>() / g;
        let bound = replicates.iter().map(|p| p[e].scaled_bound).sum::<f64>() / g;
        for p in replicates.iter_mut() {
            p[e].accuracy = (accuracy + shrink * (p[e].accuracy - accuracy)).clamp(0.0, 1.0);
            p[e].scaled_bound = (bound + shrink * (p[e].scaled_bound - bound)).max(0.0);
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
