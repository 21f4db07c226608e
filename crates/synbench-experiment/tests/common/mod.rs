//! Shared by the oracle tests: a whole in-memory run of a config whose
//! encoder is the linear-Gaussian oracle, driven with that oracle.

use synbench_experiment::config::parse;
use synbench_experiment::{EncoderInfo, Experiment, ModelSpec, RunResult, StartOptions, StartPolicy};
use synbench_models::{Encoder, LinearGaussian};

/// Runs `text` (an `arch = "linear_gaussian"` config) in memory to the end.
pub fn run_oracle(name: &str, text: &str) -> RunResult {
    let mut plan = parse(std::path::Path::new(name), text).unwrap();
    plan.output_dir = None;
    let ModelSpec::LinearGaussian { spec } = &plan.encoder.model else { panic!("{name}: not the oracle") };
    let shape = plan.mixture.sample_shape().to_vec();
    let mut encoder = LinearGaussian::new(shape, spec.clone(), plan.encoder.seed).unwrap();
    let options = StartOptions::for_plan(&plan, StartPolicy::Fresh);
    let mut experiment = Experiment::start(plan, EncoderInfo::described(name), options).unwrap();
    while let Some(batch) = experiment.next_batch().unwrap() {
        let features = encoder.encode(batch.inputs.view()).unwrap();
        experiment.fold(&batch, features.view()).unwrap();
    }
    experiment.finish().unwrap()
}
