//! Oracle encoders whose population score is known (SPEC §7): tests of the
//! population estimator, and a check users can run on their own settings.
//!
//! [`LinearGaussian`] maps a sample `x` (as the encoder receives it, i.e.
//! normalised) to `h = A·x + σ·η`:
//!
//! * `A = diag(√λ)·Vᵀ` (`D × d`), `V` a seeded `d × r` matrix with orthonormal
//!   columns (`r = min(d, D)`; rows of `A` beyond `r` are zero), and
//!   `λ_i ∝ i^(−decay)` normalised to mean 1: with unit-covariance inputs the
//!   features' covariance is `diag(λ) + σ²I`, the spectrum the config chose;
//! * `η ~ N(0, I_D)` drawn from a ChaCha8 stream seeded by the encoder seed
//!   and the bits of the sample itself, so a sample gets the same noise in
//!   any batch, order or thread count;
//! * optionally an elementwise `tanh` after it (`h = tanh(A·x + σ·η)`), the
//!   non-Gaussian oracle, whose population score has no closed form.
//!
//! The features' class means are `±s·A·μ̂' + A·c'` and their covariance
//! `A·Σ_x·Aᵀ + σ²I` (`μ̂'`, `c'`, `Σ_x` the normalised input's), so the
//! population probe and its accuracy follow from the exact QCQP
//! (synbench-experiment's `oracle` computes them).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand_distr::{Distribution, StandardNormal};
use rand_chacha::ChaCha8Rng;

use crate::{Encoder, EncoderError};

/// The elementwise map after the linear-Gaussian layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum OracleNonlinearity {
    /// None: Gaussian features, closed-form population score.
    #[default]
    Linear,
    /// `tanh`: non-Gaussian features.
    Tanh,
}

impl OracleNonlinearity {
    /// Every map, the default first.
    pub const ALL: [Self; 2] = [Self::Linear, Self::Tanh];

    /// The config spelling (`"none"`, `"tanh"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Linear => "none",
            Self::Tanh => "tanh",
        }
    }
}

/// What a [`LinearGaussian`] is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearGaussianSpec {
    /// Output width D.
    pub output_dim: usize,
    /// `λ_i ∝ i^(−decay)`; 0 is a flat spectrum.
    pub decay: f64,
    /// Noise σ.
    pub noise: f64,
    /// Elementwise map after it.
    pub nonlinearity: OracleNonlinearity,
}

impl LinearGaussianSpec {
    /// Checks the values for inputs of `input_dim` values.
    pub fn check(&self, input_dim: usize) -> Result<(), EncoderError> {
        if input_dim == 0 || self.output_dim == 0 {
            return Err(EncoderError::invalid(
                &["output_dim"],
                format!(
                    "linear_gaussian needs a non-empty input and output_dim > 0, got {input_dim} -> {}",
                    self.output_dim
                ),
            ));
        }
        if !(self.decay.is_finite() && self.decay >= 0.0) {
            return Err(EncoderError::invalid(
                &["spectrum_decay"],
                format!("spectrum_decay {} must be a finite number >= 0", self.decay),
            ));
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err(EncoderError::invalid(
                &["noise"],
                format!("noise {} must be a finite number >= 0", self.noise),
            ));
        }
        Ok(())
    }

    /// The chosen spectrum `λ_1 … λ_r` (mean 1), `r = min(input_dim, D)`.
    pub fn spectrum(&self, input_dim: usize) -> Vec<f64> {
        let r = input_dim.min(self.output_dim);
        let raw: Vec<f64> = (1..=r).map(|i| (i as f64).powf(-self.decay)).collect();
        let mean = raw.iter().sum::<f64>() / r as f64;
        raw.iter().map(|l| l / mean).collect()
    }
}

/// `h = A·x + σ·η` (module doc).
#[derive(Debug, Clone)]
pub struct LinearGaussian {
    shape: Vec<usize>,
    spec: LinearGaussianSpec,
    /// `Aᵀ`, `[d, D]`.
    matrix_t: Array2<f32>,
    seed: u64,
}

impl LinearGaussian {
    /// The oracle for samples of `shape`.
    pub fn new(shape: Vec<usize>, spec: LinearGaussianSpec, seed: u64) -> Result<Self, EncoderError> {
        let d: usize = shape.iter().product();
        spec.check(d)?;
        let a = Self::matrix(d, &spec, seed);
        Ok(Self { shape, matrix_t: a.t().mapv(|v| v as f32), spec, seed })
    }

    /// `A` (`D × d`, f64) for inputs of `input_dim` values: the same matrix
    /// the encoder applies (in f32), for the closed form.
    pub fn matrix(input_dim: usize, spec: &LinearGaussianSpec, seed: u64) -> Array2<f64> {
        let r = input_dim.min(spec.output_dim);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut v = Array2::<f64>::random_using((input_dim, r), StandardNormal, &mut rng);
        // Modified Gram–Schmidt, twice ("twice is enough", Giraud et al. 2005).
        for _ in 0..2 {
            for j in 0..r {
                for k in 0..j {
                    let dot = v.column(k).dot(&v.column(j));
                    let ck = v.column(k).to_owned();
                    v.column_mut(j).scaled_add(-dot, &ck);
                }
                let norm = v.column(j).dot(&v.column(j)).sqrt();
                v.column_mut(j).mapv_inplace(|x| x / norm);
            }
        }
        let scale = Array1::from(spec.spectrum(input_dim)).mapv(f64::sqrt);
        let mut a = Array2::zeros((spec.output_dim, input_dim));
        a.slice_axis_mut(Axis(0), (0..r).into()).assign(&(&v.t() * &scale.insert_axis(Axis(1))));
        a
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &LinearGaussianSpec {
        &self.spec
    }

    /// The noise of one sample: N(0, I_D) from its bits and the seed.
    fn noise_of(&self, row: ndarray::ArrayView1<'_, f32>) -> impl Iterator<Item = f32> {
        // FNV-1a over the sample's bits, mixed with the seed.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for v in row {
            for byte in v.to_bits().to_le_bytes() {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(hash);
        let sigma = self.spec.noise;
        (0..self.spec.output_dim).map(move |_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (sigma * z) as f32
        })
    }
}

impl Encoder for LinearGaussian {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }
    fn output_dim(&self) -> usize {
        self.spec.output_dim
    }
    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "linear_gaussian {:?} -> {} (spectrum i^-{}, noise {}, nonlinearity {}, seed {})",
            self.shape,
            s.output_dim,
            s.decay,
            s.noise,
            s.nonlinearity.name(),
            self.seed
        )
    }
    fn encode(&mut self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>, EncoderError> {
        self.check_width(&batch)?;
        let mut h = batch.dot(&self.matrix_t);
        if self.spec.noise > 0.0 {
            for (mut out, row) in h.outer_iter_mut().zip(batch.outer_iter()) {
                for (o, n) in out.iter_mut().zip(self.noise_of(row)) {
                    *o += n;
                }
            }
        }
        if self.spec.nonlinearity == OracleNonlinearity::Tanh {
            h.mapv_inplace(f32::tanh);
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(output_dim: usize, decay: f64) -> LinearGaussianSpec {
        LinearGaussianSpec { output_dim, decay, noise: 0.5, nonlinearity: OracleNonlinearity::Linear }
    }

    #[test]
    fn a_has_the_chosen_spectrum() {
        // A·Aᵀ = diag(λ) on the first r rows: V has orthonormal columns.
        let s = spec(6, 0.7);
        let a = LinearGaussian::matrix(10, &s, 4);
        let gram = a.dot(&a.t());
        let lambda = s.spectrum(10);
        for i in 0..6 {
            for j in 0..6 {
                let expected = if i == j { lambda[i] } else { 0.0 };
                assert!((gram[[i, j]] - expected).abs() < 1e-12, "({i}, {j}): {}", gram[[i, j]]);
            }
        }
        assert!((lambda.iter().sum::<f64>() / 6.0 - 1.0).abs() < 1e-12);
        // Wider than the input: the rows beyond d are zero (rank d).
        let wide = LinearGaussian::matrix(3, &spec(5, 0.0), 4);
        assert!(wide.row(4).iter().all(|&v| v == 0.0) && (wide.dot(&wide.t())[[2, 2]] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_sample_gets_the_same_noise_in_any_batch() {
        let mut enc = LinearGaussian::new(vec![4], spec(3, 0.0), 9).unwrap();
        let x = Array2::from_shape_fn((5, 4), |(i, j)| (i * 4 + j) as f32 * 0.1);
        let all = enc.encode(x.view()).unwrap();
        let last = enc.encode(x.slice_axis(Axis(0), (3..5).into())).unwrap();
        assert_eq!(all.row(3), last.row(0));
        assert_eq!(all.row(4), last.row(1));
        // The noise is there: h − A·x has the noise's scale.
        let a = LinearGaussian::matrix(4, &spec(3, 0.0), 9).mapv(|v| v as f32);
        let clean = x.dot(&a.t());
        let residual = &all - &clean;
        assert!(residual.iter().any(|v| v.abs() > 0.01));
    }
}
