//! The result files' schema, as serde types that both write and read them;
//! internal types never become a file format by accident.
//!
//! * `run.json` — the resolved plan and its hash ([`crate::resolved`]);
//! * `scales/scale_NNN.json` — one finished scale ([`ScaleFile`], `synbench-scale/3`);
//! * `results.json` — provenance, plan, per-scale outcomes, scores in both
//!   modes and the best ε ([`ResultsFile`], `synbench-result/4`);
//! * a sweep folder's `sweep.json` ([`SweepFile`]) and `failures.json`
//!   ([`FailuresFile`]).
//!
//! The schema tags and file names are [`crate::layout`]'s; the checks of a
//! file read back against its plan are [`crate::validate`]'s.
//! * `scores.csv`, `table.md` ([`crate::table`]) and the figures ([`crate::plot`]).
//!
//! Version 2 (from 1): scale files carry `plan_hash` (the hash of the
//! resolved plan in `run.json`, generator revision included) instead of a
//! hash of the raw TOML; `results.json` carries the resolved `plan` instead
//! of the raw `config`, and `warnings`.
//!
//! `results.json` version 3 (from 2) adds `feature_dim`, the encoder's output
//! width (the sweep leaderboard lists it); version 2 files are still read.
//!
//! Scale files version 3 (from 2) add the population estimate per ε and the
//! jackknife replicates of the scale (SPEC §7); `results.json` version 4
//! (from 3) adds, per ε, each score's jackknife standard error and 95 %
//! interval (`uncertainty`) and the population estimator's scores with
//! theirs (`population`). Earlier versions are still read (no intervals).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use synbench_probe::{EpsilonOutcome, Nested, Replicate};
use synbench_theory::ScaleOutcome;

use crate::layout::SCALE_SCHEMA;
use crate::resolved::ResolvedPlan;

/// An `f64` that JSON can hold whatever its value: NaN and ±∞ (a score
/// whose raw area is empty) are written as the strings the fixtures use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonF64(pub f64);

impl Serialize for JsonF64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }
}

impl<'de> Deserialize<'de> for JsonF64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(Self(v)),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(Self(f64::NAN)),
                "Infinity" => Ok(Self(f64::INFINITY)),
                "-Infinity" => Ok(Self(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!("{other:?} is not a number, NaN or ±Infinity"))),
            },
        }
    }
}

/// Accuracy and mean scaled bound.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeJson {
    /// Accuracy.
    pub accuracy: f64,
    /// Mean scaled bound of the correct samples.
    pub bound: f64,
}

impl From<ScaleOutcome> for OutcomeJson {
    fn from(o: ScaleOutcome) -> Self {
        Self { accuracy: o.accuracy, bound: o.scaled_bound }
    }
}

impl From<OutcomeJson> for ScaleOutcome {
    fn from(o: OutcomeJson) -> Self {
        Self { accuracy: o.accuracy, scaled_bound: o.bound }
    }
}

/// One ε at one scale, both averaging modes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpsilonJson {
    /// ε.
    pub epsilon: f64,
    /// Batch-averaged (the reference).
    pub reference: OutcomeJson,
    /// Plain means.
    pub exact: OutcomeJson,
    /// Correct test samples.
    pub correct: u64,
    /// Test samples.
    pub samples: u64,
}

/// Everything measured at one scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleRecord {
    /// Position in the scale grid.
    pub index: usize,
    /// Mean scale s.
    pub scale: f64,
    /// The raw-data reference at s.
    pub raw: ScaleOutcome,
    /// The representation, per ε.
    pub epsilons: Vec<EpsilonOutcome>,
    /// The population estimate per ε (ℓ2 attacks; `None` otherwise and in
    /// scale files before version 3).
    pub population: Option<Vec<ScaleOutcome>>,
    /// The delete-a-group jackknife replicates (empty before version 3).
    pub replicates: Vec<Replicate>,
    /// The probe refitted on nested train prefixes (n/4, n/2; version 3).
    pub nested: Vec<Nested>,
}

impl EpsilonJson {
    fn of(e: &EpsilonOutcome) -> Self {
        Self {
            epsilon: e.epsilon,
            reference: e.reference.into(),
            exact: e.exact.into(),
            correct: e.correct,
            samples: e.samples,
        }
    }

    fn outcome(&self) -> EpsilonOutcome {
        EpsilonOutcome {
            epsilon: self.epsilon,
            reference: self.reference.into(),
            exact: self.exact.into(),
            correct: self.correct,
            samples: self.samples,
        }
    }
}

/// The probe fitted on the first `n_train` train samples of a scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NestedJson {
    /// Train samples used.
    pub n_train: u64,
    /// The plug-in probe per ε, on the whole test split.
    pub representation: Vec<EpsilonJson>,
    /// The population estimate per ε.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Vec<OutcomeJson>>,
}

/// One jackknife replicate of a scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicateJson {
    /// The probe refitted without the group's train samples, as Gaussian
    /// projections with the test split's class moments, per ε.
    pub train: Vec<OutcomeJson>,
    /// The fitted probe on the test split without the group (in the full
    /// split's batches), per ε.
    pub test: Vec<EpsilonJson>,
    /// The population estimate per ε.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Vec<OutcomeJson>>,
}

/// `scales/scale_NNN.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleFile {
    /// [`crate::layout::SCALE_SCHEMA`].
    pub schema: String,
    /// Hash of the resolved plan that produced it.
    pub plan_hash: String,
    /// Position in the grid.
    pub index: usize,
    /// Mean scale.
    pub scale: f64,
    /// Raw-data reference.
    pub raw: OutcomeJson,
    /// Per ε.
    pub representation: Vec<EpsilonJson>,
    /// The population estimate per ε (version 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Vec<OutcomeJson>>,
    /// Jackknife replicates, group g leaving out samples i ≡ g (mod G) of
    /// both splits (version 3).
    #[serde(default)]
    pub replicates: Vec<ReplicateJson>,
    /// The probe refitted on nested train prefixes (version 3).
    #[serde(default)]
    pub nested: Vec<NestedJson>,
}

fn outcomes_json(o: &Option<Vec<ScaleOutcome>>) -> Option<Vec<OutcomeJson>> {
    o.as_ref().map(|v| v.iter().map(|&o| o.into()).collect())
}

fn outcomes(o: &Option<Vec<OutcomeJson>>) -> Option<Vec<ScaleOutcome>> {
    o.as_ref().map(|v| v.iter().map(|&o| o.into()).collect())
}

impl ScaleFile {
    /// The file of a record.
    pub fn new(record: &ScaleRecord, plan_hash: &str) -> Self {
        Self {
            schema: SCALE_SCHEMA.into(),
            plan_hash: plan_hash.into(),
            index: record.index,
            scale: record.scale,
            raw: record.raw.into(),
            representation: record.epsilons.iter().map(EpsilonJson::of).collect(),
            population: outcomes_json(&record.population),
            replicates: record
                .replicates
                .iter()
                .map(|r| ReplicateJson {
                    train: r.train.iter().map(|&o| o.into()).collect(),
                    test: r.test.iter().map(EpsilonJson::of).collect(),
                    population: outcomes_json(&r.population),
                })
                .collect(),
            nested: record
                .nested
                .iter()
                .map(|n| NestedJson {
                    n_train: n.n_train,
                    representation: n.epsilons.iter().map(EpsilonJson::of).collect(),
                    population: outcomes_json(&n.population),
                })
                .collect(),
        }
    }

    /// The record it holds.
    pub fn record(&self) -> ScaleRecord {
        ScaleRecord {
            index: self.index,
            scale: self.scale,
            raw: self.raw.into(),
            epsilons: self.representation.iter().map(EpsilonJson::outcome).collect(),
            population: outcomes(&self.population),
            replicates: self
                .replicates
                .iter()
                .map(|r| Replicate {
                    train: r.train.iter().map(|&o| o.into()).collect(),
                    test: r.test.iter().map(EpsilonJson::outcome).collect(),
                    population: outcomes(&r.population),
                })
                .collect(),
            nested: self
                .nested
                .iter()
                .map(|n| Nested {
                    n_train: n.n_train,
                    epsilons: n.representation.iter().map(EpsilonJson::outcome).collect(),
                    population: outcomes(&n.population),
                })
                .collect(),
        }
    }
}

/// Wall time per stage of a run, in seconds (summed over the scales computed
/// in this process; generation overlaps encoding, so they can exceed the wall time).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSeconds {
    /// Drawing and normalising the synthetic inputs (on the generator thread).
    pub generation: f64,
    /// The encoder's forward passes: from handing a batch out to its fold.
    pub encoding: f64,
    /// Folding features into class statistics and evaluating the probe on
    /// the test split (on the worker threads, summed over scales).
    pub statistics: f64,
    /// Fitting the probe and its jackknife and nested refits: eigendecompositions
    /// and one QCQP per ε each (on the worker threads, summed over scales).
    pub probe: f64,
    /// Waiting for the generator (the part of generation not hidden behind encoding).
    pub waiting: f64,
    /// Scoring.
    pub score: f64,
    /// The caller waiting for the per-scale work: for a free slot when the
    /// configured number of scales was in flight, and for the last scales
    /// in `finish` (absent from results written before it was recorded).
    #[serde(default)]
    pub workers_wait: f64,
}

/// Crate versions in a result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrateVersions {
    /// synbench.
    pub synbench: String,
    /// The pinned Burn.
    pub burn: String,
}

/// Where a result came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// synbench's version.
    pub synbench_version: String,
    /// Versions of the crates that shape the numbers.
    pub crate_versions: CrateVersions,
    /// The commit built (`unknown` outside a checkout).
    pub git_hash: String,
    /// Backend.
    pub backend: String,
    /// Device.
    pub device: String,
    /// Float precision.
    pub precision: String,
    /// Data seed.
    pub data_seed: u64,
    /// Random source.
    pub data_generator: String,
    /// Its revision.
    pub generator_revision: u32,
    /// Model seed.
    pub model_seed: u64,
    /// Config file.
    pub config_file: String,
    /// Hash of the resolved plan.
    pub plan_hash: String,
    /// Unix time the run finished.
    pub finished_unix: u64,
    /// Wall time of this process's part of the run.
    pub seconds: f64,
    /// Time per stage.
    pub stage_seconds: StageSeconds,
    /// Scales computed by this process (the rest were resumed).
    pub scales_computed: usize,
    /// Inputs encoded by this process.
    pub images_encoded: u64,
    /// Encoder throughput.
    pub encoder_images_per_second: Option<f64>,
    /// Peak resident memory in MiB (Linux).
    pub peak_rss_mib: Option<f64>,
}

/// One ε at one scale, in the run's averaging.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoredEpsilon {
    /// ε.
    pub epsilon: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// Mean scaled bound.
    pub bound: f64,
}

/// One scale in `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleSummary {
    /// Index.
    pub index: usize,
    /// Mean scale.
    pub scale: f64,
    /// Raw data.
    pub raw: OutcomeJson,
    /// Per ε.
    pub representation: Vec<ScoredEpsilon>,
}

/// Scores of one ε in both modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpsilonScores {
    /// ε.
    pub epsilon: f64,
    /// Grid mode, per threshold.
    pub reference: Vec<JsonF64>,
    /// Integral mode, per threshold.
    pub exact: Vec<JsonF64>,
    /// The jackknife standard errors and 95 % intervals of `reference` and
    /// `exact` (absent before version 4, or without replicates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<ModeIntervals>,
    /// The population estimator's scores (SPEC §7), with theirs (absent
    /// for ℓ∞/ℓ1 attacks and before version 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<PopulationScores>,
}

/// Standard error and 95 % interval per threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// Jackknife standard error.
    pub stderr: Vec<JsonF64>,
    /// `score − t₀.₉₇₅·stderr` (t with G − 1 degrees of freedom).
    pub ci_low: Vec<JsonF64>,
    /// `score + t₀.₉₇₅·stderr`.
    pub ci_high: Vec<JsonF64>,
}

/// Intervals of both score modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModeIntervals {
    /// Of the grid-mode scores.
    pub reference: Interval,
    /// Of the integral-mode scores.
    pub exact: Interval,
}

/// The population estimator's scores of one ε.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationScores {
    /// Grid mode, per threshold.
    pub reference: Vec<JsonF64>,
    /// Integral mode, per threshold.
    pub exact: Vec<JsonF64>,
    /// Their standard errors and intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<ModeIntervals>,
}

/// `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultsFile {
    /// [`crate::layout::RESULT_SCHEMA`].
    pub schema: String,
    /// Where it came from.
    pub provenance: Provenance,
    /// The resolved plan.
    pub plan: ResolvedPlan,
    /// Name in tables.
    pub model: String,
    /// The encoder in words ("random init" when no weights were loaded).
    pub encoder: String,
    /// The features' width (`None` when every scale was resumed from files,
    /// so no feature passed through this process; absent before schema 3).
    #[serde(default)]
    pub feature_dim: Option<usize>,
    /// Averaging of the scored outcomes.
    pub averaging: String,
    /// ε values.
    pub epsilons: Vec<f64>,
    /// Thresholds.
    pub thresholds: Vec<f64>,
    /// Per scale.
    pub scales: Vec<ScaleSummary>,
    /// Per ε.
    pub scores: Vec<EpsilonScores>,
    /// The configured score mode.
    pub score_mode: String,
    /// The estimator of the headline scores (`best_epsilon`, tables): both
    /// estimators are in `scores` (absent before version 4: `reference`).
    #[serde(default = "reference_name")]
    pub score_estimator: String,
    /// Per threshold, the ε with the highest score in the configured mode.
    pub best_epsilon: Vec<Option<f64>>,
    /// Things the reader should know (e.g. a normalisation other than the weights expect).
    pub warnings: Vec<String>,
    /// The scores in the configured mode at nested train sizes (n/4, n/2
    /// where the covariance is not singular) and the full one (version 4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finite_n: Vec<FiniteNJson>,
    /// The closed-form population scores of the linear-Gaussian oracle, per
    /// ε in both modes (`arch = "linear_gaussian"` only; version 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<Vec<EpsilonScores>>,
}

/// The scores of one train size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiniteNJson {
    /// Train samples per scale.
    pub n_train: u64,
    /// Per ε: the reference estimator's scores per threshold.
    pub reference: Vec<Vec<JsonF64>>,
    /// Per ε: the population estimator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<Vec<Vec<JsonF64>>>,
}

fn reference_name() -> String {
    "reference".into()
}

/// `sweep.json`: the sweep's models, in the order of the model list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// [`crate::layout::SWEEP_SCHEMA`].
    pub schema: String,
    /// The model list it was made from.
    pub models_file: String,
    /// The protocol config.
    pub protocol: String,
    /// Shards the list was cut into by the run that wrote this file.
    pub shards: usize,
    /// The models.
    pub models: Vec<SweepModel>,
}

/// One model of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepModel {
    /// Its folder under the sweep folder, and its name in tables.
    pub name: String,
    /// The model as the list gives it.
    pub spec: String,
    /// Its line in the list (1-based).
    pub line: usize,
    /// The shard that runs it (of [`SweepFile::shards`]).
    pub shard: usize,
}

/// `failures.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailuresFile {
    /// [`crate::layout::FAILURES_SCHEMA`].
    pub schema: String,
    /// One entry per model whose last attempt failed, sorted by model.
    pub failures: Vec<Failure>,
}

/// A model's failed attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    /// The model's folder name.
    pub model: String,
    /// The model as the list gives it.
    pub spec: String,
    /// What failed, in one line (`OutOfMemoryError: CUDA out of memory …`).
    pub error: String,
    /// The error's type (`RuntimeError`, `SynbenchError`).
    pub kind: String,
    /// The end of the traceback, for the log-less.
    pub traceback: String,
    /// Failed attempts so far (a success clears the entry).
    pub attempts: u32,
    /// `I/N` of the shard that ran it.
    pub shard: String,
    /// The host it ran on.
    pub host: String,
    /// Unix time of the failure.
    pub unix_time: u64,
}

/// The process's peak resident set size in MiB, from `/proc/self/status`
/// (`VmHWM`); `None` where that file does not exist.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
