//! The SynBench run as a library, free of Burn and of any front end.
//!
//! Modules, leaves first (each imports only modules above it in this list):
//!
//! * [`error`](ExperimentError), [`options`] (the shared option enums and
//!   their spellings: [`Named`], [`Estimator`], [`Arch`]), [`layout`] (file
//!   names and schema tags), [`io`] (atomic writes, JSON reads that name the
//!   field);
//! * [`config`]: the TOML config (or keyword arguments) as a raw serde
//!   mirror with spans, checked into a typed [`Plan`] by each owner crate's
//!   own checks;
//! * [`resolved`]: the resolved plan of `run.json`, its hash and field diff;
//! * [`schema`]: the versioned result files as serde types;
//! * [`validate`]: every file read back checked against its plan;
//! * [`scoring`]: records → scores, standard errors, intervals, best ε,
//!   finite-n, bands — computed once per run ([`RunScores`]);
//! * [`table`]: score tables rendered (Markdown, CSV), a run's `table.md`;
//! * [`plot`]: the paper's figures (SVG, PNG);
//! * [`saved`]: a run folder read back ([`SavedRun`]);
//! * [`sweep`]: a sweep folder's model list, failures and leaderboard;
//! * [`runs`]: several saved runs in one table;
//! * [`oracle`]: the linear-Gaussian oracle's closed-form population score;
//! * [`experiment`]: the streaming [`Experiment`] — a state machine that
//!   hands out batches and takes back features, fits the probe per scale,
//!   writes each finished scale atomically, and resumes without ever
//!   losing or mixing finished work.
//!
//! Invariant: no Burn, no clap, no anyhow; the encoder is the driver's. The
//! CLI drives an [`Experiment`] with a synbench-models encoder; the Python
//! package drives it with any framework's model.
#![deny(missing_docs)]
#![doc = include_str!("../README.md")]

pub mod compare;
pub mod config;
mod error;
pub mod experiment;
pub mod io;
pub mod layout;
pub mod options;
pub mod oracle;
pub mod plot;
pub mod report;
pub mod resolved;
pub mod runs;
pub mod saved;
pub mod schema;
pub mod scoring;
pub mod sweep;
pub mod table;
pub mod validate;
pub mod worker;

pub use config::{EncoderSpec, ModelSpec, Plan, Weights};
pub use error::{ConfigError, ExperimentError, Result};
pub use experiment::{Batch, EncoderInfo, Experiment, GeneratorThreads, RunResult, StartOptions, StartPolicy};
pub use options::{Arch, Estimator, Named};
pub use resolved::{PlanChange, ResolvedPlan};
pub use runs::ScoreOptions;
pub use saved::SavedRun;
pub use schema::{ResultsFile, ScaleRecord};
pub use scoring::{RunScores, Scored, Scoring};
pub use sweep::{Failure, Leaderboard};
pub use table::{ScoreRow, ScoreTable};
pub use worker::{DEFAULT_SCALES_IN_FLIGHT, WorkerThreads};
