//! The expected scaled bound of SPEC §2 and the raw-data reference.

use crate::normal::{FRAC_1_SQRT_2PI, cdf, quantile};
use crate::{Result, ScaleOutcome, TheoryError};

/// Expected scaled bound of a correctly classified sample, as a function of
/// the accuracy `a` of a linear classifier on a symmetric Gaussian mixture
/// (SPEC §2): `E(a) = 1 + φ(Φ⁻¹(a)) / (a·Φ⁻¹(a))`.
///
/// Defined on (0.5, 1]; `E(1) = 1` exactly and `E(a) ~ 0.798/Φ⁻¹(a)` grows
/// without bound as `a → ½`. The operations follow the reference's order
/// (`1/(a·m)·φ-constant·exp(−m²/2) + 1`) so results agree to the last bit or two.
pub fn expected_scaled_bound(accuracy: f64) -> Result<f64> {
    if !(accuracy > 0.5 && accuracy <= 1.0) {
        return Err(TheoryError::AccuracyOutOfDomain { accuracy });
    }
    if accuracy == 1.0 {
        return Ok(1.0);
    }
    let m = quantile(accuracy);
    Ok(expected_scaled_bound_at_margin(accuracy, m))
}

/// `E` evaluated from an accuracy and its normal quantile `m = Φ⁻¹(a)`.
fn expected_scaled_bound_at_margin(accuracy: f64, m: f64) -> f64 {
    1.0 / (accuracy * m) * FRAC_1_SQRT_2PI * (-(m * m) / 2.0).exp() + 1.0
}

/// The expected scaled bound written from the normalised margin `m = Φ⁻¹(a) > 0`
/// directly: `1 + φ(m)/(Φ(m)·m)`. Avoids the quantile round trip when `m` is known.
pub fn expected_scaled_bound_from_margin(m: f64) -> Result<f64> {
    if m.is_nan() || m <= 0.0 {
        return Err(TheoryError::OutOfRange {
            what: "normalised margin",
            index: 0,
            value: m,
            expected: "a positive number",
        });
    }
    if m == f64::INFINITY {
        return Ok(1.0);
    }
    Ok(expected_scaled_bound_at_margin(cdf(m), m))
}

/// The raw-data reference at mean scale `scale > 0`: accuracy `Φ(s)` and
/// expected scaled bound `E(Φ(s))` of the Bayes classifier on the raw data
/// (SPEC §2: Σ = I, ℓ2 attack), the same record a representation's scale has.
pub fn raw_reference(scale: f64) -> Result<ScaleOutcome> {
    if !scale.is_finite() {
        return Err(TheoryError::NonFinite { what: "scale", index: 0, value: scale });
    }
    if scale <= 0.0 {
        return Err(TheoryError::OutOfRange {
            what: "scale",
            index: 0,
            value: scale,
            expected: "a positive mean scale (scale 0 is chance level)",
        });
    }
    let accuracy = cdf(scale);
    let scaled_bound = if accuracy == 1.0 { 1.0 } else { expected_scaled_bound_at_margin(accuracy, scale) };
    Ok(ScaleOutcome { accuracy, scaled_bound })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_is_half_open_above_chance() {
        for bad in [0.5, 0.3, 0.0, -1.0, 1.0 + 1e-12, f64::NAN] {
            assert!(matches!(expected_scaled_bound(bad), Err(TheoryError::AccuracyOutOfDomain { .. })), "{bad}");
        }
        assert_eq!(expected_scaled_bound(1.0), Ok(1.0));
    }

    #[test]
    fn bound_matches_a_numerical_integral() {
        // E[|m+Z|/m | m+Z>0] for Z ~ N(0,1), by Simpson's rule on the density.
        for a in [0.55, 0.7, 0.9, 0.99] {
            let m = quantile(a);
            let (lo, hi, n) = (-m, 12.0_f64, 20_000);
            let h = (hi - lo) / n as f64;
            let f = |z: f64| (m + z) / m * crate::normal::pdf(z);
            let mut sum = f(lo) + f(hi);
            for i in 1..n {
                sum += if i % 2 == 1 { 4.0 } else { 2.0 } * f(lo + i as f64 * h);
            }
            let integral = sum * h / 3.0 / a;
            let formula = expected_scaled_bound(a).unwrap();
            assert!((integral - formula).abs() < 1e-10 * formula, "a={a}: {integral} vs {formula}");
        }
    }

    #[test]
    fn raw_reference_is_phi_and_e_of_phi() {
        let r = raw_reference(1.0).unwrap();
        assert!((r.accuracy - 0.841_344_746_068_542_9).abs() < 1e-16);
        assert!((r.scaled_bound - expected_scaled_bound(r.accuracy).unwrap()).abs() < 1e-14);
        assert!((expected_scaled_bound_from_margin(1.0).unwrap() - r.scaled_bound).abs() < 1e-15);
        assert_eq!(raw_reference(40.0).unwrap().scaled_bound, 1.0);
        assert!(raw_reference(0.0).is_err());
        assert!(raw_reference(f64::NAN).is_err());
    }
}
