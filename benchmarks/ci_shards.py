#!/usr/bin/env python3
"""The CI workflow's shards on paper: each shard's test time from a `make test` run's JUnit files.

    python3 benchmarks/ci_shards.py [ARTIFACTS_DIR]     # default: artifacts/

`make test` runs every tier on one machine (two pytest runs side by side); the GitHub workflow
runs them as a matrix, one runner per shard (SHARD=lab, guest, local: scripts/test-tiers.sh).
This reads artifacts/junit-lab.xml and junit-local.xml (each test case's time includes its
fixtures' set-up: the lab's `up` lands in a shard's first test), sorts each case into its shard
by the node ids pytest collects for that shard's marker, and prints each shard's time and the
longest: the sharded workflow's test wall time, before each runner's own set-up (checkout,
venv, the image build from the layer cache). Prints numbers; asserts nothing.
"""

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARDS = {"lab": "lab and not guest", "guest": "guest", "local": "not (lab or guest)"}


def collected(mark: str) -> set[str]:
    """Node ids (as JUnit names them: dotted module, test name) that `-m MARK` selects."""
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", mark,
                          "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True)
    ids = set()
    for line in out.stdout.splitlines():
        path, sep, name = line.partition("::")
        if sep and path.endswith(".py"):
            ids.add((path[:-3].replace("/", "."), name))
    return ids


def main():
    artifacts = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "artifacts"
    cases = {}
    for junit in ("junit-lab.xml", "junit-local.xml"):
        for case in ET.parse(artifacts / junit).iter("testcase"):
            cases[(case.get("classname"), case.get("name"))] = float(case.get("time") or 0)
    times, placed = {}, set()
    for shard, mark in SHARDS.items():
        ids = collected(mark)
        mine = [time for key, time in cases.items() if key in ids]
        placed |= ids & cases.keys()
        times[shard] = sum(mine)
        print(f"  shard {shard:<6} {len(mine):5d} tests  {times[shard]:7.1f} s   (-m \"{mark}\")")
    unsorted = len(cases) - len(placed)
    print(f"  every shard in turn {sum(times.values()):.1f} s; sharded, the longest: "
          f"{max(times.values()):.1f} s ({max(times, key=times.get)}); cases in no shard: {unsorted}")


if __name__ == "__main__":
    main()
