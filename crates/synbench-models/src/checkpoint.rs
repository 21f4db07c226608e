//! Loading timm checkpoints into the Burn ViT (feature `burn`): see
//! [`crate::weights`] for the formats and [`crate::vit`] for the key table.

use std::path::Path;

use burn::module::Param;
use burn::store::{ApplyResult, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use burn::tensor::{Tensor, TensorData};

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
    let (result, resample): (ApplyResult, _) = match extension.as_str() {
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .validate(false)
                .allow_partial(true);
            let unreadable = |e: String| file_error(format!("not a readable safetensors file: {e}"));
            let resample = fit_pos_embed(model, &mut store, path).map_err(unreadable)?;
            (model.load_from(&mut store).map_err(|e| unreadable(e.to_string()))?, resample)
        }
        "pth" | "pt" | "bin" => {
            let mut store = PytorchStore::from_file(path).validate(false).allow_partial(true);
            let unreadable = |e: String| file_error(format!("not a readable PyTorch checkpoint: {e}"));
            let resample = fit_pos_embed(model, &mut store, path).map_err(unreadable)?;
            (model.load_from(&mut store).map_err(|e| unreadable(e.to_string()))?, resample)
        }
        other => {
            return Err(file_error(format!(
                "unknown weights format {other:?}: expected a .safetensors file or a PyTorch .pth/.pt/.bin state dict"
            )));
        }
    };
    let report = check_apply_result(path, result, model.dynamic_img_size())?;
    if let Some((old, new)) = resample {
        model.resample_pos_embed(old, new);
    }
    Ok(report)
}

/// With `dynamic_img_size`, a checkpoint's position embedding for another
/// (square) patch grid: the model's `pos_embed` takes the checkpoint's shape
/// so it loads, and `Some((old, new))` grid sides to resample it to after.
fn fit_pos_embed<S: ModuleStore>(
    model: &mut VisionTransformer,
    store: &mut S,
    path: &Path,
) -> Result<Option<(usize, usize)>, String> {
    if !model.dynamic_img_size() {
        return Ok(None);
    }
    let Some(stored) = store.get_tensor("pos_embed").map_err(|e| e.to_string())? else {
        return Ok(None); // reported as missing by the load
    };
    let [_, len, d] = model.pos_embed.val().dims();
    let shape = stored.shape.to_vec();
    let prefix = model.pos_embed_prefix();
    let side = |patches: usize| (1..=patches).find(|s| s * s >= patches).filter(|s| s * s == patches);
    match shape.as_slice() {
        [1, l, dd] if *dd == d && *l == len => Ok(None),
        [1, l, dd] if *dd == d && *l > prefix => {
            let old = side(l - prefix).ok_or_else(|| {
                format!(
                    "`pos_embed` {shape:?} in {}: {} patch positions after {prefix} prefix tokens are not a square grid",
                    path.display(),
                    l - prefix
                )
            })?;
            let new = side(len - prefix).unwrap_or(0);
            let device = model.pos_embed.val().device();
            model.pos_embed = Param::from_tensor(Tensor::zeros([1, *l, d], &device));
            Ok(Some((old, new)))
        }
        _ => Ok(None), // a mis-shaped tensor: reported by the load
    }
}

/// PyTorch's antialiased bicubic resampling weights (`F.interpolate(mode=
/// "bicubic", antialias=True, align_corners=False)`, the kernel timm's
/// `resample_abs_pos_embed` uses): `[output][input]`, rows summing to 1.
/// PIL's cubic (a = −0.5), widened by the scale factor when downsampling.
pub(crate) fn antialiased_bicubic_weights(input: usize, output: usize) -> Vec<Vec<f64>> {
    let filter = |x: f64| {
        let (a, x) = (-0.5, x.abs());
        if x < 1.0 {
            ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
        } else if x < 2.0 {
            (((x - 5.0) * x + 8.0) * x - 4.0) * a
        } else {
            0.0
        }
    };
    let scale = input as f64 / output as f64;
    let (support, invscale) = if scale >= 1.0 { (2.0 * scale, 1.0 / scale) } else { (2.0, 1.0) };
    (0..output)
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            // C++'s truncating casts, as in ATen's _compute_weights_aa.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(input as i64) as usize;
            let mut row = vec![0.0; input];
            for (j, w) in row.iter_mut().enumerate().take(xmax).skip(xmin) {
                *w = filter((j as f64 - center + 0.5) * invscale);
            }
            let total: f64 = row.iter().sum();
            if total != 0.0 {
                row.iter_mut().for_each(|w| *w /= total);
            }
            row
        })
        .collect()
}

impl VisionTransformer {
    /// Resamples the patch part of `pos_embed` from an `old × old` grid to
    /// `new × new`, prefix positions kept (timm's `resample_abs_pos_embed`).
    fn resample_pos_embed(&mut self, old: usize, new: usize) {
        let pos = self.pos_embed.val();
        let [_, len, d] = pos.dims();
        let prefix = len - old * old;
        let w = antialiased_bicubic_weights(old, new);
        // Row-major grids: out (i, j) ← in (h, w) with weight W[i][h]·W[j][w].
        let mut matrix = Vec::with_capacity(new * new * old * old);
        for i in 0..new {
            for j in 0..new {
                for h in 0..old {
                    matrix.extend((0..old).map(|x| (w[i][h] * w[j][x]) as f32));
                }
            }
        }
        let device = pos.device();
        let matrix = Tensor::<2>::from_data(TensorData::new(matrix, [new * new, old * old]), &device);
        let grid = matrix.matmul(pos.clone().narrow(1, prefix, old * old).reshape([old * old, d]));
        let grid = grid.reshape([1, new * new, d]);
        let resampled = if prefix > 0 { Tensor::cat(vec![pos.narrow(1, 0, prefix), grid], 1) } else { grid };
        self.pos_embed = Param::from_tensor(resampled);
    }
}

fn check_apply_result(path: &Path, result: ApplyResult, dynamic_img_size: bool) -> Result<LoadReport, EncoderError> {
    let mut problems = Vec::new();
    for (missing, _) in &result.missing {
        problems.push(format!("missing tensor `{}`", timm_name(missing)));
    }
    for error in &result.errors {
        let message = error.to_string();
        if message.contains("pos_embed") && !dynamic_img_size {
            problems.push(format!(
                "{message} (a checkpoint made for another image size loads with dynamic_img_size = true, \
                 which resamples its position embedding as timm does)"
            ));
        } else {
            problems.push(message);
        }
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
