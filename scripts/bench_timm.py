"""PyTorch + timm forward throughput, the baseline for benches/encoders.rs.

Same models (random init, num_classes=0), batch 8, float32, CPU, as many
threads as torch uses by default; prints images/s per model.
"""

import sys
import time

import timm
import torch


def images_per_second(name: str, batch: int = 8, seconds: float = 10.0) -> float:
    model = timm.create_model(name, pretrained=False, num_classes=0).eval()
    x = torch.rand(batch, 3, 224, 224)
    with torch.inference_mode():
        model(x)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(x)
            done += batch
    return done / (time.perf_counter() - start)


if __name__ == "__main__":
    names = sys.argv[1:] or ["vit_tiny_patch16_224", "vit_base_patch16_224"]
    print(f"torch {torch.__version__}, timm {timm.__version__}, threads {torch.get_num_threads()}")
    for name in names:
        print(f"{name}: {images_per_second(name):.2f} images/s")
