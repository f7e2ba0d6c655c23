"""Helpers for the loopback tests."""

import functools
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

from socketlab import app, arrays, client
from socketlab.addresses import ready_port
from socketlab.handlers import AppHandler, EchoHandler
from socketlab.protocol import NEED_DATA, MessageDecoder


def run_cli(*argv, timeout=30):
    """Run ``python -m socketlab ARGV``; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "socketlab", *argv],
                          capture_output=True, text=True, timeout=timeout)


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN (an unclean shutdown)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_answer(sock: socket.socket, timeout: float = 5.0):
    """Read until the server closes: the bytes must be exactly one message; return it."""
    sock.settimeout(timeout)
    decoder = MessageDecoder()
    while data := sock.recv(65536):
        decoder.receive_data(data)
    decoder.receive_data(b"")
    answer = decoder.next_message()
    assert answer is not NEED_DATA, "the server closed without answering"
    assert decoder.next_message() is NEED_DATA, "more than one answer"
    return answer


def read_error_answer(sock: socket.socket, timeout: float = 5.0) -> str:
    """:func:`read_answer`, which must be in the guide's error form; its text."""
    result = app.describe_response(read_answer(sock, timeout))
    assert isinstance(result, str) and result.startswith("Error: "), result
    return result


def wait_for(condition, timeout=10.0, interval=0.01):
    """Poll ``condition()`` until it is true (a signal the code under test gives), or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)


class CliServer:
    """A ``socketlab`` server process; ready once it prints ``Listening on (HOST, PORT)``.

    Its stdout and stderr are read all the time (into ``stdout``/``stderr`` lists of lines):
    a server whose log pipe nobody reads would block on its next log line.
    """

    def __init__(self, *argv, limits: dict[str, int] | None = None, python: str | None = None,
                 env: dict[str, str] | None = None):
        """``limits``: resource limits for the process, e.g. ``{"RLIMIT_NOFILE": 64}``;
        ``python``: run this code (``python -c``; ARGV are its arguments) instead of the CLI,
        for a negative control's server; ``env``: variables to add to its environment."""
        def set_limits():
            import resource
            for name, value in (limits or {}).items():
                resource.setrlimit(getattr(resource, name), (value, value))
        program = ["-c", python] if python is not None else ["-m", "socketlab"]
        self.process = subprocess.Popen([sys.executable, *program, *argv],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=set_limits if limits else None,
                                        env={**os.environ, **env} if env else None)
        line = self.process.stdout.readline()
        self.port = ready_port(line)
        if self.port is None:
            self.process.kill()
            raise AssertionError(f"server did not start: {line!r} {self.process.stderr.read()!r}")
        self.stdout, self.stderr = [line], []
        self._readers = [threading.Thread(target=self._drain, args=(pipe, lines), daemon=True)
                         for pipe, lines in ((self.process.stdout, self.stdout),
                                             (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _drain(pipe, lines):
        for line in pipe:
            lines.append(line)

    def stop(self, signum):
        """Send ``signum``; return the exit status and everything the server wrote to stderr."""
        self.process.send_signal(signum)
        self.process.wait(timeout=10)
        self.close()
        return self.process.returncode, "".join(self.stderr)

    def close(self):
        """Kill the server if it still runs; collect its output; close the pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for reader in self._readers:
            reader.join(10)
        self.process.stdout.close()
        self.process.stderr.close()


def tls_server(cli_server, pki, host, cert="localhost", program="app-server", *options) -> CliServer:
    """A ``program`` process serving TLS on ``host`` with ``cert`` from the ``pki`` fixture."""
    return cli_server(program, host, "0", "--tls-cert", str(pki / f"{cert}.pem"),
                      "--tls-key", str(pki / f"{cert}.key"), *options)


# -- the programs, by name: their handlers and one right exchange with each -----------------

#: name -> handler factory; the echo and multi-connection servers are one program.
KINDS = {
    "echo": EchoHandler,
    "multiconn": EchoHandler,
    "app": AppHandler,
    "app-naive": functools.partial(AppHandler, array_decoder=arrays.decode_array_naive),
}


def exchange_echo(host, port):
    assert client.echo(host, port, b"ping \xff\x00 pong") == b"ping \xff\x00 pong"


def exchange_multiconn(host, port):
    results = client.multiconn(host, port, 20)
    assert results == {i: b"".join(client.multiconn_messages(i)) for i in range(1, 21)}


def exchange_app(host, port):
    reply = client.request(host, port, app.make_request("search", "ring"))
    assert app.describe_response(reply.response) == app.SEARCH["ring"]


CONFORMANCE = {"echo": exchange_echo, "multiconn": exchange_multiconn, "app": exchange_app}


# -- hostile bytes, for both sides (test_hostile_peers.py, test_hostile_servers.py) ---------------

NESTED = b"[" * 8_000 + b"]" * 8_000  # 16 000 bytes: under the text/json limit, so it is parsed
DIGITS = b"9" * 5000


def frame(header, content: bytes = b"") -> bytes:
    """A frame with any header: a dict (its content-length filled in) or raw header bytes."""
    if isinstance(header, dict):
        header = json.dumps({"content-length": len(content), **header}).encode()
    return struct.pack(">H", len(header)) + header + content


def json_frame(content: bytes, encoding: str = "utf-8", **extra) -> bytes:
    return frame({"byteorder": "little", "content-type": "text/json",
                  "content-encoding": encoding, **extra}, content)
