"""SynBench: task-agnostic, data-free scores for pretrained representations.

The Rust core (``synbench._synbench``, the same run as the ``synbench`` CLI)
generates the synthetic data, folds the features, fits the probes and writes
the results; your framework does only the forward pass, on your device::

    import synbench
    exp = synbench.Experiment(shape=(3, 224, 224), epsilons=(0.0, 0.2))
    for batch in exp.batches(batch_size=256):
        exp.fold(batch, my_model(batch.inputs))
    result = exp.finish()
    print(result.scores)

or, for a torch model, ``synbench.evaluate(model, device="cuda")``.
"""

from __future__ import annotations

import math
import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _synbench
from ._synbench import Batch, BatchError, BusyError, ConfigError, FileError, PlanMismatchError, SynbenchError

__all__ = [
    "Batch",
    "BatchError",
    "BusyError",
    "ConfigError",
    "Experiment",
    "FileError",
    "PAPER_SCALES",
    "PAPER_THRESHOLDS",
    "PlanMismatchError",
    "Result",
    "SynbenchError",
    "evaluate",
    "expected_bound",
    "load",
    "report",
    "compare",
    "Comparison",
    "raw_reference",
    "score",
]
__version__: str = _synbench.__version__

#: The paper's mean scales s = 0.1, 0.2, …, 4.9 (49 scales).
PAPER_SCALES: Tuple[float, ...] = tuple(_synbench.PAPER_SCALES)
#: The paper's score thresholds.
PAPER_THRESHOLDS: Tuple[float, ...] = tuple(_synbench.PAPER_THRESHOLDS)


def _as_float32_2d(features: Any, batch: Batch) -> np.ndarray:
    """`features` as a float32 C-contiguous (b, D) array, reading numpy,
    anything with ``__array__`` (a CPU torch tensor, a jax array) or
    ``__dlpack__``; float32 C-contiguous input is not copied."""
    if not isinstance(features, np.ndarray):
        readable = hasattr(features, "__array__") or hasattr(features, "__dlpack__")
        try:
            if hasattr(features, "__array__"):
                features = np.asarray(features)
            elif hasattr(features, "__dlpack__"):
                features = np.from_dlpack(features)
        except Exception as e:  # a CUDA tensor, say: numpy reads host memory only
            raise SynbenchError(
                f"features for {batch!r}: cannot read them as a host array ({e}); move device tensors to the CPU "
                "first (e.g. .cpu())"
            ) from e
        if not readable:
            raise SynbenchError(
                f"features for {batch!r}: expected an array (numpy, or anything with __array__ or __dlpack__), "
                f"got {type(features).__name__}"
            )
    if features.dtype.kind != "f":
        raise SynbenchError(f"features for {batch!r}: expected a float array, got dtype {features.dtype}")
    if features.ndim != 2:
        raise SynbenchError(f"features for {batch!r}: expected shape (b, D), got {features.shape}")
    return np.ascontiguousarray(features, dtype=np.float32)


class Result:
    """A finished run: scores, per-scale accuracies and bounds, and its files."""

    def __init__(self, inner: "_synbench._Result") -> None:
        self._inner = inner

    @property
    def scores(self) -> np.ndarray:
        """(len(epsilons), len(thresholds)) SynBench scores in the run's score mode."""
        return self._inner.scores

    @property
    def stderr(self) -> np.ndarray:
        """Jackknife standard errors of `scores` (same shape; SPEC §7)."""
        return self._inner.estimate("headline", "stderr")

    @property
    def ci_low(self) -> np.ndarray:
        """Lower ends of the 95 % intervals of `scores`."""
        return self._inner.estimate("headline", "ci_low")

    @property
    def ci_high(self) -> np.ndarray:
        """Upper ends of the 95 % intervals of `scores`."""
        return self._inner.estimate("headline", "ci_high")

    def estimate(self, estimator: str = "population", what: str = "scores") -> np.ndarray:
        """`what` ('scores', 'stderr', 'ci_low', 'ci_high') of `estimator`
        ('reference' or 'population': the estimated score of the probe built
        from the features' population moments), shaped like `scores`."""
        return self._inner.estimate(estimator, what)

    def scores_in(self, mode: str) -> np.ndarray:
        """Scores in `mode` ('reference' or 'exact'); results carry both."""
        return self._inner.scores_in(mode)

    def score(self, epsilon: float, threshold: float) -> float:
        """The score at one ε and threshold (both as given to the run)."""
        e = _index_of(self.epsilons, epsilon, "epsilon")
        t = _index_of(self.thresholds, threshold, "threshold")
        return float(self.scores[e, t])

    @property
    def accuracy(self) -> np.ndarray:
        """(len(scales), len(epsilons)) test accuracies."""
        return self._inner.accuracy

    @property
    def bound(self) -> np.ndarray:
        """(len(scales), len(epsilons)) mean scaled bounds of the correct samples."""
        return self._inner.bound

    @property
    def epsilons(self) -> Tuple[float, ...]:
        return tuple(self._inner.epsilons)

    @property
    def thresholds(self) -> Tuple[float, ...]:
        return tuple(self._inner.thresholds)

    @property
    def scales(self) -> Tuple[float, ...]:
        return tuple(self._inner.scales)

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def score_mode(self) -> str:
        """The score mode of `scores` ('reference' or 'exact')."""
        return self._inner.score_mode

    @property
    def estimator(self) -> str:
        """The estimator of `scores` ('reference' or 'population')."""
        return self._inner.estimator

    @property
    def partial(self) -> bool:
        """Whether some planned scales are not finished (a killed run read back by `load`)."""
        return self._inner.partial

    @property
    def feature_dim(self) -> Optional[int]:
        """The features' width (None when every scale was resumed from files)."""
        return self._inner.feature_dim

    @property
    def output_dir(self) -> Optional[str]:
        d = self._inner.output_dir
        return None if d is None else os.fspath(d)

    def save(self, dir: Union[str, "os.PathLike[str]"]) -> List[str]:
        """Writes run.json, the scale files, results.json, scores.csv, table.md
        and the figures into `dir`, exactly as `synbench run` writes them."""
        return [os.fspath(p) for p in self._inner.save(os.fspath(dir))]

    def results_json(self) -> str:
        """results.json as text."""
        return self._inner.results_json()

    def to_csv(self) -> str:
        """scores.csv as text."""
        return self._inner.csv()

    def to_markdown(self) -> str:
        """table.md's table as text."""
        return self._inner.markdown()

    def to_pandas(self):
        """Long format, as scores.csv (pandas is imported only here)."""
        import io

        import pandas as pd

        return pd.read_csv(io.StringIO(self.to_csv()))

    def __repr__(self) -> str:
        return f"Result(model={self.model!r}, epsilons={self.epsilons}, thresholds={self.thresholds})"


def _index_of(values: Sequence[float], value: float, what: str) -> int:
    for i, v in enumerate(values):
        if v == value or math.isclose(v, value, rel_tol=0.0, abs_tol=1e-12):
            return i
    raise SynbenchError(f"{what} {value!r} is not one of the run's {what}s {tuple(values)}")


class Experiment:
    """A SynBench run that your code drives: ``batches()`` hands out inputs,
    ``fold(batch, features)`` takes back their features, ``finish()`` scores.

    The keywords are the config's fields (``n_train`` is ``[data] n_train``,
    ``score_mode`` is ``[score] mode``, ``model`` is ``[model] name``); one
    left out takes the config's default, and the same Rust checker as
    `synbench run` validates them, so a protocol written as keywords and as
    TOML has one plan and one hash. The run starts at the first batch. With
    ``output_dir`` every finished scale is written at once; ``resume=True``
    continues a killed run of the same plan (a different plan is refused with
    the changed fields listed: `PlanMismatchError`), ``restart=True`` discards
    the folder's scales; without either, a folder holding finished scales is
    refused.
    """

    def __init__(
        self,
        shape: Optional[Sequence[int]] = None,
        scales: Optional[Sequence[float]] = None,
        n_train: Optional[int] = None,
        n_test: Optional[int] = None,
        prior: Optional[float] = None,
        shift: Optional[float] = None,
        seed: Optional[int] = None,
        normalize: Optional[Union[str, Tuple[Sequence[float], Sequence[float]]]] = None,
        epsilons: Optional[Sequence[float]] = None,
        norm: Optional[str] = None,
        averaging: Optional[str] = None,
        covariance: Optional[str] = None,
        eigen_cutoff: Optional[str] = None,
        eigen_tolerance: Optional[float] = None,
        thresholds: Optional[Sequence[float]] = None,
        score_mode: Optional[str] = None,
        estimator: Optional[str] = None,
        generator: Optional[str] = None,
        model: Optional[str] = None,
        batch_size: Optional[int] = None,
        output_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        resume: bool = False,
        restart: bool = False,
    ) -> None:
        keywords = dict(
            shape=_sequence(shape), scales=_sequence(scales), n_train=n_train, n_test=n_test, prior=prior,
            shift=shift, seed=seed, normalize=normalize, epsilons=_sequence(epsilons), norm=norm,
            averaging=averaging, covariance=covariance, eigen_cutoff=eigen_cutoff,
            eigen_tolerance=eigen_tolerance, thresholds=_sequence(thresholds), score_mode=score_mode,
            estimator=estimator, generator=generator, model=model, batch_size=batch_size,
            output_dir=None if output_dir is None else os.fspath(output_dir),
        )
        plan = _synbench._Plan.from_keywords(
            "synbench.Experiment", **{k: v for k, v in keywords.items() if v is not None}
        )
        self._setup(plan, resume, restart)

    def _setup(self, plan: Any, resume: bool, restart: bool) -> None:
        if resume and restart:
            raise SynbenchError("resume=True and restart=True: choose one")
        self._plan = plan
        self._policy = "resume" if resume else ("restart" if restart else "fresh")
        plan.check_policy(self._policy)
        self._inner: Optional[Any] = None

    @classmethod
    def from_toml(
        cls,
        path: Union[str, "os.PathLike[str]"],
        *,
        resume: bool = False,
        restart: bool = False,
        output_dir: Optional[Union[str, "os.PathLike[str]"]] = None,
        model: Optional[str] = None,
        protocol: bool = False,
    ) -> "Experiment":
        """The experiment a `synbench run` config describes (same keys; ``[model]``
        only names the run: the encoder is yours). ``output_dir`` overrides
        ``[output] dir``; the batch size defaults to ``[model] batch_size``.
        ``model`` names the run instead of ``[model] name``; with
        ``protocol=True`` the file is a sweep protocol, whose ``[model]``
        table (if any) is ignored and ``model`` is required."""
        path = os.fspath(path)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        plan = _synbench._Plan.from_toml(text, path, model, protocol)
        if output_dir is not None:
            plan = plan.with_output_dir(os.fspath(output_dir))
        self = cls.__new__(cls)
        self._setup(plan, resume, restart)
        return self

    @property
    def scales(self) -> Tuple[float, ...]:
        return tuple(self._plan.scales)

    @property
    def epsilons(self) -> Tuple[float, ...]:
        return tuple(self._plan.epsilons)

    @property
    def thresholds(self) -> Tuple[float, ...]:
        return tuple(self._plan.thresholds)

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self._plan.shape)

    @property
    def model(self) -> str:
        return self._plan.model

    @property
    def batch_size(self) -> int:
        """Inputs per batch (part of the plan and its hash)."""
        return self._plan.batch_size

    @property
    def plan_hash(self) -> str:
        """The hash of the resolved plan, as run.json records it."""
        return self._plan.hash

    def finished_changes(self, folder: Union[str, "os.PathLike[str]"]) -> Optional[List[str]]:
        """Whether `folder` holds a finished run of this plan: None when it
        holds no finished run; else the fields its plan differs in (empty: the
        same plan; the batch size does not count)."""
        return self._plan.finished_changes(os.fspath(folder))

    def resolved_plan(self) -> str:
        """The resolved plan (every default filled in) as run.json holds it, as JSON text."""
        return self._plan.resolved_json()

    def start(
        self,
        batch_size: Optional[int] = None,
        generator_threads: Optional[int] = None,
        backend: Optional[str] = None,
        device: Optional[str] = None,
        worker_threads: Optional[int] = None,
        scales_in_flight: Optional[int] = None,
        batches_in_hand: Optional[int] = None,
        report: bool = True,
    ) -> None:
        """Starts the run (the first ``batches()`` does this): prepares the
        output folder, applies resume/restart and starts the generator.
        ``batch_size`` replaces the plan's (it is part of the plan's hash).
        ``generator_threads``: a thread pool of its own for the generator
        (1 beside a model that computes on this CPU); default every core.
        ``backend`` and ``device`` say what ran the model and where
        (``"torch 2.9.0"``, ``"cuda:0"``), for the results' provenance.
        A scale's probe work (fit, jackknife and nested refits, its file)
        runs on a pool of ``worker_threads`` (default every core; 1 beside a
        model on this CPU) while the next scale is encoded, with at most
        ``scales_in_flight`` scales at once (default 2; each holds its
        features, ``(n_train + n_test) × D × 4`` bytes; 0 runs the work
        inside the ``fold`` that finishes the scale). ``batches_in_hand``:
        batches the driver may hold at once, folded oldest first (default 1;
        a GPU pipeline holds 2). ``report``: write ``report.html`` beside
        the other outputs at the end (default true)."""
        if self._inner is None:
            if batch_size is not None and batch_size != self._plan.batch_size:
                self._plan = self._plan.with_batch_size(batch_size)
            self._inner = _synbench._Experiment(
                self._plan, self._policy, generator_threads, backend, device, worker_threads, scales_in_flight,
                batches_in_hand, report,
            )
        elif batch_size is not None and batch_size != self._plan.batch_size:
            raise SynbenchError(
                f"the run started with batch_size={self._plan.batch_size}; it cannot change to {batch_size} mid-run"
            )

    def remaining_inputs(self) -> int:
        """Inputs still to encode (resumed scales excluded)."""
        self.start()
        return self._inner.remaining_inputs()

    def finished_scales(self) -> List[int]:
        self.start()
        return list(self._inner.finished_scales())

    def next_batch(self) -> Optional[Batch]:
        """The next batch, or None when every scale is done."""
        self.start()
        return self._inner.next_batch()

    def batches(self, batch_size: Optional[int] = None) -> Iterator[Batch]:
        """Every batch still to encode, in order; fold each before the next."""
        self.start(batch_size)
        while True:
            batch = self._inner.next_batch()
            if batch is None:
                return
            yield batch

    def fold(self, batch: Batch, features: Any) -> List[int]:
        """Folds `(b, D)` features of `batch` (float32/float64/float16 ndarray,
        or anything with __array__ or __dlpack__). A scale's last batch hands
        its probe work to the worker pool (see `start`). Returns the indices
        of the scales whose work finished since the last call (each file is
        written by then; empty, and so false, most of the time)."""
        if self._inner is None:
            raise BatchError(f"fold({batch!r}): that batch is not from this experiment, which has not started")
        return self._inner.fold(batch, _as_float32_2d(features, batch))

    def finish(self) -> Result:
        """Scores the run; writes its folder when it has an output_dir."""
        self.start()
        return Result(self._inner.finish())


def _sequence(values: Optional[Any]) -> Optional[list]:
    """A sequence keyword (tuple, list, numpy array) as a list, for the Rust builder."""
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        return values.tolist()
    try:
        return list(values)
    except TypeError:
        return values  # not a sequence: the builder names the keyword and what it expected


def load(dir: Union[str, "os.PathLike[str]"]) -> Union[Result, List[Result]]:
    """Reads a saved run folder back into a `Result` (a finished run, or a
    killed run's finished scales: ``partial`` is then True); a sweep folder
    into one `Result` per model folder with a finished scale, in the sweep's
    order. Every file is checked against the run's plan: a file that does not
    fit raises `FileError` naming the file and the field."""
    path = os.fspath(dir)
    results = [Result(r) for r in _synbench.load(path)]
    return results if _synbench._is_sweep(path) else results[0]


class Comparison:
    """Model A against model B (:func:`compare`): ``rows`` (one dict per
    estimator, ε and threshold: scores, ``difference``, paired ``stderr``,
    ``ci_low``/``ci_high``, ``unpaired_stderr``, ``significant``),
    ``markdown`` and ``csv`` (``pd.read_csv(io.StringIO(c.csv))``)."""

    def __init__(self, markdown: str, csv: str) -> None:
        import csv as _csv
        import io

        self.markdown = markdown
        self.csv = csv
        self.rows: List[dict] = []
        for row in _csv.DictReader(io.StringIO(csv)):
            parsed: dict = dict(row)
            for key in ("epsilon", "threshold", "score_a", "score_b", "difference", "stderr", "ci_low", "ci_high",
                        "unpaired_stderr"):
                parsed[key] = float(row[key])
            parsed["significant"] = row["significant"] == "true"
            self.rows.append(parsed)

    def to_markdown(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return self.markdown


def compare(a: Union[str, "os.PathLike[str]"], b: Union[str, "os.PathLike[str]"]) -> Comparison:
    """Model A's run folder against model B's (runs of one protocol apart
    from the model, else `SynbenchError` naming the fields that differ): the
    score difference per ε and threshold, both estimators, with a 95 %
    interval paired over the runs' common jackknife groups (the same samples
    in both runs), beside the unpaired standard error. The same Rust code as
    ``synbench compare A B``."""
    markdown, csv = _synbench._compare(os.path.abspath(os.fspath(a)), os.path.abspath(os.fspath(b)))
    return Comparison(markdown, csv)


def report(dir: Union[str, "os.PathLike[str]"], sort_by: Optional[float] = None) -> str:
    """Writes ``DIR/report.html`` — one self-contained page (tables, figures,
    provenance; no network) — for a run folder or a sweep folder (ranked at
    ``sort_by``, default 0.7 when the runs have it); returns its path. The
    same Rust code as ``synbench report DIR``."""
    return os.fspath(_synbench._report(os.path.abspath(os.fspath(dir)), sort_by))


def expected_bound(accuracy: Union[float, Sequence[float], np.ndarray]) -> Union[float, np.ndarray]:
    """E(a) = 1 + φ(Φ⁻¹(a)) / (a·Φ⁻¹(a)), the expected scaled bound of a
    correctly classified sample at accuracy a ∈ (½, 1] (SPEC §2)."""
    a = np.asarray(accuracy, dtype=np.float64)
    values = np.asarray(_synbench.expected_bound(a.ravel().tolist()), dtype=np.float64).reshape(a.shape)
    return float(values) if values.ndim == 0 else values


def raw_reference(scales: Sequence[float] = PAPER_SCALES) -> Tuple[np.ndarray, np.ndarray]:
    """(accuracy, bound) of the Bayes classifier on the raw data: Φ(s), E(Φ(s))."""
    accuracy, bound = _synbench.raw_reference([float(s) for s in scales])
    return np.asarray(accuracy), np.asarray(bound)


def score(
    accuracy: Sequence[float],
    bound: Sequence[float],
    thresholds: Sequence[float] = PAPER_THRESHOLDS,
    mode: str = "reference",
    scales: Sequence[float] = PAPER_SCALES,
) -> np.ndarray:
    """SynBench scores of per-scale accuracies and bounds (one ε) against the
    raw data at `scales`, one per threshold."""
    acc = np.ascontiguousarray(accuracy, dtype=np.float64)
    bnd = np.ascontiguousarray(bound, dtype=np.float64)
    return np.asarray(_synbench.score(acc, bnd, [float(s) for s in scales], [float(t) for t in thresholds], mode))


def start_for_torch(
    experiment: Experiment, batch_size: Optional[int], device: Any, batches_in_hand: Optional[int] = None
) -> Any:
    """Starts `experiment` for a torch model on `device` (a no-op once
    started, but for a changed batch size): beside a model on this CPU the
    generator and the per-scale work keep to one thread each; results record
    torch's version and the device. Returns the ``torch.device``."""
    import torch

    device = torch.device(device)
    if batches_in_hand is None:
        batches_in_hand = _default_depth(device)
    experiment.start(
        batch_size,
        generator_threads=1 if device.type == "cpu" else None,
        worker_threads=1 if device.type == "cpu" else None,
        backend=f"torch {torch.__version__}",
        device=str(device),
        batches_in_hand=batches_in_hand,
    )
    return device


def _default_depth(device: Any) -> int:
    """Batches in hand by default: a double buffer on CUDA, one elsewhere."""
    return 2 if device.type == "cuda" else 1


class _Feeder:
    """Moves a batch's inputs to the device, runs the model and brings its
    features back, so that on CUDA nothing waits: inputs are copied into a
    reusable page-locked buffer (no fresh pinned allocation per batch), sent
    on a side stream, which the compute stream waits for by an event; the
    features come back asynchronously into a reusable pinned buffer, and an
    event says when they are there. With two batches in hand, batch i + 1 is
    sent and computed while batch i's features are folded. Elsewhere (CPU,
    MPS) the same calls run synchronously, as before. `ops` is the device
    layer (streams, events, pinned buffers): `_CudaOps` on CUDA; tests hand
    in a fake that records the order of operations on CPU tensors."""

    def __init__(self, device: Any, run: Any, ops: Any = None, channels_last: bool = False) -> None:
        import torch

        self.device, self.run, self.channels_last = device, run, channels_last
        self.ops = ops if ops is not None else (_CudaOps(device) if device.type == "cuda" else None)
        self._pinned: Dict[Tuple[str, int, Tuple[int, ...]], Any] = {}
        self._torch = torch

    def _buffer(self, kind: str, slot: int, shape: Tuple[int, ...]) -> Any:
        key = (kind, slot, tuple(shape))
        if key not in self._pinned:
            self._pinned[key] = self.ops.pinned(shape)
        return self._pinned[key]

    def _prepare(self, inputs: Any) -> Any:
        if self.channels_last and inputs.dim() == 4:
            inputs = inputs.contiguous(memory_format=self._torch.channels_last)
        return inputs

    def launch(self, slot: int, batch: "Batch") -> Any:
        """Starts batch `batch` in buffer slot `slot`; returns a handle for `collect`."""
        torch = self._torch
        if self.ops is None:
            features = self.run(self._prepare(torch.from_numpy(batch.inputs).to(self.device)))
            return _flatten(features).cpu(), None
        host = self._buffer("in", slot, batch.inputs.shape)
        host.numpy()[...] = batch.inputs  # the one host copy, into page-locked memory
        inputs = self.ops.to_device(host)  # on the side stream, ordered by an event
        features = _flatten(self.run(self._prepare(inputs)))
        out = self._buffer("out", slot, tuple(features.shape))
        return out, self.ops.to_host(features, out)

    @staticmethod
    def collect(handle: Any) -> np.ndarray:
        """The features of a launched batch, once they are on the host."""
        features, ready = handle
        if ready is not None:
            ready.synchronize()
        return features.numpy()


class _CudaOps:
    """Streams, events and pinned buffers on one CUDA device."""

    def __init__(self, device: Any) -> None:
        import torch

        self.torch, self.device = torch, device
        self.copy_stream = torch.cuda.Stream(device)

    def pinned(self, shape: Tuple[int, ...]) -> Any:
        return self.torch.empty(shape, dtype=self.torch.float32, pin_memory=True)

    def to_device(self, host: Any) -> Any:
        torch = self.torch
        compute = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self.copy_stream):
            inputs = host.to(self.device, non_blocking=True)
            copied = torch.cuda.Event()
            copied.record(self.copy_stream)
        compute.wait_event(copied)
        inputs.record_stream(compute)  # allocated on the side stream, used on the compute stream
        return inputs

    def to_host(self, features: Any, out: Any) -> Any:
        out.copy_(features, non_blocking=True)
        ready = self.torch.cuda.Event()
        ready.record(self.torch.cuda.current_stream(self.device))
        return ready


def _flatten(features: Any) -> Any:
    if isinstance(features, (tuple, list)):
        features = features[0]
    return features.reshape(features.shape[0], -1).float()


def evaluate(
    model: Any,
    /,
    *,
    device: Any = "cpu",
    batch_size: Optional[int] = None,
    dtype: Any = None,
    experiment: Optional[Experiment] = None,
    progress: bool = True,
    channels_last: bool = False,
    compile: bool = False,
    pipeline_depth: Optional[int] = None,
    **experiment_kwargs: Any,
) -> Result:
    """Scores a torch module (or any callable on torch tensors): ``model(inputs)``
    gives (b, D) features or anything that flattens to it. On CUDA the
    inputs go through reusable pinned buffers on a side stream and the
    features come back asynchronously while the next batch computes
    (`_Feeder`; ``pipeline_depth`` batches in hand, default 2 on CUDA, 1
    elsewhere), and each scale's probe work runs on worker threads, so the
    GPU does not wait. `dtype`: ``torch.bfloat16``/``torch.float16`` run the
    model under autocast on CUDA/CPU (or with a cast elsewhere); ``"tf32"``
    allows TF32 matmuls and convolutions on CUDA for the run; features come
    back as float32. ``channels_last`` puts a 4-D model and its inputs in
    channels-last memory; ``compile`` runs ``torch.compile(model)``. torch is
    imported only here. ``model=`` among the experiment keywords names the
    run (the callable is positional); ``batch_size`` defaults to the plan's
    (``[model] batch_size``, 64)."""
    import torch

    if experiment is None:
        experiment = Experiment(**experiment_kwargs)
    elif experiment_kwargs:
        raise SynbenchError(f"give experiment= or experiment keywords, not both ({sorted(experiment_kwargs)})")
    tf32 = dtype == "tf32"
    if tf32:
        dtype = None
    elif isinstance(dtype, str):
        raise SynbenchError(f"dtype={dtype!r}: expected a torch dtype (torch.bfloat16, torch.float16) or \"tf32\"")
    depth = pipeline_depth if pipeline_depth is not None else _default_depth(torch.device(device))
    if depth < 1:
        raise SynbenchError(f"pipeline_depth={depth}: expected at least 1")
    device = start_for_torch(experiment, batch_size, device, batches_in_hand=depth)
    if hasattr(model, "eval"):
        model.eval()
    if channels_last and hasattr(model, "to"):
        model = model.to(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    autocast = dtype is not None and dtype != torch.float32 and device.type in ("cuda", "cpu")

    def run(inputs: Any) -> Any:
        if autocast:
            with torch.autocast(device_type=device.type, dtype=dtype):
                return model(inputs)
        if dtype is not None and dtype != torch.float32:
            return model(inputs.to(dtype))
        return model(inputs)

    feeder = _Feeder(device, run, ops=_FEEDER_OPS.get(device.type), channels_last=channels_last)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=experiment.remaining_inputs(), unit="img", desc=experiment.model)
        except ImportError:
            bar = None
    precision = (torch.backends.cuda.matmul, torch.backends.cudnn.conv)
    saved_precision = tuple(p.fp32_precision for p in precision) if tf32 else ()
    try:
        if tf32:
            for p in precision:
                p.fp32_precision = "tf32"
        with torch.inference_mode():
            in_hand: List[Tuple[Batch, Any]] = []
            for i, batch in enumerate(experiment.batches()):
                in_hand.append((batch, feeder.launch(i % depth, batch)))
                if len(in_hand) == depth:
                    _fold_oldest(experiment, feeder, in_hand, bar)
            while in_hand:
                _fold_oldest(experiment, feeder, in_hand, bar)
    finally:
        for p, saved in zip(precision, saved_precision):
            p.fp32_precision = saved
        if bar is not None:
            bar.close()
    return experiment.finish()


#: Device layers `evaluate` uses in place of the real one, by device type (tests only).
_FEEDER_OPS: Dict[str, Any] = {}


def _fold_oldest(experiment: Experiment, feeder: _Feeder, in_hand: List[Tuple["Batch", Any]], bar: Any) -> None:
    batch, handle = in_hand.pop(0)
    experiment.fold(batch, feeder.collect(handle))
    if bar is not None:
        bar.update(len(batch))
