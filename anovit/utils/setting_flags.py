"""Command-line flags of a config's settings (:mod:`.settings`): each flag's spelling, help, choices, default and
parse-time bounds come from its field's :class:`~.settings.Setting`, and :func:`settings_from_args` maps the
parsed flags back to the config's keyword arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from .settings import field_default, help_text, settings_of
from .validation import arg_type


def flag_of(cls: type, name: str) -> str | None:
    """The command-line flag of setting ``name`` (None: it has none)."""
    spec, _ = settings_of(cls)[name]
    return None if spec.flag is None else spec.flag or "--" + name.replace("_", "-")


def flag_type(cls: type, name: str) -> Callable[[str], Any]:
    """The argparse ``type=`` of a number setting: its bounds checked at parse time (its ``off`` value let through)."""
    spec, kind = settings_of(cls)[name]
    bounds = spec.bounds
    if spec.off is not None and spec.off == spec.minimum:
        bounds["min_open"] = False
    return arg_type(integer=kind.base is int, **bounds)


def add_setting_args(parser: argparse.ArgumentParser, cls: type, names: Iterable[str] | None = None, *,
                     default_text: str | None = None,
                     adders: dict[str, Callable[[argparse.ArgumentParser], None]] | None = None) -> None:
    """Add the flags of ``cls``'s settings to ``parser``, in declaration order; each action's ``setting`` attribute
    names its field.

    Args:
        parser: the (sub)command's parser.
        cls: the config dataclass.
        names: the settings to add (default: every one with a flag).
        default_text: what every flag's default is instead (e.g. "the run's"); the flags' defaults are then None.
        adders: per field without a flag of its own, a function adding the flags that fill it (e.g. a nested
            config's), called at the field's place.
    """
    adders = adders or {}
    wanted = list(settings_of(cls)) if names is None else list(names)
    for name in wanted:
        spec, kind = settings_of(cls)[name]
        before = len(parser._actions)
        if name in adders:
            adders[name](parser)
        elif flag_of(cls, name) is not None:
            given = default_text is None and spec.default_text is None
            default = field_default(cls, name) if given else None
            shown = "%(default)s" if default is not None else None
            options: dict[str, Any] = {"dest": name, "default": default,
                                       "help": help_text(cls, name, default_text, shown)}
            if kind.base is bool:
                options["action"] = argparse.BooleanOptionalAction
            elif spec.choices is not None:
                options["choices"] = spec.choices
            elif kind.base in (int, float):
                options["type"] = flag_type(cls, name)
            parser.add_argument(flag_of(cls, name), **options)
        for action in parser._actions[before:]:
            action.setting = name  # type: ignore[attr-defined]


def settings_from_args(args: argparse.Namespace, cls: type, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The flags of ``cls``'s settings in ``args`` as keyword arguments of ``cls`` (a setting's ``off`` value as
    None); ``names``: those to read (default: every setting with a flag)."""
    names = [n for n in settings_of(cls) if flag_of(cls, n) is not None] if names is None else names
    out = {}
    for name in names:
        spec, _ = settings_of(cls)[name]
        value = getattr(args, name)
        out[name] = None if spec.off is not None and value == spec.off else value
    return out
