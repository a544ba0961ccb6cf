"""Results tables from the real world (issue 10): read against the declared schema, bad rows refused
by line number and never merged, the data folder part of a cell, no paper deltas for a custom MVTec
folder, and undecodable files named in one sentence."""

import csv
import io
from pathlib import Path

import pytest

from anovit.evaluation.benchmark import RESULT_COLUMNS, append_result, read_results
from anovit.cli.main import main
from anovit.utils.errors import AnovitError
from anovit.report.tables import collect_results, comparison, paper_source, section_custom, sections
from anovit.report.render import markdown_report
from anovit.evaluation.results_table import COLUMNS, LEGACY_COLUMNS, read_table
from anovit.runs.record import RunRecord


def _row(category="bottle", model="cae", seed=0, auroc=0.8, data_root="", **extra):
    return {"dataset": "mvtec", "data_root": data_root, "class": category, "type": "object", "model": model,
            "preset": "cpu-tiny", "seed": seed, "epochs": 2, "image_auroc": auroc, "pixel_auroc": 0.7, "aupro": 0.3,
            "image_f1_max": 0.8, "pixel_f1_max": 0.2, "train_seconds": 10.0, "eval_seconds": 2.0,
            "train_images_per_s": 20.0, "eval_images_per_s": 50.0, "run_dir": f"/runs/{category}-{model}-s{seed}",
            "versions": "test", "finished_at": "2026-11-29T00:00:00", **extra}


def _line(row: dict, columns=COLUMNS) -> str:
    text = io.StringIO()
    csv.DictWriter(text, fieldnames=columns, lineterminator="\n").writerow({c: row[c] for c in columns})
    return text.getvalue()


def _table(tmp_path: Path, *lines: str, columns=COLUMNS) -> Path:
    path = tmp_path / "benchmark.csv"
    path.write_text(",".join(columns) + "\n" + "".join(lines), encoding="utf-8")
    return path


def test_bad_values_are_refused_by_line_number_and_good_rows_kept(tmp_path):
    path = _table(tmp_path, _line(_row(seed=0)), _line(_row(seed=1, auroc="abc")), _line(_row(seed=2, auroc="inf")),
                  _line(_row(seed=3, auroc=1.7)), _line(_row(seed=4, auroc=-3)), _line(_row(seed=5, auroc=0.9)),
                  _line(_row(seed="x")), _line(_row(seed=6, epochs=0)), _line(_row(seed=7, auroc="")))
    read = read_table(path)
    assert read.rows["seed"].tolist() == [0, 5, 7]
    assert read.rows["image_auroc"].tolist()[:2] == [0.8, 0.9] and read.rows["image_auroc"].isna().tolist()[2]
    assert str(read.rows["seed"].dtype) == "Int64" and read.rows["image_auroc"].dtype == float
    assert [p.split(":")[0] for p in read.problems] == ["line 3", "line 4", "line 5", "line 6", "line 8", "line 9"]
    assert read.problems[0] == "line 3: image_auroc 'abc' is not a number in [0, 1] or empty; row left out"
    assert "image_auroc 'inf'" in read.problems[1] and "image_auroc '1.7'" in read.problems[2]
    assert "image_auroc '-3'" in read.problems[3]
    assert "seed 'x' is not an integer >= 0" in read.problems[4] and "epochs '0' is not an integer >= 1" in read.problems[5]


def test_nul_bytes_and_unquoted_commas_never_merge_or_shift_rows(tmp_path, capsys):
    nul = _line(_row(seed=1)).replace("test", "te\x00st")
    comma = _line(_row(seed=2)).replace("bottle", "bottle, big", 1)  # unquoted: one field too many
    path = _table(tmp_path, _line(_row(seed=0)), nul, _line(_row(seed=3)), comma, _line(_row(seed=4)))
    read = read_table(path)
    assert read.rows["seed"].tolist() == [0, 3, 4] and set(read.rows["class"]) == {"bottle"}
    assert read.problems == [
        "line 3: contains a NUL byte (a damaged file); row left out",
        f"line 5: {len(COLUMNS) + 1} fields where the header has {len(COLUMNS)} (an unquoted comma in a value, or a "
        "row cut short); row left out",
    ]
    df = collect_results(path)
    assert len(df) == 3 and df.attrs["left_out"] == [f"{path} {p}" for p in read.problems]
    assert {c for _, _, _, m in sections(df) for c in [m]} <= {"image_auroc", "pixel_auroc", "aupro"}
    assert sorted(df["class"].unique()) == ["bottle"]  # no bogus " big" class or section
    assert main(["report", "--results", str(path), "--output-dir", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert f"warning: {path} line 3: contains a NUL byte" in err and f"warning: {path} line 5:" in err
    md = (tmp_path / "out" / "report.md").read_text()
    assert "2 row(s) of the results table were left out" in md and "line 5:" in md


@pytest.mark.parametrize("content", ["dataset,class\nmvtec,b\xe9b\xe9\n".encode("latin-1"), bytes(range(256)) * 4],
                         ids=["latin-1", "random-bytes"])
def test_results_file_that_is_not_utf8_is_one_sentence_naming_it(tmp_path, capsys, content):
    path = tmp_path / "results.csv"
    path.write_bytes(content)
    with pytest.raises(AnovitError, match=rf"{path} is not UTF-8 text \(byte 0x[0-9a-f]{{2}} at offset \d+\)"):
        read_table(path)
    with pytest.raises(AnovitError, match="is not UTF-8 text"):
        read_results(path)
    assert main(["report", "--results", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path} is not UTF-8 text") and err.count("\n") == 1


def test_tables_without_the_data_root_column_still_read(tmp_path):
    legacy = {c: v for c, v in _row().items() if c != "data_root"}
    path = _table(tmp_path, _line(legacy, LEGACY_COLUMNS), columns=LEGACY_COLUMNS)
    read = read_table(path)
    assert read.problems == [] and read.rows["data_root"].tolist() == [""]
    assert list(read.rows.columns) == list(RESULT_COLUMNS)


def _run(path: Path, data_root: str, auroc: float) -> RunRecord:
    return RunRecord.from_json(path, {"model_type": "anovit"},
                               {"dataset": "mvtec", "category": "bottle", "preset": "cpu-tiny", "seed": 0,
                                "data_root": data_root},
                               {"test": {"image_auroc": auroc, "pixel_auroc": 0.8, "aupro": 0.4, "seconds": 1.0,
                                         "images_per_s": 80.0, "dataset": "mvtec", "category": "bottle",
                                         "data_root": data_root}})


def test_with_runs_keeps_the_data_folder_in_a_cell_and_custom_mvtec_gets_no_paper_delta(tmp_path):
    a, b = tmp_path / "data-a", tmp_path / "data-b"
    df = collect_results(None, [_run(tmp_path / "run-a", str(a), 0.6), _run(tmp_path / "run-b", str(b), 0.9)])
    assert len(df) == 2 and sorted(df["data_root"]) == [str(a), str(b)]
    assert [(d, r) for d, r, _, m in sections(df) if m == "image_auroc"] == [("mvtec", str(a)), ("mvtec", str(b))]
    table = comparison(df, "mvtec", "cpu-tiny", "image_auroc", str(a)).set_index("class")
    assert table.loc["bottle", "anovit_mean"] == 0.6 and table.loc["bottle", "anovit_n"] == 1  # not pooled with 0.9
    # neither folder is the official release (no images at all): no paper values, no deltas, and it says why
    assert table["paper_anovit"].isna().all() and table["delta_anovit"].isna().all()
    why = section_custom(df, "mvtec", "cpu-tiny", str(a))
    assert why == "bottle: 0 train / 0 test images, the official release has 209 / 83"
    assert paper_source("mvtec", "image_auroc", why).startswith("none: this data folder is not the paper's mvtec")
    md = markdown_report(df)
    assert f"## mvtec ({a}) · cpu-tiny · image AUROC" in md and "Δ AnoViT" not in md


def test_benchmark_row_records_the_data_folder_and_finished_cells_need_the_same_folder(tmp_path):
    from anovit.evaluation.benchmark import Cell, is_finished

    path = tmp_path / "benchmark.csv"
    append_result(path, _row(data_root=str(tmp_path / "data-a")))
    rows = read_results(path)
    cell = Cell("mvtec", "bottle", "cae", "cpu-tiny", 0)
    assert rows[0]["data_root"] == str(tmp_path / "data-a")
    assert cell.key(tmp_path / "data-a") == tuple(rows[0][c] for c in ("dataset", "data_root", "class", "model",
                                                                       "preset", "seed"))
    assert not is_finished(cell, 2, rows, tmp_path / "data-b")  # another data folder is another cell
