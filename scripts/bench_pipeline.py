"""Reduced SynBench run in PyTorch + timm + numpy, timed per stage.

The Python baseline for the whole-pipeline benchmark: the published reference
protocol (SPEC §1–§4; PyTorch + timm + cvxpy/SCS) on a random-init timm model,
reduced to a few scales and small splits, with one timer per stage that maps
onto a stage of the Rust pipeline (synbench-cli's run):

  generation  labels y ~ Bernoulli(½), x = ±s·μ̂ + 0.5 + N(0, I) in [3, H, W]
              (μ̂ = 1/√d), ImageNet per-channel normalisation — batched torch
              (synbench-data; bench_generation.py times the reference's
              per-sample loop instead);
  encoding    model(x) under torch.inference_mode() (synbench-models' Encoder);
  statistics  features → float64 numpy, per-class running sums Σh and Σhhᵀ
              (synbench-probe's streaming class statistics); test features
              are kept in memory (the test split is small);
  probe       pooled covariance, eigh, λ > 1e-6 cut, ℓ2 QCQP per ε with
              cvxpy + SCS as the reference does, W = F₁w₀, and the evaluation
              on the test features (accuracy, mean scaled bound over correct
              samples, per batch of 256 then averaged: SPEC §3.6 reference
              averaging) (synbench-probe);
  score       raw reference curve E(Φ(s)), E_curve on linspace(0.6, 1, 100),
              SynBench-score at t ∈ {0.6, …, 0.95, 0.99} (synbench-theory).

Model creation, imports and the JSON write are outside the stages; a score
that is 0/0 or x/0 (no raw scale reaches the threshold) is null in the JSON. As in the
reference, ε = 0 needs no solve (‖z‖ ≤ 0 forces z = 0: the "naive" Bayes
classifier w₀ = μ/λ); every ε > 0 is one SCS solve per scale. Without cvxpy
the QCQP falls back to the exact bisection of bench_qcqp.py (said on stderr
and in the JSON).

    python scripts/bench_pipeline.py --json results/bench/pytorch.json
    python scripts/bench_pipeline.py --img-size 112 --n-train 64 --n-test 64 --scales 0.5,1.0
"""

import argparse
import json
import math
import os
import platform
import resource
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

import numpy as np
import timm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_qcqp import cvxpy_qcqp, exact_qcqp  # noqa: E402

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
THRESHOLDS = (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99)
EIGEN_CUTOFF = 1e-6


class StageTimer:
    def __init__(self) -> None:
        self.seconds = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - t0


# --- normal distribution (scipy if present, else the standard library) ------

try:
    from scipy.stats import norm as _scipy_norm

    def normal_cdf(x):
        return _scipy_norm.cdf(x)

    def normal_ppf(a):
        return _scipy_norm.ppf(a)

    def normal_pdf(x):
        return _scipy_norm.pdf(x)

    NORMAL_FROM = "scipy"
except ImportError:
    from statistics import NormalDist

    _std_normal = NormalDist()

    def normal_cdf(x):
        return np.vectorize(_std_normal.cdf, otypes=[float])(x)

    def normal_ppf(a):
        return np.vectorize(_std_normal.inv_cdf, otypes=[float])(a)

    def normal_pdf(x):
        return np.exp(-0.5 * np.square(x)) / math.sqrt(2.0 * math.pi)

    NORMAL_FROM = "statistics.NormalDist"


def expected_scaled_bound(accuracy):
    """E(a) = 1 + φ(Φ⁻¹(a)) / (a·Φ⁻¹(a))  (SPEC §2)."""
    a = np.asarray(accuracy, dtype=np.float64)
    q = normal_ppf(a)
    return 1.0 + normal_pdf(q) / (a * q)


# --- stages -----------------------------------------------------------------

def generate_batch(batch: int, scale: float, img_size: int, g: torch.Generator,
                   ch_mean: torch.Tensor, ch_inv_std: torch.Tensor):
    """Labels and normalised images for one batch (SPEC §1), batched torch."""
    d = 3 * img_size * img_size
    y = torch.bernoulli(torch.full((batch,), 0.5), generator=g)
    x = torch.randn(batch, 3, img_size, img_size, generator=g)
    # x = noise + (2y − 1)·s·μ̂ + 0.5, then (x − m_c)/σ_c, in place.
    shift = ((2.0 * y - 1.0) * (scale / math.sqrt(d))).view(batch, 1, 1, 1) + 0.5 - ch_mean
    x.add_(shift).mul_(ch_inv_std)
    return x, y


class ClassSums:
    """Per-class n, Σh, Σhhᵀ in float64 (statistics by matrix products)."""

    def __init__(self, dim: int) -> None:
        self.n = [0, 0]
        self.sum = [np.zeros(dim), np.zeros(dim)]
        self.outer = [np.zeros((dim, dim)), np.zeros((dim, dim))]

    def add(self, h: np.ndarray, y: np.ndarray) -> None:
        for k in (0, 1):
            hk = h[y == k]
            self.n[k] += hk.shape[0]
            self.sum[k] += hk.sum(axis=0)
            self.outer[k] += hk.T @ hk

    def means_and_pooled_cov(self):
        """μ₁, μ₀ and S = [(n₁−1)C₁ + (n₀−1)C₀]/(n−2)  (SPEC §3.1)."""
        n1, n0 = self.n[1], self.n[0]
        mu1, mu0 = self.sum[1] / n1, self.sum[0] / n0
        scatter = (self.outer[1] - n1 * np.outer(mu1, mu1)) + (self.outer[0] - n0 * np.outer(mu0, mu0))
        pooled = scatter / (n1 + n0 - 2)
        return mu1, mu0, 0.5 * (pooled + pooled.T)


def robust_bayes_probe(sums: ClassSums, epsilons, use_cvxpy: bool):
    """Fit the ε-robust Bayes linear classifiers (SPEC §3.1–3.4).

    Returns the midpoint c and, per ε, (W, μᵀw₀, solver note)."""
    mu1, mu0, pooled = sums.means_and_pooled_cov()
    lam, vecs = np.linalg.eigh(pooled)
    keep = lam > EIGEN_CUTOFF
    lam1, f1 = lam[keep], vecs[:, keep]
    mu = f1.T @ ((mu1 - mu0) / 2.0)
    midpoint = (mu1 + mu0) / 2.0
    fitted = {}
    for eps in epsilons:
        delta = eps * float(np.linalg.norm(mu))
        if delta == 0.0:
            z, how = np.zeros_like(mu), "closed form (eps = 0)"
        elif use_cvxpy:
            z, status, _ = cvxpy_qcqp(mu, lam1, delta, form="quad_form")
            how = f"scs:{status}"
            if z is None:
                raise RuntimeError(f"SCS returned no solution (status {status}) for eps = {eps}")
        else:
            z, _ = exact_qcqp(mu, lam1, delta)
            how = "bisection"
        w0 = (mu - z) / lam1
        fitted[eps] = (f1 @ w0, float(mu @ w0), how)
    return midpoint, fitted, int(keep.sum())


def evaluate(h_test: np.ndarray, y_test: np.ndarray, midpoint, w, mu_dot_w0: float, eval_batch: int):
    """Accuracy and mean scaled bound of the correct samples, per batch then
    averaged over batches (SPEC §3.5–3.6, reference averaging)."""
    margin = (h_test - midpoint) @ w
    correct = ((margin > 0) & (y_test == 1)) | ((margin < 0) & (y_test == 0))
    scaled = np.abs(margin) / abs(mu_dot_w0)
    accs, bounds = [], []
    for start in range(0, h_test.shape[0], eval_batch):
        c = correct[start:start + eval_batch]
        accs.append(float(c.mean()))
        if c.any():
            bounds.append(float(scaled[start:start + eval_batch][c].mean()))
    return float(np.mean(accs)), float(np.mean(bounds)) if bounds else 0.0


def synbench_scores(scales, accuracy, bound):
    """Grid SynBench-score per threshold (SPEC §2, §4), reference mode."""
    scales = np.asarray(scales, dtype=np.float64)
    grid = np.linspace(0.6, 1.0, 100)
    a_raw = normal_cdf(scales)
    e_raw = (expected_scaled_bound(a_raw)[None, :] * (a_raw[None, :] > grid[:, None])).mean(axis=1)
    acc = np.asarray(accuracy)
    e_rep = (np.asarray(bound)[None, :] * (acc[None, :] > grid[:, None])).mean(axis=1)
    scores = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for t in THRESHOLDS:
            above = grid >= t
            # 0/0 (NaN) or x/0 (inf) when no raw scale reaches t: too few or too small scales.
            scores.append(float(np.float64(e_rep[above].sum()) / e_raw[above].sum()))
    return scores


def json_number(x: float):
    """NaN/inf are not JSON: write them as null."""
    return x if math.isfinite(x) else None


# --- driver -------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--scales", default=",".join(str(0.5 * i) for i in range(1, 9)),
                        help="comma-separated mean scales s (default 0.5,1.0,…,4.0)")
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-test", type=int, default=256)
    parser.add_argument("--eps", default="0.0,0.2", help="comma-separated ℓ2 ε values")
    parser.add_argument("--batch", type=int, default=32, help="generation/encoding batch size")
    parser.add_argument("--eval-batch", type=int, default=256, help="test batch of the reference averaging")
    parser.add_argument("--data-seed", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-cvxpy", action="store_true", help="use the exact bisection instead of SCS")
    parser.add_argument("--json", default=None, help="write the results to this path")
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    scales = [float(s) for s in args.scales.split(",")]
    epsilons = [float(e) for e in args.eps.split(",")]

    use_cvxpy, solver = False, "bisection (--no-cvxpy)"
    if not args.no_cvxpy:
        try:
            import cvxpy  # noqa: F401
            import scs

            use_cvxpy, solver = True, f"cvxpy {cvxpy.__version__} + SCS {scs.__version__} (quad_form, as the reference)"
        except ImportError as err:
            solver = f"bisection (cvxpy import failed: {err})"
            print(f"WARNING: cvxpy unavailable ({err}); the QCQP uses the exact bisection instead of SCS",
                  file=sys.stderr)

    torch.manual_seed(args.model_seed)
    t_init = time.perf_counter()
    kwargs = {} if args.img_size == 224 else {"img_size": args.img_size}
    model = timm.create_model(args.model, pretrained=False, num_classes=0, **kwargs).eval()
    model_init_s = time.perf_counter() - t_init
    feat_dim = model.num_features

    ch_mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    ch_inv_std = 1.0 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    timer = StageTimer()
    accuracy = {e: [] for e in epsilons}
    bound = {e: [] for e in epsilons}
    solver_notes, kept_dims = set(), []
    images = 0

    t_wall = time.perf_counter()
    for s_idx, scale in enumerate(scales):
        sums = ClassSums(feat_dim)
        test_h, test_y = [], []
        for split, n in ((0, args.n_train), (1, args.n_test)):
            # One generator per (seed, scale, split): reproducible, independent of the other splits.
            g = torch.Generator().manual_seed(args.data_seed * 1_000_003 + 2 * s_idx + split)
            for start in range(0, n, args.batch):
                b = min(args.batch, n - start)
                with timer("generation"):
                    x, y = generate_batch(b, scale, args.img_size, g, ch_mean, ch_inv_std)
                with timer("encoding"), torch.inference_mode():
                    h = model(x)
                images += b
                with timer("statistics"):
                    h64 = h.numpy().astype(np.float64)
                    y_np = y.numpy().astype(np.int64)
                    if split == 0:
                        sums.add(h64, y_np)
                    else:
                        test_h.append(h64)
                        test_y.append(y_np)
        with timer("probe"):
            midpoint, fitted, kept = robust_bayes_probe(sums, epsilons, use_cvxpy)
            kept_dims.append(kept)
            h_test, y_test = np.concatenate(test_h), np.concatenate(test_y)
            for eps, (w, mu_dot_w0, how) in fitted.items():
                solver_notes.add(how)
                acc, bnd = evaluate(h_test, y_test, midpoint, w, mu_dot_w0, args.eval_batch)
                accuracy[eps].append(acc)
                bound[eps].append(bnd)
        print(f"  s = {scale:<4} " + "  ".join(
            f"ε={e}: acc {accuracy[e][-1]:.4f} bound {bound[e][-1]:.4f}" for e in epsilons)
            + f"  (kept {kept}/{feat_dim} eigenvalues)", file=sys.stderr)

    with timer("score"):
        scores = {str(e): synbench_scores(scales, accuracy[e], bound[e]) for e in epsilons}
    wall_s = time.perf_counter() - t_wall

    stages = {k: timer.seconds[k] for k in ("generation", "encoding", "statistics", "probe", "score")}
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    images_per_s = images / stages["encoding"] if stages["encoding"] > 0 else float("nan")

    print(f"torch {torch.__version__}, timm {timm.__version__}, threads {torch.get_num_threads()}; "
          f"{args.model} (random init, seed {args.model_seed}, {feat_dim} features) at {args.img_size}px, "
          f"model init {model_init_s:.2f} s", file=sys.stderr)
    print(f"{len(scales)} scales × ({args.n_train} + {args.n_test}) = {images} images, batch {args.batch}; "
          f"QCQP: {solver}; normal dist. from {NORMAL_FROM}", file=sys.stderr)
    for k, v in stages.items():
        print(f"  {k:<11} {v:9.3f} s  ({100 * v / wall_s:5.1f}%)", file=sys.stderr)
    print(f"  {'wall':<11} {wall_s:9.3f} s   {images_per_s:.1f} images/s encoded, peak RSS {peak_rss_mb:.0f} MB",
          file=sys.stderr)
    print("  SynBench-score   t = " + " ".join(f"{t:<6}" for t in THRESHOLDS), file=sys.stderr)
    for e in epsilons:
        print(f"  ε = {e:<4}            " + " ".join(f"{v:.4f}" for v in scores[str(e)]), file=sys.stderr)

    if args.json:
        out = {
            "implementation": "pytorch",
            "torch": torch.__version__,
            "timm": timm.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "config": {
                "model": args.model,
                "model_seed": args.model_seed,
                "pretrained": False,
                "img_size": args.img_size,
                "feature_dim": feat_dim,
                "scales": scales,
                "n_train": args.n_train,
                "n_test": args.n_test,
                "epsilons": epsilons,
                "attack": "l2",
                "batch": args.batch,
                "eval_batch": args.eval_batch,
                "data_seed": args.data_seed,
                "eigen_cutoff": EIGEN_CUTOFF,
                "qcqp_solver": solver,
                "normal_dist": NORMAL_FROM,
                "score_mode": "reference",
                "averaging": "reference",
            },
            "model_init_s": model_init_s,
            "stages_s": stages,
            "wall_s": wall_s,
            "images": images,
            "images_per_s": images_per_s,
            "peak_rss_mb": peak_rss_mb,
            "kept_eigenvalues": kept_dims,
            "qcqp_solves": sorted(solver_notes),
            "per_scale": {str(e): {"accuracy": accuracy[e], "bound": bound[e]} for e in epsilons},
            "thresholds": list(THRESHOLDS),
            "scores": {e: [json_number(v) for v in row] for e, row in scores.items()},
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, allow_nan=False)
            f.write("\n")


if __name__ == "__main__":
    main()
