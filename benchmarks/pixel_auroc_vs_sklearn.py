"""Pixel AUROC over 100 M scores: anovit's streaming BinnedROC vs sklearn.metrics.roc_auc_score.

Both get the same heavy-tailed float32 scores (log-normal, like squared reconstruction errors; 5%
anomalous, shifted). sklearn needs every score at once; BinnedROC is fed slices of 2^22 scores, as
the evaluation feeds it batches of score maps. Reported per size: seconds, peak extra memory while
computing (tracemalloc: numpy allocations, not counting the input arrays) and |ours - sklearn|.
Run at two sizes to show that our memory does not grow with the number of pixels.

    python benchmarks/pixel_auroc_vs_sklearn.py [--sizes 10000000 100000000]
    python benchmarks/pixel_auroc_vs_sklearn.py --smoke [--out DIR]   # 10,000 and 100,000 scores
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from _common import add_output_args, machine, output_dir, write_result
from sklearn.metrics import roc_auc_score

from anovit.evaluation.metrics import BinnedROC

SLICE = 2**22


def make_scores(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-tailed scores with 5% anomalous pixels scoring higher on average."""
    rng = np.random.default_rng(seed)
    labels = rng.random(n, dtype=np.float32) < 0.05
    scores = rng.standard_normal(n, dtype=np.float32)
    scores += labels * np.float32(1.0)
    np.exp(scores * np.float32(1.5) - np.float32(6.0), out=scores)  # log-normal, ~1e-5 .. 1e-1
    return scores, labels


def ours(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    acc = BinnedROC()
    for i in range(0, scores.size, SLICE):
        acc.update(scores[i : i + SLICE], labels[i : i + SLICE])
    return acc.auroc(), acc.error_bound()


def measured(fn, *args) -> tuple[object, float, int]:
    """(result, seconds, peak bytes allocated during the call)."""
    tracemalloc.start()
    start = time.perf_counter()
    result = fn(*args)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 100_000_000])
    add_output_args(parser)
    args = parser.parse_args()
    out = output_dir(args)
    if args.smoke:
        args.sizes = [10_000, 100_000]
    start = machine()
    rows = []
    for n in args.sizes:
        scores, labels = make_scores(n)
        (auc, bound), t_ours, m_ours = measured(ours, scores, labels)
        exact, t_sk, m_sk = measured(roc_auc_score, labels, scores)
        row = {"scores": n, "ours_seconds": t_ours, "sklearn_seconds": t_sk, "speedup": t_sk / t_ours,
               "ours_peak_mib": m_ours / 2**20, "sklearn_peak_mib": m_sk / 2**20, "ours_auroc": auc,
               "sklearn_auroc": float(exact), "abs_diff": abs(auc - float(exact)), "ours_error_bound": bound}
        print(f"{n:>11,} scores: ours {t_ours:6.2f} s, {row['ours_peak_mib']:7.1f} MiB | sklearn {t_sk:6.2f} s, "
              f"{row['sklearn_peak_mib']:7.1f} MiB | {row['speedup']:.1f}x faster, |diff| {row['abs_diff']:.2e}")
        rows.append(row)
        del scores, labels
    write_result("pixel_auroc_vs_sklearn", {
        "what": "pixel AUROC: streaming BinnedROC (2^20 log bins, slices of 2^22) vs sklearn roc_auc_score",
        "target": "speedup >= 20 at 100 M scores; our peak memory the same at every size",
        "smoke": args.smoke, "sizes": rows, "speedup_at_largest": rows[-1]["speedup"],
        "ours_peak_mib_ratio_largest_to_smallest": rows[-1]["ours_peak_mib"] / rows[0]["ours_peak_mib"],
        "machine": start,
    }, out)


if __name__ == "__main__":
    main()
