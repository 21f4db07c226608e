//! The whole pipeline on the identity encoder at small d: outputs, resume
//! after a kill, and bit-identical numbers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("synbench-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_config(dir: &Path, scales: usize, n: u64, dim: usize) -> PathBuf {
    let scales: Vec<String> = (1..=scales).map(|i| format!("{}", i as f64 * 0.4)).collect();
    let text = format!(
        r#"[model]
arch = "identity"
batch_size = 128
[data]
shape = [{dim}]
scales = [{}]
n_train = {n}
n_test = {n}
seed = 3
[probe]
epsilons = [0.0, 0.3]
[output]
dir = "out"
"#,
        scales.join(", ")
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn synbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_synbench"))
}

/// `synbench run CONFIG --quiet [flag]`: its stderr, and whether it succeeded.
fn try_run(config: &Path, flag: Option<&str>) -> (bool, String) {
    let mut cmd = synbench();
    cmd.arg("run").arg(config).arg("--quiet").args(flag);
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn run(config: &Path, resume: bool) {
    let (ok, stderr) = try_run(config, resume.then_some("--resume"));
    assert!(ok, "synbench run failed: {stderr}");
}

fn scale_files(out: &Path) -> usize {
    std::fs::read_dir(out.join("scales"))
        .map_or(0, |d| d.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".json")).count())
}

#[test]
fn a_run_writes_every_output_and_identity_scores_near_one() {
    let dir = scratch("outputs");
    let config = write_config(&dir, 6, 1024, 16);
    run(&config, false);
    let out = dir.join("out");
    for file in ["results.json", "scores.csv", "table.md", "scales/scale_000.json", "scales/scale_005.json"] {
        assert!(out.join(file).is_file(), "{file} missing");
    }
    // The figures: real PNG and SVG files with the curves' legend in them.
    for stem in ["bound_vs_threshold", "accuracy_vs_scale"] {
        let png = std::fs::read(out.join(format!("{stem}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{stem}.png is not a drawn PNG");
        let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("raw data") && svg.contains("identity ε = 0.3"), "{stem}.svg");
    }
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["schema"], "synbench-result/4");
    assert_eq!(results["feature_dim"], 16, "the identity's width");
    // Every score carries a jackknife standard error and its 95 % interval,
    // and the population estimate its own (SPEC §7).
    for eps in results["scores"].as_array().unwrap() {
        let score = eps["reference"][0].as_f64().unwrap();
        let interval = &eps["uncertainty"]["reference"];
        let se = interval["stderr"][0].as_f64().unwrap();
        assert!(se > 0.0 && se < 0.05, "stderr {se} at t = 0.6");
        let (low, high) = (interval["ci_low"][0].as_f64().unwrap(), interval["ci_high"][0].as_f64().unwrap());
        assert!((high - low - 2.0 * 2.262_157_162_740_992 * se).abs() < 1e-9 && low < score && score < high);
        let population = eps["population"]["reference"][0].as_f64().unwrap();
        let pop_se = eps["population"]["uncertainty"]["reference"]["stderr"][0].as_f64().unwrap();
        // The identity's population score is 1 (SPEC §5); 16 dimensions from
        // 1024 samples cost the plug-in probe little, so both are near it.
        assert!((population - 1.0).abs() < 0.1 && pop_se > 0.0, "population {population} ± {pop_se}");
    }
    let csv = std::fs::read_to_string(out.join("scores.csv")).unwrap();
    assert!(csv.starts_with("model,epsilon,threshold,score,stderr,ci_low,ci_high,estimator,mode,averaging\n"));
    let estimator = |name: &str| csv.lines().filter(|l| l.split(',').nth(7) == Some(name)).count();
    assert!(estimator("reference") > 0 && estimator("population") == estimator("reference"), "{csv}");
    // The finite-n picture: n/4, n/2 and n, both estimators, and its figure.
    let sizes: Vec<u64> =
        results["finite_n"].as_array().unwrap().iter().map(|f| f["n_train"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [256, 512, 1024]);
    let full = &results["finite_n"][2];
    assert_eq!(full["reference"][0], results["scores"][0]["reference"]);
    assert_eq!(full["population"][1], results["scores"][1]["population"]["reference"]);
    let png = std::fs::read(out.join("score_vs_n.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "score_vs_n.png is not a drawn PNG");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("## Score vs train size") && table.contains("n_train=256"), "{table}");
    assert!(table.contains(" ± ") && table.contains("## population estimator"), "{table}");
    // Identity (SPEC §5): the accuracy at scale s is Φ(s) up to the test
    // set's binomial noise (4 standard errors at n = 1024) plus the loss from
    // estimating a 16-dimensional probe from 1024 samples (< 0.01 here).
    for (i, scale) in results["scales"].as_array().unwrap().iter().enumerate() {
        let s = scale["scale"].as_f64().unwrap();
        let raw = scale["raw"]["accuracy"].as_f64().unwrap();
        let acc = scale["representation"][0]["accuracy"].as_f64().unwrap();
        let tolerance = 4.0 * (raw * (1.0 - raw) / 1024.0).sqrt() + 0.01;
        assert!((acc - raw).abs() <= tolerance, "scale {i} (s = {s}): accuracy {acc} vs Φ(s) = {raw}");
    }
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("| model | ε | t=0.6 |") && table.contains("| identity | best ε |"), "{table}");
}

#[test]
fn killed_and_resumed_run_matches_an_uninterrupted_one() {
    // 10 scales at d = 256: long enough that the kill lands mid-run; the
    // test checks that it did.
    let whole = scratch("whole");
    let config = write_config(&whole, 10, 2048, 256);
    run(&config, false);
    let expected = std::fs::read(whole.join("out/scores.csv")).unwrap();

    let killed = scratch("killed");
    let config = write_config(&killed, 10, 2048, 256);
    let mut child = synbench().arg("run").arg(&config).arg("--quiet").spawn().unwrap();
    // Scales finish on worker threads, not always in grid order: wait for two of them.
    let out = killed.join("out");
    let deadline = Instant::now() + Duration::from_secs(300);
    while (!out.join("scales").is_dir() || scale_files(&out) < 2) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    let finished = scale_files(&out);
    assert!(!status.success(), "the run ended before the kill");
    assert!((2..10).contains(&finished), "the kill must leave some but not all of 10 scales; found {finished}");
    assert!(!out.join("results.json").exists(), "a killed run must not have final results");
    let on_disk = |i: &usize| out.join(format!("scales/scale_{i:03}.json")).is_file();
    let kept: Vec<(usize, Vec<u8>)> = (0..10)
        .filter(on_disk)
        .map(|i| (i, std::fs::read(out.join(format!("scales/scale_{i:03}.json"))).unwrap()))
        .collect();
    assert_eq!(kept.len(), finished);

    run(&config, true);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["provenance"]["scales_computed"], 10 - finished as u64, "finished scales are reused");
    for (i, bytes) in &kept {
        assert_eq!(
            &std::fs::read(out.join(format!("scales/scale_{i:03}.json"))).unwrap(),
            bytes,
            "scale {i} rewritten"
        );
    }
    assert_eq!(std::fs::read(out.join("scores.csv")).unwrap(), expected, "resumed scores differ");
}

#[test]
fn an_edited_config_is_refused_with_its_changes_and_restart_starts_over() {
    let dir = scratch("other");
    let config = write_config(&dir, 3, 256, 8);
    run(&config, false);
    let before = std::fs::read(dir.join("out/scores.csv")).unwrap();
    // The same config again without a flag: refused, the run is kept.
    let (ok, stderr) = try_run(&config, None);
    assert!(!ok && stderr.contains("already holds 3 of 3 finished scale(s) of this plan"), "{stderr}");
    // Same output folder, different seed and n_test: refused with and without --resume.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("seed = 3", "seed = 4")
        .replace("n_test = 256", "n_test = 128");
    std::fs::write(&config, text).unwrap();
    for flag in [Some("--resume"), None] {
        let (ok, stderr) = try_run(&config, flag);
        assert!(!ok, "{flag:?} accepted a changed plan");
        assert!(stderr.contains("data.n_test: 256 → 128") && stderr.contains("data.seed: 3 → 4"), "{stderr}");
    }
    assert_eq!(std::fs::read(dir.join("out/scores.csv")).unwrap(), before, "a refused run touched the results");
    let (ok, stderr) = try_run(&config, Some("--restart"));
    assert!(ok, "{stderr}");
    assert_ne!(std::fs::read(dir.join("out/scores.csv")).unwrap(), before, "--restart recomputed under the new plan");
}
