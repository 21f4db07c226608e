//! What SPEC §7 adds to one scale at the paper's protocol (n_train = n_test
//! = 2048, two ε): the probe fit the run always did, then the ten
//! delete-a-group jackknife refits with their test evaluations, the two
//! nested-prefix refits and the population estimates. At D = 768 and 49
//! scales the added cost is 49 × (`uncertainty` − `fit_only`).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::{Array1, Array2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::SeedableRng;
use ndarray_rand::rand_distr::{Bernoulli, StandardNormal};
use rand_chacha::ChaCha8Rng;
use std::hint::black_box;
use synbench_probe::jackknife::{nested, nested_sizes, replicates, test_replicates};
use synbench_probe::{BayesProbeParams, ClassStatistics, HeldSplit, JACKKNIFE_GROUPS, ParamGuard};

fn split(n: usize, d: usize, seed: u64) -> HeldSplit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels = Array1::random_using(n, Bernoulli::new(0.5).unwrap(), &mut rng).mapv(u8::from);
    let mut features = Array2::<f64>::random_using((n, d), StandardNormal, &mut rng);
    for (mut row, &y) in features.outer_iter_mut().zip(&labels) {
        let sign = if y == 1 { 0.05 } else { -0.05 };
        row.mapv_inplace(|v| v + sign);
    }
    HeldSplit { features: features.mapv(|v| v as f32), labels }
}

fn uncertainty(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_scale");
    group.sample_size(10);
    let params = BayesProbeParams::new(vec![0.0, 0.2]).check().unwrap();
    for d in [192usize, 768] {
        let (train, test) = (split(2048, d, 1), split(2048, d, 2));
        let stats = ClassStatistics::from_batch(train.features.view(), train.labels.view()).unwrap();
        group.bench_with_input(BenchmarkId::new("fit_only", d), &d, |b, _| {
            b.iter(|| {
                let probe = params.fit(black_box(&stats)).unwrap();
                probe.evaluate(test.features.view(), test.labels.view()).unwrap()
            })
        });
        group.bench_with_input(BenchmarkId::new("uncertainty", d), &d, |b, _| {
            b.iter(|| {
                let probe = params.fit(black_box(&stats)).unwrap();
                // The run's one evaluation pass tallies the test replicates too.
                let (outcome, tests) = test_replicates(&probe, &test, JACKKNIFE_GROUPS).unwrap();
                let population = probe.population_outcomes();
                let reps = replicates(&params, &probe, &stats, &train, &test, tests).unwrap();
                let nest = nested(&params, &train, &test, &nested_sizes(2048, d)).unwrap();
                (outcome, population, reps, nest)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, uncertainty);
criterion_main!(benches);
