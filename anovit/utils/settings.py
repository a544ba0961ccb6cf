"""Settings declared once: a config dataclass's fields carry a :class:`Setting` (help text, bounds, choices, flag,
form widget) in their metadata, and from it come the field checks of ``__post_init__``, the command-line flags,
the args-to-config mapping (:mod:`.setting_flags`), the app form's widgets (:mod:`anovit.app.settings_form`) and
the printed config.

The type is the field's annotation (``int``, ``float``, ``str``, ``bool``, each maybe ``| None``; None is
then a valid value); other types (objects, lists, nested configs) bring their own ``check``.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Config:
    ...     epochs: int = setting(5, "training epochs", minimum=1)
    ...     def __post_init__(self) -> None:
    ...         check_settings(self)
    >>> Config(epochs=0)
    Traceback (most recent call last):
    anovit.utils.errors.ConfigError: field 'epochs' must be an integer >= 1; got 0
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from .validation import check_bool, check_number, check_str

KEY = "setting"  # the field metadata's key


@dataclass(frozen=True)
class Form:
    """How the app's form shows a setting: its label, the widget's range (within the setting's bounds; None:
    the bound's own), the number format and more for its tooltip (e.g. what each choice means)."""

    label: str
    minimum: float | None = None
    maximum: float | None = None
    format: str | None = None
    details: str = ""


@dataclass(frozen=True)
class Setting:
    """What one config field means and accepts.

    Attributes:
        help: what it is; the flag's help and the form's tooltip start with it.
        minimum, maximum, min_open, max_open: bounds of a number (open: the bound itself is refused).
        choices: the allowed strings (kept in their order for the flag and the form).
        note: said before the default in the help, e.g. "0: no clipping".
        default_text: what the default is when it is resolved later (e.g. "the preset's"): the flag's default
            is then None (not given); without it the flag's default is the field's.
        flag: the command-line flag (default ``--`` and the name with dashes); None: no flag of its own.
        off: a flag value that stands for None (off), e.g. ``--grad-clip 0``.
        form: how the app's form shows it; None: not on the form.
        check: ``check(name, value, setting) -> value`` for a field whose type has no generated check.
    """

    help: str
    minimum: float | None = None
    maximum: float | None = None
    min_open: bool = False
    max_open: bool = False
    choices: tuple[str, ...] | None = None
    note: str = ""
    default_text: str | None = None
    flag: str | None = ""
    off: float | None = None
    form: Form | None = None
    check: Callable[[str, Any, "Setting"], Any] | None = None

    @property
    def bounds(self) -> dict[str, Any]:
        """The bounds as keyword arguments of :func:`anovit.utils.validation.check_number`."""
        return {"minimum": self.minimum, "maximum": self.maximum, "min_open": self.min_open, "max_open": self.max_open}

    def interval(self) -> str:
        """Both bounds in interval notation (``(0, 1)``, ``[0, 1]``); "" unless both are set."""
        if self.minimum is None or self.maximum is None:
            return ""
        return f"{'(' if self.min_open else '['}{self.minimum:g}, {self.maximum:g}{')' if self.max_open else ']'}"


def setting(default: Any = dataclasses.MISSING, help: str = "", *, default_factory: Any = dataclasses.MISSING,
            **spec: Any) -> Any:
    """A dataclass field carrying a :class:`Setting` (``help`` and ``spec``) in its metadata.

    Args:
        default: the field's default (None: resolved later, e.g. from a preset).
        help: what the setting is.
        default_factory: instead of ``default``, for mutable defaults.
        **spec: the other :class:`Setting` attributes.

    Returns:
        A :func:`dataclasses.field`.
    """
    if "choices" in spec:
        spec["choices"] = tuple(spec["choices"])
    return dataclasses.field(default=default, default_factory=default_factory, metadata={KEY: Setting(help, **spec)})


@dataclass(frozen=True)
class Kind:
    """A field's type read from its annotation: ``base`` (int, float, str, bool or None for others), ``optional``."""

    base: type | None
    optional: bool


def _kind(annotation: Any) -> Kind:
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    optional = type(None) in args
    bases = [a for a in args if a is not type(None)]
    base = bases[0] if len(bases) == 1 and bases[0] in (int, float, str, bool) else None
    return Kind(base, optional)


@cache
def settings_of(cls: type) -> dict[str, tuple[Setting, Kind]]:
    """Every field of ``cls`` with its :class:`Setting` and :class:`Kind`, in declaration order.

    Raises:
        TypeError: naming a field without a Setting, or without help.
    """
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(KEY)
        if not isinstance(spec, Setting) or not spec.help.strip():
            raise TypeError(f"{cls.__name__}.{f.name} has no setting with help text (declare it with setting(...))")
        kind = _kind(hints[f.name])
        if kind.base is None and spec.check is None:
            raise TypeError(f"{cls.__name__}.{f.name}: a field of type {hints[f.name]} needs its own check")
        out[f.name] = (spec, kind)
    return out


def check_setting(cls: type, name: str, value: Any) -> Any:
    """``value`` checked as field ``name`` of ``cls`` (its type, bounds and choices); ConfigError naming the field.

    Returns:
        The value, normalised by the setting's own ``check`` where it has one (e.g. a list as a tuple).
    """
    spec, kind = settings_of(cls)[name]
    if kind.optional and value is None:
        return value
    if spec.check is not None:
        return spec.check(name, value, spec)
    if kind.base is str:
        return check_str(name, value, choices=spec.choices, optional=kind.optional)
    if kind.base is bool:
        return check_bool(name, value, optional=kind.optional)
    return check_number(name, value, integer=kind.base is int, **spec.bounds)


def check_settings(config: Any) -> None:
    """Check every field of ``config`` (a dataclass of settings) with :func:`check_setting`, in declaration
    order, storing the normalised values; ConfigError naming the first bad field."""
    for name in settings_of(type(config)):
        setattr(config, name, check_setting(type(config), name, getattr(config, name)))


def field_default(cls: type, name: str) -> Any:
    """The declared default of field ``name`` of ``cls`` (None where it has none or a factory)."""
    default = {f.name: f.default for f in dataclasses.fields(cls)}[name]
    return None if default is dataclasses.MISSING else default


def help_text(cls: type, name: str, default_text: str | None = None, default: Any = None) -> str:
    """What a setting is, its interval, its note and its default, e.g. "share of ..., in (0, 1) (default: 0.2)".

    Args:
        cls: the config dataclass.
        name: the field.
        default_text: what the default is, instead of the setting's own ``default_text``.
        default: the default to show where there is no default text (argparse's ``%(default)s`` for a flag);
            None: the field's own, and no default where it has none.
    """
    spec, _ = settings_of(cls)[name]
    text = default_text if default_text is not None else spec.default_text
    if text is None:
        value = default if default is not None else field_default(cls, name)
        text = None if value is None else str(value)
    interval = f", in {spec.interval()}" if spec.interval() else ""
    extra = "; ".join(part for part in (spec.note, f"default: {text}" if text is not None else "") if part)
    return f"{spec.help}{interval}" + (f" ({extra})" if extra else "")


def setting_values(config: Any) -> dict[str, Any]:
    """Every setting of ``config`` and its value as JSON gives it back (tuples as lists, nested configs as
    objects), in declaration order: the printed config."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def format_settings(config: Any) -> str:
    """Every setting of ``config`` on one line, ``name value`` joined by `` · `` (values as JSON writes them)."""
    return " · ".join(f"{name} {json.dumps(value)}" for name, value in setting_values(config).items())
