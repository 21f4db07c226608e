//! The SynBench run as a library, free of Burn and of any front end.
//!
//! * [`config`]: the TOML config as a raw serde mirror with spans, checked
//!   into a typed [`Plan`] by each owner crate's own checks;
//! * [`experiment`]: the streaming [`Experiment`] — a state machine that
//!   hands out batches and takes back features, fits the probe per scale,
//!   writes each finished scale atomically, and resumes without ever
//!   losing or mixing finished work;
//! * [`resolved`]: the resolved plan of `run.json`, its hash and field diff;
//! * [`schema`]: the versioned result files as serde types;
//! * [`saved`]: a run folder read back ([`SavedRun`]);
//! * [`table`]: score tables (Markdown, CSV) and rescoring of saved runs;
//! * [`oracle`]: the linear-Gaussian oracle's closed-form population score;
//! * [`plot`]: the paper's two figures (SVG, PNG);
//! * [`sweep`]: a sweep folder's model list, failures and leaderboard.
//!
//! Invariant: no Burn, no clap, no anyhow; the encoder is the driver's. The
//! CLI drives an [`Experiment`] with a synbench-models encoder; the Python
//! package drives it with any framework's model.
#![deny(missing_docs)]
#![doc = include_str!("../README.md")]

pub mod config;
mod error;
pub mod experiment;
pub mod io;
pub mod oracle;
pub mod plot;
pub mod resolved;
pub mod saved;
pub mod schema;
pub mod sweep;
pub mod table;

pub use config::{EncoderSpec, ModelSpec, Named, Plan, Weights};
pub use error::{ConfigError, ExperimentError, Result};
pub use experiment::{Batch, EncoderInfo, Experiment, GeneratorThreads, RunResult, StartOptions, StartPolicy};
pub use resolved::ResolvedPlan;
pub use saved::SavedRun;
pub use schema::{ResultsFile, ScaleRecord};
pub use sweep::{Failure, Leaderboard};
pub use table::{ScoreOptions, ScoreRow, ScoreTable};
