"""Compute nodes without internet: ``--prefetch`` and ``HF_HUB_OFFLINE=1``
against a Hugging Face cache laid out by the test itself in the hub's
documented format (``models--ORG--NAME/{refs/main, blobs/SHA256,
snapshots/COMMIT/FILE → ../../blobs/SHA256}``), holding random-init timm
weights saved as the hub stores them. The network is unreachable here, so
every load below comes from that cache or fails."""

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
from safetensors.torch import save_file  # noqa: E402

REPO = "timm/resnet18.a1_in1k"  # timm's default tag of resnet18
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def lay_out_cache(hub: pathlib.Path, repo: str) -> dict:
    torch.manual_seed(7)
    model = timm.create_model("resnet18", pretrained=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    folder = hub / ("models--" + repo.replace("/", "--"))
    staging = folder / "staging.safetensors"
    folder.mkdir(parents=True)
    save_file(state, str(staging))
    digest = hashlib.sha256(staging.read_bytes()).hexdigest()
    (folder / "blobs").mkdir()
    staging.rename(folder / "blobs" / digest)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    snapshot = folder / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(pathlib.Path("..") / ".." / "blobs" / digest)
    return state


def offline_env(home: pathlib.Path) -> dict:
    env = dict(os.environ, HF_HOME=str(home), HF_HUB_OFFLINE="1")
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        env.pop(var, None)
    return env


def python(args, env, cwd):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd)


PROTOCOL = """\
[data]
shape = [3, 32, 32]
scales = [1.0, 2.0]
n_train = 64
n_test = 64
seed = 3
normalize = "imagenet"
[probe]
epsilons = [0.0]
eigen_cutoff = "relative"
"""


def test_prefetch_and_offline_sweep_load_from_the_cache(tmp_path):
    home = tmp_path / "hf"
    saved = lay_out_cache(home / "hub", REPO)
    env = offline_env(home)
    (tmp_path / "models.txt").write_text("resnet18\n")
    (tmp_path / "protocol.toml").write_text(PROTOCOL)
    common = ["-m", "synbench", "sweep", "models.txt", "--config", "protocol.toml", "--output-dir", "out"]

    out = python([*common, "--prefetch"], env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "resnet18: in the cache" in out.stderr and str(home / "hub") in out.stderr
    assert not (tmp_path / "out").exists(), "--prefetch only fetches"

    # The weights built offline are the cached ones, tensor for tensor.
    check = (
        "import sys, torch; from synbench.sweep import ModelEntry, build_model, read_models; "
        "m = build_model(read_models('models.txt')[0], 'cpu', True); "
        "torch.save({k: v for k, v in m.state_dict().items()}, 'loaded.pt')"
    )
    out = python(["-c", check], env, tmp_path)
    assert out.returncode == 0, out.stderr
    loaded = torch.load(tmp_path / "loaded.pt")
    assert set(loaded) == {k for k in saved if not k.startswith("fc.")}, "the classifier is dropped (num_classes=0)"
    for name, tensor in loaded.items():
        assert torch.equal(tensor, saved[name]), name

    out = python(common, env, tmp_path)
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "out" / "resnet18" / "results.json").read_text())
    assert len(results["scales"]) == 2 and "random init" not in results["encoder"]


def test_an_uncached_model_offline_fails_with_one_line_saying_what_to_do(tmp_path):
    home = tmp_path / "hf"
    lay_out_cache(home / "hub", REPO)
    env = offline_env(home)
    (tmp_path / "models.txt").write_text("resnet18\nresnet34  # not in the cache\n")
    (tmp_path / "protocol.toml").write_text(PROTOCOL)
    common = ["-m", "synbench", "sweep", "models.txt", "--config", "protocol.toml", "--output-dir", "out"]

    out = python([*common, "--prefetch"], env, tmp_path)
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if "resnet34" in line]
    assert len(lines) == 1, out.stderr
    assert "not in the Hugging Face cache" in lines[0] and "HF_HUB_OFFLINE" in lines[0]
    assert "--prefetch" in lines[0], lines[0]
    assert "resnet18: in the cache" in out.stderr

    out = python(common, env, tmp_path)
    assert out.returncode == 1, out.stderr
    failures = json.loads((tmp_path / "out" / "failures.json").read_text())
    (failure,) = [f for f in failures["failures"] if f["model"] == "resnet34"]
    assert "not in the Hugging Face cache" in failure["error"] and "--prefetch" in failure["error"], failure
    assert (tmp_path / "out" / "resnet18" / "results.json").is_file(), "the cached model still runs"
