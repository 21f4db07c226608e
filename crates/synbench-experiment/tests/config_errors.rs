//! Each bad config gets one clear error naming the file, the line and the field.

use std::path::Path;

use synbench_experiment::ConfigError;
use synbench_experiment::config::parse;

const GOOD: &str = r#"
[model]
arch = "vit"
img_size = 32
patch_size = 8
embed_dim = 64
depth = 2
num_heads = 4

[data]
shape = [3, 32, 32]
scales = [0.5, 1.0]
n_train = 64
n_test = 64
prior = 0.5

[probe]
epsilons = [0.0, 0.2]
"#;

fn check(edit: (&str, &str), field: &str, line: usize, needle: &str) {
    assert!(GOOD.contains(edit.0), "edit target {:?} not in the good config", edit.0);
    let text = GOOD.replace(edit.0, edit.1);
    let err: ConfigError = parse(Path::new("configs/bad.toml"), &text).expect_err("config must be rejected");
    let msg = err.to_string();
    assert_eq!(err.field, field, "{msg}");
    assert_eq!(err.line, Some(line), "{msg}");
    assert!(msg.starts_with(&format!("configs/bad.toml:{line}: `{field}`")), "{msg}");
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

#[test]
fn the_good_config_is_accepted() {
    let plan = parse(Path::new("configs/good.toml"), GOOD).unwrap();
    assert_eq!(plan.mixture.sample_shape(), [3, 32, 32]);
    assert_eq!(plan.probe.epsilons(), [0.0, 0.2]);
    assert_eq!(plan.output_dir.as_deref(), Some(Path::new("configs/results")));
    assert_eq!(plan.mixture.normalization(), &synbench_data::Normalization::imagenet(), "images default to ImageNet");
}

#[test]
fn unknown_field() {
    check(("depth = 2", "depth = 2\ndepht = 3"), "depht", 8, "unknown field `depht`");
}

#[test]
fn epsilon_of_one_or_more() {
    check(("epsilons = [0.0, 0.2]", "epsilons = [0.0, 1.0]"), "probe.epsilons", 18, "outside [0, 1)");
}

#[test]
fn prior_outside_zero_one() {
    check(("prior = 0.5", "prior = 1.5"), "data.prior", 15, "outside (0, 1)");
}

#[test]
fn missing_weights_file() {
    check(("num_heads = 4", "num_heads = 4\nweights = \"nope.safetensors\""), "model.weights", 9, "no such file");
}

#[test]
fn image_size_that_does_not_fit_the_patches() {
    check(("img_size = 32", "img_size = 30"), "model.img_size", 4, "multiple of patch_size 8");
}

#[test]
fn shape_the_model_cannot_take() {
    check(("shape = [3, 32, 32]", "shape = [3, 64, 64]"), "data.shape", 11, "cannot feed a ViT with img_size 32");
}

#[test]
fn heads_that_do_not_split_the_width() {
    check(("num_heads = 4", "num_heads = 5"), "model.num_heads", 8, "divisible by num_heads 5");
}

#[test]
fn unknown_precision_and_generator() {
    check(("num_heads = 4", "num_heads = 4\nprecision = \"fp8\""), "model.precision", 9, "\"bf16\", \"f16\"");
    check(("prior = 0.5", "prior = 0.5\ngenerator = \"mt19937\""), "data.generator", 16, "\"chacha8_ziggurat\"");
}

#[test]
fn reduced_precision_for_an_encoder_without_one() {
    let identity = GOOD.replace("arch = \"vit\"", "arch = \"identity\"").replace("shape = [3, 32, 32]", "shape = [16]");
    let identity = identity.replace("num_heads = 4", "num_heads = 4\nprecision = \"bf16\"");
    let identity: String =
        identity.lines().filter(|l| !l.contains("_size") && !l.contains("depth")).collect::<Vec<_>>().join("\n");
    let err = parse(Path::new("configs/bad.toml"), &identity).expect_err("identity has no precision");
    assert_eq!(err.field, "model.precision", "{err}");
    assert!(err.to_string().contains("only arch \"vit\""), "{err}");
}

#[test]
fn precision_and_generator_default_and_parse() {
    let plan = parse(Path::new("configs/good.toml"), GOOD).unwrap();
    assert_eq!(plan.encoder.precision, synbench_models::Precision::F32);
    assert_eq!(plan.mixture.generator(), synbench_data::Generator::Xoshiro128BoxMuller);
    let text = GOOD
        .replace("num_heads = 4", "num_heads = 4\nprecision = \"bf16\"")
        .replace("prior = 0.5", "prior = 0.5\ngenerator = \"chacha8_ziggurat\"");
    let plan = parse(Path::new("configs/good.toml"), &text).unwrap();
    assert_eq!(plan.encoder.precision, synbench_models::Precision::Bf16);
    assert_eq!(plan.mixture.generator(), synbench_data::Generator::ChaCha8Ziggurat);
}

#[test]
fn unknown_backend_and_norm() {
    check(("num_heads = 4", "num_heads = 4\nbackend = \"torch\""), "model.backend", 9, "expected one of \"flex\"");
    check(("epsilons = [0.0, 0.2]", "epsilons = [0.0]\nnorm = \"l3\""), "probe.norm", 19, "\"linf\"");
}

#[test]
fn eigen_cutoff_and_tolerance() {
    check(
        ("epsilons = [0.0, 0.2]", "epsilons = [0.0]\neigen_cutoff = \"rel\""),
        "probe.eigen_cutoff",
        19,
        "\"relative\"",
    );
    check(("epsilons = [0.0, 0.2]", "epsilons = [0.0]\neigen_tolerance = -1e-3"), "probe.eigen_tolerance", 19, ">= 0");
    let plan = parse(Path::new("configs/good.toml"), GOOD).unwrap();
    let default = synbench_experiment::ResolvedPlan::of(&plan);
    let text = GOOD
        .replace("epsilons = [0.0, 0.2]", "epsilons = [0.0, 0.2]\neigen_cutoff = \"relative\"\neigen_tolerance = 1e-9");
    let plan = parse(Path::new("configs/good.toml"), &text).unwrap();
    assert_eq!(plan.probe.eigen_cutoff(), synbench_probe::EigenCutoff::Relative);
    assert_eq!(plan.probe.eigenvalue_cutoff(), 1e-9);
    let relative = synbench_experiment::ResolvedPlan::of(&plan);
    assert_eq!((relative.probe.eigen_cutoff.as_str(), relative.probe.eigenvalue_cutoff), ("relative", 1e-9));
    // The default is absent from the plan's JSON, so plans that do not choose keep their hash.
    assert!(!serde_json::to_string(&default).unwrap().contains("eigen_cutoff"));
    assert!(serde_json::to_string(&relative).unwrap().contains("\"eigen_cutoff\":\"relative\""));
    assert_ne!(default.hash(), relative.hash());
}

#[test]
fn syntax_errors_have_a_line() {
    let err = parse(Path::new("x.toml"), "[model]\narch = \n").unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
}

#[test]
fn torchscript_needs_its_file_and_libtorch() {
    let module =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../synbench-models/tests/fixtures/torchscript/resnet_basic_c16.pt");
    let body = GOOD.split_once("[data]").unwrap().1;
    let with = |model: &str| format!("{model}\n[data]{body}");
    let good = with(&format!("[model]\narch = \"torchscript\"\nweights = \"{}\"\nbackend = \"tch\"", module.display()));
    let plan = parse(Path::new("configs/ts.toml"), &good).unwrap();
    assert_eq!(plan.model_name, "resnet_basic_c16", "named after the file");
    assert_eq!(plan.encoder.model.arch(), synbench_experiment::Arch::TorchScript);
    for (model, field, needle) in [
        ("[model]\narch = \"torchscript\"\nbackend = \"tch\"", "model.weights", "torchscript needs `weights`"),
        (
            "[model]\narch = \"torchscript\"\nweights = \"missing.pt\"\nbackend = \"tch\"",
            "model.weights",
            "torch.jit.trace or torch.jit.script",
        ),
        (
            &format!("[model]\narch = \"torchscript\"\nweights = \"{}\"", module.display()),
            "model.backend",
            "set backend = \"tch\"",
        ),
        (
            &format!(
                "[model]\narch = \"torchscript\"\nweights = \"{}\"\nbackend = \"tch\"\ndepth = 2",
                module.display()
            ),
            "model.depth",
            "carries its own architecture",
        ),
    ] {
        let err = parse(Path::new("configs/ts.toml"), &with(model)).expect_err(model);
        assert_eq!(err.field, field, "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn vit_options_parse_under_timm_names() {
    use synbench_experiment::config::ModelSpec;
    use synbench_models::{Activation, VitOptions};
    let text = GOOD.replace(
        "num_heads = 4",
        "num_heads = 4\nreg_tokens = 4\nno_embed_class = true\npre_norm = true\ninit_values = 1e-5\nqkv_bias = false\nact_layer = \"quick_gelu\"\nfc_norm = true",
    );
    let plan = parse(Path::new("configs/good.toml"), &text).unwrap();
    let ModelSpec::Vit { config, .. } = &plan.encoder.model else { panic!("not a ViT: {:?}", plan.encoder.model) };
    let expected = VitOptions {
        class_token: true,
        reg_tokens: 4,
        no_embed_class: true,
        pre_norm: true,
        fc_norm: Some(true),
        init_values: Some(1e-5),
        qkv_bias: false,
        act_layer: Activation::QuickGelu,
        dist_token: false,
        dynamic_img_size: false,
        norm_eps: 1e-6,
    };
    assert_eq!(config.options, expected);
    assert_eq!(config.num_prefix_tokens(), 5);
    assert_eq!(config.embed_len(), 16, "no_embed_class: the position embedding covers the 4×4 patches only");
}

#[test]
fn vit_option_errors_name_the_field() {
    check(
        ("num_heads = 4", "num_heads = 4\nclass_token = false"),
        "model.class_token",
        9,
        "global_pool = \"token\" pools the class token",
    );
    check(
        ("num_heads = 4", "num_heads = 4\nact_layer = \"relu\""),
        "model.act_layer",
        9,
        "expected one of \"gelu\", \"quick_gelu\"",
    );
    check(("num_heads = 4", "num_heads = 4\ninit_values = nan"), "model.init_values", 9, "must be a finite number");
    check(
        ("num_heads = 4", "num_heads = 4\nglobal_pool = \"avg\"\ndist_token = true"),
        "model.dist_token",
        10,
        "the distilled head reads the class and distillation tokens",
    );
    check(
        ("num_heads = 4", "num_heads = 4\nglobal_pool = \"mean\""),
        "model.global_pool",
        9,
        "expected one of \"token\", \"avg\", \"map\"",
    );
}

#[test]
fn presets_bring_their_options_and_normalize_model_their_normalisation() {
    use synbench_experiment::config::ModelSpec;
    use synbench_models::GlobalPool;
    let config = |model: &str, normalize: &str| {
        format!("[model]\narch = \"vit\"\n{model}\n[data]\nshape = [3, 224, 224]\nnormalize = {normalize}\n")
    };
    let plan = parse(
        Path::new("configs/d.toml"),
        &config("preset = \"vit_small_patch14_reg4_dinov2\"\nimg_size = 224", "\"model\""),
    )
    .unwrap();
    let ModelSpec::Vit { config: vit, .. } = &plan.encoder.model else { panic!("not a ViT") };
    assert_eq!((vit.img_size, vit.options.reg_tokens, vit.options.init_values), (224, 4, Some(1e-5)));
    assert!(vit.options.dynamic_img_size && vit.options.no_embed_class);
    assert_eq!(plan.mixture.normalization(), &synbench_data::Normalization::imagenet());

    // The weights' hub tag picks the normalisation: CLIP's for a CLIP tower,
    // (0.5, 0.5) for an augreg ViT whatever the preset's default tag.
    let clip =
        parse(Path::new("configs/c.toml"), &config("preset = \"vit_base_patch16_clip_224.openai\"", "\"model\""));
    let clip = clip.unwrap();
    let synbench_data::Normalization::PerChannel { mean, .. } = clip.mixture.normalization() else { panic!() };
    assert_eq!(mean, &[0.48145466, 0.4578275, 0.40821073]);
    let resolved = serde_json::to_value(synbench_experiment::ResolvedPlan::of(&clip)).unwrap();
    assert_eq!(
        resolved["data"]["normalize"]["from"], "timm's pretrained configuration of vit_base_patch16_clip_224.openai",
        "results say which normalisation was used"
    );
    let augreg = config(
        "preset = \"vit_base_patch16_224\"\nweights = \"hf:timm/vit_base_patch16_224.augreg_in21k\"",
        "\"model\"",
    );
    let augreg = parse(Path::new("configs/a.toml"), &augreg).unwrap();
    let synbench_data::Normalization::PerChannel { mean, std } = augreg.mixture.normalization() else { panic!() };
    assert_eq!((mean.as_slice(), std.as_slice()), ([0.5; 3].as_slice(), [0.5; 3].as_slice()));
    let siglip =
        parse(Path::new("configs/s.toml"), &config("preset = \"vit_base_patch16_siglip_224\"", "\"imagenet\""));
    let ModelSpec::Vit { config: vit, .. } = &siglip.unwrap().encoder.model else { panic!("not a ViT") };
    assert_eq!((vit.global_pool, vit.options.class_token), (GlobalPool::Map, false));

    // Without a preset there is no model normalisation to use.
    let err = parse(
        Path::new("configs/n.toml"),
        "[model]\narch = \"identity\"\n[data]\nshape = [3, 8, 8]\nnormalize = \"model\"\n",
    )
    .unwrap_err();
    assert_eq!(err.field, "data.normalize", "{err}");
    assert!(err.to_string().contains("set `[model] preset` to a timm name"), "{err}");
}

#[test]
fn every_shipped_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut parsed = 0;
    // configs/ and its folders (configs/finite_n/).
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    for folder in paths.clone().iter().filter(|p| p.is_dir()) {
        paths.extend(std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().path()));
    }
    for path in paths {
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            parse(&path, &text).unwrap_or_else(|e| panic!("{e}"));
            parsed += 1;
        }
    }
    assert!(parsed >= 15, "{parsed} configs in {}", dir.display());
}

#[test]
fn resnet_and_convnext_configs_parse_and_errors_name_the_field() {
    use synbench_experiment::config::ModelSpec;
    use synbench_models::{ResNetBlock, StemType};
    let with = |model: &str| format!("[model]\n{model}\n[data]\nshape = [3, 64, 64]\n");
    let plan = parse(
        Path::new("configs/r.toml"),
        &with("arch = \"resnet\"\npreset = \"resnet50.a1_in1k\"\nstem_type = \"deep\"\nstem_width = 32"),
    )
    .unwrap();
    let ModelSpec::ResNet { config, weights: None } = &plan.encoder.model else { panic!("{:?}", plan.encoder.model) };
    assert_eq!(
        (config.block, config.stem_type, config.stem_out(), config.output_dim()),
        (ResNetBlock::Bottleneck, StemType::Deep, 64, 2048)
    );
    assert_eq!(plan.model_name, "resnet50.a1_in1k");
    assert!(plan.encoder.computes_on_cpu());
    let plan = parse(
        Path::new("configs/c.toml"),
        &with("arch = \"convnext\"\npreset = \"convnext_atto\"\nls_init_value = \"none\""),
    )
    .unwrap();
    let ModelSpec::ConvNext { config, .. } = &plan.encoder.model else { panic!() };
    assert_eq!((config.conv_mlp, config.ls_init_value, config.output_dim()), (true, None, 320));
    let plan = parse(Path::new("configs/c.toml"), &with("arch = \"convnext\"\npreset = \"convnext_tiny\"")).unwrap();
    let resolved = serde_json::to_value(synbench_experiment::ResolvedPlan::of(&plan)).unwrap();
    assert_eq!(resolved["model"]["convnext"]["dims"], serde_json::json!([96, 192, 384, 768]), "{resolved}");
    assert!(resolved["model"].get("vit").is_none());

    for (model, field, needle) in [
        ("arch = \"resnet\"\npreset = \"resnet26\"", "model.preset", "expected one of resnet18, resnet34"),
        ("arch = \"resnet\"\nlayers = [1, 1]", "model.layers", "must list the same number of stages"),
        ("arch = \"resnet\"\nblock = \"wide\"", "model.block", "expected one of \"basic\", \"bottleneck\""),
        ("arch = \"resnet\"\nembed_dim = 64", "model.embed_dim", "`embed_dim` is for arch vit"),
        (
            "arch = \"vit\"\npreset = \"vit_tiny_patch16_224\"\ndepths = [1]",
            "model.depths",
            "`depths` is for arch convnext",
        ),
        ("arch = \"convnext\"\nls_init_value = \"off\"", "model.ls_init_value", "or \"none\" for no LayerScale"),
        ("arch = \"convnext\"\ndims = [8, 16]", "model.dims", "must list the same, non-zero number of stages"),
        ("arch = \"convnext\"\nprecision = \"bf16\"", "model.precision", "reduced precision"),
    ] {
        let err = parse(Path::new("configs/bad.toml"), &with(model)).expect_err(model);
        assert_eq!(err.field, field, "{model}: {err}");
        assert!(err.to_string().contains(needle), "{model}: {err}");
    }
    let err = parse(Path::new("configs/bad.toml"), "[model]\narch = \"resnet\"\n[data]\nshape = [64]\n").unwrap_err();
    assert_eq!(err.field, "data.shape", "{err}");
}
