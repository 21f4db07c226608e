//! Delete-a-group jackknife replicates of one scale (SPEC §7), for each
//! group g: the probe refitted without group g of the train split and
//! evaluated on the whole test split (the train replicate), and the fitted
//! probe evaluated without group g of the test split (the test replicate).
//!
//! Sample `i` of a split belongs to group `i mod G`. A train replicate's
//! statistics are the full statistics with that group's removed
//! ([`ClassStatistics::without`]), so the rest is never refolded. The
//! experiment deletes the same group at every scale; a score's replicate is
//! then the score of those per-scale replicates, and the spread of the G
//! replicate scores gives a variance (Quenouille–Tukey):
//! `v = (G − 1)/G · Σ_g (θ₋g − θ̄)²`.
//!
//! Train and test splits are independent, so the score's variance is the
//! sum of the two parts. The test part is a mean over test samples given
//! the probe, which the jackknife estimates without bias. The train part is
//! not: the plug-in probe's accuracy is stationary at the population probe
//! (the ε = 0 probe maximises accuracy, and the scaled bound of a Gaussian
//! projection is a function of accuracy), so the score depends on the train
//! sample through a second-order, degenerate term, whose delete-a-group
//! jackknife variance is `2(G − 1)/(G − 2)` times too large (Efron & Stein
//! 1981, worked out for a degenerate U-statistic of the G groups). The
//! reference estimator's standard error is therefore
//! `√(v_test + TRAIN_CORRECTION·v_train)`, `TRAIN_CORRECTION = (G − 2)/(2(G − 1))`.
//! The population estimate is a smooth function of the train moments
//! (first-order), so its standard error is `√v_train` unchanged.

use ndarray::{Array1, Array2, Axis};
use synbench_theory::ScaleOutcome;

use crate::bayes::{BayesProbe, BayesProbeValidParams, EpsilonOutcome};
use crate::error::Result;
use crate::stats::ClassStatistics;

/// Groups of the jackknife. Ten replicates cost ten eigendecompositions per
/// scale (≈ 1 s at D = 768 on two cores, 49 scales: ≈ 50 s).
pub const JACKKNIFE_GROUPS: usize = 10;

/// The factor on the train part of the reference estimator's jackknife
/// variance (module doc): `(G − 2)/(2(G − 1))` = 4/9 at G = 10.
pub const TRAIN_CORRECTION: f64 = (JACKKNIFE_GROUPS as f64 - 2.0) / (2.0 * (JACKKNIFE_GROUPS as f64 - 1.0));

/// Student's t quantile t₀.₉₇₅ with `JACKKNIFE_GROUPS − 1` = 9 degrees of
/// freedom: the 95 % interval is `estimate ± T975·se`.
pub const T975: f64 = 2.262_157_162_740_992;

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
    /// The probe refitted without the group, on the whole test split, per ε.
    pub epsilons: Vec<EpsilonOutcome>,
    /// The fitted probe on the test split without the group, per ε.
    pub test_epsilons: Vec<EpsilonOutcome>,
    /// The population estimate per ε without the group's train samples (ℓ2 only).
    pub population: Option<Vec<ScaleOutcome>>,
}

/// The `groups` delete-a-group replicates of one scale whose full train
/// statistics are `train_stats` (folded from exactly the rows of `train`)
/// and whose fitted probe is `probe`.
pub fn replicates(
    params: &BayesProbeValidParams,
    probe: &BayesProbe,
    train_stats: &ClassStatistics,
    train: &HeldSplit,
    test: &HeldSplit,
    groups: usize,
) -> Result<Vec<Replicate>> {
    (0..groups)
        .map(|g| {
            let (features, labels) = train.rows(|i| i % groups == g);
            let part = ClassStatistics::from_batch(features.view(), labels.view())?;
            let refit = params.fit(&train_stats.without(&part)?)?;
            let epsilons = refit.evaluate(test.features.view(), test.labels.view())?;
            let (features, labels) = test.rows(|i| i % groups != g);
            let test_epsilons = probe.evaluate(features.view(), labels.view())?;
            Ok(Replicate { epsilons, test_epsilons, population: refit.population_outcomes() })
        })
        .collect()
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
/// (`size − 2 > dim`), smallest first; the full split is the run itself.
pub fn nested_sizes(n: u64, dim: usize) -> Vec<u64> {
    [n / 4, n / 2].into_iter().filter(|&m| m >= 4 && m < n && m.saturating_sub(2) > dim as u64).collect()
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
        .iter()
        .map(|&size| {
            let (features, labels) = train.rows(|i| (i as u64) < size);
            let probe = params.fit(&ClassStatistics::from_batch(features.view(), labels.view())?)?;
            let epsilons = probe.evaluate(test.features.view(), test.labels.view())?;
            Ok(Nested { n_train: size, epsilons, population: probe.population_outcomes() })
        })
        .collect()
}

/// The reference estimator's standard error from its train and test
/// replicates (module doc): `√(v_test + TRAIN_CORRECTION·v_train)`.
pub fn reference_standard_error(train: &[f64], test: &[f64]) -> f64 {
    let (a, b) = (standard_error(train), standard_error(test));
    (TRAIN_CORRECTION * a * a + b * b).sqrt()
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
