//! Loading timm checkpoints into the Burn models (feature `burn`): see
//! [`crate::weights`] for the formats and [`crate::vit`], [`crate::resnet`]
//! and [`crate::convnext`] for the key tables.

use std::path::Path;

use burn::module::Param;
use burn::store::{
    ApplyResult, KeyRemapper, ModuleSnapshot, ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::{Tensor, TensorData};

use crate::EncoderError;
use crate::convnext::ConvNext;
use crate::resnet::ResNet;
use crate::vit::VisionTransformer;

/// What a successful load applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Tensors loaded.
    pub applied: usize,
    /// Checkpoint tensors deliberately not used (the classifier head).
    pub ignored: Vec<String>,
}

/// A Burn model that loads timm state dicts.
pub trait TimmModel: ModuleSnapshot + Sized {
    /// `(timm key regex, Burn path)` rewrites where the two differ (timm's
    /// `nn.Sequential` indices); applied to every checkpoint key.
    const REMAPS: &'static [(&'static str, &'static str)] = &[];
    /// timm's name, in this model, of a Burn parameter path or of a
    /// remapped checkpoint key, for messages.
    fn timm_name(&self, path: &str) -> String;
    /// Checkpoint keys the model deliberately does not use (the classifier).
    fn ignored(key: &str) -> bool;
    /// Adapts the model to the checkpoint before it loads.
    fn prepare<S: ModuleStore>(&mut self, _store: &mut S, _path: &Path) -> Result<(), String> {
        Ok(())
    }
    /// Finishes what [`TimmModel::prepare`] began, once the load succeeded.
    fn finish(&mut self) {}
    /// A hint to add to a load problem.
    fn hint(&self, _problem: &str) -> Option<&'static str> {
        None
    }
}

/// Norm `gamma`/`beta` are timm's `weight`/`bias`.
fn norm_names(path: &str) -> String {
    path.replace(".gamma", ".weight").replace(".beta", ".bias")
}

/// The inverse of `remaps` (Burn path → timm key), for messages.
fn unmap(path: &str, inverse: &[(&str, &str)]) -> String {
    inverse.iter().fold(path.to_string(), |p, (from, to)| p.replace(from, to))
}

impl TimmModel for VisionTransformer {
    fn timm_name(&self, path: &str) -> String {
        // LayerScale's `gamma` is timm's own name.
        if path.ends_with(".ls1.gamma") || path.ends_with(".ls2.gamma") { path.to_string() } else { norm_names(path) }
    }
    fn ignored(key: &str) -> bool {
        key.starts_with("head.") || key.starts_with("head_dist.")
    }
    fn prepare<S: ModuleStore>(&mut self, store: &mut S, path: &Path) -> Result<(), String> {
        self.pending_resample = fit_pos_embed(self, store, path)?;
        Ok(())
    }
    fn finish(&mut self) {
        if let Some((old, new)) = self.pending_resample.take() {
            self.resample_pos_embed(old, new);
        }
    }
    fn hint(&self, problem: &str) -> Option<&'static str> {
        (problem.contains("pos_embed") && !self.dynamic_img_size()).then_some(
            "a checkpoint made for another image size loads with dynamic_img_size = true, \
             which resamples its position embedding as timm does",
        )
    }
}

impl TimmModel for ResNet {
    const REMAPS: &'static [(&'static str, &'static str)] = &[
        (r"^conv1\.weight$", "stem.conv1.weight"),
        (r"^conv1\.0\.", "stem.conv1."),
        (r"^conv1\.1\.", "stem.bn_a."),
        (r"^conv1\.3\.", "stem.conv2."),
        (r"^conv1\.4\.", "stem.bn_b."),
        (r"^conv1\.6\.", "stem.conv3."),
        (r"\.downsample\.0\.", ".downsample.conv."),
        (r"\.downsample\.1\.", ".downsample.bn."),
    ];
    fn timm_name(&self, path: &str) -> String {
        // The first stem conv is `conv1.weight` in the default stem and
        // `conv1.0.weight` in a deep one; other stem paths exist only deep.
        let deep = path.starts_with("stem.") && (path != "stem.conv1.weight" || self.stem.conv2.is_some());
        let stem = if deep {
            let deep_stem = [
                ("stem.conv1.", "conv1.0."),
                ("stem.bn_a.", "conv1.1."),
                ("stem.conv2.", "conv1.3."),
                ("stem.bn_b.", "conv1.4."),
                ("stem.conv3.", "conv1.6."),
            ];
            unmap(path, &deep_stem)
        } else {
            path.replace("stem.conv1.", "conv1.")
        };
        norm_names(&unmap(&stem, &[(".downsample.conv.", ".downsample.0."), (".downsample.bn.", ".downsample.1.")]))
    }
    fn ignored(key: &str) -> bool {
        key.starts_with("fc.") || key.ends_with(".num_batches_tracked")
    }
}

impl TimmModel for ConvNext {
    const REMAPS: &'static [(&'static str, &'static str)] = &[
        (r"^stem\.0\.", "stem.conv."),
        (r"^stem\.1\.", "stem.norm.norm."),
        (r"\.downsample\.0\.", ".downsample.norm.norm."),
        (r"\.downsample\.1\.", ".downsample.conv."),
        (r"^head\.norm\.", "head.norm.norm."),
        (r"^norm_pre\.", "norm_pre.norm."),
    ];
    fn timm_name(&self, path: &str) -> String {
        let timm = unmap(
            path,
            &[
                ("stem.conv.", "stem.0."),
                ("stem.norm.norm.", "stem.1."),
                (".downsample.norm.norm.", ".downsample.0."),
                (".downsample.conv.", ".downsample.1."),
                ("head.norm.norm.", "head.norm."),
                ("norm_pre.norm.", "norm_pre."),
            ],
        );
        // A block's LayerScale is timm's `gamma`; every other gamma a norm's.
        if timm.ends_with(".gamma") && !timm.contains(".norm.") { timm } else { norm_names(&timm) }
    }
    fn ignored(key: &str) -> bool {
        key.starts_with("head.fc.")
    }
}

/// Loads a timm state dict (`.safetensors`, or `.pth`/`.pt`/`.bin`) into `model`.
pub fn load_timm_checkpoint<M: TimmModel>(model: &mut M, path: &Path) -> Result<LoadReport, EncoderError> {
    let file_error = |message: String| EncoderError::WeightsFile { path: path.to_path_buf(), message };
    if !path.is_file() {
        return Err(file_error("no such file".into()));
    }
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let mut remaps = KeyRemapper::new();
    for (from, to) in M::REMAPS {
        remaps = remaps.add_pattern(*from, *to).map_err(|e| file_error(format!("key remap {from:?}: {e}")))?;
    }
    let result = match extension.as_str() {
        "safetensors" => apply(
            model,
            SafetensorsStore::from_file(path)
                .with_from_adapter(PyTorchToBurnAdapter)
                .validate(false)
                .allow_partial(true)
                .skip_enum_variants(true)
                .remap(remaps),
            path,
        )
        .map_err(|e| file_error(format!("not a readable safetensors file: {e}")))?,
        "pth" | "pt" | "bin" => apply(
            model,
            PytorchStore::from_file(path).validate(false).allow_partial(true).skip_enum_variants(true).remap(remaps),
            path,
        )
        .map_err(|e| file_error(format!("not a readable PyTorch checkpoint: {e}")))?,
        other => {
            return Err(file_error(format!(
                "unknown weights format {other:?}: expected a .safetensors file or a PyTorch .pth/.pt/.bin state dict"
            )));
        }
    };
    let report = check_apply_result(model, path, result)?;
    model.finish();
    Ok(report)
}

/// Prepares `model` for the checkpoint in `store`, then loads it.
fn apply<M: TimmModel, S: ModuleStore>(model: &mut M, mut store: S, path: &Path) -> Result<ApplyResult, String> {
    model.prepare(&mut store, path)?;
    model.load_from(&mut store).map_err(|e| e.to_string())
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
    pub(crate) fn resample_pos_embed(&mut self, old: usize, new: usize) {
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

fn check_apply_result<M: TimmModel>(model: &M, path: &Path, result: ApplyResult) -> Result<LoadReport, EncoderError> {
    let mut problems = Vec::new();
    for (missing, _) in &result.missing {
        problems.push(format!("missing tensor `{}`", model.timm_name(missing)));
    }
    for error in &result.errors {
        // burn-store quotes the Burn path: name the tensor as timm does.
        let message = error.to_string();
        let message = match message.split('\'').nth(1) {
            Some(burn_path) => {
                message.replacen(&format!("'{burn_path}'"), &format!("`{}`", model.timm_name(burn_path)), 1)
            }
            None => message,
        };
        match model.hint(&message) {
            Some(hint) => problems.push(format!("{message} ({hint})")),
            None => problems.push(message),
        }
    }
    let (ignored, unexpected): (Vec<String>, Vec<String>) =
        result.unused.iter().map(|k| model.timm_name(k)).partition(|k| M::ignored(k));
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
