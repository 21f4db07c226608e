//! ViT forward throughput (images/s) on every backend compiled in, random
//! init, batch 8. Compare with PyTorch + timm in the same window:
//! `.venv/bin/python scripts/bench_timm.py` (see the README of this folder).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;
use synbench_models::{Backend, DeviceKind, Encoder, VitConfig, VitEncoder};

const BATCH: usize = 8;

fn encoders(c: &mut Criterion) {
    let mut group = c.benchmark_group("vit_forward");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    for name in ["vit_tiny_patch16_224", "vit_base_patch16_224"] {
        let config = VitConfig::preset(name).unwrap();
        let input = Array2::<f32>::from_shape_fn((BATCH, 3 * 224 * 224), |(i, j)| ((i * 31 + j) % 97) as f32 / 97.0);
        for backend in Backend::compiled().into_iter().filter(|b| *b != Backend::Cuda) {
            let mut encoder = VitEncoder::new(name, config.clone(), None, backend, DeviceKind::Cpu, 0).unwrap();
            encoder.encode(input.view()).unwrap(); // warm-up
            group.bench_with_input(BenchmarkId::new(name, format!("{backend}/batch={BATCH}")), &input, |b, x| {
                b.iter(|| encoder.encode(x.view()).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, encoders);
criterion_main!(benches);
