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
  a :class:`RunResult` per case, as if each had been its own command.
"""

from __future__ import annotations

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
