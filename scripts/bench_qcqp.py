"""cvxpy/SCS baseline for the ℓ2 QCQP of the ε-robust Bayes probe (SPEC §3.4).

Measures the wall time of one reference-style solve of

    z* = argmin_{‖z‖₂ ≤ δ} (μ − z)ᵀ diag(1/λ) (μ − z),   δ = ε‖μ‖₂,

at the feature width of a ViT-B (d = 768), and how far SCS's z lies from the
exact solution z_i = μ_i / (1 + ν·λ_i), with ν found here by bisection to
machine precision. It is the Python side of the "QCQP ≥ 1000× a cvxpy/SCS
solve at d = 768" benchmark: the Rust side (synbench-probe's exact secular
solve, benches/) solves the same instance family in closed form.

Each timed solve builds the cvxpy problem and solves it, as the reference
does once per scale and ε. Two formulations are timed:

* ``quad_form`` — the reference's: ``quad_form(μ − z, np.diag(1/λ))`` with
  ``pnorm(z) <= δ``, a dense d×d matrix (cvxpy checks it is PSD and
  factorises it on every call);
* ``sum_square`` — the cheaper equivalent ``sum(multiply(1/λ, square(μ − z)))``
  with ``norm(z, 2) <= δ``.

``--instance rust-bench`` uses the fixed instance of benches/theory.rs
instead of random λ, μ, for a like-for-like ratio.

The top-level ``median_s`` / ``max_abs_err`` in the JSON are those of the
first form in ``--forms`` (the reference one by default); ``forms`` holds all.

    python scripts/bench_qcqp.py --dim 768 --repeats 5 --json out.json
"""

import argparse
import json
import statistics
import sys
import time

import numpy as np

FORMS = ("quad_form", "sum_square")


def exact_qcqp(mu: np.ndarray, lam: np.ndarray, delta: float) -> tuple[np.ndarray, float]:
    """Exact ℓ2 QCQP (SPEC §3.4): z_i = μ_i/(1+νλ_i) with Σ μ_i²/(1+νλ_i)² = δ².

    Returns (z, ν); ν = inf when δ = 0 (z = 0) and ν = 0 when ‖μ‖ ≤ δ (z = μ).
    The secular function is decreasing in ν, so plain bisection on a bracket
    [0, ν_hi] runs until the midpoint no longer moves (machine precision).
    """
    mu = np.asarray(mu, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    if delta <= 0.0:
        return np.zeros_like(mu), float("inf")
    norm_mu = float(np.linalg.norm(mu))
    if norm_mu <= delta:
        return mu.copy(), 0.0

    def excess(nu: float) -> float:
        return float(np.sum((mu / (1.0 + nu * lam)) ** 2)) - delta * delta

    # At ν_hi = (‖μ‖/δ)/λ_min every factor 1 + ν_hi·λ_i ≥ ‖μ‖/δ, so excess ≤ 0.
    lo, hi = 0.0, (norm_mu / delta) / float(lam.min())
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if excess(mid) > 0.0:
            lo = mid
        else:
            hi = mid
    nu = hi if abs(excess(hi)) <= abs(excess(lo)) else lo
    return mu / (1.0 + nu * lam), nu


def cvxpy_qcqp(mu: np.ndarray, lam: np.ndarray, delta: float, form: str = "quad_form"):
    """One reference-style cvxpy solve with SCS (problem built on every call).

    Returns (z, status, scs_solve_time_s)."""
    import cvxpy as cp

    n = mu.shape[0]
    z = cp.Variable(n)
    if form == "quad_form":
        # The published reference: dense diag(1/λ) and pnorm (p = 2).
        objective = cp.quad_form(mu - z, np.diag(1.0 / lam))
        constraints = [cp.pnorm(z) <= delta]
    elif form == "sum_square":
        objective = cp.sum(cp.multiply(1.0 / lam, cp.square(mu - z)))
        constraints = [cp.norm(z, 2) <= delta]
    else:
        raise ValueError(f"unknown form {form!r}, expected one of {FORMS}")
    problem = cp.Problem(cp.Minimize(objective), constraints)
    problem.solve(solver=cp.SCS)
    solve_time = getattr(problem.solver_stats, "solve_time", None)
    return z.value, problem.status, solve_time


def rust_bench_instance(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(λ, μ) of benches/theory.rs's `instance(n)`, whose `d` are the weights 1/λ."""
    i = np.arange(n)
    weights = 10.0 ** (-3.0 + 6.0 * i / (n - 1))
    mu = np.array([((k * 2_654_435_761) % 1000) / 500.0 - 1.0 for k in range(n)]) / np.sqrt(1.0 + i)
    return 1.0 / weights, mu


def objective(mu: np.ndarray, lam: np.ndarray, z: np.ndarray) -> float:
    return float(np.sum((mu - z) ** 2 / lam))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--eps", default="0.2,0.8", help="comma-separated ε values")
    parser.add_argument("--repeats", type=int, default=5, help="timed solves per (form, ε)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lam-min", type=float, default=0.1)
    parser.add_argument("--lam-max", type=float, default=10.0)
    parser.add_argument("--lam-dist", choices=("uniform", "log-uniform"), default="uniform",
                        help="λ ~ U[min, max], or log λ uniform (a probe-like spread, e.g. 1e-6..1e2)")
    parser.add_argument("--instance", choices=("random", "rust-bench"), default="random",
                        help="random λ, μ (the flags above), or the fixed instance of benches/theory.rs: "
                             "weights 1/λ_i = 10^(-3 + 6i/(d-1)), μ_i = ((i·2654435761 mod 1000)/500 − 1)/√(1+i)")
    parser.add_argument("--forms", default=",".join(FORMS),
                        help=f"comma-separated subset of {FORMS}; the first is reported at top level")
    parser.add_argument("--json", default=None, help="write the results to this path")
    args = parser.parse_args()

    import cvxpy as cp
    import scs

    epsilons = [float(e) for e in args.eps.split(",")]
    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    rng = np.random.default_rng(args.seed)
    if args.instance == "rust-bench":
        lam, mu = rust_bench_instance(args.dim)
        described = "the benches/theory.rs instance (1/λ logspace 1e-3..1e3)"
    else:
        if args.lam_dist == "uniform":
            lam = rng.uniform(args.lam_min, args.lam_max, size=args.dim)
        else:
            lam = np.exp(rng.uniform(np.log(args.lam_min), np.log(args.lam_max), size=args.dim))
        mu = rng.standard_normal(args.dim)
        described = f"λ {args.lam_dist} in [{args.lam_min}, {args.lam_max}], μ ~ N(0, I), seed {args.seed}"
    norm_mu = float(np.linalg.norm(mu))

    print(f"cvxpy {cp.__version__}, scs {scs.__version__}, numpy {np.__version__}; "
          f"d = {args.dim}, {described}",
          file=sys.stderr)
    results = {}
    for form in forms:
        per_eps = {}
        for eps in epsilons:
            delta = eps * norm_mu
            t0 = time.perf_counter()
            z_exact, nu = exact_qcqp(mu, lam, delta)
            exact_s = time.perf_counter() - t0
            walls, scs_times, errs, statuses, obj_gaps, violations = [], [], [], [], [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                z, status, scs_time = cvxpy_qcqp(mu, lam, delta, form)
                walls.append(time.perf_counter() - t0)
                statuses.append(status)
                if scs_time is not None:
                    scs_times.append(scs_time)
                if z is None:
                    errs.append(float("nan"))
                    continue
                errs.append(float(np.max(np.abs(z - z_exact))))
                obj_gaps.append(objective(mu, lam, z) - objective(mu, lam, z_exact))
                violations.append(max(0.0, float(np.linalg.norm(z)) - delta))
            median = statistics.median(walls)
            per_eps[str(eps)] = {
                "delta": delta,
                "nu": nu,
                "median_s": median,
                "min_s": min(walls),
                "all_s": walls,
                "scs_solve_time_median_s": statistics.median(scs_times) if scs_times else None,
                "max_abs_err": max(errs),
                "max_abs_z_exact": float(np.max(np.abs(z_exact))),
                "objective_gap": max(obj_gaps, key=abs) if obj_gaps else None,
                "constraint_violation": max(violations) if violations else None,
                "status": sorted(set(statuses)),
                "exact_bisection_s": exact_s,
            }
            print(f"{form:>10}  ε = {eps:<4}  median {median * 1e3:9.2f} ms/solve "
                  f"(min {min(walls) * 1e3:.2f}, SCS itself {per_eps[str(eps)]['scs_solve_time_median_s'] or float('nan'):.4f} s), "
                  f"max|z_scs − z_exact| = {max(errs):.3e} (max|z| = {np.max(np.abs(z_exact)):.3f}), "
                  f"status {','.join(sorted(set(statuses)))}; exact bisection {exact_s * 1e3:.2f} ms",
                  file=sys.stderr)
        results[form] = per_eps

    head = results[forms[0]]
    out = {
        "implementation": "cvxpy",
        "cvxpy": cp.__version__,
        "scs": scs.__version__,
        "numpy": np.__version__,
        "dim": args.dim,
        "seed": args.seed,
        "repeats": args.repeats,
        "instance": args.instance,
        "lambda_range": [float(lam.min()), float(lam.max())],
        "lambda_dist": args.lam_dist if args.instance == "random" else "logspace",
        "form": forms[0],
        "median_s": {e: head[e]["median_s"] for e in head},
        "max_abs_err": {e: head[e]["max_abs_err"] for e in head},
        "forms": results,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
