//! The resolved plan: every value a run's numbers depend on, defaults filled
//! in, plus the generator revision and the schema versions. It is written to
//! `run.json` before the first scale and hashed; resume compares it field by
//! field, so a changed config is refused with the list of what changed
//! instead of silently recomputing (or mixing) finished scales.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synbench_data::{GENERATOR_REVISION, Normalization};
use synbench_probe::EigenCutoff;

use crate::config::{ModelSpec, Plan};
use crate::layout::{RESULT_SCHEMA, SCALE_SCHEMA};

/// `run.json`: the plan and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// [`crate::layout::RUN_SCHEMA`].
    pub schema: String,
    /// FNV-1a of the plan's canonical JSON, as in each scale file.
    pub plan_hash: String,
    /// The config file the run was started from (not hashed).
    pub config_file: String,
    /// The plan.
    pub plan: ResolvedPlan,
}

/// Every value the numbers of a run depend on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedPlan {
    /// `synbench_data::GENERATOR_REVISION`: bumped when any generated bit changes.
    pub generator_revision: u32,
    /// Schema of the scale files.
    pub scale_schema: String,
    /// Schema of `results.json`.
    pub result_schema: String,
    /// `[model]`.
    pub model: ResolvedModel,
    /// `[data]`.
    pub data: ResolvedData,
    /// `[probe]`.
    pub probe: ResolvedProbe,
    /// `[score]`.
    pub score: ResolvedScore,
}

/// `[model]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedModel {
    /// Name in tables.
    pub name: String,
    /// `vit`, `torchscript`, `identity`, `random_projection` or `external`.
    pub arch: String,
    /// The ViT's architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vit: Option<ResolvedVit>,
    /// The ResNet's architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resnet: Option<ResolvedResNet>,
    /// The ConvNeXt's architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convnext: Option<ResolvedConvNext>,
    /// Output width of a random projection or the linear-Gaussian oracle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dim: Option<usize>,
    /// The linear-Gaussian oracle's spectrum, noise and nonlinearity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<ResolvedOracle>,
    /// Weights as written in the config; `None` is a random init.
    pub weights: Option<String>,
    /// Backend.
    pub backend: String,
    /// Device.
    pub device: String,
    /// Inputs per encoder call (on a GPU, features can change in the last bits with it).
    pub batch_size: usize,
    /// Float precision.
    pub precision: String,
    /// Seed of a random init or projection.
    pub seed: u64,
}

/// The linear-Gaussian oracle (SPEC §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedOracle {
    /// `λ_i ∝ i^(−spectrum_decay)`.
    pub spectrum_decay: f64,
    /// Noise σ.
    pub noise: f64,
    /// `none` or `tanh`.
    pub nonlinearity: String,
}

/// A ResNet's constructor arguments, as timm names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedResNet {
    /// `basic` or `bottleneck`.
    pub block: String,
    /// Blocks per stage.
    pub layers: Vec<usize>,
    /// Stage widths.
    pub channels: Vec<usize>,
    /// Deep-stem width.
    pub stem_width: usize,
    /// `""`, `deep` or `deep_tiered`.
    pub stem_type: String,
    /// Bottleneck groups.
    pub cardinality: usize,
    /// Bottleneck width per group.
    pub base_width: usize,
}

/// A ConvNeXt's constructor arguments, as timm names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedConvNext {
    /// Blocks per stage.
    pub depths: Vec<usize>,
    /// Stage widths.
    pub dims: Vec<usize>,
    /// LayerScale initial value (`None`: no LayerScale).
    pub ls_init_value: Option<f64>,
    /// MLP as 1×1 convolutions.
    pub conv_mlp: bool,
    /// Final norm before pooling.
    pub head_norm_first: bool,
    /// Stem patch size.
    pub patch_size: usize,
    /// Depthwise kernel size.
    pub kernel_size: usize,
}

/// A ViT's hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedVit {
    /// Input side.
    pub img_size: usize,
    /// Patch side.
    pub patch_size: usize,
    /// Input channels.
    pub in_chans: usize,
    /// Width.
    pub embed_dim: usize,
    /// Depth.
    pub depth: usize,
    /// Heads.
    pub num_heads: usize,
    /// MLP ratio.
    pub mlp_ratio: f64,
    /// Pooling.
    pub global_pool: String,
    /// timm's options where they differ from timm's defaults (absent
    /// otherwise, so plans made before they existed keep their hash).
    #[serde(default, skip_serializing_if = "ResolvedVitOptions::is_default")]
    pub options: ResolvedVitOptions,
}

/// A ViT's options that differ from timm's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedVitOptions {
    /// `class_token = false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_token: Option<bool>,
    /// `reg_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reg_tokens: Option<usize>,
    /// `no_embed_class = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_embed_class: Option<bool>,
    /// `pre_norm = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_norm: Option<bool>,
    /// `fc_norm`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fc_norm: Option<bool>,
    /// `init_values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_values: Option<f64>,
    /// `qkv_bias = false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qkv_bias: Option<bool>,
    /// `act_layer` other than gelu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_layer: Option<String>,
    /// `dist_token = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dist_token: Option<bool>,
    /// `dynamic_img_size = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_img_size: Option<bool>,
    /// LayerNorm epsilon other than 1e-6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_eps: Option<f64>,
}

impl ResolvedVitOptions {
    fn of(o: &synbench_models::VitOptions) -> Self {
        let d = synbench_models::VitOptions::default();
        let differs = |a: bool, b: bool| (a != b).then_some(a);
        Self {
            class_token: differs(o.class_token, d.class_token),
            reg_tokens: (o.reg_tokens != d.reg_tokens).then_some(o.reg_tokens),
            no_embed_class: differs(o.no_embed_class, d.no_embed_class),
            pre_norm: differs(o.pre_norm, d.pre_norm),
            fc_norm: o.fc_norm,
            init_values: o.init_values,
            qkv_bias: differs(o.qkv_bias, d.qkv_bias),
            act_layer: (o.act_layer != d.act_layer).then(|| o.act_layer.name().to_string()),
            dist_token: differs(o.dist_token, d.dist_token),
            dynamic_img_size: differs(o.dynamic_img_size, d.dynamic_img_size),
            norm_eps: (o.norm_eps != d.norm_eps).then_some(o.norm_eps),
        }
    }

    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// `[data]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedData {
    /// Sample shape.
    pub shape: Vec<usize>,
    /// Every mean scale.
    pub scales: Vec<f64>,
    /// Train samples per scale.
    pub n_train: u64,
    /// Test samples per scale.
    pub n_test: u64,
    /// P(y = 1).
    pub prior: f64,
    /// Shift c.
    pub shift: f64,
    /// Master seed.
    pub seed: u64,
    /// Random source.
    pub generator: String,
    /// Per-channel normalisation; `None`: raw samples.
    pub normalize: Option<ResolvedNormalize>,
}

/// Per-channel normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedNormalize {
    /// Channel means.
    pub mean: Vec<f64>,
    /// Channel stds.
    pub std: Vec<f64>,
    /// With `normalize = "model"`: the timm configuration it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// `[probe]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedProbe {
    /// Robustness levels.
    pub epsilons: Vec<f64>,
    /// Attack norm.
    pub norm: String,
    /// Averaging of the scored outcomes.
    pub averaging: String,
    /// Covariance estimator.
    pub covariance: String,
    /// Tolerance of the eigenvalue cutoff.
    pub eigenvalue_cutoff: f64,
    /// `relative` when the cutoff is relative to λ_max; absent for the
    /// default `absolute` (so plans that do not choose keep their hash).
    #[serde(default = "absolute_cutoff", skip_serializing_if = "is_absolute")]
    pub eigen_cutoff: String,
    /// Batch of the reference averaging.
    pub reference_batch_size: usize,
}

/// `[score]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedScore {
    /// Thresholds.
    pub thresholds: Vec<f64>,
    /// Mode.
    pub mode: String,
    /// The headline estimator; absent for `reference` (so plans that do not
    /// choose keep their hash).
    #[serde(default = "reference_estimator", skip_serializing_if = "is_reference")]
    pub estimator: String,
}

fn absolute_cutoff() -> String {
    EigenCutoff::Absolute.name().into()
}

fn is_absolute(name: &str) -> bool {
    name == EigenCutoff::Absolute.name()
}

fn reference_estimator() -> String {
    "reference".into()
}

fn is_reference(name: &str) -> bool {
    name == "reference"
}

impl ResolvedPlan {
    /// The resolved form of a checked plan.
    pub fn of(plan: &Plan) -> Self {
        let e = &plan.encoder;
        let resnet = match &e.model {
            ModelSpec::ResNet { config: c, .. } => Some(ResolvedResNet {
                block: c.block.name().into(),
                layers: c.layers.clone(),
                channels: c.channels.clone(),
                stem_width: c.stem_width,
                stem_type: c.stem_type.name().into(),
                cardinality: c.cardinality,
                base_width: c.base_width,
            }),
            _ => None,
        };
        let convnext = match &e.model {
            ModelSpec::ConvNext { config: c, .. } => Some(ResolvedConvNext {
                depths: c.depths.clone(),
                dims: c.dims.clone(),
                ls_init_value: c.ls_init_value,
                conv_mlp: c.conv_mlp,
                head_norm_first: c.head_norm_first,
                patch_size: c.patch_size,
                kernel_size: c.kernel_size,
            }),
            _ => None,
        };
        let (vit, output_dim, weights) = match &e.model {
            ModelSpec::Vit { config, weights } => (
                Some(ResolvedVit {
                    img_size: config.img_size,
                    patch_size: config.patch_size,
                    in_chans: config.in_chans,
                    embed_dim: config.embed_dim,
                    depth: config.depth,
                    num_heads: config.num_heads,
                    mlp_ratio: config.mlp_ratio,
                    global_pool: config.global_pool.name().into(),
                    options: ResolvedVitOptions::of(&config.options),
                }),
                None,
                weights.as_ref().map(|w| w.spec.clone()),
            ),
            ModelSpec::ResNet { weights, .. } | ModelSpec::ConvNext { weights, .. } => {
                (None, None, weights.as_ref().map(|w| w.spec.clone()))
            }
            ModelSpec::RandomProjection { output_dim } => (None, Some(*output_dim), None),
            ModelSpec::LinearGaussian { spec } => (None, Some(spec.output_dim), None),
            ModelSpec::TorchScript { weights } => (None, None, Some(weights.spec.clone())),
            ModelSpec::Identity | ModelSpec::External => (None, None, None),
        };
        let normalize = match plan.mixture.normalization() {
            Normalization::None => None,
            Normalization::PerChannel { mean, std } => {
                Some(ResolvedNormalize { mean: mean.clone(), std: std.clone(), from: plan.normalize_from.clone() })
            }
        };
        Self {
            generator_revision: GENERATOR_REVISION,
            scale_schema: SCALE_SCHEMA.into(),
            result_schema: RESULT_SCHEMA.into(),
            model: ResolvedModel {
                name: plan.model_name.clone(),
                arch: e.model.arch().name().into(),
                vit,
                resnet,
                convnext,
                output_dim,
                oracle: match &e.model {
                    ModelSpec::LinearGaussian { spec } => Some(ResolvedOracle {
                        spectrum_decay: spec.decay,
                        noise: spec.noise,
                        nonlinearity: spec.nonlinearity.name().into(),
                    }),
                    _ => None,
                },
                weights,
                backend: e.backend.name().into(),
                device: e.device.to_string(),
                batch_size: e.batch_size.get(),
                precision: e.precision.name().into(),
                seed: e.seed,
            },
            data: ResolvedData {
                shape: plan.mixture.sample_shape().to_vec(),
                scales: plan.scales.values().to_vec(),
                n_train: plan.n_train,
                n_test: plan.n_test,
                prior: plan.mixture.prior(),
                shift: plan.mixture.shift(),
                seed: plan.mixture.seed(),
                generator: plan.mixture.generator().name().into(),
                normalize,
            },
            probe: ResolvedProbe {
                epsilons: plan.probe.epsilons().to_vec(),
                norm: plan.probe.attack().name().into(),
                averaging: plan.averaging.name().into(),
                covariance: plan.probe.estimator().name().into(),
                eigenvalue_cutoff: plan.probe.eigenvalue_cutoff(),
                eigen_cutoff: plan.probe.eigen_cutoff().name().into(),
                reference_batch_size: plan.probe.reference_batch_size(),
            },
            score: ResolvedScore {
                thresholds: plan.score.thresholds().to_vec(),
                mode: plan.score.mode().name().into(),
                estimator: plan.estimator.name().into(),
            },
        }
    }

    /// Stable 64-bit FNV-1a hash of the canonical JSON (field order is the
    /// struct's; floats round-trip exactly).
    pub fn hash(&self) -> String {
        let text = serde_json::to_string(self).expect("a resolved plan serialises");
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in text.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("{hash:016x}")
    }

    /// Every field that differs from `old`.
    /// The fields of `old`'s protocol this plan differs in: every change
    /// but the model's own (its `model.*` fields, the batch size among them).
    /// Runs with none see the same samples, in the same jackknife groups:
    /// a paired comparison of their models is fair ([`crate::compare`]).
    pub fn protocol_changes_from(&self, old: &ResolvedPlan) -> Vec<PlanChange> {
        self.changes_from(old).into_iter().filter(|c| !c.field.starts_with("model.")).collect()
    }

    /// Every field this plan differs from `old` in.
    pub fn changes_from(&self, old: &ResolvedPlan) -> Vec<PlanChange> {
        let (old, new) =
            (serde_json::to_value(old).expect("serialises"), serde_json::to_value(self).expect("serialises"));
        let mut changes = Vec::new();
        diff("", &old, &new, &mut changes);
        changes
    }
}

/// A field in which two resolved plans differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange {
    /// The field's path (`data.n_test`, `model.batch_size`).
    pub field: String,
    /// Its value in the earlier plan, as JSON.
    pub old: String,
    /// Its value in this plan, as JSON.
    pub new: String,
}

impl PlanChange {
    /// The field `model.batch_size`.
    pub const BATCH_SIZE: &str = "model.batch_size";
}

impl std::fmt::Display for PlanChange {
    /// `field: old → new`, as the CLI prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} → {}", self.field, self.old, self.new)
    }
}

fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<PlanChange>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))).collect();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                diff(&child, a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null), out);
            }
        }
        (a, b) if a != b => out.push(PlanChange { field: path.to_string(), old: a.to_string(), new: b.to_string() }),
        _ => {}
    }
}
