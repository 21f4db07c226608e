//! timm's `ConvNeXt` (patch stem) in Burn (feature `burn`), loading timm
//! state dicts by timm's key names.
//!
//! | timm key | Burn field |
//! |---|---|
//! | `stem.0.{weight,bias}`, `stem.1.{weight,bias}` | `stem.conv`, `stem.norm` (LayerNorm2d) |
//! | `stages.i.downsample.0.*`, `stages.i.downsample.1.*` (i > 0) | `stages.i.downsample.{norm,conv}` |
//! | `stages.i.blocks.j.conv_dw.*` | depthwise k×k convolution |
//! | `stages.i.blocks.j.norm.*` | LayerNorm (channels-last, or channels-first with `conv_mlp`) |
//! | `stages.i.blocks.j.mlp.fc{1,2}.*` | `Linear`, or 1×1 `Conv2d` with `conv_mlp` |
//! | `stages.i.blocks.j.gamma` (`ls_init_value`) | LayerScale `[C]` |
//! | `head.norm.*` / `norm_pre.*` (`head_norm_first`) | the final LayerNorm2d |
//! | `head.fc.*` | — (ignored) |
//!
//! LayerNorms have ε = 1e-6 and GELU is exact, as in timm. The features
//! are timm's pre-logits: the global average, then `head.norm`; or, with
//! `head_norm_first`, `norm_pre` before the average.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use crate::EncoderError;
pub use crate::cnn_config::ConvNextConfig;

/// LayerNorm epsilon of timm's ConvNeXt.
pub const CONVNEXT_NORM_EPS: f64 = 1e-6;

impl ConvNextConfig {
    /// A randomly initialised ConvNeXt on `device`.
    pub fn init(&self, device: &Device) -> Result<ConvNext, EncoderError> {
        self.check()?;
        let norm2d =
            |c: usize| LayerNorm2d { norm: LayerNormConfig::new(c).with_epsilon(CONVNEXT_NORM_EPS).init(device) };
        let conv = |i: usize, o: usize, k: usize, stride: usize, pad: usize, groups: usize| {
            Conv2dConfig::new([i, o], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_groups(groups)
                .init(device)
        };
        let stem = Stem {
            conv: conv(self.in_chans, self.dims[0], self.patch_size, self.patch_size, 0, 1),
            norm: norm2d(self.dims[0]),
        };
        let mut prev = self.dims[0];
        let stages = self
            .dims
            .iter()
            .zip(&self.depths)
            .enumerate()
            .map(|(i, (&dim, &depth))| {
                let downsample =
                    (i > 0).then(|| StageDownsample { norm: norm2d(prev), conv: conv(prev, dim, 2, 2, 0, 1) });
                prev = dim;
                let hidden = 4 * dim;
                let blocks = (0..depth)
                    .map(|_| Block {
                        conv_dw: conv(dim, dim, self.kernel_size, 1, self.kernel_size / 2, dim),
                        norm: LayerNormConfig::new(dim).with_epsilon(CONVNEXT_NORM_EPS).init(device),
                        mlp: if self.conv_mlp {
                            BlockMlp::Conv(ConvMlp {
                                fc1: conv(dim, hidden, 1, 1, 0, 1),
                                fc2: conv(hidden, dim, 1, 1, 0, 1),
                            })
                        } else {
                            BlockMlp::Linear(LinearMlp {
                                fc1: LinearConfig::new(dim, hidden).init(device),
                                fc2: LinearConfig::new(hidden, dim).init(device),
                            })
                        },
                        gamma: self
                            .ls_init_value
                            .map(|v| Param::from_tensor(Tensor::<1>::ones([dim], device).mul_scalar(v))),
                    })
                    .collect();
                Stage { downsample, blocks }
            })
            .collect();
        let last = self.output_dim();
        Ok(ConvNext {
            stem,
            stages,
            norm_pre: self.head_norm_first.then(|| norm2d(last)),
            head: Head { norm: (!self.head_norm_first).then(|| norm2d(last)) },
        })
    }
}

/// timm's `LayerNorm2d`: LayerNorm over the channels of an NCHW map.
#[derive(Module, Debug)]
pub struct LayerNorm2d {
    /// The channel norm.
    pub norm: LayerNorm,
}

impl LayerNorm2d {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.norm.forward(x.permute([0, 2, 3, 1])).permute([0, 3, 1, 2])
    }
}

/// Patch stem: a `p×p` stride-`p` convolution and a LayerNorm2d.
#[derive(Module, Debug)]
pub struct Stem {
    /// `stem.0`.
    pub conv: Conv2d,
    /// `stem.1`.
    pub norm: LayerNorm2d,
}

/// A stage's 2×2 stride-2 downsampling (`downsample.0` norm, `.1` conv).
#[derive(Module, Debug)]
pub struct StageDownsample {
    /// `downsample.0`.
    pub norm: LayerNorm2d,
    /// `downsample.1`.
    pub conv: Conv2d,
}

/// The MLP as two linear layers over channels-last tokens.
#[derive(Module, Debug)]
pub struct LinearMlp {
    /// `C → 4C`.
    pub fc1: Linear,
    /// `4C → C`.
    pub fc2: Linear,
}

/// The MLP as two 1×1 convolutions (`conv_mlp`).
#[derive(Module, Debug)]
pub struct ConvMlp {
    /// `C → 4C`.
    pub fc1: Conv2d,
    /// `4C → C`.
    pub fc2: Conv2d,
}

/// A block's MLP.
#[derive(Module, Debug)]
pub enum BlockMlp {
    /// Channels-last linear layers (default).
    Linear(LinearMlp),
    /// 1×1 convolutions (`conv_mlp`).
    Conv(ConvMlp),
}

/// timm's `ConvNeXtBlock`.
#[derive(Module, Debug)]
pub struct Block {
    /// Depthwise convolution.
    pub conv_dw: Conv2d,
    /// Norm over channels (channels-last, or per pixel with `conv_mlp`).
    pub norm: LayerNorm,
    /// Feed-forward.
    pub mlp: BlockMlp,
    /// LayerScale `[C]`.
    pub gamma: Option<Param<Tensor<1>>>,
}

impl Block {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.conv_dw.forward(x.clone());
        // Both MLP forms normalise over channels; the linear one in NHWC.
        let h = self.norm.forward(h.permute([0, 2, 3, 1]));
        let h = match &self.mlp {
            BlockMlp::Linear(mlp) => mlp.fc2.forward(gelu(mlp.fc1.forward(h))).permute([0, 3, 1, 2]),
            BlockMlp::Conv(mlp) => mlp.fc2.forward(gelu(mlp.fc1.forward(h.permute([0, 3, 1, 2])))),
        };
        let h = match &self.gamma {
            Some(gamma) => {
                let c = gamma.val().dims()[0];
                h * gamma.val().reshape([1, c, 1, 1])
            }
            None => h,
        };
        h + x
    }
}

/// A stage: optional downsampling, then blocks.
#[derive(Module, Debug)]
pub struct Stage {
    /// Downsampling (stages after the first).
    pub downsample: Option<StageDownsample>,
    /// Blocks.
    pub blocks: Vec<Block>,
}

/// timm's `NormMlpClassifierHead` up to its pre-logits.
#[derive(Module, Debug)]
pub struct Head {
    /// Norm after pooling (absent with `head_norm_first`).
    pub norm: Option<LayerNorm2d>,
}

/// A timm ConvNeXt without its classifier.
#[derive(Module, Debug)]
pub struct ConvNext {
    /// Patch stem.
    pub stem: Stem,
    /// Stages.
    pub stages: Vec<Stage>,
    /// Norm before pooling (`head_norm_first`).
    pub norm_pre: Option<LayerNorm2d>,
    /// Head norm.
    pub head: Head,
}

impl ConvNext {
    /// Features `[B, C]` of images `[B, 3, H, W]` (timm's pre-logits).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem.norm.forward(self.stem.conv.forward(images));
        for stage in &self.stages {
            if let Some(d) = &stage.downsample {
                x = d.conv.forward(d.norm.forward(x));
            }
            for block in &stage.blocks {
                x = block.forward(x);
            }
        }
        if let Some(norm) = &self.norm_pre {
            x = norm.forward(x);
        }
        let [b, c, h, w] = x.dims();
        let pooled = x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c, 1, 1]);
        let pooled = match &self.head.norm {
            Some(norm) => norm.forward(pooled),
            None => pooled,
        };
        pooled.reshape([b, c])
    }
}
