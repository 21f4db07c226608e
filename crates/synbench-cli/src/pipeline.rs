//! `synbench run`: data → encoder → probe → score, one scale at a time,
//! streaming batches so memory is bounded by the batch size, never by n.
//! Each finished scale is written at once, atomically (temp file + rename),
//! so a killed run loses at most the scale in progress and `--resume`
//! continues after the last finished one with identical numbers.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use synbench_data::{Mixture, MixtureParams, Normalization, Split};
use synbench_models::{Encoder, Identity, RandomProjection, VitEncoder, WeightsSource};
use synbench_probe::ndarray::{ArrayView1, ArrayView2};
use synbench_probe::{
    AttackNorm, Averaging, BayesProbeParams, BayesProbeValidParams, ClassStatistics, CovarianceEstimator, ParamGuard,
};
use synbench_theory::{ScaleOutcome, ScoreMode, raw_reference, synbench_scores};

use crate::config::{ModelPlan, Plan};
use crate::output::{self, RunRecord, ScaleRecord};

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Continue after the last finished scale of an earlier run of the same config.
    pub resume: bool,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// Builds the encoder a plan names.
pub fn build_encoder(plan: &Plan) -> Result<Box<dyn Encoder>> {
    Ok(match &plan.model {
        ModelPlan::Identity => Box::new(Identity::new(plan.shape.clone())),
        ModelPlan::RandomProjection { output_dim } => {
            Box::new(RandomProjection::new(plan.shape.clone(), *output_dim, plan.model_seed)?)
        }
        ModelPlan::Vit { name, config, weights } => {
            let weights = match weights {
                Some(spec) => Some(
                    WeightsSource::parse(spec, &plan.base_dir)?
                        .resolve()
                        .with_context(|| format!("{}: `model.weights`", plan.file.display()))?,
                ),
                None => None,
            };
            let encoder = VitEncoder::new(
                name,
                config.clone(),
                weights.as_deref(),
                plan.backend.parse()?,
                plan.device.parse()?,
                plan.model_seed,
            )
            .with_context(|| format!("{}: cannot build the encoder", plan.file.display()))?;
            Box::new(encoder)
        }
    })
}

fn mixture(plan: &Plan) -> Result<Mixture> {
    let normalization = match &plan.normalize {
        Some((mean, std)) => Normalization::PerChannel { mean: mean.clone(), std: std.clone() },
        None => Normalization::None,
    };
    Ok(MixtureParams::with_shape(plan.shape.clone())
        .prior(plan.prior)
        .shift(plan.shift)
        .seed(plan.seed)
        .normalization(normalization)
        .check()?)
}

fn probe_params(plan: &Plan) -> Result<BayesProbeValidParams> {
    let attack = match plan.norm.as_str() {
        "linf" => AttackNorm::Linf,
        "l1" => AttackNorm::L1,
        _ => AttackNorm::L2,
    };
    let averaging = plan.averaging_mode();
    let estimator =
        if plan.covariance == "ledoit_wolf" { CovarianceEstimator::LedoitWolf } else { CovarianceEstimator::Pooled };
    Ok(BayesProbeParams::new(plan.epsilons.clone()).attack(attack).averaging(averaging).estimator(estimator).check()?)
}

/// Stable 64-bit FNV-1a hash of the config as recorded (resume refuses a
/// different config).
pub fn config_hash(plan: &Plan) -> String {
    let text = serde_json::to_string(&plan.raw).expect("configs serialise");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Runs the whole experiment and writes every output; returns the output folder.
pub fn run(plan: &Plan, options: RunOptions) -> Result<PathBuf> {
    let mut encoder = build_encoder(plan)?;
    if encoder.input_shape() != plan.shape.as_slice() {
        bail!(
            "{}: `data.shape` {:?} does not fit the encoder, which takes {:?}",
            plan.file.display(),
            plan.shape,
            encoder.input_shape()
        );
    }
    let mixture = mixture(plan)?;
    let probe = probe_params(plan)?;
    let hash = config_hash(plan);
    let dir = plan.output_dir.clone();
    let scale_dir = dir.join("scales");
    if !options.resume && scale_dir.exists() {
        fs::remove_dir_all(&scale_dir).with_context(|| format!("cannot clear {}", scale_dir.display()))?;
    }
    fs::create_dir_all(&scale_dir).with_context(|| format!("cannot create {}", scale_dir.display()))?;

    let scales = plan.scales.values();
    let per_scale = plan.n_train + plan.n_test;
    let bar = progress_bar(options.progress, per_scale * scales.len() as u64);
    let started = Instant::now();
    let mut records = Vec::with_capacity(scales.len());
    for (index, &scale) in scales.iter().enumerate() {
        let path = scale_dir.join(format!("scale_{index:03}.json"));
        if options.resume
            && let Some(record) = output::read_scale(&path, &hash)?
        {
            bar.inc(per_scale);
            records.push(record);
            continue;
        }
        bar.set_message(format!("scale {}/{} (s = {scale:.2})", index + 1, scales.len()));
        let record = run_scale(plan, &mixture, encoder.as_mut(), &probe, index, scale, &bar)?;
        output::write_scale(&path, &record, &hash)?;
        records.push(record);
    }
    bar.finish_and_clear();

    let record = RunRecord::new(plan, encoder.describe(), hash, records, started.elapsed().as_secs_f64())?;
    output::write_results(&dir, &record)?;
    Ok(dir)
}

/// The data of one scale, streamed: batches of a split are generated,
/// encoded and handed to `fold`, one at a time.
struct ScaleStream<'a> {
    mixture: &'a Mixture,
    encoder: &'a mut dyn Encoder,
    scale_index: u32,
    scale: f64,
    batch_size: u64,
    bar: &'a ProgressBar,
}

impl ScaleStream<'_> {
    fn for_each_batch(
        &mut self,
        split: Split,
        n: u64,
        mut fold: impl FnMut(ArrayView2<'_, f32>, ArrayView1<'_, u8>) -> synbench_probe::Result<()>,
    ) -> Result<()> {
        let mut start = 0;
        while start < n {
            let end = (start + self.batch_size).min(n);
            let data = self.mixture.generate(self.scale_index, self.scale, split, start..end);
            let features = self.encoder.encode(data.inputs.view())?;
            fold(features.view(), data.labels.view())?;
            self.bar.inc(end - start);
            start = end;
        }
        Ok(())
    }
}

fn run_scale(
    plan: &Plan,
    mixture: &Mixture,
    encoder: &mut dyn Encoder,
    probe: &BayesProbeValidParams,
    index: usize,
    scale: f64,
    bar: &ProgressBar,
) -> Result<ScaleRecord> {
    let mut stats = ClassStatistics::new(encoder.output_dim());
    let mut stream = ScaleStream {
        mixture,
        encoder,
        scale_index: u32::try_from(index)?,
        scale,
        batch_size: plan.batch_size as u64,
        bar,
    };
    stream.for_each_batch(Split::Train, plan.n_train, |features, labels| stats.fold(features, labels))?;
    let fitted = probe.fit(&stats).with_context(|| format!("scale {index} (s = {scale}): cannot fit the probe"))?;
    let mut evaluator = fitted.evaluator();
    stream.for_each_batch(Split::Test, plan.n_test, |features, labels| evaluator.fold(features, labels))?;
    let raw = raw_reference(scale)?;
    Ok(ScaleRecord {
        index,
        scale,
        raw: ScaleOutcome { accuracy: raw.accuracy, scaled_bound: raw.scaled_bound },
        epsilons: evaluator.finish(),
    })
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

/// Scores of per-scale records: one row per ε, per threshold.
pub fn score_records(
    records: &[ScaleRecord],
    epsilons: &[f64],
    thresholds: &[f64],
    averaging: Averaging,
    mode: ScoreMode,
) -> Result<Vec<Vec<f64>>> {
    let raw: Vec<ScaleOutcome> = records.iter().map(|r| r.raw).collect();
    (0..epsilons.len())
        .map(|e| {
            let rep: Vec<ScaleOutcome> = records.iter().map(|r| r.epsilons[e].outcome(averaging)).collect();
            Ok(synbench_scores(&rep, &raw, thresholds, mode)?)
        })
        .collect()
}
