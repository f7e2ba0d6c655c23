"""The guest agent's exec path (qemu/guest/agent.py), run here on the host: ``python3 -m
socketlab ...`` runs in a child forked from the agent, and must answer exactly what a new
process answers (the guest tier and the start-up demo go through it); the rest is a new
process, as before."""

import base64
import importlib.util
import socket
import sys

import pytest

from lab_tests import topology


@pytest.fixture(scope="module")
def agent():
    spec = importlib.util.spec_from_file_location("guest_agent", topology.REPO / "qemu" / "guest" / "agent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(agent, argv, *, stdin=b"", timeout=60):
    reply = agent.run({"argv": argv, "timeout": timeout, "stdin": base64.b64encode(stdin).decode(), "cwd": "/"})
    return reply["returncode"], base64.b64decode(reply["stdout"]), base64.b64decode(reply["stderr"])


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: connecting to it is refused


def new_process(args):
    """The same command as a new process (this interpreter, through sh: not the fork path)."""
    return ["sh", "-c", 'exec "$0" "$@"', sys.executable, *args]


def commands(closed_port):
    return [
        ["-m", "socketlab", "app-client", "127.0.0.1", str(closed_port), "search", "ring"],  # one clean line, exit 1
        ["-m", "socketlab", "app-client", "127.0.0.1", "not-a-port", "search", "ring"],  # usage, exit 2
        ["-m", "socketlab.startup"],  # a module of the package, its own usage line
        ["-m", "socketlab", "--help"],  # exit 0, stdout
    ]


def test_the_agent_forks_only_for_socketlab_modules(agent):
    assert agent.socketlab_module(["python3", "-m", "socketlab", "demo"]) == ("socketlab", ["demo"])
    assert agent.socketlab_module(["/usr/bin/python3", "-m", "socketlab.demo", "a"]) == ("socketlab.demo", ["a"])
    assert agent.socketlab_module(["python3", "-m", "socketlabx"]) is None
    assert agent.socketlab_module(["python3", "-c", "import socketlab"]) is None
    assert agent.socketlab_module(["sh", "-m", "socketlab"]) is None


@pytest.mark.parametrize("index", range(4))
def test_a_forked_run_answers_what_a_new_process_answers(agent, closed_port, index):
    args = commands(closed_port)[index]
    forked = run(agent, ["python3", *args])
    process = run(agent, new_process(args))
    assert forked == process
    assert forked[1] or forked[2]  # it said something


def test_a_module_imported_before_the_fork_is_run_anew(agent, monkeypatch):
    import socketlab.startup  # as if the agent had imported it: runpy would warn, or reuse it

    monkeypatch.setitem(sys.modules, "socketlab.startup", socketlab.startup)
    args = ["-m", "socketlab.startup"]
    assert run(agent, ["python3", *args]) == run(agent, new_process(args))


def test_a_forked_run_reads_its_stdin_and_is_killed_at_its_timeout(agent):
    rc, out, err = run(agent, ["python3", "-m", "socketlab", "echo-server", "127.0.0.1", "0"], stdin=b"x" * 200_000,
                       timeout=3)
    assert rc == 124 and err.endswith(b"guest-agent: timed out after 3s\n")
    assert b"Listening on" in out  # it ran, and its output up to the kill is kept


def test_negative_control_a_child_that_shares_the_agents_stdout_loses_its_output(agent, closed_port, monkeypatch):
    # the bug the fork path avoids: a child writing through the agent's own sys.stdout object
    # (not its pipe) — its answer never reaches the reply
    real = agent.Forked._child

    def shared_stdout(target, in_r, out_w, err_w, cwd):
        saved = sys.stdout
        real(lambda: (setattr(sys, "stdout", saved), target())[1], in_r, out_w, err_w, cwd)

    monkeypatch.setattr(agent.Forked, "_child", staticmethod(shared_stdout))
    args = commands(closed_port)[3]
    assert run(agent, ["python3", *args]) != run(agent, new_process(args))


def test_a_fork_that_fails_fails_that_request_only(agent, monkeypatch):
    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(agent.os, "fork", no_fork)
    rc, out, err = run(agent, ["python3", "-m", "socketlab", "--help"])
    assert (rc, out) == (127, b"") and err.startswith(b"guest-agent: cannot fork for socketlab: ")
    monkeypatch.undo()
    assert run(agent, ["python3", "-m", "socketlab", "--help"])[0] == 0  # and the next one runs


def test_settings_that_cannot_be_applied_fail_that_request_and_leave_the_guest_unready(agent, capsys):
    """No time in them: refused before anything is changed; the ready line is not printed."""
    reply = agent.answer({"settings": {}}, settled=False)
    assert reply["returncode"] == 1, reply
    assert base64.b64decode(reply["stderr"]).startswith(b"guest-agent: cannot apply the lab's settings: ")
    assert agent.READY_LINE not in capsys.readouterr().out


def test_the_settings_are_applied_once(agent):
    reply = agent.answer({"settings": {"time": 0}}, settled=True)
    assert reply["returncode"] == 126, reply
    assert base64.b64decode(reply["stderr"]) == b"guest-agent: the lab's settings were applied already\n"


def test_negative_control_a_reseed_the_kernel_refuses_is_said(agent, tmp_path, capsys):
    """The guest tier's check that the reseed took (no such line on the guest's console) can go
    red: a pool that is not the kernel's refuses the ioctl, and the agent says so, keeping the
    entropy written."""
    pool = tmp_path / "pool"
    agent.reseed(b"\x01" * 64, path=str(pool))
    assert pool.read_bytes() == b"\x01" * 64
    assert "socketlab-guest: cannot reseed the kernel's generator at once: " in capsys.readouterr().out
