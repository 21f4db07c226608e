//! The attack QCQP of SPEC §3/§6 in the original feature basis, solved by the
//! clarabel interior-point conic solver:
//!
//! ```text
//! minimise  (μ − z)ᵀ Q (μ − z)   subject to  ‖z‖_p ≤ δ,   p ∈ {2, ∞, 1},
//! ```
//!
//! with `Q` the (pseudo-)inverse of the pooled covariance. Written for clarabel
//! as `½ zᵀ(2Q)z − (2Qμ)ᵀz` with the norm ball as a second-order cone (ℓ2), a
//! box (ℓ∞) or `−t ≤ z ≤ t, Σt ≤ δ` (ℓ1). The ℓ2 case has an exact solver in
//! `synbench-theory`; here it serves as the cross-check of the conic path.

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, NonnegativeConeT, SecondOrderConeT, SolverStatus, SupportedConeT,
};
use ndarray::ArrayView2;

use crate::error::{ProbeError, Result};

/// The norm that bounds the attacker's perturbation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum AttackNorm {
    /// ‖z‖₂ ≤ δ (the reference; exact secular solver).
    #[default]
    L2,
    /// ‖z‖∞ ≤ δ (SPEC §6, conic solver).
    Linf,
    /// ‖z‖₁ ≤ δ (SPEC §6, conic solver).
    L1,
}

impl AttackNorm {
    /// Every norm, the default first.
    pub const ALL: [Self; 3] = [Self::L2, Self::Linf, Self::L1];

    /// The config spelling (`"l2"`, `"linf"`, `"l1"`).
    pub const fn name(self) -> &'static str {
        match self {
            AttackNorm::L2 => "l2",
            AttackNorm::Linf => "linf",
            AttackNorm::L1 => "l1",
        }
    }

    /// `‖v‖_p` in this norm.
    pub fn norm(self, v: &[f64]) -> f64 {
        match self {
            AttackNorm::L2 => v.iter().map(|x| x * x).sum::<f64>().sqrt(),
            AttackNorm::Linf => v.iter().fold(0.0, |m, x| m.max(x.abs())),
            AttackNorm::L1 => v.iter().map(|x| x.abs()).sum(),
        }
    }

    /// The dual norm `‖w‖_q` (1/p + 1/q = 1): the worst-case change of `wᵀh`
    /// under a perturbation of unit `p`-norm.
    pub fn dual_norm(self, w: &[f64]) -> f64 {
        match self {
            AttackNorm::L2 => AttackNorm::L2.norm(w),
            AttackNorm::Linf => AttackNorm::L1.norm(w),
            AttackNorm::L1 => AttackNorm::Linf.norm(w),
        }
    }
}

/// Stopping tolerances handed to clarabel (gap and feasibility), far below its
/// defaults (1e-8): the minimiser then agrees with closed forms to ~1e-10 for
/// box constraints and ~1e-7 for the ℓ2 ball (1e-5 as ε → 1).
pub const CONIC_TOLERANCE: f64 = 1e-13;

/// Solves `min (μ − z)ᵀ Q (μ − z) s.t. ‖z‖_p ≤ δ` with clarabel; `Q` must be
/// symmetric positive semi-definite (only its upper triangle is read).
pub fn solve_attack_qcqp(mu: &[f64], precision: ArrayView2<'_, f64>, delta: f64, norm: AttackNorm) -> Result<Vec<f64>> {
    let d = mu.len();
    if precision.dim() != (d, d) {
        return Err(ProbeError::DimensionMismatch {
            tensor: "precision matrix",
            expected: d,
            found: precision.ncols(),
        });
    }
    if !(delta.is_finite() && delta >= 0.0) {
        return Err(ProbeError::InvalidParameter { name: "delta", value: delta, expected: "a finite radius >= 0" });
    }
    if delta == 0.0 {
        return Ok(vec![0.0; d]);
    }
    // Variables: z (d), plus t (d) for ℓ1.
    let n_var = if norm == AttackNorm::L1 { 2 * d } else { d };

    // P = 2Q, upper triangle, column-major.
    let mut colptr = Vec::with_capacity(n_var + 1);
    let (mut rowval, mut nzval) = (Vec::new(), Vec::new());
    colptr.push(0);
    for j in 0..n_var {
        if j < d {
            for i in 0..=j {
                let v = precision[[i, j]];
                if v != 0.0 {
                    rowval.push(i);
                    nzval.push(2.0 * v);
                }
            }
        }
        colptr.push(rowval.len());
    }
    let p = CscMatrix::new(n_var, n_var, colptr, rowval, nzval);
    let mut q = vec![0.0; n_var];
    for (j, qj) in q.iter_mut().enumerate().take(d) {
        *qj = -2.0 * (0..d).map(|i| precision[[i, j]] * mu[i]).sum::<f64>();
    }

    // Constraints A x + s = b, s ∈ cones.
    let (mut ti, mut tj, mut tv) = (Vec::new(), Vec::new(), Vec::new());
    let mut b = Vec::new();
    let cones: Vec<SupportedConeT<f64>> = match norm {
        AttackNorm::L2 => {
            // s = (δ, z) ∈ SOC: row 0 is δ, rows 1..=d carry −z.
            b.push(delta);
            for i in 0..d {
                ti.push(1 + i);
                tj.push(i);
                tv.push(-1.0);
                b.push(0.0);
            }
            vec![SecondOrderConeT(d + 1)]
        }
        AttackNorm::Linf => {
            // z ≤ δ and −z ≤ δ.
            for i in 0..d {
                ti.extend([i, d + i]);
                tj.extend([i, i]);
                tv.extend([1.0, -1.0]);
            }
            b.extend(std::iter::repeat_n(delta, 2 * d));
            vec![NonnegativeConeT(2 * d)]
        }
        AttackNorm::L1 => {
            // z − t ≤ 0, −z − t ≤ 0, Σ t ≤ δ.
            for i in 0..d {
                ti.extend([i, i, d + i, d + i, 2 * d]);
                tj.extend([i, d + i, i, d + i, d + i]);
                tv.extend([1.0, -1.0, -1.0, -1.0, 1.0]);
            }
            b.extend(std::iter::repeat_n(0.0, 2 * d));
            b.push(delta);
            vec![NonnegativeConeT(2 * d + 1)]
        }
    };
    let a = CscMatrix::new_from_triplets(b.len(), n_var, ti, tj, tv);

    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(CONIC_TOLERANCE)
        .tol_gap_rel(CONIC_TOLERANCE)
        .tol_feas(CONIC_TOLERANCE)
        .max_iter(200)
        .build()
        .expect("static clarabel settings are valid");
    let solver_error = |status: String| ProbeError::Solver { status, norm: norm.name(), dim: d };
    let mut solver = DefaultSolver::new(&p, &q, &a, &b, &cones, settings).map_err(|e| solver_error(e.to_string()))?;
    solver.solve();
    match solver.solution.status {
        SolverStatus::Solved | SolverStatus::AlmostSolved => Ok(solver.solution.x[..d].to_vec()),
        status => Err(solver_error(format!("{status:?}"))),
    }
}
