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
from typing import Any, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from . import _synbench
from ._synbench import Batch, SynbenchError

__all__ = [
    "Batch",
    "Experiment",
    "PAPER_SCALES",
    "PAPER_THRESHOLDS",
    "Result",
    "SynbenchError",
    "evaluate",
    "expected_bound",
    "raw_reference",
    "score",
]
__version__: str = _synbench.__version__

#: The paper's mean scales s = 0.1, 0.2, …, 4.9 (49 scales).
PAPER_SCALES: Tuple[float, ...] = tuple(_synbench.PAPER_SCALES)
#: The paper's score thresholds.
PAPER_THRESHOLDS: Tuple[float, ...] = tuple(_synbench.PAPER_THRESHOLDS)

_CHOICES = {
    "norm": ("l2", "linf", "l1"),
    "averaging": ("reference", "exact"),
    "covariance": ("pooled", "ledoit_wolf"),
    "score_mode": ("reference", "exact"),
    "estimator": ("reference", "population"),
}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise SynbenchError(f"cannot express {value!r} ({type(value).__name__}) as a config value")


def _choice(field: str, value: Any) -> str:
    allowed = _CHOICES[field]
    if value not in allowed:
        expected = ", ".join(repr(a) for a in allowed)
        raise SynbenchError(f"{field}={value!r}: expected one of {expected}")
    return value


def _keyword_toml(
    *,
    shape: Sequence[int],
    scales: Sequence[float],
    n_train: int,
    n_test: int,
    prior: float,
    shift: float,
    seed: int,
    normalize: Union[str, Tuple[Sequence[float], Sequence[float]]],
    epsilons: Sequence[float],
    norm: str,
    averaging: str,
    covariance: str,
    thresholds: Sequence[float],
    score_mode: str,
    estimator: str,
    model: str,
    batch_size: int,
    output_dir: Optional[Union[str, os.PathLike]],
) -> str:
    """The keyword arguments as the TOML config `synbench run` reads, so one
    checker (synbench-experiment's) validates both."""
    if isinstance(normalize, str):
        if normalize not in ("imagenet", "none"):
            raise SynbenchError(f"normalize={normalize!r}: expected 'imagenet', 'none' or (mean, std) per channel")
        normalize_toml = _toml_value(normalize)
    else:
        try:
            mean, std = normalize
        except (TypeError, ValueError):
            raise SynbenchError("normalize: expected 'imagenet', 'none' or a pair (mean, std) of per-channel lists") from None
        normalize_toml = "{ mean = %s, std = %s }" % (_toml_value(list(mean)), _toml_value(list(std)))
    lines = [
        "[model]",
        'arch = "external"',
        f"name = {_toml_value(model)}",
        f"batch_size = {_toml_value(batch_size)}",
        "[data]",
        f"shape = {_toml_value(list(shape))}",
        f"scales = {_toml_value(list(scales))}",
        f"n_train = {_toml_value(n_train)}",
        f"n_test = {_toml_value(n_test)}",
        f"prior = {_toml_value(prior)}",
        f"shift = {_toml_value(shift)}",
        f"seed = {_toml_value(seed)}",
        f"normalize = {normalize_toml}",
        "[probe]",
        f"epsilons = {_toml_value(list(epsilons))}",
        f"norm = {_toml_value(_choice('norm', norm))}",
        f"averaging = {_toml_value(_choice('averaging', averaging))}",
        f"covariance = {_toml_value(_choice('covariance', covariance))}",
        "[score]",
        f"thresholds = {_toml_value(list(thresholds))}",
        f"mode = {_toml_value(_choice('score_mode', score_mode))}",
        f"estimator = {_toml_value(_choice('estimator', estimator))}",
    ]
    if output_dir is not None:
        lines += ["[output]", f"dir = {_toml_value(os.fspath(os.path.abspath(output_dir)))}"]
    return "\n".join(lines) + "\n"


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
    def feature_dim(self) -> Optional[int]:
        """The features' width (None when every scale was resumed from files)."""
        return self._inner.feature_dim

    @property
    def output_dir(self) -> Optional[str]:
        d = self._inner.output_dir
        return None if d is None else os.fspath(d)

    def save(self, dir: Union[str, os.PathLike]) -> list:
        """Writes run.json, the scale files, results.json, scores.csv, table.md
        and the figures into `dir`, exactly as `synbench run` writes them."""
        return [os.fspath(p) for p in self._inner.save(os.fspath(dir))]

    def results_json(self) -> str:
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

    Options are checked at construction (by the same checker as `synbench
    run`); the run starts at the first batch, with the batch size given to
    ``batches()``. With ``output_dir`` every finished scale is written at once;
    ``resume=True`` continues a killed run of the same plan (a different plan
    is refused with the changed fields listed), ``restart=True`` discards the
    folder's scales; without either, a folder holding finished scales is
    refused.
    """

    def __init__(
        self,
        shape: Sequence[int] = (3, 224, 224),
        scales: Sequence[float] = PAPER_SCALES,
        n_train: int = 2048,
        n_test: int = 2048,
        prior: float = 0.5,
        shift: float = 0.5,
        seed: int = 12,
        normalize: Union[str, Tuple[Sequence[float], Sequence[float]]] = "imagenet",
        epsilons: Sequence[float] = (0.0,),
        norm: str = "l2",
        averaging: str = "reference",
        covariance: str = "pooled",
        thresholds: Sequence[float] = PAPER_THRESHOLDS,
        score_mode: str = "reference",
        estimator: str = "reference",
        model: str = "model",
        output_dir: Optional[Union[str, os.PathLike]] = None,
        resume: bool = False,
        restart: bool = False,
    ) -> None:
        if len(shape) == 1 and normalize == "imagenet":
            normalize = "none"  # ImageNet statistics are per RGB channel; vectors stay raw
        toml = _keyword_toml(
            shape=shape, scales=scales, n_train=n_train, n_test=n_test, prior=prior, shift=shift, seed=seed,
            normalize=normalize, epsilons=epsilons, norm=norm, averaging=averaging, covariance=covariance,
            thresholds=thresholds, score_mode=score_mode, estimator=estimator, model=model, batch_size=_DEFAULT_BATCH,
            output_dir=output_dir,
        )
        if output_dir is None and (resume or restart):
            raise SynbenchError("resume and restart need an output_dir: without one the run stays in memory")
        self._setup(toml, "synbench.Experiment", resume, restart, in_memory=output_dir is None)

    def _setup(
        self,
        toml: str,
        source: str,
        resume: bool,
        restart: bool,
        in_memory: bool = False,
        model: Optional[str] = None,
        protocol: bool = False,
    ) -> None:
        if resume and restart:
            raise SynbenchError("resume=True and restart=True: choose one")
        self._in_memory = in_memory
        self._output_dir: Optional[str] = None
        self._policy = "resume" if resume else ("restart" if restart else "fresh")
        self._toml = toml
        self._source = source
        self._model_name = model
        self._protocol = protocol
        self._summary = _synbench._check(toml, source, model, protocol)
        self._inner: Optional[Any] = None

    @classmethod
    def from_toml(
        cls,
        path: Union[str, os.PathLike],
        *,
        resume: bool = False,
        restart: bool = False,
        output_dir: Optional[Union[str, os.PathLike]] = None,
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
        self = cls.__new__(cls)
        self._setup(text, path, resume, restart, model=model, protocol=protocol)
        self._output_dir = None if output_dir is None else os.fspath(os.path.abspath(output_dir))
        return self

    @property
    def scales(self) -> Tuple[float, ...]:
        return tuple(self._summary["scales"])

    @property
    def epsilons(self) -> Tuple[float, ...]:
        return tuple(self._summary["epsilons"])

    @property
    def thresholds(self) -> Tuple[float, ...]:
        return tuple(self._summary["thresholds"])

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(self._summary["shape"])

    @property
    def model(self) -> str:
        return self._summary["model"]

    def start(
        self,
        batch_size: Optional[int] = None,
        generator_threads: Optional[int] = None,
        backend: Optional[str] = None,
        device: Optional[str] = None,
    ) -> None:
        """Starts the run (the first ``batches()`` does this): prepares the
        output folder, applies resume/restart and starts the generator.
        ``generator_threads``: a thread pool of its own for the generator
        (1 beside a model that computes on this CPU); default every core.
        ``backend`` and ``device`` say what ran the model and where
        (``"torch 2.9.0"``, ``"cuda:0"``), for the results' provenance."""
        if self._inner is None:
            size = self._summary["batch_size"] if batch_size is None else int(batch_size)
            self._inner = _synbench._Experiment(
                self._toml, self._source, self._policy, size, generator_threads, self._in_memory, self._output_dir,
                self._model_name, self._protocol, backend, device,
            )
            self._batch_size = size
        elif batch_size is not None and int(batch_size) != self._batch_size:
            raise SynbenchError(
                f"the run started with batch_size={self._batch_size}; it cannot change to {batch_size} mid-run"
            )

    def remaining_inputs(self) -> int:
        """Inputs still to encode (resumed scales excluded)."""
        self.start()
        return self._inner.remaining_inputs()

    def finished_scales(self) -> list:
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

    def fold(self, batch: Batch, features: Any) -> Optional[int]:
        """Folds `(b, D)` features of `batch` (float32/float64/float16 ndarray,
        or anything with __array__ or __dlpack__). Returns the scale index when
        this batch finished a scale (its file is written by then)."""
        if self._inner is None:
            raise SynbenchError(f"fold({batch!r}): that batch is not from this experiment, which has not started")
        return self._inner.fold(batch, _as_float32_2d(features, batch))

    def finish(self) -> Result:
        """Scores the run; writes its folder when it has an output_dir."""
        self.start()
        return Result(self._inner.finish())


_DEFAULT_BATCH = 256


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


def evaluate(
    model: Any,
    /,
    *,
    device: Any = "cpu",
    batch_size: int = 256,
    dtype: Any = None,
    experiment: Optional[Experiment] = None,
    progress: bool = True,
    **experiment_kwargs: Any,
) -> Result:
    """Scores a torch module (or any callable on torch tensors): ``model(inputs)``
    gives (b, D) features or anything that flattens to it. Inputs go to
    `device` from pinned host memory without blocking; `dtype` (e.g.
    ``torch.bfloat16``) runs the model under autocast on CUDA/CPU, or with a
    cast; features come back as float32. torch is imported only here.
    ``model=`` among the experiment keywords names the run (the callable is
    positional)."""
    import torch

    if experiment is None:
        experiment = Experiment(**experiment_kwargs)
    elif experiment_kwargs:
        raise SynbenchError(f"give experiment= or experiment keywords, not both ({sorted(experiment_kwargs)})")
    device = torch.device(device)
    # Beside a model on this CPU the generator keeps to one thread of its own.
    experiment.start(
        batch_size,
        generator_threads=1 if device.type == "cpu" else None,
        backend=f"torch {torch.__version__}",
        device=str(device),
    )
    on_cuda = device.type == "cuda"
    if hasattr(model, "eval"):
        model.eval()
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=experiment.remaining_inputs(), unit="img", desc=experiment.model)
        except ImportError:
            bar = None
    autocast = dtype is not None and dtype != torch.float32 and device.type in ("cuda", "cpu")
    with torch.inference_mode():
        for batch in experiment.batches():
            inputs = torch.from_numpy(batch.inputs)
            if on_cuda:
                inputs = inputs.pin_memory().to(device, non_blocking=True)
            else:
                inputs = inputs.to(device)
            if autocast:
                with torch.autocast(device_type=device.type, dtype=dtype):
                    features = model(inputs)
            elif dtype is not None and dtype != torch.float32:
                features = model(inputs.to(dtype))
            else:
                features = model(inputs)
            if isinstance(features, (tuple, list)):
                features = features[0]
            features = features.reshape(features.shape[0], -1).float()
            experiment.fold(batch, features.cpu().numpy())
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        bar.close()
    return experiment.finish()
