"""The fault tests' own checks can fail (lab_tests/faults.py, lab_tests/clientloop.py).

The lab fault tests pass when clients fail cleanly; these show that the checks they rely on
reject every way of failing badly (a traceback, two lines, no errno name, an error the fault
cannot cause, a client past its deadline, a hung client, a wrong answer, a fault nobody saw,
service that never came back), and that the line format they expect is the one
socketlab's own error table produces (so the two cannot drift apart silently).
"""

import errno
import json
import socket
import sys

import pytest

from lab_tests import clientloop, guide
from lab_tests.clientloop import Run
from lab_tests.topology import APP_PORT, SERVER_V4
from lab_tests.faults import RING, SLACK, check_runs, outcome, resumed
from socketlab.errors import classify


TARGET = f"talking to {SERVER_V4} port {APP_PORT}"


def failed(stderr: str, rc=1, elapsed=0.5, start=10.0) -> Run:
    return Run(0, start, start + elapsed, elapsed, rc, "", stderr)


def ok(start=20.0, elapsed=0.1, answer=RING) -> Run:
    return Run(0, start, start + elapsed, elapsed, 0, f"Got result: {answer}\n", "")


@pytest.mark.parametrize("exc, expected", [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "refused"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "reset"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
    (OSError(errno.ENETUNREACH, "Network is unreachable"), "network-unreachable"),
    (TimeoutError(errno.ETIMEDOUT, "exchange not finished within 2 s"), "timeout"),
    (socket.timeout("timed out"), "timeout"),  # Python's own timeout: ETIMEDOUT all the same
], ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_the_package_lines_are_the_lines_the_checks_expect(exc, expected):
    line = f"socketlab: {classify(exc).line(TARGET)}\n"
    assert outcome(failed(line)) == expected


@pytest.mark.parametrize("run, why", [
    (failed("Traceback (most recent call last):\n  File ...\nConnectionRefusedError: [Errno 111]\n"),
     "traceback"),
    (failed(f"socketlab: connection refused (ECONNREFUSED) {TARGET}\nsocketlab: again\n"), "one stderr line"),
    (failed(f"socketlab: connection refused {TARGET}\n"), "errno name"),
    (failed("socketlab: protocol error: server closed the connection without a response\n"), "errno name"),
    (failed("", rc=1), "one stderr line"),
    (failed(f"socketlab: timed out (ETIMEDOUT) {TARGET}\n", rc="hung"), "exit 1"),
    (failed(f"socketlab: timed out (ETIMEDOUT) {TARGET}\n", rc=124), "exit 1"),
    (failed(f"socketlab: timed out (ETIMEDOUT) {TARGET}\n", rc=2), "exit 1"),
], ids=["traceback", "two-lines", "no-errno", "not-the-guide", "silent", "hung", "killed", "usage-status"])
def test_outcome_rejects_a_bad_failure(run, why):
    with pytest.raises(AssertionError, match=why):
        outcome(run)


def test_check_runs_rejects_what_a_fault_must_not_cause():
    line = f"socketlab: connection refused (ECONNREFUSED) {TARGET}\n"
    assert check_runs([ok(), failed(line)], 2.0, {"refused"}) == {"ok": 1, "refused": 1}
    with pytest.raises(AssertionError, match="not what this fault causes"):
        check_runs([failed(line)], 2.0, {"timeout"})
    with pytest.raises(AssertionError, match="over its --timeout"):  # the deadline check
        check_runs([failed(f"socketlab: timed out (ETIMEDOUT) {TARGET}\n", elapsed=2.0 + SLACK + 0.01)], 2.0, {"timeout"})
    with pytest.raises(AssertionError, match="over its --timeout"):  # a slow success too
        check_runs([ok(elapsed=2.0 + SLACK + 0.01)], 2.0, {"timeout"})
    with pytest.raises(AssertionError, match="wrong answer"):
        check_runs([ok(answer=guide.MORPHEUS)], 2.0, set())


def test_resumed_needs_a_fault_seen_and_service_back():
    line = f"socketlab: timed out (ETIMEDOUT) {TARGET}\n"
    figures = resumed([ok(start=1.0), failed(line, start=10.0), ok(start=12.0)], fault_at=9.0)
    assert figures["failed_runs"] == 1 and figures["resumed_s"] == pytest.approx(3.1)
    assert figures["lines"] == {"timeout": line.strip()}
    with pytest.raises(AssertionError, match="never seen"):
        resumed([ok(start=1.0), ok(start=12.0)], fault_at=9.0)
    with pytest.raises(AssertionError, match="did not resume"):
        resumed([ok(start=1.0), failed(line, start=10.0)], fault_at=9.0)


def test_clientloop_records_every_run_and_kills_a_hung_one(tmp_path, capsys):
    """The in-container script, run here: a hanging client is killed and recorded as "hung"."""
    stop, progress = tmp_path / "stop", tmp_path / "progress.jsonl"
    code = "import sys, time; print('one line', file=sys.stderr); time.sleep(float(sys.argv[1])); sys.exit(1)"
    for delay, expected in [("0", 1), ("5", "hung")]:
        assert clientloop.main(["--workers", "1", "--interval", "0", "--max-seconds", "0.2", "--kill-after", "0.5",
                                "--stop-file", str(stop), "--progress", str(progress), "--",
                                sys.executable, "-c", code, delay]) == 0
        runs = [Run(**json.loads(line)) for line in capsys.readouterr().out.splitlines()]
        assert runs and all(r.rc == expected and r.stderr == "one line\n" for r in runs), runs
        assert all(r.elapsed < 2 for r in runs), runs  # killed at --kill-after, not waited for
    assert len(progress.read_text().splitlines()) >= 2
