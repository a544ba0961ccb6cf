"""``python -m anovit report``: the benchmark's results beside the paper's tables, as report.md and report.csv."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..evaluation.benchmark import default_results_path
from ..utils.errors import AnovitError
from ..runs.provenance import default_counted
from ..report.tables import collect_results
from ..report.render import write_report
from ..runs.catalog import default_checkpoint_dir, list_runs


def add_report_parser(sub: Any) -> None:
    """Register ``python -m anovit report``."""
    p = sub.add_parser("report", help="benchmark results beside the paper's Tables 1-5 (writes report.md, report.csv)")
    p.add_argument("--results", type=Path, help="results table (default: $ANOVIT_RESULTS or results/benchmark.csv)")
    p.add_argument("--output-dir", type=Path, help="where report.md and report.csv go (default: the table's folder)")
    p.add_argument("--with-runs", action="store_true",
                   help="also include evaluated run folders directly under the checkpoints folder")
    p.set_defaults(func=_cmd_report)


def _cmd_report(args: argparse.Namespace) -> int:
    results = args.results or default_results_path()
    df = collect_results(results, list_runs() if args.with_runs else ())
    for problem in df.attrs["left_out"] + df.attrs["repeated"]:
        print(f"warning: {problem}", file=sys.stderr)
    if df.empty:
        if args.with_runs:
            raise AnovitError(f"no results in {results} and no evaluated run folder in {default_checkpoint_dir()}: "
                              "run `python -m anovit benchmark` or `python -m anovit evaluate RUN` first")
        raise AnovitError(f"no results in {results}: run `python -m anovit benchmark` first, or pass --with-runs "
                          f"to report the evaluated run folders in {default_checkpoint_dir()}")
    counted = default_counted(df)
    left_out, repeated = df.attrs["left_out"], df.attrs["repeated"]
    df = df[counted].reset_index(drop=True)
    df.attrs.update(left_out=left_out, repeated=repeated, not_counted=int((~counted).sum()))
    sources = [str(results.resolve())] if results.is_file() else []
    if args.with_runs:
        sources.append(f"evaluated run folders in {default_checkpoint_dir().resolve()}")
    md, csv = write_report(df, args.output_dir or results.parent, source=" and ".join(sources))
    print(md.read_text())
    print(f"wrote {md} and {csv}")
    return 0
