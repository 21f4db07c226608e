//! The exact ℓ2 QCQP behind the ε-robust Bayes probe (SPEC §3):
//!
//! ```text
//! minimise   Σᵢ dᵢ (μᵢ − zᵢ)²    subject to   ‖z‖₂ ≤ δ,      dᵢ > 0.
//! ```
//!
//! In the probe `dᵢ = 1/λᵢ` (the inverse eigenvalues of the pooled
//! covariance). The KKT conditions give `zᵢ(ν) = dᵢμᵢ/(dᵢ + ν)` for a
//! multiplier `ν ≥ 0`; when `δ < ‖μ‖` the constraint is active and `ν > 0`
//! solves the secular equation `‖z(ν)‖ = δ`. `‖z(ν)‖` falls monotonically, so
//! the root is bracketed by `[d_min·(r−1), d_max·(r−1)]`, `r = ‖μ‖/δ`, and a
//! Newton iteration on `1/‖z(ν)‖ − 1/δ` (nearly linear in ν) safeguarded by
//! that bracket reaches machine precision in a handful of steps, whatever the
//! spread of `d` (bisection is geometric, so 12 decades cost ~40 halvings at
//! worst).

use crate::error::ensure_finite;
use crate::{Result, TheoryError};

/// Solution of the ℓ2 QCQP.
#[derive(Debug, Clone, PartialEq)]
pub struct QcqpSolution {
    /// The minimiser `z*`.
    pub z: Vec<f64>,
    /// The Lagrange multiplier: 0 when the constraint is inactive (`δ ≥ ‖μ‖`,
    /// `z* = μ`), `+∞` when `δ = 0` (`z* = 0`).
    pub nu: f64,
    /// Newton/bisection steps taken.
    pub iterations: usize,
}

impl QcqpSolution {
    /// Objective value `Σ dᵢ (μᵢ − zᵢ)²` at `z*`.
    pub fn objective(&self, mu: &[f64], d: &[f64]) -> f64 {
        mu.iter().zip(d).zip(&self.z).map(|((m, d), z)| d * (m - z) * (m - z)).sum()
    }
}

/// Attack radius `δ = ε·‖μ‖₂` for a robustness level `ε ∈ [0, 1)`.
pub fn attack_radius(epsilon: f64, mu: &[f64]) -> Result<f64> {
    if !(0.0..1.0).contains(&epsilon) {
        return Err(TheoryError::EpsilonOutOfRange { epsilon });
    }
    ensure_finite("mu", mu)?;
    Ok(epsilon * norm2(mu))
}

/// Solves `min Σ dᵢ(μᵢ − zᵢ)²  s.t. ‖z‖₂ ≤ δ` exactly (to machine precision).
pub fn solve_l2_qcqp(mu: &[f64], d: &[f64], delta: f64) -> Result<QcqpSolution> {
    if mu.len() != d.len() {
        return Err(TheoryError::LengthMismatch { left: "mu", left_len: mu.len(), right: "d", right_len: d.len() });
    }
    if mu.is_empty() {
        return Err(TheoryError::Empty { what: "mu" });
    }
    ensure_finite("mu", mu)?;
    ensure_finite("d", d)?;
    ensure_finite("delta", &[delta])?;
    if let Some(index) = d.iter().position(|&v| v <= 0.0) {
        return Err(TheoryError::OutOfRange { what: "d", index, value: d[index], expected: "a positive weight" });
    }
    if delta < 0.0 {
        return Err(TheoryError::OutOfRange { what: "delta", index: 0, value: delta, expected: "a radius >= 0" });
    }
    if delta == 0.0 {
        return Ok(QcqpSolution { z: vec![0.0; mu.len()], nu: f64::INFINITY, iterations: 0 });
    }
    let norm_mu = norm2(mu);
    if norm_mu <= delta {
        return Ok(QcqpSolution { z: mu.to_vec(), nu: 0.0, iterations: 0 });
    }

    // Bracket over the components that carry signal (μᵢ ≠ 0).
    let (d_min, d_max) = mu
        .iter()
        .zip(d)
        .filter(|(m, _)| **m != 0.0)
        .fold((f64::INFINITY, 0.0_f64), |(lo, hi), (_, &d)| (lo.min(d), hi.max(d)));
    let excess = norm_mu / delta - 1.0;
    let (mut lo, mut hi) = (d_min * excess, d_max * excess);
    let target = 1.0 / delta;

    // g(ν) = 1/‖z(ν)‖ − 1/δ, increasing in ν; g' = ‖z‖⁻³ Σ μᵢ²dᵢ²/(dᵢ+ν)³.
    let eval = |nu: f64| {
        let (mut s2, mut s3) = (0.0, 0.0);
        for (&m, &d) in mu.iter().zip(d) {
            let t = d * m / (d + nu);
            s2 += t * t;
            s3 += t * t / (d + nu);
        }
        let norm = s2.sqrt();
        (1.0 / norm - target, s3 / (norm * norm * norm))
    };

    let mut nu = lo;
    let mut iterations = 0;
    for _ in 0..200 {
        iterations += 1;
        let (g, slope) = eval(nu);
        if g == 0.0 {
            break;
        }
        if g < 0.0 {
            lo = nu;
        } else {
            hi = nu;
        }
        if hi - lo <= 4.0 * f64::EPSILON * hi {
            break;
        }
        let newton = nu - g / slope;
        nu = if newton > lo && newton < hi && newton.is_finite() {
            newton
        } else if lo > 0.0 && hi > 16.0 * lo {
            (lo * hi).sqrt()
        } else {
            0.5 * (lo + hi)
        };
    }
    let z = mu.iter().zip(d).map(|(&m, &d)| d * m / (d + nu)).collect();
    Ok(QcqpSolution { z, nu, iterations })
}

fn norm2(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KKT check: feasibility, complementary slackness and stationarity
    /// `dᵢ(zᵢ − μᵢ) + ν zᵢ = 0`, all relative to the data's size.
    fn check_kkt(mu: &[f64], d: &[f64], delta: f64) -> QcqpSolution {
        let sol = solve_l2_qcqp(mu, d, delta).unwrap();
        let norm_z = norm2(&sol.z);
        let scale = mu.iter().zip(d).map(|(m, d)| (m * d).abs()).fold(0.0, f64::max);
        assert!(norm_z <= delta * (1.0 + 1e-14), "infeasible: {norm_z} > {delta}");
        if sol.nu > 0.0 && sol.nu.is_finite() {
            assert!((norm_z - delta).abs() <= 1e-13 * delta, "inactive with nu > 0: {norm_z} vs {delta}");
            for i in 0..mu.len() {
                let r = d[i] * (sol.z[i] - mu[i]) + sol.nu * sol.z[i];
                assert!(r.abs() <= 1e-12 * scale, "stationarity {i}: {r}");
            }
        }
        sol
    }

    #[test]
    fn diagonal_identity_is_a_scaled_mu() {
        // d = 1: z = μ·δ/‖μ‖.
        let mu = [3.0, 4.0];
        let sol = check_kkt(&mu, &[1.0, 1.0], 1.0);
        assert!((sol.z[0] - 0.6).abs() < 1e-15 && (sol.z[1] - 0.8).abs() < 1e-15);
        assert!((sol.nu - 4.0).abs() < 1e-13);
    }

    #[test]
    fn edges_zero_radius_and_inactive_constraint() {
        let mu = [1.0, -2.0, 0.5];
        let d = [1.0, 10.0, 0.1];
        let zero = solve_l2_qcqp(&mu, &d, 0.0).unwrap();
        assert_eq!(zero.z, vec![0.0; 3]);
        assert_eq!(zero.nu, f64::INFINITY);
        let n = norm2(&mu);
        for delta in [n, 2.0 * n] {
            let sol = solve_l2_qcqp(&mu, &d, delta).unwrap();
            assert_eq!(sol.z, mu.to_vec());
            assert_eq!(sol.nu, 0.0);
        }
    }

    #[test]
    fn twelve_decades_of_conditioning() {
        let n = 64;
        let d: Vec<f64> = (0..n).map(|i| 10f64.powf(-6.0 + 12.0 * i as f64 / (n - 1) as f64)).collect();
        let mu: Vec<f64> = (0..n).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
        for eps in [1e-6, 0.01, 0.2, 0.5, 0.9, 0.999_999] {
            let delta = eps * norm2(&mu);
            let sol = check_kkt(&mu, &d, delta);
            assert!(sol.iterations < 100, "eps {eps}: {} steps", sol.iterations);
        }
    }

    #[test]
    fn zero_components_and_repeated_weights() {
        let mu = [0.0, 1.0, 0.0, -1.0];
        let sol = check_kkt(&mu, &[2.0, 2.0, 2.0, 2.0], 0.5);
        assert_eq!(sol.z[0], 0.0);
        assert!((sol.z[1] - 0.5 / 2f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(matches!(solve_l2_qcqp(&[1.0], &[1.0, 2.0], 0.1), Err(TheoryError::LengthMismatch { .. })));
        assert!(matches!(solve_l2_qcqp(&[f64::NAN], &[1.0], 0.1), Err(TheoryError::NonFinite { what: "mu", .. })));
        assert!(matches!(solve_l2_qcqp(&[1.0], &[0.0], 0.1), Err(TheoryError::OutOfRange { what: "d", .. })));
        assert!(matches!(solve_l2_qcqp(&[1.0], &[1.0], -0.1), Err(TheoryError::OutOfRange { what: "delta", .. })));
        assert!(matches!(attack_radius(1.0, &[1.0]), Err(TheoryError::EpsilonOutOfRange { .. })));
        assert!(matches!(attack_radius(-0.1, &[1.0]), Err(TheoryError::EpsilonOutOfRange { .. })));
        assert_eq!(attack_radius(0.5, &[3.0, 4.0]), Ok(2.5));
    }
}
