"""The fuzz smoke CI runs: the atheris harness for FUZZ_SMOKE_SECONDS on the seed corpus.

It must exit 0 (no crash, no stall, no timeout), execute a non-trivial number of inputs, and
get past the framing: messages decoded and every kind of answer produced. The long run and its
figures: docs/fuzzing.md.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest


HERE = Path(__file__).resolve().parent
FUZZ_SMOKE_SECONDS = 20
#: Far below what the project's 2-core machine does in 20 s (~3 000 inputs/s, so ~60 000),
#: to stay green on a busy CI host, far above what a harness that crashes early or spins does.
MIN_EXECUTIONS = 5_000


def test_fuzz_smoke(tmp_path):
    if importlib.util.find_spec("atheris") is None:
        pytest.fail("atheris is not installed: pip install -e '.[test]'")
    corpus = tmp_path / "corpus"  # new inputs go here, not into the repository
    corpus.mkdir()
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, str(HERE / "fuzz_protocol.py"), f"-max_total_time={FUZZ_SMOKE_SECONDS}",
         "-print_final_stats=1", f"-artifact_prefix={tmp_path}/", str(corpus), str(HERE / "corpus")],
        cwd=tmp_path, capture_output=True, text=True, timeout=FUZZ_SMOKE_SECONDS + 60, check=False,
    )
    elapsed = time.monotonic() - started
    log = run.stderr
    tail = "\n".join(log.splitlines()[-40:])
    assert run.returncode == 0, f"the fuzzer found something (exit {run.returncode}):\n{tail}"
    executions = int(re.search(r"stat::number_of_executed_units:\s*(\d+)", log).group(1))
    coverage = int(re.findall(r"\bcov: (\d+)", log)[-1])
    stats = re.findall(r"socketlab-fuzz: #\d+ inputs (\d+), messages (\d+), .*answers: text (\d+), "
                       r"array (\d+), binary (\d+), error (\d+)", log)[-1]
    inputs, messages, *answers = map(int, stats)
    print(f"fuzz smoke: {executions} executions in {elapsed:.1f} s, cov {coverage}, "
          f"last report: {inputs} inputs, {messages} messages, answers {answers}")
    assert executions >= MIN_EXECUTIONS, tail
    assert messages >= inputs // 4, f"mostly unstructured inputs: {stats}"
    assert all(answers), f"an answer kind was never reached: {stats}"
    assert coverage >= 100, f"coverage {coverage}: is socketlab instrumented?\n{tail}"
