//! Linear probing on real features through linfa (SPEC §6): the standard
//! probe is linfa-logistic; the ε-robust probe is a linfa algorithm of its own
//! ([`RobustLogisticParams`] → [`RobustLogisticValidParams`] → `Fit` →
//! [`FittedRobustLogistic`] with `Predict`). For a linear model the worst case
//! over an ε-ball is exact, so attacked accuracy is computed, not estimated.

use linfa::ParamGuard;
use linfa::dataset::{AsSingleTargets, DatasetBase};
use linfa::traits::{Fit, PredictInplace};
use linfa_logistic::{
    FittedLogisticRegression, LogisticRegression, MultiFittedLogisticRegression, MultiLogisticRegression,
};
use ndarray::{Array1, Array2, ArrayBase, ArrayView1, ArrayView2, Data, Ix2};

use crate::attack::AttackNorm;
use crate::error::{ProbeError, Result, check_batch, check_finite, check_label_count};

/// A linear binary classifier `h ↦ 1 if wᵀh + b > 0 else 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// The weights `w`.
    pub weights: Array1<f64>,
    /// The intercept `b`.
    pub intercept: f64,
}

impl LinearModel {
    /// A model from its weights and intercept.
    pub fn new(weights: Array1<f64>, intercept: f64) -> Self {
        Self { weights, intercept }
    }

    /// The binary linfa-logistic model, oriented so that a positive decision
    /// value means class 1 (linfa-logistic picks its own positive class).
    pub fn from_logistic(fitted: &FittedLogisticRegression<f64, u8>) -> Self {
        let sign = if fitted.labels().pos.class == 1 { 1.0 } else { -1.0 };
        Self { weights: fitted.params() * sign, intercept: fitted.intercept() * sign }
    }

    /// Decision values `wᵀh + b`.
    pub fn decision<D: Data<Elem = f64>>(&self, features: &ArrayBase<D, Ix2>) -> Array1<f64> {
        features.dot(&self.weights) + self.intercept
    }

    /// Share of samples classified correctly without attack.
    pub fn clean_accuracy(&self, features: ArrayView2<'_, f64>, labels: ArrayView1<'_, u8>) -> Result<f64> {
        self.robust_accuracy(features, labels, 0.0, AttackNorm::L2)
    }

    /// Exact attacked accuracy under `‖δh‖_p ≤ ε`: a sample is robustly
    /// correct iff `y·(wᵀh + b) − ε·‖w‖_q > 0`, `y = ±1`, `q` the dual norm.
    pub fn robust_accuracy(
        &self,
        features: ArrayView2<'_, f64>,
        labels: ArrayView1<'_, u8>,
        epsilon: f64,
        norm: AttackNorm,
    ) -> Result<f64> {
        check_batch(&features, &labels, self.weights.len(), "features", "labels")?;
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(ProbeError::InvalidParameter { name: "epsilon", value: epsilon, expected: "a radius >= 0" });
        }
        let slack = epsilon * norm.dual_norm(self.weights.as_slice().expect("contiguous"));
        let decision = self.decision(&features);
        let robust = decision.iter().zip(labels).filter(|&(&v, &y)| signed(y) * v - slack > 0.0).count();
        Ok(robust as f64 / labels.len().max(1) as f64)
    }
}

fn signed(label: u8) -> f64 {
    if label == 1 { 1.0 } else { -1.0 }
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<u8>> for LinearModel {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<u8>) {
        assert_eq!(x.nrows(), y.len(), "one prediction per row");
        for (out, v) in y.iter_mut().zip(self.decision(x)) {
            *out = u8::from(v > 0.0);
        }
    }
    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<u8> {
        Array1::zeros(x.nrows())
    }
}

/// A linfa dataset of `f64` features `[n, d]` with one label per row.
pub type FeatureDataset<T> = DatasetBase<Array2<f64>, Array1<T>>;

/// A linfa dataset in `f64` from `f32` encoder features, rejecting NaN/∞.
pub fn features_dataset<T: Clone>(
    features: ArrayView2<'_, f32>,
    labels: ArrayView1<'_, T>,
) -> Result<FeatureDataset<T>> {
    check_finite(&features, "features")?;
    check_label_count(features.nrows(), labels.len(), "labels")?;
    Ok(DatasetBase::new(features.mapv(f64::from), labels.to_owned()))
}

/// The standard binary probe: L2-regularised logistic regression by linfa-logistic.
pub fn fit_logistic(dataset: &FeatureDataset<u8>, alpha: f64, max_iterations: u64) -> Result<LinearModel> {
    let fitted = LogisticRegression::default().alpha(alpha).max_iterations(max_iterations).fit(dataset)?;
    Ok(LinearModel::from_logistic(&fitted))
}

/// The standard multi-class probe: multinomial logistic regression by linfa-logistic.
pub fn fit_multinomial_logistic(
    dataset: &FeatureDataset<usize>,
    alpha: f64,
    max_iterations: u64,
) -> Result<MultiFittedLogisticRegression<f64, usize>> {
    Ok(MultiLogisticRegression::default().alpha(alpha).max_iterations(max_iterations).fit(dataset)?)
}

/// Checked parameters of the ε-robust logistic probe.
#[derive(Debug, Clone, PartialEq)]
pub struct RobustLogisticValidParams {
    epsilon: f64,
    attack: AttackNorm,
    alpha: f64,
    max_iterations: u64,
    gradient_tolerance: f64,
    smoothing: f64,
}

/// Unchecked parameters of the ε-robust logistic probe, which minimises
///
/// ```text
/// (1/n) Σᵢ log(1 + exp(−[yᵢ(wᵀhᵢ + b) − ε‖w‖_q])) + (α/2)‖w‖²,   yᵢ = ±1,
/// ```
///
/// the logistic loss of the worst-case margin over `‖δh‖_p ≤ ε` (SPEC §6).
/// The dual norm is smoothed as `Σ √(wᵢ² + κ²) − κ` (ℓ1) or `√(‖w‖² + κ²) − κ`
/// (ℓ2) so that full-batch gradient descent with Armijo backtracking (and
/// Barzilai–Borwein trial steps) converges; κ defaults to 1e-8.
#[derive(Debug, Clone, PartialEq)]
pub struct RobustLogisticParams(RobustLogisticValidParams);

impl RobustLogisticParams {
    /// Robust logistic regression against an `attack`-norm ball of radius `epsilon`
    /// (in feature units); ℓ2 and ℓ∞ attacks are supported.
    pub fn new(epsilon: f64, attack: AttackNorm) -> Self {
        Self(RobustLogisticValidParams {
            epsilon,
            attack,
            alpha: 1e-4,
            max_iterations: 5000,
            gradient_tolerance: 1e-7,
            smoothing: 1e-8,
        })
    }
    /// L2 penalty α ≥ 0 on the weights.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.0.alpha = alpha;
        self
    }
    /// Iteration budget of the gradient descent.
    pub fn max_iterations(mut self, max_iterations: u64) -> Self {
        self.0.max_iterations = max_iterations;
        self
    }
    /// Stop, converged, when the largest absolute gradient entry (weights
    /// and intercept) is at most this tolerance times the largest entry of
    /// the gradient at the start (`w = 0, b = 0`) where that exceeds 1, so
    /// that the test is absolute for features of unit scale and otherwise
    /// does not depend on the features' units. Default 1e-7.
    pub fn gradient_tolerance(mut self, tolerance: f64) -> Self {
        self.0.gradient_tolerance = tolerance;
        self
    }
    /// Smoothing κ > 0 of the dual norm.
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.0.smoothing = smoothing;
        self
    }
}

impl ParamGuard for RobustLogisticParams {
    type Checked = RobustLogisticValidParams;
    type Error = ProbeError;

    fn check_ref(&self) -> Result<&RobustLogisticValidParams> {
        let p = &self.0;
        let positive = |name, value: f64, allow_zero: bool| {
            if value.is_finite() && (value > 0.0 || (allow_zero && value == 0.0)) {
                Ok(())
            } else {
                Err(ProbeError::InvalidParameter {
                    name,
                    value,
                    expected: if allow_zero { "a finite number >= 0" } else { "a finite number > 0" },
                })
            }
        };
        positive("epsilon", p.epsilon, true)?;
        positive("alpha", p.alpha, true)?;
        positive("gradient_tolerance", p.gradient_tolerance, false)?;
        positive("smoothing", p.smoothing, false)?;
        if p.attack == AttackNorm::L1 {
            return Err(ProbeError::InvalidParameter {
                name: "attack",
                value: f64::NAN,
                expected: "l2 or linf (the l1 attack's dual norm, l-infinity, is not smoothed here)",
            });
        }
        if p.max_iterations == 0 {
            return Err(ProbeError::InvalidParameter { name: "max_iterations", value: 0.0, expected: "at least 1" });
        }
        Ok(p)
    }

    fn check(self) -> Result<RobustLogisticValidParams> {
        self.check_ref()?;
        Ok(self.0)
    }
}

/// A fitted ε-robust logistic probe.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedRobustLogistic {
    /// The linear classifier.
    pub model: LinearModel,
    /// Gradient steps taken.
    pub iterations: u64,
    /// Whether the returned iterate meets the gradient tolerance (see
    /// [`RobustLogisticParams::gradient_tolerance`]). False when the
    /// iteration budget ran out first, or when the line search stalled (no
    /// step down to 1e-20 decreases the objective) away from a stationary
    /// point.
    pub converged: bool,
    /// Final value of the objective.
    pub objective: f64,
}

impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<u8>> for FittedRobustLogistic {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<u8>) {
        self.model.predict_inplace(x, y);
    }
    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<u8> {
        Array1::zeros(x.nrows())
    }
}

impl RobustLogisticValidParams {
    /// `(N(w), ∇N(w))` of the smoothed dual norm.
    fn dual_norm(&self, w: &Array1<f64>) -> (f64, Array1<f64>) {
        let k = self.smoothing;
        match self.attack {
            AttackNorm::L2 => {
                let r = (w.dot(w) + k * k).sqrt();
                (r - k, w / r)
            }
            // ℓ∞ attack: the dual is ℓ1.
            _ => {
                let roots = w.mapv(|v| (v * v + k * k).sqrt());
                (roots.sum() - k * w.len() as f64, w / &roots)
            }
        }
    }

    /// Objective and gradient at `(w, b)`; `s` holds the labels as ±1.
    fn objective<D: Data<Elem = f64>>(
        &self,
        x: &ArrayBase<D, Ix2>,
        s: &Array1<f64>,
        w: &Array1<f64>,
        b: f64,
    ) -> (f64, Array1<f64>, f64) {
        let n = s.len() as f64;
        let (norm, norm_grad) = self.dual_norm(w);
        let margins = (x.dot(w) + b) * s - self.epsilon * norm;
        // softplus(−m), and d/dm softplus(−m) = −σ(−m).
        let loss: f64 = margins.iter().map(|&m| softplus(-m)).sum::<f64>() / n + 0.5 * self.alpha * w.dot(w);
        let g = margins.mapv(|m| -sigmoid(-m) / n);
        let gs = &g * s;
        let grad_w = x.t().dot(&gs) - norm_grad * (self.epsilon * g.sum()) + w * self.alpha;
        (loss, grad_w, gs.sum())
    }
}

/// The smallest step the line search tries before it gives up.
const MIN_STEP: f64 = 1e-20;

/// The largest absolute entry of the gradient `(gw, gb)`; NaN if any entry is
/// NaN (so a NaN gradient never passes the tolerance).
fn max_abs(gw: &Array1<f64>, gb: f64) -> f64 {
    gw.iter().fold(gb.abs(), |m, &v| if v.abs() > m || v.is_nan() { v.abs() } else { m })
}

fn softplus(t: f64) -> f64 {
    t.max(0.0) + (-t.abs()).exp().ln_1p()
}

fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

impl<D: Data<Elem = f64>, T: AsSingleTargets<Elem = u8>> Fit<ArrayBase<D, Ix2>, T, ProbeError>
    for RobustLogisticValidParams
{
    type Object = FittedRobustLogistic;

    fn fit(&self, dataset: &DatasetBase<ArrayBase<D, Ix2>, T>) -> Result<FittedRobustLogistic> {
        let x = dataset.records();
        let labels = dataset.as_single_targets();
        check_batch(&x.view(), &labels, x.ncols(), "features", "labels")?;
        if x.nrows() == 0 {
            return Err(linfa::Error::NotEnoughSamples.into());
        }
        let s = labels.mapv(signed);
        let (mut w, mut b) = (Array1::zeros(x.ncols()), 0.0);
        let (mut f, mut gw, mut gb) = self.objective(x, &s, &w, b);
        // The gradient in w scales with the features; so that the test does
        // not depend on their units, the tolerance is relative to the
        // gradient at the start where that exceeds 1 (absolute below).
        let tolerance = self.gradient_tolerance * max_abs(&gw, gb).max(1.0);
        let mut step = 1.0;
        let mut iterations = 0;
        let converged = loop {
            if max_abs(&gw, gb) <= tolerance {
                break true;
            }
            if iterations == self.max_iterations {
                break false;
            }
            let g2 = gw.dot(&gw) + gb * gb;
            // Armijo backtracking from the trial step.
            let accepted = loop {
                let w_try = &w - &(&gw * step);
                let b_try = b - step * gb;
                let (f_try, gw_try, gb_try) = self.objective(x, &s, &w_try, b_try);
                if f_try <= f - 1e-4 * step * g2 {
                    break Some((w_try, b_try, f_try, gw_try, gb_try));
                }
                step *= 0.5;
                if step < MIN_STEP {
                    break None;
                }
            };
            // No step down to MIN_STEP decreases the objective. The iterate
            // stays where it was, and its gradient has just failed the
            // tolerance: a stall (of a badly conditioned or nearly
            // non-smooth objective, e.g. a tiny κ), not a stationary point.
            let Some((w_new, b_new, f_new, gw_new, gb_new)) = accepted else {
                break false;
            };
            iterations += 1;
            // Barzilai–Borwein trial step for the next iteration.
            let (dw, db) = (&w_new - &w, b_new - b);
            let (yw, yb) = (&gw_new - &gw, gb_new - gb);
            let sy = dw.dot(&yw) + db * yb;
            let ss = dw.dot(&dw) + db * db;
            step = if sy > 0.0 { (ss / sy).clamp(1e-10, 1e10) } else { step * 2.0 };
            (w, b, f, gw, gb) = (w_new, b_new, f_new, gw_new, gb_new);
        };
        Ok(FittedRobustLogistic { model: LinearModel::new(w, b), iterations, converged, objective: f })
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    use super::*;

    /// `x | y ~ N(0.3 ± (1, 0.25), diag(1, 0.1²))·scale`: coordinate 2 is
    /// informative but erased by an attack of 0.25·scale, coordinate 1 survives.
    fn two_features(n: usize, scale: f64, seed: u64) -> FeatureDataset<u8> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let labels: Array1<u8> = (0..n).map(|_| u8::from(rng.gen_bool(0.5))).collect();
        let mut x = Array2::zeros((n, 2));
        for (mut row, &y) in x.outer_iter_mut().zip(&labels) {
            for (j, (mean, std)) in [(1.0, 1.0), (0.25, 0.1)].into_iter().enumerate() {
                let z: f64 = StandardNormal.sample(&mut rng);
                row[j] = scale * (0.3 + signed(y) * mean + std * z);
            }
        }
        DatasetBase::new(x, labels)
    }

    /// The largest gradient entry of the objective at the fitted model, and at the start.
    fn gradients(
        params: &RobustLogisticValidParams,
        data: &FeatureDataset<u8>,
        fitted: &FittedRobustLogistic,
    ) -> (f64, f64) {
        let s = data.targets().mapv(signed);
        let (_, gw, gb) = params.objective(data.records(), &s, &fitted.model.weights, fitted.model.intercept);
        let (_, gw0, gb0) = params.objective(data.records(), &s, &Array1::zeros(2), 0.0);
        (max_abs(&gw, gb), max_abs(&gw0, gb0))
    }

    #[test]
    fn an_optimum_is_converged_with_a_small_gradient_and_a_short_budget_is_not() {
        let data = two_features(1000, 1.0, 8);
        let params = RobustLogisticParams::new(0.25, AttackNorm::L2).check().unwrap();
        let fitted = params.fit(&data).unwrap();
        let (gradient, start) = gradients(&params, &data, &fitted);
        println!("{} steps, gradient {gradient:e} (start {start:e})", fitted.iterations);
        assert!(start < 1.0, "unit features: the tolerance is absolute");
        assert!(fitted.converged && fitted.iterations < 5000, "{} steps", fitted.iterations);
        assert!(gradient <= 1e-7, "converged with gradient {gradient:e}");
        let short = RobustLogisticParams::new(0.25, AttackNorm::L2).max_iterations(3).check().unwrap();
        let stopped = short.fit(&data).unwrap();
        let (gradient, _) = gradients(&short, &data, &stopped);
        assert!(!stopped.converged && stopped.iterations == 3, "{stopped:?}");
        assert!(gradient > 1e-3, "3 steps already at gradient {gradient:e}");
    }

    #[test]
    fn a_stalled_line_search_is_not_reported_converged() {
        // With κ = 1e-150 the smoothed ℓ1 norm bends over 1e-150 around
        // w₂ = 0, where the ℓ∞-robust optimum sits: no step ≥ 1e-20 decreases
        // the objective there, though its gradient in w₂ is far from 0.
        let data = two_features(1000, 1.0, 8);
        let params = RobustLogisticParams::new(0.25, AttackNorm::Linf).smoothing(1e-150).check().unwrap();
        let fitted = params.fit(&data).unwrap();
        let (gradient, _) = gradients(&params, &data, &fitted);
        println!("stalled after {} steps at gradient {gradient:e}", fitted.iterations);
        assert!(fitted.iterations < 5000, "the budget, not a stall, ended the fit: {fitted:?}");
        assert!(gradient > 1e-4, "stalled at gradient {gradient:e}");
        assert!(!fitted.converged, "a stall at gradient {gradient:e} reported as converged");
        // The same objective with the default κ = 1e-8 has a reachable optimum.
        let smooth = RobustLogisticParams::new(0.25, AttackNorm::Linf).check().unwrap();
        let fitted = smooth.fit(&data).unwrap();
        let (gradient, _) = gradients(&smooth, &data, &fitted);
        println!("κ = 1e-8: {} steps, gradient {gradient:e}", fitted.iterations);
        assert!(fitted.converged && gradient <= 1e-7, "{fitted:?}: gradient {gradient:e}");
    }

    #[test]
    fn the_tolerance_follows_the_units_of_the_features() {
        // Features ×100 with ε ×100, κ / 100 and α ×100² is the same problem
        // in w/100, whose weight gradient is 100× larger: an absolute 1e-7
        // would ask 100× more of it. (The intercept keeps its units, so the
        // scaled problem is worse conditioned and needs more steps.)
        let (unit, scaled) = (two_features(1000, 1.0, 8), two_features(1000, 100.0, 8));
        let fit = |data: &FeatureDataset<u8>, k: f64| {
            let params = RobustLogisticParams::new(0.25 * k, AttackNorm::L2)
                .smoothing(1e-8 / k)
                .alpha(1e-4 * k * k)
                .max_iterations(20_000)
                .check()
                .unwrap();
            let fitted = params.fit(data).unwrap();
            let (gradient, start) = gradients(&params, data, &fitted);
            println!("×{k}: {} steps, gradient {gradient:e} (start {start:e})", fitted.iterations);
            assert!(fitted.converged, "×{k}: {fitted:?}, gradient {gradient:e}");
            assert!(gradient <= 1e-7 * start.max(1.0), "×{k}: gradient {gradient:e}");
            (fitted, gradient)
        };
        let ((a, _), (b, gradient)) = (fit(&unit, 1.0), fit(&scaled, 100.0));
        assert!(gradient > 1e-7, "×100 stopped at {gradient:e}: the absolute test, not the relative one");
        // One objective, the same optimum up to its flat (α-curved) direction.
        assert!((a.objective - b.objective).abs() < 1e-8, "{} vs {}", a.objective, b.objective);
        let w = &b.model.weights * 100.0;
        assert!((&w - &a.model.weights).iter().all(|d| d.abs() < 1e-3), "{w} vs {}", a.model.weights);
        assert!((b.model.intercept - a.model.intercept).abs() < 1e-3);
    }
}
