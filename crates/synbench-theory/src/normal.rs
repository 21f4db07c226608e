//! The standard normal distribution: pdf φ, cdf Φ and quantile Φ⁻¹.
//!
//! Built on statrs' `erfc` and `erfc_inv` (Boost's rational approximations).
//! `Φ⁻¹(p) = −√2·erfc⁻¹(2p)` keeps full relative precision both near p = ½
//! (where `2p − 1` is exact) and near p = 1 (where `2 − 2p` is exact); the
//! conformance fixtures check it against scipy's `ndtri` to 1e-9 relative
//! from `p = ½ + 1e-12` to `p = 1 − 2⁻⁵²`.

use statrs::function::erf::{erfc, erfc_inv};

/// 1/√(2π).
pub const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Standard normal density φ(x).
pub fn pdf(x: f64) -> f64 {
    FRAC_1_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Standard normal distribution function Φ(x) = ½·erfc(−x/√2).
pub fn cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal quantile Φ⁻¹(p): `-∞` at 0, `+∞` at 1, NaN outside [0, 1].
pub fn quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    -std::f64::consts::SQRT_2 * erfc_inv(2.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(x: f64, expected_cdf: f64) {
        let got = cdf(x);
        assert!(
            (got - expected_cdf).abs() <= 1e-15 * expected_cdf.max(1e-300),
            "cdf({x}) = {got}, want {expected_cdf}"
        );
        let back = quantile(got);
        assert!((back - x).abs() <= 1e-12 * x.abs().max(1.0), "quantile(cdf({x})) = {back}");
    }

    #[test]
    fn cdf_and_quantile_match_published_values() {
        // Φ values from scipy.special.ndtr (float64).
        check(0.0, 0.5);
        check(1.0, 0.841_344_746_068_542_9);
        check(-1.959_963_984_540_054, 0.025);
        check(3.0, 0.998_650_101_968_369_9);
        check(-8.0, 6.220_960_574_271_785e-16);
    }

    #[test]
    fn pdf_integrates_to_the_cdf_difference() {
        // Simpson's rule on [-1, 2] against Φ(2) − Φ(−1).
        let (a, b, n) = (-1.0_f64, 2.0_f64, 2000);
        let h = (b - a) / n as f64;
        let mut sum = pdf(a) + pdf(b);
        for i in 1..n {
            let x = a + i as f64 * h;
            sum += if i % 2 == 1 { 4.0 } else { 2.0 } * pdf(x);
        }
        let integral = sum * h / 3.0;
        assert!((integral - (cdf(b) - cdf(a))).abs() < 1e-13);
    }

    #[test]
    fn quantile_edges() {
        assert_eq!(quantile(0.5), 0.0);
        assert_eq!(quantile(1.0), f64::INFINITY);
        assert_eq!(quantile(0.0), f64::NEG_INFINITY);
        assert!(quantile(1.5).is_nan());
        assert!(quantile(f64::NAN).is_nan());
    }
}
