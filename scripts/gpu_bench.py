#!/usr/bin/env python3
"""Does the GPU wait? SynBench's paper protocol on a CUDA GPU, per model and
precision: the encoder's own throughput, the whole `synbench.evaluate`
run's wall against the encoder's own time T, and the GPU's utilisation.

Needs PyTorch with CUDA, timm and the `synbench` wheel (no Rust on the GPU
host: build the wheel elsewhere with `pip wheel ./crates/synbench-py` and
carry it). One command:

    python scripts/gpu_bench.py                      # ViT-B/16 and ViT-L/16, f32, tf32, bf16
    python scripts/gpu_bench.py --quick --device cpu # a smoke test of the script itself

Per (model, precision):
* ``encoder_images_per_s``: forward passes alone on device-resident inputs
  (after warm-up, synchronised), batch ``--batch-size``;
* ``encoder_seconds`` T: the protocol's images at that rate;
* ``run_seconds``: the whole `synbench.evaluate` (generation, feeding,
  folding, per-scale probe work, scoring), and ``run_over_encoder`` = wall / T;
* ``gpu_utilisation``: the mean of `nvidia-smi` samples every 0.5 s during
  the run (null where `nvidia-smi` is missing).

Prints a Markdown table and writes ``--json`` (default gpu_bench.json).
Models are at random init unless ``--pretrained`` (hub access or a cache).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time


def utilisation_sampler(stop: threading.Event, samples: list) -> None:
    query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"]
    while not stop.is_set():
        try:
            out = subprocess.run(query, capture_output=True, text=True, timeout=5)
            samples.append(float(out.stdout.strip().splitlines()[0]))
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return
        stop.wait(0.5)


def encoder_rate(torch, model, device, dtype, tf32, batch, img, batches, channels_last):
    inputs = torch.randn(batch, 3, img, img, device=device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    matmul = torch.backends.cuda.matmul
    saved = matmul.fp32_precision
    if tf32:
        matmul.fp32_precision = "tf32"
    try:
        with torch.inference_mode():
            autocast = torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None)
            with autocast:
                for _ in range(3):
                    model(inputs)
                sync(torch, device)
                start = time.perf_counter()
                for _ in range(batches):
                    model(inputs)
                sync(torch, device)
        return batch * batches / (time.perf_counter() - start)
    finally:
        matmul.fp32_precision = saved


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="vit_base_patch16_224,vit_large_patch16_224")
    parser.add_argument("--dtypes", default="f32,tf32,bf16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--scales", type=int, default=49, help="scales of the paper grid 0.1, 0.2, … (49: all)")
    parser.add_argument("--n", type=int, default=2048, help="train and test samples per scale")
    parser.add_argument("--pretrained", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--quick", action="store_true", help="ViT-Ti at 64 px, 2 scales of 64 + 64: the script itself")
    parser.add_argument("--json", default="gpu_bench.json")
    args = parser.parse_args()

    import timm
    import torch

    import synbench

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device (use --device cpu --quick to check the script)", file=sys.stderr)
        return 2
    img, models = 224, args.models.split(",")
    if args.quick:
        img, models, args.scales, args.n, args.batch_size = 64, ["vit_tiny_patch16_224"], 2, 64, 32
    dtypes = {"f32": (None, False), "tf32": (None, True), "bf16": (torch.bfloat16, False)}
    scales = synbench.PAPER_SCALES[: args.scales]
    images = len(scales) * 2 * args.n
    gpu_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    rows = []
    for name in models:
        kwargs = {} if img == 224 else {"img_size": img}
        model = timm.create_model(name, pretrained=args.pretrained, num_classes=0, **kwargs).to(device).eval()
        if args.channels_last:
            model = model.to(memory_format=torch.channels_last)
        for label in args.dtypes.split(","):
            dtype, tf32 = dtypes[label]
            batches = 4 if args.quick else 30
            rate = encoder_rate(torch, model, device, dtype, tf32, args.batch_size, img, batches, args.channels_last)
            samples: list = []
            stop = threading.Event()
            sampler = None
            if device.type == "cuda" and shutil.which("nvidia-smi"):
                sampler = threading.Thread(target=utilisation_sampler, args=(stop, samples), daemon=True)
                sampler.start()
            start = time.perf_counter()
            result = synbench.evaluate(
                model, device=device, batch_size=args.batch_size, dtype="tf32" if tf32 else dtype,
                channels_last=args.channels_last, progress=False, shape=(3, img, img), scales=scales,
                n_train=args.n, n_test=args.n, epsilons=(0.0, 0.2), model=name,
            )
            wall = time.perf_counter() - start
            stop.set()
            if sampler is not None:
                sampler.join()
            encoder_seconds = images / rate
            rows.append({
                "model": name, "precision": label, "device": gpu_name, "images": images,
                "encoder_images_per_s": rate, "encoder_seconds": encoder_seconds, "run_seconds": wall,
                "run_over_encoder": wall / encoder_seconds, "run_images_per_s": images / wall,
                "gpu_utilisation": sum(samples) / len(samples) if samples else None,
                "score_t07_eps0": result.score(0.0, 0.7),
            })
            print(json.dumps(rows[-1]), flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump({"device": gpu_name, "torch": torch.__version__, "rows": rows}, f, indent=2)
    print(f"\n{gpu_name}, torch {torch.__version__}, {len(scales)} scales × ({args.n} + {args.n}), batch {args.batch_size}\n")
    print("| model | precision | encoder img/s | T (s) | run (s) | run / T | run img/s | GPU util % |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        util = "–" if r["gpu_utilisation"] is None else f"{r['gpu_utilisation']:.0f}"
        print(
            f"| {r['model']} | {r['precision']} | {r['encoder_images_per_s']:.0f} | {r['encoder_seconds']:.1f} | "
            f"{r['run_seconds']:.1f} | {r['run_over_encoder']:.3f} | {r['run_images_per_s']:.0f} | {util} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
