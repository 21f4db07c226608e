"""Type stubs of the synbench package (kept beside it, as tokenizers does)."""

import os
from typing import Any, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

__version__: str
PAPER_SCALES: Tuple[float, ...]
PAPER_THRESHOLDS: Tuple[float, ...]

class SynbenchError(ValueError): ...

class Batch:
    @property
    def inputs(self) -> np.ndarray: ...  # float32 (b, *shape), C-contiguous
    @property
    def labels(self) -> np.ndarray: ...  # uint8 (b,), 1 = class y = 1
    @property
    def scale_index(self) -> int: ...
    @property
    def scale(self) -> float: ...
    @property
    def split(self) -> str: ...  # "train" | "test"
    @property
    def start(self) -> int: ...
    def __len__(self) -> int: ...

class Result:
    @property
    def scores(self) -> np.ndarray: ...  # (len(epsilons), len(thresholds))
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
    def feature_dim(self) -> Optional[int]: ...
    @property
    def output_dir(self) -> Optional[str]: ...
    def save(self, dir: Union[str, os.PathLike]) -> list: ...
    def results_json(self) -> str: ...
    def to_csv(self) -> str: ...
    def to_markdown(self) -> str: ...
    def to_pandas(self) -> Any: ...

class Experiment:
    def __init__(
        self,
        shape: Sequence[int] = ...,
        scales: Sequence[float] = ...,
        n_train: int = ...,
        n_test: int = ...,
        prior: float = ...,
        shift: float = ...,
        seed: int = ...,
        normalize: Union[str, Tuple[Sequence[float], Sequence[float]]] = ...,
        epsilons: Sequence[float] = ...,
        norm: str = ...,
        averaging: str = ...,
        covariance: str = ...,
        thresholds: Sequence[float] = ...,
        score_mode: str = ...,
        model: str = ...,
        output_dir: Optional[Union[str, os.PathLike]] = ...,
        resume: bool = ...,
        restart: bool = ...,
    ) -> None: ...
    @classmethod
    def from_toml(
        cls,
        path: Union[str, os.PathLike],
        *,
        resume: bool = ...,
        restart: bool = ...,
        output_dir: Optional[Union[str, os.PathLike]] = ...,
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
    def start(
        self,
        batch_size: Optional[int] = ...,
        generator_threads: Optional[int] = ...,
        backend: Optional[str] = ...,
        device: Optional[str] = ...,
    ) -> None: ...
    def remaining_inputs(self) -> int: ...
    def finished_scales(self) -> list: ...
    def next_batch(self) -> Optional[Batch]: ...
    def batches(self, batch_size: Optional[int] = ...) -> Iterator[Batch]: ...
    def fold(self, batch: Batch, features: Any) -> Optional[int]: ...
    def finish(self) -> Result: ...

def expected_bound(accuracy: Union[float, Sequence[float], np.ndarray]) -> Union[float, np.ndarray]: ...
def raw_reference(scales: Sequence[float] = ...) -> Tuple[np.ndarray, np.ndarray]: ...
def score(
    accuracy: Sequence[float],
    bound: Sequence[float],
    thresholds: Sequence[float] = ...,
    mode: str = ...,
    scales: Sequence[float] = ...,
) -> np.ndarray: ...
def evaluate(
    model: Any,
    /,
    *,
    device: Any = ...,
    batch_size: int = ...,
    dtype: Any = ...,
    experiment: Optional[Experiment] = ...,
    progress: bool = ...,
    **experiment_kwargs: Any,
) -> Result: ...
