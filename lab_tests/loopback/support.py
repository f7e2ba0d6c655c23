"""Helpers for the loopback tests."""

import socket
import struct
import subprocess
import sys
import time


def run_cli(*argv, timeout=30):
    """Run ``python -m socketlab ARGV``; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "socketlab", *argv],
                          capture_output=True, text=True, timeout=timeout)


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN (an unclean shutdown)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def wait_for(condition, timeout=10.0, interval=0.01):
    """Poll ``condition()`` until it is true (a signal the code under test gives), or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)


class CliServer:
    """A ``socketlab`` server process; ready once it prints ``listening on HOST port PORT``."""

    def __init__(self, *argv):
        self.process = subprocess.Popen([sys.executable, "-m", "socketlab", *argv],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.process.kill()
            raise AssertionError(f"server did not start: {line!r} {self.process.stderr.read()!r}")
        self.port = int(line.split()[-1])

    def stop(self, signum):
        self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, err
