"""Shared fixtures: the repository, the `synbench` binary built by cargo
(SYNBENCH_BIN overrides), and small configs written per test."""

import os
import pathlib
import subprocess
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def synbench_bin() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("SYNBENCH_BIN", ROOT / "target" / "debug" / "synbench"))
    if not path.is_file():
        pytest.fail(f"{path} is missing: build it with `cargo build -p synbench-cli` (cargo xtask test does)")
    return path


def run_cli(*args: str) -> str:
    out = subprocess.run([str(synbench_bin()), *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, f"synbench {' '.join(map(str, args))} failed:\n{out.stderr}"
    return out.stdout


def write_config(path: pathlib.Path, body: str) -> pathlib.Path:
    path.write_text(textwrap.dedent(body).lstrip())
    return path


@pytest.fixture
def root() -> pathlib.Path:
    return ROOT
