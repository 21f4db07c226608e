//! Experiment configs: a raw serde mirror of the TOML file (unknown fields
//! rejected), then a validated [`Plan`] whose constructor is the only place
//! value errors are raised. Every error names the file, the line and the
//! field, and says what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use synbench_data::Generator;
use synbench_models::{GlobalPool, PRESETS, Precision, VitConfig};
use synbench_probe::{AttackNorm, Averaging, CovarianceEstimator};
use synbench_theory::{PAPER_THRESHOLDS, ScaleGrid, ScoreMode};

/// `probe.norm` names.
pub const NORMS: [(&str, AttackNorm); 3] = [("l2", AttackNorm::L2), ("linf", AttackNorm::Linf), ("l1", AttackNorm::L1)];
/// `probe.averaging` names.
pub const AVERAGINGS: [(&str, Averaging); 2] = [("reference", Averaging::Reference), ("exact", Averaging::Exact)];
/// `probe.covariance` names.
pub const COVARIANCES: [(&str, CovarianceEstimator); 2] =
    [("pooled", CovarianceEstimator::Pooled), ("ledoit_wolf", CovarianceEstimator::LedoitWolf)];
/// `data.generator` names.
pub const GENERATORS: [(&str, Generator); 2] =
    [("xoshiro_box_muller", Generator::Xoshiro128BoxMuller), ("chacha8_ziggurat", Generator::ChaCha8Ziggurat)];
/// `model.precision` names (the spellings are `Precision::name`).
pub const PRECISIONS: [(&str, Precision); 3] = [
    (Precision::F32.name(), Precision::F32),
    (Precision::Bf16.name(), Precision::Bf16),
    (Precision::F16.name(), Precision::F16),
];
/// `score.mode` names.
pub const SCORE_MODES: [(&str, ScoreMode); 2] = [("reference", ScoreMode::Reference), ("exact", ScoreMode::Exact)];

/// The config name of an option value (`name_of(&AVERAGINGS, Averaging::Exact)` is `"exact"`).
pub fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], value: T) -> &'static str {
    table.iter().find(|(_, v)| *v == value).map_or("?", |(name, _)| name)
}

/// The option value a config name stands for, or the list of accepted names.
pub fn value_of<T: Copy>(table: &[(&'static str, T)], name: &str) -> Result<T, String> {
    table.iter().find(|(n, _)| *n == name).map(|(_, v)| *v).ok_or_else(|| {
        let allowed: Vec<String> = table.iter().map(|(n, _)| format!("{n:?}")).collect();
        format!("{name:?}: expected one of {}", allowed.join(", "))
    })
}

/// A config error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// `section.key`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: `{}`: {}", self.file.display(), self.field, self.message),
            None => write!(f, "{}: `{}`: {}", self.file.display(), self.field, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------- raw TOML

/// The TOML file as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[model]`.
    pub model: RawModel,
    /// `[data]`.
    #[serde(default)]
    pub data: Option<RawData>,
    /// `[probe]`.
    #[serde(default)]
    pub probe: Option<RawProbe>,
    /// `[score]`.
    #[serde(default)]
    pub score: Option<RawScore>,
    /// `[output]`.
    #[serde(default)]
    pub output: Option<RawOutput>,
}

/// `[model]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// `vit`, `identity` or `random_projection`.
    pub arch: String,
    /// timm model name of a ViT preset.
    pub preset: Option<String>,
    /// ViT input side.
    pub img_size: Option<usize>,
    /// ViT patch side.
    pub patch_size: Option<usize>,
    /// ViT width.
    pub embed_dim: Option<usize>,
    /// ViT depth.
    pub depth: Option<usize>,
    /// ViT heads.
    pub num_heads: Option<usize>,
    /// ViT MLP ratio.
    pub mlp_ratio: Option<f64>,
    /// `token` or `avg`.
    pub global_pool: Option<String>,
    /// Output width of `random_projection`.
    pub output_dim: Option<usize>,
    /// Checkpoint path or `hf:ORG/NAME`; absent = random init.
    pub weights: Option<String>,
    /// `flex`, `tch` or `cuda`.
    pub backend: Option<String>,
    /// `cpu` or `cuda:N`.
    pub device: Option<String>,
    /// Images per encoder call.
    pub batch_size: Option<usize>,
    /// Seed of a random init or projection.
    pub seed: Option<u64>,
    /// ViT float precision: `f32` (default), `bf16` or `f16`.
    pub precision: Option<String>,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RawData {
    /// `[C, H, W]` or `[d]`.
    pub shape: Option<Vec<usize>>,
    /// `{ start, stop, step }` (stop included) or a list.
    pub scales: Option<RawScales>,
    /// Train samples per scale.
    pub n_train: Option<u64>,
    /// Test samples per scale.
    pub n_test: Option<u64>,
    /// P(y = 1).
    pub prior: Option<f64>,
    /// Master seed.
    pub seed: Option<u64>,
    /// The common shift c.
    pub shift: Option<f64>,
    /// `"imagenet"`, `"none"` or `{ mean = [...], std = [...] }`.
    pub normalize: Option<RawNormalize>,
    /// `"xoshiro_box_muller"` (default) or `"chacha8_ziggurat"` (synbench 0.1).
    pub generator: Option<String>,
}

/// Scales as a range or a list.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
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
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
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
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    /// Robustness levels.
    pub epsilons: Option<Vec<f64>>,
    /// `l2`, `linf` or `l1`.
    pub norm: Option<String>,
    /// `reference` or `exact`.
    pub averaging: Option<String>,
    /// `pooled` or `ledoit_wolf`.
    pub covariance: Option<String>,
}

/// `[score]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RawScore {
    /// Accuracy thresholds.
    pub thresholds: Option<Vec<f64>>,
    /// `reference` or `exact`.
    pub mode: Option<String>,
}

/// `[output]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Result directory.
    pub dir: Option<String>,
}

// ---------------------------------------------------------------- the plan

/// Which encoder to build.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelPlan {
    /// A timm ViT.
    Vit {
        /// Display name (the preset, or "vit").
        name: String,
        /// Architecture.
        config: VitConfig,
        /// Weights: a path (relative to the config folder) or `hf:ORG/NAME`;
        /// `None` is a random init.
        weights: Option<String>,
    },
    /// `f(x) = x`.
    Identity,
    /// A fixed Gaussian projection.
    RandomProjection {
        /// Output width.
        output_dim: usize,
    },
}

/// The validated experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The config file.
    pub file: PathBuf,
    /// Its folder (relative paths resolve against it).
    pub base_dir: PathBuf,
    /// The raw config, recorded in results.
    pub raw: RawConfig,
    /// Encoder.
    pub model: ModelPlan,
    /// `flex`, `tch` or `cuda`.
    pub backend: String,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// Images per encoder call.
    pub batch_size: usize,
    /// Float precision of a ViT.
    pub precision: Precision,
    /// Seed of random init.
    pub model_seed: u64,
    /// Sample shape.
    pub shape: Vec<usize>,
    /// Mean scales.
    pub scales: ScaleGrid,
    /// Train samples per scale.
    pub n_train: u64,
    /// Test samples per scale.
    pub n_test: u64,
    /// Class prior.
    pub prior: f64,
    /// Data seed.
    pub seed: u64,
    /// The random source of the samples.
    pub generator: Generator,
    /// Shift.
    pub shift: f64,
    /// Per-channel normalisation, `None` for raw inputs.
    pub normalize: Option<(Vec<f64>, Vec<f64>)>,
    /// Robustness levels.
    pub epsilons: Vec<f64>,
    /// Attack norm of the robust probe.
    pub norm: AttackNorm,
    /// How test outcomes are averaged.
    pub averaging: Averaging,
    /// Covariance estimator of the probe.
    pub covariance: CovarianceEstimator,
    /// Thresholds.
    pub thresholds: Vec<f64>,
    /// Score mode.
    pub score_mode: ScoreMode,
    /// Output directory (absolute or relative to the config folder).
    pub output_dir: PathBuf,
}

impl Plan {
    /// The model's name in tables: the timm preset, or the arch.
    pub fn model_name(&self) -> String {
        match &self.model {
            ModelPlan::Vit { name, .. } => name.clone(),
            ModelPlan::Identity => "identity".into(),
            ModelPlan::RandomProjection { .. } => "random_projection".into(),
        }
    }
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        line: None,
        field: "(file)".into(),
        message: format!("cannot read the config: {e}"),
    })?;
    parse(path, &text)
}

/// Parses and validates config text that came from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Plan, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        ConfigError { file: path.to_path_buf(), line, field: field_of_toml_error(&e), message: e.message().to_string() }
    })?;
    Validator { path, text }.plan(raw)
}

fn field_of_toml_error(e: &toml::de::Error) -> String {
    let msg = e.message();
    // toml names the offending key in backticks ("unknown field `foo`").
    match msg.split('`').nth(1) {
        Some(key) if msg.starts_with("unknown field") => key.to_string(),
        _ => "(syntax)".into(),
    }
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    /// 1-based line of `key = …` inside `[section]`.
    fn line_of(&self, section: &str, key: &str) -> Option<usize> {
        let mut in_section = false;
        for (i, line) in self.text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                in_section = trimmed.trim_start_matches('[').trim_end_matches(']').trim() == section;
                continue;
            }
            if in_section && trimmed.split('=').next().map(str::trim) == Some(key) {
                return Some(i + 1);
            }
        }
        None
    }

    fn err(&self, section: &str, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.path.to_path_buf(),
            line: self.line_of(section, key),
            field: format!("{section}.{key}"),
            message: message.into(),
        }
    }

    fn plan(&self, raw: RawConfig) -> Result<Plan, ConfigError> {
        let m = &raw.model;
        let model = match m.arch.as_str() {
            "vit" => self.vit(m)?,
            "identity" => ModelPlan::Identity,
            "random_projection" => ModelPlan::RandomProjection {
                output_dim: match m.output_dim {
                    Some(d) if d > 0 => d,
                    _ => return Err(self.err("model", "output_dim", "random_projection needs output_dim > 0")),
                },
            },
            other => {
                return Err(self.err(
                    "model",
                    "arch",
                    format!("unknown arch {other:?}: expected \"vit\", \"identity\" or \"random_projection\""),
                ));
            }
        };
        let backend = m.backend.clone().unwrap_or_else(|| "flex".into());
        if !["flex", "tch", "cuda"].contains(&backend.as_str()) {
            return Err(self.err("model", "backend", format!("{backend:?}: expected \"flex\", \"tch\" or \"cuda\"")));
        }
        let device = m.device.clone().unwrap_or_else(|| "cpu".into());
        let device_ok = device == "cpu"
            || device == "cuda"
            || device.strip_prefix("cuda:").is_some_and(|i| i.parse::<usize>().is_ok());
        if !device_ok {
            return Err(self.err("model", "device", format!("{device:?}: expected \"cpu\" or \"cuda:N\"")));
        }
        let batch_size = m.batch_size.unwrap_or(64);
        if batch_size == 0 {
            return Err(self.err("model", "batch_size", "must be at least 1"));
        }
        let precision = self.choice("model", "precision", m.precision.as_deref(), &PRECISIONS)?;
        if precision != Precision::F32 && !matches!(model, ModelPlan::Vit { .. }) {
            return Err(self.err(
                "model",
                "precision",
                "only arch \"vit\" runs in reduced precision; remove the field",
            ));
        }

        let d = raw.data.clone().unwrap_or_default();
        let default_shape = match &model {
            ModelPlan::Vit { config, .. } => vec![3, config.img_size, config.img_size],
            _ => vec![64],
        };
        let shape = d.shape.clone().unwrap_or(default_shape);
        if !matches!(shape.len(), 1 | 3) || shape.contains(&0) {
            return Err(self.err(
                "data",
                "shape",
                format!("{shape:?}: expected [d] or [C, H, W] with every extent > 0"),
            ));
        }
        if let ModelPlan::Vit { config, .. } = &model
            && shape != [3, config.img_size, config.img_size]
        {
            let img_size = config.img_size;
            return Err(self.err(
                "data",
                "shape",
                format!("{shape:?} cannot feed a ViT with img_size {img_size}: expected [3, {img_size}, {img_size}]"),
            ));
        }
        let scales = match d.scales.clone() {
            None => Ok(ScaleGrid::paper_protocol()),
            Some(RawScales::Range { start, stop, step }) => ScaleGrid::arange(start, stop, step),
            Some(RawScales::List(list)) => ScaleGrid::from_values(list),
        }
        .map_err(|e| self.err("data", "scales", e.to_string()))?;
        let n_train = d.n_train.unwrap_or(2048);
        let n_test = d.n_test.unwrap_or(2048);
        if n_train < 4 {
            return Err(self.err("data", "n_train", "need at least 4 train samples (2 per class for a covariance)"));
        }
        if n_test < 1 {
            return Err(self.err("data", "n_test", "need at least 1 test sample"));
        }
        let prior = d.prior.unwrap_or(0.5);
        if !(prior > 0.0 && prior < 1.0) {
            return Err(self.err("data", "prior", format!("{prior} is outside (0, 1): both classes must occur")));
        }
        let shift = d.shift.unwrap_or(0.5);
        if !shift.is_finite() {
            return Err(self.err("data", "shift", "must be a finite number"));
        }
        let channels = if shape.len() == 3 { shape[0] } else { 1 };
        let normalize = match d.normalize.clone() {
            None if shape.len() == 3 => Some(imagenet()),
            None => None,
            Some(RawNormalize::Named(name)) => match name.as_str() {
                "imagenet" => Some(imagenet()),
                "none" => None,
                other => {
                    return Err(self.err(
                        "data",
                        "normalize",
                        format!("{other:?}: expected \"imagenet\", \"none\" or {{ mean = [...], std = [...] }}"),
                    ));
                }
            },
            Some(RawNormalize::Values { mean, std }) => Some((mean, std)),
        };
        if let Some((mean, std)) = &normalize {
            if mean.len() != channels || std.len() != channels {
                return Err(self.err(
                    "data",
                    "normalize",
                    format!("{} means and {} stds for {channels} channel(s) of shape {shape:?}", mean.len(), std.len()),
                ));
            }
            if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(self.err("data", "normalize", "every std must be finite and > 0"));
            }
        }

        let generator = self.choice("data", "generator", d.generator.as_deref(), &GENERATORS)?;

        let p = raw.probe.clone().unwrap_or_default();
        let epsilons = p.epsilons.clone().unwrap_or_else(|| vec![0.0]);
        if epsilons.is_empty() {
            return Err(self.err("probe", "epsilons", "give at least one epsilon"));
        }
        if let Some(e) = epsilons.iter().find(|e| !(**e >= 0.0 && **e < 1.0)) {
            return Err(self.err(
                "probe",
                "epsilons",
                format!("{e} is outside [0, 1): at epsilon >= 1 the robust probe degenerates to w = 0"),
            ));
        }
        let norm = self.choice("probe", "norm", p.norm.as_deref(), &NORMS)?;
        let averaging = self.choice("probe", "averaging", p.averaging.as_deref(), &AVERAGINGS)?;
        let covariance = self.choice("probe", "covariance", p.covariance.as_deref(), &COVARIANCES)?;

        let s = raw.score.clone().unwrap_or_default();
        let thresholds = s.thresholds.clone().unwrap_or_else(|| PAPER_THRESHOLDS.to_vec());
        if thresholds.is_empty() || thresholds.iter().any(|t| !(0.0..=1.0).contains(t)) {
            return Err(self.err("score", "thresholds", "give accuracy thresholds in [0, 1]"));
        }
        let score_mode = self.choice("score", "mode", s.mode.as_deref(), &SCORE_MODES)?;

        let o = raw.output.clone().unwrap_or_default();
        let base_dir = self.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let output_dir = normalize_lexically(&base_dir.join(o.dir.clone().unwrap_or_else(|| "results".into())));

        Ok(Plan {
            file: self.path.to_path_buf(),
            base_dir,
            model,
            backend,
            device,
            batch_size,
            precision,
            model_seed: m.seed.unwrap_or(0),
            shape,
            scales,
            n_train,
            n_test,
            prior,
            seed: d.seed.unwrap_or(12),
            generator,
            shift,
            normalize,
            epsilons,
            norm,
            averaging,
            covariance,
            thresholds,
            score_mode,
            output_dir,
            raw,
        })
    }

    /// A named option; absent means the table's first entry (the default).
    fn choice<T: Copy>(
        &self,
        section: &str,
        key: &str,
        value: Option<&str>,
        table: &[(&'static str, T)],
    ) -> Result<T, ConfigError> {
        match value {
            None => Ok(table[0].1),
            Some(name) => value_of(table, name).map_err(|message| self.err(section, key, message)),
        }
    }

    fn vit(&self, m: &RawModel) -> Result<ModelPlan, ConfigError> {
        let preset = match &m.preset {
            Some(name) => Some(VitConfig::preset(name).ok_or_else(|| {
                self.err("model", "preset", format!("unknown preset {name:?}: expected one of {}", PRESETS.join(", ")))
            })?),
            None => None,
        };
        let pick = |key: &str, value: Option<usize>, preset: Option<usize>| {
            value.or(preset).ok_or_else(|| self.err("model", key, "required for arch = \"vit\" without a preset"))
        };
        let p = preset.as_ref();
        let img_size = pick("img_size", m.img_size, p.map(|p| p.img_size))?;
        let patch_size = pick("patch_size", m.patch_size, p.map(|p| p.patch_size))?;
        let embed_dim = pick("embed_dim", m.embed_dim, p.map(|p| p.embed_dim))?;
        let depth = pick("depth", m.depth, p.map(|p| p.depth))?;
        let num_heads = pick("num_heads", m.num_heads, p.map(|p| p.num_heads))?;
        let mlp_ratio = m.mlp_ratio.or(p.map(|p| p.mlp_ratio)).unwrap_or(4.0);
        if img_size == 0 || patch_size == 0 || img_size % patch_size != 0 {
            return Err(self.err(
                "model",
                "img_size",
                format!("img_size {img_size} must be a positive multiple of patch_size {patch_size}"),
            ));
        }
        if num_heads == 0 || embed_dim % num_heads != 0 {
            return Err(self.err(
                "model",
                "num_heads",
                format!("embed_dim {embed_dim} must be divisible by num_heads {num_heads}"),
            ));
        }
        if depth == 0 || !(mlp_ratio.is_finite() && mlp_ratio > 0.0) {
            return Err(self.err("model", "depth", "depth and mlp_ratio must be positive"));
        }
        let global_pool = match m.global_pool.as_deref() {
            None | Some("token") => GlobalPool::Token,
            Some("avg") => GlobalPool::Avg,
            Some(other) => {
                return Err(self.err("model", "global_pool", format!("{other:?}: expected \"token\" or \"avg\"")));
            }
        };
        if let Some(w) = &m.weights
            && !w.starts_with("hf:")
        {
            let base = self.path.parent().unwrap_or(Path::new("."));
            let path = base.join(w);
            if !path.is_file() {
                return Err(self.err(
                    "model",
                    "weights",
                    format!(
                        "{} does not exist: give a timm .safetensors/.pth file, \"hf:ORG/NAME\", or omit `weights` for a random init",
                        path.display()
                    ),
                ));
            }
        }
        let config =
            VitConfig { img_size, patch_size, in_chans: 3, embed_dim, depth, num_heads, mlp_ratio, global_pool };
        config.check().map_err(|e| self.err("model", "arch", e.to_string()))?;
        Ok(ModelPlan::Vit {
            name: m.preset.clone().unwrap_or_else(|| "vit".into()),
            config,
            weights: m.weights.clone(),
        })
    }
}

/// `a/b/../c` → `a/c` without touching the file system (the folder may not
/// exist yet), so printed paths read cleanly.
fn normalize_lexically(path: &Path) -> PathBuf {
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

fn imagenet() -> (Vec<f64>, Vec<f64>) {
    (synbench_data::IMAGENET_MEAN.to_vec(), synbench_data::IMAGENET_STD.to_vec())
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
}
