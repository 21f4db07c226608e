//! Loading timm checkpoints into the Burn ViT (feature `burn`): see
//! [`crate::weights`] for the formats and [`crate::vit`] for the key table.

use std::path::Path;

use burn::store::{ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};

use crate::EncoderError;
use crate::vit::VisionTransformer;

/// What a successful load applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors loaded.
    pub applied: usize,
    /// Checkpoint tensors deliberately not used (the classifier head).
    pub ignored: Vec<String>,
}

/// timm's name of a Burn parameter path (norm `gamma`/`beta` are timm's
/// `weight`/`bias`; LayerScale's `gamma` is timm's own name).
fn timm_name(burn_path: &str) -> String {
    if burn_path.ends_with(".ls1.gamma") || burn_path.ends_with(".ls2.gamma") {
        return burn_path.to_string();
    }
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
