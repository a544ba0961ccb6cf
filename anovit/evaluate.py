"""Evaluation of a trained model over a test split: score maps, image scores, per-image rows and
the metrics (image AUROC, pixel AUROC, AUPRO, F1-max), accumulated batch by batch."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from .metrics import BinnedPRO, f1_max, image_auroc
from .runtime import autocast, resolve_device, use_bf16
from .scoring import DEFAULT_SIGMA, anomaly_maps


@dataclass
class Evaluation:
    """Metrics of one model on one test split, and one row per image."""

    image_auroc: float | None
    pixel_auroc: float | None
    pixel_auroc_error_bound: float | None
    image_f1_max: float | None
    image_threshold: float | None
    pixel_f1_max: float | None
    pixel_threshold: float | None
    n_images: int
    n_anomalous: int
    sigma: float
    seconds: float
    images_per_s: float
    aupro: float | None = None  # per-region overlap up to 30% FPR; None without masks
    rows: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # "image" / "pixel" -> why those metrics are None

    def summary(self) -> dict[str, Any]:
        """The metrics without the per-image rows."""
        return {k: v for k, v in asdict(self).items() if k != "rows"}


@torch.no_grad()
def reconstruct(model: nn.Module, images: torch.Tensor, bf16: bool = False) -> torch.Tensor:
    """The model's reconstruction of ``images`` in float32 (the model runs under bf16 autocast if asked)."""
    with autocast(images.device, bf16):
        return model(images).float()


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: DataLoader,
    *,
    sigma: float = DEFAULT_SIGMA,
    device: torch.device | None = None,
    bf16: bool = False,
) -> Iterator[dict[str, Any]]:
    """Yield each batch with its reconstruction, smoothed score maps (eq. 6) and image scores (eq. 7)."""
    device = device or next(model.parameters()).device
    model.eval()
    for batch in loader:
        images = batch["image"].to(device)
        recon = reconstruct(model, images, bf16)
        maps, scores = anomaly_maps(images, recon, sigma)
        yield {**batch, "image": images, "recon": recon, "score_map": maps, "score": scores}


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 32,
    sigma: float = DEFAULT_SIGMA,
    device: str = "auto",
    bf16: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Score every image of ``dataset`` and compute the metrics.

    Pixel metrics are None when the split has no anomalous pixel (e.g. one-class digits), image
    metrics None when it holds only one class; ``unavailable`` says why in one phrase each. A
    dataset whose ``has_masks`` attribute is False has no pixel ground truth at all.
    ``progress(done, total)`` is called per batch.
    """
    dev = resolve_device(device)
    model = model.to(dev)
    use = use_bf16(dev, bf16)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    regions = BinnedPRO()  # AUPRO, and pixel AUROC / F1-max from its .roc: the maps are binned once
    pixels = regions.roc
    scores: list[float] = []
    labels: list[int] = []
    rows: list[dict[str, Any]] = []
    start, done = time.perf_counter(), 0
    for out in predict(model, loader, sigma=sigma, device=dev, bf16=use):
        maps, masks = out["score_map"].cpu(), out["mask"][:, 0]
        regions.update(maps, masks)
        for path, label, kind, score in zip(out["path"], out["label"].tolist(), out["defect_type"], out["score"].tolist()):
            rows.append({"path": path, "label": int(label), "defect_type": kind, "score": float(score)})
            scores.append(float(score))
            labels.append(int(label))
        done += len(out["score"])
        if progress is not None:
            progress(done, len(dataset))
    seconds = time.perf_counter() - start
    both_classes = 0 < sum(labels) < len(labels)
    has_pixels = pixels.n_pos > 0 and pixels.n_neg > 0
    img_f1, img_thr = f1_max(scores, labels) if both_classes else (None, None)
    pix_f1, pix_thr = pixels.f1_max() if has_pixels else (None, None)
    return Evaluation(
        image_auroc=image_auroc(scores, labels) if both_classes else None,
        pixel_auroc=pixels.auroc() if has_pixels else None,
        pixel_auroc_error_bound=pixels.error_bound() if has_pixels else None,
        aupro=regions.aupro() if has_pixels else None,
        image_f1_max=img_f1, image_threshold=img_thr,
        pixel_f1_max=pix_f1, pixel_threshold=pix_thr,
        n_images=len(labels), n_anomalous=int(sum(labels)), sigma=sigma,
        seconds=seconds, images_per_s=len(labels) / max(seconds, 1e-9), rows=rows,
        unavailable=_unavailable(labels, getattr(dataset, "has_masks", True), pixels.n_pos, pixels.n_neg),
    )


def _unavailable(labels: list[int], has_masks: bool, n_pos: int, n_neg: int) -> dict[str, str]:
    """Why the image metrics ("image") and the pixel metrics ("pixel") cannot be computed, where they cannot."""
    n_anomalous, reasons = sum(labels), {}
    if n_anomalous == 0:
        reasons["image"] = "the test split holds no anomalous images"
    elif n_anomalous == len(labels):
        reasons["image"] = "the test split holds no normal images"
    if not has_masks:
        reasons["pixel"] = "the test split has no masks (image labels only: localization unavailable)"
    elif n_anomalous == 0:
        reasons["pixel"] = "the test split holds no anomalous images"
    elif n_pos == 0:
        reasons["pixel"] = "no mask of an anomalous test image marks a defect pixel"
    elif n_neg == 0:
        reasons["pixel"] = "the masks mark every pixel as defective"
    return reasons


def evaluate_run(
    run_dir: Any,
    *,
    dataset: str | None = None,
    category: str | None = None,
    data_root: str | None = None,
    sigma: float = DEFAULT_SIGMA,
    batch_size: int = 32,
    device: str = "auto",
    max_images: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Evaluate a run folder's best model on the test split it was trained for (or another one),
    and record the summary under "test" in its metrics.json and the rows in test_scores.csv.
    ``max_images``: a seeded subsample of the test split (recorded as "max_images"); None: all of it."""
    import csv
    from pathlib import Path

    from . import checkpoint as ckpt
    from .data import get_dataset
    from .data.splits import subsample

    run_dir = Path(run_dir)
    training = ckpt.read_json(run_dir / "training.json")
    model = ckpt.load_model(run_dir)
    name = dataset or training["dataset"]
    test_set = get_dataset(
        name, "test", category=category or training["category"], image_size=model.config.image_size,
        root=data_root if data_root is not None else training.get("data_root"), seed=training.get("seed", 0),
    )
    test_set = subsample(test_set, max_images, training.get("seed", 0))
    result = evaluate(model, test_set, batch_size=batch_size, sigma=sigma, device=device, progress=progress)
    ckpt.update_metrics(run_dir, test={**result.summary(), "max_images": max_images, "dataset": name, "category": category or training["category"]})
    with open(run_dir / "test_scores.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "defect_type", "score"])
        writer.writeheader()
        writer.writerows(result.rows)
    return result
