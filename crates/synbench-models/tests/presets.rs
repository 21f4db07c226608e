//! Every ViT preset is the architecture timm builds for its name, and
//! `normalize = "model"` finds timm's normalisation for each pretrained tag:
//! both against tests/fixtures/presets.json and src/timm_pretrained.rs, which
//! `cargo xtask fixtures presets` writes from timm itself.

use std::path::Path;

use synbench_models::{Activation, GlobalPool, Normalization, PRESETS, VitConfig};

fn timm_presets() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/presets.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_preset_is_the_architecture_timm_builds() {
    let timm = timm_presets();
    let timm = timm["presets"].as_object().unwrap();
    assert_eq!(timm.len(), PRESETS.len(), "presets.json and PRESETS list the same names");
    for name in PRESETS {
        let t = &timm[name];
        let c = VitConfig::preset(name).unwrap_or_else(|| panic!("{name}: no preset"));
        c.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        let size = |k: &str| t[k].as_u64().unwrap() as usize;
        let flag = |k: &str| t[k].as_bool().unwrap();
        let o = &c.options;
        let got = (
            (c.img_size, c.patch_size, c.embed_dim, c.depth, c.num_heads),
            (o.class_token, o.reg_tokens, o.no_embed_class, o.pre_norm, c.use_fc_norm()),
            (o.init_values.is_some(), o.qkv_bias, o.act_layer.name(), o.dist_token, c.global_pool.name()),
        );
        let expected = (
            (size("img_size"), size("patch_size"), size("embed_dim"), size("depth"), size("num_heads")),
            (flag("class_token"), size("reg_tokens"), flag("no_embed_class"), flag("pre_norm"), flag("fc_norm")),
            (
                flag("layer_scale"),
                flag("qkv_bias"),
                t["act_layer"].as_str().unwrap(),
                flag("dist_token"),
                t["global_pool"].as_str().unwrap(),
            ),
        );
        assert_eq!(got, expected, "{name}");
        assert_eq!(c.mlp_ratio, t["mlp_ratio"].as_f64().unwrap(), "{name}: mlp_ratio");
        assert_eq!(o.norm_eps, t["norm_eps"].as_f64().unwrap(), "{name}: LayerNorm eps");
        // A pretrained tag does not change the architecture.
        assert_eq!(VitConfig::preset(&format!("{name}.some_tag")), Some(c));
    }
    assert_eq!(VitConfig::preset("vit_tiny_patch14_dinov2"), None, "the name grammar admits only timm's names");
    assert_eq!(VitConfig::preset("deit_large_patch16_224"), None);
}

#[test]
fn presets_of_each_family_carry_their_options() {
    let dinov2 = VitConfig::preset("vit_base_patch14_reg4_dinov2.lvd142m").unwrap();
    assert_eq!((dinov2.img_size, dinov2.num_prefix_tokens(), dinov2.embed_len()), (518, 5, 37 * 37));
    assert!(dinov2.options.dynamic_img_size, "DINOv2 checkpoints (518 px) load at any size");
    let clip = VitConfig::preset("vit_large_patch14_clip_quickgelu_224").unwrap();
    assert_eq!(
        (clip.options.act_layer, clip.options.norm_eps, clip.options.pre_norm),
        (Activation::QuickGelu, 1e-5, true)
    );
    let siglip = VitConfig::preset("vit_base_patch16_siglip_256").unwrap();
    assert_eq!((siglip.img_size, siglip.global_pool, siglip.num_prefix_tokens()), (256, GlobalPool::Map, 0));
    let deit = VitConfig::preset("deit_small_distilled_patch16_224").unwrap();
    assert_eq!((deit.embed_dim, deit.num_prefix_tokens(), deit.embed_len()), (384, 2, 198));
}

#[test]
fn model_normalization_is_timms_for_each_tag() {
    let per_channel =
        |mean: [f64; 3], std: [f64; 3]| Normalization::PerChannel { mean: mean.to_vec(), std: std.to_vec() };
    let clip = per_channel([0.48145466, 0.4578275, 0.40821073], [0.26862954, 0.26130258, 0.27577711]);
    let imagenet = per_channel([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    let half = per_channel([0.5; 3], [0.5; 3]);
    for (name, expected) in [
        ("vit_base_patch16_clip_224.openai", &clip),
        ("vit_base_patch16_clip_224", &clip),
        ("vit_small_patch14_dinov2.lvd142m", &imagenet),
        ("deit_base_distilled_patch16_224", &imagenet),
        ("vit_base_patch16_224.augreg2_in21k_ft_in1k", &half),
        ("vit_base_patch16_siglip_224.webli", &half),
    ] {
        assert_eq!(VitConfig::pretrained_normalization(name).as_ref(), Some(expected), "{name}");
    }
    assert_eq!(VitConfig::pretrained_normalization("vit_base_patch16_224.no_such_tag"), None);
    assert_eq!(VitConfig::pretrained_normalization("efficientnet_b0"), None, "not a preset");
    // Every preset has its default tag in the table.
    for name in PRESETS {
        assert!(VitConfig::pretrained_normalization(name).is_some(), "{name}");
    }
}

#[test]
fn every_resnet_and_convnext_preset_is_what_timm_builds() {
    use synbench_models::{CONVNEXT_PRESETS, ConvNextConfig, RESNET_PRESETS, ResNetConfig};
    let timm = timm_presets();
    let timm = timm["cnn_presets"].as_object().unwrap();
    assert_eq!(timm.len(), RESNET_PRESETS.len() + CONVNEXT_PRESETS.len());
    let list =
        |v: &serde_json::Value| v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect::<Vec<_>>();
    for name in RESNET_PRESETS {
        let t = &timm[name];
        let c = ResNetConfig::preset(&format!("{name}.a1_in1k")).unwrap_or_else(|| panic!("{name}"));
        c.check().unwrap();
        assert_eq!(c.block.name(), t["block"].as_str().unwrap(), "{name}");
        assert_eq!((c.layers.clone(), c.channels.clone()), (list(&t["layers"]), list(&t["channels"])), "{name}");
        assert_eq!(
            (c.stem_out(), c.output_dim()),
            (t["stem_out"].as_u64().unwrap() as usize, t["output_dim"].as_u64().unwrap() as usize)
        );
        assert!(ResNetConfig::pretrained_normalization(name).is_some(), "{name}");
    }
    for name in CONVNEXT_PRESETS {
        let t = &timm[name];
        let c = ConvNextConfig::preset(name).unwrap_or_else(|| panic!("{name}"));
        c.check().unwrap();
        assert_eq!((c.depths.clone(), c.dims.clone()), (list(&t["depths"]), list(&t["dims"])), "{name}");
        let flags = (c.conv_mlp, c.ls_init_value.is_some(), c.head_norm_first);
        let expected = (
            t["conv_mlp"].as_bool().unwrap(),
            t["layer_scale"].as_bool().unwrap(),
            t["head_norm_first"].as_bool().unwrap(),
        );
        assert_eq!(flags, expected, "{name}");
        assert_eq!(
            (c.kernel_size, c.patch_size, c.output_dim()),
            (7, 4, t["output_dim"].as_u64().unwrap() as usize),
            "{name}"
        );
        assert!(ConvNextConfig::pretrained_normalization(name).is_some(), "{name}");
    }
    assert_eq!(ResNetConfig::preset("resnet26"), None);
}
