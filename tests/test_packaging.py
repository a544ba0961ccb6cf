"""The package as people install it: a wheel built from pyproject.toml, installed into a fresh
virtual environment (built from the running interpreter's environment: a venv, a conda env or a system
Python), gives an ``anovit`` command that works from a folder outside the repository,
keeps its working files there, and needs neither the app extra nor the ONNX extra for its help."""

import importlib.metadata
import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout with this interpreter's pip and setuptools (offline)."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pip is not available to build a wheel")
    if importlib.util.find_spec("setuptools.command.bdist_wheel") is None and importlib.util.find_spec("wheel") is None:
        pytest.skip(f"this interpreter ({sys.executable}) cannot build a wheel offline (setuptools>=70.1 or the wheel "
                    "package; the test extra installs it): run `pip install -r requirements.txt` with it first")
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"  # a copy: building in the checkout would leave build/ and *.egg-info there
    shutil.copytree(REPO / "anovit", source / "anovit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    _run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(source)])
    return next((tmp / "dist").glob("anovit-*.whl"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """(venv python, venv anovit script): the wheel installed with --no-deps into a fresh venv that sees the
    packages of this interpreter's environment (see :func:`make_venv`), so nothing is downloaded. Skipped
    where this environment lacks anovit's dependencies (e.g. a system Python before `pip install -r
    requirements.txt`)."""
    missing = missing_dependencies()
    if missing:
        pytest.skip(f"this interpreter ({sys.executable}) lacks anovit's dependencies {missing}: "
                    "run `pip install -r requirements.txt` with it first")
    python = make_venv(tmp_path_factory.mktemp("packaging-venv") / "venv")
    _run([*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    return python, python.parent / "anovit"


def missing_dependencies() -> list[str]:
    """The distributions of pyproject.toml's [project] dependencies that this interpreter cannot import."""
    requirements = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in requirements]
    missing = []
    for name in names:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def make_venv(venv: Path) -> Path:
    """A venv (its python) built from the base interpreter, whose ``environment.pth`` puts the running
    environment's site-packages on its path: this works whether pytest runs in a venv (whose packages a
    ``--system-site-packages`` venv would not see), a conda env or a system Python. Plain path lines only:
    the .pth files of those folders (e.g. the checkout's editable install) are not run, so ``anovit`` is
    the installed wheel."""
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    own = _run([python, "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip()
    found = [*site.getsitepackages(), *(p for p in sys.path if Path(p).name in ("site-packages", "dist-packages"))]
    folders = [p for p in dict.fromkeys(found) if Path(p).is_dir()]
    (Path(own) / "environment.pth").write_text("".join(f"{p}\n" for p in folders))
    return python


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANOVIT_CHECKPOINTS", "ANOVIT_DATA_DIR")}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_holds_the_package_and_its_data_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "anovit/hub/hub_models.json" in names and "anovit/cli/main.py" in names and "anovit/models/anovit.py" in names
    assert not [n for n in names if n.startswith(("tests/", "pages/", "app_pages/", "benchmarks/")) or "__pycache__" in n]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "anovit = anovit.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_console_script_runs_from_outside_the_repository(installed, tmp_path):
    python, script = installed
    out = _run([script, "--help"], cwd=tmp_path).stdout
    for command in ("train", "evaluate", "export", "score"):
        assert command in out
    assert _run([python, "-m", "anovit", "--help"], cwd=tmp_path).stdout == out  # the same CLI either way
    probe = ("import sys, anovit; from anovit.cli.main import build_parser; from anovit.data.paths import workspace_dir; "
             "from anovit.runs.catalog import default_checkpoint_dir; build_parser(); "
             "print(anovit.__file__); print(workspace_dir()); print(default_checkpoint_dir()); "
             "print(sorted(m for m in ('streamlit', 'plotly', 'onnx', 'onnxruntime') if m in sys.modules))")
    package, workspace, checkpoints, extras = _run([python, "-c", probe], cwd=tmp_path).stdout.splitlines()
    assert Path(package).is_relative_to(python.parent.parent)  # the installed copy, not the checkout
    assert Path(workspace) == tmp_path.resolve() and Path(checkpoints) == tmp_path.resolve() / "checkpoints"
    assert extras == "[]"  # the CLI needs neither the app extra nor the onnx extra to start


def test_installed_command_trains_and_scores_outside_the_repository(installed, request, tmp_path):
    _, script = installed
    synthetic_root = request.getfixturevalue("synthetic_root")  # after `installed`: it needs torch
    _run([script, "train", "--dataset", "synthetic", "--data-root", synthetic_root, "--category", "tiles",
          "--model", "cae", "--epochs", "1", "--batch-size", "4", "--images-per-epoch", "8", "--device", "cpu",
          "--no-eval"], cwd=tmp_path)
    from anovit import TrainConfig

    name = TrainConfig(dataset="synthetic", data_root=str(synthetic_root), category="tiles", model="cae").run_name()
    run = tmp_path / "checkpoints" / name  # under the current folder
    assert (run / "model.safetensors").is_file()
    image = next((synthetic_root / "tiles" / "test" / "hole").glob("*.png"))
    out = _run([script, "score", run, image, "--output", "scores.csv"], cwd=tmp_path).stdout
    assert "1 images" in out and (tmp_path / "scores.csv").read_text().startswith("path,anomaly_score,decision")
