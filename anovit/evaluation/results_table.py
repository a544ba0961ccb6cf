"""The benchmark's results table (``results/benchmark.csv``) read against a declared schema.

:data:`SCHEMA` declares every column once: its name, type (text, integer, number), range and whether
it may be empty. :func:`read_table` reads a table in three steps:

1. the bytes are decoded as UTF-8; anything else (Latin-1, random bytes) is one AnovitError naming
   the file and the offending byte;
2. a pre-pass with the ``csv`` module, which gives each record its line number: a record with a NUL
   byte or with more or fewer fields than the header (an unquoted comma in a class name, a row cut
   short by a kill) is refused whole, so rows are never merged or shifted;
3. pandas with explicit dtypes (``pd.to_numeric`` per numeric column, no type inference) and the
   declared ranges, vectorised: a value that is not a number, not finite or out of range refuses its row.

Every refused row is reported as "LINE N: what is wrong" and left out; the good rows are returned.

Why not pandera: measured with pandera 0.35 here, importing it took ~11 s on the loaded build
machine, and after a value of a column fails to coerce (``abc``) its range checks raise for the whole
column instead of naming the rows, so ``inf`` in another row went unreported; the csv module + pandas
(both already required) report every row.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils.errors import AnovitError


@dataclass(frozen=True)
class Column:
    """One declared column: ``kind`` is "text", "int" or "number"; bounds are inclusive."""

    name: str
    kind: str = "text"
    minimum: float | None = None
    maximum: float | None = None
    required: bool = True  # False: may be empty (NaN / "")

    def expected(self) -> str:
        """What a value must be, in words."""
        kind = {"text": "text", "int": "an integer", "number": "a number"}[self.kind]
        if self.minimum is not None and self.maximum is not None:
            kind += f" in [{self.minimum:g}, {self.maximum:g}]"
        elif self.minimum is not None:
            kind += f" >= {self.minimum:g}"
        return kind + ("" if self.required else " or empty")


def _metric(name: str) -> Column:
    return Column(name, "number", 0.0, 1.0, required=False)


def _cost(name: str) -> Column:
    return Column(name, "number", 0.0, required=False)


SCHEMA: tuple[Column, ...] = (
    Column("dataset"), Column("data_root", required=False), Column("class"), Column("type"), Column("model"),
    Column("preset"), Column("seed", "int", 0), Column("epochs", "int", 1),
    _metric("image_auroc"), _metric("pixel_auroc"), _metric("aupro"), _metric("image_f1_max"), _metric("pixel_f1_max"),
    _cost("train_seconds"), _cost("eval_seconds"), _cost("train_images_per_s"), _cost("eval_images_per_s"),
    Column("run_dir", required=False), Column("versions", required=False), Column("finished_at"),
)
COLUMNS: tuple[str, ...] = tuple(c.name for c in SCHEMA)
# Tables written before the data folder became part of a cell's identity: read, data_root left empty.
LEGACY_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c != "data_root")


@dataclass
class TableRead:
    """The good rows of a results table (typed by :data:`SCHEMA`) and one sentence per refused row."""

    rows: pd.DataFrame
    problems: list[str]


def read_text(path: Path) -> str:
    """The table's text (a UTF-8 byte-order mark, as spreadsheet programs write, is dropped); AnovitError
    naming the file when it is not UTF-8 (e.g. Latin-1 or binary)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise AnovitError(
            f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); a results table is "
            "the UTF-8 CSV that `python -m anovit benchmark` writes: re-save it as UTF-8 or pass another file"
        ) from None


def check_header(path: Path, header: list[str] | None, allowed: tuple[tuple[str, ...], ...]) -> None:
    """AnovitError naming the file and its columns unless ``header`` is one of ``allowed``."""
    if tuple(header or ()) not in allowed:
        raise AnovitError(f"{path} has columns {header}; expected {list(COLUMNS)} "
                          "(move it aside or pass another results file)")


def _records(path: Path, text: str) -> tuple[list[str], list[int], list[list[str]], list[str]]:
    """Header, then line number and fields of every well-formed record, and the problems of the others."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    check_header(path, header, (COLUMNS, LEGACY_COLUMNS))
    lines, records, problems = [], [], []
    start = reader.line_num + 1
    for fields in reader:
        line, start = start, reader.line_num + 1
        if not any(f.strip() for f in fields):
            continue  # a blank line
        if any("\x00" in f for f in fields):
            problems.append(f"line {line}: contains a NUL byte (a damaged file); row left out")
        elif len(fields) != len(header):
            problems.append(f"line {line}: {len(fields)} fields where the header has {len(header)} (an unquoted "
                            "comma in a value, or a row cut short); row left out")
        else:
            lines.append(line)
            records.append(fields)
    return header, lines, records, problems


def _check_column(column: Column, raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(typed values, bool mask of bad rows) of one column."""
    empty = raw.str.strip() == ""
    if column.kind == "text":
        return raw.where(~empty, ""), empty & column.required
    values = pd.to_numeric(raw.where(~empty), errors="coerce").astype(float)
    bad = (values.isna() & ~empty) | ~np.isfinite(values.fillna(0.0))
    if column.kind == "int":
        bad |= values.notna() & (values != values.round())
    if column.minimum is not None:
        bad |= values < column.minimum
    if column.maximum is not None:
        bad |= values > column.maximum
    bad |= empty & column.required
    return (values.round().astype("Int64") if column.kind == "int" else values), bad


def read_table(path: Path) -> TableRead:
    """The rows of the results table at ``path`` that match :data:`SCHEMA`, and the refused rows' problems.

    An empty or missing file gives no rows. Raises AnovitError for a non-UTF-8 file or a foreign header.
    """
    path = Path(path)
    empty = pd.DataFrame({c.name: pd.Series(dtype="Int64" if c.kind == "int" else float if c.kind == "number"
                                            else object) for c in SCHEMA})
    if not path.is_file() or path.stat().st_size == 0:
        return TableRead(empty, [])
    header, lines, records, problems = _records(path, read_text(path))
    raw = pd.DataFrame(records, columns=header, dtype=str, index=lines)
    if "data_root" not in raw:
        raw.insert(1, "data_root", "")
    typed, bad_any = {}, pd.Series(False, index=raw.index)
    messages: dict[int, list[str]] = {}
    for column in SCHEMA:
        typed[column.name], bad = _check_column(column, raw[column.name])
        bad_any |= bad
        for line in raw.index[bad]:
            messages.setdefault(line, []).append(f"{column.name} {raw.at[line, column.name]!r} is not {column.expected()}")
    problems += [f"line {line}: " + "; ".join(found) + "; row left out" for line, found in messages.items()]
    problems.sort(key=lambda p: int(p.split(":")[0].removeprefix("line ")))
    rows = pd.DataFrame(typed)[~bad_any].reset_index(drop=True)
    return TableRead(rows if len(rows) else empty, problems)
