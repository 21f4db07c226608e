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
    /// Check this build against a directory of reference fixtures
    /// (theory.json, score.json, qcqp.json, bayes_probe.json).
    Conformance {
        /// Directory holding the fixture files.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Conformance { dir } => match synbench_cli::conformance::run_directory(&dir) {
            Ok(report) => {
                print!("{report}");
                if report.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
            }
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::from(2)
            }
        },
    }
}
