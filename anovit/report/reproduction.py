"""The paper's Table 2 (MNIST, image AUROC) as we measured it offline at a CPU-sized setting
(``benchmarks/mnist_table2.py`` writes ``benchmarks/results/mnist_table2.json``), beside the
paper's values, class by class: docs/benchmark.md and the app's Results page show this table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .paper_tables import TABLE_2, paper_row
from ..runs.catalog import REPO_ROOT

MNIST_TABLE2 = REPO_ROOT / "benchmarks" / "results" / "mnist_table2.json"
COLUMNS = ["class", "paper l2-CAE", "paper AnoViT", "ours l2-CAE", "ours AnoViT", "Δ l2-CAE", "Δ AnoViT",
           "paper winner", "our winner"]


def load_measured(path: Path = MNIST_TABLE2) -> dict[str, Any] | None:
    """The measured sweep (setting, one cell per class and model, wall time); None before it has run."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def _winner(cae: float | None, anovit: float | None) -> str:
    if cae is None or anovit is None or pd.isna(cae) or pd.isna(anovit):
        return ""
    return "AnoViT" if anovit > cae else "l2-CAE" if cae > anovit else "tie"


def measured_table(measured: dict[str, Any]) -> pd.DataFrame:
    """One row per MNIST class (and a mean row): the paper's and our image AUROC of both models, the
    differences (ours − paper) and which model wins in each; classes not yet measured are blank."""
    ours = {(c["class"], c["model"]): c["image_auroc"] for c in measured.get("cells", [])}
    rows = []
    for index in range(len(TABLE_2.rows)):
        row = paper_row(TABLE_2, str(index))
        cae, anovit = ours.get((str(index), "cae"), float("nan")), ours.get((str(index), "anovit"), float("nan"))
        rows.append({"class": str(index), "paper l2-CAE": row.cae, "paper AnoViT": row.anovit, "ours l2-CAE": cae,
                     "ours AnoViT": anovit, "Δ l2-CAE": cae - row.cae, "Δ AnoViT": anovit - row.anovit,
                     "paper winner": _winner(row.cae, row.anovit), "our winner": _winner(cae, anovit)})
    table = pd.DataFrame(rows, columns=COLUMNS)
    means = table[COLUMNS[1:7]].mean(skipna=False)
    mean_row = {"class": "mean", **means.to_dict(), "paper winner": _winner(means["paper l2-CAE"], means["paper AnoViT"]),
                "our winner": _winner(means["ours l2-CAE"], means["ours AnoViT"])}
    return pd.concat([table, pd.DataFrame([mean_row])], ignore_index=True)


def setting_text(measured: dict[str, Any]) -> str:
    """The measured setting in one paragraph, with what differs from the paper's."""
    s = measured["setting"]
    wall = measured.get("wall_seconds")
    done = len(measured.get("cells", []))
    return (f"Measured on the real MNIST, {done} of 20 cells (10 classes × 2 models), one seed; "
            f"{s['preset']} models at {s['image_size']} px (paper: ViT-B/16 with ImageNet weights at 224 px); "
            f"{s['max_train_images']} training images per class (a seeded subsample; paper: all), "
            f"{s['max_test_images']:,} of the 10,000 test images (a seeded subsample, the same for every cell); "
            f"AnoViT {s['epochs']['anovit']} epochs, l2-CAE {s['epochs']['cae']} epochs; best epoch chosen on "
            f"the validation split; CPU, {s['torch_threads']} torch thread"
            + (f", {wall / 60:.0f} min wall time on a shared 2-core CPU." if wall else "."))


def display(table: pd.DataFrame) -> pd.DataFrame:
    """The table as strings: AUROCs to 3 decimals, differences signed."""
    out = table.copy()
    for col in COLUMNS[1:5]:
        out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    for col in COLUMNS[5:7]:
        out[col] = out[col].map(lambda v: "" if pd.isna(v) else f"{v:+.3f}")
    return out
