//! The population score (SPEC §7): the accuracy and scaled bound, at one mean
//! scale and one ε, of the ε-robust Bayes probe built from the features'
//! *population* class means and pooled covariance — and an estimator of it
//! from the plug-in statistics of a finite train split.
//!
//! # The population probe is a ridge direction
//!
//! Write the pooled covariance `Σ = Σ_i λ_i f_i f_iᵀ` and the half class-mean
//! difference `μ` with `μ_i = f_iᵀμ`. The ℓ2 QCQP of SPEC §3 is solved by
//! `z*_i = μ_i/(1 + νλ_i)`, so `w = Σ⁻¹(μ − z*) ∝ (Σ + γI)⁻¹μ` with the ridge
//! `γ = 1/ν` fixed by the constraint `‖z*‖ = ε‖μ‖`:
//!
//! ```text
//! γ²·μᵀ(Σ + γI)⁻²μ = ε²·μᵀμ            (γ = 0 at ε = 0)
//! ```
//!
//! Every quantity the score needs is then a spectral functional of
//! `f(γ) = μᵀ(Σ + γI)⁻¹μ`: the constraint is `−γ²f'(γ) = ε²‖μ‖²`, the margin
//! is `wᵀμ = f(γ)` and the spread `wᵀΣw = f(γ) + γf'(γ)`. If the projection
//! `wᵀh` of a class is Gaussian, accuracy is `a = Φ(f/√(f + γf'))` and the
//! mean scaled bound of the correct samples is `E(a)` (SPEC §2).
//! [`population_outcome`] evaluates this for known moments (the
//! linear-Gaussian oracle's closed form).
//!
//! # Estimating it from a train split
//!
//! The plug-in probe replaces `(μ, Σ)` by `(μ̂, S)`; in D dimensions from
//! n samples its direction error costs score (≈ 0.2 at D = 768, n = 2048).
//! The estimator instead estimates `f` itself. For a sample covariance with
//! `ν = n − 2` degrees of freedom and ratio `D/ν` bounded away from 1 (and
//! above it for γ > 0), the resolvent has the deterministic equivalent
//! (Silverstein & Bai 1995; Couillet & Liao, *Random Matrix Methods for
//! Machine Learning*, 2022, Thm 2.6):
//!
//! ```text
//! (S + γ'I)⁻¹ ≍ (Σ/(1 + δ) + γ'I)⁻¹ = (1 + δ)·(Σ + γ'(1 + δ)I)⁻¹,
//! δ/(1 + δ) = (1/ν)·Σ_i l_i/(l_i + γ')          (l_i: eigenvalues of S)
//! ```
//!
//! so a quadratic form of `S` at ridge `γ'` is one of `Σ` at ridge
//! `γ = γ'(1 + δ(γ'))`, and `δ` is itself observable (the second line is the
//! trace identity of the equivalent, with `tr Σ(...)⁻¹` replaced by its
//! observable counterpart). The class means are noisy too: `μ̂ = μ + e`,
//! `e ~ (0, κΣ)` with `κ = (1/n₁ + 1/n₀)/4`, independent of `S` for Gaussian
//! features, which adds `κ·tr(Σ(S + γ'I)⁻¹) ≈ κνδ` to `μ̂ᵀ(S + γ'I)⁻¹μ̂`. Hence
//!
//! ```text
//! f̂(γ'(1 + δ)) = [μ̂ᵀ(S + γ'I)⁻¹μ̂ − κνδ] / (1 + δ),     ‖μ‖² ≈ ‖μ̂‖² − κ·tr S,
//! ```
//!
//! with `f̂'` from the analytic derivative along `γ'`. At γ' = 0 this is the
//! classical unbiased estimator of the Mahalanobis distance,
//! `(1 − D/ν)·μ̂ᵀS⁻¹μ̂ − Dκ` (Lachenbruch & Mickey 1968; Raudys & Young, *Results
//! in statistical discriminant analysis*, 2004). The constraint is solved for
//! `γ'` by bisection on `log γ'`. The construction follows the random-matrix
//! analyses of regularised discriminant analysis (Zollanvari & Dougherty,
//! *Generalized consistent error estimator of linear discriminant analysis*,
//! IEEE TSP 2015; Elkhalil, Kammoun, Couillet, Al-Naffouri & Alouini, *A
//! large dimensional analysis of regularized discriminant analysis
//! classifiers*, JMLR 2020), which estimate the same functionals.
//!
//! # Assumptions
//!
//! * The probe's projection of each class is Gaussian (accuracy and bound
//!   through `Φ` and `E`). Features that are sums of many weakly dependent
//!   parts (a wide layer) are close to this; heavy-tailed or strongly
//!   multimodal projections are not.
//! * The deterministic equivalent holds: features are concentrated vectors
//!   (Lipschitz functions of Gaussians, Louart & Couillet 2018, qualify),
//!   D and n both large. Exactly Gaussian features are the tested case.
//! * The two classes share one covariance (the pooled one is used either way).
//! * Only the ℓ2 attack: the ridge form is the ℓ2 QCQP's.
//!
//! * More degrees of freedom than dimensions, `ν = n − 2 > D`
//!   ([`population_estimable`]). With `ν ≤ D` the pooled covariance is
//!   singular: `μ̂ᵀS⁻¹μ̂` does not exist at ε = 0, and the ridge equivalent
//!   at ε > 0 reads only the `ν` sample directions, so the estimate is not
//!   reported at all (a random-init ViT-B/16, D = 768, at n = 512 gave chance
//!   at ε = 0 and 0.68 against 0.89 at ε = 0.2).
//!
//! Where the estimate is degenerate (the estimated signal `‖μ‖²` or margin is
//! not positive, or no ridge meets the constraint) the probe is at chance:
//! accuracy ½ and bound 0, which no threshold of the curve counts.

use crate::bound::expected_scaled_bound_from_margin;
use crate::normal::cdf;
use crate::score::ScaleOutcome;

/// What the estimator needs of a fitted plug-in probe.
#[derive(Debug, Clone, Copy)]
pub struct SampleMoments<'a> {
    /// Eigenvalues `l_i > 0` of the pooled sample covariance `S` (those kept).
    pub eigenvalues: &'a [f64],
    /// `(f_iᵀμ̂)²`: the half class-mean difference projected on each eigenvector.
    pub mu_squared: &'a [f64],
    /// Samples of class 1 and class 0.
    pub counts: [u64; 2],
    /// The feature width `D` (kept eigenvalues may be fewer).
    pub dim: usize,
}

/// Whether `n` train samples in two classes at feature width `dim` leave
/// more degrees of freedom than dimensions (`n − 2 > dim`), which the
/// estimator needs (module doc, assumptions).
pub fn population_estimable(n: u64, dim: usize) -> bool {
    n.saturating_sub(2) > dim as u64
}

/// The fewest samples at which [`population_estimable`] holds at width `dim`
/// (`dim + 3`): what an error or warning suggests.
pub fn smallest_estimable_n(dim: usize) -> u64 {
    dim as u64 + 3
}

/// The population outcome for known moments: `eigenvalues` `λ_i` of the
/// pooled covariance and `mu_squared` `μ_i²` of the half class-mean
/// difference in its eigenbasis (the closed form of the module doc).
pub fn population_outcome(eigenvalues: &[f64], mu_squared: &[f64], epsilon: f64) -> ScaleOutcome {
    solve(&Functional { l: eigenvalues, m2: mu_squared, noise: 0.0, dof: f64::INFINITY }, epsilon)
}

/// The estimate of [`population_outcome`] from a train split's plug-in
/// statistics (module doc); `None` where it is not defined
/// ([`population_estimable`]: `n − 2 ≤ D`).
pub fn estimate_population_outcome(moments: &SampleMoments<'_>, epsilon: f64) -> Option<ScaleOutcome> {
    Functional::of_sample(moments).map(|functional| solve(&functional, epsilon))
}

/// The estimate `f̂` of the squared Mahalanobis half-distance `μᵀΣ⁻¹μ`
/// (the ε = 0 signal, module doc) before it is clipped at chance: with
/// `k` kept components `f̂ = (1 − k/ν)·Σ μ̂ᵢ²/lᵢ − κk`, negative where the
/// mean difference is within its noise. `None` where the estimator is not
/// defined.
pub fn estimate_signal(moments: &SampleMoments<'_>) -> Option<f64> {
    Functional::of_sample(moments).map(|functional| functional.at(0.0).f)
}

/// `κ = (1/n₁ + 1/n₀)/4`: the variance of each coordinate of the white
/// half class-mean difference (and of the midpoint) for `n₁ + n₀` samples.
pub fn mean_noise(n1: f64, n0: f64) -> f64 {
    (1.0 / n1 + 1.0 / n0) / 4.0
}

const CHANCE: ScaleOutcome = ScaleOutcome { accuracy: 0.5, scaled_bound: 0.0 };

/// `f̂` along the sample ridge `γ'` (with `noise = 0`, `dof = ∞`: `f` itself).
struct Functional<'a> {
    l: &'a [f64],
    m2: &'a [f64],
    noise: f64,
    dof: f64,
}

/// `(γ, f(γ), f'(γ))` at one sample ridge.
#[derive(Debug, Clone, Copy)]
struct Point {
    gamma: f64,
    f: f64,
    slope: f64,
}

impl<'a> Functional<'a> {
    /// The functional of a train split's plug-in moments; `None` where the
    /// estimator is not defined ([`population_estimable`]).
    fn of_sample(moments: &SampleMoments<'a>) -> Option<Self> {
        let [n1, n0] = moments.counts;
        if !population_estimable(n1 + n0, moments.dim) {
            return None;
        }
        let (n1, n0) = (n1.max(1) as f64, n0.max(1) as f64);
        Some(Functional {
            l: moments.eigenvalues,
            m2: moments.mu_squared,
            noise: mean_noise(n1, n0),
            dof: n1 + n0 - 2.0,
        })
    }

    fn at(&self, g: f64) -> Point {
        let (mut a, mut da, mut q, mut dq) = (0.0, 0.0, 0.0, 0.0);
        for (&l, &m2) in self.l.iter().zip(self.m2) {
            let inv = 1.0 / (l + g);
            a += l * inv;
            da -= l * inv * inv;
            q += m2 * inv;
            dq -= m2 * inv * inv;
        }
        // r = δ/(1 + δ); with dof = ∞ it is 0 and γ = γ'.
        let (r, dr) = if self.dof.is_finite() { (a / self.dof, da / self.dof) } else { (0.0, 0.0) };
        let delta = r / (1.0 - r);
        let d_delta = dr / ((1.0 - r) * (1.0 - r));
        let noise = self.noise * if self.dof.is_finite() { self.dof } else { 0.0 };
        let gamma = g * (1.0 + delta);
        let d_gamma = (1.0 + delta) + g * d_delta;
        let f = (q - noise * delta) * (1.0 - r);
        let df = (dq - noise * d_delta) * (1.0 - r) - (q - noise * delta) * dr;
        Point { gamma, f, slope: df / d_gamma }
    }

    /// `‖μ‖²`, corrected for the mean noise.
    fn signal(&self) -> f64 {
        let trace: f64 = self.l.iter().sum();
        self.m2.iter().sum::<f64>() - self.noise * trace
    }
}

fn solve(functional: &Functional<'_>, epsilon: f64) -> ScaleOutcome {
    let Some(top) = functional.l.iter().copied().filter(|l| l.is_finite()).reduce(f64::max) else {
        return CHANCE;
    };
    let signal = functional.signal();
    if !(signal > 0.0 && top > 0.0) {
        return CHANCE;
    }
    let point = if epsilon == 0.0 {
        // γ = 0 (the kept dimensions are fewer than the degrees of freedom).
        functional.at(0.0)
    } else {
        // −γ²f'(γ) rises from 0 to ‖μ‖² as the ridge grows: bisect on log γ'.
        let target = epsilon * epsilon * signal;
        let excess = |t: f64| {
            let p = functional.at(t.exp());
            -p.gamma * p.gamma * p.slope - target
        };
        let (mut lo, mut hi) = (top.ln() - 25.0, top.ln() + 25.0);
        if !(excess(lo) < 0.0 && excess(hi) > 0.0) {
            return CHANCE;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if excess(mid) < 0.0 {
                lo = mid
            } else {
                hi = mid
            }
            if hi - lo < 1e-13 {
                break;
            }
        }
        functional.at((0.5 * (lo + hi)).exp())
    };
    let spread = point.f + point.gamma * point.slope;
    if !(point.f > 0.0 && spread > 0.0) {
        return CHANCE;
    }
    let margin = point.f / spread.sqrt();
    match expected_scaled_bound_from_margin(margin) {
        Ok(bound) => ScaleOutcome { accuracy: cdf(margin), scaled_bound: bound },
        Err(_) => CHANCE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qcqp::solve_l2_qcqp;

    /// The closed form against the QCQP of SPEC §3 on the same moments:
    /// `w = Σ⁻¹(μ − z*)`, accuracy `Φ(wᵀμ/√(wᵀΣw))`.
    #[test]
    fn the_closed_form_is_the_exact_qcqp_probe() {
        let lambda: Vec<f64> = (1..=40).map(|i| 1.0 / f64::from(i).powf(0.7)).collect();
        let mu: Vec<f64> = (0..40).map(|i| 0.3 * ((i as f64) * 1.7).sin()).collect();
        let m2: Vec<f64> = mu.iter().map(|m| m * m).collect();
        for epsilon in [0.0, 0.1, 0.2, 0.5] {
            let inv: Vec<f64> = lambda.iter().map(|l| 1.0 / l).collect();
            let norm = mu.iter().map(|m| m * m).sum::<f64>().sqrt();
            let z = solve_l2_qcqp(&mu, &inv, epsilon * norm).unwrap().z;
            let w: Vec<f64> = (0..40).map(|i| (mu[i] - z[i]) * inv[i]).collect();
            let margin: f64 = (0..40).map(|i| w[i] * mu[i]).sum();
            let spread: f64 = (0..40).map(|i| w[i] * w[i] * lambda[i]).sum::<f64>().sqrt();
            let expected = cdf(margin / spread);
            let got = population_outcome(&lambda, &m2, epsilon);
            assert!((got.accuracy - expected).abs() < 1e-10, "ε = {epsilon}: {} vs {expected}", got.accuracy);
            let bound = expected_scaled_bound_from_margin(margin / spread).unwrap();
            assert!((got.scaled_bound - bound).abs() < 1e-8 * bound);
        }
    }

    /// With no sampling noise and infinitely many degrees of freedom the
    /// estimator is the closed form; with the plug-in moments of a large
    /// sample it approaches it.
    #[test]
    fn the_estimator_reduces_to_the_closed_form_without_noise() {
        let lambda = [2.0, 1.0, 0.5, 0.25];
        let m2 = [0.4, 0.1, 0.05, 0.01];
        for epsilon in [0.0, 0.3] {
            let exact = population_outcome(&lambda, &m2, epsilon);
            let f = Functional { l: &lambda, m2: &m2, noise: 0.0, dof: 1e15 };
            let near = solve(&f, epsilon);
            assert!((near.accuracy - exact.accuracy).abs() < 1e-9, "{near:?} vs {exact:?}");
        }
    }

    #[test]
    fn no_signal_is_chance() {
        // ‖μ̂‖² below what the mean noise alone gives: ‖μ‖² is estimated ≤ 0.
        let moments = SampleMoments { eigenvalues: &[1.0; 8], mu_squared: &[1e-4; 8], counts: [50, 50], dim: 8 };
        let got = estimate_population_outcome(&moments, 0.2).unwrap();
        assert_eq!((got.accuracy, got.scaled_bound), (0.5, 0.0));
    }

    /// `n − 2 ≤ D`: no estimate, at every ε, whatever the kept spectrum.
    #[test]
    fn a_singular_covariance_has_no_estimate() {
        let l = [1.0; 8];
        let m2 = [0.5; 8];
        for (counts, dim, defined) in [([5, 5], 8, false), ([5, 6], 8, true), ([300, 212], 768, false)] {
            let moments = SampleMoments { eigenvalues: &l, mu_squared: &m2, counts, dim };
            for epsilon in [0.0, 0.2] {
                assert_eq!(estimate_population_outcome(&moments, epsilon).is_some(), defined, "{counts:?}, D = {dim}");
            }
        }
        assert!(!population_estimable(770, 768) && population_estimable(771, 768));
        for dim in [1, 40, 768] {
            let n = smallest_estimable_n(dim);
            assert!(population_estimable(n, dim) && !population_estimable(n - 1, dim));
        }
    }
}
