"""Hugging Face Hub, offline: save/load round trips, loading from a Hub-style cache folder, the
no-cache sentence, refusal of pickles, mismatched configs and invalid repo ids, the model card,
push_to_hub with the upload mocked, local encoder weights, the Hub page, and the Detector's
from_pretrained / save_pretrained / push_to_hub."""

import json
import shutil
from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import HfApi, ModelCard

from anovit.runs import checkpoint as ckpt
from anovit.hub import repo as hub
from anovit.hub import catalog as hub_catalog
from anovit.data.augment import AugmentConfig
from anovit import Detector
from anovit.utils.errors import CheckpointError, OfflineError
from anovit.evaluation.evaluate import evaluate_run
from anovit.hub.model_card import TEST_METRICS, format_value, model_card_for, render_model_card
from anovit.models import L2CAE, AnoViT, AnoViTConfig, L2CAEConfig
from anovit.runs.catalog import list_runs
from anovit.training.trainer import train
from anovit.training.config import TrainConfig

SHA = "0123456789abcdef0123456789abcdef01234567"
REPO_ROOT = Path(__file__).resolve().parents[2]


def load_anovit(spec, revision=None):
    return hub.load_pretrained(spec, revision, model_type="anovit")


def load_cae(spec, revision=None):
    return hub.load_pretrained(spec, revision, model_type="cae")


def _cae(**kw):
    torch.manual_seed(0)
    return L2CAE(L2CAEConfig(image_size=64, **kw)).eval()


def _same_outputs(a, b, size):
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return torch.equal(a(x), b(x))


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """An empty Hub cache in tmp, offline (HF_HUB_OFFLINE=1), and checkpoints/ in tmp."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return cache


def _cache_repo(cache: Path, repo_id: str, folder: Path, names=None) -> Path:
    """Lay out ``folder``'s files as huggingface_hub does: models--org--name/{blobs,snapshots/<sha>,refs/main}."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / SHA
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for path in sorted(folder.iterdir()):
        if names is None or path.name in names:
            blob = repo / "blobs" / f"blob-{path.name}"
            shutil.copyfile(path, blob)
            (snapshot / path.name).symlink_to(Path("..", "..", "blobs", blob.name))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA)
    return snapshot


def _no_network(monkeypatch):
    """Make any attempt to reach the Hub fail the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a Hub request was made")

    monkeypatch.setattr(HfApi, "list_repo_files", refuse)
    monkeypatch.setattr("huggingface_hub.snapshot_download", refuse)


@pytest.fixture(scope="module")
def evaluated_run(synthetic_root, tmp_path_factory):
    """A real l2-CAE run folder, trained one epoch and evaluated (metrics.json "test" is measured)."""
    run = tmp_path_factory.mktemp("run") / "tiles-cae"
    config = TrainConfig(dataset="synthetic", category="tiles", data_root=str(synthetic_root), model="cae", preset="cpu-tiny",
                         epochs=1, batch_size=4, bf16=False, device="cpu", augment=AugmentConfig(affine=False))
    train(config, run)
    evaluate_run(run, batch_size=16, device="cpu")
    return run


def test_save_pretrained_then_from_pretrained_gives_identical_outputs(tmp_path):
    torch.manual_seed(0)
    vit = AnoViT(AnoViTConfig(image_size=64)).eval()
    cae = _cae()
    assert {p.name for p in ckpt.save_model(tmp_path / "vit", vit).iterdir()} == {"config.json", "model.safetensors"}
    ckpt.save_model(tmp_path / "cae", cae)
    vit2, cae2 = load_anovit(tmp_path / "vit"), load_cae(str(tmp_path / "cae"))
    assert isinstance(vit2, AnoViT) and isinstance(cae2, L2CAE) and not vit2.training
    assert _same_outputs(vit, vit2, 64) and _same_outputs(cae, cae2, 64)
    with pytest.raises(CheckpointError, match="describes a 'cae' model, not 'anovit'"):
        load_anovit(tmp_path / "cae")
    with pytest.raises(CheckpointError, match="folder .*missing does not exist"):
        load_cae(tmp_path / "missing")


def test_a_trainer_run_folder_loads_as_is(evaluated_run):
    model = load_cae(evaluated_run)
    assert _same_outputs(model, ckpt.load_model(evaluated_run), model.config.image_size)


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "unreachable"])
def test_loads_and_pulls_from_a_hub_cache_folder_offline(hub_cache, tmp_path, monkeypatch, offline):
    if offline == "unreachable":  # network down but HF_HUB_OFFLINE unset: the reachability check decides
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hub, "hub_reachable", lambda: False)
    cae = _cae()
    ckpt.save_model(tmp_path / "src", cae)
    (tmp_path / "src" / "pytorch_model.bin").write_bytes(b"never read")
    _cache_repo(hub_cache, "someorg/cae-tiles", tmp_path / "src")

    loaded = load_cae("someorg/cae-tiles")
    assert _same_outputs(cae, loaded, 64)
    assert _same_outputs(cae, load_cae("someorg/cae-tiles", SHA), 64)

    dest = hub.pull(f"someorg/cae-tiles@{SHA}")
    assert dest.name == f"someorg--cae-tiles@{SHA}"
    assert {"config.json", "model.safetensors", "hub.json"} == {p.name for p in dest.iterdir()}
    assert json.loads((dest / "hub.json").read_text()) == {"repo_id": "someorg/cae-tiles", "revision": SHA, "commit": SHA}
    assert [r.path for r in list_runs()] == [dest]
    assert [(run.path, src["repo_id"]) for run, src in hub_catalog.pulled_runs()] == [(dest, "someorg/cae-tiles")]
    assert hub_catalog.cached_repos() == ["someorg/cae-tiles"]


def test_uncached_repo_offline_fails_with_one_sentence(hub_cache):
    with pytest.raises(OfflineError) as err:
        hub.pull("someorg/not-downloaded")
    message = str(err.value)
    assert message == hub.not_cached_message("someorg/not-downloaded")
    assert "not in the local Hugging Face cache" in message and "HF_HUB_OFFLINE" in message
    assert "\n" not in message and message.count(". ") == 0 and message.endswith(".")
    assert not list_runs()


def test_pickle_only_repos_are_refused_offline_and_online(hub_cache, tmp_path, monkeypatch):
    ckpt.save_model(tmp_path / "src", _cae())
    torch.save({"w": torch.zeros(1)}, tmp_path / "src" / "pytorch_model.bin")
    _cache_repo(hub_cache, "someorg/pickled", tmp_path / "src", names={"config.json", "pytorch_model.bin"})
    with pytest.raises(CheckpointError, match=r"only has pickled weights \(pytorch_model.bin\).*never unpickles"):
        load_cae("someorg/pickled")

    # online: the repo's file list is checked before anything is downloaded
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(HfApi, "list_repo_files", lambda self, repo_id, revision=None: ["config.json", "model.ckpt"])
    monkeypatch.setattr("huggingface_hub.snapshot_download", lambda *a, **k: pytest.fail("downloaded a pickle-only repo"))
    with pytest.raises(CheckpointError, match=r"someorg/online only has pickled weights \(model.ckpt\)"):
        hub.pull("someorg/online")


def test_online_download_is_limited_to_the_repo_files(hub_cache, tmp_path, monkeypatch):
    ckpt.save_model(tmp_path / "src", _cae())
    snapshot = _cache_repo(hub_cache, "someorg/online", tmp_path / "src")
    calls = []

    def fake_download(repo_id, **kwargs):
        calls.append(kwargs)
        return str(snapshot)

    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(HfApi, "list_repo_files",
                        lambda self, repo_id, revision=None: ["config.json", "model.safetensors", "pytorch_model.bin"])
    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_download)
    assert (hub.pull("someorg/online") / "model.safetensors").is_file()
    assert calls[0]["allow_patterns"] == list(hub.REPO_FILES) and calls[0]["local_files_only"] is False
    assert "trust_remote_code" not in calls[0]


@pytest.mark.parametrize("edit, expected", [
    ({"latent_dim": 50}, r"do not match its config: shape mismatch \['encoder\.16\.weight: file \(100,"),
    ({"model_type": "anovit", "encoder": "vit_tiny_patch16_224", "latent_dim": None}, "do not match its config: missing"),
    ({"image_size": 128}, "shape mismatch|missing"),
])
def test_configs_that_do_not_match_the_weights_are_refused(hub_cache, tmp_path, edit, expected):
    ckpt.save_model(tmp_path / "src", _cae())
    config = json.loads((tmp_path / "src" / "config.json").read_text())
    config.update(edit)
    (tmp_path / "src" / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    _cache_repo(hub_cache, "someorg/mismatch", tmp_path / "src")
    with pytest.raises(CheckpointError, match=expected):
        hub.pull("someorg/mismatch")
    assert not list_runs()


@pytest.mark.parametrize("spec", ["org/name/extra", "org/na--me", "../x", "org/", "name-only", "org/x@", "org/x@a b",
                                  "org/x.git"])
def test_repo_ids_are_validated_before_any_request(monkeypatch, spec):
    _no_network(monkeypatch)
    monkeypatch.setattr(hub, "hub_reachable", lambda: pytest.fail("asked the network about an invalid repo id"))
    with pytest.raises(CheckpointError):
        hub.pull(spec)


def test_a_pull_never_overwrites_a_trained_run(hub_cache, tmp_path):
    ckpt.save_model(tmp_path / "src", _cae())
    _cache_repo(hub_cache, "someorg/cae", tmp_path / "src")
    trained = tmp_path / "mine"
    ckpt.save_model(trained, _cae())
    with pytest.raises(CheckpointError, match="was not pulled from the Hub"):
        hub.pull("someorg/cae", output=trained)
    assert hub.pull("someorg/cae") == hub.pull("someorg/cae")  # a pulled folder is refreshed in place


def test_model_card_holds_the_metrics_of_metrics_json(evaluated_run):
    test = ckpt.read_metrics(evaluated_run)["test"]
    card = ModelCard(model_card_for(evaluated_run, repo_id="someorg/cae-tiles"))
    assert {"anomaly-detection", "anovit"} <= set(card.data.tags) and card.data.library_name == "anovit"
    for key in TEST_METRICS:
        if key in test:
            assert format_value(test[key]) in card.text, key
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results["image AUROC"] == test["image_auroc"] and results["pixel AUROC"] == test["pixel_auroc"]
    for fact in ("l2-CAE", "`cpu-tiny`", "`tiles`", "Synthetic textures", "Adam, lr 0.0002", "arXiv:2203.10808"):
        assert fact in card.text, fact


def test_push_uploads_the_run_files_and_card_without_network(evaluated_run, monkeypatch):
    uploaded, created = {}, []

    def upload_folder(self, *, repo_id, folder_path, commit_message=None, **kwargs):
        uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/1"})()

    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: created.append((repo_id, kw)))
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    url = hub.push(evaluated_run, "someorg/cae-tiles", private=True)
    assert url.startswith("https://huggingface.co/someorg/cae-tiles")
    assert created == [("someorg/cae-tiles", {"private": True, "exist_ok": True})]
    # no resume.safetensors, no test_scores.csv, no detector.json (a train run folder); threshold.json (fitted
    # by the evaluation) but no calibration.safetensors: the run scores the raw map
    assert set(uploaded) == set(hub.REPO_FILES) - {ckpt.CALIBRATION, ckpt.DETECTOR}
    assert json.loads(uploaded[ckpt.THRESHOLD])["value"] == json.loads((evaluated_run / ckpt.THRESHOLD).read_text())["value"]
    assert uploaded["model.safetensors"] == (evaluated_run / "model.safetensors").read_bytes()
    training = json.loads(uploaded["training.json"])
    assert training["data_root"] is None and training["category"] == "tiles"  # no local path is published
    assert not any(str(evaluated_run.parents[1]) in uploaded[name].decode() for name in uploaded if name.endswith(".json"))
    image_auroc = ckpt.read_metrics(evaluated_run)["test"]["image_auroc"]
    assert format_value(image_auroc) in uploaded["README.md"].decode()

    uploaded.clear()
    hub.push_model(_cae(), "someorg/bare")
    assert set(uploaded) == {"config.json", "model.safetensors", "README.md"}
    assert "Not evaluated" in uploaded["README.md"].decode()


def test_push_offline_says_so(evaluated_run, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(HfApi, "create_repo", lambda *a, **k: pytest.fail("tried to create a repo offline"))
    with pytest.raises(OfflineError, match="cannot publish someorg/x: HF_HUB_OFFLINE is set"):
        hub.push(evaluated_run, "someorg/x")


def _run_if_unpickled(marker):
    raise AssertionError(f"unpickled {marker}")


class _Payload:
    def __reduce__(self):
        return (_run_if_unpickled, ("a payload",))


def test_encoder_weights_from_a_timm_checkpoint(tmp_path):
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "vit_tiny.pth")
    net = AnoViT(AnoViTConfig(image_size=64, encoder_weights=str(tmp_path / "vit_tiny.pth")))
    assert torch.equal(net.encoder.blocks[2].mlp.fc1.weight, source.blocks[2].mlp.fc1.weight)

    torch.save({"model": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(OfflineError, match="weights_only"):
        AnoViT(AnoViTConfig(image_size=64, encoder_weights=str(tmp_path / "evil.pth")))


def test_curated_list_is_valid_and_malformed_lists_are_named(tmp_path):
    assert all(m.repo_id.count("/") == 1 for m in hub_catalog.curated_models())
    bad = tmp_path / "list.json"
    bad.write_text(json.dumps({"models": [{"repo_id": "org/ok", "title": "ok"}, {"repo_id": "no--pe", "title": "x"}]}))
    with pytest.raises(CheckpointError, match=r"list.json: models\[1\]"):
        hub_catalog.curated_models(bad)


def test_hub_page_says_an_uncached_repo_cannot_be_loaded_offline(hub_cache):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(REPO_ROOT / "app_pages" / "7_Hub.py"), default_timeout=60).run()
    assert not app.exception
    assert [info.value for info in app.info] == ["HF_HUB_OFFLINE is set, so only repos already in the local cache can be loaded."]
    app.text_input[0].input("someorg/uncached").run()
    app.button[0].click().run()
    assert [e.value for e in app.error] == [hub.not_cached_message("someorg/uncached")]


def test_published_json_holds_no_local_path():
    training = {"data_root": "/home/me/mvtec", "model_overrides": {"encoder_weights": "/home/me/w/vit.safetensors"},
                "augment": {"scale": [0.95, 1.05]}, "category": "cookie", "runs": ["relative/ok"]}
    assert hub.public_json(training) == {"data_root": None, "model_overrides": {"encoder_weights": "vit.safetensors"},
                                         "augment": {"scale": [0.95, 1.05]}, "category": "cookie",
                                         "runs": ["relative/ok"]}


@pytest.mark.parametrize("decoder, says", [("paper", "`paper`: the paper's decoder"), (None, "`stable` (ours)")])
def test_model_card_says_which_decoder_the_run_used(decoder, says):
    config = {"model_type": "anovit", "encoder": "vit_tiny_patch16_224", "image_size": 128,
              "decoder_channels": [256, 128, 64, 32, 16, 16], **({"decoder": decoder} if decoder else {})}
    card = render_model_card(config, {"preset": "cpu-tiny", "dataset": "synthetic", "category": "weave"}, {})
    assert says in card



@pytest.mark.parametrize("tile_size", [128, None])
def test_model_card_names_the_tiling_of_a_tiled_run_only(tile_size):
    config = {"model_type": "cae", "image_size": 384, "latent_dim": 500, "tile_size": tile_size}
    card = render_model_card(config, {"preset": "cpu-default", "dataset": "mvtec", "category": "bottle"}, {})
    assert ("| tiling | the network takes 128 × 128 px tiles" in card) == (tile_size is not None)
    assert "384 × 384 px" in card


# ---------------------------------------------------------------- Detector: the Hugging Face conventions


def _images(size, n=3):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(2))


def test_detector_round_trips_a_trained_run_with_threshold_and_sigma(evaluated_run, tmp_path):
    from anovit.runs.record import read_run

    before = Detector.from_pretrained(evaluated_run, device="cpu")  # a run folder written before detector.json
    stored = json.loads((evaluated_run / ckpt.THRESHOLD).read_text())["value"]  # fitted by its evaluation
    assert before.source_dir == evaluated_run and before.threshold == stored
    assert before.sigma == read_run(evaluated_run).sigma and not (evaluated_run / ckpt.DETECTOR).exists()
    x = _images(before.image_size)
    assert torch.equal(before.score(x), Detector.from_run(evaluated_run, device="cpu").score(x))

    detector = Detector.from_pretrained(evaluated_run, device="cpu", bf16=False)
    detector.sigma = 2.5  # not the run's: the saved folder must keep it
    detector.fit_threshold(_images(detector.image_size, 4))
    saved = detector.save_pretrained(tmp_path / "saved")
    assert {p.name for p in saved.iterdir()} == {"config.json", "model.safetensors", "training.json", "metrics.json",
                                                 "threshold.json", "detector.json"}
    again = Detector.from_pretrained(str(saved), device="cpu")
    assert (again.sigma, again.threshold, again.bf16, again.score_function) == (2.5, detector.threshold, False, "l2")
    assert torch.equal(again.score(x), detector.score(x)) and torch.equal(again.predict(x), detector.predict(x))
    assert again.save_pretrained(saved) == saved and Detector.from_pretrained(saved).threshold == detector.threshold


def test_detector_from_a_hub_id_cached_offline_and_refused_uncached(evaluated_run, hub_cache, tmp_path):
    detector = Detector.from_pretrained(evaluated_run, device="cpu", bf16=False)
    detector.threshold = 0.125
    snapshot = _cache_repo(hub_cache, "someorg/tiles", detector.save_pretrained(tmp_path / "saved"))
    loaded = Detector.from_pretrained("someorg/tiles", device="cpu")
    assert loaded.source_dir == snapshot and loaded.threshold == 0.125
    x = _images(loaded.image_size)
    assert torch.equal(loaded.score(x), detector.score(x))
    with pytest.raises(OfflineError) as info:
        Detector.from_pretrained("someorg/never-published")
    message = str(info.value)
    assert len(message.splitlines()) == 1 and "not in the local Hugging Face cache and HF_HUB_OFFLINE is set" in message
    with pytest.raises(CheckpointError, match="is neither a folder nor a Hub repo id"):
        Detector.from_pretrained("not a folder")


def test_detector_push_to_hub_publishes_the_saved_folder(evaluated_run, monkeypatch):
    uploaded = {}

    def upload_folder(self, *, repo_id, folder_path, commit_message=None, **kwargs):
        uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()}, message=commit_message)
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/2"})()

    monkeypatch.setattr(hub, "hub_reachable", lambda: True)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    detector = Detector.from_pretrained(evaluated_run, device="cpu", bf16=False)
    detector.threshold = 0.5
    assert detector.push_to_hub("someorg/tiles").endswith("/commit/2")
    assert json.loads(uploaded["detector.json"]) == {"sigma": detector.sigma, "score_function": "l2", "bf16": False,
                                                     "threshold": 0.5}
    assert uploaded["message"] == f"Upload {evaluated_run.name} with anovit"
    assert json.loads(uploaded["training.json"])["data_root"] is None
