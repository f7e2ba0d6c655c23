"""Coverage-guided, structure-aware fuzzer of the edge contract (atheris / libFuzzer).

    python lab_tests/fuzz/fuzz_protocol.py [libFuzzer flags] [CORPUS_DIR ...]

Every input is wire bytes, as a peer would send them. The custom mutator (frames.mutate)
parses them as frames and mutates the JSON header and content where it hurts, falling back to
libFuzzer's byte mutations now and then; each input then goes through contract.check: the
decoder in two chunkings, app.respond (right and naive array decoders), the answer decoded
and read by the client, app.describe_response on the input itself, error answers, and the CPU
budget. Coverage comes from the socketlab package only (instrumented on import).

Defaults added unless given: -timeout=10 (wall-clock backstop; the CPU budget is
contract.cpu_budget), -max_len=20000 (past the 16 KiB header limit), -rss_limit_mb=2048. Every 2**k inputs a line
``socketlab-fuzz: #N ...`` on stderr says how many inputs reached the app and what it answered.
See docs/fuzzing.md.
"""

from __future__ import annotations

import os
import shlex
import sys

import atheris

with atheris.instrument_imports(include=["socketlab"]):
    import socketlab.app  # noqa: F401  (instrumented for coverage before anything imports it)
    import socketlab.arrays  # noqa: F401
    import socketlab.protocol  # noqa: F401

if __package__:
    from . import contract, frames
else:  # run as a script
    import contract
    import frames

STATS = contract.Stats()
_next_report = 1


def test_one_input(data: bytes) -> None:
    global _next_report
    contract.check(data, stats=STATS)
    if STATS.inputs >= _next_report:
        _next_report *= 2
        print(f"socketlab-fuzz: #{STATS.inputs} {STATS.line()}", file=sys.stderr, flush=True)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    return frames.mutate(data, max_size, seed, atheris.Mutate)


def main(argv: list[str]) -> None:
    defaults = {"-timeout=": "10", "-max_len=": "20000", "-rss_limit_mb=": "2048"}
    # libFuzzer runs argv[0] through the shell for -minimize_crash, -merge and -fork: make it
    # this interpreter and this file, so those work without a shebang or an activated venv.
    program = shlex.join([sys.executable, os.path.abspath(argv[0])])
    args = [program] + [f"{flag}{value}" for flag, value in defaults.items()
                        if not any(arg.startswith(flag) for arg in argv[1:])] + argv[1:]
    atheris.Setup(args, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
