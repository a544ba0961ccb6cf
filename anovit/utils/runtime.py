"""Device and precision choices shared by training and evaluation.

The precision rule: training resolves its request (``--bf16`` / ``--no-bf16`` / auto) once, at its
start, and records the result in the run's training.json ("precision": "bf16" or "fp32"). Every later
scoring of the run (evaluate, score, the app, pulled runs) uses that recorded precision unless told
otherwise (``--bf16`` / ``--no-bf16`` on evaluate and score), so a threshold is compared with scores of
the precision it was fitted in; a run recorded in bf16 is scored in fp32 on a device without bf16, with
a note saying so. ONNX export is fp32. ``ANOVIT_NO_BF16=1`` makes every device report no bf16 support
(the fp32 path of a bf16 CPU, for tests).
"""

from __future__ import annotations

import contextlib
import os

import torch

from .errors import AnovitError, ConfigError

NO_BF16_ENV = "ANOVIT_NO_BF16"  # set (to anything but "" or "0"): bf16_supported() is False everywhere
PRECISIONS = ("bf16", "fp32")


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
    """Whether bf16 autocast is fast and supported on ``device``; False for every device when the
    environment variable ``ANOVIT_NO_BF16`` is set (to anything but "" or "0")."""
    if os.environ.get(NO_BF16_ENV, "") not in ("", "0"):
        return False
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def use_bf16(device: torch.device, requested: bool | None) -> bool:
    """Resolve a bf16 request: None means "when the device supports it"; True on a device without bf16
    is a ConfigError (one sentence, raised before anything is written)."""
    if requested is None:
        return bf16_supported(device)
    if requested and not bf16_supported(device):
        reason = f" ({NO_BF16_ENV} is set)" if os.environ.get(NO_BF16_ENV, "") not in ("", "0") else ""
        raise ConfigError(f"--bf16 was requested but {device} has no bf16 support{reason}; "
                          "leave --bf16 out or pass --no-bf16 to run in float32")
    return requested


def precision_name(bf16: bool) -> str:
    """"bf16" or "fp32": how a run records its precision."""
    return "bf16" if bf16 else "fp32"


def scoring_bf16(device: torch.device, recorded: str | None, requested: bool | None = None) -> tuple[bool, str | None]:
    """(bf16 or not, a one-line note or None) for scoring a run on ``device``.

    ``requested`` True / False (``--bf16`` / ``--no-bf16``) wins (True where unsupported: ConfigError);
    None: the run's ``recorded`` precision ("bf16" / "fp32", see :attr:`anovit.runs.record.RunRecord.precision`),
    float32 with a note where it is "bf16" and ``device`` has no bf16; ``recorded`` None (nothing
    recorded, e.g. a pulled model): bf16 where the device supports it.
    """
    if requested is not None or recorded is None:
        return use_bf16(device, requested), None
    if recorded not in PRECISIONS:
        raise ConfigError(f"a run's precision must be one of {PRECISIONS}; got {recorded!r}")
    if recorded == "bf16" and not bf16_supported(device):
        return False, f"the run was trained in bf16 but {device} has no bf16 support: scoring in float32"
    return recorded == "bf16", None


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled``; losses and score maps stay float32."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
