"""Run the conformance cases against a user's program, in both positions, and write the report.

    python -m lab_tests.conform --role ROLE --program DIR --cmd 'TEMPLATE'
                                [--positions little-endian,big-endian] [--cases 3.1,4.2.1]
                                [--out artifacts/conformance]

(``make conform ROLE=... PROGRAM=... CMD=...`` is this.) Exit status: 0 when no case FAILs,
1 when one does, 2 on bad input (said in one line, before the lab is touched), 3 when the lab
itself could not run the cases. docs/conformance.md is the user's guide; the cases are in
lab_tests/conform/cases.py; the program runs under lab_tests/conform/jail.py and meets
lab_tests/conform/peer.py.

Why not pytest as the runner: a case here has five verdicts, not pass/fail; a FAIL must be
the only thing that makes the exit status non-zero, whatever INFORMATIONAL cases say; the
report (page, JSON, JUnit) is the product, written by the runner. The suite's own tests are
pytest tests that call :func:`conform` (lab_tests/guest/test_conformance.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import io
import json
import os
import shlex
import string
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

from lab_tests import packets as wire
from lab_tests import topology
from lab_tests.conform import cases as suite
from lab_tests.conform import peer
from lab_tests.conform import report as pages
from lab_tests.harness import ARTIFACTS, REPO

HERE = Path(__file__).resolve().parent
JAIL = (HERE / "jail.py").read_text()
PEER = (HERE / "peer.py").read_text()
POSITIONS = ("little-endian", "big-endian")
#: The router accepts a range of ports for the suite (services/router/nftables.conf), cut in
#: three: the ports a server under test may be told (it gets the first with no socket at all on
#: its host, jail.ensure, so it never meets a TIME_WAIT an earlier run left: the guide's echo
#: and multi-connection servers do not set SO_REUSEADDR), and one port per client run in each
#: position: all of a position's servers of the suite listen at once, and the program under
#: test meets them one after the other in one call of the jail (a program start in the guest
#: costs 1-3 s; the jail's own start is not paid again for each run).
_RANGE = list(topology.conformance_ports())
SERVER_PORTS = _RANGE[:8]
PEER_PORTS = {"little-endian": _RANGE[8:24], "big-endian": _RANGE[24:40]}
PORT_MARK = "@@PORT@@"  # jail.PORT_MARK: where the port the jail picks goes


def ports_table() -> str:
    """docs/conformance.md's ports (``make docs``)."""
    def span(ports):
        return f"{ports[0]}-{ports[-1]}"
    return "\n".join([
        "| what | ports |", "| --- | --- |",
        f"| a server under test is told one of | {span(SERVER_PORTS)} |",
        *(f"| the suite's servers for a client in the {name} position, one a run | {span(ports)} |"
          for name, ports in PEER_PORTS.items()),
        f"| the router accepts, for the suite | {span(_RANGE)} |",
    ]) + "\n"
SERVER_V4, CLIENT_V4, GUEST_V4 = topology.SERVER_V4, topology.CLIENT_V4, topology.GUEST_V4
#: The exec agent carries a request of at most 1 MiB of JSON: the packed folder, base64.
MAX_PACKED = 700 * 1024
#: Seconds a program in the guest is given on top of a case's deadline (its CPython starts in ~1 s).
GUEST_EXTRA = 5.0
GUEST_PYTHONS = ("python3", "python", "python3.11")
MAX_PACKETS = 400


class BadInput(Exception):
    """One clear line; exit 2."""


class LabFailure(Exception):
    """The lab could not run the cases; exit 3."""


@dataclasses.dataclass
class Options:
    role: str
    program: Path
    template: list
    command: str
    positions: tuple
    selected: str | None
    out: Path


def validate(role: str, program: str, command: str, positions: str = ",".join(POSITIONS),
             selected: str | None = None, out: str | None = None) -> Options:
    """Every check that needs no lab; raises BadInput with the one line to print."""
    if role not in suite.ROLES:
        raise BadInput(f"ROLE must be one of {', '.join(suite.ROLES)} (got {role!r})")
    if not program:
        raise BadInput("PROGRAM is empty: give the folder of the program under test (PROGRAM=DIR)")
    folder = Path(program).expanduser().resolve()
    if not folder.is_dir():
        raise BadInput(f"PROGRAM={program}: no such folder")
    chosen = tuple(p.strip() for p in positions.split(",") if p.strip())
    if not chosen or any(p not in POSITIONS for p in chosen):
        raise BadInput(f"POSITIONS must be {', '.join(POSITIONS)} or both, comma-separated (got {positions!r})")
    try:
        template = shlex.split(command or "")
    except ValueError as exc:
        raise BadInput(f"CMD cannot be split into words: {exc}") from None
    if not template:
        raise BadInput(f"CMD is empty: e.g. CMD='{example(role)}'")
    used = set()
    for word in template:
        try:
            used |= {name for _, name, _, _ in string.Formatter().parse(word) if name is not None}
        except ValueError as exc:
            raise BadInput(f"CMD word {word!r}: {exc} (a literal brace is written {{{{ or }}}})") from None
    allowed = set(suite.PLACEHOLDERS[role]) | set(suite.OPTIONAL.get(role, ()))
    missing = [name for name in suite.PLACEHOLDERS[role] if name not in used]
    if missing:
        raise BadInput(f"CMD lacks {', '.join('{' + m + '}' for m in missing)}, which {role} needs: "
                       f"e.g. CMD='{example(role)}'")
    unknown = sorted(used - allowed)
    if unknown:
        raise BadInput(f"CMD has {', '.join('{' + u + '}' for u in unknown)}, which {role} does not fill "
                       f"(it fills {', '.join('{' + a + '}' for a in sorted(allowed))})")
    check_start(folder, template, chosen)
    if selected and not suite.cases_for(role, selected):
        raise BadInput(f"CASES={selected}: no case of {role} has such an id")
    if "big-endian" in chosen and packed_size(folder) > MAX_PACKED:
        raise BadInput(f"PROGRAM packs to {packed_size(folder)} bytes; the guest takes at most {MAX_PACKED} "
                       f"(leave out what the program does not need, or POSITIONS=little-endian)")
    return Options(role, folder, template, command, chosen, selected,
                   Path(out) if out else ARTIFACTS / "conformance")


def example(role: str) -> str:
    script = role + ".py"
    return "python3 " + script + " " + " ".join("{" + p + "}" for p in suite.PLACEHOLDERS[role])


def check_start(folder: Path, template: list, positions: tuple) -> None:
    """What can be known without the lab about whether the command starts."""
    program = template[0]
    is_python = Path(program).name.startswith("python")
    if "big-endian" in positions and program not in GUEST_PYTHONS:
        raise BadInput(f"CMD starts with {program!r}: the PowerPC guest runs Python programs only "
                       f"(CPython 3.11, standard library and ssl; start CMD with python3), "
                       f"or run POSITIONS=little-endian")
    if "/" in program and not is_python:
        path = (folder / program).resolve()
        if not path.is_file():
            raise BadInput(f"CMD runs {program!r}, which is not a file in PROGRAM ({folder})")
        if not os.access(path, os.X_OK):
            raise BadInput(f"CMD runs {program!r}, which is not executable (chmod +x)")
    if is_python:
        words = template[1:]
        while words and words[0].startswith("-") and words[0] not in ("-m", "-c"):
            words = words[1:]
        if not words:
            raise BadInput(f"CMD runs {program} with no script: e.g. CMD='{program} client.py ...'")
        if words[0] == "-m":
            module = words[1] if len(words) > 1 else ""
            if not module:
                raise BadInput("CMD has -m without a module name")
        elif words[0] != "-c":
            script = words[0]
            if "{" in script:
                raise BadInput(f"CMD's script {script!r} is a placeholder: name the script")
            if not (folder / script).is_file():
                raise BadInput(f"CMD runs {script!r}, which is not a file in PROGRAM ({folder})")


def packed_size(folder: Path) -> int:
    return len(pack(folder))


def pack(folder: Path) -> bytes:
    """PROGRAM as an uncompressed tar (the guest's CPython has no zlib), caches left out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def keep(info):
            parts = Path(info.name).parts
            return None if any(p in ("__pycache__", ".git", ".venv") for p in parts) else info
        tar.add(folder, arcname=".", filter=keep)
    return buffer.getvalue()


# --- the lab ---------------------------------------------------------------------------------------

def compose(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "compose", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def ensure_lab(positions: tuple, say) -> None:
    """Bring the lab up unless the services the run needs are healthy already."""
    wanted = {"router", "server", "client"} | ({"client-ppc"} if "big-endian" in positions else set())
    if healthy(wanted):
        return
    say("conform: the lab is not up: installing what it needs and starting it (docker compose up --wait)")
    setup = subprocess.run([str(REPO / "scripts/setup-host.sh")], cwd=REPO, check=False)
    if setup.returncode != 0:
        raise LabFailure(f"scripts/setup-host.sh failed (exit {setup.returncode})")
    up = compose("up", "-d", "--wait", "--build")
    if up.returncode != 0 or not healthy(wanted):
        raise LabFailure(f"the lab did not come up healthy: {up.stderr.strip()[-2000:]}")


def healthy(services: set) -> bool:
    try:
        ps = compose("ps", "--format", "json", timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if ps.returncode != 0:
        return False
    rows = [json.loads(line) for line in ps.stdout.splitlines() if line.strip().startswith("{")]
    if len(rows) == 1 and ps.stdout.strip().startswith("["):
        rows = json.loads(ps.stdout)
    up = {r["Service"] for r in rows if r.get("State") == "running" and r.get("Health", "") in ("healthy", "")}
    return services <= up


def container(service: str) -> str:
    ps = compose("ps", "-q", service, timeout=60)
    cid = ps.stdout.strip()
    if not cid:
        raise LabFailure(f"no running container for {service}")
    return cid


def docker(argv: list, *, stdin: bytes | None = None, timeout: float) -> dict:
    """Run ``docker exec ...`` and parse the one JSON line (an object or a list) it prints last."""
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise LabFailure(f"{shlex.join(argv[:6])}... did not return within {timeout:.0f} s") from None
    lines = [line for line in done.stdout.decode("utf-8", "replace").splitlines() if line.startswith(("{", "["))]
    if not lines:
        raise LabFailure(f"{shlex.join(argv[:5])}... exit {done.returncode}: "
                         f"{done.stderr.decode('utf-8', 'replace').strip()[-1500:]}")
    return json.loads(lines[-1])


# --- positions --------------------------------------------------------------------------------------

class Place:
    """Where one side of a position runs: a lab container, or the guest through its agent."""

    def __init__(self, service: str, guest: bool = False) -> None:
        self.service = service
        self.guest = guest
        self.cid = container("client-ppc" if guest else service)

    def jail(self, *args: str, timeout: float, stdin: bytes | None = None) -> dict:
        """jail.py ARGS in this place; TIMEOUT: what the jail itself may take (its deadline):
        the agent's and docker's limits are above it, for the jail's start and its sweep."""
        timeout += 15
        if self.guest:
            argv = ["docker", "exec", "-i", self.cid, "guest-exec", "--timeout", f"{timeout:.0f}"]
            argv += ["--stdin"] if stdin is not None else []
            argv += ["--", "python3", "-S", "-c", JAIL, *args]
        else:
            argv = ["docker", "exec", "-i", "-u", "root", self.cid, "python3", "-S", "-c", JAIL, *args]
        return docker(argv, stdin=stdin if stdin is not None else b"", timeout=timeout + 30)


@dataclasses.dataclass
class Setting:
    position: suite.Position
    program: Place   # where the program under test runs
    peer: str        # the container of the suite's side
    target: str      # clients: the address of the suite's servers; servers: the program's address
    ports: list      # clients: the suite's servers' ports, one a run; servers: those it may be told


def setting(name: str, role: str) -> Setting:
    guest = name == "big-endian"
    if role in suite.CLIENTS:
        place = Place("client-ppc", guest=True) if guest else Place("client")
        address = GUEST_V4 if guest else CLIENT_V4
        return Setting(suite.Position(name, "big" if guest else "little", address), place,
                       container("server"), SERVER_V4, PEER_PORTS[name])
    place = Place("client-ppc", guest=True) if guest else Place("server")
    address = GUEST_V4 if guest else SERVER_V4
    return Setting(suite.Position(name, "big" if guest else "little", address), place,
                   container("client"), address, SERVER_PORTS)


def argv_for(template: list, values: dict) -> list:
    return [word.format(**values) for word in template]


def run_clients(opts: Options, where: Setting, exchanges: list) -> dict:
    """Every run of EXCHANGES, in one call of the jail: the suite's servers for all of them
    listen at once, one port each; {exchange key: [Run, ...]}."""
    planned, items, plans = [], [], {}
    ports = iter(where.ports)
    for exchange in exchanges:
        for plan in exchange.plans or (None,):
            port = exchange.port or next(ports)
            if plan is not None:
                plans[str(port)] = plan
            values = dict(suite.args_for(opts.role, exchange), host=where.target, port=str(port))
            deadline = exchange.deadline + (GUEST_EXTRA if where.program.guest else 0)
            planned.append((exchange, plan, port))
            items.append({"argv": argv_for(opts.template, values), "deadline": deadline})
    t0 = time.time()
    peer = subprocess.Popen(["docker", "exec", "-i", "-u", "socketlab", where.peer, "python3", "-c", PEER,
                             "serve", json.dumps(plans)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if peer.stdout.readline().strip() != b"ready":
        peer.kill()
        raise LabFailure(f"the suite's servers did not start on {', '.join(plans)}: "
                         f"{peer.stderr.read().decode('utf-8', 'replace')[-1500:]}")
    try:
        results = where.program.jail("runs", timeout=sum(item["deadline"] + 5 for item in items),
                                     stdin=json.dumps(items).encode())
    finally:
        out, err = peer.communicate(b"", timeout=30)
    lines = [line for line in out.decode("utf-8", "replace").splitlines() if line.startswith("{")]
    if not lines:
        raise LabFailure(f"the suite's servers said nothing: {err.decode('utf-8', 'replace')[-1500:]}")
    records = json.loads(lines[-1])
    t1 = time.time()
    done: dict = {}
    for (exchange, plan, port), item, result in zip(planned, items, results, strict=True):
        record = dict(records.get(str(port), {}), plan=plan) if plan is not None else {}
        result["argv"], result["port"] = item["argv"], port
        # one window for the batch: the packets of a run are told apart by its own port
        done.setdefault(exchange.key, []).append(suite.Run(result, record, t0, t1))
    return done


def run_server(opts: Options, where: Setting, exchange: suite.Exchange, state: dict) -> list:
    """Each run of EXCHANGE against the server under test. The server is looked at (``jail
    ensure``: started again if it exited, its output read) before the first run, after a run
    with a failed step, and when the suite's client was refused (then the run is made again);
    not before every run: in the guest a look costs 2 s, a refused connect a millisecond."""
    runs = []
    for steps in exchange.steps:
        started = None if state.get("serving") else ensure(opts, where, state)
        t0 = time.time()
        tester = test(where, exchange, steps, state["port"], refused_ends=started is None)
        if started is None and refused(tester):
            started = ensure(opts, where, state)
            t0 = time.time()
            tester = test(where, exchange, steps, state["port"])
        look = started or {"restarted": False, "listening": state["listening"]}
        program = {"argv": state["argv"], "restarted_before": look["restarted"] and state.get("last") is not None,
                   "listening": look.get("listening"), "stdout": "", "stderr": "",
                   "returncode": None, "stopped": False, "port": state["port"]}
        if look["restarted"]:
            attach_output(program, look.get("output"))
        listening = look.get("listening") or []
        if not listening:
            exited = look.get("exited") or (look.get("previous") if not look["restarted"] else None)
            program["problem"] = (f"the server was not listening on port {state['port']} after {server_wait(where):g} s"
                                  + (f" (it exited with status {exited.get('returncode')})" if exited else ""))
        elif not set(listening) & {where.target, "0.0.0.0", "::"}:
            program["problem"] = (f"the server listens on {', '.join(listening)} only, not on {where.target} "
                                  f"as it was told")
        run = suite.Run(program, tester, t0, time.time())
        state["last"] = program
        state["serving"] = "problem" not in program and suite.failed_step([run]) is None
        runs.append(run)
    return runs


#: Seconds a server under test is given to listen (the guest's CPython start on top).
SERVER_WAIT = 15.0


def server_wait(where: Setting) -> float:
    return SERVER_WAIT + (GUEST_EXTRA if where.program.guest else 0)


def ensure(opts: Options, where: Setting, state: dict) -> dict:
    """``jail ensure``: the server runs (started again if it exited); what it printed since the
    last look goes to the run before (``state["last"]``)."""
    wait = server_wait(where)
    template = argv_for(opts.template, {"host": where.target, "port": PORT_MARK})
    started = where.program.jail("ensure", ",".join(map(str, where.ports)), f"{wait:g}", "--", *template,
                                 timeout=wait + 10)
    attach_output(state.get("last"), started.get("before") or started.get("output"))
    if started["restarted"]:
        state["argv"] = started["argv"]
    state["port"], state["listening"] = started["port"], started.get("listening")
    return started


def test(where: Setting, exchange: suite.Exchange, steps: list, port: int, refused_ends: bool = False) -> dict:
    """The suite's client: STEPS against the server under test, from the peer host."""
    return docker(["docker", "exec", "-i", "-u", "socketlab", where.peer, "python3", "-c", PEER,
                   "client", where.target, str(port), *(["--refused-ends"] if refused_ends else [])],
                  stdin=json.dumps(steps).encode(), timeout=exchange.deadline + 30)


def refused(tester: dict) -> bool:
    steps = tester.get("steps") or []
    return len(steps) == 1 and steps[0].get("errno") == errno.ECONNREFUSED


def attach_output(program: dict | None, output: dict | None) -> None:
    if program is None or not output:
        return
    for stream in ("stdout", "stderr"):
        program[stream] = (program.get(stream) or "") + (output.get(stream) or "")


def run_position(opts: Options, name: str, cases: list, results: dict, say,
                 abort: threading.Event) -> None:
    where = setting(name, opts.role)
    unpacked = where.program.jail("unpack", timeout=60, stdin=pack(opts.program))
    if "error" in unpacked:
        raise BadInput(f"PROGRAM: {unpacked['error']}")
    if unpacked.get("byteorder") != where.position.byteorder:
        raise LabFailure(f"the {name} position is {unpacked.get('byteorder')}-endian")
    state: dict = {}
    done: dict = {}
    try:
        if opts.role in suite.CLIENTS:
            wanted = list(dict.fromkeys(case.exchange for case in cases))
            done = run_clients(opts, where, [suite.EXCHANGES[key] for key in wanted])
        for case in cases:
            if abort.is_set():
                return
            if case.exchange not in done:
                done[case.exchange] = run_server(opts, where, suite.EXCHANGES[case.exchange], state)
            runs = done[case.exchange]
            finding = case.judge(runs, where.position)
            problem = next((r.program.get("problem") for r in runs if r.program.get("problem")), None)
            if finding.status == "fail" and problem:
                finding = suite.Finding("fail", f"{problem}; {finding.observed}")
            verdict = case.verdict(finding)
            results[(case.id, name)] = (case, verdict, finding, runs, where)
            say(f"{verdict:<13} {case.id:<6} {name:<13} {case.title}")
    finally:
        if opts.role in suite.SERVERS:
            stopped = where.program.jail("stop", timeout=30)
            attach_output(state.get("last"), stopped.get("output"))


# --- packets and the report ----------------------------------------------------------------------

class Packets:
    """The run's packets, indexed by port once (a run may hold a million: 4 MiB echoed both
    ways, seen on both of the router's interfaces)."""

    def __init__(self, packets: list) -> None:
        self.by_port: dict[int, list] = {}
        self.sides: dict[str, set] = {}
        for p in packets:
            for port in set(wire._ports(p)):
                self.by_port.setdefault(port, []).append(p)
            if not p.outgoing:
                self.sides.setdefault(p.src, set()).add(p.ifindex)

    def of(self, runs: list, where: Setting, role: str) -> list:
        """A case's packets, in time order: its runs' ports and window, the program's address,
        as seen on one interface of the router (the client's side)."""
        sides = self.sides.get(where.position.address if role in suite.CLIENTS else CLIENT_V4, set())
        address = where.position.address
        chosen = {id(p): p for port in {run.program["port"] for run in runs} for p in self.by_port.get(port, ())
                  if (not sides or p.ifindex in sides) and address in (p.src, p.dst)
                  and any(run.t0 - 0.05 <= p.time <= run.t1 + 0.05 for run in runs)}
        return sorted(chosen.values(), key=lambda p: p.time)


def packet_row(p, start: float) -> dict:
    row = {"t": round(p.time - start, 6), "src": p.src, "dst": p.dst, "sport": None, "dport": None,
           "flags": p.flags, "len": 0, "hex": "", "icmp": None}
    if p.tcp is not None:
        row.update(sport=p.tcp.sport, dport=p.tcp.dport, len=len(p.tcp.data), hex=bytes(p.tcp.data[:256]).hex())
    elif p.icmp is not None:
        kind, code, _ = p.icmp
        quoted = wire.quoted(p)
        row["icmp"] = {(3, 1): "host unreachable", (1, 3): "address unreachable",
                       (3, 3): "port unreachable", (1, 4): "port unreachable"}.get((kind, code),
                                                                                    f"type {kind} code {code}")
        if quoted:
            row.update(sport=quoted[1], dport=quoted[2])
    return row


def write_pcap(path: Path, chosen: list) -> None:
    import dpkt

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        writer = dpkt.pcap.Writer(f, linktype=wire.LINKTYPE_LINUX_SLL2, snaplen=262144)
        for p in chosen:
            writer.writepkt(p.frame, ts=p.time)


def build_report(opts: Options, results: dict, packets: list, started: float) -> dict:
    out_cases = []
    for (case_id, name), (case, verdict, finding, runs, where) in sorted(
            results.items(), key=lambda kv: (tuple(int(n) for n in kv[0][0].split(".")), kv[0][1])):
        chosen = packets.of(runs, where, opts.role)
        pcap = None
        if chosen:
            pcap = f"pcaps/{case.exchange}-{name}.pcap"
            target = opts.out / pcap
            if not target.exists():
                write_pcap(target, chosen)
        first = runs[0].program
        client_side = where.position.address if opts.role in suite.CLIENTS else CLIENT_V4
        server_side = SERVER_V4 if opts.role in suite.CLIENTS else where.position.address
        out_cases.append({
            "id": case.id, "topic": case.topic, "title": case.title, "guide": case.guide, "role": opts.role,
            "position": name, "verdict": verdict, "kind": "informational" if case.informational else "required",
            "expected": case.expected, "observed": finding.observed, "exchange": case.exchange,
            "duration_s": round(sum(r.t1 - r.t0 for r in runs), 3),
            "program": {"argv": first.get("argv", []), "returncode": first.get("returncode"),
                        "stopped": bool(first.get("stopped")),
                        "stdout": "\n".join(r.program.get("stdout") or "" for r in runs),
                        "stderr": "\n".join(r.program.get("stderr") or "" for r in runs),
                        "truncated": sum(r.program.get("truncated") or 0 for r in runs)},
            "pcap": pcap, "hosts": {"client": client_side, "server": server_side},
            "packets": [packet_row(p, chosen[0].time) for p in chosen[:MAX_PACKETS]],
            "packets_omitted": max(0, len(chosen) - MAX_PACKETS),
        })
    return {"role": opts.role, "program": str(opts.program), "command": opts.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "duration_s": round(time.time() - started, 1), "positions": list(opts.positions), "cases": out_cases}


#: One run at a time per lab: a run owns the program's uid and the suite's ports in every
#: position (a second run's unpack would sweep the first's program away).
LOCK = Path("/tmp/socketlab-conform.lock")


def conform(opts: Options, say=print, lab=None) -> dict:
    """Run the cases in every position (side by side) and write the report; the report.
    ``lab``: a running :class:`lab_tests.harness.Lab` to use (the suite's own tests give theirs,
    whose capture of the router is then shared), else one is brought up and made here."""
    import fcntl

    with LOCK.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"conform: another conformance run is using the lab ({LOCK}); waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _conform(opts, say, lab)


def _conform(opts: Options, say, lab) -> dict:
    if lab is None:
        from testcontainers.compose import DockerCompose

        from lab_tests.harness import Lab

        ensure_lab(opts.positions, say)
        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
        lab = Lab(DockerCompose(context=REPO, compose_file_name="compose.yaml"))
    lab.capture.start()  # a no-op where it runs already
    # A run that was killed may have left the suite's servers (in the lab's containers, as the
    # unprivileged user) holding the suite's ports: end them first.
    for service in ("server", "client"):
        subprocess.run(["docker", "exec", "-u", "socketlab", container(service), "pkill", "-f", peer.SIGNATURE],
                       capture_output=True, check=False)
    started = time.time()
    cases = suite.cases_for(opts.role, opts.selected)
    results: dict = {}
    errors: list = []
    abort = threading.Event()

    def position(name):
        try:
            run_position(opts, name, cases, results, say, abort)
        except Exception as exc:  # raised again below, whatever it is: a judge's bug too
            errors.append(exc)
            abort.set()

    threads = [threading.Thread(target=position, args=(name,)) for name in opts.positions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    ran = time.time()
    path = lab.capture.pcap("conformance", started - 1)
    packets = Packets(wire.read(lab.read_file("router", path)))
    lab.run("router", "rm", "-f", path, timeout=20)
    opts.out.mkdir(parents=True, exist_ok=True)
    for old in (opts.out / "pcaps").glob("*.pcap"):
        old.unlink()
    report = build_report(opts, results, packets, started)
    pages.write(report, opts.out)
    report["timing"] = {"cases_s": round(ran - started, 1), "report_s": round(time.time() - ran, 1)}
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="make conform", description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", default=os.environ.get("ROLE", ""))
    parser.add_argument("--program", default=os.environ.get("PROGRAM", ""))
    parser.add_argument("--cmd", default=os.environ.get("CMD", ""))
    parser.add_argument("--positions", default=os.environ.get("POSITIONS") or ",".join(POSITIONS))
    parser.add_argument("--cases", default=os.environ.get("CASES") or None)
    parser.add_argument("--out", default=os.environ.get("OUT") or None)
    args = parser.parse_args(argv)
    try:
        opts = validate(args.role, args.program, args.cmd, args.positions, args.cases, args.out)
        report = conform(opts)
    except BadInput as exc:
        print(f"conform: {exc}", file=sys.stderr)
        return 2
    except LabFailure as exc:
        print(f"conform: the lab could not run the cases: {exc}", file=sys.stderr)
        return 3
    counts = {}
    for case in report["cases"]:
        counts.setdefault(case["position"], {}).setdefault(case["verdict"], 0)
        counts[case["position"]][case["verdict"]] += 1
    for name, tally in counts.items():
        print(f"{opts.role} {name}: " + ", ".join(f"{tally.get(v, 0)} {v}" for v in suite.VERDICTS if tally.get(v)))
    failed = sum(c["verdict"] == "FAIL" for c in report["cases"])
    print(f"{'FAIL' if failed else 'PASS'}: {failed} case{'s' if failed != 1 else ''} failed in "
          f"{report['duration_s']} s (the cases {report['timing']['cases_s']} s, the capture and the report "
          f"{report['timing']['report_s']} s); report: {opts.out / 'index.html'}")
    return 1 if failed else 0
