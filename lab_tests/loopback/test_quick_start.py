"""The README's Quick start, without Docker, runs as written (on loopback).

Each line of its first block is run as a newcomer would type it, with this environment's
``socketlab`` first on PATH: a line ending in ``&`` is a server (ready when it prints its
``Listening on`` line), ``kill %1 %2`` stops them, any other line must exit 0, and a trailing
``# comment`` is what that line must print. ``pip install .`` is the one line not run: it
would reach PyPI; that the package is installed here is checked instead.
"""

import importlib.metadata
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

from lab_tests.harness import REPO

from .support import CliServer


def quick_start_lines() -> list[tuple[str, str]]:
    """(command, what it must print) of the Quick start's first block."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Quick start"):]
    block = re.search(r"\n((?:    .*\n)+)", section)[1]
    lines = []
    for raw in block.splitlines():
        command, _, said = raw.strip().partition("  #")
        lines.append((command.strip(), said.strip().lstrip("# ").strip()))
    return lines


def test_the_quick_start_runs_as_written():
    lines = quick_start_lines()
    assert lines[0][0] == "pip install ."
    assert importlib.metadata.version("socketlab")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    servers: list[CliServer] = []
    try:
        for command, said in lines[1:]:
            if command.startswith("kill %"):
                for job in command.split()[1:]:
                    status, _ = servers[int(job.lstrip("%")) - 1].stop(signal.SIGTERM)
                    assert status is not None
                continue
            argv = shlex.split(command.rstrip("&"))
            assert argv[0] == "socketlab", command
            if command.endswith("&"):  # a server: `socketlab` is `python -m socketlab`
                servers.append(CliServer(*argv[1:]))
                assert said in servers[-1].stdout[0], f"{command} printed {servers[-1].stdout[0]!r}, not {said!r}"
                continue
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, f"{command}: {done}"
            assert said in done.stdout, f"{command} printed {done.stdout!r}, the README says {said!r}"
    finally:
        for server in servers:
            server.close()
    assert len(servers) == 2 and all(server.process.returncode is not None for server in servers)
