//! The ViT behind the [`Encoder`] seam: ndarray in, ndarray out.

use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use ndarray::{Array2, ArrayView2, Axis, concatenate};
use rayon::prelude::*;

use crate::backend::{Backend, DeviceKind, Precision, burn_device};
use crate::checkpoint::load_timm_checkpoint;
use crate::vit::{VisionTransformer, VitConfig};
use crate::{Encoder, EncoderError, Normalization};

/// Images per forward pass on the flex backend, whose element-wise kernels
/// (GELU, LayerNorm, softmax, residual adds) run on the calling thread: the
/// batch is cut into sub-batches of this size, forwarded in parallel, so
/// every core works through the whole block, not only in the matrix
/// products. Fixed (not the thread count), so features do not depend on how
/// many cores a machine has.
pub const FLEX_SUB_BATCH: usize = SUB_BATCH;
const SUB_BATCH: usize = 4;

/// A timm ViT on a Burn backend.
#[derive(Debug)]
pub struct VitEncoder {
    model: VisionTransformer,
    config: VitConfig,
    device: Device,
    backend: Backend,
    device_kind: DeviceKind,
    precision: Precision,
    input_shape: Vec<usize>,
    name: String,
    weights: Option<String>,
}

/// Casts every float parameter of a module to one float type.
struct CastParameters(FloatDType);

impl ModuleMapper for CastParameters {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|tensor| tensor.cast(dtype))
    }
}

impl VitEncoder {
    /// Builds the model on `backend`/`device` and loads `weights` (a timm
    /// checkpoint) if given; without weights the model is Burn-initialised
    /// from `seed` and every description says "random init".
    pub fn new(
        name: &str,
        config: VitConfig,
        weights: Option<&Path>,
        backend: Backend,
        device_kind: DeviceKind,
        seed: u64,
    ) -> Result<Self, EncoderError> {
        config.check()?;
        let device = burn_device(backend, device_kind)?;
        device.seed(seed);
        let mut model = config.init(&device)?;
        let weights = match weights {
            Some(path) => {
                load_timm_checkpoint(&mut model, path)?;
                Some(path.display().to_string())
            }
            None => None,
        };
        let input_shape = vec![config.in_chans, config.img_size, config.img_size];
        Ok(Self {
            model,
            config,
            device,
            backend,
            device_kind,
            precision: Precision::F32,
            input_shape,
            name: name.to_string(),
            weights,
        })
    }

    /// Runs the model in `precision`: the weights (loaded or initialised in
    /// float32) are cast once; each batch is cast on the way in and the
    /// features back to float32 on the way out.
    pub fn with_precision(mut self, precision: Precision) -> Result<Self, EncoderError> {
        if precision == self.precision {
            return Ok(self);
        }
        if !self.device.supports_dtype(precision.dtype()) {
            return Err(EncoderError::Backend(format!(
                "backend \"{}\" on \"{}\" cannot compute in {precision}; use precision \"f32\"",
                self.backend, self.device_kind
            )));
        }
        self.model = self.model.map(&mut CastParameters(precision.dtype()));
        self.precision = precision;
        Ok(self)
    }

    /// The float precision the model computes in.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The architecture.
    pub fn config(&self) -> &VitConfig {
        &self.config
    }

    /// The backend the model runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Features of a batch of images `[n, C, H, W]` given flat.
    fn forward(&self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>, EncoderError> {
        let n = batch.nrows();
        let values: Vec<f32> = match batch.as_slice() {
            Some(slice) => slice.to_vec(),
            None => batch.iter().copied().collect(),
        };
        let [c, h, w] = [self.input_shape[0], self.input_shape[1], self.input_shape[2]];
        let mut images = Tensor::<4>::from_data(TensorData::new(values, [n, c, h, w]), &self.device);
        if self.precision != Precision::F32 {
            images = images.cast(self.precision.dtype());
        }
        let mut features = self.model.forward(images);
        if self.precision != Precision::F32 {
            features = features.cast(FloatDType::F32);
        }
        let features = features.into_data();
        let runtime = |message: String| EncoderError::Runtime { backend: self.backend.to_string(), message };
        let values = features.try_to_vec::<f32>().map_err(|e| runtime(format!("{e:?}")))?;
        Array2::from_shape_vec((n, self.config.embed_dim), values).map_err(|e| runtime(e.to_string()))
    }
}

impl Encoder for VitEncoder {
    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    fn output_dim(&self) -> usize {
        self.config.embed_dim
    }

    /// The normalisation timm's pretrained configuration gives the preset
    /// (and tag) this encoder is named after; none for other names and for
    /// a random init.
    fn expected_normalization(&self) -> Option<Normalization> {
        self.weights.as_ref().and_then(|_| VitConfig::pretrained_normalization(&self.name))
    }

    fn describe(&self) -> String {
        let weights = match &self.weights {
            Some(path) => format!("weights {path}"),
            None => "random init (no weights loaded)".to_string(),
        };
        let precision = match self.precision {
            Precision::F32 => String::new(),
            other => format!(" in {other}"),
        };
        format!("{} on {}/{}{precision}, {weights}", self.name, self.backend, self.device_kind)
    }

    fn encode(&mut self, batch: ArrayView2<'_, f32>) -> Result<Array2<f32>, EncoderError> {
        self.check_width(&batch)?;
        if self.backend != Backend::Flex || batch.nrows() <= FLEX_SUB_BATCH {
            return self.forward(batch);
        }
        let parts = batch
            .axis_chunks_iter(Axis(0), FLEX_SUB_BATCH)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|chunk| self.forward(chunk))
            .collect::<Result<Vec<_>, _>>()?;
        let views: Vec<_> = parts.iter().map(Array2::view).collect();
        concatenate(Axis(0), &views)
            .map_err(|e| EncoderError::Runtime { backend: self.backend.to_string(), message: e.to_string() })
    }
}
