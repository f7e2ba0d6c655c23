#!/usr/bin/env python3
"""How long the conformance suite takes: each role through both positions, on a warm lab.

    python3 benchmarks/conformance.py [--program guide-style|socketlab] [--role ROLE]...

Prints numbers; it is not a test (nothing is asserted; lab_tests/guest/test_conformance.py
proves the verdicts). It brings the lab up if it is not running (as `make conform` does), then
runs every case of each role, both positions side by side, against socketlab's own programs
(the default) or the guide-style ones, and prints the wall time per role and in all.
Targets (issue 16): one role through both positions <= 90 s on a warm lab; all six <= 5 min.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab_tests.conform import cases as suite  # noqa: E402
from lab_tests.conform import runner  # noqa: E402
from lab_tests.guest.test_conformance import GUIDE_STYLE, SOCKETLAB, guide  # noqa: E402
from lab_tests.harness import ARTIFACTS, REPO  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--program", choices=("socketlab", "guide-style"), default="socketlab")
    parser.add_argument("--role", action="append", choices=suite.ROLES)
    args = parser.parse_args()
    runner.ensure_lab(runner.POSITIONS, print)
    total = time.monotonic()
    for role in args.role or suite.ROLES:
        folder, command = (REPO / "services", SOCKETLAB[role]) if args.program == "socketlab" else (
            GUIDE_STYLE, guide(role))
        opts = runner.validate(role, str(folder), command, out=str(ARTIFACTS / "bench-conformance" / role))
        started = time.monotonic()
        report = runner.conform(opts, say=lambda line: None)
        tally = {}
        for case in report["cases"]:
            tally[case["verdict"]] = tally.get(case["verdict"], 0) + 1
        print(f"{args.program} {role}: {len(report['cases'])} verdicts "
              f"({', '.join(f'{n} {v}' for v, n in sorted(tally.items()))}) in "
              f"{time.monotonic() - started:.1f} s (target <= 90 s)", flush=True)
    print(f"{args.program}, {len(args.role or suite.ROLES)} roles: {time.monotonic() - total:.1f} s "
          f"(target for all six <= 300 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
