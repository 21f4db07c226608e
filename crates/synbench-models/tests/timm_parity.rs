//! Parity with timm: small random-init timm ViTs (made by `cargo xtask
//! fixtures timm`, committed under tests/fixtures) loaded into the Burn ViT,
//! run on every backend compiled into this build, compared with timm's own
//! output. Plus: corrupt and mismatched checkpoints give errors, never panics.
//!
//! `SYNBENCH_VIT_BASE_DIR=DIR` (a folder written by `cargo xtask fixtures
//! timm --vit-base DIR`) also checks a full vit_base_patch16_224.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayView2};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};
use synbench_models::{
    Activation, Backend, ConvNextConfig, ConvNextEncoder, DeviceKind, Encoder, EncoderError, FLEX_SUB_BATCH,
    GlobalPool, Precision, ResNetBlock, ResNetConfig, ResNetEncoder, StemType, VitConfig, VitEncoder, VitOptions,
};

/// Largest allowed |Burn − timm| on any feature.
const TOLERANCE: f32 = 1e-4;

/// Fixtures of the timm ViT options beyond the sizes.
const OPTION_FIXTURES: [&str; 8] = [
    "vit_clip_prenorm_quickgelu",
    "vit_dinov2_reg4_ls",
    "vit_avg_noclass_noqkvbias",
    "vit_token_fcnorm",
    "vit_deit_distilled",
    "vit_map_siglip",
    "vit_dynamic_56to28",
    "vit_dynamic_28to42",
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn config_of(name: &str) -> VitConfig {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("fixtures.json")).unwrap()).unwrap();
    let k = &summary["fixtures"][name]["kwargs"];
    let get = |key: &str| k[key].as_u64().unwrap() as usize;
    // A dynamic_img_size fixture runs at its input's size.
    let img_size = summary["fixtures"][name]["input"][2].as_u64().unwrap() as usize;
    VitConfig {
        img_size,
        patch_size: get("patch_size"),
        in_chans: 3,
        embed_dim: get("embed_dim"),
        depth: get("depth"),
        num_heads: get("num_heads"),
        mlp_ratio: k["mlp_ratio"].as_f64().unwrap(),
        global_pool: match k["global_pool"].as_str() {
            None | Some("token") => GlobalPool::Token,
            Some("avg") => GlobalPool::Avg,
            Some("map") => GlobalPool::Map,
            Some(other) => panic!("fixture global_pool {other:?}"),
        },
        options: options_of(k),
    }
}

/// The `VitOptions` of a fixture's timm kwargs (absent: timm's default).
fn options_of(k: &serde_json::Value) -> VitOptions {
    let default = VitOptions::default();
    let flag = |key: &str, default: bool| k[key].as_bool().unwrap_or(default);
    VitOptions {
        class_token: flag("class_token", default.class_token),
        reg_tokens: k["reg_tokens"].as_u64().map_or(default.reg_tokens, |n| n as usize),
        no_embed_class: flag("no_embed_class", default.no_embed_class),
        pre_norm: flag("pre_norm", default.pre_norm),
        fc_norm: k["fc_norm"].as_bool(),
        init_values: k["init_values"].as_f64(),
        qkv_bias: flag("qkv_bias", default.qkv_bias),
        act_layer: match k["act_layer"].as_str() {
            None | Some("gelu") => Activation::Gelu,
            Some("quick_gelu") => Activation::QuickGelu,
            Some(other) => panic!("fixture act_layer {other:?}"),
        },
        dist_token: flag("dist_token", default.dist_token),
        dynamic_img_size: flag("dynamic_img_size", default.dynamic_img_size),
        norm_eps: default.norm_eps,
    }
}

fn read_f32(bytes: &[u8], tensor: &str) -> (Vec<usize>, Vec<f32>) {
    let st = SafeTensors::deserialize(bytes).unwrap();
    let view = st.tensor(tensor).unwrap();
    assert_eq!(view.dtype(), Dtype::F32);
    let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (view.shape().to_vec(), values)
}

/// Input `[B, d]` flattened and timm's output `[B, D]`.
fn io_of(dir: &Path, name: &str) -> (Array2<f32>, Array2<f32>) {
    let bytes = std::fs::read(dir.join(format!("{name}.io.safetensors"))).unwrap();
    let (shape, input) = read_f32(&bytes, "input");
    let width = shape[1..].iter().product();
    let (out_shape, output) = read_f32(&bytes, "output");
    (
        Array2::from_shape_vec((shape[0], width), input).unwrap(),
        Array2::from_shape_vec((out_shape[0], out_shape[1]), output).unwrap(),
    )
}

fn max_abs_diff(a: ArrayView2<f32>, b: ArrayView2<f32>) -> f32 {
    assert_eq!(a.dim(), b.dim());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Loads `weights` into `config` on `backend` and compares with timm's output.
fn check(name: &str, config: VitConfig, weights: &Path, io_dir: &Path, backend: Backend) -> f32 {
    let mut encoder = VitEncoder::new(name, config, Some(weights), backend, DeviceKind::Cpu, 0)
        .unwrap_or_else(|e| panic!("{name} on {backend}: {e}"));
    let (input, expected) = io_of(io_dir, name);
    let features = encoder.encode(input.view()).unwrap();
    let diff = max_abs_diff(features.view(), expected.view());
    // Relative to the features' scale as well (a fixture with small
    // features must not pass on the absolute bound alone).
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    eprintln!(
        "{name} [{backend}] ({}): max |Burn - timm| = {diff:.2e}, / max |timm| = {:.2e}",
        weights.display(),
        diff / scale
    );
    assert!(diff <= TOLERANCE, "{name} on {backend}: max abs difference {diff} > {TOLERANCE}");
    assert!(diff <= TOLERANCE * scale, "{name} on {backend}: max abs difference {diff} > {TOLERANCE} × {scale}");
    diff
}

#[test]
fn burn_vit_matches_timm_on_every_fixture_and_backend() {
    for backend in Backend::compiled().into_iter().filter(|b| *b != Backend::Cuda) {
        for name in ["vit_p8_d64_token", "vit_p8_d64_avg", "vit_p4_d48_h3_mlp2"].into_iter().chain(OPTION_FIXTURES) {
            let weights = fixtures().join(format!("{name}.safetensors"));
            check(name, config_of(name), &weights, &fixtures(), backend);
        }
        // The same weights as a PyTorch state dict.
        let pth = fixtures().join("vit_p8_d64_token.pth");
        check("vit_p8_d64_token", config_of("vit_p8_d64_token"), &pth, &fixtures(), backend);
    }
}

#[test]
fn batches_cut_into_parallel_sub_batches_keep_order_and_values() {
    // 2·FLEX_SUB_BATCH + 1 rows (three sub-batches, the last one short):
    // timm's two fixture images repeated, so every row has a timm answer.
    let name = "vit_p8_d64_token";
    let (input, expected) = io_of(&fixtures(), name);
    let rows = 2 * FLEX_SUB_BATCH + 1;
    let pick: Vec<usize> = (0..rows).map(|i| (i * 7 + i / 3) % 2).collect();
    let tiled_input = input.select(ndarray::Axis(0), &pick);
    let tiled_expected = expected.select(ndarray::Axis(0), &pick);
    for backend in Backend::compiled().into_iter().filter(|b| *b != Backend::Cuda) {
        let weights = fixtures().join(format!("{name}.safetensors"));
        let mut encoder = VitEncoder::new(name, config_of(name), Some(&weights), backend, DeviceKind::Cpu, 0).unwrap();
        let features = encoder.encode(tiled_input.view()).unwrap();
        let diff = max_abs_diff(features.view(), tiled_expected.view());
        assert!(diff <= TOLERANCE, "{backend}: {rows} rows, max |Burn - timm| = {diff}");
    }
}

#[test]
fn reduced_precision_tracks_timm_to_its_unit_roundoff() {
    // Features relative to their largest magnitude. A depth-2/3 ViT does a
    // few dozen roundings in sequence, so allow 8 unit roundoffs (bf16:
    // 2^-8, f16: 2^-11), and require at least a tenth of one: the model
    // really computed in the reduced type.
    for backend in Backend::compiled().into_iter().filter(|b| *b != Backend::Cuda) {
        for name in ["vit_p8_d64_token", "vit_p4_d48_h3_mlp2"] {
            let (input, expected) = io_of(&fixtures(), name);
            let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
            let weights = fixtures().join(format!("{name}.safetensors"));
            for (precision, unit_roundoff) in [(Precision::Bf16, 2f32.powi(-8)), (Precision::F16, 2f32.powi(-11))] {
                let encoder = VitEncoder::new(name, config_of(name), Some(&weights), backend, DeviceKind::Cpu, 0);
                let mut encoder = encoder.and_then(|e| e.with_precision(precision)).unwrap();
                assert_eq!(encoder.precision(), precision);
                assert!(encoder.describe().contains(&format!(" in {precision}")), "{}", encoder.describe());
                let relative = max_abs_diff(encoder.encode(input.view()).unwrap().view(), expected.view()) / scale;
                eprintln!("{name} [{backend}, {precision}]: max |Burn - timm| / max |timm| = {relative:.2e}");
                assert!(relative <= 8.0 * unit_roundoff, "{name} on {backend} in {precision}: {relative:.2e}");
                assert!(relative >= 0.1 * unit_roundoff, "{name} on {backend} in {precision}: {relative:.2e}");
            }
        }
    }
}

#[test]
fn full_vit_base_matches_timm_when_provided() {
    let Some(dir) = std::env::var_os("SYNBENCH_VIT_BASE_DIR").map(PathBuf::from) else {
        eprintln!("SYNBENCH_VIT_BASE_DIR not set: skipping the vit_base_patch16_224 check");
        return;
    };
    let name = "vit_base_patch16_224";
    for backend in Backend::compiled().into_iter().filter(|b| *b != Backend::Cuda) {
        check(name, VitConfig::preset(name).unwrap(), &dir.join(format!("{name}.safetensors")), &dir, backend);
    }
}

// ------------------------------------------------------------------ bad checkpoints

fn load_error(config: VitConfig, path: &Path) -> EncoderError {
    VitEncoder::new("bad", config, Some(path), Backend::Flex, DeviceKind::Cpu, 0).unwrap_err()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("synbench-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Rewrites the token fixture with `edit` applied to its tensor list.
fn edited_checkpoint(file: &str, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) -> PathBuf {
    edited_checkpoint_of("vit_p8_d64_token", file, edit)
}

/// A fixture's checkpoint with `edit` applied (new tensors are float32).
fn edited_checkpoint_of(
    fixture: &str,
    file: &str,
    edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>),
) -> PathBuf {
    let bytes = std::fs::read(fixtures().join(format!("{fixture}.safetensors"))).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let dtypes: std::collections::HashMap<String, Dtype> =
        st.tensors().into_iter().map(|(n, v)| (n, v.dtype())).collect();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> =
        st.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec())).collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, shape, data)| {
            let dtype = dtypes.get(n).copied().unwrap_or(Dtype::F32);
            (n.clone(), TensorView::new(dtype, shape.clone(), data).unwrap())
        })
        .collect();
    let path = scratch(file);
    safetensors::serialize_to_file(views, None, &path).unwrap();
    path
}

#[test]
fn truncated_file_is_a_clear_error() {
    let bytes = std::fs::read(fixtures().join("vit_p8_d64_token.safetensors")).unwrap();
    let path = scratch("truncated.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(config_of("vit_p8_d64_token"), &path).to_string();
    assert!(err.contains("truncated.safetensors") && err.contains("not a readable safetensors file"), "{err}");
    std::fs::write(scratch("garbage.pth"), b"not a pickle").unwrap();
    let err = load_error(config_of("vit_p8_d64_token"), &scratch("garbage.pth")).to_string();
    assert!(err.contains("not a readable PyTorch checkpoint"), "{err}");
}

#[test]
fn missing_unexpected_and_misshaped_tensors_are_all_named() {
    let path = edited_checkpoint("edited.safetensors", |t| {
        t.retain(|(n, _, _)| n != "blocks.1.mlp.fc2.bias");
        t.push(("dist_token".into(), vec![1, 1, 64], vec![0; 64 * 4]));
    });
    let err = load_error(config_of("vit_p8_d64_token"), &path);
    let msg = err.to_string();
    assert!(matches!(err, EncoderError::WeightsMismatch { .. }), "{msg}");
    assert!(msg.contains("missing tensor `blocks.1.mlp.fc2.bias`"), "{msg}");
    assert!(msg.contains("unexpected tensor `dist_token`"), "{msg}");

    // A 64-wide checkpoint into a 48-wide model: every tensor is mis-shaped.
    let mut narrow = config_of("vit_p8_d64_token");
    narrow.embed_dim = 48;
    narrow.num_heads = 3;
    let msg = load_error(narrow, &fixtures().join("vit_p8_d64_token.safetensors")).to_string();
    assert!(msg.contains("pos_embed") && msg.to_lowercase().contains("shape"), "{msg}");
}

#[test]
fn missing_file_and_unknown_format_are_clear_errors() {
    let msg = load_error(config_of("vit_p8_d64_token"), Path::new("/nonexistent/w.safetensors")).to_string();
    assert!(msg.contains("/nonexistent/w.safetensors") && msg.contains("no such file"), "{msg}");
    std::fs::write(scratch("weights.onnx"), b"x").unwrap();
    let msg = load_error(config_of("vit_p8_d64_token"), &scratch("weights.onnx")).to_string();
    assert!(msg.contains("expected a .safetensors file"), "{msg}");
}

#[test]
fn image_size_that_does_not_match_the_checkpoint_is_named() {
    let mut config = config_of("vit_p8_d64_token");
    config.img_size = 48; // 36 patches instead of 16
    let msg = load_error(config.clone(), &fixtures().join("vit_p8_d64_token.safetensors")).to_string();
    assert!(msg.contains("pos_embed"), "{msg}");
    assert!(msg.contains("dynamic_img_size = true"), "the error says how to load it: {msg}");
    // With it, the 4×4 position embedding is resampled to 6×6 and loads.
    config.options.dynamic_img_size = true;
    let weights = fixtures().join("vit_p8_d64_token.safetensors");
    let mut encoder = VitEncoder::new("resampled", config, Some(&weights), Backend::Flex, DeviceKind::Cpu, 0).unwrap();
    let features = encoder.encode(Array2::zeros((1, 3 * 48 * 48)).view()).unwrap();
    assert_eq!(features.dim(), (1, 64));
}

#[test]
fn option_tensors_are_named_by_timm_when_missing_or_unexpected() {
    // A DINOv2-reg4 checkpoint into a plain ViT of its sizes: the register
    // tokens and LayerScale are unexpected, the class position mis-shaped.
    let reg4 = fixtures().join("vit_dinov2_reg4_ls.safetensors");
    let mut plain = config_of("vit_dinov2_reg4_ls");
    plain.options = VitOptions::default();
    let msg = load_error(plain, &reg4).to_string();
    for needle in ["unexpected tensor `reg_token`", "unexpected tensor `blocks.1.ls2.gamma`", "pos_embed"] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    // A plain checkpoint into a model with those options: the same tensors missing.
    let mut with_options = config_of("vit_p8_d64_token");
    with_options.options.init_values = Some(1e-5);
    with_options.options.pre_norm = true;
    with_options.global_pool = GlobalPool::Map;
    let msg = load_error(with_options, &fixtures().join("vit_p8_d64_token.safetensors")).to_string();
    for needle in [
        "missing tensor `blocks.0.ls1.gamma`",
        "missing tensor `norm_pre.weight`",
        "missing tensor `attn_pool.latent`",
        "missing tensor `attn_pool.kv.weight`",
        "unexpected tensor `patch_embed.proj.bias`",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
}

/// A ResNet or ConvNeXt fixture's config, from its timm kwargs.
enum Cnn {
    ResNet(ResNetConfig),
    ConvNext(ConvNextConfig),
}

fn cnn_config_of(name: &str) -> Cnn {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("fixtures.json")).unwrap()).unwrap();
    let f = &summary["cnn_fixtures"][name];
    let k = &f["kwargs"];
    let list = |key: &str| k[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect::<Vec<_>>();
    let size = |key: &str, default: usize| k[key].as_u64().map_or(default, |v| v as usize);
    match f["family"].as_str().unwrap() {
        "resnet" => Cnn::ResNet(ResNetConfig {
            block: if k["block"] == "bottleneck" { ResNetBlock::Bottleneck } else { ResNetBlock::Basic },
            layers: list("layers"),
            channels: list("channels"),
            stem_width: size("stem_width", 64),
            stem_type: match k["stem_type"].as_str() {
                None | Some("") => StemType::Default,
                Some("deep") => StemType::Deep,
                Some("deep_tiered") => StemType::DeepTiered,
                Some(other) => panic!("stem_type {other:?}"),
            },
            cardinality: size("cardinality", 1),
            base_width: size("base_width", 64),
            ..ResNetConfig::default()
        }),
        _ => Cnn::ConvNext(ConvNextConfig {
            depths: list("depths"),
            dims: list("dims"),
            ls_init_value: if k.get("ls_init_value").is_some() { k["ls_init_value"].as_f64() } else { Some(1e-6) },
            conv_mlp: k["conv_mlp"].as_bool().unwrap_or(false),
            head_norm_first: k["head_norm_first"].as_bool().unwrap_or(false),
            ..ConvNextConfig::default()
        }),
    }
}

const CNN_FIXTURES: [&str; 5] =
    ["resnet_basic_c8", "resnet_deep_basic", "resnext_tiered_bottleneck", "convnext_d8", "convnext_convmlp_headfirst"];

fn cnn_encoder(
    name: &str,
    weights: &Path,
    backend: Backend,
    shape: &[usize],
) -> Result<Box<dyn Encoder>, EncoderError> {
    Ok(match cnn_config_of(name) {
        Cnn::ResNet(c) => {
            Box::new(ResNetEncoder::new(name, c, Some(weights), backend, DeviceKind::Cpu, 0)?.with_input_shape(shape)?)
        }
        Cnn::ConvNext(c) => Box::new(
            ConvNextEncoder::new(name, c, Some(weights), backend, DeviceKind::Cpu, 0)?.with_input_shape(shape)?,
        ),
    })
}

#[test]
fn burn_resnet_and_convnext_match_timm_on_every_fixture_and_backend() {
    for backend in Backend::compiled().into_iter().filter(|b| *b != Backend::Cuda) {
        for name in CNN_FIXTURES {
            let weights = fixtures().join(format!("{name}.safetensors"));
            let bytes = std::fs::read(fixtures().join(format!("{name}.io.safetensors"))).unwrap();
            let (shape, _) = read_f32(&bytes, "input");
            let mut encoder =
                cnn_encoder(name, &weights, backend, &shape[1..]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let (input, expected) = io_of(&fixtures(), name);
            let features = encoder.encode(input.view()).unwrap();
            let diff = max_abs_diff(features.view(), expected.view());
            let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
            eprintln!("{name} [{backend}]: max |Burn - timm| = {diff:.2e}, / max |timm| = {:.2e}", diff / scale);
            assert!(diff <= TOLERANCE * scale, "{name} on {backend}: max abs difference {diff} (scale {scale})");
        }
    }
}

#[test]
fn cnn_load_errors_name_timm_tensors() {
    // A ResNet checkpoint missing a BatchNorm statistic and a shortcut conv,
    // with an extra tensor: each named by its timm key.
    let path = edited_checkpoint_of("resnet_basic_c8", "resnet_edited.safetensors", |t| {
        t.retain(|(n, _, _)| n != "layer2.0.bn1.running_var" && n != "layer3.0.downsample.0.weight");
        t.push(("layer5.0.conv1.weight".into(), vec![1], vec![0; 4]));
    });
    let Cnn::ResNet(config) = cnn_config_of("resnet_basic_c8") else { unreachable!() };
    let msg = ResNetEncoder::new("r", config.clone(), Some(&path), Backend::Flex, DeviceKind::Cpu, 0)
        .unwrap_err()
        .to_string();
    for needle in [
        "missing tensor `layer2.0.bn1.running_var`",
        "missing tensor `layer3.0.downsample.0.weight`",
        "unexpected tensor `layer5.0.conv1.weight`",
    ] {
        assert!(msg.contains(needle), "{needle:?} not in {msg}");
    }
    assert!(!msg.contains("num_batches_tracked"), "BatchNorm counters are not parameters: {msg}");
    // A deep-stem checkpoint into the default stem: timm's Sequential names.
    let deep = fixtures().join("resnet_deep_basic.safetensors");
    let msg = ResNetEncoder::new("r", config, Some(&deep), Backend::Flex, DeviceKind::Cpu, 0).unwrap_err().to_string();
    assert!(msg.contains("unexpected tensor `conv1.3.weight`") && msg.contains("conv1.weight"), "{msg}");
    // A deep-stem checkpoint missing its first conv: named as timm names it
    // in that stem (`conv1.0.weight`, not the default stem's `conv1.weight`).
    let path = edited_checkpoint_of("resnet_deep_basic", "resnet_deep_edited.safetensors", |t| {
        t.retain(|(n, _, _)| n != "conv1.0.weight");
    });
    let Cnn::ResNet(deep_config) = cnn_config_of("resnet_deep_basic") else { unreachable!() };
    let msg =
        ResNetEncoder::new("r", deep_config, Some(&path), Backend::Flex, DeviceKind::Cpu, 0).unwrap_err().to_string();
    assert!(msg.contains("missing tensor `conv1.0.weight`"), "{msg}");
    // ConvNeXt without LayerScale given one with it: the block gammas, by name.
    let Cnn::ConvNext(mut convnext) = cnn_config_of("convnext_d8") else { unreachable!() };
    convnext.ls_init_value = None;
    let path = fixtures().join("convnext_d8.safetensors");
    let msg =
        ConvNextEncoder::new("c", convnext, Some(&path), Backend::Flex, DeviceKind::Cpu, 0).unwrap_err().to_string();
    assert!(msg.contains("unexpected tensor `stages.2.blocks.1.gamma`"), "{msg}");
    let Cnn::ConvNext(mut convnext) = cnn_config_of("convnext_d8") else { unreachable!() };
    convnext.dims[3] = 40;
    let msg =
        ConvNextEncoder::new("c", convnext, Some(&path), Backend::Flex, DeviceKind::Cpu, 0).unwrap_err().to_string();
    assert!(msg.contains("stages.3.downsample.1.weight") && msg.contains("head.norm.weight"), "{msg}");
}
