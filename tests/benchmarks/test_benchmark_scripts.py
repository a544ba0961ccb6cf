"""Every script in benchmarks/ runs: each is listed here by name (a new script without an entry fails),
runs with ``--smoke`` in a subprocess (tiny data it makes itself, no ../shared, no GPU), writes its JSON
into the folder given by ``--out`` and nothing inside the repository, and the JSON has the script's keys."""

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
# script -> (top-level keys of its JSON, (list key, keys of its first row) or None)
SCRIPTS = {
    "beyond_paper": ({"variants", "runs", "summary", "machine"}, ("runs", {"image_auroc", "pixel_auroc", "model"})),
    "bf16_vs_fp32": ({"speed", "max_abs_diff", "mean_abs_diff", "runs", "accuracy_skipped", "machine"},
                     ("speed", {"infer_speedup", "step_speedup"})),
    "cae_recipe": ({"recipes", "runs", "machine"}, ("runs", {"image_auroc", "pixel_auroc", "best_epoch"})),
    "default_budget": ({"runs", "budget_seconds", "images", "machine"},
                       ("runs", {"model", "wall_seconds", "within_budget", "image_auroc", "pixel_auroc"})),
    "gpu_check": ({"runs", "gpus", "anovit_bf16_over_fp32_train", "torchrun_2_gpus", "machine"},
                  ("runs", {"train_images_per_s", "score_images_per_s", "image_auroc", "aupro"})),
    "masked_preset": ({"candidates", "runs", "machine"}, ("runs", {"mask_ratio", "score", "image_auroc", "pixel_auroc"})),
    "mnist_table2": ({"setting", "cells", "machine"}, ("cells", {"class", "model", "image_auroc"})),
    "pixel_auroc_vs_sklearn": ({"sizes", "speedup_at_largest", "machine"}, ("sizes", {"ours_auroc", "sklearn_auroc"})),
    "scale_out_cpu": ({"train", "ddp_2_over_1_train_images_per_s", "ddp_2_over_1_wall", "machine"}, None),
    "score_functions": ({"median_seconds", "ratio_to_l2", "share_of_forward", "machine"}, None),
    "scoring_throughput": ({"models", "target", "machine"}, ("models", {"ratio_warm", "ratio_cold", "stage_share"})),
    "train_throughput": ({"models", "target", "machine"}, ("models", {"ratio", "trainer_images_per_s"})),
    "unified": ({"runs", "recipes", "summary", "machine"},
                ("runs", {"recipe", "seed", "rows", "unified_train_seconds", "per_class_train_seconds"})),
    "validation_sets": ({"runs", "recipes", "summary", "machine"},
                        ("runs", {"recipe", "set", "seed", "image_auroc", "pixel_auroc"})),
}
PARALLEL = 2  # scripts at a time (one torch thread each): the 2-core machine runs the file in about a minute


def _untracked_files() -> set[str]:
    """Every untracked or ignored file git sees in the checkout (empty outside a git checkout)."""
    done = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=REPO,
                          capture_output=True, text=True)
    return {line for line in done.stdout.splitlines() if line[:2] in ("??", "!!")} if done.returncode == 0 else set()


@pytest.fixture(scope="module")
def smoked(tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Each script run once with --smoke --out <its own folder>, two at a time."""
    tmp = tmp_path_factory.mktemp("benchmarks")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1",
           # where anovit would write by default: outside the checkout, so a stray default shows up nowhere
           "ANOVIT_CHECKPOINTS": str(tmp / "checkpoints"), "ANOVIT_DATA_DIR": str(tmp / "data"),
           "ANOVIT_RESULTS": str(tmp / "results")}
    env.pop("PYTHONPATH", None)  # the scripts find the checkout themselves (benchmarks/_common.py)

    def run(name: str) -> tuple[subprocess.CompletedProcess, Path]:
        out = tmp / name
        done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--smoke", "--out", str(out)], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=600)
        return done, out

    before = _untracked_files()
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = dict(zip(SCRIPTS, pool.map(run, SCRIPTS)))
    new = sorted(_untracked_files() - before)
    assert not new, f"--smoke runs wrote inside the repository: {new}"
    return results


def test_every_script_has_an_entry():
    present = {p.stem for p in BENCH.glob("*.py") if p.name != "_common.py"}
    assert present == set(SCRIPTS), f"add the new script(s) {sorted(present - set(SCRIPTS))} to SCRIPTS (and --smoke)"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_smoke_run_writes_its_json(smoked, name):
    done, out = smoked[name]
    assert done.returncode == 0, f"{name}.py --smoke failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    data = json.loads((out / f"{name}.json").read_text())
    keys, rows = SCRIPTS[name]
    assert keys <= set(data), f"{name}: missing {sorted(keys - set(data))}"
    if rows is not None:
        field, row_keys = rows
        assert data[field], f"{name}: '{field}' is empty"
        assert row_keys <= set(data[field][0]), f"{name}: {field}[0] misses {sorted(row_keys - set(data[field][0]))}"
    for row in data.get("runs", []) + data.get("cells", []):  # scores of real runs, not placeholders
        for metric in ("image_auroc", "pixel_auroc"):
            if isinstance(row, dict) and row.get(metric) is not None:
                assert 0.0 <= row[metric] <= 1.0, (name, metric, row[metric])
