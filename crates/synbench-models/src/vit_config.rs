//! The ViT architecture as plain data: timm's hyper-parameters and presets.
//! Burn-free, so a plan can name and check a ViT without compiling Burn.

use crate::EncoderError;
use synbench_data::Normalization;

/// How the token sequence becomes one feature vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GlobalPool {
    /// The class token after the final norm (timm `global_pool="token"`).
    #[default]
    Token,
    /// The mean of the patch tokens, then `fc_norm` (timm `global_pool="avg"`).
    Avg,
    /// Multi-head attention pooling of the patch tokens by a learned latent
    /// query (timm `global_pool="map"`, `AttentionPoolLatent`, as SigLIP).
    Map,
}

impl GlobalPool {
    /// Every pooling, the default first.
    pub const ALL: [Self; 3] = [GlobalPool::Token, GlobalPool::Avg, GlobalPool::Map];

    /// timm's spelling (`"token"`, `"avg"`, `"map"`).
    pub const fn name(self) -> &'static str {
        match self {
            GlobalPool::Token => "token",
            GlobalPool::Avg => "avg",
            GlobalPool::Map => "map",
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
    /// DeiT's distillation token after the class token (timm's
    /// `VisionTransformerDistilled`); the features are the mean of the two
    /// tokens after the final norm, as its pre-logits are.
    pub dist_token: bool,
    /// A checkpoint made for another image size loads: its position
    /// embedding is resampled to this `img_size`'s patch grid as timm does it
    /// (`resample_abs_pos_embed`: bicubic, antialiased), e.g. a DINOv2
    /// checkpoint made at 518 px run at 224 px.
    pub dynamic_img_size: bool,
    /// LayerNorm epsilon: timm's ViT default 1e-6; the CLIP towers are
    /// built with `norm_layer=partial(LayerNorm, eps=1e-5)`.
    pub norm_eps: f64,
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
            dist_token: false,
            dynamic_img_size: false,
            norm_eps: 1e-6,
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
pub const PRESETS: [&str; 25] = [
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
    "vit_base_patch16_224",
    "vit_base_patch32_224",
    "vit_large_patch16_224",
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
    "deit_tiny_distilled_patch16_224",
    "deit_small_distilled_patch16_224",
    "deit_base_distilled_patch16_224",
    "vit_small_patch14_dinov2",
    "vit_base_patch14_dinov2",
    "vit_large_patch14_dinov2",
    "vit_small_patch14_reg4_dinov2",
    "vit_base_patch14_reg4_dinov2",
    "vit_large_patch14_reg4_dinov2",
    "vit_base_patch16_clip_224",
    "vit_base_patch32_clip_224",
    "vit_large_patch14_clip_224",
    "vit_base_patch16_clip_quickgelu_224",
    "vit_base_patch32_clip_quickgelu_224",
    "vit_large_patch14_clip_quickgelu_224",
    "vit_base_patch16_siglip_224",
    "vit_base_patch16_siglip_256",
];

impl VitConfig {
    /// The architecture timm builds for `name` (see [`PRESETS`]); the part of
    /// a name after a `.` (a pretrained tag such as `.augreg2_in21k_ft_in1k`)
    /// does not change the architecture and is ignored. The image size is
    /// timm's default for the name (518 for DINOv2, whose checkpoints are
    /// made there; with `dynamic_img_size` they run at any size).
    pub fn preset(name: &str) -> Option<Self> {
        let arch = name.split('.').next().unwrap_or(name);
        let mut options = VitOptions::default();
        let (mut img_size, mut global_pool) = (224, GlobalPool::Token);
        let size = |size: &str| match size {
            "tiny" => Some((192, 12, 3)),
            "small" => Some((384, 12, 6)),
            "base" => Some((768, 12, 12)),
            "large" => Some((1024, 24, 16)),
            _ => None,
        };
        let parts: Vec<&str> = arch.split('_').collect();
        let (family, width, patch, rest) = match parts.as_slice() {
            [family @ ("vit" | "deit"), width, rest @ ..] => (*family, *width, rest.first().copied()?, &rest[1..]),
            _ => return None,
        };
        let (embed_dim, depth, num_heads) = size(width)?;
        let mut parts = rest.to_vec();
        let mut patch = patch;
        if family == "deit" && patch == "distilled" {
            options.dist_token = true;
            patch = parts.first().copied()?;
            parts.remove(0);
        }
        let patch_size: usize = patch.strip_prefix("patch")?.parse().ok()?;
        match (family, parts.as_slice()) {
            (_, ["224"]) => {}
            ("vit", ["dinov2"] | ["reg4", "dinov2"]) => {
                // Made at 518 px; timm resamples the position embedding when
                // one is built at another size, so these load at any size.
                img_size = 518;
                options.dynamic_img_size = true;
                options.init_values = Some(1e-5);
                if parts[0] == "reg4" {
                    options.reg_tokens = 4;
                    options.no_embed_class = true;
                }
            }
            ("vit", ["clip", "224"] | ["clip", "quickgelu", "224"]) => {
                options.pre_norm = true;
                options.norm_eps = 1e-5;
                if parts[1] == "quickgelu" {
                    options.act_layer = Activation::QuickGelu;
                }
            }
            ("vit", ["siglip", size]) => {
                img_size = size.parse().ok()?;
                options.class_token = false;
                global_pool = GlobalPool::Map;
            }
            _ => return None,
        }
        let config = Self {
            img_size,
            patch_size,
            in_chans: 3,
            embed_dim,
            depth,
            num_heads,
            mlp_ratio: 4.0,
            global_pool,
            options,
        };
        // The name grammar above also reads names timm does not have.
        PRESETS.contains(&arch).then_some(config)
    }

    /// The input normalisation timm's pretrained configuration gives `name`
    /// (`preset` or `preset.tag`; the bare name is timm's default tag), as
    /// timm 1.0.31 lists it (`scripts/timm_presets.py`); `None` for a name
    /// that is not a preset or a tag timm does not know.
    pub fn pretrained_normalization(name: &str) -> Option<Normalization> {
        crate::pretrained_normalization(name)
    }

    /// Checks the sizes fit together.
    pub fn check(&self) -> Result<(), EncoderError> {
        let fail = |fields: &[&'static str], msg: String| Err(EncoderError::invalid(fields, msg));
        let sizes = [
            ("img_size", self.img_size),
            ("patch_size", self.patch_size),
            ("embed_dim", self.embed_dim),
            ("depth", self.depth),
            ("num_heads", self.num_heads),
            ("in_chans", self.in_chans),
        ];
        let zero: Vec<&'static str> = sizes.iter().filter(|(_, v)| *v == 0).map(|(k, _)| *k).collect();
        if !zero.is_empty() {
            return fail(&zero, format!("every ViT size must be positive, got {self:?}"));
        }
        if !self.img_size.is_multiple_of(self.patch_size) {
            return fail(
                &["img_size", "patch_size"],
                format!(
                    "img_size {} is not a multiple of patch_size {}: the patch grid would not cover the image",
                    self.img_size, self.patch_size
                ),
            );
        }
        if !self.embed_dim.is_multiple_of(self.num_heads) {
            return fail(
                &["num_heads", "embed_dim"],
                format!(
                    "embed_dim {} is not divisible by num_heads {}: heads must split the width evenly",
                    self.embed_dim, self.num_heads
                ),
            );
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0) || self.mlp_hidden() == 0 {
            return fail(&["mlp_ratio"], format!("mlp_ratio {} must be positive", self.mlp_ratio));
        }
        if self.global_pool == GlobalPool::Token && !self.options.class_token {
            return fail(
                &["class_token", "global_pool"],
                "class_token = false: global_pool = \"token\" pools the class token; use \"avg\" or \"map\"".into(),
            );
        }
        if let Some(v) = self.options.init_values
            && !v.is_finite()
        {
            return fail(&["init_values"], format!("init_values {v} must be a finite number"));
        }
        if !(self.options.norm_eps.is_finite() && self.options.norm_eps > 0.0) {
            return fail(&["norm_eps"], format!("norm_eps {} must be a positive number", self.options.norm_eps));
        }
        if self.options.dist_token {
            // timm's VisionTransformerDistilled asserts the same.
            if self.global_pool != GlobalPool::Token || !self.options.class_token {
                return fail(
                    &["dist_token", "global_pool", "class_token"],
                    "dist_token = true: the distilled head reads the class and distillation tokens; \
                             use global_pool = \"token\" with class_token = true"
                        .into(),
                );
            }
            if self.options.reg_tokens > 0 || self.options.fc_norm == Some(true) {
                return fail(
                    &["dist_token", "reg_tokens", "fc_norm"],
                    "dist_token = true: timm's distilled ViT has no register tokens and no fc_norm".into(),
                );
            }
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

    /// Class, distillation and register tokens before the patches.
    pub fn num_prefix_tokens(&self) -> usize {
        usize::from(self.options.class_token) + usize::from(self.options.dist_token) + self.options.reg_tokens
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
