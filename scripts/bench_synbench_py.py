"""The reduced protocol through the synbench Python package: timm's
ViT-Ti/16 at random init on torch CPU, driven by synbench.Experiment (the Rust
core generates, folds, fits and scores). The column `cargo xtask bench` adds
beside the CLI and the PyTorch pipeline.

Stages: encoding is timed here around model(x); generation, statistics,
probe and score come from the run's own results.json (synbench-experiment's
timers). The not-encoding share is (wall − encoding) / wall.

    python scripts/bench_synbench_py.py --json target/bench/synbench_py.json
"""

import argparse
import json
import resource
import tempfile
import time

import timm
import torch

import synbench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--scales", default="0.5,1.0,1.5,2.0,2.5,3.0,3.5,4.0")
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-test", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=args.img_size).eval()
    scales = [float(s) for s in args.scales.split(",")]
    out = tempfile.mkdtemp(prefix="synbench-py-bench-")
    wall = time.perf_counter()
    exp = synbench.Experiment(
        shape=(3, args.img_size, args.img_size), scales=scales, n_train=args.n_train, n_test=args.n_test,
        epsilons=(0.0, 0.2), model="vit_tiny_patch16_224", output_dir=out,
    )
    # Beside a CPU model the generator keeps to one thread of its own, as the CLI does.
    exp.start(args.batch, generator_threads=1)
    encoding, images = 0.0, 0
    with torch.inference_mode():
        for batch in exp.batches():
            clock = time.perf_counter()
            features = model(torch.from_numpy(batch.inputs))
            encoding += time.perf_counter() - clock
            images += len(batch)
            exp.fold(batch, features.numpy())
    result = exp.finish()
    wall = time.perf_counter() - wall
    stages = json.loads(result.results_json())["provenance"]["stage_seconds"]
    report = {
        "implementation": "synbench-py",
        "torch": torch.__version__,
        "timm": timm.__version__,
        "threads": args.threads,
        "wall_s": wall,
        "images": images,
        "images_per_s": images / encoding,
        "not_encoding_share": (wall - encoding) / wall,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "stages_s": {
            "generation": stages["generation"],
            "encoding": encoding,
            "statistics": stages["statistics"],
            "probe": stages["probe"],
            "score": stages["score"],
        },
        "scores": result.scores.tolist(),
    }
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
