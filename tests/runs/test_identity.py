"""Files and runs keep their identity (issue 21, section 4): `score FOLDER` scores each real file once and
names what it skips, non-finite thresholds are refused, a run's default folder and its resume follow its data
root, a report counts a cell once, and interruptions and refused writes end in one sentence, not a traceback."""

from __future__ import annotations

import csv
import errno
import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anovit.runs import checkpoint as ckpt
from anovit.evaluation.benchmark import append_result, read_results
from anovit.cli.main import main
from anovit.utils.errors import CheckpointError, ConfigError
from anovit.report.tables import collect_results, comparison
from anovit.report.render import display_table
from anovit.evaluation.results_table import read_table
from anovit.cli.score import image_files
from anovit.training.trainer import train
from anovit.training.config import TrainConfig

TINY = ["--dataset", "synthetic", "--category", "weave", "--model", "cae", "--batch-size", "4", "--no-eval",
        "--device", "cpu", "--no-bf16",
        "--images-per-epoch", "8"]  # the default preset's 256 images per epoch are not what these tests check


def _image(path: Path, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(path, fmt)
    return path


# ---------------------------------------------------------------- score FOLDER


def test_score_lists_gif_and_webp_names_what_it_skips_and_scores_each_real_file_once(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    files = [_image(folder / "a.png"), _image(folder / "b.gif"), _image(folder / "sub" / "c.webp")]
    (folder / "notes.txt").write_text("not an image")
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # a link loop: searched once
    (folder / "sub" / "again.png").symlink_to(files[0])  # the same real file under a second name
    found, skipped = image_files(folder)
    assert found == sorted(files)
    assert skipped == sorted([f"{folder / 'loop'}: a link to folder '{folder}', which is searched once",
                              f"{folder / 'notes.txt'}: not an image file (expected .png/.jpg/.jpeg/.bmp/.tif/.tiff/.gif/.webp)",
                              f"{folder / 'sub' / 'again.png'}: the same file as '{files[0]}', which is scored once"])


def test_score_prints_the_skipped_files_with_their_reason(trained_runs: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "images"
    for name in ("a.png", "b.webp"):
        _image(folder / name)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    out = tmp_path / "scores.csv"
    assert main(["score", str(trained_runs / "weave-cae"), str(folder), "--threshold", "1", "--output", str(out),
                 "--device", "cpu"]) == 0
    assert f"skipped {folder / 'loop'}: a link to folder" in capsys.readouterr().err
    with open(out, newline="") as f:
        assert [row["path"] for row in csv.DictReader(f)] == [str(folder / "a.png"), str(folder / "b.webp")]


# ---------------------------------------------------------------- non-finite numbers


@pytest.mark.parametrize("command", [["export", "RUN", "--threshold"], ["score", "RUN", "IMG", "--threshold"],
                                     ["score", "RUN", "IMG", "--sigma"], ["train", "--lr"]])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_thresholds_sigmas_and_rates_are_refused_at_parse_time(command, value, capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        main([*command[:-1], f"{command[-1]}={value}"])  # "=": argparse reads a bare -inf as an option
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert f"{command[-1]}: must be" in err and f"got {value}" in err and "Traceback" not in err


@pytest.mark.parametrize("field", ["lr", "sigma", "val_fraction", "grad_clip"])
def test_non_finite_config_fields_are_refused(field: str) -> None:
    with pytest.raises(ConfigError, match=f"field '{field}' must be"):
        TrainConfig(dataset="synthetic", category="weave", **{field: float("nan")})


# ---------------------------------------------------------------- a run's identity includes its data


def test_the_default_run_folder_follows_the_data_root(tmp_path: Path) -> None:
    plain = TrainConfig(dataset="synthetic", category="weave")
    assert plain.run_name() == "synthetic-weave-anovit-cpu-default-s0"  # no data root: no hash, as before
    first = TrainConfig(dataset="synthetic", category="weave", data_root=str(tmp_path / "a"))
    second = TrainConfig(dataset="synthetic", category="weave", data_root=str(tmp_path / "b"))
    again = TrainConfig(dataset="synthetic", category="weave", data_root=str(tmp_path / "x" / ".." / "a"))
    assert first.run_name().startswith("synthetic-weave-anovit-cpu-default-s0-d")
    assert first.run_name() != second.run_name() and first.run_name() == again.run_name()


@pytest.fixture
def two_roots(synthetic_root: Path, tmp_path: Path) -> tuple[Path, Path]:
    roots = tmp_path / "a", tmp_path / "b"
    for root in roots:
        shutil.copytree(synthetic_root / "weave", root / "weave")
    return roots


def test_a_second_data_root_trains_into_its_own_folder_and_resume_elsewhere_needs_data_moved(
        two_roots: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ANOVIT_CHECKPOINTS", str(tmp_path / "ckpts"))
    first, second = two_roots
    for root in (first, second):
        assert main(["train", *TINY, "--data-root", str(root), "--epochs", "1"]) == 0
    runs = sorted((tmp_path / "ckpts").iterdir())
    assert len(runs) == 2 and {ckpt.read_json(r / ckpt.TRAINING)["data_root"] for r in runs} == {str(first), str(second)}
    run = next(r for r in runs if ckpt.read_json(r / ckpt.TRAINING)["data_root"] == str(first))
    moved = tmp_path / "moved"
    shutil.move(first, moved)
    capsys.readouterr()
    resume = ["train", *TINY, "--data-root", str(moved), "--epochs", "2", "--output", str(run), "--resume"]
    assert main(resume) == 2
    err = capsys.readouterr().err
    assert f"it trained on data root {first}, not {moved}" in err and "--data-moved" in err
    assert main([*resume, "--data-moved"]) == 0
    assert ckpt.read_json(run / ckpt.TRAINING)["data_root"] == str(moved)
    assert ckpt.read_metrics(run)["training"]["epoch"] == 2


def test_a_run_folder_of_another_data_root_is_not_offered_to_resume(two_roots: Path, tmp_path: Path) -> None:
    first, second = two_roots
    run = tmp_path / "run"
    train(TrainConfig(dataset="synthetic", category="weave", data_root=str(first), model="cae", epochs=1,
                      batch_size=4, images_per_epoch=8, bf16=False, device="cpu"), run)
    with pytest.raises(CheckpointError, match=f"already holds a run on other data \\(it trained on data root {first}, "
                                              f"not {second}\\): choose another --output, or leave --output out"):
        train(TrainConfig(dataset="synthetic", category="weave", data_root=str(second), model="cae", epochs=1,
                          batch_size=4, images_per_epoch=8, bf16=False, device="cpu"), run)


def _row(run_dir: str, auroc: float, seed: int = 0) -> dict:
    return {"dataset": "synthetic", "data_root": "/data/synthetic", "class": "weave", "type": "texture", "model": "cae",
            "preset": "cpu-tiny", "seed": seed, "epochs": 2, "image_auroc": auroc, "pixel_auroc": 0.5, "aupro": 0.3,
            "image_f1_max": 0.8, "pixel_f1_max": 0.2, "train_seconds": 10.0, "eval_seconds": 2.0,
            "train_images_per_s": 20.0, "eval_images_per_s": 50.0, "run_dir": run_dir, "versions": "test",
            "finished_at": "2026-11-29T00:00:00"}


def test_a_report_counts_a_cell_once_and_prints_no_spread_for_one_seed(tmp_path: Path) -> None:
    table = tmp_path / "benchmark.csv"
    append_result(table, _row("/bench-a/synthetic-weave-cae-cpu-tiny-s0", 0.70))  # two --runs-root, one cell
    append_result(table, _row("/bench-b/synthetic-weave-cae-cpu-tiny-s0", 0.72))
    df = collect_results(table)
    assert df["image_auroc"].tolist() == [0.72]
    assert df.attrs["repeated"] == ["run /bench-a/synthetic-weave-cae-cpu-tiny-s0 repeats the cell of run "
                                    "/bench-b/synthetic-weave-cae-cpu-tiny-s0 (synthetic, /data/synthetic, weave, cae, "
                                    "cpu-tiny, 0, 2 epochs); only the later counts"]
    shown = display_table(comparison(df, "synthetic", "cpu-tiny", "image_auroc", "/data/synthetic")).set_index("class")
    assert shown.loc["weave", "l2-CAE"] == "0.720" and shown.loc["weave", "seeds"] == "1/0"
    append_result(table, _row("/bench-a/synthetic-weave-cae-cpu-tiny-s1", 0.80, seed=1))
    shown = display_table(comparison(collect_results(table), "synthetic", "cpu-tiny", "image_auroc",
                                     "/data/synthetic")).set_index("class")
    assert shown.loc["weave", "l2-CAE"] == "0.760 ± 0.057" and shown.loc["weave", "seeds"] == "2/0"


def test_a_results_table_with_a_utf8_byte_order_mark_is_read(tmp_path: Path) -> None:
    plain, marked = tmp_path / "plain.csv", tmp_path / "marked.csv"
    append_result(plain, _row("/runs/x", 0.7))
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())  # as spreadsheet programs save "CSV UTF-8"
    assert read_results(marked) == read_results(plain) and len(read_results(marked)) == 1
    assert read_table(marked).rows.equals(read_table(plain).rows) and read_table(marked).problems == []


# ---------------------------------------------------------------- refusals instead of tracebacks


def test_ctrl_c_during_training_prints_the_exact_resume_command(synthetic_root: Path, tmp_path: Path, monkeypatch,
                                                               capsys) -> None:
    import anovit.training.trainer as trainer

    run = tmp_path / "run"
    argv = ["train", *TINY, "--data-root", str(synthetic_root), "--epochs", "2", "--output", str(run)]
    real, calls = trainer._val_loss, []

    def interrupt_in_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer, "_val_loss", interrupt_in_epoch_2)
    assert main(argv) == 130
    err = capsys.readouterr().err
    command = shlex.join(["python", "-m", "anovit", *argv, "--resume"])
    assert f"continue it with  {command}" in err and "Traceback" not in err
    monkeypatch.setattr(trainer, "_val_loss", real)
    assert main(shlex.split(command)[3:]) == 0  # the printed command resumes the run
    assert [h["epoch"] for h in ckpt.read_metrics(run)["training"]["history"]] == [1, 2]


def test_ctrl_c_before_the_first_epoch_says_nothing_was_saved(synthetic_root: Path, tmp_path: Path, monkeypatch,
                                                              capsys) -> None:
    import anovit.training.trainer as trainer

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "_val_loss", interrupt)
    assert main(["train", *TINY, "--data-root", str(synthetic_root), "--epochs", "1", "--output",
                 str(tmp_path / "run")]) == 130
    assert "before its first epoch ended: nothing was saved" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_refused_before_a_run_folder_is_made(synthetic_root: Path, tmp_path: Path,
                                                                         capsys) -> None:
    run = tmp_path / "run"
    argv = ["train", *TINY, "--data-root", str(synthetic_root), "--output", str(run)]
    assert main([*argv, "--device", "cuda"]) == 2
    assert "--device cuda: this machine has no CUDA device" in capsys.readouterr().err
    assert not run.exists()
    with pytest.raises(Exception, match="this machine has no CUDA device"):
        train(TrainConfig(dataset="synthetic", category="weave", data_root=str(synthetic_root), device="cuda:1"), run)
    assert not run.exists()


def test_a_read_only_checkpoint_folder_is_one_sentence(synthetic_root: Path, tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: the file system's refusal is simulated
        real_mkdir = Path.mkdir

        def refuse(self, *args, **kwargs):
            if folder in self.parents:
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real_mkdir(self, *args, **kwargs)

        monkeypatch.setattr(Path, "mkdir", refuse)
    try:
        assert main(["train", *TINY, "--data-root", str(synthetic_root), "--output", str(folder / "run")]) == 2
    finally:
        folder.chmod(0o755)
    err = capsys.readouterr().err
    assert f"cannot write '{folder / 'run'}': permission denied (expected a folder anovit may write to" in err
    assert "Traceback" not in err


def test_a_file_name_longer_than_the_file_system_allows_is_one_sentence(synthetic_root: Path, tmp_path: Path,
                                                                        capsys) -> None:
    name = "r" * 300
    assert main(["train", *TINY, "--data-root", str(synthetic_root), "--output", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert "is longer than the file system allows (a name of 300 characters" in err and "Traceback" not in err
