"""anovit.Detector: the threshold rule, the decision rule, and one answer for one image whichever
path asks (evaluate, Inspect, Heatmaps), in fp32 and in bf16."""

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

import anovit
from anovit.runs import checkpoint as ckpt
from anovit.utils import runtime
from anovit.app.predictions import scored_items
from anovit.app.heatmaps import comparison_rows, rates_at
from anovit.app.inspection import inspect_image
from anovit.data import get_dataset, train_val_datasets
from anovit.scoring.detector import Detector, decision, is_anomalous, threshold_above
from anovit.utils.errors import AnovitError
from anovit.evaluation.evaluate import evaluate_detector
from anovit.models import L2CAE, L2CAEConfig
from anovit.scoring.anomaly_map import anomaly_maps

SIZE = 64


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return L2CAE(L2CAEConfig(image_size=SIZE)).eval()


@pytest.fixture(scope="module")
def splits(synthetic_root):
    """(validation images, test images) of synthetic weave at 64 px."""
    val = train_val_datasets("synthetic", category="weave", image_size=SIZE, root=synthetic_root)[1]
    test = get_dataset("synthetic", "test", category="weave", image_size=SIZE, root=synthetic_root)
    return val, test


def test_threshold_rule_flags_no_validation_image_and_anything_above():
    scores = np.array([0.25, 1.0, 0.5], np.float32)
    t = threshold_above(scores)
    assert t > 1.0 and np.float32(t) == np.nextafter(np.float32(1.0), np.float32(2.0))
    assert not is_anomalous(scores, t).any()
    assert is_anomalous(np.float32(1.0000001), t) and is_anomalous(1.5, t)
    assert decision(t, t) == "anomalous" and decision(1.0, t) == "normal"
    with pytest.raises(ValueError, match="at least one finite score"):
        threshold_above([])
    with pytest.raises(AnovitError, match="no threshold"):
        decision(1.0, None)


def test_detector_contract_matches_the_scoring_functions(model, splits):
    val, test = splits
    detector = anovit.Detector(model, sigma=2.0, bf16=False)
    images = torch.stack([test[i]["image"] for i in (0, 40)])
    with torch.no_grad():
        maps, scores = anomaly_maps(images, model(images), 2.0)  # the paper's eqs. (6), (7) directly
    assert torch.allclose(detector.score_maps(images), maps) and torch.allclose(detector.score(images), scores)
    with pytest.raises(AnovitError, match="no threshold yet"):
        detector.predict(images)
    assert detector.fit_threshold(val) is detector
    assert len(detector.validation_scores_) == len(val)
    assert detector.threshold == threshold_above(detector.validation_scores_)
    assert not detector.predict(torch.stack([val[i]["image"] for i in range(len(val))])).any()
    assert torch.equal(detector.predict(images), detector.score(images) >= detector.threshold)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        Detector(model, sigma=-1)


def test_from_run_loads_the_run_folder(model, tmp_path):
    ckpt.save_model(tmp_path / "run", model)
    detector = Detector.from_run(tmp_path / "run", device="cpu", threshold=0.5)
    x = torch.rand(2, 3, SIZE, SIZE)
    assert detector.threshold == 0.5 and detector.image_size == SIZE
    assert torch.equal(detector.score(x), Detector(model).score(x))


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_inspect_heatmaps_and_evaluate_agree_on_one_image(model, splits, bf16):
    if bf16 and not runtime.bf16_supported(torch.device("cpu")):
        pytest.skip(f"this CPU has no bf16 support (or {runtime.NO_BF16_ENV} is set): the bf16 path runs where it has")
    val, test = splits
    detector = Detector(model, bf16=bf16).fit_threshold(val)
    assert detector.bf16 is bf16
    picked = [0, 40]  # a normal and a defective test image
    assert {test[i]["label"] for i in picked} == {0, 1}

    evaluation = evaluate_detector(detector, Subset(test, picked), batch_size=1)
    assert evaluation.bf16 is bf16
    items = scored_items(detector, Subset(test, picked))
    items["index"] = np.asarray(picked)
    _, _, table = comparison_rows({"anovit": items, "cae": items}, detector.threshold)
    # one image at a time (Inspect) vs batches (evaluate: 1, Heatmaps: 16): kernels chosen per batch size
    # may round differently in the last bits, nothing more
    tol = dict(rtol=1e-2 if bf16 else 1e-5, atol=0)
    for k, index in enumerate(picked):
        inspected = inspect_image(detector, test[index]["image"][None])
        assert inspected["score"] == evaluation.rows[k]["score"]  # both one image per forward pass
        assert np.isclose(inspected["score"], items["score"][k], **tol)
        assert np.allclose(inspected["anomaly_map"], items["anomaly_map"][k], **tol)
        assert inspected["decision"] == table["AnoViT decision"][k] == decision(evaluation.rows[k]["score"],
                                                                                detector.threshold)
    flagged = detector.predict(torch.stack([test[i]["image"] for i in picked])).numpy()
    tpr, fpr = rates_at(items["score"], items["label"], detector.threshold)
    assert (tpr, fpr) == (float(flagged[1]), float(flagged[0]))
