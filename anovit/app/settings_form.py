"""The form widgets of a config's settings, drawn from their declaration (:class:`anovit.utils.settings.Setting`
with a :class:`~anovit.utils.settings.Form`): a selectbox of the choices, a checkbox for a switch, a number
input within the bounds; the tooltip is the setting's help."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..utils.settings import field_default, help_text, settings_of


def form_settings(cls: type, picks: bool | None = None) -> list[str]:
    """The settings of ``cls`` the form shows, in declaration order; ``picks``: only those drawn as a pick
    (a selectbox or a checkbox: True) or as a number input (False)."""
    return [name for name, (spec, kind) in settings_of(cls).items() if spec.form is not None
            and picks in (None, spec.choices is not None or kind.base is bool)]


def setting_widgets(container: Any, defaults: Any, names: Iterable[str], *scope: str) -> dict[str, Any]:
    """Draw settings ``names`` of the config ``defaults`` in ``container``, each offering its value in ``defaults``
    first and keyed by :func:`widget_key` with ``scope``; returns the values picked by name."""
    cls = type(defaults)
    return {name: setting_widget(container, cls, name, getattr(defaults, name), widget_key(cls, name, *scope))
            for name in names}


def widget_key(cls: type, name: str, *scope: str) -> str | None:
    """The widget's key: the name and ``scope`` (e.g. model and preset) where the default is resolved from them
    (a new scope then offers its own default), None where the setting has a fixed default."""
    return "-".join((name, *scope)) if field_default(cls, name) is None else None


def setting_widget(container: Any, cls: type, name: str, default: Any, key: str | None = None) -> Any:
    """Draw setting ``name`` of ``cls`` in ``container`` (a Streamlit column or ``st``) with ``default`` first.

    Args:
        container: where the widget goes.
        cls: the config dataclass.
        name: the setting (it must have a ``form``).
        default: the value offered first (the resolved default).
        key: the widget's key (:func:`widget_key`).

    Returns:
        The value picked, as the field's type (a number input may give a float for an integer field).
    """
    spec, kind = settings_of(cls)[name]
    form = spec.form
    assert form is not None, f"{cls.__name__}.{name} is not on the form"
    tooltip = help_text(cls, name, default=default) + (f". {form.details}" if form.details else "")
    if spec.choices is not None:
        return container.selectbox(form.label, spec.choices, index=spec.choices.index(default), key=key, help=tooltip)
    if kind.base is bool:
        return container.checkbox(form.label, value=bool(default), key=key, help=tooltip)
    cast = int if kind.base is int else float
    low, high = (None if bound is None else cast(bound) for bound in widget_range(cls, name))
    return cast(container.number_input(form.label, low, high, cast(default), key=key, help=tooltip, format=form.format))


def widget_range(cls: type, name: str) -> tuple[float | None, float | None]:
    """The number input's (min, max): the form's range, else the setting's bounds (an open bound needs a
    form range inside it: the widget cannot refuse the bound itself)."""
    spec, _ = settings_of(cls)[name]
    assert spec.form is not None, f"{cls.__name__}.{name} is not on the form"
    return (spec.form.minimum if spec.form.minimum is not None else spec.minimum,
            spec.form.maximum if spec.form.maximum is not None else spec.maximum)
