//! ResNet and ConvNeXt architectures as plain data: timm's constructor
//! arguments and presets. Burn-free, so a plan can name and check them
//! without compiling Burn.

use synbench_data::Normalization;

use crate::EncoderError;

/// A ResNet's residual block (timm `block`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResNetBlock {
    /// Two 3×3 convolutions (ResNet-18/34), expansion 1.
    #[default]
    Basic,
    /// 1×1, 3×3, 1×1 convolutions (ResNet-50 and up), expansion 4.
    Bottleneck,
}

impl ResNetBlock {
    /// Every block, the default first.
    pub const ALL: [Self; 2] = [ResNetBlock::Basic, ResNetBlock::Bottleneck];

    /// The config spelling (`"basic"`, `"bottleneck"`).
    pub const fn name(self) -> &'static str {
        match self {
            ResNetBlock::Basic => "basic",
            ResNetBlock::Bottleneck => "bottleneck",
        }
    }

    /// Output channels per `channels` entry.
    pub const fn expansion(self) -> usize {
        match self {
            ResNetBlock::Basic => 1,
            ResNetBlock::Bottleneck => 4,
        }
    }
}

/// A ResNet's stem (timm `stem_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StemType {
    /// One 7×7 stride-2 convolution to 64 channels (`""`).
    #[default]
    Default,
    /// Three 3×3 convolutions, `stem_width, stem_width, 2·stem_width` (`"deep"`).
    Deep,
    /// As deep, the first `3·(stem_width/4)` wide (`"deep_tiered"`).
    DeepTiered,
}

impl StemType {
    /// Every stem, the default first.
    pub const ALL: [Self; 3] = [StemType::Default, StemType::Deep, StemType::DeepTiered];

    /// timm's spelling (`""`, `"deep"`, `"deep_tiered"`).
    pub const fn name(self) -> &'static str {
        match self {
            StemType::Default => "",
            StemType::Deep => "deep",
            StemType::DeepTiered => "deep_tiered",
        }
    }
}

/// timm's `ResNet` (features: the global average of the last stage).
#[derive(Debug, Clone, PartialEq)]
pub struct ResNetConfig {
    /// Input channels.
    pub in_chans: usize,
    /// Residual block.
    pub block: ResNetBlock,
    /// Blocks per stage (`layers`).
    pub layers: Vec<usize>,
    /// Width of each stage before expansion (`channels`).
    pub channels: Vec<usize>,
    /// Stem width (deep stems only; the default stem is 64 wide, as in timm).
    pub stem_width: usize,
    /// Stem kind.
    pub stem_type: StemType,
    /// Groups of the 3×3 convolution in bottlenecks (`cardinality`, ResNeXt).
    pub cardinality: usize,
    /// Bottleneck width per group at 64 channels (`base_width`).
    pub base_width: usize,
}

impl Default for ResNetConfig {
    fn default() -> Self {
        Self {
            in_chans: 3,
            block: ResNetBlock::Basic,
            layers: vec![2, 2, 2, 2],
            channels: vec![64, 128, 256, 512],
            stem_width: 64,
            stem_type: StemType::Default,
            cardinality: 1,
            base_width: 64,
        }
    }
}

/// timm's `ConvNeXt` with the patch stem (features: the global average,
/// then the head's LayerNorm, as timm's pre-logits).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNextConfig {
    /// Input channels.
    pub in_chans: usize,
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Channels per stage.
    pub dims: Vec<usize>,
    /// LayerScale initial value (`ls_init_value`); `None`: no LayerScale.
    pub ls_init_value: Option<f64>,
    /// MLP as 1×1 convolutions with a channels-first norm (`conv_mlp`).
    pub conv_mlp: bool,
    /// The final norm before pooling instead of after it (`head_norm_first`).
    pub head_norm_first: bool,
    /// Stem patch size (`patch_size`).
    pub patch_size: usize,
    /// Depthwise kernel size (`kernel_sizes`, one for all stages).
    pub kernel_size: usize,
}

impl Default for ConvNextConfig {
    fn default() -> Self {
        Self {
            in_chans: 3,
            depths: vec![3, 3, 9, 3],
            dims: vec![96, 192, 384, 768],
            ls_init_value: Some(1e-6),
            conv_mlp: false,
            head_norm_first: false,
            patch_size: 4,
            kernel_size: 7,
        }
    }
}

/// The ResNet names with a built-in preset.
pub const RESNET_PRESETS: [&str; 5] = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"];

/// The ConvNeXt names with a built-in preset.
pub const CONVNEXT_PRESETS: [&str; 9] = [
    "convnext_atto",
    "convnext_femto",
    "convnext_pico",
    "convnext_nano",
    "convnext_tiny",
    "convnext_small",
    "convnext_base",
    "convnext_large",
    "convnext_xlarge",
];

fn arch_of(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

impl ResNetConfig {
    /// The ResNet timm builds for `name` (tag ignored), see [`RESNET_PRESETS`].
    pub fn preset(name: &str) -> Option<Self> {
        let (block, layers) = match arch_of(name) {
            "resnet18" => (ResNetBlock::Basic, vec![2, 2, 2, 2]),
            "resnet34" => (ResNetBlock::Basic, vec![3, 4, 6, 3]),
            "resnet50" => (ResNetBlock::Bottleneck, vec![3, 4, 6, 3]),
            "resnet101" => (ResNetBlock::Bottleneck, vec![3, 4, 23, 3]),
            "resnet152" => (ResNetBlock::Bottleneck, vec![3, 8, 36, 3]),
            _ => return None,
        };
        Some(Self { block, layers, ..Self::default() })
    }

    /// See [`crate::VitConfig::pretrained_normalization`].
    pub fn pretrained_normalization(name: &str) -> Option<Normalization> {
        crate::pretrained_normalization(name)
    }

    /// Channels after the stem.
    pub fn stem_out(&self) -> usize {
        match self.stem_type {
            StemType::Default => 64,
            StemType::Deep | StemType::DeepTiered => 2 * self.stem_width,
        }
    }

    /// Feature width: the last stage's channels times the block's expansion.
    pub fn output_dim(&self) -> usize {
        self.channels.last().copied().unwrap_or(0) * self.block.expansion()
    }

    /// The bottleneck's inner width for a stage of `planes` channels.
    pub fn bottleneck_width(&self, planes: usize) -> usize {
        (planes * self.base_width / 64) * self.cardinality
    }

    /// Checks the sizes fit together.
    pub fn check(&self) -> Result<(), EncoderError> {
        let fail = |fields: &[&'static str], msg: String| Err(EncoderError::invalid(fields, msg));
        if self.layers.is_empty() || self.layers.len() > 4 || self.layers.len() != self.channels.len() {
            return fail(
                &["layers", "channels"],
                format!(
                    "layers {:?} and channels {:?} must list the same number of stages, one to four",
                    self.layers, self.channels
                ),
            );
        }
        if self.layers.contains(&0) || self.channels.contains(&0) || self.in_chans == 0 {
            return fail(
                &["layers", "channels"],
                format!("every ResNet size must be positive: layers {:?}, channels {:?}", self.layers, self.channels),
            );
        }
        if self.stem_type != StemType::Default && self.stem_width < 4 {
            return fail(
                &["stem_width", "stem_type"],
                format!("stem_width {} is too small for a deep stem", self.stem_width),
            );
        }
        if self.cardinality == 0 || self.base_width == 0 {
            return fail(&["cardinality", "base_width"], "cardinality and base_width must be positive".into());
        }
        if self.block == ResNetBlock::Basic && (self.cardinality != 1 || self.base_width != 64) {
            return fail(
                &["cardinality", "base_width", "block"],
                "the basic block supports only cardinality = 1 and base_width = 64 (as in timm)".into(),
            );
        }
        if self.block == ResNetBlock::Bottleneck
            && self.channels.iter().any(|&p| !self.bottleneck_width(p).is_multiple_of(self.cardinality))
        {
            return fail(
                &["cardinality", "base_width", "channels"],
                format!("cardinality {} does not split the bottleneck widths", self.cardinality),
            );
        }
        Ok(())
    }
}

impl ConvNextConfig {
    /// The ConvNeXt timm builds for `name` (tag ignored), see [`CONVNEXT_PRESETS`].
    pub fn preset(name: &str) -> Option<Self> {
        let (depths, dims, conv_mlp) = match arch_of(name) {
            "convnext_atto" => (vec![2, 2, 6, 2], vec![40, 80, 160, 320], true),
            "convnext_femto" => (vec![2, 2, 6, 2], vec![48, 96, 192, 384], true),
            "convnext_pico" => (vec![2, 2, 6, 2], vec![64, 128, 256, 512], true),
            "convnext_nano" => (vec![2, 2, 8, 2], vec![80, 160, 320, 640], true),
            "convnext_tiny" => (vec![3, 3, 9, 3], vec![96, 192, 384, 768], false),
            "convnext_small" => (vec![3, 3, 27, 3], vec![96, 192, 384, 768], false),
            "convnext_base" => (vec![3, 3, 27, 3], vec![128, 256, 512, 1024], false),
            "convnext_large" => (vec![3, 3, 27, 3], vec![192, 384, 768, 1536], false),
            "convnext_xlarge" => (vec![3, 3, 27, 3], vec![256, 512, 1024, 2048], false),
            _ => return None,
        };
        Some(Self { depths, dims, conv_mlp, ..Self::default() })
    }

    /// See [`crate::VitConfig::pretrained_normalization`].
    pub fn pretrained_normalization(name: &str) -> Option<Normalization> {
        crate::pretrained_normalization(name)
    }

    /// Feature width: the last stage's channels.
    pub fn output_dim(&self) -> usize {
        self.dims.last().copied().unwrap_or(0)
    }

    /// Checks the sizes fit together.
    pub fn check(&self) -> Result<(), EncoderError> {
        let fail = |fields: &[&'static str], msg: String| Err(EncoderError::invalid(fields, msg));
        if self.depths.is_empty() || self.depths.len() != self.dims.len() {
            return fail(
                &["depths", "dims"],
                format!(
                    "depths {:?} and dims {:?} must list the same, non-zero number of stages",
                    self.depths, self.dims
                ),
            );
        }
        if self.depths.contains(&0) || self.dims.contains(&0) || self.in_chans == 0 || self.patch_size == 0 {
            return fail(
                &["depths", "dims"],
                format!("every ConvNeXt size must be positive: depths {:?}, dims {:?}", self.depths, self.dims),
            );
        }
        if self.kernel_size.is_multiple_of(2) {
            return fail(&["kernel_size"], format!("kernel_size {} must be odd (same padding)", self.kernel_size));
        }
        if let Some(v) = self.ls_init_value
            && !v.is_finite()
        {
            return fail(&["ls_init_value"], format!("ls_init_value {v} must be a finite number"));
        }
        Ok(())
    }
}
