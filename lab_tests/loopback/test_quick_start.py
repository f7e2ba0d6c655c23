"""The README's Quick start and docs/loopback.md's recipes, without Docker, run as written.

Each line of a block is run as a newcomer would type it (in the repository, with this
environment's ``socketlab`` first on PATH): a line ending in ``&`` is a server (ready when it
prints its ``Listening on`` line), ``kill %1 %2`` stops them, any other line must exit 0, and a
trailing ``# comment`` is what that line must print. ``pip install .`` is the one line not run:
it would reach PyPI; that the package is installed here is checked instead.
"""

import importlib.metadata
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab_tests.harness import REPO

from .support import CliServer

#: (document, the heading whose first indented block is run)
BLOCKS = [
    ("README.md", "## Quick start"),
    ("docs/loopback.md", "## TLS with a throw-away CA"),
    ("docs/loopback.md", "## The byte-order bug on one machine"),
]


def block_lines(doc: str, heading: str) -> list[tuple[str, str]]:
    """(command, what it must print) of the first indented block under HEADING."""
    text = (REPO / doc).read_text()
    section = text[text.index(heading + "\n"):]
    block = re.search(r"\n\n((?:    .*\n)+)", section)[1]
    lines = []
    for raw in block.splitlines():
        command, _, said = raw.strip().partition("  #")
        lines.append((command.strip(), said.strip().lstrip("# ").strip()))
    return lines


@pytest.mark.parametrize("doc, heading", BLOCKS, ids=[f"{d}{h.lstrip('#')}" for d, h in BLOCKS])
def test_the_block_runs_as_written(doc, heading):
    lines = block_lines(doc, heading)
    if lines[0][0] == "pip install .":
        assert importlib.metadata.version("socketlab")
        lines = lines[1:]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    servers: list[CliServer] = []
    try:
        for command, said in lines:
            if command.startswith("kill %"):
                for job in command.split()[1:]:
                    status, _ = servers[int(job.lstrip("%")) - 1].stop(signal.SIGTERM)
                    assert status is not None
                continue
            argv = shlex.split(command.rstrip("&"))
            if command.endswith("&"):  # a server: `socketlab` is `python -m socketlab`
                assert argv[0] == "socketlab", command
                servers.append(CliServer(*argv[1:]))
                assert said in servers[-1].stdout[0], f"{command} printed {servers[-1].stdout[0]!r}, not {said!r}"
                continue
            done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{command}: {done}"
            assert said in done.stdout, f"{command} printed {done.stdout!r}, {doc} says {said!r}"
    finally:
        for server in servers:
            server.close()
    assert servers and all(server.process.returncode is not None for server in servers)
