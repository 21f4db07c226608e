//! `synbench._synbench`: the Python module's Rust core, a thin layer of PyO3
//! classes over synbench-experiment. The Python package (`python/synbench`)
//! adds the keyword API, feature conversion and the torch helper; every
//! check, the run, its schema and its writers are synbench-experiment's, so
//! a folder written from Python is the folder `synbench run` writes.
//!
//! The GIL is released around every piece of Rust work (waiting for the
//! generator, folding, fitting, scoring, writing); the generator itself runs
//! on a thread of its own and never needs it. Batches cross into numpy by
//! moving their buffer (no copy); float32 C-contiguous features are read in
//! place. Every error becomes a `synbench.SynbenchError` (a `ValueError`),
//! and a Rust panic is caught and reported as one, never unwinding into
//! Python.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use synbench_data::Split;
use synbench_experiment::config::{parse, parse_protocol};
use synbench_experiment::sweep::{self, SweepFile, SweepModel};
use synbench_experiment::{
    Batch, EncoderInfo, Experiment, ExperimentError, Failure, GeneratorThreads, Leaderboard, ModelSpec, Named, Plan,
    RunResult, StartOptions, StartPolicy,
};
use synbench_probe::ndarray::Array2;
use synbench_theory::{PAPER_THRESHOLDS, ScaleGrid, ScaleOutcome, ScoreMode, synbench_scores};

create_exception!(
    _synbench,
    SynbenchError,
    PyValueError,
    "Bad input or a failed run: the message names the batch, scale, field or file and what was expected."
);

fn error(e: impl std::fmt::Display) -> PyErr {
    SynbenchError::new_err(e.to_string())
}

/// Runs `f` with the GIL released, turning a panic into a `SynbenchError`.
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, ExperimentError> + Send) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(f)))
        .map_err(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_else(|| "unknown".into());
            error(format!("internal error in synbench's Rust core (please report it): {what}"))
        })?
        .map_err(error)
}

/// A run in progress (see `synbench.Experiment`).
#[pyclass(module = "synbench._synbench", name = "_Experiment")]
struct PyExperiment {
    inner: Mutex<Option<Experiment>>,
    /// The sample shape, to hand inputs out as `(b, *shape)`.
    shape: Vec<usize>,
}

impl PyExperiment {
    fn with<T>(&self, f: impl FnOnce(&mut Experiment) -> PyResult<T>) -> PyResult<T> {
        let mut guard = self.inner.lock().map_err(|_| error("the experiment is poisoned by an earlier panic"))?;
        match guard.as_mut() {
            Some(experiment) => f(experiment),
            None => Err(error("the experiment is finished: finish() was already called")),
        }
    }
}

#[pymethods]
impl PyExperiment {
    /// Builds the plan from config text (`source` names it in errors) and
    /// starts the run. `policy`: "fresh", "resume" or "restart".
    #[new]
    #[pyo3(signature = (
        toml, source, policy, batch_size=None, batch_threads=None, in_memory=false, output_dir=None,
        model_name=None, protocol=false, backend=None, device=None,
    ))]
    #[allow(clippy::too_many_arguments)] // the Python constructor's keywords, one each
    fn new(
        py: Python<'_>,
        toml: &str,
        source: &str,
        policy: &str,
        batch_size: Option<usize>,
        batch_threads: Option<usize>,
        in_memory: bool,
        output_dir: Option<PathBuf>,
        model_name: Option<String>,
        protocol: bool,
        backend: Option<String>,
        device: Option<String>,
    ) -> PyResult<Self> {
        let mut plan = plan_of(toml, source, model_name, protocol)?;
        if in_memory {
            plan.output_dir = None;
        } else if let Some(dir) = output_dir {
            plan.output_dir = Some(dir);
        }
        if let Some(batch_size) = batch_size {
            if batch_size == 0 {
                return Err(error("batch_size must be at least 1"));
            }
            plan.encoder.batch_size = batch_size;
        }
        let policy = match policy {
            "fresh" => StartPolicy::Fresh,
            "resume" => StartPolicy::Resume,
            "restart" => StartPolicy::Restart,
            other => return Err(error(format!("policy {other:?}: expected \"fresh\", \"resume\" or \"restart\""))),
        };
        let generator = match batch_threads {
            Some(threads) => GeneratorThreads::Own(threads),
            None => GeneratorThreads::Global,
        };
        let options = StartOptions { policy, generator, batch_size: plan.encoder.batch_size };
        let this = Self { shape: plan.mixture.sample_shape().to_vec(), inner: Mutex::new(None) };
        let description = format!("{} (from Python)", plan.model_name);
        let info = EncoderInfo { backend, device, ..EncoderInfo::described(description) };
        let experiment = detached(py, move || Experiment::start(plan, info, options))?;
        *this.inner.lock().expect("new") = Some(experiment);
        Ok(this)
    }

    /// The next batch, or `None` when every scale is finished.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<PyBatch>> {
        let batch = self.with(|e| detached(py, || e.next_batch()))?;
        Ok(batch.map(|mut batch| {
            let inputs = std::mem::replace(&mut batch.inputs, Array2::zeros((0, 0)));
            let (rows, width) = inputs.dim();
            let inputs = inputs.into_pyarray(py);
            // (b, *shape) without a copy: the buffer moved into numpy above.
            let mut shape = vec![rows];
            shape.extend(&self.shape);
            debug_assert_eq!(width, self.shape.iter().product::<usize>());
            let inputs = inputs.reshape(shape).expect("the batch has the plan's sample shape").unbind().into_any();
            let labels = batch.labels.clone().into_pyarray(py).unbind();
            PyBatch { inner: batch, inputs, labels }
        }))
    }

    /// Folds float32 `(b, D)` features of `batch` (the Python layer converts
    /// other dtypes and array types); returns the scale index when this
    /// batch finished a scale.
    fn fold(&self, py: Python<'_>, batch: &PyBatch, features: PyReadonlyArray2<'_, f32>) -> PyResult<Option<usize>> {
        let view = features.as_array();
        self.with(|e| detached(py, || e.fold(&batch.inner, view)).map(|done| done.map(|r| r.index)))
    }

    /// Inputs still to hand out.
    fn remaining_inputs(&self) -> PyResult<u64> {
        self.with(|e| Ok(e.remaining_inputs()))
    }

    /// Indices of the finished scales.
    fn finished_scales(&self) -> PyResult<Vec<usize>> {
        self.with(|e| Ok(e.finished_scales()))
    }

    /// Scores the finished run (and writes its folder, if it has one).
    fn finish(&self, py: Python<'_>) -> PyResult<PyRunResult> {
        let mut guard = self.inner.lock().map_err(|_| error("the experiment is poisoned by an earlier panic"))?;
        let Some(experiment) = guard.as_ref() else {
            return Err(error("the experiment is finished: finish() was already called"));
        };
        let missing = experiment.unfinished_scales();
        if !missing.is_empty() {
            // Keep the experiment: the caller may still fold the missing batches.
            return Err(error(ExperimentError::NotFinished { missing }));
        }
        let experiment = guard.take().expect("checked above");
        let result = detached(py, move || experiment.finish())?;
        Ok(PyRunResult { inner: result })
    }
}

/// A batch handed out: inputs `(b, *shape)` float32, labels `(b,)` uint8.
#[pyclass(module = "synbench._synbench", name = "Batch", frozen)]
struct PyBatch {
    inner: Batch,
    inputs: Py<PyAny>,
    labels: Py<PyArray1<u8>>,
}

#[pymethods]
impl PyBatch {
    #[getter]
    fn inputs(&self, py: Python<'_>) -> Py<PyAny> {
        self.inputs.clone_ref(py)
    }
    #[getter]
    fn labels(&self, py: Python<'_>) -> Py<PyArray1<u8>> {
        self.labels.clone_ref(py)
    }
    #[getter]
    fn scale_index(&self) -> usize {
        self.inner.scale_index
    }
    #[getter]
    fn scale(&self) -> f64 {
        self.inner.scale
    }
    #[getter]
    fn split(&self) -> &'static str {
        match self.inner.split {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
    #[getter]
    fn start(&self) -> u64 {
        self.inner.samples.start
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    fn __repr__(&self) -> String {
        format!(
            "Batch(scale_index={}, scale={}, split={:?}, samples={}..{})",
            self.inner.scale_index,
            self.inner.scale,
            self.split(),
            self.inner.samples.start,
            self.inner.samples.end
        )
    }
}

/// A finished run (see `synbench.Result`).
#[pyclass(module = "synbench._synbench", name = "_Result", frozen)]
struct PyRunResult {
    inner: RunResult,
}

#[pymethods]
impl PyRunResult {
    /// `(len(epsilons), len(thresholds))` scores in the run's score mode.
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        let rows = &self.inner.table.rows;
        let t = self.inner.table.thresholds.len();
        Array2::from_shape_fn((rows.len(), t), |(e, k)| rows[e].scores[k]).into_pyarray(py)
    }
    /// `what` ("scores", "stderr", "ci_low", "ci_high") of `estimator`
    /// ("reference" or "population") in the run's score mode,
    /// `(len(epsilons), len(thresholds))`; NaN where the run has no such value.
    fn estimate<'py>(&self, py: Python<'py>, estimator: &str, what: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        use synbench_experiment::table::Estimator;
        let estimator = match estimator {
            "headline" => self.inner.table.estimator,
            "reference" => Estimator::Reference,
            "population" => Estimator::Population,
            other => return Err(error(format!("estimator {other:?}: expected \"reference\" or \"population\""))),
        };
        let t = self.inner.table.thresholds.len();
        let e = self.inner.table.rows.len();
        let Some(table) = self.inner.saved.table_of(estimator).map_err(error)? else {
            return Ok(Array2::from_elem((e, t), f64::NAN).into_pyarray(py));
        };
        let rows = &table.rows;
        let value = |r: &synbench_experiment::table::ScoreRow, k: usize| match what {
            "scores" => Ok(r.scores[k]),
            "stderr" => Ok(r.stderr[k]),
            "ci_low" => Ok(r.interval(k).0),
            "ci_high" => Ok(r.interval(k).1),
            other => Err(error(format!("{other:?}: expected scores, stderr, ci_low or ci_high"))),
        };
        let mut out = Array2::zeros((rows.len(), t));
        for (i, r) in rows.iter().enumerate() {
            for k in 0..t {
                out[[i, k]] = value(r, k)?;
            }
        }
        Ok(out.into_pyarray(py))
    }
    /// Scores in `mode` ("reference" or "exact"), `(len(epsilons), len(thresholds))`.
    fn scores_in<'py>(&self, py: Python<'py>, mode: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let r = &self.inner.results;
        let mode = score_mode(mode)?;
        let pick = |s: &synbench_experiment::schema::EpsilonScores| -> Vec<f64> {
            let scores = if mode == ScoreMode::Exact { &s.exact } else { &s.reference };
            scores.iter().map(|v| v.0).collect()
        };
        let rows: Vec<Vec<f64>> = r.scores.iter().map(pick).collect();
        Ok(Array2::from_shape_fn((rows.len(), r.thresholds.len()), |(e, k)| rows[e][k]).into_pyarray(py))
    }
    /// `(len(scales), len(epsilons))` test accuracies in the run's averaging.
    #[getter]
    fn accuracy<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        let s = &self.inner.results.scales;
        let e = self.inner.results.epsilons.len();
        Array2::from_shape_fn((s.len(), e), |(i, k)| s[i].representation[k].accuracy).into_pyarray(py)
    }
    /// `(len(scales), len(epsilons))` mean scaled bounds in the run's averaging.
    #[getter]
    fn bound<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        let s = &self.inner.results.scales;
        let e = self.inner.results.epsilons.len();
        Array2::from_shape_fn((s.len(), e), |(i, k)| s[i].representation[k].bound).into_pyarray(py)
    }
    #[getter]
    fn epsilons(&self) -> Vec<f64> {
        self.inner.results.epsilons.clone()
    }
    #[getter]
    fn thresholds(&self) -> Vec<f64> {
        self.inner.results.thresholds.clone()
    }
    #[getter]
    fn scales(&self) -> Vec<f64> {
        self.inner.results.scales.iter().map(|s| s.scale).collect()
    }
    #[getter]
    fn model(&self) -> String {
        self.inner.results.model.clone()
    }
    #[getter]
    fn feature_dim(&self) -> Option<usize> {
        self.inner.results.feature_dim
    }
    #[getter]
    fn score_mode(&self) -> String {
        self.inner.results.score_mode.clone()
    }
    #[getter]
    fn output_dir(&self) -> Option<PathBuf> {
        self.inner.dir.clone()
    }
    /// results.json as text.
    fn results_json(&self) -> String {
        serde_json::to_string_pretty(&self.inner.results).expect("results serialise")
    }
    /// scores.csv as text.
    fn csv(&self) -> PyResult<String> {
        Ok(self.inner.saved.texts(&self.inner.table).map_err(error)?.0)
    }
    /// table.md as text.
    fn markdown(&self) -> PyResult<String> {
        Ok(self.inner.saved.texts(&self.inner.table).map_err(error)?.1)
    }
    /// Writes the run folder into `dir`; returns the files written.
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<Vec<PathBuf>> {
        detached(py, || self.inner.save(&dir))
    }
}

/// The plan of config text for a model the driver brings: a `synbench run`
/// config, or (with `protocol`) a sweep protocol whose `[model]` is ignored;
/// `model_name` names the run.
fn plan_of(toml: &str, source: &str, model_name: Option<String>, protocol: bool) -> PyResult<Plan> {
    let path = Path::new(source);
    let mut plan = if protocol {
        let name = model_name.as_deref().ok_or_else(|| error("a protocol needs the model's name"))?;
        parse_protocol(path, toml, name).map_err(error)?
    } else {
        let mut plan = parse(path, toml).map_err(error)?;
        if let Some(name) = model_name {
            plan.model_name = name;
        }
        plan
    };
    plan.encoder.model = ModelSpec::External;
    Ok(plan)
}

/// Checks config text without starting a run; returns what the Python layer
/// shows before the first batch.
#[pyfunction]
#[pyo3(signature = (toml, source, model_name=None, protocol=false))]
fn _check(py: Python<'_>, toml: &str, source: &str, model_name: Option<String>, protocol: bool) -> PyResult<Py<PyAny>> {
    let plan = plan_of(toml, source, model_name, protocol)?;
    let summary = pyo3::types::PyDict::new(py);
    summary.set_item("scales", plan.scales.values().to_vec())?;
    summary.set_item("epsilons", plan.probe.epsilons().to_vec())?;
    summary.set_item("thresholds", plan.score.thresholds().to_vec())?;
    summary.set_item("shape", plan.mixture.sample_shape().to_vec())?;
    summary.set_item("model", plan.model_name.clone())?;
    summary.set_item("batch_size", plan.encoder.batch_size)?;
    summary.set_item("n_train", plan.n_train)?;
    summary.set_item("n_test", plan.n_test)?;
    Ok(summary.into_any().unbind())
}

/// Whether the run of a protocol's plan for `model_name` (at `batch_size`)
/// in `folder` is finished: `None` when not; else the fields its finished
/// plan differs in (empty: the same plan).
#[pyfunction]
fn _finished_changes(
    toml: &str,
    source: &str,
    model_name: String,
    batch_size: usize,
    folder: PathBuf,
) -> PyResult<Option<Vec<String>>> {
    let mut plan = plan_of(toml, source, Some(model_name), true)?;
    plan.encoder.batch_size = batch_size;
    sweep::finished_changes(&folder, &plan).map_err(error)
}

/// Writes `dir/sweep.json`; `models` are `(name, spec, line, shard)`.
#[pyfunction]
fn _write_sweep(
    dir: PathBuf,
    models_file: String,
    protocol: String,
    shards: usize,
    models: Vec<(String, String, usize, usize)>,
) -> PyResult<()> {
    let file = SweepFile {
        schema: sweep::SWEEP_SCHEMA.into(),
        models_file,
        protocol,
        shards,
        models: models.into_iter().map(|(name, spec, line, shard)| SweepModel { name, spec, line, shard }).collect(),
    };
    sweep::write_sweep_file(&dir, &file).map_err(error)
}

/// Records a failed attempt in `dir/failures.json`; returns the attempts so far.
#[pyfunction]
#[allow(clippy::too_many_arguments)] // one per field of the entry
fn _record_failure(
    dir: PathBuf,
    model: String,
    spec: String,
    error_text: String,
    kind: String,
    traceback: String,
    shard: String,
    host: String,
) -> PyResult<u32> {
    let unix_time = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let failure = Failure { model, spec, error: error_text, kind, traceback, attempts: 0, shard, host, unix_time };
    sweep::record_failure(&dir, failure).map(|f| f.attempts).map_err(error)
}

/// Whether another process holds `folder`'s run lock (creates the folder).
#[pyfunction]
fn _folder_busy(folder: PathBuf) -> PyResult<bool> {
    Ok(synbench_experiment::io::try_lock_run(&folder).map_err(error)?.is_none())
}

/// Clears `model`'s failure; whether it had one.
#[pyfunction]
fn _clear_failure(dir: PathBuf, model: &str) -> PyResult<bool> {
    sweep::clear_failure(&dir, model).map_err(error)
}

/// The failures of `dir` as `(model, error, attempts)`.
#[pyfunction]
fn _failures(dir: PathBuf) -> PyResult<Vec<(String, String, u32)>> {
    Ok(sweep::read_failures(&dir).map_err(error)?.into_iter().map(|f| (f.model, f.error, f.attempts)).collect())
}

/// Collects the sweep folder `dir`: writes leaderboard.csv and .md there;
/// returns `(csv, markdown, paths)`.
#[pyfunction]
#[pyo3(signature = (dir, sort_by=None))]
fn _collect(py: Python<'_>, dir: PathBuf, sort_by: Option<f64>) -> PyResult<(String, String, Vec<PathBuf>)> {
    detached(py, || {
        let board = Leaderboard::collect(&dir, sort_by)?;
        let paths = board.write(&dir)?;
        Ok((board.csv(), board.markdown(), paths))
    })
}

/// A score mode by its config spelling (the same check `[score] mode` gets).
fn score_mode(name: &str) -> PyResult<ScoreMode> {
    ScoreMode::from_name(name).map_err(|m| error(format!("mode {m}")))
}

/// `E(a)` of SPEC §2, elementwise.
#[pyfunction]
fn expected_bound(accuracy: Vec<f64>) -> PyResult<Vec<f64>> {
    accuracy.iter().map(|&a| synbench_theory::expected_scaled_bound(a).map_err(error)).collect()
}

/// `(Φ(s), E(Φ(s)))` per scale.
#[pyfunction]
fn raw_reference(scales: Vec<f64>) -> PyResult<(Vec<f64>, Vec<f64>)> {
    let raw = scales.iter().map(|&s| synbench_theory::raw_reference(s).map_err(error)).collect::<PyResult<Vec<_>>>()?;
    Ok((raw.iter().map(|r| r.accuracy).collect(), raw.iter().map(|r| r.scaled_bound).collect()))
}

/// SynBench scores of per-scale accuracies and bounds against the raw data at `scales`.
#[pyfunction]
#[pyo3(signature = (accuracy, bound, scales, thresholds, mode))]
fn score(
    accuracy: PyReadonlyArray1<'_, f64>,
    bound: PyReadonlyArray1<'_, f64>,
    scales: Vec<f64>,
    thresholds: Vec<f64>,
    mode: &str,
) -> PyResult<Vec<f64>> {
    let (accuracy, bound) = (accuracy.as_array(), bound.as_array());
    if accuracy.len() != bound.len() || accuracy.len() != scales.len() {
        return Err(error(format!(
            "accuracy has {} values, bound {} and scales {}: give one of each per scale",
            accuracy.len(),
            bound.len(),
            scales.len()
        )));
    }
    let mode = score_mode(mode)?;
    let grid = ScaleGrid::from_values(scales).map_err(error)?;
    let raw = grid
        .values()
        .iter()
        .map(|&s| synbench_theory::raw_reference(s).map_err(error))
        .collect::<PyResult<Vec<_>>>()?;
    let rep: Vec<ScaleOutcome> =
        accuracy.iter().zip(bound.iter()).map(|(&a, &b)| ScaleOutcome { accuracy: a, scaled_bound: b }).collect();
    synbench_scores(&rep, &raw, &thresholds, mode).map_err(error)
}

/// A Rust panic, on purpose: the tests check it arrives as a SynbenchError.
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    detached(py, || -> Result<(), ExperimentError> { panic!("provoked by the test suite") })
}

#[pymodule]
fn _synbench(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("SynbenchError", m.py().get_type::<SynbenchError>())?;
    m.add_class::<PyExperiment>()?;
    m.add_class::<PyBatch>()?;
    m.add_class::<PyRunResult>()?;
    m.add_function(wrap_pyfunction!(expected_bound, m)?)?;
    m.add_function(wrap_pyfunction!(raw_reference, m)?)?;
    m.add_function(wrap_pyfunction!(score, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_check, m)?)?;
    m.add_function(wrap_pyfunction!(_finished_changes, m)?)?;
    m.add_function(wrap_pyfunction!(_write_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(_record_failure, m)?)?;
    m.add_function(wrap_pyfunction!(_clear_failure, m)?)?;
    m.add_function(wrap_pyfunction!(_folder_busy, m)?)?;
    m.add_function(wrap_pyfunction!(_failures, m)?)?;
    m.add_function(wrap_pyfunction!(_collect, m)?)?;
    m.add("PAPER_SCALES", ScaleGrid::paper_protocol().values().to_vec())?;
    m.add("PAPER_THRESHOLDS", PAPER_THRESHOLDS.to_vec())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
