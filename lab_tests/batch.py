"""Many ``socketlab`` commands in one Python process inside a lab position (lab_tests/guest).

Starting Python is the dear part of a command in the PowerPC guest (emulated, about a second),
so the cross-endian suite runs every case of a position in one process and each test then
asserts on its own case's result, reported separately as before.

Two halves in one file, both standard library only:

* the script (``main``), run in the position with ``python3 -c SOURCE CASES_JSON``: each case
  (a ``socketlab`` argv) runs through ``socketlab.cli.main`` in a thread of a small pool, with
  its own stdout and stderr; one JSON line per case (index, rc, stdout, stderr, elapsed). An
  exception escaping the CLI is that case's failure (rc 1, the traceback on its stderr), never
  the batch's.
* :func:`run_batch`, the test's side: runs the script with ``lab.run`` in a position and returns
  a :class:`RunResult` per case, as if each had been its own command. A test names its case as
  a :class:`Case` among its parameters; the ``results`` fixture (lab_tests/guest/conftest.py)
  runs every selected test's case, the positions side by side, once per session.
"""

from __future__ import annotations

import dataclasses
import io
import json
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: Cases run at once: enough to overlap the firewall's timeouts, few enough for one vCPU.
WORKERS = 4


class _PerThread(io.TextIOBase):
    """sys.stdout / sys.stderr for the batch: each thread writes to its own buffer."""

    def __init__(self) -> None:
        self._local = threading.local()

    def begin(self) -> None:
        self._local.buffer = io.StringIO()

    def end(self) -> str:
        return self._local.__dict__.pop("buffer").getvalue()

    def write(self, text: str) -> int:
        return self._local.buffer.write(text)

    def writable(self) -> bool:
        return True


def main(argv=None) -> int:
    from socketlab import cli  # in the position: the guest's, the fast tier's or the client's

    cases = json.loads((argv or sys.argv[1:])[0])
    out, err = _PerThread(), _PerThread()
    real_stdout = sys.stdout
    sys.stdout, sys.stderr = out, err

    def run(index: int) -> str:
        out.begin()
        err.begin()
        start = time.monotonic()
        try:
            rc = cli.main(cases[index])
        except SystemExit as exc:  # argparse's usage errors
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - the case's failure, reported with it
            traceback.print_exc()
            rc = 1
        return json.dumps({"index": index, "rc": rc, "stdout": out.end(), "stderr": err.end(),
                           "elapsed": time.monotonic() - start}, ensure_ascii=False)

    with ThreadPoolExecutor(WORKERS) as pool:
        for line in pool.map(run, range(len(cases))):
            real_stdout.write(line + "\n")
    real_stdout.flush()
    return 0


# -- the test's side ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    position: str  # "guest", "user" (big-endian) or "le" (the little-endian client)
    argv: tuple[str, ...]  # socketlab's arguments


def client_case(position: str, host: str, port: int, action: str, value: str, *extra: str) -> Case:
    return Case(position, ("app-client", host, str(port), action, value, "--json", *extra))


def probe_case(position: str, host: str, port: int, timeout: float, *extra: str) -> Case:
    return Case(position, ("probe", host, str(port), "--timeout", f"{timeout:g}", *extra))


def app_answer(result) -> dict:
    """The ``app-client --json`` answer of a case that succeeded."""
    assert result.returncode == 0, str(result)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, str(result)
    return json.loads(lines[0])


def run_cases(lab, items) -> dict:
    """Case -> RunResult for every Case among the parameters of ``items`` (pytest's), each
    position's cases in one batch, the positions side by side."""
    cases: dict[str, list[tuple[str, ...]]] = {}
    for item in items:
        for value in getattr(item, "callspec", None) and item.callspec.params.values() or ():
            if isinstance(value, Case) and value.argv not in cases.setdefault(value.position, []):
                cases[value.position].append(value.argv)
    with ThreadPoolExecutor(len(cases) or 1) as pool:
        runs = {position: pool.submit(run_batch, lab, position, argvs, timeout=120 + 5 * len(argvs))
                for position, argvs in cases.items()}
        return {Case(position, argv): result
                for position, run in runs.items() for argv, result in run.result().items()}


def run_batch(lab, position: str, cases: list[tuple[str, ...]], timeout: float):
    """``{argv: RunResult}`` for each ``socketlab`` argv in ``cases``, run in ``position``
    ("guest": the PowerPC guest by guest-exec; "user": the fast tier; "le": the client)."""
    from lab_tests.harness import RunResult

    script = ["-c", Path(__file__).read_text(), json.dumps([list(c) for c in cases])]
    if position == "guest":
        result = lab.run("client-ppc", "guest-exec", "--timeout", f"{timeout:g}", "python3", *script,
                         timeout=timeout + 30)
    elif position == "user":
        result = lab.run("client-ppc-user", "ppc-python", *script, timeout=timeout)
    else:
        assert position == "le", position
        result = lab.run("client", "python3", *script, timeout=timeout)
    assert result.returncode == 0, f"the batch did not run in {position}:\n{result}"
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["index"] for r in records] == list(range(len(cases))), str(result)
    return {case: RunResult(("socketlab", *case), r["rc"], r["stdout"], r["stderr"], r["elapsed"])
            for case, r in zip(cases, records)}


if __name__ == "__main__":
    sys.exit(main())
