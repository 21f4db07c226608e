use synbench_theory::TheoryError;
use thiserror::Error;

/// Errors of the probes; each names the tensor or parameter at fault, what was
/// expected and what was found.
#[derive(Debug, Error)]
pub enum ProbeError {
    /// A closed form of `synbench-theory` refused its input (ε outside [0, 1),
    /// a degenerate QCQP, …).
    #[error(transparent)]
    Theory(#[from] TheoryError),
    /// linfa rejected a dataset or parameter.
    #[error(transparent)]
    Linfa(#[from] linfa::Error),
    /// linfa-logistic failed (too few classes, no convergence, …).
    #[error(transparent)]
    Logistic(#[from] linfa_logistic::error::Error),
    /// A feature was NaN or infinite.
    #[error("{tensor}[{row}, {col}] is {value}: features must be finite (check the encoder output for overflow)")]
    NonFiniteFeature {
        /// The tensor, e.g. `"train features"`.
        tensor: &'static str,
        /// Sample index within the batch.
        row: usize,
        /// Feature index.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// A tensor has the wrong feature dimension.
    #[error("{tensor} has {found} feature columns, expected {expected} (the dimension the probe was fitted on)")]
    DimensionMismatch {
        /// The tensor.
        tensor: &'static str,
        /// The dimension the probe expects.
        expected: usize,
        /// The dimension given.
        found: usize,
    },
    /// Features and labels disagree on the number of samples.
    #[error("{tensor} has {found} labels for {expected} feature rows: expected one label per row")]
    LabelCountMismatch {
        /// The label tensor.
        tensor: &'static str,
        /// Rows of the features.
        expected: usize,
        /// Labels given.
        found: usize,
    },
    /// A label is not 0 or 1.
    #[error("{tensor}[{index}] = {value}: expected a binary label, 0 or 1 (the probes are binary)")]
    InvalidLabel {
        /// The label tensor.
        tensor: &'static str,
        /// Position.
        index: usize,
        /// The label.
        value: usize,
    },
    /// A class has fewer than two training samples, so its covariance is undefined.
    #[error("class {class} has {count} training sample(s): the pooled covariance needs at least 2 per class (SPEC §3)")]
    TooFewSamples {
        /// The class label.
        class: u8,
        /// How many samples it has.
        count: u64,
    },
    /// A parameter is outside its allowed range.
    #[error("parameter `{name}` = {value} is invalid: expected {expected}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The allowed range, in words.
        expected: &'static str,
    },
    /// The training statistics carry no usable signal.
    #[error("no signal: {what}")]
    NoSignal {
        /// What is missing, in words.
        what: String,
    },
    /// The conic solver did not reach a solution.
    #[error("clarabel stopped with status {status} on the {norm} attack QCQP (dimension {dim})")]
    Solver {
        /// The solver's status, as it prints it.
        status: String,
        /// The attack norm.
        norm: &'static str,
        /// Problem dimension.
        dim: usize,
    },
    /// Two partial statistics of different feature dimension were merged.
    #[error("cannot merge class statistics of dimension {found} into statistics of dimension {expected}")]
    MergeMismatch {
        /// Dimension of the receiver.
        expected: usize,
        /// Dimension of the argument.
        found: usize,
    },
}

/// Result alias of this crate.
pub type Result<T, E = ProbeError> = std::result::Result<T, E>;

/// Checks a batch of `[n, d]` features (`f32` from an encoder or `f64`
/// records) and its labels: the feature dimension, one label per row, finite
/// features, labels in {0, 1}; the errors name `tensor` and `label_tensor`.
pub(crate) fn check_batch<A: Copy + Into<f64>>(
    features: &ndarray::ArrayView2<'_, A>,
    labels: &ndarray::ArrayView1<'_, u8>,
    dim: usize,
    tensor: &'static str,
    label_tensor: &'static str,
) -> Result<()> {
    if features.ncols() != dim {
        return Err(ProbeError::DimensionMismatch { tensor, expected: dim, found: features.ncols() });
    }
    check_label_count(features.nrows(), labels.len(), label_tensor)?;
    check_finite(features, tensor)?;
    if let Some(index) = labels.iter().position(|&y| y > 1) {
        return Err(ProbeError::InvalidLabel { tensor: label_tensor, index, value: usize::from(labels[index]) });
    }
    Ok(())
}

/// Checks that `label_tensor` holds one label for each of `rows` feature rows.
pub(crate) fn check_label_count(rows: usize, labels: usize, label_tensor: &'static str) -> Result<()> {
    if labels == rows {
        Ok(())
    } else {
        Err(ProbeError::LabelCountMismatch { tensor: label_tensor, expected: rows, found: labels })
    }
}

/// Names the first NaN or infinite entry of a feature tensor.
pub(crate) fn check_finite<A: Copy + Into<f64>>(
    features: &ndarray::ArrayView2<'_, A>,
    tensor: &'static str,
) -> Result<()> {
    for ((row, col), &value) in features.indexed_iter() {
        let value: f64 = value.into();
        if !value.is_finite() {
            return Err(ProbeError::NonFiniteFeature { tensor, row, col, value });
        }
    }
    Ok(())
}
