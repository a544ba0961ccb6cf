"""Checks of numbers and names given by people: config fields (in the config dataclasses'
``__post_init__``) and command-line arguments (as argparse ``type=``), with one message format:
"field 'epochs' must be an integer >= 1; got 0".

JSON gives ints, floats, strings, bools and null; a bool is never accepted as a number (``True`` is
an ``int`` in Python) and a float is an integer only when the field allows floats.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import ConfigError


def _bound(minimum: float | None, maximum: float | None, min_open: bool, max_open: bool) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if min_open else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<' if max_open else '<='} {maximum:g}")
    return " and ".join(parts)


def check_number(name: str, value: Any, *, integer: bool = False, minimum: float | None = None,
                 maximum: float | None = None, min_open: bool = False, max_open: bool = False) -> Any:
    """``value`` if it is a finite number (an int when ``integer``) within the bounds; else ConfigError."""
    kind = "an integer" if integer else "a number"
    bounds = _bound(minimum, maximum, min_open, max_open)
    wanted = f"{kind} {bounds}".strip()
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or (isinstance(value, float) and not math.isfinite(value)):
        raise ConfigError(f"field '{name}' must be {wanted}; got {value!r}")
    if ((minimum is not None and (value <= minimum if min_open else value < minimum))
            or (maximum is not None and (value >= maximum if max_open else value > maximum))):
        raise ConfigError(f"field '{name}' must be {wanted}; got {value!r}")
    return value


def check_optional_number(name: str, value: Any, **bounds: Any) -> Any:
    """None, or :func:`check_number`."""
    return None if value is None else check_number(name, value, **bounds)


def check_bool(name: str, value: Any, *, optional: bool = False) -> Any:
    """``value`` if it is true/false (or None when ``optional``); else ConfigError."""
    if isinstance(value, bool) or (optional and value is None):
        return value
    raise ConfigError(f"field '{name}' must be true or false{' or null' if optional else ''}; got {value!r}")


def check_str(name: str, value: Any, *, choices: Iterable[str] | None = None, optional: bool = False) -> Any:
    """``value`` if it is a non-empty string (one of ``choices`` when given; None when ``optional``)."""
    if optional and value is None:
        return value
    choices = sorted(choices) if choices is not None else None
    if not isinstance(value, str) or not value or (choices is not None and value not in choices):
        wanted = f"one of {choices}" if choices is not None else "a non-empty string"
        raise ConfigError(f"field '{name}' must be {wanted}{' or null' if optional else ''}; got {value!r}")
    return value


def check_in(name: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``allowed`` (a bool never stands for 0 or 1); else ConfigError."""
    if isinstance(value, bool) or value not in allowed:
        raise ConfigError(f"field '{name}' must be one of {list(allowed)}; got {value!r}")
    return value


def check_int_list(name: str, value: Any, length: int, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (a list or tuple of ``length`` integers >= ``minimum``) as a tuple; else ConfigError."""
    wanted = f"a list of {length} integers >= {minimum}"
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise ConfigError(f"field '{name}' must be {wanted}; got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or item < minimum:
            raise ConfigError(f"field '{name}' must be {wanted}; got {value!r}")
    return tuple(value)


def absolute_path(path: str | Path | None) -> str | None:
    """``path`` expanded and resolved to an absolute path (None stays None): what run files store, so
    a run works from any working directory."""
    return None if path is None else str(Path(path).expanduser().resolve())


def arg_type(integer: bool = False, **bounds: Any) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses an int (or float) and refuses it outside ``bounds`` at parse
    time: argparse then prints "argument --epochs: must be an integer >= 1; got 0" and exits with 2."""

    def parse(text: str) -> Any:
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {'an integer' if integer else 'a number'}; got {text!r}") from None
        try:
            return check_number("", value, integer=integer, **bounds)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("field '' ")) from None

    parse.__name__ = "integer" if integer else "number"
    return parse


positive_int = arg_type(integer=True, minimum=1)
non_negative_int = arg_type(integer=True, minimum=0)
positive_float = arg_type(minimum=0, min_open=True)
non_negative_float = arg_type(minimum=0)
finite_float = arg_type()  # a threshold: any finite number (nan, inf refused)


# The ViT patch size of every preset's encoder and the l2-CAE's total stride: an input side must be a
# multiple of it (--image-size).
PATCH_SIZE = 16


def image_size_arg(text: str) -> int:
    """argparse ``type=`` of --image-size: a positive multiple of :data:`PATCH_SIZE` px."""
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < PATCH_SIZE or size % PATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be a positive multiple of {PATCH_SIZE} px (the patch size; "
                                         f"e.g. 128, 224, 384); got {text!r}")
    return size


def encoder_arg(name: str) -> str:
    """argparse ``type=`` of --encoder: a timm Vision Transformer or DeiT model name."""
    import timm

    if not name.startswith(("vit_", "deit_", "deit3_")) or name not in timm.list_models():
        raise argparse.ArgumentTypeError(f"must be a timm ViT or DeiT model name (e.g. vit_base_patch16_224, "
                                         f"deit_small_patch16_224); got {name!r}")
    return name


def add_size_args(p: argparse.ArgumentParser) -> None:
    """--image-size and --encoder (checked by :func:`image_size_arg` and :func:`encoder_arg`), shared by train and benchmark."""
    p.add_argument("--image-size", type=image_size_arg, help="input size in px, a multiple of the patch size "
                   "(default: the preset's; the paper preset's follows the dataset: 224 for MNIST/CIFAR-10, "
                   "384 for MVTec AD)")
    p.add_argument("--encoder", type=encoder_arg, help="AnoViT: any timm ViT/DeiT name (default: the preset's)")


def add_scoring_precision_arg(p: argparse.ArgumentParser) -> None:
    """--bf16 / --no-bf16 of the commands that score a run (evaluate, score): None (neither) is the run's
    recorded precision (:func:`anovit.utils.runtime.scoring_bf16`)."""
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="score under bf16 autocast, or not (default: the precision the run was trained in, "
                        "float32 where the device has no bf16)")
