//! The streaming experiment: a state machine that never sees an encoder.
//!
//! It hands out batches ([`Experiment::next_batch`]: scale, split, inputs,
//! labels) and takes back their features ([`Experiment::fold`]); a driver —
//! the CLI with a Burn encoder, Python with any framework's model — owns the
//! forward pass and the loop, as quinn-proto's connection never touches a
//! socket. Per scale, train batches fold into class statistics; when the
//! train split is complete the probe is fitted; test batches are evaluated;
//! the finished scale is written atomically to `scales/scale_NNN.json`.
//! Memory is one scale's features — `(n_train + n_test) × D × 4` bytes, held
//! while the scale is in progress for its jackknife replicates and nested
//! refits — plus the `D × D` statistics and the batch.
//!
//! Batches are generated one ahead on a thread of its own (a channel of
//! depth one). Where the encoder computes on this machine's CPU (a ViT on
//! `cpu`, whose Burn backend fills every core), that thread draws with a
//! one-thread rayon pool of its own, so its jobs neither queue behind the
//! encoder's in the global pool nor split its cores; otherwise it uses the
//! global pool.
//!
//! Resume never loses work: the resolved plan is written to `run.json`
//! before the first scale; a folder holding finished scales of another plan
//! is refused with the changed fields listed, finished scales are reused
//! only when asked (`Resume`) and removed only when asked (`Restart`).

use std::num::NonZeroUsize;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::time::Instant;

use synbench_data::{Mixture, Normalization, Split};
use synbench_probe::AttackNorm;
use synbench_probe::jackknife::{self, HeldSplit, JACKKNIFE_GROUPS};
use synbench_probe::ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use synbench_theory::{ScaleOutcome, ScoreMode, population_estimable, smallest_estimable_n};

use crate::config::Plan;
use crate::error::{ConfigError, ExperimentError, Result};
use crate::io::{create_dir_all, write_json};
use crate::layout::{RESULT_SCHEMA, RESULTS_FILE, RUN_FILE, RUN_SCHEMA, SCALES_DIR, scale_files, scale_path};
use crate::options::Estimator;
use crate::resolved::{ResolvedPlan, RunFile};
use crate::saved::{SavedRun, read_scale};
use crate::schema::{
    CrateVersions, EpsilonScores, FiniteNJson, Interval, JsonF64, ModeIntervals, OutcomeJson, PopulationScores,
    Provenance, ResultsFile, ScaleFile, ScaleRecord, ScaleSummary, ScoredEpsilon, StageSeconds, peak_rss_mib,
};
use crate::scoring::{RunScores, Scored};
use crate::table::ScoreTable;
use crate::worker::{Context, DEFAULT_SCALES_IN_FLIGHT, Done, ScaleJob, WorkerThreads, Workers};

/// What to do with finished scales already in the output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPolicy {
    /// Start a new run; refuse a folder that holds finished scales.
    #[default]
    Fresh,
    /// Reuse the finished scales of this same plan; refuse another plan's.
    Resume,
    /// Delete the folder's scales and results, then start a new run.
    Restart,
}

impl StartPolicy {
    /// Every policy, the default first.
    pub const ALL: [Self; 3] = [Self::Fresh, Self::Resume, Self::Restart];

    /// The spelling front ends use (`"fresh"`, `"resume"`, `"restart"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Resume => "resume",
            Self::Restart => "restart",
        }
    }

    /// Whether the policy applies to `plan`: resume and restart need an output folder.
    pub fn check(self, plan: &Plan) -> std::result::Result<(), ConfigError> {
        if plan.output_dir.is_none() && self != Self::Fresh {
            return Err(ConfigError {
                file: plan.file.clone(),
                line: None,
                field: "output_dir".into(),
                message: format!("{} needs an output folder: without one the run stays in memory", self.name()),
            });
        }
        Ok(())
    }
}

/// The smallest `n_train` whose every jackknife refit leaves
/// `n − ⌈n/G⌉ − 2 > dim`.
fn smallest_with_estimable_replicates(dim: usize) -> u64 {
    let estimable = |n: u64| population_estimable(jackknife::smallest_replicate(n, JACKKNIFE_GROUPS), dim);
    // n − ⌈n/G⌉ grows without bound, so the search ends.
    (smallest_estimable_n(dim)..).find(|&n| estimable(n)).unwrap_or(u64::MAX)
}

/// Which rayon pool the generator thread draws with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeneratorThreads {
    /// Rayon's global pool (a GPU or cheap encoder leaves the cores free).
    Global,
    /// A pool of its own with this many threads (beside a CPU encoder).
    Own(usize),
}

impl GeneratorThreads {
    /// One own thread where the plan's encoder computes on the CPU, else the global pool.
    pub fn for_plan(plan: &Plan) -> Self {
        if plan.encoder.computes_on_cpu() { Self::Own(1) } else { Self::Global }
    }
}

/// What the driver says about its encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderInfo {
    /// The encoder in words, for results ("random init" where no weights were loaded).
    pub description: String,
    /// The normalisation its weights expect, if it knows.
    pub expected_normalization: Option<Normalization>,
    /// What ran it, where the plan's `[model] backend` does not say (an
    /// external model: `torch 2.9.0`); results record it as the backend.
    pub backend: Option<String>,
    /// Where it ran, likewise (`cuda:0`, `mps`); results record it as the device.
    pub device: Option<String>,
}

impl EncoderInfo {
    /// An encoder the plan describes fully: only its description.
    pub fn described(description: impl Into<String>) -> Self {
        Self { description: description.into(), expected_normalization: None, backend: None, device: None }
    }
}

/// How to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartOptions {
    /// Finished scales in the folder.
    pub policy: StartPolicy,
    /// The generator's pool.
    pub generator: GeneratorThreads,
    /// Inputs per batch handed out.
    pub batch_size: NonZeroUsize,
    /// Threads of the per-scale work ([`crate::worker`]).
    pub workers: WorkerThreads,
    /// Scales whose work may be in flight at once (their features are held
    /// meanwhile); 0 runs each scale's work inside the `fold` that finishes it.
    pub scales_in_flight: usize,
    /// Batches a driver may hold at once, folded oldest first (1: fold
    /// each before asking for the next; 2: a GPU pipeline's double buffer).
    pub batches_in_hand: NonZeroUsize,
    /// Whether `finish` writes `report.html` beside the other outputs ([`crate::report`]).
    pub report: bool,
}

impl StartOptions {
    /// The plan's batch size, generator pool and worker threads, with `policy`.
    pub fn for_plan(plan: &Plan, policy: StartPolicy) -> Self {
        Self {
            policy,
            generator: GeneratorThreads::for_plan(plan),
            batch_size: plan.encoder.batch_size,
            workers: WorkerThreads::for_plan(plan),
            scales_in_flight: DEFAULT_SCALES_IN_FLIGHT,
            batches_in_hand: NonZeroUsize::MIN,
            report: true,
        }
    }
}

impl WorkerThreads {
    /// Beside an encoder that computes on this machine's CPU (whose Burn
    /// backend fills every core), one thread; otherwise every core.
    pub fn for_plan(plan: &Plan) -> Self {
        if plan.encoder.computes_on_cpu() { Self::Own(1) } else { Self::AllCores }
    }
}

/// A batch of inputs handed out; hand it back to [`Experiment::fold`] with
/// its features.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Position of the scale in the grid.
    pub scale_index: usize,
    /// Mean scale s.
    pub scale: f64,
    /// Train or test.
    pub split: Split,
    /// Sample indices within the split.
    pub samples: Range<u64>,
    /// `[b, d]` inputs, each row a flattened sample (channel-major).
    pub inputs: Array2<f32>,
    /// `[b]` labels, 1 = class y = 1.
    pub labels: Array1<u8>,
    id: u64,
}

impl Batch {
    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether it has no rows (never handed out so).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// An error about this batch.
    fn error(&self, message: String) -> ExperimentError {
        ExperimentError::Batch { scale: Some(self.scale_index), batch: Some(self.describe()), message }
    }

    fn describe(&self) -> String {
        let split = match self.split {
            Split::Train => "train",
            Split::Test => "test",
        };
        format!(
            "batch of scale {} (s = {}), {split} samples {}..{}",
            self.scale_index, self.scale, self.samples.start, self.samples.end
        )
    }
}

struct Generated {
    batch: Batch,
    seconds: f64,
}

/// The scale whose batches are being folded.
struct Current {
    index: usize,
    scale: f64,
    /// Rows folded per split.
    folded: [u64; 2],
    /// The scale's features in fold order, for its work ([`crate::worker`]).
    /// Each split's features and labels, row `i` being sample `i` (allocated
    /// whole at the split's first batch, so a scale holds `n × D` floats per
    /// split and never a second copy).
    held: [Option<HeldSplit>; 2],
    /// Rows of each folded batch per split, in order.
    batches: [Vec<usize>; 2],
}

/// A run in progress.
pub struct Experiment {
    plan: Plan,
    resolved: ResolvedPlan,
    hash: String,
    encoder: EncoderInfo,
    warnings: Vec<String>,
    records: Vec<Option<ScaleRecord>>,
    receiver: Receiver<Generated>,
    current: Option<Current>,
    workers: Workers,
    /// Batches handed out and not folded yet, oldest first, with when.
    outstanding: std::collections::VecDeque<(u64, Instant)>,
    /// How many batches a driver may hold at once ([`StartOptions::batches_in_hand`]).
    in_hand: usize,
    /// Whether `finish` writes the report page.
    report: bool,
    /// When the last batch was folded (encoding time is counted once where batches overlap).
    last_fold: Option<Instant>,
    feature_dim: Option<usize>,
    /// The output folder's run lock, released on drop.
    _lock: Option<std::fs::File>,
    times: StageSeconds,
    images: u64,
    computed: usize,
    started: Instant,
    stopped: Option<String>,
}

impl std::fmt::Debug for Experiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Experiment")
            .field("model", &self.plan.model_name)
            .field("plan_hash", &self.hash)
            .field("finished", &self.finished_scales())
            .finish_non_exhaustive()
    }
}

impl Experiment {
    /// Prepares the output folder (see [`StartPolicy`]), writes `run.json`
    /// and starts the generator on the scales still to do.
    pub fn start(plan: Plan, encoder: EncoderInfo, options: StartOptions) -> Result<Self> {
        options.policy.check(&plan)?;
        let resolved = ResolvedPlan::of(&plan);
        let hash = resolved.hash();
        // One process per folder: the lock is held until the run ends or is dropped.
        let lock = match &plan.output_dir {
            Some(dir) => Some(
                crate::io::try_lock_run(dir)?
                    .ok_or_else(|| ExperimentError::Busy { dir: dir.clone(), lock: dir.join(crate::io::RUN_LOCK) })?,
            ),
            None => None,
        };
        let records = match &plan.output_dir {
            Some(dir) => prepare_dir(dir, &plan, &resolved, &hash, options.policy)?,
            None => vec![None; plan.scales.len()],
        };
        let mut warnings = Vec::new();
        if let Some(expected) = &encoder.expected_normalization
            && expected != plan.mixture.normalization()
        {
            warnings.push(format!(
                "the encoder's weights expect inputs normalised as {}, but `[data] normalize` gives {}",
                describe_normalization(expected),
                describe_normalization(plan.mixture.normalization())
            ));
        }
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        let pool = match options.generator {
            GeneratorThreads::Global => None,
            GeneratorThreads::Own(threads) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads.max(1))
                    .thread_name(|_| "synbench-generator".into())
                    .build()
                    .map_err(|e| ExperimentError::batch(format!("cannot start the generator's thread pool: {e}")))?,
            ),
        };
        let output = plan.output_dir.clone().map(|dir| (dir, hash.clone()));
        let workers =
            Workers::new(options.workers, options.scales_in_flight, Context { probe: plan.probe.clone(), output })?;
        let todo: Vec<(usize, f64)> = plan
            .scales
            .values()
            .iter()
            .enumerate()
            .filter(|(i, _)| records[*i].is_none())
            .map(|(i, &s)| (i, s))
            .collect();
        let receiver = spawn_generator(
            Arc::new(plan.mixture.clone()),
            pool,
            todo,
            [plan.n_train, plan.n_test],
            options.batch_size.get() as u64,
        )?;
        Ok(Self {
            plan,
            resolved,
            hash,
            encoder,
            warnings,
            records,
            receiver,
            current: None,
            workers,
            outstanding: std::collections::VecDeque::new(),
            in_hand: options.batches_in_hand.get(),
            report: options.report,
            last_fold: None,
            feature_dim: None,
            _lock: lock,
            times: StageSeconds::default(),
            images: 0,
            computed: 0,
            started: Instant::now(),
            stopped: None,
        })
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The resolved plan (as in `run.json`).
    pub fn resolved_plan(&self) -> &ResolvedPlan {
        &self.resolved
    }

    /// Hash of the resolved plan.
    pub fn plan_hash(&self) -> &str {
        &self.hash
    }

    /// Warnings for the log and for results.json.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Indices of the finished scales (resumed or computed).
    pub fn finished_scales(&self) -> Vec<usize> {
        self.records.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| i).collect()
    }

    /// Indices of the scales not finished yet (their work may be in flight).
    pub fn unfinished_scales(&self) -> Vec<usize> {
        self.records.iter().enumerate().filter(|(_, r)| r.is_none()).map(|(i, _)| i).collect()
    }

    /// Indices of the scales still waiting for batches; `finish` needs this
    /// empty (it waits for the scales whose work is in flight).
    pub fn scales_awaiting_batches(&self) -> Vec<usize> {
        let in_flight = self.workers.in_flight();
        self.unfinished_scales().into_iter().filter(|i| !in_flight.contains(i)).collect()
    }

    /// Inputs still to hand out (for a progress bar), counting the batch in hand.
    pub fn remaining_inputs(&self) -> u64 {
        let per_scale = self.plan.n_train + self.plan.n_test;
        let left = self.records.iter().filter(|r| r.is_none()).count() as u64 * per_scale;
        let in_flight = self.workers.in_flight().len() as u64 * per_scale;
        let done_in_current = self.current.as_ref().map_or(0, |c| c.folded[0] + c.folded[1]);
        left - in_flight - done_in_current
    }

    /// The next batch to encode, or `None` when every scale is finished.
    /// A driver holds at most [`StartOptions::batches_in_hand`] batches
    /// (default 1: each batch is folded before the next is asked for; a GPU
    /// pipeline holds 2, computing one while folding the other) and folds
    /// them in the order they were handed out.
    pub fn next_batch(&mut self) -> Result<Option<Batch>> {
        self.check_running()?;
        let finished = self.workers.finished();
        self.collect(finished)?;
        if self.outstanding.len() >= self.in_hand {
            let ids: Vec<String> = self.outstanding.iter().map(|(id, _)| id.to_string()).collect();
            return Err(ExperimentError::batch(if self.in_hand == 1 {
                format!("batch {} was handed out but not folded: fold each batch before asking for the next", ids[0])
            } else {
                format!(
                    "batches {} were handed out but not folded: at most {} batches in hand, fold the oldest first",
                    ids.join(", "),
                    self.in_hand
                )
            }));
        }
        let waited = Instant::now();
        let Ok(generated) = self.receiver.recv() else {
            // The generator has drawn every batch of every scale: the last
            // scales' work finishes in `finish`.
            return Ok(None);
        };
        self.times.waiting += waited.elapsed().as_secs_f64();
        self.times.generation += generated.seconds;
        let batch = generated.batch;
        self.outstanding.push_back((batch.id, Instant::now()));
        Ok(Some(batch))
    }

    /// Folds the features of the oldest batch in hand: `[b, D]`, one row
    /// per input, finite. A scale's last batch hands its probe work to the
    /// worker pool ([`crate::worker`]; this call waits only when the
    /// configured number of scales is already in flight). Returns the
    /// records of the scales whose work finished since the last call (each
    /// on disk by then), in the order they finished. A rejected batch
    /// changes nothing: fold it again with correct features.
    pub fn fold(&mut self, batch: &Batch, features: ArrayView2<'_, f32>) -> Result<Vec<ScaleRecord>> {
        self.check_running()?;
        let handed_out = match self.outstanding.front() {
            Some(&(id, at)) if id == batch.id => at,
            Some(&(id, _)) => {
                let which = if self.in_hand == 1 { "the batch handed out last" } else { "the oldest batch in hand" };
                return Err(batch.error(format!(
                    "{} is not {which} (batch {id}): fold each batch once, in order",
                    batch.describe()
                )));
            }
            None => {
                return Err(batch.error(format!(
                    "{} was already folded, or never handed out by this experiment",
                    batch.describe()
                )));
            }
        };
        let encoded = Instant::now();
        self.check_features(batch, &features)?;
        let since = self.last_fold.map_or(handed_out, |last| last.max(handed_out));
        self.times.encoding += encoded.saturating_duration_since(since).as_secs_f64();
        self.last_fold = Some(encoded);
        self.outstanding.pop_front();
        match self.fold_checked(batch, features) {
            Ok(done) => Ok(done),
            Err(e) => {
                self.stopped = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn check_running(&self) -> Result<()> {
        match &self.stopped {
            Some(message) => Err(ExperimentError::Stopped(message.clone())),
            None => Ok(()),
        }
    }

    fn check_features(&self, batch: &Batch, features: &ArrayView2<'_, f32>) -> Result<()> {
        if features.nrows() != batch.len() {
            return Err(batch.error(format!(
                "features for the {} have {} rows, expected {} (one per input)",
                batch.describe(),
                features.nrows(),
                batch.len()
            )));
        }
        if features.ncols() == 0 {
            return Err(batch.error(format!("features for the {} have no columns", batch.describe())));
        }
        if let Some(dim) = self.feature_dim
            && features.ncols() != dim
        {
            return Err(batch.error(format!(
                "features for the {} have {} columns, but earlier batches had {dim}: an encoder gives one width",
                batch.describe(),
                features.ncols()
            )));
        }
        if let Some(((row, col), value)) = features.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(batch.error(format!(
                "features for the {} are not finite: [{row}, {col}] is {value} (check the encoder for overflow, e.g. in float16)",
                batch.describe()
            )));
        }
        Ok(())
    }

    /// Records the feature width of the first batch and checks what it
    /// decides: the population estimate needs `n_train − 2 > D` (SPEC §7),
    /// an error when it is the headline estimator (before any scale is
    /// spent), a warning otherwise.
    fn first_features(&mut self, dim: usize) -> Result<usize> {
        self.feature_dim = Some(dim);
        let n = self.plan.n_train;
        if self.plan.probe.attack() != AttackNorm::L2 {
            return Ok(dim);
        }
        if population_estimable(n, dim) {
            let replicate = jackknife::smallest_replicate(n, JACKKNIFE_GROUPS);
            if !population_estimable(replicate, dim) {
                let warning = format!(
                    "the population estimate's interval needs its jackknife refits ({replicate} of data.n_train = {n} \
                     samples) to have more train samples than feature dimensions ({dim}): it is reported without a \
                     standard error (n_train ≥ {} gives one)",
                    smallest_with_estimable_replicates(dim)
                );
                tracing::warn!("{warning}");
                self.warnings.push(warning);
            }
            return Ok(dim);
        }
        let why = format!(
            "the population estimate needs more train samples than feature dimensions (n_train − 2 > D), \
             but data.n_train = {n} and the encoder's features are {dim} wide, so the pooled covariance is singular"
        );
        if self.plan.estimator == Estimator::Population {
            return Err(ConfigError {
                file: self.plan.file.clone(),
                line: None,
                field: "score.estimator".into(),
                message: format!(
                    "{why}; set data.n_train ≥ {} or estimator = \"reference\"",
                    smallest_estimable_n(dim)
                ),
            }
            .into());
        }
        let warning = format!(
            "{why}: results carry the reference estimator only (n_train ≥ {} gives both)",
            smallest_estimable_n(dim)
        );
        tracing::warn!("{warning}");
        self.warnings.push(warning);
        Ok(dim)
    }

    fn fold_checked(&mut self, batch: &Batch, features: ArrayView2<'_, f32>) -> Result<Vec<ScaleRecord>> {
        let dim = match self.feature_dim {
            Some(dim) => dim,
            None => self.first_features(features.ncols())?,
        };
        let sizes = [self.plan.n_train, self.plan.n_test];
        if self.current.as_ref().is_none_or(|c| c.index != batch.scale_index) {
            self.current = Some(Current {
                index: batch.scale_index,
                scale: batch.scale,
                folded: [0, 0],
                held: [None, None],
                batches: [Vec::new(), Vec::new()],
            });
        }
        let current = self.current.as_mut().expect("set above");
        let split = usize::from(batch.split == Split::Test);
        let rows = sizes[split] as usize;
        let held = current.held[split]
            .get_or_insert_with(|| HeldSplit { features: Array2::zeros((rows, dim)), labels: Array1::zeros(rows) });
        let at = current.folded[split] as usize..current.folded[split] as usize + batch.len();
        held.features.slice_axis_mut(Axis(0), Slice::from(at.clone())).assign(&features);
        held.labels.slice_axis_mut(Axis(0), Slice::from(at)).assign(&batch.labels);
        current.folded[split] += batch.len() as u64;
        current.batches[split].push(batch.len());
        self.images += batch.len() as u64;
        let finished = if current.folded == sizes {
            let Some(Current { index, scale, held, batches, .. }) = self.current.take() else { unreachable!() };
            let splits = held.map(|split| {
                split.unwrap_or_else(|| HeldSplit { features: Array2::zeros((0, dim)), labels: Array1::zeros(0) })
            });
            self.workers.submit(ScaleJob { index, scale, splits, batches })
        } else {
            self.workers.finished()
        };
        self.collect(finished)
    }

    /// Takes in the scales whose work finished: their records, their
    /// workers' times; the first error stops the run (the other scales'
    /// records are kept, and on disk).
    fn collect(&mut self, finished: Vec<Done>) -> Result<Vec<ScaleRecord>> {
        let mut records = Vec::with_capacity(finished.len());
        let mut error = None;
        for done in finished {
            self.times.statistics += done.statistics;
            self.times.probe += done.probe;
            match done.outcome {
                Ok(record) => {
                    self.records[done.index] = Some(record.clone());
                    self.computed += 1;
                    records.push(record);
                }
                Err(e) => error = error.or(Some(e)),
            }
        }
        match error {
            Some(e) => {
                self.stopped = Some(e.to_string());
                Err(e)
            }
            None => Ok(records),
        }
    }

    /// Scores the finished run and, with an output folder, writes
    /// scores.csv, table.md, the figures, report.html (unless
    /// [`StartOptions::report`] is off) and results.json: the run read
    /// back, scored once, its results file, its outputs.
    pub fn finish(mut self) -> Result<RunResult> {
        self.check_running()?;
        let finished = self.workers.wait_all();
        self.collect(finished)?;
        let missing = self.unfinished_scales();
        if !missing.is_empty() {
            return Err(ExperimentError::NotFinished { missing });
        }
        let scoring = Instant::now();
        let records: Vec<ScaleRecord> = std::mem::take(&mut self.records).into_iter().flatten().collect();
        let dir = self.plan.output_dir.clone();
        let saved = SavedRun::from_plan(
            dir.clone().unwrap_or_default(),
            &self.resolved,
            self.encoder.description.clone(),
            records,
        )?;
        let scores = saved.scores()?;
        let oracle = oracle_scores(&self.plan, &saved)?;
        self.times.score = scoring.elapsed().as_secs_f64();
        let results = self.results_file(&saved, &scores, oracle);
        let files = match &dir {
            Some(_) => write_outputs(&saved, &scores, &results, self.report)?,
            None => Vec::new(),
        };
        Ok(RunResult { dir, files, table: saved.table_of(&scores), results, scores, saved })
    }

    /// Where the run came from: versions, device, seeds, times, memory.
    fn provenance(&self) -> Provenance {
        let (mut times, r) = (self.times, &self.resolved);
        times.workers_wait = self.workers.waited;
        Provenance {
            synbench_version: env!("CARGO_PKG_VERSION").into(),
            crate_versions: CrateVersions {
                synbench: env!("CARGO_PKG_VERSION").into(),
                burn: synbench_models::BURN_VERSION.into(),
            },
            git_hash: option_env!("SYNBENCH_GIT_HASH").unwrap_or("unknown").into(),
            backend: self.encoder.backend.clone().unwrap_or_else(|| r.model.backend.clone()),
            device: self.encoder.device.clone().unwrap_or_else(|| r.model.device.clone()),
            precision: r.model.precision.clone(),
            data_seed: r.data.seed,
            data_generator: r.data.generator.clone(),
            generator_revision: r.generator_revision,
            model_seed: r.model.seed,
            config_file: self.plan.file.display().to_string(),
            plan_hash: self.hash.clone(),
            finished_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            seconds: self.started.elapsed().as_secs_f64(),
            stage_seconds: times,
            scales_computed: self.computed,
            images_encoded: self.images,
            encoder_images_per_second: (times.encoding > 0.0).then(|| self.images as f64 / times.encoding),
            peak_rss_mib: peak_rss_mib(),
        }
    }

    /// `results.json` of the run `saved`, scored as `scores`.
    fn results_file(&self, saved: &SavedRun, scores: &RunScores, oracle: Option<Vec<EpsilonScores>>) -> ResultsFile {
        ResultsFile {
            schema: RESULT_SCHEMA.into(),
            provenance: self.provenance(),
            plan: self.resolved.clone(),
            model: saved.model.clone(),
            encoder: saved.encoder.clone(),
            feature_dim: self.feature_dim,
            averaging: saved.averaging.name().into(),
            epsilons: saved.epsilons.clone(),
            thresholds: scores.scoring.thresholds.clone(),
            scales: scale_summaries(saved),
            scores: epsilon_scores(scores),
            score_mode: scores.scoring.mode.name().into(),
            score_estimator: scores.headline.name().into(),
            best_epsilon: scores.best_epsilons(),
            warnings: self.warnings.clone(),
            finite_n: scores
                .finite_n
                .iter()
                .map(|f| FiniteNJson {
                    n_train: f.n_train,
                    reference: f.reference.iter().map(|s| json_scores(&s.scores)).collect(),
                    population: f.population.as_ref().map(|p| p.iter().map(|s| json_scores(&s.scores)).collect()),
                })
                .collect(),
            oracle,
        }
    }
}

/// Per scale, the accuracy and bound of each ε in the run's averaging.
fn scale_summaries(saved: &SavedRun) -> Vec<ScaleSummary> {
    saved
        .records
        .iter()
        .map(|rec| ScaleSummary {
            index: rec.index,
            scale: rec.scale,
            raw: OutcomeJson::from(rec.raw),
            representation: rec
                .epsilons
                .iter()
                .map(|e| {
                    let o = e.outcome(saved.averaging);
                    ScoredEpsilon { epsilon: e.epsilon, accuracy: o.accuracy, bound: o.scaled_bound }
                })
                .collect(),
        })
        .collect()
}

/// Per ε, both modes' scores of both estimators with their intervals.
fn epsilon_scores(scores: &RunScores) -> Vec<EpsilonScores> {
    let reference = &scores.reference;
    scores
        .epsilons
        .iter()
        .enumerate()
        .map(|(e, &epsilon)| EpsilonScores {
            epsilon,
            reference: json_scores(&reference.reference[e].scores),
            exact: json_scores(&reference.exact[e].scores),
            uncertainty: mode_intervals(&reference.reference[e], &reference.exact[e]),
            population: scores.population.as_ref().map(|p| PopulationScores {
                reference: json_scores(&p.reference[e].scores),
                exact: json_scores(&p.exact[e].scores),
                uncertainty: mode_intervals(&p.reference[e], &p.exact[e]),
            }),
        })
        .collect()
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The output folder, if the plan has one.
    pub dir: Option<PathBuf>,
    /// Files written at the end (the scale files and run.json come before).
    pub files: Vec<PathBuf>,
    /// The run's headline score table, in its configured mode.
    pub table: ScoreTable,
    /// What results.json holds.
    pub results: ResultsFile,
    /// Every score of the run (both estimators and modes, finite-n, bands).
    pub scores: RunScores,
    /// The run as `synbench score` reads it back.
    pub saved: SavedRun,
}

impl RunResult {
    /// Writes the whole run folder into `dir` — run.json, the scale files,
    /// scores.csv, table.md, the figures, report.html, results.json —
    /// exactly as a run with that output folder writes it.
    pub fn save(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let plan_hash = &self.results.provenance.plan_hash;
        create_dir_all(&dir.join(SCALES_DIR))?;
        write_json(
            &dir.join(RUN_FILE),
            &RunFile {
                schema: RUN_SCHEMA.into(),
                plan_hash: plan_hash.clone(),
                config_file: self.results.provenance.config_file.clone(),
                plan: self.results.plan.clone(),
            },
        )?;
        for record in &self.saved.records {
            write_json(&scale_path(dir, record.index), &ScaleFile::new(record, plan_hash))?;
        }
        let mut saved = self.saved.clone();
        saved.dir = dir.to_path_buf();
        write_outputs(&saved, &self.scores, &self.results, true)
    }
}

/// Writes a finished run's outputs into its folder: scores.csv, table.md,
/// the figures, with `report` report.html, then results.json last (a folder
/// with results.json is complete); their paths.
fn write_outputs(saved: &SavedRun, scores: &RunScores, results: &ResultsFile, report: bool) -> Result<Vec<PathBuf>> {
    let mut written = saved.write_tables_and_figures(scores)?;
    if report {
        written.push(crate::report::write_run(saved, scores, Some(results))?);
    }
    let path = saved.dir.join(RESULTS_FILE);
    write_json(&path, results)?;
    written.push(path);
    Ok(written)
}

/// The oracle's closed-form scores per ε in both modes (module `oracle`).
fn oracle_scores(plan: &Plan, saved: &SavedRun) -> Result<Option<Vec<EpsilonScores>>> {
    let thresholds = &saved.thresholds;
    let Some(closed) = crate::oracle::closed_form(plan) else { return Ok(None) };
    let raw: Vec<ScaleOutcome> = saved.records.iter().map(|r| r.raw).collect();
    let mut scores = Vec::new();
    for (&epsilon, outcomes) in saved.epsilons.iter().zip(&closed) {
        let score = |mode| synbench_theory::synbench_scores(outcomes, &raw, thresholds, mode);
        scores.push(EpsilonScores {
            epsilon,
            reference: json_scores(&score(ScoreMode::Reference)?),
            exact: json_scores(&score(ScoreMode::Exact)?),
            uncertainty: None,
            population: None,
        });
    }
    Ok(Some(scores))
}

fn json_scores(v: &[f64]) -> Vec<JsonF64> {
    v.iter().map(|&s| JsonF64(s)).collect()
}

fn interval(row: &Scored) -> Interval {
    let bounds: Vec<(f64, f64)> = (0..row.scores.len()).map(|t| row.interval(t)).collect();
    Interval {
        stderr: json_scores(&row.stderr),
        ci_low: bounds.iter().map(|b| JsonF64(b.0)).collect(),
        ci_high: bounds.iter().map(|b| JsonF64(b.1)).collect(),
    }
}

/// The intervals of a row in both modes; `None` when no replicate was kept.
fn mode_intervals(reference: &Scored, exact: &Scored) -> Option<ModeIntervals> {
    reference.has_stderr().then(|| ModeIntervals { reference: interval(reference), exact: interval(exact) })
}

fn describe_normalization(n: &Normalization) -> String {
    match n {
        Normalization::None => "none (raw samples)".into(),
        Normalization::PerChannel { mean, std } => format!("mean {mean:?}, std {std:?}"),
    }
}

/// Applies `policy` to the output folder, writes run.json, and returns the
/// finished scales to reuse (by index).
fn prepare_dir(
    dir: &Path,
    plan: &Plan,
    resolved: &ResolvedPlan,
    hash: &str,
    policy: StartPolicy,
) -> Result<Vec<Option<ScaleRecord>>> {
    let run_path = dir.join(RUN_FILE);
    let mut records = vec![None; plan.scales.len()];
    if policy == StartPolicy::Restart {
        for path in scale_files(dir)? {
            std::fs::remove_file(&path).map_err(|e| ExperimentError::io(&path, "cannot remove", e))?;
        }
        for path in [run_path.clone(), dir.join(RESULTS_FILE)] {
            if path.exists() {
                std::fs::remove_file(&path).map_err(|e| ExperimentError::io(&path, "cannot remove", e))?;
            }
        }
    }
    let finished = scale_files(dir)?;
    if run_path.is_file() {
        // Read as written (not checked): a hand-edited plan is listed field by field below.
        let old: RunFile = crate::io::read_json(&run_path)?;
        if old.plan_hash != hash && !finished.is_empty() {
            let mut changes: Vec<String> = resolved.changes_from(&old.plan).iter().map(|c| c.to_string()).collect();
            if changes.is_empty() {
                changes.push(format!("plan_hash: {:?} → {hash:?} (run.json was edited by hand?)", old.plan_hash));
            }
            return Err(ExperimentError::PlanChanged {
                dir: dir.to_path_buf(),
                finished: finished.len(),
                changes,
                resume: policy == StartPolicy::Resume,
            });
        }
        if old.plan_hash == hash && !finished.is_empty() && policy == StartPolicy::Fresh {
            return Err(ExperimentError::AlreadyStarted {
                dir: dir.to_path_buf(),
                finished: finished.len(),
                total: plan.scales.len(),
            });
        }
    } else if !finished.is_empty() {
        return Err(ExperimentError::UnknownScales { dir: dir.to_path_buf(), count: finished.len() });
    }
    if policy == StartPolicy::Resume {
        for path in &finished {
            let record = read_scale(path, resolved, hash).map_err(|e| match e {
                ExperimentError::CorruptScale { path, field, message, .. } => {
                    let recompute = format!("rm {} && synbench run {} --resume", path.display(), plan.file.display());
                    ExperimentError::CorruptScale { path, field, message, recompute: Some(recompute) }
                }
                other => other,
            })?;
            tracing::info!(scale = record.index, s = record.scale, "resumed: already finished");
            let index = record.index;
            records[index] = Some(record);
        }
    }
    create_dir_all(&dir.join(SCALES_DIR))?;
    write_json(
        &run_path,
        &RunFile {
            schema: RUN_SCHEMA.into(),
            plan_hash: hash.into(),
            config_file: plan.file.display().to_string(),
            plan: resolved.clone(),
        },
    )?;
    Ok(records)
}

/// Draws every batch of the scales `todo`, train then test, one batch ahead
/// of the consumer; stops when the consumer goes away.
fn spawn_generator(
    mixture: Arc<Mixture>,
    pool: Option<rayon::ThreadPool>,
    todo: Vec<(usize, f64)>,
    sizes: [u64; 2],
    batch_size: u64,
) -> Result<Receiver<Generated>> {
    let (sender, receiver) = sync_channel(1);
    std::thread::Builder::new()
        .name("synbench-batches".into())
        .spawn(move || {
            let mut id = 0;
            for (index, scale) in todo {
                let scale_index = u32::try_from(index).expect("fewer than 2^32 scales");
                for (split, n) in [Split::Train, Split::Test].into_iter().zip(sizes) {
                    let mut start = 0;
                    while start < n {
                        let end = (start + batch_size).min(n);
                        let clock = Instant::now();
                        let generate = || mixture.generate(scale_index, scale, split, start..end);
                        let drawn = match &pool {
                            Some(pool) => pool.install(generate),
                            None => generate(),
                        };
                        let seconds = clock.elapsed().as_secs_f64();
                        let batch = Batch {
                            scale_index: index,
                            scale,
                            split,
                            samples: start..end,
                            inputs: drawn.inputs,
                            labels: drawn.labels,
                            id,
                        };
                        if sender.send(Generated { batch, seconds }).is_err() {
                            return; // the experiment was dropped
                        }
                        id += 1;
                        start = end;
                    }
                }
            }
        })
        .map_err(|e| ExperimentError::batch(format!("cannot start the generator thread: {e}")))?;
    Ok(receiver)
}
