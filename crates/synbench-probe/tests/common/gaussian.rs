//! Gaussian features with a known population outcome, shared by the
//! jackknife tests and the calibration example.

use ndarray::{Array1, Array2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use synbench_probe::HeldSplit;

/// x | y ~ N(±mean, diag(std²)) + 0.3: diagonal covariance, so the
/// population moments are `std²` and `mean²` in the standard basis.
pub fn gaussian(n: usize, mean: &[f64], std: &[f64], seed: u64) -> HeldSplit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let labels: Array1<u8> = (0..n).map(|_| u8::from(rng.gen_bool(0.5))).collect();
    let mut x = Array2::zeros((n, mean.len()));
    for (mut row, &y) in x.outer_iter_mut().zip(&labels) {
        let sign = if y == 1 { 1.0 } else { -1.0 };
        for j in 0..mean.len() {
            let z: f64 = StandardNormal.sample(&mut rng);
            row[j] = (0.3 + sign * mean[j] + std[j] * z) as f32;
        }
    }
    HeldSplit { features: x, labels }
}

/// Variances `i^(−decay)` (flat at decay 0) and the class mean spread over
/// all directions with Mahalanobis half-distance `kappa`: `(mean, std)`.
pub fn spectrum(d: usize, kappa: f64, decay: f64) -> (Vec<f64>, Vec<f64>) {
    let std: Vec<f64> = (1..=d).map(|i| (1.0 / (i as f64).powf(decay)).sqrt()).collect();
    let raw: Vec<f64> = (0..d).map(|i| std[i] * (1.0 + ((i * 7) % 5) as f64 / 4.0)).collect();
    let maha: f64 = raw.iter().zip(&std).map(|(m, s)| (m / s) * (m / s)).sum::<f64>().sqrt();
    (raw.iter().map(|m| m * kappa / maha).collect(), std)
}
