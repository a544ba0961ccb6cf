"""Device and precision choices shared by training and evaluation."""

from __future__ import annotations

import contextlib

import torch

from .errors import AnovitError


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" picks CUDA when present, else the CPU; anything else is passed to torch.device.

    Raises AnovitError in one sentence for a name torch does not know or a CUDA device this machine lacks.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AnovitError(f"--device '{name}' is not a device name (expected auto, cpu, cuda or cuda:N)") from None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda" and (device.index or 0) >= count:
        have = f"{count} CUDA device(s)" if count else "no CUDA device (or this torch build has no CUDA)"
        raise AnovitError(f"--device {name}: this machine has {have} (expected --device cpu or auto)")
    return device


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast is fast and supported on ``device``."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def use_bf16(device: torch.device, requested: bool | None) -> bool:
    """Resolve a bf16 request: None means "when the device supports it"."""
    if requested is None:
        return bf16_supported(device)
    if requested and not bf16_supported(device):
        raise ValueError(f"bf16 autocast was requested but {device} does not support it")
    return requested


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``; losses and score maps stay float32."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
