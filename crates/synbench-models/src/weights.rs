//! Loading timm checkpoints into the Burn ViT.
//!
//! `.safetensors` files go through burn-store's `SafetensorsStore` with the
//! `PyTorchToBurnAdapter`; `.pth`/`.pt`/`.bin` files through its
//! `PytorchStore`. The module's field names are timm's (see the key table in
//! [`crate::vit`]), so no key is remapped. Every missing, unexpected or
//! mis-shaped tensor is reported at once, by its timm name.

use std::path::{Path, PathBuf};

use burn::store::{ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};

use crate::EncoderError;
use crate::vit::VisionTransformer;

/// Where a model's weights come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsSource {
    /// A local `.safetensors` or `.pth` file.
    File(PathBuf),
    /// A Hugging Face Hub repository (`hf:ORG/NAME`), e.g.
    /// `hf:timm/vit_base_patch16_224.augreg2_in21k_ft_in1k`; its
    /// `model.safetensors` is downloaded into the usual hub cache.
    Hub {
        /// `ORG/NAME`.
        repo: String,
    },
}

impl WeightsSource {
    /// Parses a config value: `hf:ORG/NAME` or a path, relative paths taken
    /// against `base_dir` (the config file's folder).
    pub fn parse(spec: &str, base_dir: &Path) -> Result<Self, EncoderError> {
        if let Some(repo) = spec.strip_prefix("hf:") {
            let parts: Vec<&str> = repo.split('/').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                return Err(EncoderError::Config(format!(
                    "weights = {spec:?}: a hub id must look like \"hf:ORG/NAME\", e.g. \"hf:timm/vit_base_patch16_224.augreg2_in21k_ft_in1k\""
                )));
            }
            return Ok(Self::Hub { repo: repo.to_string() });
        }
        let path = Path::new(spec);
        Ok(Self::File(if path.is_absolute() { path.to_path_buf() } else { base_dir.join(path) }))
    }

    /// A local file holding the weights: the file itself, or the hub file
    /// after download (or from the cache).
    pub fn resolve(&self) -> Result<PathBuf, EncoderError> {
        match self {
            Self::File(path) => {
                if path.is_file() {
                    Ok(path.clone())
                } else {
                    Err(EncoderError::WeightsFile {
                        path: path.clone(),
                        message: "no such file (weights are never downloaded for a plain path; use \"hf:ORG/NAME\" for the hub)"
                            .into(),
                    })
                }
            }
            Self::Hub { repo } => download_from_hub(repo),
        }
    }
}

/// The file fetched from a hub repository.
pub const HUB_FILE: &str = "model.safetensors";

#[cfg(feature = "hub")]
fn download_from_hub(repo: &str) -> Result<PathBuf, EncoderError> {
    let api = hf_hub::api::sync::Api::new().map_err(|e| offline(repo, &e.to_string()))?;
    api.model(repo.to_string()).get(HUB_FILE).map_err(|e| offline(repo, &e.to_string()))
}

#[cfg(not(feature = "hub"))]
fn download_from_hub(repo: &str) -> Result<PathBuf, EncoderError> {
    Err(offline(repo, "this build has no hub client (built without the `hub` feature)"))
}

fn offline(repo: &str, why: &str) -> EncoderError {
    EncoderError::Hub {
        repo: repo.to_string(),
        message: format!(
            "{why}. Fetch https://huggingface.co/{repo}/resolve/main/{HUB_FILE} on a machine that is online, \
             copy it here (e.g. to weights/{}.safetensors) and set `weights` in the config to that path",
            repo.rsplit('/').next().unwrap_or(repo)
        ),
    }
}

/// What a successful load applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors loaded.
    pub applied: usize,
    /// Checkpoint tensors deliberately not used (the classifier head).
    pub ignored: Vec<String>,
}

/// timm's name of a Burn parameter path (norm `gamma`/`beta` are timm's `weight`/`bias`).
fn timm_name(burn_path: &str) -> String {
    burn_path.replace(".gamma", ".weight").replace(".beta", ".bias")
}

/// Loads a timm state dict (`.safetensors`, or `.pth`/`.pt`/`.bin`) into `model`.
pub fn load_timm_checkpoint(model: &mut VisionTransformer, path: &Path) -> Result<LoadReport, EncoderError> {
    let file_error = |message: String| EncoderError::WeightsFile { path: path.to_path_buf(), message };
    if !path.is_file() {
        return Err(file_error("no such file".into()));
    }
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let result: ApplyResult = match extension.as_str() {
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .validate(false)
                .allow_partial(true);
            model.load_from(&mut store).map_err(|e| file_error(format!("not a readable safetensors file: {e}")))?
        }
        "pth" | "pt" | "bin" => {
            let mut store = PytorchStore::from_file(path).validate(false).allow_partial(true);
            model.load_from(&mut store).map_err(|e| file_error(format!("not a readable PyTorch checkpoint: {e}")))?
        }
        other => {
            return Err(file_error(format!(
                "unknown weights format {other:?}: expected a .safetensors file or a PyTorch .pth/.pt/.bin state dict"
            )));
        }
    };
    check_apply_result(path, result)
}

fn check_apply_result(path: &Path, result: ApplyResult) -> Result<LoadReport, EncoderError> {
    let mut problems = Vec::new();
    for (missing, _) in &result.missing {
        problems.push(format!("missing tensor `{}`", timm_name(missing)));
    }
    for error in &result.errors {
        problems.push(error.to_string());
    }
    let (ignored, unexpected): (Vec<String>, Vec<String>) =
        result.unused.iter().cloned().partition(|k| k.starts_with("head.") || k.starts_with("head_dist."));
    for key in unexpected {
        problems.push(format!("unexpected tensor `{key}` (this architecture has no such parameter)"));
    }
    if problems.is_empty() {
        Ok(LoadReport { applied: result.applied.len(), ignored })
    } else {
        problems.sort();
        Err(EncoderError::WeightsMismatch { path: path.to_path_buf(), problems })
    }
}
