"""`python -m synbench sweep` and `collect`: model lists, shards, failures,
resume after a kill, the sbatch file, and the leaderboard against
`synbench.evaluate` run directly."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import synbench
from synbench import sweep
from conftest import run_cli, write_config

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

PROTOCOL = """
[model]
arch = "vit"                      # ignored by a sweep
preset = "vit_tiny_patch16_224"
[data]
shape = [3, 32, 32]
scales = [0.4, 0.8, 1.2, 1.6]
n_train = 256
n_test = 256
[probe]
epsilons = [0.0, 0.2]
[score]
thresholds = [0.6, 0.7]
"""

# A module the `python:` entries import (the test puts its folder on PYTHONPATH).
FACTORIES = '''
import os, time
import torch, timm

def small_cnn(width=16):
    torch.manual_seed(7)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, width, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten()
    )

class _Slow(torch.nn.Module):
    def __init__(self, inner, seconds):
        super().__init__()
        self.inner, self.seconds = inner, seconds
    def forward(self, x):
        time.sleep(self.seconds)
        return self.inner(x)

def slow_resnet(seconds=0.25):
    """resnet10t, slowed down so a test can kill it mid-run."""
    return _Slow(timm.create_model("resnet10t", num_classes=0), seconds)

def flaky():
    """Fails while the flag file exists (a model that fails once, then works on a rerun)."""
    if os.path.exists(os.environ["SYNBENCH_TEST_FLAKY_FLAG"]):
        raise RuntimeError("flaky model: flag file present")
    return small_cnn(8)

def wrong_output():
    """A module whose output has a different width per batch."""
    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0
        def forward(self, x):
            self.calls += 1
            return x.flatten(1)[:, : 4 + self.calls]
    return Bad()
'''


def sweep_cli(*args, cwd, env=None, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "synbench", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})},
    )
    if check:
        assert out.returncode in (0, 1), f"python -m synbench {' '.join(map(str, args))}:\n{out.stderr}"
    return out


@pytest.fixture
def workspace(tmp_path):
    write_config(tmp_path / "protocol.toml", PROTOCOL)
    (tmp_path / "factories.py").write_text(FACTORIES)
    env = {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "SYNBENCH_TEST_FLAKY_FLAG": str(tmp_path / "flaky.flag"),
    }
    return tmp_path, env


def leaderboard(path):
    import pandas as pd

    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def test_model_lists_parse_with_comments_keywords_and_every_kind(tmp_path):
    models = tmp_path / "models.txt"
    models.write_text(
        "# a zoo\n\nvit_base_patch16_224.augreg_in21k\n"
        "vit_tiny_patch16_224 img_size=64 patch_size=8   # keywords\n"
        "torchscript:nets/resnet.pt\npython:my.pkg:build width=32 name=wide\n"
    )
    entries = sweep.read_models(str(models))
    assert [(e.kind, e.line) for e in entries] == [("timm", 3), ("timm", 4), ("torchscript", 5), ("python", 6)]
    assert entries[0].name == "vit_base_patch16_224.augreg_in21k"
    assert entries[1].kwargs == (("img_size", 64), ("patch_size", 8))
    assert entries[1].name == "vit_tiny_patch16_224_img_size=64_patch_size=8"
    assert entries[2].target == str(tmp_path / "nets" / "resnet.pt") and entries[2].name == "torchscript-resnet"
    assert entries[3].kwargs == (("width", 32), ("name", "wide")) and entries[3].name.startswith("python-my.pkg.build")
    for text, needle in [
        ("resnet18\nresnet18\n", "models.txt:2: 'resnet18' has the folder name 'resnet18' of line 1"),
        ("resnet18 depth\n", "models.txt:1: 'depth': expected key=value"),
        ("python:nomodule\n", "models.txt:1: 'python:nomodule': expected python:package.module:function"),
        ("hf-hub:org/name\n", "models.txt:1: 'hf-hub:org/name': expected a timm name"),
        ("# nothing\n", "models.txt: the model list is empty"),
    ]:
        models.write_text(text)
        with pytest.raises(synbench.SynbenchError) as e:
            sweep.read_models(str(models))
        assert needle in str(e.value), str(e.value)


def test_shards_cover_every_model_exactly_once_and_follow_slurm():
    for count in range(1, 8):
        shards = [[i for i in range(23) if sweep.shard_of(i, count) == s] for s in range(count)]
        assert sorted(sum(shards, [])) == list(range(23))
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert sweep.parse_shard("2/5") == (2, 5)
    env = {"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"}
    assert sweep.parse_shard(None, env) == (2, 3)
    assert sweep.parse_shard(None, {}) == (0, 1)
    assert sweep.parse_shard("1/2", env) == (1, 2), "an explicit --shard wins"
    for bad in ["3/3", "1", "a/b", "0/0"]:
        with pytest.raises(synbench.SynbenchError, match="expected I/N"):
            sweep.parse_shard(bad)


def test_a_sweep_scores_every_kind_records_failures_and_reruns_retry_them(workspace):
    tmp, env = workspace
    # The traced module is resnet10t at the seed the sweep gives the line `resnet10t`.
    torch.manual_seed(sweep.init_seed(sweep.ModelEntry("resnet10t", 1, "timm", "resnet10t", (), "resnet10t")))
    traced = torch.jit.trace(timm.create_model("resnet10t", num_classes=0).eval(), torch.zeros(1, 3, 32, 32))
    traced.save(str(tmp / "resnet10t.pt"))
    (tmp / "flaky.flag").write_text("on")
    (tmp / "models.txt").write_text(
        "resnet10t\nvit_tiny_patch16_224 img_size=32 patch_size=8\nnot_a_timm_model\n"
        "torchscript:resnet10t.pt\npython:factories:small_cnn width=12\npython:factories:flaky\n"
        "python:factories:wrong_output\n"
    )
    args = ["sweep", "models.txt", "--config", "protocol.toml", "--output-dir", "out", "--random-init",
            "--batch-size", "64", "--threads", "1"]
    out = sweep_cli(*args, cwd=tmp, env=env)
    assert out.returncode == 1, "failures make the exit status 1"
    failures = {f["model"]: f for f in json.loads((tmp / "out" / "failures.json").read_text())["failures"]}
    assert set(failures) == {"not_a_timm_model", "python-factories.flaky", "python-factories.wrong_output"}
    assert failures["not_a_timm_model"]["error"] == "RuntimeError: Unknown model (not_a_timm_model)"
    assert "flag file present" in failures["python-factories.flaky"]["error"]
    assert "columns, but earlier batches had" in failures["python-factories.wrong_output"]["error"]
    assert all(f["attempts"] == 1 and f["shard"] == "0/1" for f in failures.values())

    # The sweep's numbers are synbench.evaluate's on the same model, seeded as the sweep seeds it.
    entry = sweep.read_models(str(tmp / "models.txt"))[0]
    torch.manual_seed(sweep.init_seed(entry))
    model = timm.create_model("resnet10t", num_classes=0)
    torch.set_num_threads(1)
    direct = synbench.evaluate(
        model, experiment=synbench.Experiment.from_toml(tmp / "protocol.toml", model="resnet10t", protocol=True),
        batch_size=64, progress=False,
    )
    swept = json.loads((tmp / "out" / "resnet10t" / "results.json").read_text())
    assert [s["reference"] for s in swept["scores"]] == direct.scores.tolist()
    assert swept["feature_dim"] == direct.feature_dim == 512 and swept["provenance"]["device"] == "cpu"
    assert swept["provenance"]["backend"] == f"torch {torch.__version__}"
    # The traced module is the same network with the same weights: the same scores.
    traced_run = json.loads((tmp / "out" / "torchscript-resnet10t" / "results.json").read_text())
    assert traced_run["scores"] == swept["scores"]

    assert not (tmp / "out" / "leaderboard.csv").exists(), "collect writes the leaderboard, the sweep does not"
    md = sweep_cli("collect", "out", "--sort-by", "0.6", cwd=tmp).stdout
    board = leaderboard(tmp / "out" / "leaderboard.csv")
    scored = board[board.epsilon.notna()]
    assert len(scored) == 4 * 2 and (scored.state == "finished").all()
    assert list(scored["score_0.6"]) == sorted(scored["score_0.6"], reverse=True), "ranked by t = 0.6"
    assert set(board[board.state == "failed"].model) == set(failures)
    assert dict(zip(scored.model, scored.feature_dim))["python-factories.small_cnn_width=12"] == 12 * 4
    row = scored[(scored.model == "resnet10t") & (scored.epsilon == 0.2)].iloc[0]
    assert row["score_0.7"] == direct.score(0.2, 0.7)
    assert "| python-factories.flaky | — |" in md and "not_a_timm_model failed (1 attempt(s))" in md
    assert run_cli("collect", tmp / "out", "--sort-by", "0.6") == md, "`synbench collect` is the same leaderboard"
    # `synbench table` reads the same folders.
    table = run_cli("table", *sorted(str(p) for p in (tmp / "out").iterdir() if (p / "results.json").exists()))
    assert "resnet10t" in table and "torchscript-resnet10t" in table

    # A rerun skips the finished models (their files untouched) and retries the failed ones.
    before = (tmp / "out" / "resnet10t" / "results.json").read_bytes()
    (tmp / "flaky.flag").unlink()
    out = sweep_cli(*args, cwd=tmp, env=env)
    assert "resnet10t: finished earlier, skipped" in out.stderr
    assert (tmp / "out" / "resnet10t" / "results.json").read_bytes() == before
    failures = {f["model"]: f for f in json.loads((tmp / "out" / "failures.json").read_text())["failures"]}
    assert set(failures) == {"not_a_timm_model", "python-factories.wrong_output"}
    assert failures["not_a_timm_model"]["attempts"] == 2
    assert (tmp / "out" / "python-factories.flaky" / "results.json").exists(), "retried and finished"


def test_a_killed_model_resumes_after_its_last_finished_scale(workspace):
    tmp, env = workspace
    (tmp / "models.txt").write_text("python:factories:slow_resnet seconds=0.2\nresnet10t\n")
    args = ["sweep", "models.txt", "--config", "protocol.toml", "--batch-size", "64", "--threads", "1", "--random-init"]
    whole = sweep_cli(*args, "--output-dir", "whole", cwd=tmp, env=env)
    assert whole.returncode == 0, whole.stderr
    slow = "python-factories.slow_resnet_seconds=0.2"
    proc = subprocess.Popen(
        [sys.executable, "-m", "synbench", *args, "--output-dir", "killed"], cwd=tmp,
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    scales = tmp / "killed" / slow / "scales"
    deadline = time.monotonic() + 120
    while not (scales / "scale_001.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before a kill could land"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sorted(p.name for p in scales.iterdir() if p.suffix == ".json")
    assert 2 <= len(finished) < 4 and not (tmp / "killed" / slow / "results.json").exists()
    md = sweep_cli("collect", "killed", cwd=tmp).stdout
    assert f"partial ({len(finished)}/4 scales)" in md and "| resnet10t | — |" in md, md
    out = sweep_cli(*args, "--output-dir", "killed", cwd=tmp, env=env)
    assert out.returncode == 0 and f"{slow}: resumed and finished" in out.stderr, out.stderr
    results = json.loads((tmp / "killed" / slow / "results.json").read_text())
    assert results["provenance"]["scales_computed"] == 4 - len(finished)
    for name in finished:
        assert (scales / name).read_bytes() == (tmp / "whole" / slow / "scales" / name).read_bytes()
    reference = json.loads((tmp / "whole" / slow / "results.json").read_text())
    assert results["scores"] == reference["scores"]


def test_a_model_another_process_is_running_is_left_to_it(workspace):
    tmp, env = workspace
    (tmp / "models.txt").write_text("resnet10t\n")
    # This process runs resnet10t's folder (holds its run lock) ...
    held = synbench.Experiment.from_toml(
        tmp / "protocol.toml", output_dir=tmp / "out" / "resnet10t", model="resnet10t", protocol=True
    )
    held.start(64)
    args = ["sweep", "models.txt", "--config", "protocol.toml", "--output-dir", "out", "--random-init"]
    out = sweep_cli(*args, cwd=tmp, env=env)
    assert out.returncode == 0 and "resnet10t: another process is running it, skipped" in out.stderr, out.stderr
    assert not (tmp / "out" / "failures.json").exists(), "a busy model is not a failure"
    # ... and once it lets go, the sweep runs the model (resuming the folder it prepared).
    del held
    out = sweep_cli(*args, cwd=tmp, env=env)
    assert out.returncode == 0 and "resnet10t: resumed and finished" in out.stderr, out.stderr


def test_the_sbatch_file_runs_each_shard_in_this_environment(workspace, monkeypatch):
    tmp, _ = workspace
    (tmp / "models.txt").write_text("resnet10t\nresnet18\nresnet34\n")
    monkeypatch.chdir(tmp)
    path = sweep.write_sbatch(
        "models.txt", "protocol.toml", "out", shards=2, device="cuda", batch_size=128, dtype="bfloat16",
        partition="gpu", cpus_per_task=8, time_limit="02:00:00", pretrained=False,
    )
    text = open(path).read()
    for line in [
        "#SBATCH --array=0-1", "#SBATCH --gpus-per-task=1", "#SBATCH --partition=gpu", "#SBATCH --cpus-per-task=8",
        "#SBATCH --time=02:00:00", f"#SBATCH --output={tmp}/out/logs/%A_%a.out", f"#SBATCH --chdir={tmp}",
        f"exec {sys.executable} -m synbench sweep {tmp}/models.txt --config {tmp}/protocol.toml --output-dir "
        f"{tmp}/out --device cuda --batch-size 128 --dtype bfloat16 --random-init",
    ]:
        assert line in text, f"{line!r} not in\n{text}"
    assert (tmp / "out" / "logs").is_dir()
    assert subprocess.run(["bash", "-n", path]).returncode == 0
    cpu = open(sweep.write_sbatch("models.txt", "protocol.toml", "cpu", shards=3)).read()
    assert "--gpus-per-task" not in cpu and "#SBATCH --array=0-2" in cpu
    with pytest.raises(synbench.SynbenchError, match="the list has 3 models"):
        sweep.write_sbatch("models.txt", "protocol.toml", "out", shards=4)
    out = sweep_cli("sweep", "models.txt", "--config", "protocol.toml", "--output-dir", "cli", "--slurm", cwd=tmp)
    assert out.stdout.strip() == f"sbatch {tmp}/cli/sweep.sbatch"


def test_a_bad_protocol_stops_the_sweep_before_any_model(workspace):
    tmp, env = workspace
    (tmp / "models.txt").write_text("resnet10t\n")
    write_config(tmp / "bad.toml", PROTOCOL.replace("n_test = 256", "n_test = 0"))
    out = sweep_cli("sweep", "models.txt", "--config", "bad.toml", "--output-dir", "out", cwd=tmp, env=env,
                    check=False)
    assert out.returncode == 2 and "bad.toml:" in out.stderr and "data.n_test" in out.stderr, out.stderr
    assert not (tmp / "out").exists()
