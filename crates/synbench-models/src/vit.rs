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
//! | `cls_token` (`class_token`) | `cls_token` | `[1, 1, D]` |
//! | `reg_token` (`reg_tokens = R`) | `reg_token` | `[1, R, D]` |
//! | `pos_embed` | `pos_embed` | `[1, P + N, D]` (P prefix tokens; `[1, N, D]` with `no_embed_class`) |
//! | `norm_pre.{weight,bias}` (`pre_norm`) | `norm_pre` | `[D]` |
//! | `blocks.i.norm1.{weight,bias}` | `blocks.i.norm1.{gamma,beta}` | `[D]` |
//! | `blocks.i.attn.qkv.{weight,bias}` | `blocks.i.attn.qkv` | `[3D, D]` → `[D, 3D]`, fused q‖k‖v |
//! | `blocks.i.attn.proj.{weight,bias}` | `blocks.i.attn.proj` | `[D, D]` → transposed |
//! | `blocks.i.ls1.gamma`, `blocks.i.ls2.gamma` (`init_values`) | `blocks.i.ls{1,2}.gamma` | `[D]` |
//! | `blocks.i.norm2.{weight,bias}` | `blocks.i.norm2.{gamma,beta}` | `[D]` |
//! | `blocks.i.mlp.fc1.{weight,bias}` | `blocks.i.mlp.fc1` | `[H, D]` → `[D, H]` |
//! | `blocks.i.mlp.fc2.{weight,bias}` | `blocks.i.mlp.fc2` | `[D, H]` → `[H, D]` |
//! | `norm.{weight,bias}` (without `fc_norm`) | `norm` | `[D]` |
//! | `fc_norm.{weight,bias}` (`fc_norm`, by default with average pooling) | `fc_norm` | `[D]` |
//! | `head.{weight,bias}` | — (ignored: features are taken before the head) | |
//!
//! The forward pass is timm's with `num_classes=0`: conv patch embedding
//! (no bias with `pre_norm`), class and register tokens and the learned
//! position embedding in timm's order (`no_embed_class` adds it to the
//! patches before the prefix tokens are prepended), `norm_pre`, pre-norm
//! blocks (LayerNorm ε = 1e-6 or `norm_eps`, fused-qkv multi-head attention, exact-erf
//! GELU or QuickGELU MLP, optional LayerScale), then the final norm and the
//! class token (`global_pool="token"`), or the mean of the patch tokens
//! followed by `fc_norm` (`global_pool="avg"`).

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, sigmoid, softmax};
use burn::tensor::{Device, Tensor};

use crate::EncoderError;
pub use crate::vit_config::{Activation, GlobalPool, PRESETS, VitConfig, VitOptions};

/// LayerNorm epsilon of timm's ViTs (Burn's default is 1e-5), the default
/// of [`VitOptions::norm_eps`].
pub const LAYER_NORM_EPS: f64 = 1e-6;

impl VitConfig {
    /// A randomly initialised model on `device` (Burn's initialisers; load
    /// weights to get timm's).
    pub fn init(&self, device: &Device) -> Result<VisionTransformer, EncoderError> {
        self.check()?;
        let d = self.embed_dim;
        let o = &self.options;
        let norm = || LayerNormConfig::new(d).with_epsilon(o.norm_eps).init(device);
        let layer_scale = || {
            o.init_values
                .map(|v| LayerScale { gamma: Param::from_tensor(Tensor::<1>::ones([d], device).mul_scalar(v)) })
        };
        let blocks = (0..self.depth)
            .map(|_| Block {
                norm1: norm(),
                attn: Attention {
                    qkv: LinearConfig::new(d, 3 * d).with_bias(o.qkv_bias).init(device),
                    proj: LinearConfig::new(d, d).init(device),
                    num_heads: self.num_heads,
                },
                ls1: layer_scale(),
                norm2: norm(),
                mlp: Mlp {
                    fc1: LinearConfig::new(d, self.mlp_hidden()).init(device),
                    fc2: LinearConfig::new(self.mlp_hidden(), d).init(device),
                    act: o.act_layer,
                },
                ls2: layer_scale(),
            })
            .collect();
        // timm initialises both tokens with small normal noise.
        let tokens = |n: usize| {
            Param::from_tensor(Tensor::<3>::random([1, n, d], burn::tensor::Distribution::Normal(0.0, 0.02), device))
        };
        let (norm_final, fc_norm) = if self.use_fc_norm() { (None, Some(norm())) } else { (Some(norm()), None) };
        // timm builds AttentionPoolLatent with its default qkv_bias (true).
        let attn_pool = (self.global_pool == GlobalPool::Map).then(|| AttentionPool {
            latent: tokens(1),
            q: LinearConfig::new(d, d).init(device),
            kv: LinearConfig::new(d, 2 * d).init(device),
            proj: LinearConfig::new(d, d).init(device),
            norm: norm(),
            mlp: Mlp {
                fc1: LinearConfig::new(d, self.mlp_hidden()).init(device),
                fc2: LinearConfig::new(self.mlp_hidden(), d).init(device),
                act: o.act_layer,
            },
            num_heads: self.num_heads,
        });
        Ok(VisionTransformer {
            patch_embed: PatchEmbed {
                proj: Conv2dConfig::new([self.in_chans, d], [self.patch_size, self.patch_size])
                    .with_stride([self.patch_size, self.patch_size])
                    .with_bias(!o.pre_norm)
                    .init(device),
            },
            cls_token: o.class_token.then(|| tokens(1)),
            dist_token: o.dist_token.then(|| tokens(1)),
            reg_token: (o.reg_tokens > 0).then(|| tokens(o.reg_tokens)),
            pos_embed: tokens(self.embed_len()),
            norm_pre: o.pre_norm.then(norm),
            blocks,
            norm: norm_final,
            fc_norm,
            attn_pool,
            global_pool: self.global_pool,
            num_prefix_tokens: self.num_prefix_tokens(),
            no_embed_class: o.no_embed_class,
            dynamic_img_size: o.dynamic_img_size,
            pending_resample: None,
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

/// timm's `AttentionPoolLatent` with one latent query (`global_pool="map"`):
/// the latent attends to the patch tokens, then a residual MLP; the pooled
/// feature is the latent's output.
#[derive(Module, Debug)]
pub struct AttentionPool {
    /// The learned query `[1, 1, D]`.
    pub latent: Param<Tensor<3>>,
    /// Query projection `D → D`.
    pub q: Linear,
    /// Key and value projection `D → 2D`, laid out `[k | v]`.
    pub kv: Linear,
    /// Output projection `D → D`.
    pub proj: Linear,
    /// Norm before the MLP.
    pub norm: LayerNorm,
    /// Feed-forward.
    pub mlp: Mlp,
    #[module(skip)]
    num_heads: usize,
}

impl AttentionPool {
    fn forward(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, n, d] = x.dims();
        let (h, hd) = (self.num_heads, d / self.num_heads);
        let q = self.q.forward(self.latent.val().expand([b, 1, d])).reshape([b, 1, h, hd]).swap_dims(1, 2);
        let kv = self.kv.forward(x);
        let split = |i: usize| kv.clone().narrow(2, i * d, d).reshape([b, n, h, hd]).swap_dims(1, 2);
        let (k, v) = (split(0), split(1));
        let scores = q.matmul(k.transpose()).mul_scalar((hd as f64).powf(-0.5));
        let context = softmax(scores, 3).matmul(v); // [b, h, 1, hd]
        let x = self.proj.forward(context.swap_dims(1, 2).reshape([b, 1, d]));
        let x = x.clone() + self.mlp.forward(self.norm.forward(x));
        x.reshape([b, d])
    }
}

/// The two-layer MLP with exact (erf) GELU or QuickGELU.
#[derive(Module, Debug)]
pub struct Mlp {
    /// `D → H`.
    pub fc1: Linear,
    /// `H → D`.
    pub fc2: Linear,
    #[module(skip)]
    act: Activation,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = self.fc1.forward(x);
        let h = match self.act {
            Activation::Gelu => gelu(h),
            Activation::QuickGelu => h.clone() * sigmoid(h.mul_scalar(1.702)),
        };
        self.fc2.forward(h)
    }
}

/// timm's `LayerScale`: a learned per-channel scale.
#[derive(Module, Debug)]
pub struct LayerScale {
    /// `[D]`.
    pub gamma: Param<Tensor<1>>,
}

impl LayerScale {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let d = x.dims()[2];
        x * self.gamma.val().reshape([1, 1, d])
    }
}

fn scaled(scale: &Option<LayerScale>, x: Tensor<3>) -> Tensor<3> {
    match scale {
        Some(ls) => ls.forward(x),
        None => x,
    }
}

/// A pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    /// Norm before attention.
    pub norm1: LayerNorm,
    /// Self-attention.
    pub attn: Attention,
    /// LayerScale after attention (`init_values`).
    pub ls1: Option<LayerScale>,
    /// Norm before the MLP.
    pub norm2: LayerNorm,
    /// Feed-forward.
    pub mlp: Mlp,
    /// LayerScale after the MLP.
    pub ls2: Option<LayerScale>,
}

impl Block {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = x.clone() + scaled(&self.ls1, self.attn.forward(self.norm1.forward(x)));
        let hidden = scaled(&self.ls2, self.mlp.forward(self.norm2.forward(x.clone())));
        x + hidden
    }
}

/// timm's `VisionTransformer` without its classifier head.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    /// Patch embedding.
    pub patch_embed: PatchEmbed,
    /// Class token `[1, 1, D]`.
    pub cls_token: Option<Param<Tensor<3>>>,
    /// DeiT's distillation token `[1, 1, D]` (`dist_token`).
    pub dist_token: Option<Param<Tensor<3>>>,
    /// Register tokens `[1, R, D]`.
    pub reg_token: Option<Param<Tensor<3>>>,
    /// Position embedding `[1, P + N, D]`, or `[1, N, D]` with `no_embed_class`.
    pub pos_embed: Param<Tensor<3>>,
    /// Norm after the position embedding (`pre_norm`).
    pub norm_pre: Option<LayerNorm>,
    /// Transformer blocks.
    pub blocks: Vec<Block>,
    /// Final norm (token pooling).
    pub norm: Option<LayerNorm>,
    /// Norm after pooling (average pooling).
    pub fc_norm: Option<LayerNorm>,
    /// Attention pooling (`global_pool="map"`).
    pub attn_pool: Option<AttentionPool>,
    #[module(skip)]
    global_pool: GlobalPool,
    #[module(skip)]
    num_prefix_tokens: usize,
    #[module(skip)]
    no_embed_class: bool,
    #[module(skip)]
    dynamic_img_size: bool,
    /// Grid sides `(checkpoint, model)` of a position embedding to resample
    /// once its checkpoint has loaded.
    #[module(skip)]
    pub(crate) pending_resample: Option<(usize, usize)>,
}

impl VisionTransformer {
    /// Whether a checkpoint for another image size may load (its position
    /// embedding resampled).
    pub fn dynamic_img_size(&self) -> bool {
        self.dynamic_img_size
    }

    /// Prefix tokens the position embedding covers (none with `no_embed_class`).
    pub fn pos_embed_prefix(&self) -> usize {
        if self.no_embed_class { 0 } else { self.num_prefix_tokens }
    }

    /// Features `[B, D]` of images `[B, C, H, W]` (what timm returns with `num_classes=0`).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let tokens = self.patch_embed.proj.forward(images); // [B, D, gh, gw]
        let [b, d, gh, gw] = tokens.dims();
        let mut x = tokens.reshape([b, d, gh * gw]).swap_dims(1, 2);
        // timm's _pos_embed: class, then distillation or register tokens,
        // before the patches.
        let prefix: Vec<Tensor<3>> = [&self.cls_token, &self.dist_token, &self.reg_token]
            .into_iter()
            .flatten()
            .map(|t| {
                let n = t.val().dims()[1];
                t.val().expand([b, n, d])
            })
            .collect();
        if self.no_embed_class {
            x = x + self.pos_embed.val();
            if !prefix.is_empty() {
                x = Tensor::cat([prefix, vec![x]].concat(), 1);
            }
        } else {
            if !prefix.is_empty() {
                x = Tensor::cat([prefix, vec![x]].concat(), 1);
            }
            x = x + self.pos_embed.val();
        }
        if let Some(norm) = &self.norm_pre {
            x = norm.forward(x);
        }
        for block in &self.blocks {
            x = block.forward(x);
        }
        if let Some(norm) = &self.norm {
            x = norm.forward(x);
        }
        let patches = |x: Tensor<3>| x.narrow(1, self.num_prefix_tokens, gh * gw);
        let pooled = match (&self.attn_pool, self.global_pool) {
            (Some(pool), _) => pool.forward(patches(x)),
            // DeiT distilled: the mean of the class and distillation tokens.
            (None, GlobalPool::Token) if self.dist_token.is_some() => x.narrow(1, 0, 2).mean_dim(1).reshape([b, d]),
            (None, GlobalPool::Token) => x.narrow(1, 0, 1).reshape([b, d]),
            (None, GlobalPool::Avg | GlobalPool::Map) => patches(x).mean_dim(1).reshape([b, d]),
        };
        match &self.fc_norm {
            Some(norm) => norm.forward(pooled),
            None => pooled,
        }
    }
}
