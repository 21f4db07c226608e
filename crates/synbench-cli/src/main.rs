use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// SynBench: task-agnostic, data-free scores for pretrained representations.
#[derive(Parser)]
#[command(name = "synbench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the experiment a TOML config describes and write its results.
    #[cfg(feature = "models")]
    Run {
        /// The config file.
        config: PathBuf,
        /// Continue after the last finished scale of an earlier run.
        #[arg(long)]
        resume: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Check this build against a directory of reference fixtures
    /// (theory.json, score.json, qcqp.json, bayes_probe.json).
    Conformance {
        /// Directory holding the fixture files.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        #[cfg(feature = "models")]
        Command::Run { config, resume, quiet } => run(&config, resume, !quiet),
        Command::Conformance { dir } => match synbench_cli::conformance::run_directory(&dir) {
            Ok(report) => {
                print!("{report}");
                return if report.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE };
            }
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "models")]
fn run(config: &std::path::Path, resume: bool, progress: bool) -> anyhow::Result<()> {
    use synbench_cli::{config as cfg, pipeline};
    let plan = cfg::load(config)?;
    let dir = pipeline::run(&plan, pipeline::RunOptions { resume, progress })?;
    print!("{}", std::fs::read_to_string(dir.join("table.md"))?);
    println!("\nresults: {}", dir.display());
    Ok(())
}
