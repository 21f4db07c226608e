//! The ε-robust Bayes probe of SPEC §3 on encoder representations, and robust
//! linear probing on real features (SPEC §6).
//!
//! * [`stats`]: streaming class means and pooled covariance, merged Chan-style;
//! * [`bayes`]: the ε-robust Bayes probe (eigendecomposition via faer, the
//!   exact ℓ2 QCQP of `synbench-theory`, ℓ∞/ℓ1 through clarabel), evaluated by
//!   streaming test batches in `reference` or `exact` averaging;
//! * [`jackknife`]: delete-a-group replicates of a scale, for standard errors;
//! * [`attack`]: the attack QCQP in the feature basis on the clarabel conic solver;
//! * [`linear`]: linear probes through linfa — linfa-logistic and an ε-robust
//!   logistic regression — and exact attacked accuracy of linear models.
//!
//! Invariant: consumes plain `ndarray` features and labels, uses
//! `synbench-theory` for the QCQP, does no IO and knows nothing of encoders.
#![deny(missing_docs)]
#![doc = include_str!("../README.md")]

pub mod attack;
pub mod bayes;
mod error;
pub mod jackknife;
pub mod linear;
pub mod stats;

/// The `ndarray` this crate speaks, so callers need not pin it themselves.
pub use ndarray;

pub use attack::{AttackNorm, solve_attack_qcqp};
pub use bayes::{
    Averaging, BayesProbe, BayesProbeParams, BayesProbeValidParams, CovarianceEstimator, EigenCutoff, EpsilonOutcome,
    ProbeEvaluator, RobustDirection,
};
pub use error::{ProbeError, Result};
pub use jackknife::{HeldSplit, JACKKNIFE_GROUPS, Nested, Replicate, T975};
pub use linear::{
    FeatureDataset, FittedRobustLogistic, LinearModel, RobustLogisticParams, RobustLogisticValidParams,
    features_dataset, fit_logistic, fit_multinomial_logistic,
};
/// linfa's parameter check (`params.check()`), re-exported for callers.
pub use linfa::ParamGuard;
/// linfa's `Fit` (`params.fit(&dataset)`), re-exported for callers.
pub use linfa::traits::Fit;
pub use stats::ClassStatistics;
