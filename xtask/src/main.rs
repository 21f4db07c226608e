//! `cargo xtask`: project automation that drives cargo and never links the
//! heavy crates (so `cargo xtask conformance` never compiles Burn).
//!
//! * `cargo xtask test [--fixtures DIR]` — the README's test command: fmt
//!   check, clippy with `-D warnings`, every workspace test, the conformance
//!   runner on the reference fixtures (default `tests/fixtures/reference`,
//!   or `$SYNBENCH_FIXTURES`).
//! * `cargo xtask conformance DIR` — check the build against fixture files.
//! * `cargo xtask setup libtorch` — a project-local venv (`.venv`) with the
//!   PyPI `torch==2.9.0` that tch 0.22 links against, plus timm for fixtures.
//! * `cargo xtask fixtures timm [--vit-base DIR]` — regenerate the timm
//!   parity fixtures of synbench-models; `fixtures torchscript` the
//!   TorchScript ones; `fixtures presets` the ViT presets' timm facts and
//!   pretrained normalisations.
//! * `cargo xtask bench [--backends flex,tch] [--quick]` — the reduced
//!   protocol through synbench on each backend and through PyTorch + timm +
//!   numpy, side by side, per stage (see `bench.rs`).
//! * `cargo xtask bench pipeline [--quick]` — whether the accelerator waits
//!   for the CPU: a mock encoder that sleeps (see `pipeline.rs`).

mod bench;
mod pipeline;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test [--fixtures DIR]   fmt check, clippy -D warnings, all tests, conformance, then the
                          Python package built into the venv and its pytest suite
                          (default DIR: $SYNBENCH_FIXTURES, else tests/fixtures/reference);
                          with the LibTorch venv present (see setup) also the tch backend
  conformance DIR         check this build against the reference fixture files in DIR
  run CONFIG [--resume | --restart]
                          build synbench in release with the backend CONFIG names and run it
                          (sets up LibTorch first when the backend is tch)
  setup libtorch          make .venv with torch==2.9.0 (for the tch backend) and timm
  fixtures timm [--vit-base DIR]
                          regenerate crates/synbench-models/tests/fixtures from timm
  fixtures torchscript    regenerate crates/synbench-models/tests/fixtures/torchscript (traced timm
                          ResNet and ConvNeXt, eager outputs)
  fixtures presets        regenerate the presets' timm architectures (tests/fixtures/presets.json)
                          and pretrained normalisations (src/timm_pretrained.rs)
  bench [--backends flex,tch] [--quick]
                          the reduced protocol (ViT-Ti/16 random init, 8 scales, 256 + 256,
                          eps 0 and 0.2) through synbench on each backend and through
                          PyTorch + timm + numpy: per-stage times, images/s, peak RSS, ratios;
                          plus generation and QCQP against their Python baselines
  bench pipeline [--quick]
                          the paper protocol through a mock encoder that takes no CPU and sleeps
                          T (D = 768, T = 60 s; D = 1024, T = 120 s): wall / T and the caller's
                          share with the per-scale work in the worker pool and inside fold";

/// PyPI pins: tch 0.22 links LibTorch 2.9.0; an unpinned timm install would
/// upgrade torch and break its CUDA 12 libraries.
const TORCH_PINS: [&str; 2] = ["torch==2.9.0", "torchvision==0.24.0"];
const PYTHON_PACKAGES: [&str; 3] = ["timm==1.0.31", "safetensors", "numpy"];
/// What the Python package's build and tests need in the same venv.
const PYTHON_TEST_PACKAGES: [&str; 6] = ["maturin>=1.9,<2", "pytest", "pandas", "tqdm", "mypy", "selenium"];

fn main() -> ExitCode {
    match xtask() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn xtask() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => {
            let fixtures = match args.get(1).map(String::as_str) {
                Some("--fixtures") => PathBuf::from(args.get(2).context("--fixtures needs a directory")?),
                Some(other) => bail!("unknown argument {other:?}\n\n{USAGE}"),
                None => reference_fixtures(),
            };
            test(&fixtures)
        }
        Some("conformance") => {
            let dir = args.get(1).context(format!("conformance needs a fixture directory\n\n{USAGE}"))?;
            conformance(Path::new(dir))
        }
        Some("run") => {
            let config = args.get(1).context(format!("run needs a config file\n\n{USAGE}"))?;
            run_config(Path::new(config), &args[2..])
        }
        Some("setup") => match args.get(1).map(String::as_str) {
            Some("libtorch") => setup_libtorch().map(|_| ()),
            _ => bail!("usage: cargo xtask setup libtorch"),
        },
        Some("fixtures") => match args.get(1).map(String::as_str) {
            Some("timm") => {
                let python = setup_libtorch()?;
                let mut cmd = Command::new(python);
                cmd.current_dir(project_root())
                    .arg("scripts/timm_fixtures.py")
                    .arg("crates/synbench-models/tests/fixtures")
                    .args(&args[2..]);
                run("timm fixtures", &mut cmd)
            }
            Some("torchscript") => {
                let python = setup_libtorch()?;
                let mut cmd = Command::new(python);
                cmd.current_dir(project_root())
                    .arg("scripts/torchscript_fixtures.py")
                    .arg("crates/synbench-models/tests/fixtures/torchscript");
                run("TorchScript fixtures", &mut cmd)
            }
            Some("presets") => {
                let python = setup_libtorch()?;
                let mut cmd = Command::new(python);
                cmd.current_dir(project_root()).arg("scripts/timm_presets.py");
                run("timm presets", &mut cmd)
            }
            _ => bail!("usage: cargo xtask fixtures timm [--vit-base DIR] | torchscript | presets"),
        },
        Some("bench") if args.get(1).map(String::as_str) == Some("pipeline") => pipeline::pipeline(&args[2..]),
        Some("bench") => bench::bench(&args[1..]),
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root").to_path_buf()
}

/// The reference fixtures the conformance runner checks: the project's own
/// copy in `tests/fixtures/reference`, or `$SYNBENCH_FIXTURES`.
pub(crate) fn reference_fixtures() -> PathBuf {
    env::var_os("SYNBENCH_FIXTURES").map_or_else(|| project_root().join("tests/fixtures/reference"), PathBuf::from)
}

pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

pub(crate) fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {step}");
    let status = cmd.status().with_context(|| format!("cannot start `{step}`"))?;
    if !status.success() {
        bail!("`{step}` failed ({status})");
    }
    Ok(())
}

fn test(fixtures: &Path) -> Result<()> {
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--check"]))?;
    // One feature set for clippy and tests, so Burn builds once per profile.
    let libtorch = libtorch_env()?;
    // synbench-cli/tch (which enables synbench-models/tch): the binary the
    // Python tests run must have the tch backend and arch = "torchscript".
    let features: &[&str] = if libtorch.is_some() { &["--features", "synbench-cli/tch"] } else { &[] };
    match &libtorch {
        Some(_) => eprintln!("==> LibTorch venv found: testing the flex and tch backends"),
        None if env::var_os("CI").is_some() => {
            bail!("CI must test the tch backend: run `cargo xtask setup libtorch` first (.ci/run does)")
        }
        None => eprintln!("==> no LibTorch venv (cargo xtask setup libtorch): testing the flex backend only"),
    }
    let with_env = |cmd: &mut Command| {
        if let Some(vars) = &libtorch {
            cmd.envs(vars.iter().map(|(k, v)| (k, v)));
        }
    };
    let mut clippy = cargo();
    clippy.args(["clippy", "--workspace", "--all-targets"]).args(features).args(["--", "-D", "warnings"]);
    with_env(&mut clippy);
    run("cargo clippy --workspace --all-targets -- -D warnings", &mut clippy)?;
    // The conformance runner's build (no encoders, no Burn) must stay clean too.
    run(
        "cargo clippy -p synbench-cli --no-default-features --all-targets -- -D warnings",
        cargo().args([
            "clippy",
            "-p",
            "synbench-cli",
            "--no-default-features",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    let mut tests = cargo();
    tests.args(["test", "--workspace"]).args(features);
    with_env(&mut tests);
    run("cargo test --workspace", &mut tests)?;
    conformance(fixtures)?;
    python_tests(libtorch.as_deref())
}

/// The Python package: built into the venv from this checkout (the same
/// `pip install ./crates/synbench-py` the README gives, without build
/// isolation so it reuses the venv's maturin), then its pytest suite, which
/// compares it with the `synbench` binary the cargo tests built.
fn python_tests(libtorch: Option<&[(String, String)]>) -> Result<()> {
    let Some(vars) = libtorch else {
        if env::var_os("CI").is_some() {
            bail!("CI must run the Python tests: run `cargo xtask setup libtorch` first (.ci/run does)");
        }
        eprintln!("==> no venv (cargo xtask setup libtorch): skipping the Python package's tests");
        return Ok(());
    };
    let mut pip = Command::new(venv_python());
    pip.args(["-m", "pip", "install", "--quiet", "--no-build-isolation", "--force-reinstall", "--no-deps"])
        .arg(project_root().join("crates/synbench-py"))
        .envs(vars.iter().map(|(k, v)| (k, v)));
    run("pip install ./crates/synbench-py (maturin, release)", &mut pip)?;
    // The stubs (`__init__.pyi`, `_synbench.pyi`) against the installed package.
    let mut stubtest = Command::new(venv_python());
    stubtest
        .args(["-m", "mypy.stubtest", "synbench", "--mypy-config-file"])
        .arg(project_root().join("crates/synbench-py/mypy.ini"))
        .current_dir(std::env::temp_dir())
        .envs(vars.iter().map(|(k, v)| (k, v)));
    run("python -m mypy.stubtest synbench", &mut stubtest)?;
    let mut pytest = Command::new(venv_python());
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=8"])
        .arg(project_root().join("crates/synbench-py/tests"))
        .env("SYNBENCH_BIN", project_root().join("target/debug/synbench"))
        .envs(vars.iter().map(|(k, v)| (k, v)));
    run("pytest crates/synbench-py/tests", &mut pytest)
}

/// The `[model] backend` a config names (default flex).
fn config_backend(config: &Path) -> Result<String> {
    let text = std::fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let value: toml::Table = text.parse().with_context(|| format!("{} is not valid TOML", config.display()))?;
    let backend = value.get("model").and_then(|m| m.get("backend")).and_then(|b| b.as_str()).unwrap_or("flex");
    match backend {
        "flex" | "tch" | "cuda" => Ok(backend.to_string()),
        other => bail!("{}: `model.backend` = {other:?}: expected \"flex\", \"tch\" or \"cuda\"", config.display()),
    }
}

fn run_config(config: &Path, extra: &[String]) -> Result<()> {
    let config = env::current_dir()?.join(config);
    let backend = config_backend(&config)?;
    let mut cmd = cargo();
    // `--bin synbench`: a tch build also has `synbench-tch`, which the
    // `synbench` launcher runs once it has checked that LibTorch loads.
    cmd.args(["run", "--release", "--quiet", "--package", "synbench-cli", "--bin", "synbench", "--features", &backend]);
    cmd.arg("--");
    cmd.arg("run").arg(&config).args(extra).env("SYNBENCH_GIT_HASH", git_hash());
    if backend == "tch" {
        setup_libtorch()?;
        let vars = libtorch_env()?.context("the LibTorch venv is not usable after setup")?;
        // `cargo run --bin synbench` builds the launcher only: build the command too.
        let mut build = cargo();
        build.args(["build", "--release", "--quiet", "--package", "synbench-cli", "--bins", "--features", &backend]);
        run("cargo build --release -p synbench-cli --bins --features tch", build.envs(vars.clone()))?;
        cmd.envs(vars);
    }
    run(&format!("synbench run {} (backend {backend}, release build)", config.display()), &mut cmd)
}

fn venv_dir() -> PathBuf {
    project_root().join(".venv")
}

/// The commit being built, `-dirty` with uncommitted changes, for the
/// provenance of results (`unknown` outside a git checkout).
pub(crate) fn git_hash() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(project_root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(hash) if git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty()) => {
            format!("{hash}-dirty")
        }
        Some(hash) => hash,
        None => "unknown".into(),
    }
}

pub(crate) fn venv_python() -> PathBuf {
    venv_dir().join("bin/python")
}

/// Whether the venv has the pinned torch (and timm).
fn venv_ready() -> bool {
    let check = "import torch, timm, safetensors, pytest, pandas, tqdm, maturin, mypy, selenium, PIL, sys; \
                 sys.exit(0 if torch.__version__.startswith('2.9.0') else 1)";
    venv_python().is_file()
        && Command::new(venv_python()).args(["-c", check]).output().is_ok_and(|o| o.status.success())
}

/// Creates `.venv` with the pinned torch and timm unless it is already there.
pub(crate) fn setup_libtorch() -> Result<PathBuf> {
    if venv_ready() {
        eprintln!("==> {} already has torch 2.9.0 and timm", venv_dir().display());
    } else {
        if !venv_python().is_file() {
            run("python3 -m venv .venv", Command::new("python3").args(["-m", "venv"]).arg(venv_dir()))?;
        }
        let constraints = venv_dir().join("constraints.txt");
        std::fs::write(&constraints, TORCH_PINS.join("\n") + "\n")?;
        let mut pip = Command::new(venv_python());
        pip.args(["-m", "pip", "install", "--quiet", "-c"])
            .arg(&constraints)
            .args(TORCH_PINS)
            .args(PYTHON_PACKAGES)
            .args(PYTHON_TEST_PACKAGES);
        run(
            "pip install torch==2.9.0 torchvision==0.24.0 timm maturin pytest pandas (about 7 GB, a few minutes)",
            &mut pip,
        )?;
    }
    if let Some(vars) = libtorch_env()? {
        eprintln!("==> to build and run the tch backend by hand:");
        for (k, v) in vars {
            // Show PATH and LD_LIBRARY_PATH as prepends, not this process's values.
            let shown = match k.as_str() {
                "PATH" | "LD_LIBRARY_PATH" => format!("{}:${k}", v.split(':').next().unwrap_or_default()),
                _ => v,
            };
            eprintln!("    export {k}=\"{shown}\"");
        }
    }
    Ok(venv_python())
}

/// The environment tch needs to build against and run with the venv's LibTorch,
/// or `None` without the venv.
pub(crate) fn libtorch_env() -> Result<Option<Vec<(String, String)>>> {
    if !venv_ready() {
        return Ok(None);
    }
    let out = Command::new(venv_python())
        .args(["-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
        .output()?;
    let torch_lib = String::from_utf8(out.stdout)?.trim().to_string();
    let venv = venv_dir().display().to_string();
    let path = format!("{venv}/bin:{}", env::var("PATH").unwrap_or_default());
    let ld = match env::var("LD_LIBRARY_PATH") {
        Ok(old) if !old.is_empty() => format!("{torch_lib}:{old}"),
        _ => torch_lib,
    };
    Ok(Some(vec![
        ("LIBTORCH_USE_PYTORCH".into(), "1".into()),
        ("VIRTUAL_ENV".into(), venv),
        ("PATH".into(), path),
        ("LD_LIBRARY_PATH".into(), ld),
    ]))
}

/// Where the no-models (Burn-free) cli is built: a folder of its own, so its
/// `synbench` binary never replaces the default build's `target/debug/synbench`
/// that the cli and Python tests run.
pub(crate) fn no_models_target() -> PathBuf {
    project_root().join("target/no-models")
}

fn conformance(dir: &Path) -> Result<()> {
    let dir = env::current_dir()?.join(dir);
    run(
        &format!("synbench conformance {}", dir.display()),
        cargo()
            .args([
                "run",
                "--quiet",
                "--package",
                "synbench-cli",
                "--bin",
                "synbench",
                "--no-default-features",
                "--target-dir",
            ])
            .arg(no_models_target())
            .args(["--", "conformance"])
            .arg(&dir),
    )
}

/// Checks as tests: the crate layering of ARCHITECTURE.md, read from cargo.
#[cfg(test)]
mod tidy {
    use super::*;

    /// Normal (non-dev, non-build) dependencies of a package: all of them
    /// (`depth = None`) or those `depth` levels down.
    fn dependencies(package: &str, depth: Option<u32>, extra: &[&str]) -> Vec<String> {
        let mut cmd = cargo();
        cmd.args(["tree", "--package", package, "--edges", "normal", "--prefix", "none", "--format", "{p}"])
            .args(extra);
        if let Some(depth) = depth {
            cmd.args(["--depth", &depth.to_string()]);
        }
        let out = cmd.output().expect("cargo tree runs");
        assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip(1) // the package itself
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    /// Fails if `package` reaches a crate of `forbidden` (or `forbidden-*`).
    fn check(package: &str, deps: &[String], forbidden: &[&str], how: &str) {
        for f in forbidden {
            assert!(
                !deps.iter().any(|d| d == f || d.starts_with(&format!("{f}-"))),
                "{package} must not depend on {f} {how} (ARCHITECTURE.md layering); see `cargo tree -p {package} -i {f}`"
            );
        }
    }

    #[test]
    fn layering_points_one_way() {
        // Frameworks must not be reachable at all; IO and CLI crates must not
        // be direct dependencies of a library below the CLI (linfa-logistic
        // pulls anyhow through argmin, which is not our layering).
        let frameworks = ["burn", "tch", "torch-sys", "cubecl"];
        let io = ["anyhow", "clap", "serde_json", "toml", "indicatif", "plotters", "tracing-subscriber", "ndarray-npy"];
        // synbench-experiment writes result files (serde_json, toml, plotters)
        // but is no front end.
        let front_end = ["anyhow", "clap", "indicatif", "tracing-subscriber", "ndarray-npy", "mimalloc"];
        let above = ["synbench-experiment", "synbench-cli", "synbench-py"];
        let layers: [(&str, Vec<&str>, bool, &[&str]); 5] = [
            (
                "synbench-theory",
                [&["synbench-data", "synbench-probe", "synbench-models", "ndarray"][..], &above].concat(),
                true,
                &io,
            ),
            (
                "synbench-data",
                [&["synbench-theory", "synbench-probe", "synbench-models"][..], &above].concat(),
                true,
                &io,
            ),
            ("synbench-probe", [&["synbench-data", "synbench-models"][..], &above].concat(), true, &io),
            // models may read the data crate's Normalization; Burn only with its features.
            ("synbench-models", [&["synbench-theory", "synbench-probe"][..], &above].concat(), false, &io),
            ("synbench-experiment", vec!["synbench-cli", "synbench-py"], true, &front_end),
        ];
        for (package, internal, framework_free, direct_forbidden) in layers {
            let all = dependencies(package, None, &[]);
            let direct = dependencies(package, Some(1), &[]);
            check(package, &all, &internal, "at all");
            if framework_free {
                check(package, &all, &frameworks, "at all");
            }
            check(package, &direct, direct_forbidden, "directly");
        }
        // Without its Burn features, synbench-models (what synbench-experiment
        // links) is framework-free, and so is the cli's conformance build.
        check(
            "synbench-models",
            &dependencies("synbench-models", None, &["--no-default-features"]),
            &frameworks,
            "without features",
        );
        check(
            "synbench-cli",
            &dependencies("synbench-cli", None, &["--no-default-features"]),
            &frameworks,
            "without features",
        );
    }

    #[test]
    fn the_no_models_cli_builds_and_runs_the_subcommands_without_an_encoder() {
        let target = no_models_target();
        let out = cargo()
            .args(["build", "--quiet", "-p", "synbench-cli", "--no-default-features", "--target-dir"])
            .arg(&target)
            .output()
            .expect("cargo build runs");
        assert!(out.status.success(), "the no-models cli does not build: {}", String::from_utf8_lossy(&out.stderr));
        let binary = target.join("debug/synbench");
        let help = Command::new(&binary).arg("--help").output().expect("the binary runs");
        let help = String::from_utf8_lossy(&help.stdout);
        for command in ["score", "table", "correlate", "probe", "conformance"] {
            assert!(help.lines().any(|l| l.trim_start().starts_with(command)), "`{command}` missing from:\n{help}");
        }
        for command in ["run", "encode"] {
            assert!(
                !help.lines().any(|l| l.trim_start().starts_with(command)),
                "`{command}` needs the models feature:\n{help}"
            );
        }
        let fixtures = reference_fixtures();
        let report = Command::new(&binary).arg("conformance").arg(&fixtures).output().expect("the binary runs");
        let text = String::from_utf8_lossy(&report.stdout);
        assert!(report.status.success() && text.contains(" passed, 0 failed"), "conformance without models: {text}");
    }

    #[test]
    fn architecture_lists_each_crates_direct_dependencies() {
        let text = std::fs::read_to_string(project_root().join("ARCHITECTURE.md")).unwrap();
        let section = text.split("## Dependencies").nth(1).expect("ARCHITECTURE.md has a Dependencies section");
        let section = section.split("\n## ").next().unwrap();
        let mut checked = 0;
        for line in section.lines().filter_map(|l| l.strip_prefix("- `")) {
            let (package, listed) = line.split_once("`: ").expect("- `crate`: dep, dep");
            let mut listed: Vec<&str> = listed.split(", ").collect();
            listed.sort_unstable();
            let mut actual = dependencies(package, Some(1), &[]);
            actual.sort();
            actual.dedup();
            assert_eq!(listed, actual, "ARCHITECTURE.md lists {package}'s dependencies wrongly");
            checked += 1;
        }
        assert_eq!(checked, 7, "one line per library crate and front end");
    }

    /// synbench-experiment's modules, and the modules each imports (`crate::x`
    /// outside comments).
    fn experiment_imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
        let src = project_root().join("crates/synbench-experiment/src");
        let mut graph = std::collections::BTreeMap::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let module = path.file_stem().unwrap().to_string_lossy().into_owned();
            let code = std::fs::read_to_string(&path).unwrap();
            let code = code.split("#[cfg(test)]").next().unwrap();
            let mut imports = std::collections::BTreeSet::new();
            for line in code.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
                for piece in line.split("crate::").skip(1) {
                    let name: String = piece.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                    if !name.is_empty() && name != module {
                        imports.insert(name);
                    }
                }
            }
            graph.insert(module, imports);
        }
        graph
    }

    #[test]
    fn experiment_modules_import_one_way() {
        let graph = experiment_imports();
        assert!(graph.len() > 10, "read the modules of synbench-experiment");
        // Depth-first search for a cycle; report its modules.
        fn visit(
            module: &str,
            graph: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
            stack: &mut Vec<String>,
            done: &mut std::collections::BTreeSet<String>,
        ) {
            if done.contains(module) {
                return;
            }
            if let Some(at) = stack.iter().position(|m| m == module) {
                panic!("synbench-experiment's modules import in a cycle: {} → {module}", stack[at..].join(" → "));
            }
            stack.push(module.to_string());
            for next in graph.get(module).into_iter().flatten() {
                visit(next, graph, stack, done);
            }
            stack.pop();
            done.insert(module.to_string());
        }
        let mut done = std::collections::BTreeSet::new();
        for module in graph.keys() {
            visit(module, &graph, &mut Vec::new(), &mut done);
        }
        for leaf in ["error", "options", "layout"] {
            let imports = &graph[leaf];
            assert!(imports.iter().all(|m| m == "error"), "{leaf} is a leaf module but imports {imports:?}");
        }
    }

    #[test]
    fn xtask_stays_light() {
        let internal = [
            "synbench-theory",
            "synbench-data",
            "synbench-probe",
            "synbench-models",
            "synbench-experiment",
            "synbench-cli",
        ];
        check("xtask", &dependencies("xtask", None, &[]), &internal, "at all");
        // An allow-list, not a deny-list: a new dependency of xtask is a decision.
        let allowed = ["anyhow", "toml", "serde_json"];
        for dependency in dependencies("xtask", Some(1), &[]) {
            assert!(
                allowed.contains(&dependency.as_str()),
                "xtask depends on {dependency}; it may use only {allowed:?}"
            );
        }
    }
}
