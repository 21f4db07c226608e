"""The Python API against the CLI, the closed forms and every bad input."""

import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import synbench
from conftest import ROOT, run_cli, write_config

SMALL = dict(shape=(8,), scales=(0.5, 1.0, 2.0), n_train=200, n_test=200, epsilons=(0.0, 0.2), thresholds=(0.6, 0.7, 0.8))


def identity(batch):
    return batch.inputs.reshape(len(batch), -1)


def drive(exp, encode=identity, batch_size=None, stop_after=None):
    """Folds every batch and finishes; with `stop_after`, stops after the
    batches of that many scales (the experiment is then dropped, as a
    killed process: dropping waits for the scales in flight, so exactly
    those land on disk)."""
    folded, scale, last = 0, None, None
    for batch in exp.batches(batch_size):
        if scale is not None and batch.scale_index != scale:
            folded += 1
            if folded == stop_after:
                exp._inner = None
                return None
        scale = batch.scale_index
        last = exp.fold(batch, encode(batch))
        assert isinstance(last, list)
    return exp.finish()


def test_identity_from_python_gives_exactly_the_scores_of_synbench_run(tmp_path):
    # configs/identity.toml, with the output folders moved into tmp_path.
    text = (ROOT / "configs" / "identity.toml").read_text().replace('dir = "../results/identity"', 'dir = "cli"')
    config = tmp_path / "identity.toml"
    config.write_text(text)
    run_cli("run", config, "--quiet")
    exp = synbench.Experiment.from_toml(config, output_dir=tmp_path / "py")
    result = drive(exp)
    assert (tmp_path / "py" / "scores.csv").read_bytes() == (tmp_path / "cli" / "scores.csv").read_bytes()
    cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert result.scores.tolist() == [row["reference"] for row in cli["scores"]]
    assert result.scores_in("exact").tolist() == [row["exact"] for row in cli["scores"]]
    # SPEC §5: the identity keeps the raw trade-off (scores near 1 at t = 0.6).
    assert abs(result.score(0.0, 0.6) - 1.0) < 0.05
    # The same plan, so the same run.json hash: the folders are interchangeable.
    py_run = json.loads((tmp_path / "py" / "run.json").read_text())
    cli_run = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert py_run["plan"]["data"] == cli_run["plan"]["data"]


def first_scale_train_inputs(batch_size):
    exp = synbench.Experiment(**SMALL)
    rows = []
    for batch in exp.batches(batch_size=batch_size):
        if batch.scale_index > 0:
            break
        if batch.split == "train":
            rows.append(batch.inputs)
        exp.fold(batch, identity(batch))
    return np.concatenate(rows)


def test_batches_are_bit_identical_whatever_the_batch_size():
    a, b = first_scale_train_inputs(64), first_scale_train_inputs(50)
    assert a.shape == (200, 8) and a.dtype == np.float32 and a.flags["C_CONTIGUOUS"]
    assert np.array_equal(a, b)


def test_estimator_population_makes_the_population_estimate_the_headline():
    reference = drive(synbench.Experiment(**SMALL))
    population = drive(synbench.Experiment(**SMALL, estimator="population"))
    # Both runs carry both estimators; the headline (`scores`, `stderr`) follows `estimator`.
    assert np.array_equal(population.scores, reference.estimate("population"))
    assert np.array_equal(reference.scores, population.estimate("reference"))
    assert np.array_equal(population.stderr, reference.estimate("population", "stderr"))
    assert not np.array_equal(population.scores, reference.scores)
    with pytest.raises(synbench.SynbenchError, match="estimator"):
        synbench.Experiment(**SMALL, estimator="plugin")


def test_a_singular_covariance_has_no_population_estimate():
    # 40 train samples of 40-wide features: n_train - 2 <= D.
    small = dict(SMALL, shape=(40,), n_train=40, n_test=40)
    with pytest.raises(synbench.SynbenchError, match=r"score.estimator.*data.n_train = 40.*n_train ≥ 43"):
        drive(synbench.Experiment(**small, estimator="population"))
    result = drive(synbench.Experiment(**small))
    assert np.isfinite(result.scores).all() and np.isnan(result.estimate("population")).all()


def test_result_arrays_and_files(tmp_path):
    result = drive(synbench.Experiment(**SMALL, output_dir=tmp_path / "run", model="mine"))
    assert result.scores.shape == (2, 3) and result.accuracy.shape == (3, 2) and result.bound.shape == (3, 2)
    assert result.epsilons == (0.0, 0.2) and result.thresholds == (0.6, 0.7, 0.8) and result.scales == (0.5, 1.0, 2.0)
    assert result.score(0.2, 0.7) == result.scores[1, 1]
    with pytest.raises(synbench.SynbenchError, match="epsilon 0.5 is not one of"):
        result.score(0.5, 0.7)
    for name in ["run.json", "results.json", "scores.csv", "table.md", "bound_vs_threshold.png", "accuracy_vs_scale.svg"]:
        assert (tmp_path / "run" / name).is_file(), name
    frame = result.to_pandas()
    assert list(frame.columns) == [
        "model", "epsilon", "threshold", "score", "stderr", "ci_low", "ci_high", "estimator", "mode", "averaging"
    ]
    assert len(frame) == 12 and set(frame["model"]) == {"mine"}
    assert set(frame["estimator"]) == {"reference", "population"}
    # Intervals shaped like the scores, around them, as scores.csv has them.
    assert result.stderr.shape == result.scores.shape and (result.stderr > 0).all()
    assert np.allclose(result.ci_high - result.ci_low, 2 * 2.262157162740992 * result.stderr)
    assert ((result.ci_low < result.scores) & (result.scores < result.ci_high)).all()
    reference = frame[frame["estimator"] == "reference"]
    assert np.allclose(reference["stderr"].to_numpy(), result.stderr.ravel())
    population = result.estimate("population")
    assert population.shape == result.scores.shape and np.isfinite(population).all()
    # result.save writes a folder `synbench table` reads, with the same scores.
    result.save(tmp_path / "copy")
    assert (tmp_path / "copy" / "scores.csv").read_bytes() == (tmp_path / "run" / "scores.csv").read_bytes()
    table = run_cli("table", tmp_path / "copy", tmp_path / "run")
    assert table.count("| mine (") == 12, table  # reference and population tables


def test_features_of_other_dtypes_and_array_types_score_the_same():
    torch = pytest.importorskip("torch")
    base = drive(synbench.Experiment(**SMALL)).scores
    as64 = drive(synbench.Experiment(**SMALL), lambda b: identity(b).astype(np.float64)).scores
    as_torch = drive(synbench.Experiment(**SMALL), lambda b: torch.from_numpy(identity(b))).scores
    fortran = drive(synbench.Experiment(**SMALL), lambda b: np.asfortranarray(identity(b))).scores
    assert np.array_equal(base, as64) and np.array_equal(base, as_torch) and np.array_equal(base, fortran)
    # float16 rounds the features: a different but valid run.
    half = drive(synbench.Experiment(**SMALL), lambda b: identity(b).astype(np.float16)).scores
    assert np.all(np.abs(half - base) < 0.05)


def test_closed_forms():
    a = 0.8413447460685429  # Φ(1)
    phi = math.exp(-0.5) / math.sqrt(2 * math.pi)
    assert synbench.expected_bound(a) == pytest.approx(1 + phi / a, rel=1e-12)
    assert synbench.expected_bound([a, a]).shape == (2,)
    acc, bound = synbench.raw_reference([1.0, 2.0])
    assert acc[0] == pytest.approx(a, rel=1e-15) and bound[0] == pytest.approx(1 + phi / a, rel=1e-12)
    # The raw data against itself scores exactly 1 wherever its area is positive.
    acc, bound = synbench.raw_reference(synbench.PAPER_SCALES)
    assert synbench.score(acc, bound).tolist() == [1.0] * len(synbench.PAPER_THRESHOLDS)
    assert len(synbench.PAPER_SCALES) == 49 and synbench.PAPER_SCALES[0] == 0.1
    with pytest.raises(synbench.SynbenchError, match="accuracy 0.3"):
        synbench.expected_bound(0.3)


def test_bad_input_names_the_batch_and_loses_nothing(tmp_path):
    exp = synbench.Experiment(**SMALL, output_dir=tmp_path / "run")
    batches = exp.batches(batch_size=100)
    batch = next(batches)
    where = r"scale 0 \(s = 0.5\), train samples 0..100"
    with pytest.raises(synbench.SynbenchError, match=where + ".* have 99 rows, expected 100"):
        exp.fold(batch, np.zeros((99, 8), np.float32))
    bad = identity(batch).copy()
    bad[3, 2] = np.nan
    with pytest.raises(synbench.SynbenchError, match=r"\[3, 2\] is NaN"):
        exp.fold(batch, bad)
    bad[3, 2] = np.inf
    with pytest.raises(synbench.SynbenchError, match=r"\[3, 2\] is inf"):
        exp.fold(batch, bad)
    with pytest.raises(synbench.SynbenchError, match="expected shape"):
        exp.fold(batch, np.zeros(100, np.float32))

    class OnDevice:  # as a CUDA tensor behaves: __array__ refuses
        def __array__(self, *args, **kwargs):
            raise TypeError("can't convert cuda:0 device type tensor to numpy")

    with pytest.raises(synbench.SynbenchError, match=r"cannot read them as a host array .*\.cpu\(\)"):
        exp.fold(batch, OnDevice())
    with pytest.raises(synbench.SynbenchError, match="expected an array"):
        exp.fold(batch, [[0.0] * 8] * 100)
    with pytest.raises(synbench.SynbenchError, match="fold each batch before asking for the next"):
        exp.next_batch()
    assert exp.fold(batch, identity(batch)) == []
    with pytest.raises(synbench.SynbenchError, match="already folded"):
        exp.fold(batch, identity(batch))
    second = next(batches)
    with pytest.raises(synbench.SynbenchError, match="have 9 columns, but earlier batches had 8"):
        exp.fold(second, np.zeros((100, 9), np.float32))
    with pytest.raises(synbench.SynbenchError, match="not the batch handed out last"):
        exp.fold(batch, identity(batch))
    exp.fold(second, identity(second))
    with pytest.raises(synbench.SynbenchError, match=r"scale\(s\) \[0, 1, 2\] still need their batches"):
        exp.finish()
    # Nothing was lost: the run goes on to the end.
    for batch in batches:
        exp.fold(batch, identity(batch))
    assert exp.finish().scores.shape == (2, 3)


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        (dict(norm="l3"), "norm", '`norm`: "l3": expected one of "l2", "linf", "l1"'),
        (dict(averaging="mean"), "averaging", '`averaging`: "mean"'),
        (dict(score_mode="area"), "score_mode", '`score_mode`: "area"'),
        (dict(prior=1.5), "prior", "`prior`: prior 1.5 is outside"),
        (dict(shift=float("nan")), "shift", "`shift`: shift NaN must be a finite number"),
        (dict(epsilons=(0.0, 1.0)), "epsilons", "`epsilons`"),
        (dict(n_train=2), "n_train", "`n_train`: need at least 4"),
        (dict(n_train="many"), "n_train", "`n_train`: 'many': expected a non-negative integer"),
        (dict(thresholds=(0.5, 1.5)), "thresholds", "`thresholds`"),
        (dict(normalize="cifar"), "normalize", '`normalize`: "cifar": expected "imagenet", "model", "none"'),
        (dict(shape=(3, 8, 8), normalize=([0.5], [0.2])), "normalize", "`normalize`"),
        (dict(batch_size=0), "batch_size", "`batch_size`: 0: must be at least 1"),
        (dict(resume=True), "output_dir", "`output_dir`: resume needs an output folder"),
    ],
)
def test_unknown_or_bad_options_are_refused_at_construction(kwargs, field, message):
    with pytest.raises(synbench.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        synbench.Experiment(**{**SMALL, **kwargs})
    assert isinstance(info.value, synbench.SynbenchError) and isinstance(info.value, ValueError)
    assert info.value.field == field and info.value.file == "synbench.Experiment" and info.value.line is None
    with pytest.raises(synbench.SynbenchError, match="choose one"):
        synbench.Experiment(**SMALL, resume=True, restart=True, output_dir="x")


def test_a_toml_config_error_carries_file_line_and_field(tmp_path):
    config = write_config(tmp_path / "bad.toml", """
        [model]
        arch = "external"
        [data]
        shape = [8]
        n_test = 0
    """)
    with pytest.raises(synbench.ConfigError, match="need at least 1 test sample") as info:
        synbench.Experiment.from_toml(config)
    assert (info.value.file, info.value.line, info.value.field) == (str(config), 5, "data.n_test")


def test_keywords_and_toml_resolve_to_one_plan(tmp_path):
    # One protocol as keywords, as from_toml, and as `synbench run` of the same TOML.
    toml = """
        [model]
        arch = "identity"
        name = "ident"
        [data]
        shape = [8]
        scales = [0.5, 1.0, 2.0]
        n_train = 200
        n_test = 200
        [probe]
        epsilons = [0.0, 0.2]
        [score]
        thresholds = [0.6, 0.7, 0.8]
        [output]
        dir = "cli"
    """
    config = write_config(tmp_path / "protocol.toml", toml)
    keywords = synbench.Experiment(**SMALL, model="ident", output_dir=tmp_path / "kw")
    from_toml = synbench.Experiment.from_toml(config, output_dir=tmp_path / "toml")
    assert keywords.plan_hash == from_toml.plan_hash
    assert json.loads(keywords.resolved_plan()) == json.loads(from_toml.resolved_plan())
    # The batch size is the plan's (64, as `synbench run` has it) and part of its hash.
    assert keywords.batch_size == 64
    assert synbench.Experiment(**SMALL, model="ident", batch_size=100).plan_hash != keywords.plan_hash
    drive(keywords)
    drive(from_toml)
    run_cli("run", config, "--quiet")
    runs = {name: json.loads((tmp_path / name / "run.json").read_text()) for name in ("kw", "toml", "cli")}
    assert runs["kw"]["plan_hash"] == runs["toml"]["plan_hash"] == keywords.plan_hash
    for section in ("data", "probe", "score"):
        assert runs["kw"]["plan"][section] == runs["cli"]["plan"][section], section
    assert (tmp_path / "kw" / "scores.csv").read_bytes() == (tmp_path / "cli" / "scores.csv").read_bytes()


def test_errors_are_typed_with_what_they_name(tmp_path):
    out = tmp_path / "run"
    exp = synbench.Experiment(**SMALL, output_dir=out)
    batch = next(exp.batches(batch_size=100))
    with pytest.raises(synbench.BatchError) as info:
        exp.fold(batch, np.zeros((99, 8), np.float32))
    assert info.value.scale == 0 and info.value.batch == "batch of scale 0 (s = 0.5), train samples 0..100"
    with pytest.raises(synbench.BusyError) as busy:
        drive(synbench.Experiment(**SMALL, output_dir=out))
    assert busy.value.dir == str(out) and busy.value.lock.endswith(".lock")
    other = tmp_path / "other"
    assert drive(synbench.Experiment(**SMALL, output_dir=other), stop_after=1) is None
    with pytest.raises(synbench.PlanMismatchError) as changed:
        drive(synbench.Experiment(**{**SMALL, "n_test": 100}, output_dir=other, resume=True))
    assert changed.value.changes == ["data.n_test: 200 → 100"]


def test_load_reads_finished_killed_and_sweep_folders(tmp_path):
    result = drive(synbench.Experiment(**SMALL, output_dir=tmp_path / "sweep" / "a", model="a"))
    loaded = synbench.load(tmp_path / "sweep" / "a")
    assert isinstance(loaded, synbench.Result) and not loaded.partial
    for name in ("scores", "stderr", "ci_low", "ci_high", "accuracy", "bound"):
        assert np.array_equal(getattr(loaded, name), getattr(result, name)), name
    assert np.array_equal(loaded.estimate("population"), result.estimate("population"))
    assert loaded.to_markdown() == (tmp_path / "sweep" / "a" / "table.md").read_text()
    assert loaded.feature_dim == 8 and loaded.results_json() == (tmp_path / "sweep" / "a" / "results.json").read_text().rstrip("\n")
    # A killed run: its finished scales, scored with its own plan.
    assert drive(synbench.Experiment(**SMALL, output_dir=tmp_path / "sweep" / "b", model="b"), stop_after=2) is None
    partial = synbench.load(tmp_path / "sweep" / "b")
    assert partial.partial and partial.scales == (0.5, 1.0) and partial.scores.shape == (2, 3)
    # A sweep folder: a result per model folder, in the sweep's order.
    models = [("a", "a", 1, 0), ("b", "b", 2, 0)]
    synbench._synbench._write_sweep(str(tmp_path / "sweep"), "models.txt", "protocol.toml", 1, models)
    both = synbench.load(tmp_path / "sweep")
    assert [r.model for r in both] == ["a", "b"] and [r.partial for r in both] == [False, True]


def test_load_refuses_a_damaged_file_naming_file_and_field(tmp_path):
    out = tmp_path / "run"
    drive(synbench.Experiment(**SMALL, output_dir=out))
    scale = out / "scales" / "scale_001.json"
    data = json.loads(scale.read_text())
    data["population"] = data["population"][:1]
    scale.write_text(json.dumps(data))
    with pytest.raises(synbench.FileError) as info:
        synbench.load(out)
    assert info.value.file == str(scale) and info.value.field == "population"
    assert "has 1 entries, expected 2 (one per ε of the plan)" in str(info.value)
    assert str(info.value).count(str(scale)) == 1  # the path once


def test_a_rust_panic_arrives_as_a_synbench_error():
    with pytest.raises(synbench.SynbenchError, match="internal error in synbench's Rust core.*provoked by the test suite"):
        synbench._synbench._panic_for_test()


def test_resume_refuses_another_plan_and_restart_starts_over(tmp_path):
    out = tmp_path / "run"
    assert drive(synbench.Experiment(**SMALL, output_dir=out), stop_after=2) is None
    with pytest.raises(synbench.SynbenchError, match="already holds 2 of 3 finished"):
        drive(synbench.Experiment(**SMALL, output_dir=out))
    edited = {**SMALL, "n_test": 100}
    with pytest.raises(synbench.SynbenchError, match="data.n_test: 200 → 100"):
        drive(synbench.Experiment(**edited, output_dir=out, resume=True))
    result = drive(synbench.Experiment(**edited, output_dir=out, restart=True))
    assert json.loads(result.results_json())["provenance"]["scales_computed"] == 3


KILLED_SCRIPT = """
import sys, numpy as np, synbench
exp = synbench.Experiment(shape=(256,), scales=[0.3 * i for i in range(1, 11)], n_train=2048, n_test=2048,
                          epsilons=(0.0, 0.2), output_dir=sys.argv[1], resume=sys.argv[2] == "resume")
for batch in exp.batches(batch_size=256):
    exp.fold(batch, batch.inputs.reshape(len(batch), -1))
exp.finish()
"""


def test_a_sigkilled_run_resumes_to_byte_identical_scores(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLED_SCRIPT)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run([sys.executable, script, whole, "fresh"], check=True)
    child = subprocess.Popen([sys.executable, script, killed, "fresh"])
    # Scales finish on worker threads, not always in grid order: wait for two of them.
    deadline = time.time() + 300
    scales = killed / "scales"
    while len(list(scales.glob("scale_*.json"))) < 2 and time.time() < deadline and child.poll() is None:
        time.sleep(0.002)
    child.send_signal(signal.SIGKILL)
    child.wait()
    on_disk = sorted(scales.glob("scale_*.json"))
    finished = len(on_disk)
    assert child.returncode == -signal.SIGKILL, "the run ended before the kill"
    assert 2 <= finished < 10 and not (killed / "results.json").exists(), finished
    kept = {path.name: path.read_bytes() for path in on_disk}
    subprocess.run([sys.executable, script, killed, "resume"], check=True)
    results = json.loads((killed / "results.json").read_text())
    assert results["provenance"]["scales_computed"] == 10 - finished
    for name, data in kept.items():
        assert (scales / name).read_bytes() == data, name
    assert (killed / "scores.csv").read_bytes() == (whole / "scores.csv").read_bytes()
