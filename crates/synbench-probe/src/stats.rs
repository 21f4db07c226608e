//! Streaming class statistics for the Bayes probe (SPEC §3, step 1).
//!
//! Features are folded batch by batch in `f64`: each batch is centred on its
//! own class means and reduced with one matrix–matrix product per class
//! (`Uᵀ U`), then merged into the running totals with Chan's pairwise update
//! of `(n, mean, M2)`. Memory is O(d²) whatever the number of samples, and two
//! partial results (e.g. from different threads) merge exactly the same way.
//!
//! Beside `M2` each class keeps `Σ‖u‖⁴` and `Σ‖u‖²u` about a fixed anchor, so
//! the fourth-moment term of the Ledoit–Wolf shrinkage (SPEC §6) is available
//! without a second pass.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::error::{ProbeError, Result, check_batch};

/// Running moments of one class.
#[derive(Debug, Clone, PartialEq)]
struct ClassMoments {
    count: u64,
    mean: Array1<f64>,
    /// Σ (x − mean)(x − mean)ᵀ.
    m2: Array2<f64>,
    /// Anchor `K` of the fourth-moment sums (the class mean of the first batch).
    anchor: Array1<f64>,
    /// Σ ‖x − K‖⁴.
    fourth: f64,
    /// Σ ‖x − K‖² (x − K).
    third: Array1<f64>,
}

impl ClassMoments {
    fn empty(dim: usize) -> Self {
        Self {
            count: 0,
            mean: Array1::zeros(dim),
            m2: Array2::zeros((dim, dim)),
            anchor: Array1::zeros(dim),
            fourth: 0.0,
            third: Array1::zeros(dim),
        }
    }

    /// Moments of the rows of one batch, anchored at their own mean.
    fn of_rows(rows: ArrayView2<'_, f64>) -> Self {
        let count = rows.nrows() as u64;
        let mean = rows.mean_axis(Axis(0)).expect("non-empty rows");
        let centred = &rows - &mean;
        let m2 = centred.t().dot(&centred);
        let sq_norms = centred.map_axis(Axis(1), |r| r.dot(&r));
        let fourth = sq_norms.dot(&sq_norms);
        let third = centred.t().dot(&sq_norms);
        Self { count, anchor: mean.clone(), mean, m2, fourth, third }
    }

    /// `Σ u uᵀ` and `Σ u` about the anchor.
    fn raw_about_anchor(&self) -> (Array2<f64>, Array1<f64>) {
        let a = &self.mean - &self.anchor;
        let n = self.count as f64;
        let outer = outer(&a.view(), &a.view());
        (&self.m2 + &(outer * n), a * n)
    }

    /// `(Σ‖x − K'‖⁴, Σ‖x − K'‖²(x − K'))` for a new anchor `K'`.
    fn fourth_moments_about(&self, new_anchor: &Array1<f64>) -> (f64, Array1<f64>) {
        if self.count == 0 {
            return (0.0, Array1::zeros(self.mean.len()));
        }
        // u' = u − e with u = x − K, e = K' − K; expand ‖u − e‖⁴ and ‖u − e‖²(u − e).
        let e = new_anchor - &self.anchor;
        let (suu, su) = self.raw_about_anchor();
        let n = self.count as f64;
        let c = e.dot(&e);
        let sum_sq = suu.diag().sum();
        let suu_e = suu.dot(&e);
        let e_su = e.dot(&su);
        let fourth = self.fourth - 4.0 * e.dot(&self.third) + 4.0 * e.dot(&suu_e) + 2.0 * c * sum_sq - 4.0 * c * e_su
            + n * c * c;
        let third = &self.third - &(suu_e * 2.0) + &(&su * c) - &(&e * sum_sq) + &(&e * (2.0 * e_su)) - &(&e * (n * c));
        (fourth, third)
    }

    /// Chan's pairwise merge of `(n, mean, M2)`; the fourth-moment sums are
    /// re-anchored to `self`'s anchor first.
    fn merge(&mut self, other: &ClassMoments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let (fourth, third) = other.fourth_moments_about(&self.anchor);
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let delta = &other.mean - &self.mean;
        self.mean = &self.mean + &(&delta * (nb / n));
        self.m2 = &self.m2 + &other.m2 + &(outer(&delta.view(), &delta.view()) * (na * nb / n));
        self.fourth += fourth;
        self.third = &self.third + &third;
        self.count += other.count;
    }
}

impl ClassMoments {
    /// The inverse of [`ClassMoments::merge`]: the moments of the samples of
    /// `self` that are not in `part` (a subset folded on its own).
    fn remove(&mut self, part: &ClassMoments) {
        if part.count == 0 {
            return;
        }
        if part.count >= self.count {
            *self = ClassMoments::empty(self.mean.len());
            return;
        }
        let (fourth, third) = part.fourth_moments_about(&self.anchor);
        let (n, nb) = (self.count as f64, part.count as f64);
        let na = n - nb;
        let mean = (&self.mean * n - &part.mean * nb) / na;
        let delta = &part.mean - &mean;
        self.m2 = &self.m2 - &part.m2 - &(outer(&delta.view(), &delta.view()) * (na * nb / n));
        self.mean = mean;
        self.fourth -= fourth;
        self.third = &self.third - &third;
        self.count -= part.count;
    }
}

fn outer(a: &ArrayView1<'_, f64>, b: &ArrayView1<'_, f64>) -> Array2<f64> {
    let a2 = a.view().insert_axis(Axis(1));
    let b2 = b.view().insert_axis(Axis(0));
    a2.dot(&b2)
}

/// Streaming per-class counts, means and scatter matrices of binary-labelled
/// features (label 1 = positive class, 0 = negative class).
#[derive(Debug, Clone, PartialEq)]
pub struct ClassStatistics {
    dim: usize,
    /// Index 0: class y = 0; index 1: class y = 1.
    classes: [ClassMoments; 2],
}

impl ClassStatistics {
    /// Empty statistics for `dim` features.
    pub fn new(dim: usize) -> Self {
        Self { dim, classes: [ClassMoments::empty(dim), ClassMoments::empty(dim)] }
    }

    /// Statistics of a single batch.
    pub fn from_batch(features: ArrayView2<'_, f32>, labels: ArrayView1<'_, u8>) -> Result<Self> {
        let mut stats = Self::new(features.ncols());
        stats.fold(features, labels)?;
        Ok(stats)
    }

    /// Feature dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Folds one batch of features `[n, d]` with labels in {0, 1}.
    pub fn fold(&mut self, features: ArrayView2<'_, f32>, labels: ArrayView1<'_, u8>) -> Result<()> {
        check_batch(&features, &labels, self.dim, "train features", "train labels")?;
        for class in 0..2u8 {
            let rows: Vec<usize> = labels.iter().enumerate().filter(|&(_, &y)| y == class).map(|(i, _)| i).collect();
            if rows.is_empty() {
                continue;
            }
            let selected = features.select(Axis(0), &rows).mapv(f64::from);
            self.classes[usize::from(class)].merge(&ClassMoments::of_rows(selected.view()));
        }
        Ok(())
    }

    /// Merges statistics folded elsewhere (another thread, another shard).
    pub fn merge(&mut self, other: &ClassStatistics) -> Result<()> {
        if other.dim != self.dim {
            return Err(ProbeError::MergeMismatch { expected: self.dim, found: other.dim });
        }
        for (mine, theirs) in self.classes.iter_mut().zip(&other.classes) {
            mine.merge(theirs);
        }
        Ok(())
    }

    /// The statistics without the samples of `part` (a subset of the samples
    /// folded here, folded on its own): the delete-a-group replicates of a
    /// jackknife, without refolding the rest.
    pub fn without(&self, part: &ClassStatistics) -> Result<ClassStatistics> {
        if part.dim != self.dim {
            return Err(ProbeError::MergeMismatch { expected: self.dim, found: part.dim });
        }
        let mut rest = self.clone();
        for (mine, theirs) in rest.classes.iter_mut().zip(&part.classes) {
            mine.remove(theirs);
        }
        Ok(rest)
    }

    /// Samples of class `label` (0 or 1) seen so far.
    pub fn count(&self, label: u8) -> u64 {
        self.classes.get(usize::from(label)).map_or(0, |c| c.count)
    }

    /// Mean of class `label` (μ₁ for 1, μ₀ for 0). Panics for labels other than 0 and 1.
    pub fn class_mean(&self, label: u8) -> &Array1<f64> {
        &self.classes[usize::from(label)].mean
    }

    /// Fails unless both classes have at least two samples.
    pub fn ensure_estimable(&self) -> Result<()> {
        for class in [1u8, 0] {
            let count = self.count(class);
            if count < 2 {
                return Err(ProbeError::TooFewSamples { class, count });
            }
        }
        Ok(())
    }

    /// `wᵀC_y w` for the unbiased covariance `C_y` of class `label` (1 or
    /// 0), without forming `C_y`.
    pub fn class_variance_along(&self, label: u8, w: &Array1<f64>) -> Result<f64> {
        self.ensure_estimable()?;
        let class = &self.classes[usize::from(label == 1)];
        Ok(w.dot(&class.m2.dot(w)) / (class.count as f64 - 1.0))
    }

    /// The pooled covariance `S = [(n₁−1)C₁ + (n₀−1)C₀]/(n − 2)` (SPEC §3).
    pub fn pooled_covariance(&self) -> Result<Array2<f64>> {
        self.ensure_estimable()?;
        let n = (self.count(0) + self.count(1)) as f64;
        Ok((&self.classes[0].m2 + &self.classes[1].m2) / (n - 2.0))
    }

    /// Ledoit–Wolf shrinkage coefficient `ρ ∈ [0, 1]` of the class-centred
    /// samples towards a scaled identity (the estimator of scikit-learn's
    /// `ledoit_wolf_shrinkage`, with the class means removed).
    pub fn ledoit_wolf_shrinkage(&self) -> Result<f64> {
        self.ensure_estimable()?;
        let n = (self.count(0) + self.count(1)) as f64;
        let d = self.dim as f64;
        let emp = (&self.classes[0].m2 + &self.classes[1].m2) / n;
        let trace_mean = emp.diag().sum() / d;
        let frob2 = emp.iter().map(|v| v * v).sum::<f64>();
        // ‖emp − mI‖² = ‖emp‖² − 2m·tr(emp) + m²d = ‖emp‖² − m²d.
        let delta2 = (frob2 - trace_mean * trace_mean * d) / d;
        let fourth: f64 = self.classes.iter().map(|c| c.fourth_moments_about(&c.mean).0).sum();
        // (1/n²) Σ ‖x̃x̃ᵀ − emp‖² = (Σ‖x̃‖⁴ − n‖emp‖²)/n².
        let beta2 = ((fourth - n * frob2) / (n * n) / d).max(0.0);
        if delta2 <= 0.0 {
            return Ok(0.0);
        }
        Ok(beta2.min(delta2) / delta2)
    }
}
