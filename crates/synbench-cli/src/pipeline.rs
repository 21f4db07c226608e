//! `synbench run`: data → encoder → probe → score, one scale at a time,
//! streaming batches so memory is bounded by the batch size, never by n.
//! Each finished scale is written at once, atomically (temp file + rename),
//! so a killed run loses at most the scale in progress and `--resume`
//! continues after the last finished one with identical numbers.
//!
//! Generation overlaps encoding: a generator thread draws the next batch
//! while the encoder works on the current one (a channel of depth one, so at
//! most three batches live at once). Where the encoder itself computes on
//! the CPU (a ViT on `cpu`, whose Burn backends fill every core), the
//! generator gets a one-thread pool of its own instead of rayon's global
//! pool, so its jobs neither queue behind the encoder's nor split its cores;
//! elsewhere (a GPU encoder, or the cheap identity and random projection) it
//! uses every core.

use std::fs;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use synbench_data::{Mixture, MixtureParams, Normalization, Split};
use synbench_models::{Encoder, Identity, RandomProjection, VitEncoder, WeightsSource};
use synbench_probe::ndarray::{ArrayView1, ArrayView2};
use synbench_probe::{BayesProbeParams, BayesProbeValidParams, ClassStatistics, ParamGuard};
use synbench_theory::{ScaleOutcome, raw_reference};
use tracing::info;

use crate::config::{self, ModelPlan, Plan};
use crate::logging;
use crate::output::{self, SavedRun, ScaleRecord, StageTimes};

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
            .and_then(|encoder| encoder.with_precision(plan.precision))
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
        .generator(plan.generator)
        .normalization(normalization)
        .check()?)
}

fn probe_params(plan: &Plan) -> Result<BayesProbeValidParams> {
    Ok(BayesProbeParams::new(plan.epsilons.clone())
        .attack(plan.norm)
        .averaging(plan.averaging)
        .estimator(plan.covariance)
        .check()?)
}

/// Stable 64-bit FNV-1a hash of the config as recorded, plus the generator
/// it resolves to (resume refuses a different config, and never mixes
/// scales drawn by two generators, as a 0.1 run folder would).
pub fn config_hash(plan: &Plan) -> String {
    let raw = serde_json::to_string(&plan.raw).expect("configs serialise");
    let text = format!("{raw}\ngenerator={}", config::name_of(&config::GENERATORS, plan.generator));
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// What a finished run wrote.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The output folder.
    pub dir: PathBuf,
    /// Every file written at the end (the per-scale files come before).
    pub files: Vec<PathBuf>,
    /// The run's score table.
    pub table: output::ScoreTable,
    /// Time per stage.
    pub times: StageTimes,
}

/// Runs the whole experiment and writes every output.
pub fn run(plan: &Plan, options: RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let mut encoder = build_encoder(plan)?;
    if encoder.input_shape() != plan.shape.as_slice() {
        bail!(
            "{}: `data.shape` {:?} does not fit the encoder, which takes {:?}",
            plan.file.display(),
            plan.shape,
            encoder.input_shape()
        );
    }
    let description = encoder.describe();
    info!(config = %plan.file.display(), encoder = %description, "starting run");
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
    let _bar_guard = logging::suspend_for(&bar);
    let mut times = StageTimes::default();
    let generator_pool = generator_pool(plan)?;
    let mut records = Vec::with_capacity(scales.len());
    for (index, &scale) in scales.iter().enumerate() {
        let path = scale_dir.join(format!("scale_{index:03}.json"));
        if options.resume
            && let Some(record) = output::read_scale(&path, &hash)?
        {
            info!(scale = index, s = %format!("{scale:.4}"), "resumed: already finished");
            bar.inc(per_scale);
            records.push(record);
            continue;
        }
        bar.set_message(format!("scale {}/{} (s = {scale:.2})", index + 1, scales.len()));
        let data = ScaleData { mixture: &mixture, pool: generator_pool.as_ref(), index, scale };
        let record = run_scale(plan, data, encoder.as_mut(), &probe, &bar, &mut times)?;
        output::write_scale(&path, &record, &hash)?;
        let accuracies: Vec<String> =
            record.epsilons.iter().map(|e| format!("{:.4}", e.outcome(plan.averaging).accuracy)).collect();
        info!(
            scale = index,
            s = %format!("{scale:.4}"),
            raw_accuracy = format!("{:.4}", record.raw.accuracy),
            accuracy_per_epsilon = accuracies.join(" "),
            "scale finished"
        );
        records.push(record);
    }
    bar.finish_and_clear();

    let scoring = Instant::now();
    let run = SavedRun::from_plan(plan, description, records);
    let table = run.table()?;
    // results.json carries the timings, so they are taken before it is written;
    // the time to write the outputs themselves is not in it.
    times.score = scoring.elapsed().as_secs_f64();
    times.wall = started.elapsed().as_secs_f64();
    times.peak_rss_mib = output::peak_rss_mib();
    let results = output::results_json(plan, &run, &hash, &times)?;
    let files = output::write_results(&run, &table, &results)?;
    info!(dir = %dir.display(), seconds = format!("{:.1}", times.wall), "results written");
    Ok(RunSummary { dir, files, table, times })
}

/// The generator's own thread pool where the encoder computes on the CPU
/// (see the module docs); `None`: rayon's global pool.
fn generator_pool(plan: &Plan) -> Result<Option<rayon::ThreadPool>> {
    if !(matches!(plan.model, ModelPlan::Vit { .. }) && plan.device == "cpu") {
        return Ok(None);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "synbench-generator".into())
        .build()
        .context("cannot start the generator's thread")?;
    Ok(Some(pool))
}

/// Where one scale's data comes from.
#[derive(Clone, Copy)]
struct ScaleData<'a> {
    mixture: &'a Mixture,
    /// The generator's thread pool; `None`: rayon's global pool.
    pool: Option<&'a rayon::ThreadPool>,
    index: usize,
    scale: f64,
}

/// The data of one scale, streamed: batches of a split are generated on a
/// second thread, encoded and handed to `fold`, one at a time.
struct ScaleStream<'a> {
    data: ScaleData<'a>,
    encoder: &'a mut dyn Encoder,
    batch_size: u64,
    bar: &'a ProgressBar,
    times: &'a mut StageTimes,
}

impl ScaleStream<'_> {
    fn for_each_batch(
        &mut self,
        split: Split,
        n: u64,
        mut fold: impl FnMut(ArrayView2<'_, f32>, ArrayView1<'_, u8>) -> synbench_probe::Result<()>,
    ) -> Result<()> {
        let (data, batch_size) = (self.data, self.batch_size);
        let scale_index = u32::try_from(data.index)?;
        std::thread::scope(|scope| {
            // Depth one: the generator stays one batch ahead of the encoder.
            let (sender, receiver) = mpsc::sync_channel(1);
            let generator = scope.spawn(move || {
                let mut spent = Duration::ZERO;
                let mut start = 0;
                while start < n {
                    let end = (start + batch_size).min(n);
                    let clock = Instant::now();
                    let generate = || data.mixture.generate(scale_index, data.scale, split, start..end);
                    let batch = match data.pool {
                        Some(pool) => pool.install(generate),
                        None => generate(),
                    };
                    spent += clock.elapsed();
                    if sender.send(batch).is_err() {
                        break; // the consumer stopped on an error
                    }
                    start = end;
                }
                spent
            });
            let mut consume = || -> Result<()> {
                for batch in receiver.iter() {
                    let clock = Instant::now();
                    let features = self.encoder.encode(batch.inputs.view())?;
                    let encoded = Instant::now();
                    fold(features.view(), batch.labels.view())?;
                    self.times.encoding += (encoded - clock).as_secs_f64();
                    self.times.statistics += encoded.elapsed().as_secs_f64();
                    self.times.images += batch.labels.len() as u64;
                    self.bar.inc(batch.labels.len() as u64);
                }
                Ok(())
            };
            let outcome = consume();
            drop(receiver);
            let spent = generator.join().expect("the generator thread does not panic");
            self.times.generation += spent.as_secs_f64();
            outcome
        })
    }
}

fn run_scale(
    plan: &Plan,
    data: ScaleData<'_>,
    encoder: &mut dyn Encoder,
    probe: &BayesProbeValidParams,
    bar: &ProgressBar,
    times: &mut StageTimes,
) -> Result<ScaleRecord> {
    let (index, scale) = (data.index, data.scale);
    let mut stats = ClassStatistics::new(encoder.output_dim());
    let mut stream = ScaleStream { data, encoder, batch_size: plan.batch_size as u64, bar, times };
    stream.for_each_batch(Split::Train, plan.n_train, |features, labels| stats.fold(features, labels))?;
    let clock = Instant::now();
    let fitted = probe.fit(&stats).with_context(|| format!("scale {index} (s = {scale}): cannot fit the probe"))?;
    stream.times.probe += clock.elapsed().as_secs_f64();
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
