//! `cargo xtask`: project automation that drives cargo and never links the
//! heavy crates (so `cargo xtask conformance` never compiles Burn).
//!
//! * `cargo xtask test [--fixtures DIR]` — the README's test command: fmt
//!   check, clippy with `-D warnings`, every workspace test, the conformance
//!   runner on the fixtures (default `../shared/fixtures`).
//! * `cargo xtask conformance DIR` — check the build against fixture files.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  test [--fixtures DIR]   fmt check, clippy -D warnings, all tests, conformance
                          (default DIR: $SYNBENCH_FIXTURES, else ../shared/fixtures)
  conformance DIR         check this build against the reference fixture files in DIR";

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
                None => match env::var_os("SYNBENCH_FIXTURES") {
                    Some(dir) => PathBuf::from(dir),
                    None => project_root().join("../shared/fixtures"),
                },
            };
            test(&fixtures)
        }
        Some("conformance") => {
            let dir = args.get(1).context(format!("conformance needs a fixture directory\n\n{USAGE}"))?;
            conformance(Path::new(dir))
        }
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the root").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(project_root());
    cmd
}

fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {step}");
    let status = cmd.status().with_context(|| format!("cannot start `{step}`"))?;
    if !status.success() {
        bail!("`{step}` failed ({status})");
    }
    Ok(())
}

fn test(fixtures: &Path) -> Result<()> {
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--check"]))?;
    run(
        "cargo clippy --workspace --all-targets -- -D warnings",
        cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]),
    )?;
    run("cargo test --workspace", cargo().args(["test", "--workspace"]))?;
    conformance(fixtures)
}

fn conformance(dir: &Path) -> Result<()> {
    let dir = env::current_dir()?.join(dir);
    run(
        &format!("synbench conformance {}", dir.display()),
        cargo()
            .args(["run", "--quiet", "--package", "synbench-cli", "--no-default-features", "--", "conformance"])
            .arg(&dir),
    )
}

/// Checks as tests: the crate layering of ARCHITECTURE.md, read from cargo.
#[cfg(test)]
mod tidy {
    use super::*;

    /// Normal (non-dev, non-build) dependencies of a package, transitively.
    fn dependencies(package: &str) -> Vec<String> {
        let out = cargo()
            .args(["tree", "--package", package, "--edges", "normal", "--prefix", "none", "--format", "{p}"])
            .output()
            .expect("cargo tree runs");
        assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .skip(1) // the package itself
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect()
    }

    fn check(package: &str, forbidden: &[&str]) {
        let deps = dependencies(package);
        for f in forbidden {
            assert!(
                !deps.iter().any(|d| d == f || d.starts_with(&format!("{f}-"))),
                "{package} must not depend on {f} (ARCHITECTURE.md layering); found in `cargo tree -p {package}`"
            );
        }
    }

    #[test]
    fn layering_points_one_way() {
        let frameworks = ["burn", "tch", "torch-sys", "cubecl"];
        let io = ["anyhow", "clap", "serde_json", "toml"];
        let mut theory = vec!["synbench-data", "synbench-probe", "synbench-models", "synbench-cli", "ndarray"];
        theory.extend(frameworks.iter().chain(&io));
        check("synbench-theory", &theory);
        let mut data = vec!["synbench-theory", "synbench-probe", "synbench-models", "synbench-cli"];
        data.extend(frameworks.iter().chain(&io));
        check("synbench-data", &data);
        let mut probe = vec!["synbench-data", "synbench-models", "synbench-cli"];
        probe.extend(frameworks.iter().chain(&io));
        check("synbench-probe", &probe);
        let mut models = vec!["synbench-theory", "synbench-probe", "synbench-cli"];
        models.extend(io.iter());
        check("synbench-models", &models);
    }

    #[test]
    fn xtask_stays_light() {
        check("xtask", &["synbench-theory", "synbench-data", "synbench-probe", "synbench-models", "synbench-cli"]);
    }
}
