"""Resume points: one safetensors file (resume.safetensors) holding model, optimiser and RNG state, with
the epoch and loss history as metadata, written by the trainer after every epoch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from . import checkpoint as ckpt
from ..utils.errors import CheckpointError


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], str]:
    state = opt.state_dict()
    tensors = {f"optim.{i}.{k}": v for i, s in state["state"].items() for k, v in s.items()}
    return tensors, json.dumps(state["param_groups"])


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: str) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": json.loads(groups)})


def save_resume_point(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, meta: dict[str, Any]) -> None:
    """One safetensors file holding model, optimiser and RNG state; epoch and history as metadata."""
    tensors, groups = _optimizer_tensors(opt)
    tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
    tensors["rng.torch"] = torch.get_rng_state()
    ckpt.save_tensors(run_dir / ckpt.RESUME, tensors, {"param_groups": groups, "meta": json.dumps(meta)})


def load_resume_point(run_dir: Path, model: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore what :func:`save_resume_point` wrote and return its metadata."""
    from safetensors import safe_open

    path = run_dir / ckpt.RESUME
    tensors = ckpt.load_tensors(path)
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata() or {}
    if "meta" not in metadata or "param_groups" not in metadata:
        raise CheckpointError(f"{path} has no resume metadata (epoch, optimiser groups)")
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    ckpt.load_state_checked(model, model_state, path)
    _load_optimizer(opt, {k: v for k, v in tensors.items() if k.startswith("optim.")}, metadata["param_groups"])
    torch.set_rng_state(tensors["rng.torch"])
    return json.loads(metadata["meta"])
