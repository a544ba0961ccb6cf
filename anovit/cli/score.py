"""``anovit score RUN IMAGE_OR_FOLDER``: the anomaly score and decision of each image, by the run's
:class:`~anovit.scoring.detector.Detector` in the run's recorded precision (as the app's Inspect page decides) or, with ``--onnx``,
by its exported graph through onnxruntime; both decide with :func:`~anovit.scoring.detector.decision`. Optionally a CSV of the results and the anomaly maps as PNGs."""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..data.imageio import IMAGE_EXTENSIONS, SUFFIXES_TEXT, is_image_file, list_dir, read_rgb
from ..scoring.detector import SCORE_BATCH_SIZE, decision
from ..utils.errors import AnovitError
from ..scoring.run_scoring import prepare, run_detector
from ..utils.progress import TerminalBar
from ..utils.runtime import precision_name
from ..scoring.anomaly_map import DEFAULT_SIGMA
from ..utils.validation import add_scoring_precision_arg, finite_float, non_negative_float, positive_int

CSV_COLUMNS = ["path", "anomaly_score", "decision", "threshold"]


@dataclass
class Scorer:
    """What scores prepared images (B, C, S, S) in [0, 1]: -> (anomaly maps (B, S, S), anomaly scores (B,))."""

    image_size: int
    threshold: float
    score: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
    name: str


def torch_scorer(run_dir: Path, sigma: float | None, threshold: float | None, device: str = "auto",
                 bf16: bool | None = None) -> Scorer:
    """The run's detector on ``device`` (``bf16`` None: in the run's recorded precision, its note printed);
    without ``threshold``, its stored one where fitted at these settings (precision included), else one
    fitted on its validation images in that same precision (said in one line)."""
    detector = run_detector(run_dir, sigma, threshold, bf16=bf16, device=device, notify=tqdm.write)
    if detector.precision_note:
        print(f"note: {detector.precision_note}")
    assert detector.threshold is not None  # given or fitted
    return Scorer(detector.image_size, detector.threshold, lambda images: detector.outputs(images)[1:],
                  f"pytorch, {detector.device}, {precision_name(detector.bf16)}")


def onnx_scorer(run_dir: Path, sigma: float | None, threshold: float | None) -> Scorer:
    """The exported graph (RUN/onnx or RUN itself) with, unless given, its threshold; its sigma is baked
    in, so another ``sigma`` is refused (AnovitError)."""
    from ..deploy.onnx_scorer import OnnxScorer

    session = OnnxScorer(run_dir)
    if sigma is not None and sigma != session.sigma:
        raise AnovitError(f"the export in {run_dir} smooths with sigma {session.sigma:g}, not {sigma:g}; "
                          f"export again with --sigma {sigma:g} or leave --sigma out")
    return Scorer(session.image_size, session.threshold if threshold is None else threshold, session, "onnx")


def image_files(path: Path) -> tuple[list[Path], list[str]]:
    """(image files, skipped entries with the reason) of ``path``: itself if it is a file, else every image
    file under the folder (recursively, sorted). Each real file is scored once and each real folder searched
    once, symbolic links resolved (a link loop ends); hidden entries are left out without a word.

    Raises AnovitError when the path does not exist or the folder holds no image.
    """
    path = Path(path)
    if path.is_file():
        return [path], []
    if not path.is_dir():
        raise AnovitError(f"{path} does not exist; expected an image file or a folder of images")
    files: dict[str, Path] = {}  # real path -> the first name it was found under
    skipped: list[str] = []
    searched, folders = {os.path.realpath(path)}, deque([path])
    while folders:  # data.imageio's listing names an unreadable folder or a dangling link in one sentence
        for entry in list_dir(folders.popleft()):
            real = os.path.realpath(entry)
            if entry.name.startswith("."):
                continue
            if os.path.isdir(entry):
                if real in searched:
                    skipped.append(f"{entry}: a link to folder '{real}', which is searched once")
                else:
                    searched.add(real)
                    folders.append(entry)
            elif not is_image_file(entry):
                skipped.append(f"{entry}: not an image file (expected {'/'.join(IMAGE_EXTENSIONS)})")
            elif real in files:
                skipped.append(f"{entry}: the same file as '{files[real]}', which is scored once")
            else:
                files[real] = entry
    if not files:
        raise AnovitError(f"{path} holds no {SUFFIXES_TEXT} file")
    return sorted(files.values()), sorted(skipped)


def score_files(scorer: Scorer, files: list[Path], batch_size: int = SCORE_BATCH_SIZE) -> Iterator[tuple[Path, np.ndarray, float]]:
    """(file, anomaly map (S, S), anomaly score) of each file, in order; unreadable files raise DatasetError."""
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        images = torch.cat([prepare(read_rgb(f), scorer.image_size) for f in chunk])
        maps, scores = scorer.score(images)
        for f, m, s in zip(chunk, maps.numpy(), scores.tolist()):
            yield f, m, float(s)


def save_map(anomaly_map: np.ndarray, threshold: float, path: Path) -> None:
    """An anomaly map as an 8-bit grey PNG on a fixed scale: 0 is 0, 255 twice the threshold (128: the threshold)."""
    scale = 255.0 / (2.0 * threshold) if threshold > 0 else 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.rint(anomaly_map * scale), 0, 255).astype(np.uint8)).save(path)


def _map_name(file: Path, root: Path) -> Path:
    relative = file.relative_to(root) if root.is_dir() else Path(file.name)
    return relative.with_name(relative.stem + "_anomaly_map.png")


def _cmd_score(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise AnovitError(f"--batch-size must be a whole number of at least 1, got {args.batch_size}")
    files, skipped = image_files(args.images)
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    if args.onnx and args.bf16:
        raise AnovitError("--bf16 does not apply to --onnx: the exported graph computes in float32")
    if args.onnx:
        scorer = onnx_scorer(args.run_dir, args.sigma, args.threshold)
    else:
        scorer = torch_scorer(args.run_dir, args.sigma, args.threshold, args.device, args.bf16)
    rows: list[dict[str, Any]] = []
    bar = TerminalBar(f"score ({scorer.name})")
    start = time.perf_counter()
    try:
        for file, anomaly_map, score in score_files(scorer, files, args.batch_size):
            rows.append({"path": str(file), "anomaly_score": score, "decision": decision(score, scorer.threshold),
                         "threshold": scorer.threshold})
            tqdm.write(f"{file}\t{score:.6g}\t{rows[-1]['decision']}")
            if args.maps is not None:
                save_map(anomaly_map, scorer.threshold, args.maps / _map_name(file, args.images))
            bar(len(rows), len(files))
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    n_anomalous = sum(r["decision"] == "anomalous" for r in rows)
    print(f"{len(rows)} images, {n_anomalous} anomalous at threshold {scorer.threshold:.6g} "
          f"({scorer.name}, {len(rows) / max(seconds, 1e-9):.1f} images/s)")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with open(args.output, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.output}")
    return 0


def add_score_parser(sub: Any) -> None:
    """Register ``anovit score``."""
    p = sub.add_parser("score", help="anomaly score and decision of images with a run (PyTorch or its ONNX export)")
    p.add_argument("run_dir", type=Path, help="run folder (or, with --onnx, an export folder)")
    p.add_argument("images", type=Path, help="an image file or a folder of images (searched recursively)")
    p.add_argument("--output", type=Path, help="CSV file: path, anomaly_score, decision, threshold")
    p.add_argument("--maps", type=Path, help="folder for the anomaly maps as grey PNGs (255 = twice the threshold)")
    p.add_argument("--onnx", action="store_true", help="use RUN_DIR/onnx/model.onnx (anovit export) via onnxruntime")
    p.add_argument("--threshold", type=finite_float,
                   help="decision threshold (default: the export's, or computed on the run's validation images)")
    p.add_argument("--sigma", type=non_negative_float,
                   help=f"Gaussian smoothing (default: the run's, from its training.json, {DEFAULT_SIGMA:g} for runs "
                        "without one; with --onnx the export's)")
    p.add_argument("--batch-size", type=positive_int, default=SCORE_BATCH_SIZE, help="(default: %(default)s)")
    p.add_argument("--device", default="auto", help="PyTorch device: auto (CUDA when present), cpu, cuda, ... "
                                                   "(default: %(default)s)")
    add_scoring_precision_arg(p)
    p.set_defaults(func=_cmd_score)
