//! Forward throughput of timm presets (ViT, ResNet, ConvNeXt; random init,
//! batch 8, 224 px) on each compiled backend, printed as images/s, for a
//! side-by-side with `scripts/bench_timm.py` (PyTorch + timm) in the same
//! window. The criterion version is `benches/encoders.rs`.
//!
//! `cargo run --release -p synbench-models --example throughput [--features tch] [SECONDS [NAME...]]`

use std::time::Instant;

use ndarray::Array2;
use synbench_models::{
    Backend, ConvNextConfig, ConvNextEncoder, DeviceKind, Encoder, ResNetConfig, ResNetEncoder, VitConfig, VitEncoder,
};

fn encoder(name: &str, backend: Backend) -> Result<Box<dyn Encoder>, Box<dyn std::error::Error>> {
    let cpu = DeviceKind::Cpu;
    Ok(if let Some(c) = VitConfig::preset(name) {
        Box::new(VitEncoder::new(name, c, None, backend, cpu, 0)?)
    } else if let Some(c) = ResNetConfig::preset(name) {
        Box::new(ResNetEncoder::new(name, c, None, backend, cpu, 0)?)
    } else if let Some(c) = ConvNextConfig::preset(name) {
        Box::new(ConvNextEncoder::new(name, c, None, backend, cpu, 0)?)
    } else {
        return Err(format!("{name}: not a preset").into());
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map_or(Ok(10.0), |s| s.parse())?;
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names =
            ["vit_tiny_patch16_224", "vit_base_patch16_224", "resnet50", "convnext_tiny"].map(String::from).to_vec();
    }
    let batch = 8;
    let input = Array2::<f32>::from_shape_fn((batch, 3 * 224 * 224), |(i, j)| ((i * 31 + j) % 97) as f32 / 97.0);
    for name in &names {
        for backend in Backend::compiled().into_iter().filter(|b| *b != Backend::Cuda) {
            let mut encoder = encoder(name, backend)?;
            encoder.encode(input.view())?;
            let (mut images, start) = (0, Instant::now());
            while start.elapsed().as_secs_f64() < seconds {
                encoder.encode(input.view())?;
                images += batch;
            }
            println!("{name} [{backend}]: {:.2} images/s", images as f64 / start.elapsed().as_secs_f64());
        }
    }
    Ok(())
}
