//! The `synbench` command line: argument parsing and printing around the
//! library's subcommands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use synbench_experiment::Named;
use synbench_experiment::io::write_atomic;

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
        /// Reuse the finished scales of an earlier run of this same plan and
        /// finish it (refused if the plan changed).
        #[arg(long, conflicts_with = "restart")]
        resume: bool,
        /// Delete the output folder's finished scales and results, then start over.
        #[arg(long)]
        restart: bool,
        /// No progress bar and no logs below warnings.
        #[arg(long)]
        quiet: bool,
        /// Do not write report.html.
        #[arg(long)]
        no_report: bool,
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
    Score {
        /// The run's output folder.
        dir: PathBuf,
        #[command(flatten)]
        scoring: ScoringArgs,
        #[command(flatten)]
        files: TableFiles,
    },
    /// One paper-style table (models × ε × thresholds) from several runs.
    Table {
        /// Run output folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        #[command(flatten)]
        scoring: ScoringArgs,
        #[command(flatten)]
        files: TableFiles,
    },
    /// A sweep folder's leaderboard (`python -m synbench sweep` writes the
    /// folder): writes DIR/leaderboard.csv and DIR/leaderboard.md.
    Collect {
        /// The sweep's output folder.
        dir: PathBuf,
        /// The threshold to rank by (default 0.7 when the runs have it, else their first).
        #[arg(long)]
        sort_by: Option<f64>,
        /// Do not write DIR/report.html.
        #[arg(long)]
        no_report: bool,
    },
    /// Write DIR/report.html: one self-contained page (tables, figures,
    /// provenance) of a run folder or of a sweep folder.
    Report {
        /// A run's output folder, or a sweep's.
        dir: PathBuf,
        /// A sweep's threshold to rank by (default 0.7 when the runs have it, else their first).
        #[arg(long)]
        sort_by: Option<f64>,
    },
    /// Model A against model B: the score difference per ε and threshold,
    /// both estimators, with a paired 95 % interval (runs of one protocol
    /// see the same samples, in the same jackknife groups).
    Compare {
        /// Model A's run folder.
        a: PathBuf,
        /// Model B's run folder.
        b: PathBuf,
        #[command(flatten)]
        files: TableFiles,
    },
    /// Pearson, Spearman and Kendall correlations between SynBench scores
    /// and downstream accuracies.
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
        #[arg(long, default_value = "l2", value_parser = parse_named::<synbench_probe::AttackNorm>)]
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
#[derive(Args)]
struct ScoringArgs {
    /// Score mode: reference (grid, as the paper) or exact (the integral).
    #[arg(long, value_parser = parse_named::<synbench_theory::ScoreMode>)]
    mode: Option<synbench_theory::ScoreMode>,
    /// Averaging of test outcomes: reference (per batch of 256) or exact.
    #[arg(long, value_parser = parse_named::<synbench_probe::Averaging>)]
    averaging: Option<synbench_probe::Averaging>,
    /// Accuracy thresholds, comma-separated.
    #[arg(long, value_delimiter = ',')]
    thresholds: Option<Vec<f64>>,
}

/// Where tables go besides stdout.
#[derive(Args)]
struct TableFiles {
    /// Also write the table as CSV (long format) here.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Also write the Markdown table here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn parse_named<T: Named>(name: &str) -> Result<T, String> {
    T::from_name(name)
}

#[cfg(feature = "models")]
fn is_quiet(command: &Command) -> bool {
    matches!(command, Command::Run { quiet: true, .. })
}

#[cfg(not(feature = "models"))]
fn is_quiet(_: &Command) -> bool {
    false
}

/// Parses the command line, runs the subcommand and returns its exit code:
/// what the `synbench` binary (and, in a tch build, `synbench-tch`) does.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = is_quiet(&cli.command);
    crate::logging::init(if quiet { "warn" } else { "info" });
    let result = match cli.command {
        #[cfg(feature = "models")]
        Command::Run { config, resume, restart, quiet, no_report } => run(&config, resume, restart, !quiet, !no_report),
        #[cfg(feature = "models")]
        Command::Encode { config, input, output } => encode(&config, &input, &output),
        Command::Score { dir, scoring, files } => score(&dir, &scoring, &files),
        Command::Table { dirs, scoring, files } => table(&dirs, &scoring, &files),
        Command::Collect { dir, sort_by, no_report } => collect(&dir, sort_by, !no_report),
        Command::Report { dir, sort_by } => report(&dir, sort_by),
        Command::Compare { a, b, files } => compare(&a, &b, &files),
        Command::Correlate { dirs, downstream, scoring, csv } => {
            correlate(&dirs, &downstream, &scoring, csv.as_deref())
        }
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
            use crate::commands::{ProbeArgs, Radius};
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
        Command::Conformance { dir } => match crate::conformance::run_directory(&dir) {
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
fn run(config: &Path, resume: bool, restart: bool, progress: bool, report: bool) -> Result<()> {
    use synbench_experiment::StartPolicy;
    let plan = synbench_experiment::config::load(config)?;
    let policy = match (resume, restart) {
        (true, _) => StartPolicy::Resume,
        (_, true) => StartPolicy::Restart,
        _ => StartPolicy::Fresh,
    };
    let result = crate::run::run(plan, crate::run::RunOptions { policy, progress, report })?;
    print!("{}", result.table.markdown());
    let by_size = synbench_experiment::table::finite_n_markdown(&result.scores);
    if !by_size.is_empty() {
        print!("\nScore vs train size:\n\n{by_size}");
    }
    if let Some(dir) = &result.dir {
        println!("\nresults in {}:", dir.display());
    }
    for file in &result.files {
        println!("  {}", file.display());
    }
    Ok(())
}

#[cfg(feature = "models")]
fn encode(config: &Path, input: &Path, output: &Path) -> Result<()> {
    let summary = crate::run::encode(config, input, output)?;
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

fn score_options(scoring: &ScoringArgs) -> synbench_experiment::ScoreOptions {
    synbench_experiment::ScoreOptions {
        mode: scoring.mode,
        averaging: scoring.averaging,
        thresholds: scoring.thresholds.clone(),
    }
}

/// `synbench score DIR`: the run rescored, as the run's own `table.md` and
/// `scores.csv` (with the run's configuration, unless overridden).
fn score(dir: &Path, scoring: &ScoringArgs, files: &TableFiles) -> Result<()> {
    let runs = synbench_experiment::runs::load_runs(&[dir.to_path_buf()])?;
    let [run] = runs.as_slice() else {
        // A sweep folder: one table over its models, as `synbench table` gives.
        return table(&[dir.to_path_buf()], scoring, files);
    };
    let texts = run.texts(&run.rescored(score_options(scoring).scoring_of(run))?);
    print!("{}", texts.markdown);
    if let Some(path) = &files.csv {
        write_atomic(path, texts.csv.as_bytes())?;
    }
    if let Some(path) = &files.markdown {
        write_atomic(path, texts.markdown.as_bytes())?;
    }
    Ok(())
}

fn compare(a: &Path, b: &Path, files: &TableFiles) -> Result<()> {
    use synbench_experiment::SavedRun;
    let comparison = synbench_experiment::compare::compare(&SavedRun::load(a)?, &SavedRun::load(b)?)?;
    let markdown = comparison.markdown();
    print!("{markdown}");
    if let Some(path) = &files.csv {
        write_atomic(path, comparison.csv().as_bytes())?;
    }
    if let Some(path) = &files.markdown {
        write_atomic(path, markdown.as_bytes())?;
    }
    Ok(())
}

fn table(dirs: &[PathBuf], scoring: &ScoringArgs, files: &TableFiles) -> Result<()> {
    use synbench_experiment::{runs, table};
    let runs = runs::load_runs(dirs)?;
    // The reference estimator's table, then the population estimate's where
    // every run carries it; the CSV holds both, as a run's scores.csv does.
    let tables = runs::score_tables(&runs, &score_options(scoring))?;
    let mut markdown = String::new();
    let mut csv = String::from(table::CSV_HEADER);
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            markdown.push_str(&format!("\n### {} estimator\n\n", t.estimator.name()));
        }
        markdown.push_str(&t.markdown());
        csv.push_str(&t.csv_rows());
    }
    print!("{markdown}");
    if let Some(path) = &files.csv {
        write_atomic(path, csv.as_bytes())?;
    }
    if let Some(path) = &files.markdown {
        write_atomic(path, markdown.as_bytes())?;
    }
    Ok(())
}

fn collect(dir: &Path, sort_by: Option<f64>, report: bool) -> Result<()> {
    let sweep = synbench_experiment::sweep::collect(dir, sort_by)?;
    print!("{}", sweep.board.markdown());
    let mut written = sweep.board.write(dir)?;
    if report {
        written.push(synbench_experiment::report::write_sweep(dir, &sweep)?);
    }
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn report(dir: &Path, sort_by: Option<f64>) -> Result<()> {
    let started = std::time::Instant::now();
    let path = synbench_experiment::report::write(dir, sort_by)?;
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    eprintln!(
        "wrote {} ({:.0} KiB in {:.2} s)",
        path.display(),
        bytes as f64 / 1024.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn correlate(dirs: &[PathBuf], downstream: &Path, scoring: &ScoringArgs, csv: Option<&Path>) -> Result<()> {
    use crate::commands;
    use anyhow::Context;
    let runs = synbench_experiment::runs::load_runs(dirs)?;
    let text = std::fs::read_to_string(downstream).with_context(|| format!("cannot read {}", downstream.display()))?;
    let table = commands::parse_downstream(downstream, &text)?;
    let rows = commands::correlate(&runs, &table, downstream, &score_options(scoring))?;
    print!("{}", commands::correlations_markdown(&rows));
    if let Some(path) = csv {
        write_atomic(path, commands::correlations_csv(&rows).as_bytes())?;
    }
    Ok(())
}

fn probe(args: &crate::commands::ProbeArgs, json: Option<&Path>) -> Result<()> {
    let report = crate::commands::probe(args)?;
    print!("{}", report.markdown());
    if let Some(path) = json {
        write_atomic(path, (serde_json::to_string_pretty(&report.json())? + "\n").as_bytes())?;
    }
    Ok(())
}
