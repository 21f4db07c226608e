"""synbench.evaluate on PyTorch models: parity with the Burn ViT on the
committed timm checkpoint, and the families Burn does not port."""

import json

import numpy as np
import pytest

import synbench
from conftest import ROOT, run_cli, write_config

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

FIXTURES = ROOT / "crates" / "synbench-models" / "tests" / "fixtures"
PROTOCOL = dict(scales=(0.5, 1.0, 2.0, 3.0), n_train=256, n_test=256, epsilons=(0.0, 0.2), thresholds=(0.6, 0.7, 0.8))


def test_the_timm_fixture_through_torch_matches_the_burn_vit(tmp_path):
    from safetensors.torch import load_file
    from timm.models.vision_transformer import VisionTransformer

    kwargs = json.loads((FIXTURES / "fixtures.json").read_text())["fixtures"]["vit_p8_d64_token"]["kwargs"]
    config = write_config(
        tmp_path / "vit.toml",
        f"""
        [model]
        arch = "vit"
        img_size = 32
        patch_size = 8
        embed_dim = 64
        depth = 2
        num_heads = 4
        weights = "{FIXTURES / 'vit_p8_d64_token.safetensors'}"
        batch_size = 64
        [data]
        shape = [3, 32, 32]
        scales = [0.5, 1.0, 2.0, 3.0]
        n_train = 256
        n_test = 256
        [probe]
        epsilons = [0.0, 0.2]
        [score]
        thresholds = [0.6, 0.7, 0.8]
        [output]
        dir = "burn"
        """,
    )
    run_cli("run", config, "--quiet")
    model = VisionTransformer(**kwargs, num_classes=0)  # the fixture was saved without a head
    model.load_state_dict(load_file(str(FIXTURES / "vit_p8_d64_token.safetensors")))
    exp = synbench.Experiment.from_toml(config, output_dir=tmp_path / "torch")
    result = synbench.evaluate(model, experiment=exp, batch_size=64, progress=False)
    burn = json.loads((tmp_path / "burn" / "results.json").read_text())
    burn_accuracy = np.array([[r["accuracy"] for r in s["representation"]] for s in burn["scales"]])
    burn_scores = np.array([row["reference"] for row in burn["scores"]])
    burn_bound = np.array([[r["bound"] for r in s["representation"]] for s in burn["scales"]])
    # Burn and torch features agree to ~1e-6 relative (timm_parity.rs). A
    # test sample changes class only if its margin is that close to 0: at
    # most one of 256 per scale is allowed for another BLAS. The scaled
    # bounds are means of |margin| / mean margin, so they inherit the
    # features' relative error (measured here: 2.6e-6), and with the same
    # accuracies the scores — ratios of sums of bounds — do too (measured:
    # 3.1e-7); 1e-4 leaves room for another CPU's summation order.
    flips = np.max(np.abs(result.accuracy - burn_accuracy))
    assert flips <= 1 / 256
    if flips == 0:
        assert np.max(np.abs(result.bound - burn_bound) / burn_bound) <= 1e-4
        assert np.max(np.abs(result.scores - burn_scores)) <= 1e-4, (result.scores, burn_scores)
    else:  # one flipped sample moves that scale's step in the curve by 1/256
        assert np.max(np.abs(result.scores - burn_scores)) <= 2e-2, (result.scores, burn_scores)


def vit(img_size=32, **kwargs):
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=img_size, num_classes=0, embed_dim=64, depth=2, num_heads=2, **kwargs)


def calibrated_batchnorm(model):
    """A random-init EfficientNet's activations shrink through its depth under
    the default running statistics (features vary by ~1e-6: below the probe's
    eigenvalue cutoff, SPEC §3, so "no signal"). One train-mode pass with
    momentum 1 sets every BatchNorm's running statistics to those of random
    images, as a trained network's are to its data."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.randn(32, 3, 32, 32))
    return model.eval()


FAMILIES = {
    "resnet18": lambda: timm.create_model("resnet18", pretrained=False, num_classes=0),
    "convnext_atto": lambda: timm.create_model("convnext_atto", pretrained=False, num_classes=0),
    "efficientnet_b0": lambda: calibrated_batchnorm(timm.create_model("efficientnet_b0", pretrained=False, num_classes=0)),
    "deit_distilled": lambda: timm.models.deit.VisionTransformerDistilled(
        img_size=32, patch_size=8, num_classes=0, embed_dim=64, depth=2, num_heads=2
    ),
    # DINOv2-style: patch 14, LayerScale, register tokens. (timm's 1e-5
    # LayerScale init leaves a random-init class token input-independent to
    # within the probe's eigenvalue cutoff; trained DINOv2 scales are ~0.1-1.)
    "dinov2_style": lambda: vit(patch_size=14, img_size=28, init_values=0.1, reg_tokens=4, no_embed_class=True),
    # CLIP-style: pre-norm and QuickGELU.
    "clip_style": lambda: vit(patch_size=8, pre_norm=True, act_layer="quick_gelu"),
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_evaluate_scores_other_families_into_folders_synbench_table_reads(name, tmp_path):
    torch.manual_seed(0)
    model = FAMILIES[name]()
    size = 28 if name == "dinov2_style" else 32
    out = tmp_path / name
    result = synbench.evaluate(
        model, batch_size=64, progress=False, shape=(3, size, size), model=name, output_dir=out, **PROTOCOL
    )
    assert result.scores.shape == (2, 3) and np.all(np.isfinite(result.accuracy))
    assert np.all((result.accuracy >= 0.0) & (result.accuracy <= 1.0))
    table = run_cli("table", out)
    assert f"| {name} | 0 |" in table, table


def test_evaluate_in_bfloat16_runs_under_autocast_and_returns_float32_features():
    torch.manual_seed(0)
    model = vit(patch_size=8)
    full = synbench.evaluate(model, batch_size=64, progress=False, shape=(3, 32, 32), **PROTOCOL)
    half = synbench.evaluate(model, batch_size=64, progress=False, shape=(3, 32, 32), dtype=torch.bfloat16, **PROTOCOL)
    # bf16 keeps 8 mantissa bits: the probe sees slightly different features.
    assert np.max(np.abs(half.scores - full.scores)) < 0.1


def test_a_torchscript_module_scores_the_same_in_synbench_run_and_in_python(tmp_path):
    """`arch = "torchscript"` (the CLI's LibTorch through tch) and
    `synbench.evaluate` (PyTorch) on the same traced module: the same
    LibTorch computes the same features, so every number agrees exactly."""
    module = FIXTURES / "torchscript" / "resnet_basic_c16.pt"
    config = write_config(
        tmp_path / "ts.toml",
        f"""
        [model]
        arch = "torchscript"
        weights = "{module}"
        backend = "tch"
        batch_size = 64
        [data]
        shape = [3, 32, 32]
        scales = [0.5, 1.0, 2.0, 3.0]
        n_train = 256
        n_test = 256
        [probe]
        epsilons = [0.0, 0.2]
        [score]
        thresholds = [0.6, 0.7, 0.8]
        [output]
        dir = "cli"
        """,
    )
    run_cli("run", config, "--quiet")
    cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert cli["model"] == "resnet_basic_c16" and cli["plan"]["model"]["arch"] == "torchscript"
    assert cli["feature_dim"] == 64 and "TorchScript" in cli["encoder"]
    result = synbench.evaluate(
        torch.jit.load(str(module)), experiment=synbench.Experiment.from_toml(config, output_dir=tmp_path / "py"),
        batch_size=64, progress=False,
    )
    assert [row["reference"] for row in cli["scores"]] == result.scores.tolist()
    assert [[r["accuracy"] for r in s["representation"]] for s in cli["scales"]] == result.accuracy.tolist()
