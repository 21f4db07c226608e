//! The conformance runner: checks this build against fixture files produced
//! by the published reference protocol (format: `tests/fixtures/reference/README.md`).
//!
//! Every case is recomputed with the project's own code and compared with a
//! tolerance: 1e-9 relative for closed forms, curves and scores, 1e-6
//! (relative to ‖μ‖∞) for the QCQP against the exact solution. Any directory
//! holding files of the same format works; files that are absent are skipped,
//! a directory with none of them is an error.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use synbench_theory::score::reference_f32;
use synbench_theory::{
    ScaleOutcome, ScoreMode, TheoryError, expected_bound_curve, expected_scaled_bound, normal, raw_reference,
    reference_threshold_grid, solve_l2_qcqp, synbench_scores,
};

/// Relative tolerance for closed forms, curves and scores.
pub const CLOSED_FORM_RTOL: f64 = 1e-9;
/// Tolerance of the QCQP solution against the exact one, relative to ‖μ‖∞.
pub const QCQP_TOL: f64 = 1e-6;

/// Outcome of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Within tolerance.
    Pass,
    /// Outside tolerance or not computable.
    Fail,
    /// Not checkable by this build yet.
    Pending,
}

/// One checked case.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// `file/case` label.
    pub label: String,
    /// Pass, fail or pending.
    pub status: Status,
    /// Largest error seen in the case (relative unless the detail says otherwise).
    pub max_error: f64,
    /// What was compared, in a few words.
    pub detail: String,
}

/// All cases of a directory.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The cases in file order.
    pub cases: Vec<CaseReport>,
    /// Fixture files that were not present.
    pub skipped_files: Vec<String>,
}

impl Report {
    /// Number of passing cases.
    pub fn passed(&self) -> usize {
        self.count(Status::Pass)
    }
    /// Number of failing cases.
    pub fn failed(&self) -> usize {
        self.count(Status::Fail)
    }
    /// Number of pending cases.
    pub fn pending(&self) -> usize {
        self.count(Status::Pending)
    }
    /// What the summary counts as skipped: pending cases and absent fixture files.
    pub fn skipped(&self) -> usize {
        self.pending() + self.skipped_files.len()
    }
    fn count(&self, status: Status) -> usize {
        self.cases.iter().filter(|c| c.status == status).count()
    }
    /// Worst error among passing and failing cases whose label starts with `prefix`.
    pub fn worst_error(&self, prefix: &str) -> f64 {
        self.cases
            .iter()
            .filter(|c| c.label.starts_with(prefix) && c.status != Status::Pending)
            .map(|c| c.max_error)
            .fold(0.0, f64::max)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.skipped_files {
            writeln!(f, "SKIP    {file}: not present")?;
        }
        for case in &self.cases {
            let tag = match case.status {
                Status::Pass => "PASS   ",
                Status::Fail => "FAIL   ",
                Status::Pending => "PENDING",
            };
            writeln!(f, "{tag} {:<58} max err {:9.2e}  {}", case.label, case.max_error, case.detail)?;
        }
        for kind in ["theory", "score", "qcqp", "bayes_probe"] {
            if self.cases.iter().any(|c| c.label.starts_with(kind) && c.status != Status::Pending) {
                writeln!(f, "worst {kind} error: {:.2e}", self.worst_error(kind))?;
            }
        }
        writeln!(f, "{} passed, {} failed, {} skipped", self.passed(), self.failed(), self.skipped())
    }
}

/// Checks one fixture file's cases, appending a report per case.
type Checker = fn(&Value, &mut Vec<CaseReport>) -> Result<()>;

/// Runs every fixture file found in `dir`.
pub fn run_directory(dir: &Path) -> Result<Report> {
    if !dir.is_dir() {
        bail!("fixture directory {} does not exist or is not a directory", dir.display());
    }
    let mut report = Report::default();
    let checkers: [(&str, Checker); 4] = [
        ("theory.json", check_theory),
        ("score.json", check_score),
        ("qcqp.json", check_qcqp),
        ("bayes_probe.json", check_bayes_probe),
    ];
    for (name, checker) in checkers {
        let path = dir.join(name);
        if !path.exists() {
            report.skipped_files.push(name.to_string());
            continue;
        }
        let value: Value = synbench_experiment::io::read_json(&path)?;
        checker(&value, &mut report.cases).with_context(|| format!("{}: unexpected layout", path.display()))?;
    }
    if report.skipped_files.len() == checkers.len() {
        bail!("{} holds none of theory.json, score.json, qcqp.json, bayes_probe.json: nothing to check", dir.display());
    }
    Ok(report)
}

// ---------------------------------------------------------------- JSON access

/// A fixture number: a JSON number or one of "NaN", "Infinity", "-Infinity".
fn number(v: &Value) -> Result<f64> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| anyhow!("{n} is not a double")),
        Value::String(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => bail!("expected a number, found the string {other:?}"),
        },
        other => bail!("expected a number, found {other}"),
    }
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value> {
    v.get(key).ok_or_else(|| anyhow!("missing field `{key}`"))
}

fn num_field(v: &Value, key: &str) -> Result<f64> {
    number(field(v, key)?).with_context(|| format!("field `{key}`"))
}

fn vec_field(v: &Value, key: &str) -> Result<Vec<f64>> {
    let arr = field(v, key)?.as_array().ok_or_else(|| anyhow!("field `{key}` is not an array"))?;
    arr.iter().enumerate().map(|(i, x)| number(x).with_context(|| format!("`{key}`[{i}]"))).collect()
}

fn array_field<'a>(v: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    field(v, key)?.as_array().ok_or_else(|| anyhow!("field `{key}` is not an array"))
}

// ---------------------------------------------------------------- comparison

/// Relative error, absolute where the expected value is zero; equal
/// non-finite values (NaN with NaN, ∞ with ∞) count as exact.
fn rel_err(got: f64, want: f64) -> f64 {
    if got.is_nan() && want.is_nan() || got == want {
        return 0.0;
    }
    if !got.is_finite() || !want.is_finite() {
        return f64::INFINITY;
    }
    if want == 0.0 { got.abs() } else { (got - want).abs() / want.abs() }
}

fn max_rel_err(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    got.iter().zip(want).map(|(g, w)| rel_err(*g, *w)).fold(0.0, f64::max)
}

fn case(label: String, max_error: f64, tolerance: f64, detail: String) -> CaseReport {
    let status = if max_error <= tolerance { Status::Pass } else { Status::Fail };
    CaseReport { label, status, max_error, detail }
}

fn failed(label: String, detail: String) -> CaseReport {
    CaseReport { label, status: Status::Fail, max_error: f64::INFINITY, detail }
}

// ---------------------------------------------------------------- theory.json

fn check_theory(doc: &Value, out: &mut Vec<CaseReport>) -> Result<()> {
    let bound = field(doc, "bound")?;
    let accuracy = vec_field(bound, "accuracy")?;
    let m = vec_field(bound, "m")?;
    let expected = vec_field(bound, "expected_bound")?;
    let stable = vec_field(bound, "expected_bound_stable")?;
    for (i, &a) in accuracy.iter().enumerate() {
        let label = format!("theory/bound a={a}");
        match expected_scaled_bound(a) {
            Ok(e) => {
                let err = rel_err(normal::quantile(a), m[i])
                    .max(rel_err(e, expected[i]))
                    .max(if stable[i].is_finite() { rel_err(e, stable[i]) } else { 0.0 });
                out.push(case(label, err, CLOSED_FORM_RTOL, "quantile and E(a)".into()));
            }
            Err(TheoryError::AccuracyOutOfDomain { .. }) if !(a > 0.5 && a <= 1.0) => out.push(CaseReport {
                label,
                status: Status::Pass,
                max_error: 0.0,
                detail: format!("outside (0.5, 1]: rejected as a domain error (reference prints {})", expected[i]),
            }),
            Err(err) => out.push(failed(label, err.to_string())),
        }
    }

    for (i, row) in array_field(doc, "monte_carlo")?.iter().enumerate() {
        let a = num_field(row, "accuracy")?;
        let (mc_mean, mc_stderr) = (num_field(row, "mc_mean")?, num_field(row, "mc_stderr")?);
        let label = format!("theory/monte_carlo[{i}] a={a}");
        match expected_scaled_bound(a) {
            Ok(e) => {
                let z = (e - mc_mean) / mc_stderr;
                let mut report = case(
                    label,
                    rel_err(e, num_field(row, "formula")?),
                    CLOSED_FORM_RTOL,
                    format!("formula; Monte Carlo mean {z:+.2} standard errors away"),
                );
                if z.abs() > 4.0 {
                    report.status = Status::Fail;
                }
                out.push(report);
            }
            Err(err) => out.push(failed(label, err.to_string())),
        }
    }

    let scales = field(doc, "scales")?;
    let scale = vec_field(scales, "scale")?;
    let phi_exact = vec_field(scales, "phi_exact")?;
    let bound_exact = vec_field(scales, "bound_exact")?;
    let norm_f32 = vec_field(scales, "norm_float32_reference")?;
    let phi_reference = vec_field(scales, "phi_reference")?;
    let bound_reference = vec_field(scales, "bound_reference")?;
    for (i, &s) in scale.iter().enumerate() {
        let label = format!("theory/raw_reference s={s}");
        let exact = raw_reference(s);
        let reference = raw_reference(norm_f32[i]);
        let bound_of_reference_phi = expected_scaled_bound(phi_reference[i]);
        match (exact, reference, bound_of_reference_phi) {
            (Ok(exact), Ok(reference), Ok(bound_ref)) => {
                let err = rel_err(exact.accuracy, phi_exact[i])
                    .max(rel_err(exact.scaled_bound, bound_exact[i]))
                    .max(rel_err(reference.accuracy, phi_reference[i]))
                    .max(rel_err(bound_ref, bound_reference[i]));
                out.push(case(label, err, CLOSED_FORM_RTOL, "Φ(s), E(Φ(s)); float32-norm variants".into()));
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => out.push(failed(label, e.to_string())),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- score.json

fn outcomes(accuracy: &[f64], bound: &[f64]) -> Vec<ScaleOutcome> {
    accuracy.iter().zip(bound).map(|(&accuracy, &scaled_bound)| ScaleOutcome { accuracy, scaled_bound }).collect()
}

fn check_score(doc: &Value, out: &mut Vec<CaseReport>) -> Result<()> {
    let grid = reference_threshold_grid();
    for (i, c) in array_field(doc, "cases")?.iter().enumerate() {
        let name = c.get("name").and_then(Value::as_str).map_or_else(|| format!("case{i}"), str::to_string);
        let xgrid = vec_field(c, "xgrid")?;
        let thresholds = vec_field(c, "thresholds")?;
        let raw = outcomes(&vec_field(c, "raw_accuracy")?, &vec_field(c, "raw_bound")?);
        let raw_curve_want = vec_field(c, "raw_curve")?;
        let raw_curve = match expected_bound_curve(&raw, &grid) {
            Ok(curve) => curve,
            Err(err) => {
                out.push(failed(format!("score/{name}"), format!("raw outcomes: {err}")));
                continue;
            }
        };
        let grid_err = max_rel_err(&grid, &xgrid);
        let raw_err = max_rel_err(&raw_curve, &raw_curve_want);
        let rep = field(c, "rep")?.as_object().ok_or_else(|| anyhow!("field `rep` is not an object"))?;
        for (eps, r) in rep {
            let label = format!("score/{name} eps={eps}");
            let rep = outcomes(&vec_field(r, "accuracy")?, &vec_field(r, "bound")?);
            let computed = (|| -> synbench_theory::Result<_> {
                Ok((
                    expected_bound_curve(&rep, &grid)?,
                    synbench_scores(&rep, &raw, &thresholds, ScoreMode::Reference)?,
                    synbench_scores(&rep, &raw, &thresholds, ScoreMode::Exact)?,
                    reference_f32::curve(&rep, &grid)?,
                ))
            })();
            let (curve, score_grid, score_exact, curve_f32) = match computed {
                Ok(values) => values,
                Err(err) => {
                    out.push(failed(label, err.to_string()));
                    continue;
                }
            };
            let curve_f32: Vec<f64> = curve_f32.iter().map(|&v| f64::from(v)).collect();
            let score_f32 = reference_f32::scores(
                &curve_f32.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                &raw_curve,
                &grid,
                &thresholds,
            );
            let parts = [
                ("xgrid", grid_err),
                ("raw_curve", raw_err),
                ("curve_f64", max_rel_err(&curve, &vec_field(r, "curve_f64")?)),
                ("score_f64", max_rel_err(&score_grid, &vec_field(r, "score_f64")?)),
                ("score_exact_integral", max_rel_err(&score_exact, &vec_field(r, "score_exact_integral")?)),
                ("curve_reference", max_rel_err(&curve_f32, &vec_field(r, "curve_reference")?)),
                ("score_reference", max_rel_err(&score_f32, &vec_field(r, "score_reference")?)),
            ];
            let (worst, err) = parts.iter().fold(("", 0.0), |acc, &(n, e)| if e > acc.1 { (n, e) } else { acc });
            let detail = if err > 0.0 { format!("worst: {worst}") } else { "all bit-identical".into() };
            out.push(case(
                label,
                err,
                CLOSED_FORM_RTOL,
                format!("curves, both score modes, float32 emulation; {detail}"),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- qcqp.json

fn check_qcqp(doc: &Value, out: &mut Vec<CaseReport>) -> Result<()> {
    for (i, inst) in array_field(doc, "instances")?.iter().enumerate() {
        let note = inst.get("note").and_then(Value::as_str).unwrap_or("");
        let label = format!("qcqp[{i}] n={} {note}", inst.get("n").map_or(String::new(), Value::to_string));
        let mu = vec_field(inst, "mu")?;
        let d = vec_field(inst, "d")?;
        let delta = num_field(inst, "delta")?;
        let exact = field(inst, "exact")?;
        let z_want = vec_field(exact, "z")?;
        let scs_err = inst.get("scs").and_then(|s| s.get("max_abs_err_vs_exact")).and_then(|v| number(v).ok());
        match solve_l2_qcqp(&mu, &d, delta) {
            Ok(sol) => {
                let scale = mu.iter().fold(0.0_f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
                let z_err = if sol.z.len() == z_want.len() {
                    sol.z.iter().zip(&z_want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max) / scale
                } else {
                    f64::INFINITY
                };
                let objective_err = rel_err(sol.objective(&mu, &d), num_field(exact, "objective")?);
                let err = z_err.max(objective_err);
                let scs = scs_err.map_or(String::new(), |e| format!("; SCS is off by {e:.1e}"));
                out.push(case(label, err, QCQP_TOL, format!("z, objective in {} steps{scs}", sol.iterations)));
            }
            Err(err) => out.push(failed(label, err.to_string())),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- bayes_probe.json

fn check_bayes_probe(doc: &Value, out: &mut Vec<CaseReport>) -> Result<()> {
    use synbench_probe::ndarray::Axis;
    use synbench_probe::{BayesProbeParams, ClassStatistics, ParamGuard};

    let epsilons = vec_field(doc, "epsilons")?;
    for (i, c) in array_field(doc, "cases")?.iter().enumerate() {
        let dim = c.get("dim").map_or(String::new(), Value::to_string);
        let label = format!("bayes_probe[{i}] dim={dim}");
        let train_x = f32_matrix(c, "train_X")?;
        let train_y = label_vector(c, "train_y")?;
        let test_x = f32_matrix(c, "test_X")?;
        let test_y = label_vector(c, "test_y")?;
        let batch_size = usize::try_from(num_field(c, "batch_size")? as u64)?;
        let per_eps = array_field(c, "per_eps")?;
        if per_eps.len() != epsilons.len() {
            bail!("case {i}: `per_eps` has {} entries for {} epsilons", per_eps.len(), epsilons.len());
        }
        let outcomes = (|| -> synbench_probe::Result<_> {
            let stats = ClassStatistics::from_batch(train_x.view(), train_y.view())?;
            let probe = BayesProbeParams::new(epsilons.clone()).batch_size(batch_size).check()?.fit(&stats)?;
            // Stream the test split batch by batch, as the reference's loader does.
            let mut evaluator = probe.evaluator();
            for start in (0..test_y.len()).step_by(batch_size) {
                let end = (start + batch_size).min(test_y.len());
                let rows = (start..end).into();
                evaluator.fold(test_x.slice_axis(Axis(0), rows), test_y.slice_axis(Axis(0), rows))?;
            }
            let weights: Vec<Vec<f64>> = probe.directions().iter().map(|d| d.weights.to_vec()).collect();
            Ok((evaluator.finish(), weights))
        })();
        let (outcomes, weights) = match outcomes {
            Ok(values) => values,
            Err(err) => {
                out.push(failed(label, err.to_string()));
                continue;
            }
        };
        let mut worst = (String::new(), 0.0_f64);
        let mut worst_f64 = 0.0_f64;
        let mut note = |what: String, err: f64| {
            if what.contains("f64.") {
                worst_f64 = worst_f64.max(err);
            }
            if err > worst.1 || worst.0.is_empty() {
                worst = (what, err);
            }
        };
        let mut accuracy_mismatch = None;
        for ((want, got), w) in per_eps.iter().zip(&outcomes).zip(&weights) {
            let eps = got.epsilon;
            let f64s = field(want, "f64")?;
            let exact_accuracy = [
                ("accuracy", got.reference.accuracy, num_field(want, "accuracy")?),
                ("accuracy_plain_mean", got.exact.accuracy, num_field(want, "accuracy_plain_mean")?),
                ("f64.accuracy", got.reference.accuracy, num_field(f64s, "accuracy")?),
            ];
            for (name, g, w) in exact_accuracy {
                if g != w {
                    accuracy_mismatch.get_or_insert(format!("eps={eps}: {name} {g} != {w}"));
                }
            }
            note(format!("eps={eps} bound"), rel_err(got.reference.scaled_bound, num_field(want, "bound")?));
            note(format!("eps={eps} f64.bound"), rel_err(got.reference.scaled_bound, num_field(f64s, "bound")?));
            note(
                format!("eps={eps} bound_plain_mean"),
                rel_err(got.exact.scaled_bound, num_field(want, "bound_plain_mean")?),
            );
            note(
                format!("eps={eps} f64.bound_plain_mean"),
                rel_err(got.exact.scaled_bound, num_field(f64s, "bound_plain_mean")?),
            );
            note(format!("eps={eps} f64.W"), max_rel_err_scaled(w, &vec_field(f64s, "W")?));
        }
        let report = match accuracy_mismatch {
            Some(detail) => failed(label, format!("accuracy not exact: {detail}")),
            None => case(
                label,
                worst.1,
                BAYES_PROBE_RTOL,
                format!(
                    "accuracies exact; bounds, plain means, W; worst: {}; vs f64 pipeline {worst_f64:.1e}",
                    worst.0
                ),
            ),
        };
        out.push(report);
    }
    Ok(())
}

/// Relative tolerance of the Bayes probe's bounds and weights (fixture README).
const BAYES_PROBE_RTOL: f64 = 1e-6;

/// Largest entry error relative to the largest entry of `want` (tiny entries of
/// `W` carry no meaning of their own).
fn max_rel_err_scaled(got: &[f64], want: &[f64]) -> f64 {
    if got.len() != want.len() {
        return f64::INFINITY;
    }
    let scale = want.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let err = got.iter().zip(want).fold(0.0_f64, |m, (g, w)| m.max((g - w).abs()));
    if scale == 0.0 { err } else { err / scale }
}

/// A `[rows][cols]` matrix of float32 values (stored as exact doubles).
fn f32_matrix(v: &Value, key: &str) -> Result<synbench_probe::ndarray::Array2<f32>> {
    let rows = array_field(v, key)?;
    let cols = rows.first().and_then(Value::as_array).map_or(0, Vec::len);
    let mut data = Vec::with_capacity(rows.len() * cols);
    for (r, row) in rows.iter().enumerate() {
        let row = row.as_array().ok_or_else(|| anyhow!("`{key}`[{r}] is not an array"))?;
        if row.len() != cols {
            bail!("`{key}`[{r}] has {} entries, expected {cols}", row.len());
        }
        for (c, x) in row.iter().enumerate() {
            data.push(number(x).with_context(|| format!("`{key}`[{r}][{c}]"))? as f32);
        }
    }
    Ok(synbench_probe::ndarray::Array2::from_shape_vec((rows.len(), cols), data)?)
}

/// Labels 0/1 as `u8`.
fn label_vector(v: &Value, key: &str) -> Result<synbench_probe::ndarray::Array1<u8>> {
    vec_field(v, key)?
        .iter()
        .enumerate()
        .map(|(i, &y)| match y {
            0.0 => Ok(0),
            1.0 => Ok(1),
            other => bail!("`{key}`[{i}] = {other}, expected a label 0 or 1"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn relative_error_treats_equal_non_finite_values_as_exact() {
        assert_eq!(rel_err(f64::NAN, f64::NAN), 0.0);
        assert_eq!(rel_err(f64::INFINITY, f64::INFINITY), 0.0);
        assert_eq!(rel_err(1.0, f64::INFINITY), f64::INFINITY);
        assert_eq!(rel_err(f64::NAN, 1.0), f64::INFINITY);
        assert_eq!(rel_err(1e-20, 0.0), 1e-20);
        assert_eq!(rel_err(1.1, 1.0), (1.1_f64 - 1.0).abs());
    }

    #[test]
    fn fixture_numbers_accept_the_strings_for_non_finite_values() {
        assert!(number(&Value::from("NaN")).unwrap().is_nan());
        assert_eq!(number(&Value::from("-Infinity")).unwrap(), f64::NEG_INFINITY);
        assert!(number(&Value::from("nan")).is_err());
        assert!(number(&Value::Null).is_err());
    }

    #[test]
    fn a_directory_without_fixtures_is_an_error() {
        let dir = std::env::temp_dir().join(format!("synbench-empty-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let err = run_directory(&dir).unwrap_err().to_string();
        assert!(err.contains("nothing to check"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn absent_fixture_files_count_as_skipped() {
        let fixtures = std::env::var_os("SYNBENCH_FIXTURES").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/reference"),
            PathBuf::from,
        );
        let dir = std::env::temp_dir().join(format!("synbench-one-fixture-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::copy(fixtures.join("theory.json"), dir.join("theory.json")).unwrap();
        let report = run_directory(&dir).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(report.skipped_files, ["score.json", "qcqp.json", "bayes_probe.json"]);
        assert!(report.passed() > 0 && report.failed() == 0);
        let summary = report.to_string();
        let last = summary.lines().last().unwrap();
        assert_eq!(last, format!("{} passed, 0 failed, {} skipped", report.passed(), report.pending() + 3));
    }
}
