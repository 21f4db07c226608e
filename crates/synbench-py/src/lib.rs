//! `synbench._synbench`: the Python module's Rust core, a thin layer of PyO3
//! classes over synbench-experiment. The Python package (`python/synbench`)
//! adds feature conversion, the torch helper and the sweep driver; every
//! rule — the keyword arguments' checks and defaults (one Rust builder,
//! `config::from_keywords`), the plan and its hash, the run, its schema,
//! readers and writers, the plan comparison of a sweep — is
//! synbench-experiment's, so a folder written from Python is the folder
//! `synbench run` writes, and a keyword plan is the TOML plan.
//!
//! The GIL is released around every piece of Rust work and every wait
//! (waiting for the generator, folding, fitting, scoring, reading and
//! writing folders, waiting for a sweep's file lock); the generator itself
//! runs on a thread of its own and never needs it. Batches cross into numpy
//! by moving their buffer (no copy); float32 C-contiguous features are read
//! in place. Errors are subclasses of `synbench.SynbenchError` (a
//! `ValueError`) with the fields they name as attributes, and a Rust panic
//! is caught and reported as one, never unwinding into Python.

use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use numpy::{IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::IntoPyObjectExt;
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use synbench_data::Split;
use synbench_experiment::config::{KEYWORDS, Keywords, RawNormalize, from_keywords, parse, parse_protocol};
use synbench_experiment::layout::SWEEP_FILE;
use synbench_experiment::sweep::{self, SweepFile, SweepModel};
use synbench_experiment::table::RunTables;
use synbench_experiment::{
    Batch, DEFAULT_SCALES_IN_FLIGHT, EncoderInfo, Estimator, Experiment, ExperimentError, Failure, GeneratorThreads,
    ModelSpec, Named, Plan, ResolvedPlan, ResultsFile, RunResult, RunScores, SavedRun, StartOptions, StartPolicy,
    WorkerThreads,
};
use synbench_probe::ndarray::Array2;
use synbench_theory::{PAPER_THRESHOLDS, ScaleGrid, ScaleOutcome, ScoreMode, synbench_scores};

create_exception!(
    _synbench,
    SynbenchError,
    PyValueError,
    "Bad input or a failed run: the message names the batch, scale, field or file and what was expected."
);
create_exception!(
    _synbench,
    ConfigError,
    SynbenchError,
    "A config value or keyword argument is invalid: `.field` names it (`data.n_train`, or the keyword), `.file` and \
     `.line` where it was written (`.line` is None for keywords)."
);
create_exception!(
    _synbench,
    PlanMismatchError,
    SynbenchError,
    "The output folder holds finished scales of another plan: `.changes` lists each changed field \
     (`data.n_test: 2048 → 1024`), `.dir` the folder."
);
create_exception!(
    _synbench,
    BusyError,
    SynbenchError,
    "Another process is running into the output folder (`.dir`; it holds `.lock`)."
);
create_exception!(
    _synbench,
    BatchError,
    SynbenchError,
    "Features or a batch handed back do not fit the batch handed out: `.batch` describes it, `.scale` is its scale \
     index (both None when the error is not about one batch)."
);
create_exception!(
    _synbench,
    FileError,
    SynbenchError,
    "A file read back does not hold what its schema and plan say: `.file` names it, `.field` the offending field \
     (None when the file as a whole is wrong)."
);

/// A plain `SynbenchError` with `message`.
fn error(message: impl std::fmt::Display) -> PyErr {
    SynbenchError::new_err(message.to_string())
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// `value` as a Python object (`None` where it cannot be converted).
fn object<'py, T: IntoPyObject<'py>>(py: Python<'py>, value: T) -> Py<PyAny> {
    value.into_py_any(py).unwrap_or_else(|_| py.None())
}

/// The Python exception of an error of the run, with the fields it names as attributes.
fn run_error(e: ExperimentError) -> PyErr {
    let message = e.to_string();
    Python::attach(|py| {
        let (err, attrs): (PyErr, Vec<(&str, Py<PyAny>)>) = match &e {
            ExperimentError::Config(c) => (
                ConfigError::new_err(message),
                vec![
                    ("field", object(py, c.field.as_str())),
                    ("file", object(py, path_text(&c.file))),
                    ("line", object(py, c.line)),
                ],
            ),
            ExperimentError::PlanChanged { dir, changes, .. } => (
                PlanMismatchError::new_err(message),
                vec![("changes", object(py, changes.clone())), ("dir", object(py, path_text(dir)))],
            ),
            ExperimentError::Busy { dir, lock } => (
                BusyError::new_err(message),
                vec![("dir", object(py, path_text(dir))), ("lock", object(py, path_text(lock)))],
            ),
            ExperimentError::Batch { scale, batch, .. } => (
                BatchError::new_err(message),
                vec![("scale", object(py, *scale)), ("batch", object(py, batch.clone()))],
            ),
            ExperimentError::Schema { path, field, .. } | ExperimentError::CorruptScale { path, field, .. } => (
                FileError::new_err(message),
                vec![("file", object(py, path_text(path))), ("field", object(py, field.clone()))],
            ),
            _ => (SynbenchError::new_err(message), Vec::new()),
        };
        for (name, value) in attrs {
            // Setting an attribute on a fresh exception instance cannot fail.
            let _ = err.value(py).setattr(name, value);
        }
        err
    })
}

fn config_error(e: synbench_experiment::ConfigError) -> PyErr {
    run_error(ExperimentError::Config(e))
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
        .map_err(run_error)
}

/// A keyword argument as `T`; a value of the wrong type is a `ConfigError` naming the keyword.
fn keyword<'py, T: FromPyObject<'py>>(
    source: &str,
    kwargs: &Bound<'py, PyDict>,
    name: &str,
    expected: &str,
) -> PyResult<Option<T>> {
    let Some(value) = kwargs.get_item(name)? else { return Ok(None) };
    if value.is_none() {
        return Ok(None);
    }
    value.extract::<T>().map(Some).map_err(|_| {
        let shown = value.repr().map_or_else(|_| "?".into(), |r| r.to_string());
        config_error(synbench_experiment::ConfigError {
            file: PathBuf::from(source),
            line: None,
            field: name.into(),
            message: format!("{shown}: expected {expected}"),
        })
    })
}

/// `normalize=`: `"imagenet"`, `"none"`, `"model"` or `(mean, std)` per channel.
fn normalize_keyword(source: &str, kwargs: &Bound<'_, PyDict>) -> PyResult<Option<RawNormalize>> {
    if let Ok(Some(name)) = keyword::<String>(source, kwargs, "normalize", "") {
        return Ok(Some(RawNormalize::Named(name)));
    }
    let pair: Option<(Vec<f64>, Vec<f64>)> =
        keyword(source, kwargs, "normalize", "'imagenet', 'none' or a pair (mean, std) of per-channel lists")?;
    Ok(pair.map(|(mean, std)| RawNormalize::Values { mean, std }))
}

/// A checked plan (see `synbench.Experiment`): built from keyword arguments
/// or config text by synbench-experiment's one checker.
#[pyclass(module = "synbench._synbench", name = "_Plan", frozen)]
#[derive(Clone)]
struct PyPlan {
    inner: Plan,
}

#[pymethods]
impl PyPlan {
    /// The plan of keyword arguments (`None` = the config's default);
    /// `source` names them in errors.
    #[staticmethod]
    #[pyo3(signature = (source, **kwargs))]
    fn from_keywords(py: Python<'_>, source: &str, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let empty = PyDict::new(py);
        let kwargs = kwargs.unwrap_or(&empty);
        for key in kwargs.keys() {
            let key: String = key.extract()?;
            if !KEYWORDS.iter().any(|(k, _)| *k == key) {
                let known: Vec<&str> = KEYWORDS.iter().map(|(k, _)| *k).collect();
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument {key:?}; the experiment keywords are {}",
                    known.join(", ")
                )));
            }
        }
        let (int, uint, number, text) = ("an integer", "a non-negative integer", "a number", "a string");
        let k = Keywords {
            model: keyword(source, kwargs, "model", text)?,
            batch_size: keyword(source, kwargs, "batch_size", uint)?,
            shape: keyword(source, kwargs, "shape", "a sequence of positive integers")?,
            scales: keyword(source, kwargs, "scales", "a sequence of numbers")?,
            n_train: keyword(source, kwargs, "n_train", uint)?,
            n_test: keyword(source, kwargs, "n_test", uint)?,
            prior: keyword(source, kwargs, "prior", number)?,
            shift: keyword(source, kwargs, "shift", number)?,
            seed: keyword(source, kwargs, "seed", int)?,
            normalize: normalize_keyword(source, kwargs)?,
            generator: keyword(source, kwargs, "generator", text)?,
            epsilons: keyword(source, kwargs, "epsilons", "a sequence of numbers")?,
            norm: keyword(source, kwargs, "norm", text)?,
            averaging: keyword(source, kwargs, "averaging", text)?,
            covariance: keyword(source, kwargs, "covariance", text)?,
            eigen_cutoff: keyword(source, kwargs, "eigen_cutoff", text)?,
            eigen_tolerance: keyword(source, kwargs, "eigen_tolerance", number)?,
            thresholds: keyword(source, kwargs, "thresholds", "a sequence of numbers")?,
            score_mode: keyword(source, kwargs, "score_mode", text)?,
            estimator: keyword(source, kwargs, "estimator", text)?,
            output_dir: keyword::<PathBuf>(source, kwargs, "output_dir", "a path")?
                .map(|d| std::path::absolute(&d).unwrap_or(d)),
        };
        // The model is the driver's: `from_keywords` plans `arch = "external"`.
        let inner = from_keywords(Path::new(source), &k).map_err(config_error)?;
        Ok(Self { inner })
    }

    /// The plan of config text for a model the driver brings: a `synbench
    /// run` config, or (with `protocol`) a sweep protocol whose `[model]`
    /// is ignored; `model_name` names the run.
    #[staticmethod]
    #[pyo3(signature = (text, source, model_name=None, protocol=false))]
    fn from_toml(text: &str, source: &str, model_name: Option<String>, protocol: bool) -> PyResult<Self> {
        let path = Path::new(source);
        let mut inner = if protocol {
            let name = model_name.as_deref().ok_or_else(|| error("a protocol needs the model's name"))?;
            parse_protocol(path, text, name).map_err(config_error)?
        } else {
            let mut plan = parse(path, text).map_err(config_error)?;
            if let Some(name) = model_name {
                plan.model_name = name;
            }
            plan
        };
        inner.encoder.model = ModelSpec::External;
        Ok(Self { inner })
    }

    /// Checks that `policy` ("fresh", "resume", "restart") applies to this
    /// plan (resume and restart need an output folder).
    fn check_policy(&self, policy: &str) -> PyResult<()> {
        start_policy(policy)?.check(&self.inner).map_err(config_error)
    }

    /// This plan with another batch size (checked as `[model] batch_size`).
    fn with_batch_size(&self, batch_size: usize) -> PyResult<Self> {
        let mut inner = self.inner.clone();
        inner.set_batch_size(batch_size).map_err(config_error)?;
        Ok(Self { inner })
    }

    /// This plan writing into `output_dir` (`None`: in memory).
    #[pyo3(signature = (output_dir=None))]
    fn with_output_dir(&self, output_dir: Option<PathBuf>) -> Self {
        let mut inner = self.inner.clone();
        inner.output_dir = output_dir.map(|d| std::path::absolute(&d).unwrap_or(d));
        Self { inner }
    }

    #[getter]
    fn scales(&self) -> Vec<f64> {
        self.inner.scales.values().to_vec()
    }
    #[getter]
    fn epsilons(&self) -> Vec<f64> {
        self.inner.probe.epsilons().to_vec()
    }
    #[getter]
    fn thresholds(&self) -> Vec<f64> {
        self.inner.score.thresholds().to_vec()
    }
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.inner.mixture.sample_shape().to_vec()
    }
    #[getter]
    fn model(&self) -> String {
        self.inner.model_name.clone()
    }
    #[getter]
    fn batch_size(&self) -> usize {
        self.inner.encoder.batch_size.get()
    }
    #[getter]
    fn n_train(&self) -> u64 {
        self.inner.n_train
    }
    #[getter]
    fn n_test(&self) -> u64 {
        self.inner.n_test
    }
    #[getter]
    fn output_dir(&self) -> Option<PathBuf> {
        self.inner.output_dir.clone()
    }
    /// The hash of the resolved plan (`run.json`'s `plan_hash`).
    #[getter]
    fn hash(&self) -> String {
        ResolvedPlan::of(&self.inner).hash()
    }
    /// The resolved plan as `run.json` holds it, as JSON text.
    fn resolved_json(&self) -> String {
        serde_json::to_string_pretty(&ResolvedPlan::of(&self.inner)).unwrap_or_default()
    }
    /// Whether the run of this plan in `folder` is finished: `None` when
    /// not; else the fields its finished plan differs in (empty: the same
    /// plan; the batch size does not count).
    fn finished_changes(&self, py: Python<'_>, folder: PathBuf) -> PyResult<Option<Vec<String>>> {
        let plan = &self.inner;
        detached(
            py,
            || Ok(sweep::finished_changes(&folder, plan)?.map(|c| c.iter().map(ToString::to_string).collect())),
        )
    }
}

fn start_policy(name: &str) -> PyResult<StartPolicy> {
    StartPolicy::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .ok_or_else(|| error(format!("policy {name:?}: expected \"fresh\", \"resume\" or \"restart\"")))
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
    /// Starts the run of `plan`. `policy`: "fresh", "resume" or "restart";
    /// `generator_threads`: a pool of its own for the generator (default:
    /// the global pool); `worker_threads`: the per-scale work's pool
    /// (default: every core); `scales_in_flight`: scales whose work may run
    /// at once (default 2; 0: inside `fold`); `batches_in_hand`: batches
    /// the driver may hold, folded oldest first (default 1); `backend` and
    /// `device` are recorded as what ran the model; `report`: write
    /// report.html at the end (default true).
    #[new]
    #[pyo3(signature = (plan, policy, generator_threads=None, backend=None, device=None, worker_threads=None, scales_in_flight=None, batches_in_hand=None, report=true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        plan: &PyPlan,
        policy: &str,
        generator_threads: Option<usize>,
        backend: Option<String>,
        device: Option<String>,
        worker_threads: Option<usize>,
        scales_in_flight: Option<usize>,
        batches_in_hand: Option<usize>,
        report: bool,
    ) -> PyResult<Self> {
        let plan = plan.inner.clone();
        let policy = start_policy(policy)?;
        let generator = match generator_threads.and_then(NonZeroUsize::new) {
            Some(threads) => GeneratorThreads::Own(threads.get()),
            None => GeneratorThreads::Global,
        };
        let workers = match worker_threads.and_then(NonZeroUsize::new) {
            Some(threads) => WorkerThreads::Own(threads.get()),
            None => WorkerThreads::AllCores,
        };
        let options = StartOptions {
            policy,
            generator,
            batch_size: plan.encoder.batch_size,
            workers,
            scales_in_flight: scales_in_flight.unwrap_or(DEFAULT_SCALES_IN_FLIGHT),
            batches_in_hand: batches_in_hand.and_then(NonZeroUsize::new).unwrap_or(NonZeroUsize::MIN),
            report,
        };
        let this = Self { shape: plan.mixture.sample_shape().to_vec(), inner: Mutex::new(None) };
        let description = format!("{} (from Python)", plan.model_name);
        let info = EncoderInfo { backend, device, ..EncoderInfo::described(description) };
        let experiment = detached(py, move || Experiment::start(plan, info, options))?;
        *this.inner.lock().map_err(|_| error("the experiment is poisoned by an earlier panic"))? = Some(experiment);
        Ok(this)
    }

    /// The next batch, or `None` when every scale is finished.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<PyBatch>> {
        let batch = self.with(|e| detached(py, || e.next_batch()))?;
        batch
            .map(|mut batch| {
                let inputs = std::mem::replace(&mut batch.inputs, Array2::zeros((0, 0)));
                let rows = inputs.nrows();
                let inputs = inputs.into_pyarray(py);
                // (b, *shape) without a copy: the buffer moved into numpy above.
                let mut shape = vec![rows];
                shape.extend(&self.shape);
                let inputs = inputs.reshape(shape)?.unbind().into_any();
                let labels = batch.labels.clone().into_pyarray(py).unbind();
                Ok(PyBatch { inner: batch, inputs, labels })
            })
            .transpose()
    }

    /// Folds float32 `(b, D)` features of `batch` (the Python layer converts
    /// other dtypes and array types); returns the scale index when this
    /// batch finished a scale.
    fn fold(&self, py: Python<'_>, batch: &PyBatch, features: PyReadonlyArray2<'_, f32>) -> PyResult<Vec<usize>> {
        let view = features.as_array();
        self.with(|e| detached(py, || e.fold(&batch.inner, view)).map(|done| done.iter().map(|r| r.index).collect()))
    }

    /// Inputs still to hand out.
    fn remaining_inputs(&self) -> PyResult<u64> {
        self.with(|e| Ok(e.remaining_inputs()))
    }

    /// Indices of the finished scales.
    fn finished_scales(&self) -> PyResult<Vec<usize>> {
        self.with(|e| Ok(e.finished_scales()))
    }

    /// The hash of the run's resolved plan.
    #[getter]
    fn plan_hash(&self) -> PyResult<String> {
        self.with(|e| Ok(e.plan_hash().to_string()))
    }

    /// Scores the finished run (and writes its folder, if it has one).
    fn finish(&self, py: Python<'_>) -> PyResult<PyRunResult> {
        let mut guard = self.inner.lock().map_err(|_| error("the experiment is poisoned by an earlier panic"))?;
        let Some(experiment) = guard.as_ref() else {
            return Err(error("the experiment is finished: finish() was already called"));
        };
        let missing = experiment.scales_awaiting_batches();
        if !missing.is_empty() {
            // Keep the experiment: the caller may still fold the missing batches.
            return Err(run_error(ExperimentError::NotFinished { missing }));
        }
        let Some(experiment) = guard.take() else { return Err(error("the experiment is finished")) };
        let result = detached(py, move || experiment.finish())?;
        Ok(PyRunResult::finished(result))
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

/// A run's results (see `synbench.Result`): finished in this process, or
/// read back from its folder by `load`.
#[pyclass(module = "synbench._synbench", name = "_Result", frozen)]
struct PyRunResult {
    saved: SavedRun,
    scores: RunScores,
    results: Option<ResultsFile>,
    /// The run finished in this process (what `save` writes).
    run: Option<RunResult>,
    dir: Option<PathBuf>,
}

impl PyRunResult {
    fn finished(run: RunResult) -> Self {
        Self {
            saved: run.saved.clone(),
            scores: run.scores.clone(),
            results: Some(run.results.clone()),
            dir: run.dir.clone(),
            run: Some(run),
        }
    }

    fn loaded(saved: SavedRun) -> Result<Self, ExperimentError> {
        let scores = saved.scores()?;
        Ok(Self { results: saved.results.clone(), dir: Some(saved.dir.clone()), scores, saved, run: None })
    }

    fn matrix<'py>(
        &self,
        py: Python<'py>,
        rows: usize,
        cols: usize,
        f: impl Fn(usize, usize) -> f64,
    ) -> Bound<'py, PyArray2<f64>> {
        Array2::from_shape_fn((rows, cols), |(i, k)| f(i, k)).into_pyarray(py)
    }
}

#[pymethods]
impl PyRunResult {
    /// `(len(epsilons), len(thresholds))` headline scores (the run's
    /// estimator and score mode).
    #[getter]
    fn scores<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        let s = self.scores.headline_scores();
        self.matrix(py, s.len(), self.scores.scoring.thresholds.len(), |e, t| s[e].scores[t])
    }
    /// `what` ("scores", "stderr", "ci_low", "ci_high") of `estimator`
    /// ("reference", "population" or "headline") in the run's score mode,
    /// `(len(epsilons), len(thresholds))`; NaN where the run has no such value.
    fn estimate<'py>(&self, py: Python<'py>, estimator: &str, what: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let estimator = match estimator {
            "headline" => self.scores.headline,
            other => Estimator::from_name(other).map_err(|m| error(format!("estimator {m}")))?,
        };
        let (e, t) = (self.scores.epsilons.len(), self.scores.scoring.thresholds.len());
        let Some(scored) = self.scores.scored(estimator) else {
            return Ok(Array2::from_elem((e, t), f64::NAN).into_pyarray(py));
        };
        let value: fn(&synbench_experiment::Scored, usize) -> f64 = match what {
            "scores" => |s, k| s.scores[k],
            "stderr" => |s, k| s.stderr[k],
            "ci_low" => |s, k| s.interval(k).0,
            "ci_high" => |s, k| s.interval(k).1,
            other => return Err(error(format!("{other:?}: expected scores, stderr, ci_low or ci_high"))),
        };
        Ok(self.matrix(py, e, t, |i, k| value(&scored[i], k)))
    }
    /// The reference estimator's scores in `mode` ("reference" or "exact").
    fn scores_in<'py>(&self, py: Python<'py>, mode: &str) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let mode = ScoreMode::from_name(mode).map_err(|m| error(format!("mode {m}")))?;
        let s = self.scores.reference.of(mode);
        Ok(self.matrix(py, s.len(), self.scores.scoring.thresholds.len(), |e, t| s[e].scores[t]))
    }
    /// `(len(scales), len(epsilons))` test accuracies in the run's averaging.
    #[getter]
    fn accuracy<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        let (r, a) = (&self.saved.records, self.saved.averaging);
        self.matrix(py, r.len(), self.saved.epsilons.len(), |i, k| r[i].epsilons[k].outcome(a).accuracy)
    }
    /// `(len(scales), len(epsilons))` mean scaled bounds in the run's averaging.
    #[getter]
    fn bound<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        let (r, a) = (&self.saved.records, self.saved.averaging);
        self.matrix(py, r.len(), self.saved.epsilons.len(), |i, k| r[i].epsilons[k].outcome(a).scaled_bound)
    }
    #[getter]
    fn epsilons(&self) -> Vec<f64> {
        self.saved.epsilons.clone()
    }
    #[getter]
    fn thresholds(&self) -> Vec<f64> {
        self.scores.scoring.thresholds.clone()
    }
    /// The finished scales' mean scales.
    #[getter]
    fn scales(&self) -> Vec<f64> {
        self.saved.records.iter().map(|r| r.scale).collect()
    }
    #[getter]
    fn model(&self) -> String {
        self.saved.model.clone()
    }
    #[getter]
    fn feature_dim(&self) -> Option<usize> {
        self.results.as_ref().and_then(|r| r.feature_dim)
    }
    #[getter]
    fn score_mode(&self) -> &'static str {
        self.scores.scoring.mode.name()
    }
    #[getter]
    fn estimator(&self) -> &'static str {
        self.scores.headline.name()
    }
    #[getter]
    fn output_dir(&self) -> Option<PathBuf> {
        self.dir.clone()
    }
    /// Whether some planned scales are not finished (a killed run read back).
    #[getter]
    fn partial(&self) -> bool {
        self.saved.is_partial()
    }
    /// results.json as text (a killed run read back has none).
    fn results_json(&self) -> PyResult<String> {
        let results = self.results.as_ref().ok_or_else(|| {
            error(format!("{} is a partial run: it has no results.json yet", self.saved.dir.display()))
        })?;
        serde_json::to_string_pretty(results).map_err(error)
    }
    /// scores.csv as text.
    fn csv(&self) -> String {
        RunTables::new(&self.saved.model, &self.scores, &self.saved.notes()).csv
    }
    /// table.md as text.
    fn markdown(&self) -> String {
        RunTables::new(&self.saved.model, &self.scores, &self.saved.notes()).markdown
    }
    /// Writes the run folder into `dir`; returns the files written.
    fn save(&self, py: Python<'_>, dir: PathBuf) -> PyResult<Vec<PathBuf>> {
        let run = self.run.as_ref().ok_or_else(|| {
            error(format!("this run was read from {}: its folder is already written", self.saved.dir.display()))
        })?;
        detached(py, || run.save(&dir))
    }
}

/// Reads a run folder back (a finished run or a killed run's finished
/// scales): `[result]`; a sweep folder: one result per model folder that
/// holds a finished scale, in the sweep's order. Every file is checked
/// against the run's plan.
#[pyfunction]
fn load(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<PyRunResult>> {
    detached(py, || {
        let runs = if dir.join(SWEEP_FILE).is_file() {
            synbench_experiment::runs::load_runs(std::slice::from_ref(&dir))?
        } else {
            vec![SavedRun::load(&dir)?]
        };
        runs.into_iter().map(PyRunResult::loaded).collect()
    })
}

/// Whether `dir` is a sweep folder (it holds `sweep.json`).
#[pyfunction]
fn _is_sweep(dir: PathBuf) -> bool {
    dir.join(SWEEP_FILE).is_file()
}

/// Writes `dir/sweep.json`; `models` are `(name, spec, line, shard)`.
#[pyfunction]
fn _write_sweep(
    py: Python<'_>,
    dir: PathBuf,
    models_file: String,
    protocol: String,
    shards: usize,
    models: Vec<(String, String, usize, usize)>,
) -> PyResult<()> {
    let file = SweepFile {
        schema: synbench_experiment::layout::SWEEP_SCHEMA.into(),
        models_file,
        protocol,
        shards,
        models: models.into_iter().map(|(name, spec, line, shard)| SweepModel { name, spec, line, shard }).collect(),
    };
    detached(py, || sweep::write_sweep_file(&dir, &file))
}

/// Records a failed attempt in `dir/failures.json`; returns the attempts so far.
#[pyfunction]
#[allow(clippy::too_many_arguments)] // one per field of the entry
fn _record_failure(
    py: Python<'_>,
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
    detached(py, || sweep::record_failure(&dir, failure).map(|f| f.attempts))
}

/// Clears `model`'s failure; whether it had one.
#[pyfunction]
fn _clear_failure(py: Python<'_>, dir: PathBuf, model: String) -> PyResult<bool> {
    detached(py, || sweep::clear_failure(&dir, &model))
}

/// The failures of `dir` as `(model, error, attempts)`.
#[pyfunction]
fn _failures(py: Python<'_>, dir: PathBuf) -> PyResult<Vec<(String, String, u32)>> {
    detached(py, || Ok(sweep::read_failures(&dir)?.into_iter().map(|f| (f.model, f.error, f.attempts)).collect()))
}

/// Collects the sweep folder `dir`: writes leaderboard.csv and .md there,
/// and with `report` report.html; returns `(csv, markdown, paths)`.
#[pyfunction]
#[pyo3(signature = (dir, sort_by=None, report=true))]
fn _collect(
    py: Python<'_>,
    dir: PathBuf,
    sort_by: Option<f64>,
    report: bool,
) -> PyResult<(String, String, Vec<PathBuf>)> {
    detached(py, || {
        let sweep = sweep::collect(&dir, sort_by)?;
        let mut paths = sweep.board.write(&dir)?;
        if report {
            paths.push(synbench_experiment::report::write_sweep(&dir, &sweep)?);
        }
        Ok((sweep.board.csv(), sweep.board.markdown(), paths))
    })
}

/// Compares the run folders `a` and `b` (`synbench compare`): returns `(markdown, csv)`.
#[pyfunction]
fn _compare(py: Python<'_>, a: PathBuf, b: PathBuf) -> PyResult<(String, String)> {
    detached(py, || {
        let comparison = synbench_experiment::compare::compare(&SavedRun::load(&a)?, &SavedRun::load(&b)?)?;
        Ok((comparison.markdown(), comparison.csv()))
    })
}

/// Writes `dir/report.html` of a run folder or a sweep folder; its path.
#[pyfunction]
#[pyo3(signature = (dir, sort_by=None))]
fn _report(py: Python<'_>, dir: PathBuf, sort_by: Option<f64>) -> PyResult<PathBuf> {
    detached(py, || synbench_experiment::report::write(&dir, sort_by))
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
    let mode = ScoreMode::from_name(mode).map_err(|m| error(format!("mode {m}")))?;
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
    let py = m.py();
    m.add("SynbenchError", py.get_type::<SynbenchError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("PlanMismatchError", py.get_type::<PlanMismatchError>())?;
    m.add("BusyError", py.get_type::<BusyError>())?;
    m.add("BatchError", py.get_type::<BatchError>())?;
    m.add("FileError", py.get_type::<FileError>())?;
    m.add_class::<PyPlan>()?;
    m.add_class::<PyExperiment>()?;
    m.add_class::<PyBatch>()?;
    m.add_class::<PyRunResult>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(expected_bound, m)?)?;
    m.add_function(wrap_pyfunction!(raw_reference, m)?)?;
    m.add_function(wrap_pyfunction!(score, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_is_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(_write_sweep, m)?)?;
    m.add_function(wrap_pyfunction!(_record_failure, m)?)?;
    m.add_function(wrap_pyfunction!(_clear_failure, m)?)?;
    m.add_function(wrap_pyfunction!(_failures, m)?)?;
    m.add_function(wrap_pyfunction!(_collect, m)?)?;
    m.add_function(wrap_pyfunction!(_report, m)?)?;
    m.add_function(wrap_pyfunction!(_compare, m)?)?;
    m.add("PAPER_SCALES", ScaleGrid::paper_protocol().values().to_vec())?;
    m.add("PAPER_THRESHOLDS", PAPER_THRESHOLDS.to_vec())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
