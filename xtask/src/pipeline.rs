//! `cargo xtask bench pipeline [--quick]`: does the accelerator wait for the
//! CPU? The paper protocol driven by a mock encoder that takes no CPU and
//! sleeps its share of T per batch (`crates/synbench-experiment/examples/
//! mock_encoder.rs`), at D = 768 with T = 60 s and D = 1024 with T = 120 s,
//! with the per-scale work in the worker pool (2 scales in flight) and,
//! for comparison, inside `fold` on the caller's thread (0 in flight).
//! Writes `target/bench/pipeline.md` and the JSON lines beside it.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{cargo, project_root, run};

pub(crate) fn pipeline(args: &[String]) -> Result<()> {
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        _ => bail!("usage: cargo xtask bench pipeline [--quick]"),
    };
    // (D, T, scales): the paper's 49 scales, or 6 for a smoke test of the harness.
    let cases: &[(usize, f64, usize)] = if quick { &[(256, 6.0, 6)] } else { &[(768, 60.0, 49), (1024, 120.0, 49)] };
    run(
        "cargo build --release --example mock_encoder",
        cargo().args(["build", "--release", "-p", "synbench-experiment", "--example", "mock_encoder"]),
    )?;
    let root = project_root();
    let binary = root.join("target/release/examples/mock_encoder");
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut table = format!(
        "# The accelerator never waits: mock encoder, paper protocol\n\n{cpu}, {cores} cores. Wall against the \
         encoder's own time T; the caller's time inside next_batch + fold as a share of the wall.\n\n\
         | D | T (s) | scales in flight | wall (s) | wall / T | caller share | finish (s) | worker probe s | peak RSS (MiB) |\n\
         |---|---|---|---|---|---|---|---|---|\n"
    );
    let mut lines = String::new();
    for &(dim, seconds, scales) in cases {
        for in_flight in [2, 0] {
            let mut cmd = Command::new(&binary);
            cmd.args(["--dim", &dim.to_string(), "--seconds", &seconds.to_string()]).args([
                "--scales",
                &scales.to_string(),
                "--scales-in-flight",
                &in_flight.to_string(),
            ]);
            let output = cmd.output().with_context(|| format!("cannot run {}", binary.display()))?;
            if !output.status.success() {
                bail!("mock_encoder failed: {}", String::from_utf8_lossy(&output.stderr));
            }
            let line = String::from_utf8(output.stdout)?;
            let v: Value = serde_json::from_str(line.trim()).context("mock_encoder printed no JSON")?;
            let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
            let _ = writeln!(
                table,
                "| {dim} | {seconds} | {in_flight} | {:.1} | {:.3} | {:.2} % | {:.2} | {:.1} | {:.0} |",
                f("wall"),
                f("wall_over_encoder"),
                100.0 * f("caller_share"),
                f("finish"),
                f("worker_probe"),
                f("peak_rss_mib"),
            );
            println!("{}", line.trim());
            lines.push_str(&line);
        }
    }
    std::fs::write(out.join("pipeline.jsonl"), lines)?;
    std::fs::write(out.join("pipeline.md"), &table)?;
    println!("\n{table}");
    Ok(())
}
