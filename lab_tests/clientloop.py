"""Clients in a loop inside a lab container, while a test breaks something (lab_tests/*/test_*faults.py).

Two halves in one file, both standard library only:

* the script (``main``), run in the container with ``python3 -c SOURCE``: WORKERS threads each
  run ``CMD`` again and again (a new process every time, at most one start per --interval per
  worker) until --stop-file exists or --max-seconds pass; every run is one JSON line (worker,
  start, end, elapsed, rc, stdout, stderr; wall-clock times, the host's clock) appended to
  --progress and, at the end, printed on stdout. A run still going after --kill-after seconds is
  killed and recorded with rc "hung": a client that hangs cannot hang the test.
* :class:`ClientLoop`, the test's side: starts the script with ``lab.run`` in a thread, reads
  the progress file (``wait_for``: poll a condition on the runs so far, never a bare sleep),
  stops it and returns every :class:`Run`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="clientloop")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.2, help="min seconds between starts, per worker")
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--kill-after", type=float, default=60)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--progress", required=True)
    parser.add_argument("cmd", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    lock = threading.Lock()
    records = []
    end_at = time.monotonic() + args.max_seconds
    progress = open(args.progress, "a", buffering=1)

    def worker(number: int) -> None:
        while not os.path.exists(args.stop_file) and time.monotonic() < end_at:
            begun = time.monotonic()
            start = time.time()
            try:
                done = subprocess.run(cmd, capture_output=True, timeout=args.kill_after)
                rc, out, err = done.returncode, done.stdout, done.stderr
            except subprocess.TimeoutExpired as exc:
                rc, out, err = "hung", exc.stdout or b"", exc.stderr or b""
            record = {"worker": number, "start": start, "end": time.time(),
                      "elapsed": time.monotonic() - begun, "rc": rc,
                      "stdout": out.decode("utf-8", "replace"), "stderr": err.decode("utf-8", "replace")}
            with lock:
                records.append(record)
                progress.write(json.dumps(record, ensure_ascii=False) + "\n")
            rest = args.interval - (time.monotonic() - begun)
            if rest > 0:
                time.sleep(rest)  # pacing, not readiness: bounds the CPU the loop takes

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()
    for record in records:
        print(json.dumps(record, ensure_ascii=False))
    return 0


@dataclass
class Run:
    worker: int
    start: float
    end: float
    elapsed: float
    rc: int | str
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __str__(self) -> str:
        return (f"[worker {self.worker} rc {self.rc} {self.elapsed:.2f} s] "
                f"stdout={self.stdout.strip()!r} stderr={self.stderr.strip()!r}")


class ClientLoop:
    """``with ClientLoop(lab, service, argv, ...) as loop:`` then ``loop.wait_for(...)``, ``loop.stop()``."""

    def __init__(self, lab, service: str, argv, *, workers: int = 2, interval: float = 0.2,
                 max_seconds: float = 120, kill_after: float = 30, name: str = "loop") -> None:
        self.lab, self.service = lab, service
        base = f"/tmp/clientloop-{name}-{os.getpid()}-{int(time.time() * 1000)}"
        self.stop_file, self.progress = base + ".stop", base + ".jsonl"
        self.argv = ["python3", "-c", Path(__file__).read_text(), "--workers", str(workers),
                     "--interval", str(interval), "--max-seconds", str(max_seconds),
                     "--kill-after", str(kill_after), "--stop-file", self.stop_file,
                     "--progress", self.progress, "--", *argv]
        self.timeout = max_seconds + kill_after + 30
        self.result = None
        self.runs: list[Run] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.result = self.lab.run(self.service, *self.argv, timeout=self.timeout)

    def __enter__(self) -> "ClientLoop":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def so_far(self) -> list[Run]:
        result = self.lab.run(self.service, "sh", "-c", f"cat {self.progress} 2>/dev/null || true", timeout=30)
        runs = []
        for line in result.stdout.splitlines():
            try:
                runs.append(Run(**json.loads(line)))
            except ValueError:  # a line being written right now
                pass
        return runs

    def wait_for(self, condition, timeout: float, what: str, interval: float = 0.2) -> list[Run]:
        """Poll the runs so far until ``condition(runs)`` is true; fail after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.so_far()
            if condition(runs):
                return runs
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"clients: not {what} within {timeout} s; runs so far:\n"
                                     + "\n".join(map(str, runs[-20:])) + f"\n{self.result or ''}")
            time.sleep(interval)

    def stop(self) -> list[Run]:
        if self._thread.is_alive() or self.result is None:
            self.lab.run(self.service, "touch", self.stop_file, timeout=30)
            self._thread.join(self.timeout)
            assert self.result is not None, "the client loop did not end"
            assert self.result.returncode == 0, f"the client loop failed:\n{self.result}"
            self.runs = [Run(**json.loads(line)) for line in self.result.stdout.splitlines()]
            self.lab.run(self.service, "rm", "-f", self.stop_file, self.progress, timeout=30)
        return self.runs


if __name__ == "__main__":
    sys.exit(main())
