"""``python -m anovit hub push|pull``: the command line of :mod:`anovit.hub.repo`."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..hub.repo import CARD, pull, push, stage_repo, validate_repo_id


def add_hub_parser(sub: Any) -> None:
    """Register ``hub push`` and ``hub pull`` with the CLI's subparsers."""
    p = sub.add_parser("hub", help="publish checkpoints to / pull them from the Hugging Face Hub")
    hub = p.add_subparsers(dest="hub_command", required=True)
    push_p = hub.add_parser("push", help="publish a run folder as a model repo (with a generated model card)")
    push_p.add_argument("checkpoint", type=Path, help="run folder (model.safetensors + config.json)")
    push_p.add_argument("--repo-id", required=True, help="ORG/NAME of the model repo (created if needed)")
    push_p.add_argument("--private", action="store_true", help="create the repo as private")
    push_p.add_argument("--license", default="other", help="licence id for the model card (default: %(default)s)")
    push_p.add_argument("--message", help="commit message")
    push_p.add_argument("--dry-run", action="store_true", help="print the files and the model card; upload nothing")
    push_p.set_defaults(func=_cmd_push)
    pull_p = hub.add_parser("pull", help="download ORG/NAME[@revision] into checkpoints/ (works offline from the cache)")
    pull_p.add_argument("repo", help="ORG/NAME or ORG/NAME@revision")
    pull_p.add_argument("--output", type=Path, help="run folder (default: checkpoints/ORG--NAME)")
    pull_p.set_defaults(func=_cmd_pull)


def _cmd_push(args: argparse.Namespace) -> int:
    if args.dry_run:
        repo_id = validate_repo_id(args.repo_id)
        with tempfile.TemporaryDirectory() as tmp:
            files = stage_repo(args.checkpoint, Path(tmp), repo_id=repo_id, license=args.license)
            print(f"would upload to {repo_id}: {', '.join(files)}\n")
            sys.stdout.write((Path(tmp) / CARD).read_text(encoding="utf-8"))
        return 0
    url = push(args.checkpoint, args.repo_id, private=args.private, license=args.license, commit_message=args.message)
    print(f"published {args.checkpoint} to {url}")
    return 0


def _cmd_pull(args: argparse.Namespace) -> int:
    dest = pull(args.repo, args.output, progress=lambda fraction, message: print(message, file=sys.stderr))
    print(f"pulled {args.repo} into {dest}")
    return 0
