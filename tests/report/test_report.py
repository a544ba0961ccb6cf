"""The report: joining results to the paper's tables, mean ± std over seeds, relative improvement,
deltas, the Markdown/CSV output, the CLI and the Results page."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from anovit.evaluation.benchmark import RESULT_COLUMNS, append_result
from anovit.report.tables import (
    collect_results, comparison, overall, relative_improvement, report_tables, run_result_row,
)
from anovit.runs.provenance import budget_warnings, default_counted
from anovit.report.render import comparison_figure, display_table
from anovit.runs.record import RunRecord

PAGE = Path(__file__).resolve().parents[2] / "app_pages" / "2_Results.py"
# (dataset, class, model) -> image AUROC of seeds 0, 1, 2 (pixel AUROC = image AUROC - 0.1)
VALUES = {
    ("mvtec", "bottle", "cae"): (0.70, 0.80, 0.90),
    ("mvtec", "bottle", "anovit"): (0.85, 0.88, 0.91),
    ("mvtec", "carpet", "cae"): (0.50, 0.60, 0.70),
    ("mvtec", "carpet", "anovit"): (0.55, 0.60, 0.65),
    ("synthetic", "weave", "cae"): (0.60, 0.62, 0.64),
    ("synthetic", "weave", "anovit"): (0.70, 0.72, 0.74),
}


def _row(dataset, category, model, seed, auroc, **extra):
    kind = {"bottle": "object", "carpet": "texture", "weave": "texture"}[category]
    return {"dataset": dataset, "class": category, "type": kind, "model": model, "preset": "cpu-tiny",
            "seed": seed, "epochs": 2, "image_auroc": auroc, "pixel_auroc": round(auroc - 0.1, 6), "aupro": 0.3,
            "image_f1_max": 0.8, "pixel_f1_max": 0.2, "train_seconds": 10.0, "eval_seconds": 2.0,
            "train_images_per_s": 20.0, "eval_images_per_s": 50.0, "run_dir": f"/runs/{dataset}-{category}-{model}-s{seed}",
            "versions": "test", "finished_at": "2026-11-29T00:00:00", **extra}


@pytest.fixture
def results_csv(tmp_path) -> Path:
    path = tmp_path / "benchmark.csv"
    for (dataset, category, model), values in VALUES.items():
        for seed, auroc in enumerate(values):
            append_result(path, _row(dataset, category, model, seed, auroc))
    return path


def test_comparison_against_paper_table_4(results_csv):
    df = collect_results(results_csv)
    assert len(df) == 18 and set(df["source"]) == {"benchmark"}
    table = comparison(df, "mvtec", "cpu-tiny", "image_auroc").set_index("class")
    assert list(table.index) == ["bottle", "carpet", "mean", "std"]  # objects before textures, as the paper
    bottle = table.loc["bottle"]
    assert bottle["cae_mean"] == pytest.approx(0.8) and bottle["cae_std"] == pytest.approx(0.1)  # sample std
    assert bottle["anovit_mean"] == pytest.approx(0.88) and bottle["anovit_n"] == 3
    assert bottle["relative_pct"] == pytest.approx(10.0)  # (0.88 - 0.80) / 0.80
    assert (bottle["paper_cae"], bottle["paper_anovit"], bottle["paper_relative_pct"]) == (0.77, 0.83, 7.79)
    assert bottle["delta_anovit"] == pytest.approx(0.88 - 0.83)
    mean = table.loc["mean"]
    assert mean["cae_mean"] == pytest.approx(0.7) and mean["anovit_mean"] == pytest.approx(0.74)
    assert mean["relative_pct"] == pytest.approx(relative_improvement(0.7, 0.74))
    assert (mean["paper_cae"], mean["paper_anovit"], mean["paper_relative_pct"]) == (0.73, 0.78, 6.85)
    assert mean["delta_cae"] == pytest.approx(0.7 - 0.73)
    std = table.loc["std"]
    assert std["cae_mean"] == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert (std["paper_cae"], std["paper_anovit"]) == (0.18, 0.14)
    assert np.isnan(std["delta_cae"]) and np.isnan(std["relative_pct"])
    pixel = comparison(df, "mvtec", "cpu-tiny", "pixel_auroc").set_index("class")
    assert pixel.loc["bottle", "paper_cae"] == 0.83 and pixel.loc["bottle", "cae_mean"] == pytest.approx(0.7)
    aupro = comparison(df, "mvtec", "cpu-tiny", "aupro")
    assert aupro["paper_cae"].isna().all()  # the paper reports no AUPRO


def test_synthetic_compares_only_its_summary_rows_with_mvtec(results_csv):
    table = comparison(collect_results(results_csv), "synthetic", "cpu-tiny", "image_auroc").set_index("class")
    assert np.isnan(table.loc["weave", "paper_cae"])
    assert table.loc["mean", "paper_anovit"] == 0.78 and table.loc["weave", "anovit_mean"] == pytest.approx(0.72)


def test_last_row_of_a_cell_wins_and_run_folders_join(results_csv, tmp_path):
    append_result(results_csv, _row("mvtec", "bottle", "cae", 0, 0.75))  # a rerun of seed 0
    run = RunRecord.from_json(tmp_path / "mvtec-cable-anovit", {"model_type": "anovit"},
                              {"dataset": "mvtec", "category": "cable", "preset": "cpu-tiny", "seed": 0},
                              {"training": {"history": [{"seconds": 4.0, "images_per_s": 30.0}] * 2},
                               "test": {"image_auroc": 0.66, "pixel_auroc": 0.8, "aupro": 0.4, "seconds": 1.0,
                                        "images_per_s": 80.0, "dataset": "mvtec", "category": "cable"}})
    unevaluated = RunRecord.from_json(tmp_path / "x", {"model_type": "cae"}, {"dataset": "mvtec"})
    assert run_result_row(unevaluated) is None
    df = collect_results(results_csv, [run, unevaluated])
    assert len(df) == 19
    bottle0 = df[(df["class"] == "bottle") & (df["model"] == "cae") & (df["seed"] == 0)]
    assert bottle0["image_auroc"].tolist() == [0.75]
    cable = df[df["class"] == "cable"].iloc[0]
    assert (cable["source"], cable["type"], cable["train_seconds"], cable["epochs"]) == ("run folder", "object", 8.0, 2)
    table = comparison(df, "mvtec", "cpu-tiny", "image_auroc").set_index("class")
    assert table.loc["cable", "anovit_mean"] == 0.66 and np.isnan(table.loc["cable", "cae_mean"])
    assert table.loc["cable", "paper_anovit"] == 0.74


def test_markdown_and_csv_report(results_csv, tmp_path):
    from anovit.cli.main import main

    assert main(["report", "--results", str(results_csv), "--output-dir", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Overall (paper Table 1)" in md and "MVTecAD (Det)" in md
    assert "## mvtec · cpu-tiny · image AUROC" in md and "paper Table 4" in md and "paper Table 5" in md
    assert "| object | bottle | 0.800 ± 0.100 | 0.880 ± 0.030 | +0.080 |  | +10.00% | 3/3 | 2 epochs / 2 epochs |" in md
    assert f"Source: {results_csv.resolve()} (18 runs)." in md  # a file that exists, named as it is
    assert "0.770 | 0.830 | +7.790% |" in md  # the paper's bottle row beside ours
    csv = pd.read_csv(tmp_path / "out" / "report.csv")
    assert set(csv["metric"]) == {"image_auroc", "pixel_auroc", "aupro"}
    row = csv[(csv["dataset"] == "mvtec") & (csv["metric"] == "image_auroc") & (csv["class"] == "carpet")].iloc[0]
    assert row["paper_cae"] == 0.54 and row["cae_mean"] == pytest.approx(0.6)
    assert len(report_tables(collect_results(results_csv))) == len(csv)
    top = overall(collect_results(results_csv)).set_index(["dataset", "task"])
    assert top.loc[("mvtec", "localization"), "paper_cae"] == 0.81
    assert top.loc[("synthetic", "detection"), "paper_row"] == "MVTecAD (Det)"


def test_report_refuses_an_empty_or_foreign_table(tmp_path, capsys):
    from anovit.cli.main import main

    assert main(["report", "--results", str(tmp_path / "none.csv")]) == 2
    assert "run `python -m anovit benchmark` first" in capsys.readouterr().err
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    assert main(["report", "--results", str(tmp_path / "other.csv")]) == 2
    assert "expected" in capsys.readouterr().err


def test_display_and_figure(results_csv):
    table = comparison(collect_results(results_csv), "mvtec", "cpu-tiny", "image_auroc")
    shown = display_table(table)
    assert list(shown.columns[-5:]) == ["paper l2-CAE", "paper AnoViT", "paper rel. impr.", "Δ l2-CAE", "Δ AnoViT"]
    assert shown.iloc[0]["seeds"] == "3/3" and shown.iloc[2]["l2-CAE"] == "0.700"
    fig = comparison_figure(table, "image_auroc")
    names = [t.name for t in fig.data]
    assert names == ["l2-CAE", "paper l2-CAE", "AnoViT", "paper AnoViT"]
    assert list(fig.data[0].x) == ["bottle", "carpet", "mean"]
    from anovit.report.tables import section_rows

    runs = section_rows(collect_results(results_csv), "mvtec", "cpu-tiny")
    fig = comparison_figure(table, "image_auroc", runs)
    points = {t.name: t for t in fig.data if t.name.endswith("per seed")}
    assert set(points) == {"l2-CAE per seed", "AnoViT per seed"}
    for model, label in (("cae", "l2-CAE"), ("anovit", "AnoViT")):  # every run, at its own value and seed
        mine = runs[runs["model"] == model]
        assert sorted(zip(points[f"{label} per seed"].x, points[f"{label} per seed"].y)) == sorted(
            zip(mine["class"], mine["image_auroc"]))
        assert sorted(s[0] for s in points[f"{label} per seed"].customdata) == sorted(mine["seed"])


def test_results_page_renders_tables_with_the_paper_column(results_csv, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ANOVIT_RESULTS", str(results_csv))
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    app = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not app.exception
    assert app.selectbox[0].value == "mvtec"
    frames = [d.value for d in app.dataframe]
    assert any("paper AnoViT" in f.columns and "0.830" in f["paper AnoViT"].tolist() for f in frames)
    assert [t.label for t in app.tabs] == ["image AUROC", "pixel AUROC", "AUPRO"]
    app.selectbox[0].select("synthetic").run()
    assert not app.exception
    assert any("paper AnoViT" in f.columns and "0.780" in f["paper AnoViT"].tolist() for f in
               (d.value for d in app.dataframe))


def test_results_page_without_results_says_how_to_get_them(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ANOVIT_RESULTS", str(tmp_path / "none.csv"))
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    app = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not app.exception
    assert "python -m anovit benchmark" in app.info[0].value


def test_result_columns_are_the_issue_s():
    for column in ("dataset", "class", "type", "model", "preset", "seed", "image_auroc", "pixel_auroc", "aupro",
                   "image_f1_max", "train_seconds", "eval_seconds", "eval_images_per_s", "run_dir", "versions"):
        assert column in RESULT_COLUMNS


def test_budget_table_states_each_models_training_budget_and_sigma(tmp_path):
    from anovit.report.render import cost_table

    rows = []
    for model, lr, epochs in (("cae", 2e-4, 200), ("anovit", 1e-3, 10)):
        run = tmp_path / model
        run.mkdir()
        (run / "training.json").write_text(json.dumps({"lr": lr, "batch_size": 16, "epochs": epochs}))
        (run / "config.json").write_text(json.dumps({"model_type": model, "image_size": 128}))
        history = [{"epoch": e + 1, "seconds": 1.0} for e in range(epochs)]
        (run / "metrics.json").write_text(json.dumps({"training": {"history": history}, "test": {"sigma": 4.0}}))
        rows.append(_row("mvtec", "bottle", model, 0, 0.8, run_dir=str(run), epochs=epochs))
    path = tmp_path / "results.csv"
    for row in rows:
        append_result(path, row)
    table = cost_table(collect_results(path)).set_index("model")
    assert table.loc["l2-CAE", ["epochs", "lr", "batch", "sigma", "decoder"]].tolist() == ["200", "0.0002", "16", "4", "—"]
    assert table.loc["AnoViT", ["epochs", "lr", "decoder", "size px"]].tolist() == ["10", "0.001", "stable", "128"]


def test_runs_of_different_budgets_are_never_averaged_and_each_cell_names_its_runs(results_csv):
    append_result(results_csv, _row("mvtec", "bottle", "cae", 3, 0.99, epochs=10, finished_at="2026-11-30T09:00:00"))
    df = collect_results(results_csv)
    assert len(df) == 19  # one row per run: none is dropped silently
    table = comparison(df, "mvtec", "cpu-tiny", "image_auroc").set_index("class")
    bottle = table.loc["bottle"]
    assert np.isnan(bottle["cae_mean"]) and bottle["cae_budget"] == "mixed" and bottle["cae_n"] == 4
    assert bottle["cae_runs"].startswith("not averaged") and "10 epochs: mvtec-bottle-cae-s3 (seed 3, " in bottle["cae_runs"]
    carpet = table.loc["carpet"]
    assert carpet["cae_mean"] == pytest.approx(0.6) and carpet["cae_budget"] == "2 epochs"
    for seed in range(3):
        assert f"mvtec-carpet-cae-s{seed} (seed {seed}, 2026-11-29 00:00)" in carpet["cae_runs"]
    counted = df[default_counted(df)]  # the newest run's budget: bottle's l2-CAE is the 10-epoch run alone
    table = comparison(counted, "mvtec", "cpu-tiny", "image_auroc")
    bottle = table.set_index("class").loc["bottle"]
    assert bottle["cae_mean"] == pytest.approx(0.99) and bottle["cae_n"] == 1
    assert budget_warnings(table, labels={"cae": "l2-CAE", "anovit": "AnoViT"}) == [
        "bottle: l2-CAE 10 epochs, AnoViT 2 epochs"
    ]
    shown = display_table(table).set_index("class")
    assert shown.loc["bottle", "budget"] == "10 epochs / 2 epochs" and shown.loc["bottle", "seeds"] == "1/3"
    assert shown.loc["bottle", "abs. diff."] == f"{0.88 - 0.99:+.3f}"


def test_report_counts_the_newest_budget_and_hints_at_with_runs(results_csv, tmp_path, capsys):
    from anovit.cli.main import main

    append_result(results_csv, _row("mvtec", "bottle", "cae", 3, 0.99, epochs=10, finished_at="2026-11-30T09:00:00"))
    assert main(["report", "--results", str(results_csv), "--output-dir", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "3 older run(s) trained with another budget" in md
    assert "| bottle | l2-CAE | 10 epochs |  | mvtec-bottle-cae-s3 (seed 3, 2026-11-30 09:00) |" in md  # no folder: no recipe
    capsys.readouterr()
    assert main(["report", "--results", str(tmp_path / "none.csv")]) == 2
    assert "pass --with-runs" in capsys.readouterr().err


def test_results_page_names_runs_warns_on_budgets_and_lets_the_reviewer_choose(results_csv, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    append_result(results_csv, _row("mvtec", "bottle", "cae", 3, 0.99, epochs=10, finished_at="2026-11-30T09:00:00"))
    monkeypatch.setenv("ANOVIT_RESULTS", str(results_csv))
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    app = AppTest.from_file(str(PAGE), default_timeout=60).run()
    assert not app.exception
    assert any("bottle: l2-CAE 10 epochs, AnoViT 2 epochs" in w.value for w in app.warning)
    frames = [d.value for d in app.dataframe]
    shown = next(f for f in frames if "abs. diff." in f.columns).set_index("class")
    assert shown.loc["bottle", "budget"] == "10 epochs / 2 epochs" and shown.loc["bottle", "seeds"] == "1/3"
    assert "Δ AnoViT" in shown.columns
    runs = next(f for f in frames if list(f.columns) == ["class", "model", "budget", "recipe", "runs"])
    runs = runs.set_index(["class", "model"])["runs"]
    assert runs[("bottle", "l2-CAE")] == "mvtec-bottle-cae-s3 (seed 3, 2026-11-30 09:00)"
    captions = " ".join(c.value for c in app.caption)
    assert "seeds n/m" in captions and "type: object or texture" in captions and "0.5 is chance" in captions
    assert "false positive rate of 0.3" in captions
    overall_shown = next(f for f in frames if "paper row" in f.columns)
    assert "cae" not in overall_shown.columns and "None" not in overall_shown.to_string()
    every = next(f for f in frames if {"value", "seeds"} <= set(f.columns)).set_index(["class", "model"])
    assert every.loc[("carpet", "l2-CAE"), "value"] == "0.600 ± 0.100" and every.loc[("bottle", "l2-CAE"), "seeds"] == 1
    app.selectbox[0].select("synthetic").run()
    shown = next(d.value for d in app.dataframe if "abs. diff." in d.value.columns)
    assert "paper AnoViT" in shown.columns and "Δ AnoViT" not in shown.columns  # no deltas for a stand-in dataset


def test_runs_of_one_budget_but_another_recipe_are_not_averaged(tmp_path):
    """Two seeds of one cell, both 2 epochs, scored with different score functions: never one mean."""
    path = tmp_path / "results.csv"
    for seed, score, finished in ((0, "l2", "2026-11-29T00:00:00"), (1, "ssim", "2026-11-30T00:00:00")):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        (run / "training.json").write_text(json.dumps({"lr": 2e-4, "batch_size": 16}))
        (run / "config.json").write_text(json.dumps({"model_type": "cae", "image_size": 128}))
        (run / "metrics.json").write_text(json.dumps({"test": {"score": score, "sigma": 2.0}}))
        append_result(path, _row("mvtec", "bottle", "cae", seed, 0.7 + seed / 10, run_dir=str(run),
                                 finished_at=finished))
    df = collect_results(path)
    assert df.set_index("seed")["recipe"].tolist() == ["lr 0.0002 · batch 16 · px 128 · score l2 · sigma 2",
                                                       "lr 0.0002 · batch 16 · px 128 · score ssim · sigma 2"]
    cell = comparison(df, "mvtec", "cpu-tiny", "image_auroc").set_index("class").loc["bottle"]
    assert np.isnan(cell["cae_mean"]) and cell["cae_budget"] == "mixed"
    assert "2 epochs (lr 0.0002 · batch 16 · px 128 · score ssim · sigma 2): run1 (seed 1, " in cell["cae_runs"]
    counted = df[default_counted(df)]  # the newest run's setting: the ssim one
    assert counted["seed"].tolist() == [1]
    cell = comparison(counted, "mvtec", "cpu-tiny", "image_auroc").set_index("class").loc["bottle"]
    assert cell["cae_mean"] == pytest.approx(0.8) and cell["cae_budget"] == "2 epochs"


def test_every_model_of_a_section_appears_with_its_cells(results_csv):
    from anovit.runs.provenance import model_cells

    append_result(results_csv, _row("mvtec", "bottle", "ssim-cae", 0, 0.95))  # a model the paper does not compare
    df = collect_results(results_csv)
    cells = model_cells(report_section(df), "image_auroc").set_index(["class", "model"])
    assert cells.loc[("bottle", "ssim-cae"), "mean"] == pytest.approx(0.95) and cells.loc[("bottle", "ssim-cae"), "n"] == 1
    assert cells.loc[("bottle", "cae"), "mean"] == pytest.approx(0.8) and cells.loc[("bottle", "cae"), "n"] == 3
    assert set(cells.index.get_level_values("model")) == {"cae", "anovit", "ssim-cae"}


def report_section(df):
    from anovit.report.tables import section_rows

    return section_rows(df, "mvtec", "cpu-tiny")


def test_runs_of_one_recipe_but_another_calibration_are_not_averaged(tmp_path):
    """Two seeds of one cell, alike except that one scored the calibrated map with top-k pooling (issue 23):
    two recipes, never one mean; the paper's raw map and max pooling go unsaid."""
    path = tmp_path / "results.csv"
    scorings = ({}, {"image_calibration": "standardise", "pixel_calibration": "none", "pooling": "topk",
                     "pooling_top_percent": 5.0})
    for seed, scoring in enumerate(scorings):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        (run / "training.json").write_text(json.dumps({"lr": 1e-3, "batch_size": 16}))
        (run / "config.json").write_text(json.dumps({"model_type": "cae", "image_size": 128}))
        (run / "metrics.json").write_text(json.dumps({"test": {"score": "l2", "sigma": 4.0, **scoring}}))
        append_result(path, _row("mvtec", "bottle", "cae", seed, 0.7 + seed / 10, run_dir=str(run),
                                 finished_at=f"2026-11-2{seed + 1}T00:00:00"))
    df = collect_results(path)
    assert df.set_index("seed")["recipe"].tolist() == [
        "lr 0.001 · batch 16 · px 128 · score l2 · sigma 4",
        "lr 0.001 · batch 16 · px 128 · score l2 · sigma 4 · image map standardise · pooling topk · top % 5"]
    cell = comparison(df, "mvtec", "cpu-tiny", "image_auroc").set_index("class").loc["bottle"]
    assert np.isnan(cell["cae_mean"]) and cell["cae_budget"] == "mixed"
