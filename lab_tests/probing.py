"""What a verdict of the router looks like to Python: ``socketlab probe``'s answer, checked.

The lab tier (lab_tests/lab/test_firewall.py) and the cross-endian tier (the same rules from
the PowerPC guest's own stack) both check probes with :func:`check`, and pick the port to
probe for a rule of the ruleset with :func:`probe_port`.
"""

from __future__ import annotations

from lab_tests import topology
from socketlab.errors import Outcome

#: The probe timeout for a rule that answers with ICMP: one SYN's ICMP error may be
#: rate-limited by the router's kernel; the SYN sent again a second later gets its answer.
UNREACHABLE_TIMEOUT = 5.0
#: Each verdict as Python sees it: (exception, errno name, message, the longest it may take,
#: None: the probe's own timeout).
SEEN = {
    Outcome.REFUSED: ("ConnectionRefusedError", "ECONNREFUSED", None, 0.5),  # at once
    Outcome.TIMEOUT: ("TimeoutError", "ETIMEDOUT", None, None),
    Outcome.UNREACHABLE: ("OSError", "EHOSTUNREACH", "No route to host", 4.0),
}
#: Ports the server listens on for every interface (the others are its loopback or one address).
OPEN = {lst.port for lst in topology.server_ports() if lst.host in ("::", "")}


def probe_port(rule: topology.Rule) -> int:
    """The port to probe for ``rule``: one the server answers on, where its range has one."""
    return min((p for p in OPEN if rule.first <= p <= rule.last), default=rule.first)


def seen(rule: topology.Rule) -> Outcome:
    """What a probe of :func:`probe_port` meets: the rule's outcome; but where the router accepts
    a range no server of the lab listens in (the conformance suite's), the server's own
    refusal, the router having let the SYN through."""
    if rule.outcome == Outcome.CONNECTED and not any(rule.first <= p <= rule.last for p in OPEN):
        return Outcome.REFUSED
    return rule.outcome


def probe_timeout(outcome: Outcome, timeout: float) -> float:
    return UNREACHABLE_TIMEOUT if outcome == Outcome.UNREACHABLE else timeout


def check(answer: dict, outcome: Outcome, server: str, port: int, timeout: float) -> None:
    """``answer`` (a probe of ``server`` ``port`` with ``timeout``) is ``outcome``, as Python
    sees it: the peer's address when connected, else the exception, errno and timing."""
    assert answer["outcome"] == outcome, answer
    if outcome == Outcome.CONNECTED:
        assert answer["peer"] == [server, port], answer
        return
    exception, errno_name, message, longest = SEEN[outcome]
    assert (answer["exception"], answer["errno"]) == (exception, errno_name), answer
    if message:
        assert answer["message"] == message, answer
    if longest is None:  # the client's own timeout ran out: no answer came
        assert timeout - 0.05 <= answer["elapsed_s"] <= timeout + 0.5, answer
    else:
        assert answer["elapsed_s"] <= longest, answer
