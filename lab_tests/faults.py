"""What the fault tests (lab_tests/lab/test_faults.py, lab_tests/guest/test_guest_faults.py)
assert about every client run of lab_tests/clientloop.py: the guide's one line, the deadline,
the exact answer, and when service resumed."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

from lab_tests import guide
from lab_tests.clientloop import Run
from lab_tests.topology import APP_PORT, SERVER_V4

SERVER, PORT = SERVER_V4, APP_PORT
RING = guide.RING

#: Seconds a client process may run past its --timeout: Python starting (~0.2 s here) and
#: exiting, on 2 busy cores. A client that only bounds each call (connect, then recv) takes
#: longer than this as soon as two calls each use most of T (test_timeout_bounds_...).
SLACK = 1.0

#: outcome -> the guide's words and errno name, as the one stderr line must say them.
GUIDE = {
    "refused": r"connection refused \(ECONNREFUSED\)",
    "timeout": r"timed out \(ETIMEDOUT\)",
    "reset": r"connection reset by peer \(ECONNRESET\)",
    "unreachable": r"no route to host \(EHOSTUNREACH\)",
    "network-unreachable": r"network is unreachable \(ENETUNREACH\)",
    "broken-pipe": r"broken pipe \(EPIPE\)",
}
LINE = re.compile(r"socketlab: (?:%s)(?: |$)" % "|".join(f"(?P<{k.replace('-', '_')}>{v})" for k, v in GUIDE.items()))


def app_client(host: str = SERVER, timeout: float = 2.0) -> list[str]:
    return ["socketlab", "app-client", host, str(PORT), "search", "ring", "--quiet",
            "--timeout", f"{timeout:g}"]


def outcome(run: Run) -> str:
    """The guide's outcome a failed run reported; AssertionError unless it is one clean line."""
    assert run.rc == 1, f"a failing client must exit 1 (not hang, not crash): {run}"
    assert "Traceback" not in run.stderr, f"traceback instead of one line: {run}"
    lines = run.stderr.splitlines()
    assert len(lines) == 1, f"a failing client must print exactly one stderr line: {run}"
    match = LINE.match(lines[0])
    assert match, f"not the guide's error in its words and errno name: {run}"
    return next(name for name, value in match.groupdict().items() if value).replace("_", "-")


def within_deadline(elapsed: float, timeout: float) -> bool:
    return elapsed <= timeout + SLACK


def check_runs(runs: list[Run], timeout: float, allowed: set[str], answer: str = RING) -> Counter:
    """Every run: one clean line if it failed (an allowed outcome), exact if it succeeded,
    never past its deadline. Returns the outcomes seen (``ok`` for successes)."""
    seen = Counter()
    for run in runs:
        assert within_deadline(run.elapsed, timeout), \
            f"client ran {run.elapsed:.2f} s, over its --timeout {timeout:g} s + {SLACK} s: {run}"
        if run.ok:
            assert run.stdout.strip() == f"Got result: {answer}", f"wrong answer: {run}"
            seen["ok"] += 1
        else:
            name = outcome(run)
            assert name in allowed, f"{name!r} is not what this fault causes ({sorted(allowed)}): {run}"
            seen[name] += 1
    return seen


def successes(runs: list[Run], after: float = 0.0) -> int:
    return sum(1 for r in runs if r.ok and r.start > after)


def resumed(runs: list[Run], fault_at: float) -> dict:
    """When the clients saw the fault and when they were served again (seconds after fault_at)."""
    failed = [r for r in runs if not r.ok and r.end > fault_at]
    assert failed, "no client failed: the fault was never seen, so this test proved nothing"
    last_failure = max(r.start for r in failed)
    back = [r for r in runs if r.ok and r.start > last_failure]
    assert back, "no client succeeded after the fault: service did not resume by itself"
    first_ok = min(back, key=lambda r: r.end)
    return {
        "failed_runs": len(failed),
        "first_failure_s": round(min(r.end for r in failed) - fault_at, 2),
        "resumed_s": round(first_ok.end - fault_at, 2),
        "lines": {outcome(r): r.stderr.strip() for r in reversed(failed)},  # one per outcome
    }


def report(record_testsuite_property, name: str, figures: dict) -> None:
    print(f"\n{name}: " + json.dumps(figures, ensure_ascii=False))
    for key, value in figures.items():
        record_testsuite_property(f"{name}.{key}", value)


class RouterRules:
    """nft rules inserted at the head of the router's forward chain (before the firewall's
    accepts) while in use, then deleted by their handles. ``at``: when they went in.

    ``rules`` is what follows ``insert rule inet socketlab forward``; several rules are joined
    with ``; insert rule inet socketlab forward``, ``count`` says how many handles to expect.
    """

    def __init__(self, lab, rules: str, count: int = 1) -> None:
        self.lab, self.rules, self.count, self.handles = lab, rules, count, []

    def __enter__(self) -> "RouterRules":
        result = self.lab.root("router", "nft", "-e", "-a", "insert rule inet socketlab forward " + self.rules)
        assert result.returncode == 0, str(result)
        self.handles = re.findall(r"# handle (\d+)", result.stdout)
        assert len(self.handles) == self.count, str(result)
        self.at = time.time()
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            result = self.lab.root("router", "nft", "delete", "rule", "inet", "socketlab", "forward",
                                   "handle", handle)
            assert result.returncode == 0, str(result)
        self.handles = []
