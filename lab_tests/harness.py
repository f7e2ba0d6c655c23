"""The container lab as tests use it: :class:`Lab`, :class:`RunResult`, the router's :class:`Capture`.

lab_tests/conftest.py only wires these into fixtures (``lab``, ``capture``) and the tier hook;
lab_tests/batch.py runs many commands in one process of a lab position.

One Compose lab (``compose.yaml``, project ``socketlab``) per test session, built and
started by testcontainers-python's ``DockerCompose`` the first time a test asks for the
``lab`` fixture; tests that do not ask for it (the unit and loopback tiers) never touch
Docker. ``docker compose up --wait`` waits on every service's health check.

Stable API (the cross-endian tests in ``lab_tests/guest`` use exactly this)::

    lab.run(service, *argv, timeout=60, user="socketlab") -> RunResult
        Run argv in the running container of `service` (like ``docker compose exec``).
        RunResult has .stdout and .stderr (str), .returncode (int; 124 when `timeout`
        seconds ran out, the command is then killed), .argv, .elapsed (seconds).
        It never raises on a non-zero exit: assert on .returncode yourself.
    lab.root(service, *argv, timeout=60) -> RunResult
        The same as root (ip, tc, nft, tcpdump, services/router/impair.sh).
    lab.probe(service, host, port, timeout=2.0) -> dict
        ``socketlab probe HOST PORT --timeout T`` in `service`; the parsed JSON line
        (keys: outcome, errno, exception, message, host, port, family, local, peer,
        attempts, elapsed_s). Raises AssertionError if the output is not that JSON line.
    lab.parse_probe(result) -> dict
        The same check and parse for a ``socketlab probe`` RunResult from anywhere
        (e.g. run in the PowerPC guest with guest-exec).
    lab.logs(*services) -> str
        ``docker compose logs`` of those services (all when none given).
    lab.background(service, command, log) -> pid; lab.wait_for_line(service, log, pattern);
    lab.kill(service, pid)
        A program in the background of a service, its own ready line, and its end.
    lab.wait_log(service, pattern, timeout=10.0) -> re.Match
        Polls `service`'s log until the (multi-line) regex matches; AssertionError after
        `timeout` seconds.
    lab.compose
        The testcontainers ``DockerCompose`` object.
    lab.restart(service, timeout=120) -> RunResult
    lab.stop(service, timeout=120) -> RunResult
    lab.start(service, timeout=120) -> RunResult
        ``docker compose restart|stop|start SERVICE`` (the fault tests: a container goes away
        and comes back with the same addresses). They return when Docker has done it; a
        started service is not healthy yet: wait with ``lab.wait_healthy``.
    lab.forget(*services)
        Look these services' containers up again next time: after a test's own ``up``
        replaced them (lab/test_start_failures.py).
    lab.recreate(service, environment=None, timeout=120) -> RunResult
        ``docker compose up -d --no-deps SERVICE`` with ``environment`` added to what
        compose.yaml interpolates (the router's ``IMPAIR_*``): a new container where the
        service's configuration changed. Like ``start``, it returns once started: wait on the
        service's signal. What tests started in the old one is gone (the router's capture:
        ``capture.start()`` again).
    lab.health(service) -> str | None
        The service's health-check status now: "starting", "healthy", "unhealthy" (None:
        no health check, or not running).
    lab.wait_healthy(service, timeout=120) -> float
        Poll the health status until "healthy" (the service's own signal); the seconds it
        took. AssertionError with the service's last log lines after `timeout`.

Every test that uses ``lab`` also gets the autouse ``capture`` fixture: tcpdump runs on
the router (``-i any``: both networks) for the whole session (:class:`Capture`), and the
test's time window of it is kept as ``artifacts/captures/<test>.pcap`` when the test fails
(always with ``SOCKETLAB_KEEP_CAPTURES=1``), and the containers' logs are printed;
``capture.pcap()`` gives a test its packets so far, as a file in the router (for tshark there,
or ``lab.read_file`` and lab_tests/packets.py to decide on the packets with dpkt). At
the end of the session every service's log is written to ``artifacts/logs/<service>.log``.

Environment:
    SOCKETLAB_LAB_SERVICES   services to start (default: router server peer client; every
                             service, the PowerPC guest included, when a collected test is
                             marked ``guest``)
    SOCKETLAB_LAB_BUILD=0    do not rebuild the image (default: build, it is cached)
    SOCKETLAB_LAB_KEEP=1     leave the lab running after the session, and use a running one as
                             it is (for debugging; else a running lab is taken down first)
    SOCKETLAB_REQUIRE_LAB=1  fail instead of skip when Docker is not usable (CI sets it)
    SOCKETLAB_KEEP_CAPTURES=1  keep the pcap of passing tests too
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"
DEFAULT_SERVICES = ("router", "server", "peer", "client")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclasses.dataclass
class RunResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    def __str__(self) -> str:
        command = shlex.join(self.argv)
        command = command if len(command) < 400 else command[:400] + "..."
        return (f"$ {command}\n[exit {self.returncode} after {self.elapsed:.3f} s]\n"
                f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}")


class Lab:
    """The running Compose lab; see the module docstring for the API."""

    def __init__(self, compose) -> None:
        import docker  # a dependency of testcontainers

        self.compose = compose
        self._docker = docker.from_env()
        self._containers: dict[str, object] = {}
        self.capture = Capture(self)

    def container(self, service: str):
        if service not in self._containers:
            info = self.compose.get_container(service)
            self._containers[service] = self._docker.containers.get(info.ID)
        return self._containers[service]

    def run(self, service: str, *argv: str, timeout: float = 60, user: str = "socketlab") -> RunResult:
        argv = tuple(str(a) for a in argv)
        wrapped = ["timeout", "--kill-after=5", f"{timeout:g}", *argv]
        start = time.monotonic()
        code, (out, err) = self.container(service).exec_run(wrapped, user=user, demux=True)
        elapsed = time.monotonic() - start
        return RunResult(argv, code, (out or b"").decode("utf-8", "replace"),
                         (err or b"").decode("utf-8", "replace"), elapsed)

    def root(self, service: str, *argv: str, timeout: float = 60) -> RunResult:
        return self.run(service, *argv, timeout=timeout, user="root")

    def read_file(self, service: str, path: str) -> bytes:
        # The docker CLI, not the SDK's exec_run: its demultiplexing reads a 30 MB capture in
        # ~12 s, the CLI's pipe in well under one.
        done = subprocess.run(["docker", "exec", "-u", "root", self.container(service).id, "cat", path],
                              capture_output=True, check=False, timeout=120)
        assert done.returncode == 0, f"cannot read {path} in {service}: {done.stderr!r}"
        return done.stdout

    def probe(self, service: str, host: str, port: int, timeout: float = 2.0) -> dict:
        return self.parse_probe(self.run(service, "socketlab", "probe", host, str(port),
                                         "--timeout", f"{timeout:g}", timeout=timeout + 30))

    @staticmethod
    def parse_probe(result: RunResult) -> dict:
        """The JSON line of a ``socketlab probe`` run, checked against its exit status."""
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        assert len(lines) == 1, f"probe did not print one JSON line:\n{result}"
        answer = json.loads(lines[0])
        assert (result.returncode == 0) == (answer["outcome"] == "connected"), str(result)
        return answer

    def logs(self, *services: str) -> str:
        out = subprocess.run([*self.compose.compose_command_property, "logs", "--no-color", "--no-log-prefix", *services],
                             cwd=REPO, capture_output=True, text=True, check=False)
        return ANSI.sub("", out.stdout + out.stderr)

    def background(self, service: str, command: str, log: str) -> str:
        """Start ``command`` (a shell line) in ``service`` in the background, its output in
        ``log``, emptied first (the child opens it only after the fork, so a reader could
        otherwise see a previous run's lines); its pid."""
        result = self.run(service, "sh", "-c", f": > {log}; {command} > {log} 2>&1 & echo $!")
        assert result.returncode == 0 and result.stdout.strip().isdigit(), str(result)
        return result.stdout.strip()

    def wait_for_line(self, service: str, log: str, pattern: str, timeout: float = 30.0) -> str:
        """Poll ``log`` in ``service`` until a line matches ``pattern`` (an extended regex: the
        program's own signal); the whole log."""
        result = self.run(service, "sh", "-c",
                          f"for i in $(seq 1 {int(timeout * 10)}); do grep -qE {pattern!r} {log} && "
                          f"cat {log} && exit 0; sleep 0.1; done; cat {log}; exit 1", timeout=timeout + 10)
        assert result.returncode == 0, f"no {pattern!r} in {log}:\n{result}"
        return result.stdout

    def kill(self, service: str, pid: str) -> None:
        """Kill ``pid`` in ``service`` and poll until it is gone (its port is free again)."""
        stopped = self.run(service, "sh", "-c", f"kill {pid}; for _ in $(seq 100); do "
                           f"kill -0 {pid} 2>/dev/null || exit 0; sleep 0.05; done; exit 1")
        assert stopped.returncode == 0, str(stopped)

    def wait_log(self, service: str, pattern: str, timeout: float = 10.0) -> re.Match:
        """The first match of ``pattern`` (multi-line) in ``service``'s log, polled until it
        comes (a program logs after its peer has seen the outcome), or fail."""
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.logs(service), re.M)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in the log of {service} within {timeout:g} s")
            time.sleep(0.2)  # polling for the program's own line, with a deadline
        return found

    def restart(self, service: str, timeout: float = 120) -> RunResult:
        return self._compose_service("restart", service, timeout)

    def stop(self, service: str, timeout: float = 120) -> RunResult:
        return self._compose_service("stop", service, timeout)

    def start(self, service: str, timeout: float = 120) -> RunResult:
        return self._compose_service("start", service, timeout)

    def forget(self, *services: str) -> None:
        """Look these services' containers up again next time (``up`` may have replaced them)."""
        for service in services:
            self._containers.pop(service, None)

    def recreate(self, service: str, environment: dict[str, str] | None = None, timeout: float = 120) -> RunResult:
        self.forget(service)  # a new container, maybe
        return self._compose_service("up", service, timeout, "-d", "--no-deps", environment=environment)

    def _compose_service(self, action: str, service: str, timeout: float, *options: str,
                         environment: dict[str, str] | None = None) -> RunResult:
        argv = (*self.compose.compose_command_property, action, *options, service)
        start = time.monotonic()
        out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False,
                             env={**os.environ, **(environment or {})})
        return RunResult(argv, out.returncode, out.stdout, out.stderr, time.monotonic() - start)

    def health(self, service: str) -> str | None:
        container = self.container(service)
        container.reload()
        state = container.attrs.get("State") or {}
        if not state.get("Running"):
            return None
        return (state.get("Health") or {}).get("Status")

    def wait_healthy(self, service: str, timeout: float = 120) -> float:
        start = time.monotonic()
        while (status := self.health(service)) != "healthy":
            if time.monotonic() - start > timeout:
                tail = "\n".join(self.logs(service).splitlines()[-40:])
                raise AssertionError(f"{service} not healthy after {timeout} s (status {status!r}):\n{tail}")
            time.sleep(0.2)  # polling the health check: the signal, not a guess
        return time.monotonic() - start

    def save_logs(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for container in self.compose.get_containers(include_all=True):
            (directory / f"{container.Service}.log").write_text(self.logs(container.Service))


def docker_usable() -> str | None:
    try:
        subprocess.run(["docker", "compose", "version"], capture_output=True, check=True, timeout=30)
        subprocess.run(["docker", "info"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"Docker with Compose v2 is not usable here ({exc}); run scripts/setup-host.sh"
    return None


class Capture:
    """tcpdump on the router for the whole session; a test's packets are its time window.

    One tcpdump (``-i any``: both networks) writes a ring of files (:data:`RING`: the newest
    traffic, bounded, in the router's tmpfs); it opens the capture as root and then runs as the
    unprivileged user, like every long-running process of the lab. A test's pcap is cut from the
    ring by time (editcap) when it is wanted: when the test failed, or when the test asks
    (:meth:`pcap`). Starting a capture per test cost ~0.3 s of docker exec per test.
    """

    DIR = "/tmp/captures"
    LOG = "/tmp/captures.log"  # root writes it: not in the unprivileged user's folder
    RING = ("-C", "16", "-W", "4")  # 4 files of at most 16 MB: the newest ~64 MB of packets

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.pid: str | None = None

    def running(self) -> bool:
        """Our tcpdump runs: its pid is a tcpdump (in a new router container, the old pid may be
        anybody's)."""
        return bool(self.pid) and self.lab.run("router", "grep", "-qx", "tcpdump", f"/proc/{self.pid}/comm",
                                               timeout=20).returncode == 0

    def start(self) -> None:
        """Start the router's tcpdump unless it runs (the router may have been restarted)."""
        if self.running():
            return
        # A capture this object did not start (a lab kept from an earlier session) would write
        # the same ring: end it, and start from an empty ring.
        self._sh(f"pkill -u socketlab -x tcpdump; "
                 f"for i in $(seq 1 100); do pgrep -u socketlab -x tcpdump >/dev/null || break; sleep 0.05; done; "
                 f"mkdir -p {self.DIR} && rm -f {self.DIR}/ring.pcap*", "cannot clear the router's capture")
        ring = " ".join(self.RING)
        script = (
            # -B: 16 MiB of kernel buffer. With the default (2 MiB) the kernel dropped ~20 % of
            # a demo's packets on `-i any` in immediate mode (tcpdump's own count); none with it.
            f"tcpdump -i any -n -U --immediate-mode -B 16384 -Z socketlab {ring} -w {self.DIR}/ring.pcap "
            f">{self.LOG} 2>&1 & pid=$!; "
            # Readiness: tcpdump says "listening on" once the capture is open.
            f"for i in $(seq 1 100); do grep -q 'listening on' {self.LOG} && break; sleep 0.05; done; "
            f"grep -q 'listening on' {self.LOG} || {{ cat {self.LOG} >&2; exit 1; }}; echo $pid"
        )
        self.pid = self._sh(script, "tcpdump did not start on the router", user="root").stdout.strip()

    def flush(self) -> None:
        """Return once every packet captured so far is in the ring's files: a marker datagram
        sent now on the router's loopback is written after them (tcpdump writes in order)."""
        token = f"socketlab-capture-marker-{uuid.uuid4().hex}"
        script = (
            f"python3 -c \"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
            f".sendto(b'{token}', ('127.0.0.1', 9))\"; "
            # The newest file of the ring: the marker is there (the others may be 16 MB each).
            f"for i in $(seq 1 200); do grep -qa {token} $(ls -t {self.DIR}/ring.pcap* | head -n 1) && exit 0; "
            f"sleep 0.02; done; exit 1"
        )
        self._sh(script, "the router's capture did not write a marker")

    def pcap(self, name: str, since: float, until: float | None = None) -> str:
        """The packets captured from ``since`` to ``until`` (Unix times; None: now) as a pcap in
        the router, ``DIR/<name>.pcap``; its path."""
        self.flush()
        window = f"-A {since:.6f}" + (f" -B {until:.6f}" if until is not None else "")
        path = f"{self.DIR}/{name}.pcap"
        script = (
            f"cd {self.DIR} && rm -f slice-*; "
            # A file of the ring last written before the window holds none of it: not read.
            f"for f in ring.pcap*; do [ $(stat -c %Y $f) -ge {int(since)} ] || continue; "
            f"editcap -F pcap {window} $f slice-$f || exit 1; done; "
            f"mergecap -F pcap -w {shlex.quote(path)} slice-* && rm -f slice-*"
        )
        self._sh(script, f"cannot cut the capture for {name}", timeout=60)
        return path

    def _sh(self, script: str, failure: str, *, timeout: float = 20, user: str = "socketlab") -> RunResult:
        result = self.lab.run("router", "sh", "-c", script, timeout=timeout, user=user)
        assert result.returncode == 0, f"{failure}:\n{result}"
        return result

    def save(self, source: str, destination: Path) -> Path:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(self.lab.read_file("router", source))
        self.lab.run("router", "rm", "-f", source, timeout=20)
        return destination


class CaptureWindow:
    """What the ``capture`` fixture gives a test: its own window of the session's capture."""

    def __init__(self, session: Capture, name: str) -> None:
        self.session = session
        self.name = name
        self.since = time.time()

    def start(self) -> None:
        """Capture again after the router was restarted (its tcpdump went with it)."""
        self.session.start()

    def pcap(self) -> str:
        """This test's packets so far, as a pcap file in the router: its path (for tshark, or
        ``lab.read_file`` and lab_tests/packets.py)."""
        return self.session.pcap(self.name, self.since)
