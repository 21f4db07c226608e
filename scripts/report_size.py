"""The size of report.html and the time to write it, for sweeps of N models.

One real run per protocol (linear-Gaussian features of width 64, scored by
the Python package), copied N times into a sweep folder under other names
(synthetic results: every model has the same scores, which changes nothing
of the page's size), then `synbench.report(DIR)` timed (median of 3).

    python scripts/report_size.py [--models 10,200] [--protocol small|paper] [--keep DIR]
"""

import argparse
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

import synbench
from synbench import _synbench

PROTOCOLS = {
    # The sweep tests' protocol: 6 scales, 2 ε, 3 thresholds.
    "small": dict(shape=(16,), scales=(0.5, 1.0, 1.5, 2.0, 2.5, 3.0), n_train=256, n_test=256, epsilons=(0.0, 0.2),
                  thresholds=(0.6, 0.7, 0.8)),
    # The paper's: 49 scales, 9 ε, 9 thresholds, 2048 + 2048 (smaller samples for speed; sizes do not depend on n).
    "paper": dict(shape=(16,), scales=tuple(round(0.1 * k, 1) for k in range(1, 50)), n_train=512, n_test=512,
                  epsilons=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8), thresholds=synbench.PAPER_THRESHOLDS),
}


def one_run(folder: pathlib.Path, protocol: dict) -> None:
    a = np.random.default_rng(0).standard_normal((16, 64)).astype(np.float32) / 4
    exp = synbench.Experiment(**protocol, model="template", output_dir=folder)
    exp.start(report=False)
    for batch in exp.batches():
        x = batch.inputs.reshape(len(batch), -1)
        noise = np.random.default_rng([batch.scale_index, batch.start]).standard_normal((len(batch), 64))
        exp.fold(batch, (x @ a + 0.3 * noise).astype(np.float32))
    exp.finish()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="10,200")
    parser.add_argument("--protocol", default="small", choices=sorted(PROTOCOLS))
    parser.add_argument("--keep", help="write the sweeps here and keep them")
    args = parser.parse_args()
    root = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="report-size-"))
    root.mkdir(parents=True, exist_ok=True)
    template = root / "template"
    if not (template / "results.json").is_file():
        one_run(template, PROTOCOLS[args.protocol])
    print(f"protocol {args.protocol}; | models | report.html | KiB per model | write (median of 3) |")
    for count in (int(n) for n in args.models.split(",")):
        sweep = root / f"sweep_{count}"
        shutil.rmtree(sweep, ignore_errors=True)
        sweep.mkdir()
        names = [f"model_{i:03d}" for i in range(count)]
        _synbench._write_sweep(str(sweep), "models.txt", "protocol.toml", 1, [(n, n, i + 1, 0) for i, n in enumerate(names)])
        for name in names:
            shutil.copytree(template, sweep / name)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            page = pathlib.Path(synbench.report(sweep))
            times.append(time.perf_counter() - start)
        size = page.stat().st_size
        print(f"| {count} | {size / 1024:.0f} KiB | {size / 1024 / count:.1f} | {statistics.median(times):.2f} s |")
    if not args.keep:
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
