"""The guide's reference lessons on both kernels, side by side (issue 21, docs/lessons.md): the
little-endian client's (the lab host's kernel) and the PowerPC guest's own Linux 6.1 (big-endian,
emulated). The same commands, and the same assertions: what each kernel really does."""

from __future__ import annotations

import json

import pytest

from lab_tests.batch import Case

KERNELS = ["le", "guest"]


def sockopts_case(position: str, host: str) -> Case:
    return Case(position, ("sockopts", host, "--json"))


def backlog_case(position: str, backlog: int) -> Case:
    return Case(position, ("backlog", "--backlog", str(backlog), "--connections", "20",
                           "--timeout", "2", "--json"))


def seen(result) -> dict:
    assert result.returncode == 0, str(result)
    return json.loads(result.stdout)


@pytest.mark.parametrize("case", [sockopts_case(k, h) for k in KERNELS for h in ("127.0.0.1", "::1")],
                         ids=lambda c: f"{c.position}-{c.argv[1]}")
def test_both_kernels_double_the_buffers_and_the_accepted_socket_inherits(results, case):
    options = seen(results[case])
    assert ("ppc64" in options["kernel"]) == (case.position == "guest"), options["kernel"]
    for where in ("listener", "client", "accepted"):
        assert options[where]["SO_RCVBUF"] == 2 * options["set"]["SO_RCVBUF"], options
        assert options[where]["SO_SNDBUF"] == 2 * options["set"]["SO_SNDBUF"], options
    assert options["accepted"] == options["listener"], options


@pytest.mark.parametrize("case", [backlog_case(k, 10) for k in KERNELS], ids=lambda c: c.position)
def test_both_kernels_queue_backlog_plus_one_and_refuse_nobody(results, case):
    """Both kernels queue 11 for listen(10) and refuse nobody. On the emulated guest more
    connect()s complete than are queued (SYNs answered before the queue filled, their ACKs then
    dropped: lessons.backlog); the little-endian kernel finishes each loopback handshake inside
    connect(), so there exactly 11 complete and 9 wait."""
    queue = seen(results[case])
    assert (queue["accept_queue"], queue["ss_send_q"], queue["refused"]) == (11, 10, 0), queue
    assert queue["completed"] >= 11 and queue["completed"] + queue["waiting"] == 20, queue
    if case.position == "le":
        assert (queue["completed"], queue["waiting"]) == (11, 9), queue


@pytest.mark.parametrize("case", [backlog_case(k, 30) for k in KERNELS], ids=lambda c: c.position)
def test_negative_control_a_larger_backlog_completes_all_on_both_kernels(results, case):
    queue = seen(results[case])
    assert (queue["completed"], queue["waiting"]) == (20, 0), queue
