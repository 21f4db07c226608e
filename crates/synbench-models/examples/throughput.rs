//! ViT forward throughput on each compiled backend, printed as images/s, for
//! a quick side-by-side with `scripts/bench_timm.py` (PyTorch + timm) in the
//! same window. The criterion version is `benches/encoders.rs`.
//!
//! `cargo run --release -p synbench-models --example throughput [--features tch] [SECONDS]`

use std::time::Instant;

use ndarray::Array2;
use synbench_models::{Backend, DeviceKind, Encoder, VitConfig, VitEncoder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = std::env::args().nth(1).map_or(Ok(10.0), |s| s.parse())?;
    let batch = 8;
    for name in ["vit_tiny_patch16_224", "vit_base_patch16_224"] {
        let config = VitConfig::preset(name).ok_or("unknown preset")?;
        let input = Array2::<f32>::from_shape_fn((batch, 3 * 224 * 224), |(i, j)| ((i * 31 + j) % 97) as f32 / 97.0);
        for backend in Backend::compiled().into_iter().filter(|b| *b != Backend::Cuda) {
            let mut encoder = VitEncoder::new(name, config.clone(), None, backend, DeviceKind::Cpu, 0)?;
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
