"""TorchScript fixtures for synbench-models' `arch = "torchscript"` (tch).

Run through `cargo xtask fixtures torchscript`. For each fixture NAME it
writes, into OUT_DIR:
  NAME.pt               torch.jit.trace (or torch.jit.script) of a small
                        random-init timm model with every parameter and
                        BatchNorm running statistic perturbed
  NAME.io.safetensors   `input` [B, C, H, W] float32 and `output` [B, D]
                        float32: PyTorch eager's forward on CPU
"""

import argparse
import json
import pathlib

import timm
import torch
from safetensors.torch import save_file

FIXTURES = {
    # name: (timm constructor, kwargs, how to compile)
    "resnet_basic_c16": ("resnet", dict(block="basic", layers=[1, 1, 1, 1], channels=[16, 32, 48, 64]), "trace"),
    "convnext_d24": ("convnext", dict(depths=(1, 1, 2, 1), dims=(16, 24, 32, 48)), "trace"),
    "resnet_scripted": ("resnet", dict(block="basic", layers=[1, 1, 1, 1], channels=[8, 16, 24, 32]), "script"),
}


def build(kind: str, kwargs: dict) -> torch.nn.Module:
    if kind == "resnet":
        from timm.models.resnet import BasicBlock, Bottleneck, ResNet

        block = {"basic": BasicBlock, "bottleneck": Bottleneck}[kwargs.pop("block")]
        return ResNet(block=block, num_classes=0, **kwargs)
    from timm.models.convnext import ConvNeXt

    return ConvNeXt(num_classes=0, **kwargs)


def perturb_(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Random values for biases and norms (timm zero-initialises or sets
    them to identity) and non-trivial BatchNorm running statistics."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name or "bn" in name or "gamma" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=generator))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(0.2 * torch.randn(module.running_mean.shape, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=pathlib.Path)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    summary = {"torch": torch.__version__, "timm": timm.__version__, "fixtures": {}}
    for i, (name, (kind, kwargs, how)) in enumerate(FIXTURES.items()):
        torch.manual_seed(3000 + i)
        g = torch.Generator().manual_seed(4000 + i)
        model = build(kind, dict(kwargs)).eval()
        perturb_(model, g)
        x = torch.randn(3, 3, 32, 32, generator=g)
        with torch.no_grad():
            y = model(x)
            compiled = torch.jit.trace(model, x[:1]) if how == "trace" else torch.jit.script(model)
        compiled.save(str(args.out_dir / f"{name}.pt"))
        save_file({"input": x.contiguous(), "output": y.contiguous()}, str(args.out_dir / f"{name}.io.safetensors"))
        summary["fixtures"][name] = dict(kind=kind, kwargs=kwargs, compiled=how, input=list(x.shape),
                                         output=list(y.shape))
    (args.out_dir / "fixtures.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
