//! `arch = "torchscript"` against PyTorch eager: small random-init timm
//! models with every parameter and BatchNorm statistic perturbed, traced
//! (and one scripted) by `cargo xtask fixtures torchscript`, run by tch's
//! LibTorch and compared with the eager output the script saved. Plus the
//! errors a user meets: a missing file, a file that is not a module, an
//! input shape the module does not take, a CUDA device LibTorch lacks.

use std::path::{Path, PathBuf};

use ndarray::Array2;
use safetensors::SafeTensors;
use synbench_models::{DeviceKind, Encoder, EncoderError, TorchScriptEncoder};

/// Largest allowed |LibTorch − eager| on any feature.
const TOLERANCE: f32 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torchscript")
}

fn array(st: &SafeTensors<'_>, name: &str) -> Array2<f32> {
    let view = st.tensor(name).unwrap();
    let shape = view.shape();
    let values: Vec<f32> = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Array2::from_shape_vec((shape[0], shape[1..].iter().product()), values).unwrap()
}

#[test]
fn traced_and_scripted_timm_models_match_pytorch_eager() {
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("fixtures.json")).unwrap()).unwrap();
    let names: Vec<&String> = summary["fixtures"].as_object().unwrap().keys().collect();
    assert_eq!(names.len(), 3, "resnet traced, convnext traced, resnet scripted");
    for name in names {
        let bytes = std::fs::read(fixtures().join(format!("{name}.io.safetensors"))).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (input, expected) = (array(&st, "input"), array(&st, "output"));
        let mut encoder =
            TorchScriptEncoder::load(&fixtures().join(format!("{name}.pt")), &[3, 32, 32], DeviceKind::Cpu).unwrap();
        assert_eq!(encoder.output_dim(), expected.ncols(), "{name}: width from one forward pass");
        assert_eq!(encoder.input_shape(), [3, 32, 32]);
        let got = encoder.encode(input.view()).unwrap();
        let diff = (&got - &expected).iter().fold(0f32, |m, d| m.max(d.abs()));
        let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
        eprintln!("{name}: max |LibTorch − eager| = {diff:.2e} (features up to {scale:.2})");
        assert!(diff <= TOLERANCE, "{name}: max |LibTorch − eager| = {diff} > {TOLERANCE}");
        // Batches of any size, one sample at a time included.
        let one = encoder.encode(input.row(1).insert_axis(ndarray::Axis(0))).unwrap();
        assert!(one.iter().zip(got.row(1)).all(|(a, b)| (a - b).abs() <= TOLERANCE), "{name}: batch of one");
        assert!(encoder.describe().contains(&format!("{name}.pt")) && encoder.describe().contains("cpu"));
    }
}

#[test]
fn load_errors_name_the_file_and_what_was_expected() {
    let message = |e: EncoderError| e.to_string();
    let missing = fixtures().join("nope.pt");
    let err = message(TorchScriptEncoder::load(&missing, &[3, 32, 32], DeviceKind::Cpu).unwrap_err());
    assert!(err.contains("nope.pt") && err.contains("no such file") && err.contains("torch.jit.trace"), "{err}");
    let not_a_module = fixtures().join("fixtures.json");
    let err = message(TorchScriptEncoder::load(&not_a_module, &[3, 32, 32], DeviceKind::Cpu).unwrap_err());
    assert!(err.contains("fixtures.json") && err.contains("not a TorchScript module"), "{err}");
    let module = fixtures().join("resnet_basic_c16.pt");
    let err = message(TorchScriptEncoder::load(&module, &[5], DeviceKind::Cpu).unwrap_err());
    assert!(err.contains("resnet_basic_c16.pt") && err.contains("one input of shape [1, 5]"), "{err}");
    if tch::Cuda::device_count() == 0 {
        let err = message(TorchScriptEncoder::load(&module, &[3, 32, 32], DeviceKind::Cuda(0)).unwrap_err());
        assert!(err.contains("cuda:0") && err.contains("sees 0 CUDA device"), "{err}");
    }
    let mut encoder = TorchScriptEncoder::load(&module, &[3, 32, 32], DeviceKind::Cpu).unwrap();
    let err = message(encoder.encode(Array2::zeros((2, 10)).view()).unwrap_err());
    assert!(err.contains("expects 3072"), "{err}");
}
