"""benchmarks/gpu_check.sh (it has not run on a GPU yet): valid bash, a Python driver that compiles, and one
clear sentence with a non-zero exit where there is no GPU."""

import py_compile
import shutil
import subprocess
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_gpu_check_is_valid_bash_and_python():
    assert subprocess.run(["bash", "-n", str(BENCH / "gpu_check.sh")], capture_output=True).returncode == 0
    py_compile.compile(str(BENCH / "gpu_check.py"), doraise=True)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="a GPU machine would run the whole check")
def test_gpu_check_without_a_gpu_fails_cleanly():
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == ("gpu_check: no NVIDIA GPU found (nvidia-smi is missing or sees none); run it on "
                                   "a GPU machine")
