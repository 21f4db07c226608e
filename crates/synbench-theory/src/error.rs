use thiserror::Error;

/// Errors raised by the closed forms; each names the offending value.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TheoryError {
    /// `E(a)` is defined for accuracies in (0.5, 1] only.
    #[error("accuracy {accuracy} is outside (0.5, 1]: the expected scaled bound is defined only above chance")]
    AccuracyOutOfDomain {
        /// The accuracy that was given.
        accuracy: f64,
    },
    /// ε must lie in [0, 1); ε ≥ 1 makes the robust probe degenerate (SPEC §3).
    #[error("epsilon {epsilon} is outside [0, 1): at epsilon >= 1 the robust probe degenerates to w = 0")]
    EpsilonOutOfRange {
        /// The ε that was given.
        epsilon: f64,
    },
    /// A scale grid, curve or outcome list was empty.
    #[error("{what} is empty")]
    Empty {
        /// What was empty.
        what: &'static str,
    },
    /// An input was NaN or infinite.
    #[error("{what}[{index}] is {value}, expected a finite number")]
    NonFinite {
        /// The argument.
        what: &'static str,
        /// Position in the argument.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// An input was finite but outside its allowed range.
    #[error("{what}[{index}] = {value} is invalid: expected {expected}")]
    OutOfRange {
        /// The argument.
        what: &'static str,
        /// Position in the argument.
        index: usize,
        /// The offending value.
        value: f64,
        /// The allowed range, in words.
        expected: &'static str,
    },
    /// Two arguments that must have the same length do not.
    #[error("{left} has {left_len} entries but {right} has {right_len}")]
    LengthMismatch {
        /// First argument.
        left: &'static str,
        /// Its length.
        left_len: usize,
        /// Second argument.
        right: &'static str,
        /// Its length.
        right_len: usize,
    },
}

/// Checks that every value is finite; names the first that is not.
pub(crate) fn ensure_finite(what: &'static str, values: &[f64]) -> Result<(), TheoryError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(TheoryError::NonFinite { what, index, value: values[index] }),
        None => Ok(()),
    }
}
