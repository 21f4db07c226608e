"""Sweeps: one protocol, a list of models, one run folder each.

``python -m synbench sweep MODELS.txt --config PROTOCOL.toml --output-dir DIR``
scores every model of the list with :func:`synbench.evaluate` into
``DIR/<model>/`` (an ordinary run folder: ``synbench table DIR/*/`` reads
it). Finished models are skipped, a killed one resumes after its last
finished scale, and a model that fails is recorded with its error in
``DIR/failures.json`` while the sweep goes on; a rerun retries it.

``--shard I/N`` runs every N-th model from the I-th (round-robin over the
list, so the N shards cover each model exactly once); inside a Slurm array
task the shard defaults to the task's place in the array. ``--slurm``
writes ``DIR/sweep.sbatch``, an array over the shards, and ``--submit``
submits it. ``python -m synbench collect DIR`` writes the leaderboard.

Clusters whose compute nodes have no internet: run the sweep's command with
``--prefetch`` on the login node (it downloads every listed model's weights
into the Hugging Face cache and exits), then the jobs with
``HF_HUB_OFFLINE=1``: they load from that cache, and a model missing from it
fails with one line naming it and the remedy.

The model list holds one model a line (``#`` starts a comment):

* a timm name, with an optional pretrained tag: ``vit_base_patch16_224.augreg_in21k``;
* ``torchscript:PATH.pt``: a module saved by ``torch.jit.trace``/``script``;
* ``python:package.module:function``: a callable returning a torch module;

each optionally followed by ``key=value`` keyword arguments for
``timm.create_model`` or the callable (values are Python literals:
``img_size=64 drop_path_rate=0.0``). A model's folder is its line made
file-name safe.

The files of a sweep folder (``sweep.json``, ``failures.json``, the
leaderboard) are written by the Rust core, the same code ``synbench``
links; only resolving models and driving them is here.
"""

from __future__ import annotations

import ast
import dataclasses
import gc
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import traceback
import zlib
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import BusyError, Experiment, SynbenchError, _synbench, evaluate, start_for_torch

__all__ = [
    "ModelEntry", "read_models", "shard_of", "run_sweep", "write_sbatch", "collect", "prefetch", "hub_offline",
    "hub_cache_dir",
]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One line of a model list."""

    #: The line as written, without comment.
    spec: str
    #: 1-based line number.
    line: int
    #: ``timm``, ``torchscript`` or ``python``.
    kind: str
    #: The timm name (with tag), the file, or ``module:function``.
    target: str
    #: Keyword arguments for the constructor.
    kwargs: Tuple[Tuple[str, Any], ...]
    #: Folder and run name.
    name: str


_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]+")


def _folder_name(kind: str, target: str, kwargs: Sequence[Tuple[str, Any]]) -> str:
    if kind == "timm":
        base = target
    elif kind == "torchscript":
        base = "torchscript-" + os.path.splitext(os.path.basename(target))[0]
    else:
        base = "python-" + target.replace(":", ".")
    parts = [base] + [f"{k}={v}" for k, v in kwargs]
    name = _UNSAFE.sub("_", "_".join(parts)).strip("._")
    return name or "model"


def read_models(path: str) -> List[ModelEntry]:
    """Parses a model list; errors name the file, the line and what was expected."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise SynbenchError(f"{path}: cannot read the model list ({e.strerror})") from None
    entries: List[ModelEntry] = []
    seen: Dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        where = f"{path}:{number}"
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise SynbenchError(f"{where}: {e}: {text!r}") from None
        head, rest = words[0], words[1:]
        kwargs = []
        for word in rest:
            key, eq, value = word.partition("=")
            if not eq or not key.isidentifier():
                raise SynbenchError(f"{where}: {word!r}: expected key=value keyword arguments after the model")
            try:
                kwargs.append((key, ast.literal_eval(value)))
            except (ValueError, SyntaxError):
                kwargs.append((key, value))  # a bare word: a string
        if head.startswith("torchscript:"):
            kind, target = "torchscript", head[len("torchscript:") :]
            if not target:
                raise SynbenchError(f"{where}: torchscript: needs a file (torchscript:PATH.pt)")
            target = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(path)), target))
            if kwargs:
                raise SynbenchError(f"{where}: a TorchScript file takes no keyword arguments")
        elif head.startswith("python:"):
            kind, target = "python", head[len("python:") :]
            module, colon, function = target.rpartition(":")
            if not colon or not module or not function.isidentifier():
                raise SynbenchError(f"{where}: {head!r}: expected python:package.module:function")
        elif ":" in head or "/" in head:
            raise SynbenchError(
                f"{where}: {head!r}: expected a timm name (vit_base_patch16_224.augreg_in21k), "
                "torchscript:PATH.pt or python:package.module:function"
            )
        else:
            kind, target = "timm", head
        name = _folder_name(kind, target if kind != "torchscript" else head[len("torchscript:") :], kwargs)
        if name in seen:
            raise SynbenchError(
                f"{where}: {text!r} has the folder name {name!r} of line {seen[name]}: list each model once"
            )
        seen[name] = number
        entries.append(ModelEntry(text, number, kind, target, tuple(kwargs), name))
    if not entries:
        raise SynbenchError(f"{path}: the model list is empty")
    return entries


def shard_of(index: int, shards: int) -> int:
    """The shard that runs the model at `index` of the list: round-robin,
    so each model is in exactly one shard and shards differ by at most one."""
    return index % shards


def parse_shard(text: Optional[str], environ: Optional[Dict[str, str]] = None) -> Tuple[int, int]:
    """``I/N`` as (I, N); by default a Slurm array task's place in its
    array (``SLURM_ARRAY_TASK_ID`` − ``SLURM_ARRAY_TASK_MIN`` of
    ``SLURM_ARRAY_TASK_COUNT``), else the whole list (0, 1)."""
    env = os.environ if environ is None else environ
    if text is None:
        if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
            task = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            return task, int(env["SLURM_ARRAY_TASK_COUNT"])
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or int(m.group(2)) == 0 or int(m.group(1)) >= int(m.group(2)):
        raise SynbenchError(f"--shard {text!r}: expected I/N with 0 <= I < N (e.g. 0/4)")
    return int(m.group(1)), int(m.group(2))


def init_seed(entry: ModelEntry) -> int:
    """The torch seed set before building `entry`: a function of its line
    alone, so a random init is the same whichever shard or host builds it."""
    return zlib.crc32(entry.spec.encode("utf-8"))


def hub_offline() -> bool:
    """Whether the Hugging Face hub must not be reached (``HF_HUB_OFFLINE``
    set to a true value, as on compute nodes without internet), as the hub
    library that loads the weights reads it."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def hub_cache_dir() -> str:
    """The hub cache folder the hub library loads from (``HF_HUB_CACHE``,
    else ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``): the one
    synbench's Rust ``weights = "hf:…"`` reads too."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _cache_miss(error: BaseException) -> bool:
    """Whether `error` (or what caused it) is the hub's "not in the cache, and offline"."""
    seen = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
            return True
        current = current.__cause__ or current.__context__
    return False


def _create_timm(entry: ModelEntry, pretrained: bool) -> Any:
    import timm

    try:
        return timm.create_model(entry.target, pretrained=pretrained, num_classes=0, **dict(entry.kwargs))
    except Exception as e:
        if pretrained and hub_offline() and _cache_miss(e):
            raise SynbenchError(
                f"{entry.spec}: its pretrained weights are not in the Hugging Face cache {hub_cache_dir()} and "
                "HF_HUB_OFFLINE is set: run this sweep's command with --prefetch on a machine with internet "
                "(the login node) and the same HF_HOME first"
            ) from None
        raise


def build_model(entry: ModelEntry, device: Any, pretrained: bool) -> Any:
    """The torch module of a model list entry, on `device`."""
    import torch

    torch.manual_seed(init_seed(entry))
    kwargs = dict(entry.kwargs)
    if entry.kind == "timm":
        model = _create_timm(entry, pretrained)
    elif entry.kind == "torchscript":
        if not os.path.isfile(entry.target):
            raise SynbenchError(f"{entry.target}: no such TorchScript file")
        model = torch.jit.load(entry.target, map_location=device)
    else:
        import importlib

        module_name, _, function = entry.target.rpartition(":")
        module = importlib.import_module(module_name)
        factory = getattr(module, function, None)
        if not callable(factory):
            raise SynbenchError(f"python:{entry.target}: {module_name} has no callable {function!r}")
        model = factory(**kwargs)
    if hasattr(model, "to"):
        model = model.to(device)
    return model


_DTYPES = ("float32", "bfloat16", "float16")


def _log(shard: Tuple[int, int], message: str) -> None:
    print(f"[synbench sweep {shard[0]}/{shard[1]}] {message}", file=sys.stderr, flush=True)


def run_sweep(
    models_file: str,
    config: str,
    output_dir: str,
    *,
    device: str = "cpu",
    batch_size: Optional[int] = None,
    dtype: str = "float32",
    shard: Optional[Tuple[int, int]] = None,
    pretrained: bool = True,
    threads: Optional[int] = None,
    progress: bool = False,
) -> Dict[str, List[str]]:
    """Runs this shard of the sweep; returns the model names by outcome
    (``finished``, ``skipped``, ``failed``). A protocol that does not check
    is an error for the whole sweep; anything a model does is its own."""
    import torch

    if dtype not in _DTYPES:
        raise SynbenchError(f"--dtype {dtype!r}: expected one of {', '.join(_DTYPES)}")
    entries = read_models(models_file)
    index, count = shard if shard is not None else parse_shard(None)
    config = os.path.abspath(config)
    try:
        with open(config, encoding="utf-8") as f:
            protocol = f.read()
    except OSError as e:
        raise SynbenchError(f"{config}: cannot read the protocol ({e.strerror})") from None
    # The protocol's errors (and the batch size's), once, before any model.
    checked = _synbench._Plan.from_toml(protocol, config, entries[0].name, True)
    if batch_size is not None:
        checked.with_batch_size(batch_size)
    os.makedirs(output_dir, exist_ok=True)
    output_dir = os.path.abspath(output_dir)
    _synbench._write_sweep(
        output_dir,
        os.path.abspath(models_file),
        config,
        count,
        [(e.name, e.spec, e.line, shard_of(i, count)) for i, e in enumerate(entries)],
    )
    if threads is None and "SLURM_CPUS_PER_TASK" in os.environ:
        threads = int(os.environ["SLURM_CPUS_PER_TASK"])
    if threads is not None:
        torch.set_num_threads(threads)
    torch_dtype = getattr(torch, dtype)
    mine = [e for i, e in enumerate(entries) if shard_of(i, count) == index]
    _log((index, count), f"{len(mine)} of {len(entries)} models, device {device}, into {output_dir}")
    outcome: Dict[str, List[str]] = {"finished": [], "skipped": [], "failed": []}
    host = socket.gethostname()
    for entry in mine:
        folder = os.path.join(output_dir, entry.name)
        model = None
        try:
            resume = os.path.isfile(os.path.join(folder, "run.json"))
            experiment = Experiment.from_toml(
                config, output_dir=folder, model=entry.name, protocol=True, resume=resume
            )
            # The Rust plan comparison; another batch size is the same protocol.
            changes = experiment.finished_changes(folder)
            if changes is not None and not changes:
                _log((index, count), f"{entry.name}: finished earlier, skipped")
                outcome["skipped"].append(entry.name)
                _synbench._clear_failure(output_dir, entry.name)
                continue
            if changes:
                raise SynbenchError(
                    f"{folder} holds a finished run of another plan ({'; '.join(changes)}): sweep into another "
                    "--output-dir, or delete that folder to recompute it"
                )
            try:
                start_for_torch(experiment, batch_size, device)
            except BusyError:
                _log((index, count), f"{entry.name}: another process is running it, skipped")
                outcome["skipped"].append(entry.name)
                continue
            started = time.perf_counter()
            model = build_model(entry, device, pretrained)
            evaluate(
                model, device=device, batch_size=batch_size, dtype=None if dtype == "float32" else torch_dtype,
                experiment=experiment, progress=progress,
            )
            _synbench._clear_failure(output_dir, entry.name)
            outcome["finished"].append(entry.name)
            verb = "resumed and finished" if resume else "finished"
            _log((index, count), f"{entry.name}: {verb} in {time.perf_counter() - started:.1f} s")
        except Exception as e:  # a model's failure is recorded; the sweep goes on
            message = f"{type(e).__name__}: {e}".splitlines()[0][:2000]
            tail = "".join(traceback.format_exception(type(e), e, e.__traceback__)[-6:])
            attempts = _synbench._record_failure(
                output_dir, entry.name, entry.spec, message, type(e).__name__, tail, f"{index}/{count}", host
            )
            outcome["failed"].append(entry.name)
            _log((index, count), f"{entry.name}: FAILED (attempt {attempts}): {message}")
        finally:
            del model
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    _log(
        (index, count),
        f"done: {len(outcome['finished'])} finished, {len(outcome['skipped'])} skipped, "
        f"{len(outcome['failed'])} failed",
    )
    return outcome


def write_sbatch(
    models_file: str,
    config: str,
    output_dir: str,
    *,
    shards: int,
    device: str = "cpu",
    batch_size: Optional[int] = None,
    dtype: str = "float32",
    pretrained: bool = True,
    threads: Optional[int] = None,
    partition: Optional[str] = None,
    gpus_per_task: Optional[int] = None,
    cpus_per_task: Optional[int] = None,
    time_limit: Optional[str] = None,
    python: str = sys.executable,
) -> str:
    """Writes ``DIR/sweep.sbatch``, a Slurm array of `shards` tasks each
    running its shard with this Python interpreter and environment; its path."""
    entries = read_models(models_file)
    if shards < 1:
        raise SynbenchError(f"--shards {shards}: must be at least 1")
    if shards > len(entries):
        raise SynbenchError(f"--shards {shards}: the list has {len(entries)} models; use at most that many shards")
    if gpus_per_task is None:
        gpus_per_task = 1 if device.startswith("cuda") else 0
    output_dir = os.path.abspath(output_dir)
    logs = os.path.join(output_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    q = shlex.quote
    directives = [
        "--job-name=synbench-sweep",
        f"--array=0-{shards - 1}",
        "--ntasks=1",
        f"--output={os.path.join(logs, '%A_%a.out')}",
        f"--error={os.path.join(logs, '%A_%a.err')}",
        f"--chdir={os.getcwd()}",
        "--export=ALL",
    ]
    if cpus_per_task is not None:
        directives.append(f"--cpus-per-task={cpus_per_task}")
    if gpus_per_task:
        directives.append(f"--gpus-per-task={gpus_per_task}")
    if partition:
        directives.append(f"--partition={partition}")
    if time_limit:
        directives.append(f"--time={time_limit}")
    command = [
        python, "-m", "synbench", "sweep", os.path.abspath(models_file),
        "--config", os.path.abspath(config), "--output-dir", output_dir,
        "--device", device,
    ]
    if batch_size is not None:
        command += ["--batch-size", str(batch_size)]
    command += ["--dtype", dtype]
    if not pretrained:
        command.append("--random-init")
    if threads is not None:
        command += ["--threads", str(threads)]
    env_lines = []
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PATH", "LD_LIBRARY_PATH"):
        if var in os.environ:
            env_lines.append(f"export {var}={q(os.environ[var])}")
    text = "\n".join(
        ["#!/bin/bash", f"# A synbench sweep of {len(entries)} models in {shards} shards, written by", "#   "
         + " ".join(["python -m synbench"] + [q(a) for a in sys.argv[1:]]), "# Submit: sbatch " + q(os.path.join(output_dir, "sweep.sbatch"))]
        + [f"#SBATCH {d}" for d in directives]
        + ["set -euo pipefail", "# The environment the sweep was launched from."]
        + env_lines
        + ["# The shard is this task's place in the array (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT).",
           "exec " + " ".join(q(a) for a in command), ""]
    )
    path = os.path.join(output_dir, "sweep.sbatch")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def submit(path: str) -> str:
    """Submits an sbatch file; the job id."""
    try:
        out = subprocess.run(["sbatch", "--parsable", path], capture_output=True, text=True)
    except FileNotFoundError:
        raise SynbenchError("sbatch is not on PATH: run this on a Slurm login node, or submit the file by hand") from None
    if out.returncode != 0:
        raise SynbenchError(f"sbatch {path} failed: {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip().split(";")[0]


def prefetch(models_file: str) -> Dict[str, List[str]]:
    """Downloads the pretrained weights of every timm model of the list into
    the Hugging Face cache (``hub_cache_dir()``) and loads each once from
    there (run it on a login node with internet; compute jobs then run with
    ``HF_HUB_OFFLINE=1``). TorchScript files and Python callables are local:
    nothing to fetch. Returns the models ``cached`` and ``failed``."""
    entries = read_models(models_file)
    outcome: Dict[str, List[str]] = {"cached": [], "local": [], "failed": []}
    where = (0, 1)
    _log(where, f"prefetching {len(entries)} models into {hub_cache_dir()}")
    for entry in entries:
        if entry.kind != "timm":
            outcome["local"].append(entry.name)
            _log(where, f"{entry.name}: a local {entry.kind} model, nothing to fetch")
            continue
        try:
            _create_timm(entry, pretrained=True)
            outcome["cached"].append(entry.name)
            _log(where, f"{entry.name}: in the cache")
        except Exception as e:
            outcome["failed"].append(entry.name)
            _log(where, f"{entry.name}: FAILED: " + f"{type(e).__name__}: {e}".splitlines()[0][:2000])
    _log(where, f"done: {len(outcome['cached'])} cached, {len(outcome['failed'])} failed")
    return outcome


def collect(output_dir: str, sort_by: Optional[float] = None, report: bool = True) -> Tuple[str, str, List[str]]:
    """Writes ``DIR/leaderboard.csv``, ``DIR/leaderboard.md`` and (with
    ``report``) ``DIR/report.html``; returns (csv, markdown, paths)."""
    csv, markdown, paths = _synbench._collect(os.path.abspath(output_dir), sort_by, report)
    return csv, markdown, [os.fspath(p) for p in paths]


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m synbench", description="SynBench sweeps over model lists.")
    sub = parser.add_subparsers(dest="command", required=True)
    sw = sub.add_parser("sweep", help="score every model of a list, one run folder each")
    sw.add_argument("models", help="the model list: timm names, torchscript:PATH.pt, python:module:function")
    sw.add_argument("--config", required=True, help="the protocol (a synbench run config; [model] is ignored)")
    sw.add_argument("--output-dir", required=True)
    sw.add_argument("--device", default="cpu", help="torch device (cpu, cuda, cuda:1, mps)")
    sw.add_argument("--batch-size", type=int, default=None, help="inputs per batch (default: the plan's, 64)")
    sw.add_argument("--dtype", default="float32", choices=_DTYPES)
    sw.add_argument("--shard", help="I/N: every N-th model from the I-th (default: the Slurm array task, else all)")
    sw.add_argument("--random-init", action="store_true", help="timm models at random init (no download)")
    sw.add_argument(
        "--prefetch", action="store_true",
        help="download every listed timm model's weights into the Hugging Face cache and exit (run it on the "
        "login node; compute jobs then run with HF_HUB_OFFLINE=1)",
    )
    sw.add_argument("--threads", type=int, help="torch CPU threads (default: SLURM_CPUS_PER_TASK, else torch's)")
    sw.add_argument("--progress", action="store_true", help="a progress bar per model")
    sw.add_argument("--slurm", action="store_true", help="write DIR/sweep.sbatch instead of running")
    sw.add_argument("--submit", action="store_true", help="with --slurm: submit it and print the job id")
    sw.add_argument("--shards", type=int, help="array tasks (default: one per model)")
    sw.add_argument("--partition")
    sw.add_argument("--gpus-per-task", type=int, help="default 1 with a cuda device, else none")
    sw.add_argument("--cpus-per-task", type=int)
    sw.add_argument("--time", dest="time_limit", help="Slurm time limit per task, e.g. 02:00:00")
    co = sub.add_parser("collect", help="write DIR/leaderboard.csv, DIR/leaderboard.md and DIR/report.html")
    co.add_argument("dir")
    co.add_argument("--sort-by", type=float, help="threshold to rank by (default 0.7 when the runs have it)")
    co.add_argument("--no-report", action="store_true", help="do not write DIR/report.html")
    rp = sub.add_parser("report", help="write DIR/report.html of a run folder or a sweep folder")
    rp.add_argument("dir")
    rp.add_argument("--sort-by", type=float, help="a sweep's threshold to rank by (default 0.7 when the runs have it)")
    args = parser.parse_args(argv)
    try:
        if args.command == "collect":
            _, markdown, paths = collect(args.dir, args.sort_by, report=not args.no_report)
            print(markdown, end="")
            print("wrote " + ", ".join(paths), file=sys.stderr)
            return 0
        if args.command == "report":
            from . import report

            print("wrote " + report(args.dir, args.sort_by), file=sys.stderr)
            return 0
        if args.submit and not args.slurm:
            parser.error("--submit needs --slurm")
        if args.prefetch:
            if args.random_init:
                parser.error("--prefetch fetches pretrained weights: drop --random-init")
            return 1 if prefetch(args.models)["failed"] else 0
        if args.slurm:
            shards = args.shards if args.shards is not None else len(read_models(args.models))
            path = write_sbatch(
                args.models, args.config, args.output_dir, shards=shards, device=args.device,
                batch_size=args.batch_size, dtype=args.dtype, pretrained=not args.random_init,
                threads=args.threads, partition=args.partition, gpus_per_task=args.gpus_per_task,
                cpus_per_task=args.cpus_per_task, time_limit=args.time_limit,
            )
            if args.submit:
                print(f"submitted job {submit(path)} ({shards} tasks); logs in "
                      f"{os.path.join(os.path.abspath(args.output_dir), 'logs')}")
            else:
                print(f"sbatch {shlex.quote(path)}")
            return 0
        outcome = run_sweep(
            args.models, args.config, args.output_dir, device=args.device, batch_size=args.batch_size,
            dtype=args.dtype, shard=parse_shard(args.shard), pretrained=not args.random_init,
            threads=args.threads, progress=args.progress,
        )
        return 1 if outcome["failed"] else 0
    except SynbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
