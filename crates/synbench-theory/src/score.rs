//! The expected-bound curve and the SynBench score (SPEC §4).

use crate::error::ensure_finite;
use crate::{Result, TheoryError};

/// The thresholds at which the paper reports SynBench scores.
pub const PAPER_THRESHOLDS: [f64; 9] = [0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99];

/// Accuracy and mean scaled bound of one mean scale, for the raw data or for
/// a representation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaleOutcome {
    /// Share of correctly classified test samples, in [0, 1].
    pub accuracy: f64,
    /// Mean scaled bound over the correctly classified samples, ≥ 0.
    pub scaled_bound: f64,
}

/// How the area under the expected-bound curve is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScoreMode {
    /// Sum of the step curve over the grid `linspace(0.6, 1, 100)` above the
    /// threshold, as the reference implementation does.
    #[default]
    Reference,
    /// The exact integral `∫ₜ¹ E(a) da = (1/S)·Σₛ boundₛ·(accₛ − t)₊`.
    Exact,
}

impl ScoreMode {
    /// Every mode, the default first.
    pub const ALL: [Self; 2] = [ScoreMode::Reference, ScoreMode::Exact];

    /// The config spelling (`"reference"`, `"exact"`).
    pub const fn name(self) -> &'static str {
        match self {
            ScoreMode::Reference => "reference",
            ScoreMode::Exact => "exact",
        }
    }
}

/// What a run scores: the accuracy thresholds and the mode, checked once.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSpec {
    thresholds: Vec<f64>,
    mode: ScoreMode,
}

impl ScoreSpec {
    /// Checks `thresholds` (non-empty, finite, each in [0, 1]).
    pub fn new(thresholds: Vec<f64>, mode: ScoreMode) -> Result<Self> {
        validate_thresholds(&thresholds)?;
        Ok(Self { thresholds, mode })
    }

    /// The paper's thresholds in `reference` mode.
    pub fn paper() -> Self {
        Self { thresholds: PAPER_THRESHOLDS.to_vec(), mode: ScoreMode::Reference }
    }

    /// Accuracy thresholds.
    pub fn thresholds(&self) -> &[f64] {
        &self.thresholds
    }

    /// The score mode.
    pub fn mode(&self) -> ScoreMode {
        self.mode
    }
}

/// numpy's `linspace(start, stop, num)` to the bit: `xᵢ = i·step + start`,
/// the last point set to `stop`.
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    match num {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (stop - start) / (num - 1) as f64;
            let mut grid: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
            grid[num - 1] = stop;
            grid
        }
    }
}

/// The reference's threshold-accuracy grid `linspace(0.6, 1.0, 100)`.
pub fn reference_threshold_grid() -> Vec<f64> {
    linspace(0.6, 1.0, 100)
}

/// Checks a list of per-scale outcomes: non-empty, finite, accuracy in
/// [0, 1], bound ≥ 0.
pub fn validate_outcomes(what: &'static str, outcomes: &[ScaleOutcome]) -> Result<()> {
    if outcomes.is_empty() {
        return Err(TheoryError::Empty { what });
    }
    for (index, o) in outcomes.iter().enumerate() {
        for value in [o.accuracy, o.scaled_bound] {
            if !value.is_finite() {
                return Err(TheoryError::NonFinite { what, index, value });
            }
        }
        if !(0.0..=1.0).contains(&o.accuracy) {
            return Err(TheoryError::OutOfRange { what, index, value: o.accuracy, expected: "an accuracy in [0, 1]" });
        }
        if o.scaled_bound < 0.0 {
            return Err(TheoryError::OutOfRange {
                what,
                index,
                value: o.scaled_bound,
                expected: "a scaled bound >= 0",
            });
        }
    }
    Ok(())
}

/// The expected-bound curve `E(aₜ) = (1/S)·Σₛ boundₛ·1[accₛ > aₜ]` (strict `>`)
/// at every grid point.
pub fn expected_bound_curve(outcomes: &[ScaleOutcome], grid: &[f64]) -> Result<Vec<f64>> {
    validate_outcomes("scale outcomes", outcomes)?;
    ensure_finite("threshold grid", grid)?;
    let count = outcomes.len() as f64;
    Ok(grid
        .iter()
        .map(|&x| outcomes.iter().filter(|o| o.accuracy > x).fold(0.0, |sum, o| sum + o.scaled_bound) / count)
        .collect())
}

/// SynBench scores of a representation against the raw data, one per threshold.
///
/// `Reference`: `Σ_{aₜ ≥ t} E_rep(aₜ) / Σ_{aₜ ≥ t} E_raw(aₜ)` on
/// [`reference_threshold_grid`]. `Exact`: the ratio of the exact integrals.
/// Where the raw area is zero (too few scales reach the threshold) the ratio
/// is `+∞` or NaN, as the reference prints it; callers report it, not hide it.
pub fn synbench_scores(
    representation: &[ScaleOutcome],
    raw: &[ScaleOutcome],
    thresholds: &[f64],
    mode: ScoreMode,
) -> Result<Vec<f64>> {
    validate_outcomes("representation outcomes", representation)?;
    validate_outcomes("raw outcomes", raw)?;
    validate_thresholds(thresholds)?;
    Ok(match mode {
        ScoreMode::Reference => {
            let grid = reference_threshold_grid();
            let rep = expected_bound_curve(representation, &grid)?;
            let raw = expected_bound_curve(raw, &grid)?;
            thresholds.iter().map(|&t| area_above(&grid, &rep, t) / area_above(&grid, &raw, t)).collect()
        }
        ScoreMode::Exact => thresholds.iter().map(|&t| exact_area(representation, t) / exact_area(raw, t)).collect(),
    })
}

fn validate_thresholds(thresholds: &[f64]) -> Result<()> {
    if thresholds.is_empty() {
        return Err(TheoryError::Empty { what: "thresholds" });
    }
    ensure_finite("thresholds", thresholds)?;
    match thresholds.iter().position(|t| !(0.0..=1.0).contains(t)) {
        Some(index) => Err(TheoryError::OutOfRange {
            what: "thresholds",
            index,
            value: thresholds[index],
            expected: "an accuracy threshold in [0, 1]",
        }),
        None => Ok(()),
    }
}

fn area_above(grid: &[f64], curve: &[f64], threshold: f64) -> f64 {
    // Start from +0.0: Rust's float `sum` of nothing is −0.0, which turns an
    // empty raw area into −∞ instead of the reference's +∞.
    grid.iter().zip(curve).filter(|(x, _)| **x >= threshold).fold(0.0, |sum, (_, c)| sum + c)
}

fn exact_area(outcomes: &[ScaleOutcome], threshold: f64) -> f64 {
    let total = outcomes.iter().fold(0.0, |sum, o| sum + o.scaled_bound * (o.accuracy - threshold).max(0.0));
    total / outcomes.len() as f64
}

/// Bit-exact emulation of the reference's float32 arithmetic, for users who
/// must reproduce a published table to the last digit.
///
/// The reference keeps representation bounds as float32, builds each curve
/// point with numpy's float32 `mean` (pairwise summation) and sums the curve
/// above a threshold sequentially in float32, dividing by the float64 raw sum.
pub mod reference_f32 {
    use super::{ScaleOutcome, validate_outcomes};
    use crate::Result;

    /// The representation curve exactly as the reference computes it.
    pub fn curve(outcomes: &[ScaleOutcome], grid: &[f64]) -> Result<Vec<f32>> {
        validate_outcomes("scale outcomes", outcomes)?;
        let mut masked = vec![0.0_f32; outcomes.len()];
        Ok(grid
            .iter()
            .map(|&x| {
                for (slot, o) in masked.iter_mut().zip(outcomes) {
                    *slot = if o.accuracy > x { o.scaled_bound as f32 } else { 0.0 };
                }
                numpy_pairwise_sum(&masked) / outcomes.len() as f32
            })
            .collect())
    }

    /// Scores from a float32 representation curve and a float64 raw curve.
    pub fn scores(rep_curve: &[f32], raw_curve: &[f64], grid: &[f64], thresholds: &[f64]) -> Vec<f64> {
        thresholds
            .iter()
            .map(|&t| {
                let (mut rep, mut raw) = (0.0_f32, 0.0_f64);
                for ((&x, &r), &w) in grid.iter().zip(rep_curve).zip(raw_curve) {
                    if x >= t {
                        rep += r;
                        raw += w;
                    }
                }
                f64::from(rep) / raw
            })
            .collect()
    }

    /// numpy's `pairwise_sum` for float32: plain below 8 elements, eight
    /// interleaved accumulators up to 128, halving (at a multiple of 8) above.
    pub fn numpy_pairwise_sum(a: &[f32]) -> f32 {
        let n = a.len();
        if n < 8 {
            let mut res = 0.0_f32;
            for &v in a {
                res += v;
            }
            res
        } else if n <= 128 {
            let mut r = [0.0_f32; 8];
            r.copy_from_slice(&a[..8]);
            let full = n - n % 8;
            let mut i = 8;
            while i < full {
                for k in 0..8 {
                    r[k] += a[i + k];
                }
                i += 8;
            }
            let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
            for &v in &a[full..] {
                res += v;
            }
            res
        } else {
            let mut half = n / 2;
            half -= half % 8;
            numpy_pairwise_sum(&a[..half]) + numpy_pairwise_sum(&a[half..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bound::raw_reference;

    fn outcomes(pairs: &[(f64, f64)]) -> Vec<ScaleOutcome> {
        pairs.iter().map(|&(accuracy, scaled_bound)| ScaleOutcome { accuracy, scaled_bound }).collect()
    }

    #[test]
    fn grid_is_numpy_linspace() {
        let grid = reference_threshold_grid();
        assert_eq!(grid.len(), 100);
        assert_eq!(grid[0], 0.6);
        assert_eq!(grid[99], 1.0);
        assert_eq!(grid[1], 0.6 + 0.4 / 99.0);
    }

    #[test]
    fn curve_uses_strict_inequality() {
        let grid = [0.6, 0.7, 0.8];
        let curve = expected_bound_curve(&outcomes(&[(0.7, 2.0), (0.9, 4.0)]), &grid).unwrap();
        assert_eq!(curve, vec![3.0, 2.0, 2.0]);
    }

    #[test]
    fn identical_outcomes_score_one_in_both_modes() {
        let raw: Vec<ScaleOutcome> = [0.5, 1.0, 2.0, 3.0]
            .iter()
            .map(|&s| {
                let r = raw_reference(s).unwrap();
                ScaleOutcome { accuracy: r.accuracy, scaled_bound: r.scaled_bound }
            })
            .collect();
        for mode in [ScoreMode::Reference, ScoreMode::Exact] {
            let scores = synbench_scores(&raw, &raw, &PAPER_THRESHOLDS, mode).unwrap();
            assert!(scores.iter().all(|&s| (s - 1.0).abs() < 1e-15), "{mode:?}: {scores:?}");
        }
    }

    #[test]
    fn exact_mode_is_the_integral_of_the_step_curve() {
        // One scale at accuracy 0.9, bound 2: ∫_0.7^1 2·1[0.9 > a] da = 0.4.
        let rep = outcomes(&[(0.9, 2.0)]);
        let raw = outcomes(&[(1.0, 1.0)]);
        let s = synbench_scores(&rep, &raw, &[0.7], ScoreMode::Exact).unwrap();
        assert!((s[0] - 0.4 / 0.3).abs() < 1e-15);
    }

    #[test]
    fn empty_raw_area_gives_infinity_or_nan() {
        let raw = outcomes(&[(0.7, 1.5)]);
        let rep = outcomes(&[(0.95, 1.2)]);
        for mode in [ScoreMode::Reference, ScoreMode::Exact] {
            let s = synbench_scores(&rep, &raw, &[0.8], mode).unwrap();
            assert_eq!(s[0], f64::INFINITY, "{mode:?}");
        }
        let s = synbench_scores(&raw, &raw, &[0.8], ScoreMode::Reference).unwrap();
        assert!(s[0].is_nan());
    }

    #[test]
    fn bad_outcomes_are_named() {
        let ok = outcomes(&[(0.9, 1.0)]);
        let err = synbench_scores(&[], &ok, &[0.6], ScoreMode::Reference).unwrap_err();
        assert_eq!(err, TheoryError::Empty { what: "representation outcomes" });
        let err = synbench_scores(&outcomes(&[(0.9, f64::NAN)]), &ok, &[0.6], ScoreMode::Exact).unwrap_err();
        assert!(matches!(err, TheoryError::NonFinite { index: 0, .. }));
        let err = synbench_scores(&outcomes(&[(1.2, 1.0)]), &ok, &[0.6], ScoreMode::Exact).unwrap_err();
        assert!(matches!(err, TheoryError::OutOfRange { .. }));
        assert!(synbench_scores(&ok, &ok, &[1.5], ScoreMode::Exact).is_err());
        assert!(synbench_scores(&ok, &ok, &[], ScoreMode::Exact).is_err());
    }

    #[test]
    fn numpy_pairwise_sum_differs_from_sequential_as_numpy_does() {
        // 9 values: 8 accumulators then the remainder.
        let a = [1e8_f32, 1.0, -1e8, 1.0, 0.5, 0.5, 0.25, 0.25, 3.0];
        let r = reference_f32::numpy_pairwise_sum(&a);
        assert_eq!(r, ((1e8_f32 + 1.0) + (-1e8 + 1.0)) + ((0.5 + 0.5) + (0.25 + 0.25)) + 3.0);
    }
}
