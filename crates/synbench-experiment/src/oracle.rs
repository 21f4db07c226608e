//! The closed-form population score of the linear-Gaussian oracle
//! (`arch = "linear_gaussian"`, SPEC §7), for results.json and the tests of
//! the population estimator.
//!
//! The encoder sees `x' = (x − m)/σ_ch`, so with `x | y ~ N(±s·μ̂ + c, Σ_x)`
//! the features `h = A·x' + σ·η` have half class-mean difference
//! `μ_h = s·A·(μ̂ ⊘ σ_ch)` and covariance `Σ_h = A·diag(Σ_x ⊘ σ_ch²)·Aᵀ + σ²I`,
//! whatever the scale. One eigendecomposition of `Σ_h` then gives every
//! scale's and ε's population outcome ([`synbench_theory::population_outcome`]).

use synbench_data::{Covariance, Normalization};
use synbench_models::{LinearGaussian, OracleNonlinearity};
use synbench_probe::bayes::symmetric_eigen;
use synbench_probe::ndarray::{Array1, Array2, Axis};
use synbench_theory::{ScaleOutcome, population_outcome};

use crate::config::{ModelSpec, Plan};

/// The population outcome per ε, per scale of the plan's grid; `None`
/// unless the plan's encoder is the linear (Gaussian) oracle.
pub fn closed_form(plan: &Plan) -> Option<Vec<Vec<ScaleOutcome>>> {
    let ModelSpec::LinearGaussian { spec } = &plan.encoder.model else { return None };
    if spec.nonlinearity != OracleNonlinearity::Linear {
        return None;
    }
    let mixture = &plan.mixture;
    let shape = mixture.sample_shape();
    let d = mixture.dim();
    let per_channel = d / shape.first().copied().unwrap_or(1).max(1);
    // σ_ch of each input coordinate (channel-major layout).
    let std: Vec<f64> = match mixture.normalization() {
        Normalization::None => vec![1.0; d],
        Normalization::PerChannel { std, .. } => {
            (0..d).map(|j| if std.len() == 1 { std[0] } else { std[j / per_channel] }).collect()
        }
    };
    let variance: Vec<f64> = match mixture.covariance() {
        Covariance::Identity => vec![1.0; d],
        Covariance::Diagonal(v) => v.clone(),
    };
    let a = LinearGaussian::matrix(d, spec, plan.encoder.seed);
    let direction = Array1::from_iter(std.iter().map(|s| 1.0 / ((d as f64).sqrt() * s)));
    let mean = a.dot(&direction);
    let input_cov = Array1::from_iter(variance.iter().zip(&std).map(|(v, s)| v / (s * s)));
    let scaled = &a * &input_cov.insert_axis(Axis(0));
    let mut cov: Array2<f64> = scaled.dot(&a.t());
    cov.diag_mut().mapv_inplace(|v| v + spec.noise * spec.noise);
    let (lambda, vectors) = symmetric_eigen(&cov).ok()?;
    let projected = vectors.t().dot(&mean);
    Some(
        plan.probe
            .epsilons()
            .iter()
            .map(|&epsilon| {
                plan.scales
                    .values()
                    .iter()
                    .map(|&s| {
                        let mu2: Vec<f64> = projected.iter().map(|p| s * s * p * p).collect();
                        population_outcome(&lambda, &mu2, epsilon)
                    })
                    .collect()
            })
            .collect(),
    )
}
