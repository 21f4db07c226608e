//! Reference and population scores against the train size, for the
//! encoder of one config, with every size's interval.
//!
//! ```text
//! cargo run --release -p synbench-cli --example finite_n -- CONFIG SIZES [CSV]
//! cargo run --release -p synbench-cli --example finite_n -- configs/vit_ti16.toml 512,1024,2048,4096 ti.csv
//! ```
//!
//! A sample is a function of (seed, scale, split, index) alone (SPEC §1), so
//! the first `m` train samples of a run with `n_train = m` are those of the
//! run with the largest size. The encoder therefore encodes the largest run
//! once; every smaller size is a whole run of its own (probe, jackknife,
//! population estimate, nested sizes) fed the cached features of its
//! samples, and the test split is the same for every size. The example
//! checks that the labels of each batch are the cached ones.
//!
//! Prints one line per size, ε and threshold (reference ± stderr,
//! population ± stderr) and writes them as CSV when a path is given.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use ndarray::{Array2, Axis, Slice};
use synbench_cli::run::build_encoder;
use synbench_data::Split;
use synbench_experiment::config::parse;
use synbench_experiment::{EncoderInfo, Experiment, Plan, RunResult, StartOptions, StartPolicy};
use synbench_models::Encoder;

/// One split of one scale: features and labels by sample index.
struct Cached {
    features: Array2<f32>,
    labels: Vec<u8>,
}

/// The cached features by (scale index, is the train split).
type Cache = HashMap<(usize, bool), Cached>;

fn key(scale: usize, split: Split) -> (usize, bool) {
    (scale, matches!(split, Split::Train))
}

fn start(plan: Plan, name: &str) -> Result<Experiment> {
    let options = StartOptions::for_plan(&plan, StartPolicy::Fresh);
    Ok(Experiment::start(plan, EncoderInfo::described(name), options)?)
}

/// The largest run, encoding every batch and keeping its features.
fn encode_and_cache(plan: Plan, encoder: &mut dyn Encoder) -> Result<(RunResult, Cache, f64)> {
    let (n_train, n_test) = (plan.n_train as usize, plan.n_test as usize);
    let name = plan.model_name.clone();
    let mut experiment = start(plan, &name)?;
    let mut cache = Cache::new();
    let mut encode_seconds = 0.0;
    while let Some(batch) = experiment.next_batch()? {
        let clock = std::time::Instant::now();
        let features = encoder.encode(batch.inputs.view())?;
        encode_seconds += clock.elapsed().as_secs_f64();
        let rows = if matches!(batch.split, Split::Train) { n_train } else { n_test };
        let entry = cache
            .entry(key(batch.scale_index, batch.split))
            .or_insert_with(|| Cached { features: Array2::zeros((rows, features.ncols())), labels: vec![0; rows] });
        let (a, b) = (batch.samples.start as usize, batch.samples.end as usize);
        entry.features.slice_axis_mut(Axis(0), Slice::from(a..b)).assign(&features);
        entry.labels[a..b].copy_from_slice(batch.labels.as_slice().context("labels are contiguous")?);
        experiment.fold(&batch, features.view())?;
    }
    Ok((experiment.finish()?, cache, encode_seconds))
}

/// A smaller run fed the cached features.
fn replay(plan: Plan, cache: &Cache) -> Result<RunResult> {
    let name = plan.model_name.clone();
    let n_train = plan.n_train;
    let mut experiment = start(plan, &name)?;
    while let Some(batch) = experiment.next_batch()? {
        let cached = &cache[&key(batch.scale_index, batch.split)];
        let (a, b) = (batch.samples.start as usize, batch.samples.end as usize);
        ensure!(
            cached.labels[a..b] == batch.labels.as_slice().context("labels are contiguous")?[..],
            "n_train {n_train}: scale {} {:?} samples {a}..{b} are not those of the largest run",
            batch.scale_index,
            batch.split
        );
        experiment.fold(&batch, cached.features.slice_axis(Axis(0), Slice::from(a..b)))?;
    }
    Ok(experiment.finish()?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        bail!("usage: finite_n CONFIG SIZES [CSV]   (SIZES: comma-separated train sizes, e.g. 512,1024,2048,4096)");
    }
    let path = Path::new(&args[0]);
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut sizes: Vec<u64> = args[1]
        .split(',')
        .map(|v| v.trim().parse().with_context(|| format!("SIZES: {v:?} is not a train size")))
        .collect::<Result<_>>()?;
    sizes.sort_unstable();
    sizes.dedup();
    let mut plan = parse(path, &text)?;
    plan.output_dir = None;
    let largest = *sizes.last().context("SIZES is empty")?;
    let mut encoder = build_encoder(&plan.encoder, &plan.model_name, plan.mixture.sample_shape(), path)?;
    let mut big = plan.clone();
    big.n_train = largest;
    let clock = std::time::Instant::now();
    let (largest_run, cache, encode_seconds) = encode_and_cache(big, encoder.as_mut())?;
    eprintln!(
        "{}: encoded {} scales x ({largest} + {}) in {encode_seconds:.1} s (whole run {:.1} s)",
        plan.model_name,
        plan.scales.len(),
        plan.n_test,
        clock.elapsed().as_secs_f64()
    );
    let mut runs = Vec::new();
    for &size in &sizes[..sizes.len() - 1] {
        let mut small = plan.clone();
        small.n_train = size;
        runs.push((size, replay(small, &cache)?));
    }
    runs.push((largest, largest_run));

    let mut lines = vec![
        "model,feature_dim,n_train,n_test,epsilon,threshold,reference,reference_stderr,population,population_stderr"
            .to_string(),
    ];
    for (size, run) in &runs {
        let r = &run.results;
        for scores in &r.scores {
            let reference_se = scores.uncertainty.as_ref().map(|u| &u.reference.stderr);
            let population = scores.population.as_ref();
            for (t, threshold) in r.thresholds.iter().enumerate() {
                let value = |v: Option<&Vec<synbench_experiment::schema::JsonF64>>| v.map_or(f64::NAN, |v| v[t].0);
                let line = [
                    scores.reference[t].0,
                    value(reference_se),
                    value(population.map(|p| &p.reference)),
                    value(population.and_then(|p| p.uncertainty.as_ref()).map(|u| &u.reference.stderr)),
                ];
                println!(
                    "{:24} D {:4} n_train {size:5} ε {:.2} t {threshold:.2}: reference {:.4} ± {:.4}   population {:.4} ± {:.4}",
                    r.model,
                    r.feature_dim.unwrap_or(0),
                    scores.epsilon,
                    line[0],
                    line[1],
                    line[2],
                    line[3]
                );
                lines.push(format!(
                    "{},{},{size},{},{},{threshold},{},{},{},{}",
                    r.model,
                    r.feature_dim.unwrap_or(0),
                    plan.n_test,
                    scores.epsilon,
                    line[0],
                    line[1],
                    line[2],
                    line[3]
                ));
            }
        }
    }
    if let Some(csv) = args.get(2) {
        std::fs::write(csv, lines.join("\n") + "\n").with_context(|| format!("cannot write {csv}"))?;
    }
    Ok(())
}
