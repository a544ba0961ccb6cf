"""One model for every class vs one model per class on the real validation sets (issue 26).

The four validation classes (``validation_sets.SETS``: cookie, capsules, metal_plate, pcb; each in its own data
root) are gathered into one multi-class root of links (:func:`anovit.data.unified.link_classes`); per recipe
and seed, one unified run (``category="all"``) is trained there and evaluated per class
(:func:`anovit.evaluation.unified.evaluate_unified_run`, each class with its own threshold and calibration),
beside the per-class runs of ``validation_sets.py`` (the same run folders under ``--runs-root``: trained there
already, they are reused, else trained here). Per class: image / pixel AUROC of both and the paired 95 %
bootstrap interval of unified minus per-class over the same test images
(:func:`anovit.evaluation.run_statistics.evaluations_difference`); per recipe: the means over the classes and
seeds, and the training time of the unified run against the summed per-class times.

Writes ``benchmarks/results/unified.json``. ``--smoke``: two tiny classes in a temporary folder, one 1-epoch
recipe, JSON into ``--out``; nothing inside the repository. Run from the repository root, e.g.
``python benchmarks/unified.py --recipes anovit-default,cae-default --seeds 0,1,2``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import RESULTS, add_output_args, machine, output_dir, tiny_mvtec, write_result
from validation_sets import RECIPES, SETS, _finished

OUTPUT = RESULTS / "unified.json"
LINKS = "unified-root"  # the multi-class root of links, under --runs-root


def _test(evaluation: Any) -> Any:
    """An :class:`~anovit.evaluation.evaluate.Evaluation` as the TestEvaluation the paired intervals read."""
    import pandas as pd

    from anovit.evaluation.run_statistics import TestEvaluation

    return TestEvaluation(pd.DataFrame(evaluation.rows), evaluation.pixel_histograms, evaluation.pixel_auroc)


def _evaluate(config: Any, run_dir: Path, unified: bool) -> tuple[dict[str, Any], float]:
    """Train ``config`` into ``run_dir`` unless finished (resumed when killed), then score it at the recipe's
    scoring without writing into the run: (class -> Evaluation, training seconds)."""
    from anovit.evaluation.evaluate import evaluate_run
    from anovit.evaluation.unified import evaluate_unified_run
    from anovit.runs.metrics_record import read_run_metrics
    from anovit.runs.record import SCORING_FIELDS
    from anovit.training.trainer import train

    if not _finished(run_dir, config.epochs):
        train(config, run_dir, resume=(run_dir / "resume.safetensors").is_file(), overwrite=True)
    log = read_run_metrics(run_dir).training
    scoring = dict(device="cpu", sigma=config.sigma, record=False, **{k: getattr(config, k) for k in SCORING_FIELDS})
    result = (evaluate_unified_run(run_dir, **scoring).per_class if unified
              else {config.category: evaluate_run(run_dir, **scoring)})
    return result, sum(h.seconds for h in log.history)


def compare(recipe: str, fields: dict[str, Any], sets: dict[str, tuple[Path, str]], seed: int, runs_root: Path,
            extra: dict[str, Any]) -> dict[str, Any]:
    """One recipe and seed: the per-class runs, the unified run on the link root, their per-class rows."""
    from anovit.data import ALL_CLASSES
    from anovit.data.unified import link_classes
    from anovit.evaluation.run_statistics import evaluations_difference
    from anovit.training.config import TrainConfig

    per_class, seconds = {}, {}
    for name, (root, category) in sets.items():
        config = TrainConfig(dataset="mvtec", category=category, data_root=str(root), seed=seed, **{**fields, **extra})
        evaluations, seconds[category] = _evaluate(config, runs_root / f"{name}-{recipe}-s{seed}", unified=False)
        per_class.update(evaluations)
    links = link_classes({category: Path(root) / category for root, category in sets.values()}, runs_root / LINKS)
    config = TrainConfig(dataset="mvtec", category=ALL_CLASSES, data_root=str(links), seed=seed, **{**fields, **extra})
    unified, unified_seconds = _evaluate(config, runs_root / f"unified-{recipe}-s{seed}", unified=True)
    rows = []
    for category in sorted(per_class):
        row: dict[str, Any] = {"recipe": recipe, "seed": seed, "class": category}
        for metric in ("image_auroc", "pixel_auroc"):
            diff = evaluations_difference([_test(unified[category])], [_test(per_class[category])], metric)
            row.update({f"{metric}_unified": getattr(unified[category], metric),
                        f"{metric}_per_class": getattr(per_class[category], metric),
                        f"{metric}_diff": diff.estimate if diff else None,
                        f"{metric}_diff_low": diff.low if diff else None,
                        f"{metric}_diff_high": diff.high if diff else None})
        rows.append(row)
    return {"rows": rows, "unified_train_seconds": unified_seconds, "per_class_train_seconds": sum(seconds.values()),
            "load_average_1m": machine()["load_average_1m"]}


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per recipe: mean over seeds of the mean over classes (unified, per-class, difference) and the time ratio."""
    out = []
    for recipe in sorted({r["recipe"] for r in runs}):
        mine = [r for r in runs if r["recipe"] == recipe]
        row: dict[str, Any] = {"recipe": recipe, "seeds": sorted(r["seed"] for r in mine)}
        for key in ("image_auroc_unified", "image_auroc_per_class", "pixel_auroc_unified", "pixel_auroc_per_class"):
            row[key] = statistics.fmean(statistics.fmean(c[key] for c in r["rows"] if c[key] is not None) for r in mine)
        row["image_auroc_gap"] = row["image_auroc_per_class"] - row["image_auroc_unified"]
        row["time_ratio"] = statistics.fmean(r["unified_train_seconds"] / r["per_class_train_seconds"] for r in mine)
        out.append(row)
    return out


def markdown_table(runs: list[dict[str, Any]]) -> str:
    """The README's table: per recipe and class, mean over seeds of unified and per-class image / pixel AUROC."""
    lines = ["| recipe | class | seeds | image AUROC unified | image AUROC per-class | pixel AUROC unified | "
             "pixel AUROC per-class |", "|---|---|---|---|---|---|---|"]
    keys = ("image_auroc_unified", "image_auroc_per_class", "pixel_auroc_unified", "pixel_auroc_per_class")
    rows = [dict(c, seed=r["seed"]) for r in runs for c in r["rows"]]
    for recipe in sorted({c["recipe"] for c in rows}):
        means = []
        for category in sorted({c["class"] for c in rows if c["recipe"] == recipe}):
            mine = [c for c in rows if (c["recipe"], c["class"]) == (recipe, category)]
            means.append({k: statistics.fmean(c[k] for c in mine) for k in keys})
            lines.append(f"| {recipe} | {category} | {','.join(str(c['seed']) for c in mine)} | "
                         + " | ".join(f"{means[-1][k]:.3f}" for k in keys) + " |")
        lines.append(f"| {recipe} | **mean** | | " + " | ".join(f"{statistics.fmean(m[k] for m in means):.3f}"
                                                              for k in keys) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", default=",".join(SETS), help=f"comma list of: {', '.join(SETS)}")
    p.add_argument("--recipes", default="anovit-default,cae-default", help=f"comma list of: {', '.join(RECIPES)}")
    p.add_argument("--seeds", default="0,1,2", help="comma list of seeds")
    p.add_argument("--runs-root", type=Path, default=Path("/work/valruns"),
                   help="run folders (outside the repository; validation_sets.py's per-class runs there are reused)")
    p.add_argument("--table", action="store_true", help="print the README's Markdown table from the JSON and stop")
    add_output_args(p)
    args = p.parse_args()
    if args.table:
        print(markdown_table(json.loads(OUTPUT.read_text())["runs"]))
        return
    tmp = tempfile.TemporaryDirectory() if args.smoke else None
    if tmp:  # two tiny classes in two data roots (the second class renamed: class names are folder names)
        first, second = tiny_mvtec(Path(tmp.name) / "a", seed=0), tiny_mvtec(Path(tmp.name) / "b", seed=1)
        (second / "part").rename(second / "other")
        sets = {"a": (first, "part"), "b": (second, "other")}
    else:
        sets = {k: SETS[k] for k in args.sets.split(",")}
    runs_root = Path(tmp.name) / "runs" if tmp else args.runs_root
    recipes = {k: RECIPES[k] for k in (["cae-default"] if tmp else args.recipes.split(","))}
    seeds = [0] if tmp else [int(s) for s in args.seeds.split(",")]
    extra = dict(epochs=1, batch_size=4, images_per_epoch=8, model_overrides={"image_size": 64}) if tmp else {}
    start = machine()
    old = json.loads(OUTPUT.read_text()) if OUTPUT.is_file() and not tmp else {}
    runs = {(r["recipe"], r["seed"]): r for r in old.get("runs", [])}
    for recipe, fields in recipes.items():
        for seed in seeds:
            record = compare(recipe, fields, sets, seed, runs_root, extra)
            runs[(recipe, seed)] = {"recipe": recipe, "seed": seed, **record}
            for row in record["rows"]:
                print(f"{recipe} s{seed} {row['class']}: image AUROC unified {row['image_auroc_unified']:.3f} "
                      f"per-class {row['image_auroc_per_class']:.3f}", flush=True)
    out = {"runs": sorted(runs.values(), key=lambda r: (r["recipe"], r["seed"])), "recipes": recipes,
           "summary": summarise(list(runs.values())), "machine": start}
    print(markdown_table(out["runs"]))
    if tmp:
        tmp.cleanup()
        write_result("unified", out, output_dir(args))
    else:
        write_result("unified", out)


if __name__ == "__main__":
    sys.exit(main())
