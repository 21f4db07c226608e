//! The generator against SPEC §1, with tolerances derived from n: each
//! assertion allows five standard errors of the statistic it checks (the
//! data are seeded, so a pass is reproducible; five standard errors keep the
//! chance that a correct generator fails any one check below 1e-6).

use ndarray::{Array1, Array2, Axis};
use synbench_data::{Batch, Covariance, Generator, IMAGENET_MEAN, IMAGENET_STD, MixtureParams, Normalization, Split};

const N: u64 = 20_000;
const D: usize = 64;
const K: f64 = 5.0; // standard errors allowed

fn draw(params: MixtureParams, generator: Generator, scale: f64) -> Batch {
    params.generator(generator).check().unwrap().generate(0, scale, Split::Train, 0..N)
}

/// Runs each check once per generator, as `xoshiro::name` and `chacha8::name`.
macro_rules! for_each_generator {
    ($($check:ident),* $(,)?) => {
        mod xoshiro {
            $(#[test] fn $check() { super::$check(synbench_data::Generator::Xoshiro128BoxMuller) })*
        }
        mod chacha8 {
            $(#[test] fn $check() { super::$check(synbench_data::Generator::ChaCha8Ziggurat) })*
        }
    };
}

for_each_generator!(
    class_prior_matches_tau,
    class_means_lie_along_mu_hat_at_plus_minus_s,
    noise_is_standard_normal_and_independent_per_coordinate,
    noise_tail_probabilities_match_phi,
    diagonal_covariance_sets_each_coordinate_variance,
    imagenet_normalisation_is_per_channel_affine_of_the_raw_sample,
);

/// Rows of one class as f64.
fn class_rows(batch: &Batch, label: u8) -> Array2<f64> {
    let rows: Vec<usize> = (0..batch.labels.len()).filter(|&i| batch.labels[i] == label).collect();
    batch.inputs.select(Axis(0), &rows).mapv(f64::from)
}

fn class_prior_matches_tau(generator: Generator) {
    for tau in [0.5, 0.3, 0.9] {
        let batch = draw(MixtureParams::vector(4).prior(tau).seed(1), generator, 1.0);
        let ones = batch.labels.iter().filter(|&&y| y == 1).count() as f64;
        let n = N as f64;
        let sd = (n * tau * (1.0 - tau)).sqrt();
        assert!((ones - n * tau).abs() <= K * sd, "tau {tau}: {ones} ones of {n}");
    }
}

fn class_means_lie_along_mu_hat_at_plus_minus_s(generator: Generator) {
    let (scale, shift) = (1.3, 0.5);
    let batch = draw(MixtureParams::vector(D).seed(2), generator, scale);
    let mu_hat = Array1::from_elem(D, 1.0 / (D as f64).sqrt());
    for (label, sign) in [(1u8, 1.0), (0u8, -1.0)] {
        let rows = class_rows(&batch, label);
        let n = rows.nrows() as f64;
        let mean = rows.mean_axis(Axis(0)).unwrap() - shift;
        // Along μ̂: N(±s, 1/n).
        let along = mean.dot(&mu_hat);
        assert!((along - sign * scale).abs() <= K / n.sqrt(), "class {label}: projection {along}");
        // Whole mean error: n·‖m̂ − m‖² ~ χ²_d (mean d, sd √(2d)).
        let err = &mean - &(&mu_hat * (sign * scale));
        let chi2 = n * err.dot(&err);
        assert!((chi2 - D as f64).abs() <= K * (2.0 * D as f64).sqrt(), "class {label}: chi2 {chi2}");
    }
}

fn noise_is_standard_normal_and_independent_per_coordinate(generator: Generator) {
    let scale = 0.8;
    let batch = draw(MixtureParams::vector(D).seed(3), generator, scale);
    let mut z = Vec::new();
    for (label, sign) in [(1u8, 1.0), (0u8, -1.0)] {
        let centre = 0.5 + sign * scale / (D as f64).sqrt();
        z.push(class_rows(&batch, label) - centre);
    }
    let z = ndarray::concatenate(Axis(0), &[z[0].view(), z[1].view()]).unwrap();
    let n = z.nrows() as f64;
    // Per-coordinate second moment about the true mean: χ²_n/n, sd √(2/n).
    let second = z.mapv(|v| v * v).mean_axis(Axis(0)).unwrap();
    for (j, v) in second.iter().enumerate() {
        assert!((v - 1.0).abs() <= K * (2.0 / n).sqrt(), "coordinate {j}: variance {v}");
    }
    // Cross moments: N(0, 1/n) each; 2016 pairs, so allow 5.5 standard errors.
    let cross = z.t().dot(&z) / n;
    for i in 0..D {
        for j in 0..i {
            assert!(cross[[i, j]].abs() <= 5.5 / n.sqrt(), "pair ({i}, {j}): {}", cross[[i, j]]);
        }
    }
    // Fourth moment 3, variance of z⁴ = 105 − 9 = 96.
    let fourth = z.mapv(|v| v.powi(4)).mean().unwrap();
    let sd = (96.0 / (n * D as f64)).sqrt();
    assert!((fourth - 3.0).abs() <= K * sd, "kurtosis {fourth}");
}

fn diagonal_covariance_sets_each_coordinate_variance(generator: Generator) {
    let variances: Vec<f64> = (0..D).map(|j| 0.25 + j as f64 / 16.0).collect();
    let batch =
        draw(MixtureParams::vector(D).seed(4).covariance(Covariance::Diagonal(variances.clone())), generator, 0.0);
    let x = batch.inputs.mapv(f64::from) - 0.5;
    let n = x.nrows() as f64;
    let second = x.mapv(|v| v * v).mean_axis(Axis(0)).unwrap();
    for (j, (v, want)) in second.iter().zip(&variances).enumerate() {
        assert!((v / want - 1.0).abs() <= K * (2.0 / n).sqrt(), "coordinate {j}: {v} vs {want}");
    }
}

fn imagenet_normalisation_is_per_channel_affine_of_the_raw_sample(generator: Generator) {
    // 21×21 channels: channel ends fall inside the generator's blocks and chunks.
    let raw = MixtureParams::with_shape(vec![3, 21, 21]).seed(5).generator(generator).check().unwrap();
    let normed = MixtureParams::image(3, 21, 21).seed(5).generator(generator).check().unwrap();
    let a = raw.generate(1, 2.0, Split::Test, 0..50);
    let b = normed.generate(1, 2.0, Split::Test, 0..50);
    assert_eq!(a.labels, b.labels);
    for (row_a, row_b) in a.inputs.outer_iter().zip(b.inputs.outer_iter()) {
        for (k, (x, y)) in row_a.iter().zip(row_b.iter()).enumerate() {
            let c = k / (21 * 21);
            let want = (f64::from(*x) - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
            assert!((f64::from(*y) - want).abs() <= 1e-6 * want.abs().max(1.0), "channel {c}: {y} vs {want}");
        }
    }
    // An explicit per-channel normalisation equal to ImageNet's gives the same bits.
    let explicit = Normalization::PerChannel { mean: IMAGENET_MEAN.to_vec(), std: IMAGENET_STD.to_vec() };
    let c = MixtureParams::with_shape(vec![3, 21, 21]).seed(5).generator(generator).normalization(explicit);
    let c = c.check().unwrap();
    assert_eq!(c.generate(1, 2.0, Split::Test, 0..50), b);
}

fn noise_tail_probabilities_match_phi(generator: Generator) {
    // P(|z| > k) = 2(1 − Φ(k)) = erfc(k/√2); each count is binomial over n·d draws.
    let batch = draw(MixtureParams::vector(D).seed(6), generator, 0.0);
    let z = batch.inputs.mapv(|v| f64::from(v) - 0.5);
    let total = z.len() as f64;
    for (k, p) in [
        (0.5, 0.617_075_077_451_973_8),
        (1.0, 0.317_310_507_862_914_15),
        (2.0, 0.045_500_263_896_358_44),
        (3.0, 0.002_699_796_063_260_191_3),
    ] {
        let beyond = z.iter().filter(|v| v.abs() > k).count() as f64;
        let sd = (total * p * (1.0 - p)).sqrt();
        assert!((beyond - total * p).abs() <= K * sd, "P(|z| > {k}): {} vs {p}", beyond / total);
    }
}
