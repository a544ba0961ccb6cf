"""One writer per run folder: training takes an exclusive lock on the folder, so a second training
started into the same folder (a second terminal, the app and the CLI) fails at once instead of both
writing and one run being lost.

The lock is the ``filelock`` library's (an OS-level ``flock`` on ``RUN_DIR/.anovit.lock``: released
by the kernel when the process dies, so a killed run never leaves a stale lock). Who holds it
(pid, host, command line, start time) is written beside it in ``.anovit.lock.owner`` so that the
refusal can name the running process.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from ..utils.errors import AnovitError

LOCK = ".anovit.lock"
OWNER = ".anovit.lock.owner"


class RunLockedError(AnovitError):
    """Another process is training into the same run folder."""


def lock_owner(run_dir: Path) -> str:
    """The process holding ``run_dir``'s lock in words ("pid 123 on host, `python -m anovit train`, since ..")."""
    try:
        owner = json.loads((Path(run_dir) / OWNER).read_text())
        return (f"pid {owner['pid']} on {owner['host']} (`{owner['command']}`, started "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(owner['started']))})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its owner file is not written yet)"


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` (created if needed) for the ``with`` block.

    Raises :class:`RunLockedError` naming the folder and the running process when another process
    holds it; never waits.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / LOCK, timeout=0)  # mode: 0666 less the umask
    try:
        lock.acquire()
    except Timeout:
        raise RunLockedError(
            f"{run_dir} is in use by {lock_owner(run_dir)}: wait for that training to finish, stop it, "
            "or pass another --output"
        ) from None
    owner = run_dir / OWNER
    try:
        owner.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "command": " ".join([Path(sys.executable).name, *sys.argv]),
                                     "started": time.time()}))
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()
