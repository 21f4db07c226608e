//! Jackknife replicates and the population estimate (SPEC §7) on Gaussian
//! features whose population outcome is a closed form.

use ndarray::Axis;
use synbench_probe::jackknife::{
    replicates, smallest_replicate, standard_error, test_replicates, uncalibrated_replicates,
};
use synbench_probe::{BayesProbeParams, ClassStatistics, HeldSplit, ParamGuard};
use synbench_theory::population_outcome;

#[path = "common/gaussian.rs"]
mod gaussian;

use gaussian::gaussian;

/// The tests' spectrum: variances decaying as i^(−0.7).
fn spectrum(d: usize, kappa: f64) -> (Vec<f64>, Vec<f64>) {
    gaussian::spectrum(d, kappa, 0.7)
}

#[test]
fn removing_a_group_equals_folding_the_rest() {
    let (mean, std) = spectrum(12, 1.0);
    let split = gaussian(500, &mean, &std, 3);
    let all = ClassStatistics::from_batch(split.features.view(), split.labels.view()).unwrap();
    let rows = |keep: &dyn Fn(usize) -> bool| -> Vec<usize> { (0..500).filter(|&i| keep(i)).collect() };
    let (part, rest) = (rows(&|i| i % 7 == 2), rows(&|i| i % 7 != 2));
    let stats = |r: &[usize]| {
        ClassStatistics::from_batch(split.features.select(Axis(0), r).view(), split.labels.select(Axis(0), r).view())
            .unwrap()
    };
    let without = all.without(&stats(&part)).unwrap();
    let direct = stats(&rest);
    assert_eq!((without.count(0), without.count(1)), (direct.count(0), direct.count(1)));
    let diff = (&without.pooled_covariance().unwrap() - &direct.pooled_covariance().unwrap())
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(diff < 1e-12, "pooled covariance differs by {diff}");
    for class in [0, 1] {
        let d = (without.class_mean(class) - direct.class_mean(class)).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(d < 1e-12, "class {class} mean differs by {d}");
    }
    assert!(
        (without.ledoit_wolf_shrinkage().unwrap() - direct.ledoit_wolf_shrinkage().unwrap()).abs() < 1e-10,
        "the fourth moments are removed too"
    );
}

/// D = 128 from n = 512: the plug-in probe's accuracy falls well short of
/// the population one, the estimate does not.
#[test]
fn the_population_estimate_recovers_the_closed_form() {
    let d = 128;
    let (mean, std) = spectrum(d, 1.2);
    let lambda: Vec<f64> = std.iter().map(|s| s * s).collect();
    let mu2: Vec<f64> = mean.iter().map(|m| m * m).collect();
    let params = BayesProbeParams::new(vec![0.0, 0.2]).check().unwrap();
    let (mut plug_gap, mut est_gap) = ([0.0f64; 2], [0.0f64; 2]);
    let seeds = 6;
    for seed in 0..seeds {
        let train = gaussian(512, &mean, &std, 100 + seed);
        let test = gaussian(4096, &mean, &std, 200 + seed);
        let stats = ClassStatistics::from_batch(train.features.view(), train.labels.view()).unwrap();
        let probe = params.fit(&stats).unwrap();
        let plug = probe.evaluate(test.features.view(), test.labels.view()).unwrap();
        let est = probe.population_outcomes().unwrap();
        for (e, &epsilon) in [0.0, 0.2].iter().enumerate() {
            let truth = population_outcome(&lambda, &mu2, epsilon).accuracy;
            plug_gap[e] += (plug[e].exact.accuracy - truth) / seeds as f64;
            est_gap[e] += (est[e].accuracy - truth) / seeds as f64;
        }
    }
    for e in 0..2 {
        assert!(plug_gap[e] < -0.03, "ε index {e}: the plug-in probe loses {:.4} of accuracy", plug_gap[e]);
        eprintln!("ε index {e}: plug-in {:.4}, estimate {:.4}", plug_gap[e], est_gap[e]);
        assert!(est_gap[e].abs() < 0.01, "ε index {e}: the estimate is {:.4} off the closed form", est_gap[e]);
    }
}

#[test]
fn replicates_drop_one_group_of_each_split() {
    let (mean, std) = spectrum(8, 1.0);
    let (train, test) = (gaussian(400, &mean, &std, 1), gaussian(300, &mean, &std, 2));
    let params = BayesProbeParams::new(vec![0.0, 0.3]).check().unwrap();
    let stats = ClassStatistics::from_batch(train.features.view(), train.labels.view()).unwrap();
    let full = params.fit(&stats).unwrap();
    let (outcomes, tests) = test_replicates(&full, &test, 10).unwrap();
    assert_eq!(
        outcomes,
        full.evaluate(test.features.view(), test.labels.view()).unwrap(),
        "one pass, the same outcome"
    );
    let (reps, signals) = uncalibrated_replicates(&params, &stats, &train, &test, tests.clone()).unwrap();
    assert_eq!(reps.len(), 10);
    for rep in &reps {
        assert_eq!(rep.test[0].samples, 270, "the test replicate a tenth less");
        assert_eq!((rep.train.len(), rep.test.len()), (2, 2));
    }
    // Train replicate 0: a probe fitted on the kept train rows directly, as
    // Gaussian projections with the whole test split's moments.
    let keep = |rows: std::ops::Range<usize>| -> Vec<usize> { rows.filter(|i| i % 10 != 0).collect() };
    let select =
        |split: &HeldSplit, rows: &[usize]| (split.features.select(Axis(0), rows), split.labels.select(Axis(0), rows));
    let (x, y) = select(&train, &keep(0..400));
    let direct = params.fit(&ClassStatistics::from_batch(x.view(), y.view()).unwrap()).unwrap();
    let moments = ClassStatistics::from_batch(test.features.view(), test.labels.view()).unwrap();
    let expected = direct.gaussian_outcomes(&moments).unwrap();
    for (got, want) in reps[0].train.iter().zip(&expected) {
        assert!((got.accuracy - want.accuracy).abs() < 1e-12 && (got.scaled_bound - want.scaled_bound).abs() < 1e-9);
    }
    // Test replicate 0: the full probe on the kept test rows; plain means as
    // on those rows, batch means in the full split's batches (0..256, 256..300).
    let (x, y) = select(&test, &keep(0..300));
    let kept = full.evaluate(x.view(), y.view()).unwrap();
    assert_eq!((reps[0].test[0].correct, reps[0].test[0].exact), (kept[0].correct, kept[0].exact));
    let batch = |rows| {
        let (x, y) = select(&test, &keep(rows));
        full.evaluate(x.view(), y.view()).unwrap()[0].exact
    };
    let (first, second) = (batch(0..256), batch(256..300));
    let reference = reps[0].test[0].reference;
    assert!((reference.accuracy - (first.accuracy + second.accuracy) / 2.0).abs() < 1e-12);
    assert!((reference.scaled_bound - (first.scaled_bound + second.scaled_bound) / 2.0).abs() < 1e-12);
    // Calibrated: per ε the same mean and deviations scaled by one factor
    // per estimator, which makes the ε = 0 train replicates' jackknife
    // variance the plug-in closed form at the population estimate.
    let calibrated = replicates(&params, &full, &stats, &train, &test, tests).unwrap();
    let f = full.population_signal().unwrap();
    let closed = synbench_theory::plug_in_accuracy_variance(f, full.counts(), 8).unwrap();
    let train_at = |r: &[synbench_probe::jackknife::Replicate], e: usize| -> Vec<f64> {
        r.iter().map(|r| r.train[e].accuracy).collect()
    };
    let variance = |v: &[f64]| standard_error(v).powi(2);
    assert!((variance(&train_at(&calibrated, 0)) / closed - 1.0).abs() < 1e-9);
    let factor = variance(&train_at(&calibrated, 0)) / variance(&train_at(&reps, 0));
    assert!(factor.is_finite() && (factor - 1.0).abs() > 1e-6, "one seed's factor {factor}");
    for e in 0..2 {
        assert!((variance(&train_at(&calibrated, e)) / variance(&train_at(&reps, e)) / factor - 1.0).abs() < 1e-9);
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / 10.0;
        assert!((mean(train_at(&calibrated, e)) - mean(train_at(&reps, e))).abs() < 1e-12);
    }
    assert!(signals.iter().all(Option::is_some), "every refit has a population signal");
    assert_ne!(calibrated[0].population, reps[0].population, "the population replicates calibrated");
    assert_eq!(calibrated[0].test, reps[0].test, "the test replicates as they are");
    // The standard error of constant replicates is 0; of ±1 around 0 it is √((G−1)/G·G).
    assert!(standard_error(&[0.7; 10]) < 1e-12);
    let alternating: Vec<f64> = (0..10).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
    assert!((standard_error(&alternating) - 9f64.sqrt()).abs() < 1e-12);
}

/// On Gaussian features the smooth outcome of a probe is its outcome on a
/// large test set: the accuracy within three binomial sds of 40 000 samples,
/// the mean scaled bound within 0.5 %.
#[test]
fn gaussian_outcomes_are_the_outcome_on_gaussian_features() {
    let (mean, std) = spectrum(16, 1.1);
    let train = gaussian(600, &mean, &std, 5);
    let test = gaussian(40_000, &mean, &std, 6);
    let params = BayesProbeParams::new(vec![0.0, 0.2, 0.5]).check().unwrap();
    let probe = params.fit(&ClassStatistics::from_batch(train.features.view(), train.labels.view()).unwrap()).unwrap();
    let moments = ClassStatistics::from_batch(test.features.view(), test.labels.view()).unwrap();
    let smooth = probe.gaussian_outcomes(&moments).unwrap();
    let empirical = probe.evaluate(test.features.view(), test.labels.view()).unwrap();
    for (s, e) in smooth.iter().zip(&empirical) {
        let sd = (s.accuracy * (1.0 - s.accuracy) / 40_000.0).sqrt();
        eprintln!("ε {}: smooth {s:?}, empirical {:?}", e.epsilon, e.exact);
        assert!((s.accuracy - e.exact.accuracy).abs() < 3.0 * sd, "ε {}: {s:?} vs {:?}", e.epsilon, e.exact);
        assert!((s.scaled_bound / e.exact.scaled_bound - 1.0).abs() < 5e-3, "ε {}: {s:?} vs {:?}", e.epsilon, e.exact);
    }
    let wrong =
        ClassStatistics::from_batch(test.features.select(Axis(1), &[0, 1, 2]).view(), test.labels.view()).unwrap();
    assert!(probe.gaussian_outcomes(&wrong).unwrap_err().to_string().contains("evaluation moments"));
}

/// The smallest replicate is the split without group 0 (sample i in group
/// i mod G), counted directly.
#[test]
fn the_smallest_replicate_leaves_out_group_zero() {
    for groups in [2, 3, 10] {
        for n in 1..200u64 {
            let largest_group = (0..groups as u64).map(|g| (0..n).filter(|i| i % groups as u64 == g).count()).max();
            assert_eq!(smallest_replicate(n, groups), n - largest_group.unwrap() as u64, "n = {n}, G = {groups}");
        }
    }
    assert_eq!((smallest_replicate(43, 10), smallest_replicate(48, 10)), (38, 43));
}

/// The closed-form variance of the ε = 0 signal estimate
/// `f̂ = Φ⁻¹(population accuracy)²` against its seed-to-seed variance, at a
/// small and a large D/n: a variance from `k` seeds is off by about
/// `√(2/k)` (5.8 % at 600 seeds), so the band is three of those.
#[test]
fn the_closed_form_variance_of_the_signal_estimate_matches_monte_carlo() {
    let params = BayesProbeParams::new(vec![0.0]).check().unwrap();
    let kappa: f64 = 0.84;
    for (dim, n, seeds) in [(24, 256, 600_u64), (128, 256, 600)] {
        let (mean, std) = gaussian::spectrum(dim, kappa, 0.7);
        let (mut estimates, mut closed) = (Vec::new(), 0.0);
        for s in 0..seeds {
            let train = gaussian(n, &mean, &std, 20_000 + s);
            let stats = ClassStatistics::from_batch(train.features.view(), train.labels.view()).unwrap();
            let probe = params.fit(&stats).unwrap();
            let signal = probe.population_signal().unwrap();
            let accuracy = probe.population_outcomes().unwrap()[0].accuracy;
            let from_accuracy = synbench_theory::normal::quantile(accuracy).powi(2);
            assert!((from_accuracy - signal).abs() < 1e-9 * signal, "D {dim} seed {s}: ε = 0 accuracy Φ(√f̂)");
            estimates.push(signal);
            closed += synbench_theory::mahalanobis_estimate_variance(kappa * kappa, probe.counts(), dim).unwrap();
        }
        let k = seeds as f64;
        let (centre, variance) = mean_and_variance(&estimates);
        let ratio = variance / (closed / k);
        eprintln!("D {dim} n {n}: mean f̂ {centre:.4} (f {:.4}), variance / closed form {ratio:.3}", kappa * kappa);
        assert!((centre - kappa * kappa).abs() < 3.0 * (variance / k).sqrt(), "D {dim}: f̂ unbiased, mean {centre}");
        assert!((0.82..=1.18).contains(&ratio), "D {dim}: variance / closed form {ratio}");
    }
}

/// The Monte Carlo train variance of the ε = 0 plug-in probe's conditional
/// accuracy (on the known feature distribution) against its seed-to-seed
/// variance, at D/n ≈ 0.1 (two sizes) and 0.5, within the issue's
/// calibration band [0.8, 1.25]: a 300-seed variance is itself off by 8 %,
/// a 600-seed one by 6 %, the closed form by its 3 % Monte Carlo error,
/// and at D ≤ 51 the closed form runs 10–20 % low (measured 1.20 at D 51,
/// 1.11 at D 24, 0.96 at D 128): it leaves out the spectrum's own
/// fluctuation, of order 1/D against the directions' 1/√D.
#[test]
fn the_plug_in_accuracy_variance_matches_monte_carlo() {
    let params = BayesProbeParams::new(vec![0.0]).check().unwrap();
    let kappa: f64 = 0.84;
    for (dim, n, seeds) in [(51, 512, 300_u64), (24, 256, 600), (128, 256, 600)] {
        let (mean, std) = gaussian::spectrum(dim, kappa, 0.7);
        let (mut accuracies, mut closed) = (Vec::new(), 0.0);
        for s in 0..seeds {
            let train = gaussian(n, &mean, &std, 40_000 + s);
            let stats = ClassStatistics::from_batch(train.features.view(), train.labels.view()).unwrap();
            let probe = params.fit(&stats).unwrap();
            let w = &probe.directions()[0].weights;
            let spread = w.iter().zip(&std).map(|(w, s)| (w * s).powi(2)).sum::<f64>().sqrt();
            let margin = |sign: f64| {
                w.iter()
                    .zip(&mean)
                    .zip(probe.midpoint())
                    .map(|((w, m), c)| w * sign * (0.3 + sign * m - c))
                    .sum::<f64>()
            };
            let cdf = synbench_theory::normal::cdf;
            accuracies.push(0.5 * (cdf(margin(1.0) / spread) + cdf(margin(-1.0) / spread)));
            closed += synbench_theory::plug_in_accuracy_variance(kappa * kappa, probe.counts(), dim).unwrap();
        }
        let (centre, variance) = mean_and_variance(&accuracies);
        let ratio = variance / (closed / seeds as f64);
        eprintln!("D {dim} n {n}: mean accuracy {centre:.4}, variance {variance:.3e} / closed form {ratio:.3}");
        assert!((0.8..=1.25).contains(&ratio), "D {dim}: variance / closed form {ratio}");
    }
}

/// The mean of `values` and their unbiased sample variance.
fn mean_and_variance(values: &[f64]) -> (f64, f64) {
    let k = values.len() as f64;
    let mean = values.iter().sum::<f64>() / k;
    (mean, values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (k - 1.0))
}

/// Rescaling keeps the mean and scales the deviations; widened replicates
/// stay outcomes (a chance replicate beside ones above it is not pushed
/// below a bound of 0).
#[test]
fn rescaled_replicates_keep_their_mean_and_stay_outcomes() {
    use synbench_probe::jackknife::rescale;
    use synbench_theory::ScaleOutcome;
    let at = |accuracy, scaled_bound| vec![ScaleOutcome { accuracy, scaled_bound }];
    let close = |got: &[Vec<ScaleOutcome>], want: &[(f64, f64)]| {
        got.iter()
            .zip(want)
            .all(|(g, w)| (g[0].accuracy - w.0).abs() < 1e-12 && (g[0].scaled_bound - w.1).abs() < 1e-12)
    };
    let mut narrowed = vec![at(0.6, 0.2), at(0.8, 0.4)];
    rescale(narrowed.iter_mut().collect(), 0.25);
    assert!(close(&narrowed, &[(0.65, 0.25), (0.75, 0.35)]), "{narrowed:?}");
    let mut widened = vec![at(0.5, 0.0), at(0.7, 0.4), at(0.9, 0.8)];
    rescale(widened.iter_mut().collect(), 4.0);
    assert!(close(&widened, &[(0.3, 0.0), (0.7, 0.4), (1.0, 1.2)]), "{widened:?}");
}
