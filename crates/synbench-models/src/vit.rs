//! timm's `VisionTransformer` in Burn, field for field.
//!
//! The module tree mirrors timm's parameter names so a timm state dict loads
//! through burn-store's `PyTorchToBurnAdapter` (which transposes `Linear`
//! weights and renames norm `weight`/`bias` to `gamma`/`beta`) with no key
//! remapping. The whole timm → Burn key table:
//!
//! | timm key | Burn field | layout |
//! |---|---|---|
//! | `patch_embed.proj.{weight,bias}` | `patch_embed.proj` (`Conv2d`) | `[D, C, p, p]`, as in PyTorch |
//! | `cls_token` | `cls_token` | `[1, 1, D]` |
//! | `pos_embed` | `pos_embed` | `[1, 1 + N, D]` (class position included) |
//! | `blocks.i.norm1.{weight,bias}` | `blocks.i.norm1.{gamma,beta}` | `[D]` |
//! | `blocks.i.attn.qkv.{weight,bias}` | `blocks.i.attn.qkv` | `[3D, D]` → `[D, 3D]`, fused q‖k‖v |
//! | `blocks.i.attn.proj.{weight,bias}` | `blocks.i.attn.proj` | `[D, D]` → transposed |
//! | `blocks.i.norm2.{weight,bias}` | `blocks.i.norm2.{gamma,beta}` | `[D]` |
//! | `blocks.i.mlp.fc1.{weight,bias}` | `blocks.i.mlp.fc1` | `[H, D]` → `[D, H]` |
//! | `blocks.i.mlp.fc2.{weight,bias}` | `blocks.i.mlp.fc2` | `[D, H]` → `[H, D]` |
//! | `norm.{weight,bias}` (token pooling) | `norm` | `[D]` |
//! | `fc_norm.{weight,bias}` (average pooling) | `fc_norm` | `[D]` |
//! | `head.{weight,bias}` | — (ignored: features are taken before the head) | |
//!
//! The forward pass is timm's with `num_classes=0`: conv patch embedding,
//! class token, learned position embedding, pre-norm blocks (LayerNorm
//! ε = 1e-6, fused-qkv multi-head attention, exact-erf GELU MLP), then the
//! final norm and the class token (`global_pool="token"`), or the mean of the
//! patch tokens followed by `fc_norm` (`global_pool="avg"`).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Tensor};

use crate::EncoderError;
pub use crate::vit_config::{GlobalPool, PRESETS, VitConfig};

/// LayerNorm epsilon of timm's ViTs (Burn's default is 1e-5).
pub const LAYER_NORM_EPS: f64 = 1e-6;

impl VitConfig {
    /// A randomly initialised model on `device` (Burn's initialisers; load
    /// weights to get timm's).
    pub fn init(&self, device: &Device) -> Result<VisionTransformer, EncoderError> {
        self.check()?;
        let d = self.embed_dim;
        let norm = || LayerNormConfig::new(d).with_epsilon(LAYER_NORM_EPS).init(device);
        let blocks = (0..self.depth)
            .map(|_| Block {
                norm1: norm(),
                attn: Attention {
                    qkv: LinearConfig::new(d, 3 * d).init(device),
                    proj: LinearConfig::new(d, d).init(device),
                    num_heads: self.num_heads,
                },
                norm2: norm(),
                mlp: Mlp {
                    fc1: LinearConfig::new(d, self.mlp_hidden()).init(device),
                    fc2: LinearConfig::new(self.mlp_hidden(), d).init(device),
                },
            })
            .collect();
        // timm initialises both tokens with small normal noise.
        let tokens = |n: usize| {
            Param::from_tensor(Tensor::<3>::random([1, n, d], burn::tensor::Distribution::Normal(0.0, 0.02), device))
        };
        let (norm_final, fc_norm) = match self.global_pool {
            GlobalPool::Token => (Some(norm()), None),
            GlobalPool::Avg => (None, Some(norm())),
        };
        Ok(VisionTransformer {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([self.in_chans, d], [self.patch_size, self.patch_size])
                    .with_stride([self.patch_size, self.patch_size])
                    .init(device),
            },
            cls_token: tokens(1),
            pos_embed: tokens(self.num_patches() + 1),
            blocks,
            norm: norm_final,
            fc_norm,
            global_pool: self.global_pool,
        })
    }
}

/// Non-overlapping patches to tokens: a `p×p` convolution with stride `p`.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    /// `[D, C, p, p]` convolution.
    pub proj: Conv2d,
}

/// Multi-head self-attention with timm's fused `qkv` projection.
#[derive(Module, Debug)]
pub struct Attention {
    /// `D → 3D`, output laid out `[q | k | v]`, each `[heads × head_dim]`.
    pub qkv: Linear,
    /// Output projection `D → D`.
    pub proj: Linear,
    #[module(skip)]
    num_heads: usize,
}

impl Attention {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let (h, hd) = (self.num_heads, d / self.num_heads);
        let qkv = self.qkv.forward(x);
        // timm: reshape(B, N, 3, H, hd) — q, k, v are consecutive D-wide slices.
        let split = |i: usize| qkv.clone().narrow(2, i * d, d).reshape([b, n, h, hd]).swap_dims(1, 2);
        let (q, k, v) = (split(0), split(1), split(2));
        let scores = q.matmul(k.transpose()).mul_scalar((hd as f64).powf(-0.5));
        let context = softmax(scores, 3).matmul(v); // [b, h, n, hd]
        self.proj.forward(context.swap_dims(1, 2).reshape([b, n, d]))
    }
}

/// The two-layer MLP with exact (erf) GELU.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `D → H`.
    pub fc1: Linear,
    /// `H → D`.
    pub fc2: Linear,
}

/// A pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attn: Attention,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// Feed-forward.
    pub mlp: Mlp,
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x));
        let hidden = self.mlp.fc2.forward(gelu(self.mlp.fc1.forward(self.norm2.forward(x.clone()))));
        x + hidden
    }
}

/// timm's `VisionTransformer` without its classifier head.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    /// Patch embedding.
    pub patch_embed: PatchEmbed,
    /// Class token `[1, 1, D]`.
    pub cls_token: Param<Tensor<3>>,
    /// Position embedding `[1, 1 + N, D]`.
    pub pos_embed: Param<Tensor<3>>,
    /// Transformer blocks.
    pub blocks: Vec<Block>,
    /// Final norm (token pooling).
    pub norm: Option<LayerNorm>,
    /// Norm after pooling (average pooling).
    pub fc_norm: Option<LayerNorm>,
    #[module(skip)]
    global_pool: GlobalPool,
}

impl VisionTransformer {
    /// Features `[B, D]` of images `[B, C, H, W]` (what timm returns with `num_classes=0`).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let tokens = self.patch_embed.proj.forward(images); // [B, D, gh, gw]
        let [b, d, gh, gw] = tokens.dims();
        let tokens = tokens.reshape([b, d, gh * gw]).swap_dims(1, 2);
        let cls = self.cls_token.val().expand([b, 1, d]);
        let mut x = Tensor::cat(vec![cls, tokens], 1) + self.pos_embed.val();
        for block in &self.blocks {
            x = block.forward(x);
        }
        match self.global_pool {
            GlobalPool::Token => {
                let x = match &self.norm {
                    Some(norm) => norm.forward(x),
                    None => x,
                };
                x.narrow(1, 0, 1).reshape([b, d])
            }
            GlobalPool::Avg => {
                let pooled = x.narrow(1, 1, gh * gw).mean_dim(1).reshape([b, d]);
                match &self.fc_norm {
                    Some(norm) => norm.forward(pooled),
                    None => pooled,
                }
            }
        }
    }
}
