"""The conformance report: what the runner found, for machines first, then for a person.

lab_tests/conform/runner.py hands :func:`write` one dict and a folder (it writes the folder's
``pcaps/*.pcap`` itself)::

    report.json   the dict as given (indent 1, UTF-8; a lone surrogate from a program's output
                  is written as its JSON escape, so the file loads back equal)
    junit.xml     one <testcase> per case and position, for CI: FAIL is a <failure>,
                  UNIMPLEMENTED a <skipped>, every verdict a <property name="verdict">
    index.html    a static page read offline: no script, no external resource; the summary
                  table per (role, position) and verdict, the result line, then every case by
                  topic in id order with the guide's words, expected against observed, the
                  ladder diagram of its packets (:func:`svg_ladder`), their payload bytes, the
                  program's argv, exit status and output, and the link to its pcap

:func:`render` opens the page in Debian's headless Chromium (no network: see ``CHROMIUM_FLAGS``)
for a screenshot and the DOM as rendered; :func:`summary_from_dom` reads the summary table
back from that DOM, so a test asserts on what the page shows.

The report dict::

    {"role", "program", "command", "started", "duration_s", "positions": [...],
     "cases": [{"id": "3.2.1", "topic", "title", "guide", "role", "position", "verdict",
                "expected", "observed", "duration_s",
                "program": {"argv", "returncode", "stopped", "stdout", "stderr", "truncated"},
                "pcap": "pcaps/....pcap" | None, "hosts": {"client": addr, "server": addr},
                "packets": [{"t", "src", "sport", "dst", "dport", "flags", "len", "hex", "icmp"}],
                "packets_omitted": 0}]}

Everything that comes from the program or the wire is text to show, never markup: every
character XML 1.0 forbids or a terminal acts on becomes its Python escape (``\\x1b``, ``\\udcff``,
:func:`printable`), then ``html.escape``. Every limit is named below.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from contextlib import suppress
from html.parser import HTMLParser
from pathlib import Path

from lab_tests import topology
from lab_tests.conform.cases import SERVERS

#: The verdicts, in the summary table's column order (Autobahn|Testsuite's, FAILED as FAIL).
VERDICTS = ("PASS", "FAIL", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED")
MAX_OUTPUT = 64 * 1024  # bytes of each of stdout, stderr, expected, observed shown per case
MAX_ARROWS = 120  # packets drawn in one ladder; the rest are counted on its last line
MAX_HEXDUMPS = 16  # data packets whose payload is dumped, per case
MAX_HEX_BYTES = 256  # bytes of one payload dumped
MAX_MESSAGE = 500  # characters of a JUnit <failure message=...>
#: The lab's well-known ports: the end of a connection holding one is the server's.
SERVER_PORTS = topology.RULED_PORTS

CHROMIUM_PACKAGE = "chromium"  # Debian's package, and the command it installs
RENDER_TIMEOUT = 60  # seconds for each Chromium run
WINDOW = (1280, 2000)  # the screenshot's size in pixels
#: Headless, and never on the network: no proxy, every host name unresolvable, none of the
#: browser's own background traffic (component updates, sync, default apps).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
    "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--hide-scrollbars",
)

#: Characters XML 1.0 forbids (C0 controls but tab, newline and carriage return; lone
#: surrogates; U+FFFE, U+FFFF), and DEL and the C1 controls a terminal acts on.
UNPRINTABLE = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ChromiumMissing(RuntimeError):
    """No ``chromium`` on PATH."""


def printable(text: object) -> str:
    """``text`` with every character of ``UNPRINTABLE`` as its Python escape (``\\x00``,
    ``\\x1b``, ``\\udcff``): shown, never acted on, and valid in XML and UTF-8."""
    return UNPRINTABLE.sub(_escape_character, "" if text is None else str(text))


def _escape_character(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _h(text: object) -> str:
    """Text from the program, the wire or the runner, for HTML (and SVG) text or attribute."""
    return html.escape(printable(text), quote=True)


def _cut(text: object, limit: int = MAX_OUTPUT) -> tuple[str, int]:
    """The printable text cut to ``limit`` UTF-8 bytes (never inside a character), and how many
    bytes were cut."""
    data = printable(text).encode()
    if len(data) <= limit:
        return data.decode(), 0
    return data[:limit].decode(errors="ignore"), len(data) - limit


# --- the whole report --------------------------------------------------------------------------

def write(report: dict, out: Path) -> None:
    """Write ``out/report.json``, ``out/junit.xml`` and ``out/index.html`` for ``report``."""
    _check(report)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    # A lone surrogate has no UTF-8: "backslashreplace" writes it as \udcff, its JSON escape.
    (out / "report.json").write_bytes(text.encode("utf-8", "backslashreplace"))
    tree = _junit(report)
    ET.indent(tree, space=" ")
    tree.write(out / "junit.xml", encoding="utf-8", xml_declaration=True)
    (out / "index.html").write_text(_page(report), encoding="utf-8")


def _check(report: dict) -> None:
    """The runner's contract, checked where the data enters: a known verdict per case."""
    for case in report["cases"]:
        if case.get("verdict") not in VERDICTS:
            raise ValueError(f"case {case.get('id')!r} ({case.get('position')!r}): verdict "
                             f"{case.get('verdict')!r} is not one of {', '.join(VERDICTS)}")


def _id_key(case_id: object) -> tuple:
    """``3.10.1`` after ``3.9.1``: numbers compare as numbers."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in str(case_id).split("."))


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def _positions(report: dict) -> list[str]:
    return _unique([*report.get("positions", []), *(case["position"] for case in report["cases"])])


def _roles(report: dict) -> list[str]:
    return _unique([*([report["role"]] if report.get("role") else []), *(case["role"] for case in report["cases"])])


def _ordered(report: dict) -> list[dict]:
    """The cases in id order, each id's positions in the report's order."""
    positions = _positions(report)
    return sorted(report["cases"], key=lambda case: (_id_key(case["id"]), positions.index(case["position"])))


def counts(report: dict) -> dict[tuple[str, str, str], int]:
    """{(role, position, verdict): count} over every role and position of the report, zeros
    included: what the summary table shows."""
    table = {(role, position, verdict): 0
             for role in _roles(report) for position in _positions(report) for verdict in VERDICTS}
    for case in report["cases"]:
        table[case["role"], case["position"], case["verdict"]] += 1
    return table


def _result(report: dict) -> str:
    failed = sum(case["verdict"] == "FAIL" for case in report["cases"])
    if not failed:
        return "PASS: no case failed"
    return f"FAIL: {failed} case{'s' if failed != 1 else ''} failed"


# --- junit.xml ---------------------------------------------------------------------------------

def _junit(report: dict) -> ET.ElementTree:
    cases = _ordered(report)
    totals = {"tests": str(len(cases)),
              "failures": str(sum(case["verdict"] == "FAIL" for case in cases)),
              "errors": "0",
              "skipped": str(sum(case["verdict"] == "UNIMPLEMENTED" for case in cases)),
              "time": f"{report.get('duration_s') or 0:.3f}"}
    root = ET.Element("testsuites", name="socketlab conformance", **totals)
    suite = ET.SubElement(root, "testsuite", name=printable(f"socketlab conformance: {report.get('role', '')}"),
                          timestamp=printable(report.get("started", "")), **totals)
    for case in cases:
        testcase = ET.SubElement(suite, "testcase", classname=printable(f"{case['role']}.{case['position']}"),
                                 name=printable(f"{case['id']} {case.get('title', '')}"),
                                 time=f"{case.get('duration_s') or 0:.3f}")
        properties = ET.SubElement(testcase, "properties")
        for name in ("verdict", "position", "pcap"):
            if case.get(name):
                ET.SubElement(properties, "property", name=name, value=printable(case[name]))
        observed = printable(case.get("observed"))
        if case["verdict"] == "FAIL":
            message = observed.splitlines()[0] if observed else "FAIL"
            failure = ET.SubElement(testcase, "failure", type="FAIL", message=message[:MAX_MESSAGE])
            failure.text = (f"expected: {_cut(case.get('expected'))[0]}\n"
                            f"observed: {_cut(case.get('observed'))[0]}")
        elif case["verdict"] == "UNIMPLEMENTED":
            ET.SubElement(testcase, "skipped", message=f"UNIMPLEMENTED: {observed}"[:MAX_MESSAGE])
        program = case.get("program") or {}
        for stream, tag in (("stdout", "system-out"), ("stderr", "system-err")):
            if program.get(stream):
                ET.SubElement(testcase, tag).text = _cut(program[stream])[0]
    return ET.ElementTree(root)


# --- index.html --------------------------------------------------------------------------------

STYLE = """
body { font: 15px/1.45 "DejaVu Sans", sans-serif; margin: 24px; color: #1d1d1d; background: #fff; max-width: 1240px; }
h1 { font-size: 24px; margin: 0 0 8px; } h2 { font-size: 20px; margin: 32px 0 8px; border-bottom: 2px solid #444; }
h3 { font-size: 16px; margin: 0 0 6px; }
h4 { font-size: 13px; margin: 8px 0 4px; color: #555; text-transform: uppercase; }
code, pre { font-family: "DejaVu Sans Mono", monospace; font-size: 12.5px; }
pre { background: #f5f5f5; border: 1px solid #ddd; padding: 6px 8px; margin: 0; white-space: pre-wrap;
      overflow-wrap: anywhere; max-height: 420px; overflow: auto; }
dl.run { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; margin: 0 0 16px; }
dl.run dt { font-weight: bold; } dl.run dd { margin: 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 3px 10px; text-align: left; vertical-align: top; }
td.count { text-align: right; min-width: 5em; font-variant-numeric: tabular-nums; } td.zero { color: #aaa; }
#result { font-size: 18px; font-weight: bold; padding: 6px 10px; display: inline-block; }
#result.fail { background: #fbe3e3; color: #9b1c1c; } #result.pass { background: #e2f4e5; color: #1d6b2c; }
.badge { display: inline-block; padding: 0 7px; border-radius: 4px; font-weight: bold; font-size: 12.5px;
         color: #fff; text-decoration: none; }
.badge.verdict-pass { background: #2e7d32; } .badge.verdict-fail { background: #c62828; }
.badge.verdict-non-strict { background: #b26a00; } .badge.verdict-informational { background: #1565c0; }
.badge.verdict-unimplemented { background: #757575; }
section.case { border: 1px solid #ccc; border-left: 6px solid #757575; padding: 10px 14px; margin: 14px 0; }
section.verdict-pass { border-left-color: #2e7d32; } section.verdict-fail { border-left-color: #c62828; }
section.verdict-non-strict { border-left-color: #b26a00; } section.verdict-informational { border-left-color: #1565c0; }
.meta { color: #555; font-size: 13px; }
blockquote { margin: 6px 0; padding: 4px 12px; border-left: 3px solid #bbb; color: #333; font-style: italic; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.ladder { display: block; margin: 8px 0; max-width: 100%; height: auto; }
.no-packets { color: #777; font-style: italic; }
"""


def _page(report: dict) -> str:
    role = report.get("role", "")
    failed = any(case["verdict"] == "FAIL" for case in report["cases"])
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>socketlab conformance: {_h(role)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>socketlab conformance: {_h(role)}</h1>",
        '<dl class="run">',
        f"<dt>program</dt><dd><code>{_h(report.get('program', ''))}</code></dd>",
        f"<dt>command</dt><dd><code>{_h(report.get('command', ''))}</code></dd>",
        f"<dt>started</dt><dd>{_h(report.get('started', ''))}</dd>",
        f"<dt>duration</dt><dd>{report.get('duration_s') or 0:.1f} s</dd>",
        f"<dt>positions</dt><dd>{_h(', '.join(_positions(report)))}</dd>",
        "</dl>",
        f'<p id="result" class="{"fail" if failed else "pass"}">{_h(_result(report))}</p>',
        _summary_table(report),
        _index_table(report),
    ]
    topic = None
    for case in _ordered(report):
        if case.get("topic") != topic:
            if topic is not None:
                parts.append("</div>")
            topic = case.get("topic")
            parts.append(f'<div class="topic"><h2>{_h(topic)}</h2>')
        parts.append(_section(case))
    if topic is not None:
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _summary_table(report: dict) -> str:
    table = counts(report)
    rows = ['<table id="summary"><caption>cases by verdict</caption>',
            "<tr><th>role</th><th>position</th>" + "".join(f"<th>{v}</th>" for v in VERDICTS) + "</tr>"]
    for role in _roles(report):
        for position in _positions(report):
            cells = "".join(
                f'<td class="count{"" if table[role, position, v] else " zero"}" data-role="{_h(role)}" '
                f'data-position="{_h(position)}" data-verdict="{v}">{table[role, position, v]}</td>'
                for v in VERDICTS)
            rows.append(f"<tr><th>{_h(role)}</th><th>{_h(position)}</th>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _section_id(case: dict) -> str:
    return f"case-{case['id']}-{case['position']}"


def _badge(verdict: str, href: str | None = None) -> str:
    css = f"badge verdict-{verdict.lower()}"
    if href:
        return f'<a class="{css}" href="#{_h(href)}">{_h(verdict)}</a>'
    return f'<span class="{css}">{_h(verdict)}</span>'


def _index_table(report: dict) -> str:
    """Every case id once, its verdict per position, linked to its section."""
    positions = _positions(report)
    by_id: dict[str, dict[str, dict]] = {}
    for case in _ordered(report):
        by_id.setdefault(case["id"], {})[case["position"]] = case
    rows = ['<table id="cases"><caption>cases</caption>',
            "<tr><th>case</th><th>title</th>" + "".join(f"<th>{_h(p)}</th>" for p in positions) + "</tr>"]
    for case_id, cases in by_id.items():
        first = next(iter(cases.values()))
        cells = "".join(f"<td>{_badge(cases[p]['verdict'], _section_id(cases[p])) if p in cases else ''}</td>"
                        for p in positions)
        rows.append(f"<tr><td>{_h(case_id)}</td><td>{_h(first.get('title', ''))}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _pre(text: object, what: str) -> str:
    if not text:
        return '<p class="meta">(empty)</p>'
    shown, cut = _cut(text)
    note = f'<p class="meta">… {cut} more bytes of {what} not shown</p>' if cut else ""
    return f"<pre>{html.escape(shown)}</pre>{note}"


def _is_relative(path: str) -> bool:
    """A path inside the report's folder: no scheme, not absolute, no way up."""
    return bool(path) and ":" not in path and not path.startswith(("/", "\\")) and ".." not in path.split("/")


def _section(case: dict) -> str:
    verdict = case["verdict"]
    program = case.get("program") or {}
    returncode = program.get("returncode")
    if program.get("stopped"):
        status = "stopped at the deadline" + (f" (exit status {returncode})" if returncode is not None else "")
    else:
        status = f"exit status {returncode}" if returncode is not None else "no exit status"
    if program.get("truncated"):
        status += f"; the runner cut {program['truncated']} bytes of its output"
    # A server under test is looked at when an exchange goes wrong and at the end, not after
    # every case (docs/conformance.md): its output is what it printed since the last look.
    since = ", since the runner's last look at the server" if case.get("role") in SERVERS else ""
    pcap = case.get("pcap")
    if pcap and _is_relative(str(pcap)):
        capture = f'<p>capture: <a href="{_h(pcap)}">{_h(pcap)}</a></p>'
    elif pcap:
        capture = f"<p>capture: <code>{_h(pcap)}</code></p>"
    else:
        capture = '<p class="meta">no capture file</p>'
    return "\n".join([
        f'<section id="{_h(_section_id(case))}" class="case verdict-{_h(verdict.lower())}">',
        f"<h3>{_h(case['id'])} {_h(case.get('title', ''))}</h3>",
        f'<p class="meta">{_badge(verdict)} {_h(case.get("role", ""))}, {_h(case["position"])}, '
        f"{case.get('duration_s') or 0:.2f} s</p>",
        f"<blockquote>{_h(case.get('guide', ''))}</blockquote>",
        '<div class="pair">',
        f"<div><h4>expected</h4>{_pre(case.get('expected'), 'expected')}</div>",
        f"<div><h4>observed</h4>{_pre(case.get('observed'), 'observed')}</div>",
        "</div>",
        "<h4>packets</h4>",
        svg_ladder(case),
        _hexdumps(case),
        "<h4>program</h4>",
        f"<p><code>{_h(shlex.join(str(a) for a in program.get('argv') or []))}</code></p>",
        f'<p class="status">{_h(status)}</p>',
        *(f"<h4>{stream}{since}</h4>{_pre(program.get(stream), stream)}" for stream in ("stdout", "stderr")),
        capture,
        "</section>",
    ])


# --- payload bytes -----------------------------------------------------------------------------

def hexdump(data: bytes) -> str:
    """``data`` as offset, 16 bytes in hex, and the ASCII column (``.`` for the rest)."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset:offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in chunk)
        text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in chunk)
        lines.append(f"{offset:04x}  {hexes:<47}  |{text}|")
    return "\n".join(lines)


def _hexdumps(case: dict) -> str:
    hosts = case.get("hosts") or {}
    data = [(number, packet) for number, packet in enumerate(case.get("packets") or [], 1) if packet.get("hex")]
    parts = []
    for number, packet in data[:MAX_HEXDUMPS]:
        source, target = _ends(packet, hosts)
        size = packet.get("len") or 0
        try:
            payload = bytes.fromhex(str(packet["hex"]))[:MAX_HEX_BYTES]
        except ValueError:
            dump = f"(not hex: {str(packet['hex'])[:80]!r})"
        else:
            dump = hexdump(payload)
            if len(payload) < size:
                dump += f"\n… {size - len(payload)} more bytes of {size} (see the pcap)"
        parts.append(f'<p class="meta">packet {number}: {source} → {target}, {_time(packet.get("t"))}, '
                     f"{size} B</p><pre class=\"hex\">{_h(dump)}</pre>")
    if len(data) > MAX_HEXDUMPS:
        parts.append(f'<p class="meta">… {len(data) - MAX_HEXDUMPS} more data packets (see the pcap)</p>')
    return ("<h4>payload bytes</h4>" + "\n".join(parts)) if parts else ""


# --- the ladder diagram ------------------------------------------------------------------------

LANES = {"client": 200, "router": 460, "server": 720}  # x of the lifelines
LADDER_WIDTH = 820
LADDER_TOP = 46  # y of the first arrow, below the lifelines' labels
ROW = 26  # pixels per packet
FALL = 10  # how far an arrow goes down from its source to its destination: time passes


def _time(t: object) -> str:
    ms = float(t or 0) * 1000
    return f"{ms:.3f} ms" if ms < 10 else f"{ms:.1f} ms"


def _is_server_port(port: object, other: object) -> bool:
    """Whether ``port`` is the server's end of the pair: the lab's well-known port (the lower
    one when both are), else the lower port (clients take high ephemeral ports)."""
    if not isinstance(port, int) or not isinstance(other, int):
        return False
    if (port in SERVER_PORTS) != (other in SERVER_PORTS):
        return port in SERVER_PORTS
    return port < other


def _ends(packet: dict, hosts: dict) -> tuple[str, str]:
    """The lifelines an arrow goes from and to: the case's two hosts by address, another
    address by its port pair, an ICMP error from the router that made it."""
    def lane(address, port, other) -> str:
        if address == hosts.get("client"):
            return "client"
        if address == hosts.get("server"):
            return "server"
        return "server" if _is_server_port(port, other) else "client"

    if not packet.get("flags"):  # ICMP
        return "router", "server" if packet.get("dst") == hosts.get("server") else "client"
    source = lane(packet.get("src"), packet.get("sport"), packet.get("dport"))
    target = lane(packet.get("dst"), packet.get("dport"), packet.get("sport"))
    if target == source:  # both ends on one side: draw it across anyway
        target = "server" if source == "client" else "client"
    return source, target


def _label(packet: dict) -> str:
    """SYN, SYN-ACK, ACK, data 87 B, FIN, RST, ICMP host unreachable."""
    flags = packet.get("flags") or ""
    if not flags:
        return f"ICMP {packet['icmp']}" if packet.get("icmp") else "ICMP"
    if "R" in flags:
        return "RST"
    if "S" in flags:
        return "SYN-ACK" if "." in flags else "SYN"
    size = packet.get("len") or 0
    words = [f"data {size} B"] if size else []
    if "F" in flags:
        words.append("FIN")
    return ", ".join(words) or ("ACK" if "." in flags else flags)


def _kind(packet: dict) -> str:
    flags = packet.get("flags") or ""
    if not flags:
        return "icmp"
    if "R" in flags:
        return "rst"
    if "S" in flags:
        return "syn"
    if packet.get("len"):
        return "data"
    return "fin" if "F" in flags else "ack"


#: Colour and line width per kind of packet: a pure ACK thin and grey.
INK = {"syn": ("#1d1d1d", 1.6), "data": ("#0b4f9c", 2.0), "fin": ("#1d1d1d", 1.6), "ack": ("#9a9a9a", 1.0),
       "rst": ("#c62828", 2.0), "icmp": ("#b26a00", 2.0)}


def svg_ladder(case: dict) -> str:
    """The ladder diagram of ``case``'s packets as inline SVG (well-formed XML): lifelines
    client (left), router, server (right); one arrow per packet, down with time, labelled
    with what it is and its time in ms since the case's first packet. At most ``MAX_ARROWS``;
    a case without packets gets a line of text instead."""
    packets = case.get("packets") or []
    more = max(0, len(packets) - MAX_ARROWS) + (case.get("packets_omitted") or 0)
    more_line = f"… {more} more packets (see the pcap)"
    if not packets:
        return f'<p class="no-packets">no packets captured{"; " + more_line if more else ""}</p>'
    hosts = case.get("hosts") or {}
    shown = packets[:MAX_ARROWS]
    height = LADDER_TOP + ROW * (len(shown) + (1 if more else 0)) + 10
    titles = {"client": f"client {hosts.get('client', '')}", "router": "router",
              "server": f"server {hosts.get('server', '')}"}
    parts = [f'<svg class="ladder" width="{LADDER_WIDTH}" height="{height}" viewBox="0 0 {LADDER_WIDTH} {height}" '
             f'role="img" aria-label="{_h("packets of case " + str(case.get("id", "")))}" '
             f'font-family="DejaVu Sans, sans-serif" font-size="12">']
    for lane, x in LANES.items():
        parts.append(f'<text class="lane" x="{x}" y="16" text-anchor="middle" font-weight="bold">'
                     f"{_h(titles[lane])}</text>")
        parts.append(f'<line class="lifeline" x1="{x}" y1="24" x2="{x}" y2="{height - 4}" stroke="#777" '
                     f'stroke-width="1.5"/>')
    for number, packet in enumerate(shown):
        parts.append(_arrow(number, packet, hosts))
    if more:
        parts.append(f'<text class="more" x="{LANES["router"]}" y="{LADDER_TOP + ROW * len(shown) + 6}" '
                     f'text-anchor="middle" font-style="italic" fill="#555">{_h(more_line)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _arrow(number: int, packet: dict, hosts: dict) -> str:
    source, target = _ends(packet, hosts)
    kind = _kind(packet)
    colour, width = INK[kind]
    x1, x2 = LANES[source], LANES[target]
    y1 = LADDER_TOP + ROW * number
    y2 = y1 + FALL
    length = math.hypot(x2 - x1, y2 - y1)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    bx, by = x2 - 9 * ux, y2 - 9 * uy  # the arrowhead: 9 px long, 8 px wide
    head = f"{x2},{y2} {bx - 4 * uy:.1f},{by + 4 * ux:.1f} {bx + 4 * uy:.1f},{by - 4 * ux:.1f}"
    label = _label(packet)
    where = (f"{packet.get('src')}:{packet.get('sport')} → {packet.get('dst')}:{packet.get('dport')}"
             if packet.get("flags") else f"{packet.get('src')} → {packet.get('dst')}")
    tooltip = f"packet {number + 1}: {where}, {packet.get('flags') or 'ICMP'}, {packet.get('len') or 0} B"
    dash = ' stroke-dasharray="5 3"' if kind == "icmp" else ""
    return (f'<g class="arrow {kind}" data-from="{source}" data-to="{target}"><title>{_h(tooltip)}</title>'
            f'<text class="time" x="8" y="{y1 + 8}" fill="#555">{_h(_time(packet.get("t")))}</text>'
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="{width}"{dash}/>'
            f'<polygon points="{head}" fill="{colour}"/>'
            f'<text class="label" x="{(x1 + x2) / 2:g}" y="{(y1 + y2) / 2 - 4:g}" text-anchor="middle" '
            f'fill="{colour}" stroke="#fff" stroke-width="3" paint-order="stroke">{_h(label)}</text></g>')


# --- the page as Chromium renders it ----------------------------------------------------------

def render(index: Path, screenshot: Path) -> str:
    """Open ``index`` in headless Chromium: a ``WINDOW``-sized PNG at ``screenshot``, and the
    DOM as Chromium rendered it (returned). Raises :class:`ChromiumMissing` without chromium,
    RuntimeError when it fails or takes more than ``RENDER_TIMEOUT`` seconds."""
    chromium = shutil.which(CHROMIUM_PACKAGE)
    if chromium is None:
        raise ChromiumMissing(f"chromium is not on PATH: install Debian's package {CHROMIUM_PACKAGE!r} "
                              f"(apt-get install --no-install-recommends {CHROMIUM_PACKAGE}; "
                              f"scripts/setup-host.sh does it)")
    url = index.resolve().as_uri()
    screenshot = screenshot.resolve()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.unlink(missing_ok=True)
    size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
    _chromium(chromium, f"--screenshot={screenshot}", size, url)
    if not screenshot.is_file():
        raise RuntimeError(f"chromium exited 0 but wrote no screenshot at {screenshot}")
    return _chromium(chromium, "--dump-dom", size, url)


def _chromium(chromium: str, *argv: str) -> str:
    """Run headless Chromium once with its own profile; its stdout. Its whole process group
    (renderer, zygote) goes when it is done or out of time."""
    with tempfile.TemporaryDirectory(prefix="socketlab-chromium-", ignore_cleanup_errors=True) as profile:
        command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *argv]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = process.communicate(timeout=RENDER_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            process.communicate()
            raise RuntimeError(f"chromium did not finish within {RENDER_TIMEOUT} s: {shlex.join(command)}") from None
        _kill_group(process)  # a helper process left behind by a finished run
    if process.returncode != 0:
        tail = err.decode(errors="replace")[-2000:]
        raise RuntimeError(f"chromium exited {process.returncode}: {shlex.join(command)}\n{tail}")
    return out.decode(errors="replace")


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the process group Chromium leads (its own session: nothing else is in it)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


class _SummaryCells(HTMLParser):
    """The cells of ``<table id="summary">`` that carry data-role, data-position, data-verdict."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = False
        self.cells: dict[tuple[str, str, str], str] = {}
        self._depth = 0  # tables open inside the summary table, itself included
        self._cell: tuple[str, str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if tag == "table":
            if self._depth or names.get("id") == "summary":
                self.found = True
                self._depth += 1
        elif self._depth and tag in ("td", "th") and all(
                names.get(key) is not None for key in ("data-role", "data-position", "data-verdict")):
            self._cell = (names["data-role"], names["data-position"], names["data-verdict"])
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth -= 1
        elif tag in ("td", "th") and self._cell is not None:
            if self._cell in self.cells:
                raise ValueError(f"the summary table has the cell {self._cell!r} twice")
            self.cells[self._cell] = "".join(self._text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)


def summary_from_dom(dom: str) -> dict[tuple[str, str, str], int]:
    """The page's summary table read back: {(role, position, verdict): count}, every cell."""
    parser = _SummaryCells()
    parser.feed(dom)
    parser.close()
    if not parser.found:
        raise ValueError('no <table id="summary"> in the DOM')
    table = {}
    for cell, text in parser.cells.items():
        if not text.strip().isdigit():
            raise ValueError(f"summary cell {cell!r} shows {text!r}, not a count")
        table[cell] = int(text)
    return table
