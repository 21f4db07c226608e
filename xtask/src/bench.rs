//! `cargo xtask bench`: issue 6's side-by-side measurement, all in one run.
//!
//! 1. The reduced protocol — `vit_tiny_patch16_224` at random init, 224 px,
//!    scales 0.5, 1.0, …, 4.0, n = 256 + 256, ε ∈ {0, 0.2}, batch 32 — through
//!    one release build of synbench on each backend asked for, and through
//!    `scripts/bench_pipeline.py` (PyTorch + timm + numpy + cvxpy/SCS) in the
//!    project venv. Per-stage seconds come from each side's own timers
//!    (synbench: `results.json` → `provenance.stage_seconds`).
//! 2. Generation at d = 150 528: criterion's `generate_imagenet_normalised`
//!    (batch 64) against `scripts/bench_generation.py`, the reference's
//!    per-sample `torch.normal` loop.
//! 3. The ℓ2 QCQP at d = 768: criterion's `l2_qcqp_exact` against
//!    `scripts/bench_qcqp.py --instance rust-bench` (cvxpy + SCS on the same
//!    instance).
//!
//! Everything lands in `target/bench/` (configs, run folders, JSON, and
//! `bench.md`, the table printed at the end).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{cargo, git_hash, libtorch_env, project_root, run, setup_libtorch};

/// The Python side's extra packages (the reference solves its QCQP with cvxpy + SCS).
const BENCH_PYTHON_PACKAGES: [&str; 1] = ["cvxpy==1.9.3"];
const STAGES: [&str; 5] = ["generation", "encoding", "statistics", "probe", "score"];

struct Protocol {
    img_size: usize,
    scales: Vec<f64>,
    n: usize,
    batch: usize,
}

impl Protocol {
    fn full() -> Self {
        Self { img_size: 224, scales: (1..=8).map(|i| 0.5 * f64::from(i)).collect(), n: 256, batch: 32 }
    }

    /// A smoke test of the harness itself (112 px, 2 scales, 32 + 32).
    fn quick() -> Self {
        Self { img_size: 112, scales: vec![1.0, 2.0], n: 32, batch: 16 }
    }

    /// `python SCRIPT` on this protocol, writing its JSON to `json`.
    fn python(&self, python: &Path, root: &Path, script: &str, json: &Path) -> Command {
        let scales: Vec<String> = self.scales.iter().map(|s| format!("{s:?}")).collect();
        let mut cmd = Command::new(python);
        cmd.current_dir(root)
            .arg(script)
            .args(["--img-size", &self.img_size.to_string(), "--scales", &scales.join(",")])
            .args(["--n-train", &self.n.to_string(), "--n-test", &self.n.to_string()])
            .args(["--batch", &self.batch.to_string(), "--json"])
            .arg(json);
        cmd
    }

    fn config(&self, backend: &str, out: &Path) -> String {
        let scales: Vec<String> = self.scales.iter().map(|s| format!("{s:?}")).collect();
        format!(
            "# Written by `cargo xtask bench`.\n[model]\narch = \"vit\"\npreset = \"vit_tiny_patch16_224\"\nimg_size = {img}\n\
             backend = \"{backend}\"\nbatch_size = {batch}\nseed = 0\n[data]\nshape = [3, {img}, {img}]\nscales = [{scales}]\n\
             n_train = {n}\nn_test = {n}\nseed = 12\n[probe]\nepsilons = [0.0, 0.2]\n[output]\ndir = {dir:?}\n",
            img = self.img_size,
            batch = self.batch,
            scales = scales.join(", "),
            n = self.n,
            dir = out.display().to_string(),
        )
    }
}

/// One pipeline measurement.
struct PipelineRun {
    name: String,
    stages: Vec<f64>,
    wall: f64,
    images_per_second: f64,
    peak_rss_mib: f64,
}

fn number(v: &Value, path: &[&str]) -> Result<f64> {
    let mut cur = v;
    for key in path {
        cur = &cur[*key];
    }
    cur.as_f64().with_context(|| format!("`{}` is missing or not a number", path.join(".")))
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Criterion's median time per iteration, in seconds (the Python baselines
/// report medians too: the shared machine's noise is one-sided).
fn criterion_median(id: &str) -> Result<f64> {
    let path = project_root().join("target/criterion").join(id).join("new/estimates.json");
    Ok(number(&read_json(&path)?, &["median", "point_estimate"])? * 1e-9)
}

pub(crate) fn bench(args: &[String]) -> Result<()> {
    let mut backends = vec!["flex".to_string(), "tch".to_string()];
    let mut protocol = Protocol::full();
    let mut quick = false;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--backends" => {
                let list = args.get(i + 1).context("--backends needs a list, e.g. flex,tch")?;
                backends = list.split(',').map(str::to_string).collect();
                i += 1;
            }
            "--quick" => {
                protocol = Protocol::quick();
                quick = true;
            }
            other => bail!("unknown argument {other:?}: usage: cargo xtask bench [--backends flex,tch] [--quick]"),
        }
        i += 1;
    }
    if let Some(bad) = backends.iter().find(|b| !["flex", "tch", "cuda"].contains(&b.as_str())) {
        bail!("--backends: unknown backend {bad:?}; expected flex, tch or cuda");
    }
    let root = project_root();
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;

    // The Python side and the tch backend both need the venv.
    let python = setup_libtorch()?;
    let has_cvxpy = Command::new(&python).args(["-c", "import cvxpy"]).output().is_ok_and(|o| o.status.success());
    if !has_cvxpy {
        run(
            "pip install cvxpy (the reference's QCQP solver)",
            Command::new(&python).args(["-m", "pip", "install", "--quiet"]).args(BENCH_PYTHON_PACKAGES),
        )?;
    }
    let torch_env = libtorch_env()?.context("the LibTorch venv is not usable after setup")?;

    // One release build serves every backend (flex is always compiled in).
    let extra: Vec<&str> = backends.iter().map(String::as_str).filter(|b| *b != "flex").collect();
    let features = if extra.is_empty() { "flex".to_string() } else { extra.join(",") };
    let mut build = cargo();
    build
        .args(["build", "--release", "--package", "synbench-cli", "--features", &features])
        .envs(torch_env.clone())
        .env("SYNBENCH_GIT_HASH", git_hash());
    run(&format!("cargo build --release -p synbench-cli --features {features}"), &mut build)?;
    let binary = root.join("target/release/synbench");

    let mut runs = Vec::new();
    for backend in &backends {
        let dir = out.join(format!("run_{backend}"));
        let config = out.join(format!("bench_{backend}.toml"));
        std::fs::write(&config, protocol.config(backend, &dir))?;
        let mut cmd = Command::new(&binary);
        cmd.arg("run").arg(&config).arg("--quiet").arg("--restart").envs(torch_env.clone());
        let clock = Instant::now();
        run(&format!("synbench run {} ({backend})", config.display()), &mut cmd)?;
        let wall = clock.elapsed().as_secs_f64();
        let results = read_json(&dir.join("results.json"))?;
        let p = &results["provenance"];
        runs.push(PipelineRun {
            name: format!("synbench {backend}"),
            stages: STAGES.iter().map(|s| number(p, &["stage_seconds", s])).collect::<Result<_>>()?,
            wall,
            images_per_second: number(p, &["encoder_images_per_second"])?,
            peak_rss_mib: number(p, &["peak_rss_mib"])?,
        });
    }

    let torch_json = out.join("pytorch.json");
    let mut py = protocol.python(&python, &root, "scripts/bench_pipeline.py", &torch_json);
    let clock = Instant::now();
    run("PyTorch + timm + numpy pipeline (scripts/bench_pipeline.py)", &mut py)?;
    let wall = clock.elapsed().as_secs_f64();
    let torch = read_json(&torch_json)?;
    runs.push(PipelineRun {
        name: "PyTorch".into(),
        stages: STAGES.iter().map(|s| number(&torch, &["stages_s", s])).collect::<Result<_>>()?,
        wall,
        images_per_second: number(&torch, &["images_per_s"])?,
        peak_rss_mib: number(&torch, &["peak_rss_mb"])?,
    });

    // The Python package driving the same timm model on torch CPU (its wheel
    // built from this checkout into the venv).
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--quiet", "--no-build-isolation", "--force-reinstall", "--no-deps"])
        .arg(root.join("crates/synbench-py"))
        .envs(torch_env.clone()); // the venv's bin (maturin) on PATH
    run("pip install ./crates/synbench-py", &mut pip)?;
    let py_json = out.join("synbench_py.json");
    let mut spy = protocol.python(&python, &root, "scripts/bench_synbench_py.py", &py_json);
    let clock = Instant::now();
    run("synbench-py + timm on torch CPU (scripts/bench_synbench_py.py)", &mut spy)?;
    let wall = clock.elapsed().as_secs_f64();
    let spy = read_json(&py_json)?;
    runs.push(PipelineRun {
        name: "synbench-py".into(),
        stages: STAGES.iter().map(|s| number(&spy, &["stages_s", s])).collect::<Result<_>>()?,
        // The run's own wall (from the Experiment to the results), as the CLI's
        // results.json reports it; `wall` above adds interpreter start and imports.
        wall: number(&spy, &["wall_s"])?.min(wall),
        images_per_second: number(&spy, &["images_per_s"])?,
        peak_rss_mib: number(&spy, &["peak_rss_mb"])?,
    });

    // Micro-benchmarks: criterion on our side, the Python baselines on theirs.
    let micro = if quick { None } else { Some(micro_benchmarks(&python, &out)?) };

    let report = report(&runs, micro.as_ref(), quick);
    print!("{report}");
    std::fs::write(out.join("bench.md"), &report)?;
    eprintln!("==> written {}", out.join("bench.md").display());
    Ok(())
}

struct Micro {
    rust_samples_per_second: f64,
    /// The torch loop's median pass.
    torch_samples_per_second: f64,
    /// Every torch pass's rate.
    torch_passes: Vec<f64>,
    /// `(ε, rust seconds, SCS seconds, SCS max |z − z*|)`.
    qcqp: Vec<(String, f64, f64, f64)>,
}

fn micro_benchmarks(python: &Path, out: &Path) -> Result<Micro> {
    for (bench, filter) in [("generation", "samples/batch=64"), ("theory", "l2_qcqp_exact/d=768")] {
        let mut cmd = cargo();
        // Without the `encoders` feature: these two never need Burn.
        cmd.args(["bench", "--package", "synbench-benches", "--no-default-features", "--bench", bench, "--"])
            .arg(filter);
        run(&format!("cargo bench --bench {bench} -- {filter}"), &mut cmd)?;
    }
    let batch_seconds = criterion_median("generate_imagenet_normalised/samples/batch=64,d=150528")?;
    let generation_json = out.join("generation.json");
    run(
        "per-sample torch.normal loop (scripts/bench_generation.py)",
        Command::new(python)
            .current_dir(project_root())
            .args(["scripts/bench_generation.py", "--json"])
            .arg(&generation_json),
    )?;
    let torch_generation = read_json(&generation_json)?;
    let qcqp_json = out.join("qcqp.json");
    run(
        "cvxpy + SCS QCQP at d = 768 (scripts/bench_qcqp.py --instance rust-bench)",
        Command::new(python)
            .current_dir(project_root())
            .args(["scripts/bench_qcqp.py", "--instance", "rust-bench", "--json"])
            .arg(&qcqp_json),
    )?;
    let scs = read_json(&qcqp_json)?;
    let mut qcqp = Vec::new();
    for eps in ["0.2", "0.8"] {
        let rust = criterion_median(&format!("l2_qcqp_exact/d=768/eps={eps}"))?;
        let median = number(&scs, &["median_s", eps])?;
        let error = number(&scs, &["max_abs_err", eps]).unwrap_or(f64::NAN);
        qcqp.push((eps.to_string(), rust, median, error));
    }
    Ok(Micro {
        rust_samples_per_second: 64.0 / batch_seconds,
        torch_samples_per_second: number(&torch_generation, &["samples_per_s"])?,
        torch_passes: torch_generation["samples_per_s_passes"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default(),
        qcqp,
    })
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn report(runs: &[PipelineRun], micro: Option<&Micro>, quick: bool) -> String {
    let mut s = String::new();
    let protocol = if quick {
        "QUICK smoke protocol (112 px, 2 scales, 32 + 32): not the issue's protocol"
    } else {
        "vit_tiny_patch16_224 random init, 224 px, 8 scales, 256 + 256, ε ∈ {0, 0.2}, batch 32"
    };
    let _ = writeln!(s, "# cargo xtask bench\n\n{protocol}; one run, same machine.\n");
    let _ = write!(s, "| stage (s) |");
    for r in runs {
        let _ = write!(s, " {} |", r.name);
    }
    let _ = write!(s, "\n|---|{}\n", "---:|".repeat(runs.len()));
    for (k, stage) in STAGES.iter().enumerate() {
        let _ = write!(s, "| {stage} |");
        for r in runs {
            let _ = write!(s, " {:.3} |", r.stages[k]);
        }
        s.push('\n');
    }
    type Cell = Box<dyn Fn(&PipelineRun) -> String>;
    let rows: [(&str, Cell); 4] = [
        ("wall (process)", Box::new(|r| format!("{:.2}", r.wall))),
        ("encoder images/s", Box::new(|r| format!("{:.2}", r.images_per_second))),
        ("not encoding, % of wall", Box::new(|r| format!("{:.2}", 100.0 * (1.0 - r.stages[1] / r.wall).max(0.0)))),
        ("peak RSS (MiB)", Box::new(|r| format!("{:.0}", r.peak_rss_mib))),
    ];
    for (name, cell) in rows {
        let _ = write!(s, "| {name} |");
        for r in runs {
            let _ = write!(s, " {} |", cell(r));
        }
        s.push('\n');
    }
    s.push_str(
        "\nsynbench's generation runs on its own thread (a one-thread pool beside a CPU encoder), overlapped with encoding; its time is not on the wall.\n",
    );

    let torch = runs.iter().find(|r| r.name == "PyTorch");
    let _ = writeln!(s, "\n## Targets\n\n| target | measured | |\n|---|---:|---|");
    for r in runs.iter().filter(|r| r.name != "PyTorch") {
        if let Some(t) = torch {
            let ratio = r.images_per_second / t.images_per_second;
            let (goal, met) =
                if r.name.ends_with("tch") { ("≥ 0.90", ratio >= 0.9) } else { ("≥ 0.50", ratio >= 0.5) };
            let _ = writeln!(s, "| {} encoding vs PyTorch ({goal}) | {ratio:.2}× | {} |", r.name, verdict(met));
        }
        let share = 100.0 * (1.0 - r.stages[1] / r.wall).max(0.0);
        let _ = writeln!(s, "| {} not-encoding share (≤ 2 %) | {share:.2} % | {} |", r.name, verdict(share <= 2.0));
        let _ = writeln!(
            s,
            "| {} peak RSS (≤ 1 GiB) | {:.0} MiB | {} |",
            r.name,
            r.peak_rss_mib,
            verdict(r.peak_rss_mib <= 1024.0)
        );
    }
    if let Some(m) = micro {
        let ratio = m.rust_samples_per_second / m.torch_samples_per_second;
        let _ = writeln!(
            s,
            "| generation d = 150 528 vs per-sample torch.normal (≥ 20×) | {:.0} vs {:.0} samples/s = {ratio:.1}× | {} |",
            m.rust_samples_per_second,
            m.torch_samples_per_second,
            verdict(ratio >= 20.0)
        );
        for (eps, rust, scs, err) in &m.qcqp {
            let ratio = scs / rust;
            let _ = writeln!(
                s,
                "| QCQP d = 768, ε = {eps} vs cvxpy/SCS (≥ 1000×) | {:.1} µs vs {:.1} ms = {ratio:.0}× (SCS max error {err:.1e}) | {} |",
                rust * 1e6,
                scs * 1e3,
                verdict(ratio >= 1000.0)
            );
        }
        let passes: Vec<String> = m.torch_passes.iter().map(|r| format!("{r:.0}")).collect();
        let _ = writeln!(
            s,
            "\nGeneration and QCQP: medians on both sides (criterion; the torch loop's {} passes of 256 samples ran at {} samples/s).",
            passes.len(),
            passes.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_config_is_the_issue_protocol() {
        let text = Protocol::full().config("tch", Path::new("/tmp/x"));
        let value: toml::Table = text.parse().unwrap();
        assert_eq!(value["model"]["preset"].as_str(), Some("vit_tiny_patch16_224"));
        assert_eq!(value["model"]["backend"].as_str(), Some("tch"));
        let scales = value["data"]["scales"].as_array().unwrap();
        assert_eq!(scales.len(), 8);
        assert_eq!(scales[7].as_float(), Some(4.0));
        assert_eq!(value["data"]["n_train"].as_integer(), Some(256));
        assert_eq!(value["probe"]["epsilons"].as_array().unwrap().len(), 2);
    }
}
