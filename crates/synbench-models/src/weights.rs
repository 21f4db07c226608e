//! Where weights come from: a local file or a hub repository
//! ([`WeightsSource`]), resolved to a local file (downloading with the `hub`
//! feature). Burn-free; the loading itself is in `checkpoint`.
//!
//! `.safetensors` files go through burn-store's `SafetensorsStore` with the
//! `PyTorchToBurnAdapter`; `.pth`/`.pt`/`.bin` files through its
//! `PytorchStore`. The module's field names are timm's (see the key table in
//! `vit`), so no key is remapped. Every missing, unexpected or
//! mis-shaped tensor is reported at once, by its timm name.

use std::path::{Path, PathBuf};

use crate::EncoderError;

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
