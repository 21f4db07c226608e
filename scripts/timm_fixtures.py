"""Parity fixtures for synbench-models: small random-init timm ViTs.

Run through `cargo xtask fixtures timm` (which makes the venv). For each
fixture NAME it writes, into OUT_DIR:
  NAME.safetensors      the timm state dict (num_classes=0), as timm saves it
  NAME.io.safetensors   `input` [B, C, H, W] float32 and `output` [B, D] float32
                        (timm's forward in float32 on CPU, deterministic)
and for the token fixture also NAME.pth (torch.save of the state dict), to
test the PyTorch loader. With --vit-base DIR it also writes a random-init
vit_base_patch16_224 (not committed: 330 MB) with a batch of two images.
"""

import argparse
import json
import pathlib

import timm
import torch
from safetensors.torch import save_file

FIXTURES = {
    # name: timm VisionTransformer kwargs
    "vit_p8_d64_token": dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0),
    "vit_p8_d64_avg": dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0,
                           global_pool="avg"),
    "vit_p4_d48_h3_mlp2": dict(img_size=16, patch_size=4, embed_dim=48, depth=3, num_heads=3, mlp_ratio=2.0),
    # The options beyond the sizes (appended: the fixtures above keep their
    # seeds and bytes). A CLIP image tower: norm_pre, no patch bias, QuickGELU.
    "vit_clip_prenorm_quickgelu": dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0,
                                       pre_norm=True, act_layer="quick_gelu"),
    # DINOv2 with registers: patch 14, four register tokens, LayerScale, the
    # position embedding over the patches only.
    "vit_dinov2_reg4_ls": dict(img_size=28, patch_size=14, embed_dim=48, depth=2, num_heads=3, mlp_ratio=4.0,
                               reg_tokens=4, init_values=1e-5, no_embed_class=True),
    # No class token: average pooling over the patches, no qkv bias, the
    # final norm before pooling (fc_norm=False).
    "vit_avg_noclass_noqkvbias": dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0,
                                      class_token=False, global_pool="avg", qkv_bias=False, fc_norm=False),
    # Token pooling with the norm after pooling (fc_norm=True).
    "vit_token_fcnorm": dict(img_size=16, patch_size=4, embed_dim=48, depth=2, num_heads=3, mlp_ratio=2.0,
                             fc_norm=True),
    # DeiT distilled (timm's VisionTransformerDistilled; dist_token is not a
    # timm kwarg: it selects the class).
    "vit_deit_distilled": dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0,
                               dist_token=True),
    # SigLIP-style attention pooling, no class token.
    "vit_map_siglip": dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4.0,
                           class_token=False, global_pool="map"),
    # Made at one size, run at another (RUN_SIZE): timm resamples pos_embed.
    # Downsampling 4x4 -> 2x2 with the class position in pos_embed, and
    # upsampling 2x2 -> 3x3 with registers outside it (no_embed_class).
    "vit_dynamic_56to28": dict(img_size=56, patch_size=14, embed_dim=48, depth=2, num_heads=3, mlp_ratio=4.0,
                               init_values=1e-5, dynamic_img_size=True),
    "vit_dynamic_28to42": dict(img_size=28, patch_size=14, embed_dim=48, depth=2, num_heads=3, mlp_ratio=4.0,
                               reg_tokens=4, no_embed_class=True, dynamic_img_size=True),
}

# ResNets and ConvNeXts (timm classes; "block" names timm's block class).
# Small widths via channels/dims; every BatchNorm with non-trivial running
# statistics.
CNN_FIXTURES = {
    "resnet_basic_c8": ("resnet", dict(block="basic", layers=[1, 1, 1, 1], channels=[8, 16, 24, 32]), 32),
    "resnet_deep_basic": ("resnet", dict(block="basic", layers=[2, 1, 1, 1], channels=[8, 16, 24, 32],
                                         stem_type="deep", stem_width=8), 32),
    "resnext_tiered_bottleneck": ("resnet", dict(block="bottleneck", layers=[1, 1, 1, 1], channels=[8, 16, 16, 24],
                                                 stem_type="deep_tiered", stem_width=16, cardinality=2,
                                                 base_width=32), 32),
    "convnext_d8": ("convnext", dict(depths=[1, 1, 2, 1], dims=[8, 16, 24, 32]), 64),
    "convnext_convmlp_headfirst": ("convnext", dict(depths=[1, 1, 1, 1], dims=[8, 16, 24, 32], conv_mlp=True,
                                                    head_norm_first=True, ls_init_value=None), 64),
}


def cnn(family: str, kwargs: dict) -> torch.nn.Module:
    if family == "resnet":
        from timm.models.resnet import BasicBlock, Bottleneck, ResNet
        block = {"basic": BasicBlock, "bottleneck": Bottleneck}[kwargs["block"]]
        rest = {k: (tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items() if k != "block"}
        return ResNet(block=block, num_classes=0, **rest)
    from timm.models.convnext import ConvNeXt
    return ConvNeXt(num_classes=0, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in kwargs.items()})


def perturb_cnn_(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Norm scales (and LayerScale) near 1, biases random, BatchNorm running
    statistics away from (0, 1): every parameter and buffer matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and (name.endswith("weight") or name.endswith("gamma")):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=generator))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn(b.shape, generator=generator))
            elif name.endswith("running_var"):
                b.copy_(torch.exp(0.3 * torch.randn(b.shape, generator=generator)))


# Input size where it differs from the model's img_size.
RUN_SIZE = {"vit_dynamic_56to28": 28, "vit_dynamic_28to42": 42}


def perturb_(model: torch.nn.Module, generator: torch.Generator) -> None:
    """timm zero-initialises biases and sets norms to identity; give every
    parameter random values so the parity test exercises all of them."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            # LayerScale's gamma and the register tokens start at 1e-5 and
            # 1e-6: perturbed too (the first fixtures have neither).
            if name.endswith("bias") or "norm" in name or name.endswith("gamma") or name == "reg_token":
                p.add_(0.1 * torch.randn(p.shape, generator=generator))


def write(model: torch.nn.Module, x: torch.Tensor, out: pathlib.Path, name: str, pth: bool) -> dict:
    model.eval()
    with torch.no_grad():
        y = model(x)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / f"{name}.safetensors"))
    save_file({"input": x.contiguous(), "output": y.contiguous()}, str(out / f"{name}.io.safetensors"))
    if pth:
        torch.save(state, out / f"{name}.pth")
    return {"input": list(x.shape), "output": list(y.shape), "tensors": len(state)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=pathlib.Path)
    parser.add_argument("--vit-base", type=pathlib.Path, default=None)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    summary = {"torch": torch.__version__, "timm": timm.__version__, "fixtures": {}}
    for i, (name, kwargs) in enumerate(FIXTURES.items()):
        torch.manual_seed(1000 + i)
        g = torch.Generator().manual_seed(2000 + i)
        timm_kwargs = {k: v for k, v in kwargs.items() if k != "dist_token"}
        if kwargs.get("dist_token"):
            model = timm.models.deit.VisionTransformerDistilled(num_classes=0, **timm_kwargs)
        else:
            model = timm.models.vision_transformer.VisionTransformer(num_classes=0, **timm_kwargs)
        perturb_(model, g)
        size = RUN_SIZE.get(name, kwargs["img_size"])
        x = torch.randn(2, 3, size, size, generator=g)
        summary["fixtures"][name] = dict(kwargs=kwargs, **write(model, x, args.out_dir, name, pth=(i == 0)))
    summary["cnn_fixtures"] = {}
    for i, (name, (family, kwargs, size)) in enumerate(CNN_FIXTURES.items()):
        torch.manual_seed(3000 + i)
        g = torch.Generator().manual_seed(4000 + i)
        model = cnn(family, kwargs)
        perturb_cnn_(model, g)
        x = torch.randn(2, 3, size, size, generator=g)
        summary["cnn_fixtures"][name] = dict(family=family, kwargs=kwargs, **write(model, x, args.out_dir, name, pth=False))
    (args.out_dir / "fixtures.json").write_text(json.dumps(summary, indent=1) + "\n")
    if args.vit_base is not None:
        args.vit_base.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(7)
        model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0)
        perturb_(model, torch.Generator().manual_seed(8))
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(9))
        write(model, x, args.vit_base, "vit_base_patch16_224", pth=False)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
