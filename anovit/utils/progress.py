"""Terminal progress bars of the command-line tools."""

from __future__ import annotations

from typing import Any

from tqdm import tqdm


class TerminalBar:
    """A tqdm bar opened at the first progress report, so an error raised before any progress prints
    one line and no empty bar. Call it as ``bar(done, total, **postfix)``; ``close()`` when finished."""

    def __init__(self, desc: str, unit: str = "img", *, scale: bool = False, leave: bool = False) -> None:
        self.options = {"desc": desc, "unit": unit, "unit_scale": scale, "unit_divisor": 1024 if scale else 1000,
                        "leave": leave}
        self.bar: Any = None

    def __call__(self, done: int, total: int | None = None, **postfix: Any) -> None:
        if self.bar is None:
            self.bar = tqdm(**self.options)
        if total is not None:
            self.bar.total = total
        if postfix:
            self.bar.set_postfix(**postfix)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
