//! The ViT architecture as plain data: timm's hyper-parameters and presets.
//! Burn-free, so a plan can name and check a ViT without compiling Burn.

use crate::EncoderError;

/// How the token sequence becomes one feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GlobalPool {
    /// The class token after the final norm (timm `global_pool="token"`).
    #[default]
    Token,
    /// The mean of the patch tokens, then `fc_norm` (timm `global_pool="avg"`).
    Avg,
}

impl GlobalPool {
    /// Every pooling, the default first.
    pub const ALL: [Self; 2] = [GlobalPool::Token, GlobalPool::Avg];

    /// timm's spelling (`"token"`, `"avg"`).
    pub const fn name(self) -> &'static str {
        match self {
            GlobalPool::Token => "token",
            GlobalPool::Avg => "avg",
        }
    }
}

/// The MLP's activation (timm `act_layer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// Exact (erf) GELU, timm's default.
    #[default]
    Gelu,
    /// `x·σ(1.702·x)`, the OpenAI CLIP towers' activation.
    QuickGelu,
}

impl Activation {
    /// Every activation, the default first.
    pub const ALL: [Self; 2] = [Activation::Gelu, Activation::QuickGelu];

    /// timm's spelling (`"gelu"`, `"quick_gelu"`).
    pub const fn name(self) -> &'static str {
        match self {
            Activation::Gelu => "gelu",
            Activation::QuickGelu => "quick_gelu",
        }
    }
}

/// The options of timm's `VisionTransformer` that change the forward pass,
/// under timm's constructor names; the default is timm's default.
#[derive(Debug, Clone, PartialEq)]
pub struct VitOptions {
    /// A class token before the patch tokens (`class_token`).
    pub class_token: bool,
    /// Register tokens after the class token (`reg_tokens`, DINOv2's `_reg4_`).
    pub reg_tokens: usize,
    /// The position embedding covers the patches only (`no_embed_class`):
    /// the prefix tokens are added after it.
    pub no_embed_class: bool,
    /// A LayerNorm after the position embedding (`pre_norm`, CLIP); the
    /// patch projection then has no bias, as in timm.
    pub pre_norm: bool,
    /// The norm after pooling instead of before it (`fc_norm`); `None` is
    /// timm's default: with average pooling.
    pub fc_norm: Option<bool>,
    /// LayerScale after attention and MLP with this initial value
    /// (`init_values`, DINOv2); `None`: no LayerScale.
    pub init_values: Option<f64>,
    /// A bias in the fused qkv projection (`qkv_bias`).
    pub qkv_bias: bool,
    /// The MLP's activation (`act_layer`).
    pub act_layer: Activation,
}

impl Default for VitOptions {
    fn default() -> Self {
        Self {
            class_token: true,
            reg_tokens: 0,
            no_embed_class: false,
            pre_norm: false,
            fc_norm: None,
            init_values: None,
            qkv_bias: true,
            act_layer: Activation::Gelu,
        }
    }
}

/// Architecture hyper-parameters of a ViT.
#[derive(Debug, Clone, PartialEq)]
pub struct VitConfig {
    /// Square input side in pixels.
    pub img_size: usize,
    /// Square patch side in pixels.
    pub patch_size: usize,
    /// Input channels.
    pub in_chans: usize,
    /// Token width `D`.
    pub embed_dim: usize,
    /// Number of blocks.
    pub depth: usize,
    /// Attention heads per block.
    pub num_heads: usize,
    /// MLP hidden width as a multiple of `D`.
    pub mlp_ratio: f64,
    /// Feature pooling.
    pub global_pool: GlobalPool,
    /// The options beyond the sizes.
    pub options: VitOptions,
}

/// The timm model names with a built-in preset.
pub const PRESETS: [&str; 8] = [
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "vit_base_patch32_224",
    "vit_large_patch16_224",
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
];

impl VitConfig {
    /// The architecture timm builds for `name` (see [`PRESETS`]); the part of
    /// a name after a `.` (a pretrained tag such as `.augreg2_in21k_ft_in1k`)
    /// does not change the architecture and is ignored.
    pub fn preset(name: &str) -> Option<Self> {
        let arch = name.split('.').next().unwrap_or(name);
        let (patch_size, embed_dim, depth, num_heads) = match arch {
            "vit_tiny_patch16_224" | "deit_tiny_patch16_224" => (16, 192, 12, 3),
            "vit_small_patch16_224" | "deit_small_patch16_224" => (16, 384, 12, 6),
            "vit_base_patch16_224" | "deit_base_patch16_224" => (16, 768, 12, 12),
            "vit_base_patch32_224" => (32, 768, 12, 12),
            "vit_large_patch16_224" => (16, 1024, 24, 16),
            _ => return None,
        };
        Some(Self {
            img_size: 224,
            patch_size,
            in_chans: 3,
            embed_dim,
            depth,
            num_heads,
            mlp_ratio: 4.0,
            global_pool: GlobalPool::Token,
            options: VitOptions::default(),
        })
    }

    /// Checks the sizes fit together.
    pub fn check(&self) -> Result<(), EncoderError> {
        let fail = |msg: String| Err(EncoderError::Config(msg));
        if [self.img_size, self.patch_size, self.in_chans, self.embed_dim, self.depth, self.num_heads].contains(&0) {
            return fail(format!("every ViT size must be positive, got {self:?}"));
        }
        if !self.img_size.is_multiple_of(self.patch_size) {
            return fail(format!(
                "img_size {} is not a multiple of patch_size {}: the patch grid would not cover the image",
                self.img_size, self.patch_size
            ));
        }
        if !self.embed_dim.is_multiple_of(self.num_heads) {
            return fail(format!(
                "embed_dim {} is not divisible by num_heads {}: heads must split the width evenly",
                self.embed_dim, self.num_heads
            ));
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0) || self.mlp_hidden() == 0 {
            return fail(format!("mlp_ratio {} must be positive", self.mlp_ratio));
        }
        if self.global_pool == GlobalPool::Token && !self.options.class_token {
            return fail("class_token = false: global_pool = \"token\" pools the class token; use \"avg\"".into());
        }
        if let Some(v) = self.options.init_values
            && !v.is_finite()
        {
            return fail(format!("init_values {v} must be a finite number"));
        }
        Ok(())
    }

    /// The sample shape the ViT takes, `[in_chans, img_size, img_size]`.
    pub fn input_shape(&self) -> Vec<usize> {
        vec![self.in_chans, self.img_size, self.img_size]
    }

    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        (self.img_size / self.patch_size).pow(2)
    }

    /// Class and register tokens before the patches.
    pub fn num_prefix_tokens(&self) -> usize {
        usize::from(self.options.class_token) + self.options.reg_tokens
    }

    /// Tokens the position embedding covers.
    pub fn embed_len(&self) -> usize {
        self.num_patches() + if self.options.no_embed_class { 0 } else { self.num_prefix_tokens() }
    }

    /// Whether the norm comes after pooling (timm's `use_fc_norm`).
    pub fn use_fc_norm(&self) -> bool {
        self.options.fc_norm.unwrap_or(self.global_pool == GlobalPool::Avg)
    }

    /// MLP hidden width, `int(D·mlp_ratio)` as timm computes it.
    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }
}
