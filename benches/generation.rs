//! Generation throughput at the paper's input size, d = 3·224·224 = 150 528.
//! Reported as samples/s (elements) and bytes of f32 output per second.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{Array1, Array2};
use synbench_data::{MixtureParams, Split};

fn generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate_imagenet_normalised");
    group.sample_size(10);
    let mixture = MixtureParams::image(3, 224, 224).seed(12).check().unwrap();
    let d = mixture.dim();
    for batch in [8usize, 64] {
        let mut inputs = Array2::<f32>::zeros((batch, d));
        let mut labels = Array1::<u8>::zeros(batch);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("samples", format!("batch={batch},d={d}")), &batch, |b, _| {
            b.iter(|| mixture.generate_into(0, 1.0, Split::Train, 0, inputs.view_mut(), labels.view_mut()))
        });
        group.throughput(Throughput::Bytes((batch * d * 4) as u64));
        group.bench_with_input(BenchmarkId::new("bytes", format!("batch={batch},d={d}")), &batch, |b, _| {
            b.iter(|| mixture.generate_into(0, 1.0, Split::Train, 0, inputs.view_mut(), labels.view_mut()))
        });
    }
    group.finish();
}

criterion_group!(benches, generation);
criterion_main!(benches);
