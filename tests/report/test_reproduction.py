"""The measured offline Table 2 beside the paper's: per-class differences and winners."""

import json

import numpy as np
import pytest

from anovit.report.reproduction import display, load_measured, measured_table, setting_text

SETTING = {"dataset": "mnist", "preset": "cpu-tiny", "image_size": 64, "max_train_images": 150,
           "max_test_images": 1000, "epochs": {"anovit": 4, "cae": 25}, "seed": 0, "torch_threads": 1}


def test_per_class_table_against_the_printed_table_2(tmp_path):
    cells = [{"class": "3", "model": "cae", "image_auroc": 0.70}, {"class": "3", "model": "anovit", "image_auroc": 0.75}]
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"setting": SETTING, "cells": cells, "wall_seconds": 2400.0}))
    table = measured_table(load_measured(path)).set_index("class")
    three = table.loc["3"]
    assert (three["paper l2-CAE"], three["paper AnoViT"]) == (0.880, 0.838)  # Table 2 as printed
    assert three["Δ l2-CAE"] == pytest.approx(0.70 - 0.880) and three["Δ AnoViT"] == pytest.approx(0.75 - 0.838)
    assert (three["paper winner"], three["our winner"]) == ("l2-CAE", "AnoViT")
    assert np.isnan(table.loc["0", "ours AnoViT"]) and np.isnan(table.loc["mean", "ours AnoViT"])  # not measured yet
    assert table.loc["mean", "paper AnoViT"] == pytest.approx(0.9237)
    assert display(measured_table(load_measured(path))).iloc[3]["Δ l2-CAE"] == "-0.180"
    text = setting_text(load_measured(path))
    assert "2 of 20 cells" in text and "64 px" in text and "150 training images" in text and "40 min" in text


def test_no_measurement_yet(tmp_path):
    assert load_measured(tmp_path / "absent.json") is None
