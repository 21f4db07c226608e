"""Per-sample torch.normal baseline for synthetic-data generation (SPEC §1).

Measures how fast the published reference makes SynBench inputs: one sample
at a time, ``torch.normal(mean, 1.0)`` with mean = ±s·μ̂ + 0.5 over the whole
d = C·H·W = 150 528 image (μ̂ = 1/√d everywhere), then the per-channel
ImageNet normalisation (x − m_c)/σ_c that the reference applies per sample
through torchvision's ``Normalize`` (written out here, same arithmetic). The
labels are drawn first with ``torch.bernoulli``, the samples are stacked into
one tensor at the end, as the reference's dataset does.

It is the Python side of the "generation ≥ 20× a per-sample torch.normal loop
at d = 150 528" benchmark: the Rust side (synbench-data's batched, counter-
seeded generator, benches/) produces the same normalised float32 tensors.
Throughput is reported in samples/s and GiB/s of float32 output (4 bytes per
value).

    python scripts/bench_generation.py --samples 256 --repeats 5 --json out.json

The shared two-core machine this runs on swings by 2× from one 256-sample
pass to the next, so the pass is repeated and the median reported (with
every pass's rate), as the Rust side reports criterion's median.
"""

import argparse
import json
import math
import statistics
import sys
import time

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def generate_per_sample(n: int, scale: float, img_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's loop: one torch.normal call and one normalisation per sample."""
    d = 3 * img_size * img_size
    mu_hat = torch.ones(d) / math.sqrt(d)
    mean_pos = scale * mu_hat + 0.5
    mean_neg = -scale * mu_hat + 0.5
    ch_mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    ch_std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    labels = torch.bernoulli(torch.full((n,), 0.5), generator=generator)
    samples = []
    for i in range(n):
        mean = mean_pos if labels[i] == 1 else mean_neg
        x = torch.normal(mean, 1.0, generator=generator)
        samples.append(((x.view(3, img_size, img_size) - ch_mean) / ch_std).unsqueeze(0))
    return torch.cat(samples), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--scale", type=float, default=1.0, help="mean scale s")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=4, help="untimed samples first")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes; the median is reported")
    parser.add_argument("--json", default=None, help="write the results to this path")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(args.seed)
    if args.warmup > 0:
        generate_per_sample(args.warmup, args.scale, args.img_size, g)
    rates = []
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        x, _ = generate_per_sample(args.samples, args.scale, args.img_size, g)
        rates.append(args.samples / (time.perf_counter() - t0))
        del x

    d = 3 * args.img_size * args.img_size
    samples_per_s = statistics.median(rates)
    seconds = args.samples / samples_per_s
    gib_per_s = samples_per_s * d * 4 / 2**30
    passes = ", ".join(f"{r:.0f}" for r in rates)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}: {args.samples} samples of "
          f"[3, {args.img_size}, {args.img_size}] (d = {d}), median of {len(rates)} passes: "
          f"{samples_per_s:.1f} samples/s, {gib_per_s:.3f} GiB/s  (passes: {passes} samples/s)",
          file=sys.stderr)
    if args.json:
        out = {
            "implementation": "pytorch-per-sample",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "samples": args.samples,
            "dim": d,
            "img_size": args.img_size,
            "scale": args.scale,
            "seconds": seconds,
            "samples_per_s": samples_per_s,
            "samples_per_s_passes": rates,
            "gib_per_s": gib_per_s,
        }
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
