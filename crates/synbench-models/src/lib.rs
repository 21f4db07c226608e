//! Encoders: the seam between the deep-learning framework and the rest of
//! SynBench.
//!
//! Everything above this crate sees only the [`Encoder`] trait, which takes a
//! batch of flattened `f32` inputs and hands back `f32` features as plain
//! `ndarray` arrays; Burn types and backend choices stay inside this crate.
//! Encoders: [`VitEncoder`], [`ResNetEncoder`] and [`ConvNextEncoder`]
//! (timm's ViT, ResNet and ConvNeXt families in Burn, loading timm
//! checkpoints), `TorchScriptEncoder` (any traced PyTorch module, with
//! `tch`), and the reference encoders of SPEC §5 — [`Identity`] and a
//! fixed, seeded [`RandomProjection`] — whose effect on the score is known,
//! and the [`oracle`] [`LinearGaussian`], whose population score is (SPEC §7).
//!
//! Backends are cargo features forwarded to Burn and chosen at run time:
//! `flex` (pure-Rust CPU, default), `tch` (LibTorch, CPU and CUDA), `cuda`
//! (Burn's CUDA backend). See [`backend`]. Each enables the `burn` feature;
//! without it (`default-features = false`, as `synbench-experiment` depends
//! on this crate) nothing here compiles Burn: what remains is the seam
//! ([`Encoder`]), the reference encoders, and the plain-data specs a run plan
//! checks ([`VitConfig`], [`ResNetConfig`], [`ConvNextConfig`], [`Backend`], [`DeviceKind`], [`Precision`],
//! [`WeightsSource`], which reads the hub with the `hub` feature).
#![deny(missing_docs)]
#![doc = include_str!("../README.md")]

pub mod backend;
#[cfg(feature = "burn")]
mod burn_encoder;
#[cfg(feature = "burn")]
mod checkpoint;
mod cnn_config;
#[cfg(feature = "burn")]
pub mod convnext;
pub mod oracle;
#[cfg(feature = "burn")]
pub mod resnet;
mod timm_pretrained;
#[cfg(feature = "tch")]
mod torchscript;
#[cfg(feature = "burn")]
pub mod vit;
mod vit_config;
pub mod weights;

use std::path::PathBuf;

use ndarray::{Array2, ArrayView2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand_distr::StandardNormal;
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

pub use backend::{Backend, DeviceKind, Precision};
#[cfg(feature = "burn")]
pub use burn_encoder::{BurnArchitecture, BurnEncoder, ConvNextEncoder, FLEX_SUB_BATCH, ResNetEncoder, VitEncoder};
#[cfg(feature = "burn")]
pub use checkpoint::LoadReport;
pub use cnn_config::{CONVNEXT_PRESETS, ConvNextConfig, RESNET_PRESETS, ResNetBlock, ResNetConfig, StemType};
pub use oracle::{LinearGaussian, LinearGaussianSpec, OracleNonlinearity};
pub use synbench_data::Normalization;
#[cfg(feature = "tch")]
pub use torchscript::TorchScriptEncoder;
pub use vit_config::{Activation, GlobalPool, PRESETS, VitConfig, VitOptions};
pub use weights::{WeightsSource, cached_hub_file, hub_cache_dir, hub_offline};

/// The input normalisation timm's pretrained configuration gives a preset of
/// any family, `name` or `name.tag` (the bare name is timm's default tag), as
/// timm 1.0.31 lists it (`scripts/timm_presets.py` writes the table); `None`
/// for a name that is not a preset or a tag timm does not know.
pub fn pretrained_normalization(name: &str) -> Option<Normalization> {
    timm_pretrained::PRETRAINED
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, mean, std)| Normalization::PerChannel { mean: mean.to_vec(), std: std.to_vec() })
}

/// The Burn release this crate is built against (pinned with `=` in the
/// workspace manifest; a test keeps the two equal), for result provenance.
pub const BURN_VERSION: &str = "0.22.1";

/// Encoder failures, each naming what was expected.
#[derive(Debug, Error)]
pub enum EncoderError {
    /// The batch does not have the width the encoder takes.
    #[error("input batch has {found} values per sample, but the encoder expects {expected} (shape {shape:?})")]
    InputWidth {
        /// Values per sample the encoder takes.
        expected: usize,
        /// Values per sample given.
        found: usize,
        /// The sample shape the encoder takes.
        shape: Vec<usize>,
    },
    /// Invalid encoder parameters.
    #[error("{0}")]
    Config(String),
    /// An architecture or oracle parameter that does not fit: the check of
    /// the type that owns it names the fields involved, the most likely
    /// culprit first, with timm's (or the config's) names.
    #[error("{message}")]
    Invalid {
        /// The fields involved (`["num_heads", "embed_dim"]`).
        fields: Vec<&'static str>,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The backend or device cannot be used by this build or machine.
    #[error("{0}")]
    Backend(String),
    /// A weights file is absent or unreadable.
    #[error("weights file {path}: {message}")]
    WeightsFile {
        /// The file.
        path: PathBuf,
        /// What went wrong and what was expected.
        message: String,
    },
    /// A checkpoint does not match the architecture.
    #[error("weights file {path} does not match the architecture:\n  {}", problems.join("\n  "))]
    WeightsMismatch {
        /// The file.
        path: PathBuf,
        /// Every missing, unexpected or mis-shaped tensor.
        problems: Vec<String>,
    },
    /// A hub download failed (offline, unknown repository).
    #[error("cannot get weights for hf:{repo}: {message}")]
    Hub {
        /// `ORG/NAME`.
        repo: String,
        /// What to do instead.
        message: String,
    },
    /// The backend failed while running the model.
    #[error("encoder failed on the {backend} backend: {message}")]
    Runtime {
        /// The backend.
        backend: String,
        /// The backend's message.
        message: String,
    },
}

/// A representation map `f: ℝ^d → ℝ^D` applied batch-wise.
pub trait Encoder {
    /// Shape of one input sample, e.g. `[3, 224, 224]` or `[d]`.
    fn input_shape(&self) -> &[usize];
    /// Feature dimension `D`.
    fn output_dim(&self) -> usize;
    /// The input normalisation the encoder's weights were trained with, if
    /// it has one (a run warns when its data are normalised otherwise).
    fn expected_normalization(&self) -> Option<Normalization> {
        None
    }
    /// A short human-readable description for logs and result files
    /// (says "random init" where no weights were loaded).
    fn describe(&self) -> String;
    /// Encodes `[n, d]` inputs (each row a flattened sample, channel-major)
    /// into `[n, D]` features.
    fn encode(&mut self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>, EncoderError>;

    /// Checks a batch's width against [`Encoder::input_shape`].
    fn check_width(&self, batch: &ArrayView2<'_, f32>) -> Result<(), EncoderError> {
        let expected: usize = self.input_shape().iter().product();
        if batch.ncols() == expected {
            Ok(())
        } else {
            Err(EncoderError::InputWidth { expected, found: batch.ncols(), shape: self.input_shape().to_vec() })
        }
    }
}

/// `f(x) = x` (SPEC §5: its score tends to 1).
#[derive(Debug, Clone)]
pub struct Identity {
    shape: Vec<usize>,
}

impl Identity {
    /// Identity on samples of the given shape.
    pub fn new(shape: Vec<usize>) -> Self {
        Self { shape }
    }
}

impl Encoder for Identity {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }
    fn output_dim(&self) -> usize {
        self.shape.iter().product()
    }
    fn describe(&self) -> String {
        format!("identity on {:?}", self.shape)
    }
    fn encode(&mut self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>, EncoderError> {
        self.check_width(&batch)?;
        Ok(batch.to_owned())
    }
}

/// `f(x) = P·x` with a fixed Gaussian `P ∈ ℝ^{D×d}`, entries `N(0, 1/d)`,
/// drawn from a seeded ChaCha8 stream (the same seed gives the same `P` on
/// every machine).
#[derive(Debug, Clone)]
pub struct RandomProjection {
    shape: Vec<usize>,
    /// `Pᵀ`, `[d, D]`, so that a batch maps as `X·Pᵀ`.
    projection_t: Array2<f32>,
    seed: u64,
}

impl RandomProjection {
    /// A projection from samples of `shape` to `output_dim` features.
    pub fn new(shape: Vec<usize>, output_dim: usize, seed: u64) -> Result<Self, EncoderError> {
        Self::check(&shape, output_dim)?;
        let input_dim: usize = shape.iter().product();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scale = 1.0 / (input_dim as f64).sqrt();
        let p = Array2::<f64>::random_using((input_dim, output_dim), StandardNormal, &mut rng);
        Ok(Self { shape, projection_t: p.mapv(|v| (v * scale) as f32), seed })
    }
}

impl EncoderError {
    /// [`EncoderError::Invalid`] about `fields`.
    pub fn invalid(fields: &[&'static str], message: impl Into<String>) -> Self {
        Self::Invalid { fields: fields.to_vec(), message: message.into() }
    }

    /// The fields an [`EncoderError::Invalid`] names (none for other errors).
    pub fn fields(&self) -> &[&'static str] {
        match self {
            Self::Invalid { fields, .. } => fields,
            _ => &[],
        }
    }
}

impl RandomProjection {
    /// Checks the sizes [`RandomProjection::new`] takes, without drawing the matrix.
    pub fn check(shape: &[usize], output_dim: usize) -> Result<(), EncoderError> {
        if shape.iter().product::<usize>() == 0 || output_dim == 0 {
            return Err(EncoderError::invalid(
                &["output_dim"],
                format!(
                    "random projection needs a non-empty input shape and output_dim > 0, got {shape:?} -> {output_dim}"
                ),
            ));
        }
        Ok(())
    }
}

impl Encoder for RandomProjection {
    fn input_shape(&self) -> &[usize] {
        &self.shape
    }
    fn output_dim(&self) -> usize {
        self.projection_t.ncols()
    }
    fn describe(&self) -> String {
        format!("random projection {:?} -> {} (seed {})", self.shape, self.output_dim(), self.seed)
    }
    fn encode(&mut self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>, EncoderError> {
        self.check_width(&batch)?;
        Ok(batch.dot(&self.projection_t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn burn_version_matches_the_pinned_dependency() {
        let manifest = include_str!("../../../Cargo.toml");
        let pin = format!("burn = {{ version = \"={BURN_VERSION}\"");
        assert!(manifest.contains(&pin), "workspace Cargo.toml does not pin {pin}");
    }

    #[test]
    fn identity_returns_its_input_and_checks_width() {
        let mut enc = Identity::new(vec![3]);
        let x = array![[1.0_f32, 2.0, 3.0]];
        assert_eq!(enc.encode(x.view()).unwrap(), x);
        let err = enc.encode(array![[1.0_f32, 2.0]].view()).unwrap_err();
        assert_eq!(err.to_string(), "input batch has 2 values per sample, but the encoder expects 3 (shape [3])");
    }

    #[test]
    fn random_projection_is_seeded_linear_and_norm_preserving_on_average() {
        let mut a = RandomProjection::new(vec![64], 512, 3).unwrap();
        let mut b = RandomProjection::new(vec![64], 512, 3).unwrap();
        let x = Array2::from_shape_fn((2, 64), |(i, j)| ((i * 64 + j) % 7) as f32 - 3.0);
        let fa = a.encode(x.view()).unwrap();
        assert_eq!(fa, b.encode(x.view()).unwrap());
        // Linearity: f(2x) = 2 f(x).
        let f2 = a.encode((&x * 2.0).view()).unwrap();
        assert!(f2.iter().zip(fa.iter()).all(|(u, v)| (u - 2.0 * v).abs() <= 1e-5 * v.abs().max(1.0)));
        // E‖Px‖² = (D/d)·‖x‖²·… with entries N(0, 1/d): E‖Px‖² = D·‖x‖²/d; 512 draws ⇒ ±3·√(2/512).
        let ratio = fa.row(0).dot(&fa.row(0)) / x.row(0).dot(&x.row(0)) * 64.0 / 512.0;
        assert!((ratio - 1.0).abs() < 3.0 * (2.0_f32 / 512.0).sqrt(), "{ratio}");
    }
}
