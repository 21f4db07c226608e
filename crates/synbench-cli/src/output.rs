//! Result files. Their schema is written here, explicitly, and versioned:
//! internal types never become a file format by accident.
//!
//! * `scales/scale_NNN.json` — one finished scale (schema `synbench-scale/1`);
//! * `results.json` — config, provenance, per-scale outcomes, scores
//!   (schema `synbench-result/1`);
//! * `scores.csv` — one row per (ε, threshold), ready for pandas;
//! * `table.md` — the paper-style table.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use synbench_probe::EpsilonOutcome;
use synbench_theory::{ScaleOutcome, ScoreMode};

use crate::config::Plan;
use crate::pipeline::score_records;

/// Schema tag of a per-scale file.
pub const SCALE_SCHEMA: &str = "synbench-scale/1";
/// Schema tag of `results.json`.
pub const RESULT_SCHEMA: &str = "synbench-result/1";

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
}

fn outcome_json(o: &ScaleOutcome) -> Value {
    json!({ "accuracy": o.accuracy, "bound": o.scaled_bound })
}

fn outcome_from(v: &Value) -> Option<ScaleOutcome> {
    Some(ScaleOutcome { accuracy: v["accuracy"].as_f64()?, scaled_bound: v["bound"].as_f64()? })
}

impl ScaleRecord {
    fn to_json(&self, config_hash: &str) -> Value {
        json!({
            "schema": SCALE_SCHEMA,
            "config_hash": config_hash,
            "index": self.index,
            "scale": self.scale,
            "raw": outcome_json(&self.raw),
            "representation": self.epsilons.iter().map(|e| json!({
                "epsilon": e.epsilon,
                "reference": outcome_json(&e.reference),
                "exact": outcome_json(&e.exact),
                "correct": e.correct,
                "samples": e.samples,
            })).collect::<Vec<_>>(),
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        let epsilons = v["representation"]
            .as_array()?
            .iter()
            .map(|e| {
                Some(EpsilonOutcome {
                    epsilon: e["epsilon"].as_f64()?,
                    reference: outcome_from(&e["reference"])?,
                    exact: outcome_from(&e["exact"])?,
                    correct: e["correct"].as_u64()?,
                    samples: e["samples"].as_u64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            index: usize::try_from(v["index"].as_u64()?).ok()?,
            scale: v["scale"].as_f64()?,
            raw: outcome_from(&v["raw"])?,
            epsilons,
        })
    }
}

/// Writes `bytes` to `path` atomically: a temp file in the same folder, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
}

/// Reads a JSON file.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// Writes a finished scale.
pub fn write_scale(path: &Path, record: &ScaleRecord, config_hash: &str) -> Result<()> {
    let text = serde_json::to_string_pretty(&record.to_json(config_hash))? + "\n";
    write_atomic(path, text.as_bytes())
}

/// A finished scale of this config, `None` if absent or from another config.
pub fn read_scale(path: &Path, config_hash: &str) -> Result<Option<ScaleRecord>> {
    if !path.exists() {
        return Ok(None);
    }
    let value = read_json(path)?;
    if value["schema"] != SCALE_SCHEMA || value["config_hash"] != config_hash {
        return Ok(None);
    }
    match ScaleRecord::from_json(&value) {
        Some(record) => Ok(Some(record)),
        None => bail!("{} is not a valid {SCALE_SCHEMA} record", path.display()),
    }
}

/// The whole run, ready to write.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// `model.preset` / arch, for tables.
    pub model: String,
    /// `results.json` content.
    pub json: Value,
    /// Robustness levels.
    pub epsilons: Vec<f64>,
    /// Thresholds.
    pub thresholds: Vec<f64>,
    /// Scores `[ε][threshold]` in the configured mode.
    pub scores: Vec<Vec<f64>>,
    /// Mode and averaging, in words.
    pub mode: String,
    /// Averaging in words.
    pub averaging: String,
    /// One line on the encoder.
    pub encoder: String,
}

/// Index of the best ε per threshold (NaN scores never win).
pub fn best_epsilons(epsilons: &[f64], scores: &[Vec<f64>], thresholds: usize) -> Vec<Option<f64>> {
    (0..thresholds)
        .map(|t| {
            let mut best: Option<(f64, f64)> = None;
            for (e, row) in epsilons.iter().zip(scores) {
                let s = row[t];
                if !s.is_nan() && best.is_none_or(|(_, b)| s > b) {
                    best = Some((*e, s));
                }
            }
            best.map(|(e, _)| e)
        })
        .collect()
}

impl RunRecord {
    /// Scores the records and assembles `results.json`.
    pub fn new(
        plan: &Plan,
        encoder: String,
        config_hash: String,
        records: Vec<ScaleRecord>,
        seconds: f64,
    ) -> Result<Self> {
        let averaging = plan.averaging_mode();
        let scores = score_records(&records, &plan.epsilons, &plan.thresholds, averaging, plan.score_mode)?;
        let other_mode = match plan.score_mode {
            ScoreMode::Reference => ScoreMode::Exact,
            ScoreMode::Exact => ScoreMode::Reference,
        };
        let other = score_records(&records, &plan.epsilons, &plan.thresholds, averaging, other_mode)?;
        let mode_name = |m: ScoreMode| if m == ScoreMode::Exact { "exact" } else { "reference" };
        let best = best_epsilons(&plan.epsilons, &scores, plan.thresholds.len());
        let model = match &plan.model {
            crate::config::ModelPlan::Vit { name, .. } => name.clone(),
            crate::config::ModelPlan::Identity => "identity".into(),
            crate::config::ModelPlan::RandomProjection { .. } => "random_projection".into(),
        };
        let json = json!({
            "schema": RESULT_SCHEMA,
            "provenance": {
                "synbench_version": env!("CARGO_PKG_VERSION"),
                "git_hash": option_env!("SYNBENCH_GIT_HASH").unwrap_or("unknown"),
                "backend": plan.backend,
                "device": plan.device,
                "data_seed": plan.seed,
                "model_seed": plan.model_seed,
                "config_file": plan.file.display().to_string(),
                "config_hash": config_hash,
                "finished_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                "seconds": seconds,
            },
            "config": serde_json::to_value(&plan.raw)?,
            "encoder": encoder,
            "averaging": plan.averaging,
            "thresholds": plan.thresholds,
            "scales": records.iter().map(|r| json!({
                "index": r.index,
                "scale": r.scale,
                "raw": outcome_json(&r.raw),
                "representation": r.epsilons.iter().map(|e| json!({
                    "epsilon": e.epsilon,
                    "accuracy": e.outcome(averaging).accuracy,
                    "bound": e.outcome(averaging).scaled_bound,
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "scores": plan.epsilons.iter().enumerate().map(|(e, eps)| json!({
                "epsilon": eps,
                mode_name(plan.score_mode): scores[e].iter().map(|s| finite_or_string(*s)).collect::<Vec<_>>(),
                mode_name(other_mode): other[e].iter().map(|s| finite_or_string(*s)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "score_mode": mode_name(plan.score_mode),
            "best_epsilon": best,
        });
        Ok(Self {
            model,
            json,
            epsilons: plan.epsilons.clone(),
            thresholds: plan.thresholds.clone(),
            scores,
            mode: mode_name(plan.score_mode).into(),
            averaging: plan.averaging.clone(),
            encoder,
        })
    }
}

/// JSON has no NaN or ∞: write them as the strings the fixtures use.
fn finite_or_string(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else if v.is_nan() {
        json!("NaN")
    } else if v > 0.0 {
        json!("Infinity")
    } else {
        json!("-Infinity")
    }
}

fn format_score(v: f64) -> String {
    if v.is_finite() { format!("{v:.4}") } else { format!("{v}") }
}

/// `scores.csv`: long format, one row per (ε, threshold).
pub fn scores_csv(record: &RunRecord) -> String {
    let mut out = String::from("model,epsilon,threshold,score,mode,averaging\n");
    for (e, eps) in record.epsilons.iter().enumerate() {
        for (t, threshold) in record.thresholds.iter().enumerate() {
            let _ = writeln!(
                out,
                "{},{eps},{threshold},{},{},{}",
                record.model, record.scores[e][t], record.mode, record.averaging
            );
        }
    }
    out
}

/// `table.md`: ε down, thresholds across, best ε per threshold below.
pub fn table_markdown(record: &RunRecord) -> String {
    let mut out = format!("## SynBench-score: {}\n\n{}\n\n", record.model, record.encoder);
    out.push_str("| ε |");
    for t in &record.thresholds {
        let _ = write!(out, " t={t} |");
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(record.thresholds.len()));
    out.push('\n');
    for (e, eps) in record.epsilons.iter().enumerate() {
        let _ = write!(out, "| {eps} |");
        for s in &record.scores[e] {
            let _ = write!(out, " {} |", format_score(*s));
        }
        out.push('\n');
    }
    let best = best_epsilons(&record.epsilons, &record.scores, record.thresholds.len());
    out.push_str("| best ε |");
    for b in best {
        let _ = write!(out, " {} |", b.map_or("—".to_string(), |e| e.to_string()));
    }
    let _ = write!(out, "\n\n{} score mode, {} averaging.\n", record.mode, record.averaging);
    out
}

/// Writes results.json, scores.csv and table.md into `dir`.
pub fn write_results(dir: &Path, record: &RunRecord) -> Result<()> {
    write_atomic(&dir.join("results.json"), (serde_json::to_string_pretty(&record.json)? + "\n").as_bytes())?;
    write_atomic(&dir.join("scores.csv"), scores_csv(record).as_bytes())?;
    write_atomic(&dir.join("table.md"), table_markdown(record).as_bytes())
}
