//! timm's `ResNet` in Burn (feature `burn`), BatchNorm in inference form,
//! loading timm state dicts by timm's key names.
//!
//! | timm key | Burn field |
//! |---|---|
//! | `conv1.weight` (default stem) | `stem.conv1` |
//! | `conv1.{0,3,6}.weight`, `conv1.{1,4}.*` (deep stems) | `stem.conv1`, `stem.conv2`, `stem.conv3`, `stem.bn_a`, `stem.bn_b` |
//! | `bn1.{weight,bias,running_mean,running_var}` | `bn1.{gamma,beta,running_mean,running_var}` |
//! | `layerS.i.{conv1,bn1,conv2,bn2[,conv3,bn3]}.*` | `layerS.i.…` |
//! | `layerS.0.downsample.{0,1}.*` | `layerS.0.downsample.{conv,bn}.*` |
//! | `fc.*`, `*.num_batches_tracked` | — (ignored) |
//!
//! The forward pass is timm's with `num_classes=0`: stem, 3×3 stride-2 max
//! pool, the stages (stride 2 from the second on, a 1×1 convolution and
//! BatchNorm on the shortcut where the shape changes), ReLU after each add,
//! then the global average.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::EncoderError;
pub use crate::cnn_config::{ResNetBlock, ResNetConfig, StemType};

/// BatchNorm epsilon of PyTorch's `BatchNorm2d`.
pub const BATCH_NORM_EPS: f64 = 1e-5;

fn conv(i: usize, o: usize, k: usize, stride: usize, groups: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([i, o], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).with_epsilon(BATCH_NORM_EPS).init(device)
}

impl ResNetConfig {
    /// A randomly initialised ResNet on `device`.
    pub fn init(&self, device: &Device) -> Result<ResNet, EncoderError> {
        self.check()?;
        let c = self.in_chans;
        let stem = match self.stem_type {
            StemType::Default => {
                Stem { conv1: conv(c, 64, 7, 2, 1, device), conv2: None, conv3: None, bn_a: None, bn_b: None }
            }
            deep => {
                let w = self.stem_width;
                let first = if deep == StemType::DeepTiered { 3 * (w / 4) } else { w };
                Stem {
                    conv1: conv(c, first, 3, 2, 1, device),
                    bn_a: Some(bn(first, device)),
                    conv2: Some(conv(first, w, 3, 1, 1, device)),
                    bn_b: Some(bn(w, device)),
                    conv3: Some(conv(w, 2 * w, 3, 1, 1, device)),
                }
            }
        };
        let mut inplanes = self.stem_out();
        let mut stages = Vec::new();
        for (s, (&planes, &blocks)) in self.channels.iter().zip(&self.layers).enumerate() {
            let out = planes * self.block.expansion();
            let stage = (0..blocks)
                .map(|i| {
                    let stride = if s > 0 && i == 0 { 2 } else { 1 };
                    let downsample = (i == 0 && (stride != 1 || inplanes != out))
                        .then(|| Downsample { conv: conv(inplanes, out, 1, stride, 1, device), bn: bn(out, device) });
                    let block = match self.block {
                        ResNetBlock::Basic => Residual {
                            conv1: conv(inplanes, planes, 3, stride, 1, device),
                            bn1: bn(planes, device),
                            conv2: conv(planes, out, 3, 1, 1, device),
                            bn2: bn(out, device),
                            conv3: None,
                            bn3: None,
                            downsample,
                        },
                        ResNetBlock::Bottleneck => {
                            let width = self.bottleneck_width(planes);
                            Residual {
                                conv1: conv(inplanes, width, 1, 1, 1, device),
                                bn1: bn(width, device),
                                conv2: conv(width, width, 3, stride, self.cardinality, device),
                                bn2: bn(width, device),
                                conv3: Some(conv(width, out, 1, 1, 1, device)),
                                bn3: Some(bn(out, device)),
                                downsample,
                            }
                        }
                    };
                    inplanes = out;
                    block
                })
                .collect();
            stages.push(stage);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().unwrap_or_default();
        Ok(ResNet {
            stem,
            bn1: bn(self.stem_out(), device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
        })
    }
}

/// The stem convolutions: one 7×7, or three 3×3 with two norms between.
#[derive(Module, Debug)]
pub struct Stem {
    /// The first (or only) convolution.
    pub conv1: Conv2d,
    /// Deep stems: norm after the first convolution.
    pub bn_a: Option<BatchNorm>,
    /// Deep stems: the second convolution.
    pub conv2: Option<Conv2d>,
    /// Deep stems: norm after the second convolution.
    pub bn_b: Option<BatchNorm>,
    /// Deep stems: the third convolution.
    pub conv3: Option<Conv2d>,
}

/// The shortcut's projection where the shape changes.
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1×1 convolution, stride of the block.
    pub conv: Conv2d,
    /// Its norm.
    pub bn: BatchNorm,
}

/// timm's `BasicBlock` (no `conv3`) or `Bottleneck`.
#[derive(Module, Debug)]
pub struct Residual {
    /// First convolution.
    pub conv1: Conv2d,
    /// Its norm.
    pub bn1: BatchNorm,
    /// Second convolution.
    pub conv2: Conv2d,
    /// Its norm.
    pub bn2: BatchNorm,
    /// Bottleneck: the expanding 1×1 convolution.
    pub conv3: Option<Conv2d>,
    /// Bottleneck: its norm.
    pub bn3: Option<BatchNorm>,
    /// Shortcut projection.
    pub downsample: Option<Downsample>,
}

impl Residual {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.downsample {
            Some(d) => d.bn.forward(d.conv.forward(x.clone())),
            None => x.clone(),
        };
        let mut h = relu(self.bn1.forward(self.conv1.forward(x)));
        h = self.bn2.forward(self.conv2.forward(h));
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            h = bn3.forward(conv3.forward(relu(h)));
        }
        relu(h + shortcut)
    }
}

/// A timm ResNet without its classifier.
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolutions.
    pub stem: Stem,
    /// Norm after the stem.
    pub bn1: BatchNorm,
    /// 3×3 stride-2 max pool.
    pub maxpool: MaxPool2d,
    /// Stage 1.
    pub layer1: Vec<Residual>,
    /// Stage 2.
    pub layer2: Vec<Residual>,
    /// Stage 3.
    pub layer3: Vec<Residual>,
    /// Stage 4.
    pub layer4: Vec<Residual>,
}

impl ResNet {
    /// Features `[B, C]` of images `[B, 3, H, W]`: the global average of the
    /// last stage (timm's `forward` with `num_classes=0`).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let s = &self.stem;
        let mut x = s.conv1.forward(images);
        if let (Some(bn_a), Some(conv2), Some(bn_b), Some(conv3)) = (&s.bn_a, &s.conv2, &s.bn_b, &s.conv3) {
            x = relu(bn_a.forward(x));
            x = relu(bn_b.forward(conv2.forward(x)));
            x = conv3.forward(x);
        }
        x = self.maxpool.forward(relu(self.bn1.forward(x)));
        for stage in [&self.layer1, &self.layer2, &self.layer3, &self.layer4] {
            for block in stage {
                x = block.forward(x);
            }
        }
        let [b, c, h, w] = x.dims();
        x.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
    }
}
