"""How the programs show an address: ``host:port`` in logs, the guide's ready line.

Below every other module of the package (it imports none of them): the loop, the handlers,
the command line, the guest's agent, the tests and the benchmarks all read addresses the same way.
"""

from __future__ import annotations

__all__ = ["format_address", "ready_line", "ready_port"]


def format_address(address) -> str:
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ready_line(host: str, port: int) -> str:
    """A server's ready line, the guide's ``Listening on ('::', 65432)``: what
    :func:`ready_port` reads."""
    return f"Listening on {(host, port)}"


def ready_port(line: str) -> int | None:
    """The port in a server's ready line, ``Listening on ('::', 65432)``; None for another line.

    Scripts, tests and the guest's agent wait for this line (it comes once the socket listens).
    """
    line = line.strip()
    if not (line.startswith("Listening on (") and line.endswith(")")):
        return None
    port = line[:-1].rpartition(",")[2].strip()
    return int(port) if port.isdigit() else None
