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
  test [--fixtures DIR]   fmt check, clippy -D warnings, all tests, conformance (default DIR: ../shared/fixtures)
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
                None => project_root().join("../shared/fixtures"),
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
