"""The seeded bugs' switch, shared by the guide-style programs: an optional first argument
``--bug NAME``, taken out of sys.argv before the program reads its own arguments."""

import sys


def take_bug(bugs, usage):
    """The NAME of ``--bug NAME`` (one of BUGS), or None; a wrong one prints USAGE, exit 2."""
    if len(sys.argv) < 2 or sys.argv[1] != "--bug":
        return None
    if len(sys.argv) < 3 or sys.argv[2] not in bugs:
        print(usage)
        sys.exit(2)
    bug = sys.argv[2]
    del sys.argv[1:3]
    return bug
