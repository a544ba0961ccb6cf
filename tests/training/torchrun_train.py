"""``torchrun ... tests/torchrun_train.py A --then B``: ``anovit train A`` then ``anovit train B`` in the same
processes (one process group; the test of data-parallel resume launches torchrun once, not twice)."""

import sys

from anovit.cli.main import main

if __name__ == "__main__":
    args, runs = sys.argv[1:], [[]]
    for arg in args:
        runs.append([]) if arg == "--then" else runs[-1].append(arg)
    for run in runs:
        code = main(run)
        if code:
            raise SystemExit(code)
