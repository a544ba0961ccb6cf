"""Tests of the paper's datasets: downloads (checksums, resume, safe extraction, offline errors),
the one-class protocol of MNIST / Fashion-MNIST / CIFAR-10, folder checks, the image-only folder
dataset and the registry. Everything runs offline: downloads are served from 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anovit.cli.main import _train_config, build_parser, main
from anovit.data import (
    DATASETS, REGISTRY, category_kind, check_tree, dataset_spec, default_augment, get_dataset, has_masks,
    list_classes, train_val_datasets,
)
from anovit.data import download as dl
from anovit.data import torchvision_sets as tvs
from anovit.data.check_report import ERROR, WARNING, format_report
from anovit.data.mvtec_ad import HOMEPAGE, MVTEC_CATEGORIES, OBJECTS, TEXTURES, download_mvtec
from anovit.utils.errors import DatasetError, OfflineError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"  # ../shared beside the repo


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch) -> Path:
    """A private <data dir> for caches, so tests never touch <repo>/data."""
    monkeypatch.setenv("ANOVIT_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def offline(monkeypatch) -> None:
    """Every reachability check answers 'unreachable'."""
    monkeypatch.setattr(dl, "reachable", lambda url, timeout=3.0: False)


# ---------------------------------------------------------------- a local HTTP server with Range support

class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # the name http.server calls
        data = self.server.files.get(self.path)
        self.server.requests.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_error(404)
            return
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        if start >= len(data) > 0:
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.requests = {}, []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _png(size: tuple[int, int] = (16, 16), value: int = 128, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value, value, value)).save(buffer, "PNG")
    return buffer.getvalue()


def _tar(members: dict[str, bytes], links: dict[str, tuple[str, bytes]] | None = None) -> bytes:
    """A tar.gz with regular files `members` and, in `links`, name -> (type, target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target.decode()
            tar.addfile(info)
    return buffer.getvalue()


def _category_archive(name: str = "part") -> bytes:
    files = {f"{name}/train/good/{i:03d}.png": _png(value=100 + i) for i in range(3)}
    files.update({f"{name}/test/good/000.png": _png(), f"{name}/test/crack/000.png": _png(value=30),
                  f"{name}/ground_truth/crack/000_mask.png": _png(mode="L", value=255)})
    return _tar(files)


# ---------------------------------------------------------------- downloads

def test_fetch_resumes_with_range_and_verifies(server, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4000
    server.files["/a.bin"] = payload
    archive = dl.Archive("a.bin", f"{server.url}/a.bin", "sha256:" + hashlib.sha256(payload).hexdigest(), len(payload))
    (tmp_path / "a.bin.part").write_bytes(payload[:300_000])  # an interrupted earlier transfer
    seen: list[tuple[int, int | None]] = []
    path = dl.fetch(archive, tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == payload and not (tmp_path / "a.bin.part").exists()
    assert server.requests == [("/a.bin", "bytes=300000-")]
    assert seen[-1] == (len(payload), len(payload)) and seen[0][0] > 300_000
    assert dl.fetch(archive, tmp_path) == path and len(server.requests) == 1  # verified copy: no network


def test_checksum_mismatch_is_reported_and_the_download_dropped(server, tmp_path: Path) -> None:
    server.files["/b.bin"] = b"not what was published"
    archive = dl.Archive("b.bin", f"{server.url}/b.bin", "sha256:" + "0" * 64)
    with pytest.raises(DatasetError, match=r"checksum mismatch for '.*b\.bin\.part': sha256 [0-9a-f]{64}, "
                                           r"expected 0{64} \(the download was deleted"):
        dl.fetch(archive, tmp_path)
    assert not list(tmp_path.iterdir())
    md5 = dl.Archive("b.bin", f"{server.url}/b.bin", "md5:" + hashlib.md5(b"not what was published").hexdigest())
    assert dl.fetch(md5, tmp_path).is_file()
    with pytest.raises(DatasetError, match="HTTP 404"):
        dl.fetch(dl.Archive("c.bin", f"{server.url}/c.bin"), tmp_path)


@pytest.mark.parametrize("members, links, culprit, reason", [
    ({"../evil.txt": b"x"}, None, "../evil.txt", "escapes the target folder"),
    ({"ok/../../evil.txt": b"x"}, None, "ok/../../evil.txt", "escapes the target folder"),
    ({"/tmp/evil.txt": b"x"}, None, "/tmp/evil.txt", "escapes the target folder"),
    ({}, {"link": (tarfile.SYMTYPE, b"/etc/passwd")}, "link", "is a link to '/etc/passwd'"),
    ({"a.txt": b"x"}, {"hard": (tarfile.LNKTYPE, b"a.txt")}, "hard", "is a link"),
    ({}, {"fifo": (tarfile.FIFOTYPE, b"")}, "fifo", "is not a regular file"),
])
def test_extraction_refuses_escaping_members_and_links(tmp_path: Path, members, links, culprit, reason) -> None:
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(_tar(members, links))
    dest = tmp_path / "out" / "inner"
    with pytest.raises(DatasetError, match=f"archive member '{culprit}' {reason}"):
        dl.safe_extract(archive, dest)
    assert not (tmp_path / "out" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not (dest / Path(culprit).name).exists()


def test_install_archive_extracts_through_staging(server, tmp_path: Path) -> None:
    data = _category_archive()
    server.files["/part.tar.gz"] = data
    archive = dl.Archive("part.tar.gz", f"{server.url}/part.tar.gz", "sha256:" + hashlib.sha256(data).hexdigest())
    root = tmp_path / "mvtec"
    (root / "part" / "stale").mkdir(parents=True)  # an older, broken copy is replaced
    assert dl.install_archive(archive, root) == ["part"]
    assert sorted(p.name for p in root.iterdir()) == [".downloads", "part"]
    assert not (root / "part" / "stale").exists() and not list((root / ".downloads").iterdir())
    report = check_tree(root)
    assert not report.all_problems() and report.categories[0].masks_found == 1


def test_mvtec_offline_fails_fast_with_one_sentence(tmp_path: Path, offline) -> None:
    with pytest.raises(OfflineError) as info:
        download_mvtec(tmp_path / "mvtec", ["bottle", "screw"])
    message = str(info.value)
    assert "\n" not in message
    assert HOMEPAGE in message and "--data-root" in message and "www.mydrive.ch" in message
    assert not (tmp_path / "mvtec").exists()
    with pytest.raises(DatasetError, match="category 'bolt' is unknown"):
        download_mvtec(tmp_path / "mvtec", ["bolt"])


def test_mvtec_catalogue_matches_the_paper() -> None:
    assert len(MVTEC_CATEGORIES) == 15 and len(TEXTURES) == 5 and len(OBJECTS) == 10
    assert set(TEXTURES) == {"carpet", "grid", "leather", "tile", "wood"}
    assert sum(c.n_train for c in MVTEC_CATEGORIES.values()) == 3629  # paper sec. 4.1.2
    assert sum(c.n_test for c in MVTEC_CATEGORIES.values()) == 1725
    no_flip = {n for n, c in MVTEC_CATEGORIES.items() if not (c.hflip or c.vflip)}
    assert {"transistor", "metal_nut", "cable"} <= no_flip and not no_flip & set(TEXTURES)
    assert all(c.flip_reason for c in MVTEC_CATEGORIES.values())
    assert all(c.archive.url.startswith("https://www.mydrive.ch/") for c in MVTEC_CATEGORIES.values())
    assert category_kind("mvtec", "wood") == "texture" and category_kind("mvtec", "pill") == "object"


# ---------------------------------------------------------------- one-class protocol

def _labelled_pools(per_class_train: int, per_class_test: int, shape: tuple[int, ...] = (2, 2)):
    rng = np.random.default_rng(0)
    train_y = np.repeat(np.arange(10), per_class_train)
    test_y = np.repeat(np.arange(10), per_class_test)
    rng.shuffle(train_y)
    return (rng.integers(0, 256, (len(train_y), *shape), dtype=np.uint8), train_y,
            rng.integers(0, 256, (len(test_y), *shape), dtype=np.uint8), test_y)


@pytest.mark.parametrize("name, per_class, n_train, n_val", [
    ("mnist", 6000, 4800, 1200), ("fashion-mnist", 6000, 4800, 1200), ("cifar10", 5000, 4500, 500),
])
def test_one_class_protocol_split_sizes(name: str, per_class: int, n_train: int, n_val: int) -> None:
    pools = _labelled_pools(per_class, 1000, (2, 2, 3) if name == "cifar10" else (2, 2))
    train, val, test = (tvs.one_class(name, "7", split, 8, pools=pools) for split in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (n_train, n_val, 10_000)
    normal = set(np.flatnonzero(pools[1] == 7).tolist())
    assert set(train.indices) | set(val.indices) == normal and not set(train.indices) & set(val.indices)
    assert sum(test.labels) == 9_000 and train.labels == [0] * n_train
    assert test[0]["image"].shape == (3, 8, 8) and not test[0]["mask"].any()
    names = tvs.LABELLED_SETS[name].class_names
    assert test.defect_types == sorted({*names} - {names[7]} | {"good"})
    by_name = tvs.one_class(name, names[7].upper(), "val", 8, pools=pools, seed=1)
    assert by_name.indices != val.indices and len(by_name) == n_val  # the seed moves train/val only
    with pytest.raises(DatasetError, match=f"{name} category '10' is unknown"):
        tvs.one_class(name, "10", "train", 8, pools=pools)


@pytest.mark.skipif(not (SHARED_DATA / "fashion-mnist").is_dir(),
                    reason=f"real Fashion-MNIST absent: {SHARED_DATA / 'fashion-mnist'} (../shared/data beside the repo)")
def test_fashion_mnist_runs_offline_end_to_end(data_dir: Path, offline) -> None:
    root = SHARED_DATA / "fashion-mnist"
    train, val = train_val_datasets("fashion-mnist", category="0", image_size=32, root=root)
    test = get_dataset("fashion-mnist", "test", category="tshirt-top", image_size=32, root=root)
    assert (len(train), len(val), len(test)) == (4800, 1200, 10_000) and sum(test.labels) == 9000
    assert (data_dir / "fashion-mnist" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    item = test[0]
    assert item["image"].shape == (3, 32, 32) and item["defect_type"] == "ankle-boot" and item["label"] == 1
    assert item["path"] == "fashion-mnist/test/0" and 0 <= item["image"].min() < item["image"].max() <= 1
    # the decompressed cache (torchvision's layout) now serves without any root
    assert len(get_dataset("fashion-mnist", "val", category="0", image_size=8)) == 1200


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(),
                    reason=f"real MNIST absent: {SHARED_DATA / 'mnist'} (../shared/data beside the repo)")
def test_mnist_split_matches_the_paper(data_dir: Path) -> None:
    _, train_y, _, test_y = tvs.load_pools("mnist", SHARED_DATA / "mnist")
    n_normal = int((np.asarray(train_y) == 5).sum())
    train = get_dataset("mnist", "train", category="5", image_size=16, root=SHARED_DATA / "mnist")
    val = get_dataset("mnist", "val", category="5", image_size=16, root=SHARED_DATA / "mnist")
    assert len(train) + len(val) == n_normal and len(val) == round(0.2 * n_normal)
    assert len(test_y) == 10_000


def test_corrupt_or_missing_labelled_files(tmp_path: Path, data_dir: Path, offline) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    for name in tvs.IDX_FILES:
        with gzip.open(fake / f"{name}.gz", "wb") as f:
            f.write(b"\x00\x00\x08\x03" + bytes(100))
    with pytest.raises(DatasetError, match=r"checksum mismatch for '.*train-images-idx3-ubyte': sha256 .* "
                                           r"\(the official MNIST file\)"):
        tvs.load_pools("mnist", fake)
    empty = tmp_path / "empty"
    empty.mkdir()
    for name, needle in (("mnist", "train-images-idx3-ubyte.gz"), ("cifar10", "cifar-10-python.tar.gz")):
        with pytest.raises(OfflineError) as info:
            tvs.load_pools(name, empty)
        assert "\n" not in str(info.value) and needle in str(info.value) and "--data-root" in str(info.value)
    with pytest.raises(DatasetError, match="does not exist"):
        tvs.load_pools("cifar10", tmp_path / "nowhere")


# ---------------------------------------------------------------- folder checks

def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _good_category(root: Path, name: str) -> Path:
    with tarfile.open(fileobj=io.BytesIO(_category_archive(name))) as tar:
        tar.extractall(root, filter="data")
    return root / name


def test_data_check_names_every_culprit(tmp_path: Path, capsys) -> None:
    root = tmp_path / "tree"
    _good_category(root, "fine")
    no_train = _good_category(root, "no_train")
    for path in (no_train / "train" / "good").iterdir():
        path.unlink()
    (no_train / "train" / "good").rmdir()
    wrong = _good_category(root, "wrong_size")
    _save(wrong / "ground_truth" / "crack" / "000_mask.png", _png((8, 16), 255, "L"))
    orphan = _good_category(root, "orphan")
    _save(orphan / "ground_truth" / "crack" / "007_mask.png", _png(mode="L", value=255))
    corrupt = _good_category(root, "corrupt")
    _save(corrupt / "test" / "good" / "000.png", b"\x89PNG\r\n\x1a\n garbage")
    no_mask = _good_category(root, "no_mask")
    (no_mask / "ground_truth" / "crack" / "000_mask.png").unlink()
    (root / "empty").mkdir()

    report = check_tree(root)
    by_name = {c.name: c for c in report.categories}
    assert sorted(by_name) == ["corrupt", "empty", "fine", "no_mask", "no_train", "orphan", "wrong_size"]
    assert by_name["fine"].problems == [] and by_name["fine"].test == {"crack": 1, "good": 1}
    expected = {
        "no_train": (ERROR, no_train / "train" / "good", "is missing (expected the normal training images)"),
        "wrong_size": (ERROR, wrong / "ground_truth" / "crack" / "000_mask.png", "is 8x16 px but its image"),
        "orphan": (WARNING, orphan / "ground_truth" / "crack" / "007_mask.png", "has no image"),
        "corrupt": (ERROR, corrupt / "test" / "good" / "000.png", "cannot read image file"),
        "no_mask": (ERROR, no_mask / "test" / "crack" / "000.png", "has no mask"),
        "empty": (ERROR, root / "empty", "is empty"),
    }
    for name, (severity, path, text) in expected.items():
        problems = by_name[name].problems
        assert [(p.severity, p.path) for p in problems] == [(severity, path)], (name, problems)
        assert text in problems[0].message and str(path) in problems[0].message
    assert by_name["orphan"].masks_orphaned == 1 and by_name["no_mask"].masks_missing == 1
    assert by_name["fine"].sizes == {"16x16": 5} and by_name["fine"].mask_modes == {"L": 1}

    assert main(["data", "check", str(root), "--json", str(tmp_path / "report.json")]) == 1
    out = capsys.readouterr().out
    assert "FAILED: 5 errors, 1 warning" in out and all(str(p) in out for _, p, _ in expected.values())
    assert (tmp_path / "report.json").read_text().count('"severity"') == 6
    assert main(["data", "check", str(root / "fine")]) == 0
    assert "OK: 0 errors, 0 warnings" in capsys.readouterr().out


def test_trainer_runs_the_check_before_training(tmp_path: Path) -> None:
    from anovit.data.augment import AugmentConfig
    from anovit.training.trainer import train
    from anovit.training.config import TrainConfig

    root = tmp_path / "tree"
    folder = _good_category(root, "part")
    _save(folder / "test" / "crack" / "000.png", b"truncated")  # only the test split is broken
    config = TrainConfig(dataset="mvtec", category="part", data_root=str(root), model="cae", preset="cpu-tiny", epochs=1,
                         batch_size=2, bf16=False, device="cpu", augment=AugmentConfig(affine=False))
    with pytest.raises(DatasetError, match=r"cannot read image file '.*test/crack/000\.png'"):
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.skipif(not (SHARED_DATA / "cookies" / "cookie").is_dir(),
                    reason=f"real cookie photos absent: {SHARED_DATA / 'cookies'} (../shared/data beside the repo)")
def test_real_cookies_pass_the_check() -> None:
    report = check_tree(SHARED_DATA / "cookies", decode=False)
    assert not report.errors and not report.warnings
    (cookie,) = report.categories
    assert (cookie.train, cookie.test, cookie.masks_found) == (31, {"anomaly": 32, "good": 14}, 32)
    assert "cookie  [mvtec layout]" in format_report(report)


# ---------------------------------------------------------------- image-only folder

def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(np.full((24, 24, 3), 120 + i, np.uint8)).save(_mkdir(root / "part" / "good") / f"{i}.png")
    for i in range(4):
        noisy = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(noisy).save(_mkdir(root / "part" / "bad") / f"{i}.jpg")
    return root


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_image_folder_gives_detection_metrics_only(tmp_path: Path) -> None:
    from anovit.data.augment import AugmentConfig
    from anovit.runs.checkpoint import read_json
    from anovit.evaluation.evaluate import evaluate_run
    from anovit.training.trainer import train
    from anovit.training.config import TrainConfig

    root = _image_folder(tmp_path / "images")
    assert not has_masks("folder") and list_classes("folder", root) == ["part"]
    train_split = get_dataset("folder", "train", category="part", image_size=16, root=root)
    test = get_dataset("folder", "test", category="part", image_size=16, root=root)
    assert (len(train_split), len(test), sum(test.labels)) == (8, 6, 4)
    assert {p for p, _, _ in train_split.samples}.isdisjoint(p for p, _, _ in test.samples)
    assert test.defect_types == ["bad", "good"] and not any(test[i]["mask"].any() for i in range(len(test)))
    report = check_tree(root)
    assert not report.all_problems() and report.categories[0].layout == "folder"
    assert "localization unavailable" in format_report(report)

    config = TrainConfig(dataset="folder", category="part", data_root=str(root), model="cae", preset="cpu-tiny", epochs=1,
                         batch_size=4, bf16=False, device="cpu", augment=AugmentConfig(affine=False))
    run = train(config, tmp_path / "run").run_dir
    result = evaluate_run(run, device="cpu")
    assert result.image_auroc is not None and 0.0 <= result.image_auroc <= 1.0
    assert result.pixel_auroc is None and result.pixel_f1_max is None and result.n_anomalous == 4
    assert read_json(run / "metrics.json")["test"]["pixel_auroc"] is None


def test_image_folder_errors_are_clear(tmp_path: Path) -> None:
    root = _image_folder(tmp_path / "images")
    with pytest.raises(DatasetError, match="needs root"):
        get_dataset("folder", "train", category="part", image_size=16)
    with pytest.raises(DatasetError, match=r"available categories .*: part$"):
        get_dataset("folder", "test", category="other", image_size=16, root=root)
    for path in list((root / "part" / "good").iterdir())[:8]:
        path.unlink()
    with pytest.raises(DatasetError, match=r"good' holds 2 images \(expected at least 3"):
        get_dataset("folder", "train", category="part", image_size=16, root=root)


# ---------------------------------------------------------------- registry and CLI

def test_registry_is_the_single_list(capsys) -> None:
    assert set(DATASETS) == set(REGISTRY) >= {"mvtec", "mnist", "fashion-mnist", "cifar10", "folder"}
    for name in DATASETS:
        spec = dataset_spec(name)
        assert spec.protocol and spec.source and spec.licence and has_masks(name) == spec.has_masks
    assert dataset_spec("mvtec").licence.startswith("CC BY-NC-SA 4.0")
    for name in DATASETS:  # the CLI offers exactly the registry
        assert build_parser().parse_args(["train", "--dataset", name]).dataset == name
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--dataset", "imagenet"])
    assert dataset_spec("cifar10").class_names[3] == "cat"
    with pytest.raises(DatasetError, match="unknown"):
        dataset_spec("imagenet")
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(f"{name}: {REGISTRY[name].title}" in out for name in DATASETS)


def test_cli_error_before_training_is_one_line(tmp_path, capsys) -> None:
    code = main(["train", "--dataset", "mvtec", "--data-root", str(tmp_path / "absent"), "--category", "cookie",
                 "--output", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.splitlines() == [f"error: dataset root '{tmp_path / 'absent'}' does not exist or is not a "
                                         "folder (expected <root>/<category>/train/good)"]  # no empty progress bar


def test_flip_rules_reach_the_training_config() -> None:
    def augment(*argv: str):
        return _train_config(build_parser().parse_args(["train", *argv])).augment

    assert (augment("--dataset", "mvtec", "--category", "metal_nut").hflip,
            augment("--dataset", "mvtec", "--category", "metal_nut").vflip) == (False, False)
    toothbrush = augment("--dataset", "mvtec", "--category", "toothbrush")
    assert (toothbrush.hflip, toothbrush.vflip, toothbrush.affine) == (True, False, True)
    assert augment("--dataset", "mvtec", "--category", "carpet").vflip
    assert not augment("--dataset", "mvtec", "--category", "carpet", "--no-flip").hflip
    assert not augment("--dataset", "mnist", "--category", "3").hflip
    assert augment("--dataset", "synthetic", "--category", "weave").vflip
    assert default_augment("mvtec", "cookie").hflip  # an unknown category keeps the paper's flips
