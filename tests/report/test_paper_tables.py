"""Checks of our transcription of the paper's Tables 1-5 against a verbatim excerpt of the paper's text
(tests/data/anovit-paper-tables.txt) and against the paper's own summary rows."""

import re
from pathlib import Path

import numpy as np
import pytest

from anovit.report.paper_tables import (
    DETECTION, LOCALIZATION, TABLE_1, TABLES, category_key, paper_row, paper_table,
)
from anovit.report.tables import relative_improvement


def _half_unit(decimals: int) -> float:
    """Half a unit of the last printed digit, plus float slack: the rounding tolerance of a printed value."""
    return 0.5 * 10.0**-decimals + 1e-9


@pytest.mark.parametrize("number", sorted(TABLES))
def test_class_means_equal_the_printed_means(number):
    table = TABLES[number]
    for column, printed in ((0, table.mean[0]), (1, table.mean[1])):
        values = [(r.cae, r.anovit)[column] for r in table.rows]
        assert abs(np.mean(values) - printed) <= _half_unit(table.decimals), (number, column)


def test_row_counts_and_types_as_printed():
    assert [len(TABLES[n].rows) for n in (2, 3, 4, 5)] == [10, 10, 15, 15]
    for n in (4, 5):
        kinds = [r.kind for r in TABLES[n].rows]
        assert kinds.count("object") == 10 and kinds.count("texture") == 5
        assert [r.category for r in TABLES[n].rows] == [r.category for r in TABLES[4].rows]


@pytest.mark.parametrize("number", [4, 5])
def test_mvtec_std_rows_are_the_sample_std_of_the_printed_values(number):
    table = TABLES[number]
    for column in (0, 1):
        values = [(r.cae, r.anovit)[column] for r in table.rows]
        assert abs(np.std(values, ddof=1) - table.std[column]) <= _half_unit(table.decimals)


# Rows whose printed percentage is not the rounded formula on the printed AUROCs (truncated, or
# computed from unrounded AUROCs): (table, category) -> formula on the printed values
OFF_BY_LAST_DIGIT = {(2, "3"): -4.7727, (2, "4"): 3.9863, (2, "5"): 2.7809, (3, "Airplane"): 11.2228,
                     (4, "Zipper"): 2.8169, (5, "Tile"): -3.3898}


def test_relative_improvement_reproduces_the_printed_column():
    exact = 0
    for number, table in TABLES.items():
        digits = 3 if table.decimals == 3 else 2  # the percentages carry as many decimals as the AUROCs
        for row in table.rows:
            ours = relative_improvement(row.cae, row.anovit)
            if (number, row.category) in OFF_BY_LAST_DIGIT:
                assert ours == pytest.approx(OFF_BY_LAST_DIGIT[number, row.category], abs=1e-4)
                assert abs(ours - row.relative) < 0.015, (number, row)  # still within 0.015 points
            else:
                assert abs(ours - row.relative) <= _half_unit(digits), (number, row)
                exact += 1
    assert exact == 44  # of 50 rows


def test_relative_improvement_of_the_mean_rows_is_computed_on_the_means():
    mnist, cifar, det, loc = (TABLES[n] for n in (2, 3, 4, 5))
    # MNIST: the unrounded class means give the printed 1.774% (the rounded ones would give 1.762%)
    cae, anovit = (np.mean([getattr(r, m) for r in mnist.rows]) for m in ("cae", "anovit"))
    assert round(relative_improvement(cae, anovit), 3) == mnist.mean[2] == 1.774
    assert round(relative_improvement(*cifar.mean[:2]), 3) == cifar.mean[2]
    # MVTecAD: computed on the printed (2-decimal) means
    assert round(relative_improvement(*det.mean[:2]), 2) == det.mean[2] == 6.85
    assert round(relative_improvement(*loc.mean[:2]), 2) == loc.mean[2] == 2.47


def test_table_1_repeats_the_mean_rows_of_tables_2_to_5():
    by_table = {("mnist", DETECTION): 2, ("cifar10", DETECTION): 3, ("mvtec", DETECTION): 4,
                ("mvtec", LOCALIZATION): 5}
    assert len(TABLE_1) == 4
    for row in TABLE_1:
        table = TABLES[by_table[(row.dataset, row.task)]]
        assert paper_table(row.dataset, row.task) is table
        assert (row.cae, row.anovit, row.relative) == pytest.approx(table.mean, abs=1e-12)


def test_lookup_by_our_category_names():
    assert category_key("Metal Nut") == "metal_nut"
    assert paper_row(TABLES[4], "metal_nut").cae == 0.42
    assert paper_row(TABLES[5], "Toothbrush").anovit == 0.90
    assert paper_row(TABLES[3], "0").category == "Airplane"  # class index in label order
    assert paper_row(TABLES[3], "truck").anovit == 0.502
    assert paper_row(TABLES[2], "7").cae == 0.925
    assert paper_row(TABLES[4], "cookie") is None
    assert paper_table("synthetic", DETECTION) is None and paper_table("mnist", LOCALIZATION) is None


EXCERPT = Path(__file__).parents[1] / "data" / "anovit-paper-tables.txt"
ROW = re.compile(r"^(?P<name>.+?) (?P<cae>\d\.\d+) (?P<anovit>\d\.\d+) (?P<rel>-?\d+\.\d+)%$")
SUMMARY = re.compile(r"^(?P<name>mean|std) - (?P<cae>\d\.\d+) (?P<anovit>\d\.\d+)(?: (?P<rel>-?\d+\.\d+)%| -)$")


def _parse_excerpt() -> dict[int, dict]:
    """The tables of the verbatim paper excerpt: {number: {"rows": [(kind, name, cae, anovit, rel)],
    "mean": (cae, anovit, rel), "std": (cae, anovit)}}, values as printed strings turned to floats."""
    tables: dict[int, dict] = {}
    number, kind = None, None
    for line in EXCERPT.read_text().splitlines():
        line = line.strip()
        if heading := re.match(r"^Table (\d)\.", line):
            number, kind = int(heading.group(1)), None
            tables[number] = {"rows": []}
        elif line in ("Class", "Object", "Texture"):
            kind = line.lower()
        elif number is not None and (m := SUMMARY.match(line)):
            values = (float(m["cae"]), float(m["anovit"]))
            tables[number][m["name"]] = values + ((float(m["rel"]),) if m["rel"] else ())
        elif number is not None and (m := ROW.match(line)):
            tables[number]["rows"].append((kind, m["name"], float(m["cae"]), float(m["anovit"]), float(m["rel"])))
    return tables


def test_every_table_matches_the_paper_text_row_by_row():
    printed = _parse_excerpt()
    assert sorted(printed) == [1, 2, 3, 4, 5]
    assert [(r.printed, r.cae, r.anovit, r.relative) for r in TABLE_1] == [
        (name, cae, anovit, rel) for _, name, cae, anovit, rel in printed[1]["rows"]]
    for number, table in TABLES.items():
        ours = [(r.kind, r.category, r.cae, r.anovit, r.relative) for r in table.rows]
        assert ours == printed[number]["rows"], number  # a swapped or mistyped row fails here
        assert table.mean == printed[number]["mean"] and table.std == printed[number]["std"], number


def test_a_swapped_row_would_be_caught():
    rows = _parse_excerpt()[2]["rows"]
    swapped = [rows[1], rows[0], *rows[2:]]
    assert swapped != [(r.kind, r.category, r.cae, r.anovit, r.relative) for r in TABLES[2].rows]
