"""CPU cost of the score functions (issue 11, item 2): l2 (eq. 6), ssim (kornia), msgms (ours) and l2-ssim (both),
each as the whole map step the Detector runs after the forward pass (error map + Gaussian smoothing
+ eq. 7), on a batch of 16 RGB images at 128 px, and beside the cpu-tiny AnoViT forward pass (bf16,
as the Detector runs it here) that precedes it; 1 torch thread, interleaved repeats, medians.

Writes ``benchmarks/results/score_functions.json``. Run from the repository root:
``OMP_NUM_THREADS=1 python benchmarks/score_functions.py`` (``--smoke [--out DIR]``: 2 images at 64 px,
one repeat, the JSON into DIR or a temporary folder).
"""

from __future__ import annotations

import argparse

from _common import SMOKE_SIZE, add_output_args, interleaved, machine, median, output_dir, write_result

BATCH, SIZE, REPEATS = 16, 128, 7


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_output_args(parser)
    args = parser.parse_args()
    batch, size, repeats = (2, SMOKE_SIZE, 1) if args.smoke else (BATCH, SIZE, REPEATS)
    import torch

    from anovit.scoring.detector import Detector
    from anovit.models import create_model
    from anovit.scoring.anomaly_map import SCORE_FUNCTIONS, anomaly_maps

    torch.set_num_threads(1)
    start = machine()
    torch.manual_seed(0)
    images = torch.rand(batch, 3, size, size)
    recon = (images + 0.05 * torch.randn_like(images)).clamp(0, 1)
    detector = Detector(create_model("anovit", "cpu-tiny", image_size=size))
    sigma = 2.0
    fns = {score: (lambda s=score: anomaly_maps(images, recon, sigma, s)) for score in SCORE_FUNCTIONS}
    fns["anovit_forward"] = lambda: detector.reconstruct(images)
    times = interleaved(fns, repeats)
    med = {name: median(t) for name, t in times.items()}
    data = {
        "batch": batch, "image_size": size, "sigma": sigma, "repeats": repeats, "bf16_forward": detector.bf16,
        "smoke": args.smoke,
        "median_seconds": med,
        "ms_per_image": {name: 1000 * m / batch for name, m in med.items()},
        "ratio_to_l2": {s: med[s] / med["l2"] for s in SCORE_FUNCTIONS},
        "share_of_forward": {s: med[s] / med["anovit_forward"] for s in SCORE_FUNCTIONS},
        "machine": start,
    }
    write_result("score_functions", data, output_dir(args))


if __name__ == "__main__":
    main()
