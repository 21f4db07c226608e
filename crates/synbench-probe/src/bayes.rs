//! The ε-robust Bayes probe on representations (SPEC §3) and its ℓ∞/ℓ1
//! variants (SPEC §6), linfa-style: [`BayesProbeParams`] →
//! [`BayesProbeValidParams`] → [`BayesProbeValidParams::fit`] on streamed
//! [`ClassStatistics`] → [`BayesProbe`], evaluated by streaming test batches
//! through a [`ProbeEvaluator`].

use std::borrow::Cow;

use faer::{Mat, Side};
use linfa::ParamGuard;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use synbench_theory::normal::{cdf, pdf};
use synbench_theory::{
    SampleMoments, ScaleOutcome, TheoryError, attack_radius, estimate_population_outcome, solve_l2_qcqp,
};

use crate::attack::{AttackNorm, solve_attack_qcqp};
use crate::error::{ProbeError, Result, check_batch};
use crate::stats::ClassStatistics;

/// The default tolerance of the eigenvalue cutoff (SPEC §3, step 2): with
/// [`EigenCutoff::Absolute`], eigenvalues of the covariance at or below it
/// are cut, as the reference cuts them.
pub const EIGENVALUE_CUTOFF: f64 = 1e-6;

/// Which covariance components the probe keeps (SPEC §3 step 2): those whose
/// eigenvalue exceeds the tolerance (absolute, the reference's rule and the
/// default) or the tolerance times the largest eigenvalue (relative: the
/// same components at every scale of the features, as the probe's accuracy
/// and scaled bound are scale-free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum EigenCutoff {
    /// λ > tolerance.
    #[default]
    Absolute,
    /// λ > tolerance · λ_max.
    Relative,
}

impl EigenCutoff {
    /// Every rule, the default first.
    pub const ALL: [Self; 2] = [Self::Absolute, Self::Relative];

    /// The config spelling (`"absolute"`, `"relative"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Absolute => "absolute",
            Self::Relative => "relative",
        }
    }

    /// The eigenvalue a kept component must exceed, for a spectrum whose
    /// largest eigenvalue is `largest`.
    pub fn threshold(self, tolerance: f64, largest: f64) -> f64 {
        match self {
            Self::Absolute => tolerance,
            Self::Relative => tolerance * largest.max(0.0),
        }
    }

    /// The indices of the kept components of the spectrum `values` (any
    /// order): the one rule the probe, the population estimator and every
    /// jackknife and nested refit apply.
    pub fn kept(self, tolerance: f64, values: &[f64]) -> Vec<usize> {
        let largest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let threshold = self.threshold(tolerance, largest);
        (0..values.len()).filter(|&k| values[k] > threshold).collect()
    }
}
/// The batch size over which the reference averages accuracy and bound.
pub const REFERENCE_BATCH_SIZE: usize = 256;

/// How the covariance of the representations is estimated (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum CovarianceEstimator {
    /// The reference's plug-in pooled covariance `S` (SPEC §3).
    #[default]
    Pooled,
    /// Ledoit–Wolf shrinkage of `S` towards `(tr S / d)·I`: less biased when
    /// the feature width is comparable to the number of samples.
    LedoitWolf,
}

impl CovarianceEstimator {
    /// Every estimator, the default first.
    pub const ALL: [Self; 2] = [Self::Pooled, Self::LedoitWolf];

    /// The config spelling (`"pooled"`, `"ledoit_wolf"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pooled => "pooled",
            Self::LedoitWolf => "ledoit_wolf",
        }
    }
}

/// How per-sample results are averaged into one accuracy and one bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Averaging {
    /// As the reference: per batch (the accuracy of the batch and the mean
    /// scaled bound over its correct samples), then the mean of the batch
    /// means; a trailing partial batch counts as a batch (PyTorch's
    /// `drop_last = False`).
    #[default]
    Reference,
    /// Plain means over all test samples.
    Exact,
}

impl Averaging {
    /// Every mode, the default first.
    pub const ALL: [Self; 2] = [Self::Reference, Self::Exact];

    /// The config spelling (`"reference"`, `"exact"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::Exact => "exact",
        }
    }
}

/// Checked parameters of the Bayes probe.
#[derive(Debug, Clone, PartialEq)]
pub struct BayesProbeValidParams {
    epsilons: Vec<f64>,
    eigenvalue_cutoff: f64,
    eigen_cutoff: EigenCutoff,
    estimator: CovarianceEstimator,
    attack: AttackNorm,
    batch_size: usize,
}

/// Unchecked parameters of the Bayes probe; [`ParamGuard::check`] validates them.
#[derive(Debug, Clone, PartialEq)]
pub struct BayesProbeParams(BayesProbeValidParams);

impl BayesProbeParams {
    /// A probe for the robustness levels `epsilons` (each in [0, 1)), with the
    /// reference's defaults: absolute cutoff 1e-6, pooled covariance, ℓ2 attack,
    /// reference averaging over batches of 256. (The evaluation yields both
    /// averaging modes; which one is scored is the caller's choice.)
    pub fn new(epsilons: impl Into<Vec<f64>>) -> Self {
        Self(BayesProbeValidParams {
            epsilons: epsilons.into(),
            eigenvalue_cutoff: EIGENVALUE_CUTOFF,
            eigen_cutoff: EigenCutoff::Absolute,
            estimator: CovarianceEstimator::default(),
            attack: AttackNorm::default(),
            batch_size: REFERENCE_BATCH_SIZE,
        })
    }
    /// Tolerance of the eigenvalue cutoff (components with λ ≤ it, or with
    /// [`EigenCutoff::Relative`] λ ≤ it · λ_max, are dropped).
    pub fn eigenvalue_cutoff(mut self, cutoff: f64) -> Self {
        self.0.eigenvalue_cutoff = cutoff;
        self
    }
    /// Whether the tolerance is absolute or relative to the largest eigenvalue.
    pub fn eigen_cutoff(mut self, rule: EigenCutoff) -> Self {
        self.0.eigen_cutoff = rule;
        self
    }
    /// Covariance estimator.
    pub fn estimator(mut self, estimator: CovarianceEstimator) -> Self {
        self.0.estimator = estimator;
        self
    }
    /// Attack norm of the robust QCQP.
    pub fn attack(mut self, attack: AttackNorm) -> Self {
        self.0.attack = attack;
        self
    }
    /// Batch size of [`Averaging::Reference`].
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.0.batch_size = batch_size;
        self
    }
}

impl ParamGuard for BayesProbeParams {
    type Checked = BayesProbeValidParams;
    type Error = ProbeError;

    fn check_ref(&self) -> Result<&BayesProbeValidParams> {
        let p = &self.0;
        if p.epsilons.is_empty() {
            return Err(TheoryError::Empty { what: "epsilons" }.into());
        }
        // ε ≥ 1 makes the robust direction vanish (SPEC §3): a configuration error.
        if let Some(&epsilon) = p.epsilons.iter().find(|e| !(0.0..1.0).contains(*e)) {
            return Err(TheoryError::EpsilonOutOfRange { epsilon }.into());
        }
        if !(p.eigenvalue_cutoff.is_finite() && p.eigenvalue_cutoff >= 0.0) {
            return Err(ProbeError::InvalidParameter {
                name: "eigenvalue_cutoff",
                value: p.eigenvalue_cutoff,
                expected: "a finite number >= 0",
            });
        }
        if p.batch_size == 0 {
            return Err(ProbeError::InvalidParameter { name: "batch_size", value: 0.0, expected: "at least 1" });
        }
        Ok(p)
    }

    fn check(self) -> Result<BayesProbeValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// The QCQP solution in the eigenbasis (ℓ2 attack only).
#[derive(Debug, Clone, PartialEq)]
pub struct EigenbasisSolution {
    /// `z*` of the QCQP (depends on eigenvector signs).
    pub z: Array1<f64>,
    /// `w₀ = diag(1/λ₁)(μ − z*)`.
    pub w0: Array1<f64>,
}

/// The robust linear classifier for one ε.
#[derive(Debug, Clone, PartialEq)]
pub struct RobustDirection {
    /// Robustness level ε.
    pub epsilon: f64,
    /// Attack radius `δ = ε·‖μ‖_p`.
    pub delta: f64,
    /// `W` in feature space: the classifier is `sign((h − c)ᵀW)`.
    pub weights: Array1<f64>,
    /// `|μᵀw₀|`, the class-mean margin that normalises the scaled bound.
    pub mean_margin: f64,
    /// Eigenbasis quantities (ℓ2 attack only).
    pub eigenbasis: Option<EigenbasisSolution>,
}

/// A fitted ε-robust Bayes probe: one robust direction per ε.
#[derive(Debug, Clone, PartialEq)]
pub struct BayesProbe {
    dim: usize,
    midpoint: Array1<f64>,
    eigenvalues: Vec<f64>,
    kept_vectors: Array2<f64>,
    mu_eigbasis: Array1<f64>,
    shrinkage: f64,
    directions: Vec<RobustDirection>,
    batch_size: usize,
    counts: [u64; 2],
    attack: AttackNorm,
    cutoff: (EigenCutoff, f64),
}

impl BayesProbeValidParams {
    /// The robustness levels.
    pub fn epsilons(&self) -> &[f64] {
        &self.epsilons
    }
    /// Tolerance of the eigenvalue cutoff.
    pub fn eigenvalue_cutoff(&self) -> f64 {
        self.eigenvalue_cutoff
    }
    /// Whether the tolerance is absolute or relative to λ_max.
    pub fn eigen_cutoff(&self) -> EigenCutoff {
        self.eigen_cutoff
    }
    /// Covariance estimator.
    pub fn estimator(&self) -> CovarianceEstimator {
        self.estimator
    }
    /// Attack norm of the robust QCQP.
    pub fn attack(&self) -> AttackNorm {
        self.attack
    }
    /// Batch size of [`Averaging::Reference`].
    pub fn reference_batch_size(&self) -> usize {
        self.batch_size
    }

    /// Fits the probe on streamed training statistics (SPEC §3 steps 1–4).
    pub fn fit(&self, stats: &ClassStatistics) -> Result<BayesProbe> {
        let dim = stats.dim();
        let mut cov = stats.pooled_covariance()?;
        let shrinkage = match self.estimator {
            CovarianceEstimator::Pooled => 0.0,
            CovarianceEstimator::LedoitWolf => {
                let rho = stats.ledoit_wolf_shrinkage()?;
                let target = cov.diag().sum() / dim as f64;
                cov *= 1.0 - rho;
                cov.diag_mut().mapv_inplace(|v| v + rho * target);
                rho
            }
        };
        let (all_values, vectors) = symmetric_eigen(&cov)?;
        let kept = self.eigen_cutoff.kept(self.eigenvalue_cutoff, &all_values);
        if kept.is_empty() {
            return Err(self.no_signal(all_values.first().copied().unwrap_or(f64::NAN)));
        }
        let eigenvalues: Vec<f64> = kept.iter().map(|&k| all_values[k]).collect();
        let f1 = vectors.select(Axis(1), &kept);
        let (mu1, mu0) = (stats.class_mean(1), stats.class_mean(0));
        let half_diff = (mu1 - mu0) / 2.0;
        let midpoint = (mu1 + mu0) / 2.0;
        let mu = f1.t().dot(&half_diff);
        let inv_lambda: Vec<f64> = eigenvalues.iter().map(|l| 1.0 / l).collect();

        let directions = self
            .epsilons
            .iter()
            .map(|&epsilon| match self.attack {
                AttackNorm::L2 => l2_direction(epsilon, &mu, &inv_lambda, &f1),
                norm => conic_direction(epsilon, &half_diff, &inv_lambda, &f1, norm),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BayesProbe {
            dim,
            midpoint,
            eigenvalues,
            kept_vectors: f1,
            mu_eigbasis: mu,
            shrinkage,
            directions,
            batch_size: self.batch_size,
            counts: [stats.count(1), stats.count(0)],
            attack: self.attack,
            cutoff: (self.eigen_cutoff, self.eigenvalue_cutoff),
        })
    }
}

impl BayesProbeValidParams {
    /// "No signal": no eigenvalue passed the cutoff. Names the largest
    /// eigenvalue and, where it is positive and finite under the absolute
    /// rule (features of a small scale, not a dead representation), the
    /// relative rule that keeps it.
    fn no_signal(&self, largest: f64) -> ProbeError {
        let rule = match self.eigen_cutoff {
            EigenCutoff::Absolute => format!("the cutoff {:e}", self.eigenvalue_cutoff),
            EigenCutoff::Relative => format!("{:e} × the largest", self.eigenvalue_cutoff),
        };
        let mut what = format!("no covariance eigenvalue exceeds {rule} (the largest is {largest:e})");
        if self.eigen_cutoff == EigenCutoff::Absolute && largest > 0.0 && largest.is_finite() {
            what.push_str(
                "; the features are small rather than constant: set `[probe] eigen_cutoff = \"relative\"` \
                 (Python: eigen_cutoff=\"relative\"), which keeps the components above a tolerance of the \
                 largest eigenvalue, whatever the scale of the features",
            );
        }
        ProbeError::NoSignal { what }
    }
}

/// Symmetric eigendecomposition through faer, eigenvalues descending, each
/// eigenvector's largest-magnitude entry made positive (deterministic signs).
pub fn symmetric_eigen(cov: &Array2<f64>) -> Result<(Vec<f64>, Array2<f64>)> {
    let d = cov.nrows();
    let mat = Mat::<f64>::from_fn(d, d, |i, j| cov[[i, j]]);
    let eig = mat
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| ProbeError::NoSignal { what: format!("eigendecomposition of the covariance failed: {e:?}") })?;
    let values = eig.S().column_vector();
    let u = eig.U();
    let mut order: Vec<usize> = (0..d).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut vectors = Array2::zeros((d, d));
    for (col, &k) in order.iter().enumerate() {
        let pivot = (0..d).map(|i| u[(i, k)]).fold(0.0_f64, |best, v| if v.abs() > best.abs() { v } else { best });
        let sign = if pivot < 0.0 { -1.0 } else { 1.0 };
        for i in 0..d {
            vectors[[i, col]] = sign * u[(i, k)];
        }
    }
    Ok((order.iter().map(|&k| values[k]).collect(), vectors))
}

/// SPEC §3 step 4 with the exact secular solver.
fn l2_direction(epsilon: f64, mu: &Array1<f64>, inv_lambda: &[f64], f1: &Array2<f64>) -> Result<RobustDirection> {
    let mu_slice = mu.as_slice().expect("contiguous");
    let delta = attack_radius(epsilon, mu_slice)?;
    let z = Array1::from(solve_l2_qcqp(mu_slice, inv_lambda, delta)?.z);
    let w0 = (mu - &z) * &Array1::from(inv_lambda.to_vec());
    let weights = f1.dot(&w0);
    let mean_margin = mu.dot(&w0).abs();
    ensure_signal(epsilon, mean_margin)?;
    Ok(RobustDirection { epsilon, delta, weights, mean_margin, eigenbasis: Some(EigenbasisSolution { z, w0 }) })
}

/// SPEC §6: the ℓ∞/ℓ1 QCQP in the original feature basis, `Q = F₁ diag(1/λ₁) F₁ᵀ`
/// (the pseudo-inverse on the kept subspace). `δ = ε·‖P μ‖_p` with `P` the
/// projection onto that subspace, so ε ≥ 1 degenerates as in the ℓ2 case.
fn conic_direction(
    epsilon: f64,
    half_diff: &Array1<f64>,
    inv_lambda: &[f64],
    f1: &Array2<f64>,
    norm: AttackNorm,
) -> Result<RobustDirection> {
    let scaled = f1 * &Array1::from(inv_lambda.to_vec()).insert_axis(Axis(0));
    let precision = scaled.dot(&f1.t());
    let projected = f1.dot(&f1.t().dot(half_diff));
    let radius = norm.norm(projected.as_slice().expect("contiguous"));
    let delta = attack_radius(epsilon, &[radius])?;
    let z = solve_attack_qcqp(half_diff.as_slice().expect("contiguous"), precision.view(), delta, norm)?;
    let weights = precision.dot(&(half_diff - &Array1::from(z)));
    let mean_margin = half_diff.dot(&weights).abs();
    ensure_signal(epsilon, mean_margin)?;
    Ok(RobustDirection { epsilon, delta, weights, mean_margin, eigenbasis: None })
}

fn ensure_signal(epsilon: f64, mean_margin: f64) -> Result<()> {
    if !(mean_margin > 0.0 && mean_margin.is_finite()) {
        return Err(ProbeError::NoSignal {
            what: format!("the class means coincide on the kept subspace (|μᵀw₀| = {mean_margin} at ε = {epsilon})"),
        });
    }
    Ok(())
}

impl BayesProbe {
    /// Feature dimension the probe was fitted on.
    pub fn dim(&self) -> usize {
        self.dim
    }
    /// The class midpoint `c = (μ₁ + μ₀)/2`.
    pub fn midpoint(&self) -> &Array1<f64> {
        &self.midpoint
    }
    /// Kept eigenvalues λ₁ (descending).
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }
    /// Kept eigenvectors `F₁` as columns `[d, k]`.
    pub fn eigenvectors(&self) -> &Array2<f64> {
        &self.kept_vectors
    }
    /// `μ = F₁ᵀ(μ₁ − μ₀)/2`.
    pub fn mu_eigbasis(&self) -> &Array1<f64> {
        &self.mu_eigbasis
    }
    /// Ledoit–Wolf shrinkage coefficient used (0 for the pooled estimator).
    pub fn shrinkage(&self) -> f64 {
        self.shrinkage
    }
    /// One robust direction per ε, in the order of the parameters.
    pub fn directions(&self) -> &[RobustDirection] {
        &self.directions
    }

    /// Train samples of class 1 and class 0 the probe was fitted on.
    pub fn counts(&self) -> [u64; 2] {
        self.counts
    }

    /// The outcome per ε this probe would have on classes whose projections
    /// `(h − c)ᵀW` are Gaussian with the moments `moments` give (class means
    /// and covariances, and the class shares): for class 1 the margin
    /// `M₁ = Wᵀ(m₁ − c)` and spread `s₁ = √(WᵀC₁W)` (class 0 mirrored), so
    ///
    /// ```text
    /// a = τ₁Φ(M₁/s₁) + τ₀Φ(M₀/s₀)
    /// b = Σ_k τ_k·[M_kΦ(M_k/s_k) + s_kφ(M_k/s_k)] / (a·|μᵀw₀|)
    /// ```
    ///
    /// (`E[X; X > 0]` of a normal `X`): the accuracy and mean scaled bound
    /// over the correct samples, a smooth function of the direction. The
    /// jackknife evaluates its train replicates so ([`crate::jackknife`]).
    pub fn gaussian_outcomes(&self, moments: &ClassStatistics) -> Result<Vec<ScaleOutcome>> {
        if moments.dim() != self.dim {
            return Err(ProbeError::DimensionMismatch {
                tensor: "evaluation moments",
                expected: self.dim,
                found: moments.dim(),
            });
        }
        let (n1, n0) = (moments.count(1) as f64, moments.count(0) as f64);
        let shares = [n1 / (n1 + n0), n0 / (n1 + n0)];
        let offsets = [moments.class_mean(1) - &self.midpoint, &self.midpoint - moments.class_mean(0)];
        self.directions
            .iter()
            .map(|dir| {
                let (mut accuracy, mut positive) = (0.0, 0.0);
                for (k, label) in [1u8, 0].into_iter().enumerate() {
                    let margin = dir.weights.dot(&offsets[k]);
                    let spread = moments.class_variance_along(label, &dir.weights)?.max(0.0).sqrt();
                    let (p, tail) = if spread > 0.0 {
                        let z = margin / spread;
                        (cdf(z), margin * cdf(z) + spread * pdf(z))
                    } else if margin > 0.0 {
                        (1.0, margin)
                    } else {
                        (0.0, 0.0)
                    };
                    accuracy += shares[k] * p;
                    positive += shares[k] * tail;
                }
                let scaled_bound = if accuracy > 0.0 { positive / (accuracy * dir.mean_margin) } else { 0.0 };
                Ok(ScaleOutcome { accuracy, scaled_bound })
            })
            .collect()
    }

    /// The estimated population outcome per ε (SPEC §7,
    /// [`synbench_theory::population`]) from the statistics this probe was
    /// fitted on; `None` for the ℓ∞/ℓ1 attacks, whose QCQP has no ridge form,
    /// and where the pooled covariance is singular (`n − 2 ≤ D`,
    /// [`synbench_theory::population_estimable`]). With Ledoit–Wolf
    /// shrinkage the estimate uses the unshrunk sample eigenvalues (the
    /// random-matrix correction is of the plug-in `S`), of the components
    /// that the probe's cutoff rule ([`EigenCutoff::kept`]) keeps among them.
    pub fn population_outcomes(&self) -> Option<Vec<ScaleOutcome>> {
        self.with_population_moments(|moments| self.population_outcomes_of(moments))
    }

    /// [`Self::population_outcomes`] and [`Self::population_signal`] from
    /// one gathering of the sample moments (the jackknife's refits need
    /// both).
    pub fn population_estimate(&self) -> Option<(Vec<ScaleOutcome>, f64)> {
        self.with_population_moments(|moments| {
            Some((self.population_outcomes_of(moments)?, synbench_theory::estimate_signal(moments)?))
        })
    }

    fn population_outcomes_of(&self, moments: &SampleMoments<'_>) -> Option<Vec<ScaleOutcome>> {
        self.directions.iter().map(|d| estimate_population_outcome(moments, d.epsilon)).collect()
    }

    /// The population estimator's ε = 0 signal `f̂`, the squared
    /// Mahalanobis half-distance before it is clipped at chance
    /// ([`synbench_theory::estimate_signal`]; what the jackknife calibrates
    /// on, [`crate::jackknife`]); `None` where [`Self::population_outcomes`] is.
    pub fn population_signal(&self) -> Option<f64> {
        self.with_population_moments(synbench_theory::estimate_signal)
    }

    /// Calls `estimate` with the population estimator's sample moments;
    /// `None` for the ℓ∞/ℓ1 attacks.
    fn with_population_moments<T>(&self, estimate: impl Fn(&SampleMoments<'_>) -> Option<T>) -> Option<T> {
        if self.attack != AttackNorm::L2 {
            return None;
        }
        let eigenvalues: Vec<f64> = if self.shrinkage > 0.0 && self.shrinkage < 1.0 {
            let target = self.shrinkage_target();
            self.eigenvalues.iter().map(|l| ((l - self.shrinkage * target) / (1.0 - self.shrinkage)).max(0.0)).collect()
        } else {
            self.eigenvalues.clone()
        };
        let (rule, tolerance) = self.cutoff;
        let kept = rule.kept(tolerance, &eigenvalues);
        let l: Vec<f64> = kept.iter().map(|&i| eigenvalues[i]).collect();
        let m2: Vec<f64> = kept.iter().map(|&i| self.mu_eigbasis[i] * self.mu_eigbasis[i]).collect();
        estimate(&SampleMoments { eigenvalues: &l, mu_squared: &m2, counts: self.counts, dim: self.dim })
    }

    /// `tr S / d` of the Ledoit–Wolf target, recovered from the shrunk
    /// spectrum: `Σ l_lw = (1 − ρ)·tr S + ρ·tr S` when nothing was cut.
    fn shrinkage_target(&self) -> f64 {
        self.eigenvalues.iter().sum::<f64>() / self.dim as f64
    }

    /// Starts a streamed evaluation on test batches (SPEC §3 steps 5–6).
    pub fn evaluator(&self) -> ProbeEvaluator<'_> {
        let e = self.directions.len();
        let mut weights = Array2::zeros((self.dim, e));
        for (k, dir) in self.directions.iter().enumerate() {
            weights.column_mut(k).assign(&dir.weights);
        }
        ProbeEvaluator {
            probe: Cow::Borrowed(self),
            weights,
            tallies: vec![Tally::default(); e],
            groups: Vec::new(),
            position: 0,
        }
    }

    /// [`Self::evaluator`] that owns the probe, for a caller that keeps the
    /// evaluation across calls (a streaming experiment's state).
    pub fn into_evaluator(self) -> ProbeEvaluator<'static> {
        let ProbeEvaluator { weights, tallies, groups, position, .. } = self.evaluator();
        ProbeEvaluator { probe: Cow::Owned(self), weights, tallies, groups, position }
    }

    /// Evaluates one in-memory test set (a convenience over [`Self::evaluator`]).
    pub fn evaluate(&self, features: ArrayView2<'_, f32>, labels: ArrayView1<'_, u8>) -> Result<Vec<EpsilonOutcome>> {
        let mut evaluator = self.evaluator();
        evaluator.fold(features, labels)?;
        Ok(evaluator.finish())
    }
}

/// Running sums of one ε.
#[derive(Debug, Clone, Default)]
struct Tally {
    samples: u64,
    correct: u64,
    bound_sum: f64,
    batch_samples: u64,
    batch_correct: u64,
    batch_bound_sum: f64,
    batches: u64,
    batch_accuracy_sum: f64,
    bound_batches: u64,
    batch_bound_mean_sum: f64,
}

impl Tally {
    fn add(&mut self, correct: bool, scaled_bound: f64) {
        self.samples += 1;
        self.batch_samples += 1;
        if correct {
            self.correct += 1;
            self.bound_sum += scaled_bound;
            self.batch_correct += 1;
            self.batch_bound_sum += scaled_bound;
        }
    }

    fn close_batch(&mut self) {
        if self.batch_samples == 0 {
            return;
        }
        self.batches += 1;
        self.batch_accuracy_sum += self.batch_correct as f64 / self.batch_samples as f64;
        // The reference takes the mean over an empty selection (NaN) for a batch
        // without correct samples; we leave such a batch out of the bound's mean.
        if self.batch_correct > 0 {
            self.bound_batches += 1;
            self.batch_bound_mean_sum += self.batch_bound_sum / self.batch_correct as f64;
        }
        self.batch_samples = 0;
        self.batch_correct = 0;
        self.batch_bound_sum = 0.0;
    }
}

/// Accuracy and mean scaled bound of one ε under both averaging modes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpsilonOutcome {
    /// Robustness level ε.
    pub epsilon: f64,
    /// Batch-averaged, as the reference.
    pub reference: ScaleOutcome,
    /// Plain means over all samples.
    pub exact: ScaleOutcome,
    /// Correctly classified test samples.
    pub correct: u64,
    /// Test samples seen.
    pub samples: u64,
}

impl EpsilonOutcome {
    /// The outcome under `averaging`.
    pub fn outcome(&self, averaging: Averaging) -> ScaleOutcome {
        match averaging {
            Averaging::Reference => self.reference,
            Averaging::Exact => self.exact,
        }
    }
}

/// Streams test batches through every robust direction at once: one
/// `[n, d]·[d, #ε]` product per batch. Batches of the reference averaging
/// are cut every `batch_size` samples, whatever sizes the caller folds.
///
/// With [`Self::with_groups`] it also tallies the delete-a-group jackknife
/// replicates of the test split in the same pass: replicate `g` leaves out
/// the samples at positions `≡ g (mod G)` and keeps the full split's batch
/// cuts, so its batch means are those of the full evaluation, a tenth
/// thinner (re-cutting the remaining samples into new batches would give
/// each replicate a short trailing batch weighted as a whole one, noise
/// the full evaluation does not have).
#[derive(Debug, Clone)]
pub struct ProbeEvaluator<'a> {
    probe: Cow<'a, BayesProbe>,
    weights: Array2<f64>,
    tallies: Vec<Tally>,
    /// `groups[g][k]`: replicate `g`, direction `k`.
    groups: Vec<Vec<Tally>>,
    /// Samples folded so far.
    position: u64,
}

impl ProbeEvaluator<'_> {
    /// Also tallies the `groups` delete-a-group replicates (see the type's
    /// doc); call before the first fold.
    pub fn with_groups(mut self, groups: usize) -> Self {
        assert_eq!(self.position, 0, "with_groups after samples were folded");
        self.groups = vec![vec![Tally::default(); self.tallies.len()]; groups];
        self
    }

    /// Folds one test batch `[n, d]` with labels in {0, 1}.
    pub fn fold(&mut self, features: ArrayView2<'_, f32>, labels: ArrayView1<'_, u8>) -> Result<()> {
        check_batch(&features, &labels, self.probe.dim, "test features", "test labels")?;
        let centred = features.mapv(f64::from) - &self.probe.midpoint;
        let margins = centred.dot(&self.weights);
        let batch_size = self.probe.batch_size as u64;
        let groups = self.groups.len() as u64;
        for (row, &y) in margins.outer_iter().zip(labels) {
            let left_out = if groups > 0 { (self.position % groups) as usize } else { 0 };
            for (k, (&margin, dir)) in row.iter().zip(&self.probe.directions).enumerate() {
                // SPEC §3 step 5: a zero margin is wrong for both classes.
                let correct = (margin > 0.0 && y == 1) || (margin < 0.0 && y == 0);
                let bound = margin.abs() / dir.mean_margin;
                self.tallies[k].add(correct, bound);
                for (g, replicate) in self.groups.iter_mut().enumerate() {
                    if g != left_out {
                        replicate[k].add(correct, bound);
                    }
                }
            }
            self.position += 1;
            if self.position.is_multiple_of(batch_size) {
                self.tallies.iter_mut().chain(self.groups.iter_mut().flatten()).for_each(Tally::close_batch);
            }
        }
        Ok(())
    }

    /// Closes a trailing partial batch and returns one outcome per ε. With no
    /// correct sample at all the bound is reported as 0 (accuracy 0 never
    /// passes a threshold of the curve, so it contributes nothing either way).
    pub fn finish(self) -> Vec<EpsilonOutcome> {
        self.finish_with_groups().0
    }

    /// [`Self::finish`] and the replicates of [`Self::with_groups`] (one
    /// outcome per ε each; none without groups).
    pub fn finish_with_groups(self) -> (Vec<EpsilonOutcome>, Vec<Vec<EpsilonOutcome>>) {
        let ProbeEvaluator { probe, tallies, groups, .. } = self;
        let outcomes = |tallies: Vec<Tally>| -> Vec<EpsilonOutcome> {
            tallies.into_iter().zip(&probe.directions).map(|(t, dir)| t.outcome(dir.epsilon)).collect()
        };
        (outcomes(tallies), groups.into_iter().map(outcomes).collect())
    }
}

impl Tally {
    fn outcome(mut self, epsilon: f64) -> EpsilonOutcome {
        self.close_batch();
        let ratio = |num: f64, den: u64| if den == 0 { 0.0 } else { num / den as f64 };
        EpsilonOutcome {
            epsilon,
            reference: ScaleOutcome {
                accuracy: ratio(self.batch_accuracy_sum, self.batches),
                scaled_bound: ratio(self.batch_bound_mean_sum, self.bound_batches),
            },
            exact: ScaleOutcome {
                accuracy: ratio(self.correct as f64, self.samples),
                scaled_bound: ratio(self.bound_sum, self.correct),
            },
            correct: self.correct,
            samples: self.samples,
        }
    }
}
