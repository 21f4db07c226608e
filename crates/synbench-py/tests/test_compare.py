"""`synbench.compare` and `synbench compare`: the same Rust code, paired
differences of two runs of one protocol."""

import numpy as np
import pytest

import synbench

from conftest import run_cli

PROTOCOL = dict(shape=(8,), scales=(0.5, 1.0, 2.0, 3.0), n_train=256, n_test=256, epsilons=(0.0, 0.2),
                thresholds=(0.6, 0.7))


def run(folder, noise, seed=12):
    exp = synbench.Experiment(**PROTOCOL, seed=seed, model=f"noise_{noise}", output_dir=folder)
    a = np.random.default_rng(1).standard_normal((8, 8)).astype(np.float32)
    for batch in exp.batches():
        x = batch.inputs.reshape(len(batch), -1)
        eta = np.random.default_rng([batch.scale_index, batch.start, batch.split == "test"]).standard_normal(x.shape)
        exp.fold(batch, (x @ a + noise * eta).astype(np.float32))
    exp.finish()
    return folder


def test_compare_pairs_two_runs_and_matches_the_cli(tmp_path):
    clean, noisy = run(tmp_path / "clean", 0.2), run(tmp_path / "noisy", 1.5)
    c = synbench.compare(clean, noisy)
    assert len(c.rows) == 2 * 2 * 2  # both estimators × 2 ε × 2 thresholds
    for row in c.rows:
        assert row["model_a"] == "clean" and row["model_b"] == "noisy"
        assert row["difference"] == pytest.approx(row["score_a"] - row["score_b"], abs=1e-12)
        assert row["ci_low"] <= row["difference"] <= row["ci_high"]
        assert 0 < row["stderr"] < row["unpaired_stderr"]
    # The scores are each run's own, as synbench.load reads them.
    a = synbench.load(clean)
    first = next(r for r in c.rows if r["estimator"] == "reference" and r["epsilon"] == 0.0 and r["threshold"] == 0.6)
    assert first["score_a"] == float(a.scores[0, 0])
    assert run_cli("compare", clean, noisy) == c.markdown
    assert "paired 95 % interval" in c.markdown and "t = 0.6:" in c.markdown


def test_runs_of_other_protocols_are_refused(tmp_path):
    a, b = run(tmp_path / "a", 0.5), run(tmp_path / "b", 0.5, seed=13)
    with pytest.raises(synbench.SynbenchError, match="data.seed"):
        synbench.compare(a, b)
