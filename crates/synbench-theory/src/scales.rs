//! The grid of mean scales `s` at which SynBench samples the mixture (SPEC §1).

use crate::error::ensure_finite;
use crate::{Result, TheoryError};

/// A validated, non-empty list of positive, finite mean scales.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleGrid {
    values: Vec<f64>,
}

impl ScaleGrid {
    /// The paper protocol: `s ∈ {0.1, 0.2, …, 4.9}`, bit-identical to the
    /// reference's `np.arange(0.1, 5.0, 0.1)` (so `s₂ = 0.30000000000000004`).
    pub fn paper_protocol() -> Self {
        Self::arange(0.1, 4.9, 0.1).expect("the paper grid is valid")
    }

    /// `start, start + step, …` up to and including `stop` (within half a
    /// step), computed as numpy's `arange` does: `sᵢ = start + i·step`.
    pub fn arange(start: f64, stop: f64, step: f64) -> Result<Self> {
        ensure_finite("scale range (start, stop, step)", &[start, stop, step])?;
        if step <= 0.0 {
            return Err(TheoryError::OutOfRange {
                what: "scale step",
                index: 0,
                value: step,
                expected: "a positive step",
            });
        }
        if stop < start {
            return Err(TheoryError::Empty { what: "scale range (stop < start)" });
        }
        let count = ((stop - start) / step + 0.5).floor() as usize + 1;
        Self::from_values((0..count).map(|i| start + i as f64 * step).collect())
    }

    /// An explicit list of scales; each must be finite and positive.
    pub fn from_values(values: Vec<f64>) -> Result<Self> {
        if values.is_empty() {
            return Err(TheoryError::Empty { what: "scale grid" });
        }
        ensure_finite("scales", &values)?;
        if let Some(index) = values.iter().position(|&s| s <= 0.0) {
            return Err(TheoryError::OutOfRange {
                what: "scales",
                index,
                value: values[index],
                expected: "a positive mean scale",
            });
        }
        Ok(Self { values })
    }

    /// The scales in order.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// Number of scales.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Always false: a grid is never empty.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_grid_matches_numpy_arange() {
        let grid = ScaleGrid::paper_protocol();
        assert_eq!(grid.len(), 49);
        assert_eq!(grid.values()[2], 0.300_000_000_000_000_04);
        assert_eq!(grid.values()[43], 4.399_999_999_999_999_5);
        assert_eq!(grid.values()[48], 4.9);
    }

    #[test]
    fn bad_grids_are_rejected() {
        assert!(matches!(ScaleGrid::from_values(vec![]), Err(TheoryError::Empty { .. })));
        assert!(matches!(ScaleGrid::from_values(vec![0.1, f64::NAN]), Err(TheoryError::NonFinite { index: 1, .. })));
        assert!(matches!(ScaleGrid::from_values(vec![0.1, 0.0]), Err(TheoryError::OutOfRange { index: 1, .. })));
        assert!(ScaleGrid::arange(0.1, 1.0, 0.0).is_err());
        assert_eq!(ScaleGrid::arange(0.5, 0.5, 0.1).unwrap().values(), &[0.5]);
    }
}
