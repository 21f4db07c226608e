//! The standard normal distribution: pdf φ, cdf Φ and quantile Φ⁻¹; and
//! Student's t two-sided tail probability (a paired comparison's p-value).
//!
//! Φ uses `libm::erfc` (rust-lang's port of musl/FreeBSD's, under 1 ulp);
//! statrs' own `erfc` is off by ~1e-11 relative (Φ(1) = 0.84134474605494
//! against 0.84134474606854; see the tests), too coarse for a 1e-9 score.
//! Φ⁻¹ starts from statrs' `erfc_inv` and takes two Halley steps on libm's
//! erf/erfc: near p = ½ on `½·erf(m/√2) = p − ½` (where `p − ½` is exact), in
//! the tails on `½·erfc(m/√2) = 1 − p` (exact too), so it keeps full relative
//! precision from `p = ½ + 1e-12` to `p = 1 − 2⁻⁵²`; the conformance fixtures
//! check it against scipy's `ndtri`.

use statrs::function::beta::beta_reg;
use statrs::function::erf::erfc_inv;

/// `P(|T| ≥ |t|)` for Student's t with `dof` degrees of freedom:
/// `I_{ν/(ν+t²)}(ν/2, ½)` (the regularized incomplete beta function).
/// NaN for a NaN `t`; 1 at `t = 0`.
pub fn students_t_two_sided(t: f64, dof: f64) -> f64 {
    if t.is_nan() || dof.is_nan() || dof <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    beta_reg(dof / 2.0, 0.5, dof / (dof + t * t))
}

/// 1/√(2π).
pub const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Standard normal density φ(x).
pub fn pdf(x: f64) -> f64 {
    FRAC_1_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Standard normal distribution function Φ(x) = ½·erfc(−x/√2).
pub fn cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Upper tail 1 − Φ(x) = ½·erfc(x/√2), accurate where Φ(x) rounds to 1.
pub fn survival(x: f64) -> f64 {
    0.5 * libm::erfc(x / std::f64::consts::SQRT_2)
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
    if p == 0.5 {
        return 0.0;
    }
    // Work on the upper half: m > 0 with tail = 1 − Φ(m), centre = Φ(m) − ½.
    let (sign, tail, centre) = if p > 0.5 { (1.0, 1.0 - p, p - 0.5) } else { (-1.0, p, 0.5 - p) };
    let mut m = std::f64::consts::SQRT_2 * erfc_inv(2.0 * tail);
    for _ in 0..2 {
        let density = pdf(m);
        let t = if centre < 0.25 {
            (0.5 * libm::erf(m / std::f64::consts::SQRT_2) - centre) / density
        } else {
            -(survival(m) - tail) / density
        };
        if !t.is_finite() {
            break;
        }
        m -= t / (1.0 + 0.5 * m * t);
    }
    sign * m
}

#[cfg(test)]
mod tests {

    #[test]
    fn students_t_tails_match_closed_forms() {
        // t₀.₉₇₅ with 9 degrees of freedom (the jackknife's) leaves 5 % in both tails
        // (statrs' incomplete beta: ~1e-10 relative).
        assert!((students_t_two_sided(2.262_157_162_740_992, 9.0) - 0.05).abs() < 1e-11);
        // Closed forms: ν = 1 (Cauchy) 1 − (2/π)·atan|t|, ν = 2: 1 − |t|/√(2 + t²).
        for t in [-3.0, 0.5, 1.0, 7.0] {
            let cauchy = 1.0 - 2.0 / std::f64::consts::PI * f64::atan(f64::abs(t));
            assert!((students_t_two_sided(t, 1.0) - cauchy).abs() < 1e-12, "ν = 1, t = {t}");
            let two = 1.0 - f64::abs(t) / (2.0 + t * t).sqrt();
            assert!((students_t_two_sided(t, 2.0) - two).abs() < 1e-12, "ν = 2, t = {t}");
        }
        assert_eq!(students_t_two_sided(0.0, 9.0), 1.0);
        assert_eq!(students_t_two_sided(f64::INFINITY, 9.0), 0.0);
        assert!(students_t_two_sided(f64::NAN, 9.0).is_nan());
    }
    use super::*;

    fn check(x: f64, expected_cdf: f64) {
        let got = cdf(x);
        // Rounding −x/√2 costs ~x²·ε relative in the lower tail.
        let tol = 4.0 * f64::EPSILON * (x * x).max(1.0) * expected_cdf;
        assert!((got - expected_cdf).abs() <= tol, "cdf({x}) = {got}, want {expected_cdf}");
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
    fn quantile_keeps_relative_precision_near_one_half_and_one() {
        // scipy.special.ndtri values.
        let cases = [
            (0.500_000_000_001, 2.506_572_823_701_860_7e-12),
            (0.5001, 2.506_628_300_880_075e-4),
            (0.975, 1.959_963_984_540_054),
            (0.999_999_999, 5.997_807_019_601_637),
            (0.999_999_999_999_999_8, 8.125_890_664_701_908),
        ];
        for (p, want) in cases {
            let got = quantile(p);
            assert!((got - want).abs() <= 4.0 * f64::EPSILON * want, "quantile({p}) = {got}, want {want}");
            assert!((quantile(1.0 - p) + want).abs() <= 1e-8 * want, "lower tail at {p}");
        }
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
