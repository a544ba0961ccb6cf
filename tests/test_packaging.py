"""The package as people install it: a wheel built from pyproject.toml, installed into a fresh
virtual environment, gives an ``anovit`` command that works from a folder outside the repository,
keeps its working files there, and needs neither the app extra nor the ONNX extra for its help."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv anovit script, wheel): the wheel installed with --no-deps into a venv that
    sees this interpreter's packages (--system-site-packages), so nothing is downloaded."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("pip is not available to build a wheel")
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "source"  # a copy: building in the checkout would leave build/ and *.egg-info there
    shutil.copytree(REPO / "anovit", source / "anovit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(source)])
    wheel = next((tmp / "dist").glob("anovit-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])
    return python, venv / "bin" / "anovit", wheel


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANOVIT_CHECKPOINTS", "ANOVIT_DATA_DIR")}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_wheel_holds_the_package_and_its_data_only(installed):
    _, _, wheel = installed
    names = zipfile.ZipFile(wheel).namelist()
    assert "anovit/hub_models.json" in names and "anovit/cli.py" in names and "anovit/models/anovit.py" in names
    assert not [n for n in names if n.startswith(("tests/", "pages/", "app_pages/", "benchmarks/")) or "__pycache__" in n]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "anovit = anovit.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_console_script_runs_from_outside_the_repository(installed, tmp_path):
    python, script, _ = installed
    out = _run([script, "--help"], cwd=tmp_path).stdout
    for command in ("train", "evaluate", "export", "score"):
        assert command in out
    assert _run([python, "-m", "anovit", "--help"], cwd=tmp_path).stdout == out  # the same CLI either way
    probe = ("import sys, anovit; from anovit.cli import build_parser; from anovit.data.paths import workspace_dir; "
             "from anovit.runs import default_checkpoint_dir; build_parser(); "
             "print(anovit.__file__); print(workspace_dir()); print(default_checkpoint_dir()); "
             "print(sorted(m for m in ('streamlit', 'plotly', 'onnx', 'onnxruntime') if m in sys.modules))")
    package, workspace, checkpoints, extras = _run([python, "-c", probe], cwd=tmp_path).stdout.splitlines()
    assert Path(package).is_relative_to(python.parent.parent)  # the installed copy, not the checkout
    assert Path(workspace) == tmp_path.resolve() and Path(checkpoints) == tmp_path.resolve() / "checkpoints"
    assert extras == "[]"  # the CLI needs neither the app extra nor the onnx extra to start


def test_installed_command_trains_and_scores_outside_the_repository(installed, synthetic_root, tmp_path):
    _, script, _ = installed
    _run([script, "train", "--dataset", "synthetic", "--data-root", synthetic_root, "--category", "tiles",
          "--model", "cae", "--epochs", "1", "--batch-size", "4", "--device", "cpu", "--no-eval"], cwd=tmp_path)
    run = tmp_path / "checkpoints" / "synthetic-tiles-cae-cpu-tiny-s0"  # under the current folder
    assert (run / "model.safetensors").is_file()
    image = next((synthetic_root / "tiles" / "test" / "hole").glob("*.png"))
    out = _run([script, "score", run, image, "--output", "scores.csv"], cwd=tmp_path).stdout
    assert "1 images" in out and (tmp_path / "scores.csv").read_text().startswith("path,anomaly_score,decision")
