//! The streaming experiment driven without a network, as quinn-proto's tests
//! drive a connection without a socket: the encoder is a closure, the
//! numbers are checked against SPEC §5, and every resume case is a test.

use std::fs;
use std::path::{Path, PathBuf};

use synbench_experiment::config::parse;
use synbench_experiment::resolved::RunFile;
use synbench_experiment::schema::ResultsFile;
use synbench_experiment::{
    EncoderInfo, Experiment, ExperimentError, ModelSpec, Plan, RunResult, SavedRun, StartOptions, StartPolicy,
    WorkerThreads, io,
};
use synbench_models::{Encoder, LinearGaussian};
use synbench_probe::ndarray::{Array2, ArrayView2};
use synbench_theory::normal;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("synbench-experiment-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// An identity run over `scales` scales of `n` + `n` samples at `dim`.
fn config(scales: usize, n: u64, dim: usize, extra: &str) -> String {
    let scales: Vec<String> = (1..=scales).map(|i| format!("{}", i as f64 * 0.4)).collect();
    format!(
        "[model]\narch = \"identity\"\nbatch_size = 100\n[data]\nshape = [{dim}]\nscales = [{}]\nn_train = {n}\nn_test = {n}\nseed = 3\n\
         [probe]\nepsilons = [0.0, 0.3]\n[output]\ndir = \"out\"\n{extra}",
        scales.join(", ")
    )
}

fn plan_in(dir: &Path, text: &str) -> Plan {
    parse(&dir.join("config.toml"), text).unwrap()
}

fn identity_info() -> EncoderInfo {
    EncoderInfo::described("identity (test)")
}

fn start(plan: Plan, policy: StartPolicy) -> Result<Experiment, ExperimentError> {
    let options = StartOptions::for_plan(&plan, policy);
    Experiment::start(plan, identity_info(), options)
}

/// Drives `experiment` with `encode` until the batches of `stop_after`
/// scales are folded (then drops it, as a killed process would: dropping
/// waits for the scales in flight, so exactly those land on disk) or to the end.
fn drive(
    mut experiment: Experiment,
    encode: impl Fn(ArrayView2<'_, f32>) -> Array2<f32>,
    stop_after: Option<usize>,
) -> Option<RunResult> {
    let mut folded = 0;
    let n_test = experiment.plan().n_test;
    while let Some(batch) = experiment.next_batch().unwrap() {
        let features = encode(batch.inputs.view());
        experiment.fold(&batch, features.view()).unwrap();
        if batch.split == synbench_data::Split::Test && batch.samples.end == n_test {
            folded += 1;
            if stop_after == Some(folded) {
                return None;
            }
        }
    }
    Some(experiment.finish().unwrap())
}

fn identity(x: ArrayView2<'_, f32>) -> Array2<f32> {
    x.to_owned()
}

#[test]
fn identity_accuracy_is_phi_of_the_scale_in_memory() {
    // SPEC §5: a_rep(s) → Φ(s); binomial noise of 2000 test samples (4 sd)
    // plus the 16-dimensional probe's estimation loss (< 0.01).
    let dir = scratch("memory");
    let mut plan = plan_in(&dir, &config(5, 2000, 16, ""));
    plan.output_dir = None;
    let result = drive(start(plan, StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    assert!(result.files.is_empty() && !dir.join("out").exists(), "an in-memory run writes nothing");
    for (summary, record) in result.results.scales.iter().zip(&result.saved.records) {
        let phi = normal::cdf(record.scale);
        let tolerance = 4.0 * (phi * (1.0 - phi) / 2000.0).sqrt() + 0.01;
        assert!((summary.representation[0].accuracy - phi).abs() <= tolerance, "{summary:?}");
        assert_eq!(summary.raw.accuracy, phi);
    }
}

#[test]
fn features_that_do_not_fit_are_refused_without_losing_the_run() {
    let dir = scratch("bad-features");
    let plan = plan_in(&dir, &config(2, 200, 8, ""));
    let mut experiment = start(plan, StartPolicy::Fresh).unwrap();
    let batch = experiment.next_batch().unwrap().unwrap();
    let check = |err: ExperimentError, needle: &str| {
        let msg = err.to_string();
        assert!(msg.contains(needle) && msg.contains("scale 0 (s = 0.4), train samples 0..100"), "{msg}");
    };
    check(experiment.fold(&batch, Array2::zeros((99, 8)).view()).unwrap_err(), "have 99 rows, expected 100");
    let mut nan = batch.inputs.clone();
    nan[[7, 3]] = f32::NAN;
    check(experiment.fold(&batch, nan.view()).unwrap_err(), "[7, 3] is NaN");
    let err = experiment.next_batch().unwrap_err().to_string();
    assert!(err.contains("fold each batch before asking for the next"), "{err}");
    // The rejected batch is folded again, correctly, and the run goes on.
    experiment.fold(&batch, batch.inputs.view()).unwrap();
    let second = experiment.next_batch().unwrap().unwrap();
    check_width_change(&mut experiment, &second);
    let err = experiment.fold(&batch, batch.inputs.view()).unwrap_err().to_string();
    assert!(err.contains("is not the batch handed out last"), "{err}");
    experiment.fold(&second, second.inputs.view()).unwrap();
    let unfinished = experiment.finish().unwrap_err().to_string();
    assert!(unfinished.contains("scale(s) [0, 1] still need their batches"), "{unfinished}");
}

fn check_width_change(experiment: &mut Experiment, batch: &synbench_experiment::Batch) {
    let err = experiment.fold(batch, Array2::zeros((100, 9)).view()).unwrap_err().to_string();
    assert!(err.contains("have 9 columns, but earlier batches had 8"), "{err}");
}

fn file(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn killed_then_resumed_matches_an_uninterrupted_run_and_reuses_the_finished_scales() {
    let whole = scratch("whole");
    drive(start(plan_in(&whole, &config(6, 300, 12, "")), StartPolicy::Fresh).unwrap(), identity, None).unwrap();

    let killed = scratch("killed");
    let text = config(6, 300, 12, "");
    let experiment = start(plan_in(&killed, &text), StartPolicy::Fresh).unwrap();
    assert!(drive(experiment, identity, Some(3)).is_none());
    let out = killed.join("out");
    let finished: Vec<String> =
        fs::read_dir(out.join("scales")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(finished.len(), 3, "the kill left {finished:?}");
    assert!(!out.join("results.json").exists(), "a killed run has no results.json");
    let before: Vec<Vec<u8>> = (0..3).map(|i| file(&out, &format!("scales/scale_{i:03}.json"))).collect();

    let resumed = start(plan_in(&killed, &text), StartPolicy::Resume).unwrap();
    assert_eq!(resumed.finished_scales(), [0, 1, 2]);
    let result = drive(resumed, identity, None).unwrap();
    assert_eq!(result.results.provenance.scales_computed, 3, "only the three missing scales are computed");
    for (i, bytes) in before.iter().enumerate() {
        assert_eq!(&file(&out, &format!("scales/scale_{i:03}.json")), bytes, "scale {i} was rewritten");
    }
    assert_eq!(file(&out, "scores.csv"), file(&whole.join("out"), "scores.csv"));
    assert_eq!(file(&out, "table.md"), file(&whole.join("out"), "table.md"));
}

#[test]
fn resume_with_an_edited_config_is_refused_and_lists_the_changes() {
    let dir = scratch("edited");
    let experiment = start(plan_in(&dir, &config(4, 200, 8, "")), StartPolicy::Fresh).unwrap();
    assert!(drive(experiment, identity, Some(2)).is_none());
    let scale_0 = file(&dir.join("out"), "scales/scale_000.json");
    let edited = config(4, 200, 8, "")
        .replace("n_test = 200", "n_test = 100")
        .replace("epsilons = [0.0, 0.3]", "epsilons = [0.0]");
    let err = start(plan_in(&dir, &edited), StartPolicy::Resume).unwrap_err();
    let ExperimentError::PlanChanged { finished, changes, resume, .. } = &err else { panic!("{err}") };
    assert_eq!((*finished, *resume), (2, true));
    assert_eq!(changes, &["data.n_test: 200 → 100", "probe.epsilons: [0.0,0.3] → [0.0]"]);
    let msg = err.to_string();
    assert!(msg.contains("--resume cannot continue") && msg.contains("--restart"), "{msg}");
    // Nothing was touched: the finished scales and run.json are the old plan's.
    assert_eq!(file(&dir.join("out"), "scales/scale_000.json"), scale_0);
    let run: RunFile = io::read_json(&dir.join("out/run.json")).unwrap();
    assert_eq!(run.plan.data.n_test, 200);
}

#[test]
fn a_new_run_over_finished_scales_is_refused_and_restart_starts_over() {
    let dir = scratch("fresh-over");
    let text = config(3, 200, 8, "");
    drive(start(plan_in(&dir, &text), StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    // Same plan, no flag: refused, nothing lost.
    let err = start(plan_in(&dir, &text), StartPolicy::Fresh).unwrap_err().to_string();
    assert!(err.contains("already holds 3 of 3 finished scale(s) of this plan") && err.contains("--resume"), "{err}");
    // Another plan, no flag: refused with the change.
    let other = text.replace("seed = 3", "seed = 4");
    let err = start(plan_in(&dir, &other), StartPolicy::Fresh).unwrap_err();
    let ExperimentError::PlanChanged { changes, resume: false, .. } = &err else { panic!("{err}") };
    assert_eq!(changes, &["data.seed: 3 → 4"]);
    assert!(err.to_string().contains("a new run would overwrite"), "{err}");
    // --restart: every scale recomputed under the new plan.
    let result = drive(start(plan_in(&dir, &other), StartPolicy::Restart).unwrap(), identity, None).unwrap();
    assert_eq!(result.results.provenance.scales_computed, 3);
    assert_eq!(result.results.plan.data.seed, 4);
    // Resume of a finished run computes nothing and writes the same scores.
    let scores = file(&dir.join("out"), "scores.csv");
    let again = drive(start(plan_in(&dir, &other), StartPolicy::Resume).unwrap(), identity, None).unwrap();
    assert_eq!(again.results.provenance.scales_computed, 0);
    assert_eq!(file(&dir.join("out"), "scores.csv"), scores);
}

#[test]
fn a_corrupt_scale_file_is_named_with_what_to_do() {
    let dir = scratch("corrupt");
    let text = config(3, 200, 8, "");
    drive(start(plan_in(&dir, &text), StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    let path = dir.join("out/scales/scale_001.json");
    fs::write(&path, "{ \"schema\": \"synbench-scale/3\", ").unwrap();
    let err = start(plan_in(&dir, &text), StartPolicy::Resume).unwrap_err().to_string();
    assert!(err.starts_with(&path.display().to_string()), "{err}");
    assert!(err.contains("Delete that file and run again with --resume: only that scale is recomputed"), "{err}");
    let command = format!("(`rm {} && synbench run {} --resume`)", path.display(), dir.join("config.toml").display());
    assert!(err.ends_with(&command), "{err}");
    fs::remove_file(&path).unwrap();
    let result = drive(start(plan_in(&dir, &text), StartPolicy::Resume).unwrap(), identity, None).unwrap();
    assert_eq!(result.results.provenance.scales_computed, 1);
}

#[test]
fn scale_files_without_run_json_are_refused() {
    let dir = scratch("unknown");
    let text = config(2, 200, 8, "");
    drive(start(plan_in(&dir, &text), StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    fs::remove_file(dir.join("out/run.json")).unwrap();
    fs::remove_file(dir.join("out/results.json")).unwrap();
    for policy in [StartPolicy::Fresh, StartPolicy::Resume] {
        let err = start(plan_in(&dir, &text), policy).unwrap_err().to_string();
        assert!(err.contains("holds 2 scale file(s) but no run.json"), "{err}");
    }
}

#[test]
fn a_partial_run_is_rescored_with_its_own_averaging_and_thresholds() {
    let dir = scratch("partial");
    let text = config(4, 300, 8, "[score]\nthresholds = [0.6, 0.8]\nmode = \"exact\"\n")
        .replace("[probe]\n", "[probe]\naveraging = \"exact\"\n");
    assert!(drive(start(plan_in(&dir, &text), StartPolicy::Fresh).unwrap(), identity, Some(2)).is_none());
    let saved = SavedRun::load(&dir.join("out")).unwrap();
    assert!(saved.is_partial() && saved.records.len() == 2 && saved.planned_scales == 4);
    assert_eq!(saved.thresholds, [0.6, 0.8]);
    assert_eq!((saved.averaging.name(), saved.mode.name()), ("exact", "exact"));
    let table = saved.table().unwrap();
    assert!(table.markdown().contains("partial run, 2 finished scale(s) only"), "{}", table.markdown());
}

#[test]
fn results_json_round_trips_through_its_schema() {
    let dir = scratch("schema");
    // Φ(1) ≈ 0.84: the raw curve has no area above it, so scores there are
    // non-finite (written as strings) and finite below.
    let text = config(1, 200, 8, "").replace("scales = [0.4]", "scales = [0.1, 1.0]");
    let result = drive(start(plan_in(&dir, &text), StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    let path = dir.join("out/results.json");
    let read: ResultsFile = io::read_json(&path).unwrap();
    assert_eq!(serde_json::to_value(&read).unwrap(), serde_json::to_value(&result.results).unwrap());
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"NaN\"") || text.contains("\"Infinity\""), "non-finite scores are strings");
    assert!(read.scores[0].reference[0].0.is_finite(), "t = 0.6 has a raw area");
    assert_eq!(read.schema, "synbench-result/4");
    assert_eq!(read.feature_dim, Some(8), "the identity's width");
    // And the folder reads back as a run, with the same table.
    let saved = SavedRun::load(&dir.join("out")).unwrap();
    assert_eq!(saved.table().unwrap().markdown(), result.table.markdown());
    // result.save writes a folder that reads back the same.
    let copy = dir.join("copy");
    result.save(&copy).unwrap();
    assert_eq!(SavedRun::load(&copy).unwrap().table().unwrap().csv(), result.table.csv());
    assert_eq!(file(&copy, "scores.csv"), file(&dir.join("out"), "scores.csv"));
}

#[test]
fn weights_trained_on_another_normalisation_are_reported() {
    let dir = scratch("normalisation");
    let plan = plan_in(&dir, &config(1, 100, 8, ""));
    let info = EncoderInfo {
        expected_normalization: Some(synbench_data::Normalization::imagenet()),
        ..EncoderInfo::described("an encoder trained on ImageNet")
    };
    let options = StartOptions::for_plan(&plan, StartPolicy::Fresh);
    let experiment = Experiment::start(plan, info, options).unwrap();
    assert_eq!(experiment.warnings().len(), 1);
    assert!(
        experiment.warnings()[0].contains("normalised as mean [0.485, 0.456, 0.406]"),
        "{:?}",
        experiment.warnings()
    );
    let result = drive(experiment, identity, None).unwrap();
    assert_eq!(result.results.warnings.len(), 1);
}

#[test]
fn one_process_at_a_time_runs_into_a_folder() {
    let dir = scratch("busy");
    let text = config(2, 200, 8, "");
    let first = start(plan_in(&dir, &text), StartPolicy::Fresh).unwrap();
    // A second run into the same folder (another shard, a resubmitted job)
    // is refused before it touches a file — even one that would restart it.
    let err = start(plan_in(&dir, &text), StartPolicy::Restart).unwrap_err().to_string();
    assert!(err.contains("another process is running into this folder") && err.contains(".lock"), "{err}");
    drop(first);
    let result = drive(start(plan_in(&dir, &text), StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    assert_eq!(result.results.scales.len(), 2, "the lock is released when the first run is dropped");
    let again = drive(start(plan_in(&dir, &text), StartPolicy::Resume).unwrap(), identity, None).unwrap();
    assert_eq!(again.results.provenance.scales_computed, 0, "and when a run finishes");
}

/// `[score] estimator = "population"` makes the population estimate the
/// headline (tables, best ε, results.json's `score_estimator`); the reference
/// scores are still in results.json, and a resumed folder's table follows
/// the plan. The l∞ attack has no population estimate: a config error.
#[test]
fn the_population_estimator_can_be_the_headline() {
    let dir = scratch("estimator");
    let plan = plan_in(&dir, &config(4, 300, 6, "[score]\nestimator = \"population\"\nthresholds = [0.6, 0.7]\n"));
    assert_eq!(plan.estimator.name(), "population");
    let result = drive(start(plan, StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    assert_eq!(result.results.score_estimator, "population");
    assert_eq!(result.table.estimator.name(), "population");
    let population = result.results.scores[1].population.as_ref().unwrap();
    assert_eq!(result.table.rows[1].scores, population.reference.iter().map(|s| s.0).collect::<Vec<_>>());
    let markdown = String::from_utf8(file(&dir.join("out"), "table.md")).unwrap();
    let (headline, rest) = markdown.split_once("## reference estimator").expect("the reference section follows");
    assert!(headline.contains("population estimator.") && rest.contains("reference estimator."), "{markdown}");
    let saved = SavedRun::load(&dir.join("out")).unwrap();
    assert_eq!(saved.table().unwrap(), result.table);

    let err = parse(
        &dir.join("linf.toml"),
        &config(2, 100, 4, "[score]\nestimator = \"population\"\n").replace("epsilons", "norm = \"linf\"\nepsilons"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("score.estimator") && err.contains("l2 attack") && err.contains("\"linf\""), "{err}");
}

/// With `n_train − 2 ≤ D` the pooled covariance is singular and the
/// population estimate undefined (SPEC §7): as the headline estimator a
/// config error at the first batch, naming the field and the sizes; with the
/// reference headline a warning, and results without population scores.
#[test]
fn a_singular_covariance_has_no_population_estimate() {
    let dir = scratch("singular");
    let plan = plan_in(&dir, &config(2, 40, 40, "[score]\nestimator = \"population\"\n"));
    let mut experiment = start(plan, StartPolicy::Fresh).unwrap();
    let batch = experiment.next_batch().unwrap().unwrap();
    let err = experiment.fold(&batch, batch.inputs.view()).unwrap_err().to_string();
    assert!(
        err.contains("config.toml")
            && err.contains("score.estimator")
            && err.contains("data.n_train = 40")
            && err.contains("40 wide")
            && err.contains("n_train ≥ 43"),
        "{err}"
    );
    drop(experiment);

    let dir = scratch("singular-reference");
    let result =
        drive(start(plan_in(&dir, &config(2, 40, 40, "")), StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    assert!(result.results.scores.iter().all(|s| s.population.is_none()), "no population scores");
    assert_eq!(result.results.score_estimator, "reference");
    assert!(
        result.results.warnings.iter().any(|w| w.contains("singular") && w.contains("n_train ≥ 43")),
        "{:?}",
        result.results.warnings
    );
    // Three more samples and it is there, but the jackknife refits (43 − 5
    // samples) are singular: no standard error, and a warning that says so.
    let dir = scratch("regular");
    let result =
        drive(start(plan_in(&dir, &config(2, 43, 40, "")), StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    let population = |result: &synbench_experiment::RunResult| -> Vec<Option<Vec<f64>>> {
        let scores = &result.results.scores;
        let stderr = |s: &synbench_experiment::schema::EpsilonScores| {
            let interval = s.population.as_ref().unwrap().uncertainty.as_ref()?;
            Some(interval.reference.stderr.iter().map(|v| v.0).collect())
        };
        scores.iter().map(stderr).collect()
    };
    assert!(population(&result).iter().all(Option::is_none), "no population interval");
    assert!(
        result.results.warnings.len() == 1
            && result.results.warnings[0].contains("38 of data.n_train = 43")
            && result.results.warnings[0].contains("n_train ≥ 48"),
        "{:?}",
        result.results.warnings
    );
    // 48 − 5 − 2 > 40: every refit has an estimate.
    let dir = scratch("regular-replicates");
    let result =
        drive(start(plan_in(&dir, &config(2, 48, 40, "")), StartPolicy::Fresh).unwrap(), identity, None).unwrap();
    let intervals = population(&result);
    assert!(intervals.iter().all(|i| i.as_ref().is_some_and(|se| se[0].is_finite() && se[0] > 0.0)), "{intervals:?}");
    assert!(result.results.warnings.is_empty(), "{:?}", result.results.warnings);
}

/// The linear-Gaussian oracle: results.json carries its closed-form
/// population score, the population estimate lands near it, within its
/// interval, and the reference estimator (48 dimensions from 600 samples)
/// well below.
#[test]
fn the_population_estimate_recovers_the_oracle_closed_form() {
    let dir = scratch("oracle");
    let scales: Vec<String> = (1..=16).map(|i| format!("{}", f64::from(i) * 0.25)).collect();
    let text = format!(
        "[model]\narch = \"linear_gaussian\"\noutput_dim = 48\nspectrum_decay = 0.7\nnoise = 0.3\nseed = 5\nbatch_size = 200\n\
         [data]\nshape = [64]\nscales = [{}]\nn_train = 600\nn_test = 600\nseed = 3\n\
         [probe]\nepsilons = [0.0, 0.2]\n[score]\nthresholds = [0.6, 0.7, 0.8]\n[output]\ndir = \"out\"\n",
        scales.join(", ")
    );
    let plan = plan_in(&dir, &text);
    let ModelSpec::LinearGaussian { spec } = &plan.encoder.model else { panic!("not the oracle") };
    let oracle = LinearGaussian::new(vec![64], spec.clone(), plan.encoder.seed).unwrap();
    let result = drive(start(plan, StartPolicy::Fresh).unwrap(), |x| oracle.clone().encode(x).unwrap(), None).unwrap();
    let closed = result.results.oracle.as_ref().expect("the oracle's closed form is in results.json");
    for (e, eps) in result.results.scores.iter().enumerate() {
        let population = eps.population.as_ref().unwrap();
        let interval = &population.uncertainty.as_ref().unwrap().reference;
        for t in 0..3 {
            let (truth, est, reference) = (closed[e].reference[t].0, population.reference[t].0, eps.reference[t].0);
            let se = interval.stderr[t].0;
            eprintln!(
                "ε {} t {t}: closed {truth:.4}, population {est:.4} ± {se:.4}, reference {reference:.4}",
                eps.epsilon
            );
            assert!((est - truth).abs() < 0.04, "ε {}: population {est} vs closed form {truth}", eps.epsilon);
            assert!((est - truth).abs() < 3.0 * se + 0.01, "outside 3 stderr: {est} ± {se} vs {truth}");
            assert!(reference < truth - 0.03, "the reference estimator {reference} is biased below {truth}");
        }
    }
    let oracle_json = String::from_utf8(file(&dir.join("out"), "results.json")).unwrap();
    assert!(oracle_json.contains("\"oracle\""));
}

// ------------------------------------------------------------------ eigenvalue cutoff

/// Every score of a run: both estimators, both modes, each ε and threshold,
/// with standard errors, and the finite-n curve.
fn every_score(scores: &synbench_experiment::RunScores) -> Vec<f64> {
    let population = scores.population.as_ref().expect("n − 2 > D: the population estimator");
    let mut all = Vec::new();
    for modes in [&scores.reference, population] {
        for scored in modes.reference.iter().chain(&modes.exact) {
            all.extend(scored.scores.iter().chain(&scored.stderr));
        }
    }
    for finite in &scores.finite_n {
        for scored in finite.reference.iter().chain(finite.population.iter().flatten()) {
            all.extend(scored.scores.iter().chain(&scored.stderr).filter(|v| v.is_finite()));
        }
    }
    all
}

/// The identity encoder's features stretched to variances 1e4 … 1 (its first
/// two coordinates by 100 and 30), quantised to 85 levels per coordinate and
/// times `c`. Each feature is 625·2^e·k with |k| ≤ 42, so × 1e4 (2⁴·625) and
/// × 1e-4 (2⁻⁴/625) are exact in f32: the scaled features are the same
/// numbers times c, not a rounding of them.
fn stretched(c: f32) -> impl Fn(ArrayView2<'_, f32>) -> Array2<f32> {
    move |x| {
        let mut h = x.to_owned();
        for (j, mut column) in h.columns_mut().into_iter().enumerate() {
            let stretch = [100.0, 30.0].get(j).copied().unwrap_or(1.0_f32);
            let step = 625.0 * 2f32.powi((stretch * 8.0 / 42.0 / 625.0).log2().ceil() as i32);
            column.mapv_inplace(|v| (v * stretch / step).round().clamp(-42.0, 42.0) * step * c);
        }
        h
    }
}

/// A population-headline run of `stretched(c)` with `probe` lines added to `[probe]`.
fn cutoff_run(probe: &str, c: f32) -> RunResult {
    let dir = scratch("cutoff");
    let text =
        config(4, 400, 6, "[score]\nestimator = \"population\"\n").replace("[probe]\n", &format!("[probe]\n{probe}"));
    let mut plan = plan_in(&dir, &text);
    plan.output_dir = None;
    drive(start(plan, StartPolicy::Fresh).unwrap(), stretched(c), None).unwrap()
}

#[test]
fn relative_cutoff_scores_do_not_depend_on_the_scale_of_the_features() {
    let relative = "eigen_cutoff = \"relative\"\n";
    let base = cutoff_run(relative, 1.0);
    assert_eq!(base.results.plan.probe.eigen_cutoff, "relative");
    let base_scores = every_score(&base.scores);
    let absolute = cutoff_run("", 1.0);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&every_score(&absolute.scores)), bits(&base_scores), "at scale 1 both rules keep every component");
    assert_ne!(absolute.results.provenance.plan_hash, base.results.provenance.plan_hash);
    for c in [1e-4_f32, 1e4] {
        let got = every_score(&cutoff_run(relative, c).scores);
        assert_eq!(got.len(), base_scores.len());
        for (i, (a, b)) in base_scores.iter().zip(&got).enumerate() {
            let same = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(1e-3);
            assert!(same, "× {c}: score {i}: {a} vs {b}");
        }
    }
    // The absolute rule at × 1e-4: λ ≈ 1e-8 … 1e-4, so four of six
    // components fall below 1e-6 and the scores change.
    let small = every_score(&cutoff_run("", 1e-4).scores);
    let moved =
        base_scores.iter().zip(&small).map(|(a, b)| (a - b).abs()).filter(|d| d.is_finite()).fold(0.0, f64::max);
    assert!(moved > 1e-3, "the absolute cutoff moved no score ({moved:e})");
}

// ------------------------------------------------------------------ per-scale work in the background

fn run_with(dir: &Path, text: &str, workers: WorkerThreads, scales_in_flight: usize) -> RunResult {
    let plan = plan_in(dir, text);
    let options = StartOptions { workers, scales_in_flight, ..StartOptions::for_plan(&plan, StartPolicy::Fresh) };
    drive(Experiment::start(plan, identity_info(), options).unwrap(), identity, None).unwrap()
}

#[test]
fn scale_files_are_byte_identical_whatever_the_threads_and_scales_in_flight() {
    let text = config(5, 300, 12, "");
    let inline = scratch("inline");
    let inline_result = run_with(&inline, &text, WorkerThreads::Own(1), 0);
    for (name, workers, in_flight) in [
        ("one-thread", WorkerThreads::Own(1), 1),
        ("two-threads", WorkerThreads::Own(2), 2),
        ("all", WorkerThreads::AllCores, 4),
    ] {
        let dir = scratch(name);
        let result = run_with(&dir, &text, workers, in_flight);
        assert_eq!(result.results.scales, inline_result.results.scales, "{name}");
        for i in 0..5 {
            let scale = format!("scales/scale_{i:03}.json");
            assert_eq!(file(&dir.join("out"), &scale), file(&inline.join("out"), &scale), "{name}: {scale}");
        }
        for output in ["scores.csv", "table.md"] {
            assert_eq!(file(&dir.join("out"), output), file(&inline.join("out"), output), "{name}: {output}");
        }
    }
}

#[test]
fn a_scale_whose_work_fails_is_named_not_written_and_stops_the_run() {
    // Constant features at scale 2: no covariance eigenvalue, a probe error
    // found on a worker; it surfaces at a later call with the scale named.
    let dir = scratch("worker-error");
    let mut experiment = start(plan_in(&dir, &config(5, 200, 8, "")), StartPolicy::Fresh).unwrap();
    let err = loop {
        let batch = match experiment.next_batch() {
            Ok(Some(batch)) => batch,
            Ok(None) => break experiment.finish().unwrap_err(),
            Err(e) => {
                drop(experiment); // waits for the scales in flight
                break e;
            }
        };
        let features =
            if batch.scale_index == 2 { Array2::from_elem(batch.inputs.dim(), 0.5) } else { batch.inputs.clone() };
        if let Err(e) = experiment.fold(&batch, features.view()) {
            drop(experiment);
            break e;
        }
    };
    let message = err.to_string();
    assert!(matches!(err, ExperimentError::Probe { index: 2, .. }), "{message}");
    assert!(message.starts_with("scale 2 (s = 1.2"), "{message}");
    assert!(message.contains("no signal") && message.contains("the largest is"), "{message}");
    let out = dir.join("out");
    assert!(!out.join("scales/scale_002.json").exists(), "a failed scale is not written");
    assert!(out.join("scales/scale_000.json").exists() && out.join("scales/scale_001.json").exists());
    // What was finished is kept: a resume reuses it (and meets the same error at scale 2).
    let resumed = start(plan_in(&dir, &config(5, 200, 8, "")), StartPolicy::Resume).unwrap();
    assert!(resumed.finished_scales().starts_with(&[0, 1]) && !resumed.finished_scales().contains(&2));
}

#[test]
fn two_batches_in_hand_fold_oldest_first_and_score_the_same() {
    let text = config(3, 150, 6, "");
    let one = scratch("in-hand-1");
    let one_result = run_with(&one, &text, WorkerThreads::AllCores, 2);
    let two = scratch("in-hand-2");
    let plan = plan_in(&two, &text);
    let options = StartOptions {
        batches_in_hand: std::num::NonZeroUsize::new(2).unwrap(),
        ..StartOptions::for_plan(&plan, StartPolicy::Fresh)
    };
    let mut experiment = Experiment::start(plan, identity_info(), options).unwrap();
    // A double buffer: hand out batch i + 1 before folding batch i, across scale boundaries too.
    let mut held = std::collections::VecDeque::new();
    let mut checked = false;
    while let Some(batch) = experiment.next_batch().unwrap() {
        held.push_back(batch);
        if held.len() == 2 {
            if !checked {
                let err = experiment.next_batch().unwrap_err().to_string();
                assert!(err.contains("at most 2 batches in hand, fold the oldest first"), "{err}");
                let err = experiment.fold(&held[1], held[1].inputs.view()).unwrap_err().to_string();
                assert!(err.contains("is not the oldest batch in hand"), "{err}");
                checked = true;
            }
            let oldest = held.pop_front().unwrap();
            experiment.fold(&oldest, oldest.inputs.view()).unwrap();
        }
    }
    for batch in held {
        experiment.fold(&batch, batch.inputs.view()).unwrap();
    }
    let result = experiment.finish().unwrap();
    assert!(checked);
    for i in 0..3 {
        let scale = format!("scales/scale_{i:03}.json");
        assert_eq!(file(&two.join("out"), &scale), file(&one.join("out"), &scale), "{scale}");
    }
    assert_eq!(result.results.scales, one_result.results.scales);
}
