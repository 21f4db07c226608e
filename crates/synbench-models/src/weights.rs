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
    /// `model.safetensors` is read from the hub cache ([`hub_cache_dir`])
    /// without network when it is there, else downloaded into it (never
    /// with `HF_HUB_OFFLINE=1`).
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

/// The Hugging Face hub cache folder, as the hub's own libraries find it:
/// `$HF_HUB_CACHE`, `$HUGGINGFACE_HUB_CACHE`, `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub` (`$XDG_CACHE_HOME/huggingface/hub` where set).
pub fn hub_cache_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("HF_HUB_CACHE")
        .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
        .or_else(|| var("HF_HOME").map(|home| home.join("hub")))
        .or_else(|| var("XDG_CACHE_HOME").map(|cache| cache.join("huggingface/hub")))
        .unwrap_or_else(|| var("HOME").unwrap_or_default().join(".cache/huggingface/hub"))
}

/// Whether the hub must not be reached (`HF_HUB_OFFLINE` set to a true
/// value, as compute nodes of a cluster without internet set it).
pub fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// `file` of model repository `repo` in the hub cache `cache`, in the
/// layout the hub's libraries write (`models--ORG--NAME/refs/main` names a
/// commit, `snapshots/COMMIT/FILE` is the file), if it is there.
pub fn cached_hub_file(cache: &Path, repo: &str, file: &str) -> Option<PathBuf> {
    let folder = cache.join(format!("models--{}", repo.replace('/', "--")));
    let commit = std::fs::read_to_string(folder.join("refs/main")).ok()?;
    let path = folder.join("snapshots").join(commit.trim()).join(file);
    path.is_file().then_some(path)
}

fn download_from_hub(repo: &str) -> Result<PathBuf, EncoderError> {
    hub_file(repo, hub_cache_dir(), hub_offline())
}

/// The hub file of `repo` from the cache `cache` when it is there (no
/// network), else downloaded into that cache, or (`offline`) an error
/// saying how to get it there.
pub fn hub_file(repo: &str, cache: PathBuf, offline: bool) -> Result<PathBuf, EncoderError> {
    if let Some(path) = cached_hub_file(&cache, repo, HUB_FILE) {
        return Ok(path);
    }
    if offline {
        return Err(EncoderError::Hub {
            repo: repo.to_string(),
            message: format!(
                "HF_HUB_OFFLINE is set and {HUB_FILE} is not in the hub cache {} (models--{}); download it on a \
                 machine with internet first (the login node: `python -m synbench sweep MODELS --config PROTOCOL \
                 --output-dir DIR --prefetch`, or `huggingface-cli download {repo} {HUB_FILE}`) into the same cache",
                cache.display(),
                repo.replace('/', "--"),
            ),
        });
    }
    fetch(repo, cache)
}

#[cfg(feature = "hub")]
fn fetch(repo: &str, cache: PathBuf) -> Result<PathBuf, EncoderError> {
    let api = hf_hub::api::sync::ApiBuilder::from_cache(hf_hub::Cache::new(cache))
        .build()
        .map_err(|e| offline(repo, &e.to_string()))?;
    api.model(repo.to_string()).get(HUB_FILE).map_err(|e| offline(repo, &e.to_string()))
}

#[cfg(not(feature = "hub"))]
fn fetch(repo: &str, _cache: PathBuf) -> Result<PathBuf, EncoderError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache laid out as the hub's libraries write it (a blob linked from
    /// the snapshot is a plain file here; the lookup follows either).
    fn cache_with(dir: &Path, repo: &str, commit: &str) -> PathBuf {
        let folder = dir.join(format!("models--{}", repo.replace('/', "--")));
        std::fs::create_dir_all(folder.join("refs")).unwrap();
        std::fs::create_dir_all(folder.join("snapshots").join(commit)).unwrap();
        std::fs::write(folder.join("refs/main"), commit).unwrap();
        let file = folder.join("snapshots").join(commit).join(HUB_FILE);
        std::fs::write(&file, b"weights").unwrap();
        file
    }

    #[test]
    fn hub_weights_resolve_from_the_cache_without_network() {
        let dir = std::env::temp_dir().join(format!("synbench-hub-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let file = cache_with(&dir, "timm/vit_tiny_patch16_224.augreg_in21k", "0123abcd");
        assert_eq!(cached_hub_file(&dir, "timm/vit_tiny_patch16_224.augreg_in21k", HUB_FILE), Some(file.clone()));
        // Cached: found offline and online alike, before any network client is made.
        for offline in [true, false] {
            assert_eq!(hub_file("timm/vit_tiny_patch16_224.augreg_in21k", dir.clone(), offline).unwrap(), file);
        }
        // A ref naming a snapshot that is not there, and a repo not cached at all.
        std::fs::write(dir.join("models--timm--vit_tiny_patch16_224.augreg_in21k/refs/main"), "feedbeef\n").unwrap();
        assert_eq!(cached_hub_file(&dir, "timm/vit_tiny_patch16_224.augreg_in21k", HUB_FILE), None);
        let err = hub_file("timm/resnet50.a1_in1k", dir.clone(), true).unwrap_err().to_string();
        assert!(err.contains("hf:timm/resnet50.a1_in1k") && err.contains("HF_HUB_OFFLINE"), "{err}");
        assert!(err.contains(&dir.display().to_string()) && err.contains("models--timm--resnet50.a1_in1k"), "{err}");
        assert!(err.contains("--prefetch"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
