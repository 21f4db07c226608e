//! The exact ℓ2 QCQP at feature widths of ViT-B (768) and ViT-L (1024), and
//! scoring of the paper protocol (49 scales, 9 thresholds), and the
//! jackknife calibration's train variances (`sampling`).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use synbench_theory::{
    PAPER_THRESHOLDS, ScaleGrid, ScaleOutcome, ScoreMode, attack_radius, raw_reference, solve_l2_qcqp, synbench_scores,
};

/// A probe-like instance: eigenvalues spread over six decades, mixed-sign μ.
fn instance(n: usize) -> (Vec<f64>, Vec<f64>) {
    let d = (0..n).map(|i| 10f64.powf(-3.0 + 6.0 * i as f64 / (n - 1) as f64)).collect();
    let mu = (0..n).map(|i| (((i * 2_654_435_761) % 1000) as f64 / 500.0 - 1.0) / (1.0 + i as f64).sqrt()).collect();
    (mu, d)
}

fn qcqp(c: &mut Criterion) {
    let mut group = c.benchmark_group("l2_qcqp_exact");
    for n in [768usize, 1024] {
        let (mu, d) = instance(n);
        for eps in [0.2, 0.8] {
            let delta = attack_radius(eps, &mu).unwrap();
            group.bench_with_input(BenchmarkId::new(format!("d={n}"), format!("eps={eps}")), &delta, |b, &delta| {
                b.iter(|| solve_l2_qcqp(black_box(&mu), black_box(&d), delta).unwrap())
            });
        }
    }
    group.finish();
}

fn scoring(c: &mut Criterion) {
    let grid = ScaleGrid::paper_protocol();
    let raw: Vec<ScaleOutcome> = grid
        .values()
        .iter()
        .map(|&s| {
            let r = raw_reference(s).unwrap();
            ScaleOutcome { accuracy: r.accuracy, scaled_bound: r.scaled_bound }
        })
        .collect();
    let rep: Vec<ScaleOutcome> = grid
        .values()
        .iter()
        .map(|&s| {
            let r = raw_reference(s / 2f64.sqrt()).unwrap();
            ScaleOutcome { accuracy: r.accuracy, scaled_bound: r.scaled_bound }
        })
        .collect();
    let mut group = c.benchmark_group("synbench_score");
    for mode in [ScoreMode::Reference, ScoreMode::Exact] {
        group.bench_with_input(BenchmarkId::new("49_scales_9_thresholds", format!("{mode:?}")), &mode, |b, &mode| {
            b.iter(|| synbench_scores(black_box(&rep), black_box(&raw), &PAPER_THRESHOLDS, mode).unwrap())
        });
    }
    group.finish();
}

/// The jackknife's calibration per scale (issue 28): the plug-in probe's
/// train variance by its Monte Carlo, and the population signal's closed
/// form, at the paper's n.
fn sampling(c: &mut Criterion) {
    let mut group = c.benchmark_group("sampling");
    for d in [192usize, 768] {
        group.bench_with_input(BenchmarkId::new("plug_in_accuracy_variance", d), &d, |b, &d| {
            b.iter(|| synbench_theory::plug_in_accuracy_variance(black_box(0.7), [1024, 1024], d))
        });
        group.bench_with_input(BenchmarkId::new("mahalanobis_estimate_variance", d), &d, |b, &d| {
            b.iter(|| synbench_theory::mahalanobis_estimate_variance(black_box(0.7), [1024, 1024], d))
        });
    }
    group.finish();
}

criterion_group!(benches, qcqp, scoring, sampling);
criterion_main!(benches);
