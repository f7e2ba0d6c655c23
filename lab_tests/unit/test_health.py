"""The lab's paced health checks (services/hosts/paced-check.sh, docs/lab.md): quick until a
service is first healthy; then a probe stays and checks every S seconds, N times, and ends
at once when a check fails. Run here with a counting check and S a tenth of a second; and
lab.yaml's `timeout`s are held to the probe's length (a probe Docker kills is a failure).
The server's own check (services/hosts/healthcheck-server.sh) runs here against sockets of the
test's own."""

import copy
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from lab_tests import topology

PACED = Path(__file__).resolve().parents[2] / "services" / "hosts" / "paced-check.sh"


def probe(tmp_path, *, fails=(), rounds: int = 3, tries: int = 40, script: Path = PACED, check: str | None = None):
    """One probe whose check records each run and fails on the runs numbered in ``fails``
    (counted over the test's probes). Returns (exit status, runs so far, whether the service is
    marked healthy)."""
    runs = tmp_path / "runs"
    check = check or f'echo run >> {runs}; case " {" ".join(map(str, fails))} " in *" $(wc -l < {runs}) "*) exit 3;; esac'
    out = subprocess.run(
        ["sh", str(script), "--every", "0.1", "--rounds", str(rounds), "--tries", str(tries), "--limit", "1",
         "--as-root", "sh", "-c", check],
        env={"PATH": "/usr/bin:/bin", "PACED_CHECK_MARK": str(tmp_path / "mark")},
        capture_output=True, text=True, timeout=60)
    count = len(runs.read_text().splitlines()) if runs.exists() else 0
    return out.returncode, count, (tmp_path / "mark").exists()


def test_the_first_probe_ends_at_the_first_success_and_marks_the_service_healthy(tmp_path):
    assert probe(tmp_path) == (0, 1, True)


def test_while_starting_one_probe_tries_again_until_the_check_passes(tmp_path):
    assert probe(tmp_path, fails={1, 2}) == (0, 3, True)


def test_a_service_that_never_passes_fails_the_probe_after_its_tries(tmp_path):
    assert probe(tmp_path, fails={1, 2, 3}, tries=3) == (3, 3, False)


def test_once_healthy_a_probe_stays_for_its_rounds(tmp_path):
    probe(tmp_path)
    assert probe(tmp_path, rounds=3) == (0, 1 + 3, True)
    assert probe(tmp_path, rounds=2) == (0, 1 + 3 + 2, True)


def test_a_check_that_fails_ends_the_probe_at_once_and_the_next_probe_is_quick(tmp_path):
    probe(tmp_path)
    # the staying probe's second check fails (run 3 of the test): it ends there, not after 5
    assert probe(tmp_path, fails={3}, rounds=5) == (3, 3, False)
    # unmarked: the next probe checks at once, and ends at its first success
    assert probe(tmp_path, rounds=5) == (0, 4, True)


def test_a_check_that_hangs_fails_after_its_limit_whatever_the_probes_stay(tmp_path):
    probe(tmp_path)
    runs = tmp_path / "runs"
    hang = f'echo run >> {runs}; [ "$(wc -l < {runs})" -ne 3 ] || exec sleep 3600'
    started = time.monotonic()
    assert probe(tmp_path, rounds=1000, check=hang) == (124, 3, False)  # `timeout`'s status
    assert time.monotonic() - started < 30  # ended by the 1 s limit, not the hour or the stay
    assert probe(tmp_path, check=hang)[:2] == (0, 4)  # and the next probe is quick


def test_negative_control_a_probe_that_ignores_a_failed_round_goes_red(tmp_path):
    # the bug: a staying probe that runs its rounds without looking at the checks
    broken = tmp_path / "broken.sh"
    broken.write_text(PACED.read_text().replace('    timeout "$limit" "$@" || { status=$?; rm -f "$mark"; exit "$status"; }',
                                                '    timeout "$limit" "$@" || :'))
    assert broken.read_text() != PACED.read_text()
    probe(tmp_path, script=broken)
    status, count, _ = probe(tmp_path, fails={3}, rounds=5, script=broken)
    assert (status, count) != (3, 3)


def paced_probes(config: dict) -> dict[str, tuple[float, float]]:
    """{service: (the longest a probe of it can stay, in s; its timeout)} for every paced check."""
    found = {}
    for name, service in config["services"].items():
        health = service.get("healthcheck")
        if not health or not any("paced-check" in str(word) for word in health["test"]):
            continue
        test = health["test"]
        given = {name: float(test[test.index(f"--{name}") + 1]) if f"--{name}" in test else DEFAULTS[name]
                 for name in DEFAULTS}
        timeout = float(re.fullmatch(r"(\d+)s", health["timeout"]).group(1))
        found[name] = (max(given["every"] * given["rounds"], given["tries"] * 0.25), timeout)
    return found


#: paced-check.sh's own defaults (its `name=value` lines), for a check that does not give them.
DEFAULTS = {name: float(value) for name, value in re.findall(r"(?m)^(every|rounds|tries)=(\d+)$", PACED.read_text())}


#: What a check itself may take, beyond the probe's sleeps (the server's: bash, ss, awk).
CHECK_TIME = 10


def test_every_health_check_is_paced_and_its_timeout_outlasts_the_probe():
    assert set(DEFAULTS) == {"every", "rounds", "tries"}  # read from the script, not assumed
    config = topology.lab_config(0)
    probes = paced_probes(config)
    checked = {name for name, service in config["services"].items() if "healthcheck" in service}
    assert probes and set(probes) == checked
    short = {name: p for name, p in probes.items() if p[1] < p[0] + CHECK_TIME}
    assert not short, f"timeout under the probe's stay + {CHECK_TIME} s: {short}"


def test_negative_control_a_timeout_shorter_than_the_stay_is_found():
    config = copy.deepcopy(topology.lab_config(0))  # the parsed file is cached: not that one
    config["services"]["server"]["healthcheck"]["timeout"] = "33s"
    assert {name for name, (stay, timeout) in paced_probes(config).items()
            if timeout < stay + CHECK_TIME} == {"server"}


# -- the server's check: every port of server.sh listening (services/hosts/healthcheck-server.sh) --

SERVER_CHECK = PACED.parent / "healthcheck-server.sh"


def server_check(tmp_path, ports, *, script: Path = SERVER_CHECK):
    """The server's check, run beside a server.sh that serves ``ports``."""
    (tmp_path / "server.sh").write_text(
        "serve() { :; }\n" + "".join(f"serve {port} app-server '::'\n" for port in ports) + "wait\n")
    check = tmp_path / "healthcheck-server.sh"
    check.write_text(script.read_text())
    return subprocess.run(["sh", str(check)], capture_output=True, text=True, timeout=30)


@pytest.fixture
def listening():
    """Two listening sockets on loopback: their ports."""
    with socket.create_server(("127.0.0.1", 0)) as one, socket.create_server(("::1", 0), family=socket.AF_INET6) as two:
        yield [one.getsockname()[1], two.getsockname()[1]]


def test_the_server_check_passes_when_every_port_listens(tmp_path, listening):
    out = server_check(tmp_path, listening)
    assert (out.returncode, out.stdout) == (0, "")


def test_the_server_check_names_the_port_that_does_not_listen(tmp_path, listening):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening: a port nobody serves
        silent = unused.getsockname()[1]
        out = server_check(tmp_path, [*listening, silent])
    assert (out.returncode, out.stdout) == (1, f"port {silent} not listening\n")


def test_the_server_check_fails_without_a_serve_line(tmp_path):
    out = server_check(tmp_path, [])
    assert out.returncode == 1 and "no `serve PORT` line" in out.stdout


def test_negative_control_a_check_that_ignores_a_silent_port_goes_red(tmp_path, listening):
    broken = tmp_path / "broken.sh"
    broken.write_text(SERVER_CHECK.read_text().replace('failed = 1 }\n        exit', '}\n        exit'))
    assert broken.read_text() != SERVER_CHECK.read_text()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        out = server_check(tmp_path, [*listening, unused.getsockname()[1]], script=broken)
    assert out.returncode == 0  # what the real check refuses (above), the broken one lets by
