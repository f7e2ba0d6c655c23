"""The binding matrix: which server binding answers from which client position.

The single source of the table: the lab test is parametrised from it and
docs/binding-matrix.md's table is generated from it (``make docs``, lab_tests/docs.py; a unit
test fails on drift).
"""

from lab_tests import topology

SERVER_V4 = topology.address("server", "servernet", 4)
SERVER_V6 = topology.address("server", "servernet", 6)

# (port, program, what the server bound to): every plain listener of services/hosts/server.sh
# (lab_tests.topology), not the multi-connection server and not the negative control.
BINDINGS = [
    (lst.port, lst.program, lst.host or '"" (INADDR_ANY)')
    for lst in topology.server_ports()
    if lst.program in ("app-server", "echo-server") and not lst.options
]

# (service the probe runs in, address it connects to, how the packets travel)
POSITIONS = [
    ("server", "127.0.0.1", "server itself, IPv4 loopback"),
    ("server", "::1", "server itself, IPv6 loopback"),
    ("server", SERVER_V4, "server itself, its own IPv4"),
    ("server", SERVER_V6, "server itself, its own IPv6"),
    ("peer", SERVER_V4, "peer, same network (servernet), IPv4"),
    ("peer", SERVER_V6, "peer, same network (servernet), IPv6"),
    ("client", SERVER_V4, "client, across the router, IPv4"),
    ("client", SERVER_V6, "client, across the router, IPv6"),
]

C, R = "connected", "refused"

# EXPECTED[what the server bound to] lists the outcome for each row of POSITIONS, in order.
# "refused" is ECONNREFUSED from the server's own kernel: nobody listens on that address.
EXPECTED = {
    #                    lo4 lo6 own4 own6 peer4 peer6 cli4 cli6
    "::":               [C,  C,  C,   C,   C,    C,    C,   C],  # dual stack: everything
    "127.0.0.1":        [C,  R,  R,   R,   R,    R,    R,   R],  # loopback only
    SERVER_V4:          [R,  R,  C,   R,   C,    R,    C,   R],  # one IPv4 address
    SERVER_V6:          [R,  R,  R,   C,   R,    C,    R,   C],  # one IPv6 address
    '"" (INADDR_ANY)':  [C,  R,  C,   R,   C,    R,    C,   R],  # every IPv4 address, no IPv6
}


def cases():
    """(port, binding, service, host, position label, expected outcome) for every cell."""
    for port, _program, bound in BINDINGS:
        for (service, host, label), outcome in zip(POSITIONS, EXPECTED[bound], strict=True):
            yield port, bound, service, host, label, outcome


def table() -> str:
    """docs/binding-matrix.md's table and how to read it (``make docs``)."""
    head = "| client position | connects to | " + " | ".join(
        f"{port} `{bound}`" for port, _, bound in BINDINGS) + " |"
    rule = "| --- | --- | " + " | ".join("---" for _ in BINDINGS) + " |"
    rows = []
    for index, (service, host, label) in enumerate(POSITIONS):
        cells = " | ".join("connected" if EXPECTED[bound][index] == C else "**refused**"
                           for _, _, bound in BINDINGS)
        rows.append(f"| {label} (`{service}`) | `{host}` | {cells} |")
    accepted = next(f"{r.first}-{r.last}" for r in topology.firewall()
                    if r.verdict == "accept" and r.first <= BINDINGS[0][0] <= r.last)
    return "\n".join([
        head,
        rule,
        *rows,
        "",
        "Reading it: `::` with `IPV6_V6ONLY` off takes IPv4 too (as IPv4-mapped addresses);",
        "`127.0.0.1` never leaves the host; one address means exactly that address and family;",
        f"`\"\"` is every IPv4 address and no IPv6. The router (docs/lab.md) accepts {accepted}, so",
        "every refusal across it comes from the server, not from the firewall.",
        "",
    ])
