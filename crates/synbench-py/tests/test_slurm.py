"""A sweep on a real Slurm: a 3-task job array of three tiny random-init
timm models, collected and compared with a sequential sweep to the last
digit; then one task killed mid-model and the array resubmitted.

Needs a running Slurm (`scripts/slurm-local.sh start`; `.ci/run` starts
and stops it). Without `sinfo` answering the test is skipped, except under
CI, where it fails."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from test_sweep import FACTORIES, PROTOCOL, leaderboard, sweep_cli
from conftest import write_config

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

MODELS = "resnet10t\nvit_tiny_patch16_224 img_size=32 patch_size=8\npython:factories:slow_resnet seconds=0.3\n"
SLOW = "python-factories.slow_resnet_seconds=0.3"
# The columns that must agree to the last digit (throughput and device are the run's own).
SAME = ["rank", "model", "epsilon", "score_0.6", "score_0.7", "feature_dim", "state"]
TIMEOUT_S = 600


def slurm_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return out.returncode == 0 and any(s.strip() in ("idle", "mix", "alloc") for s in out.stdout.split())


@pytest.fixture(scope="module")
def slurm():
    if not slurm_is_up():
        if os.environ.get("CI"):
            pytest.fail("CI must run the Slurm test: `scripts/slurm-local.sh start` (.ci/run does) left no idle node")
        pytest.skip("no Slurm here (scripts/slurm-local.sh start runs a one-node one)")


def wait_for(job: str, deadline: float) -> None:
    """Until no task of `job` is pending or running."""
    while True:
        out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%i %T"], capture_output=True, text=True)
        if out.returncode == 0 and not out.stdout.strip():
            return
        assert time.monotonic() < deadline, f"job {job} still queued after {TIMEOUT_S} s:\n{out.stdout}"
        time.sleep(0.5)


def submit(tmp, env, out_dir) -> str:
    out = sweep_cli(
        "sweep", "models.txt", "--config", "protocol.toml", "--output-dir", out_dir, "--random-init",
        "--batch-size", "64", "--threads", "1", "--slurm", "--submit", "--cpus-per-task", "1", cwd=tmp, env=env,
    )
    assert out.returncode == 0 and out.stdout.startswith("submitted job "), out.stdout + out.stderr
    return out.stdout.split()[2]


def test_a_slurm_array_sweep_equals_a_sequential_one_and_survives_a_killed_task(tmp_path, slurm):
    tmp = tmp_path
    write_config(tmp / "protocol.toml", PROTOCOL)
    (tmp / "factories.py").write_text(FACTORIES)
    (tmp / "models.txt").write_text(MODELS)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")])}
    deadline = time.monotonic() + TIMEOUT_S
    started = time.monotonic()

    sequential = sweep_cli(
        "sweep", "models.txt", "--config", "protocol.toml", "--output-dir", "sequential", "--random-init",
        "--batch-size", "64", "--threads", "1", cwd=tmp, env=env,
    )
    assert sequential.returncode == 0, sequential.stderr
    sweep_cli("collect", "sequential", cwd=tmp)
    expected = leaderboard(tmp / "sequential" / "leaderboard.csv")[SAME]

    # The array: three tasks, one model each.
    job = submit(tmp, env, "array")
    wait_for(job, deadline)
    logs = sorted((tmp / "array" / "logs").iterdir())
    assert len([p for p in logs if p.suffix == ".err"]) == 3, logs
    for err in (p for p in logs if p.suffix == ".err"):
        assert "done: 1 finished, 0 skipped, 0 failed" in err.read_text(), err.read_text()
    sweep_cli("collect", "array", cwd=tmp)
    got = leaderboard(tmp / "array" / "leaderboard.csv")
    assert got[SAME].equals(expected), f"{got[SAME]}\n!=\n{expected}"
    assert (got.state == "finished").all()

    # Kill the slow model's task after its second scale; resubmit the same file.
    job = submit(tmp, env, "killed")
    scales = tmp / "killed" / SLOW / "scales"
    while not (scales / "scale_001.json").exists():
        assert time.monotonic() < deadline, "the slow model never reached its second scale"
        time.sleep(0.05)
    subprocess.run(["scancel", "--signal=KILL", f"{job}_2"], check=True)
    wait_for(job, deadline)
    finished = sorted(p.name for p in scales.iterdir() if p.suffix == ".json")
    assert 2 <= len(finished) < 4 and not (tmp / "killed" / SLOW / "results.json").exists(), finished
    md = sweep_cli("collect", "killed", cwd=tmp).stdout
    assert f"partial ({len(finished)}/4 scales)" in md, md
    out = subprocess.run(["sbatch", "--parsable", str(tmp / "killed" / "sweep.sbatch")], capture_output=True,
                         text=True, cwd=tmp, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    wait_for(out.stdout.strip().split(";")[0], deadline)
    resumed = sorted((tmp / "killed" / "logs").glob(f"{out.stdout.strip()}_*.err"))
    texts = [p.read_text() for p in resumed]
    assert sum("finished earlier, skipped" in t for t in texts) == 2, texts
    assert any(f"{SLOW}: resumed and finished" in t for t in texts), texts
    for name in finished:
        assert (scales / name).read_bytes() == (tmp / "sequential" / SLOW / "scales" / name).read_bytes()
    sweep_cli("collect", "killed", cwd=tmp)
    got = leaderboard(tmp / "killed" / "leaderboard.csv")
    assert got[SAME].equals(expected), f"{got[SAME]}\n!=\n{expected}"
    print(f"\nSlurm sweep test: {time.monotonic() - started:.1f} s wall", file=sys.stderr)
