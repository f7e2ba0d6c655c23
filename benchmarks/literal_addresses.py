#!/usr/bin/env python3
"""How many literal lab addresses the tree holds outside their homes (issue 18's third number).

    python3 benchmarks/literal_addresses.py [--all]

Counts, in every file git tracks, the literal lab addresses (in the test-bed ranges,
lab_tests/topology.py's TEST_BEDS, with or without a prefix length) outside their homes: the
scheme (lab_tests/topology.py, the one place the prefixes are written), what it generates
(labs/, by `make docs`), the Compose lab (compose.yaml and lab.yaml, lab 0's in comments) and
the address-plan page (docs/address-plan.md). Prints the files by count (the first 25, or
all with --all), then the totals for code (what runs: images, scripts, tests) and for the other
docs (lab 0's addresses in examples and captured listings). Goal (issue 18): 0 in code, so that
every instance runs the same code. Prints numbers; asserts nothing.
"""

import argparse
import re
import subprocess
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOMES = {"compose.yaml", "lab.yaml", "docs/address-plan.md", "lab_tests/topology.py"}
ADDRESS = re.compile(r"\b198\.1[89]\.\d{1,3}\.\d{1,3}\b|\b2001:db8:[0-9a-f:]*[0-9a-f:]", re.I)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="list every file, not the first 25")
    args = parser.parse_args()
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    counts = Counter()
    for name in files:
        if name in HOMES or name.startswith("labs/"):
            continue
        try:
            text = (REPO / name).read_text()
        except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
            continue  # binary files (pcaps, images) and files deleted but not yet committed
        found = len(ADDRESS.findall(text))
        if found:
            counts[name] = found
    shown = counts.most_common() if args.all else counts.most_common(25)
    for name, found in shown:
        print(f"{found:5d}  {name}")
    if len(shown) < len(counts):
        print(f"  ... {len(counts) - len(shown)} more files (--all)")
    docs = Counter({name: n for name, n in counts.items() if name.endswith(".md")})
    code = counts - docs
    print(f"literal lab addresses outside {', '.join(sorted(HOMES))} and labs/: {sum(counts.values())} "
          f"in {len(counts)} files; in code {sum(code.values())} in {len(code)} files (goal 0), "
          f"in docs {sum(docs.values())} in {len(docs)} files")


if __name__ == "__main__":
    main()
