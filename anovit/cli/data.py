"""``python -m anovit data list|check|download``: the dataset registry, folder checks and downloads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..data.paths import default_data_dir
from ..data.registry import REGISTRY
from ..utils.progress import TerminalBar


def add_data_parser(sub: Any) -> None:
    """Register the ``data`` subcommand and its own subcommands on `sub`."""
    p = sub.add_parser("data", help="datasets: list them, check a folder, download one")
    dsub = p.add_subparsers(dest="data_command", required=True)

    ls = dsub.add_parser("list", help="every dataset with classes, masks, protocol, source and licence")
    ls.add_argument("dataset", nargs="?", choices=list(REGISTRY), help="details of one dataset (its categories)")
    ls.set_defaults(func=_cmd_list)

    check = dsub.add_parser("check", help="validate a dataset folder (MVTec AD, good/bad image folder, VisA or "
                                          "MVTec 3D-AD); exit status 1 when it has errors")
    check.add_argument("root", type=Path, help="a dataset root (holding category folders) or one category folder")
    check.add_argument("--quick", action="store_true", help="read image headers only instead of every pixel")
    check.add_argument("--json", type=Path, help="also write the report to this JSON file")
    check.set_defaults(func=_cmd_check)

    down = dsub.add_parser("download", help="fetch a dataset (checksums verified, resumable, safe extraction)")
    down.add_argument("dataset", choices=[n for n, s in REGISTRY.items() if s.downloadable])
    down.add_argument("--root", type=Path, help="target folder (default: <data dir>/<dataset>); "
                                                "pass the same folder to train as --data-root")
    down.add_argument("--category", nargs="+", help="MVTec AD: only these categories (default: all 15, "
                                                    "from the full archive)")
    down.add_argument("--url", help="MVTec AD: the full archive's link if MVTec has moved it (SHA-256 still checked)")
    down.add_argument("--keep-archive", action="store_true", help="MVTec AD, VisA: keep the archive after extraction")
    down.set_defaults(func=_cmd_download)


def _cmd_list(args: argparse.Namespace) -> int:
    from ..data.registry import flip_rule

    if args.dataset is None:
        for spec in REGISTRY.values():
            classes = ", ".join(spec.classes) if spec.classes else "the category folders under --data-root"
            print(f"{spec.name}: {spec.title}\n  classes   {classes}\n  masks     {'yes' if spec.has_masks else 'no'}"
                  f"\n  protocol  {spec.protocol}\n  source    {spec.source}\n  licence   {spec.licence}\n")
        return 0
    spec = REGISTRY[args.dataset]
    print(f"{spec.name}: {spec.title} ({spec.licence})\n{spec.protocol}\nsource: {spec.source}\n")
    from ..data import category_kind

    for key, label in zip(spec.classes or (), spec.class_names or ()):
        hflip, vflip, why = flip_rule(spec.name, key)
        kind = category_kind(spec.name, key)
        name = key if key == label else f"{key} ({label})"
        print(f"  {name:<16} {kind or '':<8} hflip {'on ' if hflip else 'off'}  vflip {'on ' if vflip else 'off'}"
              f"  {why}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from ..data.check import check_tree
    from ..data.check_report import format_report

    bar = TerminalBar("check")
    try:
        report = check_tree(args.root, decode=not args.quick, progress=bar)
    finally:
        bar.close()
    print(format_report(report))
    if args.json:
        args.json.write_text(json.dumps(report.to_dict(), indent=2))
        print(f"wrote {args.json}")
    return 1 if report.errors else 0


def _cmd_download(args: argparse.Namespace) -> int:
    if args.dataset == "mvtec":
        root = args.root or default_data_dir() / "mvtec"
        from ..data.mvtec_ad import LICENCE, download_mvtec

        print(f"MVTec AD is licensed {LICENCE}.")
        bar, ebar = TerminalBar("download", "B", scale=True), TerminalBar("extract", "file")
        try:
            installed = download_mvtec(root, args.category, url=args.url, keep_archive=args.keep_archive,
                                       progress=bar, extract_progress=ebar)
        finally:
            bar.close()
            ebar.close()
        done = ", ".join(installed) if installed else "nothing to do, every category was complete"
        print(f"installed: {done}\nuse: --dataset mvtec --data-root {root}")
        return 0
    if args.dataset == "visa":
        return _download_visa(args.root or default_data_dir() / "visa", args.keep_archive)
    from ..data.torchvision_sets import labelled_set, load_pools

    train_x, _, test_x, _ = load_pools(args.dataset, args.root)
    print(f"{labelled_set(args.dataset).title}: {len(train_x)} train and {len(test_x)} test images ready"
          + (f"\nuse: --dataset {args.dataset} --data-root {args.root}" if args.root else ""))
    return 0


def _download_visa(root: Path, keep_archive: bool) -> int:
    from ..data.visa import LICENCE, download_visa

    print(f"VisA is licensed {LICENCE}.")
    bar, ebar = TerminalBar("download", "B", scale=True), TerminalBar("extract", "file")
    try:
        installed = download_visa(root, keep_archive=keep_archive, progress=bar, extract_progress=ebar)
    finally:
        bar.close()
        ebar.close()
    print(f"installed: {', '.join(installed) if installed else 'nothing to do, every class was there'}\n"
          f"use: --dataset visa --data-root {root}")
    return 0
