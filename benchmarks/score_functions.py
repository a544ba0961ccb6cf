"""CPU cost of the score functions (issue 11, item 2): l2 (eq. 6), ssim (kornia) and msgms (ours),
each as the whole map step the Detector runs after the forward pass (error map + Gaussian smoothing
+ eq. 7), on a batch of 16 RGB images at 128 px, and beside the cpu-tiny AnoViT forward pass (bf16,
as the Detector runs it here) that precedes it; 1 torch thread, interleaved repeats, medians.

Writes ``benchmarks/results/score_functions.json``. Run from the repository root:
``OMP_NUM_THREADS=1 python benchmarks/score_functions.py``.
"""

from __future__ import annotations

from _common import interleaved, machine, median, write_result

BATCH, SIZE, REPEATS = 16, 128, 7


def main() -> None:
    import torch

    from anovit.detector import Detector
    from anovit.models import create_model
    from anovit.scoring import SCORE_FUNCTIONS, anomaly_maps

    torch.set_num_threads(1)
    start = machine()
    torch.manual_seed(0)
    images = torch.rand(BATCH, 3, SIZE, SIZE)
    recon = (images + 0.05 * torch.randn_like(images)).clamp(0, 1)
    detector = Detector(create_model("anovit", "cpu-tiny"))
    sigma = 2.0
    fns = {score: (lambda s=score: anomaly_maps(images, recon, sigma, s)) for score in SCORE_FUNCTIONS}
    fns["anovit_forward"] = lambda: detector.reconstruct(images)
    times = interleaved(fns, REPEATS)
    med = {name: median(t) for name, t in times.items()}
    data = {
        "batch": BATCH, "image_size": SIZE, "sigma": sigma, "repeats": REPEATS, "bf16_forward": detector.bf16,
        "median_seconds": med,
        "ms_per_image": {name: 1000 * m / BATCH for name, m in med.items()},
        "ratio_to_l2": {s: med[s] / med["l2"] for s in SCORE_FUNCTIONS},
        "share_of_forward": {s: med[s] / med["anovit_forward"] for s in SCORE_FUNCTIONS},
        "machine": start,
    }
    write_result("score_functions", data)


if __name__ == "__main__":
    main()
