//! Experiment configs in two stages: [`RawConfig`], a serde mirror of the
//! TOML file whose values keep their spans (unknown fields rejected), then
//! the typed [`Plan`]. Building the plan calls each owner crate's own check —
//! `MixtureParams::check`, `ScaleGrid`, `BayesProbeParams::check`,
//! `ScoreSpec::new`, `VitConfig::check`, `RandomProjection::check`,
//! `WeightsSource::parse` — and is the only place their errors are turned
//! into `file:line: field: message`. The plan holds checked values, not
//! strings.

use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use synbench_data::{DataError, Mixture, MixtureParams, Normalization};
use synbench_models::{
    Backend, CONVNEXT_PRESETS, ConvNextConfig, DeviceKind, EncoderError, LinearGaussianSpec, PRESETS, Precision,
    RESNET_PRESETS, RandomProjection, ResNetConfig, VitConfig, VitOptions, WeightsSource,
};
use synbench_probe::{AttackNorm, Averaging, BayesProbeParams, BayesProbeValidParams, ParamGuard, ProbeError};
use synbench_theory::{PAPER_THRESHOLDS, ScaleGrid, ScoreSpec};
use toml::Spanned;

use crate::error::ConfigError;
use crate::options::{Arch, Estimator, Named};

// ---------------------------------------------------------------- raw TOML

type Field<T> = Option<Spanned<T>>;

/// The TOML file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[model]`.
    pub model: RawModel,
    /// `[data]`.
    #[serde(default)]
    pub data: RawData,
    /// `[probe]`.
    #[serde(default)]
    pub probe: RawProbe,
    /// `[score]`.
    #[serde(default)]
    pub score: RawScore,
    /// `[output]`.
    #[serde(default)]
    pub output: RawOutput,
}

/// `[model]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// `vit`, `identity`, `random_projection`, or `external` (a model the
    /// driver brings, e.g. from Python: the config only names it).
    pub arch: Spanned<String>,
    /// The run's name in tables (default: the preset, else the arch).
    pub name: Field<String>,
    /// timm model name of a ViT preset.
    pub preset: Field<String>,
    /// ViT input side.
    pub img_size: Field<usize>,
    /// ViT patch side.
    pub patch_size: Field<usize>,
    /// ViT width.
    pub embed_dim: Field<usize>,
    /// ViT depth.
    pub depth: Field<usize>,
    /// ViT heads.
    pub num_heads: Field<usize>,
    /// ViT MLP ratio.
    pub mlp_ratio: Field<f64>,
    /// `token` or `avg`.
    pub global_pool: Field<String>,
    /// Output width of `random_projection` and `linear_gaussian`.
    pub output_dim: Field<usize>,
    /// `linear_gaussian`: the spectrum `λ_i ∝ i^(−spectrum_decay)` (default 0, flat).
    pub spectrum_decay: Field<f64>,
    /// `linear_gaussian`: the noise σ (default 0.1).
    pub noise: Field<f64>,
    /// `linear_gaussian`: `"none"` (default) or `"tanh"` after the linear map.
    pub nonlinearity: Field<String>,
    /// Checkpoint path or `hf:ORG/NAME`; absent = random init.
    pub weights: Field<String>,
    /// `flex`, `tch` or `cuda`.
    pub backend: Field<String>,
    /// `cpu` or `cuda:N`.
    pub device: Field<String>,
    /// Images per encoder call.
    pub batch_size: Field<usize>,
    /// Seed of a random init or projection.
    pub seed: Field<u64>,
    /// ViT float precision: `f32` (default), `bf16` or `f16`.
    pub precision: Field<String>,
    /// timm ViT `class_token` (default true).
    pub class_token: Field<bool>,
    /// timm ViT `reg_tokens` (default 0).
    pub reg_tokens: Field<usize>,
    /// timm ViT `no_embed_class` (default false).
    pub no_embed_class: Field<bool>,
    /// timm ViT `pre_norm` (default false).
    pub pre_norm: Field<bool>,
    /// timm ViT `fc_norm` (default: with average pooling).
    pub fc_norm: Field<bool>,
    /// timm ViT `init_values` (LayerScale; default none).
    pub init_values: Field<f64>,
    /// timm ViT `qkv_bias` (default true).
    pub qkv_bias: Field<bool>,
    /// timm ViT `act_layer`: `gelu` (default) or `quick_gelu`.
    pub act_layer: Field<String>,
    /// DeiT's distillation token (timm's distilled ViT; default false).
    pub dist_token: Field<bool>,
    /// Load a checkpoint made for another image size, its position
    /// embedding resampled as timm does (default false; true for DINOv2).
    pub dynamic_img_size: Field<bool>,
    /// LayerNorm epsilon (timm's `norm_layer` eps: 1e-6; CLIP 1e-5).
    pub norm_eps: Field<f64>,
    /// ResNet block: `basic` or `bottleneck`.
    pub block: Field<String>,
    /// ResNet blocks per stage.
    pub layers: Field<Vec<usize>>,
    /// ResNet stage widths.
    pub channels: Field<Vec<usize>>,
    /// ResNet deep-stem width.
    pub stem_width: Field<usize>,
    /// ResNet stem: `""`, `deep` or `deep_tiered`.
    pub stem_type: Field<String>,
    /// ResNet(X) groups of the bottleneck 3×3 convolution.
    pub cardinality: Field<usize>,
    /// ResNet(X) bottleneck width per group.
    pub base_width: Field<usize>,
    /// ConvNeXt blocks per stage.
    pub depths: Field<Vec<usize>>,
    /// ConvNeXt stage widths.
    pub dims: Field<Vec<usize>>,
    /// ConvNeXt LayerScale initial value, or `"none"` for no LayerScale.
    pub ls_init_value: Field<RawLayerScale>,
    /// ConvNeXt MLP as 1×1 convolutions.
    pub conv_mlp: Field<bool>,
    /// ConvNeXt final norm before pooling.
    pub head_norm_first: Field<bool>,
}

/// `ls_init_value`: a number, or `"none"` (timm's `None`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawLayerScale {
    /// LayerScale with this initial value.
    Value(f64),
    /// `"none"`: no LayerScale.
    Name(String),
}

impl RawModel {
    /// `[model] arch = "external"` named `name`: a model the driver brings.
    fn external(name: &str) -> Self {
        let unspanned = |v: String| Spanned::new(0..0, v);
        Self {
            arch: unspanned("external".into()),
            name: Some(unspanned(name.into())),
            preset: None,
            img_size: None,
            patch_size: None,
            embed_dim: None,
            depth: None,
            num_heads: None,
            mlp_ratio: None,
            global_pool: None,
            output_dim: None,
            spectrum_decay: None,
            noise: None,
            nonlinearity: None,
            weights: None,
            backend: None,
            device: None,
            batch_size: None,
            seed: None,
            precision: None,
            class_token: None,
            reg_tokens: None,
            no_embed_class: None,
            pre_norm: None,
            fc_norm: None,
            init_values: None,
            qkv_bias: None,
            act_layer: None,
            dist_token: None,
            dynamic_img_size: None,
            norm_eps: None,
            block: None,
            layers: None,
            channels: None,
            stem_width: None,
            stem_type: None,
            cardinality: None,
            base_width: None,
            depths: None,
            dims: None,
            ls_init_value: None,
            conv_mlp: None,
            head_norm_first: None,
        }
    }
}

/// A sweep's protocol: a `synbench run` config whose `[model]` table, if
/// any, is ignored (each model of the sweep is brought by the driver).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtocol {
    #[serde(default)]
    #[allow(dead_code)] // read only to be ignored
    model: Option<toml::Table>,
    #[serde(default)]
    data: RawData,
    #[serde(default)]
    probe: RawProbe,
    #[serde(default)]
    score: RawScore,
    #[serde(default)]
    output: RawOutput,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    /// `[C, H, W]` or `[d]`.
    pub shape: Field<Vec<usize>>,
    /// `{ start, stop, step }` (stop included) or a list.
    pub scales: Field<RawScales>,
    /// Train samples per scale.
    pub n_train: Field<u64>,
    /// Test samples per scale.
    pub n_test: Field<u64>,
    /// P(y = 1).
    pub prior: Field<f64>,
    /// Master seed.
    pub seed: Field<u64>,
    /// The common shift c.
    pub shift: Field<f64>,
    /// `"imagenet"`, `"none"` or `{ mean = [...], std = [...] }`.
    pub normalize: Field<RawNormalize>,
    /// `"xoshiro_box_muller"` (default) or `"chacha8_ziggurat"` (synbench 0.1).
    pub generator: Field<String>,
}

/// Scales as a range or a list.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RawScales {
    /// `{ start, stop, step }`.
    Range {
        /// First scale.
        start: f64,
        /// Last scale (included).
        stop: f64,
        /// Step.
        step: f64,
    },
    /// Explicit list.
    List(Vec<f64>),
}

/// Normalisation by name or by values.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RawNormalize {
    /// `"imagenet"` or `"none"`.
    Named(String),
    /// Explicit per-channel values.
    Values {
        /// Channel means.
        mean: Vec<f64>,
        /// Channel stds.
        std: Vec<f64>,
    },
}

/// `[probe]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    /// Robustness levels.
    pub epsilons: Field<Vec<f64>>,
    /// `l2`, `linf` or `l1`.
    pub norm: Field<String>,
    /// `reference` or `exact`.
    pub averaging: Field<String>,
    /// `pooled` or `ledoit_wolf`.
    pub covariance: Field<String>,
    /// `absolute` (λ > tolerance, the reference) or `relative` (λ > tolerance · λ_max).
    pub eigen_cutoff: Field<String>,
    /// The cutoff's tolerance (default 1e-6).
    pub eigen_tolerance: Field<f64>,
}

/// `[score]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawScore {
    /// Accuracy thresholds.
    pub thresholds: Field<Vec<f64>>,
    /// `reference` or `exact`.
    pub mode: Field<String>,
    /// `reference` or `population` (SPEC §7): which estimator's scores are
    /// the run's headline; results carry both.
    pub estimator: Field<String>,
}

/// `[output]`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Result directory, relative to the config's folder.
    pub dir: Field<String>,
}

// ---------------------------------------------------------------- the plan

/// Which encoder a run uses: plain data, built by a front end (the CLI with
/// synbench-models; Python with the user's own model).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// A timm ViT.
    Vit {
        /// Architecture.
        config: VitConfig,
        /// Weights; `None` is a random init.
        weights: Option<Weights>,
    },
    /// A timm ResNet.
    ResNet {
        /// Architecture.
        config: ResNetConfig,
        /// Weights; `None` is a random init.
        weights: Option<Weights>,
    },
    /// A timm ConvNeXt.
    ConvNext {
        /// Architecture.
        config: ConvNextConfig,
        /// Weights; `None` is a random init.
        weights: Option<Weights>,
    },
    /// `f(x) = x`.
    Identity,
    /// A fixed Gaussian projection.
    RandomProjection {
        /// Output width.
        output_dim: usize,
    },
    /// The oracle `h = A·x + σ·η` (SPEC §7), whose population score is known.
    LinearGaussian {
        /// Width, spectrum, noise and nonlinearity.
        spec: LinearGaussianSpec,
    },
    /// An encoder outside synbench (a Python model): the plan only names it.
    External,
    /// A TorchScript module, run by LibTorch (the `tch` backend).
    TorchScript {
        /// The module file.
        weights: Weights,
    },
}

impl ModelSpec {
    /// The arch.
    pub fn arch(&self) -> Arch {
        match self {
            ModelSpec::Vit { .. } => Arch::Vit,
            ModelSpec::ResNet { .. } => Arch::ResNet,
            ModelSpec::ConvNext { .. } => Arch::ConvNext,
            ModelSpec::Identity => Arch::Identity,
            ModelSpec::RandomProjection { .. } => Arch::RandomProjection,
            ModelSpec::LinearGaussian { .. } => Arch::LinearGaussian,
            ModelSpec::External => Arch::External,
            ModelSpec::TorchScript { .. } => Arch::TorchScript,
        }
    }
}

/// A checkpoint named in a config.
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    /// As written (`hf:ORG/NAME` or a path relative to the config), for the record.
    pub spec: String,
    /// Where to read it from.
    pub source: WeightsSource,
}

/// The encoder of a run and how it is driven.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSpec {
    /// The model.
    pub model: ModelSpec,
    /// Burn backend.
    pub backend: Backend,
    /// Device.
    pub device: DeviceKind,
    /// Inputs per encoder call (and per batch handed out).
    pub batch_size: NonZeroUsize,
    /// Float precision of a ViT.
    pub precision: Precision,
    /// Seed of a random init or projection.
    pub seed: u64,
}

/// The batch size of a plan that does not give one.
pub const DEFAULT_BATCH_SIZE: usize = 64;

impl EncoderSpec {
    /// The one check of a batch size (`[model] batch_size`, Python's
    /// `batch_size=`).
    pub fn check_batch_size(size: usize) -> Result<NonZeroUsize, String> {
        NonZeroUsize::new(size).ok_or_else(|| format!("{size}: must be at least 1"))
    }

    /// Whether the encoder itself computes on this machine's CPU cores (a ViT
    /// on `cpu`): the generator then keeps to a thread of its own.
    pub fn computes_on_cpu(&self) -> bool {
        matches!(self.model, ModelSpec::Vit { .. } | ModelSpec::ResNet { .. } | ModelSpec::ConvNext { .. })
            && self.device == DeviceKind::Cpu
    }
}

/// The checked experiment.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config file (`<builder>` for a plan built in code).
    pub file: PathBuf,
    /// The model's name in tables: the timm preset, or the arch.
    pub model_name: String,
    /// The encoder.
    pub encoder: EncoderSpec,
    /// The data distribution (shape, prior, shift, seed, generator, normalisation).
    pub mixture: Mixture,
    /// Mean scales.
    pub scales: ScaleGrid,
    /// Train samples per scale.
    pub n_train: u64,
    /// Test samples per scale.
    pub n_test: u64,
    /// The ε-robust Bayes probe.
    pub probe: BayesProbeValidParams,
    /// How test outcomes are averaged into the scored accuracy and bound.
    pub averaging: Averaging,
    /// Thresholds and score mode.
    pub score: ScoreSpec,
    /// The estimator of the headline scores (both are always computed).
    pub estimator: Estimator,
    /// Where results go (`None`: in memory only, no resume).
    pub output_dir: Option<PathBuf>,
    /// Where `normalize = "model"` took the normalisation from (`None`:
    /// the config gave it).
    pub normalize_from: Option<String>,
}

/// Fewest train samples per scale: two per class for a covariance.
pub const MIN_TRAIN: u64 = 4;

/// Reads and checks a config file.
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        field: "(file)".into(),
        message: format!("cannot read the config: {e}"),
    })?;
    parse(path, &text)
}

/// Parses and checks config text that came from `path` (relative paths in
/// it resolve against `path`'s folder).
pub fn parse(path: &Path, text: &str) -> Result<Plan, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    Checker { path, text: Some(text) }.plan(&raw)
}

/// The plan of one model of a sweep: `text` is a protocol (`synbench run`'s
/// format; `[model]` is ignored, `[output]` too when the driver names the
/// folder) and the model, brought by the driver, is named `model_name`.
pub fn parse_protocol(path: &Path, text: &str, model_name: &str) -> Result<Plan, ConfigError> {
    let raw: RawProtocol = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
    if model_name.trim().is_empty() {
        return Err(ConfigError {
            file: path.to_path_buf(),
            line: None,
            field: "model.name".into(),
            message: "the sweep's model name must not be empty: it names the run in tables".into(),
        });
    }
    let raw = RawConfig {
        model: RawModel::external(model_name),
        data: raw.data,
        probe: raw.probe,
        score: raw.score,
        output: raw.output,
    };
    Checker { path, text: Some(text) }.plan(&raw)
}

/// A plan given as keyword arguments (the Python package's
/// `synbench.Experiment(n_train=…, epsilons=…)`): each field is a config
/// field ([`KEYWORDS`] maps them), `None` takes the config's default, and the
/// same checker as a TOML file's validates them — one protocol written as
/// keywords and as TOML resolves to the same plan and hash. The model is the
/// driver's (`arch = "external"`); without `output_dir` the run stays in
/// memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keywords {
    /// `[model] name`: the run's name in tables.
    pub model: Option<String>,
    /// `[model] batch_size`.
    pub batch_size: Option<usize>,
    /// `[data] shape`.
    pub shape: Option<Vec<usize>>,
    /// `[data] scales`, as a list.
    pub scales: Option<Vec<f64>>,
    /// `[data] n_train`.
    pub n_train: Option<u64>,
    /// `[data] n_test`.
    pub n_test: Option<u64>,
    /// `[data] prior`.
    pub prior: Option<f64>,
    /// `[data] shift`.
    pub shift: Option<f64>,
    /// `[data] seed`.
    pub seed: Option<u64>,
    /// `[data] normalize`.
    pub normalize: Option<RawNormalize>,
    /// `[data] generator`.
    pub generator: Option<String>,
    /// `[probe] epsilons`.
    pub epsilons: Option<Vec<f64>>,
    /// `[probe] norm`.
    pub norm: Option<String>,
    /// `[probe] averaging`.
    pub averaging: Option<String>,
    /// `[probe] covariance`.
    pub covariance: Option<String>,
    /// `[probe] eigen_cutoff`.
    pub eigen_cutoff: Option<String>,
    /// `[probe] eigen_tolerance`.
    pub eigen_tolerance: Option<f64>,
    /// `[score] thresholds`.
    pub thresholds: Option<Vec<f64>>,
    /// `[score] mode`.
    pub score_mode: Option<String>,
    /// `[score] estimator`.
    pub estimator: Option<String>,
    /// `[output] dir` (absolute, or relative to the working folder).
    pub output_dir: Option<PathBuf>,
}

/// The checked plan of keyword arguments; `source` names them in errors
/// (`synbench.Experiment`), whose `field` is the keyword (`n_train`).
pub fn from_keywords(source: &Path, k: &Keywords) -> Result<Plan, ConfigError> {
    fn at<T>(v: &Option<T>) -> Field<T>
    where
        T: Clone,
    {
        v.clone().map(|v| Spanned::new(0..0, v))
    }
    let mut model = RawModel::external("external");
    model.name = at(&k.model);
    model.batch_size = at(&k.batch_size);
    let raw = RawConfig {
        model,
        data: RawData {
            shape: at(&k.shape),
            scales: at(&k.scales.clone().map(RawScales::List)),
            n_train: at(&k.n_train),
            n_test: at(&k.n_test),
            prior: at(&k.prior),
            shift: at(&k.shift),
            seed: at(&k.seed),
            normalize: at(&k.normalize),
            generator: at(&k.generator),
        },
        probe: RawProbe {
            epsilons: at(&k.epsilons),
            norm: at(&k.norm),
            averaging: at(&k.averaging),
            covariance: at(&k.covariance),
            eigen_cutoff: at(&k.eigen_cutoff),
            eigen_tolerance: at(&k.eigen_tolerance),
        },
        score: RawScore { thresholds: at(&k.thresholds), mode: at(&k.score_mode), estimator: at(&k.estimator) },
        output: RawOutput { dir: at(&k.output_dir.as_ref().map(|d| d.display().to_string())) },
    };
    let mut plan = Checker { path: source, text: None }.plan(&raw)?;
    if k.output_dir.is_none() {
        plan.output_dir = None;
    }
    Ok(plan)
}

impl Plan {
    /// Sets the batch size (a driver's choice at start, part of the plan and
    /// its hash), checked as `[model] batch_size` is.
    pub fn set_batch_size(&mut self, size: usize) -> Result<(), ConfigError> {
        self.encoder.batch_size = EncoderSpec::check_batch_size(size).map_err(|message| ConfigError {
            file: self.file.clone(),
            line: None,
            field: "model.batch_size".into(),
            message,
        })?;
        Ok(())
    }
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e.span().map(|span| line_at(text, span.start));
    ConfigError { file: path.to_path_buf(), line, field: field_of_toml_error(e), message: e.message().to_string() }
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn field_of_toml_error(e: &toml::de::Error) -> String {
    let msg = e.message();
    // toml names the offending key in backticks ("unknown field `foo`").
    match msg.split('`').nth(1) {
        Some(key) if msg.starts_with("unknown field") || msg.starts_with("missing field") => key.to_string(),
        _ => "(syntax)".into(),
    }
}

fn value<T: Clone>(field: &Field<T>) -> Option<T> {
    field.as_ref().map(|s| s.get_ref().clone())
}

fn span<T>(field: &Field<T>) -> Option<Range<usize>> {
    field.as_ref().map(Spanned::span)
}

struct Checker<'a> {
    path: &'a Path,
    /// The config text (`None`: keyword arguments, which have no lines).
    text: Option<&'a str>,
}

/// The keyword that sets a config field, for a plan built from keywords
/// (`synbench.Experiment(n_train=…)`): errors name what the user wrote.
fn keyword_of(field: &str) -> &str {
    KEYWORDS.iter().find(|(_, f)| *f == field).map_or(field, |(k, _)| k)
}

/// The keyword arguments of [`Keywords`] and the config fields they set.
pub const KEYWORDS: [(&str, &str); 21] = [
    ("model", "model.name"),
    ("batch_size", "model.batch_size"),
    ("shape", "data.shape"),
    ("scales", "data.scales"),
    ("n_train", "data.n_train"),
    ("n_test", "data.n_test"),
    ("prior", "data.prior"),
    ("shift", "data.shift"),
    ("seed", "data.seed"),
    ("normalize", "data.normalize"),
    ("generator", "data.generator"),
    ("epsilons", "probe.epsilons"),
    ("norm", "probe.norm"),
    ("averaging", "probe.averaging"),
    ("covariance", "probe.covariance"),
    ("eigen_cutoff", "probe.eigen_cutoff"),
    ("eigen_tolerance", "probe.eigen_tolerance"),
    ("thresholds", "score.thresholds"),
    ("score_mode", "score.mode"),
    ("estimator", "score.estimator"),
    ("output_dir", "output.dir"),
];

/// `[data] normalize = "model"`: timm's normalisation for the preset's
/// weights: the tag of `weights = "hf:timm/NAME.TAG"` when it names the
/// preset, else the preset's own tag (none: timm's default tag).
fn model_normalization(m: &RawModel, arch: Arch, model_name: &str) -> Option<(Normalization, String)> {
    if !arch.is_timm() || m.preset.is_none() {
        return None;
    }
    let family = model_name.split('.').next().unwrap_or(model_name);
    let hub = value(&m.weights)
        .and_then(|w| w.strip_prefix("hf:timm/").map(str::to_string))
        .filter(|repo| repo.split('.').next() == Some(family));
    let lookup = |name: String| synbench_models::pretrained_normalization(&name).map(|n| (n, name));
    hub.and_then(lookup).or_else(|| lookup(model_name.to_string()))
}

/// Every architecture field of `[model]`: its name, where the config sets it
/// (`None`: not set) and the archs that read it.
/// A `[model]` field: its name, where the config sets it, the archs that read it.
type ModelField = (&'static str, Option<Range<usize>>, &'static [Arch]);

fn model_fields(m: &RawModel) -> [ModelField; 35] {
    const VIT: &[Arch] = &[Arch::Vit];
    const RESNET: &[Arch] = &[Arch::ResNet];
    const CONVNEXT: &[Arch] = &[Arch::ConvNext];
    const ORACLE: &[Arch] = &[Arch::LinearGaussian];
    [
        ("preset", span(&m.preset), &Arch::TIMM),
        ("img_size", span(&m.img_size), VIT),
        ("patch_size", span(&m.patch_size), VIT),
        ("embed_dim", span(&m.embed_dim), VIT),
        ("depth", span(&m.depth), VIT),
        ("num_heads", span(&m.num_heads), VIT),
        ("mlp_ratio", span(&m.mlp_ratio), VIT),
        ("global_pool", span(&m.global_pool), VIT),
        ("output_dim", span(&m.output_dim), &[Arch::RandomProjection, Arch::LinearGaussian]),
        ("spectrum_decay", span(&m.spectrum_decay), ORACLE),
        ("noise", span(&m.noise), ORACLE),
        ("nonlinearity", span(&m.nonlinearity), ORACLE),
        ("class_token", span(&m.class_token), VIT),
        ("reg_tokens", span(&m.reg_tokens), VIT),
        ("no_embed_class", span(&m.no_embed_class), VIT),
        ("pre_norm", span(&m.pre_norm), VIT),
        ("fc_norm", span(&m.fc_norm), VIT),
        ("init_values", span(&m.init_values), VIT),
        ("qkv_bias", span(&m.qkv_bias), VIT),
        ("act_layer", span(&m.act_layer), VIT),
        ("dist_token", span(&m.dist_token), VIT),
        ("dynamic_img_size", span(&m.dynamic_img_size), VIT),
        ("norm_eps", span(&m.norm_eps), VIT),
        ("block", span(&m.block), RESNET),
        ("layers", span(&m.layers), RESNET),
        ("channels", span(&m.channels), RESNET),
        ("stem_width", span(&m.stem_width), RESNET),
        ("stem_type", span(&m.stem_type), RESNET),
        ("cardinality", span(&m.cardinality), RESNET),
        ("base_width", span(&m.base_width), RESNET),
        ("depths", span(&m.depths), CONVNEXT),
        ("dims", span(&m.dims), CONVNEXT),
        ("ls_init_value", span(&m.ls_init_value), CONVNEXT),
        ("conv_mlp", span(&m.conv_mlp), CONVNEXT),
        ("head_norm_first", span(&m.head_norm_first), CONVNEXT),
    ]
}

/// The checked `[data]` section.
struct DataSection {
    mixture: Mixture,
    scales: ScaleGrid,
    n_train: u64,
    n_test: u64,
    normalize_from: Option<String>,
}

impl Checker<'_> {
    fn err(&self, field: &str, span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        let (field, line) = match self.text {
            Some(text) => (field, span.map(|s| line_at(text, s.start))),
            None => (keyword_of(field), None),
        };
        ConfigError { file: self.path.to_path_buf(), line, field: field.into(), message: message.into() }
    }

    /// A named option; absent means the type's default (its first value).
    fn choice<T: Named>(&self, field: &str, raw: &Field<String>) -> Result<T, ConfigError> {
        match raw {
            None => Ok(T::all()[0]),
            Some(name) => T::from_name(name.get_ref()).map_err(|m| self.err(field, Some(name.span()), m)),
        }
    }

    /// The plan: each section checked by its own step.
    fn plan(&self, raw: &RawConfig) -> Result<Plan, ConfigError> {
        let base_dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let m = &raw.model;
        let arch = Arch::from_name(m.arch.get_ref()).map_err(|e| self.err("model.arch", Some(m.arch.span()), e))?;
        let (model_name, model) = self.model(m, arch, &base_dir)?;
        let encoder = self.encoder(m, model)?;
        let data = self.data(&raw.data, m, arch, &encoder.model, &model_name)?;
        let (probe, averaging) = self.probe(&raw.probe)?;
        let (score, estimator) = self.score(&raw.score, &probe)?;
        let output_dir =
            normalize_lexically(&base_dir.join(value(&raw.output.dir).unwrap_or_else(|| "results".into())));
        Ok(Plan {
            file: self.path.to_path_buf(),
            model_name,
            encoder,
            mixture: data.mixture,
            scales: data.scales,
            n_train: data.n_train,
            n_test: data.n_test,
            probe,
            averaging,
            score,
            estimator,
            output_dir: Some(output_dir),
            normalize_from: data.normalize_from,
        })
    }

    /// `[model]`'s architecture: the run's name and the model.
    fn model(&self, m: &RawModel, arch: Arch, base_dir: &Path) -> Result<(String, ModelSpec), ConfigError> {
        let output_dim = || {
            value(&m.output_dim).ok_or_else(|| {
                self.err("model.output_dim", Some(m.arch.span()), format!("{} needs output_dim", arch.name()))
            })
        };
        let (default_name, model) = match arch {
            Arch::Vit => self.vit(m, base_dir)?,
            Arch::ResNet | Arch::ConvNext => self.cnn(m, arch, base_dir)?,
            Arch::TorchScript => self.torchscript(m, base_dir)?,
            Arch::Identity => (arch.name().to_string(), ModelSpec::Identity),
            Arch::External => (arch.name().to_string(), ModelSpec::External),
            Arch::RandomProjection => {
                (arch.name().to_string(), ModelSpec::RandomProjection { output_dim: output_dim()? })
            }
            Arch::LinearGaussian => {
                let spec = LinearGaussianSpec {
                    output_dim: output_dim()?,
                    decay: value(&m.spectrum_decay).unwrap_or(0.0),
                    noise: value(&m.noise).unwrap_or(0.1),
                    nonlinearity: self.choice("model.nonlinearity", &m.nonlinearity)?,
                };
                (arch.name().to_string(), ModelSpec::LinearGaussian { spec })
            }
        };
        let model_name = value(&m.name).unwrap_or(default_name);
        if model_name.trim().is_empty() {
            return Err(self.err("model.name", span(&m.name), "must not be empty: it names the run in tables"));
        }
        Ok((model_name, model))
    }

    /// How the model runs: backend, device, batch size, precision, seed.
    fn encoder(&self, m: &RawModel, model: ModelSpec) -> Result<EncoderSpec, ConfigError> {
        let backend: Backend = self.choice("model.backend", &m.backend)?;
        let device = match &m.device {
            None => DeviceKind::Cpu,
            Some(d) => d
                .get_ref()
                .parse()
                .map_err(|e: EncoderError| self.err("model.device", Some(d.span()), e.to_string()))?,
        };
        let batch_size = EncoderSpec::check_batch_size(value(&m.batch_size).unwrap_or(DEFAULT_BATCH_SIZE))
            .map_err(|e| self.err("model.batch_size", span(&m.batch_size), e))?;
        let precision: Precision = self.choice("model.precision", &m.precision)?;
        if precision != Precision::F32 && !matches!(model, ModelSpec::Vit { .. }) {
            return Err(self.err(
                "model.precision",
                span(&m.precision),
                "only arch \"vit\" runs in reduced precision; remove the field",
            ));
        }
        Ok(EncoderSpec { model, backend, device, batch_size, precision, seed: value(&m.seed).unwrap_or(0) })
    }

    /// The sample shape the model takes: `[data] shape`, else the model's own.
    fn shape(&self, d: &RawData, arch: Arch, model: &ModelSpec) -> Result<Vec<usize>, ConfigError> {
        let shape = match (model, &d.shape) {
            (_, Some(shape)) => shape.get_ref().clone(),
            (ModelSpec::Vit { config, .. }, None) => config.input_shape(),
            (ModelSpec::ResNet { .. } | ModelSpec::ConvNext { .. } | ModelSpec::External, None) => vec![3, 224, 224],
            (_, None) => vec![64],
        };
        if matches!(model, ModelSpec::ResNet { .. } | ModelSpec::ConvNext { .. })
            && !matches!(shape.as_slice(), [3, h, w] if *h > 0 && *w > 0)
        {
            return Err(self.err(
                "data.shape",
                span(&d.shape),
                format!("{shape:?} cannot feed a {}: expected images [3, H, W]", arch.name()),
            ));
        }
        if let ModelSpec::Vit { config, .. } = model
            && shape != config.input_shape()
        {
            return Err(self.err(
                "data.shape",
                span(&d.shape),
                format!(
                    "{shape:?} cannot feed a ViT with img_size {}: expected {:?}",
                    config.img_size,
                    config.input_shape()
                ),
            ));
        }
        Ok(shape)
    }

    /// The fields of `[model]` an encoder error names: the first the config
    /// sets (the one the user can change), else the preset (or the arch).
    fn blame(&self, m: &RawModel, e: &EncoderError) -> ConfigError {
        let fields = model_fields(m);
        let set = e.fields().iter().find_map(|f| fields.iter().find(|(k, at, _)| k == f && at.is_some()));
        match (set, e.fields().first()) {
            (Some((field, at, _)), _) => self.err(&format!("model.{field}"), at.clone(), e.to_string()),
            (None, Some(field)) if m.preset.is_none() => {
                self.err(&format!("model.{field}"), Some(m.arch.span()), e.to_string())
            }
            _ => self.err("model.preset", span(&m.preset).or(Some(m.arch.span())), e.to_string()),
        }
    }

    /// `[data]`: the mixture, its scales and sample counts.
    fn data(
        &self,
        d: &RawData,
        m: &RawModel,
        arch: Arch,
        model: &ModelSpec,
        model_name: &str,
    ) -> Result<DataSection, ConfigError> {
        let shape = self.shape(d, arch, model)?;
        if let ModelSpec::RandomProjection { output_dim } = model {
            RandomProjection::check(&shape, *output_dim).map_err(|e| self.blame(m, &e))?;
        }
        if let ModelSpec::LinearGaussian { spec } = model {
            spec.check(shape.iter().product()).map_err(|e| self.blame(m, &e))?;
        }
        let (normalization, normalize_from) = self.normalization(d, m, arch, model_name, shape.len())?;
        let mixture = MixtureParams::with_shape(shape)
            .prior(value(&d.prior).unwrap_or(0.5))
            .shift(value(&d.shift).unwrap_or(0.5))
            .seed(value(&d.seed).unwrap_or(12))
            .generator(self.choice("data.generator", &d.generator)?)
            .normalization(normalization)
            .check()
            .map_err(|e| {
                let (field, at) = match &e {
                    DataError::Shape { .. } => ("data.shape", span(&d.shape)),
                    DataError::Prior(_) => ("data.prior", span(&d.prior)),
                    DataError::Shift(_) => ("data.shift", span(&d.shift)),
                    DataError::Normalization(_) => ("data.normalize", span(&d.normalize)),
                    _ => ("data", None),
                };
                self.err(field, at, e.to_string())
            })?;
        let scales = match value(&d.scales) {
            None => Ok(ScaleGrid::paper_protocol()),
            Some(RawScales::Range { start, stop, step }) => ScaleGrid::arange(start, stop, step),
            Some(RawScales::List(list)) => ScaleGrid::from_values(list),
        }
        .map_err(|e| self.err("data.scales", span(&d.scales), e.to_string()))?;
        let n_train = value(&d.n_train).unwrap_or(2048);
        let n_test = value(&d.n_test).unwrap_or(2048);
        if n_train < MIN_TRAIN {
            return Err(self.err(
                "data.n_train",
                span(&d.n_train),
                format!("need at least {MIN_TRAIN} train samples (2 per class for a covariance)"),
            ));
        }
        if n_test < 1 {
            return Err(self.err("data.n_test", span(&d.n_test), "need at least 1 test sample"));
        }
        Ok(DataSection { mixture, scales, n_train, n_test, normalize_from })
    }

    /// `[data] normalize` (default: ImageNet's for images, none for vectors),
    /// and where `"model"` took it from.
    fn normalization(
        &self,
        d: &RawData,
        m: &RawModel,
        arch: Arch,
        model_name: &str,
        rank: usize,
    ) -> Result<(Normalization, Option<String>), ConfigError> {
        let Some(n) = &d.normalize else {
            return Ok((if rank == 3 { Normalization::imagenet() } else { Normalization::None }, None));
        };
        Ok(match n.get_ref() {
            RawNormalize::Named(name) if name == "imagenet" => (Normalization::imagenet(), None),
            RawNormalize::Named(name) if name == "none" => (Normalization::None, None),
            RawNormalize::Named(name) if name == "model" => {
                let (normalization, source) = model_normalization(m, arch, model_name).ok_or_else(|| {
                    self.err(
                        "data.normalize",
                        Some(n.span()),
                        format!(
                            "\"model\" is the normalisation timm gives a preset's pretrained weights, and \
                             {model_name:?} has none: set `[model] preset` to a timm name (optionally with its \
                             .tag), or give \"imagenet\" or {{ mean = [...], std = [...] }}"
                        ),
                    )
                })?;
                (normalization, Some(format!("timm's pretrained configuration of {source}")))
            }
            RawNormalize::Named(other) => {
                return Err(self.err(
                    "data.normalize",
                    Some(n.span()),
                    format!("{other:?}: expected \"imagenet\", \"model\", \"none\" or {{ mean = [...], std = [...] }}"),
                ));
            }
            RawNormalize::Values { mean, std } => {
                (Normalization::PerChannel { mean: mean.clone(), std: std.clone() }, None)
            }
        })
    }

    /// `[probe]`: the ε-robust Bayes probe and the averaging of its outcomes.
    fn probe(&self, p: &RawProbe) -> Result<(BayesProbeValidParams, Averaging), ConfigError> {
        let mut probe = BayesProbeParams::new(value(&p.epsilons).unwrap_or_else(|| vec![0.0]))
            .attack(self.choice("probe.norm", &p.norm)?)
            .estimator(self.choice("probe.covariance", &p.covariance)?)
            .eigen_cutoff(self.choice("probe.eigen_cutoff", &p.eigen_cutoff)?);
        if let Some(tolerance) = value(&p.eigen_tolerance) {
            probe = probe.eigenvalue_cutoff(tolerance);
        }
        let probe = probe.check().map_err(|e| match e {
            ProbeError::InvalidParameter { name: "eigenvalue_cutoff", .. } => {
                self.err("probe.eigen_tolerance", span(&p.eigen_tolerance), e.to_string())
            }
            e => self.err("probe.epsilons", span(&p.epsilons), e.to_string()),
        })?;
        Ok((probe, self.choice("probe.averaging", &p.averaging)?))
    }

    /// `[score]`: thresholds, mode and the headline estimator.
    fn score(&self, s: &RawScore, probe: &BayesProbeValidParams) -> Result<(ScoreSpec, Estimator), ConfigError> {
        let score = ScoreSpec::new(
            value(&s.thresholds).unwrap_or_else(|| PAPER_THRESHOLDS.to_vec()),
            self.choice("score.mode", &s.mode)?,
        )
        .map_err(|e| self.err("score.thresholds", span(&s.thresholds), e.to_string()))?;
        let estimator: Estimator = self.choice("score.estimator", &s.estimator)?;
        if estimator == Estimator::Population && probe.attack() != AttackNorm::L2 {
            return Err(self.err(
                "score.estimator",
                span(&s.estimator),
                format!(
                    "\"population\" is defined for the l2 attack (its QCQP is a ridge direction), not probe.norm = {:?}",
                    probe.attack().name()
                ),
            ));
        }
        Ok((score, estimator))
    }

    fn vit(&self, m: &RawModel, base_dir: &Path) -> Result<(String, ModelSpec), ConfigError> {
        self.foreign_fields(m, Arch::Vit, "arch = \"vit\" does not read it: remove the field")?;
        let preset = match &m.preset {
            Some(name) => Some(VitConfig::preset(name.get_ref()).ok_or_else(|| {
                self.err(
                    "model.preset",
                    Some(name.span()),
                    format!("unknown preset {:?}: expected one of {}", name.get_ref(), PRESETS.join(", ")),
                )
            })?),
            None => None,
        };
        let p = preset.as_ref();
        let pick = |key: &str, raw: &Field<usize>, preset: Option<usize>| {
            value(raw).or(preset).ok_or_else(|| {
                self.err(&format!("model.{key}"), Some(m.arch.span()), "required for arch = \"vit\" without a preset")
            })
        };
        let base = p.map(|p| p.options.clone()).unwrap_or_default();
        let config = VitConfig {
            img_size: pick("img_size", &m.img_size, p.map(|p| p.img_size))?,
            patch_size: pick("patch_size", &m.patch_size, p.map(|p| p.patch_size))?,
            in_chans: 3,
            embed_dim: pick("embed_dim", &m.embed_dim, p.map(|p| p.embed_dim))?,
            depth: pick("depth", &m.depth, p.map(|p| p.depth))?,
            num_heads: pick("num_heads", &m.num_heads, p.map(|p| p.num_heads))?,
            mlp_ratio: value(&m.mlp_ratio).or(p.map(|p| p.mlp_ratio)).unwrap_or(4.0),
            global_pool: match (&m.global_pool, p) {
                (None, Some(p)) => p.global_pool,
                (raw, _) => self.choice("model.global_pool", raw)?,
            },
            // Each option: the config's, else the preset's, else timm's default.
            options: VitOptions {
                class_token: value(&m.class_token).unwrap_or(base.class_token),
                reg_tokens: value(&m.reg_tokens).unwrap_or(base.reg_tokens),
                no_embed_class: value(&m.no_embed_class).unwrap_or(base.no_embed_class),
                pre_norm: value(&m.pre_norm).unwrap_or(base.pre_norm),
                fc_norm: value(&m.fc_norm).or(base.fc_norm),
                init_values: value(&m.init_values).or(base.init_values),
                qkv_bias: value(&m.qkv_bias).unwrap_or(base.qkv_bias),
                act_layer: match &m.act_layer {
                    None => base.act_layer,
                    raw => self.choice("model.act_layer", raw)?,
                },
                dist_token: value(&m.dist_token).unwrap_or(base.dist_token),
                dynamic_img_size: value(&m.dynamic_img_size).unwrap_or(base.dynamic_img_size),
                norm_eps: value(&m.norm_eps).unwrap_or(base.norm_eps),
            },
        };
        config.check().map_err(|e| self.blame(m, &e))?;
        let weights = match &m.weights {
            None => None,
            Some(spec) => Some(self.weights(
                spec,
                base_dir,
                "give a timm .safetensors/.pth file, \"hf:ORG/NAME\", or omit `weights` for a random init",
            )?),
        };
        let name = value(&m.preset).unwrap_or_else(|| "vit".into());
        Ok((name, ModelSpec::Vit { config, weights }))
    }

    /// `weights`, parsed; a local file must exist now, not after the first scale's data.
    fn weights(&self, spec: &Spanned<String>, base_dir: &Path, expected: &str) -> Result<Weights, ConfigError> {
        let at = Some(spec.span());
        let source = WeightsSource::parse(spec.get_ref(), base_dir)
            .map_err(|e| self.err("model.weights", at.clone(), e.to_string()))?;
        if let WeightsSource::File(_) = &source {
            source.resolve().map_err(|e| self.err("model.weights", at, format!("{e}: {expected}")))?;
        }
        Ok(Weights { spec: spec.get_ref().clone(), source })
    }

    /// `arch = "torchscript"`: `weights` is the module file; LibTorch runs it.
    fn torchscript(&self, m: &RawModel, base_dir: &Path) -> Result<(String, ModelSpec), ConfigError> {
        let expected = "give a file saved by torch.jit.trace or torch.jit.script (torch.jit.save)";
        let spec = m.weights.as_ref().ok_or_else(|| {
            self.err("model.weights", Some(m.arch.span()), format!("torchscript needs `weights`: {expected}"))
        })?;
        let weights = self.weights(spec, base_dir, expected)?;
        if value(&m.backend).as_deref() != Some("tch") {
            return Err(self.err(
                "model.backend",
                span(&m.backend).or(Some(m.arch.span())),
                "a TorchScript module runs on LibTorch: set backend = \"tch\"",
            ));
        }
        self.foreign_fields(
            m,
            Arch::TorchScript,
            "a TorchScript module carries its own architecture: remove the field",
        )?;
        let stem = Path::new(&weights.spec).file_stem().map_or("torchscript".into(), |s| s.to_string_lossy().into());
        Ok((stem, ModelSpec::TorchScript { weights }))
    }

    /// The architecture fields `m` sets that `arch` does not read: the
    /// first is an error with `why`.
    fn foreign_fields(&self, m: &RawModel, arch: Arch, why: &str) -> Result<(), ConfigError> {
        let fields = model_fields(m);
        match fields.iter().find(|(_, at, archs)| at.is_some() && !archs.contains(&arch)) {
            Some((field, _, archs)) => {
                let names: Vec<&str> = archs.iter().map(|a| a.name()).collect();
                Err(self.err(
                    &format!("model.{field}"),
                    Some(m.arch.span()),
                    format!("{why} (`{field}` is for arch {})", names.join(" or ")),
                ))
            }
            None => Ok(()),
        }
    }

    /// `arch = "resnet"` or `"convnext"`: a preset and/or timm's constructor
    /// arguments; `weights` a timm state dict.
    fn cnn(&self, m: &RawModel, arch: Arch, base_dir: &Path) -> Result<(String, ModelSpec), ConfigError> {
        self.foreign_fields(m, arch, &format!("arch = {:?} does not read it: remove the field", arch.name()))?;
        let presets: &[&str] = if arch == Arch::ResNet { &RESNET_PRESETS } else { &CONVNEXT_PRESETS };
        let unknown = |name: &Spanned<String>| {
            self.err(
                "model.preset",
                Some(name.span()),
                format!("unknown {} preset {:?}: expected one of {}", arch.name(), name.get_ref(), presets.join(", ")),
            )
        };
        let weights = match &m.weights {
            None => None,
            Some(spec) => Some(self.weights(
                spec,
                base_dir,
                "give a timm .safetensors/.pth file, \"hf:ORG/NAME\", or omit `weights` for a random init",
            )?),
        };
        let spec = if arch == Arch::ResNet {
            let base = match &m.preset {
                Some(name) => ResNetConfig::preset(name.get_ref()).ok_or_else(|| unknown(name))?,
                None => ResNetConfig::default(),
            };
            let config = ResNetConfig {
                block: match &m.block {
                    None => base.block,
                    raw => self.choice("model.block", raw)?,
                },
                layers: value(&m.layers).unwrap_or(base.layers),
                channels: value(&m.channels).unwrap_or(base.channels),
                stem_width: value(&m.stem_width).unwrap_or(base.stem_width),
                stem_type: match &m.stem_type {
                    None => base.stem_type,
                    raw => self.choice("model.stem_type", raw)?,
                },
                cardinality: value(&m.cardinality).unwrap_or(base.cardinality),
                base_width: value(&m.base_width).unwrap_or(base.base_width),
                in_chans: 3,
            };
            config.check().map_err(|e| self.blame(m, &e))?;
            ModelSpec::ResNet { config, weights }
        } else {
            let base = match &m.preset {
                Some(name) => ConvNextConfig::preset(name.get_ref()).ok_or_else(|| unknown(name))?,
                None => ConvNextConfig::default(),
            };
            let ls_init_value = match &m.ls_init_value {
                None => base.ls_init_value,
                Some(raw) => match raw.get_ref() {
                    RawLayerScale::Value(v) => Some(*v),
                    RawLayerScale::Name(n) if n == "none" => None,
                    RawLayerScale::Name(n) => {
                        return Err(self.err(
                            "model.ls_init_value",
                            Some(raw.span()),
                            format!("{n:?}: expected a number, or \"none\" for no LayerScale"),
                        ));
                    }
                },
            };
            let config = ConvNextConfig {
                depths: value(&m.depths).unwrap_or(base.depths),
                dims: value(&m.dims).unwrap_or(base.dims),
                ls_init_value,
                conv_mlp: value(&m.conv_mlp).unwrap_or(base.conv_mlp),
                head_norm_first: value(&m.head_norm_first).unwrap_or(base.head_norm_first),
                ..base
            };
            config.check().map_err(|e| self.blame(m, &e))?;
            ModelSpec::ConvNext { config, weights }
        };
        Ok((value(&m.preset).unwrap_or_else(|| arch.name().to_string()), spec))
    }
}

/// `a/b/../c` → `a/c` without touching the file system (the folder may not
/// exist yet), so printed paths read cleanly.
pub fn normalize_lexically(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_lexically() {
        let check =
            |input: &str, expected: &str| assert_eq!(normalize_lexically(Path::new(input)), Path::new(expected));
        check("/work/configs/../results/quickstart", "/work/results/quickstart");
        check("configs/./out", "configs/out");
        check("../x/../y", "../y");
        check(".", ".");
        check("a/..", ".");
    }

    /// `check(toml, expected)`: the plan's error, as printed, for config text.
    fn check_error(toml: &str, expected: &str) {
        let err = parse(Path::new("exp.toml"), toml).unwrap_err().to_string();
        assert_eq!(err, expected);
    }

    #[test]
    fn each_owner_check_reports_file_line_and_field() {
        check_error(
            "[model]\narch = \"identity\"\n[data]\nshape = [8]\nshift = nan\n",
            "exp.toml:5: `data.shift`: shift NaN must be a finite number",
        );
        check_error(
            "[model]\narch = \"identity\"\n[data]\nshape = [8]\n\nprior = 1.5\n",
            "exp.toml:6: `data.prior`: prior 1.5 is outside (0, 1): it is P(y = 1) and both classes must occur",
        );
        check_error(
            "[model]\narch = \"identity\"\n[probe]\nnorm = \"l3\"\n",
            "exp.toml:4: `probe.norm`: \"l3\": expected one of \"l2\", \"linf\", \"l1\"",
        );
        check_error(
            "[model]\narch = \"identity\"\n[score]\nthresholds = [0.5, 1.5]\n",
            "exp.toml:4: `score.thresholds`: thresholds[1] = 1.5 is invalid: expected an accuracy threshold in [0, 1]",
        );
        check_error(
            "[model]\narch = \"vit\"\npreset = \"vit_tiny_patch16_224\"\nnum_heads = 5\n",
            "exp.toml:4: `model.num_heads`: embed_dim 192 is not divisible by num_heads 5: heads must split the width evenly",
        );
        check_error(
            "[model]\narch = \"identity\"\ndevice = \"gpu\"\n",
            "exp.toml:3: `model.device`: device \"gpu\" is unknown: expected \"cpu\", \"cuda\" or \"cuda:N\"",
        );
        check_error(
            "[model]\narch = \"identity\"\nbogus = 1\n",
            "exp.toml:3: `bogus`: unknown field `bogus`, expected one of `arch`, `name`, `preset`, `img_size`, `patch_size`, `embed_dim`, `depth`, `num_heads`, `mlp_ratio`, `global_pool`, `output_dim`, `spectrum_decay`, `noise`, `nonlinearity`, `weights`, `backend`, `device`, `batch_size`, `seed`, `precision`, `class_token`, `reg_tokens`, `no_embed_class`, `pre_norm`, `fc_norm`, `init_values`, `qkv_bias`, `act_layer`, `dist_token`, `dynamic_img_size`, `norm_eps`, `block`, `layers`, `channels`, `stem_width`, `stem_type`, `cardinality`, `base_width`, `depths`, `dims`, `ls_init_value`, `conv_mlp`, `head_norm_first`",
        );
    }

    #[test]
    fn defaults_fill_the_paper_protocol() {
        let plan =
            parse(Path::new("configs/x.toml"), "[model]\narch = \"vit\"\npreset = \"vit_tiny_patch16_224\"\n").unwrap();
        assert_eq!(plan.mixture.sample_shape(), [3, 224, 224]);
        assert_eq!(plan.mixture.normalization(), &Normalization::imagenet());
        assert_eq!(plan.scales.len(), 49);
        assert_eq!((plan.n_train, plan.n_test), (2048, 2048));
        assert_eq!(plan.score.thresholds(), PAPER_THRESHOLDS);
        assert_eq!(plan.output_dir.as_deref(), Some(Path::new("configs/results")));
        assert_eq!(plan.encoder.backend, Backend::Flex);
        assert!(plan.encoder.computes_on_cpu());
    }
}
