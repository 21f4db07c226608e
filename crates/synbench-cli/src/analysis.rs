//! Rank and linear correlations between SynBench scores and downstream
//! accuracies (`synbench correlate`), defined as scipy.stats defines them:
//! Pearson's r, Spearman's ρ (Pearson of average ranks, so ties share a
//! rank) and Kendall's τ-b (tie-corrected). Undefined values (fewer than two
//! pairs, a constant input, a NaN) are NaN.

/// Pearson's correlation coefficient.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "pearson: paired samples");
    let n = x.len();
    if n < 2 || x.iter().chain(y).any(|v| !v.is_finite()) {
        return f64::NAN;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return f64::NAN;
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// Ranks from 1, ties sharing the mean of their ranks (scipy's `rankdata`).
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rank correlation.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "spearman: paired samples");
    if x.iter().chain(y).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    pearson(&average_ranks(x), &average_ranks(y))
}

/// Kendall's τ-b: (concordant − discordant) / √((n₀ − n₁)(n₀ − n₂)), with
/// n₁, n₂ the pairs tied in x, in y.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "kendall: paired samples");
    let n = x.len();
    if n < 2 || x.iter().chain(y).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let (mut concordant, mut discordant, mut tied_x, mut tied_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = (x[i] - x[j]).partial_cmp(&0.0).expect("not NaN") as i64;
            let dy = (y[i] - y[j]).partial_cmp(&0.0).expect("not NaN") as i64;
            match (dx, dy) {
                (0, 0) => {
                    tied_x += 1;
                    tied_y += 1;
                }
                (0, _) => tied_x += 1,
                (_, 0) => tied_y += 1,
                _ if dx == dy => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let pairs = (n * (n - 1) / 2) as i64;
    let denominator = (((pairs - tied_x) * (pairs - tied_y)) as f64).sqrt();
    if denominator == 0.0 {
        return f64::NAN;
    }
    (concordant - discordant) as f64 / denominator
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values from scipy.stats 1.17.1 (pearsonr, spearmanr, kendalltau
    // with its default variant "b"), computed for these inputs.
    fn check(x: &[f64], y: &[f64], expected: [f64; 3]) {
        let got = [pearson(x, y), spearman(x, y), kendall_tau_b(x, y)];
        for (name, (g, e)) in ["pearson", "spearman", "kendall"].iter().zip(got.iter().zip(expected)) {
            assert!((g - e).abs() < 1e-12, "{name}: got {g}, scipy gives {e}");
        }
    }

    #[test]
    fn no_ties() {
        check(
            &[0.61, 0.72, 0.55, 0.80, 0.67],
            &[71.2, 75.0, 69.8, 81.3, 70.1],
            [0.8929718646707031, 0.8999999999999998, 0.7999999999999999],
        );
    }

    #[test]
    fn ties_in_both() {
        check(
            &[1.0, 2.0, 2.0, 3.0, 4.0, 4.0],
            &[10.0, 20.0, 30.0, 30.0, 50.0, 40.0],
            [0.9341987329938275, 0.9404032585917882, 0.8894991799933215],
        );
    }

    #[test]
    fn perfect_inverse_and_undefined() {
        check(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0], [-1.0, -1.0, -1.0]);
        assert!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
        assert!(kendall_tau_b(&[1.0], &[2.0]).is_nan());
        assert!(spearman(&[1.0, f64::NAN], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(average_ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }
}
