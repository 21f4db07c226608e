//! Score tables, rendered: one row per (model, ε), one column per
//! threshold, as the paper tabulates them, in Markdown and long-format CSV
//! (one row per model, ε and threshold, for pandas); and a run's own
//! `table.md` and `scores.csv` ([`RunTables`]), which `synbench run`, the
//! Python package and `synbench score` write alike. The numbers come from
//! [`crate::scoring`]; nothing is computed here.

use std::fmt::Write as _;

use synbench_probe::{Averaging, JACKKNIFE_GROUPS, T975};
use synbench_theory::ScoreMode;

use crate::options::Estimator;
use crate::scoring::{RunScores, Scored};

/// One row of a score table: a model at one ε.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRow {
    /// The run's label (model name, or the folder for several runs of one model).
    pub model: String,
    /// Robustness level.
    pub epsilon: f64,
    /// SynBench-score per threshold.
    pub scores: Vec<f64>,
    /// Its jackknife standard error per threshold (NaN where unknown).
    pub stderr: Vec<f64>,
}

impl ScoreRow {
    /// The row of `model` at `epsilon`.
    pub fn new(model: &str, epsilon: f64, scored: &Scored) -> Self {
        Self { model: model.into(), epsilon, scores: scored.scores.clone(), stderr: scored.stderr.clone() }
    }

    /// The 95 % interval `(low, high)` at threshold index `t`.
    pub fn interval(&self, t: usize) -> (f64, f64) {
        crate::scoring::interval(self.scores[t], self.stderr[t])
    }
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
    /// Estimator of the scores.
    pub estimator: Estimator,
    /// Rows, grouped by model.
    pub rows: Vec<ScoreRow>,
    /// Lines printed under the table (encoders, "random init", partial runs).
    pub notes: Vec<String>,
}

fn format_score(v: f64) -> String {
    if v.is_finite() { format!("{v:.4}") } else { format!("{v}") }
}

impl ScoreTable {
    /// The table of one run's `estimator` in its headline mode, labelled
    /// `model`; `None` when the run does not carry that estimator.
    pub fn of_run(model: &str, scores: &RunScores, estimator: Estimator, notes: Vec<String>) -> Option<Self> {
        Some(Self::of_scored(model, scores, estimator, scores.scored(estimator)?, notes))
    }

    /// The table of one run's headline scores (its headline estimator and mode).
    pub fn headline(model: &str, scores: &RunScores, notes: Vec<String>) -> Self {
        Self::of_scored(model, scores, scores.headline, scores.headline_scores(), notes)
    }

    fn of_scored(model: &str, scores: &RunScores, estimator: Estimator, scored: &[Scored], notes: Vec<String>) -> Self {
        Self {
            thresholds: scores.scoring.thresholds.clone(),
            mode: scores.scoring.mode,
            averaging: scores.scoring.averaging,
            estimator,
            rows: scores.epsilons.iter().zip(scored).map(|(&e, s)| ScoreRow::new(model, e, s)).collect(),
            notes,
        }
    }

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
                let epsilons: Vec<f64> = rows.iter().map(|r| r.epsilon).collect();
                let scores: Vec<&[f64]> = rows.iter().map(|r| r.scores.as_slice()).collect();
                (m.to_string(), crate::scoring::best_epsilons(&epsilons, &scores, self.thresholds.len()))
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
            for (s, se) in row.scores.iter().zip(&row.stderr) {
                if se.is_finite() {
                    let _ = write!(out, " {} ± {se:.4} |", format_score(*s));
                } else {
                    let _ = write!(out, " {} |", format_score(*s));
                }
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
            "\nSynBench-score, {} score mode, {} averaging, {} estimator.",
            self.mode.name(),
            self.averaging.name(),
            self.estimator.name()
        );
        if self.rows.iter().any(|r| r.stderr.iter().any(|s| s.is_finite())) {
            let _ = writeln!(
                out,
                "± is the delete-a-group jackknife standard error ({JACKKNIFE_GROUPS} groups, calibrated per scale to the closed-form train variance, SPEC §7.1); the 95 % interval is ± {T975:.3}·stderr."
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}");
        }
        out
    }

    /// CSV in long format, one row per (model, ε, threshold), for pandas.
    pub fn csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push_str(&self.csv_rows());
        out
    }

    /// [`Self::csv`] without its header, to append another estimator's table.
    pub fn csv_rows(&self) -> String {
        let mut out = String::new();
        let (mode, averaging, estimator) = (self.mode.name(), self.averaging.name(), self.estimator.name());
        for row in &self.rows {
            for (t, (threshold, score)) in self.thresholds.iter().zip(&row.scores).enumerate() {
                let (low, high) = row.interval(t);
                let _ = writeln!(
                    out,
                    "{},{},{threshold},{score},{},{low},{high},{estimator},{mode},{averaging}",
                    csv_field(&row.model),
                    row.epsilon,
                    row.stderr[t]
                );
            }
        }
        out
    }
}

/// The header of `scores.csv`.
pub const CSV_HEADER: &str = "model,epsilon,threshold,score,stderr,ci_low,ci_high,estimator,mode,averaging\n";

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// A run's `table.md` and `scores.csv`: the headline table, the other
/// estimator's where the run carries it, and the score by train size.
#[derive(Debug, Clone, PartialEq)]
pub struct RunTables {
    /// `table.md`.
    pub markdown: String,
    /// `scores.csv`.
    pub csv: String,
}

impl RunTables {
    /// The texts of the run `model` (`notes` under each table).
    pub fn new(model: &str, scores: &RunScores, notes: &[String]) -> Self {
        let headline = ScoreTable::headline(model, scores, notes.to_vec());
        let mut csv = headline.csv();
        let mut markdown = format!("## SynBench-score: {model}\n\n{}", headline.markdown());
        for estimator in Estimator::ALL.into_iter().filter(|&e| e != scores.headline) {
            let Some(other) = ScoreTable::of_run(model, scores, estimator, notes.to_vec()) else { continue };
            csv.push_str(&other.csv_rows());
            let about = match estimator {
                Estimator::Population => {
                    "The score of the ε-robust probe built from the features' population moments, estimated from \
                     the train split (SPEC §7); not biased by the feature width as the reference estimator is."
                }
                Estimator::Reference => {
                    "The reference protocol's score (SPEC §3): the probe fitted on the train split, evaluated on \
                     the test split."
                }
            };
            let _ = write!(markdown, "\n## {} estimator: {model}\n\n{about}\n\n{}", estimator.name(), other.markdown());
        }
        let by_size = finite_n_markdown(scores);
        if !by_size.is_empty() {
            let _ = write!(markdown, "\n## Score vs train size: {model}\n\n{by_size}");
        }
        Self { markdown, csv }
    }
}

/// The score by train size at the first threshold as a Markdown table: one
/// row per ε and estimator, one column per train size (empty without nested
/// sizes).
pub fn finite_n_markdown(scores: &RunScores) -> String {
    let sizes = &scores.finite_n;
    let Some(threshold) = scores.scoring.thresholds.first().filter(|_| sizes.len() > 1) else { return String::new() };
    let mut out = String::from("| ε | estimator |");
    for s in sizes {
        let _ = write!(out, " n_train={} |", s.n_train);
    }
    out.push_str("\n|---:|---|");
    out.push_str(&"---:|".repeat(sizes.len()));
    out.push('\n');
    for (e, &epsilon) in scores.epsilons.iter().enumerate() {
        for estimator in Estimator::ALL {
            let cells: Option<Vec<String>> = sizes
                .iter()
                .map(|s| {
                    let scored = &s.of(estimator)?[e];
                    let (v, se) = (scored.scores[0], scored.stderr[0]);
                    Some(if se.is_finite() { format!("{v:.4} ± {se:.4}") } else { format!("{v:.4}") })
                })
                .collect();
            if let Some(cells) = cells {
                let _ = writeln!(out, "| {epsilon} | {} | {} |", estimator.name(), cells.join(" | "));
            }
        }
    }
    let _ = writeln!(
        out,
        "\nSynBench-score at t = {threshold} with the probe fitted on the first n_train train samples of each scale \
         (the test split whole); ± at the full size only. A reference score that still climbs with n_train is not \
         converged; the population estimate should stay flat within its interval."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two models, one with a comma in its name, a NaN score, and a tie.
    fn table() -> ScoreTable {
        let row = |model: &str, epsilon: f64, scores: [f64; 3]| ScoreRow {
            model: model.into(),
            epsilon,
            scores: scores.to_vec(),
            stderr: if model == "vit_tiny" { vec![0.012, 0.0, f64::NAN] } else { vec![f64::NAN; 3] },
        };
        ScoreTable {
            thresholds: vec![0.6, 0.8, 0.99],
            mode: ScoreMode::Reference,
            averaging: Averaging::Exact,
            estimator: Estimator::Reference,
            rows: vec![
                row("vit_tiny", 0.0, [0.91, 0.875, f64::NAN]),
                row("vit_tiny", 0.2, [0.93, 0.875, 0.5]),
                row("my, \"model\"", 0.0, [0.1, 0.2, 0.3]),
            ],
            notes: vec!["vit_tiny: random init".into()],
        }
    }

    #[test]
    fn csv_layout() {
        insta::assert_snapshot!("scores_csv", table().csv());
    }

    #[test]
    fn markdown_layout() {
        insta::assert_snapshot!("table_md", table().markdown());
    }

    #[test]
    fn best_epsilon_skips_nan_and_keeps_the_smaller_on_ties() {
        let t = table();
        assert_eq!(t.best_epsilons()[0], ("vit_tiny".to_string(), vec![Some(0.2), Some(0.0), Some(0.2)]));
    }
}
