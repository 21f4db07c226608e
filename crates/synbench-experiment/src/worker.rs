//! Per-scale work off the caller's path.
//!
//! A driver's calls — [`crate::Experiment::next_batch`] and
//! [`crate::Experiment::fold`] — only hand batches out and copy features in.
//! When a scale's last batch is folded, its whole probe work — the class
//! statistics (folded batch by batch, as the batches came), the fit, the
//! population estimate, the evaluation of the test split with its jackknife
//! groups, the delete-a-group refits, the nested refits and the scale file —
//! becomes a [`ScaleJob`] for a rayon pool of its own ([`Workers`]), whose
//! threads also run one scale's refits in parallel, while the caller goes on
//! with the next scale and the accelerator never waits for the CPU.
//!
//! Memory is bounded: at most `limit` scales are in flight (each holds its
//! `(n_train + n_test) × D × 4` bytes of features); the caller blocks only
//! when the bound is reached. A job's outcome — its record, or its error
//! with the scale named — reaches the caller at its next call or at
//! `finish`; a scale whose work failed is not written. Dropping the workers
//! waits for the jobs in flight, so their scales land on disk; a killed
//! process loses only the scales still unfinished, as before.
//!
//! [`compute`] is the one implementation of a scale's work, on a worker or
//! (with `limit = 0`) on the caller's thread: every floating-point operation
//! happens in the same order as when the work ran inside `fold`, the refits
//! are independent of each other, and faer runs single-threaded, so the
//! scale files are byte-identical whatever the thread count.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use synbench_probe::jackknife::{self, HeldSplit, JACKKNIFE_GROUPS};
use synbench_probe::ndarray::{ArrayView1, ArrayView2, Axis, Slice};
use synbench_probe::{BayesProbeValidParams, ClassStatistics};
use synbench_theory::raw_reference;

use crate::error::{ExperimentError, Result};
use crate::io::write_json;
use crate::layout::scale_path;
use crate::schema::{ScaleFile, ScaleRecord};

/// Scales in flight by default: two scales' features beside the one being
/// folded.
pub const DEFAULT_SCALES_IN_FLIGHT: usize = 2;

/// How many threads the per-scale work gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerThreads {
    /// Every core: the encoder computes elsewhere (a GPU, another process)
    /// or costs nothing.
    AllCores,
    /// This many (beside an encoder that computes on this machine's CPU).
    Own(usize),
}

impl WorkerThreads {
    /// The thread count on this machine.
    pub fn count(self) -> usize {
        match self {
            Self::AllCores => std::thread::available_parallelism().map_or(1, usize::from),
            Self::Own(n) => n.max(1),
        }
    }
}

/// What a scale's work needs besides its features.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// The probe.
    pub probe: BayesProbeValidParams,
    /// Where the scale files go, with the plan hash they carry.
    pub output: Option<(PathBuf, String)>,
}

/// One scale's features, held in fold order, and how they were batched.
#[derive(Debug)]
pub(crate) struct ScaleJob {
    /// Position of the scale in the grid.
    pub index: usize,
    /// Mean scale s.
    pub scale: f64,
    /// Train and test split, row `i` being sample `i`.
    pub splits: [HeldSplit; 2],
    /// Rows of each batch per split, in fold order.
    pub batches: [Vec<usize>; 2],
}

/// A scale's outcome and where its time went.
#[derive(Debug)]
pub(crate) struct Done {
    /// Position of the scale in the grid.
    pub index: usize,
    /// Its record (written to disk by then), or what went wrong.
    pub outcome: Result<ScaleRecord>,
    /// Seconds folding statistics and evaluating the test split.
    pub statistics: f64,
    /// Seconds fitting and refitting the probe.
    pub probe: f64,
}

/// `split`'s rows in the batches they were folded in (`rows` per batch, in order).
fn in_batches<'a>(
    split: &'a HeldSplit,
    rows: &'a [usize],
) -> impl Iterator<Item = (ArrayView2<'a, f32>, ArrayView1<'a, u8>)> + 'a {
    rows.iter().scan(0, move |at, &n| {
        let slice = Slice::from(*at..*at + n);
        *at += n;
        Some((split.features.slice_axis(Axis(0), slice), split.labels.slice_axis(Axis(0), slice)))
    })
}

/// A scale's whole probe work (module doc), in the order it ran inside `fold`.
pub(crate) fn compute(job: ScaleJob, context: &Context) -> Done {
    let (index, scale) = (job.index, job.scale);
    let mut seconds = Seconds::default();
    let outcome = catch_unwind(AssertUnwindSafe(|| work(job, context, &mut seconds))).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into());
        Err(ExperimentError::Worker { index, scale, message })
    });
    Done { index, outcome, statistics: seconds.statistics, probe: seconds.probe }
}

/// Where a scale's work spent its time.
#[derive(Debug, Default)]
struct Seconds {
    statistics: f64,
    probe: f64,
}

fn work(job: ScaleJob, context: &Context, done: &mut Seconds) -> Result<ScaleRecord> {
    let (index, scale) = (job.index, job.scale);
    let probe_error = |source| ExperimentError::Probe { index, scale, source };
    let [train, test] = &job.splits;
    let clock = Instant::now();
    let mut stats = ClassStatistics::new(train.features.ncols());
    for (features, labels) in in_batches(train, &job.batches[0]) {
        stats.fold(features, labels).map_err(probe_error)?;
    }
    done.statistics += clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let probe = context.probe.fit(&stats).map_err(probe_error)?;
    let population = probe.population_outcomes();
    done.probe += clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let mut evaluator = probe.evaluator().with_groups(JACKKNIFE_GROUPS);
    for (features, labels) in in_batches(test, &job.batches[1]) {
        evaluator.fold(features, labels).map_err(probe_error)?;
    }
    let (epsilons, tests) = evaluator.finish_with_groups();
    done.statistics += clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let n_train = train.labels.len() as u64;
    let sizes = jackknife::nested_sizes(n_train, train.features.ncols());
    let (replicates, nested) = rayon::join(
        || jackknife::replicates(&context.probe, &probe, &stats, train, test, tests),
        || jackknife::nested(&context.probe, train, test, &sizes),
    );
    let (replicates, nested) = (replicates.map_err(probe_error)?, nested.map_err(probe_error)?);
    done.probe += clock.elapsed().as_secs_f64();
    let record = ScaleRecord { index, scale, raw: raw_reference(scale)?, epsilons, population, replicates, nested };
    if let Some((dir, hash)) = &context.output {
        write_json(&scale_path(dir, index), &ScaleFile::new(&record, hash))?;
    }
    Ok(record)
}

/// The pool that runs finished scales' work, at most `limit` at a time.
pub(crate) struct Workers {
    pool: Option<rayon::ThreadPool>,
    context: Arc<Context>,
    limit: usize,
    sender: Sender<Done>,
    receiver: Receiver<Done>,
    /// The scales handed over and not yet collected.
    in_flight: Vec<usize>,
    /// Seconds the caller waited for the bound or for the last scales.
    pub waited: f64,
}

impl Workers {
    /// A pool of `threads` for at most `limit` scales in flight (0: every
    /// scale's work on the caller's thread, inside `fold`).
    pub fn new(threads: WorkerThreads, limit: usize, context: Context) -> Result<Self> {
        let pool = (limit > 0)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads.count())
                    .thread_name(|i| format!("synbench-scale-{i}"))
                    .build()
                    .map_err(|e| ExperimentError::batch(format!("cannot start the per-scale worker pool: {e}")))
            })
            .transpose()?;
        let (sender, receiver) = channel();
        Ok(Self { pool, context: Arc::new(context), limit, sender, receiver, in_flight: Vec::new(), waited: 0.0 })
    }

    /// The scales handed over and not yet collected.
    pub fn in_flight(&self) -> &[usize] {
        &self.in_flight
    }

    /// Hands `job` over, waiting first while `limit` scales are in flight;
    /// returns the scales finished meanwhile.
    pub fn submit(&mut self, job: ScaleJob) -> Vec<Done> {
        if self.pool.is_none() {
            return vec![compute(job, &self.context)];
        }
        let mut finished = self.finished();
        let clock = Instant::now();
        while self.in_flight.len() >= self.limit {
            finished.push(self.receive());
        }
        self.waited += clock.elapsed().as_secs_f64();
        let (context, sender) = (Arc::clone(&self.context), self.sender.clone());
        self.in_flight.push(job.index);
        self.pool.as_ref().expect("checked above").spawn(move || {
            // The receiver lives as long as the workers, which wait for every job.
            let _ = sender.send(compute(job, &context));
        });
        finished
    }

    /// The scales finished since the last call, without waiting.
    pub fn finished(&mut self) -> Vec<Done> {
        let mut finished = Vec::new();
        while let Ok(done) = self.receiver.try_recv() {
            self.in_flight.retain(|&i| i != done.index);
            finished.push(done);
        }
        finished
    }

    /// Waits for every scale in flight.
    pub fn wait_all(&mut self) -> Vec<Done> {
        let clock = Instant::now();
        let finished = (0..self.in_flight.len()).map(|_| self.receive()).collect();
        self.waited += clock.elapsed().as_secs_f64();
        finished
    }

    fn receive(&mut self) -> Done {
        let done = self.receiver.recv().expect("the workers hold a sender");
        self.in_flight.retain(|&i| i != done.index);
        done
    }
}

impl Drop for Workers {
    /// Lets the scales in flight finish and land on disk.
    fn drop(&mut self) {
        self.wait_all();
    }
}
