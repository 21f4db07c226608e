"""Type stubs of the synbench package (kept beside it, as tokenizers does);
checked against the built package by ``python -m mypy.stubtest synbench``."""

import os
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _synbench as _synbench
from ._synbench import Batch as Batch
from ._synbench import BatchError as BatchError
from ._synbench import BusyError as BusyError
from ._synbench import ConfigError as ConfigError
from ._synbench import FileError as FileError
from ._synbench import PlanMismatchError as PlanMismatchError
from ._synbench import SynbenchError as SynbenchError

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
    "raw_reference",
    "report",
    "compare",
    "Comparison",
    "score",
]

__version__: str
PAPER_SCALES: Tuple[float, ...]
PAPER_THRESHOLDS: Tuple[float, ...]

_PathLike = Union[str, "os.PathLike[str]"]

class Result:
    def __init__(self, inner: _synbench._Result) -> None: ...
    @property
    def scores(self) -> np.ndarray: ...  # (len(epsilons), len(thresholds))
    @property
    def stderr(self) -> np.ndarray: ...
    @property
    def ci_low(self) -> np.ndarray: ...
    @property
    def ci_high(self) -> np.ndarray: ...
    def estimate(self, estimator: str = ..., what: str = ...) -> np.ndarray: ...
    def scores_in(self, mode: str) -> np.ndarray: ...
    def score(self, epsilon: float, threshold: float) -> float: ...
    @property
    def accuracy(self) -> np.ndarray: ...  # (len(scales), len(epsilons))
    @property
    def bound(self) -> np.ndarray: ...  # (len(scales), len(epsilons))
    @property
    def epsilons(self) -> Tuple[float, ...]: ...
    @property
    def thresholds(self) -> Tuple[float, ...]: ...
    @property
    def scales(self) -> Tuple[float, ...]: ...
    @property
    def model(self) -> str: ...
    @property
    def score_mode(self) -> str: ...
    @property
    def estimator(self) -> str: ...
    @property
    def partial(self) -> bool: ...
    @property
    def feature_dim(self) -> Optional[int]: ...
    @property
    def output_dir(self) -> Optional[str]: ...
    def save(self, dir: _PathLike) -> List[str]: ...
    def results_json(self) -> str: ...
    def to_csv(self) -> str: ...
    def to_markdown(self) -> str: ...
    def to_pandas(self) -> Any: ...

class Experiment:
    def __init__(
        self,
        shape: Optional[Sequence[int]] = ...,
        scales: Optional[Sequence[float]] = ...,
        n_train: Optional[int] = ...,
        n_test: Optional[int] = ...,
        prior: Optional[float] = ...,
        shift: Optional[float] = ...,
        seed: Optional[int] = ...,
        normalize: Optional[Union[str, Tuple[Sequence[float], Sequence[float]]]] = ...,
        epsilons: Optional[Sequence[float]] = ...,
        norm: Optional[str] = ...,
        averaging: Optional[str] = ...,
        covariance: Optional[str] = ...,
        eigen_cutoff: Optional[str] = ...,
        eigen_tolerance: Optional[float] = ...,
        thresholds: Optional[Sequence[float]] = ...,
        score_mode: Optional[str] = ...,
        estimator: Optional[str] = ...,
        generator: Optional[str] = ...,
        model: Optional[str] = ...,
        batch_size: Optional[int] = ...,
        output_dir: Optional[_PathLike] = ...,
        resume: bool = ...,
        restart: bool = ...,
    ) -> None: ...
    @classmethod
    def from_toml(
        cls,
        path: _PathLike,
        *,
        resume: bool = ...,
        restart: bool = ...,
        output_dir: Optional[_PathLike] = ...,
        model: Optional[str] = ...,
        protocol: bool = ...,
    ) -> "Experiment": ...
    @property
    def scales(self) -> Tuple[float, ...]: ...
    @property
    def epsilons(self) -> Tuple[float, ...]: ...
    @property
    def thresholds(self) -> Tuple[float, ...]: ...
    @property
    def shape(self) -> Tuple[int, ...]: ...
    @property
    def model(self) -> str: ...
    @property
    def batch_size(self) -> int: ...
    @property
    def plan_hash(self) -> str: ...
    def finished_changes(self, folder: _PathLike) -> Optional[List[str]]: ...
    def resolved_plan(self) -> str: ...
    def start(
        self,
        batch_size: Optional[int] = ...,
        generator_threads: Optional[int] = ...,
        backend: Optional[str] = ...,
        device: Optional[str] = ...,
        worker_threads: Optional[int] = ...,
        scales_in_flight: Optional[int] = ...,
        batches_in_hand: Optional[int] = ...,
        report: bool = ...,
    ) -> None: ...
    def remaining_inputs(self) -> int: ...
    def finished_scales(self) -> List[int]: ...
    def next_batch(self) -> Optional[Batch]: ...
    def batches(self, batch_size: Optional[int] = ...) -> Iterator[Batch]: ...
    def fold(self, batch: Batch, features: Any) -> List[int]: ...
    def finish(self) -> Result: ...

def load(dir: _PathLike) -> Union[Result, List[Result]]: ...
def report(dir: _PathLike, sort_by: Optional[float] = ...) -> str: ...

class Comparison:
    markdown: str
    csv: str
    rows: List[dict]
    def __init__(self, markdown: str, csv: str) -> None: ...
    def to_markdown(self) -> str: ...

def compare(a: _PathLike, b: _PathLike) -> Comparison: ...
def expected_bound(accuracy: Union[float, Sequence[float], np.ndarray]) -> Union[float, np.ndarray]: ...
def raw_reference(scales: Sequence[float] = ...) -> Tuple[np.ndarray, np.ndarray]: ...
def score(
    accuracy: Sequence[float],
    bound: Sequence[float],
    thresholds: Sequence[float] = ...,
    mode: str = ...,
    scales: Sequence[float] = ...,
) -> np.ndarray: ...
def start_for_torch(
    experiment: Experiment, batch_size: Optional[int], device: Any, batches_in_hand: Optional[int] = ...
) -> Any: ...
def evaluate(
    model: Any,
    /,
    *,
    device: Any = ...,
    batch_size: Optional[int] = ...,
    dtype: Any = ...,
    experiment: Optional[Experiment] = ...,
    progress: bool = ...,
    channels_last: bool = ...,
    compile: bool = ...,
    pipeline_depth: Optional[int] = ...,
    **experiment_kwargs: Any,
) -> Result: ...
