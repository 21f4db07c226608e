//! Research harness (issue 28 part 1): the delete-a-group jackknife's
//! variance of one scale's estimates against their seed-to-seed variance on
//! Gaussian features, with the delete-two interactions beside it, and the
//! per-scale calibration of the jackknife module doc (`CALIBRATED` lines:
//! the population replicates by the closed form of the signal's variance,
//! the reference train replicates by the plug-in accuracy's).
//!
//! ```text
//! cargo run --release -p synbench-probe --example calibration -- DIM N SEEDS DECAY [KAPPA]
//! ```

use rayon::prelude::*;
use synbench_probe::jackknife::test_replicates;
use synbench_probe::{BayesProbeParams, ClassStatistics, HeldSplit, ParamGuard};
use synbench_theory::population_outcome;

#[path = "../tests/common/gaussian.rs"]
mod gaussian;

use gaussian::{gaussian, spectrum};

const G: usize = 10;

fn rows(split: &HeldSplit, keep: impl Fn(usize) -> bool) -> ClassStatistics {
    let r: Vec<usize> = (0..split.labels.len()).filter(|&i| keep(i)).collect();
    ClassStatistics::from_batch(
        split.features.select(ndarray::Axis(0), &r).view(),
        split.labels.select(ndarray::Axis(0), &r).view(),
    )
    .unwrap()
}

/// Per ε: [population, reference train (Gaussian projection), reference exact test].
type Stat = Vec<[f64; 3]>;

struct Seed {
    full: Stat,
    singles: Vec<Stat>,
    pairs: Vec<Stat>,
    tests: Vec<Vec<f64>>,
    counts: [u64; 2],
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dim: usize = args[1].parse().unwrap();
    let n: usize = args[2].parse().unwrap();
    let seeds: u64 = args[3].parse().unwrap();
    let decay: f64 = args[4].parse().unwrap();
    let kappa: f64 = args.get(5).map_or(0.84, |k| k.parse().unwrap());
    let (mean, std) = spectrum(dim, kappa, decay);
    let eps = vec![0.0, 0.2];
    let lambda: Vec<f64> = std.iter().map(|s| s * s).collect();
    let mu2: Vec<f64> = mean.iter().map(|m| m * m).collect();
    let truth: Vec<f64> = eps.iter().map(|&e| population_outcome(&lambda, &mu2, e).accuracy).collect();
    let params = BayesProbeParams::new(eps.clone()).check().unwrap();
    let started = std::time::Instant::now();
    let runs: Vec<Seed> = (0..seeds)
        .into_par_iter()
        .map(|s| {
            let train = gaussian(n, &mean, &std, 1000 + s);
            let test = gaussian(n, &mean, &std, 5000 + s);
            let all = rows(&train, |_| true);
            let moments = rows(&test, |_| true);
            let stat = |stats: &ClassStatistics, test_acc: Option<&[f64]>| -> Stat {
                let probe = params.fit(stats).unwrap();
                let pop = probe.population_outcomes().unwrap();
                let gauss = probe.gaussian_outcomes(&moments).unwrap();
                let exact: Vec<f64> = match test_acc {
                    Some(a) => a.to_vec(),
                    None => vec![f64::NAN; eps.len()],
                };
                (0..eps.len()).map(|e| [pop[e].accuracy, gauss[e].accuracy, exact[e]]).collect()
            };
            let probe = params.fit(&all).unwrap();
            let (outcome, tests) = test_replicates(&probe, &test, G).unwrap();
            let acc: Vec<f64> = outcome.iter().map(|o| o.exact.accuracy).collect();
            let full = stat(&all, Some(&acc));
            let singles: Vec<Stat> = (0..G)
                .into_par_iter()
                .map(|g| stat(&all.without(&rows(&train, |i| i % G == g)).unwrap(), None))
                .collect();
            let pairs: Vec<Stat> = (0..G)
                .into_par_iter()
                .map(|g| {
                    let h = (g + 1) % G;
                    stat(&all.without(&rows(&train, |i| i % G == g || i % G == h)).unwrap(), None)
                })
                .collect();
            let tests = tests.iter().map(|t| t.iter().map(|o| o.exact.accuracy).collect()).collect();
            eprintln!("seed {s} at {:.0} s", started.elapsed().as_secs_f64());
            Seed { full, singles, pairs, tests, counts: [all.count(1), all.count(0)] }
        })
        .collect();
    let k = runs.len() as f64;
    let gf = G as f64;
    println!("D {dim} n {n} decay {decay} kappa {kappa} seeds {seeds}: truth {truth:?}");
    let signal = |a: f64| synbench_theory::normal::quantile(a).powi(2);
    let factors: Vec<f64> = runs
        .iter()
        .map(|r| {
            let at_zero: Vec<f64> = r.singles.iter().map(|s| signal(s[0][0])).collect();
            let closed = synbench_theory::mahalanobis_estimate_variance(signal(r.full[0][0]), r.counts, dim);
            synbench_probe::jackknife::calibration(closed, &at_zero)
        })
        .collect();
    // The train replicates' factor: the plug-in probe's closed-form train variance at ε = 0.
    let train_factors: Vec<f64> = runs
        .iter()
        .map(|r| {
            let at_zero: Vec<f64> = r.singles.iter().map(|s| s[0][1]).collect();
            let closed = synbench_theory::plug_in_accuracy_variance(signal(r.full[0][0]), r.counts, dim);
            synbench_probe::jackknife::calibration(closed, &at_zero)
        })
        .collect();
    for e in 0..eps.len() {
        {
            let values: Vec<f64> = runs.iter().map(|r| r.full[e][0]).collect();
            let m = values.iter().sum::<f64>() / k;
            let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (k - 1.0);
            let cal = runs
                .iter()
                .zip(&factors)
                .map(|(r, c)| {
                    c * synbench_probe::jackknife::standard_error(
                        &r.singles.iter().map(|s| s[e][0]).collect::<Vec<_>>(),
                    )
                    .powi(2)
                })
                .sum::<f64>()
                / k;
            println!("  ε {} population CALIBRATED: sd/se {:.3}", eps[e], (var / cal).sqrt());
        }
        for (q, name) in [(0usize, "population"), (1, "reference train (gauss)")] {
            let values: Vec<f64> = runs.iter().map(|r| r.full[e][q]).collect();
            let m = values.iter().sum::<f64>() / k;
            let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (k - 1.0);
            // Jackknife variance and the summed squared interactions (10 adjacent pairs, scaled to all 45).
            let (mut vj, mut qsum) = (0.0, 0.0);
            for r in &runs {
                let t: Vec<f64> = r.singles.iter().map(|s| s[e][q]).collect();
                let tm = t.iter().sum::<f64>() / gf;
                vj += (gf - 1.0) / gf * t.iter().map(|v| (v - tm).powi(2)).sum::<f64>();
                let mut qq = 0.0;
                for g in 0..G {
                    let h = (g + 1) % G;
                    let i = r.pairs[g][e][q] - t[g] - t[h] + r.full[e][q];
                    qq += i * i;
                }
                qsum += qq * (gf * (gf - 1.0) / 2.0) / gf;
            }
            let (vj, qm) = (vj / k, qsum / k);
            println!(
                "  ε {} {name}: mean {m:.4} (truth {:.4}) seed var {var:.3e}, mean v_J {vj:.3e}, sd/se {:.3}; mean Q {qm:.3e}; α needed {:.3}",
                eps[e],
                truth[e],
                (var / vj).sqrt(),
                (vj - var) / qm
            );
        }
        if e == 0 {
            // ε = 0 closed form (Gaussian), by the delta method from f̂ to the accuracy Φ(√f̂).
            let closed: Vec<f64> = runs
                .iter()
                .map(|r| {
                    let rr = synbench_theory::normal::quantile(r.full[0][0]).max(1e-3);
                    let var_f = synbench_theory::mahalanobis_estimate_variance(rr * rr, r.counts, dim).unwrap();
                    let g = synbench_theory::normal::pdf(rr) / (2.0 * rr);
                    g * g * var_f
                })
                .collect();
            let values: Vec<f64> = runs.iter().map(|r| r.full[0][0]).collect();
            let m = values.iter().sum::<f64>() / k;
            let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (k - 1.0);
            let cm = closed.iter().sum::<f64>() / k;
            println!("  ε 0 population closed-form var {cm:.3e}: sd/se {:.3}", (var / cm).sqrt());
        }
        // Reference exact test accuracy: se from v_train (gauss) + v_test.
        let values: Vec<f64> = runs.iter().map(|r| r.full[e][2]).collect();
        let m = values.iter().sum::<f64>() / k;
        let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (k - 1.0);
        let jack = |t: &[f64]| {
            let tm = t.iter().sum::<f64>() / gf;
            (gf - 1.0) / gf * t.iter().map(|v| (v - tm).powi(2)).sum::<f64>()
        };
        let (mut vtr, mut vte, mut vcal) = (0.0, 0.0, 0.0);
        for (r, c) in runs.iter().zip(&train_factors) {
            let v = jack(&r.singles.iter().map(|s| s[e][1]).collect::<Vec<_>>());
            vtr += v;
            vcal += c * v;
            vte += jack(&r.tests.iter().map(|t| t[e]).collect::<Vec<_>>());
        }
        println!(
            "  ε {} reference exact CALIBRATED: v_train {:.3e} + v_test: sd/se {:.3}",
            eps[e],
            vcal / k,
            (var / ((vcal + vte) / k)).sqrt()
        );
        println!(
            "  ε {} reference exact: mean {m:.4} seed var {var:.3e}, v_train {:.3e} + v_test {:.3e}: sd/se {:.3}",
            eps[e],
            vtr / k,
            vte / k,
            (var / ((vtr + vte) / k)).sqrt()
        );
    }
}
