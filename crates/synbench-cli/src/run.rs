//! `synbench run` and `synbench encode`: builds the plan's encoder (synbench-models) and drives a
//! [`synbench_experiment::Experiment`] with it — batches out, features
//! back — under a progress bar. The run itself (generation one batch ahead,
//! statistics, probe, scale files, resume, results) is the experiment's.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use synbench_experiment::config::Weights;
use synbench_experiment::{
    EncoderInfo, EncoderSpec, Experiment, ModelSpec, Plan, RunResult, StartOptions, StartPolicy,
};
use synbench_models::{
    BurnArchitecture, BurnEncoder, Encoder, EncoderError, Identity, LinearGaussian, RandomProjection,
};
use synbench_probe::ndarray::{Array2, Axis, Slice};
use tracing::info;

use crate::commands::{read_float_array, write_npy_atomic};
use crate::logging;

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Finished scales already in the output folder.
    pub policy: StartPolicy,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Write `report.html` at the end.
    pub report: bool,
}

/// Builds the encoder `spec` describes, named `name`, for samples of
/// A checkpoint's local path (downloaded first for `hf:`).
fn resolve(weights: Option<&Weights>, config: &Path) -> Result<Option<PathBuf>> {
    weights.map(|w| w.source.resolve().with_context(|| format!("{}: `model.weights`", config.display()))).transpose()
}

/// A Burn encoder of `arch` with the plan's weights, then `finish`ed.
fn burn<A: BurnArchitecture + 'static>(
    spec: &EncoderSpec,
    name: &str,
    arch: &A,
    weights: Option<&Weights>,
    config: &Path,
    finish: impl FnOnce(BurnEncoder<A>) -> Result<BurnEncoder<A>, EncoderError>,
) -> Result<Box<dyn Encoder>> {
    let weights = resolve(weights, config)?;
    let encoder = BurnEncoder::new(name, arch.clone(), weights.as_deref(), spec.backend, spec.device, spec.seed)
        .and_then(finish)
        .with_context(|| format!("{}: cannot build the encoder", config.display()))?;
    Ok(Box::new(encoder))
}

/// `shape` (identity, random projection and the CNNs take any shape; a ViT its own).
pub fn build_encoder(spec: &EncoderSpec, name: &str, shape: &[usize], config: &Path) -> Result<Box<dyn Encoder>> {
    Ok(match &spec.model {
        ModelSpec::Identity => Box::new(Identity::new(shape.to_vec())),
        ModelSpec::RandomProjection { output_dim } => {
            Box::new(RandomProjection::new(shape.to_vec(), *output_dim, spec.seed)?)
        }
        ModelSpec::LinearGaussian { spec: oracle } => {
            Box::new(LinearGaussian::new(shape.to_vec(), oracle.clone(), spec.seed)?)
        }
        // A ViT takes its own shape (a batch of another is refused, naming
        // it); the CNNs take the data's.
        ModelSpec::Vit { config: vit, weights } => {
            burn(spec, name, vit, weights.as_ref(), config, |e| e.with_precision(spec.precision))?
        }
        ModelSpec::ResNet { config: arch, weights } => {
            burn(spec, name, arch, weights.as_ref(), config, |e| e.with_input_shape(shape))?
        }
        ModelSpec::ConvNext { config: arch, weights } => {
            burn(spec, name, arch, weights.as_ref(), config, |e| e.with_input_shape(shape))?
        }
        ModelSpec::TorchScript { weights } => torchscript(weights, shape, spec.device, config)?,
        ModelSpec::External => {
            bail!("{}: an external model is driven from Python, not by `synbench run`", config.display())
        }
    })
}

/// A TorchScript module on LibTorch (only in a build with the `tch` feature).
#[cfg(feature = "tch")]
fn torchscript(
    weights: &synbench_experiment::Weights,
    shape: &[usize],
    device: synbench_models::DeviceKind,
    config: &Path,
) -> Result<Box<dyn Encoder>> {
    let path = weights.source.resolve().with_context(|| format!("{}: `model.weights`", config.display()))?;
    let encoder = synbench_models::TorchScriptEncoder::load(&path, shape, device)
        .with_context(|| format!("{}: cannot build the encoder", config.display()))?;
    Ok(Box::new(encoder))
}

#[cfg(not(feature = "tch"))]
fn torchscript(
    _: &synbench_experiment::Weights,
    _: &[usize],
    _: synbench_models::DeviceKind,
    config: &Path,
) -> Result<Box<dyn Encoder>> {
    bail!(
        "{}: arch \"torchscript\" runs on LibTorch, which this binary is built without; rebuild with \
         `--features tch` (`cargo xtask run CONFIG` does this from backend = \"tch\")",
        config.display()
    )
}

/// Runs the whole experiment and writes every output.
pub fn run(plan: Plan, options: RunOptions) -> Result<RunResult> {
    let mut encoder = build_encoder(&plan.encoder, &plan.model_name, plan.mixture.sample_shape(), &plan.file)?;
    if encoder.input_shape() != plan.mixture.sample_shape() {
        bail!(
            "{}: `data.shape` {:?} does not fit the encoder, which takes {:?}",
            plan.file.display(),
            plan.mixture.sample_shape(),
            encoder.input_shape()
        );
    }
    let info = EncoderInfo {
        expected_normalization: encoder.expected_normalization(),
        ..EncoderInfo::described(encoder.describe())
    };
    info!(config = %plan.file.display(), encoder = %info.description, "starting run");
    let start = StartOptions { report: options.report, ..StartOptions::for_plan(&plan, options.policy) };
    let mut experiment = Experiment::start(plan, info, start)?;
    let bar = progress_bar(options.progress, experiment.remaining_inputs());
    let _bar_guard = logging::suspend_for(&bar);
    let scales = experiment.plan().scales.len();
    while let Some(batch) = experiment.next_batch()? {
        bar.set_message(format!("scale {}/{scales} (s = {:.2})", batch.scale_index + 1, batch.scale));
        let features = encoder.encode(batch.inputs.view())?;
        for record in experiment.fold(&batch, features.view())? {
            let averaging = experiment.plan().averaging;
            let accuracies: Vec<String> =
                record.epsilons.iter().map(|e| format!("{:.4}", e.outcome(averaging).accuracy)).collect();
            info!(
                scale = record.index,
                s = %format!("{:.4}", record.scale),
                raw_accuracy = format!("{:.4}", record.raw.accuracy),
                accuracy_per_epsilon = accuracies.join(" "),
                "scale finished"
            );
        }
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    let result = experiment.finish()?;
    if let Some(dir) = &result.dir {
        info!(dir = %dir.display(), seconds = format!("{:.1}", result.results.provenance.seconds), "results written");
    }
    Ok(result)
}

fn progress_bar(enabled: bool, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if !enabled {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    bar.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:30}] {pos}/{len} images  {per_sec}  eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

// ------------------------------------------------------------------ encode

/// What `encode` did.
#[derive(Debug, Clone)]
pub struct EncodeSummary {
    /// The encoder in words.
    pub encoder: String,
    /// Rows encoded.
    pub samples: usize,
    /// Feature width.
    pub output_dim: usize,
}

/// Applies the config's model to `input` (`[N, C, H, W]` or `[N, d]` f32)
/// and writes features `[N, D]` f32 to `output`. Only `[model]` is read.
pub fn encode(config_path: &Path, input: &Path, output: &Path) -> Result<EncodeSummary> {
    let plan = synbench_experiment::config::load(config_path)?;
    let array = read_float_array(input)?;
    if array.ndim() < 2 || array.shape()[0] == 0 {
        bail!("{}: expected [N, C, H, W] or [N, d] with N > 0; found shape {:?}", input.display(), array.shape());
    }
    let sample_shape = array.shape()[1..].to_vec();
    // identity and random_projection take whatever the data is; a ViT its own shape.
    let mut encoder = build_encoder(&plan.encoder, &plan.model_name, &sample_shape, config_path)?;
    if encoder.input_shape() != sample_shape.as_slice() {
        bail!(
            "{}: samples of shape {sample_shape:?} do not fit the model of {}, which takes {:?} (array [N, {}])",
            input.display(),
            config_path.display(),
            encoder.input_shape(),
            encoder.input_shape().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        );
    }
    let n = array.shape()[0];
    let width: usize = sample_shape.iter().product();
    let flat = array.as_standard_layout().into_owned().into_shape_with_order((n, width))?;
    let mut features = Array2::<f32>::zeros((n, encoder.output_dim()));
    let batch = plan.encoder.batch_size.get();
    for start in (0..n).step_by(batch) {
        let end = (start + batch).min(n);
        let rows = Slice::from(start..end);
        let batch = encoder.encode(flat.slice_axis(Axis(0), rows))?;
        features.slice_axis_mut(Axis(0), rows).assign(&batch);
    }
    write_npy_atomic(output, &features)?;
    info!(input = %input.display(), output = %output.display(), n, "encoded");
    Ok(EncodeSummary { encoder: encoder.describe(), samples: n, output_dim: encoder.output_dim() })
}
