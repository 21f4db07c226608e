//! The accelerator-never-waits benchmark: the paper protocol (49 scales,
//! 2048 + 2048 samples, ε ∈ {0, 0.2}) driven by a mock encoder that takes no
//! CPU and sleeps its share of `T` seconds per batch (what a GPU spends on
//! the forward passes), its features the inputs themselves (`[data] shape =
//! [D]`). Prints one JSON line: the wall time against `T`, the caller's time
//! inside `next_batch` and `fold`, the workers' seconds and the peak RSS.
//!
//! ```text
//! cargo run --release -p synbench-experiment --example mock_encoder -- \
//!     --dim 768 --seconds 60 [--scales-in-flight 2] [--workers N] [--scales 49]
//! ```
//!
//! `--scales-in-flight 0` runs every scale's work inside `fold`, on the
//! caller's thread: the serial path the pool replaces. `cargo xtask bench
//! pipeline` runs both and tabulates them.

use std::path::Path;
use std::time::{Duration, Instant};

use synbench_experiment::config::parse;
use synbench_experiment::schema::peak_rss_mib;
use synbench_experiment::{EncoderInfo, Experiment, StartOptions, StartPolicy, WorkerThreads};

struct Args {
    dim: usize,
    seconds: f64,
    scales_in_flight: usize,
    workers: Option<usize>,
    scales: usize,
    n: u64,
}

fn args() -> Args {
    let mut a = Args { dim: 768, seconds: 60.0, scales_in_flight: 2, workers: None, scales: 49, n: 2048 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--dim" => a.dim = value().parse().expect("--dim: an integer"),
            "--seconds" => a.seconds = value().parse().expect("--seconds: a number"),
            "--scales-in-flight" => a.scales_in_flight = value().parse().expect("--scales-in-flight: an integer"),
            "--workers" => a.workers = Some(value().parse().expect("--workers: an integer")),
            "--scales" => a.scales = value().parse().expect("--scales: an integer"),
            "--n" => a.n = value().parse().expect("--n: an integer"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

fn main() {
    let a = args();
    let scales: Vec<String> = (1..=a.scales).map(|i| format!("{:.1}", i as f64 * 0.1)).collect();
    let text = format!(
        "[model]\narch = \"identity\"\nbatch_size = 256\n[data]\nshape = [{}]\nscales = [{}]\nn_train = {n}\nn_test = {n}\n\
         seed = 12\nnormalize = \"none\"\n[probe]\nepsilons = [0.0, 0.2]\n",
        a.dim,
        scales.join(", "),
        n = a.n,
    );
    let mut plan = parse(Path::new("<mock_encoder>"), &text).expect("a valid plan");
    plan.output_dir = None;
    let batches = a.scales as u64 * (2 * a.n).div_ceil(256);
    let per_batch = Duration::from_secs_f64(a.seconds / batches as f64);
    let workers = a.workers.map_or(WorkerThreads::AllCores, WorkerThreads::Own);
    let options = StartOptions {
        workers,
        scales_in_flight: a.scales_in_flight,
        ..StartOptions::for_plan(&plan, StartPolicy::Fresh)
    };
    let wall = Instant::now();
    let mut experiment =
        Experiment::start(plan, EncoderInfo::described("mock encoder (sleeps)"), options).expect("starts");
    let mut caller = Duration::ZERO;
    loop {
        let clock = Instant::now();
        let batch = experiment.next_batch().expect("a batch");
        caller += clock.elapsed();
        let Some(batch) = batch else { break };
        std::thread::sleep(per_batch); // the "GPU": no CPU
        let clock = Instant::now();
        experiment.fold(&batch, batch.inputs.view()).expect("folds");
        caller += clock.elapsed();
    }
    let clock = Instant::now();
    let result = experiment.finish().expect("finishes");
    let finish = clock.elapsed().as_secs_f64();
    let wall = wall.elapsed().as_secs_f64();
    let stages = result.results.provenance.stage_seconds;
    println!(
        "{{\"dim\": {}, \"encoder_seconds\": {}, \"scales_in_flight\": {}, \"worker_threads\": {}, \"wall\": {wall:.3}, \
         \"wall_over_encoder\": {:.4}, \"caller_in_next_batch_and_fold\": {:.3}, \"caller_share\": {:.4}, \
         \"finish\": {finish:.3}, \"workers_wait\": {:.3}, \"worker_statistics\": {:.3}, \"worker_probe\": {:.3}, \
         \"peak_rss_mib\": {}}}",
        a.dim,
        a.seconds,
        a.scales_in_flight,
        workers.count(),
        wall / a.seconds,
        caller.as_secs_f64(),
        caller.as_secs_f64() / wall,
        stages.workers_wait,
        stages.statistics,
        stages.probe,
        peak_rss_mib().map_or("null".into(), |m| format!("{m:.0}")),
    );
}
