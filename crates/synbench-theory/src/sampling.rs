//! Train-sampling variances of one scale's estimates for Gaussian features
//! (SPEC §7.1), which calibrate the jackknife where its upward bias is
//! large (`synbench_probe::jackknife`).
//!
//! Both are of the ε = 0 probe, the plug-in linear discriminant
//! `w = S⁻¹μ̂` with threshold at the estimated midpoint, fitted on `n₁ + n₀`
//! samples in `D` dimensions, `ν = n₁ + n₀ − 2`, `κ = (1/n₁ + 1/n₀)/4`, and
//! depend on the features only through the squared Mahalanobis
//! half-distance `f = μᵀΣ⁻¹μ` (the discriminant is affine invariant, so
//! the features may be taken white, `Σ = I`):
//!
//! * [`mahalanobis_estimate_variance`]: the variance of the population
//!   estimator's signal `f̂`, exactly;
//! * [`plug_in_accuracy_variance`]: the variance of the plug-in probe's
//!   conditional accuracy, `a(w) = ½[Φ((wᵀμ − wᵀe)/‖w‖) + Φ((wᵀμ + wᵀe)/‖w‖)]`
//!   (`e` the midpoint's error), by a deterministic Monte Carlo over an exact
//!   reduction of the train sample to a few scalars.

use crate::normal::cdf;
use crate::population::{mean_noise, smallest_estimable_n};

/// The variance of the ε = 0 estimate `f̂ = (1 − D/ν)·μ̂ᵀS⁻¹μ̂ − κD` of
/// the squared Mahalanobis half-distance `f = μᵀΣ⁻¹μ` for Gaussian
/// features, in closed form: with `u = Σ^{-1/2}μ̂ ~ N(Σ^{-1/2}μ, κI)`
/// independent of `νS ~ W_D(Σ, ν)`, `μ̂ᵀS⁻¹μ̂ = ν‖u‖²/χ²_m` with
/// `m = ν − D + 1` independent of `u` (Muirhead, *Aspects of Multivariate
/// Statistical Theory*, 1982, Thm 3.2.12), `‖u‖²/κ` a noncentral χ²_D with
/// noncentrality `f/κ`, so with `A = f + Dκ` and `B = 2Dκ² + 4κf`
///
/// ```text
/// Var f̂ = (1 − D/ν)²·ν²·[(A² + B)/((m − 2)(m − 4)) − A²/(m − 2)²]
/// ```
///
/// (the first two moments of `1/χ²_m`). `f` is the one unknown; the caller
/// plugs in its estimate. `None` where the moments do not exist (`m ≤ 4`)
/// or `f` is negative or not finite.
pub fn mahalanobis_estimate_variance(f: f64, counts: [u64; 2], dim: usize) -> Option<f64> {
    let [n1, n0] = counts;
    if n1 == 0 || n0 == 0 || !(f.is_finite() && f >= 0.0) {
        return None;
    }
    let (nu, d) = ((n1 + n0) as f64 - 2.0, dim as f64);
    let m = nu - d + 1.0;
    if m <= 4.0 {
        return None;
    }
    let kappa = mean_noise(n1 as f64, n0 as f64);
    let a = f + d * kappa;
    let b = 2.0 * d * kappa * kappa + 4.0 * kappa * f;
    let var_t = nu * nu * ((a * a + b) / ((m - 2.0) * (m - 4.0)) - a * a / ((m - 2.0) * (m - 2.0)));
    Some((1.0 - d / nu).powi(2) * var_t)
}

/// Monte Carlo draws of [`plug_in_accuracy_variance`]: its relative error
/// is about `√(2/DRAWS)`, 3 %.
pub const PLUG_IN_DRAWS: usize = 2048;

/// The variance over train samples of the ε = 0 plug-in probe's
/// conditional accuracy (module doc) for Gaussian features with squared
/// Mahalanobis half-distance `f`.
///
/// In the white frame `μ̂ = μ + u`, `u ~ N(0, κI)`, the midpoint error
/// `e ~ N(0, κI)` and `νS ~ W_D(I, ν)` are independent, and `S` is
/// invariant under rotations. So, with `S = Σᵢ λᵢ vᵢvᵢᵀ`, the direction
/// of `μ̂` and the unit vector completing `μ` in the plane of the two are
/// a uniformly random orthonormal pair `(g, h)` in the eigenbasis (`g` is
/// drawn; `h` enters only through one coordinate, drawn as a scalar), and
///
/// ```text
/// wᵀμ/‖w‖ = √f·[cos θ·Σ gᵢ²/λᵢ + sin θ·Σ hᵢgᵢ/λᵢ] / (Σ gᵢ²/λᵢ²)^½,
/// cos θ = (f + √(fκ)·z₁)/(√f·‖μ̂‖),  ‖μ̂‖² = f + 2√(fκ)·z₁ + κ(z₁² + χ²_{D−1}),
/// ```
///
/// and `wᵀe/‖w‖ ~ N(0, κ)` (the two class shares taken equal). The
/// eigenvalues `λᵢ` are the Marchenko–Pastur quantiles of ratio `D/ν`
/// (the spectrum's own fluctuations move the accuracy at order `1/D`,
/// the directions' at `1/√D`). Each draw is `D` normal draws and a few
/// scalars; a fixed generator seed makes the result deterministic. `None` where the pooled
/// covariance is singular (`ν ≤ D`) or `f` is not finite and positive.
pub fn plug_in_accuracy_variance(f: f64, counts: [u64; 2], dim: usize) -> Option<f64> {
    let [n1, n0] = counts;
    if dim == 0 || n1 == 0 || n0 == 0 || n1 + n0 < smallest_estimable_n(dim) || !(f.is_finite() && f > 0.0) {
        return None;
    }
    let nu = (n1 + n0) as f64 - 2.0;
    let kappa = mean_noise(n1 as f64, n0 as f64);
    let inverse: Vec<f64> = marchenko_pastur_quantiles(dim as f64 / nu, dim).iter().map(|l| 1.0 / l).collect();
    let mut rng = Normal::new(0x5eed_b1a5_u64 ^ dim as u64);
    let mut g = vec![0.0; dim];
    let (mut sum, mut sum_sq) = (0.0, 0.0);
    for _ in 0..PLUG_IN_DRAWS {
        // The direction g of μ̂ in the eigenbasis; S⁻¹g = along·g + a rest
        // orthogonal to g, of which a uniform unit vector h ⊥ g sees the
        // first coordinate of a uniform point on the sphere of D − 1
        // dimensions: z/√(z² + χ²_{D−2}).
        g.iter_mut().for_each(|x| *x = rng.sample());
        let (mut gg, mut along, mut norm) = (0.0, 0.0, 0.0);
        for (&l, &gi) in inverse.iter().zip(&g) {
            gg += gi * gi;
            along += gi * gi * l;
            norm += gi * gi * l * l;
        }
        let (along, norm) = (along / gg, (norm / gg).sqrt());
        let across = if dim > 1 {
            let z = rng.sample();
            let rest = (norm * norm - along * along).max(0.0).sqrt();
            rest * z / (z * z + rng.chi_squared(dim - 2)).sqrt()
        } else {
            0.0
        };
        // The angle between μ̂ and μ; ‖u‖² = κ(z₁² + χ²_{D−1}).
        let z1 = rng.sample();
        let rest = rng.chi_squared(dim - 1);
        let along_mu = f + (f * kappa).sqrt() * z1;
        let length = (f + 2.0 * (f * kappa).sqrt() * z1 + kappa * (z1 * z1 + rest)).sqrt();
        let cos = along_mu / (f.sqrt() * length);
        let sin = (1.0 - cos * cos).max(0.0).sqrt();
        let margin = f.sqrt() * (cos * along + sin * across) / norm;
        let shift = kappa.sqrt() * rng.sample();
        let accuracy = 0.5 * (cdf(margin - shift) + cdf(margin + shift));
        sum += accuracy;
        sum_sq += accuracy * accuracy;
    }
    let k = PLUG_IN_DRAWS as f64;
    let mean = sum / k;
    Some(((sum_sq - k * mean * mean) / (k - 1.0)).max(0.0))
}

/// `count` quantiles `F⁻¹((i + ½)/count)` of the Marchenko–Pastur law of
/// ratio `gamma < 1` (the spectrum of `W/ν`, `W ~ W_D(I, ν)`, `D/ν → gamma`),
/// ascending: the law's cdf by the trapezoid rule in `x = a + (b − a)(1 − cos t)/2`,
/// which makes the integrand smooth at the edges `a, b = (1 ∓ √gamma)²`.
pub fn marchenko_pastur_quantiles(gamma: f64, count: usize) -> Vec<f64> {
    const STEPS: usize = 8192;
    let (a, b) = ((1.0 - gamma.sqrt()).powi(2), (1.0 + gamma.sqrt()).powi(2));
    let x = |t: f64| a + (b - a) * (1.0 - t.cos()) / 2.0;
    let density = |t: f64| (b - a).powi(2) / 4.0 * t.sin().powi(2) / (2.0 * std::f64::consts::PI * gamma * x(t));
    let dt = std::f64::consts::PI / STEPS as f64;
    let mut cumulative = vec![0.0; STEPS + 1];
    for s in 1..=STEPS {
        cumulative[s] = cumulative[s - 1] + 0.5 * dt * (density((s - 1) as f64 * dt) + density(s as f64 * dt));
    }
    let total = cumulative[STEPS];
    let mut out = Vec::with_capacity(count);
    let mut s = 0;
    for i in 0..count {
        let p = (i as f64 + 0.5) / count as f64 * total;
        while s + 1 < STEPS && cumulative[s + 1] < p {
            s += 1;
        }
        let frac = (p - cumulative[s]) / (cumulative[s + 1] - cumulative[s]);
        out.push(x((s as f64 + frac) * dt));
    }
    out
}

/// Standard normal draws: SplitMix64 and the Box–Muller transform, so the
/// Monte Carlo is deterministic without a generator dependency.
struct Normal {
    state: u64,
    spare: Option<f64>,
}

impl Normal {
    fn new(seed: u64) -> Self {
        Normal { state: seed, spare: None }
    }

    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // (0, 1]: never zero, for the logarithm.
        ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// A χ² draw with `k` degrees of freedom: `2·Gamma(k/2)` by
    /// Marsaglia and Tsang's method (ACM TOMS 26, 2000), exact, with the
    /// `u^(1/a)` boost for `k/2 < 1`.
    fn chi_squared(&mut self, k: usize) -> f64 {
        if k == 0 {
            return 0.0;
        }
        let shape = k as f64 / 2.0;
        let (a, boost) = if shape < 1.0 { (shape + 1.0, self.uniform().powf(1.0 / shape)) } else { (shape, 1.0) };
        let d = a - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = self.sample();
            let v = (1.0 + c * z).powi(3);
            if v > 0.0 && self.uniform().ln() < z * z / 2.0 + d - d * v + d * v.ln() {
                return 2.0 * d * v * boost;
            }
        }
    }

    fn sample(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let radius = (-2.0 * u.ln()).sqrt();
        let angle = 2.0 * std::f64::consts::PI * v;
        self.spare = Some(radius * angle.sin());
        radius * angle.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marchenko_pastur_quantiles_have_the_law_s_moments() {
        // E λ = 1, E λ² = 1 + γ, E 1/λ = 1/(1 − γ).
        for gamma in [0.1, 0.5] {
            let q = marchenko_pastur_quantiles(gamma, 4000);
            let mean = |f: &dyn Fn(f64) -> f64| q.iter().map(|&l| f(l)).sum::<f64>() / q.len() as f64;
            assert!((mean(&|l| l) - 1.0).abs() < 1e-3, "γ {gamma}: mean {}", mean(&|l| l));
            assert!((mean(&|l| l * l) - (1.0 + gamma)).abs() < 2e-3, "γ {gamma}");
            assert!((mean(&|l| 1.0 / l) - 1.0 / (1.0 - gamma)).abs() < 5e-3, "γ {gamma}");
            assert!(q.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = Normal::new(3);
        let draws: Vec<f64> = (0..200_000).map(|_| rng.sample()).collect();
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        let var = draws.iter().map(|z| (z - mean).powi(2)).sum::<f64>() / draws.len() as f64;
        let fourth = draws.iter().map(|z| z.powi(4)).sum::<f64>() / draws.len() as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01 && (fourth - 3.0).abs() < 0.05);
    }

    #[test]
    fn chi_squared_draws_have_their_mean_and_variance() {
        let mut rng = Normal::new(5);
        for k in [1usize, 3, 40, 700] {
            let draws: Vec<f64> = (0..100_000).map(|_| rng.chi_squared(k)).collect();
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / draws.len() as f64;
            let k = k as f64;
            assert!((mean / k - 1.0).abs() < 0.015, "k {k}: mean {mean}");
            assert!((var / (2.0 * k) - 1.0).abs() < 0.04, "k {k}: variance {var}");
        }
    }

    #[test]
    fn plug_in_variance_is_deterministic_and_shrinks_with_n() {
        let f = 0.7;
        let small = plug_in_accuracy_variance(f, [256, 256], 64).unwrap();
        assert_eq!(small, plug_in_accuracy_variance(f, [256, 256], 64).unwrap());
        let large = plug_in_accuracy_variance(f, [1024, 1024], 64).unwrap();
        assert!(large < small / 2.0, "{large} against {small}");
        assert_eq!(plug_in_accuracy_variance(f, [32, 32], 64), None);
    }
}
