//! The non-Gaussian oracle, `h = tanh(A·x + σ·η)` (SPEC §7): no closed form,
//! so its population score is computed once by Monte Carlo — a run with
//! 200 000 + 200 000 samples per scale, whose plug-in probe *is* the
//! population probe to within ~D/n and whose test accuracy is the
//! population's to ±0.001 — and committed as `fixtures/tanh_oracle.json`,
//! one entry per feature width D (A is D × D on D-pixel inputs). Regenerate
//! (or add) widths with
//!
//! ```text
//! SYNBENCH_WRITE_ORACLE_FIXTURE=64,192,384,768 cargo test --release -p synbench-experiment --test tanh_oracle -- --nocapture
//! ```
//!
//! The test runs the paper-sized protocol (2048 + 2048) and asserts the
//! population estimate within 0.05 of the fixture: at D = 64 always, at
//! every width in the fixture with `SYNBENCH_SLOW=1` (release mode; how the
//! error grows with D).

use std::path::PathBuf;

use synbench_experiment::RunResult;

mod common;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tanh_oracle.json")
}

fn run(dim: usize, n: u64, seed: u64) -> RunResult {
    let text = format!(
        "[model]\narch = \"linear_gaussian\"\noutput_dim = {dim}\nspectrum_decay = 0.7\nnoise = 1.0\nnonlinearity = \"tanh\"\n\
         seed = 7\nbatch_size = 4096\n[data]\nshape = [{dim}]\nn_train = {n}\nn_test = {n}\nseed = {seed}\n\
         [probe]\nepsilons = [0.0, 0.2]\n[score]\nthresholds = [0.6, 0.7, 0.8, 0.9]\n"
    );
    common::run_oracle("<tanh oracle>", &text)
}

fn scores(result: &RunResult, population: bool) -> Vec<Vec<f64>> {
    result
        .results
        .scores
        .iter()
        .map(|s| {
            let v = if population { &s.population.as_ref().unwrap().reference } else { &s.reference };
            v.iter().map(|x| x.0).collect()
        })
        .collect()
}

/// The fixture's widths: `(D, Monte Carlo scores per ε and threshold)`.
fn read_fixture() -> Vec<(usize, Vec<Vec<f64>>)> {
    let Ok(text) = std::fs::read_to_string(fixture()) else { return Vec::new() };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["widths"]
        .as_array()
        .expect("tanh_oracle.json: `widths` is an array")
        .iter()
        .map(|w| (w["dim"].as_u64().unwrap() as usize, serde_json::from_value(w["scores"].clone()).unwrap()))
        .collect()
}

#[test]
fn write_the_monte_carlo_fixture() {
    let Ok(dims) = std::env::var("SYNBENCH_WRITE_ORACLE_FIXTURE") else { return };
    let n = 200_000;
    let mut widths = read_fixture();
    for dim in dims.split(',').map(|d| d.trim().parse::<usize>().unwrap()) {
        let clock = std::time::Instant::now();
        let truth = scores(&run(dim, n, 1), false);
        println!("D {dim}: {truth:?} ({:.0} s)", clock.elapsed().as_secs_f64());
        widths.retain(|(d, _)| *d != dim);
        widths.push((dim, truth));
    }
    widths.sort_by_key(|(d, _)| *d);
    let json = serde_json::json!({
        "what": "population SynBench-score (reference grid mode) of h = tanh(A x + 1.0 eta), A: D x D, spectrum i^-0.7, model seed 7, paper scales, epsilons 0 and 0.2, by Monte Carlo: the plug-in probe and test accuracy of a run with n_train = n_test = 200000 per scale",
        "n_monte_carlo": n,
        "thresholds": [0.6, 0.7, 0.8, 0.9],
        "epsilons": [0.0, 0.2],
        "widths": widths.iter().map(|(dim, scores)| serde_json::json!({"dim": dim, "scores": scores})).collect::<Vec<_>>(),
    });
    std::fs::write(fixture(), serde_json::to_string_pretty(&json).unwrap() + "\n").unwrap();
    println!("wrote {}", fixture().display());
}

#[test]
fn the_population_estimate_is_near_the_monte_carlo_population_score() {
    let slow = std::env::var_os("SYNBENCH_SLOW").is_some();
    let widths = read_fixture();
    assert!(widths.iter().any(|(d, _)| *d == 64), "the fixture has D = 64");
    for (dim, truth) in widths.into_iter().filter(|(d, _)| slow || *d == 64) {
        let result = run(dim, 2048, 11);
        let (population, reference) = (scores(&result, true), scores(&result, false));
        for e in 0..2 {
            for t in 0..4 {
                let (p, r, m) = (population[e][t], reference[e][t], truth[e][t]);
                eprintln!(
                    "D {dim} ε index {e} t index {t}: Monte Carlo {m:.4}, population estimate {p:.4} (error {:+.4}), reference {r:.4}",
                    p - m
                );
                assert!((p - m).abs() <= 0.05, "D {dim}: population estimate {p} vs Monte Carlo {m}");
            }
        }
    }
}
