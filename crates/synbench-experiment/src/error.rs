//! One error enum for the crate: every variant names the file, field, batch
//! or scale it is about and says what was expected; front ends turn them
//! into messages and exit codes (the CLI) or exceptions (Python).

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ExperimentError>;

/// A config error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file (`<builder>` for a plan built in code).
    pub file: PathBuf,
    /// 1-based line of the offending key, when known.
    pub line: Option<usize>,
    /// `section.key`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: `{}`: {}", self.file.display(), self.field, self.message),
            None => write!(f, "{}: `{}`: {}", self.file.display(), self.field, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// What went wrong in a plan, a run, or a run folder.
#[derive(Debug, Error)]
pub enum ExperimentError {
    /// A config value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("cannot write").
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A result file does not hold what its schema says.
    #[error("{}: {}{message}", path.display(), field.as_ref().map_or(String::new(), |f| format!("`{f}`: ")))]
    Schema {
        /// The file.
        path: PathBuf,
        /// The offending field's path in the file (`replicates[3].train`), when one is to blame.
        field: Option<String>,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The output folder holds finished scales of a different plan.
    #[error(
        "{} holds {finished} finished scale(s) of a different plan, which {verb}; the plan changed in:\n  {}\n\
         Put the old values back to {resume_hint}, set another `[output] dir`, or pass --restart to discard the finished scales",
        dir.display(), changes.join("\n  "),
        verb = if *resume { "--resume cannot continue" } else { "a new run would overwrite" },
        resume_hint = if *resume { "continue it" } else { "continue it with --resume" }
    )]
    PlanChanged {
        /// The output folder.
        dir: PathBuf,
        /// Finished scale files in it.
        finished: usize,
        /// `field: old → new`, one per changed field.
        changes: Vec<String>,
        /// Whether `--resume` was asked for.
        resume: bool,
    },
    /// The output folder holds finished scales of this very plan and neither
    /// resume nor restart was asked for.
    #[error(
        "{} already holds {finished} of {total} finished scale(s) of this plan: pass --resume to reuse them (and finish the run), \
         or --restart to recompute every scale",
        dir.display()
    )]
    AlreadyStarted {
        /// The output folder.
        dir: PathBuf,
        /// Finished scale files.
        finished: usize,
        /// Scales in the plan.
        total: usize,
    },
    /// Another process holds the folder's run lock.
    #[error(
        "{}: another process is running into this folder (it holds {}): wait for it to end, or set another \
         output folder",
        dir.display(),
        lock.display()
    )]
    Busy {
        /// The output folder.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// Scale files without the `run.json` that says which plan made them.
    #[error(
        "{} holds {count} scale file(s) but no run.json saying which plan wrote them (an older synbench, or a copied folder): \
         pass --restart to discard them, or set another `[output] dir`",
        dir.display()
    )]
    UnknownScales {
        /// The output folder.
        dir: PathBuf,
        /// Scale files found.
        count: usize,
    },
    /// A finished scale file cannot be used.
    #[error(
        "{}: {}{message}. Delete that file and run again with --resume: only that scale is recomputed{}",
        path.display(),
        field.as_ref().map_or(String::new(), |f| format!("`{f}`: ")),
        recompute.as_ref().map_or(String::new(), |c| format!(" (`{c}`)"))
    )]
    CorruptScale {
        /// The file.
        path: PathBuf,
        /// The offending field's path in the file, when one is to blame.
        field: Option<String>,
        /// What is wrong.
        message: String,
        /// The command that recomputes just that scale, where known.
        recompute: Option<String>,
    },
    /// Features or a batch handed back do not fit the batch handed out.
    #[error("{message}")]
    Batch {
        /// The scale the batch belongs to, when the error is about one batch.
        scale: Option<usize>,
        /// The batch in words (`batch of scale 3 (s = 0.4), train samples 0..64`).
        batch: Option<String>,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The probe cannot be fitted or evaluated at a scale.
    #[error("scale {index} (s = {scale}): {source}")]
    Probe {
        /// Scale index.
        index: usize,
        /// Mean scale.
        scale: f64,
        /// The probe's error.
        source: synbench_probe::ProbeError,
    },
    /// A scale's background work stopped unexpectedly (a bug: please report it).
    #[error("scale {index} (s = {scale}): its per-scale work failed: {message}")]
    Worker {
        /// Scale index.
        index: usize,
        /// Mean scale.
        scale: f64,
        /// What the worker reported.
        message: String,
    },
    /// Closed-form scoring failed.
    #[error(transparent)]
    Theory(#[from] synbench_theory::TheoryError),
    /// `finish` was called before every scale was done.
    #[error(
        "the run is not finished: scale(s) {missing:?} still need their batches (call next_batch until it returns none)"
    )]
    NotFinished {
        /// Indices of unfinished scales.
        missing: Vec<usize>,
    },
    /// An earlier error stopped the run; finished scales are on disk.
    #[error(
        "the experiment stopped after an earlier error ({0}); finished scales are kept: start it again with resume"
    )]
    Stopped(String),
    /// Saved runs cannot be tabulated together as asked.
    #[error("{0}")]
    Table(String),
    /// A figure could not be drawn.
    #[error("{0}")]
    Plot(String),
}

impl ExperimentError {
    /// An IO error on `path`.
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        Self::Io { action, path: path.to_path_buf(), source }
    }

    /// A schema error in `path`, about the file as a whole.
    pub fn schema(path: &Path, message: impl Into<String>) -> Self {
        Self::Schema { path: path.to_path_buf(), field: None, message: message.into() }
    }

    /// A schema error in `path` about `field`.
    pub fn schema_field(path: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Schema { path: path.to_path_buf(), field: Some(field.into()), message: message.into() }
    }

    /// A batch error that is not about one batch (a bad batch size, a thread that would not start).
    pub fn batch(message: impl Into<String>) -> Self {
        Self::Batch { scale: None, batch: None, message: message.into() }
    }
}
