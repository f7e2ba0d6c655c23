"""A service that cannot start fails `docker compose up --wait` at once, naming itself (issue 20).

The lab starts in parallel where it can (the guest boots beside the router and the server, each
demo waits for the server itself), so a failure must not hide behind a service still starting.
Each test brings the session's lab up again with one service broken by an override file (only
that service, and what depends on it, is recreated), reads compose's verdict, and then brings the
lab back as it was. Its negative control is the restore itself: the same `up --wait` without the
override succeeds.
"""

import subprocess
import time

import pytest

from lab_tests import topology
from lab_tests.harness import REPO

#: A failure shows within this long (the lab's own `up` takes ~10 s warm); the wait is a
#: deadline for a hung `up`, not a measure: the time taken is printed.
DEADLINE = 120


def up(lab, *files: str) -> tuple[subprocess.CompletedProcess, float]:
    argv = [*lab.compose.compose_command_property]
    for path in files:
        argv += ["-f", path]
    argv += ["up", "-d", "--wait", *(lab.compose.services or [])]
    started = time.monotonic()
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=DEADLINE, check=False)
    return out, time.monotonic() - started


@pytest.fixture
def broken(lab, tmp_path):
    """Write an override file; afterwards bring the session's lab back without it."""
    def write(text: str) -> str:
        path = tmp_path / "broken.yaml"
        path.write_text(text)
        return str(path)

    yield write
    restored, took = up(lab)
    lab.forget("server", "peer", "client-ppc")  # recreated
    assert restored.returncode == 0, f"the lab did not come back ({took:.1f} s):\n{restored.stderr}"


def test_a_server_whose_start_fails_fails_the_up_naming_itself(lab, broken):
    out, took = up(lab, broken('services:\n  server:\n    command: ["sh", "-c", "echo broken on purpose; exit 1"]\n'))
    print(f"up --wait failed after {took:.1f} s: {out.stderr.strip().splitlines()[-1:]}")
    assert out.returncode != 0, out.stderr
    assert f"{topology.project()}-server-1" in out.stderr, out.stderr
    assert "broken on purpose" in lab.logs("server")


@pytest.mark.guest
def test_a_guest_without_its_kernel_fails_the_up_naming_itself(lab, broken):
    out, took = up(lab, broken("services:\n  client-ppc:\n    environment:\n"
                               "      SOCKETLAB_GUEST_DIR: /nonexistent\n"))
    print(f"up --wait failed after {took:.1f} s: {out.stderr.strip().splitlines()[-1:]}")
    assert out.returncode != 0, out.stderr
    assert f"{topology.project()}-client-ppc-1" in out.stderr, out.stderr
    assert "/nonexistent" in lab.logs("client-ppc")
