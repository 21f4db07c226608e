#[cfg(feature = "models")]
use std::path::Path;
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "models")]
use anyhow::Result;
#[cfg(feature = "models")]
use clap::Args;
use clap::{Parser, Subcommand};

// The flex backend allocates a fresh buffer per tensor op; glibc serves the
// large ones with mmap and munmap, so every forward pass page-faults its
// activations back in (≈ 7 % of samples in kernel page-fault and page-clear
// code under perf). mimalloc reuses the freed pages.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// SynBench: task-agnostic, data-free scores for pretrained representations.
///
/// Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) to change their level.
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
        /// No progress bar and no logs below warnings.
        #[arg(long)]
        quiet: bool,
    },
    /// Apply a config's model to an [N, C, H, W] or [N, d] float32 .npy array;
    /// writes [N, D] float32 features.
    #[cfg(feature = "models")]
    Encode {
        /// The config (only its [model] section is used).
        #[arg(long)]
        config: PathBuf,
        /// Input array (.npy).
        #[arg(long)]
        input: PathBuf,
        /// Output features (.npy).
        #[arg(long)]
        output: PathBuf,
    },
    /// Rescore a finished (or killed) run from its saved per-scale outcomes.
    #[cfg(feature = "models")]
    Score {
        /// The run's output folder.
        dir: PathBuf,
        #[command(flatten)]
        scoring: ScoringArgs,
        #[command(flatten)]
        files: TableFiles,
    },
    /// One paper-style table (models × ε × thresholds) from several runs.
    #[cfg(feature = "models")]
    Table {
        /// Run output folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        scoring: ScoringArgs,
        #[command(flatten)]
        files: TableFiles,
    },
    /// Pearson, Spearman and Kendall correlations between SynBench scores
    /// and downstream accuracies.
    #[cfg(feature = "models")]
    Correlate {
        /// Run output folders (one per model).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// CSV with a header `model,<task>,…` and one row per model; a run
        /// matches the row named after its folder, else after its model.
        #[arg(long)]
        downstream: PathBuf,
        #[command(flatten)]
        scoring: ScoringArgs,
        /// Also write the correlations as CSV here.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Standard and ε-robust linear probes on your own features: clean and
    /// worst-case attacked test accuracy.
    #[cfg(feature = "models")]
    Probe {
        /// Train features [n, D] (.npy).
        #[arg(long)]
        train: PathBuf,
        /// Train labels [n], 0/1 (.npy).
        #[arg(long)]
        train_labels: PathBuf,
        /// Test features [m, D] (.npy).
        #[arg(long)]
        test: PathBuf,
        /// Test labels [m], 0/1 (.npy).
        #[arg(long)]
        test_labels: PathBuf,
        /// Attack strength.
        #[arg(long)]
        epsilon: f64,
        /// Attack norm: l2 or linf.
        #[arg(long, default_value = "l2", value_parser = parse_norm)]
        norm: synbench_probe::AttackNorm,
        /// `relative`: ε times the norm of half the class-mean gap of the
        /// train features (SynBench's ε, so a run's best ε applies as is);
        /// `absolute`: ε in feature units.
        #[arg(long, default_value = "relative", value_parser = ["relative", "absolute"])]
        radius: String,
        /// L2 penalty of both probes.
        #[arg(long, default_value_t = 1e-4)]
        alpha: f64,
        /// Iteration budget of both probes.
        #[arg(long, default_value_t = 1000)]
        max_iterations: u64,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Check this build against a directory of reference fixtures
    /// (theory.json, score.json, qcqp.json, bayes_probe.json).
    Conformance {
        /// Directory holding the fixture files.
        dir: PathBuf,
    },
}

/// How saved runs are rescored; by default as each run was configured.
#[cfg(feature = "models")]
#[derive(Args)]
struct ScoringArgs {
    /// Score mode: reference (grid, as the paper) or exact (the integral).
    #[arg(long, value_parser = parse_mode)]
    mode: Option<synbench_theory::ScoreMode>,
    /// Averaging of test outcomes: reference (per batch of 256) or exact.
    #[arg(long, value_parser = parse_averaging)]
    averaging: Option<synbench_probe::Averaging>,
    /// Accuracy thresholds, comma-separated.
    #[arg(long, value_delimiter = ',')]
    thresholds: Option<Vec<f64>>,
}

/// Where tables go besides stdout.
#[cfg(feature = "models")]
#[derive(Args)]
struct TableFiles {
    /// Also write the table as CSV (long format) here.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Also write the Markdown table here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

#[cfg(feature = "models")]
fn parse_mode(name: &str) -> Result<synbench_theory::ScoreMode, String> {
    synbench_cli::config::value_of(&synbench_cli::config::SCORE_MODES, name)
}

#[cfg(feature = "models")]
fn parse_averaging(name: &str) -> Result<synbench_probe::Averaging, String> {
    synbench_cli::config::value_of(&synbench_cli::config::AVERAGINGS, name)
}

#[cfg(feature = "models")]
fn parse_norm(name: &str) -> Result<synbench_probe::AttackNorm, String> {
    synbench_cli::config::value_of(&synbench_cli::config::NORMS, name)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "models")]
    let quiet = matches!(cli.command, Command::Run { quiet: true, .. });
    #[cfg(not(feature = "models"))]
    let quiet = false;
    synbench_cli::logging::init(if quiet { "warn" } else { "info" });
    let result = match cli.command {
        #[cfg(feature = "models")]
        Command::Run { config, resume, quiet } => run(&config, resume, !quiet),
        #[cfg(feature = "models")]
        Command::Encode { config, input, output } => encode(&config, &input, &output),
        #[cfg(feature = "models")]
        Command::Score { dir, scoring, files } => table(&[dir], &scoring, &files),
        #[cfg(feature = "models")]
        Command::Table { dirs, scoring, files } => table(&dirs, &scoring, &files),
        #[cfg(feature = "models")]
        Command::Correlate { dirs, downstream, scoring, csv } => {
            correlate(&dirs, &downstream, &scoring, csv.as_deref())
        }
        #[cfg(feature = "models")]
        Command::Probe {
            train,
            train_labels,
            test,
            test_labels,
            epsilon,
            norm,
            radius,
            alpha,
            max_iterations,
            json,
        } => {
            use synbench_cli::commands::{ProbeArgs, Radius};
            let args = ProbeArgs {
                train,
                train_labels,
                test,
                test_labels,
                epsilon,
                radius: if radius == "absolute" { Radius::Absolute } else { Radius::Relative },
                norm,
                alpha,
                max_iterations,
            };
            probe(&args, json.as_deref())
        }
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
fn run(config: &Path, resume: bool, progress: bool) -> Result<()> {
    use synbench_cli::{config as cfg, pipeline};
    let plan = cfg::load(config)?;
    let summary = pipeline::run(&plan, pipeline::RunOptions { resume, progress })?;
    print!("{}", summary.table.markdown());
    println!("\nresults in {}:", summary.dir.display());
    for file in &summary.files {
        println!("  {}", file.display());
    }
    Ok(())
}

#[cfg(feature = "models")]
fn encode(config: &Path, input: &Path, output: &Path) -> Result<()> {
    let summary = synbench_cli::commands::encode(config, input, output)?;
    println!(
        "{}: {} samples → [{}, {}] features in {}",
        summary.encoder,
        summary.samples,
        summary.samples,
        summary.output_dim,
        output.display()
    );
    Ok(())
}

#[cfg(feature = "models")]
fn score_options(scoring: &ScoringArgs) -> synbench_cli::commands::ScoreOptions {
    synbench_cli::commands::ScoreOptions {
        mode: scoring.mode,
        averaging: scoring.averaging,
        thresholds: scoring.thresholds.clone(),
    }
}

#[cfg(feature = "models")]
fn table(dirs: &[PathBuf], scoring: &ScoringArgs, files: &TableFiles) -> Result<()> {
    use synbench_cli::{commands, output::write_atomic};
    let runs = commands::load_runs(dirs)?;
    let table = commands::score_table(&runs, &score_options(scoring))?;
    let markdown = table.markdown();
    print!("{markdown}");
    if let Some(path) = &files.csv {
        write_atomic(path, table.csv().as_bytes())?;
    }
    if let Some(path) = &files.markdown {
        write_atomic(path, markdown.as_bytes())?;
    }
    Ok(())
}

#[cfg(feature = "models")]
fn correlate(dirs: &[PathBuf], downstream: &Path, scoring: &ScoringArgs, csv: Option<&Path>) -> Result<()> {
    use anyhow::Context;
    use synbench_cli::{commands, output::write_atomic};
    let runs = commands::load_runs(dirs)?;
    let text = std::fs::read_to_string(downstream).with_context(|| format!("cannot read {}", downstream.display()))?;
    let table = commands::parse_downstream(downstream, &text)?;
    let rows = commands::correlate(&runs, &table, downstream, &score_options(scoring))?;
    print!("{}", commands::correlations_markdown(&rows));
    if let Some(path) = csv {
        write_atomic(path, commands::correlations_csv(&rows).as_bytes())?;
    }
    Ok(())
}

#[cfg(feature = "models")]
fn probe(args: &synbench_cli::commands::ProbeArgs, json: Option<&Path>) -> Result<()> {
    let report = synbench_cli::commands::probe(args)?;
    print!("{}", report.markdown());
    if let Some(path) = json {
        synbench_cli::output::write_atomic(path, (serde_json::to_string_pretty(&report.json())? + "\n").as_bytes())?;
    }
    Ok(())
}
