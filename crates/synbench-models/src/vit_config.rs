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

    /// MLP hidden width, `int(D·mlp_ratio)` as timm computes it.
    pub fn mlp_hidden(&self) -> usize {
        (self.embed_dim as f64 * self.mlp_ratio) as usize
    }
}
