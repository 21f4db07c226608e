//! Closed-form pieces of SynBench (SPEC §2–§4).
//!
//! * [`normal`]: the standard normal pdf, cdf and quantile;
//! * [`bound`]: the expected scaled bound `E(a)` of a correctly classified
//!   sample and the raw-data reference outcome of a mean scale;
//! * [`qcqp`]: the exact ℓ2-constrained QCQP that makes the Bayes probe
//!   ε-robust (SPEC §3);
//! * [`population`]: the population score of the ε-robust probe (known
//!   moments) and its random-matrix estimate from a train split (SPEC §7);
//! * [`sampling`]: the train-sampling variances of one scale's estimates for
//!   Gaussian features, which calibrate the jackknife (SPEC §7.1);
//! * [`score`]: the expected-bound curve over the threshold grid and the
//!   SynBench score in `reference` (grid) and `exact` (integral) modes.
//!
//! Invariant: this crate is pure arithmetic on `f64` slices. It does no IO,
//! allocates only its results, and knows nothing of data generation, probes or
//! deep-learning frameworks.
#![deny(missing_docs)]
#![doc = include_str!("../README.md")]

pub mod bound;
mod error;
pub mod normal;
pub mod population;
pub mod qcqp;
pub mod sampling;
pub mod scales;
pub mod score;

pub use bound::{expected_scaled_bound, raw_reference};
pub use error::TheoryError;
pub use population::{
    SampleMoments, estimate_population_outcome, estimate_signal, population_estimable, population_outcome,
    smallest_estimable_n,
};
pub use qcqp::{QcqpSolution, attack_radius, solve_l2_qcqp};
pub use sampling::{mahalanobis_estimate_variance, plug_in_accuracy_variance};
pub use scales::ScaleGrid;
pub use score::{
    PAPER_THRESHOLDS, ScaleOutcome, ScoreMode, ScoreSpec, expected_bound_curve, linspace, reference_threshold_grid,
    synbench_scores,
};

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TheoryError>;
