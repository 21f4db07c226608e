//! The Burn encoders (ViT, ResNet, ConvNeXt) behind the [`Encoder`] seam:
//! ndarray in, ndarray out. One generic encoder serves every architecture.

use std::fmt::Debug;
use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};
use ndarray::{Array2, ArrayView2, Axis, concatenate};
use rayon::prelude::*;

use crate::backend::{Backend, DeviceKind, Precision, burn_device};
use crate::checkpoint::{TimmModel, load_timm_checkpoint};
use crate::convnext::{ConvNext, ConvNextConfig};
use crate::resnet::{ResNet, ResNetConfig};
use crate::vit::{VisionTransformer, VitConfig};
use crate::{Encoder, EncoderError, Normalization};

/// An architecture Burn builds: its config, the model it makes, and what
/// the encoder needs to know of it.
pub trait BurnArchitecture: Clone + Debug + Send + Sync {
    /// The Burn module.
    type Model: TimmModel + Debug + Send + Sync;
    /// Checks the config.
    fn check(&self) -> Result<(), EncoderError>;
    /// A random init on `device`.
    fn build(&self, device: &Device) -> Result<Self::Model, EncoderError>;
    /// Features `[B, D]` of images `[B, C, H, W]`.
    fn forward(model: &Self::Model, images: Tensor<4>) -> Tensor<2>;
    /// Feature width.
    fn output_dim(&self) -> usize;
    /// Input channels.
    fn in_chans(&self) -> usize;
    /// The one image size the model takes (a ViT's `img_size`); `None`:
    /// any, given by [`BurnEncoder::with_input_shape`].
    fn img_size(&self) -> Option<usize>;
}

impl BurnArchitecture for VitConfig {
    type Model = VisionTransformer;
    fn check(&self) -> Result<(), EncoderError> {
        VitConfig::check(self)
    }
    fn build(&self, device: &Device) -> Result<VisionTransformer, EncoderError> {
        self.init(device)
    }
    fn forward(model: &VisionTransformer, images: Tensor<4>) -> Tensor<2> {
        model.forward(images)
    }
    fn output_dim(&self) -> usize {
        self.embed_dim
    }
    fn in_chans(&self) -> usize {
        self.in_chans
    }
    fn img_size(&self) -> Option<usize> {
        Some(self.img_size)
    }
}

impl BurnArchitecture for ResNetConfig {
    type Model = ResNet;
    fn check(&self) -> Result<(), EncoderError> {
        ResNetConfig::check(self)
    }
    fn build(&self, device: &Device) -> Result<ResNet, EncoderError> {
        self.init(device)
    }
    fn forward(model: &ResNet, images: Tensor<4>) -> Tensor<2> {
        model.forward(images)
    }
    fn output_dim(&self) -> usize {
        ResNetConfig::output_dim(self)
    }
    fn in_chans(&self) -> usize {
        self.in_chans
    }
    fn img_size(&self) -> Option<usize> {
        None
    }
}

impl BurnArchitecture for ConvNextConfig {
    type Model = ConvNext;
    fn check(&self) -> Result<(), EncoderError> {
        ConvNextConfig::check(self)
    }
    fn build(&self, device: &Device) -> Result<ConvNext, EncoderError> {
        self.init(device)
    }
    fn forward(model: &ConvNext, images: Tensor<4>) -> Tensor<2> {
        model.forward(images)
    }
    fn output_dim(&self) -> usize {
        ConvNextConfig::output_dim(self)
    }
    fn in_chans(&self) -> usize {
        self.in_chans
    }
    fn img_size(&self) -> Option<usize> {
        None
    }
}

/// A timm ViT on a Burn backend.
pub type VitEncoder = BurnEncoder<VitConfig>;
/// A timm ResNet on a Burn backend.
pub type ResNetEncoder = BurnEncoder<ResNetConfig>;
/// A timm ConvNeXt on a Burn backend.
pub type ConvNextEncoder = BurnEncoder<ConvNextConfig>;

/// Default sample shape of models that take any image size.
const DEFAULT_IMAGE: usize = 224;

/// Images per forward pass on the flex backend, whose element-wise kernels
/// (GELU, LayerNorm, softmax, residual adds) run on the calling thread: the
/// batch is cut into sub-batches of this size, forwarded in parallel, so
/// every core works through the whole block, not only in the matrix
/// products. Fixed (not the thread count), so features do not depend on how
/// many cores a machine has.
pub const FLEX_SUB_BATCH: usize = SUB_BATCH;
const SUB_BATCH: usize = 4;

/// A timm model on a Burn backend.
#[derive(Debug)]
pub struct BurnEncoder<A: BurnArchitecture> {
    model: A::Model,
    config: A,
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

impl<A: BurnArchitecture> BurnEncoder<A> {
    /// Builds the model on `backend`/`device` and loads `weights` (a timm
    /// checkpoint) if given; without weights the model is Burn-initialised
    /// from `seed` and every description says "random init". A model that
    /// takes any image size starts at `[C, 224, 224]`
    /// ([`BurnEncoder::with_input_shape`] changes it).
    pub fn new(
        name: &str,
        config: A,
        weights: Option<&Path>,
        backend: Backend,
        device_kind: DeviceKind,
        seed: u64,
    ) -> Result<Self, EncoderError> {
        config.check()?;
        let device = burn_device(backend, device_kind)?;
        device.seed(seed);
        let mut model = config.build(&device)?;
        let weights = match weights {
            Some(path) => {
                load_timm_checkpoint(&mut model, path)?;
                Some(path.display().to_string())
            }
            None => None,
        };
        let size = config.img_size().unwrap_or(DEFAULT_IMAGE);
        let input_shape = vec![config.in_chans(), size, size];
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

    /// The sample shape `[C, H, W]` a model that takes any image size runs
    /// at; a ViT accepts only its own.
    pub fn with_input_shape(mut self, shape: &[usize]) -> Result<Self, EncoderError> {
        let fits = match (shape, self.config.img_size()) {
            ([c, h, w], None) => *c == self.config.in_chans() && *h > 0 && *w > 0,
            ([c, h, w], Some(size)) => *c == self.config.in_chans() && *h == size && *w == size,
            _ => false,
        };
        if !fits {
            return Err(EncoderError::Config(format!(
                "{} takes images [{}, H, W]{}, not samples of shape {shape:?}",
                self.name,
                self.config.in_chans(),
                self.config.img_size().map(|s| format!(" with H = W = {s}")).unwrap_or_default()
            )));
        }
        self.input_shape = shape.to_vec();
        Ok(self)
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
    pub fn config(&self) -> &A {
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
        let mut features = A::forward(&self.model, images);
        if self.precision != Precision::F32 {
            features = features.cast(FloatDType::F32);
        }
        let features = features.into_data();
        let runtime = |message: String| EncoderError::Runtime { backend: self.backend.to_string(), message };
        let values = features.try_to_vec::<f32>().map_err(|e| runtime(format!("{e:?}")))?;
        Array2::from_shape_vec((n, self.config.output_dim()), values).map_err(|e| runtime(e.to_string()))
    }
}

impl<A: BurnArchitecture> Encoder for BurnEncoder<A> {
    fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    fn output_dim(&self) -> usize {
        self.config.output_dim()
    }

    /// The normalisation timm's pretrained configuration gives the preset
    /// (and tag) this encoder is named after; none for other names and for
    /// a random init.
    fn expected_normalization(&self) -> Option<Normalization> {
        self.weights.as_ref().and_then(|_| crate::pretrained_normalization(&self.name))
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
