//! Result files. Their schema is written here, explicitly, and versioned:
//! internal types never become a file format by accident.
//!
//! * `scales/scale_NNN.json` — one finished scale (schema `synbench-scale/1`);
//! * `results.json` — config, provenance, per-scale outcomes, scores
//!   (schema `synbench-result/1`);
//! * `scores.csv` — one row per (ε, threshold), ready for pandas;
//! * `table.md` — the paper-style table;
//! * `bound_vs_threshold.{svg,png}`, `accuracy_vs_scale.{svg,png}` — the
//!   paper's figures ([`crate::plot`]).
//!
//! A run folder reads back as a [`SavedRun`], so `synbench score`, `table`
//! and `correlate` work from the saved per-scale outcomes alone.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use synbench_probe::{Averaging, EpsilonOutcome};
use synbench_theory::{ScaleOutcome, ScoreMode, synbench_scores};

use crate::config::{AVERAGINGS, GENERATORS, PRECISIONS, Plan, SCORE_MODES, name_of, value_of};
use crate::plot;

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

/// One row of a score table: a model at one ε.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// The run's label (model name, or the folder for several runs of one model).
    pub model: String,
    /// Robustness level.
    pub epsilon: f64,
    /// SynBench-score per threshold.
    pub scores: Vec<f64>,
}

/// Scores of several models × ε × thresholds, as the paper tabulates them.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreTable {
    /// Accuracy thresholds (columns).
    pub thresholds: Vec<f64>,
    /// Score mode used.
    pub mode: ScoreMode,
    /// Averaging used.
    pub averaging: Averaging,
    /// Rows, grouped by model.
    pub rows: Vec<ScoreRow>,
    /// Lines printed under the table (encoders, "random init", partial runs).
    pub notes: Vec<String>,
}

/// The ε with the highest score per threshold among `rows` (NaN never wins;
/// ties keep the smaller ε, listed first).
pub fn best_epsilons(rows: &[&ScoreRow], thresholds: usize) -> Vec<Option<f64>> {
    (0..thresholds)
        .map(|t| {
            let mut best: Option<(f64, f64)> = None;
            for row in rows {
                let s = row.scores[t];
                if !s.is_nan() && best.is_none_or(|(_, b)| s > b) {
                    best = Some((row.epsilon, s));
                }
            }
            best.map(|(e, _)| e)
        })
        .collect()
}

fn format_score(v: f64) -> String {
    if v.is_finite() { format!("{v:.4}") } else { format!("{v}") }
}

impl ScoreTable {
    /// Models in order of first appearance.
    fn models(&self) -> Vec<&str> {
        let mut models: Vec<&str> = Vec::new();
        for row in &self.rows {
            if !models.contains(&row.model.as_str()) {
                models.push(&row.model);
            }
        }
        models
    }

    /// The best ε per threshold of each model.
    pub fn best_epsilons(&self) -> Vec<(String, Vec<Option<f64>>)> {
        self.models()
            .into_iter()
            .map(|m| {
                let rows: Vec<&ScoreRow> = self.rows.iter().filter(|r| r.model == m).collect();
                (m.to_string(), best_epsilons(&rows, self.thresholds.len()))
            })
            .collect()
    }

    /// Markdown: one row per (model, ε), thresholds across, then per model the
    /// ε with the highest score at each threshold (the ε the paper suggests
    /// for robust probing).
    pub fn markdown(&self) -> String {
        let mut out = String::from("| model | ε |");
        for t in &self.thresholds {
            let _ = write!(out, " t={t} |");
        }
        out.push_str("\n|---|---:|");
        out.push_str(&"---:|".repeat(self.thresholds.len()));
        out.push('\n');
        for row in &self.rows {
            let _ = write!(out, "| {} | {} |", row.model, row.epsilon);
            for s in &row.scores {
                let _ = write!(out, " {} |", format_score(*s));
            }
            out.push('\n');
        }
        for (model, best) in self.best_epsilons() {
            let _ = write!(out, "| {model} | best ε |");
            for b in best {
                let _ = write!(out, " {} |", b.map_or("—".to_string(), |e| e.to_string()));
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "\nSynBench-score, {} score mode, {} averaging.",
            name_of(&SCORE_MODES, self.mode),
            name_of(&AVERAGINGS, self.averaging)
        );
        for note in &self.notes {
            let _ = writeln!(out, "{note}");
        }
        out
    }

    /// CSV in long format, one row per (model, ε, threshold), for pandas.
    pub fn csv(&self) -> String {
        let mut out = String::from("model,epsilon,threshold,score,mode,averaging\n");
        let (mode, averaging) = (name_of(&SCORE_MODES, self.mode), name_of(&AVERAGINGS, self.averaging));
        for row in &self.rows {
            for (threshold, score) in self.thresholds.iter().zip(&row.scores) {
                let _ =
                    writeln!(out, "{},{},{threshold},{score},{mode},{averaging}", csv_field(&row.model), row.epsilon);
            }
        }
        out
    }
}

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// Scores of per-scale records: one row per ε, per threshold.
pub fn score_records(
    records: &[ScaleRecord],
    epsilons: &[f64],
    thresholds: &[f64],
    averaging: Averaging,
    mode: ScoreMode,
) -> Result<Vec<Vec<f64>>> {
    let raw: Vec<ScaleOutcome> = records.iter().map(|r| r.raw).collect();
    (0..epsilons.len())
        .map(|e| {
            let rep: Vec<ScaleOutcome> = records.iter().map(|r| r.epsilons[e].outcome(averaging)).collect();
            Ok(synbench_scores(&rep, &raw, thresholds, mode)?)
        })
        .collect()
}

/// A run folder read back: what `score`, `table`, `correlate` and the plots need.
#[derive(Debug, Clone)]
pub struct SavedRun {
    /// The folder.
    pub dir: PathBuf,
    /// The model's name (timm preset or arch).
    pub model: String,
    /// The encoder in words ("random init" when no weights were loaded).
    pub encoder: String,
    /// Averaging the run was configured with.
    pub averaging: Averaging,
    /// Score mode the run was configured with.
    pub mode: ScoreMode,
    /// Thresholds the run was configured with.
    pub thresholds: Vec<f64>,
    /// Robustness levels.
    pub epsilons: Vec<f64>,
    /// Finished scales, in grid order.
    pub records: Vec<ScaleRecord>,
    /// Scales in the configured grid (more than `records` for a partial run).
    pub planned_scales: usize,
}

impl SavedRun {
    /// A run that has just finished in this process.
    pub fn from_plan(plan: &Plan, encoder: String, records: Vec<ScaleRecord>) -> Self {
        Self {
            dir: plan.output_dir.clone(),
            model: plan.model_name(),
            encoder,
            averaging: plan.averaging,
            mode: plan.score_mode,
            thresholds: plan.thresholds.clone(),
            epsilons: plan.epsilons.clone(),
            planned_scales: records.len(),
            records,
        }
    }

    /// Reads `dir/results.json` and the finished scales of that run under
    /// `dir/scales`. Without `results.json` (a run killed before its end) the
    /// finished scales alone are read, and the run is marked partial.
    pub fn load(dir: &Path) -> Result<Self> {
        let results = dir.join("results.json");
        let scale_dir = dir.join("scales");
        if results.is_file() {
            let json = read_json(&results)?;
            if json["schema"] != RESULT_SCHEMA {
                bail!("{}: `schema` is {}, expected \"{RESULT_SCHEMA}\"", results.display(), json["schema"]);
            }
            let field = |key: &str| -> Result<&Value> {
                let v = &json[key];
                if v.is_null() { bail!("{}: `{key}` is missing", results.display()) } else { Ok(v) }
            };
            let text = |key: &str| -> Result<String> {
                field(key)?
                    .as_str()
                    .map(str::to_string)
                    .with_context(|| format!("{}: `{key}` must be a string", results.display()))
            };
            let numbers = |key: &str| -> Result<Vec<f64>> {
                field(key)?
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_f64).collect::<Option<Vec<_>>>())
                    .with_context(|| format!("{}: `{key}` must be a list of numbers", results.display()))
            };
            let hash = json["provenance"]["config_hash"]
                .as_str()
                .with_context(|| format!("{}: `provenance.config_hash` is missing", results.display()))?;
            let averaging = value_of(&AVERAGINGS, &text("averaging")?)
                .map_err(|e| anyhow::anyhow!("{}: `averaging`: {e}", results.display()))?;
            let mode = value_of(&SCORE_MODES, &text("score_mode")?)
                .map_err(|e| anyhow::anyhow!("{}: `score_mode`: {e}", results.display()))?;
            let planned_scales = field("scales")?.as_array().map_or(0, Vec::len);
            let records = read_scales(&scale_dir, Some(hash))?;
            if records.len() != planned_scales {
                bail!(
                    "{}: {} scales are recorded but {} finished scale files of this run are in {}",
                    results.display(),
                    planned_scales,
                    records.len(),
                    scale_dir.display()
                );
            }
            Ok(Self {
                dir: dir.to_path_buf(),
                model: text("model")?,
                encoder: text("encoder")?,
                averaging,
                mode,
                thresholds: numbers("thresholds")?,
                epsilons: numbers("epsilons")?,
                records,
                planned_scales,
            })
        } else if scale_dir.is_dir() {
            let records = read_scales(&scale_dir, None)?;
            let Some(first) = records.first() else {
                bail!("{}: no results.json and no finished scale in {}", dir.display(), scale_dir.display());
            };
            Ok(Self {
                dir: dir.to_path_buf(),
                model: dir.file_name().map_or("run".into(), |n| n.to_string_lossy().into_owned()),
                encoder: "partial run (no results.json)".into(),
                averaging: Averaging::Reference,
                mode: ScoreMode::Reference,
                thresholds: synbench_theory::PAPER_THRESHOLDS.to_vec(),
                epsilons: first.epsilons.iter().map(|e| e.epsilon).collect(),
                planned_scales: records.len(),
                records,
            })
        } else {
            bail!("{} is not a synbench run folder: it has neither results.json nor scales/", dir.display())
        }
    }

    /// Scores per ε at `thresholds`, in `mode`, with `averaging`.
    pub fn scores(&self, thresholds: &[f64], averaging: Averaging, mode: ScoreMode) -> Result<Vec<ScoreRow>> {
        let scores = score_records(&self.records, &self.epsilons, thresholds, averaging, mode)?;
        Ok(self
            .epsilons
            .iter()
            .zip(scores)
            .map(|(&epsilon, scores)| ScoreRow { model: self.model.clone(), epsilon, scores })
            .collect())
    }

    /// The table of this run in its own configuration.
    pub fn table(&self) -> Result<ScoreTable> {
        Ok(ScoreTable {
            thresholds: self.thresholds.clone(),
            mode: self.mode,
            averaging: self.averaging,
            rows: self.scores(&self.thresholds, self.averaging, self.mode)?,
            notes: vec![format!("{}: {}", self.model, self.encoder)],
        })
    }

    /// The figures' data.
    pub fn write_figures(&self) -> Result<Vec<PathBuf>> {
        let scales: Vec<f64> = self.records.iter().map(|r| r.scale).collect();
        let raw: Vec<ScaleOutcome> = self.records.iter().map(|r| r.raw).collect();
        let series: Vec<plot::Series> = self
            .epsilons
            .iter()
            .enumerate()
            .map(|(e, eps)| plot::Series {
                label: format!("{} ε = {eps}", self.model),
                outcomes: self.records.iter().map(|r| r.epsilons[e].outcome(self.averaging)).collect(),
            })
            .collect();
        plot::write_figures(
            &self.dir,
            &plot::Figure {
                title: &self.model,
                subtitle: &self.encoder,
                scales: &scales,
                raw: &raw,
                representation: &series,
            },
        )
    }
}

/// The finished scales in `scale_dir`, in index order: those of `config_hash`
/// or, without one, those sharing the hash of the first file.
fn read_scales(scale_dir: &Path, config_hash: Option<&str>) -> Result<Vec<ScaleRecord>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(scale_dir)
        .with_context(|| format!("cannot list {}", scale_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("scale_"))
        })
        .collect();
    paths.sort();
    let mut hash = config_hash.map(str::to_string);
    let mut records = Vec::with_capacity(paths.len());
    for path in paths {
        let value = read_json(&path)?;
        let file_hash = value["config_hash"].as_str().unwrap_or_default().to_string();
        let wanted = hash.get_or_insert_with(|| file_hash.clone());
        if value["schema"] != SCALE_SCHEMA || file_hash != *wanted {
            continue;
        }
        let record = ScaleRecord::from_json(&value)
            .with_context(|| format!("{} is not a valid {SCALE_SCHEMA} record", path.display()))?;
        records.push(record);
    }
    records.sort_by_key(|r| r.index);
    Ok(records)
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

/// Wall time per stage of a run, in seconds (summed over the scales computed
/// in this process; generation overlaps encoding, so they can exceed the wall time).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimes {
    /// Drawing and normalising the synthetic inputs (on the generator thread).
    pub generation: f64,
    /// The encoder's forward passes.
    pub encoding: f64,
    /// Folding features into class statistics and evaluating the probe on the test split.
    pub statistics: f64,
    /// Fitting the probe: eigendecomposition and one QCQP per ε.
    pub probe: f64,
    /// Scoring and writing outputs.
    pub score: f64,
    /// The whole run.
    pub wall: f64,
    /// Images encoded in this process.
    pub images: u64,
    /// Peak resident memory of the process in MiB (Linux; `None` elsewhere).
    pub peak_rss_mib: Option<f64>,
}

/// The process's peak resident set size in MiB, from `/proc/self/status`
/// (`VmHWM`); `None` where that file does not exist.
pub fn peak_rss_mib() -> Option<f64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Builds `results.json` for a finished run.
pub fn results_json(plan: &Plan, run: &SavedRun, config_hash: &str, times: &StageTimes) -> Result<Value> {
    let averaging = plan.averaging;
    let modes =
        [plan.score_mode, if plan.score_mode == ScoreMode::Exact { ScoreMode::Reference } else { ScoreMode::Exact }];
    let mut by_mode = Vec::new();
    for mode in modes {
        by_mode.push(run.scores(&plan.thresholds, averaging, mode)?);
    }
    let rows = &by_mode[0];
    let best = best_epsilons(&rows.iter().collect::<Vec<_>>(), plan.thresholds.len());
    Ok(json!({
        "schema": RESULT_SCHEMA,
        "provenance": {
            "synbench_version": env!("CARGO_PKG_VERSION"),
            "crate_versions": {
                "synbench": env!("CARGO_PKG_VERSION"),
                "burn": synbench_models::BURN_VERSION,
            },
            "git_hash": option_env!("SYNBENCH_GIT_HASH").unwrap_or("unknown"),
            "backend": plan.backend,
            "device": plan.device,
            "precision": name_of(&PRECISIONS, plan.precision),
            "data_seed": plan.seed,
            "data_generator": name_of(&GENERATORS, plan.generator),
            "model_seed": plan.model_seed,
            "config_file": plan.file.display().to_string(),
            "config_hash": config_hash,
            "finished_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            "seconds": times.wall,
            "stage_seconds": {
                "generation": times.generation,
                "encoding": times.encoding,
                "statistics": times.statistics,
                "probe": times.probe,
                "score": times.score,
            },
            "images_encoded": times.images,
            "encoder_images_per_second": if times.encoding > 0.0 { json!(times.images as f64 / times.encoding) } else { Value::Null },
            "peak_rss_mib": times.peak_rss_mib,
        },
        "config": serde_json::to_value(&plan.raw)?,
        "model": run.model,
        "encoder": run.encoder,
        "averaging": name_of(&AVERAGINGS, averaging),
        "epsilons": plan.epsilons,
        "thresholds": plan.thresholds,
        "scales": run.records.iter().map(|r| json!({
            "index": r.index,
            "scale": r.scale,
            "raw": outcome_json(&r.raw),
            "representation": r.epsilons.iter().map(|e| json!({
                "epsilon": e.epsilon,
                "accuracy": e.outcome(averaging).accuracy,
                "bound": e.outcome(averaging).scaled_bound,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "scores": plan.epsilons.iter().enumerate().map(|(e, eps)| {
            let mut entry = json!({ "epsilon": eps });
            for (mode, rows) in modes.iter().zip(&by_mode) {
                entry[name_of(&SCORE_MODES, *mode)] = json!(rows[e].scores.iter().map(|s| finite_or_string(*s)).collect::<Vec<_>>());
            }
            entry
        }).collect::<Vec<_>>(),
        "score_mode": name_of(&SCORE_MODES, plan.score_mode),
        "best_epsilon": best,
    }))
}

/// Writes scores.csv and table.md (from `table`, the run's own table), the
/// figures, then results.json last: a folder with results.json is complete.
pub fn write_results(run: &SavedRun, table: &ScoreTable, results: &Value) -> Result<Vec<PathBuf>> {
    let dir = &run.dir;
    write_atomic(&dir.join("scores.csv"), table.csv().as_bytes())?;
    write_atomic(
        &dir.join("table.md"),
        format!("## SynBench-score: {}\n\n{}", run.model, table.markdown()).as_bytes(),
    )?;
    let mut written = vec![dir.join("scores.csv"), dir.join("table.md")];
    written.extend(run.write_figures()?);
    write_atomic(&dir.join("results.json"), (serde_json::to_string_pretty(results)? + "\n").as_bytes())?;
    written.push(dir.join("results.json"));
    Ok(written)
}
